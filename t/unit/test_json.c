/*
 * wh_json_member: the exact bytes of a member's value, for every kind of
 * value, escaped names, look-alikes inside strings and nested objects,
 * and what jansson (the full parser) makes of the same text.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "wh_json.h"


static void
expect_member(const char *text, const char *key, const char *want)
{
    int       rc;
    wh_str_t  v;

    rc = wh_json_member(text, strlen(text), key, &v);

    if (want == NULL) {
        assert_int_equal(rc, 0);
        return;
    }

    assert_int_equal(rc, 1);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.data, want, v.len);
}


static void
test_kinds_of_values(void **state)
{
    (void) state;

    expect_member("{\"data\":0.1}", "data", "0.1");
    expect_member("{\"data\":1e400}", "data", "1e400");
    expect_member("{\"data\":-0}", "data", "-0");
    expect_member("{\"data\":true}", "data", "true");
    expect_member("{\"data\":null}", "data", "null");
    expect_member("{\"data\":\"a\\\"b}\"}", "data", "\"a\\\"b}\"");
    expect_member("{\"data\":[1,[2,{\"x\":\"]\"}]]}", "data",
                  "[1,[2,{\"x\":\"]\"}]]");
    expect_member("{\"data\":{\"v\":0.10, \"w\" : [ ] }}", "data",
                  "{\"v\":0.10, \"w\" : [ ] }");
}


static void
test_where_it_is(void **state)
{
    (void) state;

    expect_member(" {\n\t\"type\" : \"publish\" ,\r\n \"data\" :\n 42 \n} ",
                  "data", "42");
    expect_member("{\"type\":\"data\",\"x\":{\"data\":1},\"data\":2}", "data",
                  "2");
    expect_member("{\"d\\\"ata\":1,\"data\":3}", "data", "3");
    expect_member("{\"type\":\"publish\"}", "data", NULL);
    expect_member("{}", "data", NULL);
    expect_member("{\"dat\":1,\"datas\":2}", "data", NULL);
}


static void
test_escaped_names(void **state)
{
    (void) state;

    expect_member("{\"d\\u0061ta\":5}", "data", "5");
    expect_member("{\"\\u0064\\u0041ta\":5}", "data", NULL);
    expect_member("{\"d\\u0061t\":5}", "data", NULL);
    expect_member("{\"da\\nta\":5}", "data", NULL);
    expect_member("{\"da\\nta\":5}", "da\nta", "5");
    expect_member("{\"a\\/b\":6}", "a/b", "6");
}


static void
test_not_objects(void **state)
{
    wh_str_t  v;

    (void) state;

    assert_int_equal(wh_json_member("[1]", 3, "data", &v), 0);
    assert_int_equal(wh_json_member("", 0, "data", &v), 0);
    assert_int_equal(wh_json_member("  ", 2, "data", &v), 0);
    assert_int_equal(wh_json_member("{\"data\"", 7, "data", &v), 0);
    assert_int_equal(wh_json_member("{\"data\":[1,2", 12, "data", &v), 0);
    assert_int_equal(wh_json_member("{\"a\":1 \"b\":2}", 14, "b", &v), 0);
}


/* the members named, in one pass; escaped names and no object decline */
static void
test_members(void **state)
{
    wh_str_t                  v[3];
    static const char *const  names[] = { "type", "ref", "status" };
    static const char         plain[] =
        " { \"ref\" : \"r-1\" ,\"x\":{\"type\":1},"
        "\"type\":\"command_result\" } ";

    (void) state;

    assert_int_equal(wh_json_members(plain, sizeof(plain) - 1, names, v, 3),
                     1);
    assert_int_equal(v[0].len, sizeof("\"command_result\"") - 1);
    assert_memory_equal(v[0].data, "\"command_result\"", v[0].len);
    assert_int_equal(v[1].len, 5);
    assert_memory_equal(v[1].data, "\"r-1\"", 5);
    assert_null(v[2].data);
    assert_int_equal(v[2].len, 0);

    /* a name written with an escape: the caller must parse */
    assert_int_equal(wh_json_members("{\"typ\\u0065\":1}", 15, names, v, 3),
                     0);
    assert_int_equal(wh_json_members("{\"a\\\"\":1}", 9, names, v, 3), 0);

    /* not an object with members, or not all of one */
    assert_int_equal(wh_json_members("{}", 2, names, v, 3), 0);
    assert_int_equal(wh_json_members("[1]", 3, names, v, 3), 0);
    assert_int_equal(wh_json_members("", 0, names, v, 3), 0);
    assert_int_equal(wh_json_members("{\"type\":1", 9, names, v, 3), 0);
    assert_int_equal(wh_json_members("{\"type\":1} x", 12, names, v, 3), 0);
    assert_int_equal(wh_json_members("{\"type\":1 \"ref\":2}", 18, names, v,
                                     3), 0);

    /* a name that only starts like one asked for */
    assert_int_equal(wh_json_members("{\"types\":1,\"re\":2}", 18, names, v,
                                     3), 1);
    assert_int_equal(v[0].len + v[1].len + v[2].len, 0);
}


/* what the scan finds, parsed, equals what jansson finds */
static void
test_agrees_with_jansson(void **state)
{
    size_t       i;
    json_t      *obj, *want, *got;
    wh_str_t     v;
    const char  *key;
    json_t      *value;

    static const char  *texts[] = {
        "{\"data\":{\"sensor_id\":\"V1\",\"moisture\":45.2},\"type\":\"x\"}",
        "{\"a\":[],\"b\":{},\"c\":\"\\u00e9\\ud83d\\ude00\",\"d\":1.5e-3}",
        "{\"k\\u0031\":[{\"k1\":2}],\"k2\":\"}{][\\\\\"}",
    };

    (void) state;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        obj = json_loads(texts[i], JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(obj);

        json_object_foreach(obj, key, value) {
            if (strchr(key, '\\') || (unsigned char) key[0] >= 0x80) {
                continue;
            }

            assert_int_equal(wh_json_member(texts[i], strlen(texts[i]), key,
                                            &v), 1);
            got = json_loadb(v.data, v.len, JSON_DECODE_ANY, NULL);
            want = value;
            assert_non_null(got);
            assert_true(json_equal(got, want));
            json_decref(got);
        }

        json_decref(obj);
    }
}


static int
unique(const char *text)
{
    return wh_json_unique(text, strlen(text));
}


/* n members m0..m(n-1), the last one named dup instead when dup */
static void
wide(char *out, size_t size, int n, const char *dup)
{
    int     i;
    size_t  len = 0;

    len += (size_t) snprintf(out + len, size - len, "{");

    for (i = 0; i < n; i++) {
        if (i == n - 1 && dup) {
            len += (size_t) snprintf(out + len, size - len, ",\"%s\":0",
                                     dup);
        } else {
            len += (size_t) snprintf(out + len, size - len, "%s\"m%d\":0",
                                     i ? "," : "", i);
        }
    }

    snprintf(out + len, size - len, "}");
}


/* depth levels of {"k": around an object with a duplicate */
static void
deep(char *out, size_t size, int depth)
{
    int     i;
    size_t  len = 0;

    for (i = 0; i < depth; i++) {
        len += (size_t) snprintf(out + len, size - len, "{\"k\":");
    }

    len += (size_t) snprintf(out + len, size - len, "{\"z\":1,\"z\":2}");

    for (i = 0; i < depth; i++) {
        len += (size_t) snprintf(out + len, size - len, "}");
    }
}


static void
test_unique(void **state)
{
    char  text[1024];

    (void) state;

    assert_int_equal(unique(" 45.2 "), 1);
    assert_int_equal(unique("[1,\"x\"]"), 1);
    assert_int_equal(unique("{}"), 1);
    assert_int_equal(unique("{\"a\":1,\"b\":{\"a\":1}}"), 1);
    assert_int_equal(unique("{\"a\":1,\"ab\":2,\"\":3}"), 1);
    assert_int_equal(unique("{\"a\":1,\"a\":2}"), 0);
    assert_int_equal(unique("{\"\":1,\"\":2}"), 0);
    assert_int_equal(unique("{\"a\":{\"b\":[1],\"b\":[2]}}"), 0);
    assert_int_equal(unique(" {\"x\" : {\"y\":1 , \"y\" :2}} "), 0);

    /* what the scan leaves to a parser */
    assert_int_equal(unique("{\"a\":1,\"\\u0061\":2}"), -1);
    assert_int_equal(unique("[{\"a\":1,\"a\":2}]"), -1);
    assert_int_equal(unique("{\"s\":\"{\",\"t\":1}"), -1);

    /* as wide as it compares, and one more */
    wide(text, sizeof(text), WH_JSON_UNIQUE_MEMBERS, NULL);
    assert_int_equal(unique(text), 1);
    wide(text, sizeof(text), WH_JSON_UNIQUE_MEMBERS, "m0");
    assert_int_equal(unique(text), 0);
    wide(text, sizeof(text), WH_JSON_UNIQUE_MEMBERS + 1, NULL);
    assert_int_equal(unique(text), -1);
    wide(text, sizeof(text), WH_JSON_UNIQUE_MEMBERS + 1, "m0");
    assert_int_equal(unique(text), -1);

    /* as deep as it goes, and one more */
    deep(text, sizeof(text), WH_JSON_UNIQUE_DEPTH - 1);
    assert_int_equal(unique(text), 0);
    deep(text, sizeof(text), WH_JSON_UNIQUE_DEPTH);
    assert_int_equal(unique(text), -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_unique),
        cmocka_unit_test(test_kinds_of_values),
        cmocka_unit_test(test_where_it_is),
        cmocka_unit_test(test_escaped_names),
        cmocka_unit_test(test_not_objects),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_agrees_with_jansson),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
