
/*
 * Wirehub: backend hooks.  A client's "rpc" is POSTed to the application
 * through an ordinary nginx location (wirehub_rpc_pass) and its answer
 * goes back as "rpc_result"; client events go to wirehub_event_pass.
 */


#ifndef _NGX_HTTP_WIREHUB_RPC_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_RPC_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_session.h"


#define NGX_HTTP_WIREHUB_MAX_METHOD  64


void ngx_http_wirehub_rpc_init(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_rpc_detach_all(ngx_http_wirehub_session_t *s);
ngx_int_t ngx_http_wirehub_rpc(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref, ngx_str_t *raw);
ngx_int_t ngx_http_wirehub_rpc_event(ngx_http_wirehub_session_t *s,
    const char *type, size_t len, ngx_str_t *raw, json_t *ref);


#endif /* _NGX_HTTP_WIREHUB_RPC_H_INCLUDED_ */
