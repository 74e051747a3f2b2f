/*
 * Upstream sources (DESIGN.md "Upstream sources"): wirehubd holds an
 * outbound WebSocket (wsclient.h) per source, maps each JSON text
 * message to a channel message of the source's workspace (stored and
 * fanned out like an API publish, optionally published to MQTT too),
 * reconnects with exponential backoff and full jitter, and says what
 * happens on the workspace's $sources channel.
 *
 * Sources come from `source` lines (kept for the daemon's life, never
 * stored) and from POST /api/sources (stored in the engine's state
 * space, loaded again at start).  Per source, messages are limited in
 * size (larger: the connection closes with 1009) and in rate (past it
 * the socket is not read until the budget refills: TCP pushes back,
 * nothing is dropped).
 */

#ifndef WH_SOURCES_H
#define WH_SOURCES_H

#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "batch.h"
#include "channels.h"
#include "engine.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "resolve.h"
#include "sourcedef.h"
#include "wsclient.h"


/* the tick (reconnects, rate refills, pings) while sources exist;
 * without any, once a second */
#define WH_SOURCES_TICK_MS       50
#define WH_SOURCES_IDLE_TICK_MS  1000
#define WH_SOURCES_MAX_PER_WS    1000

typedef enum {
    WH_SRC_CONNECTING = 0,
    WH_SRC_CONNECTED,
    WH_SRC_BACKOFF,
    WH_SRC_STOPPED,
    WH_SRC_STATES
} wh_source_state_e;

/* why a message from upstream was not published */
typedef enum {
    WH_SRC_NON_JSON = 0,
    WH_SRC_NOT_OBJECT,
    WH_SRC_BAD_EVENT,           /* no usable {event} where one is needed */
    WH_SRC_BINARY,
    WH_SRC_OVERSIZE,            /* past max_message: closed with 1009 */
    WH_SRC_STORE,               /* the channel refused it (quota, ...) */
    WH_SRC_MQTT,                /* the MQTT publish failed (the channel
                                 * message went out) */
    WH_SRC_REFUSALS
} wh_source_refusal_e;

typedef struct {
    uint64_t          messages_in;      /* complete messages received */
    uint64_t          published;        /* into channels */
    uint64_t          refused[WH_SRC_REFUSALS];
    uint64_t          reconnects;       /* connections after the first */
    uint64_t          failures;         /* attempts that did not open */
    uint64_t          throttled;        /* pauses for the rate limit */
} wh_source_counters_t;

typedef struct wh_source_s  wh_source_t;
typedef struct wh_sources_s  wh_sources_t;

struct wh_source_s {
    wh_source_t          *next;
    wh_sources_t         *owner;
    wh_source_def_t       def;
    int                   stored;       /* added by the API */
    int                   needs_event;  /* a template uses {event} */
    SSL_CTX              *tls;          /* its cafile's; or the shared */
    wh_wsc_t             *conn;         /* NULL while in backoff */
    wh_source_state_e     state;
    unsigned              attempts;     /* since the last stable one */
    int64_t               next_at;      /* monotonic ms, in backoff */
    int64_t               next_retry_ms;
    int64_t               connected_at; /* monotonic ms */
    int64_t               last_message_at;  /* wall ms; 0: never */
    int64_t               refill_at;    /* monotonic ms */
    double                tokens;       /* rate budget */
    unsigned              logged;       /* refusal kinds logged, bits */
    int                   paused;
    wh_buf_t              held;         /* a message the workspace's
                                         * publish_rate held back */
    char                  last_error[WH_WSC_REASON_MAX];
    wh_source_counters_t  n;
};

struct wh_sources_s {
    wh_loop_t            *loop;
    wh_log_t             *log;
    wh_channels_t        *channels;
    wh_mqtt_t            *mqtt;
    wh_engine_t          *engine;
    wh_resolver_t         resolver;
    wh_timer_t            tick;
    SSL_CTX              *system_tls;   /* the system's CAs, on demand */
    wh_source_t          *head;
    unsigned              count;
    uint64_t              rng;
    wh_buf_t              ch, type, topic;  /* rendered, reused */
    wh_source_counters_t  gone;         /* of sources deleted since */

    /* cluster (sources_shared.c): run-time sources are stored through
     * the batch; each runs on one node, taken over when it is gone */
    wh_batch_t           *batch;
    wh_timer_t            adopt;
    int                   scanning;
    int                   stopped;
};


/* starts the configured sources (taking their definitions: cf keeps
 * none) and the stored ones */
int wh_sources_init(wh_sources_t *s, wh_source_def_t *defs, unsigned n,
    wh_loop_t *loop, wh_log_t *log, wh_channels_t *channels,
    wh_mqtt_t *mqtt, wh_engine_t *engine, wh_err_t *err);

/* shutdown: every connection gets a close frame (1001) and goes */
void wh_sources_stop(wh_sources_t *s);

wh_source_t *wh_sources_find(wh_sources_t *s, wh_str_t ws, wh_str_t id);

/* POST /api/sources: a new run-time source from its JSON, stored, then
 * started; -1 with err (400, 409 the id exists, 429 too many, 503) */
wh_source_t *wh_sources_create(wh_sources_t *s, wh_str_t ws, json_t *obj,
    wh_err_t *err);

/* DELETE: closes and forgets it; -1 with err (409 for a configured
 * one, 503) */
int wh_sources_delete(wh_sources_t *s, wh_source_t *src, wh_err_t *err);

/* takes def (zeroed on success) and starts it, stored (run-time) or
 * not (wirehubd.conf); NULL with err (409, 429, a cafile, 503) */
wh_source_t *wh_sources_add(wh_sources_t *s, wh_source_def_t *def,
    int stored, wh_err_t *err);

/* closes and forgets it (its record is the caller's business) */
void wh_sources_remove(wh_sources_t *s, wh_source_t *src);

/* a source another node of the cluster runs: its definition, state
 * "remote", and the node */
json_t *wh_source_json_remote(const wh_source_def_t *def,
    const char *node);

/* a source as the API shows it (no header value); NULL out of memory */
json_t *wh_source_json(const wh_source_t *src);

/* the "sources" member of GET /stats for ws */
json_t *wh_sources_stats(const wh_sources_t *s, wh_str_t ws);

/* totals for /metrics: by state, and counters over every source ever */
void wh_sources_totals(const wh_sources_t *s,
    unsigned states[WH_SRC_STATES], wh_source_counters_t *n);

extern const char *const  wh_source_state_names[WH_SRC_STATES];
extern const char *const  wh_source_refusal_names[WH_SRC_REFUSALS];

#endif /* WH_SOURCES_H */
