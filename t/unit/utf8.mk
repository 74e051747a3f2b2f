UNIT_TESTS += utf8
utf8_SRCS := t/unit/test_utf8.c ngx_module/ngx_http_wirehub_utf8.c
