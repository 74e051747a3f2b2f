
/*
 * Wirehub: the content handlers of the module's locations: the opening
 * handshake (wirehub_websocket, wirehub_echo), SSE streams (wirehub_sse),
 * the HTTP API (wirehub_api) and the metrics (wirehub_metrics).
 */


#ifndef _NGX_HTTP_WIREHUB_CONTENT_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_CONTENT_H_INCLUDED_


#include "ngx_http_wirehub.h"


/* ngx_http_wirehub_handshake.c */
ngx_int_t ngx_http_wirehub_websocket_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_wirehub_admit(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx, ngx_http_wirehub_main_conf_t *wmcf,
    ngx_uint_t *status, const char **code, ngx_str_t *message);
ngx_int_t ngx_http_wirehub_origin_allowed(ngx_http_request_t *r,
    ngx_http_wirehub_loc_conf_t *wlcf);
ngx_http_wirehub_session_t *ngx_http_wirehub_session_new(
    ngx_http_request_t *r, ngx_http_wirehub_ctx_t *ctx);

/* ngx_http_wirehub_sse.c */
ngx_int_t ngx_http_wirehub_sse_handler(ngx_http_request_t *r);

/* ngx_http_wirehub_api.c */
ngx_int_t ngx_http_wirehub_api_handler(ngx_http_request_t *r);

/* ngx_http_wirehub_metrics.c */
ngx_int_t ngx_http_wirehub_metrics_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_WIREHUB_CONTENT_H_INCLUDED_ */
