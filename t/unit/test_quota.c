/*
 * The quota rules (worker/quota.c): which limits a workspace gets from
 * the `quota` lines, the token bucket of the publish rate, places taken
 * ahead of a write, and the history writes that count from scratch each
 * time the engine runs them.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/quota.h"


static wh_str_t
S(const char *s)
{
    wh_str_t  r = { s, strlen(s) };

    return r;
}


static wh_quota_rule_t
rule(const char *ws, wh_quota_kind_e kind, uint64_t limit)
{
    wh_quota_rule_t  r;

    memset(&r, 0, sizeof(r));
    r.workspace = (char *) ws;
    r.set = 1u << kind;
    r.limits.limit[kind] = limit;

    return r;
}


static void
test_limits_lookup(void **state)
{
    wh_quota_rule_t    rules[4];
    wh_quota_limits_t  l;

    (void) state;

    /* DESIGN.md's defaults when nothing is configured */
    wh_quota_limits(NULL, 0, S("acme"), &l);
    assert_int_equal(l.limit[WH_QUOTA_CHANNELS], 10000);
    assert_int_equal(l.limit[WH_QUOTA_HISTORY_BYTES], 256 * 1024 * 1024);
    assert_int_equal(l.limit[WH_QUOTA_CLIENTS], 100000);
    assert_int_equal(l.limit[WH_QUOTA_QUEUED_COMMANDS], 1000000);
    assert_int_equal(l.limit[WH_QUOTA_PUBLISH_RATE], 2000);

    /* a workspace's own line beats "*" wherever it is; each line sets
     * only the keys it names; later lines of the same kind win */
    rules[0] = rule("acme", WH_QUOTA_HISTORY_BYTES, 4ULL << 30);
    rules[1] = rule("*", WH_QUOTA_HISTORY_BYTES, 1 << 20);
    rules[2] = rule("*", WH_QUOTA_CHANNELS, 10);
    rules[3] = rule("*", WH_QUOTA_CHANNELS, 20);

    wh_quota_limits(rules, 4, S("acme"), &l);
    assert_int_equal(l.limit[WH_QUOTA_HISTORY_BYTES], 4ULL << 30);
    assert_int_equal(l.limit[WH_QUOTA_CHANNELS], 20);
    assert_int_equal(l.limit[WH_QUOTA_CLIENTS], 100000);

    wh_quota_limits(rules, 4, S("acm"), &l);
    assert_int_equal(l.limit[WH_QUOTA_HISTORY_BYTES], 1 << 20);

    rules[0].limits.limit[WH_QUOTA_HISTORY_BYTES] = WH_QUOTA_UNLIMITED;
    wh_quota_limits(rules, 1, S("acme"), &l);
    assert_true(l.limit[WH_QUOTA_HISTORY_BYTES] == WH_QUOTA_UNLIMITED);
}


static void
test_bucket(void **state)
{
    int          i;
    wh_bucket_t  b = { 0, 0 };

    (void) state;

    /* full at first: one second's worth passes at once */
    for (i = 0; i < 5; i++) {
        assert_int_equal(wh_bucket_take(&b, 5, 10000), 0);
    }

    /* one message per 200 ms from then on */
    assert_int_equal(wh_bucket_take(&b, 5, 10000), 200);
    assert_int_equal(wh_bucket_take(&b, 5, 10150), 50);
    assert_int_equal(wh_bucket_take(&b, 5, 10200), 0);
    assert_int_equal(wh_bucket_take(&b, 5, 10200), 200);

    /* a long idle time fills it, never past one second's worth */
    for (i = 0; i < 5; i++) {
        assert_int_equal(wh_bucket_take(&b, 5, 1000000000), 0);
    }

    assert_int_equal(wh_bucket_take(&b, 5, 1000000000), 200);

    /* a high rate: ms resolution is enough (2 per ms at 2000/s) */
    memset(&b, 0, sizeof(b));

    for (i = 0; i < 2000; i++) {
        assert_int_equal(wh_bucket_take(&b, 2000, 5), 0);
    }

    assert_int_equal(wh_bucket_take(&b, 2000, 5), 1);
    assert_int_equal(wh_bucket_take(&b, 2000, 6), 0);
    assert_int_equal(wh_bucket_take(&b, 2000, 6), 0);
    assert_int_equal(wh_bucket_take(&b, 2000, 6), 1);
}


static size_t
open_commands(void *ctx, wh_str_t ws)
{
    (void) ctx;

    return ws.len == 4 && memcmp(ws.data, "full", 4) == 0 ? 3 : 0;
}


static void
test_take_and_refuse(void **state)
{
    wh_err_t         err;
    uint64_t         totals[WH_QUOTA_KINDS];
    wh_quota_t       q;
    wh_quota_rule_t  rules[2];

    (void) state;

    rules[0] = rule("*", WH_QUOTA_CLIENTS, 2);
    rules[1] = rule("*", WH_QUOTA_QUEUED_COMMANDS, 3);
    wh_quota_init(&q, rules, 2, NULL);
    q.count_open = open_commands;

    assert_int_equal(wh_quota_count_client(&q, S("acme"), S("a"), 0), 0);
    assert_int_equal(wh_quota_take(&q, S("acme"), WH_QUOTA_CLIENTS), 0);
    /* one used, one taken: the limit is reached until the release */
    assert_int_equal(wh_quota_take(&q, S("acme"), WH_QUOTA_CLIENTS), -1);
    assert_int_equal(wh_quota_take(&q, S("other"), WH_QUOTA_CLIENTS), 0);
    wh_quota_release(&q, S("acme"), WH_QUOTA_CLIENTS);
    wh_quota_add(&q, S("acme"), WH_QUOTA_CLIENTS, 1);
    assert_int_equal(wh_quota_take(&q, S("acme"), WH_QUOTA_CLIENTS), -1);
    wh_quota_add(&q, S("acme"), WH_QUOTA_CLIENTS, -1);
    assert_int_equal(wh_quota_take(&q, S("acme"), WH_QUOTA_CLIENTS), 0);

    /* the queue's own count for queued commands */
    assert_int_equal(wh_quota_take(&q, S("full"), WH_QUOTA_QUEUED_COMMANDS),
                     -1);
    assert_int_equal(wh_quota_take(&q, S("acme"), WH_QUOTA_QUEUED_COMMANDS),
                     0);

    wh_quota_refuse(&q, S("full"), WH_QUOTA_QUEUED_COMMANDS, NULL, &err);
    assert_int_equal(err.status, 429);
    assert_int_equal(err.retry_s, 0);
    assert_string_equal(err.msg, "the workspace's queued_commands quota (3) "
                        "is reached");
    wh_quota_totals(&q, totals);
    assert_int_equal(totals[WH_QUOTA_QUEUED_COMMANDS], 1);
    assert_int_equal(totals[WH_QUOTA_CLIENTS], 0);

    wh_quota_free(&q);
}


static void
test_publish_rate(void **state)
{
    int              i;
    json_t          *st;
    wh_err_t         err;
    wh_quota_t       q;
    wh_quota_rule_t  rules[1];

    (void) state;

    rules[0] = rule("acme", WH_QUOTA_PUBLISH_RATE, 3);
    wh_quota_init(&q, rules, 1, NULL);

    for (i = 0; i < 3; i++) {
        assert_int_equal(wh_quota_publish(&q, S("acme"), S("c"), NULL, &err),
                         0);
    }

    assert_int_equal(wh_quota_publish(&q, S("acme"), S("c"), NULL, &err),
                     -1);
    assert_int_equal(err.status, 429);
    assert_int_equal(err.retry_s, 1);

    /* wirehubd's own channels and other workspaces: untouched */
    assert_int_equal(wh_quota_publish(&q, S("acme"), S("$presence"), NULL,
                                      &err), 0);
    assert_int_equal(wh_quota_publish(&q, S("beta"), S("c"), NULL, &err), 0);

    st = wh_quota_stats(&q, S("acme"));
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(st, "publish_rate"), "refused")), 1);
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(st, "publish_rate"), "limit")), 3);
    assert_null(json_object_get(json_object_get(st, "publish_rate"),
                                "used"));
    json_decref(st);

    wh_quota_free(&q);
}


static void
test_history_writes(void **state)
{
    json_t          *st;
    wh_quota_t       q;
    wh_quota_rule_t  rules[2];

    (void) state;

    rules[0] = rule("*", WH_QUOTA_CHANNELS, 2);
    rules[1] = rule("*", WH_QUOTA_HISTORY_BYTES, 100);
    wh_quota_init(&q, rules, 2, NULL);

    assert_int_equal(wh_quota_count_channel(&q, S("acme"), S("a"), 30), 0);
    /* `$` channels count for nothing */
    assert_int_equal(wh_quota_count_channel(&q, S("acme"), S("$presence"),
                                            5000), 0);

    wh_quota_hist_begin(&q);
    assert_int_equal(wh_quota_hist_room(&q, S("acme"), S("a")), 70);
    assert_true(wh_quota_hist_channel(&q, S("acme"), S("b")));
    wh_quota_hist_add(&q, S("acme"), S("b"), 1, 50);
    assert_false(wh_quota_hist_channel(&q, S("acme"), S("c")));
    assert_true(wh_quota_hist_channel(&q, S("acme"), S("$stats")));
    assert_int_equal(wh_quota_hist_room(&q, S("acme"), S("b")), 20);
    assert_true(wh_quota_hist_room(&q, S("acme"), S("$stats"))
                == INT64_MAX);

    /* the engine runs the write again: it counts from scratch */
    wh_quota_hist_begin(&q);
    assert_int_equal(wh_quota_hist_room(&q, S("acme"), S("a")), 70);
    wh_quota_hist_add(&q, S("acme"), S("b"), 1, 50);
    wh_quota_hist_end(&q, 1);

    st = wh_quota_stats(&q, S("acme"));
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(st, "channels"), "used")), 2);
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(st, "history_bytes"), "used")), 80);
    json_decref(st);

    /* a failed write changes nothing; an expiry frees */
    wh_quota_hist_begin(&q);
    wh_quota_hist_add(&q, S("acme"), S("a"), 0, 20);
    wh_quota_hist_end(&q, 0);
    assert_int_equal(wh_quota_freed(&q, S("acme"), S("b"), 45), 0);

    wh_quota_hist_begin(&q);
    assert_int_equal(wh_quota_hist_room(&q, S("acme"), S("a")), 65);
    wh_quota_hist_end(&q, 0);

    /* a workspace never seen: its limits, nothing used */
    st = wh_quota_stats(&q, S("beta"));
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(st, "channels"), "limit")), 2);
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(st, "history_bytes"), "used")), 0);
    json_decref(st);

    wh_quota_free(&q);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_limits_lookup),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_take_and_refuse),
        cmocka_unit_test(test_publish_rate),
        cmocka_unit_test(test_history_writes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
