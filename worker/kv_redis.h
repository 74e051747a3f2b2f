/*
 * The state space's key-value transactions (kv.h) in Redis, for the
 * Redis engine: optimistic, so that nothing blocks the loop and no
 * lock is held across nodes.
 *
 * A write runs its function against what was read so far.  A read not
 * fetched yet answers as if the key (or the rest of a range) were not
 * there, and the run is marked incomplete: when the function returns,
 * every read it missed is sent at once (pipelined), the write answers
 * WH_ENGINE_AGAIN, and the owner's wake() runs it again once they are
 * in.  A run that missed nothing is complete: its writes go to Redis
 * in one Lua script that first checks that nothing it read changed
 * since, then applies them: each key it got must hold what it got (or
 * still be absent), and each workspace a range of it read must be at
 * the version it read (a version per workspace, kept in Redis and
 * bumped by every commit), so that two nodes writing other keys of one
 * workspace do not refuse each other.  Reads made while the txn is
 * unchecked (kv.h: an op that writes nothing) are left out of those
 * checks.  The versions also make the reads of a run that only reads
 * of one moment: each round of reads ends with the version of every
 * workspace read so far, and one that moved reads all again.  A
 * conflict drops what was read and runs the write again from scratch;
 * a commit is answered after WAIT replicas_ack (sent right behind the
 * script, not after its reply), and the run that follows the wake gets
 * the result of the committed run without running again.
 *
 * Counters (the commands' seq) are reserved in runs, by a script call
 * of their own: two writes taking numbers never conflict over them.
 *
 * Keys (T: the workspace for a database keyed by workspace, "#DB" for
 * the others; workspace names never hold '#'):
 *
 *   wh:{T}:kv:DB   hash: key -> value
 *   wh:{T}:kz:DB   sorted set of the keys, every score 0 (the order of
 *                  ZRANGEBYLEX is memcmp's, as LMDB's)
 *   wh:s:ws:DB     sorted set of the workspaces DB has keys of (walks
 *                  across workspaces)
 *   wh:sv          hash: T -> version; "#w:DB" -> version of wh:s:ws:DB
 *
 * A commit touches several workspaces' keys: one Redis primary (with
 * replicas and Sentinel) holds them, not a Redis Cluster.
 */

#ifndef WH_KV_REDIS_H
#define WH_KV_REDIS_H

#include <stdint.h>

#include "kv.h"
#include "log.h"
#include "redis.h"


typedef struct wh_kvr_s  wh_kvr_t;

/* the write's function: 0, -1 with err, WH_ENGINE_AGAIN */
typedef int (*wh_kvr_txn_pt)(wh_kv_txn_t *t, void *ctx, wh_err_t *err);

typedef struct {
    unsigned    replicas_ack;       /* WAIT for that many replicas */
    int64_t     ack_timeout_ms;
    /* what answered WH_ENGINE_AGAIN may run again */
    void      (*wake)(void *ctx);
    void       *ctx;
} wh_kvr_conf_t;

typedef struct {
    uint64_t    commits;
    uint64_t    conflicts;          /* commits refused: a read changed */
    uint64_t    fetches;            /* reads sent */
    uint64_t    runs;               /* the function run */
} wh_kvr_stats_t;


int wh_kvr_open(wh_kvr_t **out, wh_redis_t *redis,
    const wh_kvr_conf_t *conf, wh_log_t *log, wh_err_t *err);
/* after wh_redis_close(): the replies it failed have come */
void wh_kvr_close(wh_kvr_t *k);

/* one write; 0 or fn's result, -1 with err (503 while Redis is down or
 * did not confirm), WH_ENGINE_AGAIN */
int wh_kvr_write(wh_kvr_t *k, wh_kvr_txn_pt fn, void *ctx, wh_err_t *err);

void wh_kvr_stats(wh_kvr_t *k, wh_kvr_stats_t *out);

#endif /* WH_KV_REDIS_H */
