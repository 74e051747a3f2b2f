/*
 * Channel names, patterns, workspaces and the ISO timestamps: the
 * grammar both the module and wirehubd rely on for isolation.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "wh_channel.h"
#include "wh_time.h"


#define V(s)    wh_channel_valid(s, sizeof(s) - 1)
#define P(s)    wh_pattern_valid(s, sizeof(s) - 1)
#define M(p, n) wh_pattern_match(p, sizeof(p) - 1, n, sizeof(n) - 1)
#define W(s)    wh_workspace_valid(s, sizeof(s) - 1)


static void
test_channel_names(void **state)
{
    char  buf[202];

    (void) state;

    assert_true(V("a"));
    assert_true(V("sensors/V1"));
    assert_true(V("a-b_c.d:e/F9"));
    assert_true(V("a/.../b"));
    assert_true(V("..a"));
    assert_true(V("$presence"));
    assert_true(V("$commands"));
    assert_true(V("$stats"));

    assert_false(wh_channel_valid("", 0));
    assert_false(wh_channel_valid(NULL, 3));
    assert_false(V("/a"));
    assert_false(V("a/"));
    assert_false(V("a//b"));
    assert_false(V("."));
    assert_false(V(".."));
    assert_false(V("../a"));
    assert_false(V("a/../b"));
    assert_false(V("a/./b"));
    assert_false(V("a/.."));
    assert_false(V("%2e%2e"));
    assert_false(V("a/%2e%2e/b"));
    assert_false(V("a b"));
    assert_false(V("a\\b"));
    assert_false(V("+"));
    assert_false(V("a/+"));
    assert_false(V("#"));
    assert_false(V("a/#"));
    assert_false(V("a\0b"));
    assert_false(V("a\0"));
    assert_false(V("\xc3\xa9"));
    assert_false(V("$"));
    assert_false(V("$other"));
    assert_false(V("$presence/x"));
    assert_false(V("$Presence"));
    assert_false(V("$stats\0"));
    assert_false(V("a$b"));
    assert_false(V("a?b"));
    assert_false(V("a\nb"));

    memset(buf, 'x', sizeof(buf));
    assert_true(wh_channel_valid(buf, 200));
    assert_false(wh_channel_valid(buf, 201));
    buf[100] = '/';
    assert_true(wh_channel_valid(buf, 200));
}


static void
test_patterns(void **state)
{
    (void) state;

    assert_true(P("a"));
    assert_true(P("+"));
    assert_true(P("#"));
    assert_true(P("sensors/+"));
    assert_true(P("sensors/+/data"));
    assert_true(P("devices/#"));
    assert_true(P("+/+/#"));
    assert_true(P("$presence"));
    assert_true(P("$stats"));

    assert_false(P(""));
    assert_false(P("#/a"));
    assert_false(P("a/#/b"));
    assert_false(P("a+"));
    assert_false(P("a/b#"));
    assert_false(P("++"));
    assert_false(P("a//+"));
    assert_false(P("+/"));
    assert_false(P("../+"));
    assert_false(P("$presence/#"));
    assert_false(P("$+"));
    assert_false(P("$#"));
    assert_false(P("a\0#"));
}


static void
test_pattern_match(void **state)
{
    (void) state;

    assert_true(M("a", "a"));
    assert_false(M("a", "b"));
    assert_false(M("a", "a/b"));
    assert_false(M("a/b", "a"));
    assert_true(M("sensors/+", "sensors/V1"));
    assert_false(M("sensors/+", "sensors"));
    assert_false(M("sensors/+", "sensors/V1/x"));
    assert_true(M("sensors/+/data", "sensors/V1/data"));
    assert_false(M("sensors/+/data", "sensors/V1/info"));
    assert_true(M("devices/#", "devices"));
    assert_true(M("devices/#", "devices/a"));
    assert_true(M("devices/#", "devices/a/b/c"));
    assert_false(M("devices/#", "device"));
    assert_false(M("devices/#", "devicesX/a"));
    assert_true(M("#", "anything/at/all"));
    assert_true(M("+", "x"));
    assert_false(M("+", "x/y"));
    assert_true(M("+/#", "x"));
    assert_true(M("ab", "ab"));
    assert_false(M("ab", "abc"));
    assert_false(M("abc", "ab"));

    /* system channels: only named exactly */
    assert_false(M("#", "$presence"));
    assert_false(M("+", "$stats"));
    assert_true(M("$presence", "$presence"));
    assert_false(M("$presence", "$stats"));

    /* invalid inputs never match */
    assert_false(M("a/../b", "a/../b"));
    assert_false(M("a\0", "a\0"));
    assert_false(M("+", "+"));
}


static void
test_workspaces(void **state)
{
    char  buf[65];

    (void) state;

    assert_true(W("acme"));
    assert_true(W("A-b_c.9"));
    assert_false(W(""));
    assert_false(W("a/b"));
    assert_false(W("a\0b"));
    assert_false(W("a b"));
    assert_false(W("$acme"));
    assert_false(W("a:b"));

    memset(buf, 'w', sizeof(buf));
    assert_true(wh_workspace_valid(buf, 64));
    assert_false(wh_workspace_valid(buf, 65));
}


static void
test_time_iso(void **state)
{
    char     out[WH_TIME_ISO_LEN + 1];
    int64_t  now;

    (void) state;

    assert_int_equal(wh_time_iso(out, 0), 24);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    wh_time_iso(out, 1795255200123LL);
    assert_string_equal(out, "2026-11-21T10:00:00.123Z");
    wh_time_iso(out, 951782400000LL);                 /* leap day */
    assert_string_equal(out, "2000-02-29T00:00:00.000Z");
    wh_time_iso(out, 4107542399999LL);
    assert_string_equal(out, "2100-02-28T23:59:59.999Z");

    now = wh_time_ms();
    assert_true(now > 1700000000000LL);
    wh_time_iso(out, now);
    assert_int_equal(strlen(out), 24);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_channel_names),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_pattern_match),
        cmocka_unit_test(test_workspaces),
        cmocka_unit_test(test_time_iso),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
