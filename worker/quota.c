/*
 * Quotas per workspace (quota.h): limits, usage and the checks.
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wh_channel.h"
#include "loop.h"
#include "quota.h"


/* refusals nobody hears of (MQTT ingest, a connecting client): one log
 * line per workspace per interval */
#define WH_QUOTA_NOTE_MS  60000

struct wh_quota_ws_s {
    wh_str_t           name;           /* the map entry's key */
    wh_quota_limits_t  limits;
    uint64_t           used[WH_QUOTA_KINDS];
    uint64_t           held[WH_QUOTA_KINDS];    /* taken, not released */
    uint64_t           refused[WH_QUOTA_KINDS];
    wh_bucket_t        bucket;
    /* what the history write being run added */
    unsigned           txn_gen;
    int64_t            txn_channels;
    int64_t            txn_bytes;
    wh_quota_ws_t     *txn_next;
    /* refusals logged at most once per WH_QUOTA_NOTE_MS */
    int64_t            note_ms;        /* monotonic; 0: never */
    uint64_t           notes;          /* refused since the last line */
};

static const char *const  wh_quota_names[WH_QUOTA_KINDS] = {
    "channels", "history_bytes", "clients", "queued_commands",
    "publish_rate"
};

/* DESIGN.md: quota workspace=* channels=10000 history_bytes=256m
 * clients=100000 queued_commands=1000000 publish_rate=2000/s */
static const wh_quota_limits_t  wh_quota_defaults = { {
    10000, 256ULL * 1024 * 1024, 100000, 1000000, 2000
} };


const char *
wh_quota_name(wh_quota_kind_e kind)
{
    return (unsigned) kind < WH_QUOTA_KINDS ? wh_quota_names[kind] : "";
}


int
wh_quota_kind(const char *name, size_t len)
{
    int  k;

    for (k = 0; k < WH_QUOTA_KINDS; k++) {
        if (strlen(wh_quota_names[k]) == len
            && memcmp(wh_quota_names[k], name, len) == 0)
        {
            return k;
        }
    }

    return -1;
}


static void
wh_quota_apply(const wh_quota_rule_t *r, wh_quota_limits_t *out)
{
    int  k;

    for (k = 0; k < WH_QUOTA_KINDS; k++) {
        if (r->set & (1u << k)) {
            out->limit[k] = r->limits.limit[k];
        }
    }
}


void
wh_quota_limits(const wh_quota_rule_t *rules, unsigned nrules, wh_str_t ws,
    wh_quota_limits_t *out)
{
    unsigned  i;

    *out = wh_quota_defaults;

    /* a workspace's own lines override the defaults wherever they are */
    for (i = 0; i < nrules; i++) {
        if (strcmp(rules[i].workspace, "*") == 0) {
            wh_quota_apply(&rules[i], out);
        }
    }

    for (i = 0; i < nrules; i++) {
        if (strlen(rules[i].workspace) == ws.len
            && memcmp(rules[i].workspace, ws.data, ws.len) == 0)
        {
            wh_quota_apply(&rules[i], out);
        }
    }
}


int64_t
wh_bucket_take(wh_bucket_t *b, uint64_t rate, int64_t now)
{
    int64_t   elapsed;
    uint64_t  add, full = rate * WH_BUCKET_UNIT;

    if (b->at_ms == 0) {
        b->credit = full;
        b->at_ms = now;
    }

    elapsed = now - b->at_ms;

    if (elapsed > 0) {
        /* a second refills it whole: no product overflows */
        add = elapsed >= 1000 ? full : (uint64_t) elapsed * rate;
        b->credit = full - b->credit < add ? full : b->credit + add;
        b->at_ms = now;
    }

    if (b->credit >= WH_BUCKET_UNIT) {
        b->credit -= WH_BUCKET_UNIT;
        return 0;
    }

    return (int64_t) ((WH_BUCKET_UNIT - b->credit + rate - 1) / rate);
}


void
wh_quota_init(wh_quota_t *q, const wh_quota_rule_t *rules, unsigned nrules,
    wh_log_t *log)
{
    memset(q, 0, sizeof(wh_quota_t));
    q->rules = rules;
    q->nrules = nrules;
    q->log = log;
}


void
wh_quota_free(wh_quota_t *q)
{
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&q->ws, &it)) != NULL) {
        free(e->value);
    }

    wh_map_free(&q->ws);
}


/* the workspace's entry, made on first use; NULL out of memory (the
 * checks then let things pass: a quota never refuses for its own
 * failure) */
static wh_quota_ws_t *
wh_quota_ws(wh_quota_t *q, wh_str_t ws)
{
    wh_quota_ws_t   *w;
    wh_map_entry_t  *e;

    w = wh_map_get(&q->ws, ws.data, ws.len);

    if (w != NULL) {
        return w;
    }

    w = calloc(1, sizeof(wh_quota_ws_t));

    if (w == NULL) {
        return NULL;
    }

    e = wh_map_put(&q->ws, ws.data, ws.len, w);

    if (e == NULL) {
        free(w);
        return NULL;
    }

    w->name.data = (const char *) e->key;
    w->name.len = ws.len;
    wh_quota_limits(q->rules, q->nrules, ws, &w->limits);

    return w;
}


/* `$` channels are wirehubd's own: never counted, never refused */
static int
wh_quota_counts(wh_str_t ch)
{
    return !wh_channel_is_system(ch.data, ch.len);
}


static void
wh_quota_used_add(uint64_t *used, int64_t delta)
{
    if (delta < 0 && (uint64_t) -delta > *used) {
        *used = 0;
    } else {
        *used += (uint64_t) delta;
    }
}


int
wh_quota_count_channel(void *ctx, wh_str_t ws, wh_str_t ch, uint64_t bytes)
{
    wh_quota_ws_t  *w;

    if (!wh_quota_counts(ch)) {
        return 0;
    }

    w = wh_quota_ws(ctx, ws);

    if (w == NULL) {
        return -1;
    }

    w->used[WH_QUOTA_CHANNELS]++;
    w->used[WH_QUOTA_HISTORY_BYTES] += bytes;

    return 0;
}


int
wh_quota_count_client(void *ctx, wh_str_t ws, wh_str_t id, uint64_t bytes)
{
    wh_quota_ws_t  *w;

    (void) id;
    (void) bytes;

    w = wh_quota_ws(ctx, ws);

    if (w == NULL) {
        return -1;
    }

    w->used[WH_QUOTA_CLIENTS]++;

    return 0;
}


void
wh_quota_recount(wh_quota_t *q, wh_quota_kind_e kind)
{
    wh_quota_ws_t   *w;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&q->ws, &it)) != NULL) {
        w = e->value;
        w->used[kind] = 0;
    }
}


void
wh_quota_add(wh_quota_t *q, wh_str_t ws, wh_quota_kind_e kind,
    int64_t delta)
{
    wh_quota_ws_t  *w;

    w = wh_quota_ws(q, ws);

    if (w != NULL) {
        wh_quota_used_add(&w->used[kind], delta);
    }
}


int
wh_quota_freed(void *ctx, wh_str_t ws, wh_str_t ch, uint64_t bytes)
{
    if (wh_quota_counts(ch)) {
        wh_quota_add(ctx, ws, WH_QUOTA_HISTORY_BYTES, -(int64_t) bytes);
    }

    return 0;
}


static uint64_t
wh_quota_used(wh_quota_t *q, wh_quota_ws_t *w, wh_quota_kind_e kind)
{
    if (kind == WH_QUOTA_QUEUED_COMMANDS) {
        return q->count_open ? q->count_open(q->count_ctx, w->name) : 0;
    }

    return w->used[kind];
}


int
wh_quota_take(wh_quota_t *q, wh_str_t ws, wh_quota_kind_e kind)
{
    uint64_t        limit;
    wh_quota_ws_t  *w;

    w = wh_quota_ws(q, ws);

    if (w == NULL) {
        return 0;
    }

    limit = w->limits.limit[kind];

    if (limit != WH_QUOTA_UNLIMITED
        && wh_quota_used(q, w, kind) + w->held[kind] >= limit)
    {
        return -1;
    }

    w->held[kind]++;

    return 0;
}


void
wh_quota_release(wh_quota_t *q, wh_str_t ws, wh_quota_kind_e kind)
{
    wh_quota_ws_t  *w;

    w = wh_map_get(&q->ws, ws.data, ws.len);

    if (w != NULL && w->held[kind] > 0) {
        w->held[kind]--;
    }
}


/* a refusal nobody answers: one line per workspace per interval, with
 * how many there were since the last one */
static void
wh_quota_note(wh_quota_t *q, wh_quota_ws_t *w, const char *who,
    const wh_err_t *err)
{
    int64_t  now;

    w->notes++;
    now = wh_loop_now();

    if (w->note_ms != 0 && now - w->note_ms < WH_QUOTA_NOTE_MS) {
        return;
    }

    wh_log_warn(q->log, "quota: workspace \"%.*s\": %s refused: %s (%"
                PRIu64 " refused since the last such line; at most one a "
                "minute)", (int) w->name.len, w->name.data, who, err->msg,
                w->notes);
    w->note_ms = now;
    w->notes = 0;
}


static void
wh_quota_count_refusal(wh_quota_t *q, wh_quota_ws_t *w,
    wh_quota_kind_e kind, const char *who, const wh_err_t *err)
{
    q->refused[kind]++;

    if (w == NULL) {
        return;
    }

    w->refused[kind]++;

    if (who != NULL) {
        wh_quota_note(q, w, who, err);
    }
}


void
wh_quota_refuse(wh_quota_t *q, wh_str_t ws, wh_quota_kind_e kind,
    const char *who, wh_err_t *err)
{
    wh_quota_ws_t  *w;

    w = wh_quota_ws(q, ws);

    wh_err(err, 429, "the workspace's %s quota (%" PRIu64 ") is reached",
           wh_quota_names[kind],
           w ? w->limits.limit[kind] : wh_quota_defaults.limit[kind]);

    wh_quota_count_refusal(q, w, kind, who, err);
}


int
wh_quota_publish(wh_quota_t *q, wh_str_t ws, wh_str_t ch, const char *who,
    wh_err_t *err)
{
    int64_t         wait_ms;
    uint64_t        rate;
    wh_quota_ws_t  *w;

    if (!wh_quota_counts(ch)) {
        return 0;
    }

    w = wh_quota_ws(q, ws);

    if (w == NULL) {
        return 0;
    }

    rate = w->limits.limit[WH_QUOTA_PUBLISH_RATE];

    if (rate == WH_QUOTA_UNLIMITED) {
        return 0;
    }

    wait_ms = wh_bucket_take(&w->bucket, rate, wh_loop_now());

    if (wait_ms == 0) {
        return 0;
    }

    wh_err(err, 429, "the workspace's publish_rate (%" PRIu64 "/s) is "
           "exceeded", rate);
    err->retry_s = (unsigned) ((wait_ms + 999) / 1000);

    wh_quota_count_refusal(q, w, WH_QUOTA_PUBLISH_RATE, who, err);

    return -1;
}


/* ------------------------------------------------------ history writes */


void
wh_quota_hist_begin(wh_quota_t *q)
{
    wh_quota_ws_t  *w;

    for (w = q->txn_ws; w != NULL; w = w->txn_next) {
        w->txn_channels = 0;
        w->txn_bytes = 0;
    }

    q->txn_ws = NULL;
    q->txn_gen++;
}


/* ws's entry, in the write being run */
static wh_quota_ws_t *
wh_quota_hist_ws(wh_quota_t *q, wh_str_t ws)
{
    wh_quota_ws_t  *w;

    w = wh_quota_ws(q, ws);

    if (w != NULL && w->txn_gen != q->txn_gen) {
        w->txn_gen = q->txn_gen;
        w->txn_channels = 0;
        w->txn_bytes = 0;
        w->txn_next = q->txn_ws;
        q->txn_ws = w;
    }

    return w;
}


int
wh_quota_hist_channel(wh_quota_t *q, wh_str_t ws, wh_str_t ch)
{
    uint64_t        limit;
    wh_quota_ws_t  *w;

    if (!wh_quota_counts(ch) || (w = wh_quota_hist_ws(q, ws)) == NULL) {
        return 1;
    }

    limit = w->limits.limit[WH_QUOTA_CHANNELS];

    return limit == WH_QUOTA_UNLIMITED
           || w->used[WH_QUOTA_CHANNELS] + (uint64_t) w->txn_channels
              < limit;
}


int64_t
wh_quota_hist_room(wh_quota_t *q, wh_str_t ws, wh_str_t ch)
{
    uint64_t        limit;
    wh_quota_ws_t  *w;

    if (!wh_quota_counts(ch) || (w = wh_quota_hist_ws(q, ws)) == NULL) {
        return INT64_MAX;
    }

    limit = w->limits.limit[WH_QUOTA_HISTORY_BYTES];

    if (limit >= (uint64_t) INT64_MAX) {
        return INT64_MAX;
    }

    return (int64_t) limit - (int64_t) w->used[WH_QUOTA_HISTORY_BYTES]
           - w->txn_bytes;
}


void
wh_quota_hist_add(wh_quota_t *q, wh_str_t ws, wh_str_t ch,
    int64_t channels, int64_t bytes)
{
    wh_quota_ws_t  *w;

    if (!wh_quota_counts(ch) || (w = wh_quota_hist_ws(q, ws)) == NULL) {
        return;
    }

    w->txn_channels += channels;
    w->txn_bytes += bytes;
}


void
wh_quota_hist_end(wh_quota_t *q, int committed)
{
    wh_quota_ws_t  *w;

    for (w = q->txn_ws; w != NULL; w = w->txn_next) {
        if (committed) {
            wh_quota_used_add(&w->used[WH_QUOTA_CHANNELS], w->txn_channels);
            wh_quota_used_add(&w->used[WH_QUOTA_HISTORY_BYTES],
                              w->txn_bytes);
        }

        w->txn_channels = 0;
        w->txn_bytes = 0;
    }

    q->txn_ws = NULL;
    q->txn_gen++;
}


/* --------------------------------------------------------------- stats */


static json_t *
wh_quota_limit_json(uint64_t limit)
{
    return limit == WH_QUOTA_UNLIMITED ? json_null()
                                       : json_integer((json_int_t) limit);
}


json_t *
wh_quota_stats(wh_quota_t *q, wh_str_t ws)
{
    int                 k;
    json_t             *obj, *one;
    uint64_t            used;
    wh_quota_ws_t      *w, none;

    w = wh_map_get(&q->ws, ws.data, ws.len);

    if (w == NULL) {
        memset(&none, 0, sizeof(none));
        none.name = ws;
        wh_quota_limits(q->rules, q->nrules, ws, &none.limits);
        w = &none;
    }

    obj = json_object();

    for (k = 0; obj != NULL && k < WH_QUOTA_KINDS; k++) {
        one = json_object();

        if (one == NULL || json_object_set_new(obj, wh_quota_names[k], one)
                           != 0)
        {
            json_decref(obj);
            return NULL;
        }

        if (k != WH_QUOTA_PUBLISH_RATE) {
            used = wh_quota_used(q, w, k);
            json_object_set_new(one, "used", json_integer((json_int_t) used));
        }

        json_object_set_new(one, "limit",
                            wh_quota_limit_json(w->limits.limit[k]));
        json_object_set_new(one, "refused",
                            json_integer((json_int_t) w->refused[k]));
    }

    return obj;
}


void
wh_quota_totals(const wh_quota_t *q, uint64_t *refused)
{
    memcpy(refused, q->refused, sizeof(q->refused));
}
