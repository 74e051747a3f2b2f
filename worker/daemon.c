/*
 * The daemon: frame dispatch, the end-of-turn pipeline (detach dropped
 * peers, commit the turn's publishes, flush output, free), periodic
 * jobs and signals.
 */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "wh_time.h"
#include "commands_api.h"
#include "daemon.h"
#include "engine_lmdb.h"
#include "engine_redis.h"
#include "listenfd.h"
#include "sources_shared.h"


/* ops in one state write of a cluster engine: each node runs one write
 * at a time, so its ops a second are at most this many per round trip
 * of a write (reads, commit, WAIT); with refreshes' reads unchecked,
 * 128 were refused no more often than 32 (commands_cluster: 0%) */
#define WH_DAEMON_CLUSTER_BATCH  128


#define WH_SYNC_INTERVAL_MS     1000
#define WH_READERS_INTERVAL_MS  60000
#define WH_DRAIN_TIMEOUT_MS     2000


static void
wh_daemon_hello(wh_daemon_t *d, wh_peer_t *peer, const wh_link_msg_t *m)
{
    size_t         n;
    wh_str_t       instance;
    wh_link_msg_t  r;

    n = m->name.len < sizeof(peer->name) - 1 ? m->name.len
                                             : sizeof(peer->name) - 1;
    memcpy(peer->name, m->name.data, n);
    peer->name[n] = '\0';
    peer->hello = 1;
    peer->hello_ms = wh_loop_now();

    wh_log_info(&d->log, "link: peer #%u is \"%s\" (pid %u, protocol %u)",
                peer->serial, peer->name, m->count, m->status);

    instance.data = d->instance;
    instance.len = WH_INSTANCE_LEN;
    wh_link_welcome(&r, instance, (uint64_t) d->start_ms,
                    wh_mqtt_egress(&d->mqtt));
    wh_link_send(peer, &r);

    /* before any SESSION_OPEN it re-sends is answered */
    wh_clients_hello(&d->clients, peer);
}


static int
wh_daemon_frame(wh_peer_t *peer, const wh_link_msg_t *m, void *ctx)
{
    wh_link_msg_t   r;
    wh_daemon_t    *d = ctx;

    if (!peer->hello) {
        if (m->type != WH_LINK_HELLO || m->status != WH_LINK_VERSION) {
            wh_log_warn(&d->log, "link: peer #%u sent %s (version %u) "
                        "before HELLO v%d", peer->serial,
                        wh_link_type_name(m->type), m->status,
                        WH_LINK_VERSION);
            return -1;
        }

        wh_daemon_hello(d, peer, m);
        return 0;
    }

    switch (m->type) {

    case WH_LINK_SUBSCRIBE:
        return wh_channels_subscribe(&d->channels, peer, m);

    case WH_LINK_COUNT:
        return wh_channels_count(&d->channels, peer, m);

    case WH_LINK_PUBLISH:
        return wh_channels_publish(&d->channels, peer, m);

    case WH_LINK_REPLAY:
        return wh_channels_replay(&d->channels, peer, m);

    case WH_LINK_REQUEST:
        d->api_again = 0;
        wh_api_request(d, peer, m);
        return d->api_again ? WH_LINK_AGAIN : 0;

    case WH_LINK_SESSION_OPEN:
        return wh_sessions_open(&d->sessions, peer, m);

    case WH_LINK_SESSION_UPDATE:
        return wh_sessions_update(&d->sessions, peer, m);

    case WH_LINK_SESSION_CLOSE:
        return wh_sessions_close(&d->sessions, peer, m);

    case WH_LINK_EVENT:
        wh_mqtt_event(&d->mqtt, peer, m);
        return 0;

    case WH_LINK_COMMAND_RESULT:
        return wh_commands_result(&d->commands, peer, m);

    case WH_LINK_PING:
        memset(&r, 0, sizeof(r));
        r.type = WH_LINK_PONG;
        r.req_id = m->req_id;
        wh_link_send(peer, &r);
        return 0;

    default:
        wh_log_warn(&d->log, "link: peer #%u sent unexpected %s",
                    peer->serial, wh_link_type_name(m->type));
        return -1;
    }
}


static void
wh_daemon_peer_closed(wh_peer_t *peer, void *ctx)
{
    wh_daemon_t  *d = ctx;

    wh_channels_peer_gone(&d->channels, peer);
    wh_sessions_peer_gone(&d->sessions, peer);
}


/*
 * The engine can go on with what answered WH_ENGINE_AGAIN: the frames
 * parked for it, the write of the batch, the publishes.  Done at once,
 * from the engine's callback, so that a subscriber gets its SUBSCRIBED
 * before any message the engine delivers after it; a wake during the
 * wake is run after it.
 */
static void
wh_daemon_engine_wake(void *ctx)
{
    wh_daemon_t  *d = ctx;

    if (d->waking) {
        d->waking = 2;
        return;
    }

    do {
        d->waking = 1;
        wh_batch_commit(&d->batch);
        wh_channels_commit(&d->channels);
        wh_link_wake(&d->link);
    } while (d->waking == 2);

    d->waking = 0;
}


static void
wh_daemon_engine_message(void *ctx, wh_str_t ws, wh_str_t ch, uint64_t id,
    const char *epoch, int64_t time_ms, wh_str_t text)
{
    wh_daemon_t  *d = ctx;

    wh_channels_deliver(&d->channels, ws, ch, id, epoch, time_ms, text);
}


static uint64_t
wh_daemon_elsewhere(void *ctx, wh_str_t ws, uint64_t here)
{
    wh_daemon_t  *d = ctx;

    return d->engine->ops->presence(d->engine, ws, here);
}


static void
wh_daemon_engine_limits(void *ctx, wh_str_t ws, uint64_t *channels,
    uint64_t *history_bytes)
{
    wh_daemon_t        *d = ctx;
    wh_quota_limits_t   l;

    wh_quota_limits(d->conf.quota, d->conf.nquota, ws, &l);
    *channels = l.limit[WH_QUOTA_CHANNELS];
    *history_bytes = l.limit[WH_QUOTA_HISTORY_BYTES];
}


/* another node changed the state this node keeps some of in memory */
static void
wh_daemon_engine_state(void *ctx, const wh_engine_note_t *n)
{
    wh_daemon_t  *d = ctx;
    wh_str_t      all = { "", 0 };

    switch (n->kind) {

    case WH_NOTE_COMMANDS:
        wh_commands_changed_elsewhere(&d->commands, n->ws, n->client_id);
        break;

    case WH_NOTE_RESYNC:
        wh_commands_changed_elsewhere(&d->commands, all, all);
        wh_clients_changed_elsewhere(&d->clients, n);
        break;

    case WH_NOTE_JOB:
        wh_jobs_changed_elsewhere(&d->jobs, n->ws, n->client_id);
        break;

    case WH_NOTE_SOURCE:
        wh_sources_changed_elsewhere(&d->sources, n->ws, n->client_id);
        break;

    default:
        wh_clients_changed_elsewhere(&d->clients, n);
        break;
    }
}


static const wh_engine_handler_t  wh_daemon_engine_handler = {
    wh_daemon_engine_wake,
    wh_daemon_engine_message,
    wh_daemon_engine_limits,
    wh_daemon_engine_state
};


/* LMDB, or Redis shared by the nodes of a cluster (DESIGN.md "Cluster
 * mode") */
static int
wh_daemon_engine(wh_daemon_t *d, wh_err_t *err)
{
    char                     host[65];
    wh_engine_redis_conf_t   rc;

    if (!d->conf.engine.redis_on) {
        return wh_engine_lmdb_open(&d->engine, d->conf.storage,
                                   d->conf.map_size, d->conf.max_map_size,
                                   d->conf.history_length,
                                   d->conf.history_ttl_ms, &d->log, err);
    }

    memset(&rc, 0, sizeof(rc));
    rc.redis = d->conf.engine.redis;
    rc.replicas_ack = d->conf.engine.replicas_ack;
    rc.ack_timeout_ms = d->conf.engine.ack_timeout_ms;
    rc.node_lease_ms = d->conf.engine.node_lease_ms;
    rc.hist_len = d->conf.history_length;
    rc.hist_ttl_ms = d->conf.history_ttl_ms;
    rc.node_id = d->conf.node_id;

    if (rc.node_id == NULL) {
        if (gethostname(host, sizeof(host) - 1) != 0) {
            strcpy(host, "node");
        }

        host[sizeof(host) - 1] = '\0';
        rc.node_id = host;
    }

    return wh_engine_redis_open(&d->engine, &d->loop, &rc, &d->log, err);
}


/* the end of every loop turn: nothing read in the turn is answered
 * before it is committed */
static void
wh_daemon_turn_end(void *data)
{
    int           i;
    wh_daemon_t  *d = data;

    for (i = 0; i < 4; i++) {
        wh_link_detach(&d->link);
        /* commands first: their status events are channel messages */
        wh_batch_commit(&d->batch);
        wh_channels_commit(&d->channels);
        wh_link_flush(&d->link);

        if (d->link.nclosing == 0 || !wh_link_detach(&d->link)) {
            break;
        }

        /* peers dropped while flushing closed sessions: commit those
         * presence events too */
    }

    wh_batch_commit(&d->batch);
    wh_channels_commit(&d->channels);
    wh_link_flush(&d->link);
    wh_link_reap(&d->link);
}


static void
wh_daemon_sync(wh_timer_t *t)
{
    wh_err_t      err;
    wh_daemon_t  *d = t->data;

    if (d->engine->ops->sync_background(d->engine, &err) != 0) {
        wh_log_error(&d->log, "%s", err.msg);
    }
}


/* the clients' delayed last_seen writes */
static void
wh_daemon_seen(wh_timer_t *t)
{
    wh_daemon_t  *d = t->data;

    wh_clients_flush(&d->clients);
}


static void
wh_daemon_readers(wh_timer_t *t)
{
    int           dead;
    wh_err_t      err;
    wh_daemon_t  *d = t->data;

    if (d->engine->ops->check_readers(d->engine, &dead, &err) != 0) {
        wh_log_error(&d->log, "%s", err.msg);
    } else if (dead) {
        wh_log_warn(&d->log, "storage: cleared %d stale reader slots",
                    dead);
    }
}


static void
wh_daemon_expire(wh_timer_t *t)
{
    size_t        removed;
    wh_err_t      err;
    wh_daemon_t  *d = t->data;

    /* a publish queued by a timer must not wait for the trim */
    wh_channels_commit(&d->channels);

    if (d->engine->ops->hist_expire(d->engine, wh_time_ms(), wh_quota_freed,
                                    &d->quota, &removed, &err) != 0) {
        wh_log_error(&d->log, "history expiry: %s", err.msg);
    } else if (removed) {
        wh_log_debug(&d->log, "history expiry: %zu messages removed",
                     removed);
    }
}


static void
wh_daemon_stats_ws(void *ctx, wh_str_t ws)
{
    char         *text;
    json_t       *obj;
    wh_err_t      err;
    wh_daemon_t  *d = ctx;
    wh_str_t      ch = { "$stats", 6 }, type = { "stats_update", 12 }, data;

    /* only where someone listens, to keep $stats history meaningful */
    if (wh_channels_subscribers(&d->channels, ws, ch) == 0) {
        return;
    }

    obj = json_object();

    if (obj == NULL || wh_api_stats(d, ws, obj, 0) != 0
        || (text = json_dumps(obj, JSON_COMPACT)) == NULL)
    {
        json_decref(obj);
        wh_log_error(&d->log, "stats: cannot build stats_update");
        return;
    }

    json_decref(obj);
    data.data = text;
    data.len = strlen(text);

    if (wh_channels_enqueue(&d->channels, WH_PUB_DAEMON, NULL, 0, ws, ch,
                            type, data, &err) != 0)
    {
        wh_log_error(&d->log, "stats: %s", err.msg);
    }

    free(text);
}


static void
wh_daemon_stats(wh_timer_t *t)
{
    wh_daemon_t  *d = t->data;

    wh_sessions_each_workspace(&d->sessions, wh_daemon_stats_ws, d);
}


static void
wh_daemon_signal(wh_event_t *ev, uint32_t events)
{
    ssize_t                  n;
    wh_err_t                 err;
    wh_daemon_t             *d = ev->data;
    struct signalfd_siginfo  si;

    (void) events;

    for ( ;; ) {
        n = read(ev->fd, &si, sizeof(si));

        if (n != (ssize_t) sizeof(si)) {
            return;
        }

        switch (si.ssi_signo) {

        case SIGHUP:
            if (wh_log_reopen(&d->log, &err) != 0) {
                wh_log_error(&d->log, "SIGHUP: %s", err.msg);
            } else {
                wh_log_info(&d->log, "SIGHUP: log reopened");
            }
            break;

        default:
            wh_log_info(&d->log, "signal %u: shutting down",
                        si.ssi_signo);
            d->loop.stop = 1;
            break;
        }
    }
}


static int
wh_daemon_signals(wh_daemon_t *d, wh_err_t *err)
{
    int       fd;
    sigset_t  set;

    signal(SIGPIPE, SIG_IGN);

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);

    if (sigprocmask(SIG_BLOCK, &set, NULL) == -1) {
        return wh_err(err, 500, "sigprocmask: %s", strerror(errno));
    }

    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

    if (fd == -1) {
        return wh_err(err, 500, "signalfd: %s", strerror(errno));
    }

    d->signal_ev.fd = fd;
    d->signal_ev.handler = wh_daemon_signal;
    d->signal_ev.data = d;

    return wh_loop_add(&d->loop, &d->signal_ev, EPOLLIN, err);
}


static void
wh_daemon_instance(wh_daemon_t *d)
{
    int            i;
    unsigned char  r[WH_INSTANCE_LEN / 2];
    static const char  hex[] = "0123456789abcdef";

    if (getrandom(r, sizeof(r), 0) != (ssize_t) sizeof(r)) {
        memset(r, 0, sizeof(r));
        memcpy(r, &d->start_ms, sizeof(d->start_ms));
    }

    for (i = 0; i < WH_INSTANCE_LEN / 2; i++) {
        d->instance[2 * i] = hex[r[i] >> 4];
        d->instance[2 * i + 1] = hex[r[i] & 0xf];
    }

    d->instance[WH_INSTANCE_LEN] = '\0';
}


static int
wh_daemon_timers(wh_daemon_t *d, wh_err_t *err)
{
    int64_t  expire;

    d->sync_timer.interval = WH_SYNC_INTERVAL_MS;
    d->sync_timer.handler = wh_daemon_sync;
    d->readers_timer.interval = WH_READERS_INTERVAL_MS;
    d->readers_timer.handler = wh_daemon_readers;
    d->stats_timer.interval = d->conf.stats_interval_ms;
    d->stats_timer.handler = wh_daemon_stats;
    d->seen_timer.interval = WH_CL_SEEN_FLUSH_MS;
    d->seen_timer.handler = wh_daemon_seen;

    /* expire in steps of a tenth of the ttl, between 1 s and 1 min */
    expire = d->conf.history_ttl_ms / 10;
    expire = expire < 1000 ? 1000 : expire > 60000 ? 60000 : expire;
    d->expire_timer.interval = expire;
    d->expire_timer.handler = wh_daemon_expire;

    d->sync_timer.data = d;
    d->readers_timer.data = d;
    d->stats_timer.data = d;
    d->seen_timer.data = d;
    d->expire_timer.data = d;

    /* the flush of last_seen writes runs in the sync's turns */
    if (wh_loop_timer(&d->loop, &d->sync_timer, err) != 0
        || wh_loop_timer(&d->loop, &d->seen_timer, err) != 0
        || wh_loop_timer(&d->loop, &d->readers_timer, err) != 0
        || wh_loop_timer(&d->loop, &d->stats_timer, err) != 0
        || (d->conf.history_ttl_ms
            && wh_loop_timer(&d->loop, &d->expire_timer, err) != 0))
    {
        return -1;
    }

    return 0;
}


static int
wh_daemon_commands(wh_daemon_t *d, wh_err_t *err)
{
    wh_cmd_policy_t  policy;

    policy.ttl_ms = d->conf.cmd_ttl_ms;
    policy.ack_timeout_ms = d->conf.cmd_ack_timeout_ms;
    policy.max_attempts = d->conf.cmd_max_attempts;
    policy.window = WH_CMD_WINDOW;

    if (wh_clients_init(&d->clients, d->engine, &d->batch, &d->sessions,
                        &d->link, &d->commands, &d->quota, &d->log, err)
        != 0)
    {
        return -1;
    }

    if (wh_commands_init(&d->commands, d->engine, &d->batch, &d->sessions,
                         &d->channels, &d->quota, &policy, &d->log, err)
        != 0)
    {
        wh_clients_free(&d->clients);
        return -1;
    }

    d->commands.retention_ms = d->conf.cmd_retention_ms;

    if (wh_jobs_init(&d->jobs, d->engine, &d->batch, &d->commands,
                     &d->channels, &d->log, err) != 0)
    {
        wh_commands_free(&d->commands);
        wh_clients_free(&d->clients);
        return -1;
    }

    return wh_commands_start(&d->commands, &d->loop, err) != 0
           || wh_jobs_start(&d->jobs, &d->loop, err) != 0 ? -1 : 0;
}


int
wh_daemon_start(wh_daemon_t *d, wh_err_t *err)
{
    int             inherited;
    int64_t         scan_ms;
    wh_listenfd_t   lf;

    d->start_ms = wh_time_ms();
    wh_daemon_instance(d);

    if (wh_loop_init(&d->loop, err) != 0) {
        return -1;
    }

    d->loop.turn_end = wh_daemon_turn_end;
    d->loop.turn_data = d;

    if (wh_daemon_engine(d, err) != 0) {
        return -1;
    }

    d->engine->handler = &wh_daemon_engine_handler;
    d->engine->handler_ctx = d;

    /* usage is counted, not stored: it cannot drift from the store */
    wh_quota_init(&d->quota, d->conf.quota, d->conf.nquota, &d->log);
    scan_ms = wh_loop_now();

    if (d->engine->ops->hist_usage(d->engine, wh_quota_count_channel,
                                   &d->quota, err) != 0)
    {
        return -1;
    }

    wh_log_info(&d->log, "quota: the history of %zu workspaces counted in "
                "%" PRId64 " ms", d->quota.ws.count,
                wh_loop_now() - scan_ms);

    wh_channels_init(&d->channels, d->engine, &d->quota, &d->log);
    d->channels.replay_page = d->conf.replay_page;
    wh_sessions_init(&d->sessions, &d->channels, &d->log);

    if (d->engine->ops->presence) {
        d->sessions.elsewhere = wh_daemon_elsewhere;
        d->sessions.elsewhere_ctx = d;
    }
    wh_batch_init(&d->batch, d->engine, &d->log);

    /* a cluster engine's txn reads over the network and is refused if
     * another node changed what it read meanwhile: bounded txns,
     * bounded windows (one LMDB txn takes all a turn queued) */
    if (wh_engine_shared(d->engine)) {
        d->batch.max_ops = WH_DAEMON_CLUSTER_BATCH;
    }

    if (wh_daemon_commands(d, err) != 0) {
        return -1;
    }

    d->link.loop = &d->loop;
    d->link.log = &d->log;
    d->link.on_frame = wh_daemon_frame;
    d->link.on_close = wh_daemon_peer_closed;
    d->link.ctx = d;

    inherited = wh_listenfd_take(&lf, err);

    if (inherited < 0) {
        return -1;
    }

    /* the default peers are the users of the socket's group: the
     * manager's SocketGroup= when the config names none */
    if (inherited && d->conf.listen_gid == (gid_t) -1) {
        d->conf.listen_gid = lf.gid;
    }

    if (wh_config_default_peers(&d->conf, err) != 0) {
        return -1;
    }

    d->link.uids = d->conf.peers;
    d->link.nuids = d->conf.npeers;

    if (wh_daemon_signals(d, err) != 0
        || wh_daemon_timers(d, err) != 0
        || (inherited ? wh_link_adopt(&d->link, lf.fd, err)
                      : wh_link_listen(&d->link, d->conf.listen,
                                       d->conf.listen_mode,
                                       d->conf.listen_gid, err)) != 0
        || wh_mqtt_init(&d->mqtt, &d->conf, &d->loop, &d->log,
                        &d->channels, &d->sessions, d->engine, err) != 0)
    {
        return -1;
    }

    /* the configured definitions move into the sources */
    if (wh_sources_init(&d->sources, d->conf.sources, d->conf.nsources,
                        &d->loop, &d->log, &d->channels, &d->mqtt,
                        d->engine, err) != 0
        || wh_sources_shared_init(&d->sources, &d->batch, err) != 0)
    {
        return -1;
    }

    d->conf.nsources = 0;

    wh_log_info(&d->log, "wirehubd %s listening on unix:%s%s, storage %s "
                "(map %zu bytes)", d->instance,
                inherited ? lf.path : d->conf.listen,
                inherited ? " (inherited socket, fd 3; listen not used)"
                          : "",
                d->conf.storage, d->engine->ops->size(d->engine));

    return 0;
}


int
wh_daemon_run(wh_daemon_t *d)
{
    wh_err_t  err;

    d->engine->serving = 1;

    if (wh_loop_run(&d->loop, &err) != 0) {
        wh_log_error(&d->log, "%s", err.msg);
        d->exit_code = 1;
    }

    /* the drain's writes wait for a cluster engine */
    d->engine->serving = 0;

    /* drain: commit what was read (and the values the MQTT rate limit
     * still held), write what was answered, close */
    wh_sources_shared_stop(&d->sources);
    wh_sources_stop(&d->sources);
    wh_mqtt_stop(&d->mqtt);
    wh_clients_flush(&d->clients);
    wh_batch_commit(&d->batch);
    wh_channels_commit(&d->channels);
    d->sessions.quiet = 1;
    wh_link_flush(&d->link);
    wh_link_shutdown(&d->link, WH_DRAIN_TIMEOUT_MS);
    wh_batch_free(&d->batch);
    wh_channels_commit(&d->channels);

    wh_jobs_free(&d->jobs);
    wh_commands_free(&d->commands);
    wh_clients_free(&d->clients);
    wh_sessions_free(&d->sessions);
    wh_channels_free(&d->channels);
    wh_quota_free(&d->quota);
    wh_engine_close(d->engine);
    d->engine = NULL;
    close(d->signal_ev.fd);
    wh_loop_free(&d->loop);

    wh_log_info(&d->log, "wirehubd %s stopped", d->instance);

    return d->exit_code;
}
