/*
 * Asynchronous name resolution (resolve.h).  The notification thread
 * only writes a pointer into a pipe (an atomic write below PIPE_BUF);
 * everything else, the callback included, runs on the loop.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "resolve.h"


#define WH_RESOLVE_HOST_MAX  255

struct wh_resolve_s {
    struct gaicb         gai;
    struct addrinfo      hints;
    struct sigevent      sev;
    wh_resolver_t       *r;
    wh_resolve_done_pt   done;      /* NULL: cancelled */
    void                *ctx;
    int                  wfd;
    char                 host[WH_RESOLVE_HOST_MAX + 1];
    char                 port[8];
};


/* on glibc's notification thread */
static void
wh_resolve_notify(union sigval v)
{
    wh_resolve_t  *q = v.sival_ptr;
    ssize_t        n;

    do {
        n = write(q->wfd, &q, sizeof(q));
    } while (n == -1 && errno == EINTR);
}


static void
wh_resolve_end(wh_resolver_t *r, wh_resolve_t *q)
{
    int  rc;

    r->pending--;
    rc = gai_error(&q->gai);

    if (q->done == NULL) {
        if (rc == 0) {
            freeaddrinfo(q->gai.ar_result);
        }

        free(q);
        return;
    }

    q->done(q->ctx, rc == 0 ? q->gai.ar_result : NULL, rc);
    free(q);
}


static void
wh_resolver_read(wh_event_t *ev, uint32_t events)
{
    ssize_t         n;
    wh_resolve_t   *q;
    wh_resolver_t  *r = ev->data;

    (void) events;

    for ( ;; ) {
        n = read(ev->fd, &q, sizeof(q));

        if (n != (ssize_t) sizeof(q)) {
            return;
        }

        wh_resolve_end(r, q);
    }
}


int
wh_resolver_init(wh_resolver_t *r, wh_loop_t *loop, wh_err_t *err)
{
    int  fds[2];

    memset(r, 0, sizeof(wh_resolver_t));
    r->loop = loop;
    r->wfd = -1;
    r->ev.fd = -1;

    /* the write end blocks: a notification is never lost to a full
     * pipe, it waits for the loop */
    if (pipe2(fds, O_CLOEXEC) == -1
        || fcntl(fds[0], F_SETFL, O_NONBLOCK) == -1)
    {
        return wh_err(err, 500, "resolver pipe: %s", strerror(errno));
    }

    r->wfd = fds[1];
    r->ev.fd = fds[0];
    r->ev.handler = wh_resolver_read;
    r->ev.data = r;

    return wh_loop_add(loop, &r->ev, EPOLLIN, err);
}


void
wh_resolver_free(wh_resolver_t *r)
{
    if (r->ev.fd != -1) {
        wh_loop_del(r->loop, &r->ev);
        close(r->ev.fd);
        r->ev.fd = -1;
    }

    /* a lookup still running writes into a closed pipe: EPIPE, and
     * SIGPIPE is ignored; its memory goes with the process */
    if (r->wfd != -1 && r->pending == 0) {
        close(r->wfd);
        r->wfd = -1;
    }
}


wh_resolve_t *
wh_resolve_start(wh_resolver_t *r, const char *host, const char *port,
    wh_resolve_done_pt done, void *ctx, wh_err_t *err)
{
    int                rc;
    wh_resolve_t      *q;
    struct gaicb      *list[1];

    if (strlen(host) > WH_RESOLVE_HOST_MAX || strlen(port) >= 8) {
        wh_err(err, 400, "host name too long");
        return NULL;
    }

    q = calloc(1, sizeof(wh_resolve_t));

    if (q == NULL) {
        wh_err(err, 503, "out of memory");
        return NULL;
    }

    strcpy(q->host, host);
    strcpy(q->port, port);
    q->r = r;
    q->done = done;
    q->ctx = ctx;
    q->wfd = r->wfd;
    q->hints.ai_family = AF_UNSPEC;
    q->hints.ai_socktype = SOCK_STREAM;
    q->hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    q->gai.ar_name = q->host;
    q->gai.ar_service = q->port;
    q->gai.ar_request = &q->hints;
    q->sev.sigev_notify = SIGEV_THREAD;
    q->sev.sigev_notify_function = wh_resolve_notify;
    q->sev.sigev_value.sival_ptr = q;
    list[0] = &q->gai;

    rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &q->sev);

    if (rc != 0) {
        wh_err(err, 503, "getaddrinfo_a: %s", gai_strerror(rc));
        free(q);
        return NULL;
    }

    r->pending++;

    return q;
}


void
wh_resolve_cancel(wh_resolve_t *q)
{
    /* no gai_cancel(): the lookup runs to its end and its notification
     * frees it, which is simpler than telling whether one will come */
    q->done = NULL;
}
