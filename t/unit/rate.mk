UNIT_TESTS += rate
rate_SRCS := t/unit/test_rate.c ngx_module/ngx_http_wirehub_rate.c
