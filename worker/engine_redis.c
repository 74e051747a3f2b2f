/*
 * The Redis engine's table (engine.h), its connection's events and its
 * upkeep.  The history space is engine_redis_channels.c; the state
 * space (clients, revocations, commands, jobs, sources) is the records
 * of state.h in kv_redis.c's transactions; what a node changes in it,
 * it tells the others on the "wh:state" pub/sub channel.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_redis_internal.h"
#include "kv_redis.h"
#include "state.h"


#define WH_RTICK_MS        50
/* before the daemon serves (its loads) and after (its drain), a write
 * waits this long at most for Redis */
#define WH_RWAIT_MS        30000
#define WH_RSTATE_CHANNEL  "wh:state"


typedef struct {
    wh_engine_redis_t   r;
    wh_kvr_t           *kv;
    int                 waiting;    /* a write waits on the loop */
    int                 was_up;     /* Redis was reached once */
} wh_engine_rs_t;


typedef struct {
    wh_engine_t        *e;
    wh_engine_txn_pt    fn;
    void               *ctx;
} wh_rstate_run_t;


/* a state write's txn: the kv txn as the engine txn's impl (state.h) */
static int
wh_reng_state_txn(wh_kv_txn_t *kt, void *ctx, wh_err_t *err)
{
    wh_etxn_t         t;
    wh_rstate_run_t  *run = ctx;

    t.engine = run->e;
    t.space = WH_ENGINE_STATE;
    t.impl = kt;
    t.unchecked = 0;

    return run->fn(&t, run->ctx, err);
}


static int
wh_reng_write_once(wh_engine_rs_t *rs, wh_engine_space_e space,
    wh_engine_txn_pt fn, void *ctx, wh_err_t *err)
{
    wh_rstate_run_t  run;

    if (space == WH_ENGINE_HISTORY) {
        return wh_rch_write(&rs->r, fn, ctx, err);
    }

    run.e = &rs->r.base;
    run.fn = fn;
    run.ctx = ctx;

    return wh_kvr_write(rs->kv, wh_reng_state_txn, &run, err);
}


/*
 * Outside the daemon's loop (its loads at start, its drain at exit) a
 * write waits for Redis, turning the loop itself: for a primary not
 * reached yet, for its reads, for its commit.
 */
static int
wh_reng_write(wh_engine_t *e, wh_engine_space_e space,
    wh_engine_txn_pt fn, void *ctx, wh_err_t *err)
{
    int              rc;
    int64_t          deadline;
    wh_engine_rs_t  *rs = (wh_engine_rs_t *) e;

    rc = wh_reng_write_once(rs, space, fn, ctx, err);

    if (e->serving || rs->waiting) {
        return rc;
    }

    deadline = wh_loop_now() + WH_RWAIT_MS;
    rs->waiting = 1;

    while ((rc == WH_ENGINE_AGAIN
            || (rc == -1 && !wh_redis_up(rs->r.redis) && !rs->was_up))
           && wh_loop_now() < deadline)
    {
        if (wh_loop_once(rs->r.loop, 50, err) != 0) {
            rc = -1;
            break;
        }

        rc = wh_reng_write_once(rs, space, fn, ctx, err);
    }

    rs->waiting = 0;

    if (rc == WH_ENGINE_AGAIN) {
        rc = wh_err(err, 503, "redis did not answer within %d ms",
                    WH_RWAIT_MS);
    }

    return rc;
}


/* the state is in Redis with appendfsync always, and a commit is
 * answered once replicas_ack replicas have it: synced already */
static int
wh_reng_sync(wh_engine_t *e, wh_err_t *err)
{
    (void) e;
    (void) err;

    return 0;
}


static void
wh_reng_close(wh_engine_t *e)
{
    wh_engine_rs_t  *rs = (wh_engine_rs_t *) e;

    /* the commands failed by the close below tell nobody: the daemon
     * has let go of what was waiting for them */
    e->handler = NULL;
    wh_loop_timer_del(rs->r.loop, &rs->r.timer);

    if (rs->r.redis) {
        wh_redis_close(rs->r.redis);
    }

    wh_kvr_close(rs->kv);
    wh_rch_free(&rs->r);
    wh_rpres_free(&rs->r);
    free(rs->r.node_id);
    free(rs);
}


/* history is bounded by length (and by key expiry for the ttl) */
static int
wh_reng_hist_usage(wh_engine_t *e, wh_usage_pt cb, void *ctx,
    wh_err_t *err)
{
    (void) e;
    (void) cb;
    (void) ctx;
    (void) err;

    return 0;
}


static int
wh_reng_hist_expire(wh_engine_t *e, int64_t now, wh_usage_pt freed,
    void *ctx, size_t *removed, wh_err_t *err)
{
    (void) e;
    (void) now;
    (void) freed;
    (void) ctx;
    (void) err;

    *removed = 0;

    return 0;
}


/* Redis syncs itself (appendfsync) and has no reader slots */
static int
wh_reng_nothing(wh_engine_t *e, wh_err_t *err)
{
    (void) e;
    (void) err;

    return 0;
}


static int
wh_reng_check_readers(wh_engine_t *e, int *dead, wh_err_t *err)
{
    (void) e;
    (void) err;

    *dead = 0;

    return 0;
}


static size_t
wh_reng_size(wh_engine_t *e)
{
    (void) e;

    return 0;
}


/* the cluster's figures (what Redis stores, its own INFO tells) */
static int
wh_reng_stats(wh_engine_t *e, wh_engine_stats_t *out, wh_err_t *err)
{
    wh_kvr_stats_t     ks;
    wh_redis_stats_t   rst;
    wh_engine_rs_t    *rs = (wh_engine_rs_t *) e;

    (void) err;

    memset(out, 0, sizeof(wh_engine_stats_t));
    wh_redis_stats(rs->r.redis, &rst);
    out->cluster = 1;
    out->c.up = rst.state == WH_REDIS_UP;
    memcpy(out->c.primary, rst.primary, sizeof(out->c.primary));
    out->c.primary[sizeof(out->c.primary) - 1] = '\0';
    snprintf(out->c.node_id, sizeof(out->c.node_id), "%s", rs->r.node_id);
    out->c.failovers = rst.failovers;
    out->c.reconnects = rst.reconnects;
    out->c.followed = rs->r.follows.count;
    out->c.delivered = rs->r.delivered;
    out->c.gap_messages = rs->r.gaps;
    wh_kvr_stats(rs->kv, &ks);
    out->c.state_commits = ks.commits;
    out->c.state_conflicts = ks.conflicts;
    out->c.state_reads = ks.fetches;
    out->c.lease_age_ms = rs->r.lease_ms ? wh_loop_now() - rs->r.lease_ms
                                         : -1;
    out->c.lease_ms = rs->r.conf.node_lease_ms;
    out->c.replicas = rs->r.replicas;
    out->c.replication_lag = rs->r.repl_lag;

    return 0;
}


static uint64_t
wh_reng_presence(wh_engine_t *e, wh_str_t ws, uint64_t here)
{
    return wh_rpres_report((wh_engine_redis_t *) e, ws, here);
}


/*
 * Notes between nodes on "wh:state": node "\0" kind "\0" ws "\0"
 * client "\0" arg.  Fire and forget: one lost while Redis is out of
 * reach is made up for by the RESYNC every node hears when it is back.
 */

static void
wh_rnote_sent(void *data, redisReply *reply, const char *why)
{
    (void) data;
    (void) reply;
    (void) why;
}


static void
wh_reng_state_notify(wh_engine_t *e, const wh_engine_note_t *n)
{
    char             msg[64 + 1 + 2 + WH_WORKSPACE_MAX + 1
                         + WH_CMD_CLIENT_MAX + 1 + 24];
    size_t           len, lens[3];
    const char      *argv[3];
    wh_engine_rs_t  *rs = (wh_engine_rs_t *) e;

    len = (size_t) snprintf(msg, sizeof(msg), "%s%c%c%c%.*s%c%.*s%c%"
                            PRIu64, rs->r.node_id, 0, (char) n->kind, 0,
                            (int) n->ws.len, n->ws.data, 0,
                            (int) n->client_id.len, n->client_id.data, 0,
                            n->arg);

    if (len >= sizeof(msg)) {
        return;
    }

    argv[0] = "PUBLISH";
    argv[1] = WH_RSTATE_CHANNEL;
    argv[2] = msg;
    lens[0] = 7;
    lens[1] = sizeof(WH_RSTATE_CHANNEL) - 1;
    lens[2] = len;

    /* down: the others resync when it is back */
    (void) wh_redis_command(rs->r.redis, wh_rnote_sent, NULL, 3, argv,
                            lens);
}


static void
wh_rnote_hand(wh_engine_rs_t *rs, const wh_engine_note_t *n)
{
    wh_engine_t  *e = &rs->r.base;

    if (e->handler && e->handler->state) {
        e->handler->state(e->handler_ctx, n);
    }
}


static void
wh_rnote_received(wh_engine_rs_t *rs, wh_str_t payload)
{
    size_t             i, n = 0;
    wh_str_t           f[5];
    const char        *p = payload.data, *end = payload.data + payload.len;
    wh_engine_note_t   note;

    for (i = 0; i < 5; i++) {
        f[i].data = p;
        p = memchr(p, '\0', (size_t) (end - p));
        f[i].len = (p ? p : end) - f[i].data;
        n++;

        if (p == NULL) {
            break;
        }

        p++;
    }

    if (n != 5 || f[1].len != 1) {
        wh_log_warn(rs->r.base.log, "engine redis: a bad note on %s",
                    WH_RSTATE_CHANNEL);
        return;
    }

    /* this node's own: it acted on it already */
    if (f[0].len == strlen(rs->r.node_id)
        && memcmp(f[0].data, rs->r.node_id, f[0].len) == 0)
    {
        return;
    }

    note.kind = (wh_engine_note_e) f[1].data[0];
    note.ws = f[2];
    note.client_id = f[3];
    note.arg = strtoull(f[4].data, NULL, 10);
    wh_rnote_hand(rs, &note);
}


static const wh_engine_ops_t  wh_redis_ops = {
    .kind = "redis",
    .write = wh_reng_write,
    .sync = wh_reng_sync,
    .close = wh_reng_close,
    .chan_get = wh_rch_chan_get,
    .chan_append = wh_rch_chan_append,
    .chan_ensure = wh_rch_chan_ensure,
    .chan_meta = wh_rch_chan_meta,
    .chan_list = wh_rch_chan_list,
    .hist_read = wh_rch_hist_read,
    .hist_usage = wh_reng_hist_usage,
    .hist_expire = wh_reng_hist_expire,
    .sync_background = wh_reng_nothing,
    .check_readers = wh_reng_check_readers,
    .chan_follow = wh_rch_chan_follow,
    .presence = wh_reng_presence,
    .size = wh_reng_size,
    .stats = wh_reng_stats,
    WH_STATE_OPS,
    .state_notify = wh_reng_state_notify,
    .rate = wh_rrate,
    .nodes_gone = wh_rpres_nodes_gone,
    .ws_usage = wh_rch_ws_usage
};


/* the connection's events */

static void
wh_reng_on_up(void *ctx)
{
    wh_engine_rs_t    *rs = ctx;
    wh_engine_note_t   note;

    wh_log_info(rs->r.base.log, "engine redis: node \"%s\" reached the "
                "primary", rs->r.node_id);
    wh_rch_up(&rs->r);

    if (rs->was_up) {
        memset(&note, 0, sizeof(note));
        note.kind = WH_NOTE_RESYNC;
        wh_rnote_hand(rs, &note);
    }

    rs->was_up = 1;
}


static void
wh_reng_on_down(void *ctx, const char *why)
{
    wh_engine_rs_t  *rs = ctx;

    wh_log_warn(rs->r.base.log, "engine redis: the primary is lost: %s",
                why);
    wh_rch_down(&rs->r);
}


static void
wh_reng_on_message(void *ctx, wh_str_t channel, wh_str_t payload)
{
    wh_engine_rs_t  *rs = ctx;

    if (channel.len == sizeof(WH_RSTATE_CHANNEL) - 1
        && memcmp(channel.data, WH_RSTATE_CHANNEL, channel.len) == 0)
    {
        wh_rnote_received(rs, payload);
        return;
    }

    wh_rch_message(&rs->r, channel, payload);
}


static void
wh_reng_on_subscribed(void *ctx, wh_str_t channel)
{
    wh_engine_rs_t  *rs = ctx;

    wh_rch_subscribed(&rs->r, channel);
}


static const wh_redis_handler_t  wh_reng_events = {
    wh_reng_on_up,
    wh_reng_on_down,
    wh_reng_on_message,
    wh_reng_on_subscribed
};


/*
 * Replication as the primary sees it, for stats: INFO replication's
 * master_repl_offset less the offset of the slowest online replica.
 */

static void
wh_reng_info_reply(void *data, redisReply *r, const char *why)
{
    char               *p, *off;
    int64_t             master = -1, slowest = -1, n = 0, o;
    wh_engine_redis_t  *re = data;

    (void) why;

    if (r == NULL || r->type != REDIS_REPLY_STRING
        || (p = strstr(r->str, "master_repl_offset:")) == NULL)
    {
        re->replicas = -1;
        re->repl_lag = -1;
        return;
    }

    master = strtoll(p + sizeof("master_repl_offset:") - 1, NULL, 10);

    /* slaveN:ip=...,port=...,state=online,offset=N,lag=N */
    for (p = strstr(r->str, "\nslave"); p != NULL;
         p = strstr(p + 1, "\nslave"))
    {
        off = strstr(p, ",offset=");

        if (strncmp(strchr(p, ':') ? strchr(p, ':') : p, ":ip=", 4) != 0
            || off == NULL || strstr(p, "state=online") == NULL
            || (strchr(p + 1, '\n') && off > strchr(p + 1, '\n')))
        {
            continue;
        }

        o = strtoll(off + sizeof(",offset=") - 1, NULL, 10);
        slowest = n == 0 || o < slowest ? o : slowest;
        n++;
    }

    re->replicas = n;
    re->repl_lag = n && master >= slowest ? master - slowest : 0;
}


static void
wh_reng_info(wh_engine_redis_t *re, int64_t now)
{
    const char  *argv[2] = { "INFO", "replication" };

    if (now - re->info_ms < 1000 || !wh_redis_up(re->redis)) {
        return;
    }

    re->info_ms = now;
    (void) wh_redis_command(re->redis, wh_reng_info_reply, re, 2, argv,
                            NULL);
}


static void
wh_reng_tick(wh_timer_t *t)
{
    int64_t  now = wh_loop_now();

    wh_rch_tick(t->data, now);
    wh_rpres_tick(t->data, now);
    wh_reng_info(t->data, now);
}


/* kv_redis's: a state write may go on */
static void
wh_reng_kv_wake(void *ctx)
{
    wh_engine_rs_t  *rs = ctx;

    /* a write waiting on the loop runs again by itself */
    if (!rs->waiting && rs->r.base.handler && rs->r.base.handler->wake) {
        rs->r.base.handler->wake(rs->r.base.handler_ctx);
    }
}


int
wh_engine_redis_open(wh_engine_t **out, wh_loop_t *loop,
    const wh_engine_redis_conf_t *conf, wh_log_t *log, wh_err_t *err)
{
    wh_str_t         channel = { WH_RSTATE_CHANNEL,
                                 sizeof(WH_RSTATE_CHANNEL) - 1 };
    wh_kvr_conf_t    kc;
    wh_engine_rs_t  *rs;

    rs = calloc(1, sizeof(wh_engine_rs_t));

    if (rs == NULL) {
        return wh_err(err, 500, "out of memory");
    }

    rs->r.base.ops = &wh_redis_ops;
    rs->r.base.log = log;
    rs->r.conf = *conf;
    rs->r.loop = loop;
    rs->r.node_id = strdup(conf->node_id ? conf->node_id : "");
    rs->r.replicas = -1;
    rs->r.repl_lag = -1;

    if (rs->r.node_id == NULL) {
        free(rs);
        return wh_err(err, 500, "out of memory");
    }

    rs->r.base.node_id = rs->r.node_id;

    rs->r.timer.interval = WH_RTICK_MS;
    rs->r.timer.handler = wh_reng_tick;
    rs->r.timer.data = &rs->r;

    memset(&kc, 0, sizeof(kc));
    kc.replicas_ack = conf->replicas_ack;
    kc.ack_timeout_ms = conf->ack_timeout_ms;
    kc.wake = wh_reng_kv_wake;
    kc.ctx = rs;

    if (wh_loop_timer(loop, &rs->r.timer, err) != 0
        || wh_redis_open(&rs->r.redis, loop, &conf->redis, &wh_reng_events,
                         rs, log, err) != 0
        || wh_kvr_open(&rs->kv, rs->r.redis, &kc, log, err) != 0
        || wh_redis_subscribe(rs->r.redis, channel) != 0)
    {
        wh_reng_close(&rs->r.base);
        return -1;
    }

    *out = &rs->r.base;

    return 0;
}
