
/*
 * Wirehub: channels in a worker (subscribe, unsubscribe, resume with
 * "since", local fan-out of wirehubd's messages) and publishing from a
 * WebSocket client.
 */


#ifndef _NGX_HTTP_WIREHUB_CHANNELS_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_CHANNELS_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_session.h"


/* one channel this worker subscribes to upstream, for its local clients */
struct ngx_http_wirehub_channel_s {
    ngx_str_node_t                   node;        /* ws NUL channel */
    ngx_str_t                        workspace;
    ngx_str_t                        name;
    ngx_queue_t                      subs;
    ngx_uint_t                       nsubs;
    uint64_t                         last_id;     /* delivered */
    u_char                           epoch[16];
    size_t                           epoch_len;
    unsigned                         subscribed:1;  /* SUBSCRIBED seen */
    unsigned                         sent:1;        /* SUBSCRIBE sent */
    unsigned                         busy:1;        /* fan-out running */
};


/* a client's subscription to a channel */
struct ngx_http_wirehub_sub_s {
    ngx_queue_t                      queue;       /* channel->subs */
    ngx_http_wirehub_sub_t          *next;        /* session's list */
    ngx_http_wirehub_session_t      *session;
    ngx_http_wirehub_channel_t      *channel;
    ngx_http_wirehub_pending_t      *replay;      /* a page asked for */
    ngx_http_wirehub_out_t          *held;        /* live, behind replay */
    ngx_http_wirehub_out_t         **held_last;
    json_t                          *ref;
    uint64_t                         up_to;
    uint64_t                         next_page;   /* "since" asked, then
                                                     replayed up to */
    uint64_t                         pos_id;      /* SSE: last queued */
    u_char                           since_epoch[16];

    /* packed: one per subscription of every idle connection */
    uint32_t                         index;       /* in its session */
    u_char                           since_epoch_len;
    unsigned                         has_since:1;
    unsigned                         live:1;
    unsigned                         lost:1;     /* a replayed item */
    unsigned                         paging:1;   /* replay under way */
    unsigned                         announced:1;  /* "subscribed" sent */
    unsigned                         waiting:1;  /* for the client to read */
    unsigned                         relink:1;   /* for the link to return */
    unsigned                         pos_known:1;  /* pos_id is set */
    unsigned                         pos_since:1;  /* ... in since_epoch */
};


/* ngx_http_wirehub_channels.c */
void ngx_http_wirehub_channels_init(ngx_http_wirehub_main_conf_t *wmcf);
ngx_int_t ngx_http_wirehub_subscribe(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref, ngx_str_t *raw);
ngx_int_t ngx_http_wirehub_unsubscribe(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref, ngx_str_t *raw);
void ngx_http_wirehub_session_unsubscribe_all(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_channels_drained(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_channels_link_up(ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_channels_link_down(ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_channel_subscribed(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
void ngx_http_wirehub_channel_message(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);

/* ngx_http_wirehub_publish.c */
ngx_int_t ngx_http_wirehub_publish(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref, ngx_str_t *raw);


#endif /* _NGX_HTTP_WIREHUB_CHANNELS_H_INCLUDED_ */
