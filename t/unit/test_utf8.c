
/*
 * Unit tests of the incremental UTF-8 validator: the classic decoder
 * capability cases, each fed whole, one byte at a time and cut at every
 * point, then every sequence of up to three bytes against a reference
 * decoder written independently of the automaton.
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wh_utf8.h"


typedef struct {
    const char  *name;
    const char  *hex;       /* bytes as hex pairs, spaces ignored */
    long         bad;       /* index of the first invalid byte, or -1 */
    int          complete;  /* when bad is -1: ends on a boundary */
} utf8_case_t;


static const utf8_case_t  utf8_cases[] = {

    /* valid */
    { "empty", "", -1, 1 },
    { "kosme", "ce ba e1 bd b9 cf 83 ce bc ce b5", -1, 1 },
    { "first 1-byte U+0000", "00", -1, 1 },
    { "first 2-byte U+0080", "c2 80", -1, 1 },
    { "first 3-byte U+0800", "e0 a0 80", -1, 1 },
    { "first 4-byte U+10000", "f0 90 80 80", -1, 1 },
    { "last 1-byte U+007F", "7f", -1, 1 },
    { "last 2-byte U+07FF", "df bf", -1, 1 },
    { "last 3-byte U+FFFF", "ef bf bf", -1, 1 },
    { "last 4-byte U+10FFFF", "f4 8f bf bf", -1, 1 },
    { "U+D7FF before the surrogates", "ed 9f bf", -1, 1 },
    { "U+E000 after the surrogates", "ee 80 80", -1, 1 },
    { "U+FFFD", "ef bf bd", -1, 1 },
    { "U+FFFE noncharacter", "ef bf be", -1, 1 },
    { "U+1F600 emoji", "f0 9f 98 80", -1, 1 },
    { "U+F0000 plane 15", "f3 b0 80 80", -1, 1 },
    { "ascii run then 4-byte", "41 42 43 44 45 46 47 48 49 f0 9f 98 80",
      -1, 1 },

    /* cut short: valid so far, not complete */
    { "2-byte missing 1", "c2", -1, 0 },
    { "2-byte U+07FF missing 1", "df", -1, 0 },
    { "3-byte missing 1", "e0 a0", -1, 0 },
    { "3-byte U+FFFF missing 1", "ef bf", -1, 0 },
    { "3-byte missing 2", "e1", -1, 0 },
    { "4-byte missing 1", "f0 90 80", -1, 0 },
    { "4-byte U+10FFFF missing 1", "f4 8f bf", -1, 0 },
    { "4-byte missing 3", "f4", -1, 0 },
    { "ED alone", "ed", -1, 0 },

    /* bytes that never occur */
    { "FE", "fe", 0, 0 },
    { "FF", "ff", 0, 0 },
    { "FE FE FF FF", "fe fe ff ff", 0, 0 },
    { "C0 alone", "c0", 0, 0 },
    { "C1 alone", "c1", 0, 0 },
    { "F5", "f5 80 80 80", 0, 0 },
    { "F7 BF BF BF (U+1FFFFF)", "f7 bf bf bf", 0, 0 },
    { "5-byte", "f8 88 80 80 80", 0, 0 },
    { "last 5-byte", "fb bf bf bf bf", 0, 0 },
    { "6-byte", "fc 84 80 80 80 80", 0, 0 },
    { "last 6-byte", "fd bf bf bf bf bf", 0, 0 },

    /* above U+10FFFF */
    { "U+110000", "f4 90 80 80", 1, 0 },
    { "F4 BF", "f4 bf bf bf", 1, 0 },

    /* lone continuation bytes */
    { "80", "80", 0, 0 },
    { "BF", "bf", 0, 0 },
    { "80 BF", "80 bf", 0, 0 },
    { "ascii then 80", "61 80", 1, 0 },
    { "2-byte then extra continuation", "c2 80 80", 2, 0 },
    { "4-byte then extra continuation", "f0 90 80 80 bf", 4, 0 },

    /* lead bytes followed by a space */
    { "C0 space", "c0 20", 0, 0 },
    { "C2 space", "c2 20", 1, 0 },
    { "DF space", "df 20", 1, 0 },
    { "E0 space", "e0 20", 1, 0 },
    { "EF space", "ef 20", 1, 0 },
    { "F0 space", "f0 20", 1, 0 },
    { "F3 space", "f3 20", 1, 0 },
    { "F4 space", "f4 20", 1, 0 },
    { "3-byte space at the end", "e1 80 20", 2, 0 },
    { "4-byte space at the end", "f1 80 80 20", 3, 0 },
    { "cut 2-byte then 3-byte", "c2 e0 a0 80", 1, 0 },

    /* overlong "/" */
    { "overlong / 2", "c0 af", 0, 0 },
    { "overlong / 3", "e0 80 af", 1, 0 },
    { "overlong / 4", "f0 80 80 af", 1, 0 },
    { "overlong / 5", "f8 80 80 80 af", 0, 0 },
    { "overlong / 6", "fc 80 80 80 80 af", 0, 0 },

    /* the largest overlongs */
    { "overlong U+007F", "c1 bf", 0, 0 },
    { "overlong U+07FF", "e0 9f bf", 1, 0 },
    { "overlong U+FFFF", "f0 8f bf bf", 1, 0 },

    /* overlong NUL */
    { "overlong NUL 2", "c0 80", 0, 0 },
    { "overlong NUL 3", "e0 80 80", 1, 0 },
    { "overlong NUL 4", "f0 80 80 80", 1, 0 },

    /* UTF-16 surrogates */
    { "U+D800", "ed a0 80", 1, 0 },
    { "U+DB7F", "ed ad bf", 1, 0 },
    { "U+DB80", "ed ae 80", 1, 0 },
    { "U+DBFF", "ed af bf", 1, 0 },
    { "U+DC00", "ed b0 80", 1, 0 },
    { "U+DF80", "ed be 80", 1, 0 },
    { "U+DFFF", "ed bf bf", 1, 0 },
    { "U+D800 U+DC00 pair", "ed a0 80 ed b0 80", 1, 0 },
    { "U+DBFF U+DFFF pair", "ed af bf ed bf bf", 1, 0 },

    /* as Autobahn sends them (cases 6.3 and 6.4) */
    { "kosme, surrogate, edited",
      "ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64", 12, 0 },
    { "kosme, U+110000, edited",
      "ce ba e1 bd b9 cf 83 ce bc ce b5 f4 90 80 80 65 64 69 74 65 64", 12,
      0 },
    { "ascii then FF", "48 65 6c 6c 6f 20 77 6f 72 6c 64 ff", 11, 0 },
};


static size_t
parse_hex(const char *hex, unsigned char *out, size_t cap)
{
    size_t        n;
    unsigned int  byte;

    n = 0;

    while (*hex) {
        if (*hex == ' ') {
            hex++;
            continue;
        }

        assert_true(n < cap);
        assert_int_equal(sscanf(hex, "%2x", &byte), 1);
        out[n++] = (unsigned char) byte;
        hex += 2;
    }

    return n;
}


/* feeds bytes[0..len) in three pieces, cut at cut1 and cut2 */
static void
check_cut(const utf8_case_t *c, const unsigned char *bytes, size_t len,
    size_t cut1, size_t cut2)
{
    int                      rc, expect;
    wh_utf8_t  u;

    memset(&u, 0, sizeof(u));

    expect = (c->bad >= 0 && (size_t) c->bad < cut1) ? -1 : 0;
    rc = wh_utf8_feed(&u, bytes, cut1);
    assert_int_equal(rc, expect);

    expect = (c->bad >= 0 && (size_t) c->bad < cut2) ? -1 : 0;
    rc = wh_utf8_feed(&u, bytes + cut1, cut2 - cut1);
    assert_int_equal(rc, expect);

    expect = (c->bad >= 0) ? -1 : 0;
    rc = wh_utf8_feed(&u, bytes + cut2, len - cut2);
    assert_int_equal(rc, expect);

    expect = (c->bad < 0 && c->complete) ? 0 : -1;
    assert_int_equal(wh_utf8_done(&u), expect);
}


static void
test_cases_bytewise(void **state)
{
    int                      rc;
    size_t                   i, k, len;
    unsigned char            bytes[64];
    const utf8_case_t       *c;
    wh_utf8_t  u;

    (void) state;

    for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        c = &utf8_cases[i];
        len = parse_hex(c->hex, bytes, sizeof(bytes));
        memset(&u, 0, sizeof(u));

        for (k = 0; k < len; k++) {
            rc = wh_utf8_feed(&u, bytes + k, 1);

            if (rc != ((c->bad >= 0 && (size_t) c->bad <= k) ? -1 : 0)) {
                fail_msg("%s: byte %zu gave %d", c->name, k, rc);
            }
        }

        if (wh_utf8_done(&u)
            != ((c->bad < 0 && c->complete) ? 0 : -1))
        {
            fail_msg("%s: wrong end state", c->name);
        }

        assert_int_equal(wh_utf8_validate(bytes, len),
                         (c->bad < 0 && c->complete) ? 0 : -1);
    }
}


static void
test_cases_every_cut(void **state)
{
    size_t          i, cut1, cut2, len;
    unsigned char   bytes[64];

    (void) state;

    for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        len = parse_hex(utf8_cases[i].hex, bytes, sizeof(bytes));

        for (cut1 = 0; cut1 <= len; cut1++) {
            for (cut2 = cut1; cut2 <= len; cut2++) {
                check_cut(&utf8_cases[i], bytes, len, cut1, cut2);
            }
        }
    }
}


static void
test_every_continuation_byte_alone(void **state)
{
    unsigned                 b;
    unsigned char            byte;
    wh_utf8_t  u;

    (void) state;

    for (b = 0x80; b <= 0xbf; b++) {
        memset(&u, 0, sizeof(u));
        byte = (unsigned char) b;
        assert_int_equal(wh_utf8_feed(&u, &byte, 1), -1);
    }
}


static void
test_failure_is_sticky(void **state)
{
    wh_utf8_t  u;

    (void) state;

    memset(&u, 0, sizeof(u));
    assert_int_equal(wh_utf8_feed(&u,
                         (const unsigned char *) "ok\xff", 3), -1);
    assert_int_equal(wh_utf8_feed(&u,
                         (const unsigned char *) "fine", 4), -1);
    assert_int_equal(wh_utf8_feed(&u, NULL, 0), -1);
    assert_int_equal(wh_utf8_done(&u), -1);
}


/*
 * The ASCII fast path reads 8 bytes at a time: put a bad byte, a valid
 * multibyte character and a cut character at every position of runs of
 * every length, starting at every alignment.
 */
static void
test_ascii_fast_path_edges(void **state)
{
    size_t                   align, run, at;
    unsigned char            storage[128], *buf;
    wh_utf8_t  u;

    (void) state;

    for (align = 0; align < 8; align++) {
        buf = storage + align;

        for (run = 1; run <= 40; run++) {
            for (at = 0; at < run; at++) {
                memset(buf, 'a', run);
                buf[at] = 0xff;
                memset(&u, 0, sizeof(u));
                assert_int_equal(wh_utf8_feed(&u, buf, run),
                                 -1);

                memset(buf, 'a', run + 2);
                buf[at] = 0xc3;
                buf[at + 1] = 0xa9;
                assert_int_equal(wh_utf8_validate(buf, run + 2),
                                 0);

                memset(&u, 0, sizeof(u));
                assert_int_equal(wh_utf8_feed(&u, buf, at + 1),
                                 0);
                assert_int_equal(wh_utf8_done(&u), -1);
            }

            memset(buf, 'a', run);
            assert_int_equal(wh_utf8_validate(buf, run), 0);
        }
    }
}


/*
 * The reference: decodes code points the long way and tells whether a
 * byte string is valid and complete (0), a valid prefix of some valid
 * string (1) or neither (-1).
 */
static int
reference_classify(const unsigned char *p, size_t len)
{
    size_t    i, k, n;
    uint32_t  cp, lo, hi, min;

    i = 0;

    while (i < len) {

        if (p[i] < 0x80) {
            i++;
            continue;
        }

        if ((p[i] & 0xe0) == 0xc0) {
            n = 2;
            cp = p[i] & 0x1f;
            min = 0x80;

        } else if ((p[i] & 0xf0) == 0xe0) {
            n = 3;
            cp = p[i] & 0x0f;
            min = 0x800;

        } else if ((p[i] & 0xf8) == 0xf0) {
            n = 4;
            cp = p[i] & 0x07;
            min = 0x10000;

        } else {
            return -1;
        }

        for (k = 1; k < n && i + k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return -1;
            }

            cp = (cp << 6) | (p[i + k] & 0x3f);
        }

        /* the code points the bytes so far could still become */
        lo = cp << (6 * (n - k));
        hi = lo | ((1u << (6 * (n - k))) - 1);

        if (lo < min) {
            lo = min;
        }

        if (hi > 0x10ffff) {
            hi = 0x10ffff;
        }

        if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff)) {
            return -1;
        }

        if (k < n) {
            return 1;
        }

        i += n;
    }

    return 0;
}


/* checks one string against the reference, whole and byte by byte */
static void
check_against_reference(const unsigned char *p, size_t len)
{
    int                      rc, ref;
    size_t                   k;
    wh_utf8_t  u;

    ref = reference_classify(p, len);

    memset(&u, 0, sizeof(u));
    rc = wh_utf8_feed(&u, p, len);

    if (rc != (ref < 0 ? -1 : 0)
        || (ref >= 0 && wh_utf8_done(&u) != (ref ? -1 : 0)))
    {
        fail_msg("%02x %02x %02x %02x (len %zu): reference %d, got %d",
                 p[0], len > 1 ? p[1] : 0, len > 2 ? p[2] : 0,
                 len > 3 ? p[3] : 0, len, ref, rc);
    }

    /* byte by byte, the first failure comes with the first bad prefix */
    memset(&u, 0, sizeof(u));

    for (k = 0; k < len; k++) {
        rc = wh_utf8_feed(&u, p + k, 1);
        ref = reference_classify(p, k + 1);

        if (rc != (ref < 0 ? -1 : 0)) {
            fail_msg("%02x %02x %02x %02x: byte %zu: reference %d, got %d",
                     p[0], len > 1 ? p[1] : 0, len > 2 ? p[2] : 0,
                     len > 3 ? p[3] : 0, k, ref, rc);
        }
    }
}


static void
test_exhaustive_up_to_3_bytes(void **state)
{
    unsigned       a, b, c;
    unsigned char  p[3];

    (void) state;

    for (a = 0; a < 256; a++) {
        p[0] = (unsigned char) a;
        check_against_reference(p, 1);

        for (b = 0; b < 256; b++) {
            p[1] = (unsigned char) b;
            check_against_reference(p, 2);

            for (c = 0; c < 256; c++) {
                p[2] = (unsigned char) c;
                check_against_reference(p, 3);
            }
        }
    }
}


/* 4 bytes: every lead byte, then every boundary of the byte classes */
static void
test_4_bytes_at_class_boundaries(void **state)
{
    unsigned              a, b, c, d;
    unsigned char         p[4];
    static const uint8_t  edges[] = {
        0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
        0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0,
        0xf4, 0xf5, 0xff
    };

    (void) state;

    for (a = 0; a < 256; a++) {
        p[0] = (unsigned char) a;

        for (b = 0; b < sizeof(edges); b++) {
            p[1] = edges[b];

            for (c = 0; c < sizeof(edges); c++) {
                p[2] = edges[c];

                for (d = 0; d < sizeof(edges); d++) {
                    p[3] = edges[d];
                    check_against_reference(p, 4);
                }
            }
        }
    }
}


/* the lead bytes F0..F4 with every second byte: the 4-byte edges */
static void
test_4_byte_second_bytes(void **state)
{
    unsigned       a, b;
    unsigned char  p[4];

    (void) state;

    for (a = 0xf0; a <= 0xf4; a++) {
        for (b = 0; b < 256; b++) {
            p[0] = (unsigned char) a;
            p[1] = (unsigned char) b;
            p[2] = 0x80;
            p[3] = 0xbf;
            check_against_reference(p, 4);
        }
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_cases_bytewise),
        cmocka_unit_test(test_cases_every_cut),
        cmocka_unit_test(test_every_continuation_byte_alone),
        cmocka_unit_test(test_failure_is_sticky),
        cmocka_unit_test(test_ascii_fast_path_edges),
        cmocka_unit_test(test_exhaustive_up_to_3_bytes),
        cmocka_unit_test(test_4_bytes_at_class_boundaries),
        cmocka_unit_test(test_4_byte_second_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
