
/*
 * Wirehub: what a WebSocket message means.  Protocol v1 (JSON messages
 * dispatched by type to the features) and the echo endpoint are the two
 * tables of session handlers the handshake chooses from.
 */


#include "ngx_http_wirehub_messages.h"
#include "ngx_http_wirehub_auth.h"
#include "ngx_http_wirehub_authz.h"
#include "ngx_http_wirehub_channels.h"
#include "ngx_http_wirehub_commands.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_limits.h"
#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_presence.h"
#include "ngx_http_wirehub_reply.h"
#include "ngx_http_wirehub_rpc.h"
#include "wh_json.h"
#include "wh_json_check.h"


#define NGX_HTTP_WIREHUB_MAX_CLIENT_TYPE  32
#define NGX_HTTP_WIREHUB_MAX_CLIENT_NAME  128

/* a refresh verifies its token in a pool of its own, freed at once */
#define NGX_HTTP_WIREHUB_REFRESH_POOL     1024


/* msg as parsed, and raw: the bytes it came in, to forward unchanged */
typedef ngx_int_t (*ngx_http_wirehub_message_pt)(
    ngx_http_wirehub_session_t *s, json_t *msg, json_t *ref, ngx_str_t *raw);


/* the same read by a scan, without a tree: ref is the text of "ref" (a
 * string without escapes) or empty; NGX_DECLINED, before anything is
 * done, sends the message to jansson and to the handler */
typedef ngx_int_t (*ngx_http_wirehub_plain_message_pt)(
    ngx_http_wirehub_session_t *s, ngx_str_t *raw, wh_str_t ref);


typedef struct {
    ngx_str_t                           type;
    ngx_http_wirehub_message_pt         handler;
    ngx_http_wirehub_plain_message_pt   plain;      /* NULL: none */
} ngx_http_wirehub_message_handler_t;


static ngx_int_t ngx_http_wirehub_ping(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref, ngx_str_t *raw);
static ngx_int_t ngx_http_wirehub_register(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref, ngx_str_t *raw);
static ngx_int_t ngx_http_wirehub_refresh(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref, ngx_str_t *raw);
static ngx_int_t ngx_http_wirehub_event(ngx_http_wirehub_session_t *s,
    const char *type, size_t len, ngx_str_t *raw, json_t *ref);
static ngx_int_t ngx_http_wirehub_client_open(ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_client_message(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *data, size_t len);
static void ngx_http_wirehub_client_closed(ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_echo_message(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *data, size_t len);
static ngx_http_wirehub_message_handler_t *ngx_http_wirehub_message_handler(
    u_char *type, size_t len);
static ngx_int_t ngx_http_wirehub_plain_message(
    ngx_http_wirehub_session_t *s, u_char *data, size_t len);
static ngx_uint_t ngx_http_wirehub_link_hog(ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_link_account(ngx_http_wirehub_session_t *s,
    uint64_t mark);


const ngx_http_wirehub_session_handlers_t  ngx_http_wirehub_client_handlers = {
    ngx_http_wirehub_client_open,
    NULL,
    ngx_http_wirehub_client_message,
    ngx_http_wirehub_client_closed,
    ngx_http_wirehub_channels_drained
};


const ngx_http_wirehub_session_handlers_t  ngx_http_wirehub_echo_handlers = {
    NULL,
    NULL,
    ngx_http_wirehub_echo_message,
    NULL,
    NULL
};


static ngx_http_wirehub_message_handler_t  ngx_http_wirehub_handlers[] = {
    { ngx_string("ping"), ngx_http_wirehub_ping, NULL },
    { ngx_string("heartbeat"), ngx_http_wirehub_ping, NULL },
    { ngx_string("register"), ngx_http_wirehub_register, NULL },
    { ngx_string("refresh"), ngx_http_wirehub_refresh, NULL },
    { ngx_string("subscribe"), ngx_http_wirehub_subscribe, NULL },
    { ngx_string("unsubscribe"), ngx_http_wirehub_unsubscribe, NULL },
    { ngx_string("publish"), ngx_http_wirehub_publish, NULL },
    { ngx_string("command_result"), ngx_http_wirehub_command_result,
      ngx_http_wirehub_command_result_plain },
    { ngx_string("rpc"), ngx_http_wirehub_rpc, NULL },
    { ngx_null_string, NULL, NULL }
};


/*
 * Upgraded: with wirehubd, connection_status follows its SESSION_ACCEPT;
 * without a link (wirehub_daemon off) the client is greeted at once.
 */

static ngx_int_t
ngx_http_wirehub_client_open(ngx_http_wirehub_session_t *s)
{
    ngx_http_wirehub_rpc_init(s);

    if (s->main_conf->link) {
        ngx_http_wirehub_session_open(s);
        return NGX_OK;
    }

    return ngx_http_wirehub_send_connection_status(s, s->main_conf->nsessions);
}


static void
ngx_http_wirehub_client_closed(ngx_http_wirehub_session_t *s)
{
    ngx_http_wirehub_session_unsubscribe_all(s);
    ngx_http_wirehub_rpc_detach_all(s);
    ngx_http_wirehub_session_gone(s, s->shutting_down ? "shutdown"
                                                      : "closed");
}


static void
ngx_http_wirehub_echo_message(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *data, size_t len)
{
    ngx_http_wirehub_out_frame_t  *frame;

    frame = ngx_http_wirehub_session_frame(s, opcode, data, len);

    if (frame == NULL) {
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_INTERNAL,
                                       "out of memory");
        return;
    }

    (void) ngx_http_wirehub_send_frame(s, frame);
    ngx_http_wirehub_frame_release(frame);
}


static void
ngx_http_wirehub_client_message(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *data, size_t len)
{
    size_t                               n, backlog;
    json_t                              *msg, *type, *ref;
    uint64_t                             mark;
    const char                          *name;
    ngx_str_t                            raw;
    json_error_t                         err;
    ngx_http_wirehub_message_handler_t  *h;

    if (ngx_http_wirehub_limit_message(s, opcode, data, len) != NGX_OK) {
        return;
    }

    if (opcode != WH_WS_OP_TEXT) {
        (void) ngx_http_wirehub_send_client_error(s, "bad_request",
                                        "binary messages are not supported",
                                        NULL);
        return;
    }

    ngx_http_wirehub_stat(s->main_conf, received, 1);

    if (ngx_http_wirehub_plain_message(s, data, len) != NGX_DECLINED) {
        return;
    }

    msg = json_loadb((char *) data, len, JSON_REJECT_DUPLICATES, &err);

    if (msg == NULL || !json_is_object(msg)) {
        (void) ngx_http_wirehub_send_client_error(s, "bad_request",
                                     msg ? "a message is a JSON object"
                                         : "malformed JSON",
                                     NULL);
        json_decref(msg);
        return;
    }

    ref = json_object_get(msg, "ref");

    if (ref && (!json_is_string(ref)
                || json_string_length(ref) > NGX_HTTP_WIREHUB_MAX_REF))
    {
        (void) ngx_http_wirehub_send_client_error(s, "bad_request",
                                "\"ref\" is a string of up to 64 bytes", NULL);
        json_decref(msg);
        return;
    }

    type = json_object_get(msg, "type");

    if (!json_is_string(type)) {
        (void) ngx_http_wirehub_send_client_error(s, "bad_request",
                                     "\"type\" is required", ref);
        json_decref(msg);
        return;
    }

    name = json_string_value(type);
    n = json_string_length(type);
    raw.data = data;
    raw.len = len;

    if (ngx_http_wirehub_link_hog(s)) {
        json_decref(msg);
        return;
    }

    mark = ngx_http_wirehub_link_queued(s->main_conf, &backlog);

    h = ngx_http_wirehub_message_handler((u_char *) name, n);

    if (h->handler) {
        (void) h->handler(s, msg, ref, &raw);

    } else {
        (void) ngx_http_wirehub_event(s, name, n, &raw, ref);
    }

    json_decref(msg);

    ngx_http_wirehub_link_account(s, mark);
}


/* the handler of a type; the table's end (no handler) for any other */

static ngx_http_wirehub_message_handler_t *
ngx_http_wirehub_message_handler(u_char *type, size_t len)
{
    ngx_http_wirehub_message_handler_t  *h;

    for (h = ngx_http_wirehub_handlers; h->handler; h++) {
        if (h->type.len == len && ngx_strncmp(h->type.data, type, len) == 0)
        {
            break;
        }
    }

    return h;
}


/*
 * A device answers every command: a result read without building a tree
 * (jansson's tree, built only to be freed, showed in a command's cost).
 * The scan takes what jansson would take as it is (valid JSON with no
 * \u0000, an object, no name twice, no name escaped), and declines all
 * else: jansson then reads it, and gives the errors.
 */

static ngx_int_t
ngx_http_wirehub_plain_message(ngx_http_wirehub_session_t *s, u_char *data,
    size_t len)
{
    size_t                               backlog;
    uint64_t                             mark;
    ngx_int_t                            rc;
    wh_str_t                             v[2], type, ref;
    ngx_str_t                            raw;
    ngx_http_wirehub_message_handler_t  *h;
    static const char *const             names[] = { "type", "ref" };

    /* the names first, cheaper than the checks (any text is scanned
     * safely), and most messages have no plain handler */

    if (!wh_json_members((char *) data, len, names, v, 2)
        || !wh_json_plain_string(v[0], &type))
    {
        return NGX_DECLINED;
    }

    h = ngx_http_wirehub_message_handler((u_char *) type.data, type.len);

    if (h->plain == NULL
        || (v[1].len
            && (!wh_json_plain_string(v[1], &ref)
                || ref.len > NGX_HTTP_WIREHUB_MAX_REF))
        || !wh_json_check_strict((char *) data, len))
    {
        return NGX_DECLINED;
    }

    if (ngx_http_wirehub_link_hog(s)) {
        return NGX_OK;
    }

    mark = ngx_http_wirehub_link_queued(s->main_conf, &backlog);
    raw.data = data;
    raw.len = len;

    rc = h->plain(s, &raw, v[1]);

    if (rc != NGX_DECLINED) {
        ngx_http_wirehub_link_account(s, mark);
    }

    return rc == NGX_DECLINED ? NGX_DECLINED : NGX_OK;
}


/*
 * The link to wirehubd is shared by every session of the worker, so one
 * session must not fill it: when the link is backed up (wirehubd is
 * behind), a session with more than its share (its send limit) still
 * waiting to be written is closed alone with 1013, and when the link is
 * near its bound every sender is; the link itself is never dropped for
 * what clients send.
 */

static ngx_uint_t
ngx_http_wirehub_link_hog(ngx_http_wirehub_session_t *s)
{
    size_t    backlog;
    uint64_t  queued;

    queued = ngx_http_wirehub_link_queued(s->main_conf, &backlog);

    if (s->link_mark <= queued - backlog) {
        s->link_bytes = 0;
    }

    if (backlog < NGX_HTTP_WIREHUB_LINK_FULL
        && (backlog < NGX_HTTP_WIREHUB_LINK_BUSY
            || s->link_bytes <= s->conf->send_limit))
    {
        return 0;
    }

    ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                  "wirehub: %uz bytes of this connection wait on a link "
                  "with %uz queued, closing", s->link_bytes, backlog);

    ngx_http_wirehub_stat(s->main_conf, link_refused, 1);
    ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_SLOW,
                                   "wirehubd is busy");
    return 1;
}


static void
ngx_http_wirehub_link_account(ngx_http_wirehub_session_t *s, uint64_t mark)
{
    size_t    backlog;
    uint64_t  queued;

    queued = ngx_http_wirehub_link_queued(s->main_conf, &backlog);

    if (queued > mark) {
        s->link_bytes += (size_t) (queued - mark);
        s->link_mark = queued;
    }
}


/*
 * A message of another type is a client event (device_discovery, ...):
 * POSTed to the application with wirehub_event_pass, and forwarded by
 * wirehubd to MQTT when an egress rule is configured: both when both are.
 * Its workspace and client come from the verified token, never the
 * message.
 */

static ngx_int_t
ngx_http_wirehub_event(ngx_http_wirehub_session_t *s, const char *type,
    size_t len, ngx_str_t *raw, json_t *ref)
{
    size_t         i;
    ngx_int_t      rc;
    ngx_uint_t     egress;
    wh_link_msg_t  m;

    egress = ngx_http_wirehub_link_egress(s->main_conf);

    if (s->identity == NULL || (!egress && s->conf->event_pass.len == 0)) {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                                                  "unknown message type",
                                                  ref);
    }

    if (len == 0 || len > NGX_HTTP_WIREHUB_MAX_EVENT) {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "an event type is 1 to 64 of [a-z0-9_-]", ref);
    }

    for (i = 0; i < len; i++) {
        if (!((type[i] >= 'a' && type[i] <= 'z')
              || (type[i] >= '0' && type[i] <= '9')
              || type[i] == '_' || type[i] == '-'))
        {
            return ngx_http_wirehub_send_client_error(s, "bad_request",
                       "an event type is 1 to 64 of [a-z0-9_-]", ref);
        }
    }

    rc = ngx_http_wirehub_rpc_event(s, type, len, raw, ref);

    if ((rc != NGX_OK && rc != NGX_DECLINED) || !egress) {
        return rc;
    }

    ngx_memzero(&m, sizeof(wh_link_msg_t));
    m.type = WH_LINK_EVENT;
    m.workspace.data = (char *) s->identity->workspace.data;
    m.workspace.len = s->identity->workspace.len;
    m.client_id.data = (char *) s->identity->client_id.data;
    m.client_id.len = s->identity->client_id.len;
    m.session.data = (char *) s->id_node.str.data;
    m.session.len = s->id_node.str.len;
    m.name.data = type;
    m.name.len = len;
    m.body.data = (char *) raw->data;
    m.body.len = raw->len;

    if (ngx_http_wirehub_link_send(s->main_conf, &m) != NGX_OK) {
        return ngx_http_wirehub_send_client_error(s, "unavailable",
                   "wirehubd is not reachable, retry", ref);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_ping(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref, ngx_str_t *raw)
{
    return ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:o}", "type", "pong",
                         "timestamp", ngx_http_wirehub_timestamp()),
               ref);
}


static ngx_int_t
ngx_http_wirehub_register(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref, ngx_str_t *raw)
{
    u_char      *p;
    size_t       i, n;
    json_t      *type, *name;
    const char  *t;

    type = json_object_get(msg, "client_type");
    name = json_object_get(msg, "client_name");

    if (!json_is_string(type)
        || json_string_length(type) == 0
        || json_string_length(type) > NGX_HTTP_WIREHUB_MAX_CLIENT_TYPE
        || (name && (!json_is_string(name)
                     || json_string_length(name)
                        > NGX_HTTP_WIREHUB_MAX_CLIENT_NAME)))
    {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "\"client_type\" is a short string, \"client_name\" "
                   "a string of up to 128 bytes", ref);
    }

    t = json_string_value(type);
    n = json_string_length(type);

    for (i = 0; i < n; i++) {
        if (!(isalnum((u_char) t[i]) || t[i] == '_' || t[i] == '-')) {
            return ngx_http_wirehub_send_client_error(s, "bad_request",
                       "\"client_type\" is [A-Za-z0-9_-]", ref);
        }
    }

    /* the type is kept for the session's life: allocate only when longer */

    if (n > s->client_type.len) {
        p = ngx_http_wirehub_session_alloc(s, n);
        if (p == NULL) {
            return NGX_ERROR;
        }

        s->client_type.data = p;
    }

    ngx_memcpy(s->client_type.data, t, n);
    s->client_type.len = n;

    if (name && json_string_length(name) > s->client_name.len) {
        p = ngx_http_wirehub_session_alloc(s, json_string_length(name));
        if (p == NULL) {
            return NGX_ERROR;
        }

        s->client_name.data = p;
    }

    if (name) {
        s->client_name.len = json_string_length(name);
        ngx_memcpy(s->client_name.data, json_string_value(name),
                   s->client_name.len);
    }

    ngx_http_wirehub_session_update(s);

    return ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:s%,s:o}", "type", "registered",
                         "client_type", s->client_type.data,
                         s->client_type.len,
                         "timestamp", ngx_http_wirehub_timestamp()),
               ref);
}


/*
 * A new token for the same workspace and client extends the session; the
 * connection keeps its channels, and the new token's expiry applies.
 */

static ngx_int_t
ngx_http_wirehub_refresh(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref, ngx_str_t *raw)
{
    char                         err[200];
    json_t                      *token;
    ngx_str_t                    message;
    const char                  *code;
    ngx_pool_t                  *pool;
    ngx_http_wirehub_denial_t    denial;
    ngx_http_wirehub_resource_t  res;
    ngx_http_wirehub_identity_t *id, *old;

    token = json_object_get(msg, "token");

    if (!json_is_string(token) || json_string_length(token) == 0) {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                                                  "\"token\" is required",
                                                  ref);
    }

    /* a scratch pool: refreshes must not grow the connection's memory */

    pool = ngx_create_pool(NGX_HTTP_WIREHUB_REFRESH_POOL,
                           s->connection->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    id = ngx_http_wirehub_verify_token(s->main_conf, s->connection->log, pool,
                                       (u_char *) json_string_value(token),
                                       json_string_length(token),
                                       &code, &message);
    if (id == NULL) {
        if (code == NULL) {
            ngx_destroy_pool(pool);
            return NGX_ERROR;
        }

        ngx_snprintf((u_char *) err, sizeof(err) - 1, "token refused: %V%Z",
                     &message);
        ngx_destroy_pool(pool);

        return ngx_http_wirehub_send_client_error(s, "forbidden", err, ref);
    }

    old = s->identity;

    ngx_memzero(&res, sizeof(ngx_http_wirehub_resource_t));
    res.workspace = old->workspace;
    res.client_id = old->client_id;

    if (ngx_http_wirehub_authorize(s->main_conf, id,
                                   NGX_HTTP_WIREHUB_ACT_REFRESH, &res,
                                   &denial, s->connection->log)
        != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return ngx_http_wirehub_send_client_error(s, "forbidden",
                                                  denial.message, ref);
    }

    s->expires = ngx_http_wirehub_expiry(id->exp, s->main_conf->leeway);
    old->exp = id->exp;

    ngx_destroy_pool(pool);

    return ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:I,s:o}", "type", "refreshed",
                         "expires", (json_int_t) old->exp,
                         "timestamp", ngx_http_wirehub_timestamp()),
               ref);
}
