
/*
 * Wirehub: authorization.  One function says whether a verified identity
 * may do an action on a resource, and why not: the handshake, every
 * WebSocket message that acts on something, the HTTP API and "refresh"
 * ask it, and nothing else decides.
 */


#ifndef _NGX_HTTP_WIREHUB_AUTHZ_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_AUTHZ_H_INCLUDED_


#include "ngx_http_wirehub.h"


typedef enum {
    NGX_HTTP_WIREHUB_ACT_CONNECT = 0,   /* hold a WebSocket */
    NGX_HTTP_WIREHUB_ACT_SUBSCRIBE,     /* read resource.channel */
    NGX_HTTP_WIREHUB_ACT_PUBLISH,       /* write resource.channel */
    NGX_HTTP_WIREHUB_ACT_API,           /* call the API in
                                           resource.workspace (data NULL:
                                           the token's own) */
    NGX_HTTP_WIREHUB_ACT_REFRESH        /* extend the session of
                                           resource.workspace and
                                           resource.client_id */
} ngx_http_wirehub_action_e;


typedef struct {
    ngx_str_t                        workspace;
    ngx_str_t                        client_id;
    ngx_str_t                        channel;
} ngx_http_wirehub_resource_t;


/* why not: a stable error code, a message, and the HTTP status */
typedef struct {
    const char                      *code;
    const char                      *message;
    ngx_uint_t                       status;
} ngx_http_wirehub_denial_t;


ngx_int_t ngx_http_wirehub_authorize(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_identity_t *id, ngx_http_wirehub_action_e action,
    ngx_http_wirehub_resource_t *resource, ngx_http_wirehub_denial_t *denial,
    ngx_log_t *log);

time_t ngx_http_wirehub_revoked_until(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_str_t *workspace, ngx_str_t *client_id);
void ngx_http_wirehub_authz_init(ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_revoke(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);


#endif /* _NGX_HTTP_WIREHUB_AUTHZ_H_INCLUDED_ */
