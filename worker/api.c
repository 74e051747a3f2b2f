/*
 * The HTTP API routes that need state, answered over the link: the
 * module has already checked the token, the role and the workspace,
 * and passes the path relative to the API root, percent-decoded.
 *
 *   POST /channels/{channel}/messages   {type,data} -> 202 {id,epoch}
 *                                       ?idempotency_key= (the header)
 *   GET  /channels/{channel}/messages   ?since=&limit= (or cursor=),
 *                                       ?last=&before=&order=desc
 *   GET  /channels                      ?cursor=&limit=
 *   GET  /stats
 *   GET  /metrics                       admin, no workspace: metrics.c
 *   /clients..., /commands/...   clients.c and commands.c
 *   /sources...                  sources_api.c
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_channel.h"
#include "wh_json_check.h"
#include "wh_time.h"
#include "message.h"
#include "commands_api.h"
#include "jobs_api.h"
#include "respond.h"
#include "clients_api.h"
#include "sources_api.h"
#include "query.h"
#include "daemon.h"
#include "metrics.h"


#define WH_API_LIMIT_DEFAULT  100
#define WH_API_LIMIT_MAX      1000
/* a RESPONSE must fit a link frame */
#define WH_API_BODY_MAX       (WH_LINK_MAX_FRAME - 1024)


typedef struct {
    wh_daemon_t          *d;
    wh_peer_t            *peer;
    const wh_link_msg_t  *m;
} wh_api_t;


static void
wh_api_respond(wh_api_t *a, uint16_t status, const void *body, size_t len)
{
    wh_respond(a->peer, a->m->req_id, status, body, len);
}

static void
wh_api_error(wh_api_t *a, uint16_t status, const char *code,
    const char *message)
{
    wh_buf_t  b = { 0 };

    if (wh_json_error(&b, code, message) != 0) {
        wh_link_drop(a->peer, "out of memory");
    } else {
        wh_api_respond(a, status, b.data, b.len);
    }

    wh_buf_free(&b);
}


static void
wh_api_json(wh_api_t *a, uint16_t status, json_t *j)
{
    char  *text;

    text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    if (text == NULL) {
        wh_api_error(a, 500, "internal", "cannot build the response");
        return;
    }

    wh_api_respond(a, status, text, strlen(text));
    free(text);
}


static int
wh_api_limit(wh_api_t *a, size_t *limit)
{
    int       rc;
    uint64_t  v;

    rc = wh_query_u64(a->m->query, "limit", &v);

    if (rc < 0 || (rc == 1 && v == 0)) {
        wh_api_error(a, 400, "bad_request", "limit must be 1 to 1000");
        return -1;
    }

    *limit = rc == 0 ? WH_API_LIMIT_DEFAULT
                     : v > WH_API_LIMIT_MAX ? WH_API_LIMIT_MAX : v;

    return 0;
}


/*
 * The type and the data of a publish body read where they lie, without a
 * jansson tree (a third of the CPU wirehubd spends on a publish goes to
 * its commit, and the tree was the next biggest piece): 1 when the body
 * is plain (valid JSON as jansson would say, an object, no member name
 * twice at any depth as wh_json_unique can tell, "data" there, "type"
 * absent or a string without an escape), 0 when jansson must read it and
 * answer as before, 400s included.  fuzz_api holds the two paths alike.
 */
static int
wh_api_scan_publish(wh_str_t body, wh_str_t *type, wh_str_t *data)
{
    wh_str_t  t;

    if (!wh_json_check(body.data, body.len)
        || wh_json_unique(body.data, body.len) != 1
        || !wh_json_member(body.data, body.len, "data", data))
    {
        return 0;
    }

    if (!wh_json_member(body.data, body.len, "type", &t)) {
        type->data = "";
        type->len = 0;
        return 1;
    }

    return wh_json_plain_string(t, type);
}


static void
wh_api_publish(wh_api_t *a, wh_str_t ch)
{
    int            rc;
    char           key[WH_IDEM_KEY_MAX + 1];
    size_t         klen = 0;
    wh_str_t       k;
    char          *dumped = NULL;
    json_t        *body = NULL, *type, *data;
    wh_err_t       err;
    wh_str_t       t, raw;
    json_error_t   je;

    if (a->m->body.len > WH_MESSAGE_MAX) {
        wh_api_error(a, 413, "too_large", "message too large");
        return;
    }

    if (wh_api_scan_publish(a->m->body, &t, &raw)) {
        goto enqueue;
    }

    body = json_loadb(a->m->body.data, a->m->body.len,
                      JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);

    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        wh_api_error(a, 400, "bad_request",
                     "the body must be a JSON object {type, data}");
        return;
    }

    type = json_object_get(body, "type");
    data = json_object_get(body, "data");

    if ((type != NULL && !json_is_string(type)) || data == NULL) {
        json_decref(body);
        wh_api_error(a, 400, "bad_request", "\"data\" is required and "
                     "\"type\" must be a string");
        return;
    }

    t.data = type ? json_string_value(type) : "";
    t.len = type ? json_string_length(type) : 0;

    /* keep the data's own bytes (wh_json_member finds the member where
     * its name is escaped too); re-encode should it not */
    if (!wh_json_member(a->m->body.data, a->m->body.len, "data", &raw)) {
        dumped = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        raw.data = dumped ? dumped : "";
        raw.len = dumped ? strlen(dumped) : 0;
    }

enqueue:

    rc = wh_query_get(a->m->query, "idempotency_key", key, sizeof(key),
                      &klen);
    k.data = key;
    k.len = klen;

    if (rc < 0) {
        wh_err(&err, 400, "Idempotency-Key must be 1 to 128 bytes");
    }

    if (rc < 0
        || (rc > 0
            && wh_channels_enqueue_keyed(&a->d->channels, a->peer,
                                         a->m->req_id, a->m->workspace, ch,
                                         t, raw, k, &err)
               != 0)
        || (rc == 0
            && wh_channels_enqueue(&a->d->channels, WH_PUB_API, a->peer,
                                   a->m->req_id, a->m->workspace, ch, t,
                                   raw, &err) != 0))
    {
        if (err.status == 400 && !wh_channel_valid(ch.data, ch.len)) {
            wh_api_error(a, 400, "bad_channel", err.msg);
        } else {
            wh_respond_err(a->peer, a->m->req_id, &err);
        }
    }

    free(dumped);
    json_decref(body);
}


typedef struct {
    wh_buf_t   body;
    size_t     count;
    uint64_t   first;
    uint64_t   last;
    int        full;
    size_t     off[WH_API_LIMIT_MAX];   /* where each item starts */
} wh_history_ctx_t;


static int
wh_history_item(void *ctx, uint64_t id, int64_t t, const char *json,
    size_t len)
{
    wh_history_ctx_t  *h = ctx;

    (void) t;

    if (h->count && h->body.len + len + 64 > WH_API_BODY_MAX) {
        return 1;
    }

    if (h->count && wh_buf_append(&h->body, ",", 1) != 0) {
        h->full = 1;
        return 1;
    }

    h->off[h->count] = h->body.len;

    if (wh_buf_append(&h->body, json, len) != 0) {
        h->full = 1;
        return 1;
    }

    if (h->count == 0) {
        h->first = id;
    }

    h->count++;
    h->last = id;

    return 0;
}


/* the items, newest first, into out: item i ends before item i + 1's
 * comma, the last one at the end of the body */
static int
wh_history_reverse(wh_history_ctx_t *h, wh_buf_t *out)
{
    size_t  i, end;

    for (i = h->count; i > 0; i--) {
        end = (i == h->count) ? h->body.len : h->off[i] - 1;

        if ((i < h->count && wh_buf_append(out, ",", 1) != 0)
            || wh_buf_append(out, h->body.data + h->off[i - 1],
                             end - h->off[i - 1]) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/*
 * ?since= (or cursor=): oldest first from there, next is the cursor of
 * the following page.  ?last=N (and order=desc, which means the last
 * `limit` when last is not given): the newest, below before= when it is
 * given, next being the before= of the older page.
 */
typedef struct {
    uint64_t  since;
    uint64_t  before;
    size_t    limit;
    int       newest;           /* last=, before= or order=desc */
    int       desc;
} wh_history_query_t;


static int
wh_history_query(wh_api_t *a, wh_history_query_t *q)
{
    int       rc, rs, rl, rb;
    char      order[8];
    size_t    len;
    uint64_t  last = 0;

    memset(q, 0, sizeof(wh_history_query_t));

    rs = wh_query_u64(a->m->query, "since", &q->since);

    if (rs == 0) {
        rs = wh_query_u64(a->m->query, "cursor", &q->since);
    }

    rl = wh_query_u64(a->m->query, "last", &last);
    rb = wh_query_u64(a->m->query, "before", &q->before);
    rc = wh_query_get(a->m->query, "order", order, sizeof(order), &len);

    if (rs < 0) {
        wh_api_error(a, 400, "bad_request", "since must be a message id");
        return -1;
    }

    if (rl < 0 || (rl == 1 && (last == 0 || last > WH_API_LIMIT_MAX))) {
        wh_api_error(a, 400, "bad_request", "last must be 1 to 1000");
        return -1;
    }

    if (rb < 0 || (rb == 1 && q->before == 0)) {
        wh_api_error(a, 400, "bad_request", "before must be a message id");
        return -1;
    }

    if (rc < 0 || (rc == 1 && strcmp(order, "asc") != 0
                   && strcmp(order, "desc") != 0))
    {
        wh_api_error(a, 400, "bad_request", "order is asc or desc");
        return -1;
    }

    q->desc = rc == 1 && strcmp(order, "desc") == 0;
    q->newest = rl == 1 || rb == 1 || q->desc;

    if (q->newest && rs == 1) {
        wh_api_error(a, 400, "bad_request", "since goes with neither "
                     "last, before nor order=desc");
        return -1;
    }

    if (wh_api_limit(a, &q->limit) != 0) {
        return -1;
    }

    if (rl == 1) {
        q->limit = (size_t) last;
    }

    return 0;
}


static void
wh_api_history(wh_api_t *a, wh_str_t ch)
{
    int                 rc;
    char                next[32];
    wh_buf_t            out = { 0 };
    wh_err_t            err;
    wh_hist_range_t     r;
    wh_history_ctx_t   *h;
    wh_history_query_t  q;

    if (wh_history_query(a, &q) != 0) {
        return;
    }

    h = calloc(1, sizeof(wh_history_ctx_t));

    if (h == NULL) {
        wh_api_error(a, 503, "unavailable", "out of memory");
        return;
    }

    if (q.newest) {
        rc = wh_channels_history_last(&a->d->channels, a->m->workspace, ch,
                                      q.before, q.limit, wh_history_item, h,
                                      &r, &err);
    } else {
        rc = wh_channels_history(&a->d->channels, a->m->workspace, ch,
                                 q.since, q.limit, wh_history_item, h, &r,
                                 &err);
    }

    if (rc == WH_ENGINE_AGAIN) {
        /* answered when the frame is dispatched again */
        a->d->api_again = 1;
        wh_buf_free(&h->body);
        free(h);
        return;
    }

    if (rc != 0 || h->full) {
        if (h->full) {
            wh_err(&err, 503, "out of memory");
        }

        wh_log_error(&a->d->log, "history: %s", err.msg);
        wh_api_error(a, (uint16_t) err.status, wh_error_code(err.status),
                     err.msg);
        wh_buf_free(&h->body);
        free(h);
        return;
    }

    if (q.newest && h->count && h->first > r.meta.first_id) {
        snprintf(next, sizeof(next), "\"%" PRIu64 "\"", h->first);
    } else if (!q.newest && r.more && h->count) {
        snprintf(next, sizeof(next), "\"%" PRIu64 "\"", h->last);
    } else {
        strcpy(next, "null");
    }

    if (wh_buf_append(&out, "{\"items\":[", 10) != 0
        || (q.desc ? wh_history_reverse(h, &out)
                   : wh_buf_append(&out, h->body.data, h->body.len)) != 0
        || wh_buf_append(&out, "],\"next\":", 9) != 0
        || wh_buf_append(&out, next, strlen(next)) != 0
        || wh_buf_append(&out, "}", 1) != 0)
    {
        wh_link_drop(a->peer, "out of memory");
    } else {
        wh_api_respond(a, 200, out.data, out.len);
    }

    wh_buf_free(&out);
    wh_buf_free(&h->body);
    free(h);
}


typedef struct {
    wh_daemon_t   *d;
    wh_str_t       ws;
    json_t        *items;
    size_t         limit;
    int            more;
    char           last[WH_CHANNEL_MAX + 1];
} wh_list_ctx_t;


static int
wh_list_item(void *ctx, const char *name, size_t len,
    const wh_chan_meta_t *meta)
{
    json_t         *item;
    wh_str_t        ch = { name, len };
    wh_list_ctx_t  *l = ctx;

    if (json_array_size(l->items) == l->limit) {
        l->more = 1;
        return 1;
    }

    item = json_pack("{s:s%,s:I,s:s,s:I}", "channel", name, len,
                     "last_id", (json_int_t) meta->last_id,
                     "epoch", meta->epoch,
                     "subscribers", (json_int_t)
                     wh_channels_subscribers(&l->d->channels, l->ws, ch));

    if (item == NULL || json_array_append_new(l->items, item) != 0) {
        return 1;
    }

    memcpy(l->last, name, len < WH_CHANNEL_MAX ? len : WH_CHANNEL_MAX);
    l->last[len < WH_CHANNEL_MAX ? len : WH_CHANNEL_MAX] = '\0';

    return 0;
}


static void
wh_api_channels(wh_api_t *a)
{
    int             rc;
    char            cursor[WH_CHANNEL_MAX + 1];
    json_t         *res;
    wh_err_t        err;
    wh_str_t        after = { "", 0 };
    wh_list_ctx_t   l;

    rc = wh_query_get(a->m->query, "cursor", cursor, sizeof(cursor),
                      &after.len);

    if (rc < 0 || (rc == 1 && after.len
                   && !wh_channel_valid(cursor, after.len)))
    {
        wh_api_error(a, 400, "bad_request", "invalid cursor");
        return;
    }

    after.data = cursor;

    memset(&l, 0, sizeof(l));

    if (wh_api_limit(a, &l.limit) != 0) {
        return;
    }

    l.d = a->d;
    l.ws = a->m->workspace;
    l.items = json_array();

    rc = wh_channels_list(&a->d->channels, a->m->workspace, after,
                          wh_list_item, &l, &err);

    if (rc == WH_ENGINE_AGAIN) {
        a->d->api_again = 1;
        json_decref(l.items);
        return;
    }

    if (rc != 0) {
        json_decref(l.items);
        wh_log_error(&a->d->log, "channel list: %s", err.msg);
        wh_api_error(a, (uint16_t) err.status, wh_error_code(err.status),
                     err.msg);
        return;
    }

    res = json_pack("{s:o,s:o}", "items", l.items, "next",
                    l.more ? json_string(l.last) : json_null());
    wh_api_json(a, 200, res);
    json_decref(res);
}


/* the engine, and in cluster mode this node and its link to Redis */
static json_t *
wh_api_engine(wh_daemon_t *d)
{
    json_t             *o;
    wh_err_t            err;
    wh_engine_stats_t   s;

    o = json_pack("{s:s}", "kind", d->engine->ops->kind);

    if (o == NULL || d->engine->ops->stats(d->engine, &s, &err) != 0
        || !s.cluster)
    {
        return o;
    }

    json_object_set_new(o, "node_id", json_string(s.c.node_id));
    json_object_set_new(o, "up", json_boolean(s.c.up));
    json_object_set_new(o, "primary", json_string(s.c.primary));
    json_object_set_new(o, "failovers",
                        json_integer((json_int_t) s.c.failovers));
    json_object_set_new(o, "followed_channels",
                        json_integer((json_int_t) s.c.followed));
    json_object_set_new(o, "delivered",
                        json_integer((json_int_t) s.c.delivered));
    json_object_set_new(o, "gap_messages",
                        json_integer((json_int_t) s.c.gap_messages));
    json_object_set_new(o, "lease",
                        json_pack("{s:b,s:I,s:o}", "held",
                                  s.c.lease_age_ms >= 0
                                  && s.c.lease_age_ms < s.c.lease_ms,
                                  "ms", (json_int_t) s.c.lease_ms,
                                  "renewed_ms_ago", s.c.lease_age_ms >= 0
                                  ? json_integer(s.c.lease_age_ms)
                                  : json_null()));
    json_object_set_new(o, "replicas", s.c.replicas >= 0
                        ? json_integer(s.c.replicas) : json_null());
    json_object_set_new(o, "replication_lag_bytes",
                        s.c.replication_lag >= 0
                        ? json_integer(s.c.replication_lag) : json_null());

    return o;
}


/* what a cluster engine counts for the quotas (ws_usage): 0 none, 1
 * read, or WH_ENGINE_AGAIN */
static int
wh_api_usage(wh_daemon_t *d, wh_str_t ws, uint64_t *usage)
{
    int        rc;
    wh_err_t   err;

    if (d->engine->ops->ws_usage == NULL) {
        return 0;
    }

    rc = d->engine->ops->ws_usage(d->engine, ws, wh_time_ms(), &usage[0],
                                  &usage[1], &err);

    if (rc == -1) {
        wh_log_warn(&d->log, "stats: quota usage: %s", err.msg);
    }

    return rc == 0 ? 1 : rc == WH_ENGINE_AGAIN ? WH_ENGINE_AGAIN : 0;
}


/* the cluster's usage replaces this node's counts */
static void
wh_api_quota_used(json_t *quota, const char *kind, uint64_t used)
{
    json_object_set_new(json_object_get(quota, kind), "used",
                        json_integer((json_int_t) used));
}


int
wh_api_stats(wh_daemon_t *d, wh_str_t ws, json_t *obj, int full)
{
    int              rc, got;
    char             ts[WH_TIME_ISO_LEN + 1];
    json_t          *quota;
    uint64_t         stored, usage[2];
    wh_err_t         err;
    wh_chan_stats_t  cs;

    if (wh_sessions_stats(&d->sessions, ws, obj) != 0) {
        return -1;
    }

    wh_channels_stats(&d->channels, ws, &cs);

    rc = wh_channels_stored(&d->channels, ws, &stored, &err);
    got = full ? wh_api_usage(d, ws, usage) : 0;

    /* the API's answer waits for a cluster engine; a stats_update goes
     * without the figure rather than wait */
    if ((rc == WH_ENGINE_AGAIN || got == WH_ENGINE_AGAIN) && full) {
        return WH_ENGINE_AGAIN;
    }

    /* while a cluster engine is down (a failover) the stats are what an
     * operator looks at: everything local still answers, and the one
     * figure only the store knows is null */
    if (rc == -1 && full) {
        wh_log_warn(&d->log, "stats: %s", err.msg);
        json_object_set_new(obj, "channels", json_null());
    }

    if (rc == 0) {
        json_object_set_new(obj, "channels",
                            json_integer((json_int_t) stored));
    }

    json_object_set_new(obj, "subscribed_channels",
                        json_integer(cs.channels));
    json_object_set_new(obj, "subscriptions",
                        json_integer((json_int_t) cs.subscriptions));
    json_object_set_new(obj, "queued_commands",
                        json_integer((json_int_t)
                                     wh_commands_open(&d->commands, ws)));

    if (!full) {
        return 0;
    }

    wh_time_iso(ts, d->start_ms);
    json_object_set_new(obj, "workspace",
                        json_stringn(ws.data, ws.len));
    json_object_set_new(obj, "links", json_integer(d->link.npeers));
    json_object_set_new(obj, "daemon",
                        json_pack("{s:s,s:s,s:I,s:I}", "instance",
                                  d->instance, "started", ts, "uptime_s",
                                  (json_int_t) ((wh_time_ms() - d->start_ms)
                                                / 1000),
                                  "last_seen_waiting",
                                  (json_int_t) d->clients.seen_writes.count));
    json_object_set_new(obj, "mqtt", wh_mqtt_stats(&d->mqtt));
    quota = wh_quota_stats(&d->quota, ws);

    if (got == 1 && quota != NULL) {
        wh_api_quota_used(quota, "channels", usage[0]);
        wh_api_quota_used(quota, "history_bytes", usage[1]);
    }

    json_object_set_new(obj, "quota", quota);
    json_object_set_new(obj, "engine", wh_api_engine(d));
    json_object_set_new(obj, "loop",
                        json_pack("{s:f}", "longest_turn_ms",
                                  (double) wh_loop_turn_max(&d->loop)
                                  / 1000.0));
    json_object_set_new(obj, "sources", wh_sources_stats(&d->sources, ws));

    return 0;
}


static void
wh_api_get_stats(wh_api_t *a)
{
    int       rc;
    char     *text;
    json_t   *obj;
    wh_str_t  none = { NULL, 0 };

    if (wh_channels_commit(&a->d->channels) == WH_ENGINE_AGAIN) {
        a->d->api_again = 1;
        return;
    }

    obj = json_object();
    rc = obj ? wh_api_stats(a->d, a->m->workspace, obj, 1) : -1;

    if (rc == WH_ENGINE_AGAIN) {
        a->d->api_again = 1;
        json_decref(obj);
        return;
    }

    if (rc != 0) {
        json_decref(obj);
        wh_api_error(a, 503, "unavailable", "stats are unavailable");
        return;
    }

    /* the workers' view (versions, sessions per process) is nginx's */

    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);

    if (text == NULL) {
        wh_api_error(a, 500, "internal", "cannot build the response");
        return;
    }

    wh_respond_adding(a->peer, a->m->req_id, 200, WH_LINK_RESPONSE_WORKERS,
                      none, text, strlen(text));
    free(text);
}


/* the whole daemon as Prometheus text, for the module's wirehub_metrics
 * location; the body is the text itself, not JSON */
static void
wh_api_metrics(wh_api_t *a)
{
    wh_buf_t  b = { 0 };

    /* the figures reflect every publish handled before the scrape */
    wh_channels_commit(&a->d->channels);

    if (wh_metrics_render(a->d, &b) != 0) {
        wh_api_error(a, 503, "unavailable", "out of memory");
    } else {
        wh_api_respond(a, 200, b.data, b.len);
    }

    wh_buf_free(&b);
}


static int
wh_method(const wh_link_msg_t *m, const char *method)
{
    return m->name.len == strlen(method)
           && memcmp(m->name.data, method, m->name.len) == 0;
}


static int
wh_path_is(wh_str_t path, const char *s)
{
    return path.len == strlen(s) && memcmp(path.data, s, path.len) == 0;
}


static int
wh_path_under(wh_str_t path, const char *prefix)
{
    size_t  n = strlen(prefix);

    return path.len > n && memcmp(path.data, prefix, n) == 0;
}


/*
 * POST /broadcast {type, data}: one message to every connected client of
 * the workspace.  It is not a channel message: no id, no history; each
 * nginx worker frames it once for its own sessions of the workspace.
 */
static void
wh_api_broadcast(wh_api_t *a)
{
    int            n;
    char           ts[WH_TIME_ISO_LEN + 1], ok[64];
    char          *dumped = NULL;
    size_t         i;
    json_t        *body, *type, *data;
    wh_buf_t       out = { 0 };
    wh_str_t       raw;
    wh_peer_t     *peer;
    const char    *t;
    json_error_t   je;
    wh_link_msg_t  msg;
    unsigned       links = 0;

    body = json_loadb(a->m->body.data, a->m->body.len,
                      JSON_REJECT_DUPLICATES, &je);
    type = body ? json_object_get(body, "type") : NULL;
    data = body ? json_object_get(body, "data") : NULL;
    t = json_is_string(type) ? json_string_value(type) : "broadcast";

    if (!json_is_object(body) || data == NULL
        || (type != NULL && (!json_is_string(type)
                             || json_string_length(type) == 0
                             || json_string_length(type) > 64)))
    {
        json_decref(body);
        wh_api_error(a, 400, "bad_request", "the body must be a JSON "
                     "object {type, data}");
        return;
    }

    /* the type goes into the JSON unescaped: only [A-Za-z0-9_.-] */
    for (i = 0; t[i] != '\0'; i++) {
        if (!(isalnum((unsigned char) t[i]) || t[i] == '_' || t[i] == '-'
              || t[i] == '.'))
        {
            json_decref(body);
            wh_api_error(a, 400, "bad_request", "\"type\" is "
                         "[A-Za-z0-9_.-]");
            return;
        }
    }

    if (!wh_json_member(a->m->body.data, a->m->body.len, "data", &raw)) {
        dumped = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
        raw.data = dumped ? dumped : "null";
        raw.len = strlen(raw.data);
    }

    wh_time_iso(ts, wh_time_ms());

    if (wh_buf_append(&out, "{\"type\":\"", 9) != 0
        || wh_buf_append(&out, t, strlen(t)) != 0
        || wh_buf_append(&out, "\",\"data\":", 9) != 0
        || wh_buf_append(&out, raw.data, raw.len) != 0
        || wh_buf_append(&out, ",\"timestamp\":\"", 14) != 0
        || wh_buf_append(&out, ts, strlen(ts)) != 0
        || wh_buf_append(&out, "\"}", 2) != 0)
    {
        wh_buf_free(&out);
        free(dumped);
        json_decref(body);
        wh_api_error(a, 503, "unavailable", "out of memory");
        return;
    }

    memset(&msg, 0, sizeof(msg));
    msg.type = WH_LINK_BROADCAST;
    msg.workspace = a->m->workspace;
    msg.body.data = (const char *) out.data;
    msg.body.len = out.len;

    for (peer = a->d->link.peers; peer; peer = peer->next) {
        if (peer->hello && !peer->closing) {
            wh_link_send(peer, &msg);
            links++;
        }
    }

    wh_buf_free(&out);
    free(dumped);
    json_decref(body);

    /* the workers hold the answer until they wrote the message out */
    n = snprintf(ok, sizeof(ok), "{\"accepted\":true,\"workers\":%u}",
                 links);
    wh_respond_adding(a->peer, a->m->req_id, 202, WH_LINK_RESPONSE_FANOUT,
                      wh_cstr(""), ok, (size_t) n);
}


void
wh_api_request(wh_daemon_t *d, wh_peer_t *peer, const wh_link_msg_t *m)
{
    wh_api_t    a = { d, peer, m };
    wh_str_t    path = m->path, ch;
    static const char  prefix[] = "/channels/", suffix[] = "/messages";

    /* not a workspace's: checked before the workspace is */
    if (m->flag == WH_LINK_ROLE_ADMIN && m->workspace.len == 0
        && wh_path_is(path, "/metrics") && wh_method(m, "GET"))
    {
        wh_api_metrics(&a);
        return;
    }

    if (m->flag != WH_LINK_ROLE_SERVICE && m->flag != WH_LINK_ROLE_ADMIN) {
        wh_api_error(&a, 403, "forbidden", "the API needs a service or "
                     "admin token");
        return;
    }

    if (!wh_workspace_valid(m->workspace.data, m->workspace.len)) {
        wh_api_error(&a, 400, "bad_request", "invalid workspace");
        return;
    }

    if (wh_path_is(path, "/channels") && wh_method(m, "GET")) {
        wh_api_channels(&a);
        return;
    }

    if (wh_path_is(path, "/stats") && wh_method(m, "GET")) {
        wh_api_get_stats(&a);
        return;
    }

    if (wh_path_is(path, "/broadcast") && wh_method(m, "POST")) {
        wh_api_broadcast(&a);
        return;
    }

    if (wh_jobs_api_path(path)) {
        wh_jobs_api(&d->jobs, peer, m, path);
        return;
    }

    if (wh_commands_api_path(path)) {
        wh_commands_api(&d->commands, peer, m, path);
        return;
    }

    if (wh_sources_api_path(path)) {
        wh_sources_api(&d->sources, peer, m, path);
        return;
    }

    if (wh_path_is(path, "/clients") || wh_path_under(path, "/clients/")) {
        wh_clients_api(&d->clients, peer, m, path);
        return;
    }

    if (path.len > sizeof(prefix) - 1 + sizeof(suffix) - 1
        && memcmp(path.data, prefix, sizeof(prefix) - 1) == 0
        && memcmp(path.data + path.len - (sizeof(suffix) - 1), suffix,
                  sizeof(suffix) - 1) == 0)
    {
        ch.data = path.data + sizeof(prefix) - 1;
        ch.len = path.len - (sizeof(prefix) - 1) - (sizeof(suffix) - 1);

        if (!wh_channel_valid(ch.data, ch.len)) {
            wh_api_error(&a, 400, "bad_channel", "invalid channel name");
            return;
        }

        if (wh_method(m, "POST")) {
            wh_api_publish(&a, ch);
            return;
        }

        if (wh_method(m, "GET")) {
            wh_api_history(&a, ch);
            return;
        }
    }

    wh_api_error(&a, 404, "not_found", "no such resource");
}
