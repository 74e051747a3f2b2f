/*
 * wh_json_check: what is JSON and what is not, at every edge jansson
 * draws (numbers, escapes, surrogates, NUL, depth), and the same answer
 * as jansson for each case but the NUL after a scalar.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "wh_json_check.h"


typedef struct {
    const char  *text;
    size_t       len;       /* 0: strlen */
    int          json;
} json_case_t;


static const json_case_t  cases[] = {
    { "{}", 0, 1 },
    { " [ 1 , \"a\" , {\"b\" : null} ] \n", 0, 1 },
    { "true", 0, 1 },
    { "\"\"", 0, 1 },
    { "-0", 0, 1 },
    { "0.0e-0", 0, 1 },
    { "1E+5", 0, 1 },
    { "9223372036854775807", 0, 1 },
    { "-9223372036854775808", 0, 1 },
    { "9223372036854775808", 0, 0 },
    { "-9223372036854775809", 0, 0 },
    { "12345678901234567890", 0, 0 },
    { "12345678901234567890.5", 0, 1 },
    { "1e308", 0, 1 },
    { "1e309", 0, 0 },
    { "-1e400", 0, 0 },
    { "1e-400", 0, 1 },
    { "01", 0, 0 },
    { "1.", 0, 0 },
    { ".5", 0, 0 },
    { "-", 0, 0 },
    { "1e", 0, 0 },
    { "+1", 0, 0 },
    { "\"\\u0000\"", 0, 1 },
    { "{\"a\\u0000\":1}", 0, 0 },
    { "\"\\ud834\\udd1e\"", 0, 1 },
    { "\"\\uD800\"", 0, 0 },
    { "\"\\udc00\"", 0, 0 },
    { "\"\\ud800\\u0041\"", 0, 0 },
    { "\"\\x\"", 0, 0 },
    { "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"", 0, 1 },
    { "\"\t\"", 0, 0 },
    { "\"\x7f\"", 0, 1 },
    { "\"\xc3\xa9\"", 0, 1 },
    { "\"\xc3\"", 0, 0 },
    { "\"\xed\xa0\x80\"", 0, 0 },
    { "\xef\xbb\xbf{}", 0, 0 },
    { "[1,]", 0, 0 },
    { "{\"a\":1,}", 0, 0 },
    { "{\"a\" 1}", 0, 0 },
    { "{1:1}", 0, 0 },
    { "[1 2]", 0, 0 },
    { "truex", 0, 0 },
    { "nul", 0, 0 },
    { "", 0, 0 },
    { " ", 0, 0 },
    { "{} {}", 0, 0 },
    { "[", 0, 0 },
    { "\"a\0\"", 4, 0 },
    { "\0", 1, 0 },
    { "\"a\"\0", 4, 0 },
};


static void
test_cases(void **state)
{
    size_t        i, len;
    json_t       *j;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = cases[i].len ? cases[i].len : strlen(cases[i].text);

        if (wh_json_check(cases[i].text, len) != cases[i].json) {
            fail_msg("case %zu (%s): want %d", i, cases[i].text,
                     cases[i].json);
        }

        j = json_loadb(cases[i].text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                       NULL);

        if ((j != NULL) != cases[i].json) {
            fail_msg("case %zu (%s): jansson says %d", i, cases[i].text,
                     j != NULL);
        }

        json_decref(j);
    }
}


/* jansson skips it; RFC 8259 has no NUL outside strings */
static void
test_nul_after_a_scalar(void **state)
{
    (void) state;

    assert_int_equal(wh_json_check("[1\0]", 4), 0);
    assert_int_equal(wh_json_check("[true\0]", 7), 0);
    assert_int_equal(wh_json_check("1\0", 2), 0);
}


static void
expect_depth(const char *open, const char *inner, const char *close,
    size_t levels, int want)
{
    int      got, parsed;
    size_t   i, n, olen, clen, ilen;
    char    *text;
    json_t  *j;

    olen = strlen(open);
    clen = strlen(close);
    ilen = strlen(inner);
    text = malloc(levels * (olen + clen) + ilen);
    assert_non_null(text);

    for (n = 0, i = 0; i < levels; i++, n += olen) {
        memcpy(text + n, open, olen);
    }

    memcpy(text + n, inner, ilen);
    n += ilen;

    for (i = 0; i < levels; i++, n += clen) {
        memcpy(text + n, close, clen);
    }

    j = json_loadb(text, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    parsed = j != NULL;
    got = wh_json_check(text, n);
    free(text);
    json_decref(j);

    assert_int_equal(got, want);
    assert_int_equal(parsed, want);
}


/* every value is a level, the scalars too: 2048 at most */
static void
test_depth(void **state)
{
    (void) state;

    expect_depth("[", "", "]", WH_JSON_MAX_DEPTH, 1);
    expect_depth("[", "", "]", WH_JSON_MAX_DEPTH + 1, 0);
    expect_depth("{\"a\":", "1", "}", WH_JSON_MAX_DEPTH - 1, 1);
    expect_depth("{\"a\":", "1", "}", WH_JSON_MAX_DEPTH, 0);
    /* two levels a step, and the innermost array one more */
    expect_depth("[{\"a\":", "[]", "}]", WH_JSON_MAX_DEPTH / 2 - 1, 1);
    expect_depth("[{\"a\":", "[]", "}]", WH_JSON_MAX_DEPTH / 2, 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_nul_after_a_scalar),
        cmocka_unit_test(test_depth),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
