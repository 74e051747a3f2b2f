/*
 * Name resolution that never blocks the loop: glibc's getaddrinfo_a
 * runs the lookup on a thread of its own, whose notification writes the
 * request's address into a pipe the loop reads.  A cancelled request
 * whose lookup is still running is freed when the notification comes.
 */

#ifndef WH_RESOLVE_H
#define WH_RESOLVE_H

#include <netdb.h>

#include "log.h"
#include "loop.h"


typedef struct wh_resolve_s  wh_resolve_t;

/* the lookup ended: res (freed by the callee with freeaddrinfo) or a
 * getaddrinfo error code in rc */
typedef void (*wh_resolve_done_pt)(void *ctx, struct addrinfo *res,
    int rc);

typedef struct {
    wh_loop_t    *loop;
    int           wfd;          /* the notifications' end; -1: none */
    wh_event_t    ev;           /* the loop's end */
    unsigned      pending;      /* lookups not ended yet */
} wh_resolver_t;


int wh_resolver_init(wh_resolver_t *r, wh_loop_t *loop, wh_err_t *err);
/* at exit: lookups still running are left to the process's end */
void wh_resolver_free(wh_resolver_t *r);

/* starts looking up host (TCP, any family); done is called from the
 * loop, never from this call; NULL with err */
wh_resolve_t *wh_resolve_start(wh_resolver_t *r, const char *host,
    const char *port, wh_resolve_done_pt done, void *ctx, wh_err_t *err);

/* done will not be called */
void wh_resolve_cancel(wh_resolve_t *q);

#endif /* WH_RESOLVE_H */
