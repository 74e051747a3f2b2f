
/*
 * Wirehub: the opening handshake (RFC 6455 section 4.2): the request is
 * checked, the client authenticated and authorized, and the connection
 * handed to a session once the 101 is out.
 */


#include "ngx_http_wirehub_content.h"
#include "ngx_http_wirehub_auth.h"
#include "ngx_http_wirehub_authz.h"
#include "ngx_http_wirehub_channels.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_deflate.h"
#include "ngx_http_wirehub_http.h"
#include "ngx_http_wirehub_limits.h"
#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_messages.h"
#include "ngx_http_wirehub_session.h"
#include <ngx_sha1.h>


#define NGX_HTTP_WIREHUB_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* "s-PID-SEQ" in hex: at most 2 + 8 + 1 + 16 */
#define NGX_HTTP_WIREHUB_SESSION_ID_LEN  32


static ngx_int_t ngx_http_wirehub_check_upgrade(ngx_http_request_t *r,
    ngx_str_t *key, ngx_uint_t *status, ngx_str_t *message);
static ngx_int_t ngx_http_wirehub_has_token(ngx_str_t *value,
    const char *token, size_t len);
static ngx_int_t ngx_http_wirehub_upgrade(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx, ngx_str_t *key);
static ngx_int_t ngx_http_wirehub_quota_refused(ngx_http_request_t *r,
    ngx_http_wirehub_main_conf_t *wmcf, ngx_int_t rc);


ngx_int_t
ngx_http_wirehub_websocket_handler(ngx_http_request_t *r)
{
    ngx_str_t                     key, message;
    ngx_int_t                     rc;
    ngx_uint_t                    status;
    const char                   *code;
    ngx_http_wirehub_ctx_t        *ctx;
    ngx_http_wirehub_hold_t       *hold;
    ngx_http_wirehub_loc_conf_t   *wlcf;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wlcf = ngx_http_get_module_loc_conf(r, ngx_http_wirehub_module);

    ctx = ngx_http_wirehub_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    rc = ngx_http_wirehub_check_upgrade(r, &key, &status, &message);

    if (rc != NGX_OK) {
        ngx_http_wirehub_stat(wmcf, handshakes[NGX_HTTP_WIREHUB_HS_BAD_REQUEST],
                              1);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "wirehub: handshake rejected: %V", &message);

        return ngx_http_wirehub_send_error(r, status, "bad_handshake",
                                           &message);
    }

    if (!ngx_http_wirehub_origin_allowed(r, wlcf)) {
        ngx_http_wirehub_stat(wmcf, handshakes[NGX_HTTP_WIREHUB_HS_FORBIDDEN],
                              1);
        ngx_str_set(&message, "origin not allowed");
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "wirehub: handshake rejected: %V", &message);

        return ngx_http_wirehub_send_error(r, NGX_HTTP_FORBIDDEN,
                                           "forbidden_origin", &message);
    }

    if (wlcf->mode == NGX_HTTP_WIREHUB_MODE_WEBSOCKET || wlcf->echo_auth) {
        rc = ngx_http_wirehub_admit(r, ctx, wmcf, &status, &code, &message);

        if (rc != NGX_OK) {
            ngx_http_wirehub_stat(wmcf,
                handshakes[NGX_HTTP_WIREHUB_HS_UNAUTHORIZED], 1);
            return ngx_http_wirehub_send_error(r, status, code, &message);
        }
    }

    if (wlcf->mode == NGX_HTTP_WIREHUB_MODE_WEBSOCKET) {

        if (wmcf->link && !ngx_http_wirehub_link_up(wmcf)) {
            ngx_http_wirehub_stat(wmcf,
                handshakes[NGX_HTTP_WIREHUB_HS_UNAVAILABLE], 1);
            ngx_str_set(&message, "wirehubd is not reachable, retry");
            return ngx_http_wirehub_send_error(r,
                                               NGX_HTTP_SERVICE_UNAVAILABLE,
                                               "unavailable", &message);
        }
    }

    hold = NULL;

    if (wlcf->mode == NGX_HTTP_WIREHUB_MODE_WEBSOCKET) {
        rc = ngx_http_wirehub_workspace_acquire(r, ctx->identity, &hold);

        if (rc != NGX_OK) {
            return ngx_http_wirehub_quota_refused(r, wmcf, rc);
        }
    }

    rc = ngx_http_wirehub_upgrade(r, ctx, &key);

    /* not upgraded: the connection may go on with another request */

    if (rc != NGX_DONE && hold) {
        ngx_http_wirehub_workspace_release(hold);
    }

    return rc;
}


static ngx_int_t
ngx_http_wirehub_quota_refused(ngx_http_request_t *r,
    ngx_http_wirehub_main_conf_t *wmcf, ngx_int_t rc)
{
    ngx_str_t  message;

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_BUSY) {
        ngx_http_wirehub_stat(wmcf,
            handshakes[NGX_HTTP_WIREHUB_HS_UNAVAILABLE], 1);
        ngx_str_set(&message, "no room to count connections, retry");
        return ngx_http_wirehub_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable", &message);
    }

    ngx_http_wirehub_stat(wmcf,
        handshakes[NGX_HTTP_WIREHUB_HS_QUOTA_EXCEEDED], 1);
    ngx_http_wirehub_stat(wmcf,
        limited[NGX_HTTP_WIREHUB_LIMIT_WORKSPACE_CONNECTIONS], 1);
    ngx_str_set(&message, "the workspace has as many connections as it may");

    return ngx_http_wirehub_send_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                       "quota_exceeded", &message);
}


static ngx_int_t
ngx_http_wirehub_check_upgrade(ngx_http_request_t *r, ngx_str_t *key,
    ngx_uint_t *status, ngx_str_t *message)
{
    u_char            decoded[32];
    ngx_str_t         dst;
    ngx_table_elt_t  *h;

    *status = NGX_HTTP_BAD_REQUEST;

    if (r->method != NGX_HTTP_GET) {
        ngx_str_set(message, "the opening handshake must be a GET");
        return NGX_DECLINED;
    }

    if (r->http_version != NGX_HTTP_VERSION_11) {
        ngx_str_set(message, "the opening handshake must be HTTP/1.1");
        return NGX_DECLINED;
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        ngx_str_set(message, "the opening handshake has no body");
        return NGX_DECLINED;
    }

    if (r->headers_in.upgrade == NULL
        || !ngx_http_wirehub_has_token(&r->headers_in.upgrade->value,
                                       "websocket", 9))
    {
        ngx_str_set(message, "\"Upgrade: websocket\" is required");
        return NGX_DECLINED;
    }

    /* nginx 1.22 parses Connection without keeping it in headers_in */

    h = ngx_http_wirehub_header(r, "Connection", sizeof("Connection") - 1);

    if (h == NULL || !ngx_http_wirehub_has_token(&h->value, "upgrade", 7)) {
        ngx_str_set(message, "\"Connection: upgrade\" is required");
        return NGX_DECLINED;
    }

    h = ngx_http_wirehub_header(r, "Sec-WebSocket-Key",
                                sizeof("Sec-WebSocket-Key") - 1);

    /* a valid key is 16 bytes in base64: 24 characters */

    if (h == NULL || h->value.len != 24) {
        ngx_str_set(message, "invalid \"Sec-WebSocket-Key\"");
        return NGX_DECLINED;
    }

    dst.data = decoded;

    if (ngx_decode_base64(&dst, &h->value) != NGX_OK || dst.len != 16) {
        ngx_str_set(message, "invalid \"Sec-WebSocket-Key\"");
        return NGX_DECLINED;
    }

    *key = h->value;

    h = ngx_http_wirehub_header(r, "Sec-WebSocket-Version",
                                sizeof("Sec-WebSocket-Version") - 1);

    if (h == NULL) {
        ngx_str_set(message, "\"Sec-WebSocket-Version\" is required");
        return NGX_DECLINED;
    }

    if (h->value.len != 2 || ngx_strncmp(h->value.data, "13", 2) != 0) {
        *status = NGX_HTTP_UPGRADE_REQUIRED;
        ngx_str_set(message, "unsupported WebSocket version");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a comma-separated header value contains the token, case-insensitively */

static ngx_int_t
ngx_http_wirehub_has_token(ngx_str_t *value, const char *token, size_t len)
{
    u_char  *p, *last, *start, *end;

    p = value->data;
    last = p + value->len;

    while (p < last) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        end = p;

        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        if ((size_t) (end - start) == len
            && ngx_strncasecmp(start, (u_char *) token, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Who may open a stream, for both the WebSocket and the SSE endpoints:
 * the token verified, then the CONNECT right; on refusal the status, code
 * and message to answer with.
 */

ngx_int_t
ngx_http_wirehub_admit(ngx_http_request_t *r, ngx_http_wirehub_ctx_t *ctx,
    ngx_http_wirehub_main_conf_t *wmcf, ngx_uint_t *status,
    const char **code, ngx_str_t *message)
{
    ngx_http_wirehub_denial_t  denial;

    if (ngx_http_wirehub_authenticate(r, ctx, status, code, message)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_wirehub_authorize(wmcf, ctx->identity,
                                   NGX_HTTP_WIREHUB_ACT_CONNECT, NULL,
                                   &denial, r->connection->log)
        != NGX_OK)
    {
        *status = denial.status;
        *code = denial.code;
        message->data = (u_char *) denial.message;
        message->len = ngx_strlen(denial.message);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_wirehub_origin_allowed(ngx_http_request_t *r,
    ngx_http_wirehub_loc_conf_t *wlcf)
{
    ngx_str_t        *origins;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    if (wlcf->allowed_origins == NULL) {
        return 1;
    }

    h = ngx_http_wirehub_header(r, "Origin", sizeof("Origin") - 1);

    /* no Origin: not a browser, and origins only guard browsers */

    if (h == NULL) {
        return 1;
    }

    origins = wlcf->allowed_origins->elts;

    for (i = 0; i < wlcf->allowed_origins->nelts; i++) {
        if (origins[i].len == h->value.len
            && ngx_strncasecmp(origins[i].data, h->value.data,
                               h->value.len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_wirehub_upgrade(ngx_http_request_t *r, ngx_http_wirehub_ctx_t *ctx,
    ngx_str_t *key)
{
    u_char                        digest[20];
    ngx_int_t                     rc;
    ngx_uint_t                    deflate, window;
    ngx_str_t                     value, src;
    ngx_sha1_t                    sha1;
    ngx_http_wirehub_session_t   *s;

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->data, key->len);
    ngx_sha1_update(&sha1, NGX_HTTP_WIREHUB_GUID,
                    sizeof(NGX_HTTP_WIREHUB_GUID) - 1);
    ngx_sha1_final(digest, &sha1);

    value.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(20));
    if (value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    src.data = digest;
    src.len = 20;
    ngx_encode_base64(&value, &src);

    if (ngx_http_wirehub_add_header(r, "Sec-WebSocket-Accept", &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&value, "websocket");

    if (ngx_http_wirehub_add_header(r, "Upgrade", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    deflate = 0;
    window = 0;

    rc = ngx_http_wirehub_deflate_negotiate(r, &value, &window);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK) {
        if (ngx_http_wirehub_add_header(r, "Sec-WebSocket-Extensions",
                                        &value)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        deflate = 1;
    }

    s = ngx_http_wirehub_session_new(r, ctx);
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->deflate = deflate;
    s->deflate_window = window;
    s->handlers = (s->conf->mode == NGX_HTTP_WIREHUB_MODE_ECHO)
                  ? &ngx_http_wirehub_echo_handlers
                  : &ngx_http_wirehub_client_handlers;

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->keepalive = 0;

    /*
     * Not flushed: the write filter holds the 101 back (it is smaller
     * than postpone_output), the session takes it over and sends it with
     * connection_status, in one write.  With wirehubd that waits for its
     * SESSION_ACCEPT.
     */

    s->greeting = (s->handlers == &ngx_http_wirehub_client_handlers
                   && s->main_conf->link != NULL);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /* the connection now belongs to the session until it is closed */

    ngx_http_wirehub_stat(s->main_conf, handshakes[NGX_HTTP_WIREHUB_HS_OK], 1);

    r->main->count++;

    ngx_http_wirehub_takeover(s);

    return NGX_DONE;
}


/*
 * The session outlives the request (freed once the 101 is out): it lives
 * in a pool of its own, which the connection's pool destroys until the
 * takeover makes it the connection's pool; the caller chooses its
 * handlers.
 */

ngx_http_wirehub_session_t *
ngx_http_wirehub_session_new(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx)
{
    u_char                        *p;
    size_t                         size, len, slot;
    ngx_uint_t                     ncln;
    ngx_pool_t                    *pool;
    ngx_connection_t              *c;
    ngx_pool_cleanup_t            *cln;
    ngx_http_wirehub_session_t    *s;
    ngx_http_wirehub_main_conf_t  *wmcf;
    u_char                         id[NGX_HTTP_WIREHUB_SESSION_ID_LEN];

    c = r->connection;
    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    len = ngx_snprintf(id, NGX_HTTP_WIREHUB_SESSION_ID_LEN, "s-%xP-%xi",
                       ngx_pid, ++wmcf->session_seq)
          - id;

    /*
     * Every byte counts once per connection: the session, its id and
     * cleanup, and once the request is gone what the connection keeps
     * (its log, addresses and cleanups, one for a request pool that has
     * some: see ngx_http_wirehub_compact()) and the identity.
     */

    slot = ctx->identity ? sizeof(ngx_http_wirehub_sub_t) : 0;

    size = sizeof(ngx_pool_t) + sizeof(ngx_http_wirehub_session_t) + slot
           + len + sizeof(ngx_pool_cleanup_t)
           + (ctx->identity ? ngx_http_wirehub_identity_size(ctx->identity)
                            : 0)
           + NGX_HTTP_WIREHUB_SESSION_ROOM;

    if (ngx_http_wirehub_compactable(c)) {
        ncln = r->pool->cleanup ? 1 : 0;

        for (cln = c->pool->cleanup; cln; cln = cln->next) {
            ncln++;
        }

        size += ncln * sizeof(ngx_pool_cleanup_t)
                + sizeof(ngx_log_t) + sizeof(ngx_http_log_ctx_t)
                + c->socklen + c->addr_text.len;
    }

    pool = ngx_create_pool(ngx_align(size, NGX_POOL_ALIGNMENT), c->log);
    if (pool == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    cln->handler = ngx_http_wirehub_destroy_pool;
    cln->data = pool;

    s = ngx_pcalloc(pool, ngx_align(sizeof(ngx_http_wirehub_session_t),
                                    NGX_ALIGNMENT) + slot);
    p = ngx_pnalloc(pool, len);
    if (s == NULL || p == NULL) {
        return NULL;
    }

    s->request = r;
    s->connection = c;
    s->pool = pool;
    s->sub_slot = (slot != 0);
    s->conf = ngx_http_get_module_loc_conf(r, ngx_http_wirehub_module);
    s->main_conf = wmcf;
    s->identity = ctx->identity;
    ngx_memcpy(p, id, len);
    s->id_node.str.data = p;
    s->id_node.str.len = len;
    ctx->session = s;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_wirehub_session_cleanup;
    cln->data = s;

    return s;
}
