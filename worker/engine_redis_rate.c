/*
 * The rate coalescer's windows in Redis, so that `rate=` holds across
 * the nodes of a cluster (MQTT `shared=` hands each node some of a
 * key's values).  Per (workspace, key) a gate, wh:{ws}:rg:KEY, lives
 * as long as the window (PX), and the value held for the window's end
 * is wh:{ws}:rv:KEY.  One script per step, so two nodes never both
 * open a window, and a value sent at a window's start supersedes an
 * older held one.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_redis_internal.h"
#include "ingest.h"


typedef struct {
    wh_engine_rate_pt   cb;
    void               *ctx;
} wh_rrate_call_t;


/*
 * KEYS: gate, held.  ARGV: window ms, value (offer) or nothing (due).
 * Answers {rc, wait_ms[, value]} with engine.h's WH_ERATE_* codes.
 */
static const char  wh_lua_rate[] =
    "local w = tonumber(ARGV[1])\n"
    "if ARGV[2] then\n"
    "  if redis.call('SET', KEYS[1], '1', 'PX', w, 'NX') then\n"
    "    redis.call('DEL', KEYS[2])\n"
    "    return {0, 0}\n"
    "  end\n"
    "  local t = redis.call('PTTL', KEYS[1])\n"
    "  if t < 0 then t = 0 end\n"
    /* the nodes that held it may all die before asking for it */
    "  redis.call('SET', KEYS[2], ARGV[2], 'PX', t + 4 * w)\n"
    "  return {1, t}\n"
    "end\n"
    "local t = redis.call('PTTL', KEYS[1])\n"
    "if t > 0 then return {1, t} end\n"
    "local v = redis.call('GET', KEYS[2])\n"
    "if not v then return {2, 0} end\n"
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('SET', KEYS[1], '1', 'PX', w)\n"
    "return {0, 0, v}\n";

static wh_redis_script_t  wh_script_rate = WH_REDIS_SCRIPT(wh_lua_rate);


static void
wh_rrate_reply(void *data, redisReply *r, const char *why)
{
    int               rc;
    int64_t           wait;
    wh_str_t          value = { NULL, 0 };
    wh_rrate_call_t  *call = data;

    (void) why;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2
        || r->element[0]->type != REDIS_REPLY_INTEGER
        || r->element[1]->type != REDIS_REPLY_INTEGER
        || r->element[0]->integer < WH_ERATE_SEND
        || r->element[0]->integer > WH_ERATE_NONE)
    {
        call->cb(call->ctx, WH_ERATE_FAILED, 0, value);
        free(call);
        return;
    }

    rc = (int) r->element[0]->integer;
    wait = r->element[1]->integer;

    if (r->elements > 2 && r->element[2]->type == REDIS_REPLY_STRING) {
        value.data = r->element[2]->str;
        value.len = r->element[2]->len;
    }

    call->cb(call->ctx, rc, wait, value);
    free(call);
}


int
wh_rrate(wh_engine_t *e, wh_str_t ws, wh_str_t key, int64_t window_ms,
    wh_str_t value, wh_engine_rate_pt cb, void *ctx)
{
    int                 argc;
    char                gate[WH_WORKSPACE_MAX + WH_INGEST_KEY_MAX + 40];
    char                held[sizeof(gate)], w[24];
    size_t              lens[7];
    const char         *argv[7];
    wh_rrate_call_t    *call;
    wh_engine_redis_t  *re = (wh_engine_redis_t *) e;

    /* key: the rule's index, ':', the key (coalesce.c) */
    if (ws.len > WH_WORKSPACE_MAX || key.len > WH_INGEST_KEY_MAX + 16) {
        return -1;
    }

    call = malloc(sizeof(wh_rrate_call_t));

    if (call == NULL) {
        return -1;
    }

    call->cb = cb;
    call->ctx = ctx;

    argv[2] = "2";
    argv[3] = gate;
    argv[4] = held;
    argv[5] = w;
    lens[2] = 1;
    lens[3] = (size_t) snprintf(gate, sizeof(gate), "wh:{%.*s}:rg:",
                                (int) ws.len, ws.data);
    memcpy(held, gate, lens[3]);
    held[lens[3] - 2] = 'v';
    memcpy(gate + lens[3], key.data, key.len);
    memcpy(held + lens[3], key.data, key.len);
    lens[3] += key.len;
    lens[4] = lens[3];
    lens[5] = (size_t) snprintf(w, sizeof(w), "%" PRId64, window_ms);
    argc = 6;

    if (value.data != NULL) {
        argv[6] = value.data;
        lens[6] = value.len;
        argc = 7;
    }

    if (wh_redis_eval(re->redis, &wh_script_rate, wh_rrate_reply, call, argc,
                      argv, lens)
        != 0)
    {
        free(call);
        return -1;
    }

    return 0;
}
