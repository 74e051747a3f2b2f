
/*
 * Wirehub: an upgraded connection.  It reads frames through the resumable
 * parser into a buffer shared by every session of the worker (so an idle
 * connection holds no read buffer), keeps a queue of outgoing frames that
 * may be shared with other sessions, and runs one timer for pings, idle
 * timeout, token expiry and the closing handshake.
 */


#include "ngx_http_wirehub_session.h"
#include "wh_utf8.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_deflate.h"
#include "ngx_http_wirehub_link.h"


/* reads per event before other connections get their turn */
#define NGX_HTTP_WIREHUB_READ_TURNS  4


static void ngx_http_wirehub_timer_event(ngx_event_t *ev);
static ngx_http_wirehub_reader_t *ngx_http_wirehub_reader(
    ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_reader_rest(ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_reader_free(ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_arm_timer(ngx_http_wirehub_session_t *s);
static ngx_int_t ngx_http_wirehub_data(ngx_http_wirehub_session_t *s,
    wh_frame_event_t *ev);
static void ngx_http_wirehub_message_end(ngx_http_wirehub_session_t *s,
    wh_frame_event_t *ev);
static void ngx_http_wirehub_control(ngx_http_wirehub_session_t *s,
    wh_frame_event_t *ev);
static ngx_int_t ngx_http_wirehub_send_control(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *payload, size_t len);
static ngx_int_t ngx_http_wirehub_sse_control(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *payload, size_t len);
static void ngx_http_wirehub_begin_shutdown(ngx_http_wirehub_session_t *s);
static ngx_uint_t ngx_http_wirehub_close_reason(ngx_http_wirehub_session_t *s,
    ngx_uint_t code);
static void ngx_http_wirehub_close(ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_close_event(ngx_event_t *ev);
static void ngx_http_wirehub_linger(ngx_http_wirehub_session_t *s);


/*
 * The connection is the session's now: the parser, the timer, and the
 * layer above is told (protocol v1 announces it to wirehubd).
 */

void
ngx_http_wirehub_session_start(ngx_http_wirehub_session_t *s)
{
    ngx_connection_t              *c;
    ngx_http_wirehub_main_conf_t  *wmcf;

    c = s->connection;
    wmcf = s->main_conf;

    ngx_queue_insert_tail(&wmcf->sessions, &s->queue);
    wmcf->nsessions++;

    ngx_http_wirehub_stat(wmcf, connections, 1);
    ngx_http_wirehub_worker_stat(wmcf, worker_connections, 1);

    s->out_last = &s->out;
    s->last_rx = ngx_current_msec;
    s->last_ping = ngx_current_msec;

    if (s->identity) {
        s->expires = ngx_http_wirehub_expiry(s->identity->exp, wmcf->leeway);
    }

    s->timer.handler = ngx_http_wirehub_timer_event;
    s->timer.data = s;
    s->timer.log = c->log;
    s->upgraded = 1;

    ngx_queue_init(&s->pending);

    if (s->handlers->open && s->handlers->open(s) != NGX_OK) {
        s->failed = 1;
        s->close_sent = 1;
    }

    ngx_http_wirehub_arm_timer(s);

    /* frames may have arrived right behind the handshake: read now */

    ngx_post_event(c->read, &ngx_posted_events);

    if (!c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


/*
 * Bytes kept for the session's life (the client's type and name): in its
 * pool while they fit, else on their own, since the pool's next block
 * would be as large as the first.
 */

u_char *
ngx_http_wirehub_session_alloc(ngx_http_wirehub_session_t *s, size_t size)
{
    ngx_pool_t  *pool;

    pool = s->pool;

    if ((size_t) (pool->current->d.end - pool->current->d.last) >= size) {
        return ngx_pnalloc(pool, size);
    }

    return ngx_pmemalign(pool, size, NGX_ALIGNMENT);
}


void
ngx_http_wirehub_read_event(ngx_event_t *rev)
{
    ssize_t                      n;
    ngx_uint_t                   turns;
    ngx_connection_t            *c;
    ngx_http_wirehub_session_t  *s;

    c = rev->data;
    s = c->data;

    if (c->close && !s->shutting_down) {
        ngx_http_wirehub_begin_shutdown(s);
        return;
    }

    if (s->lingering) {
        ngx_http_wirehub_linger(s);
        return;
    }

    for (turns = 0; turns < NGX_HTTP_WIREHUB_READ_TURNS; turns++) {

        n = c->recv(c, s->main_conf->recv_buf, s->main_conf->recv_size);

        if (n == NGX_AGAIN) {
            ngx_http_wirehub_reader_rest(s);

            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_wirehub_finalize(s, 0);
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "wirehub: client closed the connection%s",
                          s->close_sent ? "" : " without a close frame");
            ngx_http_wirehub_finalize(s, 0);
            return;
        }

        if (ngx_http_wirehub_is_sse(s)) {
            /* an SSE client has nothing to say once it asked: dropped */
            continue;
        }

        s->last_rx = ngx_current_msec;

        if (ngx_http_wirehub_consume(s, s->main_conf->recv_buf, n)
            != NGX_OK)
        {
            return;
        }

        if (s->closed) {
            return;
        }
    }

    /* a busy client does not starve the others: come back next turn */

    ngx_post_event(rev, &ngx_posted_events);
}


/*
 * Runs every frame event out of buf; returns NGX_ERROR when the session
 * was finalized (and may be gone).
 */

ngx_int_t
ngx_http_wirehub_consume(ngx_http_wirehub_session_t *s, u_char *buf,
    size_t len)
{
    size_t                       used;
    wh_frame_rc_e                rc;
    wh_frame_event_t             ev;
    ngx_http_wirehub_reader_t   *rd;

    if (s->failed || s->close_received) {
        /* nothing after a close frame or a failure is processed */
        return NGX_OK;
    }

    rd = ngx_http_wirehub_reader(s);
    if (rd == NULL) {
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_INTERNAL,
                                       "out of memory");
        return s->closed ? NGX_ERROR : NGX_OK;
    }

    /*
     * One input byte may complete two events: parse until AGAIN.  The
     * reader is the session's as long as it is not closed (a closed one
     * freed it), which every event below is checked for.
     */

    for ( ;; ) {

        rc = wh_frame_parse(&rd->parser, buf, len, &used, &ev);

        buf += used;
        len -= used;

        switch (rc) {

        case WH_FRAME_AGAIN:
            return NGX_OK;

        case WH_FRAME_DATA:
            if (ngx_http_wirehub_data(s, &ev) != NGX_OK) {
                return s->closed ? NGX_ERROR : NGX_OK;
            }
            break;

        case WH_FRAME_MESSAGE_END:
            ngx_http_wirehub_message_end(s, &ev);
            break;

        case WH_FRAME_CONTROL:
            ngx_http_wirehub_control(s, &ev);
            break;

        default: /* WH_FRAME_ERROR */
            ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                          "wirehub: protocol error: %s", ev.reason);
            ngx_http_wirehub_session_close(s, ev.close_code, ev.reason);
            return s->closed ? NGX_ERROR : NGX_OK;
        }

        if (s->closed) {
            return NGX_ERROR;
        }

        if (s->close_received || s->failed) {
            /* nothing after a close frame or a failure is processed */
            return NGX_OK;
        }
    }
}


/* the session's reader, allocated as data arrives */

static ngx_http_wirehub_reader_t *
ngx_http_wirehub_reader(ngx_http_wirehub_session_t *s)
{
    ngx_http_wirehub_reader_t  *rd;

    if (s->reader) {
        return s->reader;
    }

    rd = ngx_calloc(sizeof(ngx_http_wirehub_reader_t), s->connection->log);
    if (rd == NULL) {
        return NULL;
    }

    rd->parser.max_message_size = s->conf->max_message_size;
    rd->parser.require_mask = 1;
    rd->parser.allow_rsv1 = s->deflate;

    if (s->deflate) {
        /*
         * Incompressible data grows a little when deflated; the limit is
         * on the inflated size, checked after inflating.  Uncompressed
         * messages are held to the exact limit in ngx_http_wirehub_data().
         */
        rd->parser.max_message_size =
            ngx_http_wirehub_deflate_wire_max(s->conf->max_message_size);
    }

    s->reader = rd;

    return rd;
}


/* a read left nothing half done: the next data starts a fresh reader */

static void
ngx_http_wirehub_reader_rest(ngx_http_wirehub_session_t *s)
{
    if (s->reader && s->reader->msg_len == 0
        && wh_frame_parser_at_rest(&s->reader->parser))
    {
        ngx_http_wirehub_reader_free(s);
    }
}


static void
ngx_http_wirehub_reader_free(ngx_http_wirehub_session_t *s)
{
    if (s->reader == NULL) {
        return;
    }

    if (s->reader->msg) {
        ngx_free(s->reader->msg);
    }

    ngx_free(s->reader);
    s->reader = NULL;
}


static ngx_int_t
ngx_http_wirehub_data(ngx_http_wirehub_session_t *s,
    wh_frame_event_t *ev)
{
    u_char                     *p;
    size_t                      need, cap;
    ngx_http_wirehub_reader_t  *rd;

    rd = s->reader;

    if (ev->len == 0 || s->close_sent) {
        return NGX_OK;
    }

    need = rd->msg_len + ev->len;

    if (!ev->compressed && need > s->conf->max_message_size) {
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_TOO_BIG,
                                       "message too big");
        return NGX_ERROR;
    }

    if (need > rd->msg_cap) {
        cap = ngx_max(need, ngx_min(rd->msg_cap * 2,
                                    s->conf->max_message_size));
        cap = ngx_max(cap, 256);

        p = ngx_alloc(cap, s->connection->log);
        if (p == NULL) {
            ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_INTERNAL,
                                           "out of memory");
            return NGX_ERROR;
        }

        if (rd->msg_len) {
            ngx_memcpy(p, rd->msg, rd->msg_len);
        }

        if (rd->msg) {
            ngx_free(rd->msg);
        }

        rd->msg = p;
        rd->msg_cap = cap;
    }

    ngx_memcpy(rd->msg + rd->msg_len, ev->data, ev->len);
    rd->msg_len += ev->len;

    return NGX_OK;
}


static void
ngx_http_wirehub_message_end(ngx_http_wirehub_session_t *s,
    wh_frame_event_t *ev)
{
    u_char                     *msg, *inflated;
    size_t                      len;
    ngx_int_t                   rc;
    wh_utf8_t                   utf8;
    ngx_http_wirehub_reader_t  *rd;

    rd = s->reader;

    msg = rd->msg;
    len = rd->msg_len;
    rd->msg_len = 0;

    if (s->close_sent) {
        return;
    }

    inflated = NULL;

    if (ev->compressed) {
        rc = ngx_http_wirehub_inflate(s->main_conf, msg, len,
                                      s->conf->max_message_size, &inflated,
                                      &len, s->connection->log);

        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                          "wirehub: %s", rc == NGX_DECLINED
                          ? "inflated message too big"
                          : "invalid compressed message");
            ngx_http_wirehub_session_close(s,
                rc == NGX_DECLINED ? NGX_HTTP_WIREHUB_CLOSE_TOO_BIG
                : (rc == NGX_ABORT ? NGX_HTTP_WIREHUB_CLOSE_BAD_DATA
                                   : NGX_HTTP_WIREHUB_CLOSE_INTERNAL),
                rc == NGX_DECLINED ? "message too big"
                                   : "invalid compressed data");
            return;
        }

        msg = inflated;

        /* the parser could not check text it saw compressed */

        ngx_memzero(&utf8, sizeof(wh_utf8_t));

        if (ev->opcode == WH_WS_OP_TEXT
            && (wh_utf8_feed(&utf8, msg, len) != 0
                || wh_utf8_done(&utf8) != 0))
        {
            ngx_free(inflated);
            ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_BAD_DATA,
                                           "invalid UTF-8");
            return;
        }
    }

    /* the message may close the session, which frees the reader */

    s->handlers->message(s, ev->opcode, msg, len);

    if (inflated) {
        ngx_free(inflated);
    }
}


static void
ngx_http_wirehub_control(ngx_http_wirehub_session_t *s,
    wh_frame_event_t *ev)
{
    u_char  payload[WH_WS_CONTROL_MAX];
    size_t  len;

    switch (ev->opcode) {

    case WH_WS_OP_PING:
        if (!s->close_sent) {
            (void) ngx_http_wirehub_send_control(s, WH_WS_OP_PONG,
                                                 ev->data, ev->len);
        }
        return;

    case WH_WS_OP_PONG:
        return;

    default: /* WH_WS_OP_CLOSE */
        s->close_received = 1;

        if (s->close_sent) {
            /*
             * The peer answered our close, or both sent one at once: done
             * as soon as our own close frame is out.
             */
            if (s->out == NULL) {
                ngx_http_wirehub_finalize(s, 0);

            } else if (!s->connection->write->posted) {
                ngx_post_event(s->connection->write, &ngx_posted_events);
            }

            return;
        }

        /* echo the peer's code (none for 1005), then close the socket */

        len = 0;

        if (ev->close_code != WH_WS_CLOSE_NO_STATUS) {
            payload[0] = (u_char) (ev->close_code >> 8);
            payload[1] = (u_char) (ev->close_code & 0xff);
            len = 2;
        }

        ngx_http_wirehub_drop_queue(s, 1);
        s->close_sent = 1;

        if (ngx_http_wirehub_send_control(s, WH_WS_OP_CLOSE,
                                          payload, len)
            != NGX_OK)
        {
            ngx_http_wirehub_finalize(s, 0);
        }
    }
}


static ngx_uint_t
ngx_http_wirehub_close_reason(ngx_http_wirehub_session_t *s, ngx_uint_t code)
{
    switch (code) {
    case NGX_HTTP_WIREHUB_CLOSE_TOO_BIG:
        return NGX_HTTP_WIREHUB_CLOSED_TOO_BIG;
    case NGX_HTTP_WIREHUB_CLOSE_SLOW:
        return NGX_HTTP_WIREHUB_CLOSED_SLOW;
    case NGX_HTTP_WIREHUB_CLOSE_EXPIRED:
        return NGX_HTTP_WIREHUB_CLOSED_EXPIRED;
    case NGX_HTTP_WIREHUB_CLOSE_GOING_AWAY:
        return s->shutting_down ? NGX_HTTP_WIREHUB_CLOSED_SHUTDOWN
                                : NGX_HTTP_WIREHUB_CLOSED_IDLE;
    case NGX_HTTP_WIREHUB_CLOSE_PROTOCOL:
    case NGX_HTTP_WIREHUB_CLOSE_BAD_DATA:
    case NGX_HTTP_WIREHUB_CLOSE_POLICY:
        return NGX_HTTP_WIREHUB_CLOSED_PROTOCOL;
    case NGX_HTTP_WIREHUB_CLOSE_REVOKED:
    case NGX_HTTP_WIREHUB_CLOSE_REPLACED:
        return NGX_HTTP_WIREHUB_CLOSED_REFUSED;
    default:
        return NGX_HTTP_WIREHUB_CLOSED_CLIENT;
    }
}


/*
 * Starts the closing handshake.  After a failure (a protocol error, a
 * message too big, a slow consumer) the close frame is the last thing
 * sent and the socket is shut down once it is out.  What was queued
 * before it still goes out first: the answers to the valid messages that
 * came ahead of the bad one (RFC 6455 7.1.7 fails the connection, not
 * what was already processed), except for a slow consumer or a lack of
 * memory, where the queue itself is the problem.
 */

void
ngx_http_wirehub_session_close(ngx_http_wirehub_session_t *s,
    ngx_uint_t code, const char *reason)
{
    u_char  payload[WH_WS_CONTROL_MAX];
    size_t  len;

    if (s->close_sent || s->closed) {
        return;
    }

    switch (code) {
    case NGX_HTTP_WIREHUB_CLOSE_INTERNAL:
    case NGX_HTTP_WIREHUB_CLOSE_SLOW:
        ngx_http_wirehub_drop_queue(s, 1);
        /* fall through */
    case NGX_HTTP_WIREHUB_CLOSE_PROTOCOL:
    case NGX_HTTP_WIREHUB_CLOSE_BAD_DATA:
    case NGX_HTTP_WIREHUB_CLOSE_POLICY:
    case NGX_HTTP_WIREHUB_CLOSE_TOO_BIG:
        s->failed = 1;
        break;
    default:
        break;
    }

    s->close_reason = ngx_http_wirehub_close_reason(s, code);

    if (ngx_http_wirehub_is_sse(s)) {
        /* no closing handshake: the socket goes once the end is out */
        s->close_received = 1;
    }

    len = wh_frame_close_payload(payload, (unsigned) code,
                                               reason);

    s->close_sent = 1;
    s->close_deadline = ngx_current_msec + NGX_HTTP_WIREHUB_CLOSE_TIMEOUT;

    if (ngx_http_wirehub_send_control(s, WH_WS_OP_CLOSE, payload,
                                      len)
        != NGX_OK)
    {
        ngx_http_wirehub_finalize(s, 0);
        return;
    }

    ngx_http_wirehub_arm_timer(s);
}


static ngx_int_t
ngx_http_wirehub_send_control(ngx_http_wirehub_session_t *s, unsigned opcode,
    u_char *payload, size_t len)
{
    ngx_int_t                      rc;
    ngx_http_wirehub_out_frame_t  *frame;

    if (ngx_http_wirehub_is_sse(s)) {
        return ngx_http_wirehub_sse_control(s, opcode, payload, len);
    }

    frame = ngx_http_wirehub_frame_create(s->connection->log, opcode, payload,
                                          len);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_wirehub_send_frame(s, frame);
    ngx_http_wirehub_frame_release(frame);

    return rc;
}


/*
 * What the control frames become on an SSE stream: a ping is a comment;
 * a close is a comment with the code and reason a WebSocket would get,
 * then the end of the response (its last chunk when it is chunked).
 */

static ngx_int_t
ngx_http_wirehub_sse_control(ngx_http_wirehub_session_t *s, unsigned opcode,
    u_char *payload, size_t len)
{
    u_char                        *p, *q, text[WH_WS_CONTROL_MAX + 32];
    ngx_int_t                      rc;
    ngx_http_wirehub_out_frame_t  *frame;

    if (opcode == WH_WS_OP_PING) {
        p = ngx_cpymem(text, ": ping\n\n", sizeof(": ping\n\n") - 1);

    } else if (opcode == WH_WS_OP_CLOSE && len >= 2) {
        p = ngx_sprintf(text, ": close %ui ",
                        (ngx_uint_t) ((payload[0] << 8) | payload[1]));

        for (q = payload + 2; q < payload + len; q++) {
            *p++ = (*q == '\n' || *q == '\r') ? ' ' : *q;
        }

        *p++ = '\n';
        *p++ = '\n';

    } else {
        return NGX_OK;
    }

    frame = ngx_http_wirehub_sse_raw(s->connection->log, s->framing, text,
                                     p - text);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_wirehub_send_frame(s, frame);
    ngx_http_wirehub_frame_release(frame);

    if (opcode != WH_WS_OP_CLOSE || rc == NGX_ERROR) {
        return rc;
    }

    if (s->framing == NGX_HTTP_WIREHUB_FRAMING_SSE_CHUNKED) {
        frame = ngx_http_wirehub_sse_raw(s->connection->log, s->framing,
                                         NULL, 0);
        if (frame == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_http_wirehub_send_frame(s, frame);
        ngx_http_wirehub_frame_release(frame);
    }

    s->close_queued = 1;

    return rc;
}


void
ngx_http_wirehub_write_event(ngx_event_t *wev)
{
    ngx_connection_t            *c;
    ngx_http_wirehub_session_t  *s;

    c = wev->data;
    s = c->data;

    if (s->lingering) {
        return;
    }

    if (c->close && !s->shutting_down) {
        ngx_http_wirehub_begin_shutdown(s);
        return;
    }

    if (ngx_http_wirehub_flush(s) != NGX_OK) {
        ngx_http_wirehub_finalize(s, 0);
        return;
    }

    if (s->drain_wanted && !s->close_sent
        && s->out_bytes <= s->conf->send_limit / 2)
    {
        s->drain_wanted = 0;

        if (s->handlers->drained) {
            s->handlers->drained(s);
        }
    }

    if (s->out == NULL && s->close_sent
        && (s->close_received || s->failed))
    {
        ngx_http_wirehub_finalize(s, s->failed && !s->close_received);
    }
}


static void
ngx_http_wirehub_timer_event(ngx_event_t *ev)
{
    ngx_msec_t                   now, quiet;
    ngx_http_wirehub_session_t  *s;

    s = ev->data;
    now = ngx_current_msec;

    if (s->lingering) {
        ngx_http_wirehub_close(s);
        return;
    }

    if (s->slow && !s->close_sent) {
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_SLOW,
                                       "slow consumer");
        return;
    }

    if (s->lost && !s->close_sent) {
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_INTERNAL,
                                       "message lost, resume");
        return;
    }

    if (s->close_sent) {
        if ((ngx_msec_int_t) (now - s->close_deadline) >= 0) {
            ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                          "wirehub: closing handshake timed out");
            ngx_http_wirehub_finalize(s, 0);
            return;
        }

        ngx_http_wirehub_arm_timer(s);
        return;
    }

    if (s->shutting_down && (ngx_msec_int_t) (now - s->shutdown_at) >= 0) {
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_GOING_AWAY,
                                       "server going away");
        return;
    }

    if (s->expires && ngx_time() >= s->expires) {
        ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                      "wirehub: token expired");
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_EXPIRED,
                                       "token expired");
        return;
    }

    /* an SSE client never speaks: only the pings and their writes tell */

    quiet = ngx_http_wirehub_is_sse(s) ? now - s->last_ping
                                       : now - s->last_rx;

    if (quiet >= s->conf->idle_timeout && !ngx_http_wirehub_is_sse(s)) {
        ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                      "wirehub: idle for %M ms, closing", quiet);
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_GOING_AWAY,
                                       "idle timeout");
        return;
    }

    if (quiet >= s->conf->ping_interval
        && now - s->last_ping >= s->conf->ping_interval)
    {
        s->last_ping = now;

        if (ngx_http_wirehub_send_control(s, WH_WS_OP_PING,
                                          NULL, 0)
            != NGX_OK)
        {
            ngx_http_wirehub_finalize(s, 0);
            return;
        }
    }

    ngx_http_wirehub_arm_timer(s);
}


/*
 * One timer per session: the earliest of the next ping, the idle deadline,
 * the token's expiry, the shutdown slot and the closing deadline.  Activity
 * does not re-arm it; the handler finds out on expiry what is due.
 */

static void
ngx_http_wirehub_arm_timer(ngx_http_wirehub_session_t *s)
{
    time_t      left;
    ngx_msec_t  now, at, t;

    now = ngx_current_msec;

    if (s->close_sent) {
        at = s->close_deadline;

    } else {
        at = ngx_http_wirehub_is_sse(s)
             ? s->last_ping + s->conf->ping_interval
             : s->last_rx + s->conf->idle_timeout;

        t = ngx_max(s->last_rx, s->last_ping) + s->conf->ping_interval;
        if ((ngx_msec_int_t) (t - at) < 0) {
            at = t;
        }

        if (s->expires) {
            left = s->expires - ngx_time();

            /* only an expiry before the next ping or idle check counts */

            if (left <= 0) {
                at = now;

            } else if ((ngx_msec_t) left
                       < (ngx_msec_t) (at - now) / 1000 + 1)
            {
                t = now + (ngx_msec_t) left * 1000;

                if ((ngx_msec_int_t) (t - at) < 0) {
                    at = t;
                }
            }
        }

        if (s->shutting_down
            && (ngx_msec_int_t) (s->shutdown_at - at) < 0)
        {
            at = s->shutdown_at;
        }
    }

    t = (ngx_msec_int_t) (at - now) > 0 ? at - now : 1;

    ngx_add_timer(&s->timer, t);
}


static void
ngx_http_wirehub_begin_shutdown(ngx_http_wirehub_session_t *s)
{
    /*
     * nginx is reloading or stopping: close with 1001, each session at a
     * random moment of the spread, so that clients do not all reconnect
     * at once.
     */

    s->shutting_down = 1;
    s->shutdown_at = ngx_current_msec
                     + ngx_random() % NGX_HTTP_WIREHUB_SHUTDOWN_SPREAD;

    if (!s->close_sent) {
        ngx_http_wirehub_arm_timer(s);
    }
}


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
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_wirehub_ctx_t  *ctx;

    if (s->closed) {
        return;
    }

    c = s->connection;

    if (s->request) {
        r = s->request;
        ctx = ngx_http_get_module_ctx(r, ngx_http_wirehub_module);
        s->closed = 1;

        c->read->handler = ctx->http_read_handler;
        c->write->handler = ctx->http_write_handler;
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


static void
ngx_http_wirehub_close(ngx_http_wirehub_session_t *s)
{
    ngx_connection_t  *c;

    c = s->connection;

    ngx_http_wirehub_session_cleanup(s);
    c->idle = 0;

    /*
     * The caller may still look at the session (a close frame in the
     * middle of a read, a send failing in a feature): the connection, and
     * the session in its pool, go from a posted event in this same turn.
     */

    c->read->handler = ngx_http_empty_handler;
    c->write->handler = ngx_http_empty_handler;

    s->timer.handler = ngx_http_wirehub_close_event;
    ngx_post_event(&s->timer, &ngx_posted_events);
}


static void
ngx_http_wirehub_close_event(ngx_event_t *ev)
{
    ngx_http_wirehub_session_t  *s;

    s = ev->data;

    ngx_http_close_connection(s->connection);
}


/* after a failure: read and drop until the client closes, or a second */

static void
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

    if (s->handlers->closed) {
        s->handlers->closed(s);
    }

    ngx_http_wirehub_reader_free(s);

    ngx_queue_remove(&s->queue);
    s->main_conf->nsessions--;
    s->closed = 1;

    ngx_http_wirehub_stat(s->main_conf, connections, -1);
    ngx_http_wirehub_worker_stat(s->main_conf, worker_connections, -1);
    ngx_http_wirehub_stat(s->main_conf, closes[s->close_reason], 1);
}
