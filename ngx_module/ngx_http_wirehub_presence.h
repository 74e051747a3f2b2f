
/*
 * Wirehub: sessions as wirehubd sees them.  Every authenticated WebSocket
 * is announced (SESSION_OPEN) and greeted only once wirehubd accepted it;
 * after a reconnect of the link every live session is announced again.
 */


#ifndef _NGX_HTTP_WIREHUB_PRESENCE_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_PRESENCE_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_session.h"


void ngx_http_wirehub_presence_init(ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_session_open(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_session_update(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_session_gone(ngx_http_wirehub_session_t *s,
    const char *reason);
void ngx_http_wirehub_sessions_link_up(ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_sessions_link_down(
    ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_session_accepted(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
ngx_http_wirehub_session_t *ngx_http_wirehub_session_find(
    ngx_http_wirehub_main_conf_t *wmcf, wh_str_t *id);


#endif /* _NGX_HTTP_WIREHUB_PRESENCE_H_INCLUDED_ */
