/*
 * The Prometheus text writer (worker/prom.c): family lines, samples with
 * and without labels, label values and HELP text escaped as the format
 * says, milliseconds as seconds.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../worker/prom.h"


/* the buffer as a C string (the writer does not terminate it) */
static const char *
text(wh_buf_t *b)
{
    assert_int_equal(wh_buf_reserve(b, 1), 0);
    b->data[b->len] = '\0';

    return (const char *) b->data;
}


static void
test_family_and_samples(void **unused)
{
    wh_buf_t   b = { 0 };
    wh_prom_t  p = { &b, 0 };

    (void) unused;

    wh_prom_family(&p, "wirehubd_commands", "gauge", "Open commands.");
    wh_prom_u64(&p, "wirehubd_commands", (const char *[]) {
                    "status", "pending", NULL }, 3);
    wh_prom_u64(&p, "wirehubd_commands", (const char *[]) {
                    "a", "1", "b", "2", NULL }, 18446744073709551615ULL);
    wh_prom_counter(&p, "wirehubd_x_total", "X.", 0);

    assert_int_equal(p.failed, 0);
    assert_string_equal(text(&b),
        "# HELP wirehubd_commands Open commands.\n"
        "# TYPE wirehubd_commands gauge\n"
        "wirehubd_commands{status=\"pending\"} 3\n"
        "wirehubd_commands{a=\"1\",b=\"2\"} 18446744073709551615\n"
        "# HELP wirehubd_x_total X.\n"
        "# TYPE wirehubd_x_total counter\n"
        "wirehubd_x_total 0\n");

    wh_buf_free(&b);
}


static void
test_escaping(void **unused)
{
    wh_buf_t   b = { 0 };
    wh_prom_t  p = { &b, 0 };

    (void) unused;

    /* HELP escapes backslash and newline, not the quote */
    wh_prom_family(&p, "m", "gauge", "a \"q\" \\ b\nc");
    wh_prom_u64(&p, "m", (const char *[]) { "v", "x\"y\\z\nw", NULL }, 1);
    wh_prom_u64(&p, "m", (const char *[]) { "v", "", NULL }, 2);

    assert_string_equal(text(&b),
        "# HELP m a \"q\" \\\\ b\\nc\n"
        "# TYPE m gauge\n"
        "m{v=\"x\\\"y\\\\z\\nw\"} 1\n"
        "m{v=\"\"} 2\n");

    wh_buf_free(&b);
}


static void
test_seconds_from_ms(void **unused)
{
    wh_buf_t   b = { 0 };
    wh_prom_t  p = { &b, 0 };

    (void) unused;

    wh_prom_ms(&p, "t", NULL, 1795255200123LL);
    wh_prom_ms(&p, "t", NULL, 5);
    wh_prom_ms(&p, "t", NULL, 0);
    wh_prom_ms(&p, "t", NULL, -1500);

    assert_string_equal(text(&b),
        "t 1795255200.123\n"
        "t 0.005\n"
        "t 0.000\n"
        "t -1.500\n");

    wh_buf_free(&b);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_family_and_samples),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_seconds_from_ms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
