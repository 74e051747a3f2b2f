/*
 * kv_probe: worker/kv_redis.c alone on the loop against a real Redis,
 * for t/test_kv_redis.py.
 *
 *   --mode model   runs --txns random transactions (puts, NOOVERWRITE
 *                  puts, deletes, gets, cursor walks both ways with
 *                  deletes under the cursor) and checks every answer
 *                  of the committed run of each against an in-memory
 *                  model of LMDB's semantics
 *   --mode count   each transaction reads a counter, writes it plus
 *                  one and adds a key of its own: run several at once
 *   --mode check   walks what count mode wrote and prints the counter
 *                  and the keys found (one transaction unless --txns)
 *   --mode pair    each transaction sets two keys of one workspace to
 *                  one new value
 *   --mode snap    each transaction reads the first key, then (a round
 *                  of reads later) the second: the two must agree
 *                  ("torn" counts those that did not; "moved" the
 *                  values seen change from one to the next)
 *   --mode snapw   as snap, and puts a key of its own: a write, whose
 *                  commit checks the two keys it read
 *   --mode xpair   as pair, its second key in another workspace (w8)
 *   --mode xsnap   as snap, of xpair's keys: the reads of two rounds in
 *                  two workspaces
 *   --mode own     each transaction adds one to a counter of its own
 *                  (--id) in workspace w6, which other probes share
 *   --mode move    each transaction moves the one key of workspace w8
 *                  to the next name, "k" and a number, its value that
 *                  number ("counter": the last)
 *   --mode reserve each transaction takes two runs of numbers of the
 *                  command seq counter (cmd_meta "seq"), 1 to 64 each,
 *                  and puts one key of its own: a line {"ev":"took",
 *                  "first":F,"n":N} for each run it committed
 *   --mode reservec  as reserve, adding one to pair's "a" instead:
 *                  its commits refuse each other's
 *   --mode oldseq  the same counter the way wirehubd read it before
 *                  reservations: a get and a put checked at the commit
 *   --mode walk    each transaction reads w8 with a cursor (a range
 *                  read: its keys, then their values): one key whose
 *                  value is its number, or it counts as "torn"
 *   --mode peek    each transaction reads pair's "a" and walks w8
 *                  unchecked (kv.h), as a refresh beside writes does,
 *                  then does what own does
 *   --mode peekc   the same with those reads checked
 *
 * One JSON line at the end: {"ev":"done","committed":N,"failed":N,
 * "mismatches":N,"first":"...","runs":N,"fetches":N,"conflicts":N,
 * "counter":N,"keys":N,"torn":N,"moved":N}.
 *
 *   kv_probe --redis HOST:PORT [--mode M] [--txns N] [--seed S]
 *       [--id NAME] [--wait N] [--flush-after N]
 *
 * --flush-after N: once N transactions are done, SCRIPT FLUSH on the
 * probe's own connection, before anything the next one sends.
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "kv_redis.h"


#define MODEL_MAX  4096

typedef struct {
    int          db;
    size_t       klen;
    char         key[40];
    char         val[40];
} ment_t;

typedef struct {
    ment_t       e[MODEL_MAX];
    size_t       n;
} model_t;

typedef struct {
    wh_loop_t         loop;
    wh_log_t          log;
    wh_redis_t       *redis;
    wh_kvr_t         *kv;
    wh_timer_t        timer;
    const char       *mode;
    const char       *id;
    unsigned          txns, done, committed, failed;
    unsigned          flush_after;      /* SCRIPT FLUSH after that many */
    unsigned long     seed;
    int               running, again, started;
    model_t           model, scratch;
    unsigned          mismatches;       /* of committed runs */
    unsigned          run_mismatches;   /* of the run under way */
    char              first[256], run_first[256];
    unsigned long     counter, keys;
    unsigned          torn, moved, run_torn;
    unsigned long     run_pair, last_pair;
    uint64_t          took[2][2];       /* first, n: the committed run's */
} probe_t;

static probe_t  P;


/* ----------------------------------------------------------- model */


static int
mcmp(const ment_t *a, int db, const char *key, size_t klen)
{
    int  c;

    if (a->db != db) {
        return a->db < db ? -1 : 1;
    }

    c = memcmp(a->key, key, a->klen < klen ? a->klen : klen);

    if (c != 0) {
        return c;
    }

    return a->klen < klen ? -1 : a->klen > klen ? 1 : 0;
}


/* the first index >= (db, key) */
static size_t
mlower(const model_t *m, int db, const char *key, size_t klen)
{
    size_t  lo = 0, hi = m->n, mid;

    while (lo < hi) {
        mid = (lo + hi) / 2;

        if (mcmp(&m->e[mid], db, key, klen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    return lo;
}


static ment_t *
mget(model_t *m, int db, const char *key, size_t klen)
{
    size_t  i = mlower(m, db, key, klen);

    if (i < m->n && mcmp(&m->e[i], db, key, klen) == 0) {
        return &m->e[i];
    }

    return NULL;
}


static void
mput(model_t *m, int db, const char *key, size_t klen, const char *val)
{
    size_t   i = mlower(m, db, key, klen);
    ment_t  *e;

    if (i < m->n && mcmp(&m->e[i], db, key, klen) == 0) {
        snprintf(m->e[i].val, sizeof(m->e[i].val), "%s", val);
        return;
    }

    if (m->n == MODEL_MAX) {
        return;
    }

    memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(ment_t));
    e = &m->e[i];
    e->db = db;
    e->klen = klen;
    memcpy(e->key, key, klen);
    snprintf(e->val, sizeof(e->val), "%s", val);
    m->n++;
}


static int
mdel(model_t *m, int db, const char *key, size_t klen)
{
    size_t  i = mlower(m, db, key, klen);

    if (i < m->n && mcmp(&m->e[i], db, key, klen) == 0) {
        memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof(ment_t));
        m->n--;
        return 1;
    }

    return 0;
}


/* the model's answer to a cursor move from key x (NULL: an edge) */
static ment_t *
mnext(model_t *m, int db, int dir, const char *x, size_t xlen, int incl)
{
    size_t  i;

    if (dir > 0) {
        i = x ? mlower(m, db, x, xlen) : mlower(m, db, "", 0);

        if (x && !incl && i < m->n && mcmp(&m->e[i], db, x, xlen) == 0) {
            i++;
        }

        return i < m->n && m->e[i].db == db ? &m->e[i] : NULL;
    }

    if (x) {
        i = mlower(m, db, x, xlen);

        if (incl && i < m->n && mcmp(&m->e[i], db, x, xlen) == 0) {
            return &m->e[i];
        }

    } else {
        i = mlower(m, db + 1, "", 0);
    }

    return i > 0 && m->e[i - 1].db == db ? &m->e[i - 1] : NULL;
}


/* the same within a cursor's prefix (plen 0: none): the nearest key
 * that starts with it, past the ones before it */
static ment_t *
mnext_in(model_t *m, int db, int dir, const char *x, size_t xlen, int incl,
    const char *pfx, size_t plen)
{
    int      c;
    ment_t  *e;

    for (e = mnext(m, db, dir, x, xlen, incl); e != NULL;
         e = mnext(m, db, dir, e->key, e->klen, 0))
    {
        if (e->klen >= plen && memcmp(e->key, pfx, plen) == 0) {
            return e;
        }

        c = memcmp(e->key, pfx, e->klen < plen ? e->klen : plen);

        if ((c < 0 || (c == 0 && e->klen < plen)) != (dir > 0)) {
            return NULL;
        }
    }

    return NULL;
}


/* ------------------------------------------------------------ runs */


static unsigned long  rng;

static unsigned
rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;

    return (unsigned) (rng % n);
}


static void
mismatch(const char *what, const char *key, size_t klen)
{
    size_t  i;
    char    k[64];

    for (i = 0; i < klen && i < sizeof(k) - 1; i++) {
        k[i] = key[i] ? key[i] : '|';
    }

    k[i] = '\0';

    if (P.run_mismatches++ == 0) {
        snprintf(P.run_first, sizeof(P.run_first), "txn %u: %s at %s",
                 P.done, what, k);
    }
}


static const int  ws_dbs[2] = { WH_KV_CLIENTS, WH_KV_CMD_OPEN };
static const int  g_dbs[2] = { WH_KV_CMD_META, WH_KV_CMD_ENDED };
static const char *wss[3] = { "a", "ab", "b" };


static int
rkey(char *buf, int *db)
{
    int  n;

    if (rnd(3) == 0) {
        *db = g_dbs[rnd(2)];
        return snprintf(buf, 40, "g%02u", rnd(16));
    }

    *db = ws_dbs[rnd(2)];
    n = snprintf(buf, 40, "%s", wss[rnd(3)]);
    buf[n++] = '\0';

    return n + snprintf(buf + n, 40 - n, "k%02u", rnd(16));
}


/* the model's and the store's answers to one cursor move */
static int
check_move(wh_kv_cur_t *c, int db, int rc, wh_kv_val_t *k, wh_kv_val_t *v,
    const ment_t *want, const char *what)
{
    if (rc == -1 || rc == WH_ENGINE_AGAIN) {
        return -1;
    }

    (void) c;
    (void) db;

    if ((rc == 0) != (want != NULL)) {
        mismatch(what, want ? want->key : "(none)", want ? want->klen : 6);
        return 1;
    }

    if (rc == 0 && (k->len != want->klen
                    || memcmp(k->data, want->key, k->len) != 0
                    || v->len != strlen(want->val)
                    || memcmp(v->data, want->val, v->len) != 0))
    {
        mismatch(what, k->data, k->len);
        return 1;
    }

    return 0;
}


static int
walk(wh_kv_txn_t *t, wh_err_t *err)
{
    int           rc, db, start, steps, i, dir, at = 0;
    char          key[40], pos[40], pfx[40];
    size_t        klen, plen = 0;
    ment_t       *want;
    wh_kv_val_t   k, v, p;
    wh_kv_cur_t  *c;

    klen = rkey(key, &db);
    start = rnd(3);
    steps = 1 + rnd(12);

    /* a prefix half the time: of the key drawn, up to its workspace and
     * "\0" (one workspace), to a part of its workspace's name (a walk
     * across "a" and "ab"), to its workspace and "k0" (part of one) */
    p.data = pfx;
    p.len = 0;

    switch (rnd(6)) {

    case 0:
        p.len = strlen(key) + (db == WH_KV_CMD_META
                               || db == WH_KV_CMD_ENDED ? 0 : 1);
        break;

    case 1:
        p.len = 1;
        break;

    case 2:
        p.len = strlen(key) + (db == WH_KV_CMD_META
                               || db == WH_KV_CMD_ENDED ? 0 : 3);
        p.len = p.len > klen ? klen : p.len;
        break;

    default:
        break;
    }

    memcpy(pfx, key, p.len);

    if (wh_kv_cur_open(t, db, &p, &c, err) != 0) {
        return -1;
    }

    if (start == 2 && db != WH_KV_CMD_META && db != WH_KV_CMD_ENDED
        && rnd(2))
    {
        /* a bare workspace prefix: where a client's keys begin */
        klen = strlen(key) + 1;
    }

    if (start == 0) {
        rc = wh_kv_cur_get(c, &k, &v, WH_KV_FIRST, err);
        want = mnext_in(&P.scratch, db, 1, NULL, 0, 0, pfx, p.len);

    } else if (start == 1) {
        rc = wh_kv_cur_get(c, &k, &v, WH_KV_LAST, err);
        want = mnext_in(&P.scratch, db, -1, NULL, 0, 0, pfx, p.len);

    } else {
        k.data = key;
        k.len = klen;
        rc = wh_kv_cur_get(c, &k, &v, WH_KV_SET_RANGE, err);
        want = mnext_in(&P.scratch, db, 1, key, klen, 1, pfx, p.len);
    }

    for (i = 0; ; i++) {
        if (check_move(c, db, rc, &k, &v, want, "walk") != 0 || rc != 0) {
            break;
        }

        memcpy(pos, k.data, k.len);
        plen = k.len;
        at = 1;

        if (i == steps) {
            break;
        }

        if (rnd(5) == 0) {
            if (wh_kv_cur_del(c, err) != 0) {
                rc = -1;
                break;
            }

            mdel(&P.scratch, db, pos, plen);
        }

        dir = rnd(4) == 0 ? -1 : 1;
        rc = wh_kv_cur_get(c, &k, &v, dir > 0 ? WH_KV_NEXT : WH_KV_PREV,
                           err);
        want = mnext_in(&P.scratch, db, dir, at ? pos : NULL, plen, 0,
                        pfx, p.len);
    }

    wh_kv_cur_close(c);

    return rc == -1 || rc == WH_ENGINE_AGAIN ? rc : 0;
}


static int
txn_model(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    int           rc, db, op, n, i;
    char          key[40], val[40];
    size_t        klen;
    ment_t       *e;
    wh_kv_val_t   k, v;

    (void) ctx;

    rng = P.seed * 1000003UL + P.done + 1;
    P.scratch = P.model;
    P.run_mismatches = 0;
    n = 3 + rnd(14);

    for (i = 0; i < n; i++) {
        op = rnd(100);
        klen = rkey(key, &db);
        k.data = key;
        k.len = klen;

        if (op < 35) {
            snprintf(val, sizeof(val), "v%u-%d", P.done, i);
            v.data = val;
            v.len = strlen(val);
            rc = wh_kv_put(t, db, &k, &v, op < 7 ? WH_KV_NOOVERWRITE : 0,
                           err);

            if (rc == -1) {
                return -1;
            }

            e = mget(&P.scratch, db, key, klen);

            if (op < 7 && e != NULL) {
                if (rc != WH_KV_EXISTS) {
                    mismatch("noverwrite", key, klen);
                }

            } else if (rc != 0) {
                mismatch("put", key, klen);

            } else {
                mput(&P.scratch, db, key, klen, val);
            }

        } else if (op < 50) {
            rc = wh_kv_del(t, db, &k, err);

            if (rc == -1) {
                return -1;
            }

            if ((rc == 0) != mdel(&P.scratch, db, key, klen)) {
                mismatch("del", key, klen);
            }

        } else if (op < 70) {
            rc = wh_kv_get(t, db, &k, &v, err);

            if (rc == -1) {
                return -1;
            }

            e = mget(&P.scratch, db, key, klen);

            if ((rc == 0) != (e != NULL)
                || (e && (v.len != strlen(e->val)
                          || memcmp(v.data, e->val, v.len) != 0)))
            {
                mismatch("get", key, klen);
            }

        } else if (walk(t, err) == -1) {
            return -1;
        }
    }

    return 0;
}


/* P.counter from the store (0 before the first); k is its key */
static int
read_counter(wh_kv_txn_t *t, wh_kv_val_t *k, wh_err_t *err)
{
    int          rc;
    wh_kv_val_t  v;

    k->data = "counter";
    k->len = 7;
    rc = wh_kv_get(t, WH_KV_CMD_META, k, &v, err);

    if (rc == -1) {
        return -1;
    }

    P.counter = rc == 0 ? strtoul(v.data, NULL, 10) : 0;

    return 0;
}


static int
txn_count(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    char          key[64], val[32];
    size_t        n;
    wh_kv_val_t   k, v;

    (void) ctx;

    if (read_counter(t, &k, err) != 0) {
        return -1;
    }

    snprintf(val, sizeof(val), "%lu", P.counter + 1);
    v.data = val;
    v.len = strlen(val);

    if (wh_kv_put(t, WH_KV_CMD_META, &k, &v, 0, err) == -1) {
        return -1;
    }

    /* a key of its own, under one of three workspaces */
    n = (size_t) snprintf(key, sizeof(key), "w%u", P.done % 3);
    key[n++] = '\0';
    n += (size_t) snprintf(key + n, sizeof(key) - n, "%s-%u", P.id, P.done);
    k.data = key;
    k.len = n;

    return wh_kv_put(t, WH_KV_CLIENTS, &k, &v, WH_KV_NOOVERWRITE, err)
           == -1 ? -1 : 0;
}


/* the pair's key: "w9" "\0" name; xpair's and xsnap's "b" is w8's */
static void
pair_key(wh_kv_val_t *k, char *buf, const char *name)
{
    memcpy(buf, P.mode[0] == 'x' && name[0] == 'b' ? "w8" : "w9", 3);
    strcpy(buf + 3, name);
    k->data = buf;
    k->len = 3 + strlen(name);
}


/* the decimal number under k (absent: 0) plus one, written back: its
 * text in val, the number in *n */
static int
add_one(wh_kv_txn_t *t, const wh_kv_val_t *k, char *val, size_t size,
    unsigned long *n, wh_err_t *err)
{
    int           rc;
    wh_kv_val_t   v;

    rc = wh_kv_get(t, WH_KV_CLIENTS, k, &v, err);

    if (rc == -1) {
        return -1;
    }

    *n = (rc == 0 ? strtoul(v.data, NULL, 10) : 0) + 1;
    v.len = (size_t) snprintf(val, size, "%lu", *n);
    v.data = val;

    return wh_kv_put(t, WH_KV_CLIENTS, k, &v, 0, err) == -1 ? -1 : 0;
}


static int
txn_pair(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    char            key[16], val[32];
    unsigned long   n;
    wh_kv_val_t     k, v;

    (void) ctx;

    pair_key(&k, key, "a");

    if (add_one(t, &k, val, sizeof(val), &n, err) != 0) {
        return -1;
    }

    pair_key(&k, key, "b");
    v.data = val;
    v.len = strlen(val);

    return wh_kv_put(t, WH_KV_CLIENTS, &k, &v, 0, err) == -1 ? -1 : 0;
}


/* read-only: "b" is asked for only once "a" is in, a round later */
static int
txn_snap(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    int           rc;
    char          key[16], a[32];
    wh_kv_val_t   k, v;

    (void) ctx;

    P.run_torn = 0;
    P.run_pair = 0;
    pair_key(&k, key, "a");
    rc = wh_kv_get(t, WH_KV_CLIENTS, &k, &v, err);

    if (rc != 0) {
        return rc == -1 ? -1 : 0;
    }

    snprintf(a, sizeof(a), "%.*s", (int) v.len, (const char *) v.data);
    pair_key(&k, key, "b");
    rc = wh_kv_get(t, WH_KV_CLIENTS, &k, &v, err);

    if (rc != 0) {
        return rc == -1 ? -1 : 0;
    }

    P.run_pair = strtoul(a, NULL, 10);
    P.run_torn = strlen(a) != v.len || memcmp(a, v.data, v.len) != 0;

    return 0;
}


/* a key of the transaction's own in workspace ws: "id-n" */
static int
put_own(wh_kv_txn_t *t, const char *ws, const char *val, wh_err_t *err)
{
    char          key[64];
    wh_kv_val_t   k, v;

    memcpy(key, ws, 3);
    k.data = key;
    k.len = 3 + (size_t) snprintf(key + 3, sizeof(key) - 3, "%s-%u", P.id,
                                  P.done);
    v.data = (void *) val;
    v.len = strlen(val);

    return wh_kv_put(t, WH_KV_CLIENTS, &k, &v, 0, err) == -1 ? -1 : 0;
}


static int
txn_reserve(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    int            i;
    char           val[24], key[16], name[] = "seq";
    unsigned long  rng, n;
    wh_kv_val_t    k;

    (void) ctx;

    rng = P.seed * 1000003UL + P.done + 1;
    k.data = name;
    k.len = 3;

    for (i = 0; i < 2; i++) {
        rng = rng * 6364136223846793005UL + 1442695040888963407UL;
        P.took[i][1] = 1 + (rng >> 33) % 64;

        if (wh_kv_reserve(t, WH_KV_CMD_META, &k, P.took[i][1],
                          &P.took[i][0], err)
            != 0)
        {
            return -1;
        }
    }

    if (strcmp(P.mode, "reservec") == 0) {
        pair_key(&k, key, "a");
        return add_one(t, &k, val, sizeof(val), &n, err);
    }

    /* a write of its own: the commit checks nothing the others change */
    snprintf(val, sizeof(val), "%llu", (unsigned long long) P.took[0][0]);

    return put_own(t, "w7", val, err);
}


static int
txn_oldseq(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    int            rc;
    char           name[] = "seq";
    uint64_t       last;
    unsigned char  buf[WH_BE64_LEN];
    wh_kv_val_t    k, v;

    (void) ctx;

    k.data = name;
    k.len = 3;
    rc = wh_kv_get(t, WH_KV_CMD_META, &k, &v, err);

    if (rc == -1) {
        return -1;
    }

    last = rc == 0 && v.len == WH_BE64_LEN ? wh_be64_get(v.data) : 0;
    P.took[0][0] = last + 1;
    P.took[0][1] = 1 + P.done % 64;
    P.took[1][1] = 0;
    wh_be64_put(buf, last + P.took[0][1]);
    v.data = buf;
    v.len = WH_BE64_LEN;

    return wh_kv_put(t, WH_KV_CMD_META, &k, &v, 0, err) == -1 ? -1 : 0;
}


/* w8's key "k" N: "w8" "\0" "k" N */
static void
move_key(wh_kv_val_t *k, char *buf, size_t size, unsigned long n)
{
    memcpy(buf, "w8", 3);
    k->len = 3 + (size_t) snprintf(buf + 3, size - 3, "k%lu", n);
    k->data = buf;
}


/* the key w8 holds (a walk, as txn_walk's) goes to the next number */
static int
txn_move(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    int            rc;
    char           key[32], val[24], ws[3] = "w8";
    unsigned long  n;
    wh_kv_val_t    k, v, prefix;
    wh_kv_cur_t   *c;

    (void) ctx;

    prefix.data = ws;
    prefix.len = sizeof(ws);
    n = 0;

    if (wh_kv_cur_open(t, WH_KV_CLIENTS, &prefix, &c, err) != 0) {
        return -1;
    }

    rc = wh_kv_cur_get(c, &k, &v, WH_KV_FIRST, err);

    if (rc == 0) {
        n = strtoul((const char *) k.data + 4, NULL, 10);
        rc = wh_kv_cur_del(c, err);
    }

    wh_kv_cur_close(c);

    if (rc != 0 && rc != WH_KV_NOTFOUND) {
        return rc;
    }

    P.run_pair = n + 1;
    move_key(&k, key, sizeof(key), n + 1);
    v.len = (size_t) snprintf(val, sizeof(val), "%lu", n + 1);
    v.data = val;

    return wh_kv_put(t, WH_KV_CLIENTS, &k, &v, 0, err) == -1 ? -1 : 0;
}


/* read-only: w8 holds one key, whose value is its number */
static int
txn_walk(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    int           rc;
    char          ws[3] = "w8";
    unsigned      n;
    wh_kv_val_t   k, v, prefix;
    wh_kv_cur_t  *c;

    (void) ctx;

    P.run_torn = 0;
    P.run_pair = 0;
    prefix.data = ws;
    prefix.len = sizeof(ws);
    n = 0;

    if (wh_kv_cur_open(t, WH_KV_CLIENTS, &prefix, &c, err) != 0) {
        return -1;
    }

    for (rc = wh_kv_cur_get(c, &k, &v, WH_KV_FIRST, err); rc == 0;
         rc = wh_kv_cur_get(c, &k, &v, WH_KV_NEXT, err))
    {
        n++;
        P.run_pair = strtoul((const char *) k.data + 4, NULL, 10);
        P.run_torn |= k.len - 4 != v.len
                      || memcmp((const char *) k.data + 4, v.data, v.len)
                         != 0;
    }

    wh_kv_cur_close(c);
    P.run_torn |= n != 1;

    return rc == WH_KV_NOTFOUND ? 0 : rc;
}


/* snap, then a key of its own: the commit refuses a torn pair */
static int
txn_snapw(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    if (txn_snap(t, ctx, err) != 0) {
        return -1;
    }

    return put_own(t, "w5", "w", err);
}


/* read-modify-write of the probe's own key in a shared workspace */
static int
txn_own(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    char          key[64], val[24];
    wh_kv_val_t   k;

    (void) ctx;

    memcpy(key, "w6", 3);
    k.data = key;
    k.len = 3 + (size_t) snprintf(key + 3, sizeof(key) - 3, "%s", P.id);

    return add_one(t, &k, val, sizeof(val), &P.run_pair, err);
}


/* reads that decide nothing it writes, unchecked or not (--mode), then
 * a write of its own */
static int
txn_peek(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    int           rc;
    char          key[16];
    wh_kv_val_t   k, v;

    t->unchecked = strcmp(P.mode, "peek") == 0;
    pair_key(&k, key, "a");
    rc = wh_kv_get(t, WH_KV_CLIENTS, &k, &v, err);

    if (rc == 0 || rc == WH_KV_NOTFOUND) {
        rc = txn_walk(t, ctx, err);
    }

    t->unchecked = 0;

    if (rc != 0) {
        return rc;
    }

    return txn_own(t, ctx, err);
}


static int
txn_check(wh_kv_txn_t *t, void *ctx, wh_err_t *err)
{
    int           rc;
    wh_kv_val_t   k, v;
    wh_kv_cur_t  *c;

    (void) ctx;

    if (read_counter(t, &k, err) != 0) {
        return -1;
    }

    P.keys = 0;

    if (wh_kv_cur_open(t, WH_KV_CLIENTS, NULL, &c, err) != 0) {
        return -1;
    }

    for (rc = wh_kv_cur_get(c, &k, &v, WH_KV_FIRST, err); rc == 0;
         rc = wh_kv_cur_get(c, &k, &v, WH_KV_NEXT, err))
    {
        P.keys++;
    }

    wh_kv_cur_close(c);

    return rc == WH_KV_NOTFOUND ? 0 : rc;
}


static void
took(void)
{
    int  i;

    for (i = 0; i < 2; i++) {
        if (P.took[i][1]) {
            printf("{\"ev\":\"took\",\"first\":%llu,\"n\":%llu}\n",
                   (unsigned long long) P.took[i][0],
                   (unsigned long long) P.took[i][1]);
        }
    }
}


static void
flushed(void *data, redisReply *reply, const char *why)
{
    (void) data;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "kv_probe: SCRIPT FLUSH failed: %s\n",
                reply ? reply->str : why);
    }
}


static void
flush_scripts(void)
{
    static const char  *argv[2] = { "SCRIPT", "FLUSH" };

    if (wh_redis_command(P.redis, flushed, NULL, 2, argv, NULL) != 0) {
        fprintf(stderr, "kv_probe: SCRIPT FLUSH not sent\n");
    }
}


static void
finish(void)
{
    wh_kvr_stats_t  st;

    wh_kvr_stats(P.kv, &st);
    printf("{\"ev\":\"done\",\"committed\":%u,\"failed\":%u,"
           "\"mismatches\":%u,\"first\":\"%s\",\"runs\":%llu,"
           "\"fetches\":%llu,\"conflicts\":%llu,\"commits\":%llu,"
           "\"counter\":%lu,\"keys\":%lu,\"torn\":%u,\"moved\":%u}\n",
           P.committed, P.failed, P.mismatches, P.first,
           (unsigned long long) st.runs, (unsigned long long) st.fetches,
           (unsigned long long) st.conflicts,
           (unsigned long long) st.commits, P.counter, P.keys, P.torn,
           P.moved);
    fflush(stdout);
    P.loop.stop = 1;
}


static void
run(void)
{
    int             rc;
    wh_err_t        err;
    wh_kvr_txn_pt   fn;

    if (P.running) {
        P.again = 1;
        return;
    }

    P.running = 1;

    do {
        P.again = 0;

        if (P.done == P.txns || P.loop.stop) {
            break;
        }

        fn = strcmp(P.mode, "model") == 0 ? txn_model
             : strcmp(P.mode, "count") == 0 ? txn_count
             : strcmp(P.mode, "pair") == 0 ? txn_pair
             : strcmp(P.mode, "xpair") == 0 ? txn_pair
             : strcmp(P.mode, "snap") == 0 ? txn_snap
             : strcmp(P.mode, "xsnap") == 0 ? txn_snap
             : strcmp(P.mode, "snapw") == 0 ? txn_snapw
             : strcmp(P.mode, "own") == 0 ? txn_own
             : strcmp(P.mode, "move") == 0 ? txn_move
             : strncmp(P.mode, "reserve", 7) == 0 ? txn_reserve
             : strcmp(P.mode, "oldseq") == 0 ? txn_oldseq
             : strcmp(P.mode, "walk") == 0 ? txn_walk
             : strncmp(P.mode, "peek", 4) == 0 ? txn_peek : txn_check;

        rc = wh_kvr_write(P.kv, fn, NULL, &err);

        if (rc == WH_ENGINE_AGAIN) {
            continue;
        }

        if (rc == 0) {
            P.committed++;

            if (fn == txn_move || fn == txn_own) {
                P.counter = P.run_pair;
            }

            if (fn == txn_reserve || fn == txn_oldseq) {
                took();
            }

            if (fn == txn_snap || fn == txn_snapw || fn == txn_walk) {
                P.torn += P.run_torn;
                P.moved += P.run_pair != P.last_pair;
                P.last_pair = P.run_pair;
            }

            if (fn == txn_model) {
                P.model = P.scratch;

                if (P.run_mismatches && P.mismatches == 0) {
                    memcpy(P.first, P.run_first, sizeof(P.first));
                }

                P.mismatches += P.run_mismatches;
            }

        } else {
            fprintf(stderr, "kv_probe: txn %u: %s\n", P.done, err.msg);
            P.failed++;
        }

        P.done++;
        P.again = 1;

        if (P.done == P.flush_after) {
            flush_scripts();
        }

    } while (P.again);

    P.running = 0;

    if (P.done == P.txns) {
        finish();
    }
}


static void
wake(void *ctx)
{
    (void) ctx;
    run();
}


static void
tick(wh_timer_t *t)
{
    (void) t;

    if (!P.started && wh_redis_up(P.redis)) {
        P.started = 1;
        run();
    }
}


int
main(int argc, char **argv)
{
    int               opt, txns_set = 0;
    char             *colon;
    wh_err_t          err;
    wh_redis_conf_t   rc;
    wh_kvr_conf_t     kc;
    wh_redis_handler_t  h;
    static const struct option  opts[] = {
        { "redis", required_argument, NULL, 'r' },
        { "mode", required_argument, NULL, 'm' },
        { "txns", required_argument, NULL, 'n' },
        { "seed", required_argument, NULL, 's' },
        { "id", required_argument, NULL, 'i' },
        { "wait", required_argument, NULL, 'w' },
        { "flush-after", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 }
    };

    memset(&rc, 0, sizeof(rc));
    memset(&kc, 0, sizeof(kc));
    memset(&h, 0, sizeof(h));
    P.mode = "model";
    P.id = "p";
    P.txns = 200;
    P.seed = 1;
    kc.ack_timeout_ms = 1000;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            colon = strrchr(optarg, ':');
            if (colon == NULL) {
                return 2;
            }
            *colon = '\0';
            rc.host = optarg;
            rc.port = atoi(colon + 1);
            break;
        case 'm':
            P.mode = optarg;
            break;
        case 'n':
            P.txns = (unsigned) atoi(optarg);
            txns_set = 1;
            break;
        case 's':
            P.seed = strtoul(optarg, NULL, 10);
            break;
        case 'i':
            P.id = optarg;
            break;
        case 'w':
            kc.replicas_ack = (unsigned) atoi(optarg);
            break;
        case 'f':
            P.flush_after = (unsigned) atoi(optarg);
            break;
        default:
            return 2;
        }
    }

    if (strcmp(P.mode, "check") == 0 && !txns_set) {
        P.txns = 1;
    }

    kc.wake = wake;

    if (wh_log_open(&P.log, NULL, WH_LOG_WARN, WH_LOG_TEXT, &err) != 0
        || wh_loop_init(&P.loop, &err) != 0
        || wh_redis_open(&P.redis, &P.loop, &rc, &h, NULL, &P.log, &err)
           != 0
        || wh_kvr_open(&P.kv, P.redis, &kc, &P.log, &err) != 0)
    {
        fprintf(stderr, "kv_probe: %s\n", err.msg);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    P.timer.interval = 5;
    P.timer.handler = tick;

    if (wh_loop_timer(&P.loop, &P.timer, &err) != 0
        || wh_loop_run(&P.loop, &err) != 0)
    {
        fprintf(stderr, "kv_probe: %s\n", err.msg);
        return 1;
    }

    wh_redis_close(P.redis);
    wh_kvr_close(P.kv);
    wh_loop_free(&P.loop);

    return P.mismatches || P.failed ? 1 : 0;
}
