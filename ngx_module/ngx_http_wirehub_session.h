
/*
 * Wirehub: the WebSocket connection as one unit.  It is taken over from
 * nginx once the 101 is out (takeover), reads frames through the resumable
 * parser and runs the closing handshake, pings and timeouts (session), and
 * writes queues of shared, reference-counted frames (output, with its own
 * header).
 *
 * What a message means is not its business: it tells the layer above
 * through the handlers table the handshake chose (protocol v1 or echo).
 */


#ifndef _NGX_HTTP_WIREHUB_SESSION_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_SESSION_H_INCLUDED_


#include "ngx_http_wirehub.h"
#include "ngx_http_wirehub_output.h"
#include "wh_frame.h"


/* how long a closing handshake may take before the socket is dropped */
#define NGX_HTTP_WIREHUB_CLOSE_TIMEOUT    1000

/* nginx reload or shutdown: close frames spread over this many ms */
#define NGX_HTTP_WIREHUB_SHUTDOWN_SPREAD  3000

/*
 * The session's own pool is one allocation sized for what an idle session
 * keeps (ngx_http_wirehub_session_new()); beyond that, room for the
 * alignment of its allocations.  What does not fit would take a second
 * block of that size: see ngx_http_wirehub_session_alloc().
 */
#define NGX_HTTP_WIREHUB_SESSION_ROOM     24

/* the read buffer every session of a worker shares */
#define NGX_HTTP_WIREHUB_RECV_SIZE        65536


/* notifications from the connection to the layer above it */
typedef struct {
    /* upgraded: NGX_ERROR closes the connection */
    ngx_int_t  (*open)(ngx_http_wirehub_session_t *s);

    /* wirehubd accepted the session and connection_status is queued */
    void       (*accepted)(ngx_http_wirehub_session_t *s);

    /* a complete message, inflated and (for text) valid UTF-8 */
    void       (*message)(ngx_http_wirehub_session_t *s, unsigned opcode,
                          u_char *data, size_t len);

    /* the connection is going away: release what the session holds */
    void       (*closed)(ngx_http_wirehub_session_t *s);

    /* asked for with drain_wanted: the queued output is down to half the
       send limit (a paced replay may go on) */
    void       (*drained)(ngx_http_wirehub_session_t *s);
} ngx_http_wirehub_session_handlers_t;


/*
 * What a connection holds only while a frame or a message is half read:
 * allocated when data arrives, freed once a read leaves nothing pending
 * (nginx's keepalive frees its buffers the same way), so an idle
 * connection holds none of it.
 */
typedef struct {
    wh_frame_parser_t                parser;
    u_char                          *msg;        /* message reassembly */
    size_t                           msg_len;
    size_t                           msg_cap;
} ngx_http_wirehub_reader_t;


struct ngx_http_wirehub_session_s {
    ngx_http_request_t              *request;
    ngx_connection_t                *connection;
    ngx_pool_t                      *pool;       /* its own, see above */
    ngx_http_wirehub_loc_conf_t     *conf;
    ngx_http_wirehub_identity_t     *identity;   /* NULL for echo */
    const ngx_http_wirehub_session_handlers_t  *handlers;

    ngx_str_node_t                   id_node;    /* main conf session_ids;
                                                    .str: the session id */
    ngx_str_t                        client_name;
    ngx_http_wirehub_sub_t          *subs;
    ngx_queue_t                      pending;
    ngx_str_t                        client_type;

    ngx_queue_t                      queue;      /* main conf sessions */

    ngx_http_wirehub_reader_t       *reader;     /* NULL while idle */

    ngx_http_wirehub_out_t          *out;
    ngx_http_wirehub_out_t         **out_last;
    size_t                           out_bytes;
    size_t                           held_bytes;  /* behind a replay */

    uint64_t                         link_mark;   /* its last link byte */
    size_t                           link_bytes;  /* it queued up to it */

    ngx_event_t                      timer;
    ngx_http_wirehub_main_conf_t    *main_conf;
    ngx_msec_t                       last_rx;
    ngx_msec_t                       shutdown_at;
    ngx_msec_t                       last_ping;
    ngx_msec_t                       close_deadline;
    time_t                           expires;    /* exp + leeway, or 0 */
    ngx_http_wirehub_bucket_t        rate;       /* wirehub_message_rate */
    json_t                          *deferred;   /* SSE: its subscribe */

    void                            *srv_ctx;    /* backend hooks: its */
    ngx_queue_t                      rpcs;       /* server, calls out */
    uint32_t                         nrpcs;
    uint32_t                         nsubs;

    unsigned                         upgraded:1;
    unsigned                         close_sent:1;
    unsigned                         close_received:1;
    unsigned                         failed:1;
    unsigned                         shutting_down:1;
    unsigned                         closed:1;
    unsigned                         accepted:1;  /* by wirehubd */
    unsigned                         lingering:1;
    unsigned                         cleaned:1;
    unsigned                         deflate:1;   /* permessage-deflate */
    unsigned                         deflate_window:4;  /* server bits */
    unsigned                         opened:1;    /* SESSION_OPEN sent */
    unsigned                         slow:1;      /* past send_limit */
    unsigned                         lost:1;      /* a frame not queued */
    unsigned                         close_queued:1;
    unsigned                         drain_wanted:1;
    unsigned                         framing:2;   /* _framing_e */
    unsigned                         greeting:1;  /* 101 held back */
    unsigned                         head_queued:1;  /* s->out: the 101 */
    unsigned                         close_reason:4; /* closes[] counter */
    unsigned                         sub_slot:1;     /* see below */
    unsigned                         sub_slot_used:1;
    unsigned                         nodelay:1;   /* TCP_NODELAY due */
    unsigned                         flushed:1;   /* written to once */
};


/*
 * Most clients subscribe to a channel or a few: the first subscription
 * of an authenticated session has room right behind the session, in its
 * pool, and only further ones are allocated apart.
 */
#define ngx_http_wirehub_sub_slot(s)                                          \
    ((ngx_http_wirehub_sub_t *)                                               \
     ((u_char *) (s) + ngx_align(sizeof(ngx_http_wirehub_session_t),          \
                                 NGX_ALIGNMENT)))


/*
 * When a token of this exp stops being accepted: exp + leeway, saturated,
 * so that an exp near the top of the range neither wraps nor closes at
 * once; 0 (no exp) never expires.
 */

static ngx_inline time_t
ngx_http_wirehub_expiry(time_t exp, time_t leeway)
{
    if (exp == 0) {
        return 0;
    }

    return (exp > NGX_MAX_TIME_T_VALUE - leeway) ? NGX_MAX_TIME_T_VALUE
                                                  : exp + leeway;
}


/* ngx_http_wirehub_takeover.c */
void ngx_http_wirehub_takeover(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_destroy_pool(void *data);
ngx_uint_t ngx_http_wirehub_compactable(ngx_connection_t *c);

/* ngx_http_wirehub_session.c */
void ngx_http_wirehub_session_start(ngx_http_wirehub_session_t *s);
u_char *ngx_http_wirehub_session_alloc(ngx_http_wirehub_session_t *s,
    size_t size);
void ngx_http_wirehub_read_event(ngx_event_t *rev);
void ngx_http_wirehub_write_event(ngx_event_t *wev);
ngx_int_t ngx_http_wirehub_consume(ngx_http_wirehub_session_t *s,
    u_char *buf, size_t len);
void ngx_http_wirehub_session_close(ngx_http_wirehub_session_t *s,
    ngx_uint_t code, const char *reason);
void ngx_http_wirehub_finalize(ngx_http_wirehub_session_t *s,
    ngx_uint_t linger);
void ngx_http_wirehub_session_cleanup(void *data);


#endif /* _NGX_HTTP_WIREHUB_SESSION_H_INCLUDED_ */
