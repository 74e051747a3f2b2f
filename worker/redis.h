/*
 * The connection to Redis for the Redis engine (DESIGN.md "Cluster
 * mode"), driven from wirehubd's own loop (loop.h) with hiredis's
 * asynchronous API: hiredis never blocks, and neither does anything
 * here (a Sentinel or a primary that does not answer is given up after
 * connect_timeout or command_timeout).
 *
 * Two connections go to the primary: one for commands (replies come in
 * the order commands were sent), one for pub/sub.  With sentinels the
 * primary's address is asked of them (SENTINEL get-master-addr-by-name,
 * one sentinel after the other), checked with ROLE, and followed: a
 * +switch-master the sentinel publishes, a lost connection or a primary
 * that turns out to be a replica (READONLY, ROLE) sends it back to the
 * sentinels, with backoff.  While there is no primary, commands are
 * refused (-1) and the owner hears down(); once one is reached (AUTH,
 * SELECT, PING, ROLE done) it hears up(), and the pub/sub connection
 * subscribes again to every name kept (wh_redis_subscribe).
 *
 * A command's callback runs exactly once: with the reply, or with
 * reply NULL and why (the connection was lost, the command timed out,
 * the connection is being closed).  A reply is only valid during the
 * call.  Timeouts and the reconnect backoff run on a loop timer of
 * the connection's own.  An idle primary is PINGed every second, so
 * one that hangs is found out within command_timeout.
 *
 * Addresses should be numeric: hiredis resolves a name with
 * getaddrinfo(), which blocks the loop.
 */

#ifndef WH_REDIS_H
#define WH_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "wh_link.h"
#include "log.h"
#include "loop.h"


#define WH_REDIS_MAX_SENTINELS  8

typedef struct {
    char      *host;                /* one Redis: host and port */
    int        port;
    char      *sentinel_host[WH_REDIS_MAX_SENTINELS];
    int        sentinel_port[WH_REDIS_MAX_SENTINELS];
    unsigned   nsentinels;          /* 0: no sentinels, host:port */
    char      *master;              /* the sentinels' name of it */
    char      *password;            /* read from password_file; NULL */
    int        db;
    int64_t    connect_timeout_ms;  /* default 1000 */
    int64_t    command_timeout_ms;  /* default 2000 */
    int64_t    reconnect_min_ms;    /* backoff: first delay (100) ... */
    int64_t    reconnect_max_ms;    /* ... doubling up to this (50 x
                                     * min); each delay drawn from the
                                     * upper half (jitter) */
} wh_redis_conf_t;

typedef enum {
    WH_REDIS_DOWN = 0,              /* no primary; waiting to retry */
    WH_REDIS_DISCOVERING,           /* asking the sentinels */
    WH_REDIS_CONNECTING,            /* connecting, AUTH, SELECT, ROLE */
    WH_REDIS_UP
} wh_redis_state_e;

typedef struct wh_redis_s  wh_redis_t;

/* what the owner hears; any may be NULL */
typedef struct {
    /* a primary is reached (again); the kept subscriptions are being
     * made anew (subscribed() follows for each) */
    void  (*up)(void *ctx);
    /* the primary is lost: every command in flight has failed */
    void  (*down)(void *ctx, const char *why);
    /* a pub/sub message on a channel subscribed to */
    void  (*message)(void *ctx, wh_str_t channel, wh_str_t payload);
    /* a SUBSCRIBE is in effect (its confirmation arrived) */
    void  (*subscribed)(void *ctx, wh_str_t channel);
} wh_redis_handler_t;

/*
 * A Lua script, sent by its SHA1 (EVALSHA), so that Redis neither
 * receives nor hashes its body on every call.  Its first call on a
 * connection (a new one may reach a new primary) goes with EVAL, which
 * leaves it in Redis's script cache, and the calls queued behind it
 * run after it; no SCRIPT LOAD, which some servers refuse.  A NOSCRIPT
 * all the same (SCRIPT FLUSH) fails that call alone (its callback gets
 * NULL, as for a lost one; it did not run), and the next call of every
 * script carries its body again; the connection and the calls beside
 * it stay, and no command is sent twice or out of order.  Scripts are
 * static (their body never changes); one may serve several
 * connections.
 */
typedef struct {
    const char  *body;
    char         sha[41];           /* hex, "" until first used */
    uint64_t     cache;             /* the script cache it went to */
} wh_redis_script_t;

#define WH_REDIS_SCRIPT(text)  { text, "", 0 }

/* reply NULL: failed, why says how */
typedef void (*wh_redis_reply_pt)(void *data, redisReply *reply,
    const char *why);

typedef struct {
    wh_redis_state_e  state;
    char              primary[64];  /* "host:port" reached last, or "" */
    uint64_t          failovers;    /* times a new primary was followed */
    uint64_t          reconnects;   /* times the primary was reached */
    uint64_t          commands;     /* sent */
    uint64_t          failed;       /* callbacks called with NULL */
    uint64_t          timeouts;     /* connections given up: connect,
                                     * handshake or a command too slow */
    int64_t           down_since_ms;  /* wh_loop_now() when it went
                                     * down (or opened); 0 when up */
    unsigned          inflight;     /* commands awaiting replies */
} wh_redis_stats_t;


/* starts connecting on the loop's next turn (never blocks); conf is
 * copied; -1 with err if conf is unusable */
int wh_redis_open(wh_redis_t **out, wh_loop_t *loop,
    const wh_redis_conf_t *conf, const wh_redis_handler_t *h, void *ctx,
    wh_log_t *log, wh_err_t *err);
/* fails what is in flight (callbacks with NULL, why "closing"),
 * closes, frees.  From inside one of r's callbacks, the memory is freed
 * by r's timer on a later turn; otherwise at once, so call it outside
 * the loop's handling of a batch of events (from a timer, or after
 * wh_loop_run) lest an event of r still pending in the batch run */
void wh_redis_close(wh_redis_t *r);

int wh_redis_up(wh_redis_t *r);

/* queues a command on the command connection; -1 (the callback is not
 * called) when there is no primary or out of memory */
int wh_redis_command(wh_redis_t *r, wh_redis_reply_pt cb, void *data,
    int argc, const char **argv, const size_t *lens);

/* EVALSHA of script: argv[0] and argv[1] are the function's to fill
 * (the caller leaves them), numkeys and the rest follow; as
 * wh_redis_command() */
int wh_redis_eval(wh_redis_t *r, wh_redis_script_t *script,
    wh_redis_reply_pt cb, void *data, int argc, const char **argv,
    size_t *lens);

/* WAIT replicas timeout_ms, queued as wh_redis_command(): the reply
 * counts the replicas that have every write of the connection so far,
 * those queued before it included */
int wh_redis_wait(wh_redis_t *r, unsigned replicas, int64_t timeout_ms,
    wh_redis_reply_pt cb, void *data);

/* a call failed with this why met NOSCRIPT: it did not run, and the
 * next call of the script carries its body (a read may be made again) */
int wh_redis_why_noscript(const char *why);

/* pub/sub on the second connection; the names are kept and subscribed
 * again after every reconnect.  -1 out of memory */
int wh_redis_subscribe(wh_redis_t *r, wh_str_t channel);
int wh_redis_unsubscribe(wh_redis_t *r, wh_str_t channel);

void wh_redis_stats(wh_redis_t *r, wh_redis_stats_t *out);

const char *wh_redis_state_name(wh_redis_state_e state);

#endif /* WH_REDIS_H */
