UNIT_TESTS += jwt
jwt_SRCS := t/unit/test_jwt.c $(wildcard ngx_module/ngx_http_wirehub_jwt*.c)
jwt_LIBS := -ljwt -ljansson -lcrypto
