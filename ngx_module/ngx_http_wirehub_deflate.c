
/*
 * Wirehub: permessage-deflate (RFC 7692).  Wirehub always answers with
 * server_no_context_takeover and client_no_context_takeover: every message
 * is compressed on its own, so no connection keeps a zlib window (the
 * dominant cost of the extension, ~300 KiB per connection otherwise).  One
 * inflate stream per worker serves all connections, and one deflate stream
 * per server window size in use (server_max_window_bits), so a channel
 * message is compressed once per window size for all of its subscribers.
 */


#include "ngx_http_wirehub_deflate.h"
#include "wh_utf8.h"
#include <zlib.h>


#define NGX_HTTP_WIREHUB_DEFLATE_RESPONSE                                     \
    "permessage-deflate; server_no_context_takeover; "                        \
    "client_no_context_takeover"


/* per worker (wmcf->zlib), each stream used only within one event */
struct ngx_http_wirehub_zlib_s {
    z_stream        inflater;
    z_stream        deflater[NGX_HTTP_WIREHUB_DEFLATE_WINDOWS];
    ngx_uint_t      deflater_ready;    /* a bit per window size */
    unsigned        inflater_ready:1;
};


static ngx_http_wirehub_zlib_t *ngx_http_wirehub_zlib(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_log_t *log);
static ngx_int_t ngx_http_wirehub_deflate_offer(u_char *p, u_char *last,
    ngx_uint_t *server_bits);
static ngx_int_t ngx_http_wirehub_deflate_response(ngx_http_request_t *r,
    ngx_uint_t bits, ngx_str_t *response, ngx_uint_t *window);
static u_char *ngx_http_wirehub_skip_space(u_char *p, u_char *last);


/*
 * Looks at every offer of every Sec-WebSocket-Extensions header and
 * accepts the first permessage-deflate offer whose parameters are valid.
 * *window is the server window size the session compresses with: the
 * offer's server_max_window_bits (which the response then repeats), else
 * 15.
 */

ngx_int_t
ngx_http_wirehub_deflate_negotiate(ngx_http_request_t *r,
    ngx_str_t *response, ngx_uint_t *window)
{
    u_char           *p, *last, *start;
    ngx_uint_t        i, quoted, bits;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_DECLINED;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Sec-WebSocket-Extensions") - 1
            || ngx_strncasecmp(h[i].key.data,
                               (u_char *) "Sec-WebSocket-Extensions",
                               h[i].key.len) != 0)
        {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {
            start = p;
            quoted = 0;

            while (p < last && (quoted || *p != ',')) {
                if (*p == '"') {
                    quoted = !quoted;
                }

                p++;
            }

            bits = 0;

            if (ngx_http_wirehub_deflate_offer(start, p, &bits) == NGX_OK) {
                return ngx_http_wirehub_deflate_response(r, bits, response,
                                                         window);
            }

            p++;
        }
    }
}


static ngx_int_t
ngx_http_wirehub_deflate_response(ngx_http_request_t *r, ngx_uint_t bits,
    ngx_str_t *response, ngx_uint_t *window)
{
    u_char  *p;

    if (bits == 0) {
        ngx_str_set(response, NGX_HTTP_WIREHUB_DEFLATE_RESPONSE);
        *window = 15;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, sizeof(NGX_HTTP_WIREHUB_DEFLATE_RESPONSE) - 1
                             + sizeof("; server_max_window_bits=15") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    response->data = p;
    response->len = ngx_sprintf(p, NGX_HTTP_WIREHUB_DEFLATE_RESPONSE
                                "; server_max_window_bits=%ui", bits)
                    - p;
    *window = bits;

    return NGX_OK;
}


static u_char *
ngx_http_wirehub_skip_space(u_char *p, u_char *last)
{
    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    return p;
}


/*
 * One offer: "permessage-deflate; param[=value]; ...".  *server_bits is
 * the offer's server_max_window_bits, left alone when it has none.
 */

static ngx_int_t
ngx_http_wirehub_deflate_offer(u_char *p, u_char *last,
    ngx_uint_t *server_bits)
{
    u_char      *name, *value;
    size_t       nlen, vlen;
    ngx_int_t    bits;
    ngx_uint_t   seen;

    p = ngx_http_wirehub_skip_space(p, last);
    name = p;

    while (p < last && *p != ';' && *p != ' ' && *p != '\t') {
        p++;
    }

    if ((size_t) (p - name) != sizeof("permessage-deflate") - 1
        || ngx_strncasecmp(name, (u_char *) "permessage-deflate",
                           p - name) != 0)
    {
        return NGX_DECLINED;
    }

    seen = 0;

    for ( ;; ) {
        p = ngx_http_wirehub_skip_space(p, last);

        if (p == last) {
            return NGX_OK;
        }

        if (*p != ';') {
            return NGX_DECLINED;
        }

        p = ngx_http_wirehub_skip_space(p + 1, last);
        name = p;

        while (p < last && *p != '=' && *p != ';' && *p != ' '
               && *p != '\t')
        {
            p++;
        }

        nlen = p - name;
        value = NULL;
        vlen = 0;

        p = ngx_http_wirehub_skip_space(p, last);

        if (p < last && *p == '=') {
            p = ngx_http_wirehub_skip_space(p + 1, last);

            if (p < last && *p == '"') {
                p++;
            }

            value = p;

            while (p < last && *p != ';' && *p != '"' && *p != ' ') {
                p++;
            }

            vlen = p - value;

            if (p < last && *p == '"') {
                p++;
            }
        }

        bits = value ? ngx_atoi(value, vlen) : 15;

        if (nlen == sizeof("server_no_context_takeover") - 1
            && ngx_strncmp(name, "server_no_context_takeover", nlen) == 0
            && value == NULL && !(seen & 1))
        {
            seen |= 1;

        } else if (nlen == sizeof("client_no_context_takeover") - 1
                   && ngx_strncmp(name, "client_no_context_takeover", nlen)
                      == 0
                   && value == NULL && !(seen & 2))
        {
            seen |= 2;

        } else if (nlen == sizeof("server_max_window_bits") - 1
                   && ngx_strncmp(name, "server_max_window_bits", nlen) == 0
                   && value && bits >= 8 && bits <= 15 && !(seen & 4))
        {
            /* honoured with the worker's deflater of that window size */
            seen |= 4;
            *server_bits = bits;

        } else if (nlen == sizeof("client_max_window_bits") - 1
                   && ngx_strncmp(name, "client_max_window_bits", nlen) == 0
                   && bits >= 8 && bits <= 15 && !(seen & 8))
        {
            /* the worker's inflater takes any window up to 15 */
            seen |= 8;

        } else {
            return NGX_DECLINED;
        }
    }
}


typedef struct {
    u_char                          *buf;
    size_t                           cap;
    size_t                           len;
    size_t                           max;
    ngx_log_t                       *log;
} ngx_http_wirehub_inflated_t;


/* runs input through the inflater, growing the output up to max + 1 */

static ngx_int_t
ngx_http_wirehub_inflate_feed(z_stream *z, u_char *in, size_t len,
    ngx_http_wirehub_inflated_t *out)
{
    int      rc;
    u_char  *p;
    size_t   cap;

    z->next_in = in;
    z->avail_in = len;

    for ( ;; ) {

        if (out->len == out->cap) {
            if (out->cap > out->max) {
                return NGX_DECLINED;
            }

            cap = ngx_min(out->cap * 2, out->max + 1);

            p = ngx_alloc(cap, out->log);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(p, out->buf, out->len);
            ngx_free(out->buf);
            out->buf = p;
            out->cap = cap;
        }

        z->next_out = out->buf + out->len;
        z->avail_out = out->cap - out->len;

        rc = inflate(z, Z_SYNC_FLUSH);

        out->len = out->cap - z->avail_out;

        if (out->len > out->max) {
            return NGX_DECLINED;
        }

        if (rc == Z_STREAM_END) {
            return NGX_OK;
        }

        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return NGX_ABORT;
        }

        if (z->avail_in == 0 && z->avail_out != 0) {
            return NGX_OK;
        }
    }
}


/*
 * Inflates one message into a new ngx_alloc() buffer.  NGX_DECLINED: the
 * inflated size passes max (close 1009); NGX_ABORT: corrupt data (1007).
 */

ngx_int_t
ngx_http_wirehub_inflate(ngx_http_wirehub_main_conf_t *wmcf, u_char *in,
    size_t len, size_t max, u_char **out, size_t *out_len, ngx_log_t *log)
{
    z_stream                     *z;
    ngx_int_t                     rc;
    ngx_http_wirehub_zlib_t      *zl;
    ngx_http_wirehub_inflated_t   o;
    static u_char                 tail[4] = { 0x00, 0x00, 0xff, 0xff };

    zl = ngx_http_wirehub_zlib(wmcf, log);
    if (zl == NULL) {
        return NGX_ERROR;
    }

    z = &zl->inflater;

    if (!zl->inflater_ready) {
        if (inflateInit2(z, -15) != Z_OK) {
            ngx_log_error(NGX_LOG_ALERT, log, 0, "inflateInit2() failed");
            return NGX_ERROR;
        }

        zl->inflater_ready = 1;

    } else if (inflateReset(z) != Z_OK) {
        return NGX_ERROR;
    }

    o.cap = ngx_min(ngx_max(len * 4, 256), max + 1);
    o.len = 0;
    o.max = max;
    o.log = log;
    o.buf = ngx_alloc(o.cap, log);
    if (o.buf == NULL) {
        return NGX_ERROR;
    }

    /* the message, then the 4 bytes its sender stripped (RFC 7692 7.2.2) */

    rc = ngx_http_wirehub_inflate_feed(z, in, len, &o);

    if (rc == NGX_OK) {
        rc = ngx_http_wirehub_inflate_feed(z, tail, sizeof(tail), &o);
    }

    if (rc != NGX_OK) {
        ngx_free(o.buf);
        return rc;
    }

    *out = o.buf;
    *out_len = o.len;

    return NGX_OK;
}


static ngx_http_wirehub_zlib_t *
ngx_http_wirehub_zlib(ngx_http_wirehub_main_conf_t *wmcf, ngx_log_t *log)
{
    if (wmcf->zlib == NULL) {
        wmcf->zlib = ngx_calloc(sizeof(ngx_http_wirehub_zlib_t), log);
    }

    return wmcf->zlib;
}


/*
 * A whole frame (header + compressed payload, RSV1 set), compressed with
 * a window of at most 2^window bytes.  zlib refuses a raw deflate window
 * of 8 bits and uses 9 for it, which still fits: its matches reach back
 * at most 512 - 262 bytes (MAX_DIST), within a 256-byte window.
 */

ngx_http_wirehub_out_frame_t *
ngx_http_wirehub_deflate_frame(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_log_t *log, ngx_uint_t window, unsigned opcode, u_char *payload,
    size_t len)
{
    int                            bits;
    u_char                        *data;
    size_t                         bound, n, hlen;
    z_stream                      *z;
    ngx_uint_t                     i;
    ngx_http_wirehub_zlib_t       *zl;
    ngx_http_wirehub_out_frame_t  *frame;

    zl = ngx_http_wirehub_zlib(wmcf, log);
    if (zl == NULL) {
        return NULL;
    }

    i = ngx_http_wirehub_deflate_window(window);
    bits = (int) (i + 9);
    z = &zl->deflater[i];

    if (!(zl->deflater_ready & ((ngx_uint_t) 1 << i))) {
        if (deflateInit2(z, 1, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY)
            != Z_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, log, 0, "deflateInit2() failed");
            return NULL;
        }

        zl->deflater_ready |= (ngx_uint_t) 1 << i;

    } else if (deflateReset(z) != Z_OK) {
        return NULL;
    }

    bound = deflateBound(z, len) + 16;

    frame = ngx_alloc(offsetof(ngx_http_wirehub_out_frame_t, data) + 10
                      + bound, log);
    if (frame == NULL) {
        return NULL;
    }

    /* compress behind room for the longest header, then close the gap */

    data = frame->data + 10;

    z->next_in = payload;
    z->avail_in = len;
    z->next_out = data;
    z->avail_out = bound;

    if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in != 0) {
        ngx_free(frame);
        return NULL;
    }

    n = bound - z->avail_out;

    /* RFC 7692 7.2.1: the trailing 00 00 ff ff is not sent */
    if (n >= 4) {
        n -= 4;
    }

    hlen = wh_frame_header(frame->data, opcode, 1, 1, n);
    ngx_memmove(frame->data + hlen, data, n);

    frame->refs = 1;
    frame->len = hlen + n;

    return frame;
}
