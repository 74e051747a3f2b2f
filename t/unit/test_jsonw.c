/*
 * The JSON writer (worker/jsonw.c) and wh_json_quote() (worker/message.c):
 * exact text for members, elements, commas and keys, and for strings
 * every byte jansson reads back as it was written, escapes and UTF-8
 * included; text that is not UTF-8 is refused.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../worker/message.h"
#include "../../worker/jsonw.h"


static void
buf_is(wh_buf_t *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
}


static void
test_members_and_elements(void **state)
{
    int       rc = 0;
    wh_buf_t  b = { 0 };

    (void) state;

    rc |= wh_jw_open(&b, NULL, '{');
    rc |= wh_jw_int(&b, "a", -42);
    rc |= wh_jw_cstr(&b, "b", "x");
    rc |= wh_jw_open(&b, "c", '[');
    rc |= wh_jw_int(&b, NULL, 1);
    rc |= wh_jw_str(&b, NULL, "y\"z", 3);
    rc |= wh_jw_open(&b, NULL, '{');
    rc |= wh_jw_close(&b, '}');
    rc |= wh_jw_close(&b, ']');
    rc |= wh_jw_time(&b, "t", 0);
    rc |= wh_jw_bool(&b, "ok", 1);
    rc |= wh_jw_raw(&b, "k\"ey\n", "{\"p\":[1]}", 9);
    rc |= wh_jw_issuer(&b, "by", "service:ops", 11);
    rc |= wh_jw_close(&b, '}');

    assert_int_equal(rc, 0);
    buf_is(&b, "{\"a\":-42,\"b\":\"x\",\"c\":[1,\"y\\\"z\",{}],\"t\":null,"
               "\"ok\":true,\"k\\\"ey\\u000a\":{\"p\":[1]},"
               "\"by\":{\"sub\":\"ops\",\"role\":\"service\"}}");
    wh_buf_free(&b);
}


static void
quote_is(const char *s, size_t len, const char *want)
{
    wh_buf_t  b = { 0 };

    assert_int_equal(wh_json_quote(&b, s, len), 0);
    buf_is(&b, want);
    wh_buf_free(&b);
}


static void
test_quote(void **state)
{
    int       c;
    wh_buf_t  b = { 0 };

    (void) state;

    for (c = 0; c < 256; c++) {
        assert_int_equal(wh_json_plain[c],
                         c >= 0x20 && c < 0x80 && c != '"' && c != '\\');
    }

    quote_is("", 0, "\"\"");
    quote_is("c-0193a1f2", 10, "\"c-0193a1f2\"");
    quote_is("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    quote_is("\x01\x1f" "x", 3, "\"\\u0001\\u001fx\"");
    quote_is("caf\xc3\xa9 \xe2\x82\xac", 9, "\"caf\xc3\xa9 \xe2\x82\xac\"");
    quote_is("a\0b", 3, "\"a\\u0000b\"");

    /* not UTF-8: refused, whatever else the text holds */
    assert_int_equal(wh_json_quote(&b, "\xff", 1), -1);
    assert_int_equal(wh_json_quote(&b, "ab\xc3", 3), -1);
    assert_int_equal(wh_json_quote(&b, "\"\xed\xa0\x80", 4), -1);
    wh_buf_free(&b);
}


/* random strings of ASCII, escapes and multibyte characters: jansson
 * reads each back byte for byte */
static void
test_quote_reads_back(void **state)
{
    int            i, j, n;
    char           s[64];
    size_t         len;
    json_t        *j_s;
    wh_buf_t       b = { 0 };
    json_error_t   e;
    static const char  *const  parts[] = {
        "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\x01", "\x7f",
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\t"
    };

    (void) state;
    srand(7);

    for (i = 0; i < 20000; i++) {
        n = rand() % 12;
        len = 0;

        for (j = 0; j < n; j++) {
            const char  *p = parts[rand() % (sizeof(parts)
                                             / sizeof(parts[0]))];

            memcpy(s + len, p, strlen(p));
            len += strlen(p);
        }

        b.len = 0;
        assert_int_equal(wh_json_quote(&b, s, len), 0);

        j_s = json_loadb((const char *) b.data, b.len, JSON_DECODE_ANY, &e);
        assert_non_null(j_s);
        assert_int_equal(json_string_length(j_s), len);
        assert_memory_equal(json_string_value(j_s), s, len);
        json_decref(j_s);
    }

    wh_buf_free(&b);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_members_and_elements),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_quote_reads_back),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
