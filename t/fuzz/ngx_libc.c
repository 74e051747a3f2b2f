/*
 * The nginx functions that ngx_module/ngx_http_wirehub_deflate.c calls,
 * as libc does them, for the fuzz target of permessage-deflate
 * (fuzz_inflate.c), which links that file without nginx.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_wirehub_deflate.h"


void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    return malloc(size);
}


void *
ngx_calloc(size_t size, ngx_log_t *log)
{
    return calloc(1, size);
}


/* one negotiation answer at a time: nothing to free, nothing leaks */
void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    static u_char  buf[256];

    return size <= sizeof(buf) ? buf : NULL;
}


/* only what the negotiation prints: text and one %ui */
u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    va_list      args;
    ngx_uint_t   v;
    const char  *p;

    va_start(args, fmt);

    for (p = fmt; *p; p++) {
        if (p[0] == '%' && p[1] == 'u' && p[2] == 'i') {
            v = va_arg(args, ngx_uint_t);
            buf += sprintf((char *) buf, "%lu", (unsigned long) v);
            p += 2;
            continue;
        }

        *buf++ = (u_char) *p;
    }

    va_end(args);

    return buf;
}


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    ngx_int_t  value, cutoff, cutlim;

    if (n == 0) {
        return NGX_ERROR;
    }

    cutoff = NGX_MAX_INT_T_VALUE / 10;
    cutlim = NGX_MAX_INT_T_VALUE % 10;

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9') {
            return NGX_ERROR;
        }

        if (value >= cutoff && (value > cutoff || *line - '0' > cutlim)) {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    while (n) {
        c1 = (ngx_uint_t) *s1++;
        c2 = (ngx_uint_t) *s2++;

        c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;
        c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;

        if (c1 == c2) {
            if (c1) {
                n--;
                continue;
            }

            return 0;
        }

        return c1 - c2;
    }

    return 0;
}
