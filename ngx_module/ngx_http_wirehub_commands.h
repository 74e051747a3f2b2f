
/*
 * Wirehub: the module's part of the durable command queue and the clients
 * registry.  wirehubd owns the queue; a worker delivers a COMMAND to the
 * session wirehubd names, carries command_result back, closes the sessions
 * wirehubd kicks and delivers workspace broadcasts.
 */


#ifndef _NGX_HTTP_WIREHUB_COMMANDS_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_COMMANDS_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_session.h"


void ngx_http_wirehub_command(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
void ngx_http_wirehub_session_kick(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
ngx_int_t ngx_http_wirehub_command_result(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref, ngx_str_t *raw);
ngx_int_t ngx_http_wirehub_command_result_plain(
    ngx_http_wirehub_session_t *s, ngx_str_t *raw, wh_str_t ref);
void ngx_http_wirehub_broadcast(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);


#endif /* _NGX_HTTP_WIREHUB_COMMANDS_H_INCLUDED_ */
