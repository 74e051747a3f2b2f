/*
 * The Redis engine's history space (engine_redis.h): publishes as one
 * Lua script each, reads answered from what was fetched, and the
 * channels this node follows, whose messages it delivers once each, in
 * id order, whatever node published them.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_redis_internal.h"


#define WH_RKEY_MAX     (WH_WORKSPACE_MAX + WH_CHANNEL_MAX + 32)
/* the set of workspaces with channels, the one key outside them */
#define WH_RWORKSPACES  "wh:workspaces"

/* the epoch's place in a message text (message.c builds it) */
static const char  wh_id_mark[] = ",\"id\":";
static const char  wh_epoch_mark[] = ",\"epoch\":\"";


/*
 * The quotas of a workspace count its channels and their history bytes
 * but not its `$` channels (wirehubd's own, as quota.c): `nchans` is
 * the size of the channel index less its `$` names; `sweep` frees the
 * history past its ttl of every counted channel but `skip` (at most
 * 10000 entries a call), which a publish does only when the bytes
 * would refuse it, and a read of the usage does first: a quiet
 * channel's expired history is not left counted.
 */
#define WH_LUA_QUOTA                                                        \
    "local function nchans(z)\n"                                            \
    "  return redis.call('ZCARD', z)\n"                                     \
    "         - redis.call('ZLEXCOUNT', z, '[$', '(%')\n"                    \
    "end\n"                                                                 \
    "local function sweep(z, usage, hpre, now, ttl, skip)\n"                \
    "  if ttl <= 0 then return end\n"                                       \
    "  local freed, budget = 0, 10000\n"                                    \
    "  for _, n in ipairs(redis.call('ZRANGE', z, 0, -1)) do\n"             \
    "    if budget <= 0 then break end\n"                                   \
    "    if string.sub(n, 1, 1) ~= '$' and n ~= skip then\n"                \
    "      local h = hpre .. n\n"                                           \
    "      while budget > 0 do\n"                                           \
    "        local e = redis.call('LINDEX', h, 0)\n"                        \
    "        if not e then break end\n"                                     \
    "        local sp = string.find(e, ' ', 1, true) or 1\n"                \
    "        if now - tonumber(string.sub(e, 1, sp - 1)) <= ttl then\n"     \
    "          break\n"                                                     \
    "        end\n"                                                         \
    "        redis.call('LPOP', h)\n"                                       \
    "        freed = freed + #e - sp\n"                                     \
    "        budget = budget - 1\n"                                         \
    "      end\n"                                                           \
    "    end\n"                                                             \
    "  end\n"                                                               \
    "  if freed > 0 then redis.call('HINCRBY', usage, 'bytes', -freed) end\n" \
    "end\n"

/*
 * KEYS: meta, history, channel index, workspaces, usage; ARGV: channel,
 * length, ttl, room, new epoch, pub/sub channel, workspace, publish now
 * ("1") or return the messages for later, the channels and the history
 * bytes the workspace may have ("0": no limit), the prefix of its
 * history keys; then for each message of the channel, in order: now,
 * the text before the id and after the epoch.  Answers, for each
 * message, {id, epoch, growth[, message]} or {0, 1} (no room for the
 * bytes) or {0, 2} (no channel may be made).  History older than the
 * ttl leaves from the head first.  One call takes the messages of one
 * channel that one write holds (a batch of command events is one
 * channel's): the script's cost is mostly per call, not per message.
 */
static const char  wh_lua_publish[] =
    WH_LUA_QUOTA
    "local counted = string.sub(ARGV[1], 1, 1) ~= '$'\n"
    "local ttl = tonumber(ARGV[3])\n"
    /* the channel's last id and epoch, and whether it is new; nil: no
     * channel may be made */
    "local function head()\n"
    "  local m = redis.call('HMGET', KEYS[1], 'last', 'epoch')\n"
    "  if tonumber(m[1]) and m[2] then return tonumber(m[1]), m[2], false end\n"
    "  if counted and tonumber(ARGV[9]) > 0\n"
    "     and nchans(KEYS[3]) >= tonumber(ARGV[9]) then\n"
    "    return nil\n"
    "  end\n"
    "  return 0, ARGV[5], true\n"
    "end\n"
    /* at most 100 entries older than the ttl at time t leave */
    "local function expire(t)\n"
    "  local freed = 0\n"
    "  for i = 1, 100 do\n"
    "    local e = redis.call('LINDEX', KEYS[2], 0)\n"
    "    if not e then break end\n"
    "    local sp = string.find(e, ' ', 1, true) or 1\n"
    "    if t - tonumber(string.sub(e, 1, sp - 1)) <= ttl then break end\n"
    "    redis.call('LPOP', KEYS[2])\n"
    "    freed = freed + #e - sp\n"
    "  end\n"
    "  if freed > 0 and counted then\n"
    "    redis.call('HINCRBY', KEYS[5], 'bytes', -freed)\n"
    "  end\n"
    "end\n"
    "local function make(epoch, now)\n"
    "  redis.call('HSET', KEYS[1], 'epoch', epoch, 'created', now)\n"
    "  redis.call('ZADD', KEYS[3], 0, ARGV[1])\n"
    "  redis.call('SADD', KEYS[4], ARGV[7])\n"
    "end\n"
    "local function one(now, before, after)\n"
    "  local last, epoch, made = head()\n"
    "  if not last then return {0, 2} end\n"
    "  local t = tonumber(now)\n"
    "  if ttl > 0 then expire(t) end\n"
    "  local id = last + 1\n"
    "  local text = before .. id .. ',\"epoch\":\"' .. epoch .. after\n"
    "  local len = redis.call('LLEN', KEYS[2])\n"
    "  local k = len + 1 - tonumber(ARGV[2])\n"
    "  local trimmed = 0\n"
    "  if k > 0 then\n"
    "    for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, k - 1)) do\n"
    "      trimmed = trimmed + #e - (string.find(e, ' ', 1, true) or 0)\n"
    "    end\n"
    "  end\n"
    "  local growth = #text - trimmed\n"
    "  if growth > tonumber(ARGV[4]) then return {0, 1} end\n"
    "  local limit = tonumber(ARGV[10])\n"
    "  local function over()\n"
    "    local used = tonumber(redis.call('HGET', KEYS[5], 'bytes') or '0')\n"
    "    return used + growth > limit\n"
    "  end\n"
    "  if counted and growth > 0 and limit > 0 and over() then\n"
    "    sweep(KEYS[3], KEYS[5], ARGV[11], t, ttl, ARGV[1])\n"
    "    if over() then return {0, 1} end\n"
    "  end\n"
    "  if made then make(epoch, now) end\n"
    "  redis.call('RPUSH', KEYS[2], now .. ' ' .. text)\n"
    "  if k > 0 then redis.call('LTRIM', KEYS[2], k, -1) end\n"
    "  if counted then redis.call('HINCRBY', KEYS[5], 'bytes', growth) end\n"
    "  redis.call('HSET', KEYS[1], 'last', id)\n"
    "  local msg = id .. ' ' .. epoch .. ' ' .. now .. ' ' .. text\n"
    "  if ARGV[8] == '1' then\n"
    "    redis.call('PUBLISH', ARGV[6], msg)\n"
    "    return {id, epoch, growth}\n"
    "  end\n"
    "  return {id, epoch, growth, msg}\n"
    "end\n"
    /* each step once for them all, as one() would have made it for
     * each in turn; nil, nothing written, if the ttl would take an
     * entry at the latest time, tmax, or the byte limit could refuse a
     * message: one() takes them in turn */
    "local function many(tmax)\n"
    "  local n = (#ARGV - 11) / 3\n"
    "  local out = {}\n"
    "  local last, epoch, made = head()\n"
    "  if not last then\n"
    "    for i = 1, n do out[i] = {0, 2} end\n"
    "    return out\n"
    "  end\n"
    "  local texts, vals = {}, {}\n"
    "  for i = 1, n do\n"
    "    local a = 9 + 3 * i\n"
    "    texts[i] = ARGV[a + 1] .. (last + i) .. ',\"epoch\":\"' .. epoch\n"
    "               .. ARGV[a + 2]\n"
    "    vals[i] = ARGV[a] .. ' ' .. texts[i]\n"
    "  end\n"
    /* after message i the list has lost its first max(0, len + i - H)
     * entries (the old ones, then the new): message i takes off those
     * the message before it left.  Each message first expires from the
     * head, which is then one of the first `gone` old entries, or the
     * first: none of them may be past the ttl (times from several
     * nodes need not be in order) */
    "  local len = redis.call('LLEN', KEYS[2])\n"
    "  local h = tonumber(ARGV[2])\n"
    "  local gone = math.max(0, len + n - h)\n"
    "  local old = {}\n"
    "  local seen = math.min(math.max(gone, ttl > 0 and 1 or 0), len)\n"
    "  if seen > 0 then\n"
    "    old = redis.call('LRANGE', KEYS[2], 0, seen - 1)\n"
    "  end\n"
    "  if ttl > 0 then\n"
    "    for _, e in ipairs(old) do\n"
    "      local sp = string.find(e, ' ', 1, true) or 1\n"
    "      if tmax - tonumber(string.sub(e, 1, sp - 1)) > ttl then\n"
    "        return nil\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local function size(j)\n"
    "    local e = j < len and old[j + 1] or vals[j - len + 1]\n"
    "    return #e - (string.find(e, ' ', 1, true) or 0)\n"
    "  end\n"
    "  local total, growth, left = 0, {}, 0\n"
    "  for i = 1, n do\n"
    "    local now_gone = math.max(0, len + i - h)\n"
    "    growth[i] = #texts[i]\n"
    "    for j = left, now_gone - 1 do\n"
    "      growth[i] = growth[i] - size(j)\n"
    "    end\n"
    "    left = now_gone\n"
    "    total = total + growth[i]\n"
    "  end\n"
    /* one() refuses message i when it grows and the bytes used before
     * it, with it, pass the limit: none does if the highest such sum
     * does not */
    "  local limit = tonumber(ARGV[10])\n"
    "  if counted and limit > 0 then\n"
    "    local sum, top = 0, 0\n"
    "    for i = 1, n do\n"
    "      sum = sum + growth[i]\n"
    "      if growth[i] > 0 and sum > top then top = sum end\n"
    "    end\n"
    "    local used = tonumber(redis.call('HGET', KEYS[5], 'bytes') or '0')\n"
    "    if used + top > limit then return nil end\n"
    "  end\n"
    "  if made then make(epoch, ARGV[12]) end\n"
    "  redis.call('RPUSH', KEYS[2], unpack(vals))\n"
    "  if gone > 0 then redis.call('LTRIM', KEYS[2], gone, -1) end\n"
    "  if counted then redis.call('HINCRBY', KEYS[5], 'bytes', total) end\n"
    "  redis.call('HSET', KEYS[1], 'last', last + n)\n"
    "  for i = 1, n do\n"
    "    local msg = (last + i) .. ' ' .. epoch .. ' ' .. vals[i]\n"
    "    if ARGV[8] == '1' then\n"
    "      redis.call('PUBLISH', ARGV[6], msg)\n"
    "      out[i] = {last + i, epoch, growth[i]}\n"
    "    else\n"
    "      out[i] = {last + i, epoch, growth[i], msg}\n"
    "    end\n"
    "  end\n"
    "  return out\n"
    "end\n"
    /* the room the engine passes is INT64_MAX: only the workspace's
     * byte limit, over the cluster, refuses a message.  Times differ
     * within a call (a write holds events of several loop turns, and of
     * several nodes' clocks): what one() would expire for any of them
     * many() finds at the latest, since a head entry not past the ttl
     * then is not before; and when the times lie within the ttl, none
     * of the call's own messages expires another of it */
    "local function span()\n"
    "  local lo, hi = math.huge, -math.huge\n"
    "  for i = 12, #ARGV, 3 do\n"
    "    local t = tonumber(ARGV[i])\n"
    "    if t < lo then lo = t end\n"
    "    if t > hi then hi = t end\n"
    "  end\n"
    "  return lo, hi\n"
    "end\n"
    "local tmin, tmax = span()\n"
    "if ttl <= 0 or tmax - tmin <= ttl then\n"
    "  local out = many(tmax)\n"
    "  if out then return out end\n"
    "end\n"
    "local out = {}\n"
    "for i = 12, #ARGV, 3 do\n"
    "  out[#out + 1] = one(ARGV[i], ARGV[i + 1], ARGV[i + 2])\n"
    "end\n"
    "return out\n";

/* the messages of one channel a publish call takes at most */
#define WH_RPUB_GROUP  128

/* ARGV[5]: the channels the workspace may have ("0": no limit);
 * {-1}: none may be made */
static const char  wh_lua_ensure[] =
    WH_LUA_QUOTA
    "local m = redis.call('HMGET', KEYS[1], 'last', 'epoch', 'created')\n"
    "if m[2] then\n"
    "  return {tonumber(m[1]) or 0, m[2], tonumber(m[3]) or 0}\n"
    "end\n"
    "if string.sub(ARGV[1], 1, 1) ~= '$' and tonumber(ARGV[5]) > 0\n"
    "   and nchans(KEYS[2]) >= tonumber(ARGV[5]) then\n"
    "  return {-1}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'last', 0, 'epoch', ARGV[3],\n"
    "           'created', ARGV[2])\n"
    "redis.call('ZADD', KEYS[2], 0, ARGV[1])\n"
    "redis.call('SADD', KEYS[3], ARGV[4])\n"
    "return {0, ARGV[3], tonumber(ARGV[2])}\n";

/* KEYS: channel index, usage; ARGV: the prefix of the history keys,
 * now, ttl.  -> {channels, history bytes} of the quotas */
static const char  wh_lua_usage[] =
    WH_LUA_QUOTA
    "sweep(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]),\n"
    "      tonumber(ARGV[3]), '')\n"
    "return {nchans(KEYS[1]),\n"
    "        tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')}\n";

static const char  wh_lua_read[] =
    "local m = redis.call('HMGET', KEYS[1], 'last', 'epoch', 'created')\n"
    "if not m[2] then return {0} end\n"
    "local last = tonumber(m[1]) or 0\n"
    "local len = redis.call('LLEN', KEYS[2])\n"
    "local first = last - len + 1\n"
    "local from = tonumber(ARGV[1]) + 1\n"
    "if from < first then from = first end\n"
    "local res = {1, last, m[2], tonumber(m[3]) or 0, first, from}\n"
    "local count = tonumber(ARGV[2])\n"
    "if count > 0 and from <= last then\n"
    "  local to = from + count - 1\n"
    "  if to > last then to = last end\n"
    "  local items = redis.call('LRANGE', KEYS[2], from - first,\n"
    "                           to - first)\n"
    "  for i = 1, #items do res[6 + i] = items[i] end\n"
    "end\n"
    "return res\n";

static const char  wh_lua_list[] =
    "local names = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+',\n"
    "                         'LIMIT', 0, tonumber(ARGV[2]))\n"
    "local res = {}\n"
    "for _, n in ipairs(names) do\n"
    "  local m = redis.call('HMGET', ARGV[3] .. n, 'last', 'epoch',\n"
    "                       'created')\n"
    "  local len = redis.call('LLEN', ARGV[4] .. n)\n"
    "  local last = tonumber(m[1]) or 0\n"
    "  res[#res + 1] = n\n"
    "  res[#res + 1] = last\n"
    "  res[#res + 1] = m[2] or ''\n"
    "  res[#res + 1] = tonumber(m[3]) or 0\n"
    "  res[#res + 1] = last - len + 1\n"
    "end\n"
    "return res\n";

static wh_redis_script_t  wh_script_publish = WH_REDIS_SCRIPT(wh_lua_publish);
static wh_redis_script_t  wh_script_ensure = WH_REDIS_SCRIPT(wh_lua_ensure);
static wh_redis_script_t  wh_script_usage = WH_REDIS_SCRIPT(wh_lua_usage);
static wh_redis_script_t  wh_script_read = WH_REDIS_SCRIPT(wh_lua_read);
static wh_redis_script_t  wh_script_list = WH_REDIS_SCRIPT(wh_lua_list);

/* channels listed per read: the API pages far below it */
#define WH_RLIST_MAX  10000


/* replies */

static void
wh_rv_free(wh_rv_t *v)
{
    size_t  i;

    if (v == NULL) {
        return;
    }

    for (i = 0; i < v->n; i++) {
        wh_rv_free(v->el[i]);
    }

    free(v->el);
    free(v->str);
    free(v);
}


static wh_rv_t *
wh_rv_copy(const redisReply *r)
{
    size_t    i;
    wh_rv_t  *v;

    v = calloc(1, sizeof(wh_rv_t));

    if (v == NULL) {
        return NULL;
    }

    v->type = r->type;
    v->integer = r->integer;

    if (r->str != NULL) {
        v->str = malloc(r->len + 1);

        if (v->str == NULL) {
            free(v);
            return NULL;
        }

        memcpy(v->str, r->str, r->len);
        v->str[r->len] = '\0';
        v->len = r->len;
    }

    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        v->el = calloc(r->elements, sizeof(wh_rv_t *));

        if (v->el == NULL) {
            wh_rv_free(v);
            return NULL;
        }

        for (i = 0; i < r->elements; i++) {
            v->el[i] = wh_rv_copy(r->element[i]);

            if (v->el[i] == NULL) {
                wh_rv_free(v);
                return NULL;
            }

            v->n++;
        }
    }

    return v;
}


/* the integer of element i (a number Lua returned), or 0 */
static long long
wh_rv_int(const wh_rv_t *v, size_t i)
{
    if (v == NULL || i >= v->n) {
        return 0;
    }

    if (v->el[i]->type == REDIS_REPLY_INTEGER) {
        return v->el[i]->integer;
    }

    return v->el[i]->str ? strtoll(v->el[i]->str, NULL, 10) : 0;
}


static const char *
wh_rv_str(const wh_rv_t *v, size_t i, size_t *len)
{
    if (v == NULL || i >= v->n || v->el[i]->str == NULL) {
        *len = 0;
        return "";
    }

    *len = v->el[i]->len;

    return v->el[i]->str;
}


/*
 * Keys (engine_redis.h): "wh:{ws}:" what ch.  what is "m:", "h:" or "p:"
 * for a channel's meta, history and pub/sub channel (with wh_rnone: the
 * prefix the LIST script adds names to), "chans" or "usage" for the
 * workspace's.
 */

static const wh_str_t  wh_rnone = { "", 0 };


static void
wh_rkey(char *buf, const char *what, wh_str_t ws, wh_str_t ch)
{
    snprintf(buf, WH_RKEY_MAX, "wh:{%.*s}:%s%.*s", (int) ws.len, ws.data,
             what, (int) ch.len, ch.data);
}


/* "wh:{ws}:p:ch" back into ws and ch */
static int
wh_rkey_split(wh_str_t name, wh_str_t *ws, wh_str_t *ch)
{
    const char  *p, *end = name.data + name.len;

    if (name.len < 8 || memcmp(name.data, "wh:{", 4) != 0) {
        return -1;
    }

    p = memchr(name.data + 4, '}', name.len - 4);

    if (p == NULL || end - p < 4 || memcmp(p, "}:p:", 4) != 0) {
        return -1;
    }

    ws->data = name.data + 4;
    ws->len = p - ws->data;
    ch->data = p + 4;
    ch->len = end - ch->data;

    return 0;
}


static size_t
wh_rfkey(char *buf, wh_str_t ws, wh_str_t ch)
{
    memcpy(buf, ws.data, ws.len);
    buf[ws.len] = '\0';
    memcpy(buf + ws.len + 1, ch.data, ch.len);

    return ws.len + 1 + ch.len;
}


static void
wh_rwake(wh_engine_redis_t *re)
{
    if (re->base.handler && re->base.handler->wake) {
        re->base.handler->wake(re->base.handler_ctx);
    }
}


static int
wh_rdown_err(wh_engine_redis_t *re, wh_err_t *err)
{
    (void) re;

    wh_err(err, 503, "redis is unavailable");
    err->retry_s = 1;

    return -1;
}


/* the workspace's limits as Lua numbers ("0": none), from the daemon */
static void
wh_rlimits(wh_engine_redis_t *re, wh_str_t ws, char *channels,
    char *bytes)
{
    uint64_t  ch = UINT64_MAX, hb = UINT64_MAX;

    if (re->base.handler && re->base.handler->limits) {
        re->base.handler->limits(re->base.handler_ctx, ws, &ch, &hb);
    }

    snprintf(channels, 24, "%" PRIu64, ch == UINT64_MAX ? 0 : ch);

    if (bytes != NULL) {
        snprintf(bytes, 24, "%" PRIu64, hb == UINT64_MAX ? 0 : hb);
    }
}


/*
 * Reads outside a write.  The first run asks Redis and answers
 * WH_ENGINE_AGAIN; the reply is kept under the read's key, the daemon
 * is woken and runs the operation again, which finds it.  Kept only
 * WH_RCACHE_TTL_MS, so that a later read asks again.
 */

typedef struct {
    wh_engine_redis_t  *re;
    size_t              klen;
    char                key[];
} wh_rfetch_t;


static void
wh_rc_reply(void *data, redisReply *reply, const char *why)
{
    wh_rfetch_t        *f = data;
    wh_rcache_t        *c;
    wh_engine_redis_t  *re = f->re;

    c = wh_map_get(&re->cache, f->key, f->klen);

    if (c != NULL && c->state == WH_RC_FETCHING) {
        c->ready_ms = wh_loop_now();

        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            wh_log_error(re->base.log, "redis: a read failed: %s",
                         reply ? reply->str : why);
            c->state = WH_RC_FAILED;

        } else {
            c->rv = wh_rv_copy(reply);
            c->state = c->rv ? WH_RC_READY : WH_RC_FAILED;
        }
    }

    free(f);
    wh_rwake(re);
}


/* 0 with *rv, -1 with err, or WH_ENGINE_AGAIN; argv as
 * wh_redis_eval()'s */
static int
wh_rc_read(wh_engine_redis_t *re, const char *key, size_t klen,
    wh_redis_script_t *script, int argc, const char **argv, wh_rv_t **rv,
    wh_err_t *err)
{
    wh_rcache_t  *c;
    wh_rfetch_t  *f;

    c = wh_map_get(&re->cache, key, klen);

    if (c != NULL) {
        if (c->state == WH_RC_READY) {
            *rv = c->rv;
            return 0;
        }

        if (c->state == WH_RC_FAILED) {
            return wh_rdown_err(re, err);
        }

        return WH_ENGINE_AGAIN;
    }

    if (!wh_redis_up(re->redis)) {
        return wh_rdown_err(re, err);
    }

    if (re->cache.count >= WH_RCACHE_MAX) {
        return wh_err(err, 503, "too many reads waiting for redis");
    }

    c = calloc(1, sizeof(wh_rcache_t));
    f = malloc(sizeof(wh_rfetch_t) + klen);

    if (c == NULL || f == NULL || wh_map_put(&re->cache, key, klen, c)
                                  == NULL)
    {
        free(c);
        free(f);
        return wh_err(err, 503, "out of memory");
    }

    f->re = re;
    f->klen = klen;
    memcpy(f->key, key, klen);

    if (wh_redis_eval(re->redis, script, wh_rc_reply, f, argc, argv, NULL)
        != 0)
    {
        wh_map_del(&re->cache, key, klen);
        free(c);
        free(f);
        return wh_rdown_err(re, err);
    }

    return WH_ENGINE_AGAIN;
}


/* drops the answers in older than max_age ms (all with -1) */
static void
wh_rc_expire(wh_engine_redis_t *re, int64_t now, int64_t max_age)
{
    wh_rcache_t     *c;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&re->cache, &it)) != NULL) {
        c = e->value;

        if (c->state != WH_RC_FETCHING
            && (max_age < 0 || now - c->ready_ms > max_age))
        {
            wh_rv_free(c->rv);
            free(c);
            wh_map_del(&re->cache, e->key, e->klen);
        }
    }
}


void
wh_rch_tick(wh_engine_redis_t *re, int64_t now)
{
    wh_rc_expire(re, now, WH_RCACHE_TTL_MS);
}


/* a read key: a kind letter, then the parts, NUL-separated */
static size_t
wh_rc_key(char *buf, char kind, wh_str_t ws, wh_str_t ch, uint64_t n)
{
    size_t  len;

    buf[0] = kind;
    len = 1 + wh_rfkey(buf + 1, ws, ch);
    memcpy(buf + len, &n, sizeof(n));

    return len + sizeof(n);
}


/* the READ script's command: meta, and up to count entries after
 * `after` */
typedef struct {
    char         mkey[WH_RKEY_MAX], hkey[WH_RKEY_MAX];
    char         after[24], count[24];
    const char  *argv[7];
} wh_rread_t;


static void
wh_rread_args(wh_rread_t *r, wh_str_t ws, wh_str_t ch, uint64_t after,
    size_t count)
{
    wh_rkey(r->mkey, "m:", ws, ch);
    wh_rkey(r->hkey, "h:", ws, ch);
    snprintf(r->after, sizeof(r->after), "%" PRIu64, after);
    snprintf(r->count, sizeof(r->count), "%zu", count);

    r->argv[2] = "2";
    r->argv[3] = r->mkey;
    r->argv[4] = r->hkey;
    r->argv[5] = r->after;
    r->argv[6] = r->count;
}


static int
wh_rc_hist(wh_engine_redis_t *re, wh_str_t ws, wh_str_t ch, uint64_t after,
    size_t count, wh_rv_t **rv, wh_err_t *err)
{
    char        key[WH_RKEY_MAX * 2];
    size_t      klen;
    wh_rread_t  r;

    klen = wh_rc_key(key, 'H', ws, ch, after);
    wh_rread_args(&r, ws, ch, after, count);

    return wh_rc_read(re, key, klen, &wh_script_read, 7, r.argv, rv, err);
}


/* meta from a READ reply: 1 found, 0 not */
static int
wh_rv_meta(const wh_rv_t *v, wh_chan_meta_t *meta)
{
    size_t       len;
    const char  *epoch;

    memset(meta, 0, sizeof(wh_chan_meta_t));

    if (wh_rv_int(v, 0) != 1) {
        return 0;
    }

    meta->last_id = (uint64_t) wh_rv_int(v, 1);
    epoch = wh_rv_str(v, 2, &len);
    memcpy(meta->epoch, epoch, len < WH_EPOCH_LEN ? len : WH_EPOCH_LEN);
    meta->created_ms = wh_rv_int(v, 3);
    meta->first_id = (uint64_t) wh_rv_int(v, 4);

    return 1;
}


/* followed channels */

static wh_rfollow_t *
wh_rf_find(wh_engine_redis_t *re, wh_str_t ws, wh_str_t ch)
{
    char  key[WH_RKEY_MAX];

    return wh_map_get(&re->follows, key, wh_rfkey(key, ws, ch));
}


static void
wh_rf_ring_clear(wh_rfollow_t *f)
{
    unsigned  i;

    for (i = 0; i < WH_RFOLLOW_RING; i++) {
        free(f->ring[i]);
        f->ring[i] = NULL;
    }

    f->ring_head = 0;
    f->ring_n = 0;
}


/* the kept message of that id, or NULL */
static const wh_rmsg_t *
wh_rf_ring_get(const wh_rfollow_t *f, uint64_t id)
{
    uint64_t  back;

    if (id > f->last || f->last - id >= f->ring_n) {
        return NULL;
    }

    back = f->last - id;

    return f->ring[(f->ring_head + WH_RFOLLOW_RING - 1 - back)
                   % WH_RFOLLOW_RING];
}


static void
wh_rf_deliver(wh_engine_redis_t *re, wh_rfollow_t *f, wh_rmsg_t *m)
{
    wh_str_t  text;

    text.data = m->text;
    text.len = m->len;
    f->last = m->id;
    re->delivered++;

    if (re->base.handler && re->base.handler->message) {
        re->base.handler->message(re->base.handler_ctx, f->ws, f->ch, m->id,
                                  f->epoch, m->time_ms, text);
    }

    free(f->ring[f->ring_head]);
    f->ring[f->ring_head] = m;
    f->ring_head = (f->ring_head + 1) % WH_RFOLLOW_RING;

    if (f->ring_n < WH_RFOLLOW_RING) {
        f->ring_n++;
    }
}


static wh_rmsg_t *
wh_rmsg_new(uint64_t id, const char *epoch, int64_t time_ms,
    const char *text, size_t len)
{
    wh_rmsg_t  *m;

    m = malloc(sizeof(wh_rmsg_t) + len + 1);

    if (m == NULL) {
        return NULL;
    }

    m->next = NULL;
    m->id = id;
    m->time_ms = time_ms;
    memcpy(m->epoch, epoch, WH_EPOCH_LEN);
    m->epoch[WH_EPOCH_LEN] = '\0';
    m->len = len;
    memcpy(m->text, text, len);
    m->text[len] = '\0';

    return m;
}


static void wh_rf_sync(wh_engine_redis_t *re, wh_rfollow_t *f,
    uint64_t after, size_t count);


/* a message in order: delivered, dropped as seen, or the gap before
 * it read back first (it then waits at the head of pending) */
static void
wh_rf_live(wh_engine_redis_t *re, wh_rfollow_t *f, wh_rmsg_t *m)
{
    if (f->epoch[0] == '\0' || memcmp(f->epoch, m->epoch, WH_EPOCH_LEN)) {
        /* the channel was made (again) after this node read it */
        if (f->epoch[0] != '\0') {
            wh_rf_ring_clear(f);
        }

        memcpy(f->epoch, m->epoch, WH_EPOCH_LEN + 1);
        f->last = m->id - 1;
    }

    if (m->id <= f->last) {
        free(m);
        return;
    }

    if (m->id == f->last + 1) {
        wh_rf_deliver(re, f, m);
        return;
    }

    m->next = f->pending;
    f->pending = m;

    if (f->pending_tail == &f->pending) {
        f->pending_tail = &m->next;
    }

    wh_rf_sync(re, f, f->last, (size_t) (m->id - 1 - f->last));
}


/* delivers what arrived while the channel was syncing, in order */
static void
wh_rf_drain(wh_engine_redis_t *re, wh_rfollow_t *f)
{
    wh_rmsg_t  *m;

    while (f->state == WH_RF_READY && f->pending != NULL) {
        m = f->pending;
        f->pending = m->next;

        if (f->pending == NULL) {
            f->pending_tail = &f->pending;
        }

        m->next = NULL;
        wh_rf_live(re, f, m);
    }
}


typedef struct {
    wh_engine_redis_t  *re;
    uint64_t            gen;
    size_t              klen;
    char                key[];
} wh_rsync_t;


/* "TIME TEXT", a history entry */
static int
wh_rentry(const char *s, size_t len, int64_t *time_ms, const char **text,
    size_t *tlen)
{
    const char  *sp;

    sp = memchr(s, ' ', len);

    if (sp == NULL) {
        return -1;
    }

    *time_ms = strtoll(s, NULL, 10);
    *text = sp + 1;
    *tlen = len - (sp + 1 - s);

    return 0;
}


static void
wh_rf_synced(void *data, redisReply *reply, const char *why)
{
    size_t              i, len;
    int64_t             t;
    uint64_t            from, last, id;
    wh_rv_t            *v;
    wh_rmsg_t          *m;
    wh_rsync_t         *s = data;
    const char         *epoch, *text;
    wh_rfollow_t       *f;
    wh_engine_redis_t  *re = s->re;

    f = wh_map_get(&re->follows, s->key, s->klen);

    if (f == NULL || f->gen != s->gen) {
        free(s);
        return;
    }

    free(s);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        /* the connection is given up and made anew: the SUBSCRIBE
         * that follows it syncs again */
        wh_log_error(re->base.log, "redis: cannot read channel "
                     "\"%.*s\": %s", (int) f->ch.len, f->ch.data,
                     reply ? reply->str : why);
        f->state = WH_RF_SUBSCRIBING;
        wh_rwake(re);
        return;
    }

    v = wh_rv_copy(reply);

    if (v == NULL) {
        f->state = WH_RF_SUBSCRIBING;
        wh_rwake(re);
        return;
    }

    if (wh_rv_int(v, 0) == 1) {
        last = (uint64_t) wh_rv_int(v, 1);
        epoch = wh_rv_str(v, 2, &len);

        if (!f->synced || len != WH_EPOCH_LEN
            || memcmp(f->epoch, epoch, WH_EPOCH_LEN) != 0)
        {
            /* first read, or a channel made anew: from now on */
            if (f->synced) {
                wh_rf_ring_clear(f);
            }

            memcpy(f->epoch, epoch, len < WH_EPOCH_LEN ? len
                                                      : WH_EPOCH_LEN);
            f->epoch[WH_EPOCH_LEN] = '\0';
            f->last = last;

        } else {
            from = (uint64_t) wh_rv_int(v, 5);

            if (from > f->last + 1 && f->last < last) {
                wh_log_warn(re->base.log, "redis: channel \"%.*s\": "
                            "messages %" PRIu64 "..%" PRIu64 " left the "
                            "history before they were delivered here",
                            (int) f->ch.len, f->ch.data, f->last + 1,
                            from - 1);
                f->last = from - 1;
            }

            for (i = 6; i < v->n; i++) {
                id = from + (i - 6);

                if (id <= f->last
                    || wh_rentry(v->el[i]->str, v->el[i]->len, &t, &text,
                                 &len) != 0)
                {
                    continue;
                }

                m = wh_rmsg_new(id, f->epoch, t, text, len);

                if (m == NULL) {
                    break;
                }

                re->gaps++;
                wh_rf_deliver(re, f, m);
            }
        }

    } else if (!f->synced) {
        f->last = 0;
        f->epoch[0] = '\0';
    }

    wh_rv_free(v);
    f->synced = 1;
    f->state = WH_RF_READY;
    wh_rf_drain(re, f);
    wh_rwake(re);
}


/* reads last and epoch (count 0) or a gap, then delivers */
static void
wh_rf_sync(wh_engine_redis_t *re, wh_rfollow_t *f, uint64_t after,
    size_t count)
{
    size_t       klen;
    wh_rread_t   r;
    wh_rsync_t  *s;

    f->state = WH_RF_SYNCING;
    klen = f->ws.len + 1 + f->ch.len;
    s = malloc(sizeof(wh_rsync_t) + klen);

    if (s == NULL) {
        f->state = WH_RF_SUBSCRIBING;
        return;
    }

    s->re = re;
    s->gen = f->gen;
    s->klen = klen;
    memcpy(s->key, f->key, klen);

    wh_rread_args(&r, f->ws, f->ch, after, count);

    if (wh_redis_eval(re->redis, &wh_script_read, wh_rf_synced, s, 7,
                      r.argv, NULL)
        != 0)
    {
        free(s);
        f->state = WH_RF_SUBSCRIBING;
    }
}


static void
wh_rf_free(wh_rfollow_t *f)
{
    wh_rmsg_t  *m, *next;

    for (m = f->pending; m != NULL; m = next) {
        next = m->next;
        free(m);
    }

    wh_rf_ring_clear(f);
    free(f->pubsub);
    free(f->key);
    free(f);
}


int
wh_rch_chan_follow(wh_engine_t *e, wh_str_t ws, wh_str_t ch, int on,
    wh_err_t *err)
{
    char                key[WH_RKEY_MAX], name[WH_RKEY_MAX];
    size_t              klen;
    wh_str_t            pubsub;
    wh_rfollow_t       *f;
    wh_engine_redis_t  *re = (wh_engine_redis_t *) e;

    klen = wh_rfkey(key, ws, ch);
    f = wh_map_get(&re->follows, key, klen);
    wh_rkey(name, "p:", ws, ch);
    pubsub.data = name;
    pubsub.len = strlen(name);

    if (!on) {
        if (f != NULL) {
            wh_map_del(&re->follows, key, klen);
            (void) wh_redis_unsubscribe(re->redis, pubsub);
            wh_rf_free(f);
        }

        return 0;
    }

    if (f == NULL) {
        f = calloc(1, sizeof(wh_rfollow_t));

        if (f == NULL || (f->key = malloc(klen)) == NULL
            || (f->pubsub = strdup(name)) == NULL)
        {
            if (f) {
                free(f->key);
                free(f);
            }

            return wh_err(err, 503, "out of memory");
        }

        memcpy(f->key, key, klen);
        f->ws.data = f->key;
        f->ws.len = ws.len;
        f->ch.data = f->key + ws.len + 1;
        f->ch.len = ch.len;
        f->pending_tail = &f->pending;
        f->gen = ++re->gen;

        if (wh_map_put(&re->follows, key, klen, f) == NULL
            || wh_redis_subscribe(re->redis, pubsub) != 0)
        {
            wh_map_del(&re->follows, key, klen);
            wh_rf_free(f);
            return wh_err(err, 503, "out of memory");
        }
    }

    if (f->state == WH_RF_READY) {
        return 0;
    }

    return wh_redis_up(re->redis) ? WH_ENGINE_AGAIN : wh_rdown_err(re, err);
}


void
wh_rch_subscribed(wh_engine_redis_t *re, wh_str_t channel)
{
    wh_str_t       ws, ch;
    wh_rfollow_t  *f;

    if (wh_rkey_split(channel, &ws, &ch) != 0) {
        return;
    }

    f = wh_rf_find(re, ws, ch);

    if (f != NULL && f->state == WH_RF_SUBSCRIBING) {
        /* after a lost connection: what was published meanwhile */
        wh_rf_sync(re, f, f->last, f->synced ? re->conf.hist_len : 0);
    }
}


/* "ID EPOCH TIME TEXT" */
void
wh_rch_message(wh_engine_redis_t *re, wh_str_t channel, wh_str_t payload)
{
    char          *end;
    int64_t        t;
    uint64_t       id;
    wh_str_t       ws, ch;
    wh_rmsg_t     *m;
    const char    *p = payload.data, *stop = payload.data + payload.len;
    const char    *epoch;
    wh_rfollow_t  *f;

    if (wh_rkey_split(channel, &ws, &ch) != 0
        || (f = wh_rf_find(re, ws, ch)) == NULL)
    {
        return;
    }

    id = strtoull(p, &end, 10);

    if (end >= stop || *end != ' ' || stop - end < WH_EPOCH_LEN + 3) {
        goto bad;
    }

    epoch = end + 1;
    p = epoch + WH_EPOCH_LEN;

    if (*p != ' ') {
        goto bad;
    }

    t = strtoll(p + 1, &end, 10);

    if (end >= stop || *end != ' ' || id == 0) {
        goto bad;
    }

    m = wh_rmsg_new(id, epoch, t, end + 1, stop - (end + 1));

    if (m == NULL) {
        wh_log_error(re->base.log, "redis: out of memory for a message");
        return;
    }

    if (f->state != WH_RF_READY) {
        *f->pending_tail = m;
        f->pending_tail = &m->next;
        return;
    }

    wh_rf_live(re, f, m);
    return;

bad:

    wh_log_warn(re->base.log, "redis: a malformed message on \"%.*s\"",
                (int) channel.len, channel.data);
}


void
wh_rch_up(wh_engine_redis_t *re)
{
    wh_rwake(re);
}


void
wh_rch_down(wh_engine_redis_t *re)
{
    wh_rfollow_t    *f;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&re->follows, &it)) != NULL) {
        f = e->value;
        f->state = WH_RF_SUBSCRIBING;
        f->gen = ++re->gen;
    }

    /* what is parked fails now rather than waiting for Redis */
    wh_rwake(re);
}


void
wh_rch_free(wh_engine_redis_t *re)
{
    wh_rcache_t     *c;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;
    size_t           i;

    while ((e = wh_map_next(&re->follows, &it)) != NULL) {
        wh_rf_free(e->value);
    }

    wh_map_free(&re->follows);
    memset(&it, 0, sizeof(it));

    while ((e = wh_map_next(&re->cache, &it)) != NULL) {
        c = e->value;
        wh_rv_free(c->rv);
        free(c);
    }

    wh_map_free(&re->cache);

    for (i = 0; i < re->hist.npubs; i++) {
        free(re->hist.pubs[i].ws);
        free(re->hist.pubs[i].ch);
        free(re->hist.pubs[i].prefix);
        free(re->hist.pubs[i].suffix);
        free(re->hist.pubs[i].pubsub);
        free(re->hist.pubs[i].msg);
    }

    free(re->hist.pubs);
}


/* the channel operations */

int
wh_rch_chan_meta(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, wh_err_t *err)
{
    int                 rc;
    wh_rv_t            *v;
    wh_rfollow_t       *f;
    wh_engine_redis_t  *re = (wh_engine_redis_t *) e;

    f = wh_rf_find(re, ws, ch);

    /* what was delivered here, not what Redis holds now: the
     * subscriber gets the rest live */
    if (f != NULL && f->state == WH_RF_READY) {
        memset(meta, 0, sizeof(wh_chan_meta_t));

        if (f->epoch[0] == '\0') {
            return 0;
        }

        meta->last_id = f->last;
        meta->first_id = f->last + 1 - f->ring_n;
        memcpy(meta->epoch, f->epoch, WH_EPOCH_LEN + 1);
        return 1;
    }

    rc = wh_rc_hist(re, ws, ch, 0, 0, &v, err);

    return rc != 0 ? rc : wh_rv_meta(v, meta);
}


typedef struct {
    wh_engine_redis_t  *re;
    char                key[WH_RKEY_MAX * 2];
    size_t              klen;
} wh_rensure_t;


int
wh_rch_chan_ensure(wh_engine_t *e, wh_str_t ws, wh_str_t ch, int64_t now,
    wh_chan_meta_t *meta, wh_err_t *err)
{
    int                 rc;
    char                key[WH_RKEY_MAX * 2], mkey[WH_RKEY_MAX];
    char                ckey[WH_RKEY_MAX], epoch[WH_EPOCH_LEN + 1], t[24];
    char                wsz[WH_WORKSPACE_MAX + 1], chz[WH_CHANNEL_MAX + 1];
    size_t              klen, len;
    wh_rv_t            *v;
    const char         *argv[9], *ep;
    wh_rfollow_t       *f;
    wh_engine_redis_t  *re = (wh_engine_redis_t *) e;

    f = wh_rf_find(re, ws, ch);

    if (f != NULL && f->state == WH_RF_READY && f->epoch[0] != '\0') {
        return wh_rch_chan_meta(e, ws, ch, meta, err) == 1 ? 0 : -1;
    }

    klen = wh_rc_key(key, 'E', ws, ch, 0);
    wh_rkey(mkey, "m:", ws, ch);
    wh_rkey(ckey, "chans", ws, wh_rnone);
    snprintf(wsz, sizeof(wsz), "%.*s", (int) ws.len, ws.data);
    snprintf(chz, sizeof(chz), "%.*s", (int) ch.len, ch.data);
    snprintf(t, sizeof(t), "%" PRId64, now);
    wh_epoch_new(epoch);

    argv[2] = "3";
    argv[3] = mkey;
    argv[4] = ckey;
    argv[5] = WH_RWORKSPACES;
    argv[6] = chz;
    argv[7] = t;
    argv[8] = epoch;

    {
        char         lim[24];
        const char  *full[11];

        wh_rlimits(re, ws, lim, NULL);
        memcpy(full, argv, sizeof(argv));
        full[9] = wsz;
        full[10] = lim;
        rc = wh_rc_read(re, key, klen, &wh_script_ensure, 11, full, &v,
                        err);
    }

    if (rc != 0) {
        return rc;
    }

    if (wh_rv_int(v, 0) == -1) {
        return WH_ENGINE_NO_CHANNEL;
    }

    memset(meta, 0, sizeof(wh_chan_meta_t));
    meta->last_id = (uint64_t) wh_rv_int(v, 0);
    ep = wh_rv_str(v, 1, &len);
    memcpy(meta->epoch, ep, len < WH_EPOCH_LEN ? len : WH_EPOCH_LEN);
    meta->created_ms = wh_rv_int(v, 2);
    meta->first_id = meta->last_id + 1;

    if (f != NULL && f->state == WH_RF_READY && f->epoch[0] == '\0') {
        /* made now (or by another node since this one read it): what
         * is delivered starts from what this node has seen */
        memcpy(f->epoch, meta->epoch, WH_EPOCH_LEN + 1);
        meta->last_id = f->last;
    }

    return 0;
}


int
wh_rch_chan_list(wh_engine_t *e, wh_str_t ws, wh_str_t after,
    wh_chan_item_pt cb, void *ctx, wh_err_t *err)
{
    int                 rc;
    char                key[WH_RKEY_MAX * 2], ckey[WH_RKEY_MAX];
    char                min[WH_CHANNEL_MAX + 2], n[24];
    char                mpre[WH_RKEY_MAX], hpre[WH_RKEY_MAX];
    size_t              klen, i, len;
    wh_rv_t            *v;
    const char         *argv[8], *name, *ep;
    wh_chan_meta_t      meta;
    wh_engine_redis_t  *re = (wh_engine_redis_t *) e;

    klen = wh_rc_key(key, 'L', ws, after, 0);
    wh_rkey(ckey, "chans", ws, wh_rnone);

    if (after.len) {
        snprintf(min, sizeof(min), "(%.*s", (int) after.len, after.data);
    } else {
        strcpy(min, "-");
    }

    snprintf(n, sizeof(n), "%d", WH_RLIST_MAX);
    wh_rkey(mpre, "m:", ws, wh_rnone);
    wh_rkey(hpre, "h:", ws, wh_rnone);

    argv[2] = "1";
    argv[3] = ckey;
    argv[4] = min;
    argv[5] = n;
    argv[6] = mpre;
    argv[7] = hpre;

    rc = wh_rc_read(re, key, klen, &wh_script_list, 8, argv, &v, err);

    if (rc != 0) {
        return rc;
    }

    for (i = 0; i + 4 < v->n; i += 5) {
        memset(&meta, 0, sizeof(meta));
        name = wh_rv_str(v, i, &len);
        meta.last_id = (uint64_t) wh_rv_int(v, i + 1);
        ep = wh_rv_str(v, i + 2, &klen);
        memcpy(meta.epoch, ep, klen < WH_EPOCH_LEN ? klen : WH_EPOCH_LEN);
        meta.created_ms = wh_rv_int(v, i + 3);
        meta.first_id = (uint64_t) wh_rv_int(v, i + 4);

        if (cb(ctx, name, len, &meta) != 0) {
            break;
        }
    }

    return 0;
}


int
wh_rch_ws_usage(wh_engine_t *e, wh_str_t ws, int64_t now,
    uint64_t *channels, uint64_t *bytes, wh_err_t *err)
{
    int                 rc;
    char                key[WH_RKEY_MAX * 2], ckey[WH_RKEY_MAX];
    char                ukey[WH_RKEY_MAX], hpre[WH_RKEY_MAX];
    char                t[24], ttl[24];
    size_t              klen;
    wh_rv_t            *v;
    const char         *argv[8];
    long long           n;
    wh_engine_redis_t  *re = (wh_engine_redis_t *) e;

    klen = wh_rc_key(key, 'U', ws, wh_rnone, 0);
    wh_rkey(ckey, "chans", ws, wh_rnone);
    wh_rkey(ukey, "usage", ws, wh_rnone);
    wh_rkey(hpre, "h:", ws, wh_rnone);
    snprintf(t, sizeof(t), "%" PRId64, now);
    snprintf(ttl, sizeof(ttl), "%" PRId64, re->conf.hist_ttl_ms);

    argv[2] = "2";
    argv[3] = ckey;
    argv[4] = ukey;
    argv[5] = hpre;
    argv[6] = t;
    argv[7] = ttl;

    rc = wh_rc_read(re, key, klen, &wh_script_usage, 8, argv, &v, err);

    if (rc != 0) {
        return rc;
    }

    n = wh_rv_int(v, 0);
    *channels = n > 0 ? (uint64_t) n : 0;
    n = wh_rv_int(v, 1);
    *bytes = n > 0 ? (uint64_t) n : 0;

    return 0;
}


/*
 * History: a followed channel's recent messages are kept here; the
 * rest is read from Redis.  A read must reach up_to when it is within
 * what was delivered here (a resume joins the live messages there):
 * if neither reaches, the fetch is stale and is made again.
 */

typedef struct {
    const wh_rv_t       *v;         /* entries from `from`, or NULL */
    uint64_t             from, to;
    const wh_rfollow_t  *f;         /* its ring, or NULL */
} wh_rsrc_t;


static int
wh_rsrc_get(const wh_rsrc_t *s, uint64_t id, int64_t *t, const char **text,
    size_t *len)
{
    const wh_rv_t    *el;
    const wh_rmsg_t  *m;

    if (s->f != NULL && (m = wh_rf_ring_get(s->f, id)) != NULL) {
        *t = m->time_ms;
        *text = m->text;
        *len = m->len;
        return 0;
    }

    if (s->v == NULL || id < s->from || id > s->to) {
        return -1;
    }

    el = s->v->el[6 + (id - s->from)];

    return wh_rentry(el->str, el->len, t, text, len);
}


int
wh_rch_hist_read(wh_engine_t *e, wh_str_t ws, wh_str_t ch, uint64_t after,
    uint64_t up_to, size_t limit, int64_t now, wh_hist_item_pt cb,
    void *ctx, wh_hist_range_t *r, wh_err_t *err)
{
    int                 rc, stop = 0;
    char                key[WH_RKEY_MAX * 2];
    size_t              len;
    int64_t             t;
    uint64_t            id, end, last;
    wh_rv_t            *v = NULL;
    wh_rsrc_t           src;
    wh_rcache_t        *c;
    const char         *text;
    wh_rfollow_t       *f;
    wh_engine_redis_t  *re = (wh_engine_redis_t *) e;

    memset(r, 0, sizeof(wh_hist_range_t));
    memset(&src, 0, sizeof(src));
    f = wh_rf_find(re, ws, ch);

    if (f != NULL && f->state == WH_RF_READY && f->epoch[0] != '\0') {
        src.f = f;
        last = f->last;

        if (up_to > last) {
            up_to = last;
        }

        /* all of it kept here: no need to ask */
        if (after >= up_to || wh_rf_ring_get(f, after + 1) != NULL) {
            goto serve;
        }
    }

    rc = wh_rc_hist(re, ws, ch, after, re->conf.hist_len, &v, err);

    if (rc != 0) {
        return rc;
    }

    if (wh_rv_int(v, 0) != 1) {
        return 0;
    }

    src.v = v;
    src.from = (uint64_t) wh_rv_int(v, 5);
    src.to = src.from + (v->n > 6 ? v->n - 6 : 0) - 1;

    if (src.f == NULL) {
        last = (uint64_t) wh_rv_int(v, 1);

        if (up_to > last) {
            up_to = last;
        }

    } else if (src.to < up_to && wh_rf_ring_get(f, src.to + 1) == NULL
               && src.to < (uint64_t) wh_rv_int(v, 1))
    {
        /* more was delivered here since the fetch than is kept here:
         * fetch again */
        c = wh_map_del(&re->cache, key, wh_rc_key(key, 'H', ws, ch, after));

        if (c != NULL) {
            wh_rv_free(c->rv);
            free(c);
        }

        return wh_rc_hist(re, ws, ch, after, re->conf.hist_len, &v, err);
    }

serve:

    r->found = 1;

    if (src.f != NULL) {
        r->meta.last_id = src.f->last;
        memcpy(r->meta.epoch, src.f->epoch, WH_EPOCH_LEN + 1);
    } else {
        (void) wh_rv_meta(v, &r->meta);
    }

    end = up_to;

    for (id = after + 1; id <= end; id++) {
        if (wh_rsrc_get(&src, id, &t, &text, &len) != 0) {
            /* not in history any more (or not yet fetched) */
            if (r->count == 0) {
                continue;
            }

            break;
        }

        if (re->conf.hist_ttl_ms && t < now - re->conf.hist_ttl_ms) {
            continue;
        }

        if (r->count == limit) {
            stop = 1;
            break;
        }

        if (cb(ctx, id, t, text, len) != 0) {
            stop = 1;
            break;
        }

        if (r->count == 0) {
            r->first = id;
        }

        r->last = id;
        r->count++;
    }

    r->more = stop;

    return 0;
}


/*
 * The history write.  Its first run records each publish (chan_get
 * answers a placeholder, chan_append the text); the commit sends one
 * script per publish; once every reply is in, the caller runs the
 * write again and chan_get/chan_append answer what Redis made of each,
 * in the same order.
 */

static wh_engine_redis_t *
wh_rtxn(wh_etxn_t *t)
{
    return (wh_engine_redis_t *) t->engine;
}


int
wh_rch_chan_get(wh_etxn_t *t, wh_str_t ws, wh_str_t ch, int64_t now,
    int create, wh_chan_meta_t *meta, wh_err_t *err)
{
    wh_rpub_t          *p;
    wh_engine_redis_t  *re = wh_rtxn(t);

    (void) ws;
    (void) ch;
    (void) now;
    (void) create;
    (void) err;

    memset(meta, 0, sizeof(wh_chan_meta_t));

    if (re->hist.replay && re->hist.next < re->hist.npubs) {
        p = &re->hist.pubs[re->hist.next];
        meta->last_id = p->refused ? 0 : p->id - 1;
        memcpy(meta->epoch, p->epoch, WH_EPOCH_LEN + 1);
        return 1;
    }

    memcpy(meta->epoch, "--------", WH_EPOCH_LEN + 1);

    return 1;
}


static void
wh_rpub_clear(wh_rwrite_t *w)
{
    size_t  i;

    for (i = 0; i < w->npubs; i++) {
        free(w->pubs[i].ws);
        free(w->pubs[i].ch);
        free(w->pubs[i].prefix);
        free(w->pubs[i].suffix);
        free(w->pubs[i].pubsub);
        free(w->pubs[i].msg);
    }

    w->npubs = 0;
}


static char *
wh_rdup(const char *s, size_t len)
{
    char  *d = malloc(len + 1);

    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }

    return d;
}


int
wh_rch_chan_append(wh_etxn_t *t, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, int64_t now, const void *text, size_t len,
    int64_t room, int64_t *growth, wh_err_t *err)
{
    wh_rpub_t          *p, *pubs;
    const char         *s = text, *id, *ep;
    wh_rwrite_t        *w = &wh_rtxn(t)->hist;

    if (w->replay) {
        if (w->next >= w->npubs) {
            return wh_err(err, 500, "a publish was not recorded");
        }

        p = &w->pubs[w->next++];

        if (p->refused) {
            return p->refused;
        }

        meta->last_id = p->id;
        memcpy(meta->epoch, p->epoch, WH_EPOCH_LEN + 1);
        *growth = p->growth;
        return 0;
    }

    id = memmem(s, len, wh_id_mark, sizeof(wh_id_mark) - 1);
    ep = id ? memmem(id, len - (id - s), wh_epoch_mark,
                     sizeof(wh_epoch_mark) - 1)
            : NULL;

    if (ep == NULL || (size_t) (ep - s) + sizeof(wh_epoch_mark) - 1
                      + WH_EPOCH_LEN > len)
    {
        return wh_err(err, 500, "a message text without its id");
    }

    if (w->npubs == w->cap) {
        pubs = realloc(w->pubs, (w->cap + 16) * sizeof(wh_rpub_t));

        if (pubs == NULL) {
            return wh_err(err, 503, "out of memory");
        }

        w->pubs = pubs;
        w->cap += 16;
    }

    p = &w->pubs[w->npubs];
    memset(p, 0, sizeof(wh_rpub_t));
    p->ws = wh_rdup(ws.data, ws.len);
    p->ch = wh_rdup(ch.data, ch.len);
    p->prefix = wh_rdup(s, id - s + sizeof(wh_id_mark) - 1);
    ep += sizeof(wh_epoch_mark) - 1 + WH_EPOCH_LEN;
    p->suffix = wh_rdup(ep, len - (ep - s));
    p->pubsub = malloc(WH_RKEY_MAX);

    if (p->pubsub != NULL) {
        wh_rkey(p->pubsub, "p:", ws, ch);
    }

    p->now = now;
    p->room = room;
    w->npubs++;

    if (p->ws == NULL || p->ch == NULL || p->prefix == NULL
        || p->suffix == NULL || p->pubsub == NULL)
    {
        return wh_err(err, 503, "out of memory");
    }

    meta->last_id++;
    *growth = (int64_t) len;

    return 0;
}


/* a publish call's reply: the messages i to i + n - 1 of the write */
typedef struct {
    wh_engine_redis_t  *re;
    size_t              i, n;
} wh_rpubcb_t;


static void
wh_rwrite_fail(wh_rwrite_t *w, const char *what, const char *why)
{
    if (!w->failed) {
        w->failed = 1;
        wh_err(&w->err, 503, "redis: %s%s%s", what,
               what[0] != '\0' && why ? ": " : "", why ? why : "");
        w->err.retry_s = 1;
    }
}


/* a read answered before this write must not answer after it: every
 * reply reflects every publish acknowledged before it */
static void
wh_rwrite_done(wh_engine_redis_t *re)
{
    wh_rc_expire(re, 0, -1);
    re->hist.state = WH_RW_DONE;
    wh_rwake(re);
}


static void
wh_rpub_published(void *data, redisReply *reply, const char *why)
{
    (void) data;
    (void) reply;
    (void) why;
}


/* replicas_ack: the messages go out to the nodes only once that many
 * replicas have them, so that a failover cannot take back a message a
 * subscriber got (a publish not confirmed is answered 503; if it
 * survives, the next message's gap brings it).  The WAIT's reply comes
 * after every publish call's: it ends the write. */
static void
wh_rpub_waited(void *data, redisReply *reply, const char *why)
{
    size_t              i;
    wh_rpub_t          *p;
    const char         *argv[3];
    wh_engine_redis_t  *re = data;
    wh_rwrite_t        *w = &re->hist;

    w->wait_sent = 0;

    if (!w->failed
        && (reply == NULL || reply->type != REDIS_REPLY_INTEGER
            || reply->integer < (long long) re->conf.replicas_ack))
    {
        wh_rwrite_fail(w, "not confirmed by the replicas",
                       reply == NULL ? why : NULL);
    }

    /* a call failed, or the replicas did not confirm: nothing goes out */
    for (i = 0; !w->failed && i < w->npubs; i++) {
        p = &w->pubs[i];

        if (p->refused || p->msg == NULL) {
            continue;
        }

        argv[0] = "PUBLISH";
        argv[1] = p->pubsub;
        argv[2] = p->msg;
        (void) wh_redis_command(re->redis, wh_rpub_published, NULL, 3,
                                argv, NULL);
    }

    wh_rwrite_done(re);
}


/* right behind the publish calls, not after their replies: a round
 * trip less a write; it counts the replicas that have every write of
 * this connection so far, the calls' included */
static void
wh_rpub_wait(wh_engine_redis_t *re)
{
    wh_rwrite_t  *w = &re->hist;

    w->wait_sent = wh_redis_wait(re->redis, re->conf.replicas_ack,
                                 re->conf.ack_timeout_ms, wh_rpub_waited,
                                 re)
                   == 0;

    if (!w->wait_sent) {
        wh_rwrite_fail(w, "unavailable", NULL);
    }
}


/* one message's answer in a publish call's reply */
static void
wh_rpub_got(wh_rwrite_t *w, wh_rpub_t *p, const redisReply *r)
{
    size_t  len;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1
        || r->element[0]->type != REDIS_REPLY_INTEGER)
    {
        wh_rwrite_fail(w, "a bad reply", NULL);

    } else if (r->element[0]->integer == 0) {
        p->refused = r->elements > 1 && r->element[1]->integer == 2
                     ? WH_ENGINE_NO_CHANNEL : 1;

    } else if (r->elements >= 3 && r->element[1]->type == REDIS_REPLY_STRING
               && r->element[2]->type == REDIS_REPLY_INTEGER)
    {
        p->id = (uint64_t) r->element[0]->integer;
        len = r->element[1]->len;
        memcpy(p->epoch, r->element[1]->str,
               len < WH_EPOCH_LEN ? len : WH_EPOCH_LEN);
        p->growth = r->element[2]->integer;

        if (r->elements == 4 && r->element[3]->type == REDIS_REPLY_STRING) {
            p->msg = wh_rdup(r->element[3]->str, r->element[3]->len);

            if (p->msg == NULL) {
                wh_rwrite_fail(w, "out of memory", NULL);
            }
        }

    } else {
        wh_rwrite_fail(w, "a bad reply", NULL);
    }
}


static void
wh_rpub_reply(void *data, redisReply *reply, const char *why)
{
    size_t              k, i, n;
    wh_rpubcb_t        *cb = data;
    wh_engine_redis_t  *re = cb->re;
    wh_rwrite_t        *w = &re->hist;

    i = cb->i;
    n = cb->n;
    free(cb);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != n)
    {
        wh_rwrite_fail(w, "", reply && reply->str ? reply->str
                              : why ? why : "a bad reply");

    } else {
        for (k = 0; k < n; k++) {
            wh_rpub_got(w, &w->pubs[i + k], reply->element[k]);
        }
    }

    if (--w->waiting > 0 || w->wait_sent) {
        return;
    }

    wh_rwrite_done(re);
}


/* the messages i to i + n - 1 of the write, all of one channel, in one
 * call of the publish script */
static int
wh_rpub_send(wh_engine_redis_t *re, size_t i, size_t n)
{
    int           rc = -1;
    char          mkey[WH_RKEY_MAX], hkey[WH_RKEY_MAX], ckey[WH_RKEY_MAX];
    char          hl[24], ttl[24], room[24], lch[24], lbytes[24];
    char          ukey[WH_RKEY_MAX], hpre[WH_RKEY_MAX], (*now)[24] = NULL;
    char          epoch[WH_EPOCH_LEN + 1];
    size_t        k;
    wh_str_t      ws, ch;
    wh_rpub_t    *p = &re->hist.pubs[i];
    wh_rpubcb_t  *cb = NULL;
    const char  **argv = NULL;

    ws.data = p->ws;
    ws.len = strlen(p->ws);
    ch.data = p->ch;
    ch.len = strlen(p->ch);
    wh_rkey(mkey, "m:", ws, ch);
    wh_rkey(hkey, "h:", ws, ch);
    wh_rkey(ckey, "chans", ws, wh_rnone);
    snprintf(hl, sizeof(hl), "%" PRIu32, re->conf.hist_len);
    snprintf(ttl, sizeof(ttl), "%" PRId64, re->conf.hist_ttl_ms);
    /* the workspace's history bytes are counted here, over the
     * cluster (lbytes); the daemon's room is its node's own count */
    snprintf(room, sizeof(room), "%" PRId64, INT64_MAX);
    wh_epoch_new(epoch);

    wh_rkey(ukey, "usage", ws, wh_rnone);
    wh_rkey(hpre, "h:", ws, wh_rnone);
    wh_rlimits(re, ws, lch, lbytes);

    argv = malloc((19 + 3 * n) * sizeof(char *));
    now = malloc(n * sizeof(*now));
    cb = malloc(sizeof(wh_rpubcb_t));

    if (argv == NULL || now == NULL || cb == NULL) {
        goto done;
    }

    argv[2] = "5";
    argv[3] = mkey;
    argv[4] = hkey;
    argv[5] = ckey;
    argv[6] = WH_RWORKSPACES;
    argv[7] = ukey;
    argv[8] = p->ch;
    argv[9] = hl;
    argv[10] = ttl;
    argv[11] = room;
    argv[12] = epoch;
    argv[13] = p->pubsub;
    argv[14] = p->ws;
    argv[15] = re->conf.replicas_ack ? "0" : "1";
    argv[16] = lch;
    argv[17] = lbytes;
    argv[18] = hpre;

    for (k = 0; k < n; k++) {
        snprintf(now[k], sizeof(now[k]), "%" PRId64, p[k].now);
        argv[19 + 3 * k] = now[k];
        argv[20 + 3 * k] = p[k].prefix;
        argv[21 + 3 * k] = p[k].suffix;
    }

    cb->re = re;
    cb->i = i;
    cb->n = n;

    if (wh_redis_eval(re->redis, &wh_script_publish, wh_rpub_reply, cb,
                      (int) (19 + 3 * n), argv, NULL)
        != 0)
    {
        goto done;
    }

    cb = NULL;
    re->hist.waiting++;
    rc = 0;

done:

    free(cb);
    free(now);
    free(argv);

    return rc;
}


/* the messages from i on that are of message i's channel (one call) */
static size_t
wh_rpub_group(const wh_rwrite_t *w, size_t i)
{
    size_t  n;

    for (n = 1; i + n < w->npubs && n < WH_RPUB_GROUP; n++) {
        if (strcmp(w->pubs[i + n].ch, w->pubs[i].ch) != 0
            || strcmp(w->pubs[i + n].ws, w->pubs[i].ws) != 0)
        {
            break;
        }
    }

    return n;
}


int
wh_rch_write(wh_engine_redis_t *re, wh_engine_txn_pt fn, void *ctx,
    wh_err_t *err)
{
    int           rc;
    size_t        i, n;
    wh_etxn_t     t;
    wh_rwrite_t  *w = &re->hist;

    t.engine = &re->base;
    t.space = WH_ENGINE_HISTORY;
    t.impl = NULL;
    t.unchecked = 0;

    if (w->state == WH_RW_COMMITTING) {
        return WH_ENGINE_AGAIN;
    }

    if (w->state == WH_RW_DONE) {
        w->state = WH_RW_IDLE;

        if (w->failed) {
            *err = w->err;
            wh_rpub_clear(w);
            return -1;
        }

        w->replay = 1;
        w->next = 0;
        rc = fn(&t, ctx, err);
        w->replay = 0;
        wh_rpub_clear(w);

        return rc;
    }

    if (!wh_redis_up(re->redis)) {
        return wh_rdown_err(re, err);
    }

    wh_rpub_clear(w);
    w->failed = 0;
    w->waiting = 0;
    w->wait_sent = 0;

    if (fn(&t, ctx, err) != 0) {
        wh_rpub_clear(w);
        return -1;
    }

    if (w->npubs == 0) {
        return 0;
    }

    for (i = 0; i < w->npubs; i += n) {
        n = wh_rpub_group(w, i);

        if (wh_rpub_send(re, i, n) != 0) {
            /* those sent answer; the rest fails the write with them */
            if (!w->failed) {
                w->failed = 1;
                wh_err(&w->err, 503, "redis is unavailable");
                w->err.retry_s = 1;
            }

            break;
        }
    }

    if (w->waiting == 0) {
        *err = w->err;
        wh_rpub_clear(w);
        return -1;
    }

    if (re->conf.replicas_ack && !w->failed) {
        wh_rpub_wait(re);
    }

    w->state = WH_RW_COMMITTING;

    return WH_ENGINE_AGAIN;
}
