FUZZERS += frame
fuzz_frame_SRCS := t/fuzz/fuzz_frame.c ngx_module/ngx_http_wirehub_frame.c \
                   ngx_module/ngx_http_wirehub_utf8.c
