/*
 * The epoll loop.  Timers are few and periodic, so a linear scan of a
 * small array is all the timer machinery needed.
 */

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"


#define WH_LOOP_EVENTS  256


int64_t
wh_loop_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int
wh_loop_init(wh_loop_t *loop, wh_err_t *err)
{
    memset(loop, 0, sizeof(wh_loop_t));

    loop->epfd = epoll_create1(EPOLL_CLOEXEC);

    if (loop->epfd == -1) {
        return wh_err(err, 500, "epoll_create1: %s", strerror(errno));
    }

    return 0;
}


void
wh_loop_free(wh_loop_t *loop)
{
    if (loop->epfd != -1) {
        close(loop->epfd);
        loop->epfd = -1;
    }
}


static int
wh_loop_ctl(wh_loop_t *loop, int op, wh_event_t *ev, uint32_t events,
    wh_err_t *err)
{
    struct epoll_event  ee;

    memset(&ee, 0, sizeof(ee));
    ee.events = events;
    ee.data.ptr = ev;

    if (epoll_ctl(loop->epfd, op, ev->fd, &ee) == -1) {
        return wh_err(err, 500, "epoll_ctl(%d, fd %d): %s", op, ev->fd,
                      strerror(errno));
    }

    return 0;
}


int
wh_loop_add(wh_loop_t *loop, wh_event_t *ev, uint32_t events,
    wh_err_t *err)
{
    return wh_loop_ctl(loop, EPOLL_CTL_ADD, ev, events, err);
}


int
wh_loop_mod(wh_loop_t *loop, wh_event_t *ev, uint32_t events,
    wh_err_t *err)
{
    return wh_loop_ctl(loop, EPOLL_CTL_MOD, ev, events, err);
}


void
wh_loop_del(wh_loop_t *loop, wh_event_t *ev)
{
    /* the fd is about to be closed, which removes it anyway */
    (void) epoll_ctl(loop->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
}


void
wh_loop_timer_by(wh_timer_t *t, int64_t delay_ms)
{
    int64_t  next;

    next = wh_loop_now() + delay_ms;

    if (t->next > next) {
        t->next = next;
    }
}


int
wh_loop_timer(wh_loop_t *loop, wh_timer_t *t, wh_err_t *err)
{
    int  i;

    if (t->interval <= 0) {
        return wh_err(err, 500, "cannot add a timer");
    }

    /* a slot a removed timer left first */
    for (i = 0; i < loop->ntimers && loop->timers[i] != NULL; i++) {
        /* void */
    }

    if (i == WH_LOOP_MAX_TIMERS) {
        return wh_err(err, 500, "cannot add a timer");
    }

    t->next = wh_loop_now() + t->interval;
    loop->timers[i] = t;

    if (i == loop->ntimers) {
        loop->ntimers++;
    }

    return 0;
}


void
wh_loop_timer_del(wh_loop_t *loop, wh_timer_t *t)
{
    int  i;

    /* the slot is emptied, not closed up: a scan running now keeps its
     * place */
    for (i = 0; i < loop->ntimers; i++) {
        if (loop->timers[i] == t) {
            loop->timers[i] = NULL;
        }
    }

    while (loop->ntimers > 0 && loop->timers[loop->ntimers - 1] == NULL) {
        loop->ntimers--;
    }
}


/* runs due timers; returns the ms until the next one */
static int
wh_loop_timers(wh_loop_t *loop)
{
    int          i;
    int64_t      now, wait = 1000;
    wh_timer_t  *t;

    now = wh_loop_now();

    for (i = 0; i < loop->ntimers; i++) {
        t = loop->timers[i];

        if (t == NULL) {
            continue;
        }

        if (t->next <= now) {
            t->handler(t);
            now = wh_loop_now();

            if (i >= loop->ntimers || loop->timers[i] != t) {
                /* removed (and maybe freed) by its handler */
                continue;
            }

            t->next = now + t->interval;
        }

        if (t->next - now < wait) {
            wait = t->next - now;
        }
    }

    return wait < 0 ? 0 : (int) wait;
}


static int64_t
wh_loop_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


int64_t
wh_loop_turn_max(wh_loop_t *loop)
{
    int64_t  max = loop->turn_max_us;

    loop->turn_max_us = 0;

    return max;
}


/* timers, one wait of at most max_ms (-1: until the next timer), the
 * events it brought; -1 with err if epoll fails */
static int
wh_loop_turn(wh_loop_t *loop, int max_ms, int64_t *start, wh_err_t *err)
{
    int                 i, n, timeout;
    int64_t             took;
    wh_event_t         *ev;
    struct epoll_event  events[WH_LOOP_EVENTS];

    timeout = wh_loop_timers(loop);

    if (max_ms >= 0 && max_ms < timeout) {
        timeout = max_ms;
    }

    if (loop->turn_end) {
        /* timers may have produced work */
        loop->turn_end(loop->turn_data);
    }

    /* a turn: from epoll's answer to the next wait */
    took = wh_loop_us() - *start;
    loop->turn_max_us = took > loop->turn_max_us ? took : loop->turn_max_us;

    n = epoll_wait(loop->epfd, events, WH_LOOP_EVENTS, timeout);
    *start = wh_loop_us();

    if (n == -1) {
        if (errno == EINTR) {
            return 0;
        }

        return wh_err(err, 500, "epoll_wait: %s", strerror(errno));
    }

    for (i = 0; i < n && !loop->stop; i++) {
        ev = events[i].data.ptr;
        ev->handler(ev, events[i].events);
    }

    if (loop->turn_end) {
        loop->turn_end(loop->turn_data);
    }

    return 0;
}


int
wh_loop_run(wh_loop_t *loop, wh_err_t *err)
{
    int64_t  start;

    start = wh_loop_us();

    while (!loop->stop) {
        if (wh_loop_turn(loop, -1, &start, err) != 0) {
            return -1;
        }
    }

    return 0;
}


int
wh_loop_once(wh_loop_t *loop, int max_ms, wh_err_t *err)
{
    int                  rc, stop;
    int64_t              start;
    wh_turn_handler_pt   turn_end;

    /* what waits here is not a turn of the daemon's: its end of turn
     * work (which may be what waits) does not run.  The drain after a
     * stop waits here too, and the events it waits for must run. */
    turn_end = loop->turn_end;
    loop->turn_end = NULL;
    stop = loop->stop;
    loop->stop = 0;
    start = wh_loop_us();
    rc = wh_loop_turn(loop, max_ms, &start, err);
    loop->turn_end = turn_end;
    loop->stop |= stop;

    return rc;
}
