
/*
 * Wirehub: taking a connection over from nginx once its handshake is done.
 * Until the 101 is out the connection still belongs to the request; then
 * the request is freed and only the session remains.
 */


#include "ngx_http_wirehub_session.h"
#include "ngx_http_wirehub_auth.h"


static void ngx_http_wirehub_attach_event(ngx_event_t *ev);
static ngx_int_t ngx_http_wirehub_detach(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_ctx_t *ctx);
static ngx_int_t ngx_http_wirehub_keep_request_pool(ngx_http_request_t *r);
static void ngx_http_wirehub_destroy_pool(void *data);


/*
 * Called once the 101 response is out (or queued), from the content
 * handler: nothing here may finalize the request, so a failure is only
 * recorded and acted upon from the posted write event.
 */

void
ngx_http_wirehub_takeover(ngx_http_wirehub_session_t *s)
{
    ngx_connection_t          *c;
    ngx_http_core_loc_conf_t  *clcf;

    c = s->connection;

    /*
     * Own the connection's events: nginx's request handler would tear the
     * connection down on graceful shutdown, where a WebSocket is owed a
     * close frame (1001) first.  c->idle makes nginx call us on shutdown.
     */

    s->http_read_handler = c->read->handler;
    s->http_write_handler = c->write->handler;
    c->read->handler = ngx_http_wirehub_attach_event;
    c->write->handler = ngx_http_wirehub_attach_event;
    c->idle = 1;

    c->log->action = ngx_http_wirehub_is_sse(s) ? "serving SSE stream"
                                                : "serving WebSocket";

    /*
     * Messages are small and latency matters: Nagle with delayed ACKs
     * would hold a second frame for 40 ms.
     */

    clcf = ngx_http_get_module_loc_conf(s->request, ngx_http_core_module);

    if (clcf->tcp_nodelay && ngx_tcp_nodelay(c) != NGX_OK) {
        s->failed = 1;
        s->close_sent = 1;
    }

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
        s->identity = ngx_http_wirehub_identity_copy(c->pool, ctx->identity);
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


static void
ngx_http_wirehub_destroy_pool(void *data)
{
    ngx_destroy_pool(data);
}
