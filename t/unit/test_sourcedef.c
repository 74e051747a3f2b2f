/*
 * Upstream source definitions without a connection: WebSocket URLs
 * (url.c), the JSON form with its defaults and refusals, the round trip
 * through the stored record, header values never in the API's form, and
 * the headers of the upgrade request, from a file too (sourcedef.c).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "../../worker/sourcedef.h"
#include "../../worker/url.h"


static const wh_str_t  ws = { "acme", 4 };


static void
test_urls(void **state)
{
    wh_url_t     u;
    const char  *why;
    size_t       i;
    static const char  *bad[] = {
        "http://h/", "ws://", "ws://h:0/", "ws://h:65536/", "ws://h:x/",
        "ws://u:p@h/", "ws://h/#f", "ws://h /", "ws://[::1/", "ws://[zz]/",
        "ws://h_\x01/", NULL
    };

    (void) state;

    assert_int_equal(wh_url_parse("wss://WA.Example.com/ws/dev1?a=1", &u,
                                  &why), 0);
    assert_true(u.tls && !u.numeric);
    assert_string_equal(u.host, "wa.example.com");
    assert_string_equal(u.port, "443");
    assert_string_equal(u.target, "/ws/dev1?a=1");
    wh_url_free(&u);

    assert_int_equal(wh_url_parse("ws://127.0.0.1:8080?x", &u, &why), 0);
    assert_true(!u.tls && u.numeric && u.port_num == 8080);
    assert_string_equal(u.target, "/?x");
    wh_url_free(&u);

    assert_int_equal(wh_url_parse("ws://[::1]:9/", &u, &why), 0);
    assert_true(u.ipv6 && u.numeric);
    assert_string_equal(u.host, "::1");
    wh_url_free(&u);

    for (i = 0; bad[i]; i++) {
        why = NULL;
        assert_int_equal(wh_url_parse(bad[i], &u, &why), -1);
        assert_non_null(why);
        wh_url_free(&u);
    }
}


static int
parse(wh_source_def_t *d, const char *text, int files, char *err)
{
    int           rc;
    json_t       *obj;
    json_error_t  je;

    obj = json_loads(text, 0, &je);
    assert_non_null(obj);
    rc = wh_source_def_json(d, ws, obj, files, err, 200);
    json_decref(obj);

    return rc;
}


static void
test_defaults_and_round_trip(void **state)
{
    char             err[200], *text;
    json_t          *api, *stored;
    wh_source_def_t  d, again;

    (void) state;

    assert_int_equal(parse(&d, "{\"id\":\"dev1\",\"url\":\"ws://h/x\","
                           "\"channel\":\"devices/dev1/{event}\","
                           "\"headers\":{\"Authorization\":\"Basic abc\"}}",
                           0, err), 0);
    assert_string_equal(d.event_field, "event");
    assert_string_equal(d.type.text, "{event}");
    assert_int_equal(d.ping_ms, 30000);
    assert_int_equal(d.reconnect_min_ms, 1000);
    assert_int_equal(d.reconnect_max_ms, 60000);
    assert_int_equal(d.max_message, 1024 * 1024);
    assert_int_equal(d.rate, 1000);

    /* the API's form names the header, the stored one keeps its value */
    api = wh_source_def_to_json(&d, 0);
    text = json_dumps(api, JSON_COMPACT);
    assert_null(strstr(text, "Basic abc"));
    assert_non_null(strstr(text, "\"headers\":[\"Authorization\"]"));
    free(text);
    json_decref(api);

    stored = wh_source_def_to_json(&d, 1);
    assert_int_equal(wh_source_def_json(&again, ws, stored, 0, err, 200), 0);
    assert_string_equal(again.headers[0].value, "Basic abc");
    assert_string_equal(again.channel.text, d.channel.text);
    assert_int_equal(again.ping_ms, d.ping_ms);
    json_decref(stored);
    wh_source_def_free(&again);
    wh_source_def_free(&d);
}


static void
test_refused(void **state)
{
    char             err[200];
    size_t           i;
    wh_source_def_t  d;
    static const char  *bad[] = {
        "{\"url\":\"ws://h/\",\"channel\":\"c\"}",
        "{\"id\":\"a/b\",\"url\":\"ws://h/\",\"channel\":\"c\"}",
        "{\"id\":\"a\",\"channel\":\"c\"}",
        "{\"id\":\"a\",\"url\":\"ws://h/\",\"channel\":\"$stats\"}",
        "{\"id\":\"a\",\"url\":\"ws://h/\",\"channel\":\"a/{x}\"}",
        "{\"id\":\"a\",\"url\":\"ws://h/\",\"channel\":\"a//b\"}",
        "{\"id\":\"a\",\"url\":\"ws://h/\",\"channel\":\"c\",\"ping_ms\":5}",
        "{\"id\":\"a\",\"url\":\"ws://h/\",\"channel\":\"c\","
        "\"headers\":{\"X\":\"a\\nb\"}}",
        "{\"id\":\"a\",\"url\":\"ws://h/\",\"channel\":\"c\","
        "\"headers\":{\"X Y\":\"a\"}}",
        "{\"id\":\"a\",\"url\":\"ws://h/\",\"channel\":\"c\","
        "\"subprotocol\":\"a b\"}",
        "{\"id\":\"a\",\"url\":\"ws://h/\",\"channel\":\"c\","
        "\"mqtt\":\"t\"}",
        "{\"id\":\"a\",\"url\":\"ws://h/\",\"channel\":\"c\",\"x\":1}",
        NULL
    };

    (void) state;

    for (i = 0; bad[i]; i++) {
        err[0] = '\0';
        assert_int_equal(parse(&d, bad[i], 0, err), -1);
        assert_true(err[0] != '\0');
        wh_source_def_free(&d);
    }

    /* what only wirehubd.conf may say */
    assert_int_equal(parse(&d, "{\"id\":\"a\",\"url\":\"ws://h/\","
                           "\"channel\":\"c\",\"mqtt\":\"t/{event}\"}", 1,
                           err), 0);
    wh_source_def_free(&d);
}


static void
test_headers_from_a_file(void **state)
{
    int              fd;
    char             err[200], path[] = "/tmp/wh-sourcedef-XXXXXX";
    wh_buf_t         b = { NULL, 0, 0 };
    wh_source_def_t  d;
    char             text[300];

    (void) state;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "c2VjcmV0\n", 9), 9);
    close(fd);

    snprintf(text, sizeof(text), "{\"id\":\"a\",\"url\":\"ws://h/\","
             "\"channel\":\"c\",\"headers\":{\"Authorization\":\"Basic @%s\","
             "\"X-A\":\"1\"}}", path);
    assert_int_equal(parse(&d, text, 1, err), 0);
    assert_int_equal(wh_source_def_headers(&d, &b, err, sizeof(err)), 0);
    assert_string_equal((char *) b.data,
                        "Authorization: Basic c2VjcmV0\r\nX-A: 1\r\n");
    wh_buf_free(&b);

    /* from the API the same value is literal */
    wh_source_def_free(&d);
    assert_int_equal(parse(&d, text, 0, err), 0);
    assert_null(d.headers[0].file);
    wh_source_def_free(&d);

    /* a file that is gone fails the connect, with its name */
    assert_int_equal(parse(&d, text, 1, err), 0);
    unlink(path);
    assert_int_equal(wh_source_def_headers(&d, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    wh_buf_free(&b);
    wh_source_def_free(&d);
}


static void
test_event_values(void **state)
{
    (void) state;

    assert_true(wh_source_event_valid("message.ack", 11));
    assert_true(wh_source_event_valid("a:b-c_d", 7));
    assert_false(wh_source_event_valid("", 0));
    assert_false(wh_source_event_valid("a/b", 3));
    assert_false(wh_source_event_valid("..", 2));
    assert_false(wh_source_event_valid(".", 1));
    assert_true(wh_source_event_valid("...", 3));
    assert_false(wh_source_event_valid("a b", 3));
    assert_false(wh_source_event_valid(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        65));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_defaults_and_round_trip),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_headers_from_a_file),
        cmocka_unit_test(test_event_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
