/*
 * The token bucket of wirehub_message_rate: rates parse as limit_req
 * writes them, the arithmetic is exact at any rate, a burst passes and the
 * message after it is dropped, the bucket refills at the rate and never
 * beyond the burst, and a client stays connected unless it keeps going
 * over: 10 s of limiting or 3 bursts dropped in one stretch close it.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ngx_http_wirehub_rate.h"


#define PASS   NGX_HTTP_WIREHUB_RATE_PASS
#define DROP   NGX_HTTP_WIREHUB_RATE_DROP
#define CLOSE  NGX_HTTP_WIREHUB_RATE_CLOSE

/* any start: the arithmetic must not care where the clock is */
#define T0     123456789ULL


static int
parse(const char *text, uint64_t *n, uint64_t *period)
{
    return ngx_http_wirehub_rate_parse(text, strlen(text), n, period);
}


static ngx_http_wirehub_rate_t
rate(uint64_t n, uint64_t period, uint64_t burst)
{
    ngx_http_wirehub_rate_t  r;

    memset(&r, 0, sizeof(r));
    assert_int_equal(ngx_http_wirehub_rate_init(&r, n, period, burst), 0);

    return r;
}


/* count messages at time t that pass */
static int
take_n(ngx_http_wirehub_rate_t *r, ngx_http_wirehub_bucket_t *b, int n,
    uint64_t t)
{
    int  i, passed;

    passed = 0;

    for (i = 0; i < n; i++) {
        if (ngx_http_wirehub_rate_take(r, b, t) == PASS) {
            passed++;
        }
    }

    return passed;
}


static void
test_parse(void **state)
{
    uint64_t  n, period;

    (void) state;

    assert_int_equal(parse("50r/s", &n, &period), 0);
    assert_int_equal(n, 50);
    assert_int_equal(period, 1000);

    assert_int_equal(parse("600r/m", &n, &period), 0);
    assert_int_equal(n, 600);
    assert_int_equal(period, 60000);

    assert_int_equal(parse("0", &n, &period), 0);
    assert_int_equal(n, 0);

    assert_int_equal(parse("1000000r/s", &n, &period), 0);
    assert_int_equal(n, 1000000);

    assert_int_equal(parse("1000001r/s", &n, &period), -1);
    assert_int_equal(parse("99999999999999999999999r/s", &n, &period), -1);
    assert_int_equal(parse("r/s", &n, &period), -1);
    assert_int_equal(parse("50", &n, &period), -1);
    assert_int_equal(parse("50r/h", &n, &period), -1);
    assert_int_equal(parse("50/s", &n, &period), -1);
    assert_int_equal(parse("-5r/s", &n, &period), -1);
    assert_int_equal(parse("5 r/s", &n, &period), -1);
    assert_int_equal(parse("", &n, &period), -1);
}


static void
test_init(void **state)
{
    ngx_http_wirehub_rate_t  r;

    (void) state;

    memset(&r, 0, sizeof(r));
    assert_false(ngx_http_wirehub_rate_is_set(&r));

    r = rate(50, 1000, 100);
    assert_true(ngx_http_wirehub_rate_is_set(&r));
    assert_false(ngx_http_wirehub_rate_is_off(&r));
    assert_int_equal(r.burst, 100);
    assert_int_equal(r.capacity, 100 * 1000);
    /* 100 messages at 50 a second refill in 2 s */
    assert_int_equal(r.quiet, 2000);

    /* no burst: one second's worth, at least one */
    r = rate(600, 60000, 0);
    assert_int_equal(r.burst, 10);
    assert_int_equal(r.quiet, 1000);
    r = rate(1, 60000, 0);
    assert_int_equal(r.burst, 1);
    assert_int_equal(r.quiet, 60000);

    /* off is configured, and lets everything through */
    r = rate(0, 1000, 0);
    assert_true(ngx_http_wirehub_rate_is_set(&r));
    assert_true(ngx_http_wirehub_rate_is_off(&r));

    assert_int_equal(ngx_http_wirehub_rate_init(&r, 5, 3600000, 1), -1);
    assert_int_equal(ngx_http_wirehub_rate_init(&r, 5, 1000, 1000001), -1);
    assert_int_equal(ngx_http_wirehub_rate_init(&r, 1000001, 1000, 1), -1);
}


static void
test_off_passes_everything(void **state)
{
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;

    (void) state;

    r = rate(0, 1000, 0);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 100000, T0), 100000);
}


static void
test_burst_then_drop(void **state)
{
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;

    (void) state;

    r = rate(5, 1000, 5);
    memset(&b, 0, sizeof(b));

    /* a fresh connection has the whole burst */
    assert_int_equal(take_n(&r, &b, 5, T0), 5);
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0), DROP);

    /* one message back every 200 ms, not a millisecond earlier */
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 199), DROP);
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 200), PASS);
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 200), DROP);
}


static void
test_refill_is_exact_and_capped(void **state)
{
    uint64_t                   t;
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;

    (void) state;

    /* 1r/m in steps of 1 ms: nothing is lost to rounding */
    r = rate(1, 60000, 1);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 1, T0), 1);

    for (t = T0 + 1; t < T0 + 60000; t += 1000) {
        assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, t), DROP);
        b.dropped = 0;      /* not what this test is about */
        b.limited = 0;
    }

    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 60000), PASS);

    /* 50r/s: one message per 20 ms, over a whole minute */
    r = rate(50, 1000, 1);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 1, T0), 1);

    for (t = T0 + 20; t <= T0 + 60000; t += 20) {
        assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, t), PASS);
    }

    /* a day idle: the bucket holds the burst, no more, no overflow */
    r = rate(1000000, 1000, 1000000);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 1000000, T0), 1000000);
    assert_int_equal(take_n(&r, &b, 1000001, T0 + 86400000ULL), 1000000);

    r = rate(5, 1000, 3);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 10, T0), 3);
    assert_int_equal(take_n(&r, &b, 10, T0 + 10000), 3);
}


static void
test_clock_stepping_back_is_harmless(void **state)
{
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;

    (void) state;

    r = rate(5, 1000, 2);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 2, T0), 2);
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 - 5000), DROP);

    /* the refill counts from the latest time seen */
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 199), DROP);
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 200), PASS);
}


static void
test_close_after_three_bursts_dropped(void **state)
{
    int                        i;
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;

    (void) state;

    r = rate(5, 1000, 5);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 5, T0), 5);

    for (i = 1; i < 15; i++) {
        assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0), DROP);
    }

    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0), CLOSE);
}


static void
test_a_pass_does_not_end_the_stretch(void **state)
{
    int                        i;
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;

    (void) state;

    r = rate(5, 1000, 5);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 5, T0), 5);

    /* 14 drops, a pass, and the next drop is the 15th of the stretch */

    for (i = 0; i < 14; i++) {
        assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 199),
                         DROP);
    }

    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 200), PASS);
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 201), CLOSE);
}


static void
test_a_quiet_spell_ends_the_stretch(void **state)
{
    int                        i;
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;

    (void) state;

    r = rate(5, 1000, 5);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 5, T0), 5);

    for (i = 0; i < 14; i++) {
        assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0), DROP);
    }

    /* a second without a drop: calm again, the count starts over */

    assert_int_equal(take_n(&r, &b, 5, T0 + 1000), 5);

    for (i = 0; i < 14; i++) {
        assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 1000),
                         DROP);
    }

    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 1000), CLOSE);
}


static void
test_close_after_ten_seconds_over(void **state)
{
    uint64_t                   t;
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;

    (void) state;

    /* twice the rate: every other message is dropped (a burst large
       enough that 3 bursts of drops take longer than 10 s) */
    r = rate(5, 1000, 50);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 50, T0), 50);
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 100), DROP);

    for (t = T0 + 200; t < T0 + 100 + 10000; t += 100) {
        assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, t),
                         (t - T0) % 200 == 0 ? PASS : DROP);
    }

    /* the first drop 10 s after the first one closes */
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0 + 10100), CLOSE);
}


/* messages at t until one is not let through: what happened to it */
static ngx_http_wirehub_rate_rc_e
take_until_refused(ngx_http_wirehub_rate_t *r, ngx_http_wirehub_bucket_t *b,
    uint64_t t)
{
    int                         i;
    ngx_http_wirehub_rate_rc_e  rc;

    for (i = 0; i < 1000000; i++) {
        rc = ngx_http_wirehub_rate_take(r, b, t);
        if (rc != PASS) {
            return rc;
        }
    }

    fail_msg("the bucket never ran dry");

    return PASS;
}


static void
test_a_quiet_spell_ends_the_limiting(void **state)
{
    int                        drops;
    uint64_t                   t;
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;
    ngx_http_wirehub_rate_rc_e rc;

    (void) state;

    r = rate(5, 1000, 5);
    memset(&b, 0, sizeof(b));

    assert_int_equal(take_n(&r, &b, 5, T0), 5);
    assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, T0), DROP);

    /* at the rate, with no drop for a second: calm again */
    for (t = T0 + 200; t <= T0 + 1000; t += 200) {
        assert_int_equal(ngx_http_wirehub_rate_take(&r, &b, t), PASS);
    }

    /* then twice the rate: the drop before the calm does not count */
    drops = 0;

    for (t = T0 + 1100; ; t += 100) {
        rc = ngx_http_wirehub_rate_take(&r, &b, t);

        if (rc == CLOSE) {
            break;
        }

        drops += (rc == DROP);
        assert_true(t < T0 + 11000);
    }

    assert_int_equal(drops, 14);
}


static void
test_the_spell_is_the_time_to_refill(void **state)
{
    uint64_t                   t;
    ngx_http_wirehub_rate_t    r;
    ngx_http_wirehub_bucket_t  b;

    (void) state;

    /* 50r/s burst=100: the spell is the 2 s the bucket takes to fill */
    r = rate(50, 1000, 100);
    memset(&b, 0, sizeof(b));

    /* a drop every 1.9 s, the rate used up in between: one stretch */
    for (t = T0; t < T0 + 10000; t += 1900) {
        assert_int_equal(take_until_refused(&r, &b, t), DROP);
    }

    assert_int_equal(take_until_refused(&r, &b, T0 + 10000), CLOSE);

    /* a drop every 2.1 s: each one starts a stretch of its own */
    memset(&b, 0, sizeof(b));

    for (t = T0; t < T0 + 30000; t += 2100) {
        assert_int_equal(take_until_refused(&r, &b, t), DROP);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_off_passes_everything),
        cmocka_unit_test(test_burst_then_drop),
        cmocka_unit_test(test_refill_is_exact_and_capped),
        cmocka_unit_test(test_clock_stepping_back_is_harmless),
        cmocka_unit_test(test_close_after_three_bursts_dropped),
        cmocka_unit_test(test_a_pass_does_not_end_the_stretch),
        cmocka_unit_test(test_a_quiet_spell_ends_the_stretch),
        cmocka_unit_test(test_close_after_ten_seconds_over),
        cmocka_unit_test(test_a_quiet_spell_ends_the_limiting),
        cmocka_unit_test(test_the_spell_is_the_time_to_refill),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
