/*
 * The state space's transactions in Redis (kv_redis.h says how).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "kv_redis.h"
#include "map.h"


/* entries a range read fetches at once: the first of a scan, then
 * twice as many each time the scan goes on past what was fetched, up to
 * the last, so that a scan of N entries (each page run again from
 * scratch) costs log N runs, not N / 32, and a scan that wants a few
 * entries fetches a few */
#define WH_KVR_PAGE     32
#define WH_KVR_PAGE_MAX 4096
/* a workspace, or "#" and the name of a database not keyed by one,
 * with the "wh:{}:kz:" and the name of a database around it */
#define WH_KVR_KEY_MAX  (WH_WORKSPACE_MAX + 32)


/*
 * A get is a plain HGET, not a script: a script costs Redis some 15 us a
 * call against 1 for HGET, and a command batch reads a dozen keys per
 * command.  The reads of a tag are one moment as a seqlock's are: on the
 * one connection, an HGET of the tag's version in wh:sv goes before its
 * first get of each round of reads and another after the last; every
 * answer must agree (else the reads are stale and made again), and a
 * commit checks that version once more.
 *
 * A range within one tag is plain commands too: a ZRANGEBYLEX in the
 * round, then, once its keys are in, an HMGET of them followed by one
 * more HGET of the version.  The range script cost Redis 25 us a call;
 * in a cluster each command's delivery reads its client's open commands
 * two or three times.  Only a walk across the workspaces (tag "") needs
 * the script, which lists them as it goes.
 */

/*
 * ARGV: db, tag (the one workspace, or "#" and the db, whose keys are
 * read; "": a walk across the workspaces), direction (1/-1), from and
 * to (ZRANGEBYLEX's min and max, ZREVRANGEBYLEX's max and min: "-",
 * "+", "[key", "(key"), limit.
 * -> { ntags, tag, version, ..., exhausted (1/0), key, value, ... }
 * The versions are those of every workspace whose keys were looked at
 * and, in a walk, of the list of workspaces.
 */
static const char  wh_kvr_lua_range[] =
    "local db, tag, dir = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local from, to, limit = ARGV[4], ARGV[5], tonumber(ARGV[6])\n"
    "local tags, ents = {}, {}\n"
    "local zr = dir > 0 and 'ZRANGEBYLEX' or 'ZREVRANGEBYLEX'\n"
    "local function ver(t)\n"
    "  tags[#tags + 1] = t\n"
    "  tags[#tags + 1] = redis.call('HGET', 'wh:sv', t) or '0'\n"
    "end\n"
    "local function scan(t)\n"
    "  local ks = redis.call(zr, 'wh:{' .. t .. '}:kz:' .. db, from, to,\n"
    "                        'LIMIT', 0, limit - #ents / 2)\n"
    "  if #ks > 0 then\n"
    "    local vs = redis.call('HMGET', 'wh:{' .. t .. '}:kv:' .. db,\n"
    "                          unpack(ks))\n"
    "    for i = 1, #ks do\n"
    "      ents[#ents + 1] = ks[i]\n"
    "      ents[#ents + 1] = vs[i] or ''\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function wsof(b)\n"
    "  if b == '-' or b == '+' then return b end\n"
    "  local k = string.sub(b, 2)\n"
    "  local z = string.find(k, '\\0', 1, true)\n"
    "  return '[' .. (z and string.sub(k, 1, z - 1) or k)\n"
    "end\n"
    "if tag ~= '' then\n"
    "  ver(tag)\n"
    "  scan(tag)\n"
    "else\n"
    "  local wz, wfrom, wto = 'wh:s:ws:' .. db, wsof(from), wsof(to)\n"
    "  ver('#w:' .. db)\n"
    "  while #ents / 2 < limit do\n"
    "    local wss = redis.call(zr, wz, wfrom, wto, 'LIMIT', 0, 64)\n"
    "    for _, w in ipairs(wss) do\n"
    "      if #ents / 2 >= limit then break end\n"
    "      ver(w)\n"
    "      scan(w)\n"
    "    end\n"
    "    if #wss < 64 then break end\n"
    "    wfrom = '(' .. wss[#wss]\n"
    "  end\n"
    "end\n"
    "local out = { #tags / 2 }\n"
    "for _, x in ipairs(tags) do out[#out + 1] = x end\n"
    "out[#out + 1] = (#ents / 2 < limit) and 1 or 0\n"
    "for _, x in ipairs(ents) do out[#out + 1] = x end\n"
    "return out\n";

/*
 * ARGV: nchecks, (tag, version) x nchecks, nkeys, (db, tag, key, "1"
 * and the value read or "0" and "" for a key read as absent) x nkeys,
 * then per write: "P", db, tag, key, value or "D", db, tag, key.  -> 1
 * applied, 0 a version or a key read changed (nothing applied)
 */
static const char  wh_kvr_lua_commit[] =
    "local n, i = tonumber(ARGV[1]), 2\n"
    "for j = 1, n do\n"
    "  if (redis.call('HGET', 'wh:sv', ARGV[i]) or '0') ~= ARGV[i + 1]\n"
    "  then return 0 end\n"
    "  i = i + 2\n"
    "end\n"
    "n, i = tonumber(ARGV[i]), i + 1\n"
    "for j = 1, n do\n"
    "  local v = redis.call('HGET', 'wh:{' .. ARGV[i + 1] .. '}:kv:'\n"
    "                       .. ARGV[i], ARGV[i + 2])\n"
    "  if ARGV[i + 3] == '1' then\n"
    "    if v ~= ARGV[i + 4] then return 0 end\n"
    "  elseif v then return 0 end\n"
    "  i = i + 5\n"
    "end\n"
    /* the writes come sorted by database and key, so a workspace's
     * writes to a database are one run: one HSET and one ZADD (or HDEL
     * and ZREM) for each run, its workspace listed once per commit */
    "local touched, listed = {}, {}\n"
    "while i <= #ARGV do\n"
    "  local op, db, t = ARGV[i], ARGV[i + 1], ARGV[i + 2]\n"
    "  local hv, zv, nk = {}, {}, 0\n"
    "  repeat\n"
    "    nk = nk + 1\n"
    "    if op == 'P' then\n"
    "      hv[#hv + 1] = ARGV[i + 3]\n"
    "      hv[#hv + 1] = ARGV[i + 4]\n"
    "      zv[#zv + 1] = 0\n"
    "      zv[#zv + 1] = ARGV[i + 3]\n"
    "      i = i + 5\n"
    "    else\n"
    "      hv[#hv + 1] = ARGV[i + 3]\n"
    "      i = i + 4\n"
    "    end\n"
    "  until i > #ARGV or ARGV[i] ~= op or ARGV[i + 1] ~= db\n"
    "        or ARGV[i + 2] ~= t or nk >= 1000\n"
    "  local h = 'wh:{' .. t .. '}:kv:' .. db\n"
    "  local z = 'wh:{' .. t .. '}:kz:' .. db\n"
    "  if op == 'P' then\n"
    "    redis.call('HSET', h, unpack(hv))\n"
    "    redis.call('ZADD', z, unpack(zv))\n"
    "    listed[db] = listed[db] or {}\n"
    "    if string.sub(t, 1, 1) ~= '#' and not listed[db][t] then\n"
    "      listed[db][t] = true\n"
    "      if redis.call('ZADD', 'wh:s:ws:' .. db, 0, t) == 1 then\n"
    "        redis.call('HINCRBY', 'wh:sv', '#w:' .. db, 1)\n"
    "      end\n"
    "    end\n"
    "  else\n"
    "    redis.call('HDEL', h, unpack(hv))\n"
    "    redis.call('ZREM', z, unpack(hv))\n"
    "  end\n"
    "  touched[t] = true\n"
    "end\n"
    "for t, _ in pairs(touched) do redis.call('HINCRBY', 'wh:sv', t, 1) end\n"
    "return 1\n";

/*
 * ARGV: db (not keyed by workspace), tag, key, n: the counter under key
 * (a big-endian uint64, as the commits write it; exact to 2^53) plus n,
 * written back and returned.  The tag's version moves as a commit's
 * would, so that a write that read the counter (a wirehubd of before
 * the reservations) is refused and reads it again.
 */
static const char  wh_kvr_lua_reserve[] =
    "local db, t, key, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])\n"
    "local h = 'wh:{' .. t .. '}:kv:' .. db\n"
    "local v = redis.call('HGET', h, key)\n"
    "local c = 0\n"
    "if v and #v == 8 then\n"
    "  for i = 1, 8 do c = c * 256 + string.byte(v, i) end\n"
    "end\n"
    "c = c + n\n"
    "local b, x = {}, c\n"
    "for i = 8, 1, -1 do\n"
    "  b[i] = x % 256\n"
    "  x = math.floor(x / 256)\n"
    "end\n"
    "redis.call('HSET', h, key, string.char(unpack(b)))\n"
    "redis.call('ZADD', 'wh:{' .. t .. '}:kz:' .. db, 0, key)\n"
    "redis.call('HINCRBY', 'wh:sv', t, 1)\n"
    "return c\n";

static wh_redis_script_t  wh_kvr_script_range =
    WH_REDIS_SCRIPT(wh_kvr_lua_range);
static wh_redis_script_t  wh_kvr_script_reserve =
    WH_REDIS_SCRIPT(wh_kvr_lua_reserve);
static wh_redis_script_t  wh_kvr_script_commit =
    WH_REDIS_SCRIPT(wh_kvr_lua_commit);


typedef struct {
    char            *key;
    size_t           klen;
    char            *val;
    size_t           vlen;
} wh_kvr_ent_t;

enum { WH_KVR_FETCHING = 0, WH_KVR_READY, WH_KVR_FAILED };

/* a read of the write under way, fetched or being fetched */
typedef struct wh_kvr_read_s  wh_kvr_read_t;

struct wh_kvr_read_s {
    wh_kvr_read_t   *next;          /* the ranges of its database */
    wh_kvr_t        *k;
    int              state;
    int              range;
    wh_kv_db_e       db;
    int              dir;           /* a range: 1 ascending, -1 not */
    int              bounded;       /* 0: from the edge */
    int              incl;
    char            *key;           /* the get's key, the range's bound */
    size_t           klen;
    char            *pfx;           /* a range's prefix (kv.h) */
    size_t           plen;
    size_t           page;          /* a range's limit */
    int              found;         /* a get */
    uint64_t         reserve;       /* numbers to take; 0: not that */
    uint64_t         num;           /* the counter once they were */
    wh_kvr_ent_t     ent;
    wh_kvr_ent_t    *ents;          /* a range, in its order */
    size_t           n;
    int              exhausted;     /* nothing is past the last */
    uint64_t         gen;           /* the write it belongs to */
    uint64_t         run;           /* the last run that made it */
    uint64_t         checked;       /* the last run that made it not
                                     * unchecked (kv.h): the commit
                                     * checks it */
};

/* what a read asks: a get of key, or the range of a cursor from its
 * bound (bounded 0: from the edge) in direction dir, within the
 * cursor's prefix, page entries at most; or reserve numbers of the
 * counter under key, the run's nth reservation */
typedef struct {
    int              range;
    wh_kv_db_e       db;
    int              dir;
    int              bounded;
    int              incl;
    const char      *key;
    size_t           klen;
    const wh_kv_val_t *prefix;
    size_t           page;
    uint64_t         reserve;
    uint32_t         nth;
} wh_kvr_ask_t;

/* a write of the run under way */
typedef struct {
    wh_kv_db_e       db;
    int              deleted;
    char            *val;
    size_t           vlen;
    size_t           klen;
    char             key[];
} wh_kvr_ov_t;

typedef struct {
    wh_kvr_ov_t    **items;         /* sorted by key */
    size_t           n, cap;
} wh_kvr_ovlist_t;

typedef struct {
    wh_kv_txn_t      base;
    wh_kvr_t        *k;
    wh_map_t         ov;            /* db, key -> wh_kvr_ov_t */
    wh_kvr_ovlist_t  sorted[WH_KV_NDBS];
    int              missed;        /* a read was not fetched yet */
    uint32_t         reserves;      /* reservations asked by the run */
    int              failed;        /* a read failed */
    wh_err_t         ferr;
} wh_kvr_txn_t;

typedef struct {
    wh_kv_cur_t      base;
    wh_kvr_txn_t    *t;
    wh_kv_db_e       db;
    int              at;            /* on an entry */
    char            *key;           /* its key (the cursor's copy) */
    size_t           klen, cap;
    wh_kv_val_t      prefix;        /* kv.h's; data after the struct */
    wh_kv_val_t      end;           /* wh_kv_prefix_end(), len 0: none */
} wh_kvr_cur_t;

enum {
    WH_KVW_IDLE = 0,
    WH_KVW_FETCHING,                /* reads are out */
    WH_KVW_COMMITTING,              /* the commit (and WAIT) is out */
    WH_KVW_DONE                     /* result and err hold the answer */
};

struct wh_kvr_s {
    wh_redis_t      *redis;
    wh_log_t        *log;
    wh_kvr_conf_t    conf;
    int              state;
    wh_map_t         reads;         /* read key -> wh_kvr_read_t */
    wh_kvr_read_t   *ranges[WH_KV_NDBS];
    wh_map_t         versions;      /* tag -> its version, as read */
    wh_map_t         round;         /* tags got in this round of reads */
    int              stale;         /* two reads saw a tag at two
                                     * versions */
    int              reread;        /* a read did not run: all again */
    int              broken;        /* a version could not be read: the
                                     * next run fails */
    size_t           waiting;       /* replies not in yet */
    int              wait_sent;     /* the commit out has its WAIT */
    unsigned         waits_skip;    /* WAITs out behind commits that
                                     * failed or were refused: their
                                     * replies come first, and tell
                                     * nothing */
    uint64_t         gen;
    int              result;
    wh_err_t         err;
    wh_kvr_stats_t   stats;
};


static const wh_kv_ops_t  wh_kvr_ops;

/* the tags of the databases not keyed by workspace (kv.c's table says
 * which: each of them has its entry here, its name after "#", the
 * range script's '#' .. db) */
static const char  *wh_kvr_global[WH_KV_NDBS] = {
    [WH_KV_CMD_META] = "#cmd_meta",
    [WH_KV_CMD_ENDED] = "#cmd_ended"
};


/* ----------------------------------------------------------- names */


/* the tag of a key of db: its workspace, or "#" and the database's
 * name (its own version: a command's end, indexed in cmd_ended, does
 * not conflict with a read of the seq in cmd_meta) */
static wh_str_t
wh_kvr_tag(wh_kv_db_e db, const char *key, size_t klen)
{
    const char  *z;
    wh_str_t     t;

    if (!wh_kv_dbs[db].ws_keyed) {
        t.data = wh_kvr_global[db] ? wh_kvr_global[db] : "#";
        t.len = strlen(t.data);
        return t;
    }

    z = memchr(key, '\0', klen);
    t.data = key;
    t.len = z ? (size_t) (z - key) : klen;

    return t;
}


/* kind: "kv" the hash of db's keys and values, "kz" the sorted set of
 * its keys */
static void
wh_kvr_name(char *buf, wh_str_t tag, const char *kind, wh_kv_db_e db)
{
    snprintf(buf, WH_KVR_KEY_MAX, "wh:{%.*s}:%s:%s", (int) tag.len,
             tag.data, kind, wh_kv_dbs[db].name);
}


/* ----------------------------------------------------------- reads */


/* what the read fetched, gone: it can be fetched again */
static void
wh_kvr_read_clear(wh_kvr_read_t *r)
{
    size_t  i;

    for (i = 0; i < r->n; i++) {
        free(r->ents[i].key);
        free(r->ents[i].val);
    }

    free(r->ents);
    free(r->ent.val);
    r->ents = NULL;
    r->n = 0;
    r->exhausted = 0;
    r->ent.val = NULL;
    r->ent.vlen = 0;
    r->found = 0;
}


static void
wh_kvr_read_free(wh_kvr_read_t *r)
{
    wh_kvr_read_clear(r);
    free(r->key);
    free(r->pfx);
    free(r);
}


/* forgets the versions read: replies still to come are ignored (gen) */
static void
wh_kvr_forget_versions(wh_kvr_t *k)
{
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&k->versions, &it)) != NULL) {
        free(e->value);
    }

    wh_map_free(&k->versions);
    wh_map_free(&k->round);
    k->stale = 0;
    k->reread = 0;
    k->gen++;
}


/* forgets what was read: the next run reads anew */
static void
wh_kvr_forget(wh_kvr_t *k)
{
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&k->reads, &it)) != NULL) {
        wh_kvr_read_free(e->value);
    }

    wh_map_free(&k->reads);
    memset(k->ranges, 0, sizeof(k->ranges));
    wh_kvr_forget_versions(k);
}


static char *
wh_kvr_dup(const char *s, size_t len)
{
    char  *p;

    p = malloc(len + 1);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }

    return p;
}


/* a tag's version as a read saw it; a different one than before means
 * the reads are not of one moment */
static int
wh_kvr_version(wh_kvr_t *k, const char *tag, size_t tlen,
    const char *ver, size_t len)
{
    char  *seen, *v;

    seen = wh_map_get(&k->versions, tag, tlen);

    if (seen != NULL) {
        if (strlen(seen) != len || memcmp(seen, ver, len) != 0) {
            k->stale = 1;
        }

        return 0;
    }

    v = wh_kvr_dup(ver, len);

    if (v == NULL || wh_map_put(&k->versions, tag, tlen, v) == NULL) {
        free(v);
        return -1;
    }

    return 0;
}


static void
wh_kvr_wake(wh_kvr_t *k)
{
    if (k->conf.wake) {
        k->conf.wake(k->conf.ctx);
    }
}


typedef struct wh_kvr_fetch_s  wh_kvr_fetch_t;

/*
 * What a reply brings a read: -1 a reply it cannot take, 0 the read is
 * done, 1 it went on to a next step (sent with f's key, the read's).
 */
typedef int (*wh_kvr_got_pt)(wh_kvr_read_t *r, const redisReply *reply,
    const wh_kvr_fetch_t *f);

/* a reply awaited: the read's key in reads and, for a version, the tag
 * before it; a read's reply goes to got */
struct wh_kvr_fetch_s {
    wh_kvr_t        *k;
    uint64_t         gen;
    wh_kvr_got_pt    got;
    size_t           tlen;
    size_t           klen;
    char             key[];
};


static void
wh_kvr_replied(wh_kvr_t *k)
{
    if (k->waiting > 0 && --k->waiting == 0
        && k->state == WH_KVW_FETCHING)
    {
        k->state = WH_KVW_IDLE;
        wh_kvr_wake(k);
    }
}


/* a tag's version, for the get that asked first: what fails it fails
 * that get (and so the run) */
static void
wh_kvr_version_reply(void *data, redisReply *reply, const char *why)
{
    int               rc;
    wh_kvr_t         *k;
    wh_kvr_read_t    *r;
    wh_kvr_fetch_t   *f = data;

    k = f->k;

    if (f->gen == k->gen) {
        /* nil: no commit has touched the tag yet, as the commit sees it */
        rc = reply == NULL ? -1
             : reply->type == REDIS_REPLY_NIL
               ? wh_kvr_version(k, f->key, f->tlen, "0", 1)
             : reply->type == REDIS_REPLY_STRING
               ? wh_kvr_version(k, f->key, f->tlen, reply->str, reply->len)
             : -1;

        if (rc != 0) {
            wh_log_error(k->log, "redis: a state version read failed: %s",
                         reply == NULL ? why
                         : reply->type == REDIS_REPLY_ERROR ? reply->str
                         : "a bad reply");
            r = f->klen ? wh_map_get(&k->reads, f->key + f->tlen, f->klen)
                        : NULL;

            if (r != NULL) {
                r->state = WH_KVR_FAILED;
            }

            k->broken = 1;
        }
    }

    free(f);
    wh_kvr_replied(k);
}


static int wh_kvr_send_values(wh_kvr_t *k, wh_kvr_read_t *r,
    const char *rkey, size_t rlen);


static int
wh_kvr_got_get(wh_kvr_read_t *r, const redisReply *v,
    const wh_kvr_fetch_t *f)
{
    (void) f;

    if (v->type == REDIS_REPLY_NIL) {
        return 0;
    }

    if (v->type != REDIS_REPLY_STRING) {
        return -1;
    }

    r->ent.val = wh_kvr_dup(v->str, v->len);

    if (r->ent.val == NULL) {
        return -1;
    }

    r->ent.vlen = v->len;
    r->found = 1;

    return 0;
}


/* the range script's reply: the versions it read, then the entries */
static int
wh_kvr_got_range(wh_kvr_read_t *r, const redisReply *reply,
    const wh_kvr_fetch_t *f)
{
    size_t             i, ntags, at, n;
    const redisReply  *e, *ver;

    (void) f;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER)
    {
        return -1;
    }

    ntags = (size_t) reply->element[0]->integer;

    if (reply->elements < 2 + 2 * ntags
        || (reply->elements - 2 - 2 * ntags) % 2 != 0)
    {
        return -1;
    }

    for (i = 0; i < ntags; i++) {
        e = reply->element[1 + 2 * i];
        ver = reply->element[2 + 2 * i];

        if (e->type != REDIS_REPLY_STRING || ver->type != REDIS_REPLY_STRING
            || wh_kvr_version(r->k, e->str, e->len, ver->str, ver->len) != 0)
        {
            return -1;
        }
    }

    at = 1 + 2 * ntags;
    r->exhausted = reply->element[at]->integer == 1;
    n = (reply->elements - at - 1) / 2;

    if (n == 0) {
        return 0;
    }

    r->ents = calloc(n, sizeof(wh_kvr_ent_t));

    if (r->ents == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        e = reply->element[at + 1 + 2 * i];

        if (e->type != REDIS_REPLY_STRING
            || reply->element[at + 2 + 2 * i]->type != REDIS_REPLY_STRING)
        {
            return -1;
        }

        r->ents[i].key = wh_kvr_dup(e->str, e->len);
        r->ents[i].klen = e->len;
        e = reply->element[at + 2 + 2 * i];
        r->ents[i].val = wh_kvr_dup(e->str, e->len);
        r->ents[i].vlen = e->len;
        r->n++;

        if (r->ents[i].key == NULL || r->ents[i].val == NULL) {
            return -1;
        }
    }

    return 0;
}


/* a reservation: the counter's value once the numbers were taken */
static int
wh_kvr_got_reserve(wh_kvr_read_t *r, const redisReply *reply,
    const wh_kvr_fetch_t *f)
{
    (void) f;

    if (reply->type != REDIS_REPLY_INTEGER
        || (uint64_t) reply->integer < r->reserve)
    {
        return -1;
    }

    r->num = (uint64_t) reply->integer;
    r->found = 1;

    return 0;
}


/* a range in one tag, its first step: the keys (ZRANGEBYLEX), whose
 * values are asked for next */
static int
wh_kvr_got_keys(wh_kvr_read_t *r, const redisReply *reply,
    const wh_kvr_fetch_t *f)
{
    size_t             i;
    const redisReply  *e;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return -1;
    }

    r->exhausted = reply->elements < r->page;

    if (reply->elements == 0) {
        return 0;
    }

    r->ents = calloc(reply->elements, sizeof(wh_kvr_ent_t));

    if (r->ents == NULL) {
        return -1;
    }

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            return -1;
        }

        r->ents[i].key = wh_kvr_dup(e->str, e->len);
        r->ents[i].klen = e->len;

        if (r->ents[i].key == NULL) {
            return -1;
        }

        r->n++;
    }

    return wh_kvr_send_values(r->k, r, f->key, f->klen) == 0 ? 1 : -1;
}


/* its second step: the values (HMGET), in the keys' order; a key without
 * one reads as empty, as in the script (a commit sets both at once, and
 * the versions around them say whether one came in between) */
static int
wh_kvr_got_values(wh_kvr_read_t *r, const redisReply *reply,
    const wh_kvr_fetch_t *f)
{
    size_t             i;
    const redisReply  *e;

    (void) f;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != r->n) {
        return -1;
    }

    for (i = 0; i < r->n; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_NIL) {
            return -1;
        }

        r->ents[i].vlen = e->type == REDIS_REPLY_STRING ? e->len : 0;
        r->ents[i].val = wh_kvr_dup(e->type == REDIS_REPLY_STRING ? e->str
                                                                  : "",
                                    r->ents[i].vlen);

        if (r->ents[i].val == NULL) {
            return -1;
        }
    }

    return 0;
}


static void
wh_kvr_read_reply(void *data, redisReply *reply, const char *why)
{
    int              rc;
    wh_kvr_t        *k;
    wh_kvr_read_t   *r;
    wh_kvr_fetch_t  *f = data;

    k = f->k;
    r = f->gen == k->gen ? wh_map_get(&k->reads, f->key, f->klen) : NULL;

    if (r != NULL && r->state == WH_KVR_FETCHING) {
        if (reply == NULL && wh_redis_why_noscript(why)) {
            /* the script cache was emptied and the read did not run:
             * every read of the run is made again, the script's with
             * its body, rather than a request failing for it */
            r->state = WH_KVR_READY;
            k->reread = 1;

        } else if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            wh_log_error(k->log, "redis: a state read failed: %s",
                         reply ? reply->str : why);
            r->state = WH_KVR_FAILED;

        } else {
            rc = f->got(r, reply, f);

            if (rc < 0) {
                wh_log_error(k->log, "redis: a state read had a bad reply");
            }

            r->state = rc < 0 ? WH_KVR_FAILED
                       : rc == 0 ? WH_KVR_READY : WH_KVR_FETCHING;
        }
    }

    free(f);
    wh_kvr_replied(k);
}


/* the one tag a range reads, or "" for a walk across the workspaces:
 * a prefix that holds a workspace's "\0" keeps the read in that
 * workspace */
static wh_str_t
wh_kvr_range_tag(const wh_kvr_read_t *r)
{
    wh_str_t     tag;
    const char  *z;

    if (!wh_kv_dbs[r->db].ws_keyed) {
        return wh_kvr_tag(r->db, NULL, 0);
    }

    z = r->plen ? memchr(r->pfx, '\0', r->plen) : NULL;
    tag.data = z ? r->pfx : "";
    tag.len = z ? (size_t) (z - r->pfx) : 0;

    return tag;
}


/* a bound of the range script: "[key" or "(key" into buf */
static size_t
wh_kvr_spec(char *buf, char open, const void *key, size_t klen)
{
    buf[0] = open;
    /* wh_kvr_range_args() has the key where it goes */
    memmove(buf + 1, key, klen);

    return 1 + klen;
}


/*
 * The range script's tag, from and to for r into argv[1], [3] and [4]
 * (its ARGV, from db: the script's own numbers minus one; buf holds
 * the bounds: 3 * (1 + the longest of bound and prefix) bytes): the
 * read starts at its bound, or at the prefix's edge, and stops at the
 * prefix's other edge, so that it fetches no key the cursor cannot
 * see; the tag is wh_kvr_range_tag()'s.
 */
static void
wh_kvr_range_args(const wh_kvr_read_t *r, char *buf, const char **argv,
    size_t *lens)
{
    char         *p, *lo, *hi;
    size_t        lolen, hilen, elen;
    wh_str_t      tag;

    p = buf;
    lo = "-";
    lolen = 1;
    hi = "+";
    hilen = 1;

    if (r->plen > 0) {
        lo = p;
        lolen = wh_kvr_spec(p, '[', r->pfx, r->plen);
        p += lolen;
        elen = wh_kv_prefix_end(r->pfx, r->plen, p + 1);

        if (elen > 0) {
            hi = p;
            hilen = wh_kvr_spec(p, '(', p + 1, elen);
            p += hilen;
        }
    }

    if (r->bounded && r->dir > 0) {
        lo = p;
        lolen = wh_kvr_spec(p, r->incl ? '[' : '(', r->key, r->klen);

    } else if (r->bounded) {
        hi = p;
        hilen = wh_kvr_spec(p, r->incl ? '[' : '(', r->key, r->klen);
    }

    argv[3] = r->dir > 0 ? lo : hi;
    lens[3] = r->dir > 0 ? lolen : hilen;
    argv[4] = r->dir > 0 ? hi : lo;
    lens[4] = r->dir > 0 ? hilen : lolen;

    tag = wh_kvr_range_tag(r);
    argv[1] = tag.data;
    lens[1] = tag.len;
}


static wh_kvr_fetch_t *
wh_kvr_fetch(wh_kvr_t *k, wh_str_t tag, const char *rkey, size_t rlen,
    wh_kvr_got_pt got)
{
    wh_kvr_fetch_t  *f;

    f = malloc(sizeof(wh_kvr_fetch_t) + tag.len + rlen);

    if (f != NULL) {
        f->k = k;
        f->gen = k->gen;
        f->got = got;
        f->tlen = tag.len;
        f->klen = rlen;
        memcpy(f->key, tag.data, tag.len);

        if (rlen) {
            memcpy(f->key + tag.len, rkey, rlen);
        }
    }

    return f;
}


/* an HGET of the tag's version; rkey names the get that asked first
 * (NULL: the check after a round) */
static int
wh_kvr_send_version(wh_kvr_t *k, wh_str_t tag, const char *rkey,
    size_t rlen)
{
    size_t           lens[3];
    const char      *argv[3];
    wh_kvr_fetch_t  *f;

    f = wh_kvr_fetch(k, tag, rkey, rlen, NULL);

    if (f == NULL) {
        return -1;
    }

    argv[0] = "HGET";
    lens[0] = 4;
    argv[1] = "wh:sv";
    lens[1] = 5;
    argv[2] = tag.data;
    lens[2] = tag.len;

    if (wh_redis_command(k->redis, wh_kvr_version_reply, f, 3, argv, lens)
        != 0)
    {
        free(f);
        return -1;
    }

    k->waiting++;

    return 0;
}


/* before the round's first get of the tag: its version (the tag is
 * checked again after the round) */
static int
wh_kvr_ask_version(wh_kvr_t *k, wh_str_t tag, const char *rkey,
    size_t rlen)
{
    if (wh_map_get(&k->round, tag.data, tag.len) != NULL) {
        return 0;
    }

    if (wh_map_put(&k->round, tag.data, tag.len, k) == NULL) {
        return -1;
    }

    if (wh_kvr_send_version(k, tag, rkey, rlen) != 0) {
        wh_map_del(&k->round, tag.data, tag.len);
        return -1;
    }

    return 0;
}


/*
 * After a round of reads: the version of every tag read so far, in this
 * round or an earlier one, which must be the one read first
 * (wh_kvr_version() marks the reads stale if not).  An earlier round's
 * tags too: a run that reads workspace A, then B a round later, while
 * one commit changes both, would otherwise hold A before the commit and
 * B after it.
 */
static void
wh_kvr_check_tag(wh_kvr_t *k, const wh_map_entry_t *e)
{
    wh_str_t  tag;

    tag.data = (const char *) e->key;
    tag.len = e->klen;

    if (wh_kvr_send_version(k, tag, NULL, 0) != 0) {
        k->broken = 1;
    }
}


static void
wh_kvr_check_round(wh_kvr_t *k)
{
    wh_map_iter_t    it = { 0, NULL }, all = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&k->round, &it)) != NULL) {
        wh_kvr_check_tag(k, e);
    }

    while ((e = wh_map_next(&k->versions, &all)) != NULL) {
        if (wh_map_get(&k->round, e->key, e->klen) == NULL) {
            wh_kvr_check_tag(k, e);
        }
    }

    wh_map_free(&k->round);
}


/* sends the read: its entry in reads says FETCHING until the reply */
static int
wh_kvr_send(wh_kvr_t *k, wh_kvr_read_t *r, const char *rkey, size_t rlen)
{
    int                 rc;
    char                name[WH_KVR_KEY_MAX], dir[4], limit[24], *buf = NULL;
    size_t              lens[9], zlens[7];
    wh_str_t            tag, none = { "", 0 };
    const char         *argv[9], *zargv[7];
    wh_kvr_fetch_t     *f;

    f = wh_kvr_fetch(k, none, rkey, rlen, wh_kvr_got_get);

    if (f == NULL) {
        return -1;
    }

    if (!r->range && !r->reserve) {
        tag = wh_kvr_tag(r->db, r->key, r->klen);

        if (wh_kvr_ask_version(k, tag, rkey, rlen) != 0) {
            free(f);
            return -1;
        }

        wh_kvr_name(name, tag, "kv", r->db);
        argv[0] = "HGET";
        lens[0] = 4;
        argv[1] = name;
        lens[1] = strlen(name);
        argv[2] = r->key;
        lens[2] = r->klen;

        rc = wh_redis_command(k->redis, wh_kvr_read_reply, f, 3, argv, lens);

        goto sent;
    }

    if (r->reserve) {
        /* from argv[2]: numkeys, then the script's db, tag, key, n */
        tag = wh_kvr_tag(r->db, NULL, 0);
        snprintf(limit, sizeof(limit), "%" PRIu64, r->reserve);
        argv[2] = "0";
        lens[2] = 1;
        argv[3] = wh_kv_dbs[r->db].name;
        lens[3] = strlen(argv[3]);
        argv[4] = tag.data;
        lens[4] = tag.len;
        argv[5] = r->key;
        lens[5] = r->klen;
        argv[6] = limit;
        lens[6] = strlen(limit);
        f->got = wh_kvr_got_reserve;
        rc = wh_redis_eval(k->redis, &wh_kvr_script_reserve,
                           wh_kvr_read_reply, f, 7, argv, lens);

        goto sent;
    }

    buf = malloc(3 * (1 + (r->klen > r->plen ? r->klen : r->plen)));

    if (buf == NULL) {
        free(f);
        return -1;
    }

    /* from argv[3]: the script's db, tag, dir, from, to, limit */
    wh_kvr_range_args(r, buf, argv + 3, lens + 3);
    argv[3] = wh_kv_dbs[r->db].name;
    lens[3] = strlen(argv[3]);
    snprintf(dir, sizeof(dir), "%d", r->dir);
    argv[5] = dir;
    lens[5] = strlen(dir);
    snprintf(limit, sizeof(limit), "%zu", r->page);
    argv[8] = limit;
    lens[8] = strlen(limit);
    argv[2] = "0";
    lens[2] = 1;

    tag.data = argv[4];
    tag.len = lens[4];

    if (tag.len == 0) {
        f->got = wh_kvr_got_range;
        rc = wh_redis_eval(k->redis, &wh_kvr_script_range,
                           wh_kvr_read_reply, f, 9, argv, lens);
        goto sent;
    }

    /* in one tag: its keys, within the round's versions */
    if (wh_kvr_ask_version(k, tag, rkey, rlen) != 0) {
        free(buf);
        free(f);
        return -1;
    }

    wh_kvr_name(name, tag, "kz", r->db);
    zargv[0] = r->dir > 0 ? "ZRANGEBYLEX" : "ZREVRANGEBYLEX";
    zargv[1] = name;
    zargv[2] = argv[6];
    zargv[3] = argv[7];
    zargv[4] = "LIMIT";
    zargv[5] = "0";
    zargv[6] = limit;

    zlens[0] = strlen(zargv[0]);
    zlens[1] = strlen(name);
    zlens[2] = lens[6];
    zlens[3] = lens[7];
    zlens[4] = 5;
    zlens[5] = 1;
    zlens[6] = strlen(limit);

    f->got = wh_kvr_got_keys;
    rc = wh_redis_command(k->redis, wh_kvr_read_reply, f, 7, zargv, zlens);

sent:

    free(buf);

    if (rc != 0) {
        free(f);
        return -1;
    }

    k->waiting++;
    k->stats.fetches++;

    return 0;
}


/*
 * A range's second step, once its keys are in: their values, and the
 * tag's version after them, which must be the one the round began and
 * ended with (else the keys and the values may be of two moments, and
 * the reads are made again).
 */
static int
wh_kvr_send_values(wh_kvr_t *k, wh_kvr_read_t *r, const char *rkey,
    size_t rlen)
{
    int              rc;
    char             name[WH_KVR_KEY_MAX];
    size_t           i, *lens;
    wh_str_t         tag, none = { "", 0 };
    const char     **argv;
    wh_kvr_fetch_t  *f;

    tag = wh_kvr_range_tag(r);
    f = wh_kvr_fetch(k, none, rkey, rlen, wh_kvr_got_values);
    argv = malloc((2 + r->n) * sizeof(char *));
    lens = malloc((2 + r->n) * sizeof(size_t));

    if (f == NULL || argv == NULL || lens == NULL) {
        free(f);
        free(argv);
        free(lens);
        return -1;
    }

    wh_kvr_name(name, tag, "kv", r->db);
    argv[0] = "HMGET";
    lens[0] = 5;
    argv[1] = name;
    lens[1] = strlen(name);

    for (i = 0; i < r->n; i++) {
        argv[2 + i] = r->ents[i].key;
        lens[2 + i] = r->ents[i].klen;
    }

    rc = wh_redis_command(k->redis, wh_kvr_read_reply, f, (int) (2 + r->n),
                          argv, lens);
    free(argv);
    free(lens);

    if (rc != 0) {
        free(f);
        return -1;
    }

    k->waiting++;
    k->stats.fetches++;

    if (wh_kvr_send_version(k, tag, NULL, 0) != 0) {
        k->broken = 1;
    }

    return 0;
}


/* a read the last run did not make: its version must not be checked */
static void
wh_kvr_drop(wh_kvr_t *k, wh_map_entry_t *e)
{
    wh_kvr_read_t  *r = e->value, **pr;

    if (r->range) {
        for (pr = &k->ranges[r->db]; *pr != NULL; pr = &(*pr)->next) {
            if (*pr == r) {
                *pr = r->next;
                break;
            }
        }
    }

    (void) wh_map_del(&k->reads, e->key, e->klen);
    wh_kvr_read_free(r);
}


/*
 * Every read of the last run of a write that must run again (its
 * commit was refused, or its reads were not of one moment) is sent
 * again at once: the run finds what it read last time in one round,
 * instead of learning its keys again round by round.  What it reads
 * then that it did not before is fetched as usual; what only an
 * earlier run read is dropped.  0: the reads are out (FETCHING); -1:
 * nothing is (a send failed; that read fails the run).
 */
static int
wh_kvr_refetch(wh_kvr_t *k)
{
    wh_kvr_read_t   *r;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    wh_kvr_forget_versions(k);

    while ((e = wh_map_next(&k->reads, &it)) != NULL) {
        r = e->value;

        if (r->run != k->stats.runs) {
            wh_kvr_drop(k, e);
            continue;
        }

        /* numbers reserved are this write's whatever else moved (no
         * commit checks them): taken again, they would leave a gap,
         * and a reservation moves its tag's version, so a run that also
         * read that tag would find itself stale on every round */
        if (r->reserve && r->state == WH_KVR_READY) {
            continue;
        }

        wh_kvr_read_clear(r);
        r->state = WH_KVR_FETCHING;

        if (wh_kvr_send(k, r, (const char *) e->key, e->klen) != 0) {
            r->state = WH_KVR_FAILED;
        }
    }

    wh_kvr_check_round(k);

    if (k->waiting == 0) {
        return -1;
    }

    k->state = WH_KVW_FETCHING;

    return 0;
}


/* the key of a read in reads: what it asks */
static char *
wh_kvr_read_key(const wh_kvr_ask_t *a, size_t *len)
{
    char    *rkey;
    size_t   plen;

    plen = a->prefix ? a->prefix->len : 0;
    *len = 6 + plen + a->klen + (a->reserve ? 12 : 0);
    rkey = malloc(*len);

    if (rkey == NULL) {
        return NULL;
    }

    rkey[0] = a->range ? 'R' : a->reserve ? 'N' : 'G';
    rkey[1] = (char) a->db;
    rkey[2] = (char) (a->range ? (a->dir > 0 ? '+' : '-') : 0);
    rkey[3] = (char) (a->bounded ? (a->incl ? '[' : '(') : 'e');
    rkey[4] = (char) (plen >> 8);
    rkey[5] = (char) (plen & 0xff);

    if (plen > 0) {
        memcpy(rkey + 6, a->prefix->data, plen);
    }

    memcpy(rkey + 6 + plen, a->key, a->klen);

    if (a->reserve) {
        /* the run's nth, of so many: the same one again in a run that
         * follows finds what the first took */
        memcpy(rkey + 6 + plen + a->klen, &a->nth, 4);
        memcpy(rkey + 10 + plen + a->klen, &a->reserve, 8);
    }

    return rkey;
}


/* r is read by the run under way: the commit checks it unless the txn
 * reads unchecked now (kv.h), and a refetch fetches it again */
static void
wh_kvr_used(wh_kvr_txn_t *t, wh_kvr_read_t *r)
{
    r->run = t->k->stats.runs;

    if (!t->base.unchecked) {
        r->checked = r->run;
    }
}


/* the read's entry: what was fetched, or a fetch started (the run then
 * misses it), or NULL and the run failed */
static wh_kvr_read_t *
wh_kvr_read(wh_kvr_txn_t *t, const wh_kvr_ask_t *a)
{
    char            *rkey;
    size_t           rlen;
    wh_kvr_t        *k = t->k;
    wh_kvr_read_t   *r;

    rkey = wh_kvr_read_key(a, &rlen);

    if (rkey == NULL) {
        t->failed = 1;
        wh_err(&t->ferr, 503, "out of memory");
        return NULL;
    }

    r = wh_map_get(&k->reads, rkey, rlen);

    if (r != NULL) {
        free(rkey);
        wh_kvr_used(t, r);

        if (r->state == WH_KVR_FETCHING) {
            t->missed = 1;

        } else if (r->state == WH_KVR_FAILED) {
            t->failed = 1;
            wh_err(&t->ferr, 503, "redis: a read failed");
            t->ferr.retry_s = 1;
        }

        return r;
    }

    r = calloc(1, sizeof(wh_kvr_read_t));

    if (r == NULL || (r->key = wh_kvr_dup(a->key, a->klen)) == NULL
        || (a->prefix && a->prefix->len
            && (r->pfx = wh_kvr_dup(a->prefix->data, a->prefix->len))
               == NULL)
        || wh_map_put(&k->reads, rkey, rlen, r) == NULL)
    {
        if (r) {
            free(r->key);
            free(r->pfx);
        }

        free(r);
        free(rkey);
        t->failed = 1;
        wh_err(&t->ferr, 503, "out of memory");
        return NULL;
    }

    r->k = k;
    r->range = a->range;
    r->db = a->db;
    r->dir = a->dir;
    r->bounded = a->bounded;
    r->incl = a->incl;
    r->klen = a->klen;
    r->plen = r->pfx ? a->prefix->len : 0;
    r->page = a->page;
    r->reserve = a->reserve;
    r->gen = k->gen;
    wh_kvr_used(t, r);

    if (a->range) {
        r->next = k->ranges[a->db];
        k->ranges[a->db] = r;
    }

    if (wh_kvr_send(k, r, rkey, rlen) != 0) {
        r->state = WH_KVR_FAILED;
        t->failed = 1;
        wh_err(&t->ferr, 503, "redis is unavailable");
        t->ferr.retry_s = 1;

    } else {
        t->missed = 1;
    }

    free(rkey);

    return r;
}


/* ------------------------------------------------------ the overlay */


static int
wh_kvr_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int  c;

    c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0) {
        return c;
    }

    return alen < blen ? -1 : alen > blen ? 1 : 0;
}


/* the first index of the sorted list whose key is >= key */
static size_t
wh_kvr_ov_lower(const wh_kvr_ovlist_t *l, const char *key, size_t klen)
{
    size_t  lo = 0, hi = l->n, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (wh_kvr_cmp(l->items[mid]->key, l->items[mid]->klen, key, klen)
            < 0)
        {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return lo;
}


static wh_kvr_ov_t *
wh_kvr_ov_get(wh_kvr_txn_t *t, wh_kv_db_e db, const wh_kv_val_t *key)
{
    char  buf[1 + 512];

    if (key->len > sizeof(buf) - 1) {
        return NULL;
    }

    buf[0] = (char) db;
    memcpy(buf + 1, key->data, key->len);

    return wh_map_get(&t->ov, buf, 1 + key->len);
}


/* records a put (val) or a delete (val NULL) of the run */
static int
wh_kvr_ov_set(wh_kvr_txn_t *t, wh_kv_db_e db, const wh_kv_val_t *key,
    const wh_kv_val_t *val, wh_err_t *err)
{
    char              buf[1 + 512], *v = NULL;
    size_t            at;
    wh_kvr_ov_t      *o, **items;
    wh_kvr_ovlist_t  *l = &t->sorted[db];

    if (key->len == 0 || key->len > sizeof(buf) - 1) {
        return wh_err(err, 500, "a state key of %zu bytes", key->len);
    }

    if (val != NULL) {
        v = wh_kvr_dup(val->data, val->len);

        if (v == NULL) {
            return wh_err(err, 503, "out of memory");
        }
    }

    o = wh_kvr_ov_get(t, db, key);

    if (o != NULL) {
        free(o->val);
        o->val = v;
        o->vlen = v ? val->len : 0;
        o->deleted = v == NULL;
        return 0;
    }

    if (l->n == l->cap) {
        items = realloc(l->items, (l->cap ? l->cap * 2 : 16)
                                  * sizeof(wh_kvr_ov_t *));

        if (items == NULL) {
            free(v);
            return wh_err(err, 503, "out of memory");
        }

        l->items = items;
        l->cap = l->cap ? l->cap * 2 : 16;
    }

    o = malloc(sizeof(wh_kvr_ov_t) + key->len);

    if (o == NULL) {
        free(v);
        return wh_err(err, 503, "out of memory");
    }

    o->db = db;
    o->deleted = v == NULL;
    o->val = v;
    o->vlen = v ? val->len : 0;
    o->klen = key->len;
    memcpy(o->key, key->data, key->len);

    buf[0] = (char) db;
    memcpy(buf + 1, key->data, key->len);

    if (wh_map_put(&t->ov, buf, 1 + key->len, o) == NULL) {
        free(v);
        free(o);
        return wh_err(err, 503, "out of memory");
    }

    at = wh_kvr_ov_lower(l, o->key, o->klen);
    memmove(&l->items[at + 1], &l->items[at],
            (l->n - at) * sizeof(wh_kvr_ov_t *));
    l->items[at] = o;
    l->n++;

    return 0;
}


static void
wh_kvr_ov_clear(wh_kvr_txn_t *t)
{
    size_t  i, j;

    for (i = 0; i < WH_KV_NDBS; i++) {
        for (j = 0; j < t->sorted[i].n; j++) {
            free(t->sorted[i].items[j]->val);
            free(t->sorted[i].items[j]);
        }

        free(t->sorted[i].items);
    }

    memset(t->sorted, 0, sizeof(t->sorted));
    wh_map_free(&t->ov);
}


/* ------------------------------------------------------- get, put */


/* the stored value (before the run's own writes): 0, WH_KV_NOTFOUND
 * (or a read missed: t->missed), -1 */
static int
wh_kvr_stored(wh_kvr_txn_t *t, wh_kv_db_e db, const wh_kv_val_t *key,
    wh_kv_val_t *val, wh_err_t *err)
{
    wh_kvr_read_t  *r;
    wh_kvr_ask_t    a = { .db = db, .bounded = 1, .incl = 1,
                          .key = key->data, .klen = key->len };

    r = wh_kvr_read(t, &a);

    if (r == NULL || r->state == WH_KVR_FAILED) {
        *err = t->ferr;
        return -1;
    }

    if (r->state != WH_KVR_READY || !r->found) {
        return WH_KV_NOTFOUND;
    }

    val->data = r->ent.val;
    val->len = r->ent.vlen;

    return 0;
}


static int
wh_kvr_get(wh_kv_txn_t *base, wh_kv_db_e db, const wh_kv_val_t *key,
    wh_kv_val_t *val, wh_err_t *err)
{
    wh_kvr_ov_t   *o;
    wh_kvr_txn_t  *t = (wh_kvr_txn_t *) base;

    o = wh_kvr_ov_get(t, db, key);

    if (o != NULL) {
        if (o->deleted) {
            return WH_KV_NOTFOUND;
        }

        val->data = o->val;
        val->len = o->vlen;

        return 0;
    }

    return wh_kvr_stored(t, db, key, val, err);
}


static int
wh_kvr_reserve(wh_kv_txn_t *base, wh_kv_db_e db, const wh_kv_val_t *key,
    uint64_t n, uint64_t *first, wh_err_t *err)
{
    wh_kvr_read_t  *r;
    wh_kvr_txn_t   *t = (wh_kvr_txn_t *) base;
    wh_kvr_ask_t    a = { .db = db, .bounded = 1, .incl = 1,
                          .key = key->data, .klen = key->len,
                          .reserve = n };

    if (wh_kv_dbs[db].ws_keyed || n == 0) {
        return wh_err(err, 500, "a counter of %s cannot be reserved",
                      wh_kv_dbs[db].name);
    }

    a.nth = t->reserves++;
    r = wh_kvr_read(t, &a);

    if (r == NULL || r->state == WH_KVR_FAILED) {
        *err = t->ferr;
        return -1;
    }

    /* not taken yet: the run is missed, and runs again with them */
    *first = r->state == WH_KVR_READY ? r->num - n + 1 : 1;

    return 0;
}


static int
wh_kvr_put(wh_kv_txn_t *base, wh_kv_db_e db, const wh_kv_val_t *key,
    const wh_kv_val_t *val, unsigned flags, wh_err_t *err)
{
    int            rc;
    wh_kv_val_t    old;
    wh_kvr_txn_t  *t = (wh_kvr_txn_t *) base;

    if (flags & WH_KV_NOOVERWRITE) {
        rc = wh_kvr_get(base, db, key, &old, err);

        if (rc == 0) {
            return WH_KV_EXISTS;
        }

        if (rc != WH_KV_NOTFOUND) {
            return rc;
        }
    }

    return wh_kvr_ov_set(t, db, key, val, err);
}


static int
wh_kvr_del(wh_kv_txn_t *base, wh_kv_db_e db, const wh_kv_val_t *key,
    wh_err_t *err)
{
    int            rc;
    wh_kv_val_t    old;
    wh_kvr_txn_t  *t = (wh_kvr_txn_t *) base;

    rc = wh_kvr_get(base, db, key, &old, err);

    if (rc != 0) {
        return rc;
    }

    return wh_kvr_ov_set(t, db, key, NULL, err);
}


/* --------------------------------------------------------- cursors */


/* does the range read r answer "the first key after x" in its
 * direction (x NULL: from the edge; incl: x itself counts)?  It does
 * when every key the question admits is one r's bound admits too */
static int
wh_kvr_covers(const wh_kvr_read_t *r, const char *x, size_t xlen,
    int incl)
{
    int  c;

    if (!r->bounded) {
        return 1;
    }

    if (x == NULL) {
        return 0;
    }

    c = wh_kvr_cmp(x, xlen, r->key, r->klen) * r->dir;

    return c > 0 || (c == 0 && (r->incl || !incl));
}


/* does key come after x in direction dir (or is it x, with incl)? */
static int
wh_kvr_after(const char *key, size_t klen, int dir, const char *x,
    size_t xlen, int incl)
{
    int  c;

    if (x == NULL) {
        return 1;
    }

    c = wh_kvr_cmp(key, klen, x, xlen) * dir;

    return c > 0 || (c == 0 && incl);
}


/* is r a read of the keys of c's prefix? */
static int
wh_kvr_same_prefix(const wh_kvr_read_t *r, const wh_kvr_cur_t *c)
{
    return r->plen == c->prefix.len
           && (r->plen == 0 || memcmp(r->pfx, c->prefix.data, r->plen) == 0);
}


/* the nearest stored key after x in direction dir, from what was
 * fetched: 0 with *out, WH_KV_NOTFOUND (none, or not fetched yet:
 * t->missed), -1.  A scan that goes on past what was fetched for it
 * fetches twice as many as last time. */
static int
wh_kvr_stored_next(wh_kvr_cur_t *c, int dir, const char *x, size_t xlen,
    int incl, const wh_kvr_ent_t **out, wh_err_t *err)
{
    size_t          i, page = WH_KVR_PAGE;
    wh_kvr_read_t  *r;
    wh_kvr_ask_t    a;

    for (r = c->t->k->ranges[c->db]; r; r = r->next) {
        if (r->dir != dir || r->state != WH_KVR_READY
            || !wh_kvr_same_prefix(r, c)
            || !wh_kvr_covers(r, x, xlen, incl))
        {
            continue;
        }

        /* fetched by an earlier run: this one reads it too */
        wh_kvr_used(c->t, r);

        for (i = 0; i < r->n; i++) {
            if (wh_kvr_after(r->ents[i].key, r->ents[i].klen, dir, x, xlen,
                             incl))
            {
                *out = &r->ents[i];
                return 0;
            }
        }

        if (r->exhausted) {
            return WH_KV_NOTFOUND;
        }

        /* the scan went past r */
        if (r->page * 2 > page) {
            page = r->page * 2 < WH_KVR_PAGE_MAX ? r->page * 2
                                                 : WH_KVR_PAGE_MAX;
        }
    }

    memset(&a, 0, sizeof(a));
    a.range = 1;
    a.db = c->db;
    a.dir = dir;
    a.bounded = x != NULL;
    a.incl = incl;
    a.key = x ? x : "";
    a.klen = x ? xlen : 0;
    a.prefix = &c->prefix;
    a.page = page;

    r = wh_kvr_read(c->t, &a);

    if (r == NULL || r->state == WH_KVR_FAILED) {
        *err = c->t->ferr;
        return -1;
    }

    /* READY but not covering (a new key since?) cannot be: the same
     * question was asked and answered above */
    return WH_KV_NOTFOUND;
}


/* the nearest key after x in direction dir, the run's writes
 * included, x within the cursor's prefix (or NULL: its edge) */
static int
wh_kvr_nearest(wh_kvr_cur_t *c, int dir, const char *x, size_t xlen,
    int incl, wh_kv_val_t *key, wh_kv_val_t *val, wh_err_t *err)
{
    int                  rc;
    size_t               i;
    wh_kvr_ov_t         *o = NULL, *d;
    wh_kvr_ovlist_t     *l = &c->t->sorted[c->db];
    const wh_kvr_ent_t  *s = NULL;

    /* the run's nearest put */
    if (l->n > 0) {
        if (dir > 0) {
            i = x ? wh_kvr_ov_lower(l, x, xlen) : 0;

            for ( /* void */ ; i < l->n; i++) {
                if (!l->items[i]->deleted
                    && wh_kvr_after(l->items[i]->key, l->items[i]->klen,
                                    dir, x, xlen, incl))
                {
                    o = l->items[i];
                    break;
                }
            }

        } else {
            i = x ? wh_kvr_ov_lower(l, x, xlen) + 1 : l->n;

            while (i-- > 0) {
                if (i < l->n && !l->items[i]->deleted
                    && wh_kvr_after(l->items[i]->key, l->items[i]->klen,
                                    dir, x, xlen, incl))
                {
                    o = l->items[i];
                    break;
                }
            }
        }
    }

    /* the nearest stored key the run did not delete */
    for ( ;; ) {
        rc = wh_kvr_stored_next(c, dir, x, xlen, incl, &s, err);

        if (rc != 0) {
            if (rc == -1) {
                return -1;
            }

            s = NULL;
            break;
        }

        d = wh_kvr_ov_get(c->t, c->db,
                          &(wh_kv_val_t) { s->klen, s->key });

        if (d == NULL || !d->deleted) {
            break;
        }

        x = s->key;
        xlen = s->klen;
        incl = 0;
    }

    if (o != NULL && (s == NULL
                      || wh_kvr_cmp(o->key, o->klen, s->key, s->klen) * dir
                         <= 0))
    {
        key->data = o->key;
        key->len = o->klen;
        val->data = o->val;
        val->len = o->vlen;

    } else if (s != NULL) {
        d = wh_kvr_ov_get(c->t, c->db,
                          &(wh_kv_val_t) { s->klen, s->key });
        key->data = s->key;
        key->len = s->klen;
        val->data = d ? d->val : s->val;
        val->len = d ? d->vlen : s->vlen;

    } else {
        return WH_KV_NOTFOUND;
    }

    return 0;
}


/* the nearest key after x in direction dir that the cursor sees: x
 * (NULL: from the edge) brought within its prefix first, so that the
 * nearest key outside it is the one past every key in it */
static int
wh_kvr_next(wh_kvr_cur_t *c, int dir, const char *x, size_t xlen, int incl,
    wh_kv_val_t *key, wh_kv_val_t *val, wh_err_t *err)
{
    int           rc;
    wh_kv_val_t  *p = &c->prefix, *e = &c->end;

    if (p->len > 0 && dir > 0) {
        if (x == NULL || wh_kvr_cmp(x, xlen, p->data, p->len) < 0) {
            x = p->data;
            xlen = p->len;
            incl = 1;

        } else if (e->len > 0 && wh_kvr_cmp(x, xlen, e->data, e->len) >= 0)
        {
            return WH_KV_NOTFOUND;
        }

    } else if (p->len > 0) {
        if (e->len > 0
            && (x == NULL || wh_kvr_cmp(x, xlen, e->data, e->len) >= 0))
        {
            x = e->data;
            xlen = e->len;
            incl = 0;

        } else if (x != NULL && wh_kvr_cmp(x, xlen, p->data, p->len) < 0) {
            return WH_KV_NOTFOUND;
        }
    }

    rc = wh_kvr_nearest(c, dir, x, xlen, incl, key, val, err);

    if (rc == 0 && !wh_kv_in_prefix(p, key->data, key->len)) {
        return WH_KV_NOTFOUND;
    }

    return rc;
}


static int
wh_kvr_cur_open(wh_kv_txn_t *base, wh_kv_db_e db,
    const wh_kv_val_t *prefix, wh_kv_cur_t **out, wh_err_t *err)
{
    size_t         plen;
    char          *p;
    wh_kvr_cur_t  *c;

    plen = prefix ? prefix->len : 0;
    /* the prefix, then its end */
    c = calloc(1, sizeof(wh_kvr_cur_t) + 2 * plen);

    if (c == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    p = (char *) (c + 1);
    c->prefix.data = p;
    c->prefix.len = plen;
    c->end.data = p + plen;

    if (plen > 0) {
        memcpy(p, prefix->data, plen);
        c->end.len = wh_kv_prefix_end(p, plen, p + plen);
    }

    c->base.ops = &wh_kvr_ops;
    c->t = (wh_kvr_txn_t *) base;
    c->db = db;
    *out = &c->base;

    return 0;
}


static int
wh_kvr_cur_at(wh_kvr_cur_t *c, const wh_kv_val_t *key, wh_err_t *err)
{
    char  *p;

    if (key->len > c->cap) {
        p = realloc(c->key, key->len);

        if (p == NULL) {
            return wh_err(err, 503, "out of memory");
        }

        c->key = p;
        c->cap = key->len;
    }

    memcpy(c->key, key->data, key->len);
    c->klen = key->len;
    c->at = 1;

    return 0;
}


static int
wh_kvr_cur_get(wh_kv_cur_t *base, wh_kv_val_t *key, wh_kv_val_t *val,
    wh_kv_op_e op, wh_err_t *err)
{
    int            rc, dir;
    wh_kv_val_t    k, v;
    wh_kvr_cur_t  *c = (wh_kvr_cur_t *) base;

    switch (op) {

    case WH_KV_FIRST:
    case WH_KV_LAST:
        dir = op == WH_KV_FIRST ? 1 : -1;
        rc = wh_kvr_next(c, dir, NULL, 0, 0, &k, &v, err);
        break;

    case WH_KV_NEXT:
    case WH_KV_PREV:
        dir = op == WH_KV_NEXT ? 1 : -1;

        if (!c->at) {
            rc = wh_kvr_next(c, dir, NULL, 0, 0, &k, &v, err);

        } else {
            rc = wh_kvr_next(c, dir, c->key, c->klen, 0, &k, &v, err);
        }

        break;

    case WH_KV_SET_RANGE:
        rc = wh_kvr_next(c, 1, key->data, key->len, 1, &k, &v, err);
        break;

    case WH_KV_GET_CURRENT:
        if (!c->at) {
            return WH_KV_NOTFOUND;
        }

        k.data = c->key;
        k.len = c->klen;
        rc = wh_kvr_get(&c->t->base, c->db, &k, &v, err);
        break;

    default:
        return wh_err(err, 500, "a cursor op %d", (int) op);
    }

    if (rc != 0) {
        return rc;
    }

    if (op != WH_KV_GET_CURRENT && wh_kvr_cur_at(c, &k, err) != 0) {
        return -1;
    }

    key->data = c->key;
    key->len = c->klen;
    *val = v;

    return 0;
}


static int
wh_kvr_cur_del(wh_kv_cur_t *base, wh_err_t *err)
{
    wh_kv_val_t    k;
    wh_kvr_cur_t  *c = (wh_kvr_cur_t *) base;

    if (!c->at) {
        return WH_KV_NOTFOUND;
    }

    k.data = c->key;
    k.len = c->klen;

    return wh_kvr_ov_set(c->t, c->db, &k, NULL, err);
}


static void
wh_kvr_cur_close(wh_kv_cur_t *base)
{
    wh_kvr_cur_t  *c = (wh_kvr_cur_t *) base;

    free(c->key);
    free(c);
}


static const wh_kv_ops_t  wh_kvr_ops = {
    wh_kvr_get,
    wh_kvr_put,
    wh_kvr_del,
    wh_kvr_cur_open,
    wh_kvr_cur_get,
    wh_kvr_cur_del,
    wh_kvr_cur_close,
    wh_kvr_reserve
};


/* --------------------------------------------------------- commits */


static void
wh_kvr_finish(wh_kvr_t *k, int result, const char *what, const char *why)
{
    k->result = result;

    if (result == -1) {
        wh_err(&k->err, 503, "redis: %s%s%s", what, why ? ": " : "",
               why ? why : "");
        k->err.retry_s = 1;
    }

    k->state = WH_KVW_DONE;
    wh_kvr_wake(k);
}


static void
wh_kvr_waited(void *data, redisReply *reply, const char *why)
{
    wh_kvr_t  *k = data;

    if (k->waits_skip > 0) {
        k->waits_skip--;
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER
        || reply->integer < (long long) k->conf.replicas_ack)
    {
        wh_kvr_finish(k, -1, "the state write was not confirmed by the "
                      "replicas", reply == NULL ? why : NULL);
        return;
    }

    wh_kvr_finish(k, 0, NULL, NULL);
}


static void
wh_kvr_committed(void *data, redisReply *reply, const char *why)
{
    wh_kvr_t  *k = data;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        k->waits_skip += k->wait_sent;
        wh_kvr_finish(k, -1, "the state write failed",
                      reply && reply->str ? reply->str : why);
        return;
    }

    if (reply->integer == 0) {
        /* another node changed what this write read: all again */
        k->stats.conflicts++;
        k->waits_skip += k->wait_sent;

        if (wh_kvr_refetch(k) != 0) {
            k->state = WH_KVW_IDLE;
            wh_kvr_wake(k);
        }

        return;
    }

    k->stats.commits++;

    if (k->conf.replicas_ack == 0) {
        wh_kvr_finish(k, 0, NULL, NULL);
        return;
    }

    if (!k->wait_sent) {
        wh_kvr_finish(k, -1, "the state write was not confirmed",
                      "redis is unavailable");
    }

    /* the WAIT sent behind the commit answers */
}


/*
 * replicas_ack: WAIT goes right behind the commit, not after its reply
 * (a round trip less a write); it counts the replicas that have every
 * write of this connection so far, the commit's included.  Not sent:
 * the commit's reply fails the write.
 */
static void
wh_kvr_wait(wh_kvr_t *k)
{
    k->wait_sent = k->conf.replicas_ack
                   && wh_redis_wait(k->redis, k->conf.replicas_ack,
                                    k->conf.ack_timeout_ms, wh_kvr_waited,
                                    k)
                      == 0;
}


/*
 * What the commit checks, into argv from its nchecks on (the caller
 * writes nchecks, *nv): the versions of the tags that the run's ranges
 * read (every tag after a walk across the workspaces), then nkeys (its
 * text in nkeys) and each key the run got, with what it got.  A get is
 * checked by its value, not by its workspace's version: two nodes'
 * writes that read and write other keys of one workspace do not refuse
 * each other.  Returns the argv entries written, -1 out of memory.
 */
static ssize_t
wh_kvr_checks(wh_kvr_t *k, const char **argv, size_t *lens, size_t *nv,
    char *nkeys, size_t nkeys_len)
{
    int              walked = 0;
    size_t           n = 0, at, nk = 0;
    wh_str_t         tag;
    wh_map_t         ranged;
    wh_kvr_read_t   *r;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    memset(&ranged, 0, sizeof(wh_map_t));

    while ((e = wh_map_next(&k->reads, &it)) != NULL) {
        r = e->value;

        if (!r->range || r->checked != k->stats.runs) {
            continue;
        }

        tag = wh_kvr_range_tag(r);
        walked |= tag.len == 0;

        if (tag.len && wh_map_put(&ranged, tag.data, tag.len, k) == NULL) {
            wh_map_free(&ranged);
            return -1;
        }
    }

    *nv = 0;
    it.bucket = 0;
    it.entry = NULL;

    while ((e = wh_map_next(&k->versions, &it)) != NULL) {
        if (walked || wh_map_get(&ranged, e->key, e->klen) != NULL) {
            argv[n] = (const char *) e->key;
            lens[n++] = e->klen;
            argv[n] = e->value;
            lens[n++] = strlen(e->value);
            (*nv)++;
        }
    }

    wh_map_free(&ranged);

    /* nkeys goes here, once counted */
    at = n++;
    it.bucket = 0;
    it.entry = NULL;

    while ((e = wh_map_next(&k->reads, &it)) != NULL) {
        r = e->value;

        if (r->range || r->reserve || r->checked != k->stats.runs
            || r->state != WH_KVR_READY)
        {
            continue;
        }

        tag = wh_kvr_tag(r->db, r->key, r->klen);
        argv[n] = wh_kv_dbs[r->db].name;
        lens[n] = strlen(argv[n]);
        n++;
        argv[n] = tag.data;
        lens[n++] = tag.len;
        argv[n] = r->key;
        lens[n++] = r->klen;
        argv[n] = r->found ? "1" : "0";
        lens[n++] = 1;
        argv[n] = r->found ? r->ent.val : "";
        lens[n++] = r->found ? r->ent.vlen : 0;
        nk++;
    }

    snprintf(nkeys, nkeys_len, "%zu", nk);
    argv[at] = nkeys;
    lens[at] = strlen(nkeys);

    return (ssize_t) n;
}


/* the commit: the versions read, then the run's writes */
static int
wh_kvr_commit(wh_kvr_t *k, wh_kvr_txn_t *t, wh_err_t *err)
{
    int               rc = -1;
    char              nbuf[24], kbuf[24], *tags = NULL;
    size_t            i, j, m, argc, n, *lens, nw = 0, nv;
    ssize_t           checks;
    wh_str_t          tag;
    const char      **argv;
    wh_kvr_ov_t      *o;

    for (i = 0, j = 1; i < WH_KV_NDBS; i++) {
        nw += t->sorted[i].n;

        for (m = 0; m < t->sorted[i].n; m++) {
            o = t->sorted[i].items[m];
            j += wh_kvr_tag(o->db, o->key, o->klen).len + 1;
        }
    }

    n = 5 + 2 * k->versions.count + 5 * k->reads.count + 5 * nw;
    argv = calloc(n, sizeof(char *));
    lens = calloc(n, sizeof(size_t));
    /* each write's tag, NUL-terminated, side by side: argv points into
     * it */
    tags = malloc(j);

    if (argv == NULL || lens == NULL || tags == NULL) {
        wh_err(err, 503, "out of memory");
        goto done;
    }

    checks = wh_kvr_checks(k, argv + 4, lens + 4, &nv, kbuf, sizeof(kbuf));

    if (checks < 0) {
        wh_err(err, 503, "out of memory");
        goto done;
    }

    argv[2] = "0";
    argc = 4 + (size_t) checks;
    snprintf(nbuf, sizeof(nbuf), "%zu", nv);
    argv[3] = nbuf;
    lens[2] = 1;
    lens[3] = strlen(nbuf);

    j = 0;

    for (i = 0; i < WH_KV_NDBS; i++) {
        for (m = 0; m < t->sorted[i].n; m++) {
            o = t->sorted[i].items[m];
            tag = wh_kvr_tag(o->db, o->key, o->klen);
            memcpy(tags + j, tag.data, tag.len);
            tags[j + tag.len] = '\0';

            argv[argc] = o->deleted ? "D" : "P";
            lens[argc++] = 1;
            argv[argc] = wh_kv_dbs[o->db].name;
            lens[argc] = strlen(argv[argc]);
            argc++;
            argv[argc] = tags + j;
            lens[argc++] = tag.len;
            argv[argc] = o->key;
            lens[argc++] = o->klen;

            if (!o->deleted) {
                argv[argc] = o->val;
                lens[argc++] = o->vlen;
            }

            j += tag.len + 1;
        }
    }

    if (wh_redis_eval(k->redis, &wh_kvr_script_commit, wh_kvr_committed, k,
                      (int) argc, argv, lens)
        != 0)
    {
        wh_err(err, 503, "redis is unavailable");
        err->retry_s = 1;
        goto done;
    }

    wh_kvr_wait(k);
    rc = 0;

done:

    free(argv);
    free(lens);
    free(tags);

    return rc;
}


int
wh_kvr_write(wh_kvr_t *k, wh_kvr_txn_pt fn, void *ctx, wh_err_t *err)
{
    int            rc, writes;
    size_t         i;
    wh_kvr_txn_t   t;

    if (k->state == WH_KVW_FETCHING || k->state == WH_KVW_COMMITTING) {
        return WH_ENGINE_AGAIN;
    }

    if (k->state == WH_KVW_DONE) {
        k->state = WH_KVW_IDLE;
        wh_kvr_forget(k);

        if (k->result == -1) {
            *err = k->err;
        }

        return k->result;
    }

    if (!wh_redis_up(k->redis)) {
        wh_kvr_forget(k);
        wh_err(err, 503, "redis is unavailable");
        err->retry_s = 1;
        return -1;
    }

    if (k->broken) {
        k->broken = 0;
        wh_kvr_forget(k);
        wh_err(err, 503, "redis: a state version could not be read");
        err->retry_s = 1;
        return -1;
    }

    memset(&t, 0, sizeof(t));
    t.base.ops = &wh_kvr_ops;
    t.k = k;
    k->stats.runs++;

    rc = fn(&t.base, ctx, err);

    writes = 0;

    for (i = 0; i < WH_KV_NDBS; i++) {
        writes += t.sorted[i].n > 0;
    }

    if (t.failed) {
        wh_kvr_ov_clear(&t);
        wh_kvr_forget(k);
        *err = t.ferr;
        return -1;
    }

    /* reads of two moments: the commit of a run that writes checks each
     * of them; a run that only read, or failed, reads again */
    if (t.missed || k->reread || (k->stale && (!writes || rc != 0))) {
        wh_kvr_ov_clear(&t);

        if (k->waiting > 0) {
            wh_kvr_check_round(k);
            k->state = WH_KVW_FETCHING;
            return WH_ENGINE_AGAIN;
        }

        /* stale, nothing out: read again at once */
        if (wh_kvr_refetch(k) != 0) {
            k->state = WH_KVW_IDLE;
            wh_kvr_wake(k);
        }

        return WH_ENGINE_AGAIN;
    }

    if (rc != 0 || !writes) {
        wh_kvr_ov_clear(&t);
        wh_kvr_forget(k);
        return rc;
    }

    if (wh_kvr_commit(k, &t, err) != 0) {
        wh_kvr_ov_clear(&t);
        wh_kvr_forget(k);
        return -1;
    }

    wh_kvr_ov_clear(&t);
    k->state = WH_KVW_COMMITTING;

    return WH_ENGINE_AGAIN;
}


int
wh_kvr_open(wh_kvr_t **out, wh_redis_t *redis, const wh_kvr_conf_t *conf,
    wh_log_t *log, wh_err_t *err)
{
    wh_kvr_t  *k;

    k = calloc(1, sizeof(wh_kvr_t));

    if (k == NULL) {
        return wh_err(err, 500, "out of memory");
    }

    k->redis = redis;
    k->log = log;
    k->conf = *conf;
    *out = k;

    return 0;
}


void
wh_kvr_close(wh_kvr_t *k)
{
    if (k == NULL) {
        return;
    }

    wh_kvr_forget(k);
    free(k);
}


void
wh_kvr_stats(wh_kvr_t *k, wh_kvr_stats_t *out)
{
    *out = k->stats;
}
