
/*
 * Wirehub: taking a connection over from nginx once its handshake is done.
 * Until the 101 is out the connection still belongs to the request; then
 * the request is freed and only the session remains, and the session's
 * pool becomes the connection's: one allocation per idle connection.
 */


#include "ngx_http_wirehub_session.h"
#include "ngx_http_wirehub_auth.h"


static void ngx_http_wirehub_attach_event(ngx_event_t *ev);
static ngx_int_t ngx_http_wirehub_detach(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_ctx_t *ctx);
static ngx_int_t ngx_http_wirehub_keep_request_pool(ngx_http_request_t *r);
static void ngx_http_wirehub_compact(ngx_http_wirehub_session_t *s);
static ngx_uint_t ngx_http_wirehub_in_pool(ngx_pool_t *pool, void *p);
static ngx_int_t ngx_http_wirehub_move_cleanups(ngx_http_wirehub_session_t *s,
    ngx_pool_t *from);


/*
 * Called once the 101 response is out (or queued), from the content
 * handler: nothing here may finalize the request, so a failure is only
 * recorded and acted upon from the posted write event.
 */

void
ngx_http_wirehub_takeover(ngx_http_wirehub_session_t *s)
{
    ngx_connection_t          *c;
    ngx_http_wirehub_ctx_t    *ctx;
    ngx_http_core_loc_conf_t  *clcf;

    c = s->connection;
    ctx = ngx_http_get_module_ctx(s->request, ngx_http_wirehub_module);

    /*
     * Own the connection's events: nginx's request handler would tear the
     * connection down on graceful shutdown, where a WebSocket is owed a
     * close frame (1001) first.  c->idle makes nginx call us on shutdown.
     */

    ctx->http_read_handler = c->read->handler;
    ctx->http_write_handler = c->write->handler;
    c->read->handler = ngx_http_wirehub_attach_event;
    c->write->handler = ngx_http_wirehub_attach_event;
    c->idle = 1;

    c->log->action = ngx_http_wirehub_is_sse(s) ? "serving SSE stream"
                                                : "serving WebSocket";

    /*
     * Messages are small and latency matters: Nagle with delayed ACKs
     * would hold a second frame for 40 ms.  The first write (the 101)
     * goes at once anyway, so TCP_NODELAY is set before the second: a
     * connection that closes after its connection_status costs no
     * system call for it.
     */

    clcf = ngx_http_get_module_loc_conf(s->request, ngx_http_core_module);
    s->nodelay = clcf->tcp_nodelay;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ngx_http_wirehub_session_start(s);
}


/*
 * The first event after the handshake: once the 101 response is out, the
 * HTTP request is freed (and logged) and the connection keeps only the
 * session: a few hundred bytes instead of a request pool and header
 * buffers.
 */

static void
ngx_http_wirehub_attach_event(ngx_event_t *ev)
{
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_wirehub_ctx_t      *ctx;
    ngx_http_wirehub_session_t  *s;

    c = ev->data;
    r = c->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_wirehub_module);
    s = ctx->session;

    if (ngx_http_wirehub_detach(s, ctx) != NGX_OK) {
        return;
    }

    if (ev->write) {
        ngx_http_wirehub_write_event(ev);

    } else {
        ngx_http_wirehub_read_event(ev);
    }
}


static ngx_int_t
ngx_http_wirehub_detach(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_ctx_t *ctx)
{
    size_t                  n;
    ngx_chain_t            *cl;
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_connection_t  *hc;

    r = s->request;
    c = s->connection;

    /* the 101 the write filter held back: it goes with the first frames */

    if (r->out && !c->buffered) {
        switch (ngx_http_wirehub_send_head(s, r->out)) {

        case NGX_OK:
            r->out = NULL;
            break;

        case NGX_ERROR:
            ngx_http_wirehub_finalize(s, 0);
            return NGX_ERROR;

        default:
            break;
        }
    }

    if (r->out || c->buffered) {
        /* the tail of the 101 response, if the socket was full then */

        if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
            ngx_http_wirehub_finalize(s, 0);
            return NGX_ERROR;
        }

        if (r->out || c->buffered) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ngx_http_wirehub_finalize(s, 0);
            }

            return NGX_AGAIN;
        }
    }

    if (ctx->identity) {
        s->identity = ngx_http_wirehub_identity_copy(s->pool, ctx->identity);
        if (s->identity == NULL) {
            ngx_http_wirehub_finalize(s, 0);
            return NGX_ERROR;
        }
    }

    /* frames right behind the handshake: kept before the buffers go */

    n = r->header_in->last - r->header_in->pos;

    if (n > s->main_conf->recv_size) {
        ngx_http_wirehub_finalize(s, 0);
        return NGX_ERROR;
    }

    ngx_memcpy(s->main_conf->recv_buf, r->header_in->pos, n);

    hc = r->http_connection;

    if (ngx_http_wirehub_keep_request_pool(r) != NGX_OK) {
        ngx_http_wirehub_finalize(s, 0);
        return NGX_ERROR;
    }

    ngx_http_free_request(r, 0);

    s->request = NULL;
    c->data = s;
    c->read->handler = ngx_http_wirehub_read_event;
    c->write->handler = ngx_http_wirehub_write_event;

    for (cl = hc->busy; cl; cl = cl->next) {
        ngx_pfree(c->pool, cl->buf->start);
    }

    for (cl = hc->free; cl; cl = cl->next) {
        ngx_pfree(c->pool, cl->buf->start);
    }

    hc->busy = NULL;
    hc->free = NULL;
    hc->nbusy = 0;

    if (c->buffer && c->buffer->start) {
        ngx_pfree(c->pool, c->buffer->start);
        c->buffer->start = NULL;
        c->buffer->pos = NULL;
        c->buffer->last = NULL;
        c->buffer->end = NULL;
    }

    ngx_http_wirehub_compact(s);

    if (n && !ngx_http_wirehub_is_sse(s)
        && ngx_http_wirehub_consume(s, s->main_conf->recv_buf, n)
             != NGX_OK)
    {
        return NGX_ERROR;
    }

    return s->closed ? NGX_ERROR : NGX_OK;
}


/*
 * What other modules hold for as long as a request lives (limit_conn's
 * count, realip's address) goes with cleanups of the request's pool.  To
 * them a WebSocket is one long request: when there are such cleanups, the
 * pool is kept until the connection closes, and nginx frees an empty one
 * in its place.  Without them, the request's memory goes at once.
 */

static ngx_int_t
ngx_http_wirehub_keep_request_pool(ngx_http_request_t *r)
{
    ngx_pool_t          *pool;
    ngx_pool_cleanup_t  *cln;

    if (r->pool->cleanup == NULL) {
        return NGX_OK;
    }

    /* room for what logging the request allocates */

    pool = ngx_create_pool(1024, r->connection->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->connection->pool, 0);
    if (cln == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_wirehub_destroy_pool;
    cln->data = r->pool;

    r->pool = pool;

    return NGX_OK;
}


void
ngx_http_wirehub_destroy_pool(void *data)
{
    ngx_destroy_pool(data);
}


/*
 * The connection's pool holds, once the request is gone, little that is
 * still used (its log, the client's address, cleanups) in a block of
 * connection_pool_size bytes: that goes into the session's pool, which
 * becomes the connection's.  Not with TLS or the PROXY protocol (their
 * state lives in the connection's pool too) nor when a cleanup's data
 * does: those connections keep both pools, as before.
 */

static void
ngx_http_wirehub_compact(ngx_http_wirehub_session_t *s)
{
    u_char              *text;
    ngx_log_t           *log;
    ngx_pool_t          *old, *pool;
    ngx_sockaddr_t      *sa, *local;
    ngx_connection_t    *c;
    ngx_pool_cleanup_t  *cln;
    ngx_http_log_ctx_t  *ctx;

    c = s->connection;
    old = c->pool;
    pool = s->pool;

    if (!ngx_http_wirehub_compactable(c) || old == pool) {
        return;
    }

    for (cln = old->cleanup; cln; cln = cln->next) {
        if (cln->handler != NULL && cln->data != pool
            && ngx_http_wirehub_in_pool(old, cln->data))
        {
            return;
        }
    }

    log = ngx_palloc(pool, sizeof(ngx_log_t));
    ctx = ngx_palloc(pool, sizeof(ngx_http_log_ctx_t));
    sa = ngx_palloc(pool, c->socklen);
    text = ngx_pnalloc(pool, c->addr_text.len);
    local = NULL;

    if (c->local_sockaddr && ngx_http_wirehub_in_pool(old, c->local_sockaddr))
    {
        local = ngx_palloc(pool, c->local_socklen);
        if (local == NULL) {
            return;
        }
    }

    if (log == NULL || ctx == NULL || sa == NULL || text == NULL
        || ngx_http_wirehub_move_cleanups(s, old) != NGX_OK)
    {
        return;
    }

    /* an HTTP connection's log context: ngx_http_init_connection() */

    *log = *c->log;
    *ctx = *(ngx_http_log_ctx_t *) c->log->data;
    log->data = ctx;

    c->log = log;
    c->read->log = log;
    c->write->log = log;
    s->timer.log = log;
    pool->log = log;

    ngx_memcpy(sa, c->sockaddr, c->socklen);
    c->sockaddr = &sa->sockaddr;

    ngx_memcpy(text, c->addr_text.data, c->addr_text.len);
    c->addr_text.data = text;

    if (local) {
        ngx_memcpy(local, c->local_sockaddr, c->local_socklen);
        c->local_sockaddr = &local->sockaddr;
    }

    /* emptied by the caller, in the old pool */
    c->buffer = NULL;

    c->pool = pool;
    ngx_destroy_pool(old);
}


/* TLS and the PROXY protocol keep their state in the connection's pool */

ngx_uint_t
ngx_http_wirehub_compactable(ngx_connection_t *c)
{
#if (NGX_SSL)
    if (c->ssl) {
        return 0;
    }
#endif

    return c->proxy_protocol == NULL;
}


/* p is in one of the pool's blocks, or is one of its large allocations */

static ngx_uint_t
ngx_http_wirehub_in_pool(ngx_pool_t *pool, void *p)
{
    ngx_pool_t        *b;
    ngx_pool_large_t  *l;

    for (b = pool; b; b = b->d.next) {
        if ((u_char *) p >= (u_char *) b && (u_char *) p < b->d.end) {
            return 1;
        }
    }

    for (l = pool->large; l; l = l->next) {
        if (l->alloc == p) {
            return 1;
        }
    }

    return 0;
}


/*
 * The cleanups of the connection's pool go to the session's, in the same
 * order, the session's own where the one that destroyed its pool was.
 * Nothing is left to run when the old pool goes.  Everything is allocated
 * before anything is linked: a failure changes nothing.
 */

static ngx_int_t
ngx_http_wirehub_move_cleanups(ngx_http_wirehub_session_t *s,
    ngx_pool_t *from)
{
    ngx_uint_t            n, found;
    ngx_pool_t           *pool;
    ngx_pool_cleanup_t   *cln, *copy, *head, **last;

    pool = s->pool;
    n = 0;
    found = 0;

    for (cln = from->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_wirehub_destroy_pool
            && cln->data == pool)
        {
            found = 1;

        } else if (cln->handler != NULL) {
            n++;
        }
    }

    copy = NULL;

    if (!found
        || (n && (copy = ngx_palloc(pool, n * sizeof(ngx_pool_cleanup_t)))
                 == NULL))
    {
        return NGX_ERROR;
    }

    head = NULL;
    last = &head;

    for (cln = from->cleanup; cln; cln = cln->next) {

        if (cln->handler == NULL) {
            continue;
        }

        if (cln->handler == ngx_http_wirehub_destroy_pool
            && cln->data == pool)
        {
            *last = pool->cleanup;

            while (*last) {
                last = &(*last)->next;
            }

            continue;
        }

        copy->handler = cln->handler;
        copy->data = cln->data;
        copy->next = NULL;

        *last = copy;
        last = &copy->next;
        copy++;
    }

    pool->cleanup = head;
    from->cleanup = NULL;

    return NGX_OK;
}
