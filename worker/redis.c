/*
 * The connection to Redis (redis.h): hiredis 0.14's asynchronous
 * contexts on wirehubd's loop, one timer for every deadline.
 *
 * hiredis 0.14's ownership rules shape this file:
 * - hiredis frees a context itself when its connection fails or is
 *   lost: every pending callback with NULL, then ev.cleanup, then
 *   onDisconnect (only if it was connected; a failed connect hears
 *   onConnect(REDIS_ERR) instead).  ev.cleanup is the one signal on
 *   every path, so it is what forgets the context (conn->ac).
 * - redisAsyncFree() waits for its caller only inside a reply callback;
 *   from onConnect or onDisconnect it would free under hiredis's feet.
 *   So nothing is freed from inside hiredis: conn->depth says hiredis
 *   is on the stack, and a close asked for meanwhile (conn->dying) is
 *   done when it returns.  Nor is a connection reopened from inside
 *   hiredis: the old context's cleanup still has to run.
 * - redisAsyncDisconnect() waits for every reply, forever if the
 *   server hangs; redisAsyncFree() fails them at once: timeouts use it.
 * - 0.14 has no timeouts at all: the timer below has them.
 * - once SUBSCRIBE is sent, a pub/sub message goes to the oldest
 *   ordinary callback still pending: AUTH (and the sentinel's answer)
 *   are awaited before SUBSCRIBE is sent, and nothing ordinary after.
 * - redisAsyncConnect() resolves a host name with getaddrinfo(), which
 *   blocks: addresses are meant to be numeric (Sentinel gives IPs).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <openssl/sha.h>

#include "redis.h"


#define WH_REDIS_TICK_MS       1000   /* the longest sleep of the timer */
#define WH_REDIS_KEEPALIVE_MS  1000   /* PING an idle primary */
#define WH_REDIS_LOGGED        (WH_REDIS_MAX_SENTINELS + 4)

typedef enum {
    WH_REDIS_CONN_CMD = 0,
    WH_REDIS_CONN_SUB,
    WH_REDIS_CONN_SENTINEL
} wh_redis_kind_e;

typedef struct {
    wh_redis_t         *r;
    wh_redis_kind_e     kind;
    redisAsyncContext  *ac;         /* NULL: closed (cleanup has run) */
    wh_event_t          ev;
    uint32_t            events;     /* what epoll watches */
    unsigned            registered:1;
    unsigned            dying:1;    /* being closed: no new commands */
    unsigned            ready:1;    /* handshake done */
    unsigned            failed:1;   /* a handshake step failed */
    unsigned            broken:1;   /* epoll refused its socket */
    int                 depth;      /* hiredis is on the stack */
    int                 pending;    /* handshake replies awaited */
    int64_t             deadline;   /* the handshake ends by; 0 */
    char                addr[64];
    char                why[160];   /* why its callbacks fail */
} wh_redis_conn_t;

typedef struct wh_redis_cmd_s  wh_redis_cmd_t;

struct wh_redis_cmd_s {
    wh_redis_t         *r;
    wh_redis_cmd_t     *prev, *next;
    wh_redis_reply_pt   cb;
    void               *data;
    int64_t             sent;
    uint64_t            scripts;    /* r->scripts when sent */
};

struct wh_redis_s {
    wh_loop_t          *loop;
    wh_log_t           *log;
    wh_redis_conf_t     conf;       /* strings owned */
    wh_redis_handler_t  h;
    void               *ctx;
    wh_timer_t          timer;

    wh_redis_conn_t     cmd, sub, sentinel;
    wh_redis_cmd_t     *head, *tail;    /* in flight, oldest first */

    wh_str_t           *subs;       /* kept subscriptions, owned */
    unsigned            nsubs, subs_cap;

    wh_redis_state_e    state;
    wh_redis_stats_t    stats;
    char                host[48];   /* the primary tried or reached */
    int                 port;
    unsigned            sidx;       /* the sentinel asked */
    unsigned            stried;     /* sentinels failed this round */
    unsigned            attempts;   /* backoff of the primary */
    unsigned            sattempts;  /* backoff of the sentinel watch */
    int64_t             retry_at;   /* DOWN: the next attempt */
    int64_t             sentinel_at;  /* the sentinel (re)opens at */
    int64_t             last_sent;
    uint64_t            scripts;    /* the script cache the commands
                                     * reach: new with each command
                                     * connection and after a NOSCRIPT,
                                     * unique in the process */
    uint32_t            seed;
    /* the errors logged since the primary was last reached: a round
     * of sentinels fails with one message each */
    char                logged[WH_REDIS_LOGGED][160];
    unsigned            nlogged;
    int                 busy;       /* a handler of ours is running */
    unsigned            closing:1;
};


/* the script caches reached so far, by every wh_redis_t: a script's
 * cache names one of them */
static uint64_t  wh_redis_caches;

static void wh_redis_conn_fail(wh_redis_conn_t *c, const char *fmt, ...)
    WH_PRINTF(2, 3);


/* ------------------------------------------------------------- helpers */

const char *
wh_redis_state_name(wh_redis_state_e state)
{
    switch (state) {
    case WH_REDIS_DOWN:
        return "down";
    case WH_REDIS_DISCOVERING:
        return "discovering";
    case WH_REDIS_CONNECTING:
        return "connecting";
    case WH_REDIS_UP:
        return "up";
    }

    return "unknown";
}


/* the next delay of a backoff: doubling from reconnect_min up to
 * reconnect_max, each drawn from its upper half so that many nodes
 * that lost the same primary do not come back in step */
static int64_t
wh_redis_backoff(wh_redis_t *r, unsigned *attempts)
{
    int64_t   d;
    unsigned  i;

    d = r->conf.reconnect_min_ms;

    for (i = 0; i < *attempts && d < r->conf.reconnect_max_ms; i++) {
        d *= 2;
    }

    if (d > r->conf.reconnect_max_ms) {
        d = r->conf.reconnect_max_ms;
    }

    (*attempts)++;

    /* xorshift32: jitter needs no better randomness */
    r->seed ^= r->seed << 13;
    r->seed ^= r->seed >> 17;
    r->seed ^= r->seed << 5;

    return d / 2 + (int64_t) (r->seed % (uint32_t) (d / 2 + 1));
}


/* the timer runs at the latest at `at` */
static void
wh_redis_arm(wh_redis_t *r, int64_t at)
{
    if (at < r->timer.next) {
        r->timer.next = at;
    }
}


/* an error is logged once until the primary is reached again, not
 * once per retry */
static void
wh_redis_log_once(wh_redis_t *r, const char *msg)
{
    unsigned  i;

    for (i = 0; i < r->nlogged && i < WH_REDIS_LOGGED; i++) {
        if (strcmp(r->logged[i], msg) == 0) {
            return;
        }
    }

    snprintf(r->logged[r->nlogged++ % WH_REDIS_LOGGED],
             sizeof(r->logged[0]), "%s", msg);
    wh_log_warn(r->log, "redis: %s", msg);
}


/* -------------------------------------------------- the loop adapter */

static void
wh_redis_ev_set(wh_redis_conn_t *c, uint32_t events)
{
    wh_err_t  err;
    int       rc;

    if (c->registered && events == c->events) {
        return;
    }

    if (c->registered) {
        rc = wh_loop_mod(c->r->loop, &c->ev, events, &err);

    } else {
        rc = wh_loop_add(c->r->loop, &c->ev, events, &err);
        c->registered = (rc == 0);
    }

    if (rc != 0) {
        /* only a bug or no memory: the timer fails the connection (no
         * freeing it from inside hiredis) */
        wh_log_error(c->r->log, "redis: %s", err.msg);
        c->broken = 1;
        wh_redis_arm(c->r, 0);
        return;
    }

    c->events = events;
}


static void
wh_redis_ev_add_read(void *data)
{
    wh_redis_conn_t  *c = data;

    wh_redis_ev_set(c, c->events | EPOLLIN);
}


static void
wh_redis_ev_del_read(void *data)
{
    wh_redis_conn_t  *c = data;

    wh_redis_ev_set(c, c->events & ~(uint32_t) EPOLLIN);
}


static void
wh_redis_ev_add_write(void *data)
{
    wh_redis_conn_t  *c = data;

    wh_redis_ev_set(c, c->events | EPOLLOUT);
}


static void
wh_redis_ev_del_write(void *data)
{
    wh_redis_conn_t  *c = data;

    wh_redis_ev_set(c, c->events & ~(uint32_t) EPOLLOUT);
}


/* hiredis is done with the context (every path of freeing it) */
static void
wh_redis_ev_cleanup(void *data)
{
    wh_redis_conn_t  *c = data;

    if (c->registered) {
        wh_loop_del(c->r->loop, &c->ev);
    }

    c->registered = 0;
    c->events = 0;
    c->ac = NULL;
    c->ready = 0;
    c->deadline = 0;
}


/* ------------------------------------------------------- connections */

static void
wh_redis_conn_close(wh_redis_conn_t *c, const char *why)
{
    redisAsyncContext  *ac;

    c->ready = 0;
    c->deadline = 0;

    if (c->ac == NULL || c->dying) {
        return;
    }

    snprintf(c->why, sizeof(c->why), "%s", why);
    c->dying = 1;

    if (c->depth == 0) {
        /* pending callbacks get NULL, then the cleanup forgets ac */
        ac = c->ac;
        redisAsyncFree(ac);
    }
}


static void wh_redis_primary_fail(wh_redis_t *r, const char *why);
static void wh_redis_sentinel_fail(wh_redis_t *r, const char *why);


/* the connection failed or was lost: what it means depends on which */
static void
wh_redis_conn_lost(wh_redis_conn_t *c)
{
    if (c->kind == WH_REDIS_CONN_SENTINEL) {
        wh_redis_sentinel_fail(c->r, c->why);

    } else {
        wh_redis_primary_fail(c->r, c->why);
    }
}


static void
wh_redis_conn_fail(wh_redis_conn_t *c, const char *fmt, ...)
{
    va_list  args;
    char     why[160];

    va_start(args, fmt);
    vsnprintf(why, sizeof(why), fmt, args);
    va_end(args);

    wh_redis_conn_close(c, why);
    snprintf(c->why, sizeof(c->why), "%s", why);
    wh_redis_conn_lost(c);
}


static void wh_redis_connected(wh_redis_conn_t *c);


static void
wh_redis_on_connect(const redisAsyncContext *ac, int status)
{
    wh_redis_conn_t  *c = ac->data;

    if (c->dying) {
        return;
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns */
        c->dying = 1;
        snprintf(c->why, sizeof(c->why), "%s: %s", c->addr,
                 ac->errstr ? ac->errstr : "cannot connect");
        wh_redis_conn_lost(c);
        return;
    }

    wh_redis_connected(c);
}


static void
wh_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    wh_redis_conn_t  *c = ac->data;

    (void) status;

    if (c->dying) {
        /* we closed it */
        return;
    }

    c->dying = 1;
    snprintf(c->why, sizeof(c->why), "%s: connection lost: %s", c->addr,
             ac->err && ac->errstr ? ac->errstr : "closed");
    wh_redis_conn_lost(c);
}


static void
wh_redis_on_event(wh_event_t *ev, uint32_t events)
{
    wh_redis_conn_t    *c = ev->data;
    wh_redis_t         *r = c->r;
    redisAsyncContext  *ac = c->ac;

    if (ac == NULL) {
        /* an event of a context freed earlier in this turn */
        return;
    }

    r->busy++;
    c->depth++;

    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        && (c->events & EPOLLOUT))
    {
        redisAsyncHandleWrite(ac);
    }

    if (c->ac == ac && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        redisAsyncHandleRead(ac);
    }

    c->depth--;

    if (c->dying && c->ac != NULL) {
        /* closed from inside hiredis: done now that it returned */
        ac = c->ac;
        redisAsyncFree(ac);
    }

    if (--r->busy == 0 && r->closing) {
        /* freed by the timer: this turn may hold more events of ours */
        wh_redis_arm(r, 0);
    }
}


/* -1 with c->why when it failed at once (a refused loopback connect
 * does) */
static int
wh_redis_conn_open(wh_redis_conn_t *c, const char *host, int port)
{
    wh_redis_t         *r = c->r;
    redisAsyncContext  *ac;

    snprintf(c->addr, sizeof(c->addr), "%s:%d", host, port);
    c->why[0] = '\0';
    c->dying = 0;
    c->ready = 0;
    c->failed = 0;
    c->broken = 0;
    c->pending = 0;
    c->events = 0;
    c->registered = 0;

    ac = redisAsyncConnect(host, port);

    if (ac == NULL) {
        snprintf(c->why, sizeof(c->why), "%s: out of memory", c->addr);
        return -1;
    }

    if (ac->err) {
        snprintf(c->why, sizeof(c->why), "%s: %s", c->addr, ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }

    (void) redisEnableKeepAlive(&ac->c);

    if (c->kind == WH_REDIS_CONN_CMD) {
        r->scripts = ++wh_redis_caches;
    }

    c->ac = ac;
    ac->data = c;
    c->ev.fd = ac->c.fd;
    c->ev.handler = wh_redis_on_event;
    c->ev.data = c;

    ac->ev.data = c;
    ac->ev.addRead = wh_redis_ev_add_read;
    ac->ev.delRead = wh_redis_ev_del_read;
    ac->ev.addWrite = wh_redis_ev_add_write;
    ac->ev.delWrite = wh_redis_ev_del_write;
    ac->ev.cleanup = wh_redis_ev_cleanup;

    /* the hooks first: this one asks for the first write event */
    (void) redisAsyncSetConnectCallback(ac, wh_redis_on_connect);
    (void) redisAsyncSetDisconnectCallback(ac, wh_redis_on_disconnect);

    if (c->broken) {
        snprintf(c->why, sizeof(c->why), "%s: cannot watch the socket",
                 c->addr);
        wh_redis_conn_close(c, c->why);
        return -1;
    }

    c->deadline = wh_loop_now() + r->conf.connect_timeout_ms;
    wh_redis_arm(r, c->deadline);

    return 0;
}


/* ---------------------------------------------------- the handshake */

static int
wh_redis_send(wh_redis_conn_t *c, redisCallbackFn *fn, int argc,
    const char **argv, const size_t *lens)
{
    if (redisAsyncCommandArgv(c->ac, fn, c, argc, argv, lens)
        != REDIS_OK)
    {
        wh_redis_conn_fail(c, "%s: cannot send a command", c->addr);
        return -1;
    }

    return 0;
}


static void wh_redis_maybe_up(wh_redis_t *r);


/* AUTH, SELECT, PING, ROLE on the command connection, AUTH on the
 * pub/sub one: any error fails the primary; ROLE must say master */
static void
wh_redis_handshake_cb(redisAsyncContext *ac, void *reply_, void *data)
{
    wh_redis_conn_t  *c = data;
    redisReply       *reply = reply_;

    (void) ac;

    c->pending--;

    if (reply == NULL || c->failed || c->dying) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        c->failed = 1;
        wh_redis_conn_fail(c, "%s: %s", c->addr, reply->str);
        return;
    }

    if (c->kind == WH_REDIS_CONN_CMD && c->pending == 0) {
        /* the last one is ROLE */
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0
            || reply->element[0]->type != REDIS_REPLY_STRING
            || strcmp(reply->element[0]->str, "master") != 0)
        {
            c->failed = 1;
            wh_redis_conn_fail(c, "%s is not a primary (ROLE: %s)",
                c->addr, reply->type == REDIS_REPLY_ARRAY
                    && reply->elements > 0
                    && reply->element[0]->type == REDIS_REPLY_STRING
                    ? reply->element[0]->str : "?");
            return;
        }
    }

    if (c->pending == 0) {
        c->ready = 1;
        c->deadline = 0;
        wh_redis_maybe_up(c->r);
    }
}


static void
wh_redis_send_auth(wh_redis_conn_t *c)
{
    const char  *argv[2];
    size_t       lens[2];

    argv[0] = "AUTH";
    lens[0] = 4;
    argv[1] = c->r->conf.password;
    lens[1] = strlen(argv[1]);

    if (wh_redis_send(c, wh_redis_handshake_cb, 2, argv, lens) == 0) {
        c->pending++;
    }
}


static void wh_redis_sentinel_query_cb(redisAsyncContext *ac, void *reply,
    void *data);


static void
wh_redis_connected(wh_redis_conn_t *c)
{
    wh_redis_t  *r = c->r;
    char         db[16];
    const char  *argv[3];
    size_t       lens[3];

    if (c->kind == WH_REDIS_CONN_SENTINEL) {
        argv[0] = "SENTINEL";
        argv[1] = "get-master-addr-by-name";
        argv[2] = r->conf.master;
        lens[0] = 8;
        lens[1] = strlen(argv[1]);
        lens[2] = strlen(argv[2]);

        c->deadline = wh_loop_now() + r->conf.command_timeout_ms;
        wh_redis_arm(r, c->deadline);
        (void) wh_redis_send(c, wh_redis_sentinel_query_cb, 3, argv, lens);
        return;
    }

    if (r->conf.password != NULL) {
        wh_redis_send_auth(c);
    }

    if (c->kind == WH_REDIS_CONN_CMD && !c->dying) {
        if (r->conf.db != 0) {
            snprintf(db, sizeof(db), "%d", r->conf.db);
            argv[0] = "SELECT";
            lens[0] = 6;
            argv[1] = db;
            lens[1] = strlen(db);

            if (wh_redis_send(c, wh_redis_handshake_cb, 2, argv, lens)
                == 0)
            {
                c->pending++;
            }
        }

        /* PING answers -LOADING while an AOF is read back */
        argv[0] = "PING";
        lens[0] = 4;

        if (!c->dying
            && wh_redis_send(c, wh_redis_handshake_cb, 1, argv, lens) == 0)
        {
            c->pending++;
        }

        argv[0] = "ROLE";

        if (!c->dying
            && wh_redis_send(c, wh_redis_handshake_cb, 1, argv, lens) == 0)
        {
            c->pending++;
        }
    }

    if (!c->dying && c->pending == 0) {
        c->ready = 1;
        c->deadline = 0;
        wh_redis_maybe_up(r);
    }
}


/* ------------------------------------------------------------ pub/sub */

static void
wh_redis_sub_cb(redisAsyncContext *ac, void *reply_, void *data)
{
    wh_redis_conn_t  *c = data;
    wh_redis_t       *r = c->r;
    redisReply       *reply = reply_, **e;
    wh_str_t          channel, payload;

    (void) ac;

    if (reply == NULL || r->closing || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 3)
    {
        return;
    }

    e = reply->element;

    if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    channel.data = e[1]->str;
    channel.len = e[1]->len;

    if (strcmp(e[0]->str, "message") == 0
        && e[2]->type == REDIS_REPLY_STRING)
    {
        payload.data = e[2]->str;
        payload.len = e[2]->len;

        if (r->h.message) {
            r->h.message(r->ctx, channel, payload);
        }

    } else if (strcmp(e[0]->str, "subscribe") == 0) {
        if (r->h.subscribed) {
            r->h.subscribed(r->ctx, channel);
        }
    }
}


/* (UN)SUBSCRIBE names[0..n) on the pub/sub connection */
static void
wh_redis_sub_send(wh_redis_t *r, const char *verb, redisCallbackFn *fn,
    const wh_str_t *names, unsigned n)
{
    const char  **argv;
    size_t       *lens;
    unsigned      i;

    if (n == 0 || r->state != WH_REDIS_UP || r->sub.ac == NULL
        || r->sub.dying)
    {
        return;
    }

    argv = malloc((n + 1) * sizeof(char *));
    lens = malloc((n + 1) * sizeof(size_t));

    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        wh_redis_conn_fail(&r->sub, "%s: out of memory", r->sub.addr);
        return;
    }

    argv[0] = verb;
    lens[0] = strlen(verb);

    for (i = 0; i < n; i++) {
        argv[i + 1] = names[i].data;
        lens[i + 1] = names[i].len;
    }

    /* UNSUBSCRIBE has no callback in hiredis 0.14 (each channel's
     * answer goes to its SUBSCRIBE's); it fails when nothing is
     * subscribed, which is fine */
    if (redisAsyncCommandArgv(r->sub.ac, fn, &r->sub, (int) n + 1, argv,
                              lens)
        != REDIS_OK && fn != NULL)
    {
        wh_redis_conn_fail(&r->sub, "%s: cannot subscribe", r->sub.addr);
    }

    free(argv);
    free(lens);
}


static int
wh_redis_sub_find(wh_redis_t *r, wh_str_t channel)
{
    unsigned  i;

    for (i = 0; i < r->nsubs; i++) {
        if (r->subs[i].len == channel.len
            && memcmp(r->subs[i].data, channel.data, channel.len) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}


int
wh_redis_subscribe(wh_redis_t *r, wh_str_t channel)
{
    wh_str_t  *subs;
    char      *copy;
    unsigned   cap;

    if (wh_redis_sub_find(r, channel) >= 0) {
        return 0;
    }

    if (r->nsubs == r->subs_cap) {
        cap = r->subs_cap ? r->subs_cap * 2 : 16;
        subs = realloc(r->subs, cap * sizeof(wh_str_t));

        if (subs == NULL) {
            return -1;
        }

        r->subs = subs;
        r->subs_cap = cap;
    }

    copy = malloc(channel.len + 1);

    if (copy == NULL) {
        return -1;
    }

    memcpy(copy, channel.data, channel.len);
    copy[channel.len] = '\0';

    r->subs[r->nsubs].data = copy;
    r->subs[r->nsubs].len = channel.len;
    r->nsubs++;

    wh_redis_sub_send(r, "SUBSCRIBE", wh_redis_sub_cb,
                      &r->subs[r->nsubs - 1], 1);

    return 0;
}


int
wh_redis_unsubscribe(wh_redis_t *r, wh_str_t channel)
{
    int  i;

    i = wh_redis_sub_find(r, channel);

    if (i < 0) {
        return 0;
    }

    wh_redis_sub_send(r, "UNSUBSCRIBE", NULL, &r->subs[i], 1);

    free((char *) r->subs[i].data);
    r->subs[i] = r->subs[--r->nsubs];

    return 0;
}


/* ------------------------------------------------------------ primary */

static void
wh_redis_primary_connect(wh_redis_t *r, const char *host, int port)
{
    r->state = WH_REDIS_CONNECTING;
    snprintf(r->host, sizeof(r->host), "%s", host);
    r->port = port;

    if (r->cmd.ac != NULL || r->sub.ac != NULL) {
        /* still closing from inside hiredis: the timer tries again */
        r->state = WH_REDIS_DOWN;
        r->retry_at = 0;
        wh_redis_arm(r, 0);
        return;
    }

    if (wh_redis_conn_open(&r->cmd, host, port) != 0) {
        wh_redis_primary_fail(r, r->cmd.why);
        return;
    }

    if (wh_redis_conn_open(&r->sub, host, port) != 0) {
        wh_redis_primary_fail(r, r->sub.why);
    }
}


static void
wh_redis_maybe_up(wh_redis_t *r)
{
    char     addr[64];
    int64_t  now;

    if (r->state != WH_REDIS_CONNECTING || !r->cmd.ready || !r->sub.ready)
    {
        return;
    }

    now = wh_loop_now();
    snprintf(addr, sizeof(addr), "%s:%d", r->host, r->port);

    r->state = WH_REDIS_UP;
    r->attempts = 0;
    r->last_sent = now;
    r->stats.reconnects++;
    r->stats.down_since_ms = 0;

    if (r->stats.primary[0] != '\0' && strcmp(r->stats.primary, addr) != 0)
    {
        r->stats.failovers++;
        wh_log_warn(r->log, "redis: primary is now %s (was %s)", addr,
                    r->stats.primary);

    } else {
        wh_log_info(r->log, "redis: primary %s reached", addr);
    }

    memcpy(r->stats.primary, addr, sizeof(r->stats.primary));
    r->nlogged = 0;

    if (r->conf.nsentinels && r->sentinel.ac == NULL) {
        /* watch for +switch-master */
        r->sentinel_at = now;
        wh_redis_arm(r, now);
    }

    wh_redis_sub_send(r, "SUBSCRIBE", wh_redis_sub_cb, r->subs, r->nsubs);

    if (r->h.up && !r->closing) {
        r->h.up(r->ctx);
    }
}


/* the primary (or the way to it) failed: both connections go, commands
 * in flight fail, and the next attempt waits for the backoff */
static void
wh_redis_primary_fail(wh_redis_t *r, const char *why_)
{
    int      was_up;
    int64_t  now;
    char     why[160];

    if (r->state != WH_REDIS_UP && r->state != WH_REDIS_CONNECTING) {
        return;
    }

    /* why_ may be a connection's own, overwritten by the closes */
    snprintf(why, sizeof(why), "%s", why_);

    was_up = (r->state == WH_REDIS_UP);
    now = wh_loop_now();

    r->state = WH_REDIS_DOWN;
    wh_redis_conn_close(&r->cmd, why);
    wh_redis_conn_close(&r->sub, why);

    r->retry_at = now + wh_redis_backoff(r, &r->attempts);
    wh_redis_arm(r, r->retry_at);

    if (!was_up) {
        wh_redis_log_once(r, why);
        return;
    }

    r->stats.down_since_ms = now;
    r->nlogged = 0;
    snprintf(r->logged[r->nlogged++], sizeof(r->logged[0]), "%s", why);
    wh_log_warn(r->log, "redis: primary %s lost: %s", r->stats.primary, why);

    if (r->h.down && !r->closing) {
        r->h.down(r->ctx, why);
    }
}


/* ------------------------------------------------------------ sentinel */

/* a sentinel named the primary (its answer, or +switch-master) */
static void
wh_redis_sentinel_addr(wh_redis_t *r, const char *host, int port)
{
    char  why[160];

    if (r->state == WH_REDIS_UP || r->state == WH_REDIS_CONNECTING) {
        if (strcmp(host, r->host) == 0 && port == r->port) {
            return;
        }

        snprintf(why, sizeof(why), "sentinel %s: the primary is now %s:%d",
                 r->sentinel.addr, host, port);
        wh_redis_primary_fail(r, why);
    }

    r->attempts = 0;
    wh_redis_primary_connect(r, host, port);
}


static void
wh_redis_switch_cb(redisAsyncContext *ac, void *reply_, void *data)
{
    wh_redis_conn_t  *c = data;
    wh_redis_t       *r = c->r;
    redisReply       *reply = reply_;
    char              name[128], host[48];
    int               port;

    (void) ac;

    /* "message" "+switch-master" "NAME OLDIP OLDPORT NEWIP NEWPORT" */
    if (reply == NULL || r->closing || c->dying
        || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || strcmp(reply->element[0]->str, "message") != 0
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    if (sscanf(reply->element[2]->str, "%127s %*s %*s %47s %d", name, host,
               &port) != 3
        || strcmp(name, r->conf.master) != 0)
    {
        return;
    }

    wh_log_info(r->log, "redis: sentinel %s: +switch-master %s", c->addr,
                reply->element[2]->str);

    wh_redis_sentinel_addr(r, host, port);
}


static void
wh_redis_sentinel_query_cb(redisAsyncContext *ac, void *reply_, void *data)
{
    wh_redis_conn_t  *c = data;
    wh_redis_t       *r = c->r;
    redisReply       *reply = reply_;
    const char       *argv[2];
    size_t            lens[2];
    char              host[48];
    int               port;

    (void) ac;

    if (reply == NULL || c->dying) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        wh_redis_conn_fail(c, "sentinel %s: %s", c->addr, reply->str);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[0]->len >= sizeof(host))
    {
        wh_redis_conn_fail(c, "sentinel %s does not know master \"%s\"",
                           c->addr, r->conf.master);
        return;
    }

    memcpy(host, reply->element[0]->str, reply->element[0]->len + 1);
    port = atoi(reply->element[1]->str);

    c->deadline = 0;
    c->ready = 1;
    r->stried = 0;
    r->sattempts = 0;

    if (r->state == WH_REDIS_UP) {
        /* the watch is back: its next failure is news */
        r->nlogged = 0;
    }

    /* the answer is in: subscribing cannot steal it now */
    argv[0] = "SUBSCRIBE";
    lens[0] = 9;
    argv[1] = "+switch-master";
    lens[1] = 14;

    if (wh_redis_send(c, wh_redis_switch_cb, 2, argv, lens) != 0) {
        return;
    }

    wh_redis_sentinel_addr(r, host, port);
}


static void
wh_redis_sentinel_open(wh_redis_t *r)
{
    unsigned  i = r->sidx;

    if (wh_redis_conn_open(&r->sentinel, r->conf.sentinel_host[i],
                           r->conf.sentinel_port[i])
        != 0)
    {
        wh_redis_sentinel_fail(r, r->sentinel.why);
    }
}


/* the sentinel asked failed or was lost: the next one */
static void
wh_redis_sentinel_fail(wh_redis_t *r, const char *why)
{
    int64_t  now = wh_loop_now();

    wh_redis_log_once(r, why);

    r->sidx = (r->sidx + 1) % r->conf.nsentinels;

    if (r->state != WH_REDIS_DISCOVERING) {
        /* only the watch for +switch-master is lost */
        r->sentinel_at = now + wh_redis_backoff(r, &r->sattempts);
        wh_redis_arm(r, r->sentinel_at);
        return;
    }

    if (++r->stried < r->conf.nsentinels) {
        r->sentinel_at = now;
        wh_redis_arm(r, now);
        return;
    }

    /* a round without an answer */
    r->stried = 0;
    r->state = WH_REDIS_DOWN;
    r->retry_at = now + wh_redis_backoff(r, &r->attempts);
    wh_redis_arm(r, r->retry_at);
}


/* -------------------------------------------------------------- timer */

/* the next attempt after the backoff: ask a sentinel anew (closing the
 * one watched: a subscribed connection takes no other command), or
 * connect to the one Redis */
static void
wh_redis_attempt(wh_redis_t *r)
{
    if (r->conf.nsentinels == 0) {
        wh_redis_primary_connect(r, r->conf.host, r->conf.port);
        return;
    }

    r->state = WH_REDIS_DISCOVERING;
    wh_redis_conn_close(&r->sentinel, "asking again");

    if (r->sentinel.ac == NULL) {
        wh_redis_sentinel_open(r);
    }
}


static void
wh_redis_conn_expire(wh_redis_conn_t *c, int64_t now)
{
    if (c->ac == NULL || c->dying) {
        return;
    }

    if (c->broken) {
        wh_redis_conn_fail(c, "%s: cannot watch the socket", c->addr);
        return;
    }

    if (c->deadline == 0 || now < c->deadline) {
        return;
    }

    c->r->stats.timeouts++;
    wh_redis_conn_fail(c, "%s: timed out %s", c->addr,
                       c->ready ? "waiting for an answer"
                       : "connecting (connect, AUTH, SELECT, ROLE)");
}


static void wh_redis_free(wh_redis_t *r);
static void wh_redis_ping_cb(void *data, redisReply *reply,
    const char *why);


/* the earliest of everything that waits */
static int64_t
wh_redis_next_wake(wh_redis_t *r, int64_t now)
{
    int64_t           next = now + WH_REDIS_TICK_MS;
    wh_redis_conn_t  *conns[3];
    unsigned          i;

#define WH_REDIS_SOONER(t)  if ((t) != 0 && (t) < next) next = (t)

    conns[0] = &r->cmd;
    conns[1] = &r->sub;
    conns[2] = &r->sentinel;

    for (i = 0; i < 3; i++) {
        if (conns[i]->ac != NULL) {
            WH_REDIS_SOONER(conns[i]->deadline);
        }
    }

    if (r->head != NULL) {
        WH_REDIS_SOONER(r->head->sent + r->conf.command_timeout_ms);
    }

    if (r->state == WH_REDIS_DOWN) {
        WH_REDIS_SOONER(r->retry_at);
    }

    if (r->conf.nsentinels && r->state != WH_REDIS_DOWN
        && r->sentinel.ac == NULL)
    {
        WH_REDIS_SOONER(r->sentinel_at);
    }

    if (r->state == WH_REDIS_UP && r->head == NULL) {
        WH_REDIS_SOONER(r->last_sent + WH_REDIS_KEEPALIVE_MS);
    }

#undef WH_REDIS_SOONER

    return next;
}


static void
wh_redis_tick(wh_timer_t *t)
{
    wh_redis_t   *r = t->data;
    int64_t       now, next;
    const char   *ping = "PING";
    size_t        ping_len = 4;
    char          why[160];

    if (r->closing && r->busy == 0) {
        wh_redis_free(r);
        return;
    }

    r->busy++;
    now = wh_loop_now();

    wh_redis_conn_expire(&r->cmd, now);
    wh_redis_conn_expire(&r->sub, now);
    wh_redis_conn_expire(&r->sentinel, now);

    if (r->state == WH_REDIS_UP && r->head != NULL
        && now - r->head->sent >= r->conf.command_timeout_ms)
    {
        r->stats.timeouts++;
        snprintf(why, sizeof(why), "%s: a command got no answer in %lld ms",
                 r->cmd.addr, (long long) r->conf.command_timeout_ms);
        wh_redis_primary_fail(r, why);
    }

    if (r->state == WH_REDIS_UP && r->head == NULL
        && now - r->last_sent >= WH_REDIS_KEEPALIVE_MS)
    {
        /* a primary that hangs is found out when nothing else asks */
        (void) wh_redis_command(r, wh_redis_ping_cb, NULL, 1, &ping,
                                &ping_len);
    }

    if (r->state == WH_REDIS_DOWN && now >= r->retry_at) {
        wh_redis_attempt(r);
    }

    if (r->conf.nsentinels && r->state != WH_REDIS_DOWN
        && r->sentinel.ac == NULL && now >= r->sentinel_at)
    {
        wh_redis_sentinel_open(r);
    }

    r->busy--;

    if (r->closing) {
        t->interval = 1;
        return;
    }

    now = wh_loop_now();
    next = wh_redis_next_wake(r, now);
    t->interval = next > now ? next - now : 1;
}


static void
wh_redis_ping_cb(void *data, redisReply *reply, const char *why)
{
    (void) data;
    (void) reply;
    (void) why;
}


/* ----------------------------------------------------------- commands */

/* A NOSCRIPT means the server's script cache was emptied (SCRIPT
 * FLUSH): the call did not run, so it fails alone, as a lost one would.
 * The commands sent behind it stay (they ran, or fail on their own),
 * and the connection too, lest a publish that ran answer 503 because
 * a lease call beside it met the empty cache; a new scripts tag makes
 * the next call of every script carry its body again. */
static void
wh_redis_cmd_cb(redisAsyncContext *ac, void *reply_, void *data)
{
    wh_redis_cmd_t   *cmd = data;
    wh_redis_t       *r = cmd->r;
    wh_redis_conn_t  *c = ac->data;
    redisReply       *reply = reply_;
    const char       *why = NULL;
    int               readonly;
    char              noscript[128];

    if (cmd->prev) {
        cmd->prev->next = cmd->next;
    } else {
        r->head = cmd->next;
    }

    if (cmd->next) {
        cmd->next->prev = cmd->prev;
    } else {
        r->tail = cmd->prev;
    }

    r->stats.inflight--;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR
        && strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        if (cmd->scripts == r->scripts) {
            wh_log_warn(r->log, "redis: %s forgot the scripts loaded "
                        "(NOSCRIPT): they go with their bodies again",
                        c->addr);
            r->scripts = ++wh_redis_caches;
        }

        snprintf(noscript, sizeof(noscript),
                 "%s forgot a loaded script (NOSCRIPT)", c->addr);
        why = noscript;
        reply = NULL;
    }

    if (reply == NULL) {
        r->stats.failed++;
        why = why ? why : c->why[0] ? c->why
              : ac->err && ac->errstr ? ac->errstr : "connection lost";
    }

    readonly = reply != NULL && reply->type == REDIS_REPLY_ERROR
               && strncmp(reply->str, "READONLY", 8) == 0;

    cmd->cb(cmd->data, reply, why);
    free(cmd);

    if (readonly && !c->dying) {
        wh_redis_conn_fail(c, "%s is a replica now (READONLY)", c->addr);
    }
}


int
wh_redis_command(wh_redis_t *r, wh_redis_reply_pt cb, void *data,
    int argc, const char **argv, const size_t *lens)
{
    wh_redis_cmd_t  *cmd;

    if (r->closing || r->state != WH_REDIS_UP || r->cmd.ac == NULL
        || r->cmd.dying)
    {
        return -1;
    }

    cmd = malloc(sizeof(wh_redis_cmd_t));

    if (cmd == NULL) {
        return -1;
    }

    cmd->r = r;
    cmd->cb = cb;
    cmd->data = data;
    cmd->sent = wh_loop_now();
    cmd->scripts = r->scripts;
    cmd->next = NULL;
    cmd->prev = r->tail;

    if (redisAsyncCommandArgv(r->cmd.ac, wh_redis_cmd_cb, cmd, argc, argv,
                              lens)
        != REDIS_OK)
    {
        free(cmd);
        return -1;
    }

    if (r->tail) {
        r->tail->next = cmd;
    } else {
        r->head = cmd;
        wh_redis_arm(r, cmd->sent + r->conf.command_timeout_ms);
    }

    r->tail = cmd;
    r->last_sent = cmd->sent;
    r->stats.commands++;
    r->stats.inflight++;

    return 0;
}


int
wh_redis_eval(wh_redis_t *r, wh_redis_script_t *script,
    wh_redis_reply_pt cb, void *data, int argc, const char **argv,
    size_t *lens)
{
    int            rc;
    size_t         i;
    unsigned char  md[SHA_DIGEST_LENGTH];

    if (script->sha[0] == '\0') {
        (void) SHA1((const unsigned char *) script->body,
                    strlen(script->body), md);

        for (i = 0; i < SHA_DIGEST_LENGTH; i++) {
            script->sha[2 * i] = "0123456789abcdef"[md[i] >> 4];
            script->sha[2 * i + 1] = "0123456789abcdef"[md[i] & 0xf];
        }

        script->sha[2 * SHA_DIGEST_LENGTH] = '\0';
    }

    if (script->cache != r->scripts) {
        argv[0] = "EVAL";
        argv[1] = script->body;

        if (lens != NULL) {
            lens[0] = 4;
            lens[1] = strlen(script->body);
        }

        rc = wh_redis_command(r, cb, data, argc, argv, lens);

        if (rc == 0) {
            script->cache = r->scripts;
        }

        return rc;
    }

    argv[0] = "EVALSHA";
    argv[1] = script->sha;

    if (lens != NULL) {
        lens[0] = 7;
        lens[1] = 2 * SHA_DIGEST_LENGTH;
    }

    return wh_redis_command(r, cb, data, argc, argv, lens);
}


int
wh_redis_wait(wh_redis_t *r, unsigned replicas, int64_t timeout_ms,
    wh_redis_reply_pt cb, void *data)
{
    char         n[16], ms[24];
    const char  *argv[3];

    snprintf(n, sizeof(n), "%u", replicas);
    snprintf(ms, sizeof(ms), "%" PRId64, timeout_ms);
    argv[0] = "WAIT";
    argv[1] = n;
    argv[2] = ms;

    return wh_redis_command(r, cb, data, 3, argv, NULL);
}


int
wh_redis_why_noscript(const char *why)
{
    return why != NULL && strstr(why, "(NOSCRIPT)") != NULL;
}


/* ----------------------------------------------------- open and close */

static void
wh_redis_conf_free(wh_redis_conf_t *conf)
{
    unsigned  i;

    free(conf->host);
    free(conf->master);

    if (conf->password) {
        explicit_bzero(conf->password, strlen(conf->password));
        free(conf->password);
    }

    for (i = 0; i < conf->nsentinels; i++) {
        free(conf->sentinel_host[i]);
    }
}


static char *
wh_redis_dup(const char *s, int *oom)
{
    char  *d;

    if (s == NULL) {
        return NULL;
    }

    d = strdup(s);
    *oom |= (d == NULL);

    return d;
}


static int
wh_redis_conf_copy(wh_redis_conf_t *dst, const wh_redis_conf_t *src,
    wh_err_t *err)
{
    unsigned  i;
    int       oom = 0;

    *dst = *src;
    dst->host = NULL;
    dst->master = NULL;
    dst->password = NULL;
    dst->nsentinels = 0;

    if (src->nsentinels > WH_REDIS_MAX_SENTINELS) {
        return wh_err(err, 500, "redis: at most %d sentinels",
                      WH_REDIS_MAX_SENTINELS);
    }

    if (src->nsentinels == 0 && (src->host == NULL || src->port <= 0)) {
        return wh_err(err, 500, "redis: no host and port, no sentinels");
    }

    if (src->nsentinels && src->master == NULL) {
        return wh_err(err, 500, "redis: sentinels need a master name");
    }

    dst->host = wh_redis_dup(src->host, &oom);
    dst->master = wh_redis_dup(src->master, &oom);
    dst->password = wh_redis_dup(src->password, &oom);

    for (i = 0; i < src->nsentinels; i++) {
        dst->sentinel_host[i] = wh_redis_dup(src->sentinel_host[i], &oom);
        dst->nsentinels++;

        if (src->sentinel_host[i] == NULL || src->sentinel_port[i] <= 0) {
            return wh_err(err, 500, "redis: sentinel %u has no address", i);
        }
    }

    if (oom) {
        return wh_err(err, 500, "redis: out of memory");
    }

    if (dst->connect_timeout_ms <= 0) {
        dst->connect_timeout_ms = 1000;
    }

    if (dst->command_timeout_ms <= 0) {
        dst->command_timeout_ms = 2000;
    }

    if (dst->reconnect_min_ms <= 0) {
        dst->reconnect_min_ms = 100;
    }

    if (dst->reconnect_max_ms < dst->reconnect_min_ms) {
        dst->reconnect_max_ms = dst->reconnect_min_ms * 50;
    }

    return 0;
}


int
wh_redis_open(wh_redis_t **out, wh_loop_t *loop,
    const wh_redis_conf_t *conf, const wh_redis_handler_t *h, void *ctx,
    wh_log_t *log, wh_err_t *err)
{
    wh_redis_t  *r;

    r = calloc(1, sizeof(wh_redis_t));

    if (r == NULL) {
        return wh_err(err, 500, "redis: out of memory");
    }

    if (wh_redis_conf_copy(&r->conf, conf, err) != 0) {
        wh_redis_conf_free(&r->conf);
        free(r);
        return -1;
    }

    r->loop = loop;
    r->log = log;
    r->ctx = ctx;

    if (h) {
        r->h = *h;
    }

    r->cmd.r = r;
    r->cmd.kind = WH_REDIS_CONN_CMD;
    r->sub.r = r;
    r->sub.kind = WH_REDIS_CONN_SUB;
    r->sentinel.r = r;
    r->sentinel.kind = WH_REDIS_CONN_SENTINEL;

    r->seed = (uint32_t) wh_loop_now() ^ (uint32_t) getpid()
              ^ (uint32_t) (uintptr_t) r;
    r->seed |= 1;

    r->state = WH_REDIS_DOWN;
    r->stats.down_since_ms = wh_loop_now();

    r->timer.interval = WH_REDIS_TICK_MS;
    r->timer.handler = wh_redis_tick;
    r->timer.data = r;

    if (wh_loop_timer(loop, &r->timer, err) != 0) {
        wh_redis_conf_free(&r->conf);
        free(r);
        return -1;
    }

    /* the first attempt on the first turn of the loop: never here */
    r->retry_at = 0;
    r->timer.next = 0;

    *out = r;

    return 0;
}


static void
wh_redis_free(wh_redis_t *r)
{
    unsigned  i;

    wh_loop_timer_del(r->loop, &r->timer);

    for (i = 0; i < r->nsubs; i++) {
        free((char *) r->subs[i].data);
    }

    free(r->subs);
    wh_redis_conf_free(&r->conf);
    free(r);
}


void
wh_redis_close(wh_redis_t *r)
{
    if (r == NULL) {
        return;
    }

    if (!r->closing) {
        r->closing = 1;
        r->state = WH_REDIS_DOWN;
        wh_redis_conn_close(&r->cmd, "closing");
        wh_redis_conn_close(&r->sub, "closing");
        wh_redis_conn_close(&r->sentinel, "closing");
    }

    if (r->busy == 0 && r->cmd.ac == NULL && r->sub.ac == NULL
        && r->sentinel.ac == NULL)
    {
        wh_redis_free(r);
        return;
    }

    /* called from a callback of ours: the timer frees it, after this
     * turn's events */
    wh_redis_arm(r, 0);
}


int
wh_redis_up(wh_redis_t *r)
{
    return r->state == WH_REDIS_UP;
}


void
wh_redis_stats(wh_redis_t *r, wh_redis_stats_t *out)
{
    *out = r->stats;
    out->state = r->state;
}
