/*
 * Upstream sources (sources.h): their lifecycle, the backoff, the
 * mapping of upstream messages into channels and the $sources events.
 *
 *   CONNECTING --open--> CONNECTED --closed--> BACKOFF --due--> CONNECTING
 *        \------------closed (failed)-------------^
 *
 * Backoff: the delay before attempt k (k failures since the last
 * stable connection) is drawn uniformly from [min, min(max, min *
 * 2^(k+1))] ("full jitter" above the floor): sources that lost the same
 * upstream at once come back spread out.  A connection that stayed
 * open for WH_SOURCES_STABLE_MS (or reconnect_max if shorter) counts as
 * stable and resets k.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "wh_json_check.h"
#include "wh_channel.h"
#include "wh_json.h"
#include "wh_time.h"
#include "message.h"
#include "sources.h"


#define WH_SOURCES_STABLE_MS  10000

const char *const  wh_source_state_names[WH_SRC_STATES] = {
    "connecting", "connected", "backoff", "stopped"
};

const char *const  wh_source_refusal_names[WH_SRC_REFUSALS] = {
    "non_json", "not_object", "bad_event", "binary", "oversize", "storage",
    "mqtt"
};

static const wh_str_t  wh_sources_channel = { "$sources", 8 };

static void wh_source_open(void *ctx);
static void wh_source_message(void *ctx, const char *text, size_t len);
static void wh_source_binary(void *ctx, size_t len);
static void wh_source_closed(void *ctx, unsigned code,
    const char *reason);

static const wh_wsc_handlers_t  wh_source_handlers = {
    wh_source_open, wh_source_message, wh_source_binary, wh_source_closed
};


/* xorshift64*: jitter only, no secrets */
static uint64_t
wh_sources_rand(wh_sources_t *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;

    return s->rng * 0x2545f4914f6cdd1dULL;
}


static int64_t
wh_source_delay(wh_source_t *src)
{
    int64_t   min = src->def.reconnect_min_ms, max = src->def.reconnect_max_ms;
    int64_t   upper = min;
    unsigned  k;

    for (k = 0; k <= src->attempts && upper < max; k++) {
        upper *= 2;
    }

    upper = upper > max ? max : upper;

    return min + (int64_t) (wh_sources_rand(src->owner)
                            % (uint64_t) (upper - min + 1));
}


/* ------------------------------------------------------------- events */

/* an event on the workspace's $sources channel */
static void
wh_source_event(wh_source_t *src, const char *type, json_t *data)
{
    char      *text;
    wh_err_t   err;
    wh_str_t   ws, t, d;

    if (data == NULL
        || json_object_set_new(data, "id", json_string(src->def.id)) != 0
        || (text = json_dumps(data, JSON_COMPACT)) == NULL)
    {
        json_decref(data);
        wh_log_error(src->owner->log, "source %s/%s: out of memory",
                     src->def.workspace, src->def.id);
        return;
    }

    json_decref(data);
    ws = wh_cstr(src->def.workspace);
    t = wh_cstr(type);
    d = wh_cstr(text);

    if (wh_channels_enqueue(src->owner->channels, WH_PUB_DAEMON, NULL, 0, ws,
                            wh_sources_channel, t, d, &err) != 0)
    {
        wh_log_error(src->owner->log, "source %s/%s: %s event: %s",
                     src->def.workspace, src->def.id, type, err.msg);
    }

    free(text);
}


/* a refused message: counted, and logged the first time of its kind */
static void
wh_source_refuse(wh_source_t *src, wh_source_refusal_e kind,
    const char *detail)
{
    src->n.refused[kind]++;

    if (src->logged & (1u << kind)) {
        return;
    }

    src->logged |= 1u << kind;
    wh_log_warn(src->owner->log, "source %s/%s: message refused (%s%s%s); "
                "further ones are only counted", src->def.workspace,
                src->def.id, wh_source_refusal_names[kind],
                detail ? ": " : "", detail ? detail : "");
}


/* --------------------------------------------------------- lifecycle */

static void
wh_source_down(wh_source_t *src, const char *reason)
{
    int      was = src->state == WH_SRC_CONNECTED;
    int64_t  now = wh_loop_now(), stable;
    json_t  *data;

    src->conn = NULL;
    src->paused = 0;

    /* a held message goes with its connection: the upstream sends
     * again what it did not see acknowledged, if it can */
    if (src->held.len) {
        wh_source_refuse(src, WH_SRC_STORE, "held by the publish rate when "
                         "the connection ended");
        src->held.len = 0;
    }

    stable = src->def.reconnect_max_ms < WH_SOURCES_STABLE_MS
             ? src->def.reconnect_max_ms : WH_SOURCES_STABLE_MS;

    if (was && now - src->connected_at >= stable) {
        src->attempts = 0;
    }

    if (!was) {
        src->n.failures++;
    }

    src->next_retry_ms = wh_source_delay(src);
    src->attempts++;
    src->next_at = now + src->next_retry_ms;
    src->state = WH_SRC_BACKOFF;
    snprintf(src->last_error, sizeof(src->last_error), "%s", reason);

    wh_log(src->owner->log, was || src->attempts == 1 ? WH_LOG_INFO
                                                      : WH_LOG_DEBUG,
           "source %s/%s: %s: %s; next attempt in %" PRId64 " ms",
           src->def.workspace, src->def.id,
           was ? "disconnected" : "cannot connect", reason,
           src->next_retry_ms);

    data = json_pack("{s:s,s:I,s:i,s:b}", "reason", reason,
                     "next_retry_ms", (json_int_t) src->next_retry_ms,
                     "attempts", (int) src->attempts, "was_connected", was);
    wh_source_event(src, "source_disconnected", data);
}


static void
wh_source_connect(wh_source_t *src)
{
    char            why[200];
    wh_err_t        err;
    wh_buf_t        headers = { NULL, 0, 0 };
    wh_wsc_conf_t   conf;

    src->state = WH_SRC_CONNECTING;

    if (wh_source_def_headers(&src->def, &headers, why, sizeof(why)) != 0) {
        wh_buf_free(&headers);
        wh_source_down(src, why);
        return;
    }

    memset(&conf, 0, sizeof(conf));
    conf.url = &src->def.parsed;
    conf.tls = src->tls;
    conf.subprotocol = src->def.subprotocol;
    conf.headers = (const char *) headers.data;
    conf.max_message = src->def.max_message;
    conf.handshake_ms = src->def.handshake_ms;
    conf.ping_ms = src->def.ping_ms;

    src->conn = wh_wsc_open(src->owner->loop, &src->owner->resolver, &conf,
                            &wh_source_handlers, src, &err);

    /* the secrets were copied into the request */
    if (headers.data) {
        memset(headers.data, 0, headers.cap);
    }

    wh_buf_free(&headers);

    if (src->conn == NULL) {
        wh_source_down(src, err.msg);
    }
}


static void
wh_source_open(void *ctx)
{
    wh_source_t  *src = ctx;
    json_t       *data;

    if (src->connected_at) {
        src->n.reconnects++;
    }

    src->state = WH_SRC_CONNECTED;
    src->connected_at = wh_loop_now();
    src->refill_at = src->connected_at;
    src->tokens = src->def.rate;
    src->last_error[0] = '\0';

    wh_log_info(src->owner->log, "source %s/%s: connected to %s",
                src->def.workspace, src->def.id, src->def.parsed.host);

    data = json_pack("{s:i}", "attempts", (int) src->attempts);
    wh_source_event(src, "source_connected", data);
}


static void
wh_source_closed(void *ctx, unsigned code, const char *reason)
{
    wh_source_t  *src = ctx;

    if (code == 1009) {
        wh_source_refuse(src, WH_SRC_OVERSIZE, reason);
    }

    wh_source_down(src, reason);
}


/* ----------------------------------------------------------- messages */

/* the {event} of a message: the event_field member, a plain string of
 * safe characters; len 0 if there is none */
static wh_str_t
wh_source_event_of(wh_source_t *src, const char *text, size_t len)
{
    wh_str_t  v, ev = { "", 0 };

    if (!wh_json_member(text, len, src->def.event_field, &v)
        || v.len < 2 || v.data[0] != '"')
    {
        return ev;
    }

    /* no escapes: a safe value never needs one */
    if (memchr(v.data, '\\', v.len) != NULL
        || !wh_source_event_valid(v.data + 1, v.len - 2))
    {
        return ev;
    }

    ev.data = v.data + 1;
    ev.len = v.len - 2;

    return ev;
}


static void
wh_source_pause(wh_source_t *src)
{
    if (!src->paused && src->conn) {
        src->paused = 1;
        src->n.throttled++;
        wh_wsc_pause(src->conn, 1);
    }
}


/* the rate budget: past it reading stops until the tick refills it */
static void
wh_source_spend(wh_source_t *src)
{
    src->tokens -= 1;

    if (src->tokens <= 0 && !src->paused && src->conn) {
        wh_source_pause(src);

        if (src->n.throttled == 1) {
            wh_log_warn(src->owner->log, "source %s/%s: over %u messages "
                        "per second: reading paused (each pause is "
                        "counted, not logged)", src->def.workspace,
                        src->def.id, src->def.rate);
        }
    }
}


static void
wh_source_mqtt(wh_source_t *src, wh_str_t ev, wh_str_t text)
{
    wh_str_t      topic;
    const char   *why;
    wh_sources_t  *s = src->owner;

    s->topic.len = 0;

    if (wh_tpl_render(&src->def.mqtt, &ev, &s->topic) != 0) {
        wh_source_refuse(src, WH_SRC_MQTT, "out of memory");
        return;
    }

    topic.data = (const char *) s->topic.data;
    topic.len = s->topic.len;

    if (wh_mqtt_publish_text(s->mqtt, topic, text, &why) != 0) {
        wh_source_refuse(src, WH_SRC_MQTT, why);
    }
}


/* 0 published or refused, 1 held back by the workspace's publish
 * rate: to be offered again */
static int
wh_source_publish(wh_source_t *src, const char *text, size_t len)
{
    wh_err_t       err;
    wh_str_t       ev, ch, type, data = { text, len };
    wh_sources_t  *s = src->owner;

    if (!wh_json_check(text, len)) {
        wh_source_refuse(src, WH_SRC_NON_JSON, NULL);
        return 0;
    }

    data = wh_json_trim(text, len);

    if (data.len == 0 || data.data[0] != '{') {
        wh_source_refuse(src, WH_SRC_NOT_OBJECT, NULL);
        return 0;
    }

    ev = wh_source_event_of(src, data.data, data.len);

    if (ev.len == 0 && src->needs_event) {
        wh_source_refuse(src, WH_SRC_BAD_EVENT, src->def.event_field);
        return 0;
    }

    s->ch.len = 0;
    s->type.len = 0;

    if (wh_tpl_render(&src->def.channel, &ev, &s->ch) != 0
        || wh_tpl_render(&src->def.type, &ev, &s->type) != 0)
    {
        wh_source_refuse(src, WH_SRC_STORE, "out of memory");
        return 0;
    }

    ch.data = (const char *) s->ch.data;
    ch.len = s->ch.len;
    type.data = (const char *) s->type.data;
    type.len = s->type.len;

    if (wh_channels_enqueue(s->channels, WH_PUB_INGEST, NULL, 0,
                            wh_cstr(src->def.workspace), ch, type, data,
                            &err) != 0)
    {
        /* a rate passes again in a moment: wait for it rather than
         * lose the message (TCP holds the upstream back meanwhile) */
        if (err.status == 429 && err.retry_s) {
            return 1;
        }

        wh_source_refuse(src, WH_SRC_STORE, err.msg);
        return 0;
    }

    src->n.published++;

    if (src->def.mqtt.text) {
        wh_source_mqtt(src, ev, data);
    }

    return 0;
}


static void
wh_source_message(void *ctx, const char *text, size_t len)
{
    wh_source_t  *src = ctx;

    src->n.messages_in++;
    src->last_message_at = wh_time_ms();
    wh_source_spend(src);

    if (wh_source_publish(src, text, len) == 1) {
        src->held.len = 0;

        if (wh_buf_append(&src->held, text, len) != 0) {
            wh_source_refuse(src, WH_SRC_STORE, "out of memory");
            return;
        }

        wh_source_pause(src);
    }
}


static void
wh_source_binary(void *ctx, size_t len)
{
    wh_source_t  *src = ctx;

    (void) len;

    src->n.messages_in++;
    src->last_message_at = wh_time_ms();
    wh_source_spend(src);
    wh_source_refuse(src, WH_SRC_BINARY, NULL);
}


/* ---------------------------------------------------------------- tick */

static void
wh_source_refill(wh_source_t *src, int64_t now)
{
    src->tokens += (double) (now - src->refill_at) * src->def.rate / 1000.0;
    src->refill_at = now;

    /* a second's worth at most: the burst */
    if (src->tokens > src->def.rate) {
        src->tokens = src->def.rate;
    }

    /* a held message first; it may be held again */
    if (src->held.len
        && wh_source_publish(src, (const char *) src->held.data,
                             src->held.len) == 0)
    {
        src->held.len = 0;
    }

    if (src->paused && src->tokens > 0 && src->held.len == 0) {
        src->paused = 0;
        wh_wsc_pause(src->conn, 0);
    }
}


static void
wh_sources_tick(wh_timer_t *t)
{
    int64_t        now = wh_loop_now();
    wh_source_t   *src;
    wh_sources_t  *s = t->data;

    for (src = s->head; src; src = src->next) {
        if (src->state == WH_SRC_BACKOFF && now >= src->next_at) {
            wh_source_connect(src);
            continue;
        }

        if (src->conn == NULL) {
            continue;
        }

        if (src->state == WH_SRC_CONNECTED) {
            wh_source_refill(src, now);
        }

        /* may end the connection: then src->conn is NULL */
        wh_wsc_tick(src->conn, now);
    }

    t->interval = s->head ? WH_SOURCES_TICK_MS : WH_SOURCES_IDLE_TICK_MS;
}


/* ---------------------------------------------------------- add, remove */

static int
wh_tpl_has_ref(const wh_tpl_t *t)
{
    unsigned  i;

    for (i = 0; i < t->nparts; i++) {
        if (t->parts[i].ref >= 0) {
            return 1;
        }
    }

    return 0;
}


static int
wh_sources_count_ws(const wh_sources_t *s, const char *ws)
{
    int                 n = 0;
    const wh_source_t  *src;

    for (src = s->head; src; src = src->next) {
        n += strcmp(src->def.workspace, ws) == 0;
    }

    return n;
}


wh_source_t *
wh_sources_add(wh_sources_t *s, wh_source_def_t *def, int stored,
    wh_err_t *err)
{
    wh_source_t  *src, **pp;

    if (wh_sources_find(s, wh_cstr(def->workspace), wh_cstr(def->id))) {
        wh_err(err, 409, "source \"%s\" exists", def->id);
        return NULL;
    }

    if (wh_sources_count_ws(s, def->workspace) >= WH_SOURCES_MAX_PER_WS) {
        wh_err(err, 429, "the workspace has %d sources already",
               WH_SOURCES_MAX_PER_WS);
        return NULL;
    }

    src = calloc(1, sizeof(wh_source_t));

    if (src == NULL) {
        wh_err(err, 503, "out of memory");
        return NULL;
    }

    if (def->parsed.tls) {
        if (def->cafile) {
            src->tls = wh_wsc_tls_ctx(def->cafile, err);

        } else {
            if (s->system_tls == NULL) {
                s->system_tls = wh_wsc_tls_ctx(NULL, err);
            }

            src->tls = s->system_tls;
        }

        if (src->tls == NULL) {
            free(src);
            return NULL;
        }
    }

    src->owner = s;
    src->def = *def;
    memset(def, 0, sizeof(wh_source_def_t));
    src->stored = stored;
    src->needs_event = wh_tpl_has_ref(&src->def.channel)
                       || wh_tpl_has_ref(&src->def.type)
                       || wh_tpl_has_ref(&src->def.mqtt);

    /* in the order they came: listings follow it */
    for (pp = &s->head; *pp; pp = &(*pp)->next) {
        /* void */
    }

    *pp = src;
    s->count++;
    wh_source_connect(src);

    /* the first source brings the fast tick back */
    wh_loop_timer_by(&s->tick, WH_SOURCES_TICK_MS);

    return src;
}


static void
wh_sources_counters_add(wh_source_counters_t *to,
    const wh_source_counters_t *n)
{
    int  i;

    to->messages_in += n->messages_in;
    to->published += n->published;
    to->reconnects += n->reconnects;
    to->failures += n->failures;
    to->throttled += n->throttled;

    for (i = 0; i < WH_SRC_REFUSALS; i++) {
        to->refused[i] += n->refused[i];
    }
}


static void
wh_source_free(wh_sources_t *s, wh_source_t *src)
{
    if (src->conn) {
        wh_wsc_close(src->conn, 1001, "going away");
        src->conn = NULL;
    }

    if (src->tls && src->tls != s->system_tls) {
        SSL_CTX_free(src->tls);
    }

    wh_source_def_free(&src->def);
    wh_buf_free(&src->held);
    free(src);
}


/* ----------------------------------------------------------- storage */

typedef struct {
    wh_str_t       ws, id, record;
    int            del;
} wh_source_write_t;


static int
wh_sources_write_txn(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    wh_source_write_t  *w = ctx;

    if (wh_etxn_ops(t)->source_put == NULL) {
        return wh_err(err, 503, "the %s engine keeps no sources",
                      wh_etxn_ops(t)->kind);
    }

    if (w->del) {
        return wh_etxn_ops(t)->source_del(t, w->ws, w->id, err) < 0 ? -1
                                                                    : 0;
    }

    return wh_etxn_ops(t)->source_put(t, w->ws, w->id, w->record, err);
}


/* a rare write (an API call): committed and synced before the answer */
static int
wh_sources_write(wh_sources_t *s, wh_source_write_t *w, wh_err_t *err)
{
    /* a cluster engine answers after the loop turned: this write, made
     * in the call, cannot wait for it (and every node would run what
     * is stored) */
    if (wh_engine_shared(s->engine)) {
        return wh_err(err, 501, "run-time sources are not kept in cluster "
                      "mode: define the source in the wirehubd.conf of "
                      "one node");
    }

    if (wh_engine_write(s->engine, WH_ENGINE_STATE, wh_sources_write_txn, w,
                        err) != 0
        || wh_engine_sync(s->engine, err) != 0)
    {
        return -1;
    }

    return 0;
}


static int
wh_sources_collect(void *ctx, wh_str_t ws, wh_str_t id, wh_str_t record)
{
    json_t        *item;
    json_error_t   je;

    (void) id;

    item = json_loadb(record.data, record.len, 0, &je);

    if (item == NULL || json_object_set_new(item, "_ws",
                                            json_stringn(ws.data, ws.len))
       || json_array_append_new(ctx, item) != 0)
    {
        return 1;
    }

    return 0;
}


static int
wh_sources_load_txn(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    /* the write may run again from scratch: start from nothing */
    json_array_clear(ctx);

    if (wh_etxn_ops(t)->source_each == NULL) {
        return 0;
    }

    return wh_etxn_ops(t)->source_each(t, wh_sources_collect, ctx, err);
}


static void
wh_sources_load(wh_sources_t *s)
{
    char              why[200], name[WH_WORKSPACE_MAX + 1];
    size_t            i;
    json_t           *all, *item;
    const char       *node;
    wh_err_t          err;
    wh_str_t          ws;
    wh_source_def_t   def;

    all = json_array();

    if (all == NULL || wh_engine_write(s->engine, WH_ENGINE_STATE,
                                       wh_sources_load_txn, all, &err) != 0)
    {
        wh_log_error(s->log, "sources: cannot load the stored ones: %s",
                     all ? err.msg : "out of memory");
        json_decref(all);
        return;
    }

    json_array_foreach(all, i, item) {
        /* a cluster's: the ones this node ran (sources_shared.c takes
         * the others over when their node is gone) */
        node = json_string_value(json_object_get(item, "_node"));

        if (wh_engine_shared(s->engine)
            && (node == NULL || strcmp(node, s->engine->node_id) != 0))
        {
            continue;
        }

        /* the record without the workspace the key gave it */
        snprintf(name, sizeof(name), "%s",
                 json_string_value(json_object_get(item, "_ws")));
        ws = wh_cstr(name);
        json_object_del(item, "_ws");
        json_object_del(item, "_node");

        if (wh_source_def_json(&def, ws, item, 0, why, sizeof(why)) != 0
            || wh_sources_add(s, &def, 1, &err) == NULL)
        {
            wh_log_error(s->log, "sources: stored source of workspace "
                         "\"%.*s\" not started: %s", (int) ws.len, ws.data,
                         def.id ? err.msg : why);
            wh_source_def_free(&def);
        }
    }

    json_decref(all);
}


/* ---------------------------------------------------------------- API */

int
wh_sources_init(wh_sources_t *s, wh_source_def_t *defs, unsigned n,
    wh_loop_t *loop, wh_log_t *log, wh_channels_t *channels,
    wh_mqtt_t *mqtt, wh_engine_t *engine, wh_err_t *err)
{
    unsigned  i;

    memset(s, 0, sizeof(wh_sources_t));
    s->loop = loop;
    s->log = log;
    s->channels = channels;
    s->mqtt = mqtt;
    s->engine = engine;

    if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng)
        || s->rng == 0)
    {
        s->rng = (uint64_t) wh_time_ms() | 1;
    }

    if (wh_resolver_init(&s->resolver, loop, err) != 0) {
        return -1;
    }

    s->tick.interval = WH_SOURCES_TICK_MS;
    s->tick.handler = wh_sources_tick;
    s->tick.data = s;

    if (wh_loop_timer(loop, &s->tick, err) != 0) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (wh_sources_add(s, &defs[i], 0, err) == NULL) {
            return -1;
        }
    }

    wh_sources_load(s);

    if (s->count) {
        wh_log_info(log, "sources: %u upstream sources started", s->count);
    }

    return 0;
}


void
wh_sources_stop(wh_sources_t *s)
{
    wh_source_t  *src, *next;

    for (src = s->head; src; src = next) {
        next = src->next;
        wh_source_free(s, src);
    }

    s->head = NULL;
    s->count = 0;

    if (s->system_tls) {
        SSL_CTX_free(s->system_tls);
        s->system_tls = NULL;
    }

    wh_resolver_free(&s->resolver);
    wh_buf_free(&s->ch);
    wh_buf_free(&s->type);
    wh_buf_free(&s->topic);
}


wh_source_t *
wh_sources_find(wh_sources_t *s, wh_str_t ws, wh_str_t id)
{
    wh_source_t  *src;

    for (src = s->head; src; src = src->next) {
        if (strlen(src->def.id) == id.len
            && memcmp(src->def.id, id.data, id.len) == 0
            && strlen(src->def.workspace) == ws.len
            && memcmp(src->def.workspace, ws.data, ws.len) == 0)
        {
            return src;
        }
    }

    return NULL;
}


wh_source_t *
wh_sources_create(wh_sources_t *s, wh_str_t ws, json_t *obj, wh_err_t *err)
{
    char                why[200];
    char               *record;
    json_t             *stored;
    wh_source_t        *src;
    wh_source_def_t     def;
    wh_source_write_t   w;

    if (wh_source_def_json(&def, ws, obj, 0, why, sizeof(why)) != 0) {
        wh_source_def_free(&def);
        wh_err(err, 400, "%s", why);
        return NULL;
    }

    if (wh_sources_find(s, ws, wh_cstr(def.id)) != NULL) {
        wh_err(err, 409, "source \"%s\" exists", def.id);
        wh_source_def_free(&def);
        return NULL;
    }

    stored = wh_source_def_to_json(&def, 1);
    record = stored ? json_dumps(stored, JSON_COMPACT) : NULL;
    json_decref(stored);

    if (record == NULL) {
        wh_source_def_free(&def);
        wh_err(err, 503, "out of memory");
        return NULL;
    }

    memset(&w, 0, sizeof(w));
    w.ws = ws;
    w.id = wh_cstr(def.id);
    w.record = wh_cstr(record);

    if (wh_sources_write(s, &w, err) != 0) {
        memset(record, 0, strlen(record));
        free(record);
        wh_source_def_free(&def);
        return NULL;
    }

    memset(record, 0, strlen(record));
    free(record);

    src = wh_sources_add(s, &def, 1, err);

    if (src == NULL) {
        /* stored but not started (a cafile that does not load, say):
         * not kept either */
        w.del = 1;
        w.id = wh_cstr(def.id);
        (void) wh_sources_write(s, &w, &(wh_err_t) { 0, 0, "" });
        wh_source_def_free(&def);
        return NULL;
    }

    wh_log_info(s->log, "source %s/%s: added (%s)", src->def.workspace,
                src->def.id, src->def.parsed.host);

    return src;
}


int
wh_sources_delete(wh_sources_t *s, wh_source_t *src, wh_err_t *err)
{
    wh_source_write_t   w;

    if (!src->stored) {
        return wh_err(err, 409, "source \"%s\" is defined in the "
                      "configuration file", src->def.id);
    }

    memset(&w, 0, sizeof(w));
    w.ws = wh_cstr(src->def.workspace);
    w.id = wh_cstr(src->def.id);
    w.del = 1;

    if (wh_sources_write(s, &w, err) != 0) {
        return -1;
    }

    wh_sources_remove(s, src);

    return 0;
}


void
wh_sources_remove(wh_sources_t *s, wh_source_t *src)
{
    int             was;
    json_t         *data;
    wh_source_t   **pp;

    was = src->state == WH_SRC_CONNECTED;

    if (was) {
        data = json_pack("{s:s,s:n,s:i,s:b}", "reason", "deleted",
                         "next_retry_ms", "attempts", (int) src->attempts,
                         "was_connected", was);
        wh_source_event(src, "source_disconnected", data);
    }

    for (pp = &s->head; *pp != src; pp = &(*pp)->next) {
        /* void */
    }

    *pp = src->next;
    s->count--;
    wh_sources_counters_add(&s->gone, &src->n);
    wh_log_info(s->log, "source %s/%s: deleted", src->def.workspace,
                src->def.id);
    wh_source_free(s, src);
}


json_t *
wh_source_json(const wh_source_t *src)
{
    int      i, rc = 0;
    char     ts[WH_TIME_ISO_LEN + 1];
    json_t  *obj, *refused;

    obj = wh_source_def_to_json(&src->def, 0);
    refused = json_object();

    if (obj == NULL || refused == NULL) {
        json_decref(obj);
        json_decref(refused);
        return NULL;
    }

    for (i = 0; i < WH_SRC_REFUSALS; i++) {
        rc |= json_object_set_new(refused, wh_source_refusal_names[i],
                                  json_integer((json_int_t)
                                               src->n.refused[i]));
    }

    rc |= json_object_set_new(obj, "refused", refused);
    rc |= json_object_set_new(obj, "origin",
                              json_string(src->stored ? "api" : "config"));
    rc |= json_object_set_new(obj, "state",
                              json_string(wh_source_state_names[src->state]));
    rc |= json_object_set_new(obj, "attempts", json_integer(src->attempts));
    rc |= json_object_set_new(obj, "last_error", src->last_error[0]
                              ? json_string(src->last_error) : json_null());
    rc |= json_object_set_new(obj, "next_retry_ms",
                              src->state == WH_SRC_BACKOFF
                              ? json_integer(src->next_at - wh_loop_now()
                                             > 0 ? src->next_at
                                                   - wh_loop_now() : 0)
                              : json_null());
    rc |= json_object_set_new(obj, "messages_in",
                              json_integer((json_int_t) src->n.messages_in));
    rc |= json_object_set_new(obj, "published",
                              json_integer((json_int_t) src->n.published));
    rc |= json_object_set_new(obj, "reconnects",
                              json_integer((json_int_t) src->n.reconnects));
    rc |= json_object_set_new(obj, "throttled",
                              json_integer((json_int_t) src->n.throttled));

    if (src->last_message_at) {
        wh_time_iso(ts, src->last_message_at);
        rc |= json_object_set_new(obj, "last_message_at", json_string(ts));

    } else {
        rc |= json_object_set_new(obj, "last_message_at", json_null());
    }

    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }

    return obj;
}


json_t *
wh_source_json_remote(const wh_source_def_t *def, const char *node)
{
    json_t       *obj;
    wh_source_t   view;

    memset(&view, 0, sizeof(view));
    view.def = *def;
    view.stored = 1;
    obj = wh_source_json(&view);

    if (obj != NULL
        && (json_object_set_new(obj, "state", json_string("remote")) != 0
            || json_object_set_new(obj, "node", json_string(node)) != 0))
    {
        json_decref(obj);
        return NULL;
    }

    return obj;
}


json_t *
wh_sources_stats(const wh_sources_t *s, wh_str_t ws)
{
    int                 i;
    uint64_t            refused = 0;
    unsigned            n = 0, connected = 0;
    wh_source_counters_t  c;
    const wh_source_t  *src;

    memset(&c, 0, sizeof(c));

    for (src = s->head; src; src = src->next) {
        if (strlen(src->def.workspace) != ws.len
            || memcmp(src->def.workspace, ws.data, ws.len) != 0)
        {
            continue;
        }

        n++;
        connected += src->state == WH_SRC_CONNECTED;
        wh_sources_counters_add(&c, &src->n);
    }

    for (i = 0; i < WH_SRC_REFUSALS; i++) {
        refused += c.refused[i];
    }

    return json_pack("{s:i,s:i,s:I,s:I,s:I,s:I}", "configured", (int) n,
                     "connected", (int) connected,
                     "messages_in", (json_int_t) c.messages_in,
                     "published", (json_int_t) c.published,
                     "refused", (json_int_t) refused,
                     "reconnects", (json_int_t) c.reconnects);
}


void
wh_sources_totals(const wh_sources_t *s, unsigned states[WH_SRC_STATES],
    wh_source_counters_t *n)
{
    const wh_source_t  *src;

    memset(states, 0, WH_SRC_STATES * sizeof(unsigned));
    *n = s->gone;

    for (src = s->head; src; src = src->next) {
        states[src->state]++;
        wh_sources_counters_add(n, &src->n);
    }
}
