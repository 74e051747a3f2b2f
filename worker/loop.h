/*
 * The event loop: one epoll set, a few periodic timers, and a hook run
 * at the end of every turn (after all ready events were handled) where
 * the daemon commits what the turn produced and flushes its output.
 */

#ifndef WH_LOOP_H
#define WH_LOOP_H

#include <stdint.h>

#include "log.h"


#define WH_LOOP_MAX_TIMERS  16

typedef struct wh_event_s  wh_event_t;
typedef struct wh_timer_s  wh_timer_t;

typedef void (*wh_event_handler_pt)(wh_event_t *ev, uint32_t events);
typedef void (*wh_timer_handler_pt)(wh_timer_t *t);
typedef void (*wh_turn_handler_pt)(void *data);

struct wh_event_s {
    int                   fd;
    wh_event_handler_pt   handler;
    void                 *data;
};

struct wh_timer_s {
    int64_t               interval;    /* ms */
    int64_t               next;        /* monotonic ms */
    wh_timer_handler_pt   handler;
    void                 *data;
};

typedef struct {
    int                   epfd;
    int                   stop;
    int                   ntimers;
    wh_timer_t           *timers[WH_LOOP_MAX_TIMERS];
    wh_turn_handler_pt    turn_end;
    void                 *turn_data;
    int64_t               turn_max_us;  /* the longest turn since the
                                         * last wh_loop_turn_max() */
} wh_loop_t;


int wh_loop_init(wh_loop_t *loop, wh_err_t *err);
void wh_loop_free(wh_loop_t *loop);

/* events: EPOLLIN / EPOLLOUT (level-triggered) */
int wh_loop_add(wh_loop_t *loop, wh_event_t *ev, uint32_t events,
    wh_err_t *err);
int wh_loop_mod(wh_loop_t *loop, wh_event_t *ev, uint32_t events,
    wh_err_t *err);
void wh_loop_del(wh_loop_t *loop, wh_event_t *ev);

/* a periodic timer, first run one interval from now.  Its handler may
 * change t->interval (the delay to its next run); anywhere else,
 * wh_loop_timer_by() brings the next run forward. */
int wh_loop_timer(wh_loop_t *loop, wh_timer_t *t, wh_err_t *err);
/* t runs no later than delay_ms from now (a timer not added yet gets
 * its first run from wh_loop_timer()) */
void wh_loop_timer_by(wh_timer_t *t, int64_t delay_ms);
/* removes t; safe from any handler, t's own included (t may then be
 * freed before the handler returns) */
void wh_loop_timer_del(wh_loop_t *loop, wh_timer_t *t);

/* runs until loop->stop is set; -1 if epoll itself fails */
int wh_loop_run(wh_loop_t *loop, wh_err_t *err);
/* one turn, waiting at most max_ms: for what must wait on the loop
 * before wh_loop_run() (a cluster engine's loads at start) */
int wh_loop_once(wh_loop_t *loop, int max_ms, wh_err_t *err);

/* monotonic milliseconds */
int64_t wh_loop_now(void);

/* the longest turn (events, timers, the end of the turn) in µs since
 * the last call; starts over */
int64_t wh_loop_turn_max(wh_loop_t *loop);

#endif /* WH_LOOP_H */
