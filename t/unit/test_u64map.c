/*
 * The map of 64-bit keys to 32-bit values (worker/u64map.c): what is
 * put is there with its value until deleted, deleting from the middle
 * of a run keeps the rest of it reachable, the bound holds, and a long
 * random walk agrees with a plain array.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../worker/u64map.h"


static void
test_put_get_del(void **state)
{
    uint32_t     v;
    uint64_t     k;
    wh_u64map_t  m;

    (void) state;
    wh_u64map_init(&m, 1000);

    assert_int_equal(wh_u64map_get(&m, 42, &v), 0);
    wh_u64map_del(&m, 42);

    for (k = 1; k <= 500; k++) {
        assert_int_equal(wh_u64map_put(&m, k * 0x10001, (uint32_t) k), 0);
    }

    /* a second put replaces the value */
    assert_int_equal(wh_u64map_put(&m, 0x10001, 7), 0);
    assert_int_equal(m.count, 500);
    assert_int_equal(wh_u64map_get(&m, 0x10001, &v), 1);
    assert_int_equal(v, 7);

    for (k = 2; k <= 500; k++) {
        assert_int_equal(wh_u64map_get(&m, k * 0x10001, &v), 1);
        assert_int_equal(v, k);
        assert_int_equal(wh_u64map_get(&m, k * 0x10001 + 1, &v), 0);
    }

    for (k = 1; k <= 500; k += 2) {
        wh_u64map_del(&m, k * 0x10001);
    }

    for (k = 1; k <= 500; k++) {
        assert_int_equal(wh_u64map_get(&m, k * 0x10001, &v), k % 2 == 0);
    }

    assert_int_equal(m.count, 250);

    /* 0 is a key like any other */
    assert_int_equal(wh_u64map_put(&m, 0, 9), 0);
    assert_int_equal(wh_u64map_get(&m, 0, &v), 1);
    assert_int_equal(v, 9);

    wh_u64map_free(&m);
}


static void
test_bound(void **state)
{
    uint32_t     v;
    wh_u64map_t  m;

    (void) state;
    wh_u64map_init(&m, 3);

    assert_int_equal(wh_u64map_put(&m, 10, 1), 0);
    assert_int_equal(wh_u64map_put(&m, 20, 2), 0);
    assert_int_equal(wh_u64map_put(&m, 30, 3), 0);
    assert_int_equal(wh_u64map_put(&m, 40, 4), -1);
    assert_int_equal(wh_u64map_get(&m, 40, &v), 0);

    /* a key already there is no new key */
    assert_int_equal(wh_u64map_put(&m, 20, 5), 0);

    wh_u64map_del(&m, 10);
    assert_int_equal(wh_u64map_put(&m, 40, 4), 0);
    assert_int_equal(wh_u64map_get(&m, 40, &v), 1);
    assert_int_equal(v, 4);

    wh_u64map_free(&m);
}


/* keys drawn from a small range, so runs are long and deletions land
 * in their middles; the arrays say what must be there */
static void
test_random_walk(void **state)
{
    int          i, n;
    uint32_t     v, value[2048];
    uint64_t     k;
    wh_u64map_t  m;
    unsigned     seed = 12345;
    char         there[2048];

    (void) state;
    wh_u64map_init(&m, 1 << 20);
    memset(there, 0, sizeof(there));
    n = 0;

    for (i = 0; i < 200000; i++) {
        k = rand_r(&seed) % 2048;

        if (rand_r(&seed) % 3) {
            value[k] = (uint32_t) i;
            assert_int_equal(wh_u64map_put(&m, k << 40, value[k]), 0);
            n += !there[k];
            there[k] = 1;

        } else {
            wh_u64map_del(&m, k << 40);
            n -= there[k];
            there[k] = 0;
        }

        if (i % 1000 != 0) {
            continue;
        }

        for (k = 0; k < 2048; k++) {
            assert_int_equal(wh_u64map_get(&m, k << 40, &v), there[k]);

            if (there[k]) {
                assert_int_equal(v, value[k]);
            }
        }
    }

    assert_int_equal(m.count, n);
    assert_true(m.nslots >= 2 * m.count);

    wh_u64map_free(&m);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_random_walk),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
