
/*
 * Wirehub: permessage-deflate (RFC 7692) with one zlib pair per worker:
 * offers are negotiated with no context takeover on both sides, so no
 * connection keeps a compression window.
 */


#ifndef _NGX_HTTP_WIREHUB_DEFLATE_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_DEFLATE_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_session.h"


/* smaller messages are not worth compressing */
#define NGX_HTTP_WIREHUB_DEFLATE_MIN      64


ngx_int_t ngx_http_wirehub_deflate_negotiate(ngx_http_request_t *r,
    ngx_str_t *response);
ngx_int_t ngx_http_wirehub_inflate(ngx_http_wirehub_main_conf_t *wmcf,
    u_char *in, size_t len, size_t max, u_char **out, size_t *out_len,
    ngx_log_t *log);
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_deflate_frame(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_log_t *log, unsigned opcode,
    u_char *payload, size_t len);


#endif /* _NGX_HTTP_WIREHUB_DEFLATE_H_INCLUDED_ */
