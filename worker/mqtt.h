/*
 * The MQTT client of wirehubd: libmosquitto driven from the daemon's
 * epoll loop (mosquitto_socket, loop_read, loop_write, loop_misc; no
 * network thread), its own reconnect with exponential backoff and
 * jitter, ingest of subscribed topics into channels (stored and fanned
 * out like PUBLISH) and egress of client events (EVENT) to topics.
 *
 * Connecting: libmosquitto resolves the host with a blocking
 * getaddrinfo inside mosquitto_connect_async, and with TLS it must see
 * the host name itself (SNI and the certificate check).  So an IP
 * address literal is connected from the loop directly (getaddrinfo on
 * a literal never asks a resolver), and a host name is connected by a
 * short-lived helper thread that makes that one call while the loop
 * keeps away from the handle; an eventfd hands it back.
 */

#ifndef WH_MQTT_H
#define WH_MQTT_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>

#include "wh_link.h"
#include "channels.h"
#include "coalesce.h"
#include "config.h"
#include "ingest.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "sessions.h"


/* the tick: every 50 ms while rate windows are open or a connect is
 * under way, else once a second (keepalive, the next attempt, notes) */
#define WH_MQTT_TICK_MS       50
#define WH_MQTT_IDLE_TICK_MS  1000

typedef enum {
    WH_MQTT_IDLE = 0,           /* waiting for the next attempt */
    WH_MQTT_HELPER,             /* the helper thread is connecting */
    WH_MQTT_CONNECTING,         /* socket open, no CONNACK yet */
    WH_MQTT_CONNECTED
} wh_mqtt_state_e;

/* problems logged at most once per interval each, with a count */
typedef enum {
    WH_NOTE_NON_JSON = 0,
    WH_NOTE_OVERSIZE,
    WH_NOTE_TOPIC,              /* no rule, or an invalid rendered name */
    WH_NOTE_STORE,
    WH_NOTE_EGRESS,
    WH_NOTE_COUNT
} wh_mqtt_note_e;

typedef struct {
    uint64_t         count;
    uint64_t         logged;        /* count at the last log line */
    int64_t          last_log;      /* ms; 0: never */
    char             sample[160];   /* the last one's detail */
} wh_mqtt_note_t;

/* the connect helper's own memory: a helper still in a resolver at
 * shutdown is left behind and must not touch the daemon's */
typedef struct {
    struct mosquitto  *mosq;
    char              *host;
    int                port;
    int                keepalive;
    int                efd;         /* written once the call returned */
    int                rc;
    int                err;
} wh_mqtt_job_t;

typedef struct {
    uint64_t         messages_in;   /* from the broker */
    uint64_t         ingested;      /* queued into channels */
    uint64_t         messages_out;  /* events acknowledged by the broker */
    uint64_t         dropped;       /* in or out, for any reason */
    uint64_t         non_json;
    uint64_t         oversize;
    uint64_t         reconnects;    /* connections after a lost one */
    uint64_t         failures;      /* attempts that did not connect */
} wh_mqtt_counters_t;

typedef struct {
    const wh_config_t  *conf;
    wh_loop_t          *loop;
    wh_log_t           *log;
    wh_channels_t      *channels;
    wh_sessions_t      *sessions;
    struct mosquitto   *mosq;           /* NULL: no mqtt directive */
    wh_mqtt_state_e     state;
    int                 stopping;
    wh_event_t          sock_ev;        /* the broker connection */
    int                 sock_fd;        /* registered with epoll, or -1 */
    uint32_t            sock_events;
    wh_event_t          helper_ev;      /* eventfd: the helper is done */
    pthread_t           helper;
    wh_mqtt_job_t      *job;            /* the helper's, while it runs */
    wh_timer_t          tick;
    int64_t             next_attempt;   /* monotonic ms */
    unsigned            attempt;        /* failed since the last success */
    int64_t             down_since;     /* ms, 0: never connected */
    int                 refused;        /* CONNACK refused this attempt */
    int                 io_rc;          /* the last failed loop call */
    int                 io_errno;
    unsigned            subacks;        /* SUBACKs on this connection */
    uint64_t            rng;
    char                last_error[160];
    unsigned            egress_pending; /* published, not acknowledged */
    wh_rate_t           rate;
    wh_coalesce_t       shared;         /* cluster: the windows are in
                                         * the engine */
    int                 rate_shared;
    wh_ingest_route_t   route;          /* buffers reused per message */
    wh_buf_t            data;
    wh_buf_t            topic;
    wh_buf_t            payload;
    wh_mqtt_counters_t  n;
    wh_mqtt_note_t      notes[WH_NOTE_COUNT];
} wh_mqtt_t;


/* sets up the client if conf has an mqtt directive (else every call
 * below does nothing) and schedules the first connect at once; with a
 * cluster engine (one with a rate op) rate= windows are the cluster's */
int wh_mqtt_init(wh_mqtt_t *mq, const wh_config_t *conf, wh_loop_t *loop,
    wh_log_t *log, wh_channels_t *channels, wh_sessions_t *sessions,
    wh_engine_t *engine, wh_err_t *err);

/* shutdown: the pending rate-limited values go out (queued into
 * channels: commit after), the broker gets a DISCONNECT */
void wh_mqtt_stop(wh_mqtt_t *mq);

/* EVENT from a link peer: published to the egress topic, or dropped
 * and counted; never a protocol error */
void wh_mqtt_event(wh_mqtt_t *mq, wh_peer_t *peer, const wh_link_msg_t *m);

/* publishes text to topic (upstream sources' mqtt=), with the egress
 * QoS and queue limit (QoS 1 without an egress directive); -1 and *why
 * if it cannot */
int wh_mqtt_publish_text(wh_mqtt_t *mq, wh_str_t topic, wh_str_t text,
    const char **why);

/* 1 if client events go to MQTT (the WELCOME flag) */
int wh_mqtt_egress(const wh_mqtt_t *mq);

/* the "mqtt" member of GET /stats */
json_t *wh_mqtt_stats(const wh_mqtt_t *mq);

#endif /* WH_MQTT_H */
