
/*
 * Wirehub: HTTP answers that are not an upgrade (JSON errors, API answers,
 * metrics) and the request's context.
 */


#ifndef _NGX_HTTP_WIREHUB_HTTP_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_HTTP_H_INCLUDED_


#include "ngx_http_wirehub.h"


ngx_http_wirehub_ctx_t *ngx_http_wirehub_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_wirehub_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, ngx_str_t *message);
ngx_int_t ngx_http_wirehub_send_body(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, ngx_buf_t *b);
ngx_table_elt_t *ngx_http_wirehub_header(ngx_http_request_t *r,
    const char *name, size_t len);
ngx_int_t ngx_http_wirehub_add_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);


#endif /* _NGX_HTTP_WIREHUB_HTTP_H_INCLUDED_ */
