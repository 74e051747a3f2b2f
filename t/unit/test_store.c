/*
 * The LMDB store against a real environment in a temporary directory:
 * ids and epochs, trimming by length and by ttl, range reads, reopen,
 * growth of the map on MDB_MAP_FULL, and a full disk under the map.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../worker/engine_lmdb_store.h"


#define T0  1795255200000LL     /* 2026-11-21T10:00:00Z */

typedef struct {
    char         dir[64];
    wh_store_t  *st;
} fixture_t;

typedef struct {
    wh_str_t     ws, ch;
    int64_t      now;
    size_t       n;
    const char  *text;
    size_t       len;
    uint64_t     last;
    char         epoch[WH_EPOCH_LEN + 1];
} append_t;

typedef struct {
    uint64_t     ids[64];
    size_t       n;
    char         text[64][32];
} collect_t;


static wh_str_t
S(const char *s)
{
    wh_str_t  r = { s, strlen(s) };

    return r;
}


static int
rm_tree(const char *dir)
{
    char  path[128];

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);

    return rmdir(dir);
}


static int
setup(void **state)
{
    wh_err_t    err;
    fixture_t  *f;

    f = calloc(1, sizeof(fixture_t));
    strcpy(f->dir, "/tmp/wh-store-XXXXXX");

    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }

    if (wh_store_open(&f->st, f->dir, WH_STORE_HISTORY, 1024 * 1024,
                      64 * 1024 * 1024, 10, 60000, NULL, &err) != 0)
    {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }

    *state = f;

    return 0;
}


static int
teardown(void **state)
{
    fixture_t  *f = *state;

    if (f->st) {
        wh_store_close(f->st);
    }

    rm_tree(f->dir);
    free(f);

    return 0;
}


static int
append_txn(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    size_t           i;
    int64_t          growth;
    append_t        *a = ctx;
    wh_chan_meta_t   meta;

    for (i = 0; i < a->n; i++) {
        if (wh_store_channel(st, txn, a->ws, a->ch, a->now, 1, &meta, err)
            != 1
            || wh_store_append(st, txn, a->ws, a->ch, &meta, a->now,
                               a->text, a->len, INT64_MAX, &growth, err)
               != 0)
        {
            return -1;
        }
    }

    a->last = meta.last_id;
    memcpy(a->epoch, meta.epoch, sizeof(a->epoch));

    return 0;
}


/* appends n copies of text, in one write; returns the last id */
static uint64_t
append(wh_store_t *st, const char *ws, const char *ch, int64_t now,
    size_t n, const char *text, char *epoch)
{
    wh_err_t  err;
    append_t  a;

    memset(&a, 0, sizeof(a));
    a.ws = S(ws);
    a.ch = S(ch);
    a.now = now;
    a.n = n;
    a.text = text;
    a.len = strlen(text);

    if (wh_store_write(st, append_txn, &a, &err) != 0) {
        fprintf(stderr, "append: %s\n", err.msg);
        return 0;
    }

    if (epoch) {
        memcpy(epoch, a.epoch, WH_EPOCH_LEN + 1);
    }

    return a.last;
}


static int
collect(void *ctx, uint64_t id, int64_t t, const char *json, size_t len)
{
    collect_t  *c = ctx;

    (void) t;

    if (c->n == 64) {
        return 1;
    }

    c->ids[c->n] = id;
    snprintf(c->text[c->n], sizeof(c->text[0]), "%.*s", (int) len, json);
    c->n++;

    return 0;
}


static void
read_range(wh_store_t *st, const char *ws, const char *ch, uint64_t after,
    uint64_t up_to, size_t limit, int64_t now, collect_t *c,
    wh_store_range_t *r)
{
    wh_err_t  err;

    memset(c, 0, sizeof(*c));
    assert_int_equal(wh_store_read(st, S(ws), S(ch), after, up_to, limit,
                                   now, collect, c, r, &err), 0);
}


static void
test_ids_and_epochs(void **state)
{
    char              e1[9], e2[9], e3[9];
    wh_err_t          err;
    fixture_t        *f = *state;
    wh_chan_meta_t    meta;

    assert_int_equal(append(f->st, "acme", "a", T0, 3, "{}", e1), 3);
    assert_int_equal(append(f->st, "acme", "a", T0, 2, "{}", e2), 5);
    assert_string_equal(e1, e2);
    assert_int_equal(strlen(e1), 8);
    assert_int_equal(strspn(e1, "abcdefghijklmnopqrstuvwxyz0123456789"), 8);

    /* another channel, another workspace: own ids, own epochs */
    assert_int_equal(append(f->st, "acme", "b", T0, 1, "{}", e3), 1);
    assert_string_not_equal(e1, e3);
    assert_int_equal(append(f->st, "other", "a", T0, 1, "{}", e3), 1);
    assert_string_not_equal(e1, e3);

    assert_int_equal(wh_store_meta(f->st, S("acme"), S("a"), &meta, &err),
                     1);
    assert_int_equal(meta.last_id, 5);
    assert_int_equal(meta.first_id, 1);
    assert_int_equal(meta.created_ms, T0);
    assert_int_equal(wh_store_meta(f->st, S("acme"), S("zz"), &meta, &err),
                     0);

    /* ensure creates once, then keeps the epoch */
    assert_int_equal(wh_store_ensure(f->st, S("acme"), S("new"), T0, &meta,
                                     &err), 0);
    assert_int_equal(meta.last_id, 0);
    strcpy(e3, meta.epoch);
    assert_int_equal(wh_store_ensure(f->st, S("acme"), S("new"), T0, &meta,
                                     &err), 0);
    assert_string_equal(meta.epoch, e3);
}


static void
test_trim_by_length(void **state)
{
    fixture_t        *f = *state;
    collect_t         c;
    wh_store_range_t  r;

    assert_int_equal(append(f->st, "acme", "t", T0, 25, "{\"x\":1}", NULL),
                     25);

    read_range(f->st, "acme", "t", 0, UINT64_MAX, 100, T0, &c, &r);
    assert_int_equal(c.n, 10);
    assert_int_equal(c.ids[0], 16);
    assert_int_equal(c.ids[9], 25);
    assert_string_equal(c.text[0], "{\"x\":1}");
    assert_int_equal(r.meta.first_id, 16);
    assert_int_equal(r.first, 16);
    assert_false(r.more);
}


/* what wh_store_expire and wh_store_usage report (wh_usage_pt) */
typedef struct {
    char         names[8][32];     /* "ws/ch" */
    uint64_t     bytes[8];
    size_t       n;
} freed_t;


static int
freed_cb(void *ctx, wh_str_t ws, wh_str_t ch, uint64_t bytes)
{
    freed_t  *fr = ctx;

    if (fr->n == 8) {
        return -1;
    }

    snprintf(fr->names[fr->n], sizeof(fr->names[0]), "%.*s/%.*s",
             (int) ws.len, ws.data, (int) ch.len, ch.data);
    fr->bytes[fr->n++] = bytes;

    return 0;
}


/* channels interleaved in one write, each past its bound: every trim
 * finds its own channel's oldest entry (the write keeps one cursor for
 * all of them), texts tell the entries apart */
typedef struct {
    int  n;
} interleave_t;


static int
interleave_chan(int i)
{
    return i % 3 == 0 ? 2 : i % 2 ? 0 : 1;
}


static int
interleave_txn(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    int              i;
    char             text[32];
    int64_t          growth;
    const char      *ch;
    wh_chan_meta_t   meta;
    interleave_t    *x = ctx;
    static const char  *const  names[] = { "a", "b", "c" };

    for (i = 1; i <= x->n; i++) {
        ch = names[interleave_chan(i)];
        snprintf(text, sizeof(text), "{\"%s\":%d}", ch, i);

        if (wh_store_channel(st, txn, S("acme"), S(ch), T0, 1, &meta, err)
            != 1
            || wh_store_append(st, txn, S("acme"), S(ch), &meta, T0, text,
                               strlen(text), INT64_MAX, &growth, err) != 0)
        {
            return -1;
        }
    }

    return 0;
}


static void
test_trim_interleaved(void **state)
{
    int               i, j, k, w, got[3][150], n[3] = { 0, 0, 0 };
    char              want[32];
    size_t            bytes[3];
    freed_t           fr;
    wh_err_t          err;
    fixture_t        *f = *state;
    collect_t         c;
    interleave_t      x;
    wh_store_range_t  r;
    const char       *chans[] = { "a", "b", "c" };
    const int         writes[] = { 90, 60 };

    /* what each channel got, in order */
    for (w = 0; w < 2; w++) {
        x.n = writes[w];
        assert_int_equal(wh_store_write(f->st, interleave_txn, &x, &err), 0);

        for (i = 1; i <= writes[w]; i++) {
            j = interleave_chan(i);
            got[j][n[j]++] = i;
        }
    }

    for (j = 0; j < 3; j++) {
        read_range(f->st, "acme", chans[j], 0, UINT64_MAX, 100, T0, &c, &r);
        assert_int_equal(c.n, 10);
        assert_int_equal(c.ids[0], (uint64_t) n[j] - 9);
        assert_int_equal(c.ids[9], (uint64_t) n[j]);
        assert_int_equal(r.meta.first_id, c.ids[0]);

        for (k = 0, bytes[j] = 0; k < 10; k++) {
            snprintf(want, sizeof(want), "{\"%s\":%d}", chans[j],
                     got[j][n[j] - 10 + k]);
            assert_string_equal(c.text[k], want);
            bytes[j] += strlen(want);
        }
    }

    /* nothing else is stored: each trim deleted what it counted */
    memset(&fr, 0, sizeof(fr));
    assert_int_equal(wh_store_usage(f->st, freed_cb, &fr, &err), 0);
    assert_int_equal(fr.n, 3);

    for (j = 0; j < 3; j++) {
        assert_int_equal(fr.bytes[j], bytes[j]);
    }
}


static void
test_range_reads(void **state)
{
    fixture_t        *f = *state;
    collect_t         c;
    wh_store_range_t  r;

    append(f->st, "acme", "r", T0, 8, "m", NULL);
    append(f->st, "acme", "r/sub", T0, 3, "other", NULL);
    append(f->st, "acme", "q", T0, 3, "other", NULL);

    read_range(f->st, "acme", "r", 2, 5, 100, T0, &c, &r);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.ids[0], 3);
    assert_int_equal(c.ids[2], 5);
    assert_true(r.found);

    /* limit: stops with more set */
    read_range(f->st, "acme", "r", 0, UINT64_MAX, 2, T0, &c, &r);
    assert_int_equal(c.n, 2);
    assert_true(r.more);

    /* never runs into the neighbouring channel "r/sub" */
    read_range(f->st, "acme", "r", 6, UINT64_MAX, 100, T0, &c, &r);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.text[1], "m");
    assert_false(r.more);

    read_range(f->st, "acme", "r", 8, UINT64_MAX, 100, T0, &c, &r);
    assert_int_equal(c.n, 0);

    read_range(f->st, "acme", "none", 0, UINT64_MAX, 100, T0, &c, &r);
    assert_int_equal(c.n, 0);
    assert_false(r.found);

    /* a workspace that is a prefix of another sees nothing of it */
    read_range(f->st, "acm", "r", 0, UINT64_MAX, 100, T0, &c, &r);
    assert_false(r.found);
}


static void
test_ttl(void **state)
{
    size_t            removed;
    wh_err_t          err;
    freed_t           fr;
    fixture_t        *f = *state;
    collect_t         c;
    wh_store_range_t  r;
    wh_chan_meta_t    meta;

    append(f->st, "acme", "ttl", T0, 3, "old", NULL);
    append(f->st, "acme", "ttl", T0 + 50000, 2, "new", NULL);

    /* 70 s later the first three are past the 60 s ttl: skipped */
    read_range(f->st, "acme", "ttl", 0, UINT64_MAX, 100, T0 + 70000, &c,
               &r);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.ids[0], 4);

    memset(&fr, 0, sizeof(fr));
    assert_int_equal(wh_store_expire(f->st, T0 + 70000, freed_cb, &fr,
                                     &removed, &err), 0);
    assert_int_equal(removed, 3);
    /* the texts' bytes, per channel, for the history_bytes quota */
    assert_int_equal(fr.n, 1);
    assert_string_equal(fr.names[0], "acme/ttl");
    assert_int_equal(fr.bytes[0], 3 * 3);
    assert_int_equal(wh_store_meta(f->st, S("acme"), S("ttl"), &meta, &err),
                     1);
    assert_int_equal(meta.first_id, 4);
    assert_int_equal(meta.last_id, 5);

    memset(&fr, 0, sizeof(fr));
    assert_int_equal(wh_store_expire(f->st, T0 + 200000, freed_cb, &fr,
                                     &removed, &err), 0);
    assert_int_equal(removed, 2);
    assert_int_equal(fr.n, 1);
    assert_int_equal(fr.bytes[0], 2 * 3);
    assert_int_equal(wh_store_meta(f->st, S("acme"), S("ttl"), &meta, &err),
                     1);
    assert_int_equal(meta.first_id, 6);

    /* ids continue after an emptied history */
    assert_int_equal(append(f->st, "acme", "ttl", T0 + 200000, 1, "x",
                            NULL), 6);
}


typedef struct {
    const char  *text;
    int64_t      room;
    int64_t      growth;
    int          rc;
} room_t;


static int
room_txn(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    room_t          *r = ctx;
    wh_chan_meta_t   meta;

    if (wh_store_channel(st, txn, S("acme"), S("room"), T0, 1, &meta, err)
        != 1)
    {
        return -1;
    }

    r->rc = wh_store_append(st, txn, S("acme"), S("room"), &meta, T0,
                            r->text, strlen(r->text), r->room, &r->growth,
                            err);

    return r->rc < 0 ? -1 : 0;
}


static int
room_append(wh_store_t *st, const char *text, int64_t room,
    int64_t *growth)
{
    wh_err_t  err;
    room_t    r = { text, room, 0, -1 };

    assert_int_equal(wh_store_write(st, room_txn, &r, &err), 0);
    *growth = r.growth;

    return r.rc;
}


/* an append says what the history grows by, the trim it causes
 * deducted, and refuses (changing nothing) past the room it is given */
static void
test_append_room(void **state)
{
    int               i;
    int64_t           growth;
    freed_t           fr;
    wh_err_t          err;
    collect_t         c;
    fixture_t        *f = *state;
    wh_store_range_t  r;

    for (i = 0; i < 10; i++) {
        assert_int_equal(room_append(f->st, "aaaa", INT64_MAX, &growth), 0);
        assert_int_equal(growth, 4);
    }

    /* at the length bound: 6 bytes in, the oldest 4 out */
    assert_int_equal(room_append(f->st, "bbbbbb", 2, &growth), 0);
    assert_int_equal(growth, 2);

    /* past the room: refused, nothing trimmed */
    assert_int_equal(room_append(f->st, "cccccccc", 3, &growth), 1);
    assert_int_equal(growth, 4);
    read_range(f->st, "acme", "room", 0, UINT64_MAX, 100, T0, &c, &r);
    assert_int_equal(c.n, 10);
    assert_int_equal(c.ids[0], 2);
    assert_int_equal(c.ids[9], 11);

    /* a smaller message over a bigger one shrinks the history */
    assert_int_equal(room_append(f->st, "d", -2, &growth), 0);
    assert_int_equal(growth, -3);

    /* the scan at start counts what is stored */
    memset(&fr, 0, sizeof(fr));
    assert_int_equal(wh_store_usage(f->st, freed_cb, &fr, &err), 0);
    assert_int_equal(fr.n, 1);
    assert_string_equal(fr.names[0], "acme/room");
    assert_int_equal(fr.bytes[0], 8 * 4 + 6 + 1);
}


static void
test_reopen_keeps_data(void **state)
{
    char              e1[9];
    wh_err_t          err;
    fixture_t        *f = *state;
    collect_t         c;
    wh_store_range_t  r;
    wh_chan_meta_t    meta;

    append(f->st, "acme", "p", T0, 4, "kept", e1);
    wh_store_close(f->st);
    f->st = NULL;

    assert_int_equal(wh_store_open(&f->st, f->dir, WH_STORE_HISTORY,
                                   1024 * 1024, 64 * 1024 * 1024, 10, 0,
                                   NULL, &err), 0);
    assert_int_equal(wh_store_meta(f->st, S("acme"), S("p"), &meta, &err),
                     1);
    assert_int_equal(meta.last_id, 4);
    assert_string_equal(meta.epoch, e1);

    read_range(f->st, "acme", "p", 0, UINT64_MAX, 100, T0, &c, &r);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.text[3], "kept");
    assert_int_equal(append(f->st, "acme", "p", T0, 1, "more", NULL), 5);
}


/* a length lowered between runs: the next append trims every entry past
 * the new bound at once, and only those */
static void
test_trim_to_a_lower_length(void **state)
{
    int               i;
    char              text[32];
    wh_err_t          err;
    freed_t           fr;
    fixture_t        *f = *state;
    collect_t         c;
    wh_store_range_t  r;

    for (i = 1; i <= 10; i++) {
        snprintf(text, sizeof(text), "{\"n\":%d}", i);
        assert_int_equal(append(f->st, "acme", "l", T0, 1, text, NULL),
                         (uint64_t) i);
    }

    assert_int_equal(append(f->st, "acme", "m", T0, 3, "{}", NULL), 3);
    wh_store_close(f->st);
    f->st = NULL;

    assert_int_equal(wh_store_open(&f->st, f->dir, WH_STORE_HISTORY,
                                   1024 * 1024, 64 * 1024 * 1024, 4, 0,
                                   NULL, &err), 0);
    assert_int_equal(append(f->st, "acme", "l", T0, 1, "{\"n\":11}", NULL),
                     11);

    read_range(f->st, "acme", "l", 0, UINT64_MAX, 100, T0, &c, &r);
    assert_int_equal(c.n, 4);
    assert_int_equal(r.meta.first_id, 8);

    for (i = 0; i < 4; i++) {
        snprintf(text, sizeof(text), "{\"n\":%d}", 8 + i);
        assert_int_equal(c.ids[i], (uint64_t) (8 + i));
        assert_string_equal(c.text[i], text);
    }

    /* the other channel keeps its entries until it is written */
    read_range(f->st, "acme", "m", 0, UINT64_MAX, 100, T0, &c, &r);
    assert_int_equal(c.n, 3);

    /* and what is stored is those entries alone: 8..11 and m's three */
    memset(&fr, 0, sizeof(fr));
    assert_int_equal(wh_store_usage(f->st, freed_cb, &fr, &err), 0);
    assert_int_equal(fr.n, 2);
    assert_string_equal(fr.names[0], "acme/l");
    assert_int_equal(fr.bytes[0], 2 * 7 + 2 * 8);
    assert_string_equal(fr.names[1], "acme/m");
    assert_int_equal(fr.bytes[1], 3 * 2);
}


static int
list_cb(void *ctx, const char *name, size_t len, const wh_chan_meta_t *meta)
{
    char  *out = ctx;

    (void) meta;

    strncat(out, name, len);
    strcat(out, ",");

    return 0;
}


static void
test_channel_listing(void **state)
{
    char        out[256] = "";
    wh_err_t    err;
    fixture_t  *f = *state;

    append(f->st, "acme", "b", T0, 1, "x", NULL);
    append(f->st, "acme", "a", T0, 1, "x", NULL);
    append(f->st, "acme", "a/b", T0, 1, "x", NULL);
    append(f->st, "acme2", "z", T0, 1, "x", NULL);
    append(f->st, "acm", "y", T0, 1, "x", NULL);

    assert_int_equal(wh_store_channels(f->st, S("acme"), S(""), list_cb,
                                       out, &err), 0);
    assert_string_equal(out, "a,a/b,b,");

    out[0] = '\0';
    assert_int_equal(wh_store_channels(f->st, S("acme"), S("a/b"), list_cb,
                                       out, &err), 0);
    assert_string_equal(out, "b,");
}


static void
test_map_full_grows(void **state)
{
    char        *big;
    uint64_t     id;
    fixture_t   *f = *state;

    big = malloc(200001);
    memset(big, 'g', 200000);
    big[200000] = '\0';

    /* 10 x 200 kB per write, 3 writes: well past the 1 MiB map; the
     * history keeps 10, so the data stays around 2 MB */
    id = append(f->st, "acme", "big", T0, 10, big, NULL);
    assert_int_equal(id, 10);
    id = append(f->st, "acme", "big", T0, 10, big, NULL);
    assert_int_equal(id, 20);
    assert_true(f->st->map_size > 1024 * 1024);

    free(big);
}


static void
test_map_full_at_limit_fails_cleanly(void **state)
{
    char        *big;
    wh_err_t     err;
    append_t     a;
    fixture_t   *f = *state;

    wh_store_close(f->st);
    f->st = NULL;
    assert_int_equal(wh_store_open(&f->st, f->dir, WH_STORE_HISTORY,
                                   1024 * 1024, 1024 * 1024, 1000, 0, NULL,
                                   &err), 0);

    big = malloc(300001);
    memset(big, 'h', 300000);
    big[300000] = '\0';

    memset(&a, 0, sizeof(a));
    a.ws = S("acme");
    a.ch = S("full");
    a.now = T0;
    a.n = 10;
    a.text = big;
    a.len = 300000;

    assert_int_equal(wh_store_write(f->st, append_txn, &a, &err), -1);
    assert_int_equal(err.status, 507);

    /* the store still works for what fits */
    assert_int_equal(append(f->st, "acme", "small", T0, 1, "ok", NULL), 1);

    free(big);
}


/*
 * History is written through the map; on a full disk a store to a page
 * with no block would be SIGBUS, so the store keeps disk allocated ahead
 * (64 MiB) and refuses a write it has no disk for.  A 40 MiB tmpfs: the
 * 16 MiB map gets its disk at the first write; the map grows to 32 MiB,
 * then to 64 MiB, where the disk runs out: 503, the process is up, what
 * was written before reads back.  Mounting needs root: skipped without.
 */
typedef struct {
    char         dir[64];
    int          mounted;
    wh_store_t  *st;
    char        *big;
} full_t;


static int
setup_full(void **state)
{
    full_t  *f;

    f = calloc(1, sizeof(full_t));

    if (f == NULL) {
        return -1;
    }

    /* mkdtemp()'s template */
    strcpy(f->dir, "/tmp/wh-store-full-XXXXXX");
    *state = f;

    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }

    f->mounted = mount("tmpfs", f->dir, "tmpfs", 0, "size=40m,mode=0700")
                 == 0;

    return 0;
}


static int
teardown_full(void **state)
{
    full_t  *f = *state;

    if (f->st) {
        wh_store_close(f->st);
    }

    if (f->mounted) {
        umount(f->dir);
    }

    rmdir(f->dir);
    free(f->big);
    free(f);

    return 0;
}


static void
test_full_disk_refuses_writes(void **state)
{
    char              path[96];
    uint64_t          last;
    wh_err_t          err;
    append_t          a;
    collect_t         c;
    struct stat       sb;
    wh_store_range_t  r;
    full_t           *f = *state;

    if (!f->mounted) {
        skip();
    }

    assert_int_equal(wh_store_open(&f->st, f->dir, WH_STORE_HISTORY,
                                   16 * 1024 * 1024, 1024 * 1024 * 1024,
                                   1000, 0, NULL, &err), 0);

    f->big = malloc(200001);
    memset(f->big, 'd', 200000);
    f->big[200000] = '\0';

    /* the whole 16 MiB map has its disk already */
    snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_true((size_t) sb.st_blocks * 512 >= 16 * 1024 * 1024);

    memset(&a, 0, sizeof(a));
    a.ws = S("acme");
    a.ch = S("disk");
    a.now = T0;
    a.n = 10;
    a.text = f->big;
    a.len = 200000;

    for (last = 0; wh_store_write(f->st, append_txn, &a, &err) == 0; ) {
        last = a.last;
        assert_true(last < 1000);
    }

    assert_int_equal(err.status, 503);
    assert_non_null(strstr(err.msg, "no disk for the history store"));

    /* 32 MiB of map filled before the disk ran out */
    assert_true(last >= 100);

    /* what was committed reads back */
    read_range(f->st, "acme", "disk", last - 1, UINT64_MAX, 10, T0, &c,
               &r);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.ids[0], last);

    /* and nothing more is taken while the disk is full */
    assert_int_equal(append(f->st, "acme", "disk", T0, 1, "after", NULL),
                     0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_ids_and_epochs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trim_by_length, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trim_interleaved, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_range_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trim_to_a_lower_length, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_channel_listing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_map_full_grows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_map_full_at_limit_fails_cleanly,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_refuses_writes,
                                        setup_full, teardown_full),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
