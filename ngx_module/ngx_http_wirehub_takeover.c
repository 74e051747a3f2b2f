
/*
 * Wirehub: taking a connection over from nginx once its handshake is done,
 * and handing it back, or closing it, at the end.
 */


#include "ngx_http_wirehub_module.h"


static ngx_int_t ngx_http_wirehub_detach(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_ctx_t *ctx);


/*
 * Closes the connection.  With linger, the write side is shut down first
 * and input is drained for up to a second, so that the close frame is not
 * lost to a reset when the client was still sending.  Before the session
 * is detached from its request (a failure right after the handshake),
 * nginx finalizes the request as usual.
 */

void
ngx_http_wirehub_finalize(ngx_http_wirehub_session_t *s, ngx_uint_t linger)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    if (s->closed) {
        return;
    }

    c = s->connection;

    if (s->request) {
        r = s->request;
        s->closed = 1;

        c->read->handler = s->http_read_handler;
        c->write->handler = s->http_write_handler;
        c->idle = 0;

        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
        r->lingering_close = linger;

        ngx_http_finalize_request(r, NGX_OK);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (linger && !c->error && c->ssl == NULL
        && ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == 0)
    {
        s->lingering = 1;
        s->close_deadline = ngx_current_msec
                            + NGX_HTTP_WIREHUB_CLOSE_TIMEOUT;

        if (s->timer.timer_set) {
            ngx_del_timer(&s->timer);
        }

        ngx_add_timer(&s->timer, NGX_HTTP_WIREHUB_CLOSE_TIMEOUT);
        ngx_http_wirehub_linger(s);
        return;
    }

    ngx_http_wirehub_close(s);
}


void
ngx_http_wirehub_close(ngx_http_wirehub_session_t *s)
{
    ngx_connection_t  *c;

    c = s->connection;

    /* the session lives in c->pool: its cleanup runs before the pool goes */

    ngx_http_wirehub_session_cleanup(s);
    c->idle = 0;

    ngx_http_close_connection(c);
}


/* after a failure: read and drop until the client closes, or a second */

void
ngx_http_wirehub_linger(ngx_http_wirehub_session_t *s)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = s->connection;

    for ( ;; ) {
        n = c->recv(c, s->main_conf->recv_buf, s->main_conf->recv_size);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_http_wirehub_close(s);
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_wirehub_close(s);
            return;
        }
    }
}


/*
 * The first event after the handshake: once the 101 response is out, the
 * HTTP request is freed (and logged) and the connection keeps only the
 * session: a few hundred bytes instead of a request pool and header
 * buffers.
 */

void
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

    if (n && ngx_http_wirehub_consume(s, s->main_conf->recv_buf, n)
             != NGX_OK)
    {
        return NGX_ERROR;
    }

    return s->closed ? NGX_ERROR : NGX_OK;
}


void
ngx_http_wirehub_session_cleanup(void *data)
{
    ngx_http_wirehub_session_t *s = data;

    if (!s->upgraded || s->cleaned) {
        return;
    }

    s->cleaned = 1;

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    if (s->timer.posted) {
        ngx_delete_posted_event(&s->timer);
    }

    ngx_http_wirehub_drop_queue(s, 0);

    while (!ngx_queue_empty(&s->pending)) {
        ngx_http_wirehub_pending_cancel(
            ngx_queue_data(ngx_queue_head(&s->pending),
                           ngx_http_wirehub_pending_t, queue));
    }

    ngx_http_wirehub_session_unsubscribe_all(s);
    ngx_http_wirehub_session_gone(s, s->shutting_down ? "shutdown"
                                                      : "closed");

    if (s->msg) {
        ngx_free(s->msg);
        s->msg = NULL;
    }

    ngx_queue_remove(&s->queue);
    s->main_conf->nsessions--;
    s->closed = 1;

    ngx_http_wirehub_stat(s->main_conf, connections, -1);
    ngx_http_wirehub_stat(s->main_conf, worker_connections[ngx_worker], -1);
    ngx_http_wirehub_stat(s->main_conf, closes[s->close_reason], 1);
}
