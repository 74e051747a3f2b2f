/*
 * wirehubd's families for /metrics (metrics.h).  Totals over all
 * workspaces only: a label per workspace would make a series per
 * tenant, and the per-workspace view is GET /api/stats.  Labels take
 * values from fixed sets (statuses, reasons, the two storage spaces).
 *
 * Each concern renders its families in a function of its own, listed in
 * wh_metrics_families[] below: a new concern is one function and one
 * line there.
 */

#include <string.h>

#include "wh_time.h"
#include "wh_version.h"
#include "metrics.h"
#include "prom.h"


#define WH_METRICS_STR(n)   WH_METRICS_STR_(n)
#define WH_METRICS_STR_(n)  #n


typedef struct {
    wh_daemon_t   *d;
    wh_prom_t      p;
} wh_metrics_t;

typedef void (*wh_metrics_part_pt)(wh_metrics_t *m);


/* the MQTT drops by wh_mqtt_note_e */
static const char *const  wh_metrics_mqtt_drops[WH_NOTE_COUNT] = {
    "non_json", "oversize", "no_route", "storage", "egress"
};

/* the storage spaces by wh_engine_space_e */
static const char *const  wh_metrics_spaces[] = { "state", "history" };


static void
wh_metrics_daemon(wh_metrics_t *m)
{
    int64_t       up;
    wh_prom_t    *p = &m->p;
    wh_daemon_t  *d = m->d;

    /* the module reads version= back for wirehub_build_info */
    wh_prom_family(p, "wirehubd_build_info", "gauge",
                   "wirehubd's version and link protocol; always 1.");
    wh_prom_u64(p, "wirehubd_build_info", (const char *[]) {
                    "version", WH_VERSION,
                    "link_protocol", WH_METRICS_STR(WH_LINK_VERSION), NULL },
                1);

    wh_prom_family(p, "wirehubd_start_time_seconds", "gauge",
                   "When wirehubd started, in seconds since the epoch.");
    wh_prom_ms(p, "wirehubd_start_time_seconds", NULL, d->start_ms);

    up = wh_time_ms() - d->start_ms;

    wh_prom_family(p, "wirehubd_uptime_seconds", "gauge",
                   "Seconds since wirehubd started.");
    wh_prom_ms(p, "wirehubd_uptime_seconds", NULL, up > 0 ? up : 0);
}


static void
wh_metrics_link(wh_metrics_t *m)
{
    uint64_t    peers = 0, paused = 0;
    wh_peer_t  *peer;
    wh_prom_t  *p = &m->p;

    for (peer = m->d->link.peers; peer != NULL; peer = peer->next) {
        if (peer->hello && !peer->closing) {
            peers++;
            paused += peer->paused != 0;
        }
    }

    wh_prom_gauge(p, "wirehubd_link_peers",
                  "Nginx worker processes linked to wirehubd.", peers);
    wh_prom_gauge(p, "wirehubd_link_peers_paused",
                  "Linked workers whose requests wait because wirehubd's "
                  "output to them is high.", paused);
    wh_prom_counter(p, "wirehubd_link_pauses_total",
                    "Times wirehubd held a worker's requests because its "
                    "output to it was high.", m->d->link.pauses);
}


static void
wh_metrics_sessions(wh_metrics_t *m)
{
    wh_prom_t             *p = &m->p;
    wh_sessions_totals_t   t;

    wh_sessions_totals(&m->d->sessions, &t);

    wh_prom_gauge(p, "wirehubd_sessions",
                  "WebSocket sessions the workers report open.",
                  t.sessions);
    wh_prom_gauge(p, "wirehubd_clients_online",
                  "Clients with at least one open session.", t.clients);
    wh_prom_gauge(p, "wirehubd_workspaces_online",
                  "Workspaces with at least one open session.",
                  t.workspaces);
    wh_prom_counter(p, "wirehubd_sessions_kicked_total",
                    "Sessions wirehubd asked the workers to close.",
                    m->d->sessions.kicked);
}


static void
wh_metrics_channels(wh_metrics_t *m)
{
    wh_prom_t      *p = &m->p;
    wh_channels_t  *c = &m->d->channels;

    wh_prom_counter(p, "wirehubd_messages_published_total",
                    "Channel messages stored (API, WebSocket, MQTT and "
                    "wirehubd's own).", c->published);
    wh_prom_counter(p, "wirehubd_messages_fanned_out_total",
                    "Channel messages sent to workers, one per "
                    "subscribing worker.", c->delivered);
    wh_prom_counter(p, "wirehubd_history_commits_total",
                    "Transactions that stored publishes (group commit).",
                    c->commits);
}


static void
wh_metrics_commands(wh_metrics_t *m)
{
    wh_prom_t          *p = &m->p;
    wh_cmdq_depth_t     q;
    wh_commands_t      *c = &m->d->commands;
    wh_cmd_counters_t  *n = &c->counters;

    wh_cmdq_depth(&c->q, &q);

    wh_prom_family(p, "wirehubd_commands", "gauge",
                   "Open commands by status.");
    wh_prom_u64(p, "wirehubd_commands", (const char *[]) {
                    "status", wh_cmd_status_name(WH_CMD_PENDING), NULL },
                q.pending);
    wh_prom_u64(p, "wirehubd_commands", (const char *[]) {
                    "status", wh_cmd_status_name(WH_CMD_SENT), NULL },
                q.sent);

    wh_prom_gauge(p, "wirehubd_command_queue_clients",
                  "Clients with open commands.", q.clients);
    wh_prom_gauge(p, "wirehubd_command_queue_depth_max",
                  "Open commands of the client that has the most.",
                  q.deepest);
    wh_prom_counter(p, "wirehubd_commands_created_total",
                    "Commands stored.", n->created);
    wh_prom_counter(p, "wirehubd_command_deliveries_total",
                    "Deliveries of commands to clients, repeated "
                    "attempts included.", n->delivered);

    wh_prom_family(p, "wirehubd_commands_finished_total", "counter",
                   "Commands that ended, by final status.");
    wh_prom_u64(p, "wirehubd_commands_finished_total", (const char *[]) {
                    "status", wh_cmd_status_name(WH_CMD_COMPLETED), NULL },
                n->completed);
    wh_prom_u64(p, "wirehubd_commands_finished_total", (const char *[]) {
                    "status", wh_cmd_status_name(WH_CMD_FAILED), NULL },
                n->failed);
    wh_prom_u64(p, "wirehubd_commands_finished_total", (const char *[]) {
                    "status", wh_cmd_status_name(WH_CMD_EXPIRED), NULL },
                n->expired);
    wh_prom_u64(p, "wirehubd_commands_finished_total", (const char *[]) {
                    "status", wh_cmd_status_name(WH_CMD_CANCELLED), NULL },
                n->cancelled);
}


static void
wh_metrics_jobs(wh_metrics_t *m)
{
    int         s;
    uint64_t    jobs[WH_JOB_NSTATUS], execs[WH_CMD_NSTATUS];
    wh_prom_t  *p = &m->p;

    wh_jobs_totals(&m->d->jobs, jobs, execs);

    wh_prom_family(p, "wirehubd_jobs", "gauge", "Fleet jobs by status.");

    for (s = 0; s < WH_JOB_NSTATUS; s++) {
        wh_prom_u64(p, "wirehubd_jobs", (const char *[]) {
                        "status", wh_job_status_name(s), NULL }, jobs[s]);
    }

    wh_prom_family(p, "wirehubd_job_executions", "gauge",
                   "Executions of the stored jobs by status (one not yet "
                   "released is pending).");

    for (s = 0; s < WH_CMD_NSTATUS; s++) {
        wh_prom_u64(p, "wirehubd_job_executions", (const char *[]) {
                        "status", wh_cmd_status_name((wh_cmd_status_e) s),
                        NULL }, execs[s]);
    }

    wh_prom_counter(p, "wirehubd_job_executions_released_total",
                    "Executions the rollouts turned into commands.",
                    m->d->jobs.counters.released);

    wh_prom_family(p, "wirehubd_retention_deleted_total", "counter",
                   "Ended commands and jobs deleted past the retention.");
    wh_prom_u64(p, "wirehubd_retention_deleted_total", (const char *[]) {
                    "kind", "commands", NULL },
                m->d->commands.counters.pruned);
    wh_prom_u64(p, "wirehubd_retention_deleted_total", (const char *[]) {
                    "kind", "jobs", NULL }, m->d->jobs.counters.pruned);
}


/* the worst that holds: the storage could not be read, a write was
 * refused for want of room, the last sync failed */
static const char *
wh_metrics_engine_state(const wh_engine_stats_t *s, int readable)
{
    size_t  i;

    if (!readable) {
        return "error";
    }

    for (i = 0; i < 2; i++) {
        if (s->space[i].full) {
            return "full";
        }
    }

    for (i = 0; i < 2; i++) {
        if (s->space[i].sync_failed) {
            return "sync_failed";
        }
    }

    return "ok";
}


/* a family with a sample per storage space */
static void
wh_metrics_space(wh_prom_t *p, const char *name, const char *help,
    uint64_t state, uint64_t history)
{
    wh_prom_family(p, name, "gauge", help);
    wh_prom_u64(p, name, (const char *[]) {
                    "space", wh_metrics_spaces[WH_ENGINE_STATE], NULL },
                state);
    wh_prom_u64(p, name, (const char *[]) {
                    "space", wh_metrics_spaces[WH_ENGINE_HISTORY], NULL },
                history);
}


/* cluster mode: this node's link to Redis */
static void
wh_metrics_cluster(wh_prom_t *p, const wh_engine_cluster_t *c)
{
    wh_prom_family(p, "wirehubd_node_info", "gauge",
                   "This node of the cluster and the Redis primary it "
                   "uses now; always 1.");
    wh_prom_u64(p, "wirehubd_node_info", (const char *[]) {
                    "node_id", c->node_id, "primary", c->primary, NULL },
                1);
    wh_prom_gauge(p, "wirehubd_engine_up",
                  "1 while the Redis primary is reached.", (uint64_t) c->up);
    wh_prom_counter(p, "wirehubd_engine_failovers_total",
                    "New Redis primaries followed (Sentinel failovers).",
                    c->failovers);
    wh_prom_counter(p, "wirehubd_engine_reconnects_total",
                    "Times the Redis primary was reached.", c->reconnects);
    wh_prom_gauge(p, "wirehubd_engine_followed_channels",
                  "Channels this node receives from the cluster (they have "
                  "local subscribers).", c->followed);
    wh_prom_counter(p, "wirehubd_engine_delivered_total",
                    "Messages of followed channels delivered to this node's "
                    "subscribers, from any node.", c->delivered);
    wh_prom_counter(p, "wirehubd_engine_gap_messages_total",
                    "Of those, messages read back from Redis history after "
                    "a gap (a lost connection).", c->gap_messages);
    wh_prom_counter(p, "wirehubd_engine_state_commits_total",
                    "State writes (commands, clients, jobs) applied in "
                    "Redis.", c->state_commits);
    wh_prom_counter(p, "wirehubd_engine_state_conflicts_total",
                    "State writes refused at their commit because another "
                    "node changed what they read; each ran again.",
                    c->state_conflicts);
    wh_prom_counter(p, "wirehubd_engine_state_reads_total",
                    "Reads sent to Redis for state writes.", c->state_reads);
    wh_prom_gauge(p, "wirehubd_engine_lease_held",
                  "1 while this node's lease (node_lease) is renewed in "
                  "time: other nodes leave its jobs and sources alone.",
                  (uint64_t) (c->lease_age_ms >= 0
                              && c->lease_age_ms < c->lease_ms));

    /* 0 until the primary's first INFO is in */
    wh_prom_gauge(p, "wirehubd_engine_replicas",
                  "Replicas of the Redis primary online, as its INFO said "
                  "last.", (uint64_t) (c->replicas > 0 ? c->replicas : 0));
    wh_prom_gauge(p, "wirehubd_engine_replication_lag_bytes",
                  "How far the slowest online replica is behind the "
                  "primary, in bytes of the replication stream.",
                  (uint64_t) (c->replication_lag > 0 ? c->replication_lag
                                                     : 0));
}


static void
wh_metrics_storage(wh_metrics_t *m)
{
    size_t                    i;
    wh_err_t                  err;
    wh_prom_t                *p = &m->p;
    const char               *state, *kind;
    wh_engine_t              *e = m->d->engine;
    wh_engine_stats_t         s;
    wh_engine_space_stats_t  *st, *hi;
    static const char  *states[] = { "ok", "full", "sync_failed", "error" };

    if (e->ops->stats(e, &s, &err) != 0) {
        wh_log_error(&m->d->log, "metrics: %s", err.msg);
        state = wh_metrics_engine_state(&s, 0);
    } else {
        state = wh_metrics_engine_state(&s, 1);
    }

    kind = e->ops->kind;

    wh_prom_family(p, "wirehubd_engine_state", "gauge",
                   "The storage engine's state: 1 for the one it is in.");

    for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        wh_prom_u64(p, "wirehubd_engine_state", (const char *[]) {
                        "engine", kind, "state", states[i], NULL },
                    strcmp(states[i], state) == 0);
    }

    if (strcmp(state, "error") == 0) {
        return;
    }

    if (s.cluster) {
        wh_metrics_cluster(p, &s.c);
    }

    st = &s.space[WH_ENGINE_STATE];
    hi = &s.space[WH_ENGINE_HISTORY];

    wh_prom_gauge(p, "wirehubd_history_channels", "Channels stored.",
                  s.channels);
    wh_prom_gauge(p, "wirehubd_history_messages",
                  "Messages kept in channel history.", s.messages);
    wh_prom_gauge(p, "wirehubd_history_bytes",
                  "Bytes of storage channel history takes.",
                  s.history_bytes);
    wh_prom_gauge(p, "wirehubd_clients_registered",
                  "Clients in the registry.", s.clients);

    wh_metrics_space(p, "wirehubd_lmdb_used_bytes", "Bytes of the LMDB "
                     "map in use, by environment.",
                     st->used_bytes, hi->used_bytes);
    wh_metrics_space(p, "wirehubd_lmdb_map_size_bytes", "Size of the LMDB "
                     "map now, by environment.",
                     st->size_bytes, hi->size_bytes);
    wh_metrics_space(p, "wirehubd_lmdb_map_max_bytes", "Size the LMDB map "
                     "may grow to (max_map_size), by environment.",
                     st->max_bytes, hi->max_bytes);
}


static void
wh_metrics_mqtt(wh_metrics_t *m)
{
    size_t      i;
    wh_prom_t  *p = &m->p;
    wh_mqtt_t  *mq = &m->d->mqtt;

    wh_prom_gauge(p, "wirehubd_mqtt_configured",
                  "1 if wirehubd has an mqtt broker to connect to.",
                  mq->mosq != NULL);
    wh_prom_gauge(p, "wirehubd_mqtt_connected",
                  "1 while the connection to the MQTT broker is up.",
                  mq->state == WH_MQTT_CONNECTED);
    wh_prom_counter(p, "wirehubd_mqtt_messages_received_total",
                    "Messages received from the broker.",
                    mq->n.messages_in);
    wh_prom_counter(p, "wirehubd_mqtt_messages_ingested_total",
                    "Received messages stored into channels.",
                    mq->n.ingested);
    wh_prom_counter(p, "wirehubd_mqtt_messages_coalesced_total",
                    "Received values replaced by a later one within their "
                    "ingest rate.",
                    mq->rate.coalesced + mq->shared.coalesced);
    wh_prom_counter(p, "wirehubd_mqtt_events_published_total",
                    "Client events published to the broker and "
                    "acknowledged.", mq->n.messages_out);
    wh_prom_gauge(p, "wirehubd_mqtt_events_queued",
                  "Client events published and not yet acknowledged.",
                  mq->egress_pending);

    wh_prom_family(p, "wirehubd_mqtt_dropped_total", "counter",
                   "Messages received and client events dropped, by "
                   "reason.");

    for (i = 0; i < WH_NOTE_COUNT; i++) {
        wh_prom_u64(p, "wirehubd_mqtt_dropped_total", (const char *[]) {
                        "reason", wh_metrics_mqtt_drops[i], NULL },
                    mq->notes[i].count);
    }

    wh_prom_counter(p, "wirehubd_mqtt_reconnects_total",
                    "Connections to the broker after a lost one.",
                    mq->n.reconnects);
    wh_prom_counter(p, "wirehubd_mqtt_connect_failures_total",
                    "Attempts to connect to the broker that failed.",
                    mq->n.failures);
}


static void
wh_metrics_quota(wh_metrics_t *m)
{
    int         kind;
    uint64_t    refused[WH_QUOTA_KINDS];
    wh_prom_t  *p = &m->p;

    wh_quota_totals(&m->d->quota, refused);

    wh_prom_family(p, "wirehubd_quota_refused_total", "counter",
                   "Writes refused for a workspace quota, by kind "
                   "(publish_rate: rate_limited, the rest: "
                   "quota_exceeded).");

    for (kind = 0; kind < WH_QUOTA_KINDS; kind++) {
        wh_prom_u64(p, "wirehubd_quota_refused_total", (const char *[]) {
                        "kind", wh_quota_name((wh_quota_kind_e) kind),
                        NULL },
                    refused[kind]);
    }
}


static void
wh_metrics_sources(wh_metrics_t *m)
{
    int                   i;
    unsigned              states[WH_SRC_STATES];
    wh_prom_t            *p = &m->p;
    wh_source_counters_t  n;

    wh_sources_totals(&m->d->sources, states, &n);

    wh_prom_family(p, "wirehubd_sources", "gauge",
                   "Upstream sources, by state.");

    for (i = 0; i < WH_SRC_STATES; i++) {
        wh_prom_u64(p, "wirehubd_sources", (const char *[]) {
                        "state", wh_source_state_names[i], NULL },
                    states[i]);
    }

    wh_prom_counter(p, "wirehubd_source_messages_received_total",
                    "Messages received from upstream sources.",
                    n.messages_in);
    wh_prom_counter(p, "wirehubd_source_messages_published_total",
                    "Messages of upstream sources published into "
                    "channels.", n.published);

    wh_prom_family(p, "wirehubd_source_messages_refused_total", "counter",
                   "Messages of upstream sources not published, by "
                   "reason.");

    for (i = 0; i < WH_SRC_REFUSALS; i++) {
        wh_prom_u64(p, "wirehubd_source_messages_refused_total",
                    (const char *[]) {
                        "reason", wh_source_refusal_names[i], NULL },
                    n.refused[i]);
    }

    wh_prom_counter(p, "wirehubd_source_reconnects_total",
                    "Connections of upstream sources after their first.",
                    n.reconnects);
    wh_prom_counter(p, "wirehubd_source_connect_failures_total",
                    "Attempts to connect an upstream source that failed.",
                    n.failures);
    wh_prom_counter(p, "wirehubd_source_throttled_total",
                    "Times reading an upstream source paused for its "
                    "rate.", n.throttled);
}


/* the families, in the order they are rendered */
static const wh_metrics_part_pt  wh_metrics_families[] = {
    wh_metrics_daemon,
    wh_metrics_link,
    wh_metrics_sessions,
    wh_metrics_channels,
    wh_metrics_commands,
    wh_metrics_jobs,
    wh_metrics_storage,
    wh_metrics_mqtt,
    wh_metrics_quota,
    wh_metrics_sources,
};


int
wh_metrics_render(wh_daemon_t *d, wh_buf_t *out)
{
    size_t        i;
    wh_metrics_t  m;

    m.d = d;
    m.p.out = out;
    m.p.failed = 0;

    for (i = 0; i < sizeof(wh_metrics_families)
                    / sizeof(wh_metrics_families[0]); i++)
    {
        wh_metrics_families[i](&m);
    }

    return m.p.failed ? -1 : 0;
}
