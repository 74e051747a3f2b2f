
/*
 * Wirehub: the module's limits on what one connection or one workspace
 * may do: wirehub_message_rate (the bucket itself is
 * ngx_http_wirehub_rate.c) and wirehub_max_connections_per_workspace.
 * wirehub_max_subscriptions is a single check where subscriptions are
 * made (ngx_http_wirehub_channels.c).
 */


#ifndef _NGX_HTTP_WIREHUB_LIMITS_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_LIMITS_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_session.h"


typedef struct ngx_http_wirehub_hold_s  ngx_http_wirehub_hold_t;


/*
 * A client message, before anything looks at it: NGX_OK to act on it;
 * NGX_DECLINED when it is over wirehub_message_rate, answered with
 * "rate_limited" and dropped, or the connection closed with 1008.
 */
ngx_int_t ngx_http_wirehub_limit_message(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *data, size_t len);

/* the shared zone that counts connections per workspace */
ngx_int_t ngx_http_wirehub_workspace_zone_add(ngx_conf_t *cf,
    ngx_http_wirehub_main_conf_t *wmcf);

/*
 * A connection of the request's workspace, held until the connection
 * goes: NGX_OK and *hold (NULL when the location sets no limit),
 * NGX_DECLINED when the workspace is at its limit, NGX_BUSY when the zone
 * is full, NGX_ERROR.
 */
ngx_int_t ngx_http_wirehub_workspace_acquire(ngx_http_request_t *r,
    ngx_http_wirehub_identity_t *id, ngx_http_wirehub_hold_t **hold);

/* gives the connection back now (once; the connection's end then won't) */
void ngx_http_wirehub_workspace_release(ngx_http_wirehub_hold_t *hold);

/* a worker exits: whatever its connections still hold goes back */
void ngx_http_wirehub_workspace_exit(ngx_http_wirehub_main_conf_t *wmcf);


#endif /* _NGX_HTTP_WIREHUB_LIMITS_H_INCLUDED_ */
