
/*
 * Wirehub: the output side of a session: frames shared by every
 * connection they are queued on, each session's queue of them, and how a
 * session's output is framed (ngx_http_wirehub_output.c).
 */


#ifndef _NGX_HTTP_WIREHUB_OUTPUT_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_OUTPUT_H_INCLUDED_


#include "ngx_http_wirehub.h"


/* how a session's output is framed, chosen when it is created */
typedef enum {
    NGX_HTTP_WIREHUB_FRAMING_WEBSOCKET = 0,
    NGX_HTTP_WIREHUB_FRAMING_SSE,          /* text/event-stream */
    NGX_HTTP_WIREHUB_FRAMING_SSE_CHUNKED   /* the same, in HTTP chunks */
} ngx_http_wirehub_framing_e;


/* one outgoing frame, shared by every connection it is queued on */
typedef struct {
    ngx_uint_t                       refs;
    size_t                           len;
    uint64_t                         msg_id;   /* a channel message's id */
    u_char                           data[1];
} ngx_http_wirehub_out_frame_t;


struct ngx_http_wirehub_out_s {
    ngx_http_wirehub_out_t          *next;
    ngx_http_wirehub_out_frame_t    *frame;
    size_t                           sent;
};


#define ngx_http_wirehub_is_sse(s)                                            \
    ((s)->framing != NGX_HTTP_WIREHUB_FRAMING_WEBSOCKET)


void ngx_http_wirehub_output_init(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_log_t *log);
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_frame_create(
    ngx_log_t *log, unsigned opcode, u_char *payload, size_t len);
void ngx_http_wirehub_frame_release(ngx_http_wirehub_out_frame_t *frame);
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_session_frame(
    ngx_http_wirehub_session_t *s, unsigned opcode, u_char *payload,
    size_t len);
ngx_int_t ngx_http_wirehub_send_frame(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_out_frame_t *frame);
ngx_int_t ngx_http_wirehub_send_pair(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_out_frame_t *first, ngx_http_wirehub_out_frame_t *second);
ngx_int_t ngx_http_wirehub_send_text(ngx_http_wirehub_session_t *s,
    u_char *data, size_t len);
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_sse_event(ngx_log_t *log,
    ngx_uint_t framing, u_char *json, size_t len);
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_sse_raw(ngx_log_t *log,
    ngx_uint_t framing, u_char *text, size_t len);
ngx_int_t ngx_http_wirehub_flush(ngx_http_wirehub_session_t *s);
ngx_int_t ngx_http_wirehub_send_head(ngx_http_wirehub_session_t *s,
    ngx_chain_t *in);
void ngx_http_wirehub_greeted(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_session_lost(ngx_http_wirehub_session_t *s);
ngx_int_t ngx_http_wirehub_session_hold(ngx_http_wirehub_session_t *s,
    size_t len);
void ngx_http_wirehub_drop_queue(ngx_http_wirehub_session_t *s,
    ngx_uint_t keep_partial);


#endif /* _NGX_HTTP_WIREHUB_OUTPUT_H_INCLUDED_ */
