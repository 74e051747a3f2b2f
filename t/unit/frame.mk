UNIT_TESTS += frame
frame_SRCS := t/unit/test_frame.c ngx_module/ngx_http_wirehub_frame.c \
              ngx_module/ngx_http_wirehub_utf8.c
