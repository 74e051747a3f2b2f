
/*
 * Wirehub: the shared types of ngx_http_wirehub_module.
 */


#ifndef _NGX_HTTP_WIREHUB_MODULE_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_http_wirehub_frame.h"
#include "ngx_http_wirehub_jwt.h"
#include "wh_link.h"


#define NGX_HTTP_WIREHUB_VERSION          "0.1.0"

#ifndef NGX_HTTP_UPGRADE_REQUIRED
#define NGX_HTTP_UPGRADE_REQUIRED         426
#endif

#define NGX_HTTP_WIREHUB_MAX_TOKEN        8192
#define NGX_HTTP_WIREHUB_MAX_REF          64

#define NGX_HTTP_WIREHUB_CLOSE_NORMAL     1000
#define NGX_HTTP_WIREHUB_CLOSE_GOING_AWAY 1001
#define NGX_HTTP_WIREHUB_CLOSE_PROTOCOL   1002
#define NGX_HTTP_WIREHUB_CLOSE_POLICY     1008
#define NGX_HTTP_WIREHUB_CLOSE_TOO_BIG    1009
#define NGX_HTTP_WIREHUB_CLOSE_INTERNAL   1011
#define NGX_HTTP_WIREHUB_CLOSE_SLOW       1013
#define NGX_HTTP_WIREHUB_CLOSE_EXPIRED    4401
#define NGX_HTTP_WIREHUB_CLOSE_REVOKED    4403
#define NGX_HTTP_WIREHUB_CLOSE_REPLACED   4408

/* smaller messages are not worth compressing */
#define NGX_HTTP_WIREHUB_DEFLATE_MIN      64

/* how long a closing handshake may take before the socket is dropped */
#define NGX_HTTP_WIREHUB_CLOSE_TIMEOUT    1000

/* nginx reload or shutdown: close frames spread over this many ms */
#define NGX_HTTP_WIREHUB_SHUTDOWN_SPREAD  3000


typedef enum {
    NGX_HTTP_WIREHUB_MODE_NONE = 0,
    NGX_HTTP_WIREHUB_MODE_WEBSOCKET,
    NGX_HTTP_WIREHUB_MODE_ECHO,
    NGX_HTTP_WIREHUB_MODE_API,
    NGX_HTTP_WIREHUB_MODE_METRICS
} ngx_http_wirehub_mode_e;


#define NGX_HTTP_WIREHUB_MAX_WORKERS      64
#define NGX_HTTP_WIREHUB_LATENCY_BUCKETS  12

enum {
    NGX_HTTP_WIREHUB_HS_OK = 0,
    NGX_HTTP_WIREHUB_HS_BAD_REQUEST,
    NGX_HTTP_WIREHUB_HS_UNAUTHORIZED,
    NGX_HTTP_WIREHUB_HS_FORBIDDEN,
    NGX_HTTP_WIREHUB_HS_UNAVAILABLE,
    NGX_HTTP_WIREHUB_HS_RESULTS
};

enum {
    NGX_HTTP_WIREHUB_CLOSED_CLIENT = 0,
    NGX_HTTP_WIREHUB_CLOSED_PROTOCOL,
    NGX_HTTP_WIREHUB_CLOSED_TOO_BIG,
    NGX_HTTP_WIREHUB_CLOSED_SLOW,
    NGX_HTTP_WIREHUB_CLOSED_EXPIRED,
    NGX_HTTP_WIREHUB_CLOSED_IDLE,
    NGX_HTTP_WIREHUB_CLOSED_SHUTDOWN,
    NGX_HTTP_WIREHUB_CLOSED_REFUSED,
    NGX_HTTP_WIREHUB_CLOSE_REASONS
};


/* in shared memory, summed over workers by construction (atomic adds) */
typedef struct {
    ngx_atomic_t                     connections;
    ngx_atomic_t                     handshakes[NGX_HTTP_WIREHUB_HS_RESULTS];
    ngx_atomic_t                     closes[NGX_HTTP_WIREHUB_CLOSE_REASONS];
    ngx_atomic_t                     delivered;
    ngx_atomic_t                     received;
    ngx_atomic_t                     subscriptions;
    ngx_atomic_t                     link_up;
    ngx_atomic_t                     link_reconnects;
    ngx_atomic_t                     latency[NGX_HTTP_WIREHUB_LATENCY_BUCKETS
                                             + 1];
    ngx_atomic_t                     latency_sum_us;
    ngx_atomic_t                     worker_pid[NGX_HTTP_WIREHUB_MAX_WORKERS];
    ngx_atomic_t                     worker_connections[
                                         NGX_HTTP_WIREHUB_MAX_WORKERS];
} ngx_http_wirehub_counters_t;


typedef struct ngx_http_wirehub_out_s      ngx_http_wirehub_out_t;
typedef struct ngx_http_wirehub_link_s     ngx_http_wirehub_link_t;
typedef struct ngx_http_wirehub_channel_s  ngx_http_wirehub_channel_t;
typedef struct ngx_http_wirehub_sub_s      ngx_http_wirehub_sub_t;
typedef struct ngx_http_wirehub_pending_s  ngx_http_wirehub_pending_t;
typedef struct ngx_http_wirehub_session_s  ngx_http_wirehub_session_t;
typedef struct ngx_http_wirehub_zlib_s     ngx_http_wirehub_zlib_t;


/* a link reply, or m == NULL when the link was lost first */
typedef void (*ngx_http_wirehub_reply_pt)(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m);


/* a request sent over the link, waiting for its answer */
struct ngx_http_wirehub_pending_s {
    ngx_rbtree_node_t                node;        /* key: req_id */
    ngx_http_wirehub_reply_pt        handler;
    void                            *data;        /* NULL: cancelled */
    ngx_queue_t                      queue;       /* the owner's list */
    json_t                          *info;        /* ref, channel, ... */
};


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
    ngx_http_wirehub_pending_t      *replay;
    ngx_http_wirehub_out_t          *held;        /* replayed, held */
    ngx_http_wirehub_out_t         **held_last;
    ngx_http_wirehub_out_t          *held_live;   /* live, held */
    ngx_http_wirehub_out_t         **held_live_last;
    json_t                          *ref;
    uint64_t                         up_to;
    uint64_t                         since;
    u_char                           since_epoch[16];
    size_t                           since_epoch_len;
    unsigned                         has_since:1;
    unsigned                         live:1;
};


typedef struct {
    ngx_http_wirehub_jwt_keys_t     *keys;
    ngx_uint_t                       nkeys;
    ngx_http_wirehub_jwt_policy_t    policy;
    ngx_str_t                        issuer;
    ngx_str_t                        audience;
    ngx_str_t                        workspace_claim;
    ngx_str_t                        client_claim;
    time_t                           leeway;

    ngx_str_t                        daemon;      /* unix socket path */
    ngx_flag_t                       daemon_off;
    ngx_uint_t                       used;        /* a location needs it */

    ngx_queue_t                      sessions;    /* this worker's */
    ngx_uint_t                       nsessions;
    ngx_uint_t                       session_seq;

    u_char                          *recv_buf;    /* shared by sessions */
    size_t                           recv_size;
    ngx_http_wirehub_out_t          *free_out;

    ngx_http_wirehub_link_t         *link;
    ngx_http_wirehub_zlib_t         *zlib;
    ngx_shm_zone_t                  *metrics_zone;
    ngx_http_wirehub_counters_t     *counters;
    ngx_rbtree_t                     channels;
    ngx_rbtree_node_t                channels_sentinel;
    ngx_rbtree_t                     session_ids;
    ngx_rbtree_node_t                session_ids_sentinel;
    ngx_rbtree_t                     revoked;
    ngx_rbtree_node_t                revoked_sentinel;

    ngx_http_wirehub_jwt_signer_t   *signer;
} ngx_http_wirehub_main_conf_t;


typedef struct {
    ngx_http_wirehub_mode_e          mode;
    ngx_flag_t                       echo_auth;
    ngx_msec_t                       ping_interval;
    ngx_msec_t                       idle_timeout;
    size_t                           max_message_size;
    size_t                           send_limit;
    ngx_array_t                     *allowed_origins;   /* ngx_str_t */
    ngx_uint_t                       max_connections_per_client;
} ngx_http_wirehub_loc_conf_t;


/* the verified identity of a request, copied into the request pool */
typedef struct {
    ngx_str_t                        workspace;
    ngx_str_t                        client_id;
    ngx_http_wirehub_role_e          role;
    time_t                           exp;
    time_t                           iat;
    ngx_array_t                     *channels;    /* ngx_str_t or NULL */
    ngx_array_t                     *publish;     /* ngx_str_t or NULL */
} ngx_http_wirehub_identity_t;


/* one outgoing frame, shared by every connection it is queued on */
typedef struct {
    ngx_uint_t                       refs;
    size_t                           len;
    u_char                           data[1];
} ngx_http_wirehub_out_frame_t;


struct ngx_http_wirehub_out_s {
    ngx_http_wirehub_out_t          *next;
    ngx_http_wirehub_out_frame_t    *frame;
    size_t                           sent;
};


struct ngx_http_wirehub_session_s {
    ngx_http_request_t              *request;
    ngx_connection_t                *connection;
    ngx_http_wirehub_loc_conf_t     *conf;
    ngx_http_wirehub_identity_t     *identity;   /* NULL for echo */

    ngx_str_node_t                   id_node;    /* main conf session_ids */
    ngx_str_t                        session_id;
    ngx_str_t                        client_name;
    ngx_http_wirehub_sub_t          *subs;
    ngx_uint_t                       nsubs;
    ngx_queue_t                      pending;
    ngx_str_t                        client_type;
    ngx_str_t                        masked_request;

    ngx_queue_t                      queue;      /* main conf sessions */

    ngx_http_wirehub_frame_parser_t  parser;

    u_char                          *msg;        /* message reassembly */
    size_t                           msg_len;
    size_t                           msg_cap;

    ngx_http_wirehub_out_t          *out;
    ngx_http_wirehub_out_t         **out_last;
    size_t                           out_bytes;

    ngx_event_t                      timer;
    ngx_event_handler_pt             http_read_handler;
    ngx_event_handler_pt             http_write_handler;
    ngx_http_wirehub_main_conf_t    *main_conf;
    ngx_msec_t                       last_rx;
    ngx_msec_t                       shutdown_at;
    ngx_msec_t                       last_ping;
    ngx_msec_t                       close_deadline;
    time_t                           expires;    /* exp + leeway, or 0 */
    ngx_uint_t                       close_reason;

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
    unsigned                         opened:1;    /* SESSION_OPEN sent */
};


/* per-request context: the identity and the masked request line */
typedef struct {
    ngx_http_wirehub_identity_t     *identity;
    ngx_str_t                        masked_request;
    ngx_http_wirehub_session_t      *session;
    void                            *api_call;
} ngx_http_wirehub_ctx_t;


extern ngx_module_t  ngx_http_wirehub_module;


/* ngx_http_wirehub_auth.c */
ngx_int_t ngx_http_wirehub_mask_request(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx);
ngx_int_t ngx_http_wirehub_authenticate(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx, ngx_uint_t *status, const char **code,
    ngx_str_t *message);
ngx_http_wirehub_identity_t *ngx_http_wirehub_verify_token(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_log_t *log, ngx_pool_t *pool,
    u_char *token, size_t len, const char **code, ngx_str_t *message);
ngx_http_wirehub_ctx_t *ngx_http_wirehub_get_ctx(ngx_http_request_t *r);
ngx_http_wirehub_identity_t *ngx_http_wirehub_identity_copy(
    ngx_pool_t *pool, ngx_http_wirehub_identity_t *id);

/* ngx_http_wirehub_deflate.c */
ngx_int_t ngx_http_wirehub_deflate_negotiate(ngx_http_request_t *r,
    ngx_str_t *response);
ngx_int_t ngx_http_wirehub_inflate(ngx_http_wirehub_main_conf_t *wmcf,
    u_char *in, size_t len, size_t max, u_char **out, size_t *out_len,
    ngx_log_t *log);
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_deflate_frame(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_log_t *log, unsigned opcode,
    u_char *payload, size_t len);

/* ngx_http_wirehub_metrics.c */
ngx_int_t ngx_http_wirehub_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_observe_latency(ngx_http_wirehub_main_conf_t *wmcf,
    uint64_t published_ms);
uint64_t ngx_http_wirehub_now_us(void);
ngx_int_t ngx_http_wirehub_metrics_handler(ngx_http_request_t *r);

#define ngx_http_wirehub_stat(wmcf, field, n)                                 \
    if ((wmcf)->counters) {                                                   \
        (void) ngx_atomic_fetch_add(&(wmcf)->counters->field, (n));           \
    }

/* ngx_http_wirehub_log.c */
size_t ngx_http_wirehub_mask_tokens(u_char *buf, size_t len);
void ngx_http_wirehub_log_init(ngx_cycle_t *cycle);
ngx_int_t ngx_http_wirehub_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_wirehub_post_read(ngx_http_request_t *r);
ngx_int_t ngx_http_wirehub_log_phase(ngx_http_request_t *r);

/* ngx_http_wirehub_handshake.c */
ngx_int_t ngx_http_wirehub_websocket_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_wirehub_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, ngx_str_t *message);
ngx_int_t ngx_http_wirehub_send_body(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, ngx_buf_t *b);
ngx_table_elt_t *ngx_http_wirehub_header(ngx_http_request_t *r,
    const char *name, size_t len);
ngx_int_t ngx_http_wirehub_add_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);

/* ngx_http_wirehub_session.c */
void ngx_http_wirehub_session_start(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_read_event(ngx_event_t *rev);
void ngx_http_wirehub_write_event(ngx_event_t *wev);
ngx_int_t ngx_http_wirehub_consume(ngx_http_wirehub_session_t *s,
    u_char *buf, size_t len);

/* ngx_http_wirehub_takeover.c */
void ngx_http_wirehub_attach_event(ngx_event_t *ev);
void ngx_http_wirehub_finalize(ngx_http_wirehub_session_t *s,
    ngx_uint_t linger);
void ngx_http_wirehub_close(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_linger(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_session_cleanup(void *data);
ngx_int_t ngx_http_wirehub_send_text(ngx_http_wirehub_session_t *s,
    u_char *data, size_t len);
ngx_int_t ngx_http_wirehub_send_json(ngx_http_wirehub_session_t *s,
    json_t *msg);
ngx_int_t ngx_http_wirehub_send_frame(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_out_frame_t *frame);
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_frame_create(
    ngx_log_t *log, unsigned opcode, u_char *payload, size_t len);

/* ngx_http_wirehub_output.c */
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_session_frame(
    ngx_http_wirehub_session_t *s, unsigned opcode, u_char *payload,
    size_t len);
ngx_int_t ngx_http_wirehub_flush(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_drop_queue(ngx_http_wirehub_session_t *s,
    ngx_uint_t keep_partial);
void ngx_http_wirehub_frame_release(ngx_http_wirehub_out_frame_t *frame);
void ngx_http_wirehub_session_close(ngx_http_wirehub_session_t *s,
    ngx_uint_t code, const char *reason);

/* ngx_http_wirehub_link.c */
ngx_int_t ngx_http_wirehub_link_init(ngx_cycle_t *cycle,
    ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_link_exit(ngx_http_wirehub_main_conf_t *wmcf);
ngx_int_t ngx_http_wirehub_link_up(ngx_http_wirehub_main_conf_t *wmcf);
ngx_int_t ngx_http_wirehub_link_egress(ngx_http_wirehub_main_conf_t *wmcf);
ngx_int_t ngx_http_wirehub_link_send(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
ngx_http_wirehub_pending_t *ngx_http_wirehub_link_request(
    ngx_http_wirehub_main_conf_t *wmcf, wh_link_msg_t *m,
    ngx_http_wirehub_reply_pt handler, void *data);
void ngx_http_wirehub_pending_cancel(ngx_http_wirehub_pending_t *p);
void ngx_http_wirehub_link_state(ngx_http_wirehub_main_conf_t *wmcf,
    json_t *stats);

/* ngx_http_wirehub_channels.c */
void ngx_http_wirehub_channels_init(ngx_http_wirehub_main_conf_t *wmcf);
ngx_int_t ngx_http_wirehub_subscribe(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref);
ngx_int_t ngx_http_wirehub_unsubscribe(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref);
ngx_int_t ngx_http_wirehub_publish(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref);
void ngx_http_wirehub_session_unsubscribe_all(ngx_http_wirehub_session_t *s);
ngx_int_t ngx_http_wirehub_channel_error(ngx_http_wirehub_session_t *s,
    const char *code, const char *message, json_t *name, json_t *ref);
void ngx_http_wirehub_channels_link_up(ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_channels_link_down(ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_channel_subscribed(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
void ngx_http_wirehub_channel_message(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);

/* ngx_http_wirehub_sessions.c (the daemon's view of sessions) */
void ngx_http_wirehub_session_open(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_session_update(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_session_gone(ngx_http_wirehub_session_t *s,
    const char *reason);
void ngx_http_wirehub_sessions_link_up(ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_session_accepted(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
ngx_http_wirehub_session_t *ngx_http_wirehub_session_find(
    ngx_http_wirehub_main_conf_t *wmcf, wh_str_t *id);

/* ngx_http_wirehub_commands.c */
void ngx_http_wirehub_commands_init(ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_command(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
void ngx_http_wirehub_session_kick(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
ngx_int_t ngx_http_wirehub_command_result(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref);
void ngx_http_wirehub_revoke(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
void ngx_http_wirehub_broadcast(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m);
ngx_int_t ngx_http_wirehub_is_revoked(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_identity_t *id);

/* ngx_http_wirehub_api.c */
ngx_int_t ngx_http_wirehub_api_handler(ngx_http_request_t *r);

/* ngx_http_wirehub_messages.c */
void ngx_http_wirehub_message(ngx_http_wirehub_session_t *s, u_char *data,
    size_t len);
ngx_int_t ngx_http_wirehub_send_connection_status(
    ngx_http_wirehub_session_t *s, ngx_uint_t active_clients);
ngx_int_t ngx_http_wirehub_send_client_error(ngx_http_wirehub_session_t *s,
    const char *code, const char *message, json_t *ref);
ngx_int_t ngx_http_wirehub_reply(ngx_http_wirehub_session_t *s,
    json_t *reply, json_t *ref);
json_t *ngx_http_wirehub_timestamp(void);


#endif /* _NGX_HTTP_WIREHUB_MODULE_H_INCLUDED_ */
