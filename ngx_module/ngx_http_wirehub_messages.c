
/*
 * Wirehub: the JSON messages of protocol v1 that a client sends, and the
 * replies that are not channel messages.
 */


#include "ngx_http_wirehub_module.h"
#include "wh_time.h"


#define NGX_HTTP_WIREHUB_MAX_CLIENT_TYPE  32
#define NGX_HTTP_WIREHUB_MAX_CLIENT_NAME  128


typedef ngx_int_t (*ngx_http_wirehub_message_pt)(
    ngx_http_wirehub_session_t *s, json_t *msg, json_t *ref);


typedef struct {
    ngx_str_t                     type;
    ngx_http_wirehub_message_pt   handler;
} ngx_http_wirehub_message_handler_t;


static ngx_int_t ngx_http_wirehub_ping(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref);
static ngx_int_t ngx_http_wirehub_register(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref);
static ngx_int_t ngx_http_wirehub_refresh(ngx_http_wirehub_session_t *s,
    json_t *msg, json_t *ref);
static ngx_int_t ngx_http_wirehub_event(ngx_http_wirehub_session_t *s,
    const char *type, size_t len, u_char *data, size_t size, json_t *ref);


static ngx_http_wirehub_message_handler_t  ngx_http_wirehub_handlers[] = {
    { ngx_string("ping"), ngx_http_wirehub_ping },
    { ngx_string("heartbeat"), ngx_http_wirehub_ping },
    { ngx_string("register"), ngx_http_wirehub_register },
    { ngx_string("refresh"), ngx_http_wirehub_refresh },
    { ngx_string("subscribe"), ngx_http_wirehub_subscribe },
    { ngx_string("unsubscribe"), ngx_http_wirehub_unsubscribe },
    { ngx_string("publish"), ngx_http_wirehub_publish },
    { ngx_string("command_result"), ngx_http_wirehub_command_result },
    { ngx_null_string, NULL }
};


void
ngx_http_wirehub_message(ngx_http_wirehub_session_t *s, u_char *data,
    size_t len)
{
    size_t                               n;
    json_t                              *msg, *type, *ref;
    const char                          *name;
    json_error_t                         err;
    ngx_http_wirehub_message_handler_t  *h;

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

    for (h = ngx_http_wirehub_handlers; h->handler; h++) {
        if (h->type.len == n && ngx_strncmp(h->type.data, name, n) == 0) {
            (void) h->handler(s, msg, ref);
            json_decref(msg);
            return;
        }
    }

    (void) ngx_http_wirehub_event(s, name, n, data, len, ref);
    json_decref(msg);
}


/*
 * A message of another type is a client event (device_discovery, ...):
 * wirehubd forwards it to MQTT when an egress rule is configured.  Its
 * workspace and client come from the verified token, never the message.
 */

static ngx_int_t
ngx_http_wirehub_event(ngx_http_wirehub_session_t *s, const char *type,
    size_t len, u_char *data, size_t size, json_t *ref)
{
    size_t         i;
    wh_link_msg_t  m;

    if (s->identity == NULL || !ngx_http_wirehub_link_egress(s->main_conf))
    {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                                                  "unknown message type",
                                                  ref);
    }

    if (len == 0 || len > 64) {
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

    ngx_memzero(&m, sizeof(wh_link_msg_t));
    m.type = WH_LINK_EVENT;
    m.workspace.data = (char *) s->identity->workspace.data;
    m.workspace.len = s->identity->workspace.len;
    m.client_id.data = (char *) s->identity->client_id.data;
    m.client_id.len = s->identity->client_id.len;
    m.session.data = (char *) s->session_id.data;
    m.session.len = s->session_id.len;
    m.name.data = type;
    m.name.len = len;
    m.body.data = (char *) data;
    m.body.len = size;

    if (ngx_http_wirehub_link_send(s->main_conf, &m) != NGX_OK) {
        return ngx_http_wirehub_send_client_error(s, "unavailable",
                   "wirehubd is not reachable, retry", ref);
    }

    return NGX_OK;
}


json_t *
ngx_http_wirehub_timestamp(void)
{
    char  iso[WH_TIME_ISO_LEN + 1];

    wh_time_iso(iso, wh_time_ms());

    return json_string(iso);
}


ngx_int_t
ngx_http_wirehub_reply(ngx_http_wirehub_session_t *s, json_t *reply,
    json_t *ref)
{
    ngx_int_t  rc;

    if (reply == NULL) {
        return NGX_ERROR;
    }

    if (ref && json_object_set(reply, "ref", ref) != 0) {
        json_decref(reply);
        return NGX_ERROR;
    }

    rc = ngx_http_wirehub_send_json(s, reply);
    json_decref(reply);

    return rc;
}


ngx_int_t
ngx_http_wirehub_send_json(ngx_http_wirehub_session_t *s, json_t *msg)
{
    char       *text;
    ngx_int_t   rc;

    text = json_dumps(msg, JSON_COMPACT);
    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_wirehub_send_text(s, (u_char *) text, ngx_strlen(text));
    free(text);

    return rc;
}


ngx_int_t
ngx_http_wirehub_send_client_error(ngx_http_wirehub_session_t *s,
    const char *code, const char *message, json_t *ref)
{
    return ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:s,s:s,s:o}", "type", "error", "code", code,
                         "message", message,
                         "timestamp", ngx_http_wirehub_timestamp()),
               ref);
}


ngx_int_t
ngx_http_wirehub_send_connection_status(ngx_http_wirehub_session_t *s,
    ngx_uint_t active_clients)
{
    ngx_http_wirehub_identity_t  *id;

    id = s->identity;

    return ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:{s:s,s:s%,s:s%,s:s%,s:I},s:o}",
                         "type", "connection_status",
                         "data",
                         "status", "connected",
                         "client_id", id->client_id.data, id->client_id.len,
                         "workspace", id->workspace.data, id->workspace.len,
                         "session", s->session_id.data, s->session_id.len,
                         "active_clients", (json_int_t) active_clients,
                         "timestamp", ngx_http_wirehub_timestamp()),
               NULL);
}


static ngx_int_t
ngx_http_wirehub_ping(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref)
{
    return ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:o}", "type", "pong",
                         "timestamp", ngx_http_wirehub_timestamp()),
               ref);
}


static ngx_int_t
ngx_http_wirehub_register(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref)
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
        p = ngx_pnalloc(s->connection->pool, n);
        if (p == NULL) {
            return NGX_ERROR;
        }

        s->client_type.data = p;
    }

    ngx_memcpy(s->client_type.data, t, n);
    s->client_type.len = n;

    if (name && json_string_length(name) > s->client_name.len) {
        p = ngx_pnalloc(s->connection->pool, json_string_length(name));
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
    json_t *ref)
{
    char                         err[200];
    json_t                      *token;
    ngx_str_t                    message;
    const char                  *code;
    ngx_pool_t                  *pool;
    ngx_http_wirehub_identity_t *id, *old;

    token = json_object_get(msg, "token");

    if (!json_is_string(token) || json_string_length(token) == 0) {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                                                  "\"token\" is required",
                                                  ref);
    }

    /* a scratch pool: refreshes must not grow the connection's memory */

    pool = ngx_create_pool(1024, s->connection->log);
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

    if (id->workspace.len != old->workspace.len
        || ngx_strncmp(id->workspace.data, old->workspace.data,
                       id->workspace.len) != 0
        || id->client_id.len != old->client_id.len
        || ngx_strncmp(id->client_id.data, old->client_id.data,
                       id->client_id.len) != 0)
    {
        ngx_destroy_pool(pool);
        ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                      "wirehub: refresh for another client refused");

        return ngx_http_wirehub_send_client_error(s, "forbidden",
                   "a refresh token must name the same workspace and "
                   "client", ref);
    }

    s->expires = id->exp ? id->exp + s->main_conf->leeway : 0;
    old->exp = id->exp;

    ngx_destroy_pool(pool);

    return ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:I,s:o}", "type", "refreshed",
                         "expires", (json_int_t) old->exp,
                         "timestamp", ngx_http_wirehub_timestamp()),
               ref);
}
