
/*
 * Wirehub: the opening handshake (RFC 6455 section 4.2) and taking over the
 * connection once it is upgraded.
 */


#include "ngx_http_wirehub_module.h"
#include <ngx_sha1.h>


#define NGX_HTTP_WIREHUB_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


static ngx_int_t ngx_http_wirehub_check_upgrade(ngx_http_request_t *r,
    ngx_str_t *key, ngx_uint_t *status, ngx_str_t *message);
static ngx_int_t ngx_http_wirehub_has_token(ngx_str_t *value,
    const char *token, size_t len);
static ngx_int_t ngx_http_wirehub_origin_allowed(ngx_http_request_t *r,
    ngx_http_wirehub_loc_conf_t *wlcf);
static ngx_int_t ngx_http_wirehub_upgrade(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx, ngx_str_t *key);
static ngx_int_t ngx_http_wirehub_session_id(ngx_http_wirehub_session_t *s);


ngx_int_t
ngx_http_wirehub_websocket_handler(ngx_http_request_t *r)
{
    ngx_str_t                     key, message;
    ngx_int_t                     rc;
    ngx_uint_t                    status;
    const char                   *code;
    ngx_http_wirehub_ctx_t        *ctx;
    ngx_http_wirehub_loc_conf_t   *wlcf;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wlcf = ngx_http_get_module_loc_conf(r, ngx_http_wirehub_module);

    if (wlcf->mode == NGX_HTTP_WIREHUB_MODE_API) {
        return ngx_http_wirehub_api_handler(r);
    }

    if (wlcf->mode == NGX_HTTP_WIREHUB_MODE_METRICS) {
        return ngx_http_wirehub_metrics_handler(r);
    }

    ctx = ngx_http_wirehub_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->masked_request.len == 0
        && ngx_http_wirehub_mask_request(r, ctx) != NGX_OK)
    {
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
        if (ngx_http_wirehub_authenticate(r, ctx, &status, &code, &message)
            != NGX_OK)
        {
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

    return ngx_http_wirehub_upgrade(r, ctx, &key);
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


ngx_table_elt_t *
ngx_http_wirehub_header(ngx_http_request_t *r, const char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
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


static ngx_int_t
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


ngx_int_t
ngx_http_wirehub_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, ngx_str_t *message)
{
    char         *text;
    size_t        len;
    json_t       *body;
    ngx_buf_t    *b;
    ngx_str_t     version;

    body = json_pack("{s:{s:s,s:s%}}", "error", "code", code,
                     "message", (char *) message->data, message->len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(text);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, text, len);
    *b->last++ = '\n';
    free(text);

    if (status == NGX_HTTP_UPGRADE_REQUIRED) {
        ngx_str_set(&version, "13");
        if (ngx_http_wirehub_add_header(r, "Sec-WebSocket-Version", &version)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");
    }


    if (status == NGX_HTTP_UNAUTHORIZED) {
        ngx_str_set(&version, "Bearer");
        if (ngx_http_wirehub_add_header(r, "WWW-Authenticate", &version)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_http_discard_request_body(r);

    return ngx_http_wirehub_send_body(r, status, "application/json", b);
}


/*
 * Every response of the module that is not an upgrade: status, type and
 * body, and Retry-After when wirehubd is away (503).
 */

ngx_int_t
ngx_http_wirehub_send_body(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_str_t    retry;
    ngx_chain_t  out;

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ngx_str_set(&retry, "2");

        if (ngx_http_wirehub_add_header(r, "Retry-After", &retry) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_wirehub_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_upgrade(ngx_http_request_t *r, ngx_http_wirehub_ctx_t *ctx,
    ngx_str_t *key)
{
    u_char                        digest[20];
    ngx_int_t                     rc;
    ngx_uint_t                    deflate;
    ngx_str_t                     value, src;
    ngx_sha1_t                    sha1;
    ngx_pool_cleanup_t           *cln;
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

    if (ngx_http_wirehub_deflate_negotiate(r, &value) == NGX_OK) {
        if (ngx_http_wirehub_add_header(r, "Sec-WebSocket-Extensions",
                                        &value)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        deflate = 1;
    }

    /*
     * The session outlives the request (freed once the 101 is out), so it
     * lives in the connection's pool.
     */

    s = ngx_pcalloc(r->connection->pool, sizeof(ngx_http_wirehub_session_t));
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->request = r;
    s->connection = r->connection;
    s->conf = ngx_http_get_module_loc_conf(r, ngx_http_wirehub_module);
    s->main_conf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);
    s->identity = ctx->identity;
    s->deflate = deflate;
    ctx->session = s;

    if (ngx_http_wirehub_session_id(s) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->connection->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_wirehub_session_cleanup;
    cln->data = s;

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->keepalive = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* the connection now belongs to the session until it is closed */

    ngx_http_wirehub_stat(s->main_conf, handshakes[NGX_HTTP_WIREHUB_HS_OK], 1);

    r->main->count++;

    ngx_http_wirehub_session_start(s);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_wirehub_session_id(ngx_http_wirehub_session_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(s->connection->pool, 4 + 2 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    s->session_id.data = p;
    s->session_id.len = ngx_sprintf(p, "s-%xP-%xi", ngx_pid,
                                    ++s->main_conf->session_seq)
                        - p;

    return NGX_OK;
}
