/*
 * The Idempotency-Keys of API publishes (worker/idem.c): a key per
 * workspace and channel, pending until answered, kept for the window,
 * and the bound, past which the oldest answered keys go first.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/idem.h"


static wh_str_t
S(const char *s)
{
    wh_str_t  r = { s, strlen(s) };

    return r;
}


static void
test_repeat_and_scope(void **state)
{
    wh_idem_t        *e, *found, *again;
    wh_idem_table_t   t;

    (void) state;
    memset(&t, 0, sizeof(t));

    e = wh_idem_begin(&t, S("acme"), S("orders"), S("k1"), 1000, &found);
    assert_non_null(e);
    assert_null(found);

    /* a repeat before the answer finds it pending */
    again = wh_idem_begin(&t, S("acme"), S("orders"), S("k1"), 1001,
                          &found);
    assert_ptr_equal(again, e);
    assert_ptr_equal(found, e);
    assert_int_equal(found->done, 0);

    wh_idem_end(&t, e, 1, 42, "k3x9a2bq");
    again = wh_idem_begin(&t, S("acme"), S("orders"), S("k1"), 2000,
                          &found);
    assert_ptr_equal(found, e);
    assert_int_equal(found->id, 42);
    assert_string_equal(found->epoch, "k3x9a2bq");

    /* the same key on another channel or workspace is another key */
    e = wh_idem_begin(&t, S("acme"), S("orders2"), S("k1"), 2000, &found);
    assert_null(found);
    wh_idem_end(&t, e, 1, 1, "e");
    e = wh_idem_begin(&t, S("other"), S("orders"), S("k1"), 2000, &found);
    assert_null(found);
    wh_idem_end(&t, e, 1, 1, "e");

    wh_idem_free(&t);
}


static void
test_failed_publish_frees_the_key(void **state)
{
    wh_idem_t        *e, *found;
    wh_idem_table_t   t;

    (void) state;
    memset(&t, 0, sizeof(t));

    e = wh_idem_begin(&t, S("acme"), S("c"), S("k"), 0, &found);
    wh_idem_end(&t, e, 0, 0, "");
    assert_int_equal(t.keys.count, 0);

    e = wh_idem_begin(&t, S("acme"), S("c"), S("k"), 1, &found);
    assert_null(found);
    wh_idem_end(&t, e, 1, 7, "e");

    wh_idem_free(&t);
}


static void
test_window(void **state)
{
    wh_idem_t        *e, *found;
    wh_idem_table_t   t;

    (void) state;
    memset(&t, 0, sizeof(t));

    e = wh_idem_begin(&t, S("acme"), S("c"), S("k"), 0, &found);
    wh_idem_end(&t, e, 1, 7, "e");

    (void) wh_idem_begin(&t, S("acme"), S("c"), S("k"),
                         WH_IDEM_WINDOW_MS - 1, &found);
    assert_non_null(found);

    /* past the window: a new publish */
    e = wh_idem_begin(&t, S("acme"), S("c"), S("k"), WH_IDEM_WINDOW_MS,
                      &found);
    assert_null(found);
    assert_int_equal(e->done, 0);
    assert_int_equal(t.keys.count, 1);

    wh_idem_free(&t);
}


static void
test_bound_keeps_pending_keys(void **state)
{
    char              key[32];
    size_t            i;
    wh_idem_t        *e, *pending, *found;
    wh_idem_table_t   t;

    (void) state;
    memset(&t, 0, sizeof(t));

    pending = wh_idem_begin(&t, S("acme"), S("c"), S("pending"), 0, &found);

    for (i = 0; i < WH_IDEM_MAX + 10; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        e = wh_idem_begin(&t, S("acme"), S("c"), S(key), 1, &found);
        assert_non_null(e);
        wh_idem_end(&t, e, 1, i + 1, "e");
    }

    assert_true(t.keys.count <= WH_IDEM_MAX + 1);

    /* the oldest answered keys went; the pending one stayed */
    (void) wh_idem_begin(&t, S("acme"), S("c"), S("k0"), 2, &found);
    assert_null(found);
    (void) wh_idem_begin(&t, S("acme"), S("c"), S("pending"), 2, &found);
    assert_ptr_equal(found, pending);

    wh_idem_free(&t);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_repeat_and_scope),
        cmocka_unit_test(test_failed_publish_frees_the_key),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_bound_keeps_pending_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
