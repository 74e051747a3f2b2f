/*
 * The rate coalescer of a cluster (coalesce.h).  An offer asks the
 * engine at once; the value goes out on WH_ERATE_SEND, or the engine
 * holds it and this node asks again when the window ends.  Several
 * nodes may hold values of one key and all ask: the first ask after
 * the window's end takes the newest held value, the others find none.
 *
 * Waits of a rule are queued in the order they were held.  Their due
 * times are about in that order (all windows of a rule are the same
 * length); one a little later than the one behind it delays that one
 * by less than a window.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "coalesce.h"


struct wh_coal_wait_s {
    wh_coal_wait_t  *next;          /* in its rule's FIFO */
    wh_coal_call_t  *asking;        /* the ask in flight, or NULL */
    unsigned         rule;
    int              queued;
    int64_t          due;           /* monotonic ms */
    wh_str_t         mkey;          /* in the map entry */
    size_t           ws_len, ch_len;
    wh_buf_t         last;          /* ws, channel, data of the last
                                     * value held from this node */
};

struct wh_coal_call_s {
    wh_coal_call_t  *prev, *next;   /* in c->calls */
    wh_coalesce_t   *c;             /* NULL: dropped at stop */
    wh_coal_wait_t  *wait;          /* an ask; NULL: an offer */
    unsigned         rule;
    size_t           mklen, ws_len, ch_len, len;
    char             buf[];         /* key, ws, channel, NUL, data */
};


int
wh_coalesce_init(wh_coalesce_t *c, wh_engine_t *engine,
    const int64_t *intervals, unsigned nrules, wh_rate_emit_pt emit,
    void *ctx)
{
    unsigned  i;

    memset(c, 0, sizeof(wh_coalesce_t));
    c->intervals = calloc(nrules ? nrules : 1, sizeof(int64_t));
    c->fifos = calloc(nrules ? nrules : 1, sizeof(wh_coal_fifo_t));

    if (c->intervals == NULL || c->fifos == NULL) {
        wh_coalesce_free(c);
        return -1;
    }

    for (i = 0; i < nrules; i++) {
        c->intervals[i] = intervals[i];
        c->fifos[i].tail = &c->fifos[i].head;
    }

    c->engine = engine;
    c->nrules = nrules;
    c->emit = emit;
    c->ctx = ctx;

    return 0;
}


/* the map key: the rule's index, ':', the key */
static size_t
wh_coal_key(char *buf, unsigned rule, wh_str_t key)
{
    size_t  n;

    n = (size_t) snprintf(buf, 16, "%u:", rule);
    memcpy(buf + n, key.data, key.len);

    return n + key.len;
}


static void
wh_coal_unlink(wh_coalesce_t *c, wh_coal_call_t *call)
{
    if (call->prev != NULL) {
        call->prev->next = call->next;
    } else {
        c->calls = call->next;
    }

    if (call->next != NULL) {
        call->next->prev = call->prev;
    }
}


static void
wh_coal_queue(wh_coalesce_t *c, wh_coal_wait_t *w, int64_t due)
{
    wh_coal_fifo_t  *f = &c->fifos[w->rule];

    w->due = due;
    w->next = NULL;
    w->queued = 1;
    *f->tail = w;
    f->tail = &w->next;
}


static void
wh_coal_wait_free(wh_coalesce_t *c, wh_coal_wait_t *w)
{
    (void) wh_map_del(&c->waits, w->mkey.data, w->mkey.len);
    wh_buf_free(&w->last);
    free(w);
}


/* the engine held a value of the key: remember to ask for it */
static int
wh_coal_held(wh_coalesce_t *c, wh_coal_call_t *call, int64_t wait_ms)
{
    wh_coal_wait_t  *w;
    wh_map_entry_t  *e;

    w = wh_map_get(&c->waits, call->buf, call->mklen);

    if (w == NULL) {
        w = calloc(1, sizeof(wh_coal_wait_t));

        if (w == NULL) {
            return -1;
        }

        e = wh_map_put(&c->waits, call->buf, call->mklen, w);

        if (e == NULL) {
            free(w);
            return -1;
        }

        w->rule = call->rule;
        w->mkey.data = (const char *) e->key;
        w->mkey.len = e->klen;
    }

    w->last.len = 0;
    w->ws_len = call->ws_len;
    w->ch_len = call->ch_len;

    /* what stop sends: ws, channel, data (the NUL left out) */
    if (wh_buf_append(&w->last, call->buf + call->mklen,
                      call->ws_len + call->ch_len) != 0
        || wh_buf_append(&w->last,
                         call->buf + call->mklen + call->ws_len
                         + call->ch_len + 1,
                         call->len - call->mklen - call->ws_len
                         - call->ch_len - 1) != 0)
    {
        w->last.len = 0;
    }

    if (!w->queued && w->asking == NULL) {
        wh_coal_queue(c, w, wh_loop_now() + (wait_ms > 0 ? wait_ms : 1));
    }

    return 0;
}


static void
wh_coal_send(wh_coalesce_t *c, wh_coal_call_t *call)
{
    wh_str_t  ws, ch, data;

    ws.data = call->buf + call->mklen;
    ws.len = call->ws_len;
    ch.data = ws.data + ws.len;
    ch.len = call->ch_len;
    data.data = ch.data + ch.len + 1;
    data.len = call->len - call->mklen - ws.len - ch.len - 1;

    c->emit(c->ctx, call->rule, ws, ch, data);
}


static void
wh_coal_offered(void *ctx, int rc, int64_t wait_ms, wh_str_t value)
{
    wh_coal_call_t  *call = ctx;
    wh_coalesce_t   *c = call->c;

    (void) value;

    if (c != NULL) {
        wh_coal_unlink(c, call);

        if (rc == WH_ERATE_HELD && wh_coal_held(c, call, wait_ms) == 0) {
            c->coalesced++;

        } else {
            c->failed += rc != WH_ERATE_SEND;
            wh_coal_send(c, call);
        }
    }

    free(call);
}


void
wh_coalesce_offer(wh_coalesce_t *c, unsigned rule, wh_str_t key,
    wh_str_t ws, wh_str_t ch, wh_str_t data)
{
    size_t           mklen, len;
    wh_str_t         mkey, value;
    wh_coal_call_t  *call;
    char             kbuf[16 + WH_INGEST_KEY_MAX];

    if (c->stopped || rule >= c->nrules || c->intervals[rule] <= 0
        || key.len > WH_INGEST_KEY_MAX)
    {
        c->emit(c->ctx, rule, ws, ch, data);
        return;
    }

    mklen = wh_coal_key(kbuf, rule, key);
    len = mklen + ws.len + ch.len + 1 + data.len;
    call = malloc(sizeof(wh_coal_call_t) + len);

    if (call == NULL) {
        c->failed++;
        c->emit(c->ctx, rule, ws, ch, data);
        return;
    }

    call->c = c;
    call->wait = NULL;
    call->rule = rule;
    call->mklen = mklen;
    call->ws_len = ws.len;
    call->ch_len = ch.len;
    call->len = len;
    memcpy(call->buf, kbuf, mklen);
    memcpy(call->buf + mklen, ws.data, ws.len);
    memcpy(call->buf + mklen + ws.len, ch.data, ch.len);
    call->buf[mklen + ws.len + ch.len] = '\0';
    memcpy(call->buf + mklen + ws.len + ch.len + 1, data.data, data.len);

    mkey.data = call->buf;
    mkey.len = mklen;
    value.data = call->buf + mklen + ws.len;
    value.len = ch.len + 1 + data.len;

    if (c->engine->ops->rate(c->engine, ws, mkey, c->intervals[rule],
                             value, wh_coal_offered, call) != 0)
    {
        c->failed++;
        wh_coal_send(c, call);
        free(call);
        return;
    }

    call->prev = NULL;
    call->next = c->calls;

    if (c->calls != NULL) {
        c->calls->prev = call;
    }

    c->calls = call;
}


/* the answer to an ask: the held value (channel NUL data) goes out */
static void
wh_coal_asked(void *ctx, int rc, int64_t wait_ms, wh_str_t value)
{
    const char      *nul;
    wh_str_t         ws, ch, data;
    wh_coal_call_t  *call = ctx;
    wh_coal_wait_t  *w = call->wait;
    wh_coalesce_t   *c = call->c;

    if (c == NULL) {
        free(call);
        return;
    }

    wh_coal_unlink(c, call);
    free(call);
    w->asking = NULL;

    switch (rc) {

    case WH_ERATE_SEND:
        nul = value.data ? memchr(value.data, '\0', value.len) : NULL;

        if (nul != NULL) {
            ws.data = (const char *) w->last.data;
            ws.len = w->ws_len;
            ch.data = value.data;
            ch.len = (size_t) (nul - value.data);
            data.data = nul + 1;
            data.len = value.len - ch.len - 1;

            /* the key's ws is the one of every value it had */
            if (ws.data != NULL) {
                c->emit(c->ctx, w->rule, ws, ch, data);
            }
        }

        wh_coal_wait_free(c, w);
        break;

    case WH_ERATE_HELD:
        wh_coal_queue(c, w, wh_loop_now() + (wait_ms > 0 ? wait_ms : 1));
        break;

    case WH_ERATE_NONE:
        wh_coal_wait_free(c, w);
        break;

    default:
        /* the engine is out of reach: ask again a window later */
        wh_coal_queue(c, w, wh_loop_now() + c->intervals[w->rule]);
        break;
    }
}


static void
wh_coal_ask(wh_coalesce_t *c, wh_coal_wait_t *w, int64_t now)
{
    wh_str_t         ws, none = { NULL, 0 };
    wh_coal_call_t  *call;

    call = calloc(1, sizeof(wh_coal_call_t));

    if (call == NULL) {
        wh_coal_queue(c, w, now + c->intervals[w->rule]);
        return;
    }

    call->c = c;
    call->wait = w;
    call->rule = w->rule;
    ws.data = (const char *) w->last.data;
    ws.len = w->ws_len;

    if (c->engine->ops->rate(c->engine, ws, w->mkey, c->intervals[w->rule],
                             none, wh_coal_asked, call) != 0)
    {
        free(call);
        wh_coal_queue(c, w, now + c->intervals[w->rule]);
        return;
    }

    w->asking = call;
    call->next = c->calls;

    if (c->calls != NULL) {
        c->calls->prev = call;
    }

    c->calls = call;
}


void
wh_coalesce_due(wh_coalesce_t *c, int64_t now)
{
    unsigned         i;
    wh_coal_fifo_t  *f;
    wh_coal_wait_t  *w;

    for (i = 0; i < c->nrules && !c->stopped; i++) {
        f = &c->fifos[i];

        while (f->head != NULL && f->head->due <= now) {
            w = f->head;
            f->head = w->next;

            if (f->head == NULL) {
                f->tail = &f->head;
            }

            w->queued = 0;
            wh_coal_ask(c, w, now);
        }
    }
}


void
wh_coalesce_stop(wh_coalesce_t *c)
{
    wh_str_t         ws, ch, data;
    unsigned         i;
    wh_coal_call_t  *call;
    wh_coal_wait_t  *w;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    c->stopped = 1;

    for (call = c->calls; call != NULL; call = call->next) {
        if (call->wait == NULL) {
            wh_coal_send(c, call);
        }

        call->c = NULL;
    }

    c->calls = NULL;

    while ((e = wh_map_next(&c->waits, &it)) != NULL) {
        w = e->value;

        if (w->last.len) {
            ws.data = (const char *) w->last.data;
            ws.len = w->ws_len;
            ch.data = ws.data + ws.len;
            ch.len = w->ch_len;
            data.data = ch.data + ch.len;
            data.len = w->last.len - ws.len - ch.len;
            c->emit(c->ctx, w->rule, ws, ch, data);
        }

        wh_buf_free(&w->last);
        free(w);
    }

    wh_map_free(&c->waits);
    memset(&c->waits, 0, sizeof(wh_map_t));

    for (i = 0; i < c->nrules; i++) {
        c->fifos[i].head = NULL;
        c->fifos[i].tail = &c->fifos[i].head;
    }
}


void
wh_coalesce_free(wh_coalesce_t *c)
{
    if (!c->stopped && c->fifos != NULL) {
        wh_coalesce_stop(c);
    }

    free(c->intervals);
    free(c->fifos);
    c->intervals = NULL;
    c->fifos = NULL;
    c->nrules = 0;
}


size_t
wh_coalesce_waiting(const wh_coalesce_t *c)
{
    return c->waits.count;
}
