/*
 * The Redis engine's table (engine.h), its connection's events and its
 * upkeep.  The history space is engine_redis_channels.c.  The state
 * space (clients, revocations, commands) is, for now, an LMDB engine
 * of the node's own under its storage directory: channels are shared
 * by the cluster, commands and clients are still each node's (README
 * "Cluster mode" says what that means for a deployment).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_lmdb.h"
#include "engine_redis_internal.h"


#define WH_RTICK_MS  50


typedef struct {
    wh_engine_redis_t   r;
    wh_engine_t        *state;      /* the LMDB engine of the state */
} wh_engine_rl_t;


static int
wh_reng_write(wh_engine_t *e, wh_engine_space_e space,
    wh_engine_txn_pt fn, void *ctx, wh_err_t *err)
{
    wh_engine_rl_t  *rl = (wh_engine_rl_t *) e;

    if (space == WH_ENGINE_STATE) {
        return wh_engine_write(rl->state, space, fn, ctx, err);
    }

    return wh_rch_write(&rl->r, fn, ctx, err);
}


static int
wh_reng_sync(wh_engine_t *e, wh_err_t *err)
{
    return wh_engine_sync(((wh_engine_rl_t *) e)->state, err);
}


static void
wh_reng_close(wh_engine_t *e)
{
    wh_engine_rl_t  *rl = (wh_engine_rl_t *) e;

    /* the commands failed by the close below tell nobody: the daemon
     * has let go of what was waiting for them */
    e->handler = NULL;
    wh_loop_timer_del(rl->r.loop, &rl->r.timer);

    if (rl->r.redis) {
        wh_redis_close(rl->r.redis);
    }

    wh_rch_free(&rl->r);
    wh_rpres_free(&rl->r);
    free(rl->r.node_id);

    if (rl->state) {
        wh_engine_close(rl->state);
    }

    free(rl);
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


static int
wh_reng_sync_background(wh_engine_t *e, wh_err_t *err)
{
    wh_engine_rl_t  *rl = (wh_engine_rl_t *) e;

    return rl->state->ops->sync_background(rl->state, err);
}


static int
wh_reng_check_readers(wh_engine_t *e, int *dead, wh_err_t *err)
{
    wh_engine_rl_t  *rl = (wh_engine_rl_t *) e;

    return rl->state->ops->check_readers(rl->state, dead, err);
}


static size_t
wh_reng_size(wh_engine_t *e)
{
    wh_engine_rl_t  *rl = (wh_engine_rl_t *) e;

    return rl->state->ops->size(rl->state);
}


/* the state space's figures, and the cluster's (history is Redis's:
 * its own INFO tells its memory) */
static int
wh_reng_stats(wh_engine_t *e, wh_engine_stats_t *out, wh_err_t *err)
{
    wh_redis_stats_t   rs;
    wh_engine_rl_t    *rl = (wh_engine_rl_t *) e;

    if (rl->state->ops->stats(rl->state, out, err) != 0) {
        return -1;
    }

    wh_redis_stats(rl->r.redis, &rs);
    out->cluster = 1;
    out->c.up = rs.state == WH_REDIS_UP;
    memcpy(out->c.primary, rs.primary, sizeof(out->c.primary));
    out->c.primary[sizeof(out->c.primary) - 1] = '\0';
    snprintf(out->c.node_id, sizeof(out->c.node_id), "%s", rl->r.node_id);
    out->c.failovers = rs.failovers;
    out->c.reconnects = rs.reconnects;
    out->c.followed = rl->r.follows.count;
    out->c.delivered = rl->r.delivered;
    out->c.gap_messages = rl->r.gaps;

    return 0;
}


static uint64_t
wh_reng_presence(wh_engine_t *e, wh_str_t ws, uint64_t here)
{
    return wh_rpres_report((wh_engine_redis_t *) e, ws, here);
}


/* the state space is the LMDB engine's: its txns carry its table, so
 * these are never reached through a txn of this engine */
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
    .sync_background = wh_reng_sync_background,
    .check_readers = wh_reng_check_readers,
    .chan_follow = wh_rch_chan_follow,
    .presence = wh_reng_presence,
    .size = wh_reng_size,
    .stats = wh_reng_stats
};


/* the connection's events */

static void
wh_reng_on_up(void *ctx)
{
    wh_engine_redis_t  *re = ctx;

    wh_log_info(re->base.log, "engine redis: node \"%s\" reached the "
                "primary", re->node_id);
    wh_rch_up(re);
}


static void
wh_reng_on_down(void *ctx, const char *why)
{
    wh_engine_redis_t  *re = ctx;

    wh_log_warn(re->base.log, "engine redis: the primary is lost: %s",
                why);
    wh_rch_down(re);
}


static void
wh_reng_on_message(void *ctx, wh_str_t channel, wh_str_t payload)
{
    wh_rch_message(ctx, channel, payload);
}


static void
wh_reng_on_subscribed(void *ctx, wh_str_t channel)
{
    wh_rch_subscribed(ctx, channel);
}


static const wh_redis_handler_t  wh_reng_events = {
    wh_reng_on_up,
    wh_reng_on_down,
    wh_reng_on_message,
    wh_reng_on_subscribed
};


static void
wh_reng_tick(wh_timer_t *t)
{
    int64_t  now = wh_loop_now();

    wh_rch_tick(t->data, now);
    wh_rpres_tick(t->data, now);
}



int
wh_engine_redis_open(wh_engine_t **out, wh_loop_t *loop,
    const wh_engine_redis_conf_t *conf, const char *storage,
    size_t map_size, size_t max_map_size, wh_log_t *log, wh_err_t *err)
{
    wh_engine_rl_t  *rl;

    rl = calloc(1, sizeof(wh_engine_rl_t));

    if (rl == NULL) {
        return wh_err(err, 500, "out of memory");
    }

    rl->r.base.ops = &wh_redis_ops;
    rl->r.base.log = log;
    rl->r.conf = *conf;
    rl->r.loop = loop;
    rl->r.node_id = strdup(conf->node_id ? conf->node_id : "");

    if (rl->r.node_id == NULL) {
        free(rl);
        return wh_err(err, 500, "out of memory");
    }

    if (wh_engine_lmdb_open(&rl->state, storage, map_size, max_map_size,
                            conf->hist_len, conf->hist_ttl_ms, log, err)
        != 0)
    {
        free(rl->r.node_id);
        free(rl);
        return -1;
    }

    rl->r.timer.interval = WH_RTICK_MS;
    rl->r.timer.handler = wh_reng_tick;
    rl->r.timer.data = &rl->r;

    if (wh_loop_timer(loop, &rl->r.timer, err) != 0
        || wh_redis_open(&rl->r.redis, loop, &conf->redis, &wh_reng_events,
                         &rl->r, log, err) != 0)
    {
        wh_reng_close(&rl->r.base);
        return -1;
    }

    *out = &rl->r.base;

    return 0;
}
