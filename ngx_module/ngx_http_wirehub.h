
/*
 * Wirehub: what every layer of ngx_http_wirehub_module shares: the
 * configuration, the verified identity of a request, and the protocol's
 * constants.  Each concern has a header of its own (ngx_http_wirehub_*.h);
 * a file includes the ones it calls, which shows its place in the layers:
 *
 *   entry points   module, handshake, api, metrics, messages, link_handlers
 *   features       channels, publish, commands, presence, reply, authz,
 *                  limits
 *   connection     session (output, session, takeover), writes
 *   plumbing       http, log, link, counters, deflate, auth
 *   codecs         frame, utf8, jwt, rate (and common/: link codec,
 *                  channels)
 */


#ifndef _NGX_HTTP_WIREHUB_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#include "ngx_http_wirehub_jwt.h"
#include "ngx_http_wirehub_rate.h"
#include "wh_link.h"
#include "wh_version.h"


#define NGX_HTTP_WIREHUB_VERSION          WH_VERSION

#ifndef NGX_HTTP_UPGRADE_REQUIRED
#define NGX_HTTP_UPGRADE_REQUIRED         426
#endif

#define NGX_HTTP_WIREHUB_MAX_TOKEN        8192
#define NGX_HTTP_WIREHUB_JWT_CACHE        4096  /* signatures, a worker */
#define NGX_HTTP_WIREHUB_TOKEN_CACHE      4096  /* tokens, a worker */
#define NGX_HTTP_WIREHUB_MAX_REF          64
#define NGX_HTTP_WIREHUB_MAX_EVENT        64    /* bytes of an event type */

/* close codes: RFC 6455 section 7.4.1, and Wirehub's own 44xx */
#define NGX_HTTP_WIREHUB_CLOSE_NORMAL     1000
#define NGX_HTTP_WIREHUB_CLOSE_GOING_AWAY 1001
#define NGX_HTTP_WIREHUB_CLOSE_PROTOCOL   1002
#define NGX_HTTP_WIREHUB_CLOSE_BAD_DATA   1007
#define NGX_HTTP_WIREHUB_CLOSE_POLICY     1008
#define NGX_HTTP_WIREHUB_CLOSE_TOO_BIG    1009
#define NGX_HTTP_WIREHUB_CLOSE_INTERNAL   1011
#define NGX_HTTP_WIREHUB_CLOSE_SLOW       1013
#define NGX_HTTP_WIREHUB_CLOSE_EXPIRED    4401
#define NGX_HTTP_WIREHUB_CLOSE_REVOKED    4403
#define NGX_HTTP_WIREHUB_CLOSE_REPLACED   4408


typedef enum {
    NGX_HTTP_WIREHUB_MODE_NONE = 0,
    NGX_HTTP_WIREHUB_MODE_WEBSOCKET,
    NGX_HTTP_WIREHUB_MODE_ECHO,
    NGX_HTTP_WIREHUB_MODE_API,
    NGX_HTTP_WIREHUB_MODE_METRICS,
    NGX_HTTP_WIREHUB_MODE_SSE
} ngx_http_wirehub_mode_e;


typedef struct ngx_http_wirehub_out_s        ngx_http_wirehub_out_t;
typedef struct ngx_http_wirehub_link_s       ngx_http_wirehub_link_t;
typedef struct ngx_http_wirehub_channel_s    ngx_http_wirehub_channel_t;
typedef struct ngx_http_wirehub_sub_s        ngx_http_wirehub_sub_t;
typedef struct ngx_http_wirehub_pending_s    ngx_http_wirehub_pending_t;
typedef struct ngx_http_wirehub_session_s    ngx_http_wirehub_session_t;
typedef struct ngx_http_wirehub_zlib_s       ngx_http_wirehub_zlib_t;
typedef struct ngx_http_wirehub_counters_s   ngx_http_wirehub_counters_t;
typedef struct ngx_http_wirehub_token_cache_s  ngx_http_wirehub_token_cache_t;
typedef struct ngx_http_wirehub_write_mark_s  ngx_http_wirehub_write_mark_t;


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
    ngx_uint_t                       locations;   /* a location uses us */

    ngx_queue_t                      sessions;    /* this worker's */
    ngx_uint_t                       nsessions;
    ngx_uint_t                       session_seq;

    u_char                          *recv_buf;    /* shared by sessions */
    size_t                           recv_size;
    ngx_http_wirehub_out_t          *free_out;
    ngx_queue_t                      writes;      /* write events queued */
    ngx_event_t                      write_slice;
    ngx_http_wirehub_write_mark_t   *free_marks;  /* writes.c */

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
    ngx_uint_t                       token_cache_size;  /* 0: none */
    ngx_http_wirehub_token_cache_t  *tokens;      /* verified, remembered */
    ngx_uint_t                       jwt_cache_size;  /* 0: none */
    ngx_http_wirehub_jwt_cache_t    *jwt_cache;   /* signatures found good */

    ngx_http_wirehub_jwt_signer_t   *signer;

    ngx_shm_zone_t                  *workspace_zone;
    size_t                           workspace_zone_size;
    ngx_uint_t                       workspace_limits;  /* a location has */
    ngx_queue_t                      workspace_holds;   /* this worker's */
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
    ngx_http_wirehub_rate_t          message_rate;
    ngx_uint_t                       max_subscriptions;
    ngx_uint_t                       max_connections_per_workspace;
    time_t                           sign_ttl;    /* s; 0: no exp */
    ngx_str_t                        rpc_pass;    /* location prefix */
    ngx_str_t                        event_pass;
    ngx_uint_t                       rpc_max_inflight;
    ngx_msec_t                       rpc_timeout;
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


/* per-request context */
typedef struct {
    ngx_http_wirehub_identity_t     *identity;
    ngx_http_wirehub_session_t      *session;
    void                            *api_call;

    /* nginx's, while the session still shares the connection with it */
    ngx_event_handler_pt             http_read_handler;
    ngx_event_handler_pt             http_write_handler;
} ngx_http_wirehub_ctx_t;


extern ngx_module_t  ngx_http_wirehub_module;


/* bytes for the link codec, which knows no nginx types */
static ngx_inline wh_str_t
ngx_http_wirehub_wh_str(u_char *data, size_t len)
{
    wh_str_t  s;

    s.data = (const char *) data;
    s.len = len;

    return s;
}

#define ngx_http_wirehub_wh_ngx_str(str)                                     \
    ngx_http_wirehub_wh_str((str)->data, (str)->len)


#endif /* _NGX_HTTP_WIREHUB_H_INCLUDED_ */
