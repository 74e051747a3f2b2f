
/*
 * Wirehub: backend hooks through nginx's own upstreams.
 *
 * A WebSocket is taken over from its request, so there is no request left
 * to hang a subrequest on.  Each call gets a request of its own instead: a
 * connection without a socket, a main request that never runs a phase,
 * and an in-memory subrequest (NGX_HTTP_SUBREQUEST_IN_MEMORY) to
 * <wirehub_rpc_pass>/<method> that goes through the location's proxy_pass
 * (keepalive pools, TLS, balancing and proxy timeouts are nginx's).  The
 * call lives in a pool of its own: when the client goes away first, the
 * call is only detached and ends (and is freed) when nginx ends it; an
 * exiting worker ends it at once.
 */


#include "ngx_http_wirehub_rpc.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_reply.h"


/* a call's pool: request, subrequest, proxy buffers, the answer */
#define NGX_HTTP_WIREHUB_RPC_POOL  4096


typedef struct {
    ngx_queue_t                    queue;       /* session's calls */
    ngx_http_wirehub_session_t    *session;     /* NULL once detached */
    ngx_http_wirehub_main_conf_t  *main_conf;
    ngx_pool_t                    *pool;
    ngx_connection_t              *connection;  /* without a socket */
    ngx_http_request_t            *request;     /* never runs a phase */
    json_t                        *ref;
    ngx_str_t                      uri;
    ngx_str_t                      addr_text;
    ngx_event_t                    timer;       /* wirehub_rpc_timeout */
    ngx_event_t                    free_event;
    unsigned                       event:1;     /* nobody awaits it */
    unsigned                       answered:1;
    unsigned                       finished:1;
    unsigned                       counted:1;   /* in backend_calls */
} ngx_http_wirehub_rpc_t;


static ngx_int_t ngx_http_wirehub_rpc_start(ngx_http_wirehub_session_t *s,
    ngx_str_t *pass, const char *name, size_t len, u_char *body,
    size_t size, json_t *ref, ngx_uint_t event);
static ngx_connection_t *ngx_http_wirehub_rpc_connection(
    ngx_http_wirehub_rpc_t *rpc, ngx_connection_t *client);
static ngx_http_request_t *ngx_http_wirehub_rpc_request(
    ngx_http_wirehub_rpc_t *rpc, ngx_http_wirehub_session_t *s,
    u_char *body, size_t size);
static ngx_int_t ngx_http_wirehub_rpc_header(ngx_http_request_t *r,
    char *name, ngx_str_t *value);
static ngx_int_t ngx_http_wirehub_rpc_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_wirehub_rpc_answer(ngx_http_wirehub_rpc_t *rpc,
    ngx_http_request_t *sr, ngx_uint_t status);
static void ngx_http_wirehub_rpc_failed(ngx_http_wirehub_rpc_t *rpc,
    ngx_uint_t status, const char *message);
static void ngx_http_wirehub_rpc_abort(ngx_http_wirehub_rpc_t *rpc);
static void ngx_http_wirehub_rpc_parent(ngx_http_request_t *r);
static void ngx_http_wirehub_rpc_timeout(ngx_event_t *ev);
static void ngx_http_wirehub_rpc_free(ngx_event_t *ev);
static void ngx_http_wirehub_rpc_event_handler(ngx_event_t *ev);
static u_char *ngx_http_wirehub_rpc_log_error(ngx_log_t *log, u_char *buf,
    size_t len);


static ngx_str_t  ngx_http_wirehub_roles[] = {
    ngx_string("client"),
    ngx_string("service"),
    ngx_string("admin")
};


/*
 * Called while the session still has its handshake's request: a call's
 * request belongs to the same server block as the WebSocket.
 */

void
ngx_http_wirehub_rpc_init(ngx_http_wirehub_session_t *s)
{
    ngx_http_core_srv_conf_t  *cscf;

    ngx_queue_init(&s->rpcs);
    s->nrpcs = 0;

    if (s->request) {
        cscf = ngx_http_get_module_srv_conf(s->request, ngx_http_core_module);
        s->srv_ctx = cscf->ctx;
    }
}


/*
 * The client is gone: its calls go on alone (the application finishes
 * what it started) and are freed when they end.  A worker that exits
 * (reload, shutdown) ends them now instead: nginx's shutdown timer closes
 * only connections with a socket, and a call must not keep an old worker
 * for the length of a proxy timeout.
 */

void
ngx_http_wirehub_rpc_detach_all(ngx_http_wirehub_session_t *s)
{
    ngx_queue_t             *q;
    ngx_http_wirehub_rpc_t  *rpc;

    if (s->rpcs.next == NULL) {
        return;   /* never initialized: the session was not opened */
    }

    while (!ngx_queue_empty(&s->rpcs)) {
        q = ngx_queue_head(&s->rpcs);
        rpc = ngx_queue_data(q, ngx_http_wirehub_rpc_t, queue);

        ngx_queue_remove(q);
        rpc->session = NULL;

        if (rpc->timer.timer_set) {
            ngx_del_timer(&rpc->timer);
        }

        if (ngx_exiting || ngx_terminate) {
            ngx_http_wirehub_rpc_abort(rpc);
        }
    }

    s->nrpcs = 0;
}


/*
 * The cleanups of the call's request finalize its upstream (the peer
 * connection is closed, its subrequest ends with NGX_DONE, without the
 * post_subrequest handler); then nothing of nginx refers to the call.
 */

static void
ngx_http_wirehub_rpc_abort(ngx_http_wirehub_rpc_t *rpc)
{
    ngx_http_cleanup_t  *cln;

    if (rpc->finished) {
        return;   /* its free is posted */
    }

    rpc->finished = 1;

    cln = rpc->request->cleanup;
    rpc->request->cleanup = NULL;

    for ( /* void */ ; cln; cln = cln->next) {
        if (cln->handler) {
            cln->handler(cln->data);
        }
    }

    ngx_http_wirehub_stat(rpc->main_conf, backend_failed, 1);
    ngx_post_event(&rpc->free_event, &ngx_posted_events);
}


ngx_int_t
ngx_http_wirehub_rpc(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref, ngx_str_t *raw)
{
    char        *text;
    size_t       i, n;
    json_t      *method, *data;
    ngx_int_t    rc;
    const char  *m;

    if (s->conf->rpc_pass.len == 0 || s->srv_ctx == NULL) {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "rpc is not enabled here (wirehub_rpc_pass)", ref);
    }

    method = json_object_get(msg, "method");

    if (!json_is_string(method)
        || json_string_length(method) == 0
        || json_string_length(method) > NGX_HTTP_WIREHUB_MAX_METHOD)
    {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "\"method\" is 1 to 64 of [A-Za-z0-9_.-]", ref);
    }

    m = json_string_value(method);
    n = json_string_length(method);

    for (i = 0; i < n; i++) {
        if (!(isalnum((u_char) m[i]) || m[i] == '_' || m[i] == '.'
              || m[i] == '-'))
        {
            return ngx_http_wirehub_send_client_error(s, "bad_request",
                       "\"method\" is 1 to 64 of [A-Za-z0-9_.-]", ref);
        }
    }

    /* "." and ".." would be path segments: the location sees a clean path */

    if ((n == 1 && m[0] == '.') || (n == 2 && m[0] == '.' && m[1] == '.')) {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "\"method\" is 1 to 64 of [A-Za-z0-9_.-]", ref);
    }

    if (s->nrpcs >= s->conf->rpc_max_inflight) {
        return ngx_http_wirehub_send_client_error(s, "rate_limited",
                   "too many calls in flight (wirehub_rpc_max_inflight)",
                   ref);
    }

    data = json_object_get(msg, "data");

    text = json_dumps(data ? data : json_null(),
                      JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_wirehub_rpc_start(s, &s->conf->rpc_pass, m, n,
                                    (u_char *) text, ngx_strlen(text), ref, 0);
    free(text);

    if (rc != NGX_OK) {
        return ngx_http_wirehub_send_client_error(s, "internal",
                   "the call could not be made", ref);
    }

    return NGX_OK;
}


/*
 * A client event, as the client sent it, to <wirehub_event_pass>/<type>.
 * Nobody awaits an answer; a failed delivery is in nginx's error log.
 * NGX_DECLINED: no wirehub_event_pass here.
 */

ngx_int_t
ngx_http_wirehub_rpc_event(ngx_http_wirehub_session_t *s, const char *type,
    size_t len, ngx_str_t *raw, json_t *ref)
{
    if (s->conf->event_pass.len == 0 || s->srv_ctx == NULL) {
        return NGX_DECLINED;
    }

    if (s->nrpcs >= s->conf->rpc_max_inflight) {
        (void) ngx_http_wirehub_send_client_error(s, "rate_limited",
                   "too many calls in flight (wirehub_rpc_max_inflight)",
                   ref);
        return NGX_BUSY;
    }

    if (ngx_http_wirehub_rpc_start(s, &s->conf->event_pass, type, len,
                                   raw->data, raw->len, ref, 1)
        != NGX_OK)
    {
        (void) ngx_http_wirehub_send_client_error(s, "internal",
                   "the event could not be delivered", ref);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_rpc_start(ngx_http_wirehub_session_t *s, ngx_str_t *pass,
    const char *name, size_t len, u_char *body, size_t size, json_t *ref,
    ngx_uint_t event)
{
    u_char                         *p;
    ngx_pool_t                     *pool;
    ngx_connection_t               *c;
    ngx_http_request_t             *r, *sr;
    ngx_http_wirehub_rpc_t         *rpc;
    ngx_http_post_subrequest_t     *ps;

    pool = ngx_create_pool(NGX_HTTP_WIREHUB_RPC_POOL, s->connection->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rpc = ngx_pcalloc(pool, sizeof(ngx_http_wirehub_rpc_t));
    if (rpc == NULL) {
        goto failed;
    }

    rpc->pool = pool;
    rpc->event = event;
    rpc->main_conf = s->main_conf;
    rpc->free_event.handler = ngx_http_wirehub_rpc_free;
    rpc->free_event.data = rpc;
    rpc->free_event.log = s->connection->log;

    rpc->uri.len = pass->len + 1 + len;
    rpc->uri.data = ngx_pnalloc(pool, rpc->uri.len);
    if (rpc->uri.data == NULL) {
        goto failed;
    }

    p = ngx_cpymem(rpc->uri.data, pass->data, pass->len);
    *p++ = '/';
    ngx_memcpy(p, name, len);

    c = ngx_http_wirehub_rpc_connection(rpc, s->connection);
    if (c == NULL) {
        goto failed;
    }

    r = ngx_http_wirehub_rpc_request(rpc, s, body, size);
    if (r == NULL) {
        goto failed;
    }

    ps = ngx_palloc(pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        goto failed;
    }

    ps->handler = ngx_http_wirehub_rpc_done;
    ps->data = rpc;

    if (ngx_http_subrequest(r, &rpc->uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY)
        != NGX_OK)
    {
        goto failed;
    }

    /* a subrequest is a GET until it runs */

    sr->method = NGX_HTTP_POST;
    ngx_str_set(&sr->method_name, "POST");

    if (ref) {
        rpc->ref = json_incref(ref);
    }

    rpc->session = s;
    ngx_queue_insert_tail(&s->rpcs, &rpc->queue);
    s->nrpcs++;

    rpc->counted = 1;
    ngx_http_wirehub_stat(s->main_conf, backend_calls, 1);

    rpc->free_event.log = c->log;

    if (!event) {
        rpc->timer.handler = ngx_http_wirehub_rpc_timeout;
        rpc->timer.data = rpc;
        rpc->timer.log = c->log;
        rpc->timer.cancelable = 1;
        ngx_add_timer(&rpc->timer, s->conf->rpc_timeout);
    }

    /* from here the call frees itself, whatever happens */

    ngx_http_run_posted_requests(c);

    return NGX_OK;

failed:

    if (rpc && rpc->connection) {
        ngx_http_wirehub_rpc_free(&rpc->free_event);
        return NGX_ERROR;
    }

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


/*
 * A connection without a socket (as for nginx's own fake requests): its
 * events are marked active so nothing tries to register fd -1 with the
 * event loop, and its "write" side is ready, so the upstream hands what
 * it reads on to the in-memory subrequest at once.
 */

static ngx_connection_t *
ngx_http_wirehub_rpc_connection(ngx_http_wirehub_rpc_t *rpc,
    ngx_connection_t *client)
{
    ngx_log_t            *log;
    ngx_connection_t     *c;
    ngx_http_log_ctx_t   *ctx;

    log = ngx_palloc(rpc->pool, sizeof(ngx_log_t));
    ctx = ngx_pcalloc(rpc->pool, sizeof(ngx_http_log_ctx_t));
    rpc->addr_text.data = ngx_pstrdup(rpc->pool, &client->addr_text);

    if (log == NULL || ctx == NULL || rpc->addr_text.data == NULL) {
        return NULL;
    }

    rpc->addr_text.len = client->addr_text.len;

    /* the client's log may go before the call: a copy, with its own data */

    *log = *client->log;
    log->handler = ngx_http_wirehub_rpc_log_error;
    log->data = ctx;
    log->action = "calling the application";

    c = ngx_get_connection((ngx_socket_t) -1, log);
    if (c == NULL) {
        return NULL;
    }

    rpc->connection = c;
    ctx->connection = c;

    c->pool = rpc->pool;
    c->log = log;
    c->log_error = NGX_ERROR_INFO;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);
    c->listening = client->listening;
    c->socklen = client->socklen;
    c->addr_text = rpc->addr_text;
    c->local_socklen = client->local_socklen;
    c->tcp_nodelay = NGX_TCP_NODELAY_DISABLED;
    c->tcp_nopush = NGX_TCP_NOPUSH_DISABLED;
    c->start_time = ngx_current_msec;

    c->read->log = log;
    c->read->handler = ngx_http_wirehub_rpc_event_handler;
    c->read->active = 1;
    c->write->log = log;
    c->write->handler = ngx_http_wirehub_rpc_event_handler;
    c->write->active = 1;
    c->write->ready = 1;

    /*
     * The client's addresses ($remote_addr, $server_addr) are copied: they
     * live in its pool, and the call may outlive the client.
     */

    c->sockaddr = ngx_palloc(rpc->pool, client->socklen);
    c->local_sockaddr = client->local_sockaddr
                        ? ngx_palloc(rpc->pool, client->local_socklen)
                        : NULL;

    if (c->sockaddr == NULL
        || (client->local_sockaddr && c->local_sockaddr == NULL))
    {
        return NULL;
    }

    ngx_memcpy(c->sockaddr, client->sockaddr, client->socklen);

    if (client->local_sockaddr) {
        ngx_memcpy(c->local_sockaddr, client->local_sockaddr,
                   client->local_socklen);
    }

    return c;
}


/*
 * The main request of a call: the WebSocket's server block, a POST of
 * body with the identity headers and nothing else of the client's (its
 * token least of all).  It never runs a phase: its subrequest does.
 */

static ngx_http_request_t *
ngx_http_wirehub_rpc_request(ngx_http_wirehub_rpc_t *rpc,
    ngx_http_wirehub_session_t *s, u_char *body, size_t size)
{
    ngx_buf_t                    *b;
    ngx_str_t                     v;
    ngx_chain_t                  *cl;
    ngx_time_t                   *tp;
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_conf_ctx_t          *ctx;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_wirehub_identity_t  *id;

    c = rpc->connection;
    ctx = s->srv_ctx;
    id = s->identity;

    r = ngx_pcalloc(rpc->pool, sizeof(ngx_http_request_t));
    if (r == NULL) {
        return NULL;
    }

    r->signature = NGX_HTTP_MODULE;
    r->connection = c;
    r->pool = rpc->pool;
    r->main = r;
    r->count = 1;

    r->main_conf = ctx->main_conf;
    r->srv_conf = ctx->srv_conf;
    r->loc_conf = ctx->loc_conf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    r->ctx = ngx_pcalloc(r->pool, sizeof(void *) * ngx_http_max_module);
    r->variables = ngx_pcalloc(r->pool, cmcf->variables.nelts
                                        * sizeof(ngx_http_variable_value_t));
    if (r->ctx == NULL || r->variables == NULL) {
        return NULL;
    }

    if (ngx_list_init(&r->headers_in.headers, r->pool, 6,
                      sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&r->headers_out.headers, r->pool, 1,
                         sizeof(ngx_table_elt_t))
           != NGX_OK
        || ngx_list_init(&r->headers_out.trailers, r->pool, 1,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        return NULL;
    }

    /* a call's own context: how the request finds its call */

    ngx_http_set_ctx(r, rpc, ngx_http_wirehub_module);

    r->method = NGX_HTTP_POST;
    ngx_str_set(&r->method_name, "POST");
    r->http_version = NGX_HTTP_VERSION_11;
    ngx_str_set(&r->http_protocol, "HTTP/1.1");
    r->uri = rpc->uri;
    r->unparsed_uri = rpc->uri;
    r->request_line = rpc->uri;
    r->headers_in.keep_alive_n = -1;
    r->headers_in.content_length_n = size;
    r->uri_changes = NGX_HTTP_MAX_URI_CHANGES + 1;
    r->subrequests = NGX_HTTP_MAX_SUBREQUESTS + 1;
    r->http_state = NGX_HTTP_PROCESS_REQUEST_STATE;
    r->logged = 1;     /* its subrequest is what happened */
    r->read_event_handler = ngx_http_request_empty_handler;
    r->write_event_handler = ngx_http_wirehub_rpc_parent;

    tp = ngx_timeofday();
    r->start_sec = tp->sec;
    r->start_msec = tp->msec;

    ngx_str_set(&v, "application/json");

    if (ngx_http_wirehub_rpc_header(r, "Content-Type", &v) != NGX_OK
        || ngx_http_wirehub_rpc_header(r, "X-Wirehub-Workspace",
                                       &id->workspace) != NGX_OK
        || ngx_http_wirehub_rpc_header(r, "X-Wirehub-Client",
                                       &id->client_id) != NGX_OK
        || ngx_http_wirehub_rpc_header(r, "X-Wirehub-Session",
                                       &s->id_node.str) != NGX_OK
        || ngx_http_wirehub_rpc_header(r, "X-Wirehub-Role",
                                       &ngx_http_wirehub_roles[id->role])
           != NGX_OK)
    {
        return NULL;
    }

    r->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    b = ngx_create_temp_buf(r->pool, size ? size : 1);
    cl = ngx_alloc_chain_link(r->pool);

    if (r->request_body == NULL || b == NULL || cl == NULL) {
        return NULL;
    }

    b->last = ngx_cpymem(b->pos, body, size);
    b->last_buf = 1;
    b->last_in_chain = 1;
    cl->buf = b;
    cl->next = NULL;
    r->request_body->bufs = cl;

    rpc->request = r;
    c->data = r;

    return r;
}


static ngx_int_t
ngx_http_wirehub_rpc_header(ngx_http_request_t *r, char *name,
    ngx_str_t *value)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->key.len = ngx_strlen(name);
    h->key.data = (u_char *) name;
    h->value = *value;

    p = ngx_pnalloc(r->pool, h->key.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h->lowcase_key = p;
    h->hash = ngx_hash_strlow(p, h->key.data, h->key.len);

    if (h->key.len == sizeof("Content-Type") - 1) {
        r->headers_in.content_type = h;
    }

    return NGX_OK;
}


/*
 * The subrequest is over (answer, error or proxy timeout).  NGX_OK is
 * returned whatever happened: the call's own requests end the ordinary
 * way, never through nginx's termination of a client's request, which
 * would close a connection that has no socket.
 */

static ngx_int_t
ngx_http_wirehub_rpc_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_int_t                ok;
    ngx_uint_t               status;
    ngx_http_wirehub_rpc_t  *rpc = data;

    if (rpc->finished) {
        return NGX_OK;
    }

    rpc->finished = 1;

    if (rpc->timer.timer_set) {
        ngx_del_timer(&rpc->timer);
    }

    status = sr->headers_out.status;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        status = rc;

    } else if (rc == NGX_ERROR || status == 0) {
        /* a broken or too big answer (subrequest_output_buffer_size) */
        status = NGX_HTTP_BAD_GATEWAY;
    }

    ok = (status >= 200 && status <= 299);

    if (rpc->session && !rpc->answered && !rpc->event) {
        if (!ok) {
            ngx_http_wirehub_rpc_failed(rpc, status,
                                        "the application failed");

        } else if (ngx_http_wirehub_rpc_answer(rpc, sr, status) != NGX_OK) {
            ok = 0;
        }
    }

    if (ok) {
        ngx_http_wirehub_stat(rpc->main_conf, backend_ok, 1);

    } else {
        ngx_http_wirehub_stat(rpc->main_conf, backend_failed, 1);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_rpc_answer(ngx_http_wirehub_rpc_t *rpc,
    ngx_http_request_t *sr, ngx_uint_t status)
{
    json_t        *data;
    ngx_buf_t     *b;
    json_error_t   err;

    b = sr->out ? sr->out->buf : NULL;

    data = NULL;

    if (b && b->last > b->pos) {
        data = json_loadb((char *) b->pos, b->last - b->pos,
                          JSON_DECODE_ANY, &err);
    }

    if (data == NULL) {
        ngx_http_wirehub_rpc_failed(rpc, status,
                                    "the application's answer is not JSON");
        return NGX_ERROR;
    }

    rpc->answered = 1;

    (void) ngx_http_wirehub_reply(rpc->session,
               json_pack("{s:s,s:o}", "type", "rpc_result", "data", data),
               rpc->ref);

    return NGX_OK;
}


static void
ngx_http_wirehub_rpc_failed(ngx_http_wirehub_rpc_t *rpc, ngx_uint_t status,
    const char *message)
{
    rpc->answered = 1;

    (void) ngx_http_wirehub_reply(rpc->session,
               json_pack("{s:s,s:s,s:s,s:i,s:o}", "type", "error",
                         "code", "rpc_failed", "message", message,
                         "status", (int) status,
                         "timestamp", ngx_http_wirehub_timestamp()),
               rpc->ref);
}


/*
 * wirehub_rpc_timeout: the client hears of it now; the subrequest ends
 * with the location's proxy timeouts and still counts until then.
 */

static void
ngx_http_wirehub_rpc_timeout(ngx_event_t *ev)
{
    ngx_http_wirehub_rpc_t  *rpc = ev->data;

    if (rpc->session && !rpc->answered) {
        ngx_http_wirehub_rpc_failed(rpc, NGX_HTTP_GATEWAY_TIME_OUT,
                                    "the application did not answer in "
                                    "time");
    }
}


/*
 * The main request is woken once its subrequest is done; freeing is
 * posted, as the call stack above still walks the connection's posted
 * requests.
 */

static void
ngx_http_wirehub_rpc_parent(ngx_http_request_t *r)
{
    ngx_http_wirehub_rpc_t  *rpc;

    rpc = ngx_http_get_module_ctx(r, ngx_http_wirehub_module);

    if (!rpc->finished || r->count != 1 || rpc->free_event.posted) {
        return;
    }

    ngx_post_event(&rpc->free_event, &ngx_posted_events);
}


static void
ngx_http_wirehub_rpc_free(ngx_event_t *ev)
{
    ngx_connection_t            *c;
    ngx_http_cleanup_t          *hcln;
    ngx_http_wirehub_rpc_t      *rpc;
    ngx_http_wirehub_session_t  *s;

    rpc = ev->data;
    s = rpc->session;

    if (s) {
        ngx_queue_remove(&rpc->queue);
        s->nrpcs--;
        rpc->session = NULL;
    }

    if (rpc->timer.timer_set) {
        ngx_del_timer(&rpc->timer);
    }

    if (rpc->free_event.posted) {
        ngx_delete_posted_event(&rpc->free_event);
    }

    if (rpc->request) {
        /* what other modules hung on the request (none when all went well) */

        for (hcln = rpc->request->cleanup; hcln; hcln = hcln->next) {
            if (hcln->handler) {
                hcln->handler(hcln->data);
            }
        }

        rpc->request->cleanup = NULL;
    }

    json_decref(rpc->ref);

    if (rpc->counted) {
        ngx_http_wirehub_stat(rpc->main_conf, backend_calls, -1);
    }

    c = rpc->connection;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->read->closed = 1;
    c->write->closed = 1;
    c->destroyed = 1;

    ngx_free_connection(c);

    ngx_destroy_pool(rpc->pool);
}


/*
 * What nginx's request handler does for a connection: the events of a
 * call's connection come only from timers and posts (limit_req's delay,
 * a postponed write), and go to its active request.
 */

static void
ngx_http_wirehub_rpc_event_handler(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    c = ev->data;
    r = c->data;

    ngx_http_set_log_request(c->log, r);

    if (ev->write) {
        r->write_event_handler(r);

    } else {
        r->read_event_handler(r);
    }

    ngx_http_run_posted_requests(c);
}


static u_char *
ngx_http_wirehub_rpc_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char              *p;
    ngx_http_log_ctx_t  *ctx;
    ngx_http_request_t  *r;

    ctx = log->data;
    p = buf;

    if (log->action) {
        p = ngx_snprintf(p, len, " while %s", log->action);
        len -= p - buf;
        buf = p;
    }

    p = ngx_snprintf(p, len, ", client: %V", &ctx->connection->addr_text);
    len -= p - buf;
    buf = p;

    r = ctx->current_request;

    if (r) {
        p = ngx_snprintf(p, len, ", wirehub call: \"%V\"", &r->uri);
    }

    return p;
}
