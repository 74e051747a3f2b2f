
/*
 * Wirehub: the cursor of an SSE stream.  Bounded by construction: at most
 * NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS tuples of at most
 * NGX_HTTP_WIREHUB_CURSOR_TUPLE bytes each, which encode within
 * NGX_HTTP_WIREHUB_CURSOR_MAX.
 */


#include "ngx_http_wirehub_cursor.h"


/* "index:epoch:id," with a two-digit index and a 20-digit id */
#define NGX_HTTP_WIREHUB_CURSOR_TUPLE                                         \
    (2 + 1 + NGX_HTTP_WIREHUB_CURSOR_EPOCH + 1 + NGX_INT64_LEN + 1)

#define NGX_HTTP_WIREHUB_CURSOR_TEXT                                          \
    (NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS * NGX_HTTP_WIREHUB_CURSOR_TUPLE)


static ngx_int_t ngx_http_wirehub_cursor_tuple(u_char **pos, u_char *last,
    ngx_http_wirehub_position_t *p);
static ngx_int_t ngx_http_wirehub_cursor_number(u_char **pos, u_char *last,
    uint64_t max, uint64_t *value);


size_t
ngx_http_wirehub_cursor_encode(u_char *buf, ngx_http_wirehub_position_t *pos,
    ngx_uint_t n)
{
    u_char      text[NGX_HTTP_WIREHUB_CURSOR_TEXT], *p;
    ngx_str_t   src, dst;
    ngx_uint_t  i;

    p = text;

    for (i = 0; i < n && i < NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS; i++) {
        p = ngx_sprintf(p, "%s%ui:%*s:%uL", i ? "," : "", pos[i].index,
                        pos[i].epoch_len, pos[i].epoch, pos[i].id);
    }

    src.data = text;
    src.len = p - text;
    dst.data = buf;

    ngx_encode_base64url(&dst, &src);

    return dst.len;
}


ngx_int_t
ngx_http_wirehub_cursor_decode(ngx_str_t *text,
    ngx_http_wirehub_position_t *pos, ngx_uint_t *n)
{
    u_char      buf[NGX_HTTP_WIREHUB_CURSOR_MAX], *p, *last;
    uint64_t    seen;
    ngx_str_t   dst;
    ngx_uint_t  i;

    *n = 0;

    if (text->len == 0 || text->len > NGX_HTTP_WIREHUB_CURSOR_MAX) {
        return NGX_ERROR;
    }

    dst.data = buf;

    if (ngx_decode_base64url(&dst, text) != NGX_OK) {
        return NGX_ERROR;
    }

    p = buf;
    last = buf + dst.len;
    seen = 0;

    for (i = 0; p < last; i++) {

        if (i == NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS
            || (i > 0 && *p++ != ',')
            || ngx_http_wirehub_cursor_tuple(&p, last, &pos[i]) != NGX_OK
            || (seen & ((uint64_t) 1 << pos[i].index)))
        {
            return NGX_ERROR;
        }

        seen |= (uint64_t) 1 << pos[i].index;
    }

    if (i == 0) {
        return NGX_ERROR;
    }

    *n = i;

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_cursor_tuple(u_char **pos, u_char *last,
    ngx_http_wirehub_position_t *p)
{
    u_char    *c, *start;
    uint64_t   index;

    c = *pos;

    if (ngx_http_wirehub_cursor_number(&c, last,
                                       NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS - 1,
                                       &index)
        != NGX_OK
        || c == last || *c++ != ':')
    {
        return NGX_ERROR;
    }

    p->index = (ngx_uint_t) index;

    for (start = c; c < last && *c != ':'; c++) {
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z')
              || (*c >= 'A' && *c <= 'Z') || *c == '-' || *c == '_'))
        {
            return NGX_ERROR;
        }
    }

    if (c == last || (size_t) (c - start) > NGX_HTTP_WIREHUB_CURSOR_EPOCH) {
        return NGX_ERROR;
    }

    p->epoch_len = c - start;
    ngx_memcpy(p->epoch, start, p->epoch_len);
    c++;

    if (ngx_http_wirehub_cursor_number(&c, last, (uint64_t) INT64_MAX,
                                       &p->id)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    *pos = c;

    return NGX_OK;
}


/* decimal digits, without a sign or leading zeros, up to max */

static ngx_int_t
ngx_http_wirehub_cursor_number(u_char **pos, u_char *last, uint64_t max,
    uint64_t *value)
{
    u_char    *c;
    uint64_t   v;

    c = *pos;
    v = 0;

    if (c == last || *c < '0' || *c > '9' || (*c == '0' && c + 1 < last
                                              && c[1] >= '0' && c[1] <= '9'))
    {
        return NGX_ERROR;
    }

    for ( /* void */ ; c < last && *c >= '0' && *c <= '9'; c++) {
        if (v > (max - (*c - '0')) / 10) {
            return NGX_ERROR;
        }

        v = v * 10 + (*c - '0');
    }

    *value = v;
    *pos = c;

    return NGX_OK;
}
