
/*
 * Wirehub: authentication, from a token to a verified identity.  Where a
 * token comes from (Authorization, ?token=, the last path segment), its
 * checks by the JWT codec, and the identity copied where it must live.
 * What the identity may do is ngx_http_wirehub_authz.h's business.
 */


#ifndef _NGX_HTTP_WIREHUB_AUTH_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_AUTH_H_INCLUDED_


#include "ngx_http_wirehub.h"


ngx_int_t ngx_http_wirehub_authenticate(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx, ngx_uint_t *status, const char **code,
    ngx_str_t *message);
ngx_http_wirehub_identity_t *ngx_http_wirehub_verify_token(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_log_t *log, ngx_pool_t *pool,
    u_char *token, size_t len, const char **code, ngx_str_t *message);
ngx_http_wirehub_identity_t *ngx_http_wirehub_identity_copy(
    ngx_pool_t *pool, ngx_http_wirehub_identity_t *id);
size_t ngx_http_wirehub_identity_size(ngx_http_wirehub_identity_t *id);
/* frees the tokens and the signatures the worker remembers */
void ngx_http_wirehub_auth_exit(ngx_http_wirehub_main_conf_t *wmcf);


#endif /* _NGX_HTTP_WIREHUB_AUTH_H_INCLUDED_ */
