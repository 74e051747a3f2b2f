/*
 * The engine interface (worker/engine.h) on its LMDB implementation,
 * against a real environment in a temporary directory: clients and
 * their listing, revocations, commands with their indexes (open,
 * per client, idempotency keys), the seq, the history bound; the two
 * environments (state synced, history MDB_NOSYNC), map growth in the
 * state one, the upgrade of the one-environment layout; and the expiry
 * rule of cmdqueue.c.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../worker/engine_lmdb.h"
#include "../../worker/state.h"


#define T0  1795255200000LL     /* 2026-11-21T10:00:00Z */

typedef struct {
    char          dir[64];
    wh_engine_t  *e;
} fixture_t;

typedef int (*step_pt)(wh_etxn_t *t, void *ctx, wh_err_t *err);


static wh_str_t
S(const char *s)
{
    wh_str_t  r = { s, strlen(s) };

    return r;
}


static int
eq(wh_str_t a, const char *b)
{
    return a.len == strlen(b) && memcmp(a.data, b, a.len) == 0;
}


static int
setup(void **state)
{
    wh_err_t    err;
    fixture_t  *f;

    f = calloc(1, sizeof(fixture_t));
    strcpy(f->dir, "/tmp/wh-engine-XXXXXX");

    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }

    if (wh_engine_lmdb_open(&f->e, f->dir, 1024 * 1024, 64 * 1024 * 1024,
                            10, 0, NULL, &err) != 0)
    {
        fprintf(stderr, "open: %s\n", err.msg);
        return -1;
    }

    *state = f;

    return 0;
}


static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static void
rm_tree(const char *dir)
{
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}


static int
teardown(void **state)
{
    fixture_t  *f = *state;

    if (f->e) {
        wh_engine_close(f->e);
    }

    rm_tree(f->dir);
    free(f);

    return 0;
}


static void
run_in(fixture_t *f, wh_engine_space_e space, step_pt fn, void *ctx)
{
    wh_err_t  err;

    err.msg[0] = '\0';

    if (wh_engine_write(f->e, space, fn, ctx, &err) != 0) {
        fail_msg("write: %s", err.msg);
    }
}


static void
run(fixture_t *f, step_pt fn, void *ctx)
{
    run_in(f, WH_ENGINE_STATE, fn, ctx);
}


/* ---------------------------------------------------------- clients */


static int
clients_put(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    int           i;
    char          id[16];
    wh_client_t   cl;

    (void) ctx;

    for (i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "c%d", i);
        memset(&cl, 0, sizeof(cl));
        cl.ws = S("acme");
        cl.id = S(id);
        cl.name = S("Name");
        cl.client_type = S("sensor");
        cl.metadata = i == 0 ? S("{\"a\":1}") : S("");
        cl.created_ms = T0 + i;

        if (wh_etxn_ops(t)->client_put(t, &cl, err) != 0) {
            return -1;
        }
    }

    memset(&cl, 0, sizeof(cl));
    cl.ws = S("other");
    cl.id = S("c0");

    return wh_etxn_ops(t)->client_put(t, &cl, err);
}


static int
clients_check(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    wh_client_t       cl;
    wh_client_list_t  l;

    (void) ctx;

    assert_int_equal(wh_etxn_ops(t)->client_get(t, S("acme"), S("c0"), &cl,
                                                err), 1);
    assert_true(eq(cl.name, "Name"));
    assert_true(eq(cl.client_type, "sensor"));
    assert_true(eq(cl.metadata, "{\"a\":1}"));
    assert_int_equal(cl.created_ms, T0);
    assert_int_equal(cl.last_seen_ms, 0);
    wh_client_free(&cl);

    assert_int_equal(wh_etxn_ops(t)->client_get(t, S("acme"), S("c9"),
                                                NULL, err), 0);

    /* pages of two, by id, within the workspace */
    assert_int_equal(wh_etxn_ops(t)->client_list(t, S("acme"), S(""), 2, &l,
                                                 err), 0);
    assert_int_equal(l.n, 2);
    assert_true(l.more);
    assert_true(eq(l.items[1].id, "c1"));
    wh_client_list_free(&l);

    assert_int_equal(wh_etxn_ops(t)->client_list(t, S("acme"), S("c2"), 2,
                                                 &l, err), 0);
    assert_int_equal(l.n, 2);
    assert_false(l.more);
    assert_true(eq(l.items[0].id, "c3"));
    assert_true(eq(l.items[1].id, "c4"));
    wh_client_list_free(&l);

    return wh_etxn_ops(t)->client_revoke(t, S("acme"), S("c1"), 1234, err);
}


typedef struct {
    int       n;
    uint64_t  before;
} revoked_t;


static int
revoked_cb(void *ctx, wh_str_t ws, wh_str_t id, uint64_t before_s)
{
    revoked_t  *r = ctx;

    assert_true(eq(ws, "acme"));
    assert_true(eq(id, "c1"));
    r->n++;
    r->before = before_s;

    return 0;
}


static int
revoked_check(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    assert_int_equal(wh_etxn_ops(t)->client_get(t, S("acme"), S("c1"),
                                                NULL, err), 0);

    return wh_etxn_ops(t)->revocations(t, revoked_cb, ctx, err);
}


static void
test_clients_and_revocations(void **state)
{
    fixture_t  *f = *state;
    revoked_t   r = { 0, 0 };

    run(f, clients_put, NULL);
    run(f, clients_check, NULL);
    run(f, revoked_check, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.before, 1234);
}


/* ---------------------------------------------------------- sources */


static int
sources_put(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    (void) ctx;

    if (wh_etxn_ops(t)->source_put(t, S("acme"), S("dev1"), S("{\"a\":1}"),
                                   err) != 0
        || wh_etxn_ops(t)->source_put(t, S("acme"), S("dev2"), S("{}"),
                                      err) != 0
        || wh_etxn_ops(t)->source_put(t, S("other"), S("dev1"), S("{}"),
                                      err) != 0)
    {
        return -1;
    }

    /* a second put replaces */
    return wh_etxn_ops(t)->source_put(t, S("acme"), S("dev1"),
                                      S("{\"a\":2}"), err);
}


static int
sources_cb(void *ctx, wh_str_t ws, wh_str_t id, wh_str_t record)
{
    char  *seen = ctx;
    char   line[64];

    snprintf(line, sizeof(line), "%.*s/%.*s=%.*s;", (int) ws.len, ws.data,
             (int) id.len, id.data, (int) record.len, record.data);
    strcat(seen, line);

    return 0;
}


static int
sources_each(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    ((char *) ctx)[0] = '\0';

    return wh_etxn_ops(t)->source_each(t, sources_cb, ctx, err);
}


static int
sources_del(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    (void) ctx;

    assert_int_equal(wh_etxn_ops(t)->source_del(t, S("acme"), S("dev2"),
                                                err), 1);
    assert_int_equal(wh_etxn_ops(t)->source_del(t, S("acme"), S("dev2"),
                                                err), 0);

    return 0;
}


static void
test_sources(void **state)
{
    char        seen[256];
    wh_err_t    err;
    fixture_t  *f = *state;

    run(f, sources_put, NULL);
    run(f, sources_each, seen);
    assert_string_equal(seen, "acme/dev1={\"a\":2};acme/dev2={};"
                        "other/dev1={};");
    run(f, sources_del, NULL);

    /* kept across a reopen */
    wh_engine_close(f->e);
    f->e = NULL;
    assert_int_equal(wh_engine_lmdb_open(&f->e, f->dir, 1024 * 1024,
                                         64 * 1024 * 1024, 10, 0, NULL,
                                         &err), 0);
    run(f, sources_each, seen);
    assert_string_equal(seen, "acme/dev1={\"a\":2};other/dev1={};");
}


/* --------------------------------------------------------- commands */


static void
make_cmd(wh_command_t *cmd, const char *id, uint64_t seq, const char *idem)
{
    wh_cmd_event_t  ev;

    memset(cmd, 0, sizeof(wh_command_t));
    cmd->ws = S("acme");
    cmd->id = S(id);
    cmd->client_id = S("dev");
    cmd->command = S("reboot");
    cmd->payload = S("{\"delay\":1}");
    cmd->idem = S(idem);
    cmd->priority = 5;
    cmd->seq = seq;
    cmd->state.status = WH_CMD_PENDING;
    cmd->state.expires_ms = T0 + 60000;
    cmd->created_ms = T0;
    cmd->updated_ms = T0;

    memset(&ev, 0, sizeof(ev));
    ev.status = WH_CMD_PENDING;
    ev.at_ms = T0;
    assert_int_equal(wh_command_event(cmd, &ev), 0);
}


static int
cmds_put(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    int            i;
    char           id[16];
    wh_command_t   cmd;

    (void) ctx;

    for (i = 1; i <= 4; i++) {
        snprintf(id, sizeof(id), "c-%d", i);
        make_cmd(&cmd, id, i, i == 2 ? "key-2" : "");

        if (wh_etxn_ops(t)->cmd_insert(t, &cmd, err) != 0) {
            wh_command_free(&cmd);
            return -1;
        }

        wh_command_free(&cmd);
    }

    return wh_etxn_ops(t)->cmd_set_seq(t, 4, err);
}


/* c-3 is sent once, then completed with a result */
static int
cmds_change(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    wh_command_t    cmd;
    wh_cmd_event_t  ev;

    (void) ctx;

    assert_int_equal(wh_etxn_ops(t)->cmd_get(t, S("acme"), S("c-3"), &cmd,
                                             err), 1);
    memset(&ev, 0, sizeof(ev));
    ev.status = WH_CMD_SENT;
    ev.at_ms = T0 + 1;
    ev.attempt = 1;
    ev.session = S("s-1");
    cmd.state.status = WH_CMD_SENT;
    cmd.state.attempt = 1;
    assert_int_equal(wh_command_event(&cmd, &ev), 0);
    assert_int_equal(wh_etxn_ops(t)->cmd_update(t, &cmd, err), 0);

    memset(&ev, 0, sizeof(ev));
    ev.status = WH_CMD_COMPLETED;
    ev.at_ms = T0 + 2;
    cmd.state.status = WH_CMD_COMPLETED;
    cmd.result = S("{\"ok\":true}");
    assert_int_equal(wh_command_event(&cmd, &ev), 0);
    assert_int_equal(wh_etxn_ops(t)->cmd_update(t, &cmd, err), 0);
    wh_command_free(&cmd);

    return 0;
}


typedef struct {
    char  ids[8][16];
    int   n;
} seen_t;


static int
open_cb(void *ctx, wh_command_t *cmd, wh_err_t *err)
{
    seen_t  *s = ctx;

    (void) err;

    assert_true(cmd->id.len < sizeof(s->ids[0]));
    memcpy(s->ids[s->n], cmd->id.data, cmd->id.len);
    s->ids[s->n][cmd->id.len] = '\0';
    s->n++;

    return 0;
}


static int
cmds_check(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    uint64_t        seq;
    wh_command_t    cmd;
    wh_cmd_list_t   l;
    seen_t         *s = ctx;

    assert_int_equal(wh_etxn_ops(t)->cmd_seq(t, &seq, err), 0);
    assert_int_equal(seq, 4);

    assert_int_equal(wh_etxn_ops(t)->cmd_get(t, S("acme"), S("c-3"), &cmd,
                                             err), 1);
    assert_int_equal(cmd.state.status, WH_CMD_COMPLETED);
    assert_true(eq(cmd.result, "{\"ok\":true}"));
    assert_true(eq(cmd.payload, "{\"delay\":1}"));
    assert_int_equal(cmd.nhistory, 3);
    assert_int_equal(cmd.history[1].attempt, 1);
    assert_true(eq(cmd.history[1].session, "s-1"));
    assert_int_equal(cmd.history[2].status, WH_CMD_COMPLETED);
    wh_command_free(&cmd);

    /* another workspace sees nothing */
    assert_int_equal(wh_etxn_ops(t)->cmd_get(t, S("other"), S("c-3"), &cmd,
                                             err), 0);

    assert_int_equal(wh_etxn_ops(t)->cmd_idem(t, S("acme"), S("dev"),
                                              S("key-2"), &cmd, err), 1);
    assert_true(eq(cmd.id, "c-2"));
    wh_command_free(&cmd);

    /* the pending ones, two a page */
    assert_int_equal(wh_etxn_ops(t)->cmd_list(t, S("acme"), S("dev"), 0, 2,
                                              1u << WH_CMD_PENDING, &l,
                                              err), 0);
    assert_int_equal(l.n, 2);
    assert_true(eq(l.items[0].id, "c-1"));
    assert_true(eq(l.items[1].id, "c-2"));
    assert_int_equal(l.next, 2);
    wh_cmd_list_free(&l);

    assert_int_equal(wh_etxn_ops(t)->cmd_list(t, S("acme"), S("dev"), 2, 2,
                                              1u << WH_CMD_PENDING, &l,
                                              err), 0);
    assert_int_equal(l.n, 1);
    assert_true(eq(l.items[0].id, "c-4"));
    assert_int_equal(l.next, 0);
    wh_cmd_list_free(&l);

    /* the completed one is no longer open */
    return wh_etxn_ops(t)->cmd_open(t, S("acme"), S("dev"), open_cb, s,
                                    err);
}


static int
cmds_forget(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    wh_command_t  cmd;

    (void) ctx;

    assert_int_equal(wh_etxn_ops(t)->cmd_forget_client(t, S("acme"),
                                                       S("dev"), err), 0);
    assert_int_equal(wh_etxn_ops(t)->cmd_idem(t, S("acme"), S("dev"),
                                              S("key-2"), &cmd, err), 0);

    return 0;
}


static void
test_commands(void **state)
{
    fixture_t  *f = *state;
    seen_t      s;

    memset(&s, 0, sizeof(s));
    run(f, cmds_put, NULL);
    run(f, cmds_change, NULL);
    run(f, cmds_check, &s);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.ids[0], "c-1");
    assert_string_equal(s.ids[1], "c-2");
    assert_string_equal(s.ids[2], "c-4");
    run(f, cmds_forget, NULL);
}


/* the workspace's listing, newest first, and the retention: c-3 ended
 * (cmds_change) with updated_ms T0; c-2 holds an idempotency key */
static int
audit_check(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    int              more;
    size_t           removed;
    wh_command_t     cmd;
    wh_cmd_list_t    l;
    wh_cmd_filter_t  f;

    (void) ctx;
    memset(&f, 0, sizeof(f));

    /* two a page: c-4 c-3, then c-2 c-1 */
    assert_int_equal(wh_etxn_ops(t)->cmd_list_ws(t, S("acme"), 0, 2, 100,
                                                 &f, &l, err), 0);
    assert_int_equal(l.n, 2);
    assert_true(eq(l.items[0].id, "c-4"));
    assert_true(eq(l.items[1].id, "c-3"));
    assert_int_equal(l.next, 3);
    wh_cmd_list_free(&l);
    assert_int_equal(wh_etxn_ops(t)->cmd_list_ws(t, S("acme"), 3, 2, 100,
                                                 &f, &l, err), 0);
    assert_int_equal(l.n, 2);
    assert_true(eq(l.items[1].id, "c-1"));
    assert_int_equal(l.next, 0);
    wh_cmd_list_free(&l);

    /* a scan of 1 with a filter that admits c-1 only: empty pages */
    f.mask = 1u << WH_CMD_COMPLETED;
    assert_int_equal(wh_etxn_ops(t)->cmd_list_ws(t, S("acme"), 0, 10, 1,
                                                 &f, &l, err), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(l.next, 4);
    wh_cmd_list_free(&l);
    assert_int_equal(wh_etxn_ops(t)->cmd_list_ws(t, S("acme"), 4, 10, 1,
                                                 &f, &l, err), 0);
    assert_int_equal(l.n, 1);
    assert_true(eq(l.items[0].id, "c-3"));
    wh_cmd_list_free(&l);

    /* another workspace has none */
    memset(&f, 0, sizeof(f));
    assert_int_equal(wh_etxn_ops(t)->cmd_list_ws(t, S("acm"), 0, 10, 100,
                                                 &f, &l, err), 0);
    assert_int_equal(l.n, 0);
    wh_cmd_list_free(&l);

    /* nothing ended before T0; then c-3 goes, with its indexes */
    assert_int_equal(wh_etxn_ops(t)->cmd_prune(t, T0, 10, &removed,
                                               &more, err), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(wh_etxn_ops(t)->cmd_prune(t, T0 + 1, 10, &removed,
                                               &more, err), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(more, 0);
    assert_int_equal(wh_etxn_ops(t)->cmd_get(t, S("acme"), S("c-3"), &cmd,
                                             err), 0);
    assert_int_equal(wh_etxn_ops(t)->cmd_list(t, S("acme"), S("dev"), 0, 10,
                                              0, &l, err), 0);
    assert_int_equal(l.n, 3);
    wh_cmd_list_free(&l);
    assert_int_equal(wh_etxn_ops(t)->cmd_list_ws(t, S("acme"), 0, 10, 100,
                                                 &f, &l, err), 0);
    assert_int_equal(l.n, 3);
    wh_cmd_list_free(&l);

    /* a deleted command takes its idempotency key along */
    assert_int_equal(wh_etxn_ops(t)->cmd_delete(t, S("acme"), S("c-2"),
                                                err), 1);
    assert_int_equal(wh_etxn_ops(t)->cmd_delete(t, S("acme"), S("c-2"),
                                                err), 0);
    assert_int_equal(wh_etxn_ops(t)->cmd_idem(t, S("acme"), S("dev"),
                                              S("key-2"), &cmd, err), 0);

    return 0;
}


static void
test_commands_audit(void **state)
{
    fixture_t  *f = *state;

    run(f, cmds_put, NULL);
    run(f, cmds_change, NULL);
    run(f, audit_check, NULL);
}


/* ------------------------------------------ the late client index */


/* what a txn of test_client_index_late does: put commands seq from..to
 * (client "dev" but seq 4, "tab"), or index, or list */
typedef struct {
    uint64_t        from, to, after, indexed;
    size_t          limit;
    int             index;
    char            got[64];
    uint64_t        next;
} late_t;


static int
late_put(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    int            rc;
    char           id[16];
    uint64_t       seq;
    wh_command_t   cmd;
    late_t        *l = ctx;

    for (seq = l->from; seq && seq <= l->to; seq++) {
        snprintf(id, sizeof(id), "c-%d", (int) seq);
        make_cmd(&cmd, id, seq, "");
        cmd.client_id = S(seq == 4 ? "tab" : "dev");
        rc = wh_etxn_ops(t)->cmd_insert(t, &cmd, err);
        wh_command_free(&cmd);

        if (rc != 0) {
            return -1;
        }
    }

    if (l->index) {
        /* with commands of its own txn (seq set at its end), those stay
         * past the mark */
        if (wh_etxn_ops(t)->cmd_index_clients(t, &l->indexed, err) != 0) {
            return -1;
        }

        return l->to ? wh_etxn_ops(t)->cmd_set_seq(t, l->to, err) : 0;
    }

    if (l->from == 8) {
        /* c-8's entry as a store of before wrote it: the id alone */
        if (wh_state_put(t, WH_KV_CMD_WS, "acme\0\0\0\0\0\0\0\0\x08", 13,
                         "c-8", 3, "test", err) != 0)
        {
            return -1;
        }
    }

    return wh_etxn_ops(t)->cmd_set_seq(t, l->to, err);
}


static int
late_list(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    size_t          i;
    wh_cmd_list_t   out;
    late_t         *l = ctx;

    if (wh_etxn_ops(t)->cmd_list(t, S("acme"), S("dev"), l->after,
                                 l->limit, 0, &out, err) != 0)
    {
        return -1;
    }

    l->got[0] = '\0';

    for (i = 0; i < out.n; i++) {
        snprintf(l->got + strlen(l->got), sizeof(l->got) - strlen(l->got),
                 "%s%.*s", i ? "," : "", (int) out.items[i].id.len,
                 out.items[i].id.data);
    }

    l->next = out.next;
    wh_cmd_list_free(&out);

    return 0;
}


static void
late_expect(fixture_t *f, uint64_t after, size_t limit, const char *got,
    uint64_t next)
{
    late_t  l;

    memset(&l, 0, sizeof(l));
    l.after = after;
    l.limit = limit;
    run(f, late_list, &l);
    assert_string_equal(l.got, got);
    assert_int_equal(l.next, next);
}


/* a txn that puts commands from..to (0, 0: none), or that indexes
 * (index: the seq the index has after it) */
static void
late_step(fixture_t *f, uint64_t from, uint64_t to, uint64_t index)
{
    late_t  l;

    memset(&l, 0, sizeof(l));
    l.from = from;
    l.to = to;
    l.index = index != 0;
    run(f, late_put, &l);

    if (index) {
        assert_int_equal(l.indexed, index);
    }
}


/*
 * One node writes cmd_client late: a listing reads the index up to its
 * mark and cmd_ws after it, the same pages whether the commands were
 * indexed or not, and a reopen (a crash between the two) loses none.
 */
static void
test_client_index_late(void **state)
{
    fixture_t  *f = *state;
    wh_err_t    err;

    late_step(f, 1, 5, 0);

    late_expect(f, 0, 10, "c-1,c-2,c-3,c-5", 0);
    late_expect(f, 0, 2, "c-1,c-2", 2);
    late_expect(f, 2, 2, "c-3,c-5", 0);

    late_step(f, 0, 0, 5);

    late_step(f, 6, 7, 0);

    /* pages across the mark: c-5 indexed, c-6 not */
    late_expect(f, 0, 10, "c-1,c-2,c-3,c-5,c-6,c-7", 0);
    late_expect(f, 2, 2, "c-3,c-5", 5);
    late_expect(f, 5, 1, "c-6", 6);
    late_expect(f, 6, 1, "c-7", 0);

    /* kept across a reopen: the mark too */
    wh_engine_close(f->e);
    f->e = NULL;
    assert_int_equal(wh_engine_lmdb_open(&f->e, f->dir, 1024 * 1024,
                                         64 * 1024 * 1024, 10, 0, NULL,
                                         &err), 0);
    late_expect(f, 0, 10, "c-1,c-2,c-3,c-5,c-6,c-7", 0);

    late_step(f, 0, 0, 7);
    late_expect(f, 3, 10, "c-5,c-6,c-7", 0);
    late_expect(f, 0, 3, "c-1,c-2,c-3", 3);

    /* an entry that does not name the client: its record does */
    late_step(f, 8, 8, 0);
    late_expect(f, 6, 10, "c-7,c-8", 0);

    late_step(f, 0, 0, 8);
    late_expect(f, 6, 10, "c-7,c-8", 0);

    /* an index step in the txn that made c-10: c-9 goes in the index,
     * c-10 stays past the mark, each is listed once */
    late_step(f, 9, 9, 0);
    late_step(f, 10, 10, 9);
    late_expect(f, 6, 10, "c-7,c-8,c-9,c-10", 0);
    late_step(f, 0, 0, 10);
    late_expect(f, 6, 10, "c-7,c-8,c-9,c-10", 0);

    /* no seq is past the largest cursor (it once wrapped to 0 and
     * walked cmd_ws for ever) */
    late_step(f, 11, 11, 0);
    late_expect(f, UINT64_MAX, 10, "", 0);
    late_expect(f, UINT64_MAX - 1, 10, "", 0);
}


/* ------------------------------------------------ two environments */


typedef struct {
    const char  *ws, *ch, *text;
    uint64_t     id;
    char         epoch[WH_EPOCH_LEN + 1];
} pub_t;


static int
pub_txn(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    int64_t          growth;
    pub_t           *p = ctx;
    wh_chan_meta_t   meta;

    if (wh_etxn_ops(t)->chan_get(t, S(p->ws), S(p->ch), T0, 1, &meta, err)
        != 1
        || wh_etxn_ops(t)->chan_append(t, S(p->ws), S(p->ch), &meta, T0,
                                       p->text, strlen(p->text), INT64_MAX,
                                       &growth, err) != 0)
    {
        return -1;
    }

    p->id = meta.last_id;
    memcpy(p->epoch, meta.epoch, sizeof(p->epoch));

    return 0;
}


/* publishes text, in a history write; returns its id */
static uint64_t
publish(fixture_t *f, const char *ch, const char *text, char *epoch)
{
    pub_t  p = { "acme", ch, text, 0, "" };

    run_in(f, WH_ENGINE_HISTORY, pub_txn, &p);

    if (epoch) {
        memcpy(epoch, p.epoch, sizeof(p.epoch));
    }

    return p.id;
}


static unsigned
env_flags(wh_store_t *st)
{
    unsigned  flags;

    assert_int_equal(mdb_env_get_flags(st->env, &flags), 0);

    return flags;
}


static int
path_mode(const char *dir, const char *name)
{
    char         path[256];
    struct stat  sb;

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    return stat(path, &sb) == 0 ? (int) (sb.st_mode & 0777) : -1;
}


/* whether the environment in dir has a database of that name */
static int
env_has_db(const char *dir, const char *name)
{
    int       rc;
    MDB_env  *env;
    MDB_txn  *txn;
    MDB_dbi   dbi;

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    rc = mdb_dbi_open(txn, name, 0, &dbi);
    mdb_txn_abort(txn);
    mdb_env_close(env);

    return rc == 0;
}


static void
test_two_environments(void **state)
{
    char               path[128];
    wh_err_t           err;
    fixture_t         *f = *state;
    wh_engine_lmdb_t  *l = (wh_engine_lmdb_t *) f->e;

    /* MDB_NOSYNC only on history: a system crash there cannot take
     * the commands with it; the state's meta page waits for a sync */
    assert_int_equal(env_flags(l->state) & MDB_NOSYNC, 0);
    assert_int_not_equal(env_flags(l->state) & MDB_NOMETASYNC, 0);
    assert_int_not_equal(env_flags(l->history) & MDB_NOSYNC, 0);

    assert_int_equal(path_mode(f->dir, "state"), 0700);
    assert_int_equal(path_mode(f->dir, "history"), 0700);
    assert_int_equal(path_mode(f->dir, "state/data.mdb"), 0600);
    assert_int_equal(path_mode(f->dir, "state/lock.mdb"), 0600);
    assert_int_equal(path_mode(f->dir, "history/data.mdb"), 0600);
    assert_int_equal(path_mode(f->dir, "history/lock.mdb"), 0600);
    assert_int_equal(path_mode(f->dir, "data.mdb"), -1);

    /* a state commit is durable once the engine synced it (the batch
     * asks when an op must be); history waits for its sync thread */
    run(f, clients_put, NULL);
    assert_int_equal(l->state->dirty, 1);
    assert_int_equal(wh_engine_sync(f->e, &err), 0);
    assert_int_equal(l->state->dirty, 0);
    assert_int_equal(publish(f, "t", "x", NULL), 1);
    assert_int_equal(l->history->dirty, 1);

    wh_engine_close(f->e);
    f->e = NULL;

    snprintf(path, sizeof(path), "%s/state", f->dir);
    assert_true(env_has_db(path, "clients"));
    assert_true(env_has_db(path, "cmd_meta"));
    assert_false(env_has_db(path, "history"));
    assert_false(env_has_db(path, "channels"));
    snprintf(path, sizeof(path), "%s/history", f->dir);
    assert_true(env_has_db(path, "history"));
    assert_true(env_has_db(path, "channels"));
    assert_false(env_has_db(path, "clients"));
    assert_false(env_has_db(path, "commands"));
}


static void
test_store_role_is_checked(void **state)
{
    char         path[128];
    wh_err_t     err;
    wh_store_t  *st;
    fixture_t   *f = *state;

    wh_engine_close(f->e);
    f->e = NULL;

    /* history/ opened as the state (a mistaken restore) is refused */
    snprintf(path, sizeof(path), "%s/history", f->dir);
    assert_int_equal(wh_store_open(&st, path, WH_STORE_STATE, 1024 * 1024,
                                   1024 * 1024, 10, 0, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "\"history\", not \"state\""));
}


static int
big_clients(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    int           i;
    char          id[16];
    wh_client_t   cl;

    for (i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "big%d", i);
        memset(&cl, 0, sizeof(cl));
        cl.ws = S("acme");
        cl.id = S(id);
        cl.metadata = S(ctx);

        if (wh_etxn_ops(t)->client_put(t, &cl, err) != 0) {
            return -1;
        }
    }

    return 0;
}


static char *
big_text(size_t n)
{
    char  *big = malloc(n + 1);

    memset(big, 'g', n);
    big[n] = '\0';

    return big;
}


static wh_engine_stats_t
stats(fixture_t *f)
{
    wh_err_t           err;
    wh_engine_stats_t  s;

    if (f->e->ops->stats(f->e, &s, &err) != 0) {
        fail_msg("stats: %s", err.msg);
    }

    return s;
}


static void
test_stats(void **state)
{
    int                i;
    fixture_t         *f = *state;
    wh_engine_stats_t  s;

    s = stats(f);
    assert_int_equal(s.channels, 0);
    assert_int_equal(s.messages, 0);
    assert_int_equal(s.history_bytes, 0);
    assert_int_equal(s.clients, 0);

    for (i = 0; i < 2; i++) {
        assert_true(s.space[i].used_bytes > 0);
        assert_true(s.space[i].used_bytes <= s.space[i].size_bytes);
        assert_int_equal(s.space[i].size_bytes, 1024 * 1024);
        assert_int_equal(s.space[i].max_bytes, 64 * 1024 * 1024);
        assert_int_equal(s.space[i].full, 0);
        assert_int_equal(s.space[i].sync_failed, 0);
    }

    run(f, clients_put, NULL);
    publish(f, "a", "{\"n\":1}", NULL);
    publish(f, "a", "{\"n\":2}", NULL);

    /* the history keeps 10 a channel */
    for (i = 0; i < 12; i++) {
        publish(f, "b", "{\"n\":3}", NULL);
    }

    s = stats(f);
    assert_int_equal(s.clients, 6);
    assert_int_equal(s.channels, 2);
    assert_int_equal(s.messages, 2 + 10);
    assert_true(s.history_bytes > 0);
    assert_true(s.history_bytes
                <= s.space[WH_ENGINE_HISTORY].used_bytes);
}


static void
test_state_map_grows(void **state)
{
    char               *big;
    fixture_t          *f = *state;
    wh_engine_lmdb_t   *l = (wh_engine_lmdb_t *) f->e;

    /* 10 x 200 kB in one state write: past the 1 MiB map, which grows;
     * the history map is another one and stays */
    big = big_text(200000);
    run(f, big_clients, big);
    assert_true(l->state->map_size > 1024 * 1024);
    assert_int_equal(l->history->map_size, 1024 * 1024);
    assert_int_equal(f->e->ops->size(f->e),
                     l->state->map_size + l->history->map_size);
    free(big);
}


static void
test_state_map_full_is_507(void **state)
{
    char        *big;
    wh_err_t     err;
    fixture_t   *f = *state;

    wh_engine_close(f->e);
    assert_int_equal(wh_engine_lmdb_open(&f->e, f->dir, 1024 * 1024,
                                         1024 * 1024, 10, 0, NULL, &err),
                     0);

    big = big_text(200000);
    assert_int_equal(wh_engine_write(f->e, WH_ENGINE_STATE, big_clients,
                                     big, &err), -1);
    assert_int_equal(err.status, 507);
    assert_non_null(strstr(err.msg, "state map reached max_map_size"));
    free(big);
    assert_int_equal(stats(f).space[WH_ENGINE_STATE].full, 1);
    assert_int_equal(stats(f).space[WH_ENGINE_HISTORY].full, 0);

    /* what fits still goes, in both environments */
    run(f, clients_put, NULL);
    assert_int_equal(publish(f, "t", "x", NULL), 1);
    assert_int_equal(stats(f).space[WH_ENGINE_STATE].full, 0);
}


/* --------------------------------------------------------- upgrade */


static void
copy_env(const char *src, MDB_txn *dst, const char **names)
{
    size_t       i;
    MDB_env     *env;
    MDB_txn     *txn;
    MDB_dbi      from, to;
    MDB_val      k, v;
    MDB_cursor  *cur;

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, src, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);

    for (i = 0; names[i] != NULL; i++) {
        assert_int_equal(mdb_dbi_open(txn, names[i], 0, &from), 0);
        assert_int_equal(mdb_dbi_open(dst, names[i], MDB_CREATE, &to), 0);
        assert_int_equal(mdb_cursor_open(txn, from, &cur), 0);

        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            assert_int_equal(mdb_put(dst, to, &k, &v, 0), 0);
        }

        mdb_cursor_close(cur);
    }

    mdb_txn_abort(txn);
    mdb_env_close(env);
}


/* the layout before the split, in dir: one MDB_NOSYNC environment,
 * data.mdb in the storage directory itself, 0640, holding what the
 * engine wrote under from */
static void
make_old_layout(const char *dir, const char *from)
{
    char      path[128];
    MDB_env  *env;
    MDB_txn  *txn;
    MDB_dbi   info;
    MDB_val   k = { 6, "format" }, v = { 1, "1" };

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 4 * 1024 * 1024), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOSYNC | MDB_NOTLS, 0640),
                     0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);

    snprintf(path, sizeof(path), "%s/state", from);
    copy_env(path, txn, wh_lmdb_state_dbs);
    snprintf(path, sizeof(path), "%s/history", from);
    copy_env(path, txn, wh_lmdb_history_dbs);

    assert_int_equal(mdb_dbi_open(txn, "info", MDB_CREATE, &info), 0);
    assert_int_equal(mdb_put(txn, info, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_int_equal(mdb_env_sync(env, 1), 0);
    mdb_env_close(env);
}


/* the fixture's store rewritten in the old layout, in a new temporary
 * directory that becomes the fixture's */
static void
to_old_layout(fixture_t *f)
{
    char  old[64];

    wh_engine_close(f->e);
    f->e = NULL;

    strcpy(old, "/tmp/wh-old-XXXXXX");
    assert_non_null(mkdtemp(old));
    make_old_layout(old, f->dir);
    rm_tree(f->dir);
    strcpy(f->dir, old);
}


static void
reopen(fixture_t *f)
{
    wh_err_t  err;

    if (f->e) {
        wh_engine_close(f->e);
    }

    if (wh_engine_lmdb_open(&f->e, f->dir, 1024 * 1024, 64 * 1024 * 1024,
                            10, 0, NULL, &err) != 0)
    {
        fail_msg("open: %s", err.msg);
    }
}


static int
upgraded_check(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    wh_client_t  cl;

    assert_int_equal(wh_etxn_ops(t)->client_get(t, S("acme"), S("c0"), &cl,
                                                err), 1);
    assert_true(eq(cl.name, "Name"));
    assert_true(eq(cl.metadata, "{\"a\":1}"));
    wh_client_free(&cl);

    return revoked_check(t, ctx, err);
}


static int
count_item(void *ctx, uint64_t id, int64_t time_ms, const char *text,
    size_t len)
{
    (void) id;
    (void) time_ms;
    (void) text;
    (void) len;

    (*(size_t *) ctx)++;

    return 0;
}


/* the channel "t": its epoch, last id and number of stored messages */
static void
check_channel(fixture_t *f, const char *epoch, uint64_t last, size_t n)
{
    size_t           count = 0;
    wh_err_t         err;
    wh_hist_range_t  r;

    assert_int_equal(wh_engine_hist_read(f->e, S("acme"), S("t"), 0,
                                         UINT64_MAX, 100, T0, count_item,
                                         &count, &r, &err), 0);
    assert_true(r.found);
    assert_string_equal(r.meta.epoch, epoch);
    assert_int_equal(r.meta.last_id, last);
    assert_int_equal(count, n);
}


static void
move(const char *dir, const char *from, const char *to)
{
    char  a[128], b[128];

    snprintf(a, sizeof(a), "%s/%s", dir, from);
    snprintf(b, sizeof(b), "%s/%s", dir, to);
    assert_int_equal(rename(a, b), 0);
}


static void
test_upgrade_old_layout(void **state)
{
    char               epoch[WH_EPOCH_LEN + 1];
    fixture_t         *f = *state;
    seen_t             s;
    revoked_t          r = { 0, 0 };
    wh_engine_lmdb_t  *l;

    run(f, clients_put, NULL);
    run(f, clients_check, NULL);
    run(f, cmds_put, NULL);
    run(f, cmds_change, NULL);
    publish(f, "t", "one", epoch);
    publish(f, "t", "two", NULL);
    assert_int_equal(publish(f, "t", "three", NULL), 3);

    to_old_layout(f);
    assert_int_equal(path_mode(f->dir, "data.mdb"), 0640);
    reopen(f);

    /* the new layout, the old file aside and private */
    l = (wh_engine_lmdb_t *) f->e;
    assert_int_equal(env_flags(l->state) & MDB_NOSYNC, 0);
    assert_int_not_equal(env_flags(l->history) & MDB_NOSYNC, 0);
    assert_int_equal(path_mode(f->dir, "state/data.mdb"), 0600);
    assert_int_equal(path_mode(f->dir, "history/data.mdb"), 0600);
    assert_int_equal(path_mode(f->dir, "data.mdb"), -1);
    assert_int_equal(path_mode(f->dir, "lock.mdb"), -1);
    assert_int_equal(path_mode(f->dir, "upgrade.tmp"), -1);
    assert_int_equal(path_mode(f->dir, "data.mdb.pre-split"), 0600);

    /* everything there: clients, revocations, commands, history with
     * its epoch, which goes on from where it was */
    run(f, upgraded_check, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.before, 1234);
    memset(&s, 0, sizeof(s));
    run(f, cmds_check, &s);
    assert_int_equal(s.n, 3);
    check_channel(f, epoch, 3, 3);
    assert_int_equal(publish(f, "t", "four", NULL), 4);

    /* stopped after the commit point, before the old file went aside:
     * the next start only moves it, the new store stays as it is */
    wh_engine_close(f->e);
    f->e = NULL;
    move(f->dir, "data.mdb.pre-split", "data.mdb");
    reopen(f);
    assert_int_equal(path_mode(f->dir, "data.mdb"), -1);
    assert_int_equal(path_mode(f->dir, "data.mdb.pre-split"), 0600);
    check_channel(f, epoch, 4, 4);
}



static int
junk_txn(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    int64_t         growth;
    wh_chan_meta_t  meta;

    (void) ctx;

    if (wh_store_channel(st, txn, S("acme"), S("junk"), T0, 1, &meta, err)
        != 1)
    {
        return -1;
    }

    return wh_store_append(st, txn, S("acme"), S("junk"), &meta, T0, "j",
                           1, INT64_MAX, &growth, err);
}


/* a store of that kind in dir/name holding a channel "junk" */
static void
make_junk(const char *dir, const char *name, wh_store_kind_e kind)
{
    char         path[128];
    wh_err_t     err;
    wh_store_t  *st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(wh_store_open(&st, path, kind, 1024 * 1024,
                                   1024 * 1024, 10, 0, NULL, &err), 0);

    if (kind == WH_STORE_HISTORY) {
        assert_int_equal(wh_store_write(st, junk_txn, NULL, &err), 0);
    }

    wh_store_close(st);
}


static void
test_upgrade_redone(void **state)
{
    char            epoch[WH_EPOCH_LEN + 1], path[128];
    wh_err_t        err;
    fixture_t      *f = *state;
    revoked_t       r = { 0, 0 };
    wh_chan_meta_t  meta;

    run(f, clients_put, NULL);
    run(f, clients_check, NULL);
    publish(f, "t", "one", epoch);
    to_old_layout(f);

    /* what an upgrade stopped before its commit point leaves: a
     * half-built upgrade.tmp/ and a history/ already renamed */
    snprintf(path, sizeof(path), "%s/upgrade.tmp", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    make_junk(f->dir, "upgrade.tmp/state", WH_STORE_STATE);
    make_junk(f->dir, "history", WH_STORE_HISTORY);

    reopen(f);
    assert_int_equal(path_mode(f->dir, "upgrade.tmp"), -1);
    assert_int_equal(f->e->ops->chan_meta(f->e, S("acme"), S("junk"),
                                          &meta, &err), 0);
    check_channel(f, epoch, 1, 1);
    run(f, upgraded_check, &r);
    assert_int_equal(r.n, 1);
}

/* ------------------------------------------------- history, expiry */


static void
test_history_keeps_first_and_newest(void **state)
{
    unsigned        i;
    wh_command_t    cmd;
    wh_cmd_event_t  ev;

    (void) state;

    make_cmd(&cmd, "c-h", 1, "");

    for (i = 1; i <= 100; i++) {
        memset(&ev, 0, sizeof(ev));
        ev.status = WH_CMD_SENT;
        ev.at_ms = T0 + i;
        ev.attempt = i;
        assert_int_equal(wh_command_event(&cmd, &ev), 0);
    }

    assert_int_equal(cmd.nhistory, WH_CMD_HISTORY_MAX);
    assert_int_equal(cmd.history[0].status, WH_CMD_PENDING);
    assert_int_equal(cmd.history[1].attempt, 100 - WH_CMD_HISTORY_MAX + 2);
    assert_int_equal(cmd.history[WH_CMD_HISTORY_MAX - 1].attempt, 100);
    wh_command_free(&cmd);
}


static void
test_expiry(void **state)
{
    wh_cmd_policy_t  p = { 60000, 1000, 3, 64 };

    (void) state;

    /* the policy's ttl unless the command names its own */
    assert_int_equal(wh_cmd_expires_at(&p, T0, 0), T0 + 60000);
    assert_int_equal(wh_cmd_expires_at(&p, T0, 5000), T0 + 5000);
}


static void
test_window_and_ack_deadline(void **state)
{
    wh_cmd_policy_t  p = { 60000, 1000, 3, 2 };
    wh_cmd_state_t   s = { WH_CMD_SENT, 1, T0 + 60000, T0 + 1000, 0, 0 };

    (void) state;

    assert_true(wh_cmd_window_open(&p, 1));
    assert_false(wh_cmd_window_open(&p, 2));

    assert_false(wh_cmd_ack_overdue(&s, T0 + 999));
    assert_true(wh_cmd_ack_overdue(&s, T0 + 1000));

    /* a pending command has no ack window */
    s.status = WH_CMD_PENDING;
    assert_false(wh_cmd_ack_overdue(&s, T0 + 5000));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_clients_and_revocations,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands_audit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_index_late, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_environments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_role_is_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_map_grows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_state_map_full_is_507, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_old_layout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_redone, setup,
                                        teardown),
        cmocka_unit_test(test_history_keeps_first_and_newest),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_window_and_ack_deadline),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
