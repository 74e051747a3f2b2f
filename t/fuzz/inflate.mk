# the module's deflate.c against nginx's headers (the configured tree of
# `make module`); ngx_libc.c stands in for the nginx functions it calls
FUZZERS += inflate
fuzz_inflate_SRCS := t/fuzz/fuzz_inflate.c t/fuzz/ngx_libc.c \
                     ngx_module/ngx_http_wirehub_deflate.c \
                     common/wh_frame.c common/wh_utf8.c
fuzz_inflate_CFLAGS := -Wno-unused-parameter \
    $(addprefix -I$(NGX_BUILD)/,src/core src/event src/event/modules \
        src/os/unix objs src/http src/http/modules src/http/v2)
fuzz_inflate_LIBS := -lz
$(BUILD)/fuzz/fuzz_inflate: $(NGX_BUILD)/objs/Makefile
