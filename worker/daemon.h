/*
 * wirehubd: the daemon's state, one struct passed to every part.
 */

#ifndef WH_DAEMON_H
#define WH_DAEMON_H

#include <stdint.h>

#include "batch.h"
#include "channels.h"
#include "clients.h"
#include "commands.h"
#include "engine.h"
#include "jobs.h"
#include "config.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "quota.h"
#include "sessions.h"
#include "sources.h"


#define WH_INSTANCE_LEN  16

typedef struct {
    wh_config_t     conf;
    wh_log_t        log;
    wh_loop_t       loop;
    wh_link_t       link;
    wh_engine_t    *engine;        /* all that is stored */
    wh_quota_t      quota;         /* per workspace */
    wh_channels_t   channels;
    wh_sessions_t   sessions;
    wh_batch_t      batch;         /* commands and clients writes */
    wh_commands_t   commands;
    wh_jobs_t       jobs;          /* fleet jobs, over the commands */
    wh_clients_t    clients;
    wh_mqtt_t       mqtt;
    wh_sources_t    sources;       /* upstream WebSockets */
    char            instance[WH_INSTANCE_LEN + 1];
    int64_t         start_ms;
    int             exit_code;
    int             api_again;     /* the REQUEST waits for the engine */
    int             waking;        /* in the engine's wake */
    wh_event_t      signal_ev;
    wh_timer_t      sync_timer;
    wh_timer_t      readers_timer;
    wh_timer_t      expire_timer;
    wh_timer_t      stats_timer;
    wh_timer_t      seen_timer;
} wh_daemon_t;


/* opens storage, binds the socket, sets up signals and timers */
int wh_daemon_start(wh_daemon_t *d, wh_err_t *err);
/* runs until SIGTERM/SIGINT, then drains; returns the exit code */
int wh_daemon_run(wh_daemon_t *d);

/* REQUEST: the HTTP API routes (api.c) */
void wh_api_request(wh_daemon_t *d, wh_peer_t *peer,
    const wh_link_msg_t *m);

/* fills obj with the stats of one workspace (api.c) */
int wh_api_stats(wh_daemon_t *d, wh_str_t ws, json_t *obj, int full);

#endif /* WH_DAEMON_H */
