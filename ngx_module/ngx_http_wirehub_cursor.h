
/*
 * Wirehub: the cursor of an SSE stream, the "id:" of its events and the
 * "Last-Event-ID" of a reconnect.  It names the position (epoch and last
 * id) of every channel of the stream by its index in the stream's list:
 * base64url of "index:epoch:id" tuples joined by ",".  Opaque to clients.
 */


#ifndef _NGX_HTTP_WIREHUB_CURSOR_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_CURSOR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* channels of one stream: the cursor of the largest fits its bound */
#define NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS  64

/* the longest cursor, encoded (a longer Last-Event-ID is refused) */
#define NGX_HTTP_WIREHUB_CURSOR_MAX        4096

#define NGX_HTTP_WIREHUB_CURSOR_EPOCH      16


typedef struct {
    ngx_uint_t  index;
    uint64_t    id;
    size_t      epoch_len;
    u_char      epoch[NGX_HTTP_WIREHUB_CURSOR_EPOCH];
} ngx_http_wirehub_position_t;


/* buf holds NGX_HTTP_WIREHUB_CURSOR_MAX bytes; returns the length */
size_t ngx_http_wirehub_cursor_encode(u_char *buf,
    ngx_http_wirehub_position_t *pos, ngx_uint_t n);

/* NGX_ERROR for a malformed or oversized cursor, or a repeated index */
ngx_int_t ngx_http_wirehub_cursor_decode(ngx_str_t *text,
    ngx_http_wirehub_position_t *pos, ngx_uint_t *n);


#endif /* _NGX_HTTP_WIREHUB_CURSOR_H_INCLUDED_ */
