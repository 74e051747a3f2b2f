/*
 * The key-value txn of kv.h over LMDB (kv_lmdb.c), against a real
 * environment in a temporary directory: the results of get, put and
 * del, cursors both ways and past either end, SET_RANGE, cur_del then
 * NEXT, cursors kept within a prefix, the databases kept apart,
 * numbers reserved from a counter, and MDB_MAP_FULL as 507.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../worker/kv_lmdb.h"
#include "../../worker/engine.h"


typedef struct {
    char               dir[64];
    MDB_env           *env;
    MDB_txn           *txn;
    MDB_dbi            dbi[WH_KV_NDBS];
    unsigned           created;
    wh_kv_lmdb_txn_t   kt;
    wh_kv_txn_t       *t;
} fixture_t;


static wh_kv_val_t
V(const char *s, size_t len)
{
    wh_kv_val_t  v = { len, (void *) s };

    return v;
}


#define K(s)  V(s, sizeof(s) - 1)


static void
put(fixture_t *f, wh_kv_db_e db, wh_kv_val_t k, const char *val)
{
    wh_err_t     err;
    wh_kv_val_t  v = V(val, strlen(val));

    assert_int_equal(wh_kv_put(f->t, db, &k, &v, 0, &err), 0);
}


/* the cursor's key is want (its bytes, "\0" included) */
static void
assert_key(const wh_kv_val_t *k, wh_kv_val_t want)
{
    assert_int_equal(k->len, want.len);
    assert_memory_equal(k->data, want.data, want.len);
}


/* the cursor goes to op, and finds want there */
static void
at(wh_kv_cur_t *c, wh_kv_val_t *k, wh_kv_val_t *v, wh_kv_op_e op,
    wh_kv_val_t want)
{
    wh_err_t  err;

    assert_int_equal(wh_kv_cur_get(c, k, v, op, &err), 0);
    assert_key(k, want);
}


/* the cursor finds nothing at op */
static void
none(wh_kv_cur_t *c, wh_kv_val_t *k, wh_kv_val_t *v, wh_kv_op_e op)
{
    wh_err_t  err;

    assert_int_equal(wh_kv_cur_get(c, k, v, op, &err), WH_KV_NOTFOUND);
}


static void
begin(fixture_t *f)
{
    wh_err_t  err;

    assert_int_equal(mdb_txn_begin(f->env, NULL, 0, &f->txn), 0);
    assert_int_equal(wh_kv_lmdb_open(f->txn, f->dbi, &f->created, &err),
                     0);
    wh_kv_lmdb_txn(&f->kt, f->txn, f->dbi);
    f->t = &f->kt.base;
}


static int
setup_map(void **state, size_t map_size)
{
    fixture_t  *f;

    f = calloc(1, sizeof(fixture_t));

    if (f == NULL) {
        return -1;
    }

    strcpy(f->dir, "/tmp/wh-kv-XXXXXX");

    if (mkdtemp(f->dir) == NULL
        || mdb_env_create(&f->env) != 0
        || mdb_env_set_maxdbs(f->env, WH_KV_NDBS + 1) != 0
        || mdb_env_set_mapsize(f->env, map_size) != 0
        || mdb_env_open(f->env, f->dir, MDB_NOSYNC, 0600) != 0)
    {
        return -1;
    }

    begin(f);
    *state = f;

    return 0;
}


static int
setup(void **state)
{
    return setup_map(state, 1024 * 1024);
}


static int
setup_small(void **state)
{
    return setup_map(state, 64 * 1024);
}


static int
teardown(void **state)
{
    char        path[128];
    fixture_t  *f = *state;

    if (f->txn) {
        mdb_txn_abort(f->txn);
    }

    mdb_env_close(f->env);
    snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);

    return 0;
}


/* every database is made the first time, none the next */
static void
test_open_creates_once(void **state)
{
    fixture_t  *f = *state;

    assert_int_equal(f->created, (1u << WH_KV_NDBS) - 1);
    assert_int_equal(mdb_txn_commit(f->txn), 0);
    begin(f);
    assert_int_equal(f->created, 0);
}


static void
test_get_put_del(void **state)
{
    wh_err_t      err;
    wh_kv_val_t   k = K("ws\0id"), v, old = K("one"), new = K("two");
    fixture_t    *f = *state;

    assert_int_equal(wh_kv_get(f->t, WH_KV_CLIENTS, &k, &v, &err),
                     WH_KV_NOTFOUND);
    assert_int_equal(wh_kv_del(f->t, WH_KV_CLIENTS, &k, &err),
                     WH_KV_NOTFOUND);

    assert_int_equal(wh_kv_put(f->t, WH_KV_CLIENTS, &k, &old,
                               WH_KV_NOOVERWRITE, &err), 0);
    assert_int_equal(wh_kv_put(f->t, WH_KV_CLIENTS, &k, &new,
                               WH_KV_NOOVERWRITE, &err), WH_KV_EXISTS);
    assert_int_equal(wh_kv_get(f->t, WH_KV_CLIENTS, &k, &v, &err), 0);
    assert_key(&v, old);

    /* without the flag, a put replaces */
    assert_int_equal(wh_kv_put(f->t, WH_KV_CLIENTS, &k, &new, 0, &err), 0);
    assert_int_equal(wh_kv_get(f->t, WH_KV_CLIENTS, &k, &v, &err), 0);
    assert_key(&v, new);

    /* the databases are apart: the same key is in one only */
    assert_int_equal(wh_kv_get(f->t, WH_KV_REVOKED, &k, &v, &err),
                     WH_KV_NOTFOUND);

    assert_int_equal(wh_kv_del(f->t, WH_KV_CLIENTS, &k, &err), 0);
    assert_int_equal(wh_kv_get(f->t, WH_KV_CLIENTS, &k, &v, &err),
                     WH_KV_NOTFOUND);
    assert_int_equal(wh_kv_del(f->t, WH_KV_CLIENTS, &k, &err),
                     WH_KV_NOTFOUND);
}


static void
test_empty_database(void **state)
{
    wh_err_t      err;
    wh_kv_val_t   k = { 0, NULL }, v;
    wh_kv_cur_t  *c;
    fixture_t    *f = *state;

    assert_int_equal(wh_kv_cur_open(f->t, WH_KV_JOBS, NULL, &c, &err), 0);
    none(c, &k, &v, WH_KV_FIRST);
    none(c, &k, &v, WH_KV_LAST);
    k = K("a");
    none(c, &k, &v, WH_KV_SET_RANGE);
    wh_kv_cur_close(c);
}


/* ws "\0" a < ws "\0" b < ws "\0" b "\0" 1 < wt: memcmp order, the
 * shorter first, as the state's keys rely on */
static void
fill(fixture_t *f)
{
    put(f, WH_KV_CMD_WS, K("ws\0b\0" "1"), "3");
    put(f, WH_KV_CMD_WS, K("wt"), "4");
    put(f, WH_KV_CMD_WS, K("ws\0a"), "1");
    put(f, WH_KV_CMD_WS, K("ws\0b"), "2");
}


/* a cursor over what fill() put */
static wh_kv_cur_t *
filled(fixture_t *f)
{
    wh_err_t      err;
    wh_kv_cur_t  *c;

    fill(f);
    assert_int_equal(wh_kv_cur_open(f->t, WH_KV_CMD_WS, NULL, &c, &err), 0);

    return c;
}


static void
test_cursor_both_ways(void **state)
{
    wh_err_t      err;
    wh_kv_val_t   k = { 0, NULL }, v;
    wh_kv_cur_t  *c;
    fixture_t    *f = *state;

    c = filled(f);

    at(c, &k, &v, WH_KV_FIRST, K("ws\0a"));
    assert_key(&v, K("1"));
    at(c, &k, &v, WH_KV_NEXT, K("ws\0b"));
    at(c, &k, &v, WH_KV_NEXT, K("ws\0b\0" "1"));
    at(c, &k, &v, WH_KV_NEXT, K("wt"));
    none(c, &k, &v, WH_KV_NEXT);

    at(c, &k, &v, WH_KV_LAST, K("wt"));
    assert_key(&v, K("4"));
    at(c, &k, &v, WH_KV_PREV, K("ws\0b\0" "1"));
    at(c, &k, &v, WH_KV_GET_CURRENT, K("ws\0b\0" "1"));
    assert_key(&v, K("3"));
    assert_int_equal(wh_kv_cur_get(c, &k, &v, WH_KV_PREV, &err), 0);
    at(c, &k, &v, WH_KV_PREV, K("ws\0a"));
    none(c, &k, &v, WH_KV_PREV);

    wh_kv_cur_close(c);
}


/* a cursor with a prefix sees its keys alone, whatever is around */
static void
test_cursor_prefix(void **state)
{
    wh_err_t      err;
    wh_kv_val_t   k = { 0, NULL }, v, p = K("ws\0b");
    wh_kv_cur_t  *c;
    fixture_t    *f = *state;

    fill(f);
    put(f, WH_KV_CMD_WS, K("ws\0c"), "5");
    assert_int_equal(wh_kv_cur_open(f->t, WH_KV_CMD_WS, &p, &c, &err), 0);

    at(c, &k, &v, WH_KV_FIRST, K("ws\0b"));
    at(c, &k, &v, WH_KV_NEXT, K("ws\0b\0" "1"));
    none(c, &k, &v, WH_KV_NEXT);
    at(c, &k, &v, WH_KV_LAST, K("ws\0b\0" "1"));
    at(c, &k, &v, WH_KV_PREV, K("ws\0b"));
    none(c, &k, &v, WH_KV_PREV);

    /* from before the prefix: its first key; from past it: none */
    k = K("ws\0a");
    at(c, &k, &v, WH_KV_SET_RANGE, K("ws\0b"));
    k = K("ws\0b\0" "2");
    none(c, &k, &v, WH_KV_SET_RANGE);
    wh_kv_cur_close(c);

    /* a prefix of one byte of 0xff and none after it: LAST is the
     * database's last key, if it is the prefix's */
    p = K("\xff");
    put(f, WH_KV_CMD_WS, K("\xff\xff"), "6");
    assert_int_equal(wh_kv_cur_open(f->t, WH_KV_CMD_WS, &p, &c, &err), 0);
    at(c, &k, &v, WH_KV_LAST, K("\xff\xff"));
    at(c, &k, &v, WH_KV_FIRST, K("\xff\xff"));
    none(c, &k, &v, WH_KV_NEXT);
    wh_kv_cur_close(c);

    /* a prefix no key has */
    p = K("wu");
    assert_int_equal(wh_kv_cur_open(f->t, WH_KV_CMD_WS, &p, &c, &err), 0);
    none(c, &k, &v, WH_KV_FIRST);
    none(c, &k, &v, WH_KV_LAST);
    wh_kv_cur_close(c);
}


static void
test_set_range(void **state)
{
    wh_err_t      err;
    wh_kv_val_t   k, v;
    wh_kv_cur_t  *c;
    fixture_t    *f = *state;

    c = filled(f);

    /* a key that is there */
    k = K("ws\0b");
    at(c, &k, &v, WH_KV_SET_RANGE, K("ws\0b"));
    assert_key(&v, K("2"));

    /* between two: the next one, and then on from there */
    k = K("ws\0" "aa");
    at(c, &k, &v, WH_KV_SET_RANGE, K("ws\0b"));
    at(c, &k, &v, WH_KV_NEXT, K("ws\0b\0" "1"));

    /* the prefix alone: the first key with it */
    k = K("ws\0");
    at(c, &k, &v, WH_KV_SET_RANGE, K("ws\0a"));

    /* past the last, then back from the end (cmd_list_ws's walk) */
    k = K("x");
    none(c, &k, &v, WH_KV_SET_RANGE);
    at(c, &k, &v, WH_KV_LAST, K("wt"));

    /* found, then one back */
    k = K("wt");
    assert_int_equal(wh_kv_cur_get(c, &k, &v, WH_KV_SET_RANGE, &err), 0);
    at(c, &k, &v, WH_KV_PREV, K("ws\0b\0" "1"));

    wh_kv_cur_close(c);
}


static void
test_cur_del_then_next(void **state)
{
    int           n = 0;
    wh_err_t      err;
    wh_kv_val_t   k, v;
    wh_kv_cur_t  *c;
    fixture_t    *f = *state;

    c = filled(f);

    /* deleting the entry under the cursor: NEXT is the one after it */
    k = K("ws\0b");
    assert_int_equal(wh_kv_cur_get(c, &k, &v, WH_KV_SET_RANGE, &err), 0);
    assert_int_equal(wh_kv_cur_del(c, &err), 0);
    at(c, &k, &v, WH_KV_NEXT, K("ws\0b\0" "1"));
    k = K("ws\0b");
    assert_int_equal(wh_kv_get(f->t, WH_KV_CMD_WS, &k, &v, &err),
                     WH_KV_NOTFOUND);

    /* deleting as it walks, as wh_state_del_prefix does: all go */
    for (k = K("ws\0"), n = 0;
         wh_kv_cur_get(c, &k, &v, n ? WH_KV_NEXT : WH_KV_SET_RANGE, &err)
         == 0 && k.len > 3 && memcmp(k.data, "ws\0", 3) == 0;
         n++)
    {
        assert_int_equal(wh_kv_cur_del(c, &err), 0);
    }

    assert_int_equal(n, 2);
    wh_kv_cur_close(c);

    /* what is left, read by a new cursor, which sees the txn's writes */
    put(f, WH_KV_CMD_WS, K("a"), "0");
    assert_int_equal(wh_kv_cur_open(f->t, WH_KV_CMD_WS, NULL, &c, &err), 0);
    at(c, &k, &v, WH_KV_FIRST, K("a"));
    at(c, &k, &v, WH_KV_NEXT, K("wt"));
    none(c, &k, &v, WH_KV_NEXT);
    wh_kv_cur_close(c);
}


/* a full map is 507 with LMDB's message: wh_store_write grows the map
 * and runs the write again on that status */
/* a counter: runs of numbers one after the other, from what the key
 * held (as the command seq is written), the key holding the last */
static void
test_reserve(void **state)
{
    uint64_t       first;
    wh_err_t       err;
    fixture_t     *f = *state;
    wh_kv_val_t    k = K("seq"), v;
    unsigned char  be[8] = { 0, 0, 0, 0, 0, 0, 0x01, 0x00 };

    assert_int_equal(wh_kv_reserve(f->t, WH_KV_CMD_META, &k, 64, &first,
                                   &err), 0);
    assert_int_equal(first, 1);
    assert_int_equal(wh_kv_reserve(f->t, WH_KV_CMD_META, &k, 3, &first,
                                   &err), 0);
    assert_int_equal(first, 65);

    /* a counter written as the seq always was: numbers past it */
    v = V((const char *) be, sizeof(be));
    assert_int_equal(wh_kv_put(f->t, WH_KV_CMD_META, &k, &v, 0, &err), 0);
    assert_int_equal(wh_kv_reserve(f->t, WH_KV_CMD_META, &k, 10, &first,
                                   &err), 0);
    assert_int_equal(first, 257);
    assert_int_equal(wh_kv_get(f->t, WH_KV_CMD_META, &k, &v, &err), 0);
    assert_int_equal(v.len, 8);
    assert_int_equal(((unsigned char *) v.data)[7], 266 - 256);
    assert_int_equal(((unsigned char *) v.data)[6], 1);
}


static void
test_map_full_is_507(void **state)
{
    int           rc = 0;
    char          key[16], val[1024];
    wh_err_t      err;
    unsigned      i;
    wh_kv_val_t   k, v;
    fixture_t    *f = *state;

    memset(val, 'x', sizeof(val));
    v = V(val, sizeof(val));

    for (i = 0; rc == 0 && i < 10000; i++) {
        k = V(key, (size_t) snprintf(key, sizeof(key), "k%08u", i));
        rc = wh_kv_put(f->t, WH_KV_COMMANDS, &k, &v, 0, &err);
    }

    assert_int_equal(rc, -1);
    assert_int_equal(err.status, 507);
    assert_string_equal(err.msg, mdb_strerror(MDB_MAP_FULL));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_put_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cursor_both_ways, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_set_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_prefix, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cur_del_then_next, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full_is_507, setup_small,
                                        teardown)
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
