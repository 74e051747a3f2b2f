
/*
 * Wirehub: the link to wirehubd, as transport only.  It connects, frames,
 * reconnects and matches answers to requests; what a frame means is decided
 * by the table of handlers the module registers (link_handlers), so the
 * link never calls into the layers above it.
 */


#ifndef _NGX_HTTP_WIREHUB_LINK_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_LINK_H_INCLUDED_


#include "ngx_http_wirehub.h"


/* a backed-up link: wirehubd is behind; past FULL no client may add */
#define NGX_HTTP_WIREHUB_LINK_BUSY   (4 * 1024 * 1024)
#define NGX_HTTP_WIREHUB_LINK_FULL   (32 * 1024 * 1024)


/* a link reply, or m == NULL when the link was lost first */
typedef void (*ngx_http_wirehub_reply_pt)(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m);

typedef void (*ngx_http_wirehub_link_frame_pt)(
    ngx_http_wirehub_main_conf_t *wmcf, wh_link_msg_t *m);


/* notifications from the link to the layers above, one per event */
typedef struct {
    void  (*up)(ngx_http_wirehub_main_conf_t *wmcf);
    void  (*down)(ngx_http_wirehub_main_conf_t *wmcf);
    ngx_http_wirehub_link_frame_pt   frames[256];   /* by type */
} ngx_http_wirehub_link_handlers_t;


/* a request sent over the link, waiting for its answer */
struct ngx_http_wirehub_pending_s {
    ngx_rbtree_node_t                node;        /* key: req_id */
    ngx_http_wirehub_reply_pt        handler;
    void                            *data;        /* NULL: cancelled */
    ngx_queue_t                      queue;       /* the owner's list */
    json_t                          *info;        /* ref, channel, ... */
    void                            *note;        /* ngx_alloc()ed, the
                                                     same, as text */
};


ngx_int_t ngx_http_wirehub_link_init(ngx_cycle_t *cycle,
    ngx_http_wirehub_main_conf_t *wmcf,
    const ngx_http_wirehub_link_handlers_t *handlers);
void ngx_http_wirehub_link_exit(ngx_http_wirehub_main_conf_t *wmcf);
ngx_int_t ngx_http_wirehub_link_up(ngx_http_wirehub_main_conf_t *wmcf);
ngx_int_t ngx_http_wirehub_link_egress(ngx_http_wirehub_main_conf_t *wmcf);
ngx_int_t ngx_http_wirehub_link_send(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
uint64_t ngx_http_wirehub_link_queued(ngx_http_wirehub_main_conf_t *wmcf,
    size_t *backlog);
ngx_http_wirehub_pending_t *ngx_http_wirehub_link_request(
    ngx_http_wirehub_main_conf_t *wmcf, wh_link_msg_t *m,
    ngx_http_wirehub_reply_pt handler, void *data);
void ngx_http_wirehub_pending_cancel(ngx_http_wirehub_pending_t *p);


#endif /* _NGX_HTTP_WIREHUB_LINK_H_INCLUDED_ */
