/*
 * The rate coalescer of a cluster: the same rule as ingest.h's (the
 * first value of a window goes out at once, later ones replace one held
 * value, the held value goes out when the window ends) with the windows
 * in the engine (engine.h rate), shared by the nodes, so that a key's
 * values reaching several nodes (MQTT shared= subscriptions) still go
 * out at most once per window.  This side keeps the offers in flight
 * and, per key whose value the engine held, when to ask for it.
 */

#ifndef WH_COALESCE_H
#define WH_COALESCE_H

#include <stdint.h>

#include "engine.h"
#include "ingest.h"
#include "map.h"


typedef struct wh_coal_wait_s  wh_coal_wait_t;
typedef struct wh_coal_call_s  wh_coal_call_t;

typedef struct {
    wh_coal_wait_t  *head;
    wh_coal_wait_t **tail;
} wh_coal_fifo_t;

typedef struct {
    wh_engine_t      *engine;
    int64_t          *intervals;    /* per rule, ms */
    wh_coal_fifo_t   *fifos;        /* per rule: waits, about in order
                                     * of their due time */
    unsigned          nrules;
    wh_rate_emit_pt   emit;
    void             *ctx;
    wh_map_t          waits;        /* rule ":" key -> wh_coal_wait_t */
    wh_coal_call_t   *calls;        /* offers and asks in flight */
    int               stopped;
    uint64_t          coalesced;    /* values the engine held */
    uint64_t          failed;       /* not answered: sent at once */
} wh_coalesce_t;


/* intervals[i]: rule i's window (ms, 0: not coalesced); -1 ENOMEM */
int wh_coalesce_init(wh_coalesce_t *c, wh_engine_t *engine,
    const int64_t *intervals, unsigned nrules, wh_rate_emit_pt emit,
    void *ctx);

/* a value of a coalesced rule; it goes out through emit now, later, or
 * never (a later value replaced it) */
void wh_coalesce_offer(wh_coalesce_t *c, unsigned rule, wh_str_t key,
    wh_str_t ws, wh_str_t ch, wh_str_t data);

/* asks for the held values whose windows ended by now (monotonic ms) */
void wh_coalesce_due(wh_coalesce_t *c, int64_t now);

/* shutdown: what is in flight and the last value this node held of
 * each waiting key go out now; answers that come later are dropped */
void wh_coalesce_stop(wh_coalesce_t *c);

void wh_coalesce_free(wh_coalesce_t *c);

/* keys waiting for their window's end */
size_t wh_coalesce_waiting(const wh_coalesce_t *c);

#endif /* WH_COALESCE_H */
