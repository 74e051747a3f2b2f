
/*
 * Wirehub: what a WebSocket message means, as the session handlers the
 * handshake hands a connection: protocol v1, or the echo endpoint.
 */


#ifndef _NGX_HTTP_WIREHUB_MESSAGES_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_MESSAGES_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_session.h"


extern const ngx_http_wirehub_session_handlers_t
    ngx_http_wirehub_client_handlers;
extern const ngx_http_wirehub_session_handlers_t
    ngx_http_wirehub_echo_handlers;


#endif /* _NGX_HTTP_WIREHUB_MESSAGES_H_INCLUDED_ */
