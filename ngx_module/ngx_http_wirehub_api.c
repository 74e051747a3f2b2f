
/*
 * Wirehub: the HTTP API.  The module authenticates the caller, settles the
 * workspace, reads the body without blocking and forwards the call to
 * wirehubd as one REQUEST; wirehubd routes it, and its RESPONSE says when
 * the answer needs what only nginx holds (a signed token, the workers'
 * view).  /healthz is answered here: it is about the link itself; so is
 * /openapi.json, the document of this API, compiled in.
 */


#include "ngx_http_wirehub_content.h"
#include "ngx_http_wirehub_auth.h"
#include "ngx_http_wirehub_authz.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_http.h"
#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_writes.h"
#include "wh_channel.h"
#include "ngx_http_wirehub_openapi.h"


#define NGX_HTTP_WIREHUB_API_MAX_BODY  (1024 * 1024)
#define NGX_HTTP_WIREHUB_API_GONE                                             \
    "{\"error\":{\"code\":\"unavailable\","                                   \
    "\"message\":\"wirehubd went away, retry\"}}"


typedef struct {
    ngx_http_request_t            *request;
    ngx_http_wirehub_pending_t    *pending;
    ngx_str_t                      workspace;
    ngx_str_t                      sub;         /* the token's subject */
    ngx_uint_t                     role;

    /* a publish's answer, held until the worker wrote what came before */
    ngx_http_wirehub_waiter_t      waiter;
    ngx_uint_t                     status;
    ngx_buf_t                     *answer;
} ngx_http_wirehub_api_call_t;


static ngx_int_t ngx_http_wirehub_api_cors(ngx_http_request_t *r);
static ngx_int_t ngx_http_wirehub_healthz(ngx_http_request_t *r);
static ngx_int_t ngx_http_wirehub_openapi_send(ngx_http_request_t *r);
static json_t *ngx_http_wirehub_api_claims(ngx_http_request_t *r,
    ngx_http_wirehub_api_call_t *call, wh_link_msg_t *m, time_t iat);
static void ngx_http_wirehub_api_path(ngx_http_request_t *r,
    ngx_str_t *path);
static void ngx_http_wirehub_api_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_wirehub_api_args(ngx_http_request_t *r,
    ngx_str_t *args);
static ngx_int_t ngx_http_wirehub_api_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static void ngx_http_wirehub_api_reply(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m);
static ngx_int_t ngx_http_wirehub_api_hold(ngx_http_wirehub_api_call_t *call,
    wh_link_msg_t *m);
static void ngx_http_wirehub_api_release(ngx_http_wirehub_waiter_t *w);
static void ngx_http_wirehub_api_cleanup(void *data);
static ngx_int_t ngx_http_wirehub_api_registered(ngx_http_request_t *r,
    ngx_http_wirehub_api_call_t *call, wh_link_msg_t *m);
static ngx_int_t ngx_http_wirehub_api_stats(ngx_http_request_t *r,
    wh_link_msg_t *m);
static ngx_int_t ngx_http_wirehub_api_send(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
static ngx_buf_t *ngx_http_wirehub_api_answer(ngx_http_request_t *r,
    u_char *body, size_t len);
static ngx_int_t ngx_http_wirehub_api_send_answer(ngx_http_request_t *r,
    ngx_uint_t status, ngx_buf_t *b);
static ngx_int_t ngx_http_wirehub_api_retry_after(ngx_http_request_t *r,
    uint32_t seconds);


ngx_int_t
ngx_http_wirehub_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      message, path;
    ngx_uint_t                     status;
    const char                    *code;
    ngx_table_elt_t               *found;
    ngx_http_cleanup_t            *cln;
    ngx_http_wirehub_ctx_t        *ctx;
    ngx_http_wirehub_denial_t      denial;
    ngx_http_wirehub_api_call_t   *call;
    ngx_http_wirehub_resource_t    res;
    ngx_http_wirehub_identity_t   *id;
    ngx_http_wirehub_main_conf_t  *wmcf;

    ctx = ngx_http_wirehub_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_wirehub_api_cors(r);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    ngx_http_wirehub_api_path(r, &path);

    /* about the link itself: answered here, without a token */

    if (path.len == sizeof("/healthz") - 1
        && ngx_strncmp(path.data, "/healthz", path.len) == 0)
    {
        return ngx_http_wirehub_healthz(r);
    }

    if (path.len == sizeof("/openapi.json") - 1
        && ngx_strncmp(path.data, "/openapi.json", path.len) == 0)
    {
        return ngx_http_wirehub_openapi_send(r);
    }

    if (ngx_http_wirehub_authenticate(r, ctx, &status, &code, &message)
        != NGX_OK)
    {
        return ngx_http_wirehub_send_error(r, status, code, &message);
    }

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);
    id = ctx->identity;

    /* X-Workspace-ID, when sent, names the workspace to act in */

    ngx_memzero(&res, sizeof(ngx_http_wirehub_resource_t));

    found = ngx_http_wirehub_header(r, "X-Workspace-ID",
                                    sizeof("X-Workspace-ID") - 1);
    if (found) {
        res.workspace = found->value;
    }

    if (ngx_http_wirehub_authorize(wmcf, id, NGX_HTTP_WIREHUB_ACT_API, &res,
                                   &denial, r->connection->log)
        != NGX_OK)
    {
        message.data = (u_char *) denial.message;
        message.len = ngx_strlen(denial.message);
        return ngx_http_wirehub_send_error(r, denial.status, denial.code,
                                           &message);
    }

    call = ngx_pcalloc(r->pool, sizeof(ngx_http_wirehub_api_call_t));
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->request = r;
    call->workspace = found ? found->value : id->workspace;
    call->sub = id->client_id;
    call->role = (id->role == NGX_HTTP_WIREHUB_ROLE_ADMIN)
                 ? WH_LINK_ROLE_ADMIN : WH_LINK_ROLE_SERVICE;

    if (!ngx_http_wirehub_link_up(wmcf)) {
        ngx_str_set(&message, "wirehubd is not reachable, retry");
        return ngx_http_wirehub_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "unavailable", &message);
    }

    if (r->headers_in.content_length_n > NGX_HTTP_WIREHUB_API_MAX_BODY) {
        ngx_str_set(&message, "the body is larger than 1 MiB");
        return ngx_http_wirehub_send_error(r,
                                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                           "too_large", &message);
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_wirehub_api_cleanup;
    cln->data = call;

    r->request_body_in_single_buf = 1;

    /* the call travels with the request until wirehubd answers */
    ctx->api_call = call;

    rc = ngx_http_read_client_request_body(r, ngx_http_wirehub_api_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * CORS for the origins of wirehub_allowed_origins: an allowed Origin is
 * echoed in Access-Control-Allow-Origin on every answer, errors included
 * (a page must read them).  A preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered here, without a token: 204
 * with what the API accepts, or 403 forbidden_origin without any CORS
 * header.  The API takes bearer tokens, never cookies: no credentials.
 * NGX_DECLINED: not a preflight, the call goes on.
 */

static ngx_int_t
ngx_http_wirehub_api_cors(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_str_t                     v;
    ngx_uint_t                    allowed;
    ngx_table_elt_t              *origin;
    ngx_http_wirehub_loc_conf_t  *wlcf;

    wlcf = ngx_http_get_module_loc_conf(r, ngx_http_wirehub_module);
    origin = ngx_http_wirehub_header(r, "Origin", sizeof("Origin") - 1);

    allowed = origin && wlcf->allowed_origins
              && ngx_http_wirehub_origin_allowed(r, wlcf);

    if (wlcf->allowed_origins) {
        ngx_str_set(&v, "Origin");

        if (ngx_http_wirehub_add_header(r, "Vary", &v) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (allowed
        && ngx_http_wirehub_add_header(r, "Access-Control-Allow-Origin",
                                       &origin->value) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method != NGX_HTTP_OPTIONS || origin == NULL
        || ngx_http_wirehub_header(r, "Access-Control-Request-Method",
               sizeof("Access-Control-Request-Method") - 1) == NULL)
    {
        ngx_str_set(&v, "Retry-After, ETag");

        if (allowed
            && ngx_http_wirehub_add_header(r,
                   "Access-Control-Expose-Headers", &v) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_DECLINED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!allowed) {
        ngx_str_set(&v, "origin not allowed");
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "wirehub: CORS preflight refused: %V", &v);
        return ngx_http_wirehub_send_error(r, NGX_HTTP_FORBIDDEN,
                                           "forbidden_origin", &v);
    }

    ngx_str_set(&v, "GET, POST, PATCH, DELETE");
    if (ngx_http_wirehub_add_header(r, "Access-Control-Allow-Methods", &v)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&v, "Authorization, Content-Type, X-Workspace-ID, "
                    "Idempotency-Key");
    if (ngx_http_wirehub_add_header(r, "Access-Control-Allow-Headers", &v)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&v, "600");
    if (ngx_http_wirehub_add_header(r, "Access-Control-Max-Age", &v)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


/* the path below the location: "/api/channels/x" -> "/channels/x" */

static void
ngx_http_wirehub_api_path(ngx_http_request_t *r, ngx_str_t *path)
{
    size_t                     n;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    *path = r->uri;

    if (clcf->name.len > 1 && !clcf->exact_match) {
        n = clcf->name.len;

        if (clcf->name.data[n - 1] == '/') {
            n--;
        }

        if (path->len >= n
            && ngx_strncmp(path->data, clcf->name.data, n) == 0)
        {
            path->data += n;
            path->len -= n;
        }
    }
}


static void
ngx_http_wirehub_api_body(ngx_http_request_t *r)
{
    ngx_str_t                      body, path, message, args;
    wh_link_msg_t                  m;
    ngx_http_wirehub_ctx_t        *ctx;
    ngx_http_wirehub_api_call_t   *call;
    ngx_http_wirehub_main_conf_t  *wmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_wirehub_module);
    call = ctx->api_call;
    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    if (ngx_http_wirehub_api_read_body(r, &body) != NGX_OK) {
        ngx_str_set(&message, "the body is larger than 1 MiB");
        ngx_http_finalize_request(r,
            ngx_http_wirehub_send_error(r,
                                        NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "too_large", &message));
        return;
    }

    ngx_http_wirehub_api_path(r, &path);

    if (path.len == 0) {
        ngx_str_set(&path, "/");
    }

    if (ngx_http_wirehub_api_args(r, &args) != NGX_OK) {
        ngx_str_set(&message, "Idempotency-Key is 1 to 128 visible ASCII "
                              "characters");
        ngx_http_finalize_request(r,
            ngx_http_wirehub_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "bad_request", &message));
        return;
    }

    /* who issues the call: recorded on the commands and jobs it makes */
    wh_link_request(&m, (uint8_t) call->role,
                    ngx_http_wirehub_wh_ngx_str(&call->workspace),
                    ngx_http_wirehub_wh_ngx_str(&call->sub),
                    ngx_http_wirehub_wh_ngx_str(&r->method_name),
                    ngx_http_wirehub_wh_ngx_str(&path),
                    ngx_http_wirehub_wh_ngx_str(&args),
                    ngx_http_wirehub_wh_ngx_str(&body));

    call->pending = ngx_http_wirehub_link_request(wmcf, &m,
                                                  ngx_http_wirehub_api_reply,
                                                  call);
    if (call->pending == NULL) {
        ngx_str_set(&message, "wirehubd is not reachable, retry");
        ngx_http_finalize_request(r,
            ngx_http_wirehub_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "unavailable", &message));
        return;
    }

    /* answered from ngx_http_wirehub_api_reply() */
}


/*
 * The query for wirehubd: an Idempotency-Key header travels as its first
 * argument, idempotency_key (the link carries no headers).  NGX_DECLINED
 * for a key that is not 1 to 128 visible ASCII characters.
 */

static ngx_int_t
ngx_http_wirehub_api_args(ngx_http_request_t *r, ngx_str_t *args)
{
    u_char           *p;
    size_t            i, n;
    ngx_table_elt_t  *key;

    *args = r->args;

    key = ngx_http_wirehub_header(r, "Idempotency-Key",
                                  sizeof("Idempotency-Key") - 1);
    if (key == NULL) {
        return NGX_OK;
    }

    if (key->value.len == 0 || key->value.len > 128) {
        return NGX_DECLINED;
    }

    for (i = 0; i < key->value.len; i++) {
        if (key->value.data[i] < 0x21 || key->value.data[i] > 0x7e) {
            return NGX_DECLINED;
        }
    }

    n = ngx_escape_uri(NULL, key->value.data, key->value.len,
                       NGX_ESCAPE_ARGS);

    args->len = sizeof("idempotency_key=") - 1 + key->value.len + 2 * n
                + 1 + r->args.len;
    args->data = ngx_pnalloc(r->pool, args->len);
    if (args->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(args->data, "idempotency_key=",
                   sizeof("idempotency_key=") - 1);
    p = (u_char *) ngx_escape_uri(p, key->value.data, key->value.len,
                                  NGX_ESCAPE_ARGS);

    if (r->args.len) {
        *p++ = '&';
        p = ngx_cpymem(p, r->args.data, r->args.len);
    }

    args->len = p - args->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_api_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = NULL;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    if (len > NGX_HTTP_WIREHUB_API_MAX_BODY) {
        return NGX_ERROR;
    }

    body->data = ngx_pnalloc(r->pool, len ? len : 1);
    if (body->data == NULL) {
        return NGX_ERROR;
    }

    p = body->data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* a body past client_body_buffer_size, just written: cached */
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        /* an empty buffer may have no memory at all (pos NULL) */

        if (b->last > b->pos) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    body->len = len;

    return NGX_OK;
}


static void
ngx_http_wirehub_api_reply(ngx_http_wirehub_pending_t *p, wh_link_msg_t *m)
{
    ngx_int_t                     rc;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_wirehub_api_call_t  *call;

    call = p->data;
    call->pending = NULL;
    r = call->request;
    c = r->connection;

    if (m == NULL) {
        rc = ngx_http_wirehub_api_send(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                 (u_char *) NGX_HTTP_WIREHUB_API_GONE,
                 sizeof(NGX_HTTP_WIREHUB_API_GONE) - 1);

    } else if (m->count
               && ngx_http_wirehub_api_retry_after(r, m->count) != NGX_OK)
    {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else if (m->flag & WH_LINK_RESPONSE_TOKEN) {
        rc = ngx_http_wirehub_api_registered(r, call, m);

    } else if (m->flag & WH_LINK_RESPONSE_WORKERS) {
        rc = ngx_http_wirehub_api_stats(r, m);

    } else {
        if (ngx_http_wirehub_api_hold(call, m) == NGX_AGAIN) {
            return;
        }

        rc = ngx_http_wirehub_api_send(r, m->status, (u_char *) m->body.data,
                                       m->body.len);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * The answer to a publish or a broadcast (wirehubd flags it) waits for
 * the writes this worker has queued (ngx_http_wirehub_writes.h):
 * NGX_AGAIN while it waits, NGX_DECLINED to answer now (another answer,
 * nothing queued).
 */

static ngx_int_t
ngx_http_wirehub_api_hold(ngx_http_wirehub_api_call_t *call, wh_link_msg_t *m)
{
    ngx_int_t                      rc;
    ngx_http_request_t            *r;
    ngx_http_wirehub_main_conf_t  *wmcf;

    if (!(m->flag & WH_LINK_RESPONSE_FANOUT)) {
        return NGX_DECLINED;
    }

    r = call->request;
    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    call->waiter.handler = ngx_http_wirehub_api_release;
    call->waiter.data = call;

    rc = ngx_http_wirehub_writes_wait(wmcf, &call->waiter);

    if (rc != NGX_AGAIN) {
        /* without memory for a mark it is answered at once */
        return NGX_DECLINED;
    }

    /*
     * The link's buffer is reused: the answer is copied, once, as it will
     * be sent.  The message is stored: without memory for the copy it is
     * answered at once rather than with an error that would have it
     * published again.
     */

    call->status = m->status;
    call->answer = ngx_http_wirehub_api_answer(r, (u_char *) m->body.data,
                                               m->body.len);

    if (call->answer == NULL) {
        ngx_http_wirehub_writes_unwait(&call->waiter);
        return NGX_DECLINED;
    }

    ngx_http_wirehub_stat(wmcf, paced, 1);

    return NGX_AGAIN;
}


static void
ngx_http_wirehub_api_release(ngx_http_wirehub_waiter_t *w)
{
    ngx_int_t                     rc;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_wirehub_api_call_t  *call;

    call = w->data;
    r = call->request;
    c = r->connection;

    rc = ngx_http_wirehub_api_send_answer(r, call->status, call->answer);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_wirehub_api_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    return ngx_http_wirehub_api_send_answer(r, status,
                               ngx_http_wirehub_api_answer(r, body, len));
}


/* the body as sent, with its newline, in the request's pool */

static ngx_buf_t *
ngx_http_wirehub_api_answer(ngx_http_request_t *r, u_char *body, size_t len)
{
    ngx_buf_t  *b;

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NULL;
    }

    b->last = ngx_cpymem(b->last, body, len);
    *b->last++ = '\n';

    return b;
}


static ngx_int_t
ngx_http_wirehub_api_send_answer(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b)
{
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (status < 200 || status > 599) {
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_wirehub_send_body(r, status, "application/json", b);
}


/* a rate limit of wirehubd: when a retry can pass, in seconds */

static ngx_int_t
ngx_http_wirehub_api_retry_after(ngx_http_request_t *r, uint32_t seconds)
{
    ngx_str_t  value;

    value.data = ngx_pnalloc(r->pool, NGX_INT32_LEN);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    value.len = ngx_sprintf(value.data, "%uD", seconds) - value.data;

    return ngx_http_wirehub_add_header(r, "Retry-After", &value);
}


/*
 * wirehubd registered a client and asks for its token: signed with
 * wirehub_jwt_sign_key (only nginx holds it), so that the client can
 * connect right away.
 */

static ngx_int_t
ngx_http_wirehub_api_registered(ngx_http_request_t *r,
    ngx_http_wirehub_api_call_t *call, wh_link_msg_t *m)
{
    char                          *token, *text, err[160];
    time_t                         iat;
    json_t                        *body, *claims;
    ngx_str_t                      client;
    ngx_int_t                      rc;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    body = (wmcf->signer && m->client_id.len)
           ? json_loadb(m->body.data, m->body.len, 0, NULL) : NULL;

    if (!json_is_object(body)) {
        json_decref(body);
        return ngx_http_wirehub_api_send(r, m->status,
                                         (u_char *) m->body.data,
                                         m->body.len);
    }

    /* a client registered again after a delete: the first iat not revoked */

    client.data = (u_char *) m->client_id.data;
    client.len = m->client_id.len;
    iat = ngx_max(ngx_time(),
                  ngx_http_wirehub_revoked_until(wmcf, &call->workspace,
                                                 &client));

    claims = ngx_http_wirehub_api_claims(r, call, m, iat);
    token = claims ? ngx_http_wirehub_jwt_sign(wmcf->signer, claims, err,
                                               sizeof(err))
                   : NULL;
    json_decref(claims);

    if (token == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "wirehub: cannot sign a client token: %s", err);
        json_decref(body);
        return ngx_http_wirehub_api_send(r, m->status,
                                         (u_char *) m->body.data,
                                         m->body.len);
    }

    json_object_set_new(body, "token", json_string(token));
    free(token);

    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_wirehub_api_send(r, m->status, (u_char *) text,
                                   ngx_strlen(text));
    free(text);

    return rc;
}


/*
 * The claims of a client token, named as this nginx verifies them: the
 * client and workspace claims, iss and aud when checked, and exp
 * (wirehub_jwt_sign_ttl after iat; none when off).
 */

static json_t *
ngx_http_wirehub_api_claims(ngx_http_request_t *r,
    ngx_http_wirehub_api_call_t *call, wh_link_msg_t *m, time_t iat)
{
    time_t                         exp;
    json_t                        *claims;
    ngx_http_wirehub_loc_conf_t   *wlcf;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);
    wlcf = ngx_http_get_module_loc_conf(r, ngx_http_wirehub_module);

    claims = json_pack("{s:I,s:s}", "iat", (json_int_t) iat,
                       "role", "client");
    if (claims == NULL) {
        return NULL;
    }

    if (wlcf->sign_ttl) {
        exp = iat + wlcf->sign_ttl;
        json_object_set_new(claims, "exp", json_integer((json_int_t) exp));
    }

    if (wmcf->issuer.len) {
        json_object_set_new(claims, "iss",
                            json_stringn((char *) wmcf->issuer.data,
                                         wmcf->issuer.len));
    }

    if (wmcf->audience.len) {
        json_object_set_new(claims, "aud",
                            json_stringn((char *) wmcf->audience.data,
                                         wmcf->audience.len));
    }

    /* last: a claim renamed over a standard one still names the client */

    json_object_set_new(claims, (char *) wmcf->workspace_claim.data,
                        json_stringn((char *) call->workspace.data,
                                     call->workspace.len));
    json_object_set_new(claims, (char *) wmcf->client_claim.data,
                        json_stringn(m->client_id.data, m->client_id.len));

    return claims;
}


/*
 * wirehubd's statistics, and it asks for what only the workers know: the
 * module's version, connections per worker process, their links.
 */

static ngx_int_t
ngx_http_wirehub_api_stats(ngx_http_request_t *r, wh_link_msg_t *m)
{
    char                          *text;
    json_t                        *body, *nginx, *workers;
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_http_wirehub_counters_t   *cnt;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);
    cnt = wmcf->counters;

    body = json_loadb(m->body.data, m->body.len, 0, NULL);
    workers = json_array();
    nginx = json_pack("{s:s,s:o}", "module_version",
                      NGX_HTTP_WIREHUB_VERSION, "workers", workers);

    if (!json_is_object(body) || nginx == NULL || cnt == NULL) {
        json_decref(body);
        json_decref(nginx);
        return ngx_http_wirehub_api_send(r, m->status,
                                         (u_char *) m->body.data,
                                         m->body.len);
    }

    for (i = 0; i < NGX_HTTP_WIREHUB_MAX_WORKERS; i++) {
        if (cnt->worker_pid[i] == 0) {
            continue;
        }

        json_array_append_new(workers,
            json_pack("{s:I,s:I}", "pid", (json_int_t) cnt->worker_pid[i],
                      "sessions", (json_int_t) cnt->worker_connections[i]));
    }

    json_object_set_new(nginx, "connections",
                        json_integer((json_int_t) cnt->connections));
    json_object_set_new(nginx, "links_up",
                        json_integer((json_int_t) cnt->link_up));
    json_object_set_new(nginx, "link_reconnects",
                        json_integer((json_int_t) cnt->link_reconnects));
    json_object_set_new(body, "nginx", nginx);

    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_wirehub_api_send(r, m->status, (u_char *) text,
                                   ngx_strlen(text));
    free(text);

    return rc;
}


static void
ngx_http_wirehub_api_cleanup(void *data)
{
    ngx_http_wirehub_api_call_t *call = data;

    if (call->pending) {
        ngx_http_wirehub_pending_cancel(call->pending);
        call->pending = NULL;
    }

    ngx_http_wirehub_writes_unwait(&call->waiter);
}


static ngx_int_t
ngx_http_wirehub_healthz(ngx_http_request_t *r)
{
    size_t                         len;
    u_char                        *body;
    ngx_uint_t                     up;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    up = wmcf->link == NULL || ngx_http_wirehub_link_up(wmcf);

    if (up) {
        body = (u_char *) "{\"status\":\"ok\",\"link\":\"up\"}";

    } else {
        body = (u_char *) "{\"status\":\"unavailable\",\"link\":\"down\","
                          "\"message\":\"wirehubd is not reachable\"}";
    }

    len = ngx_strlen(body);

    ngx_http_discard_request_body(r);

    return ngx_http_wirehub_api_send(r, up ? NGX_HTTP_OK
                                           : NGX_HTTP_SERVICE_UNAVAILABLE,
                                     body, len);
}


/*
 * The OpenAPI document of this API, from memory: no token (a client
 * generator needs it before it has one), no wirehubd.  The ETag is the
 * content's hash; nginx's not_modified filter answers If-None-Match.
 */

static ngx_int_t
ngx_http_wirehub_openapi_send(ngx_http_request_t *r)
{
    ngx_int_t         rc;
    ngx_str_t         message, value;
    ngx_buf_t        *b;
    ngx_table_elt_t  *etag;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        ngx_str_set(&value, "GET, HEAD");
        if (ngx_http_wirehub_add_header(r, "Allow", &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&message, "use GET or HEAD");
        return ngx_http_wirehub_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                           "method_not_allowed", &message);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    etag = ngx_list_push(&r->headers_out.headers);
    b = ngx_calloc_buf(r->pool);
    if (etag == NULL || b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    etag->hash = 1;
    ngx_str_set(&etag->key, "ETag");
    ngx_str_set(&etag->value, NGX_HTTP_WIREHUB_OPENAPI_ETAG);
#if (nginx_version >= 1023000)
    etag->next = NULL;
#endif
    r->headers_out.etag = etag;

    /* cached, but asked again each time: an upgrade changes the answer */
    ngx_str_set(&value, "no-cache");
    if (ngx_http_wirehub_add_header(r, "Cache-Control", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = (u_char *) ngx_http_wirehub_openapi;
    b->last = b->pos + sizeof(ngx_http_wirehub_openapi);
    b->memory = 1;

    return ngx_http_wirehub_send_body(r, NGX_HTTP_OK, "application/json", b);
}
