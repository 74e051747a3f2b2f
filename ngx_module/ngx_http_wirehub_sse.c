
/*
 * Wirehub: Server-Sent Events.  GET with ?channels=a,b and a token gets a
 * text/event-stream after the same checks as a WebSocket handshake
 * (authentication, authorize(CONNECT), then authorize(SUBSCRIBE) for each
 * channel, the workspace's connection limit), so that a refusal is an
 * HTTP status before any stream byte.  The stream is then a session whose
 * output is framed as SSE: what a WebSocket client gets as a message, it
 * gets as an event, with the stream's cursor in front of each channel
 * message.  A Last-Event-ID resumes every channel from that cursor.
 */


#include "ngx_http_wirehub_content.h"
#include "ngx_http_wirehub_auth.h"
#include "ngx_http_wirehub_authz.h"
#include "ngx_http_wirehub_channels.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_cursor.h"
#include "ngx_http_wirehub_http.h"
#include "ngx_http_wirehub_limits.h"
#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_presence.h"
#include "ngx_http_wirehub_reply.h"
#include "wh_channel.h"


static ngx_int_t ngx_http_wirehub_sse_refuse(ngx_http_request_t *r,
    ngx_uint_t result, ngx_uint_t status, const char *code,
    ngx_str_t *message);
static ngx_int_t ngx_http_wirehub_sse_channels(ngx_http_request_t *r,
    ngx_http_wirehub_identity_t *id, json_t *names, ngx_uint_t *status,
    const char **code, ngx_str_t *message);
static json_t *ngx_http_wirehub_sse_since(ngx_http_request_t *r,
    json_t *names, ngx_str_t *message);
static ngx_int_t ngx_http_wirehub_sse_start(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx, json_t *subscribe);
static ngx_int_t ngx_http_wirehub_sse_open(ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_sse_accepted(ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_sse_message(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *data, size_t len);
static void ngx_http_wirehub_sse_closed(ngx_http_wirehub_session_t *s);


static const ngx_http_wirehub_session_handlers_t  ngx_http_wirehub_sse_handlers
= {
    ngx_http_wirehub_sse_open,
    ngx_http_wirehub_sse_accepted,
    ngx_http_wirehub_sse_message,
    ngx_http_wirehub_sse_closed,
    ngx_http_wirehub_channels_drained
};


ngx_int_t
ngx_http_wirehub_sse_handler(ngx_http_request_t *r)
{
    json_t                        *names, *since, *subscribe;
    ngx_int_t                      rc;
    ngx_str_t                      message;
    ngx_uint_t                     status;
    const char                    *code;
    ngx_http_wirehub_ctx_t        *ctx;
    ngx_http_wirehub_hold_t       *hold;
    ngx_http_wirehub_loc_conf_t   *wlcf;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wlcf = ngx_http_get_module_loc_conf(r, ngx_http_wirehub_module);
    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    ctx = ngx_http_wirehub_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method != NGX_HTTP_GET
        || r->headers_in.content_length_n > 0 || r->headers_in.chunked)
    {
        ngx_str_set(&message, "an event stream is asked for with a GET "
                              "without a body");
        return ngx_http_wirehub_sse_refuse(r, NGX_HTTP_WIREHUB_HS_BAD_REQUEST,
                                           NGX_HTTP_BAD_REQUEST,
                                           "bad_request", &message);
    }

    if (!ngx_http_wirehub_origin_allowed(r, wlcf)) {
        ngx_str_set(&message, "origin not allowed");
        return ngx_http_wirehub_sse_refuse(r, NGX_HTTP_WIREHUB_HS_FORBIDDEN,
                                           NGX_HTTP_FORBIDDEN,
                                           "forbidden_origin", &message);
    }

    rc = ngx_http_wirehub_admit(r, ctx, wmcf, &status, &code, &message);

    if (rc != NGX_OK) {
        return ngx_http_wirehub_sse_refuse(r,
                                           NGX_HTTP_WIREHUB_HS_UNAUTHORIZED,
                                           status, code, &message);
    }

    names = json_array();
    if (names == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_wirehub_sse_channels(r, ctx->identity, names, &status,
                                       &code, &message);

    since = NULL;

    if (rc == NGX_OK) {
        since = ngx_http_wirehub_sse_since(r, names, &message);

        if (since == NULL) {
            status = NGX_HTTP_BAD_REQUEST;
            code = "bad_cursor";
            rc = NGX_DECLINED;
        }
    }

    if (rc != NGX_OK) {
        json_decref(names);
        return ngx_http_wirehub_sse_refuse(r,
                   status == NGX_HTTP_FORBIDDEN
                   ? NGX_HTTP_WIREHUB_HS_FORBIDDEN
                   : (status == NGX_HTTP_TOO_MANY_REQUESTS
                      ? NGX_HTTP_WIREHUB_HS_QUOTA_EXCEEDED
                      : NGX_HTTP_WIREHUB_HS_BAD_REQUEST),
                   status, code, &message);
    }

    subscribe = json_pack("{s:s,s:o,s:o}", "type", "subscribe",
                          "channels", names, "since", since);
    if (subscribe == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (wmcf->link == NULL || !ngx_http_wirehub_link_up(wmcf)) {
        json_decref(subscribe);
        ngx_str_set(&message, "wirehubd is not reachable, retry");
        return ngx_http_wirehub_sse_refuse(r, NGX_HTTP_WIREHUB_HS_UNAVAILABLE,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable", &message);
    }

    rc = ngx_http_wirehub_workspace_acquire(r, ctx->identity, &hold);

    if (rc != NGX_OK) {
        json_decref(subscribe);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_BUSY) {
            ngx_str_set(&message, "no room to count connections, retry");
            return ngx_http_wirehub_sse_refuse(r,
                       NGX_HTTP_WIREHUB_HS_UNAVAILABLE,
                       NGX_HTTP_SERVICE_UNAVAILABLE, "unavailable", &message);
        }

        ngx_http_wirehub_stat(wmcf,
            limited[NGX_HTTP_WIREHUB_LIMIT_WORKSPACE_CONNECTIONS], 1);
        ngx_str_set(&message,
                    "the workspace has as many connections as it may");
        return ngx_http_wirehub_sse_refuse(r,
                   NGX_HTTP_WIREHUB_HS_QUOTA_EXCEEDED,
                   NGX_HTTP_TOO_MANY_REQUESTS, "quota_exceeded", &message);
    }

    rc = ngx_http_wirehub_sse_start(r, ctx, subscribe);

    if (rc != NGX_DONE && hold) {
        ngx_http_wirehub_workspace_release(hold);
    }

    return rc;
}


static ngx_int_t
ngx_http_wirehub_sse_refuse(ngx_http_request_t *r, ngx_uint_t result,
    ngx_uint_t status, const char *code, ngx_str_t *message)
{
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    ngx_http_wirehub_stat(wmcf, sse_handshakes[result], 1);
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "wirehub: event stream refused: %V", message);

    return ngx_http_wirehub_send_error(r, status, code, message);
}


/*
 * "channels" of the query, comma-separated and URL-encoded: each one a
 * valid name this token may subscribe to, no name twice, no more than the
 * location's wirehub_max_subscriptions.
 */

static ngx_int_t
ngx_http_wirehub_sse_channels(ngx_http_request_t *r,
    ngx_http_wirehub_identity_t *id, json_t *names, ngx_uint_t *status,
    const char **code, ngx_str_t *message)
{
    u_char                        *p, *start, *end, *dst;
    size_t                         i, n, limit;
    ngx_str_t                      arg;
    ngx_http_wirehub_denial_t      denial;
    ngx_http_wirehub_resource_t    res;
    ngx_http_wirehub_loc_conf_t   *wlcf;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wlcf = ngx_http_get_module_loc_conf(r, ngx_http_wirehub_module);
    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    *status = NGX_HTTP_BAD_REQUEST;
    *code = "bad_request";

    if (ngx_http_arg(r, (u_char *) "channels", 8, &arg) != NGX_OK
        || arg.len == 0)
    {
        ngx_str_set(message, "\"channels\" names the channels of the "
                             "stream, separated by commas");
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(r->pool, arg.len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    p = arg.data;
    end = dst;
    ngx_unescape_uri(&end, &p, arg.len, NGX_UNESCAPE_URI);

    limit = NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS;

    for (p = dst; p <= end; p++) {
        start = p;

        while (p < end && *p != ',') {
            p++;
        }

        n = p - start;

        if (!wh_channel_valid((char *) start, n)) {
            *code = "bad_channel";
            ngx_str_set(message, "not a valid channel name");
            return NGX_DECLINED;
        }

        for (i = 0; i < json_array_size(names); i++) {
            if (json_string_length(json_array_get(names, i)) == n
                && ngx_strncmp(json_string_value(json_array_get(names, i)),
                               start, n) == 0)
            {
                *code = "bad_channel";
                ngx_str_set(message, "a channel is named twice");
                return NGX_DECLINED;
            }
        }

        if (json_array_size(names) == limit
            || (wlcf->max_subscriptions
                && json_array_size(names) == wlcf->max_subscriptions))
        {
            ngx_http_wirehub_stat(wmcf,
                limited[NGX_HTTP_WIREHUB_LIMIT_SUBSCRIPTIONS], 1);
            *status = NGX_HTTP_TOO_MANY_REQUESTS;
            *code = "quota_exceeded";
            ngx_str_set(message, "too many channels for one stream");
            return NGX_DECLINED;
        }

        ngx_memzero(&res, sizeof(ngx_http_wirehub_resource_t));
        res.channel.data = start;
        res.channel.len = n;

        if (ngx_http_wirehub_authorize(wmcf, id,
                                       NGX_HTTP_WIREHUB_ACT_SUBSCRIBE, &res,
                                       &denial, r->connection->log)
            != NGX_OK)
        {
            *status = denial.status;
            *code = denial.code;
            message->data = (u_char *) denial.message;
            message->len = ngx_strlen(denial.message);
            return NGX_DECLINED;
        }

        if (json_array_append_new(names, json_stringn((char *) start, n))
            != 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * "since" for the subscribe, from Last-Event-ID: each channel where the
 * cursor says it was; a channel the cursor does not name cannot be
 * resumed, and an epoch that matches none says so ("recovered":false).
 * NULL for a malformed cursor.
 */

static json_t *
ngx_http_wirehub_sse_since(ngx_http_request_t *r, json_t *names,
    ngx_str_t *message)
{
    json_t                       *since, *from;
    ngx_uint_t                    i, n;
    ngx_table_elt_t              *h;
    ngx_http_wirehub_position_t   pos[NGX_HTTP_WIREHUB_SSE_MAX_CHANNELS];

    since = json_object();
    if (since == NULL) {
        ngx_str_set(message, "out of memory");
        return NULL;
    }

    h = ngx_http_wirehub_header(r, "Last-Event-ID",
                                sizeof("Last-Event-ID") - 1);

    if (h == NULL) {
        return since;
    }

    if (ngx_http_wirehub_cursor_decode(&h->value, pos, &n) != NGX_OK) {
        json_decref(since);
        ngx_str_set(message, "\"Last-Event-ID\" is not a cursor of this "
                             "stream");
        return NULL;
    }

    for (i = 0; i < json_array_size(names); i++) {
        from = json_pack("{s:I,s:s}", "id", (json_int_t) 0, "epoch", "");

        if (from == NULL
            || json_object_set_new(since,
                   json_string_value(json_array_get(names, i)), from)
               != 0)
        {
            json_decref(since);
            ngx_str_set(message, "out of memory");
            return NULL;
        }
    }

    for (i = 0; i < n; i++) {
        if (pos[i].index >= json_array_size(names)) {
            /* a channel of another list: the stream's URL changed */
            continue;
        }

        from = json_pack("{s:I,s:s%}", "id", (json_int_t) pos[i].id,
                         "epoch", pos[i].epoch, pos[i].epoch_len);

        if (from == NULL
            || json_object_set_new(since,
                   json_string_value(json_array_get(names, pos[i].index)),
                   from)
               != 0)
        {
            json_decref(since);
            ngx_str_set(message, "out of memory");
            return NULL;
        }
    }

    return since;
}


static ngx_int_t
ngx_http_wirehub_sse_start(ngx_http_request_t *r, ngx_http_wirehub_ctx_t *ctx,
    json_t *subscribe)
{
    ngx_int_t                    rc;
    ngx_str_t                    value;
    ngx_http_wirehub_session_t  *s;

    s = ngx_http_wirehub_session_new(r, ctx);
    if (s == NULL) {
        json_decref(subscribe);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->handlers = &ngx_http_wirehub_sse_handlers;
    s->deferred = subscribe;
    s->framing = NGX_HTTP_WIREHUB_FRAMING_SSE;

    ngx_str_set(&value, "no-cache");

    if (ngx_http_wirehub_add_header(r, "Cache-Control", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a proxy in front (nginx itself) must not buffer the stream */

    ngx_str_set(&value, "no");

    if (ngx_http_wirehub_add_header(r, "X-Accel-Buffering", &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "text/event-stream");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = -1;
    r->keepalive = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /* HTTP/1.1 gets chunks, HTTP/1.0 a body that ends with the connection */

    if (r->chunked) {
        s->framing = NGX_HTTP_WIREHUB_FRAMING_SSE_CHUNKED;
    }

    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_wirehub_stat(s->main_conf,
                          sse_handshakes[NGX_HTTP_WIREHUB_HS_OK], 1);

    r->main->count++;

    ngx_http_wirehub_takeover(s);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_wirehub_sse_open(ngx_http_wirehub_session_t *s)
{
    ngx_str_set(&s->client_type, "sse");

    ngx_http_wirehub_stat(s->main_conf, sse_streams, 1);
    ngx_http_wirehub_session_open(s);

    return NGX_OK;
}


/* connection_status is out: now the channels of the stream */

static void
ngx_http_wirehub_sse_accepted(ngx_http_wirehub_session_t *s)
{
    json_t  *subscribe;

    subscribe = s->deferred;
    s->deferred = NULL;

    if (subscribe == NULL) {
        return;
    }

    if (ngx_http_wirehub_subscribe(s, subscribe, NULL, NULL) != NGX_OK) {
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_INTERNAL,
                                       "internal error");
    }

    json_decref(subscribe);
}


static void
ngx_http_wirehub_sse_message(ngx_http_wirehub_session_t *s, unsigned opcode,
    u_char *data, size_t len)
{
    /* the session reads nothing from an SSE client */
}


static void
ngx_http_wirehub_sse_closed(ngx_http_wirehub_session_t *s)
{
    if (s->deferred) {
        json_decref(s->deferred);
        s->deferred = NULL;
    }

    ngx_http_wirehub_stat(s->main_conf, sse_streams, -1);

    ngx_http_wirehub_session_unsubscribe_all(s);
    ngx_http_wirehub_session_gone(s, s->shutting_down ? "shutdown"
                                                      : "closed");
}
