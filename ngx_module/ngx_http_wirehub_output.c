
/*
 * Wirehub: the output side of a session.  Frames are reference-counted and
 * may sit on many sessions' queues at once (a channel message is framed
 * once per worker); each session keeps a list of (frame, bytes sent) and
 * writes it with one send() or writev() per turn.
 *
 * The write events of sessions with something new to send wait on one
 * queue of the worker, written in slices: between two slices the worker
 * goes back to epoll, reads the link, and a message that arrives meanwhile
 * is queued behind the frames of the sessions not written yet, leaving
 * with them in the same write, instead of waiting for the whole fan-out
 * of the message before it.
 */


#include "ngx_http_wirehub_output.h"
#include "ngx_http_wirehub_session.h"
#include "ngx_http_wirehub_deflate.h"
#include "wh_json.h"


#define NGX_HTTP_WIREHUB_IOVS         64

/* session writes per slice: about a millisecond and a half of sends */
#define NGX_HTTP_WIREHUB_WRITE_SLICE  256


static ngx_uint_t ngx_http_wirehub_over_limit(ngx_http_wirehub_session_t *s,
    size_t len);
static ngx_int_t ngx_http_wirehub_may_queue(ngx_http_wirehub_session_t *s,
    size_t len);
static ngx_int_t ngx_http_wirehub_enqueue(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_out_frame_t *frame, ngx_http_wirehub_out_frame_t *next);
static ngx_http_wirehub_out_frame_t *ngx_http_wirehub_sse_alloc(
    ngx_log_t *log, ngx_uint_t framing, size_t len, u_char **body);
static void ngx_http_wirehub_sse_seal(ngx_http_wirehub_out_frame_t *frame,
    ngx_uint_t framing, u_char *body, u_char *last);
static void ngx_http_wirehub_post_write(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_connection_t *c);
static void ngx_http_wirehub_write_slice(ngx_event_t *ev);
static ngx_int_t ngx_http_wirehub_send_one(ngx_http_wirehub_session_t *s);


void
ngx_http_wirehub_output_init(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_log_t *log)
{
    ngx_queue_init(&wmcf->writes);

    wmcf->write_slice.handler = ngx_http_wirehub_write_slice;
    wmcf->write_slice.data = wmcf;
    wmcf->write_slice.log = log;
}


ngx_http_wirehub_out_frame_t *
ngx_http_wirehub_frame_create(ngx_log_t *log, unsigned opcode,
    u_char *payload, size_t len)
{
    size_t                         hlen;
    ngx_http_wirehub_out_frame_t  *frame;

    frame = ngx_alloc(offsetof(ngx_http_wirehub_out_frame_t, data) + 10 + len,
                      log);
    if (frame == NULL) {
        return NULL;
    }

    hlen = wh_frame_header(frame->data, opcode, 1, 0, len);

    if (len) {
        ngx_memcpy(frame->data + hlen, payload, len);
    }

    frame->refs = 1;
    frame->len = hlen + len;
    frame->msg_id = 0;

    return frame;
}


/*
 * An SSE event for a JSON message: "event:" is the message's "type",
 * "data:" the message as a WebSocket client gets it.  A line break in the
 * text (only JSON whitespace can hold one) starts another "data:" line;
 * EventSource joins them with "\n" again.
 */

ngx_http_wirehub_out_frame_t *
ngx_http_wirehub_sse_event(ngx_log_t *log, ngx_uint_t framing, u_char *json,
    size_t len)
{
    u_char                        *p, *body;
    size_t                         i, lines;
    wh_str_t                       type;
    ngx_http_wirehub_out_frame_t  *frame;

    if (!wh_json_member((char *) json, len, "type", &type)
        || type.len < 2 || type.data[0] != '"')
    {
        type.data = "\"message\"";
        type.len = sizeof("\"message\"") - 1;
    }

    lines = 0;

    for (i = 0; i < len; i++) {
        if (json[i] == '\n' || json[i] == '\r') {
            lines++;
        }
    }

    frame = ngx_http_wirehub_sse_alloc(log, framing,
                                       sizeof("event: \ndata: \n\n") - 1
                                       + type.len + len
                                       + lines * (sizeof("data: ") - 1),
                                       &body);
    if (frame == NULL) {
        return NULL;
    }

    p = ngx_cpymem(body, "event: ", sizeof("event: ") - 1);
    p = ngx_cpymem(p, type.data + 1, type.len - 2);
    p = ngx_cpymem(p, "\ndata: ", sizeof("\ndata: ") - 1);

    for (i = 0; i < len; i++) {
        if (json[i] == '\r' && i + 1 < len && json[i + 1] == '\n') {
            continue;
        }

        if (json[i] == '\n' || json[i] == '\r') {
            p = ngx_cpymem(p, "\ndata: ", sizeof("\ndata: ") - 1);
            continue;
        }

        *p++ = json[i];
    }

    *p++ = '\n';
    *p++ = '\n';

    ngx_http_wirehub_sse_seal(frame, framing, body, p);

    return frame;
}


/* text of the stream as it is: an "id:" line, a comment, the last chunk */

ngx_http_wirehub_out_frame_t *
ngx_http_wirehub_sse_raw(ngx_log_t *log, ngx_uint_t framing, u_char *text,
    size_t len)
{
    u_char                        *body;
    ngx_http_wirehub_out_frame_t  *frame;

    frame = ngx_http_wirehub_sse_alloc(log, framing, len, &body);
    if (frame == NULL) {
        return NULL;
    }

    /* the last chunk has no text at all */
    if (len) {
        ngx_memcpy(body, text, len);
    }

    ngx_http_wirehub_sse_seal(frame, framing, body, body + len);

    return frame;
}


/*
 * Room for len bytes of stream, and in chunked framing for the chunk's
 * size line (the size is written in front of the body once it is known:
 * sixteen hex digits at most) and its CRLF.
 */

static ngx_http_wirehub_out_frame_t *
ngx_http_wirehub_sse_alloc(ngx_log_t *log, ngx_uint_t framing, size_t len,
    u_char **body)
{
    size_t                         room;
    ngx_http_wirehub_out_frame_t  *frame;

    room = (framing == NGX_HTTP_WIREHUB_FRAMING_SSE_CHUNKED)
           ? NGX_OFF_T_LEN + 4 : 0;

    frame = ngx_alloc(offsetof(ngx_http_wirehub_out_frame_t, data) + room
                      + len, log);
    if (frame == NULL) {
        return NULL;
    }

    frame->refs = 1;
    frame->msg_id = 0;
    *body = frame->data + (room ? NGX_OFF_T_LEN + 2 : 0);

    return frame;
}


static void
ngx_http_wirehub_sse_seal(ngx_http_wirehub_out_frame_t *frame,
    ngx_uint_t framing, u_char *body, u_char *last)
{
    u_char  head[NGX_OFF_T_LEN + 2], *p;
    size_t  n;

    if (framing != NGX_HTTP_WIREHUB_FRAMING_SSE_CHUNKED || last == body) {
        frame->len = last - frame->data;

        if (framing == NGX_HTTP_WIREHUB_FRAMING_SSE_CHUNKED) {
            /* no body: the last chunk, which ends the response */
            frame->len = ngx_cpymem(frame->data, "0\r\n\r\n", 5)
                         - frame->data;
        }

        return;
    }

    p = ngx_sprintf(head, "%xz\r\n", (size_t) (last - body));
    n = p - head;

    /* the size line goes right in front of the body: data starts there */

    ngx_memmove(frame->data, head, n);
    ngx_memmove(frame->data + n, body, last - body);
    p = frame->data + n + (last - body);
    *p++ = '\r';
    *p++ = '\n';

    frame->len = p - frame->data;
}


void
ngx_http_wirehub_frame_release(ngx_http_wirehub_out_frame_t *frame)
{
    if (--frame->refs == 0) {
        ngx_free(frame);
    }
}


/*
 * A data frame for this session: compressed when permessage-deflate was
 * negotiated and the payload is worth it.
 */

ngx_http_wirehub_out_frame_t *
ngx_http_wirehub_session_frame(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *payload, size_t len)
{
    if (ngx_http_wirehub_is_sse(s)) {
        return ngx_http_wirehub_sse_event(s->connection->log, s->framing,
                                          payload, len);
    }

    if (s->deflate && len >= NGX_HTTP_WIREHUB_DEFLATE_MIN) {
        return ngx_http_wirehub_deflate_frame(s->main_conf,
                                              s->connection->log,
                                              s->deflate_window, opcode,
                                              payload, len);
    }

    return ngx_http_wirehub_frame_create(s->connection->log, opcode, payload,
                                         len);
}


ngx_int_t
ngx_http_wirehub_send_text(ngx_http_wirehub_session_t *s, u_char *data,
    size_t len)
{
    ngx_int_t                      rc;
    ngx_http_wirehub_out_frame_t  *frame;

    frame = ngx_http_wirehub_session_frame(s, WH_WS_OP_TEXT, data,
                                           len);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_wirehub_send_frame(s, frame);
    ngx_http_wirehub_frame_release(frame);

    return rc;
}


/*
 * Queues a frame; the write happens from the posted write event, so that
 * everything queued for a connection in one event-loop turn goes out in
 * one writev().
 */

ngx_int_t
ngx_http_wirehub_send_frame(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_out_frame_t *frame)
{
    ngx_int_t  rc;

    rc = ngx_http_wirehub_may_queue(s, frame->len);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_wirehub_enqueue(s, frame, NULL);
}


/* two frames that only make sense together: both are queued, or none */

ngx_int_t
ngx_http_wirehub_send_pair(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_out_frame_t *first, ngx_http_wirehub_out_frame_t *second)
{
    ngx_int_t  rc;

    rc = ngx_http_wirehub_may_queue(s, first->len + second->len);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_wirehub_enqueue(s, first, second);
}


static ngx_int_t
ngx_http_wirehub_may_queue(ngx_http_wirehub_session_t *s, size_t len)
{
    if (s->closed) {
        return NGX_ERROR;
    }

    /* the close frame itself always goes: it is the last one */

    if (s->slow && !s->close_sent) {
        return NGX_DECLINED;
    }

    /*
     * Nothing follows the close frame (RFC 6455 5.5.1): a channel message
     * that arrives during the closing handshake is not sent.
     */

    if (s->close_queued) {
        return NGX_DECLINED;
    }

    if (!s->close_sent && ngx_http_wirehub_over_limit(s, len)) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_enqueue(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_out_frame_t *frame, ngx_http_wirehub_out_frame_t *next)
{
    ngx_uint_t                     i, n;
    ngx_connection_t              *c;
    ngx_http_wirehub_out_t        *out[2];
    ngx_http_wirehub_out_frame_t  *frames[2];
    ngx_http_wirehub_main_conf_t  *wmcf;

    c = s->connection;
    wmcf = s->main_conf;
    frames[0] = frame;
    frames[1] = next;
    n = next ? 2 : 1;

    for (i = 0; i < n; i++) {
        out[i] = wmcf->free_out;

        if (out[i]) {
            wmcf->free_out = out[i]->next;
            continue;
        }

        out[i] = ngx_alloc(sizeof(ngx_http_wirehub_out_t), c->log);

        if (out[i] == NULL) {
            if (i) {
                out[0]->next = wmcf->free_out;
                wmcf->free_out = out[0];
            }

            ngx_http_wirehub_session_lost(s);
            return NGX_ERROR;
        }
    }

    for (i = 0; i < n; i++) {
        frames[i]->refs++;

        out[i]->frame = frames[i];
        out[i]->sent = 0;
        out[i]->next = NULL;

        *s->out_last = out[i];
        s->out_last = &out[i]->next;
        s->out_bytes += frames[i]->len;
    }

    /* an SSE stream has no close frame: the session marks its end */

    if (!ngx_http_wirehub_is_sse(s)
        && (frame->data[0] & 0x0f) == WH_WS_OP_CLOSE)
    {
        s->close_queued = 1;
    }

    if (!c->write->posted && c->write->ready) {
        ngx_http_wirehub_post_write(wmcf, c);
    }

    return NGX_OK;
}


/*
 * The write event waits on the worker's queue (a posted event to nginx:
 * closing the connection takes it off wherever it is).
 */

static void
ngx_http_wirehub_post_write(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_connection_t *c)
{
    ngx_post_event(c->write, &wmcf->writes);

    if (!wmcf->write_slice.posted) {
        ngx_post_event(&wmcf->write_slice, &ngx_posted_events);
    }
}


/*
 * Writes a slice of the queue; the rest waits for the next turn of the
 * event loop, after the events that came meanwhile (the link above all).
 * A session written in this slice that gets a new frame later is queued
 * again at the tail, so each connection keeps its order and none waits
 * for more than one pass over the others.
 */

static void
ngx_http_wirehub_write_slice(ngx_event_t *ev)
{
    ngx_uint_t                     n;
    ngx_queue_t                   *q;
    ngx_event_t                   *wev;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ev->data;

    for (n = 0; !ngx_queue_empty(&wmcf->writes); n++) {

        if (n == NGX_HTTP_WIREHUB_WRITE_SLICE) {
            ngx_post_event(ev, &ngx_posted_next_events);
            return;
        }

        q = ngx_queue_head(&wmcf->writes);
        wev = ngx_queue_data(q, ngx_event_t, queue);

        ngx_delete_posted_event(wev);
        wev->handler(wev);
    }
}


/*
 * What is queued and what is held behind a replay share one bound; one
 * message larger than the bound still goes out on an idle session.  Past
 * it the session is closed with 1013 by its own timer handler, posted to
 * run in this event-loop turn: the output never calls up into the
 * session it serves.
 */

static ngx_uint_t
ngx_http_wirehub_over_limit(ngx_http_wirehub_session_t *s, size_t len)
{
    size_t  queued;

    queued = s->out_bytes + s->held_bytes;

    if (queued == 0 || queued + len <= s->conf->send_limit) {
        return 0;
    }

    ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                  "wirehub: slow consumer, %uz bytes queued and %uz held",
                  s->out_bytes, s->held_bytes);
    s->slow = 1;

    if (!s->timer.posted) {
        ngx_post_event(&s->timer, &ngx_posted_events);
    }

    return 1;
}


/* a frame held for this session elsewhere, counted against its bound */

ngx_int_t
ngx_http_wirehub_session_hold(ngx_http_wirehub_session_t *s, size_t len)
{
    if (s->closed || s->slow || s->close_queued
        || ngx_http_wirehub_over_limit(s, len))
    {
        return NGX_DECLINED;
    }

    s->held_bytes += len;

    return NGX_OK;
}


/*
 * A message this session should have had cannot be queued (memory): the
 * client must not miss it silently, so the session closes with 1011 from
 * its timer handler in this turn, and resumes from history when it
 * reconnects.
 */

void
ngx_http_wirehub_session_lost(ngx_http_wirehub_session_t *s)
{
    if (s->lost || s->close_sent) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, s->connection->log, 0,
                  "wirehub: a message could not be queued, closing");
    s->lost = 1;

    if (!s->timer.posted) {
        ngx_post_event(&s->timer, &ngx_posted_events);
    }
}


ngx_int_t
ngx_http_wirehub_flush(ngx_http_wirehub_session_t *s)
{
    off_t                          sent;
    size_t                         n;
    ngx_uint_t                     i;
    ngx_buf_t                      bufs[NGX_HTTP_WIREHUB_IOVS];
    ngx_chain_t                    links[NGX_HTTP_WIREHUB_IOVS], *rc;
    ngx_connection_t              *c;
    ngx_http_wirehub_out_t        *out;
    ngx_http_wirehub_main_conf_t  *wmcf;

    c = s->connection;
    wmcf = s->main_conf;

    /* the 101 waits for connection_status, to leave in the same write */

    if (s->greeting && !s->close_sent && !s->close_queued && !s->failed) {
        return NGX_OK;
    }

    if (s->nodelay && s->out) {
        if (s->flushed) {
            s->nodelay = 0;

            if (ngx_tcp_nodelay(c) != NGX_OK) {
                c->error = 1;
                return NGX_ERROR;
            }
        }

        s->flushed = 1;
    }

    while (s->out) {

        if (s->out->next == NULL) {
            /* the usual case in a fan-out: one frame, one send() */

            if (ngx_http_wirehub_send_one(s) != NGX_OK) {
                c->error = 1;
                return NGX_ERROR;
            }

            if (!c->write->ready) {
                return ngx_handle_write_event(c->write, 0);
            }

            continue;
        }

        i = 0;

        for (out = s->out; out && i < NGX_HTTP_WIREHUB_IOVS; out = out->next)
        {
            ngx_memzero(&bufs[i], sizeof(ngx_buf_t));
            bufs[i].pos = out->frame->data + out->sent;
            bufs[i].last = out->frame->data + out->frame->len;
            bufs[i].temporary = 1;
            links[i].buf = &bufs[i];
            links[i].next = &links[i + 1];
            i++;
        }

        links[i - 1].next = NULL;

        sent = c->sent;
        rc = c->send_chain(c, links, 0);

        if (rc == NGX_CHAIN_ERROR) {
            c->error = 1;
            return NGX_ERROR;
        }

        n = (size_t) (c->sent - sent);
        s->out_bytes -= n;

        if (n) {
            s->head_queued = 0;
        }

        while (n && s->out) {
            out = s->out;

            if (out->frame->len - out->sent > n) {
                out->sent += n;
                break;
            }

            n -= out->frame->len - out->sent;

            s->out = out->next;
            ngx_http_wirehub_frame_release(out->frame);
            out->next = wmcf->free_out;
            wmcf->free_out = out;
        }

        if (s->out == NULL) {
            s->out_last = &s->out;
        }

        if (!c->write->ready) {
            return ngx_handle_write_event(c->write, 0);
        }
    }

    return NGX_OK;
}


/*
 * The response header the write filter held back (it is smaller than
 * postpone_output and was not flushed) goes first on the queue, so that
 * it leaves with the first frames in one write.
 */

ngx_int_t
ngx_http_wirehub_send_head(ngx_http_wirehub_session_t *s, ngx_chain_t *in)
{
    u_char                        *p;
    size_t                         len;
    ngx_chain_t                   *cl;
    ngx_http_wirehub_out_t        *out;
    ngx_http_wirehub_out_frame_t  *frame;
    ngx_http_wirehub_main_conf_t  *wmcf;

    len = 0;

    for (cl = in; cl; cl = cl->next) {
        if (!ngx_buf_in_memory_only(cl->buf)) {
            return NGX_DECLINED;
        }

        len += cl->buf->last - cl->buf->pos;
    }

    wmcf = s->main_conf;

    frame = ngx_alloc(offsetof(ngx_http_wirehub_out_frame_t, data) + len,
                      s->connection->log);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    out = wmcf->free_out;

    if (out) {
        wmcf->free_out = out->next;

    } else {
        out = ngx_alloc(sizeof(ngx_http_wirehub_out_t), s->connection->log);
        if (out == NULL) {
            ngx_free(frame);
            return NGX_ERROR;
        }
    }

    p = frame->data;

    for (cl = in; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        cl->buf->pos = cl->buf->last;
    }

    frame->refs = 1;
    frame->len = len;
    frame->msg_id = 0;

    out->frame = frame;
    out->sent = 0;
    out->next = s->out;

    if (s->out == NULL) {
        s->out_last = &out->next;
    }

    s->out = out;
    s->out_bytes += len;
    s->head_queued = 1;

    return NGX_OK;
}


/* connection_status is queued, or will not be: the 101 may go */

void
ngx_http_wirehub_greeted(ngx_http_wirehub_session_t *s)
{
    ngx_connection_t  *c;

    if (!s->greeting) {
        return;
    }

    s->greeting = 0;
    c = s->connection;

    if (s->out && !s->closed && !c->write->posted && c->write->ready) {
        ngx_http_wirehub_post_write(s->main_conf, c);
    }
}


static ngx_int_t
ngx_http_wirehub_send_one(ngx_http_wirehub_session_t *s)
{
    ssize_t                        n;
    ngx_connection_t              *c;
    ngx_http_wirehub_out_t        *out;
    ngx_http_wirehub_main_conf_t  *wmcf;

    c = s->connection;
    out = s->out;

    n = c->send(c, out->frame->data + out->sent,
                out->frame->len - out->sent);

    if (n == NGX_AGAIN) {
        return NGX_OK;
    }

    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    s->out_bytes -= n;
    out->sent += n;
    s->head_queued = 0;

    if (out->sent < out->frame->len) {
        return NGX_OK;
    }

    wmcf = s->main_conf;

    s->out = NULL;
    s->out_last = &s->out;
    ngx_http_wirehub_frame_release(out->frame);
    out->next = wmcf->free_out;
    wmcf->free_out = out;

    return NGX_OK;
}


/*
 * Forgets queued frames that have not started to go out; a partially
 * written frame must be completed or the stream would be corrupt, and the
 * 101 response held back for the first frames still goes first.
 */

void
ngx_http_wirehub_drop_queue(ngx_http_wirehub_session_t *s,
    ngx_uint_t keep_partial)
{
    ngx_http_wirehub_out_t        *out, *next, **prev;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = s->main_conf;
    prev = &s->out;

    for (out = s->out; out; out = next) {
        next = out->next;

        if (keep_partial
            && (out->sent || (out == s->out && s->head_queued)))
        {
            prev = &out->next;
            continue;
        }

        *prev = next;
        s->out_bytes -= out->frame->len - out->sent;
        ngx_http_wirehub_frame_release(out->frame);
        out->next = wmcf->free_out;
        wmcf->free_out = out;
    }

    s->out_last = prev;
}
