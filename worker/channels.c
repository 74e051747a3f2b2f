/*
 * Channels, fan-out and the group-committed publish pipeline.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_json_check.h"
#include "wh_channel.h"
#include "wh_time.h"
#include "message.h"
#include "channels.h"


#define WH_CHAN_KEY_MAX  (WH_WORKSPACE_MAX + 1 + WH_CHANNEL_MAX)

struct wh_pub_s {
    wh_pub_t        *next;
    wh_pub_origin_e  origin;
    wh_peer_t       *peer;
    uint32_t         req_id;
    int64_t          time_ms;
    wh_str_t         ws, ch, type, data;    /* point into mem */
    uint64_t         id;
    int              refused;               /* 1 + the quota kind that
                                             * refused it; 0: none */
    char             epoch[WH_EPOCH_LEN + 1];
    wh_buf_t         text;                  /* the message JSON */
    wh_idem_t       *idem;                  /* its Idempotency-Key */
    char             mem[];
};


void
wh_channels_init(wh_channels_t *c, wh_engine_t *engine, wh_quota_t *quota,
    wh_log_t *log)
{
    memset(c, 0, sizeof(wh_channels_t));
    c->engine = engine;
    c->quota = quota;
    c->log = log;
    c->tail = &c->head;
    c->replay_page = 500;
}


static void
wh_pub_free(wh_pub_t *p)
{
    wh_buf_free(&p->text);
    free(p);
}


void
wh_channels_free(wh_channels_t *c)
{
    wh_pub_t        *p, *next;
    wh_chan_t       *chan;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    for (p = c->head; p != NULL; p = next) {
        next = p->next;
        wh_pub_free(p);
    }

    for (p = c->inflight; p != NULL; p = next) {
        next = p->next;
        wh_pub_free(p);
    }

    while ((e = wh_map_next(&c->chans, &it)) != NULL) {
        chan = e->value;
        free(chan->subs);
        free(chan);
    }

    wh_map_free(&c->chans);
    wh_buf_free(&c->frame);
    wh_idem_free(&c->idem);
}


const char *
wh_error_code(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 409:
        return "conflict";
    case 413:
        return "too_large";
    case 429:
        return "quota_exceeded";
    case 501:
        return "not_implemented";
    case 507:
        return "insufficient_storage";
    case 503:
        return "unavailable";
    default:
        return "internal";
    }
}


const char *
wh_err_code(const wh_err_t *err)
{
    return err->status == 429 && err->retry_s ? "rate_limited"
                                               : wh_error_code(err->status);
}


/* who a refusal by a quota is told to: the log, for MQTT ingest */
static const char *
wh_pub_who(wh_pub_origin_e origin)
{
    return origin == WH_PUB_INGEST ? "MQTT ingest" : NULL;
}


static size_t
wh_chan_key(unsigned char *buf, wh_str_t ws, wh_str_t ch)
{
    memcpy(buf, ws.data, ws.len);
    buf[ws.len] = '\0';
    memcpy(buf + ws.len + 1, ch.data, ch.len);

    return ws.len + 1 + ch.len;
}


static wh_chan_t *
wh_chan_find(wh_channels_t *c, wh_str_t ws, wh_str_t ch)
{
    unsigned char  key[WH_CHAN_KEY_MAX];

    return wh_map_get(&c->chans, key, wh_chan_key(key, ws, ch));
}


/* a cluster engine: the channel's messages from every node, while it
 * has local subscribers; 0 in effect, WH_ENGINE_AGAIN not yet, -1
 * failed (logged) */
static int
wh_chan_follow(wh_channels_t *c, wh_chan_t *chan, int on)
{
    int       rc;
    wh_err_t  err;

    if (c->engine->ops->chan_follow == NULL) {
        return 0;
    }

    rc = c->engine->ops->chan_follow(c->engine, chan->ws, chan->name, on,
                                     &err);

    if (rc == -1) {
        wh_log_error(c->log, "channel \"%.*s\": %s", (int) chan->name.len,
                     chan->name.data, err.msg);
    }

    return rc;
}


static wh_chan_t *
wh_chan_get(wh_channels_t *c, wh_str_t ws, wh_str_t ch)
{
    size_t           klen;
    wh_chan_t       *chan;
    wh_map_entry_t  *e;
    unsigned char    key[WH_CHAN_KEY_MAX];

    klen = wh_chan_key(key, ws, ch);
    chan = wh_map_get(&c->chans, key, klen);

    if (chan != NULL) {
        return chan;
    }

    chan = calloc(1, sizeof(wh_chan_t));

    if (chan == NULL) {
        return NULL;
    }

    e = wh_map_put(&c->chans, key, klen, chan);

    if (e == NULL) {
        free(chan);
        return NULL;
    }

    chan->ws.data = (const char *) e->key;
    chan->ws.len = ws.len;
    chan->name.data = (const char *) e->key + ws.len + 1;
    chan->name.len = ch.len;

    wh_chan_follow(c, chan, 1);

    return chan;
}


static void
wh_chan_drop_if_unused(wh_channels_t *c, wh_chan_t *chan)
{
    unsigned char  key[WH_CHAN_KEY_MAX];
    size_t         klen;

    if (chan->nsubs != 0) {
        return;
    }

    wh_chan_follow(c, chan, 0);
    klen = wh_chan_key(key, chan->ws, chan->name);
    wh_map_del(&c->chans, key, klen);
    free(chan->subs);
    free(chan);
}


/* sets the peer's local count (0 removes it); a new subscriber is
 * answered or not yet (wh_sub_t); -1 on ENOMEM */
static int
wh_chan_set(wh_channels_t *c, wh_peer_t *peer, wh_str_t ws, wh_str_t ch,
    uint32_t count, int answered)
{
    unsigned    i;
    wh_sub_t   *subs;
    wh_chan_t  *chan;

    chan = count ? wh_chan_get(c, ws, ch) : wh_chan_find(c, ws, ch);

    if (chan == NULL) {
        return count ? -1 : 0;
    }

    for (i = 0; i < chan->nsubs; i++) {
        if (chan->subs[i].peer == peer) {
            break;
        }
    }

    if (i < chan->nsubs) {
        chan->total -= chan->subs[i].count;

        if (count == 0) {
            chan->subs[i] = chan->subs[--chan->nsubs];
            wh_chan_drop_if_unused(c, chan);
            return 0;
        }

        chan->subs[i].count = count;
        chan->total += count;
        return 0;
    }

    if (count == 0) {
        return 0;
    }

    if (chan->nsubs == chan->cap) {
        subs = realloc(chan->subs, (chan->cap + 4) * sizeof(wh_sub_t));

        if (subs == NULL) {
            wh_chan_drop_if_unused(c, chan);
            return -1;
        }

        chan->subs = subs;
        chan->cap += 4;
    }

    chan->subs[chan->nsubs].peer = peer;
    chan->subs[chan->nsubs].count = count;
    chan->subs[chan->nsubs].answered = answered;
    chan->nsubs++;
    chan->total += count;

    return 0;
}


void
wh_channels_peer_gone(wh_channels_t *c, wh_peer_t *peer)
{
    wh_chan_t       *chan;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&c->chans, &it)) != NULL) {
        chan = e->value;
        (void) wh_chan_set(c, peer, chan->ws, chan->name, 0, 0);
    }
}


uint64_t
wh_channels_subscribers(wh_channels_t *c, wh_str_t ws, wh_str_t ch)
{
    wh_chan_t  *chan;

    chan = wh_chan_find(c, ws, ch);

    return chan ? chan->total : 0;
}


int
wh_channels_history(wh_channels_t *c, wh_str_t ws, wh_str_t ch,
    uint64_t after, size_t limit, wh_hist_item_pt cb, void *ctx,
    wh_hist_range_t *r, wh_err_t *err)
{
    if (wh_channels_commit(c) == WH_ENGINE_AGAIN) {
        return WH_ENGINE_AGAIN;
    }

    return wh_engine_hist_read(c->engine, ws, ch, after, UINT64_MAX, limit,
                               wh_time_ms(), cb, ctx, r, err);
}


/*
 * The newest entries: the channel's last id first (a read of no entry,
 * after >= up_to, gives the channel's meta), then the range that ends at
 * it, or below `before` (0: no bound).
 */
int
wh_channels_history_last(wh_channels_t *c, wh_str_t ws, wh_str_t ch,
    uint64_t before, size_t limit, wh_hist_item_pt cb, void *ctx,
    wh_hist_range_t *r, wh_err_t *err)
{
    int       rc;
    int64_t   now;
    uint64_t  top;

    if (wh_channels_commit(c) == WH_ENGINE_AGAIN) {
        return WH_ENGINE_AGAIN;
    }

    now = wh_time_ms();
    rc = wh_engine_hist_read(c->engine, ws, ch, 0, 0, 0, now, cb, ctx, r,
                             err);

    if (rc != 0) {
        return rc;
    }

    top = r->meta.last_id;

    if (before && before - 1 < top) {
        top = before - 1;
    }

    if (!r->found || top == 0) {
        return 0;
    }

    return wh_engine_hist_read(c->engine, ws, ch, top > limit ? top - limit
                                                              : 0,
                               top, limit, now, cb, ctx, r, err);
}


int
wh_channels_list(wh_channels_t *c, wh_str_t ws, wh_str_t after,
    wh_chan_item_pt cb, void *ctx, wh_err_t *err)
{
    if (wh_channels_commit(c) == WH_ENGINE_AGAIN) {
        return WH_ENGINE_AGAIN;
    }

    return wh_engine_chan_list(c->engine, ws, after, cb, ctx, err);
}


static int
wh_channels_count_one(void *ctx, const char *name, size_t len,
    const wh_chan_meta_t *meta)
{
    (void) name;
    (void) len;
    (void) meta;

    (*(uint64_t *) ctx)++;

    return 0;
}


int
wh_channels_stored(wh_channels_t *c, wh_str_t ws, uint64_t *n,
    wh_err_t *err)
{
    wh_str_t  none = { "", 0 };

    *n = 0;

    return wh_engine_chan_list(c->engine, ws, none, wh_channels_count_one, n,
                               err);
}


void
wh_channels_stats(wh_channels_t *c, wh_str_t ws, wh_chan_stats_t *s)
{
    wh_chan_t       *chan;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    memset(s, 0, sizeof(wh_chan_stats_t));

    while ((e = wh_map_next(&c->chans, &it)) != NULL) {
        chan = e->value;

        if (chan->ws.len == ws.len
            && memcmp(chan->ws.data, ws.data, ws.len) == 0)
        {
            s->channels++;
            s->subscriptions += chan->total;
        }
    }
}


static int
wh_names_valid(const wh_link_msg_t *m)
{
    return wh_workspace_valid(m->workspace.data, m->workspace.len)
           && wh_channel_valid(m->channel.data, m->channel.len);
}


int
wh_channels_enqueue(wh_channels_t *c, wh_pub_origin_e origin,
    wh_peer_t *peer, uint32_t req_id, wh_str_t ws, wh_str_t ch,
    wh_str_t type, wh_str_t data, wh_err_t *err)
{
    char      *p;
    wh_pub_t  *pub;

    if (!wh_workspace_valid(ws.data, ws.len)) {
        return wh_err(err, 400, "invalid workspace");
    }

    if (!wh_channel_valid(ch.data, ch.len)) {
        return wh_err(err, 400, "invalid channel name");
    }

    if (origin != WH_PUB_DAEMON && wh_channel_is_system(ch.data, ch.len)) {
        return wh_err(err, 403, "system channels are written by wirehubd "
                      "only");
    }

    if (type.len && !wh_message_type_valid(type.data, type.len)) {
        return wh_err(err, 400, "invalid message type");
    }

    data = wh_json_trim(data.data, data.len);

    if (data.len == 0) {
        data.data = "null";
        data.len = 4;
    }

    if (data.len + type.len * 6 + ch.len + 128 > WH_MESSAGE_MAX) {
        return wh_err(err, 413, "message too large");
    }

    /* the daemon builds its data with jansson or from a payload jansson
     * accepted: parsing it again would double the cost of MQTT ingest */
    if (origin != WH_PUB_DAEMON && origin != WH_PUB_INGEST
        && !wh_json_check(data.data, data.len))
    {
        return wh_err(err, 400, "data is not valid JSON");
    }

    /* a valid message only: an invalid one costs the bucket nothing */
    if (wh_quota_publish(c->quota, ws, ch, wh_pub_who(origin), err) != 0) {
        return -1;
    }

    pub = calloc(1, sizeof(wh_pub_t) + ws.len + ch.len + type.len
                    + data.len);

    if (pub == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    pub->origin = origin;
    pub->peer = peer;
    pub->req_id = req_id;
    pub->time_ms = wh_time_ms();

    p = pub->mem;
    pub->ws.data = memcpy(p, ws.data, ws.len);
    pub->ws.len = ws.len;
    p += ws.len;
    pub->ch.data = memcpy(p, ch.data, ch.len);
    pub->ch.len = ch.len;
    p += ch.len;
    pub->type.data = type.len ? memcpy(p, type.data, type.len) : "";
    pub->type.len = type.len;
    p += type.len;
    pub->data.data = memcpy(p, data.data, data.len);
    pub->data.len = data.len;

    *c->tail = pub;
    c->tail = &pub->next;
    c->last = pub;
    c->pending++;

    return 0;
}


/*
 * An API publish with an Idempotency-Key: the first of a key on this
 * channel is queued; a repeat within the window is answered 200 with the
 * first message's id and epoch, or 409 while the first is not answered.
 */
int
wh_channels_enqueue_keyed(wh_channels_t *c, wh_peer_t *peer,
    uint32_t req_id, wh_str_t ws, wh_str_t ch, wh_str_t type, wh_str_t data,
    wh_str_t key, wh_err_t *err)
{
    int            n;
    char           ok[128];
    wh_idem_t     *e, *found;
    wh_link_msg_t  r;

    if (key.len == 0 || key.len > WH_IDEM_KEY_MAX) {
        return wh_err(err, 400, "Idempotency-Key must be 1 to 128 bytes");
    }

    e = wh_idem_begin(&c->idem, ws, ch, key, wh_time_ms(), &found);

    if (e == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    if (found != NULL && !found->done) {
        return wh_err(err, 409, "a publish with this Idempotency-Key is "
                      "in progress, retry");
    }

    if (found != NULL) {
        n = snprintf(ok, sizeof(ok), "{\"id\":%" PRIu64 ",\"epoch\":\"%s\"}",
                     found->id, found->epoch);
        memset(&r, 0, sizeof(r));
        r.type = WH_LINK_RESPONSE;
        r.req_id = req_id;
        r.status = 200;
        r.body.data = ok;
        r.body.len = n;
        wh_link_send(peer, &r);
        return 0;
    }

    if (wh_channels_enqueue(c, WH_PUB_API, peer, req_id, ws, ch, type, data,
                            err) != 0)
    {
        wh_idem_end(&c->idem, e, 0, 0, "");
        return -1;
    }

    c->last->idem = e;

    return 0;
}


int
wh_channels_publish(wh_channels_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    wh_err_t       err;
    wh_link_msg_t  r;

    if (wh_channels_enqueue(c, WH_PUB_LINK, peer, m->req_id, m->workspace,
                            m->channel, m->name, m->body, &err) == 0)
    {
        return 0;
    }

    wh_link_published(&r, m->req_id, (uint16_t) err.status, err.retry_s,
                      wh_cstr(""), wh_cstr(err.msg));
    wh_link_send(peer, &r);

    return 0;
}


/* a publish into a channel that does not exist yet: the channel is
 * made if the workspace's quotas have room for it and for the message,
 * else the publish is refused and nothing is made */
static int
wh_pub_create(wh_channels_t *c, wh_etxn_t *t, wh_pub_t *p,
    wh_chan_meta_t *meta, wh_err_t *err)
{
    /* the length of the text does not depend on the epoch's letters */
    static const char  blank[WH_EPOCH_LEN + 1] = "--------";

    if (!wh_quota_hist_channel(c->quota, p->ws, p->ch)) {
        p->refused = 1 + WH_QUOTA_CHANNELS;
        return 0;
    }

    p->text.len = 0;

    if (wh_message_build(&p->text, p->type, p->ch, 1, blank, p->data,
                         p->time_ms) != 0)
    {
        return wh_err(err, 503, "out of memory");
    }

    if ((int64_t) p->text.len > wh_quota_hist_room(c->quota, p->ws, p->ch)) {
        p->refused = 1 + WH_QUOTA_HISTORY_BYTES;
        return 0;
    }

    if (wh_etxn_ops(t)->chan_get(t, p->ws, p->ch, p->time_ms, 1, meta, err)
        < 0)
    {
        return -1;
    }

    wh_quota_hist_add(c->quota, p->ws, p->ch, 1, 0);

    return 0;
}


static int
wh_channels_txn(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    int              rc;
    int64_t          growth;
    wh_pub_t        *p;
    wh_chan_meta_t   meta;
    wh_channels_t   *c = ctx;

    /* the engine may run the write again: the quotas count from scratch */
    wh_quota_hist_begin(c->quota);

    for (p = c->inflight; p != NULL; p = p->next) {
        p->refused = 0;
        rc = wh_etxn_ops(t)->chan_get(t, p->ws, p->ch, p->time_ms, 0, &meta,
                                      err);

        if (rc < 0 || (rc == 0 && wh_pub_create(c, t, p, &meta, err) != 0)) {
            return -1;
        }

        if (p->refused) {
            continue;
        }

        p->text.len = 0;

        if (wh_message_build(&p->text, p->type, p->ch, meta.last_id + 1,
                             meta.epoch, p->data, p->time_ms) != 0)
        {
            return wh_err(err, 503, "out of memory");
        }

        rc = wh_etxn_ops(t)->chan_append(t, p->ws, p->ch, &meta, p->time_ms,
                                         p->text.data, p->text.len,
                                         wh_quota_hist_room(c->quota, p->ws,
                                                            p->ch),
                                         &growth, err);

        if (rc < 0) {
            return -1;
        }

        if (rc == 1 || rc == WH_ENGINE_NO_CHANNEL) {
            p->refused = 1 + (rc == 1 ? WH_QUOTA_HISTORY_BYTES
                                      : WH_QUOTA_CHANNELS);
            continue;
        }

        wh_quota_hist_add(c->quota, p->ws, p->ch, 0, growth);
        p->id = meta.last_id;
        memcpy(p->epoch, meta.epoch, sizeof(p->epoch));
    }

    return 0;
}


static void
wh_pub_reply(wh_pub_t *p, const wh_err_t *err)
{
    int            n;
    char           ok[128];
    wh_buf_t       body = { 0 };
    wh_link_msg_t  r;

    if (p->origin == WH_PUB_DAEMON || p->origin == WH_PUB_INGEST
        || p->peer->closing)
    {
        return;
    }

    memset(&r, 0, sizeof(r));
    r.req_id = p->req_id;

    if (p->origin == WH_PUB_LINK) {
        wh_link_published(&r, p->req_id, err ? (uint16_t) err->status : 0,
                          err ? err->retry_s : p->id,
                          wh_cstr(err ? "" : p->epoch),
                          wh_cstr(err ? err->msg : ""));
        wh_link_send(p->peer, &r);
        return;
    }

    r.type = WH_LINK_RESPONSE;

    if (err == NULL) {
        n = snprintf(ok, sizeof(ok), "{\"id\":%" PRIu64 ",\"epoch\":\"%s\"}",
                     p->id, p->epoch);
        r.status = 202;
        r.flag = WH_LINK_RESPONSE_FANOUT;
        r.body.data = ok;
        r.body.len = n;
        wh_link_send(p->peer, &r);
        return;
    }

    r.status = (uint16_t) err->status;
    r.count = err->retry_s;

    if (wh_json_error(&body, wh_err_code(err), err->msg) == 0) {
        r.body.data = (const char *) body.data;
        r.body.len = body.len;
        wh_link_send(p->peer, &r);
    }

    wh_buf_free(&body);
}


/* a message for the peers subscribed here: what a commit of this
 * daemon made (one node), or what a cluster engine delivered */
static void
wh_chan_deliver(wh_channels_t *c, wh_str_t ws, wh_str_t ch, uint64_t id,
    const char *ep, int64_t time_ms, wh_str_t json)
{
    unsigned        i;
    wh_str_t        epoch;
    wh_chan_t      *chan;
    wh_link_msg_t   m;

    chan = wh_chan_find(c, ws, ch);

    if (chan == NULL || chan->nsubs == 0) {
        return;
    }

    epoch.data = ep;
    epoch.len = WH_EPOCH_LEN;
    wh_link_message(&m, ws, ch, id, epoch, json, (uint64_t) time_ms);

    c->frame.len = 0;

    if (wh_link_encode(&c->frame, &m) != 0) {
        wh_log_error(c->log, "fan-out: cannot encode message %" PRIu64
                     " of \"%.*s\"", id, (int) ch.len, ch.data);
        return;
    }

    for (i = 0; i < chan->nsubs; i++) {
        if (!chan->subs[i].answered) {
            continue;
        }

        wh_link_send_raw(chan->subs[i].peer, c->frame.data, c->frame.len);
        c->delivered++;
    }
}


void
wh_channels_deliver(wh_channels_t *c, wh_str_t ws, wh_str_t ch,
    uint64_t id, const char *epoch, int64_t time_ms, wh_str_t text)
{
    wh_chan_deliver(c, ws, ch, id, epoch, time_ms, text);
}


/* a publish a quota refused at the commit: counted, and answered */
static void
wh_pub_refused(wh_channels_t *c, wh_pub_t *p)
{
    wh_err_t  err;

    wh_quota_refuse(c->quota, p->ws, (wh_quota_kind_e) (p->refused - 1),
                    wh_pub_who(p->origin), &err);
    wh_pub_reply(p, &err);
}


/*
 * The publishes queued so far go into one write; those queued while it
 * is under way (a cluster engine answered WH_ENGINE_AGAIN) wait for the
 * next.  A cluster engine delivers the messages itself, from every
 * node, in id order: only one node's own commits are fanned out here.
 */
int
wh_channels_commit(wh_channels_t *c)
{
    int        rc;
    size_t     n;
    wh_err_t   err;
    wh_pub_t  *p, *next;
    wh_str_t   json;

    if (c->inflight == NULL) {
        if (c->head == NULL) {
            return 0;
        }

        c->inflight = c->head;
        c->inflight_n = c->pending;
        c->head = NULL;
        c->tail = &c->head;
        c->pending = 0;
    }

    rc = wh_engine_write(c->engine, WH_ENGINE_HISTORY, wh_channels_txn, c,
                         &err);

    if (rc == WH_ENGINE_AGAIN) {
        return WH_ENGINE_AGAIN;
    }

    wh_quota_hist_end(c->quota, rc == 0);
    n = c->inflight_n;

    if (rc != 0) {
        wh_log_error(c->log, "publish of %zu messages failed: %s", n,
                     err.msg);
    } else {
        c->commits++;
    }

    for (p = c->inflight; p != NULL; p = next) {
        next = p->next;

        if (rc == 0 && p->refused) {
            wh_pub_refused(c, p);

        } else {
            wh_pub_reply(p, rc == 0 ? NULL : &err);

            if (rc == 0) {
                c->published++;

                if (c->engine->ops->chan_follow == NULL) {
                    json.data = (const char *) p->text.data;
                    json.len = p->text.len;
                    wh_chan_deliver(c, p->ws, p->ch, p->id, p->epoch,
                                    p->time_ms, json);
                }
            }
        }

        if (p->idem) {
            wh_idem_end(&c->idem, p->idem, rc == 0 && !p->refused, p->id,
                        p->epoch);
        }

        wh_pub_free(p);
    }

    c->inflight = NULL;
    c->inflight_n = 0;

    return 0;
}


/* the most a REPLAY page carries, whatever the module asks */
#define WH_REPLAY_PAGE_BYTES  (4u * 1024 * 1024)


typedef struct {
    wh_peer_t       *peer;
    wh_str_t         ws, ch, epoch;
    uint32_t         req_id;
    uint64_t         first;
    uint64_t         last;          /* the last id sent */
    size_t           budget;        /* bytes this page may still carry */
} wh_replay_ctx_t;


static int
wh_first_item(void *ctx, uint64_t id, int64_t t, const char *json,
    size_t len)
{
    wh_replay_ctx_t  *r = ctx;

    (void) t;
    (void) json;
    (void) len;

    r->first = id;

    return 1;
}


static int
wh_send_message(void *ctx, uint64_t id, int64_t t, const char *json,
    size_t len)
{
    wh_str_t          body;
    wh_link_msg_t     m;
    wh_replay_ctx_t  *r = ctx;

    body.data = json;
    body.len = len;
    wh_link_message(&m, r->ws, r->ch, id, r->epoch, body, (uint64_t) t);
    wh_link_send(r->peer, &m);

    return r->peer->closing;
}


static int
wh_send_item(void *ctx, uint64_t id, int64_t t, const char *json,
    size_t len)
{
    wh_link_msg_t     m;
    wh_replay_ctx_t  *r = ctx;

    (void) t;

    /* a page carries at least one message, however large */
    if (r->last && len > r->budget) {
        return 1;
    }

    memset(&m, 0, sizeof(m));
    m.type = WH_LINK_REPLAY_ITEM;
    m.req_id = r->req_id;
    m.id = id;
    m.body.data = json;
    m.body.len = len;
    wh_link_send(r->peer, &m);

    r->last = id;
    r->budget -= len < r->budget ? len : r->budget;

    return r->peer->closing;
}


/* 1 if history holds every id from after + 1 to up_to: -1 on error,
 * or WH_ENGINE_AGAIN */
static int
wh_reaches(wh_channels_t *c, wh_replay_ctx_t *r, uint64_t after,
    uint64_t up_to, int64_t now, wh_err_t *err)
{
    int              rc;
    wh_hist_range_t  range;

    if (after >= up_to) {
        return 1;
    }

    r->first = 0;

    rc = wh_engine_hist_read(c->engine, r->ws, r->ch, after, up_to, 1, now,
                             wh_first_item, r, &range, err);

    if (rc != 0) {
        return rc;
    }

    return r->first == after + 1;
}


static void
wh_send_subscribed(wh_channels_t *c, wh_peer_t *peer,
    const wh_link_msg_t *req, uint64_t last_id, const char *epoch,
    int recovered)
{
    unsigned        i;
    wh_chan_t      *chan;
    wh_link_msg_t   m;

    chan = wh_chan_find(c, req->workspace, req->channel);

    for (i = 0; chan != NULL && i < chan->nsubs; i++) {
        if (chan->subs[i].peer == peer) {
            chan->subs[i].answered = 1;
        }
    }

    wh_link_subscribed(&m, req->workspace, req->channel, last_id,
                       wh_cstr(epoch), recovered);
    wh_link_send(peer, &m);
}


/* SUBSCRIBE: the channel, made if it does not exist, unless the
 * workspace is at its channels quota: the subscription then stands on
 * a channel that is not stored (meta: id 0, no epoch), into which every
 * publish is refused while there is no room */
static int
wh_chan_ensure(wh_channels_t *c, wh_str_t ws, wh_str_t ch, int64_t now,
    wh_chan_meta_t *meta, wh_err_t *err)
{
    int       rc;
    wh_err_t  refused;

    rc = c->engine->ops->chan_meta(c->engine, ws, ch, meta, err);

    if (rc != 0) {
        return rc == 1 ? 0 : rc;
    }

    wh_quota_hist_begin(c->quota);

    if (!wh_quota_hist_channel(c->quota, ws, ch)) {
        wh_quota_hist_end(c->quota, 0);
        wh_quota_refuse(c->quota, ws, WH_QUOTA_CHANNELS, NULL, &refused);
        memset(meta, 0, sizeof(wh_chan_meta_t));
        return 0;
    }

    rc = c->engine->ops->chan_ensure(c->engine, ws, ch, now, meta, err);

    if (rc == WH_ENGINE_NO_CHANNEL) {
        /* the cluster's count is at the limit */
        wh_quota_hist_end(c->quota, 0);
        wh_quota_refuse(c->quota, ws, WH_QUOTA_CHANNELS, NULL, &refused);
        memset(meta, 0, sizeof(wh_chan_meta_t));
        return 0;
    }

    wh_quota_hist_add(c->quota, ws, ch, 1, 0);
    wh_quota_hist_end(c->quota, rc == 0);

    return rc;
}


int
wh_channels_subscribe(wh_channels_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    int               rc;
    int64_t           now;
    wh_err_t          err;
    wh_chan_meta_t    meta;
    wh_replay_ctx_t   r;
    wh_hist_range_t  range;

    if (!wh_names_valid(m)) {
        return -1;
    }

    /* ids and history must reflect every publish read before this */
    if (wh_channels_commit(c) == WH_ENGINE_AGAIN) {
        return WH_LINK_AGAIN;
    }

    /* set again when the frame is dispatched again: the count is set,
     * not added */
    if (wh_chan_set(c, peer, m->workspace, m->channel,
                    m->count ? m->count : 1, 0) != 0)
    {
        wh_link_drop(peer, "out of memory");
        return 0;
    }

    if (wh_chan_follow(c, wh_chan_find(c, m->workspace, m->channel), 1)
        == WH_ENGINE_AGAIN)
    {
        return WH_LINK_AGAIN;
    }

    now = wh_time_ms();
    rc = wh_chan_ensure(c, m->workspace, m->channel, now, &meta, &err);

    if (rc == WH_ENGINE_AGAIN) {
        return WH_LINK_AGAIN;
    }

    if (rc != 0) {
        wh_log_error(c->log, "subscribe: %s", err.msg);
        wh_send_subscribed(c, peer, m, 0, "", 0);
        return 0;
    }

    if (!m->flag) {
        wh_send_subscribed(c, peer, m, meta.last_id, meta.epoch, 1);
        return 0;
    }

    memset(&r, 0, sizeof(r));
    r.peer = peer;
    r.ws = m->workspace;
    r.ch = m->channel;
    r.epoch.data = meta.epoch;
    r.epoch.len = WH_EPOCH_LEN;

    rc = 0;

    if (m->epoch.len == WH_EPOCH_LEN
        && memcmp(m->epoch.data, meta.epoch, WH_EPOCH_LEN) == 0
        && m->id <= meta.last_id)
    {
        rc = wh_reaches(c, &r, m->id, meta.last_id, now, &err);
    }

    /* a cluster engine fetches the whole range: the replay below is
     * then answered from what it fetched */
    if (rc == WH_ENGINE_AGAIN) {
        return WH_LINK_AGAIN;
    }

    if (rc < 0) {
        wh_log_error(c->log, "subscribe: %s", err.msg);
        rc = 0;
    }

    wh_send_subscribed(c, peer, m, meta.last_id, meta.epoch, rc);

    if (rc == 1 && m->id < meta.last_id
        && wh_engine_hist_read(c->engine, m->workspace, m->channel, m->id,
                               meta.last_id, SIZE_MAX, now, wh_send_message,
                               &r, &range, &err) != 0)
    {
        /* the peer would miss messages: make it resubscribe */
        wh_log_error(c->log, "subscribe replay: %s", err.msg);
        wh_link_drop(peer, "storage error during replay");
    }

    return 0;
}


int
wh_channels_count(wh_channels_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    if (!wh_names_valid(m)) {
        return -1;
    }

    if (wh_chan_set(c, peer, m->workspace, m->channel, m->count, 1) != 0) {
        wh_link_drop(peer, "out of memory");
    }

    return 0;
}


static void
wh_send_replay_end(wh_peer_t *peer, uint32_t req_id, uint8_t flags,
    uint64_t last_id, const char *epoch, uint64_t sent_up_to)
{
    wh_link_msg_t  m;

    wh_link_replay_end(&m, req_id, flags, last_id, wh_cstr(epoch),
                       sent_up_to);
    wh_link_send(peer, &m);
}


/*
 * One page of a range: at most replay_page messages and the byte budget
 * the module asked for (it sizes it to what its subscriber can still
 * queue), so that neither side ever holds a whole history at once.  The
 * module asks for the next page once its subscriber has read this one.
 */

int
wh_channels_replay(wh_channels_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    int               rc;
    int64_t           now;
    uint8_t           flags;
    uint64_t          after, up_to;
    wh_err_t          err;
    wh_chan_meta_t    meta;
    wh_replay_ctx_t   r;
    wh_hist_range_t  range;

    if (!wh_names_valid(m)) {
        return -1;
    }

    if (wh_channels_commit(c) == WH_ENGINE_AGAIN) {
        return WH_LINK_AGAIN;
    }

    rc = c->engine->ops->chan_meta(c->engine, m->workspace, m->channel,
                                   &meta, &err);

    if (rc == WH_ENGINE_AGAIN) {
        return WH_LINK_AGAIN;
    }

    if (rc <= 0) {
        if (rc < 0) {
            wh_log_error(c->log, "replay: %s", err.msg);
        }

        wh_send_replay_end(peer, m->req_id,
                           rc == 0 && m->id == 0 ? WH_LINK_REPLAY_RECOVERED
                                                 : 0,
                           0, "", 0);
        return 0;
    }

    after = m->id;
    up_to = m->id2 < meta.last_id ? m->id2 : meta.last_id;

    if (m->epoch.len != WH_EPOCH_LEN
        || memcmp(m->epoch.data, meta.epoch, WH_EPOCH_LEN) != 0
        || after > meta.last_id)
    {
        wh_send_replay_end(peer, m->req_id, 0, meta.last_id, meta.epoch, 0);
        return 0;
    }

    memset(&r, 0, sizeof(r));
    r.peer = peer;
    r.req_id = m->req_id;
    r.ws = m->workspace;
    r.ch = m->channel;
    r.budget = m->count && m->count < WH_REPLAY_PAGE_BYTES
               ? m->count : WH_REPLAY_PAGE_BYTES;

    now = wh_time_ms();
    rc = wh_reaches(c, &r, after, up_to, now, &err);

    if (rc == 1 && after < up_to) {
        r.last = 0;
        rc = wh_engine_hist_read(c->engine, m->workspace, m->channel,
                                 after, up_to, c->replay_page, now,
                                 wh_send_item, &r, &range, &err);
        rc = rc == 0 ? 1 : rc;
    }

    /* nothing was sent yet: an engine answers before its callbacks */
    if (rc == WH_ENGINE_AGAIN) {
        return WH_LINK_AGAIN;
    }

    if (rc < 0) {
        wh_log_error(c->log, "replay: %s", err.msg);
        rc = 0;
    }

    flags = rc ? WH_LINK_REPLAY_RECOVERED : 0;

    if (rc && r.last && r.last < up_to) {
        flags |= WH_LINK_REPLAY_MORE;
    }

    wh_send_replay_end(peer, m->req_id, flags, meta.last_id, meta.epoch,
                       r.last);

    return 0;
}
