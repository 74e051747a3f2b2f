/*
 * wh_cmdrec_scan: a command record read without jansson gives what
 * jansson reads from the same text (escapes, surrogate pairs, repeated
 * and unknown members, values of the wrong kind), and every text it
 * does not read exactly as jansson is left to jansson; the same for a
 * record of flat members (a client's).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../worker/cmdrec.h"


static wh_str_t
jstr(json_t *obj, const char *key)
{
    json_t    *v = json_object_get(obj, key);
    wh_str_t   s = { "", 0 };

    if (json_is_string(v)) {
        s.data = json_string_value(v);
        s.len = json_string_length(v);
    }

    return s;
}


static void
expect_str(wh_str_t got, wh_str_t want)
{
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
}


/* the scanner reads text, and reads it as jansson does */
static void
expect_same(const char *text)
{
    size_t        i, n;
    char          scratch[4096];
    json_t       *obj, *h, *e;
    wh_cmdrec_t   rec;

    assert_int_equal(wh_cmdrec_scan(text, strlen(text), &rec, scratch), 0);

    obj = json_loads(text, 0, NULL);
    assert_non_null(obj);

    for (i = 0; i < WH_CMDREC_STRS; i++) {
        expect_str(rec.strs[i], jstr(obj, wh_cmdrec_str_keys[i]));
    }

    for (i = 0; i < WH_CMDREC_INTS; i++) {
        assert_int_equal(rec.ints[i], json_integer_value(
                             json_object_get(obj, wh_cmdrec_int_keys[i])));
    }

    assert_int_equal(rec.has_client,
                     json_is_string(json_object_get(obj, "client")));

    h = json_object_get(obj, "history");
    n = json_array_size(h);
    assert_int_equal(rec.nhistory, n);

    for (i = 0; i < n; i++) {
        e = json_array_get(h, i);
        assert_int_equal(rec.history[i].status,
                         json_integer_value(json_object_get(e, "status")));
        assert_int_equal(rec.history[i].at,
                         json_integer_value(json_object_get(e, "at")));
        assert_int_equal(rec.history[i].attempt,
                         json_integer_value(json_object_get(e, "attempt")));
        expect_str(rec.history[i].session, jstr(e, "session"));
        expect_str(rec.history[i].reason, jstr(e, "reason"));
    }

    json_decref(obj);
}


static void
expect_other(const char *text)
{
    char          scratch[4096];
    wh_cmdrec_t   rec;

    assert_int_equal(wh_cmdrec_scan(text, strlen(text), &rec, scratch),
                     WH_CMDREC_OTHER);
}


static void
test_records(void **state)
{
    (void) state;

    expect_same("{\"client\":\"dev-1\",\"command\":\"reboot\","
                "\"payload\":\"{\\\"delay\\\":5,\\\"x\\\":[1,2]}\","
                "\"priority\":5,\"status\":1,\"attempt\":1,\"seq\":42,"
                "\"created\":1764950000000,\"updated\":1764950000001,"
                "\"expires\":1764950600000,\"deadline\":0,"
                "\"history\":[{\"status\":0,\"at\":1764950000000},"
                "{\"status\":1,\"at\":1764950000001,\"attempt\":1,"
                "\"session\":\"s-1\"}],\"idem\":\"k\","
                "\"lane\":\"l\",\"job\":\"j\",\"jidx\":7,"
                "\"not_before\":-3}");
    expect_same("{}");
    expect_same(" { \"client\" : \"a\" , \"history\" : [ ] } ");
    expect_same("{\"client\":\"a\",\"history\":[]}");
}


static void
test_escapes(void **state)
{
    (void) state;

    expect_same("{\"client\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\"}");
    expect_same("{\"client\":\"\\u00e9\\u20ac\\ud83d\\ude00x\"}");
    expect_same("{\"client\":\"caf\xc3\xa9\",\"payload\":\"\\u0001\"}");
    expect_same("{\"cl\\u0069ent\":\"a\",\"error\":\"e\\n\"}");
    expect_same("{\"client\":\"a\",\"history\":[{\"status\":4,\"at\":1,"
                "\"reason\":\"timed \\\"out\\\"\"}]}");
}


static void
test_odd_members(void **state)
{
    (void) state;

    /* the last of a repeated member wins */
    expect_same("{\"client\":\"a\",\"client\":\"b\",\"seq\":1,\"seq\":2}");
    /* a member of the wrong kind reads as absent */
    expect_same("{\"client\":5}");
    expect_same("{\"client\":\"a\",\"seq\":\"12\",\"history\":\"no\"}");
    expect_same("{\"client\":\"a\",\"history\":[{\"status\":\"x\","
                "\"session\":3}]}");
    /* unknown members are skipped */
    expect_same("{\"client\":\"a\",\"future\":\"x\",\"count\":3,"
                "\"history\":[{\"status\":1,\"other\":\"y\"}]}");
    expect_same("{\"client\":\"a\",\"seq\":-0}");
}


static void
test_left_to_jansson(void **state)
{
    int     i;
    char    text[2048];
    size_t  len;

    (void) state;

    expect_other("");
    expect_other("[]");
    expect_other("{\"client\":\"a\"");
    expect_other("{\"client\":\"a\"} x");
    expect_other("{\"client\":\"a\",}");
    expect_other("{\"client\":true}");
    expect_other("{\"client\":null}");
    expect_other("{\"client\":\"a\",\"x\":{\"y\":1}}");
    expect_other("{\"client\":\"a\",\"x\":[1]}");
    expect_other("{\"seq\":1.5}");
    expect_other("{\"seq\":1e3}");
    expect_other("{\"seq\":012}");
    expect_other("{\"seq\":-}");
    expect_other("{\"seq\":1234567890123456789}");
    expect_other("{\"client\":\"a\\u0000b\"}");
    expect_other("{\"client\":\"\\ud83d\"}");
    expect_other("{\"client\":\"\\ude00\"}");
    expect_other("{\"client\":\"\\x\"}");
    expect_other("{\"client\":\"a\tb\"}");
    expect_other("{\"history\":[1]}");
    expect_other("{\"history\":[{\"status\":1},]}");

    /* more history than a command keeps */
    len = (size_t) snprintf(text, sizeof(text), "{\"history\":[");

    for (i = 0; i <= WH_CMD_HISTORY_MAX; i++) {
        len += (size_t) snprintf(text + len, sizeof(text) - len,
                                 "%s{\"status\":1}", i ? "," : "");
    }

    snprintf(text + len, sizeof(text) - len, "]}");
    expect_other(text);
}


/* a client record: flat members only, read as jansson reads them */
static void
expect_flat(const char *text, int want)
{
    size_t         i;
    char           scratch[1024];
    json_t        *obj;
    int64_t        ints[2];
    wh_str_t       strs[3];
    const char    *skeys[] = { "name", "client_type", "metadata" };
    const char    *ikeys[] = { "created", "last_seen" };

    assert_int_equal(wh_cmdrec_scan_flat(text, strlen(text), skeys, 3, strs,
                                         ikeys, 2, ints, scratch), want);

    if (want != 0) {
        return;
    }

    obj = json_loads(text, 0, NULL);
    assert_non_null(obj);

    for (i = 0; i < 3; i++) {
        expect_str(strs[i], jstr(obj, skeys[i]));
    }

    for (i = 0; i < 2; i++) {
        assert_int_equal(ints[i], json_integer_value(
                             json_object_get(obj, ikeys[i])));
    }

    json_decref(obj);
}


static void
test_flat_records(void **state)
{
    (void) state;

    expect_flat("{\"name\":\"Front door\",\"client_type\":\"cam\","
                "\"created\":1764950000000,\"last_seen\":1764950000123,"
                "\"metadata\":\"{\\\"floor\\\":2}\"}", 0);
    expect_flat("{\"name\":\"\",\"client_type\":\"\",\"created\":1,"
                "\"last_seen\":2}", 0);
    expect_flat("{}", 0);
    expect_flat("{\"name\":\"caf\\u00e9\",\"name\":\"b\","
                "\"created\":\"x\",\"later\":5}", 0);
    expect_flat("{\"name\":\"a\",\"tags\":[\"x\"]}", WH_CMDREC_OTHER);
    expect_flat("{\"name\":\"a\",\"history\":[]}", WH_CMDREC_OTHER);
    expect_flat("{\"name\":{\"x\":1}}", WH_CMDREC_OTHER);
    expect_flat("{\"created\":1.5}", WH_CMDREC_OTHER);
    expect_flat("{\"name\":\"a\"", WH_CMDREC_OTHER);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_odd_members),
        cmocka_unit_test(test_left_to_jansson),
        cmocka_unit_test(test_flat_records),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
