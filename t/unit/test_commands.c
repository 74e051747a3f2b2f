/*
 * The rules of the command queue (worker/cmdqueue.c): what an open
 * command needs at a given time, the ack window and its backoff, the
 * delivery order of a client's commands, and the heap of due times.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/cmdqueue.h"


static const wh_cmd_policy_t  policy = { 600000, 1000, 3, 4 };


static wh_str_t
S(const char *s)
{
    wh_str_t  r = { s, strlen(s) };

    return r;
}


static wh_cmd_state_t
state(wh_cmd_status_e status, unsigned attempt, int64_t expires,
    int64_t deadline)
{
    wh_cmd_state_t  s;

    s.status = status;
    s.attempt = attempt;
    s.expires_ms = expires;
    s.deadline_ms = deadline;

    return s;
}


static void
test_status_names(void **unused)
{
    int  i;

    (void) unused;

    for (i = 0; i < WH_CMD_NSTATUS; i++) {
        assert_int_equal(wh_cmd_status_parse(wh_cmd_status_name(i),
                                             strlen(wh_cmd_status_name(i))),
                         i);
    }

    assert_string_equal(wh_cmd_status_name(WH_CMD_CANCELLED), "cancelled");
    assert_null(wh_cmd_status_name(WH_CMD_NSTATUS));
    assert_int_equal(wh_cmd_status_parse("sen", 3), -1);
    assert_int_equal(wh_cmd_status_parse("sentx", 5), -1);
    assert_true(wh_cmd_is_open(WH_CMD_PENDING));
    assert_true(wh_cmd_is_open(WH_CMD_SENT));
    assert_false(wh_cmd_is_open(WH_CMD_COMPLETED));
    assert_false(wh_cmd_is_open(WH_CMD_EXPIRED));
}


static void
test_ack_window_doubles(void **unused)
{
    wh_cmd_policy_t  p = { 600000, 30000, 100, 64 };

    (void) unused;

    assert_int_equal(wh_cmd_ack_window(&p, 1), 30000);
    assert_int_equal(wh_cmd_ack_window(&p, 2), 60000);
    assert_int_equal(wh_cmd_ack_window(&p, 3), 120000);
    assert_int_equal(wh_cmd_ack_window(&p, 5), 480000);

    /* capped: a high max_attempts cannot overflow or wait for years */
    assert_int_equal(wh_cmd_ack_window(&p, WH_CMD_BACKOFF_SHIFT + 1),
                     30000LL << WH_CMD_BACKOFF_SHIFT);
    assert_int_equal(wh_cmd_ack_window(&p, 100),
                     30000LL << WH_CMD_BACKOFF_SHIFT);
    assert_int_equal(wh_cmd_ack_window(&p, 0), 30000);
}


static void
test_decide_pending(void **unused)
{
    wh_cmd_state_t  s = state(WH_CMD_PENDING, 0, 5000, 0);

    (void) unused;

    assert_int_equal(wh_cmd_decide(&policy, &s, 1000, 0, 0), WH_CMD_WAIT);
    assert_int_equal(wh_cmd_decide(&policy, &s, 1000, 1, 0), WH_CMD_DELIVER);

    /* the ttl wins, online or not */
    assert_int_equal(wh_cmd_decide(&policy, &s, 5000, 1, 0), WH_CMD_EXPIRE);
    assert_int_equal(wh_cmd_decide(&policy, &s, 9000, 0, 0), WH_CMD_EXPIRE);

    /* an offline pending command waits for the connect or the ttl */
    assert_int_equal(wh_cmd_due(&s, 1000), 5000);
}


static void
test_decide_sent(void **unused)
{
    wh_cmd_state_t  s = state(WH_CMD_SENT, 1, 60000, 2000);

    (void) unused;

    /* within the ack window nothing happens, even online */
    assert_int_equal(wh_cmd_decide(&policy, &s, 1999, 1, 0), WH_CMD_WAIT);
    assert_int_equal(wh_cmd_due(&s, 1999), 2000);

    /* past it: again to an online client ... */
    assert_int_equal(wh_cmd_decide(&policy, &s, 2000, 1, 0), WH_CMD_DELIVER);

    /* ... an offline one gets it when it connects, or the ttl ends it */
    assert_int_equal(wh_cmd_decide(&policy, &s, 2000, 0, 0), WH_CMD_WAIT);
    assert_int_equal(wh_cmd_due(&s, 2000), 60000);

    /* the last attempt unanswered: failed, online or not */
    s.attempt = 3;
    assert_int_equal(wh_cmd_decide(&policy, &s, 1999, 1, 0), WH_CMD_WAIT);
    assert_int_equal(wh_cmd_decide(&policy, &s, 2000, 1, 0), WH_CMD_GIVE_UP);
    assert_int_equal(wh_cmd_decide(&policy, &s, 2000, 0, 0), WH_CMD_GIVE_UP);

    /* a deadline past the ttl: the ttl is what is due */
    s = state(WH_CMD_SENT, 1, 1500, 2000);
    assert_int_equal(wh_cmd_due(&s, 1000), 1500);
    assert_int_equal(wh_cmd_decide(&policy, &s, 1500, 1, 0), WH_CMD_EXPIRE);
}


/* a pending command waits while the client's window is full; a sent
 * one is in the window already and goes again regardless */
static void
test_decide_window(void **unused)
{
    wh_cmd_state_t  s = state(WH_CMD_PENDING, 0, 5000, 0);

    (void) unused;

    assert_int_equal(wh_cmd_decide(&policy, &s, 1000, 1, 3),
                     WH_CMD_DELIVER);
    assert_int_equal(wh_cmd_decide(&policy, &s, 1000, 1, 4), WH_CMD_WAIT);
    assert_int_equal(wh_cmd_decide(&policy, &s, 1000, 1, 99), WH_CMD_WAIT);
    assert_int_equal(wh_cmd_decide(&policy, &s, 5000, 1, 99),
                     WH_CMD_EXPIRE);

    s = state(WH_CMD_SENT, 1, 60000, 2000);
    assert_int_equal(wh_cmd_decide(&policy, &s, 2000, 1, 99),
                     WH_CMD_DELIVER);
}


static void
test_decide_final(void **unused)
{
    int             st;
    wh_cmd_state_t  s;

    (void) unused;

    for (st = WH_CMD_COMPLETED; st < WH_CMD_NSTATUS; st++) {
        s = state(st, 3, 1000, 500);
        assert_int_equal(wh_cmd_decide(&policy, &s, 99999, 1, 0),
                         WH_CMD_WAIT);
    }
}


/* the whole life of an unanswered command: deliveries at 0, 1 s and
 * 3 s (the window doubles), failed at 7 s */
static void
test_redelivery_backoff(void **unused)
{
    int64_t         now = 0, sent[3];
    unsigned        n = 0;
    wh_cmd_state_t  s = state(WH_CMD_PENDING, 0, 600000, 0);

    (void) unused;

    for ( ;; ) {
        switch (wh_cmd_decide(&policy, &s, now, 1, 0)) {

        case WH_CMD_DELIVER:
            assert_true(n < 3);
            sent[n++] = now;
            wh_cmd_delivered(&policy, &s, now);
            assert_int_equal(s.status, WH_CMD_SENT);
            assert_int_equal(s.attempt, n);
            break;

        case WH_CMD_GIVE_UP:
            assert_int_equal(n, 3);
            assert_int_equal(sent[0], 0);
            assert_int_equal(sent[1], 1000);
            assert_int_equal(sent[2], 3000);
            assert_int_equal(now, 7000);
            return;

        case WH_CMD_WAIT:
            now = wh_cmd_due(&s, now);
            break;

        default:
            fail_msg("unexpected action at %lld", (long long) now);
        }
    }
}


static wh_qcmd_t *
put(wh_cmdq_t *q, const char *ws, const char *client, const char *id,
    unsigned priority, uint64_t seq, int64_t due)
{
    wh_cmd_state_t  s = state(WH_CMD_PENDING, 0, due, 0);

    return wh_cmdq_put(q, S(ws), S(client), S(id), priority, seq, &s, due);
}


static void
assert_order(wh_cmdq_t *q, const char *ws, const char *client,
    const char *expected)
{
    char           got[256];
    wh_qcmd_t     *cmd;
    wh_qclient_t  *qc;

    got[0] = '\0';
    qc = wh_cmdq_client(q, S(ws), S(client));

    for (cmd = qc ? wh_cmdq_first(qc) : NULL; cmd != NULL;
         cmd = wh_cmdq_next(cmd))
    {
        if (got[0] != '\0') {
            strcat(got, " ");
        }

        strncat(got, cmd->id.data, cmd->id.len);
    }

    assert_string_equal(got, expected);
}


static void
test_priority_then_fifo(void **unused)
{
    wh_cmdq_t  q;

    (void) unused;

    wh_cmdq_init(&q);

    assert_non_null(put(&q, "acme", "pc-7", "a", 5, 1, 100));
    assert_non_null(put(&q, "acme", "pc-7", "b", 1, 2, 100));
    assert_non_null(put(&q, "acme", "pc-7", "c", 9, 3, 100));
    assert_non_null(put(&q, "acme", "pc-7", "d", 5, 4, 100));
    assert_non_null(put(&q, "acme", "pc-7", "e", 0, 5, 100));
    assert_non_null(put(&q, "acme", "pc-7", "f", 9, 6, 100));

    assert_order(&q, "acme", "pc-7", "c f a d b e");

    wh_cmdq_remove(&q, wh_cmdq_find(&q, S("acme"), S("a")));
    wh_cmdq_remove(&q, wh_cmdq_find(&q, S("acme"), S("f")));
    assert_order(&q, "acme", "pc-7", "c d b e");

    wh_cmdq_free(&q);
}


/* loaded out of order (a restart reads by client, then seq) */
static void
test_insert_keeps_seq_order(void **unused)
{
    wh_cmdq_t  q;

    (void) unused;

    wh_cmdq_init(&q);

    put(&q, "acme", "pc-7", "s30", 5, 30, 100);
    put(&q, "acme", "pc-7", "s10", 5, 10, 100);
    put(&q, "acme", "pc-7", "s20", 5, 20, 100);
    put(&q, "acme", "pc-7", "s40", 5, 40, 100);
    put(&q, "acme", "pc-7", "s05", 5, 5, 100);

    assert_order(&q, "acme", "pc-7", "s05 s10 s20 s30 s40");

    wh_cmdq_free(&q);
}


static void
test_workspaces_and_clients_apart(void **unused)
{
    wh_cmdq_t  q;

    (void) unused;

    wh_cmdq_init(&q);

    put(&q, "acme", "pc-7", "x1", 5, 1, 100);
    put(&q, "globex", "pc-7", "x1", 5, 2, 100);
    put(&q, "acme", "pc-8", "x2", 5, 3, 100);

    assert_int_equal(wh_cmdq_count(&q), 3);
    assert_int_equal(wh_cmdq_count_ws(&q, S("acme")), 2);
    assert_int_equal(wh_cmdq_count_ws(&q, S("globex")), 1);
    assert_int_equal(wh_cmdq_count_ws(&q, S("acm")), 0);

    assert_order(&q, "acme", "pc-7", "x1");
    assert_order(&q, "globex", "pc-7", "x1");
    assert_order(&q, "acme", "pc-8", "x2");
    assert_null(wh_cmdq_find(&q, S("initech"), S("x1")));
    assert_null(wh_cmdq_find(&q, S("acme"), S("x3")));

    /* the same id in another workspace is another command */
    assert_ptr_not_equal(wh_cmdq_find(&q, S("acme"), S("x1")),
                         wh_cmdq_find(&q, S("globex"), S("x1")));

    wh_cmdq_remove(&q, wh_cmdq_find(&q, S("acme"), S("x1")));
    assert_null(wh_cmdq_client(&q, S("acme"), S("pc-7")));
    assert_order(&q, "globex", "pc-7", "x1");

    wh_cmdq_free(&q);
}


static void
test_depth_over_workspaces(void **unused)
{
    wh_cmdq_t        q;
    wh_cmdq_depth_t  d;
    wh_cmd_state_t   s = state(WH_CMD_SENT, 1, 900, 400);

    (void) unused;

    wh_cmdq_init(&q);

    wh_cmdq_depth(&q, &d);
    assert_int_equal(d.pending + d.sent + d.clients + d.deepest, 0);

    put(&q, "acme", "pc-7", "a", 5, 1, 100);
    put(&q, "acme", "pc-7", "b", 5, 2, 100);
    put(&q, "acme", "pc-7", "c", 5, 3, 100);
    put(&q, "globex", "pc-7", "a", 5, 4, 100);
    wh_cmdq_put(&q, S("globex"), S("pc-7"), S("a"), 5, 4, &s, 400);
    put(&q, "globex", "pc-9", "d", 5, 5, 100);

    wh_cmdq_depth(&q, &d);
    assert_int_equal(d.pending, 4);
    assert_int_equal(d.sent, 1);
    assert_int_equal(d.clients, 3);
    assert_int_equal(d.deepest, 3);
    assert_int_equal(d.pending + d.sent, wh_cmdq_count(&q));

    /* a client whose last command ended is no longer counted */
    wh_cmdq_remove(&q, wh_cmdq_find(&q, S("globex"), S("a")));
    wh_cmdq_depth(&q, &d);
    assert_int_equal(d.sent, 0);
    assert_int_equal(d.clients, 2);

    wh_cmdq_free(&q);
}


static void
test_put_updates(void **unused)
{
    wh_cmdq_t        q;
    wh_qcmd_t       *a, *b, *again;
    wh_cmd_state_t   s = state(WH_CMD_SENT, 2, 900, 400);

    (void) unused;

    wh_cmdq_init(&q);

    a = put(&q, "acme", "pc-7", "a", 5, 1, 100);
    again = wh_cmdq_put(&q, S("acme"), S("pc-7"), S("a"), 5, 1, &s, 400);

    assert_ptr_equal(a, again);
    assert_int_equal(wh_cmdq_count(&q), 1);
    assert_int_equal(a->client->sent, 1);
    assert_int_equal(a->state.status, WH_CMD_SENT);
    assert_int_equal(a->state.attempt, 2);
    assert_int_equal(a->due_ms, 400);

    /* the client's count of sent commands follows every change */
    b = put(&q, "acme", "pc-7", "b", 5, 2, 100);
    assert_int_equal(b->client->sent, 1);
    again = wh_cmdq_put(&q, S("acme"), S("pc-7"), S("b"), 5, 2, &s, 400);
    assert_int_equal(again->client->sent, 2);
    wh_cmdq_remove(&q, a);
    assert_int_equal(again->client->sent, 1);
    s.status = WH_CMD_PENDING;
    wh_cmdq_put(&q, S("acme"), S("pc-7"), S("b"), 5, 2, &s, 400);
    assert_int_equal(again->client->sent, 0);

    /* invalid: priority out of range, empty or long ids */
    assert_null(put(&q, "acme", "pc-7", "z", WH_CMD_PRIORITIES, 3, 1));
    assert_null(put(&q, "acme", "pc-7", "", 5, 3, 1));
    assert_int_equal(wh_cmdq_count(&q), 1);

    wh_cmdq_free(&q);
}


static void
test_heap_pops_in_due_order(void **unused)
{
    int         i;
    char        id[16];
    int64_t     last = -1;
    wh_cmdq_t   q;
    wh_qcmd_t  *cmd;
    unsigned    x = 12345, popped = 0;

    (void) unused;

    wh_cmdq_init(&q);

    for (i = 0; i < 500; i++) {
        x = x * 1103515245 + 12345;
        snprintf(id, sizeof(id), "c%d", i);
        assert_non_null(put(&q, "acme", "pc-7", id, x % 10, i,
                            (x >> 8) % 10000));
    }

    /* nothing is due before the earliest */
    assert_null(wh_cmdq_pop_due(&q, -1));

    while ((cmd = wh_cmdq_pop_due(&q, 5000)) != NULL) {
        assert_true(cmd->due_ms >= last);
        assert_true(cmd->due_ms <= 5000);
        assert_int_equal(cmd->heap, 0);
        last = cmd->due_ms;
        popped++;
    }

    /* popped ones stay open until removed */
    assert_int_equal(wh_cmdq_count(&q), 500);
    assert_true(popped > 0 && popped < 500);

    while ((cmd = wh_cmdq_pop_due(&q, INT64_MAX)) != NULL) {
        assert_true(cmd->due_ms >= last);
        last = cmd->due_ms;
        popped++;
    }

    assert_int_equal(popped, 500);

    wh_cmdq_free(&q);
}


static void
test_set_due_and_remove(void **unused)
{
    wh_cmdq_t   q;
    wh_qcmd_t  *a, *b, *c;

    (void) unused;

    wh_cmdq_init(&q);

    a = put(&q, "acme", "pc-7", "a", 5, 1, 100);
    b = put(&q, "acme", "pc-7", "b", 5, 2, 200);
    c = put(&q, "acme", "pc-7", "c", 5, 3, 300);

    /* later, earlier, then out of the heap and back */
    wh_cmdq_set_due(&q, a, 400);
    wh_cmdq_set_due(&q, c, 50);
    assert_ptr_equal(wh_cmdq_pop_due(&q, 1000), c);
    assert_ptr_equal(wh_cmdq_pop_due(&q, 1000), b);

    wh_cmdq_set_due(&q, c, 10);
    wh_cmdq_remove(&q, b);
    assert_ptr_equal(wh_cmdq_pop_due(&q, 1000), c);
    assert_ptr_equal(wh_cmdq_pop_due(&q, 1000), a);
    assert_null(wh_cmdq_pop_due(&q, 1000));

    assert_order(&q, "acme", "pc-7", "a c");
    wh_cmdq_remove(&q, a);
    wh_cmdq_remove(&q, c);
    assert_int_equal(wh_cmdq_count(&q), 0);
    assert_null(wh_cmdq_client(&q, S("acme"), S("pc-7")));

    wh_cmdq_free(&q);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_ack_window_doubles),
        cmocka_unit_test(test_decide_pending),
        cmocka_unit_test(test_decide_sent),
        cmocka_unit_test(test_decide_window),
        cmocka_unit_test(test_decide_final),
        cmocka_unit_test(test_redelivery_backoff),
        cmocka_unit_test(test_priority_then_fifo),
        cmocka_unit_test(test_insert_keeps_seq_order),
        cmocka_unit_test(test_workspaces_and_clients_apart),
        cmocka_unit_test(test_depth_over_workspaces),
        cmocka_unit_test(test_put_updates),
        cmocka_unit_test(test_heap_pops_in_due_order),
        cmocka_unit_test(test_set_due_and_remove),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
