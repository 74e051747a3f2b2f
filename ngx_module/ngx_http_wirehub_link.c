
/*
 * Wirehub: the link from this nginx worker process to wirehubd, a
 * non-blocking Unix-socket connection in the worker's event loop speaking
 * the protocol of worker/LINK.md.  It is opened at worker start and
 * reopened with exponential backoff and jitter whenever it is lost; what
 * it carried (sessions, subscriptions) is re-announced on every reconnect.
 */


#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_counters.h"
#include <sys/un.h>


#define NGX_HTTP_WIREHUB_BACKOFF_MIN    100
#define NGX_HTTP_WIREHUB_BACKOFF_MAX    5000
#define NGX_HTTP_WIREHUB_LINK_PING      5000
#define NGX_HTTP_WIREHUB_LINK_DEAD      15000
#define NGX_HTTP_WIREHUB_LINK_MAX_OUT   (64 * 1024 * 1024)
/* queued output that is sent at once, not at the end of the turn */
#define NGX_HTTP_WIREHUB_LINK_EAGER     (8 * 1024)
#define NGX_HTTP_WIREHUB_LINK_READ      65536


enum {
    NGX_HTTP_WIREHUB_LINK_DOWN = 0,
    NGX_HTTP_WIREHUB_LINK_HELLO,
    NGX_HTTP_WIREHUB_LINK_UP
};


struct ngx_http_wirehub_link_s {
    ngx_http_wirehub_main_conf_t    *wmcf;
    ngx_log_t                       *log;
    ngx_connection_t                *connection;
    struct sockaddr_un               sockaddr;
    wh_buf_t                         in;
    wh_buf_t                         out;
    ngx_event_t                      reconnect;
    ngx_event_t                      keepalive;
    ngx_msec_t                       backoff;
    ngx_msec_t                       last_rx;
    ngx_rbtree_t                     pending;
    ngx_rbtree_node_t                sentinel;
    uint64_t                         queued;     /* bytes ever queued */
    uint32_t                         next_req_id;
    ngx_uint_t                       state;
    ngx_uint_t                       reconnects;
    ngx_uint_t                       logged_down;
    const ngx_http_wirehub_link_handlers_t  *handlers;
    unsigned                         egress:1;   /* EVENTs go to MQTT */
};


static void ngx_http_wirehub_link_connect(ngx_http_wirehub_link_t *link);
static void ngx_http_wirehub_link_reconnect_event(ngx_event_t *ev);
static void ngx_http_wirehub_link_keepalive_event(ngx_event_t *ev);
static void ngx_http_wirehub_link_read_event(ngx_event_t *rev);
static void ngx_http_wirehub_link_write_event(ngx_event_t *wev);
static void ngx_http_wirehub_link_lost(ngx_http_wirehub_link_t *link,
    const char *why);
static ngx_int_t ngx_http_wirehub_link_dispatch(
    ngx_http_wirehub_link_t *link, wh_link_msg_t *m);
static ngx_http_wirehub_pending_t *ngx_http_wirehub_pending_find(
    ngx_http_wirehub_link_t *link, uint32_t req_id);
static void ngx_http_wirehub_pending_free(ngx_http_wirehub_pending_t *p);
static ngx_int_t ngx_http_wirehub_link_write(ngx_http_wirehub_link_t *link,
    wh_link_msg_t *m);


ngx_int_t
ngx_http_wirehub_link_init(ngx_cycle_t *cycle,
    ngx_http_wirehub_main_conf_t *wmcf,
    const ngx_http_wirehub_link_handlers_t *handlers)
{
    ngx_http_wirehub_link_t  *link;

    if (wmcf->daemon_off) {
        return NGX_OK;
    }

    if (wmcf->daemon.len >= sizeof(link->sockaddr.sun_path)) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "wirehub: daemon socket path \"%V\" is too long",
                      &wmcf->daemon);
        return NGX_ERROR;
    }

    link = ngx_calloc(sizeof(ngx_http_wirehub_link_t), cycle->log);
    if (link == NULL) {
        return NGX_ERROR;
    }

    link->wmcf = wmcf;
    link->handlers = handlers;
    link->log = cycle->log;
    link->sockaddr.sun_family = AF_UNIX;
    ngx_memcpy(link->sockaddr.sun_path, wmcf->daemon.data, wmcf->daemon.len);

    ngx_rbtree_init(&link->pending, &link->sentinel,
                    ngx_rbtree_insert_value);

    link->reconnect.handler = ngx_http_wirehub_link_reconnect_event;
    link->reconnect.data = link;
    link->reconnect.log = cycle->log;
    link->reconnect.cancelable = 1;

    link->keepalive.handler = ngx_http_wirehub_link_keepalive_event;
    link->keepalive.data = link;
    link->keepalive.log = cycle->log;
    link->keepalive.cancelable = 1;

    link->backoff = NGX_HTTP_WIREHUB_BACKOFF_MIN;
    link->next_req_id = 1;

    wmcf->link = link;

    ngx_http_wirehub_link_connect(link);

    return NGX_OK;
}


void
ngx_http_wirehub_link_exit(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_http_wirehub_link_t  *link;

    link = wmcf->link;
    if (link == NULL) {
        return;
    }

    if (link->connection) {
        ngx_close_connection(link->connection);
        link->connection = NULL;
    }

    wh_buf_free(&link->in);
    wh_buf_free(&link->out);
}


ngx_int_t
ngx_http_wirehub_link_up(ngx_http_wirehub_main_conf_t *wmcf)
{
    return wmcf->link && wmcf->link->state == NGX_HTTP_WIREHUB_LINK_UP;
}


ngx_int_t
ngx_http_wirehub_link_egress(ngx_http_wirehub_main_conf_t *wmcf)
{
    return ngx_http_wirehub_link_up(wmcf) && wmcf->link->egress;
}


static void
ngx_http_wirehub_link_connect(ngx_http_wirehub_link_t *link)
{
    int                fd;
    ngx_err_t          err;
    ngx_connection_t  *c;
    wh_link_msg_t      hello;
    u_char             name[32];

    fd = ngx_socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd == (ngx_socket_t) -1) {
        ngx_log_error(NGX_LOG_ALERT, link->log, ngx_socket_errno,
                      "wirehub: socket() for the link failed");
        goto retry;
    }

    if (ngx_nonblocking(fd) == -1) {
        ngx_log_error(NGX_LOG_ALERT, link->log, ngx_socket_errno,
                      "wirehub: " ngx_nonblocking_n " failed");
        ngx_close_socket(fd);
        goto retry;
    }

    if (connect(fd, (struct sockaddr *) &link->sockaddr,
                sizeof(struct sockaddr_un))
        == -1)
    {
        err = ngx_socket_errno;

        if (err != NGX_EINPROGRESS && err != NGX_EAGAIN) {
            /* wirehubd is not there (yet): say so once per outage */
            if (!link->logged_down) {
                ngx_log_error(NGX_LOG_WARN, link->log, err,
                              "wirehub: cannot reach wirehubd at \"%s\", "
                              "retrying", link->sockaddr.sun_path);
                link->logged_down = 1;
            }

            ngx_close_socket(fd);
            goto retry;
        }
    }

    c = ngx_get_connection(fd, link->log);
    if (c == NULL) {
        ngx_close_socket(fd);
        goto retry;
    }

    c->data = link;
    c->read->log = link->log;
    c->write->log = link->log;
    c->read->handler = ngx_http_wirehub_link_read_event;
    c->write->handler = ngx_http_wirehub_link_write_event;
    c->recv = ngx_recv;
    c->send = ngx_send;
    c->log_error = NGX_ERROR_INFO;

    link->connection = c;
    link->state = NGX_HTTP_WIREHUB_LINK_HELLO;
    link->last_rx = ngx_current_msec;
    link->in.len = 0;
    link->out.len = 0;

    /*
     * A UNIX socket reports itself writable whenever wirehubd has read
     * from it, so a write event watched all along would wake the worker
     * for every batch wirehubd takes in.  It is watched until the first
     * write has gone (the HELLO: this may run outside the event loop, in
     * a worker's init, where only the socket's first EPOLLOUT makes
     * epoll_wait() return to the posted write), then only while output
     * waits for room.
     */

    if (ngx_handle_read_event(c->read, 0) != NGX_OK
        || ngx_handle_write_event(c->write, 0) != NGX_OK)
    {
        ngx_http_wirehub_link_lost(link, "cannot add events");
        return;
    }

    wh_link_hello(&hello, (uint32_t) ngx_pid,
                  ngx_http_wirehub_wh_str(name,
                      ngx_sprintf(name, "nginx/%P", ngx_pid) - name));

    if (ngx_http_wirehub_link_write(link, &hello) != NGX_OK) {
        ngx_http_wirehub_link_lost(link, "cannot send HELLO");
        return;
    }

    ngx_add_timer(&link->keepalive, NGX_HTTP_WIREHUB_LINK_PING);

    return;

retry:

    /* exponential backoff with jitter: from half to all of the step */

    ngx_add_timer(&link->reconnect,
                  link->backoff / 2 + ngx_random() % (link->backoff / 2 + 1));

    link->backoff = ngx_min(link->backoff * 2, NGX_HTTP_WIREHUB_BACKOFF_MAX);
}


static void
ngx_http_wirehub_link_reconnect_event(ngx_event_t *ev)
{
    ngx_http_wirehub_link_t  *link;

    link = ev->data;

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    link->reconnects++;
    ngx_http_wirehub_stat(link->wmcf, link_reconnects, 1);
    ngx_http_wirehub_link_connect(link);
}


static void
ngx_http_wirehub_link_keepalive_event(ngx_event_t *ev)
{
    wh_link_msg_t             ping;
    ngx_http_wirehub_link_t  *link;

    link = ev->data;

    if (link->connection == NULL) {
        return;
    }

    if (ngx_current_msec - link->last_rx > NGX_HTTP_WIREHUB_LINK_DEAD) {
        ngx_http_wirehub_link_lost(link, "wirehubd stopped answering");
        return;
    }

    ngx_memzero(&ping, sizeof(wh_link_msg_t));
    ping.type = WH_LINK_PING;

    if (ngx_http_wirehub_link_write(link, &ping) != NGX_OK) {
        ngx_http_wirehub_link_lost(link, "cannot send PING");
        return;
    }

    ngx_add_timer(&link->keepalive, NGX_HTTP_WIREHUB_LINK_PING);
}


/*
 * Everything bound for wirehubd is appended to one buffer, written from
 * the posted write event: the frames of an event-loop turn go out in one
 * send(), or in one per NGX_HTTP_WIREHUB_LINK_EAGER of them.
 */

static ngx_int_t
ngx_http_wirehub_link_write(ngx_http_wirehub_link_t *link, wh_link_msg_t *m)
{
    size_t             len;
    ssize_t            n;
    ngx_connection_t  *c;

    c = link->connection;

    if (c == NULL) {
        return NGX_DECLINED;
    }

    if (link->out.len > NGX_HTTP_WIREHUB_LINK_MAX_OUT) {
        return NGX_ERROR;
    }

    len = link->out.len;

    if (wh_link_encode(&link->out, m) != 0) {
        ngx_log_error(NGX_LOG_ERR, link->log, 0,
                      "wirehub: cannot encode %s for the link",
                      wh_link_type_name(m->type));
        return NGX_ERROR;
    }

    link->queued += link->out.len - len;

    if (!c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    /*
     * A long turn of the event loop (hundreds of connections ready)
     * would hold wirehubd idle until its end: past a few KB the frames go
     * now.  Only a send: EAGAIN and errors are the posted event's.
     */
    if (link->out.len >= NGX_HTTP_WIREHUB_LINK_EAGER && c->write->ready) {
        n = c->send(c, link->out.data, link->out.len);

        if (n > 0) {
            wh_buf_consume(&link->out, (size_t) n);
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_wirehub_link_send(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m)
{
    ngx_int_t                 rc;
    ngx_http_wirehub_link_t  *link;

    link = wmcf->link;

    if (link == NULL || link->state != NGX_HTTP_WIREHUB_LINK_UP) {
        return NGX_DECLINED;
    }

    rc = ngx_http_wirehub_link_write(link, m);

    if (rc == NGX_ERROR) {
        ngx_http_wirehub_link_lost(link, "output overflow");
        return NGX_DECLINED;
    }

    return rc;
}


/*
 * How far the link has got, for callers that account their own share of
 * it: the bytes ever queued for wirehubd, and in *backlog how many of
 * them wait to be written (the rest are written, or were dropped with a
 * lost link).
 */

uint64_t
ngx_http_wirehub_link_queued(ngx_http_wirehub_main_conf_t *wmcf,
    size_t *backlog)
{
    ngx_http_wirehub_link_t  *link;

    link = wmcf->link;

    if (link == NULL) {
        *backlog = 0;
        return 0;
    }

    *backlog = link->out.len;

    return link->queued;
}


/*
 * Sends a request and remembers who waits for its answer; NULL when the
 * link is down (the caller answers "unavailable").
 */

ngx_http_wirehub_pending_t *
ngx_http_wirehub_link_request(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m, ngx_http_wirehub_reply_pt handler, void *data)
{
    ngx_http_wirehub_link_t     *link;
    ngx_http_wirehub_pending_t  *p;

    link = wmcf->link;

    if (link == NULL || link->state != NGX_HTTP_WIREHUB_LINK_UP) {
        return NULL;
    }

    p = ngx_calloc(sizeof(ngx_http_wirehub_pending_t), link->log);
    if (p == NULL) {
        return NULL;
    }

    m->req_id = link->next_req_id++;

    if (link->next_req_id == 0) {
        link->next_req_id = 1;
    }

    if (ngx_http_wirehub_link_send(wmcf, m) != NGX_OK) {
        ngx_free(p);
        return NULL;
    }

    p->node.key = m->req_id;
    p->handler = handler;
    p->data = data;
    ngx_queue_init(&p->queue);

    ngx_rbtree_insert(&link->pending, &p->node);

    return p;
}


/* the owner is gone: the answer, when it comes, is dropped */

void
ngx_http_wirehub_pending_cancel(ngx_http_wirehub_pending_t *p)
{
    p->data = NULL;

    if (!ngx_queue_empty(&p->queue)) {
        ngx_queue_remove(&p->queue);
        ngx_queue_init(&p->queue);
    }

    if (p->info) {
        json_decref(p->info);
        p->info = NULL;
    }

    ngx_free(p->note);
    p->note = NULL;
}


static ngx_http_wirehub_pending_t *
ngx_http_wirehub_pending_find(ngx_http_wirehub_link_t *link, uint32_t req_id)
{
    ngx_rbtree_node_t  *node, *sentinel;

    node = link->pending.root;
    sentinel = link->pending.sentinel;

    while (node != sentinel) {

        if (req_id < node->key) {
            node = node->left;
            continue;
        }

        if (req_id > node->key) {
            node = node->right;
            continue;
        }

        return (ngx_http_wirehub_pending_t *) node;
    }

    return NULL;
}


static void
ngx_http_wirehub_pending_done(ngx_http_wirehub_link_t *link,
    ngx_http_wirehub_pending_t *p)
{
    ngx_rbtree_delete(&link->pending, &p->node);
    ngx_http_wirehub_pending_free(p);
}


static void
ngx_http_wirehub_pending_free(ngx_http_wirehub_pending_t *p)
{
    if (!ngx_queue_empty(&p->queue)) {
        ngx_queue_remove(&p->queue);
    }

    if (p->info) {
        json_decref(p->info);
    }

    ngx_free(p->note);
    ngx_free(p);
}


static void
ngx_http_wirehub_link_write_event(ngx_event_t *wev)
{
    ssize_t                   n;
    ngx_connection_t         *c;
    ngx_http_wirehub_link_t  *link;

    c = wev->data;
    link = c->data;

    while (link->out.len) {
        n = c->send(c, link->out.data, link->out.len);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_wirehub_link_lost(link, "cannot add write event");
            }

            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_wirehub_link_lost(link, "write failed");
            return;
        }

        wh_buf_consume(&link->out, (size_t) n);
    }

    if (wev->active
        && ngx_del_event(wev, NGX_WRITE_EVENT, NGX_CLEAR_EVENT) != NGX_OK)
    {
        ngx_http_wirehub_link_lost(link, "cannot delete write event");
    }
}


static void
ngx_http_wirehub_link_read_event(ngx_event_t *rev)
{
    size_t                    flen, pos;
    ssize_t                   n;
    ngx_int_t                 rc;
    const char               *err;
    wh_link_msg_t             m;
    ngx_connection_t         *c;
    ngx_http_wirehub_link_t  *link;

    c = rev->data;
    link = c->data;

    for ( ;; ) {

        if (wh_buf_reserve(&link->in, NGX_HTTP_WIREHUB_LINK_READ) != 0) {
            ngx_http_wirehub_link_lost(link, "out of memory");
            return;
        }

        n = c->recv(c, link->in.data + link->in.len,
                    link->in.cap - link->in.len);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_wirehub_link_lost(link, "wirehubd closed the link");
            return;
        }

        link->in.len += n;
        link->last_rx = ngx_current_msec;

        /* frames are decoded in place; the buffer moves once per read */

        for (pos = 0; /* void */; pos += flen) {
            rc = wh_link_frame_len(link->in.data + pos, link->in.len - pos,
                                   &flen);

            if (rc == 0) {
                break;
            }

            if (rc < 0
                || wh_link_decode(link->in.data + pos, flen, &m, &err) != 0)
            {
                ngx_http_wirehub_link_lost(link, "malformed frame");
                return;
            }

            if (ngx_http_wirehub_link_dispatch(link, &m) != NGX_OK
                || link->connection != c)
            {
                /* the link was torn down while handling the frame */
                return;
            }
        }

        wh_buf_consume(&link->in, pos);
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_wirehub_link_lost(link, "cannot add read event");
    }
}


/* returns NGX_ERROR when the link was torn down while handling m */

static ngx_int_t
ngx_http_wirehub_link_dispatch(ngx_http_wirehub_link_t *link,
    wh_link_msg_t *m)
{
    ngx_http_wirehub_pending_t  *p;

    switch (m->type) {

    case WH_LINK_WELCOME:
        if (m->status != WH_LINK_VERSION) {
            ngx_log_error(NGX_LOG_ERR, link->log, 0,
                          "wirehub: wirehubd speaks link version %ui, "
                          "this module %d", (ngx_uint_t) m->status,
                          WH_LINK_VERSION);
            ngx_http_wirehub_link_lost(link, "version mismatch");
            return NGX_ERROR;
        }

        ngx_log_error(NGX_LOG_NOTICE, link->log, 0,
                      "wirehub: link to wirehubd up (daemon %*s)",
                      m->name.len, m->name.data);

        link->state = NGX_HTTP_WIREHUB_LINK_UP;
        link->egress = (m->flag & WH_LINK_WELCOME_EGRESS) ? 1 : 0;
        link->backoff = NGX_HTTP_WIREHUB_BACKOFF_MIN;
        ngx_http_wirehub_stat(link->wmcf, link_up, 1);
        link->logged_down = 0;

        link->handlers->up(link->wmcf);
        return NGX_OK;

    case WH_LINK_PONG:
        return NGX_OK;

    case WH_LINK_PUBLISHED:
    case WH_LINK_RESPONSE:
    case WH_LINK_REPLAY_ITEM:
    case WH_LINK_REPLAY_END:
        p = ngx_http_wirehub_pending_find(link, m->req_id);

        if (p == NULL) {
            ngx_log_error(NGX_LOG_WARN, link->log, 0,
                          "wirehub: %s for unknown request %uD",
                          wh_link_type_name(m->type), m->req_id);
            return NGX_OK;
        }

        if (p->data) {
            p->handler(p, m);
        }

        if (m->type != WH_LINK_REPLAY_ITEM) {
            ngx_http_wirehub_pending_done(link, p);
        }

        return NGX_OK;

    default:
        if (link->handlers->frames[m->type]) {
            link->handlers->frames[m->type](link->wmcf, m);
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_ERR, link->log, 0,
                      "wirehub: unexpected %s from wirehubd",
                      wh_link_type_name(m->type));
        ngx_http_wirehub_link_lost(link, "protocol error");
        return NGX_ERROR;
    }
}


/*
 * The link is gone: every waiting request is answered "unavailable", the
 * channels remember where they were, and a reconnect is scheduled.
 * Client connections stay open.
 */

static void
ngx_http_wirehub_link_lost(ngx_http_wirehub_link_t *link, const char *why)
{
    ngx_uint_t                   level;
    ngx_rbtree_node_t           *node;
    ngx_http_wirehub_pending_t  *p;

    if (link->connection == NULL) {
        return;
    }

    level = (link->state == NGX_HTTP_WIREHUB_LINK_UP) ? NGX_LOG_WARN
                                                       : NGX_LOG_INFO;
    ngx_log_error(level, link->log, 0, "wirehub: link to wirehubd lost: %s",
                  why);

    if (link->state == NGX_HTTP_WIREHUB_LINK_UP) {
        ngx_http_wirehub_stat(link->wmcf, link_up, -1);
    }

    ngx_close_connection(link->connection);
    link->connection = NULL;
    link->state = NGX_HTTP_WIREHUB_LINK_DOWN;
    link->in.len = 0;
    link->out.len = 0;

    if (link->keepalive.timer_set) {
        ngx_del_timer(&link->keepalive);
    }

    while (link->pending.root != link->pending.sentinel) {
        node = ngx_rbtree_min(link->pending.root, link->pending.sentinel);
        p = (ngx_http_wirehub_pending_t *) node;

        ngx_rbtree_delete(&link->pending, node);

        if (p->data) {
            p->handler(p, NULL);
        }

        ngx_http_wirehub_pending_free(p);
    }

    link->handlers->down(link->wmcf);

    if (!ngx_exiting && !ngx_terminate) {
        ngx_add_timer(&link->reconnect, link->backoff / 2
                      + ngx_random() % (link->backoff / 2 + 1));
        link->backoff = ngx_min(link->backoff * 2,
                                NGX_HTTP_WIREHUB_BACKOFF_MAX);
    }
}

