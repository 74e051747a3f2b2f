/*
 * The engine interface (worker/engine.h) on its LMDB implementation,
 * against a real environment in a temporary directory: clients and
 * their listing, revocations, commands with their indexes (open,
 * per client, idempotency keys), the seq, the history bound; and the
 * expiry rule of cmdqueue.c.
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

#include "../../worker/engine_lmdb.h"


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
teardown(void **state)
{
    char        path[128];
    fixture_t  *f = *state;

    wh_engine_close(f->e);
    snprintf(path, sizeof(path), "%s/data.mdb", f->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);

    return 0;
}


static void
run(fixture_t *f, step_pt fn, void *ctx)
{
    wh_err_t  err;

    err.msg[0] = '\0';

    if (wh_engine_write(f->e, fn, ctx, &err) != 0) {
        fail_msg("write: %s", err.msg);
    }
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
    wh_cmd_state_t   s = { WH_CMD_SENT, 1, T0 + 60000, T0 + 1000 };

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
        cmocka_unit_test(test_history_keeps_first_and_newest),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_window_and_ack_deadline),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
