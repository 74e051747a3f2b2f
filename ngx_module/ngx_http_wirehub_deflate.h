
/*
 * Wirehub: permessage-deflate (RFC 7692) with zlib streams per worker, not
 * per connection: offers are negotiated with no context takeover on both
 * sides, so no connection keeps a compression window.
 */


#ifndef _NGX_HTTP_WIREHUB_DEFLATE_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_DEFLATE_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_session.h"


/* smaller messages are not worth compressing */
#define NGX_HTTP_WIREHUB_DEFLATE_MIN      64

/* server window sizes with a deflate stream: 2^9 .. 2^15 (8 uses 9) */
#define NGX_HTTP_WIREHUB_DEFLATE_WINDOWS  7


/* the deflate stream (and shared frame) of a server window size */

static ngx_inline ngx_uint_t
ngx_http_wirehub_deflate_window(ngx_uint_t bits)
{
    return (bits <= 9) ? 0 : ngx_min(bits, 15) - 9;
}


/*
 * The most a conforming compressor may send for a message that inflates
 * to max bytes: zlib's deflateBound() for any level and memory level (a
 * small memLevel emits a block header every 128 bytes), plus the empty
 * blocks of a flush.  Past that the message is too big before inflating.
 */

static ngx_inline size_t
ngx_http_wirehub_deflate_wire_max(size_t max)
{
    return max + (max >> 3) + (max >> 8) + (max >> 9) + 64;
}


ngx_int_t ngx_http_wirehub_deflate_negotiate(ngx_http_request_t *r,
    ngx_str_t *response, ngx_uint_t *window);
ngx_int_t ngx_http_wirehub_inflate(ngx_http_wirehub_main_conf_t *wmcf,
    u_char *in, size_t len, size_t max, u_char **out, size_t *out_len,
    ngx_log_t *log);
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_deflate_frame(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_log_t *log, ngx_uint_t window,
    unsigned opcode, u_char *payload, size_t len);


#endif /* _NGX_HTTP_WIREHUB_DEFLATE_H_INCLUDED_ */
