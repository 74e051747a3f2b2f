
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


typedef struct ngx_http_wirehub_out_s  ngx_http_wirehub_out_t;


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

    ngx_queue_t                      sessions;    /* this worker's */
    ngx_uint_t                       nsessions;
    ngx_uint_t                       session_seq;

    u_char                          *recv_buf;    /* shared by sessions */
    size_t                           recv_size;
    ngx_http_wirehub_out_t          *free_out;
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


typedef struct {
    ngx_http_request_t              *request;
    ngx_connection_t                *connection;
    ngx_http_wirehub_loc_conf_t     *conf;
    ngx_http_wirehub_identity_t     *identity;   /* NULL for echo */

    ngx_str_t                        session_id;
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

    unsigned                         upgraded:1;
    unsigned                         close_sent:1;
    unsigned                         close_received:1;
    unsigned                         failed:1;
    unsigned                         shutting_down:1;
    unsigned                         closed:1;
} ngx_http_wirehub_session_t;


/* per-request context: the identity and the masked request line */
typedef struct {
    ngx_http_wirehub_identity_t     *identity;
    ngx_str_t                        masked_request;
    ngx_http_wirehub_session_t      *session;
} ngx_http_wirehub_ctx_t;


extern ngx_module_t  ngx_http_wirehub_module;


/* ngx_http_wirehub_auth.c */
ngx_int_t ngx_http_wirehub_mask_request(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx);
ngx_int_t ngx_http_wirehub_authenticate(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx, ngx_uint_t *status, const char **code,
    ngx_str_t *message);
ngx_http_wirehub_identity_t *ngx_http_wirehub_verify_token(
    ngx_http_request_t *r, ngx_pool_t *pool, u_char *token, size_t len,
    const char **code, ngx_str_t *message);
ngx_http_wirehub_ctx_t *ngx_http_wirehub_get_ctx(ngx_http_request_t *r);

/* ngx_http_wirehub_handshake.c */
ngx_int_t ngx_http_wirehub_websocket_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_wirehub_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, ngx_str_t *message);

/* ngx_http_wirehub_session.c */
void ngx_http_wirehub_session_start(ngx_http_wirehub_session_t *s);
void ngx_http_wirehub_session_cleanup(void *data);
ngx_int_t ngx_http_wirehub_send_text(ngx_http_wirehub_session_t *s,
    u_char *data, size_t len);
ngx_int_t ngx_http_wirehub_send_json(ngx_http_wirehub_session_t *s,
    json_t *msg);
ngx_int_t ngx_http_wirehub_send_frame(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_out_frame_t *frame);
ngx_http_wirehub_out_frame_t *ngx_http_wirehub_frame_create(
    ngx_log_t *log, unsigned opcode, u_char *payload, size_t len);
void ngx_http_wirehub_frame_release(ngx_http_wirehub_out_frame_t *frame);
void ngx_http_wirehub_session_close(ngx_http_wirehub_session_t *s,
    ngx_uint_t code, const char *reason);
void ngx_http_wirehub_shutdown_sessions(ngx_cycle_t *cycle);

/* ngx_http_wirehub_messages.c */
void ngx_http_wirehub_message(ngx_http_wirehub_session_t *s, u_char *data,
    size_t len);
ngx_int_t ngx_http_wirehub_send_connection_status(
    ngx_http_wirehub_session_t *s, ngx_uint_t active_clients);
ngx_int_t ngx_http_wirehub_send_client_error(ngx_http_wirehub_session_t *s,
    const char *code, const char *message, json_t *ref);
json_t *ngx_http_wirehub_timestamp(void);


#endif /* _NGX_HTTP_WIREHUB_MODULE_H_INCLUDED_ */
