/*
 * Presence across the nodes of a cluster: each node writes the number
 * of sessions it holds per workspace into wh:{ws}:nodes (a hash, field
 * node_id, value "COUNT DEADLINE_MS"), again every third of node_lease
 * while it holds any, and reads the others' about once a second.  A
 * node that died stops counting once its deadline passed.  Nothing
 * waits for Redis: a handshake gets the sum as last read.
 *
 * Each node also renews its own lease, wh:node:ID (PX node_lease),
 * every third of it: what a node ran (a job's rollout, a run-time
 * source) is taken over by another once the key is gone.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_time.h"
#include "engine_redis_internal.h"


#define WH_RPRES_READ_MS  1000
#define WH_RNODES         "wh:nodes"
#define WH_RPRES_KEEP_MS  10000

typedef struct {
    uint64_t     here;              /* sessions of this node */
    uint64_t     others;            /* of the other live nodes, as read */
    int          dirty;             /* here changed since written */
    int64_t      written_ms;        /* monotonic */
    int64_t      read_ms;
    int64_t      asked_ms;          /* the last report (kept a while
                                     * after the last session left) */
    size_t       len;
    char         ws[];
} wh_rpres_t;

typedef struct {
    wh_engine_redis_t  *re;
    size_t              len;
    char                ws[];
} wh_rpres_read_t;


static void
wh_rpres_key(char *buf, size_t size, const char *ws, size_t len)
{
    snprintf(buf, size, "wh:{%.*s}:nodes", (int) len, ws);
}


uint64_t
wh_rpres_report(wh_engine_redis_t *re, wh_str_t ws, uint64_t here)
{
    wh_rpres_t  *p;

    p = wh_map_get(&re->presence, ws.data, ws.len);

    if (p == NULL) {
        p = calloc(1, sizeof(wh_rpres_t) + ws.len);

        if (p == NULL) {
            return 0;
        }

        memcpy(p->ws, ws.data, ws.len);
        p->len = ws.len;
        p->read_ms = -WH_RPRES_READ_MS;

        if (wh_map_put(&re->presence, ws.data, ws.len, p) == NULL) {
            free(p);
            return 0;
        }
    }

    if (p->here != here) {
        p->here = here;
        p->dirty = 1;
    }

    p->asked_ms = wh_loop_now();

    return p->others;
}


static void
wh_rpres_ignore(void *data, redisReply *reply, const char *why)
{
    (void) data;
    (void) reply;
    (void) why;
}


/* the others' live counts */
static void
wh_rpres_read_reply(void *data, redisReply *reply, const char *why)
{
    char               *end;
    size_t              i;
    int64_t             now = wh_time_ms();
    uint64_t            sum = 0, n;
    long long           deadline;
    wh_rpres_t         *p;
    wh_rpres_read_t    *rd = data;
    wh_engine_redis_t  *re = rd->re;
    const redisReply   *f, *v;

    (void) why;
    p = wh_map_get(&re->presence, rd->ws, rd->len);
    free(rd);

    if (p == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    for (i = 0; i + 1 < reply->elements; i += 2) {
        f = reply->element[i];
        v = reply->element[i + 1];

        if (f->str == NULL || v->str == NULL
            || strcmp(f->str, re->node_id) == 0)
        {
            continue;
        }

        n = strtoull(v->str, &end, 10);
        deadline = *end == ' ' ? strtoll(end + 1, NULL, 10) : 0;

        if (deadline > now) {
            sum += n;
        }
    }

    p->others = sum;
}


static void
wh_rpres_write(wh_engine_redis_t *re, wh_rpres_t *p, int64_t now)
{
    char         key[WH_WORKSPACE_MAX + 16], val[48], ttl[24];
    const char  *argv[4];

    wh_rpres_key(key, sizeof(key), p->ws, p->len);

    if (p->here == 0) {
        argv[0] = "HDEL";
        argv[1] = key;
        argv[2] = re->node_id;
        (void) wh_redis_command(re->redis, wh_rpres_ignore, NULL, 3, argv,
                                NULL);
    } else {
        snprintf(val, sizeof(val), "%" PRIu64 " %" PRId64, p->here,
                 wh_time_ms() + re->conf.node_lease_ms);
        argv[0] = "HSET";
        argv[1] = key;
        argv[2] = re->node_id;
        argv[3] = val;
        (void) wh_redis_command(re->redis, wh_rpres_ignore, NULL, 4, argv,
                                NULL);
        snprintf(ttl, sizeof(ttl), "%" PRId64, 3 * re->conf.node_lease_ms);
        argv[0] = "PEXPIRE";
        argv[2] = ttl;
        (void) wh_redis_command(re->redis, wh_rpres_ignore, NULL, 3, argv,
                                NULL);
    }

    p->dirty = 0;
    p->written_ms = now;
}


static void
wh_rpres_read(wh_engine_redis_t *re, wh_rpres_t *p, int64_t now)
{
    char              key[WH_WORKSPACE_MAX + 16];
    const char       *argv[2];
    wh_rpres_read_t  *rd;

    rd = malloc(sizeof(wh_rpres_read_t) + p->len);

    if (rd == NULL) {
        return;
    }

    rd->re = re;
    rd->len = p->len;
    memcpy(rd->ws, p->ws, p->len);
    wh_rpres_key(key, sizeof(key), p->ws, p->len);
    argv[0] = "HGETALL";
    argv[1] = key;

    if (wh_redis_command(re->redis, wh_rpres_read_reply, rd, 2, argv, NULL)
        != 0)
    {
        free(rd);
        return;
    }

    p->read_ms = now;
}


/*
 * The node's lease: wh:node:ID lives node_lease, and wh:nodes (a hash)
 * has when each node renewed its own last, by Redis's clock, so that
 * the nodes that are gone can be found without a scan.
 */
static const char  wh_lua_lease[] =
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "redis.call('HSET', KEYS[2], ARGV[1], "
    "t[1] * 1000 + math.floor(t[2] / 1000))\n"
    "return 1\n";

/* KEYS: wh:nodes.  ARGV: the lease, the window (ms).  The nodes whose
 * lease ended within the window; the long gone are forgotten. */
static const char  wh_lua_gone[] =
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local lease = tonumber(ARGV[1])\n"
    "local within = tonumber(ARGV[2])\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "local out = {}\n"
    "for i = 1, #all, 2 do\n"
    "  local age = now - tonumber(all[i + 1])\n"
    "  if age > lease + 2 * within then\n"
    "    redis.call('HDEL', KEYS[1], all[i])\n"
    "  elseif age > lease and age < lease + within\n"
    "      and redis.call('EXISTS', 'wh:node:' .. all[i]) == 0 then\n"
    "    out[#out + 1] = all[i]\n"
    "  end\n"
    "end\n"
    "return out\n";

static wh_redis_script_t  wh_script_lease = WH_REDIS_SCRIPT(wh_lua_lease);
static wh_redis_script_t  wh_script_gone = WH_REDIS_SCRIPT(wh_lua_gone);


static void
wh_rpres_lease(wh_engine_redis_t *re, int64_t now)
{
    char         key[sizeof("wh:node:") + WH_NODE_ID_MAX], ms[24];
    const char  *argv[7];

    if (re->lease_ms != 0 && now - re->lease_ms < re->conf.node_lease_ms / 3)
    {
        return;
    }

    snprintf(key, sizeof(key), "wh:node:%s", re->node_id);
    snprintf(ms, sizeof(ms), "%" PRId64, re->conf.node_lease_ms);
    argv[2] = "2";
    argv[3] = key;
    argv[4] = WH_RNODES;
    argv[5] = re->node_id;
    argv[6] = ms;

    if (wh_redis_eval(re->redis, &wh_script_lease, wh_rpres_ignore, NULL, 7,
                      argv, NULL)
        == 0)
    {
        re->lease_ms = now;
    }
}


typedef struct {
    wh_engine_gone_pt   cb;
    void               *ctx;
} wh_rpres_gone_t;


static void
wh_rpres_gone_reply(void *data, redisReply *r, const char *why)
{
    size_t            i, n = 0;
    wh_str_t          nodes[64];
    wh_rpres_gone_t  *g = data;

    (void) why;

    if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements && n < 64; i++) {
            if (r->element[i]->type == REDIS_REPLY_STRING) {
                nodes[n].data = r->element[i]->str;
                nodes[n].len = r->element[i]->len;
                n++;
            }
        }
    }

    g->cb(g->ctx, nodes, n);
    free(g);
}


int
wh_rpres_nodes_gone(wh_engine_t *e, int64_t within_ms, wh_engine_gone_pt cb,
    void *ctx)
{
    char                lease[24], within[24];
    const char         *argv[6];
    wh_rpres_gone_t    *g;
    wh_engine_redis_t  *re = (wh_engine_redis_t *) e;

    g = malloc(sizeof(wh_rpres_gone_t));

    if (g == NULL) {
        return -1;
    }

    g->cb = cb;
    g->ctx = ctx;
    snprintf(lease, sizeof(lease), "%" PRId64, re->conf.node_lease_ms);
    snprintf(within, sizeof(within), "%" PRId64, within_ms);
    argv[2] = "1";
    argv[3] = WH_RNODES;
    argv[4] = lease;
    argv[5] = within;

    if (wh_redis_eval(re->redis, &wh_script_gone, wh_rpres_gone_reply, g, 6,
                      argv, NULL)
        != 0)
    {
        free(g);
        return -1;
    }

    return 0;
}


void
wh_rpres_tick(wh_engine_redis_t *re, int64_t now)
{
    wh_rpres_t      *p;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    if (!wh_redis_up(re->redis)) {
        return;
    }

    wh_rpres_lease(re, now);

    while ((e = wh_map_next(&re->presence, &it)) != NULL) {
        p = e->value;

        if (p->dirty
            || (p->here && now - p->written_ms >= re->conf.node_lease_ms / 3))
        {
            wh_rpres_write(re, p, now);
        }

        if (p->here == 0 && !p->dirty
            && now - p->asked_ms > WH_RPRES_KEEP_MS)
        {
            wh_map_del(&re->presence, e->key, e->klen);
            free(p);
            continue;
        }

        if (now - p->read_ms >= WH_RPRES_READ_MS) {
            wh_rpres_read(re, p, now);
        }
    }
}


void
wh_rpres_free(wh_engine_redis_t *re)
{
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&re->presence, &it)) != NULL) {
        free(e->value);
    }

    wh_map_free(&re->presence);
}
