
/*
 * Wirehub: the protocol's own messages to a client: errors with a stable
 * code, replies carrying the client's "ref", connection_status.
 */


#ifndef _NGX_HTTP_WIREHUB_REPLY_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_REPLY_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_session.h"


json_t *ngx_http_wirehub_timestamp(void);
ngx_int_t ngx_http_wirehub_reply(ngx_http_wirehub_session_t *s,
    json_t *reply, json_t *ref);
ngx_int_t ngx_http_wirehub_send_client_error(ngx_http_wirehub_session_t *s,
    const char *code, const char *message, json_t *ref);
ngx_int_t ngx_http_wirehub_channel_error(ngx_http_wirehub_session_t *s,
    const char *code, const char *message, json_t *name, json_t *ref);
ngx_int_t ngx_http_wirehub_send_connection_status(
    ngx_http_wirehub_session_t *s, ngx_uint_t active_clients);


#endif /* _NGX_HTTP_WIREHUB_REPLY_H_INCLUDED_ */
