FUZZERS += jwt
fuzz_jwt_SRCS := t/fuzz/fuzz_jwt.c \
                 $(wildcard ngx_module/ngx_http_wirehub_jwt*.c)
fuzz_jwt_LIBS := -ljwt -ljansson -lcrypto
