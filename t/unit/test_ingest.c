/*
 * MQTT ingest and egress logic without a broker: topic filters and
 * matching, templates, ingest rules, the `data` built from payloads,
 * the rate coalescer (first value at once, the last one at the
 * trailing edge) and egress topics that refuse injected levels.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "../../worker/egress.h"
#include "../../worker/ingest.h"


static wh_str_t
str(const char *s)
{
    wh_str_t  r = { s, strlen(s) };

    return r;
}


static int
str_is(wh_str_t s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.data, want, s.len) == 0;
}


/* parses an ingest line split on spaces */
static int
rule(wh_ingest_rule_t *r, const char *line, char *err, size_t errlen)
{
    int    n = 0, rc;
    char  *copy, *tok, *save, *args[16];

    copy = strdup(line);
    assert_non_null(copy);

    for (tok = strtok_r(copy, " ", &save); tok && n < 16;
         tok = strtok_r(NULL, " ", &save))
    {
        args[n++] = tok;
    }

    rc = wh_ingest_rule_parse(r, args, n, err, errlen);
    free(copy);

    return rc;
}


static void
test_filter_check(void **state)
{
    (void) state;

    assert_int_equal(wh_topic_filter_check("sensors/+/data"), 1);
    assert_int_equal(wh_topic_filter_check("ws/+/devices/+/telemetry"), 2);
    assert_int_equal(wh_topic_filter_check("a/#"), 1);
    assert_int_equal(wh_topic_filter_check("#"), 1);
    assert_int_equal(wh_topic_filter_check("+/+/#"), 3);
    assert_int_equal(wh_topic_filter_check("plain/topic"), 0);

    assert_int_equal(wh_topic_filter_check(""), -1);
    assert_int_equal(wh_topic_filter_check("a/#/b"), -1);
    assert_int_equal(wh_topic_filter_check("a+/b"), -1);
    assert_int_equal(wh_topic_filter_check("a/b#"), -1);
    assert_int_equal(wh_topic_filter_check("a/\xff"), -1);
}


static void
test_topic_match(void **state)
{
    unsigned  n;
    wh_str_t  caps[WH_INGEST_MAX_CAPTURES];

    (void) state;

    assert_int_equal(wh_topic_match("sensors/+/data", "sensors/V1/data",
                                    15, caps, &n), 1);
    assert_int_equal(n, 1);
    assert_true(str_is(caps[0], "V1"));

    assert_int_equal(wh_topic_match("ws/+/devices/+/telemetry",
                                    "ws/acme/devices/d-9/telemetry", 29,
                                    caps, &n), 1);
    assert_int_equal(n, 2);
    assert_true(str_is(caps[0], "acme"));
    assert_true(str_is(caps[1], "d-9"));

    /* "#" takes the rest, or nothing at all */
    assert_int_equal(wh_topic_match("a/#", "a/b/c", 5, caps, &n), 1);
    assert_true(str_is(caps[0], "b/c"));
    assert_int_equal(wh_topic_match("a/#", "a", 1, caps, &n), 1);
    assert_int_equal(caps[0].len, 0);

    /* an empty level is a level */
    assert_int_equal(wh_topic_match("sensors/+/data", "sensors//data", 13,
                                    caps, &n), 1);
    assert_int_equal(caps[0].len, 0);

    assert_int_equal(wh_topic_match("sensors/+/data", "sensors/V1", 10,
                                    caps, &n), 0);
    assert_int_equal(wh_topic_match("sensors/+/data", "sensors/V1/data/x",
                                    17, caps, &n), 0);
    assert_int_equal(wh_topic_match("sensors/+/data", "sensors/V1/dat", 14,
                                    caps, &n), 0);
    assert_int_equal(wh_topic_match("sensors/+", "sensors/a/b", 11, caps,
                                    &n), 0);

    /* wildcards at the first level never match "$" topics */
    assert_int_equal(wh_topic_match("#", "$SYS/x", 6, caps, &n), 0);
    assert_int_equal(wh_topic_match("+/x", "$SYS/x", 6, caps, &n), 0);
    assert_int_equal(wh_topic_match("$SYS/#", "$SYS/x", 6, caps, &n), 1);
}


static void
test_templates(void **state)
{
    char      err[200];
    wh_tpl_t  t;
    wh_buf_t  b = { 0 };
    wh_str_t  vals[3] = { { "V1", 2 }, { "acme", 4 }, { "x", 1 } };
    static const char *const  names[] = { "workspace", "client", "type" };

    (void) state;

    assert_int_equal(wh_tpl_parse(&t, "sensors/{1}/by/{2}", NULL, 2, err,
                                  sizeof(err)), 0);
    assert_int_equal(wh_tpl_render(&t, vals, &b), 0);
    assert_int_equal(b.len, strlen("sensors/V1/by/acme"));
    assert_memory_equal(b.data, "sensors/V1/by/acme", b.len);
    wh_tpl_free(&t);

    b.len = 0;
    assert_int_equal(wh_tpl_parse(&t, "{3}", NULL, 3, err, sizeof(err)), 0);
    assert_int_equal(wh_tpl_render(&t, vals, &b), 0);
    assert_int_equal(b.len, 1);
    wh_tpl_free(&t);

    assert_int_equal(wh_tpl_parse(&t, "x/{0}", NULL, 2, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "{0}"));
    assert_int_equal(wh_tpl_parse(&t, "x/{3}", NULL, 2, err, sizeof(err)),
                     -1);
    assert_int_equal(wh_tpl_parse(&t, "x/{1", NULL, 2, err, sizeof(err)),
                     -1);
    assert_int_equal(wh_tpl_parse(&t, "x/1}", NULL, 2, err, sizeof(err)),
                     -1);
    assert_int_equal(wh_tpl_parse(&t, "x/{client}", NULL, 2, err,
                                  sizeof(err)), -1);

    assert_int_equal(wh_tpl_parse(&t, "e/{workspace}/{type}", names, 3,
                                  err, sizeof(err)), 0);
    wh_tpl_free(&t);
    assert_int_equal(wh_tpl_parse(&t, "e/{workspace}/{user}", names, 3,
                                  err, sizeof(err)), -1);
    assert_non_null(strstr(err, "{user}"));

    wh_buf_free(&b);
}


static void
test_rule_parse(void **state)
{
    char              err[200];
    wh_ingest_rule_t  r;

    (void) state;

    /* DESIGN.md's example */
    assert_int_equal(rule(&r, "sensors/+/data workspace=demo "
                          "channel=sensors/{1} type=sensor_reading key={1} "
                          "rate=1/s", err, sizeof(err)), 0);
    assert_int_equal(r.nwild, 1);
    assert_string_equal(r.type, "sensor_reading");
    assert_string_equal(r.key_field, "sensor_id");
    assert_int_equal(r.rate_ms, 1000);
    wh_ingest_rule_free(&r);

    assert_int_equal(rule(&r, "ws/+/devices/+/telemetry workspace={1} "
                          "channel=devices/{2} type=telemetry key={2} "
                          "rate=20/m", err, sizeof(err)), 0);
    assert_string_equal(r.key_field, "device_id");
    assert_int_equal(r.rate_ms, 3000);
    wh_ingest_rule_free(&r);

    /* no key: no key field; an explicit one wins */
    assert_int_equal(rule(&r, "a/+ workspace=w channel=c/{1} type=t",
                          err, sizeof(err)), 0);
    assert_null(r.key_field);
    assert_null(r.key.text);
    wh_ingest_rule_free(&r);
    assert_int_equal(rule(&r, "a/+ workspace=w channel=c/{1} type=t "
                          "key={1} key_field=probe", err, sizeof(err)), 0);
    assert_string_equal(r.key_field, "probe");
    wh_ingest_rule_free(&r);

    assert_int_equal(rule(&r, "a/+ workspace=w channel=c/{1}", err,
                          sizeof(err)), -1);
    assert_non_null(strstr(err, "type="));
    assert_int_equal(rule(&r, "a/+ workspace=w channel=c/{2} type=t", err,
                          sizeof(err)), -1);
    assert_int_equal(rule(&r, "a/+ workspace=w channel=$presence type=t",
                          err, sizeof(err)), -1);
    assert_non_null(strstr(err, "channel template"));
    assert_int_equal(rule(&r, "a/+ workspace=w channel=c//{1} type=t",
                          err, sizeof(err)), -1);
    assert_int_equal(rule(&r, "a/+ workspace=w/{1} channel=c type=t", err,
                          sizeof(err)), -1);
    assert_non_null(strstr(err, "workspace template"));
    assert_int_equal(rule(&r, "a/+ workspace=w channel=c type=t rate=0/s",
                          err, sizeof(err)), -1);
    assert_int_equal(rule(&r, "a/+ workspace=w channel=c type=t rate=5/h",
                          err, sizeof(err)), -1);
    assert_int_equal(rule(&r, "a/+ workspace=w channel=c type=t "
                          "key_field=x", err, sizeof(err)), -1);
    assert_int_equal(rule(&r, "a/+ workspace=w channel=c type=t type=u",
                          err, sizeof(err)), -1);
    assert_non_null(strstr(err, "duplicate"));
    assert_int_equal(rule(&r, "a/+ workspace=w channel=c type=t color=red",
                          err, sizeof(err)), -1);
    assert_int_equal(rule(&r, "a/#/b workspace=w channel=c type=t", err,
                          sizeof(err)), -1);
    assert_int_equal(rule(&r, "workspace=w channel=c type=t", err,
                          sizeof(err)), -1);
}


static void
test_route(void **state)
{
    char               err[200];
    wh_ingest_rule_t   rules[2];
    wh_ingest_route_t  rt;

    (void) state;

    memset(&rt, 0, sizeof(rt));
    assert_int_equal(rule(&rules[0], "sensors/+/data workspace=demo "
                          "channel=sensors/{1} type=sensor_reading key={1}",
                          err, sizeof(err)), 0);
    assert_int_equal(rule(&rules[1], "ws/+/devices/# workspace={1} "
                          "channel=devices/{2} type=telemetry", err,
                          sizeof(err)), 0);

    assert_int_equal(wh_ingest_route(rules, 2, "sensors/V1/data", 15, &rt),
                     WH_ROUTE_OK);
    assert_int_equal(rt.rule, 0);
    assert_true(str_is(rt.ws, "demo"));
    assert_true(str_is(rt.ch, "sensors/V1"));
    assert_true(str_is(rt.key, "V1"));

    /* the default key is the workspace and channel */
    assert_int_equal(wh_ingest_route(rules, 2, "ws/acme/devices/d1/t", 20,
                                     &rt), WH_ROUTE_OK);
    assert_int_equal(rt.rule, 1);
    assert_true(str_is(rt.ws, "acme"));
    assert_true(str_is(rt.ch, "devices/d1/t"));
    assert_true(str_is(rt.key, "acme/devices/d1/t"));

    assert_int_equal(wh_ingest_route(rules, 2, "other/V1", 8, &rt),
                     WH_ROUTE_NO_RULE);

    /* names a topic renders must be valid names */
    assert_int_equal(wh_ingest_route(rules, 2, "sensors/a b/data", 16, &rt),
                     WH_ROUTE_BAD_NAME);
    assert_int_equal(wh_ingest_route(rules, 2, "sensors//data", 13, &rt),
                     WH_ROUTE_BAD_NAME);
    assert_int_equal(wh_ingest_route(rules, 2, "sensors/../data", 15, &rt),
                     WH_ROUTE_BAD_NAME);
    assert_int_equal(wh_ingest_route(rules, 2, "ws/a$b/devices/x", 16, &rt),
                     WH_ROUTE_BAD_NAME);
    assert_int_equal(wh_ingest_route(rules, 2, "ws/acme/devices", 15, &rt),
                     WH_ROUTE_BAD_NAME);

    wh_buf_free(&rt.buf);
    wh_ingest_rule_free(&rules[0]);
    wh_ingest_rule_free(&rules[1]);
}


/* builds data and compares it with want (NULL: must be refused) */
static void
data_is(const char *payload, const char *key_field, const char *key,
    const char *want)
{
    int       rc;
    wh_buf_t  b = { 0 };

    rc = wh_ingest_data(&b, payload, strlen(payload), key_field, str(key));

    if (want == NULL) {
        assert_int_equal(rc, -1);
        wh_buf_free(&b);
        return;
    }

    assert_int_equal(rc, 0);
    assert_int_equal(wh_buf_append(&b, "", 1), 0);
    assert_string_equal((char *) b.data, want);
    wh_buf_free(&b);
}


static void
test_data(void **state)
{
    (void) state;

    /* DESIGN.md: data = {"sensor_id":"V1","moisture":45.2} */
    data_is("{\"moisture\":45.2}", "sensor_id", "V1",
            "{\"sensor_id\":\"V1\",\"moisture\":45.2}");
    data_is(" {\"a\" : 1.50 , \"b\":{\"c\":[1,2]}} \n", "sensor_id", "V1",
            "{\"sensor_id\":\"V1\",\"a\":1.50,\"b\":{\"c\":[1,2]}}");
    data_is("{}", "sensor_id", "V1", "{\"sensor_id\":\"V1\"}");
    data_is("{\"a\\\"b\":\"x}\\\",y\",\"c\":{\"d\":\"}\"},\"e\":[\"]\"]}",
            "sensor_id", "V1",
            "{\"sensor_id\":\"V1\",\"a\\\"b\":\"x}\\\",y\","
            "\"c\":{\"d\":\"}\"},\"e\":[\"]\"]}");

    /* the topic is the authority: a payload cannot claim another id */
    data_is("{\"sensor_id\":\"V9\",\"m\":1}", "sensor_id", "V1",
            "{\"sensor_id\":\"V1\",\"m\":1}");
    data_is("{\"m\":1,\"sensor\\u005fid\":\"V9\"}", "sensor_id", "V1",
            "{\"sensor_id\":\"V1\",\"m\":1}");
    data_is("{\"sensor_id\":\"V9\"}", "sensor_id", "V1",
            "{\"sensor_id\":\"V1\"}");

    /* other JSON values */
    data_is("45.2", "sensor_id", "V1",
            "{\"sensor_id\":\"V1\",\"value\":45.2}");
    data_is("[1,\"x\"]", "sensor_id", "V\"1",
            "{\"sensor_id\":\"V\\\"1\",\"value\":[1,\"x\"]}");
    data_is("\"on\"", NULL, "", "\"on\"");
    data_is(" [1,2] ", NULL, "", "[1,2]");

    /* refused */
    data_is("not json", "sensor_id", "V1", NULL);
    data_is("", NULL, "", NULL);
    data_is("{\"a\":1,\"a\":2}", "sensor_id", "V1", NULL);
    data_is("{\"a\":1} x", NULL, "", NULL);
    data_is("{\"a\":\"\xff\"}", NULL, "", NULL);
    data_is("123456789012345678901234567890", NULL, "", NULL);
}


/* duplicate member names are refused at any depth, also where the scan
 * hands the payload to jansson (escaped keys, objects in arrays, objects
 * too deep or too wide for it) */
static void
test_data_duplicates(void **state)
{
    int       i;
    char      wide[512], deep[128];
    size_t    n;

    (void) state;

    data_is("{\"a\":{\"b\":1,\"b\":2}}", NULL, "", NULL);
    data_is("{\"a\":{\"b\":1,\"c\":{\"d\":1,\"d\":1}}}", NULL, "",
            NULL);
    data_is("{\"a\":1,\"\\u0061\":2}", NULL, "", NULL);
    data_is("{\"a\":[{\"b\":1,\"b\":2}]}", NULL, "", NULL);
    data_is("[{\"b\":1},{\"b\":2,\"b\":3}]", NULL, "", NULL);
    data_is("{\"a\":{\"b\":1},\"c\":{\"b\":1}}", NULL, "",
            "{\"a\":{\"b\":1},\"c\":{\"b\":1}}");
    data_is("[{\"b\":1},{\"b\":2}]", NULL, "", "[{\"b\":1},{\"b\":2}]");
    data_is("{\"a\":\"{x\",\"b\":\"}\"}", NULL, "",
            "{\"a\":\"{x\",\"b\":\"}\"}");
    data_is("{\"a\":\"{x\",\"a\":1}", NULL, "", NULL);
    data_is("{\"ab\":1,\"a\":2,\"b\":3}", NULL, "",
            "{\"ab\":1,\"a\":2,\"b\":3}");

    /* 40 members: past what the scan compares */
    n = 0;
    wide[n++] = '{';

    for (i = 0; i < 40; i++) {
        n += (size_t) snprintf(wide + n, sizeof(wide) - n, "%s\"m%d\":%d",
                               i ? "," : "", i, i);
    }

    wide[n++] = '}';
    wide[n] = '\0';
    data_is(wide, NULL, "", wide);
    strcpy(wide + n - 1, ",\"m7\":0}");
    data_is(wide, NULL, "", NULL);

    /* 10 levels: past the scan's depth */
    n = 0;

    for (i = 0; i < 10; i++) {
        n += (size_t) snprintf(deep + n, sizeof(deep) - n, "{\"k\":");
    }

    strcpy(deep + n, "{\"z\":1,\"z\":2}}}}}}}}}}}");
    data_is(deep, NULL, "", NULL);
    strcpy(deep + n, "{\"z\":1,\"y\":2}}}}}}}}}}}");
    data_is(deep, NULL, "", deep);
}


/* ---------------------------------------------------------------- rate */

typedef struct {
    int       count;
    unsigned  rule;
    char      last[64];
    char      ch[64];
} sink_t;


static void
sink(void *ctx, unsigned rule_index, wh_str_t ws, wh_str_t ch,
    wh_str_t data)
{
    sink_t  *s = ctx;

    (void) ws;

    s->count++;
    s->rule = rule_index;
    snprintf(s->last, sizeof(s->last), "%.*s", (int) data.len, data.data);
    snprintf(s->ch, sizeof(s->ch), "%.*s", (int) ch.len, ch.data);
}


static wh_rate_rc_e
offer(wh_rate_t *r, unsigned rule_index, const char *key, int64_t now,
    const char *value)
{
    return wh_rate_offer(r, rule_index, str(key), now, str("demo"),
                         str("sensors/V1"), str(value));
}


/* 50 readings of one sensor within one second: the first goes out at
 * once, the last at the trailing edge, nothing else */
static void
test_rate_fifty_in_a_second(void **state)
{
    int        i, sent = 0;
    char       v[16];
    int64_t    intervals[1] = { 1000 };
    sink_t     s;
    wh_rate_t  r;

    (void) state;

    memset(&s, 0, sizeof(s));
    assert_int_equal(wh_rate_init(&r, intervals, 1, 100), 0);

    for (i = 0; i < 50; i++) {
        snprintf(v, sizeof(v), "%d", i);

        if (offer(&r, 0, "V1", 10000 + i * 19, v) == WH_RATE_SEND) {
            sent++;
        }

        wh_rate_due(&r, 10000 + i * 19, sink, &s);
    }

    assert_int_equal(sent, 1);
    assert_int_equal(s.count, 0);
    assert_int_equal(r.coalesced, 48);

    wh_rate_due(&r, 10999, sink, &s);
    assert_int_equal(s.count, 0);
    wh_rate_due(&r, 11000, sink, &s);
    assert_int_equal(s.count, 1);
    assert_string_equal(s.last, "49");
    assert_string_equal(s.ch, "sensors/V1");

    /* the trailing edge opened a window: a value now waits for it */
    assert_int_equal(offer(&r, 0, "V1", 11500, "late"), WH_RATE_HELD);
    wh_rate_due(&r, 11999, sink, &s);
    assert_int_equal(s.count, 1);
    wh_rate_due(&r, 12000, sink, &s);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.last, "late");

    /* a quiet window closes and forgets the key */
    wh_rate_due(&r, 13000, sink, &s);
    assert_int_equal(s.count, 2);
    assert_int_equal(wh_rate_active(&r), 0);
    assert_int_equal(offer(&r, 0, "V1", 13001, "again"), WH_RATE_SEND);

    wh_rate_free(&r);
}


static void
test_rate_keys_and_rules(void **state)
{
    int64_t    intervals[2] = { 1000, 0 };
    sink_t     s;
    wh_rate_t  r;

    (void) state;

    memset(&s, 0, sizeof(s));
    assert_int_equal(wh_rate_init(&r, intervals, 2, 2), 0);

    /* keys are independent */
    assert_int_equal(offer(&r, 0, "V1", 0, "a1"), WH_RATE_SEND);
    assert_int_equal(offer(&r, 0, "V2", 100, "b1"), WH_RATE_SEND);
    assert_int_equal(offer(&r, 0, "V1", 200, "a2"), WH_RATE_HELD);
    assert_int_equal(offer(&r, 0, "V2", 300, "b2"), WH_RATE_HELD);

    /* past max_keys a new key passes through uncoalesced */
    assert_int_equal(offer(&r, 0, "V3", 300, "c1"), WH_RATE_SEND);
    assert_int_equal(offer(&r, 0, "V3", 301, "c2"), WH_RATE_SEND);

    /* a rule without rate never holds */
    assert_int_equal(offer(&r, 1, "V1", 300, "x"), WH_RATE_SEND);
    assert_int_equal(offer(&r, 1, "V1", 301, "y"), WH_RATE_SEND);

    /* windows end in the order they opened */
    wh_rate_due(&r, 1000, sink, &s);
    assert_int_equal(s.count, 1);
    assert_string_equal(s.last, "a2");
    wh_rate_due(&r, 1100, sink, &s);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.last, "b2");

    /* shutdown: whatever is pending goes out */
    assert_int_equal(offer(&r, 0, "V1", 1200, "a3"), WH_RATE_HELD);
    wh_rate_flush(&r, sink, &s);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.last, "a3");
    assert_int_equal(s.rule, 0);

    wh_rate_free(&r);
}


/* ---------------------------------------------------------------- egress */

static int
egress(wh_egress_conf_t *e, const char *line, char *err, size_t errlen)
{
    int    n = 0, rc;
    char  *copy, *tok, *save, *args[8];

    copy = strdup(line);
    assert_non_null(copy);

    for (tok = strtok_r(copy, " ", &save); tok && n < 8;
         tok = strtok_r(NULL, " ", &save))
    {
        args[n++] = tok;
    }

    rc = wh_egress_parse(e, args, n, err, errlen);
    free(copy);

    return rc;
}


static int
topic(const wh_egress_conf_t *e, const char *ws, wh_str_t client,
    const char *type, char *out, size_t size)
{
    int          rc;
    wh_buf_t     b = { 0 };
    const char  *why = NULL;

    rc = wh_egress_topic(&e->topic, str(ws), client, str(type), &b, &why);

    if (rc == 0) {
        assert_int_equal(b.data[b.len - 1], '\0');
        snprintf(out, size, "%s", (char *) b.data);
    } else {
        assert_non_null(why);
        assert_int_equal(b.len, 0);
    }

    wh_buf_free(&b);

    return rc;
}


static void
test_egress_topic(void **state)
{
    char              err[200], t[200];
    wh_str_t          nul = { "a\0b", 3 };
    wh_egress_conf_t  e;

    (void) state;

    assert_int_equal(egress(&e, "ws/{workspace}/clients/{client}/events/"
                            "{type}", err, sizeof(err)), 0);
    assert_int_equal(e.qos, 1);

    assert_int_equal(topic(&e, "acme", str("pc-7"), "device_discovery", t,
                           sizeof(t)), 0);
    assert_string_equal(t, "ws/acme/clients/pc-7/events/device_discovery");

    /* a client cannot add, widen or leave levels */
    assert_int_equal(topic(&e, "acme", str("pc/../other"), "x", t,
                           sizeof(t)), -1);
    assert_int_equal(topic(&e, "acme", str("+"), "x", t, sizeof(t)), -1);
    assert_int_equal(topic(&e, "acme", str("#"), "x", t, sizeof(t)), -1);
    assert_int_equal(topic(&e, "acme", str(""), "x", t, sizeof(t)), -1);
    assert_int_equal(topic(&e, "acme", nul, "x", t, sizeof(t)), -1);
    assert_int_equal(topic(&e, "acme", str("pc-7"), "a/b", t, sizeof(t)),
                     -1);
    assert_int_equal(topic(&e, "acme", str("pc-7"), "evt+", t, sizeof(t)),
                     -1);
    assert_int_equal(topic(&e, "acme", str("pc-7"), "#", t, sizeof(t)), -1);
    assert_int_equal(topic(&e, "acme", str("pc-7"), "", t, sizeof(t)), -1);
    wh_egress_free(&e);

    /* "$" topics are the broker's */
    assert_int_equal(egress(&e, "{client}/{workspace}", err, sizeof(err)),
                     0);
    assert_int_equal(topic(&e, "acme", str("$SYS"), "x", t, sizeof(t)), -1);
    wh_egress_free(&e);

    assert_int_equal(egress(&e, "e/{workspace}/{type} qos=0 max_queue=5",
                            err, sizeof(err)), 0);
    assert_int_equal(e.qos, 0);
    assert_int_equal(e.max_queue, 5);
    wh_egress_free(&e);

    assert_int_equal(egress(&e, "e/{client}/{type}", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "{workspace}"));
    assert_int_equal(egress(&e, "e/+/{workspace}", err, sizeof(err)), -1);
    assert_int_equal(egress(&e, "$SYS/{workspace}", err, sizeof(err)), -1);
    assert_int_equal(egress(&e, "e/{workspace}/{user}", err, sizeof(err)),
                     -1);
    assert_int_equal(egress(&e, "e/{workspace} qos=2", err, sizeof(err)),
                     -1);
    assert_int_equal(egress(&e, "e/{workspace} max_queue=0", err,
                            sizeof(err)), -1);
}


static void
test_egress_payload(void **state)
{
    json_t        *j;
    wh_buf_t       b = { 0 };
    json_error_t   e;

    (void) state;

    assert_int_equal(wh_egress_payload(&b, str("device_discovery"),
                                       str("acme"), str("pc-\"7"),
                                       str("s-1"),
                                       str("{\"type\":\"device_discovery\","
                                           "\"n\":45.2}"),
                                       1795300000123LL), 0);

    j = json_loadb((const char *) b.data, b.len, JSON_REJECT_DUPLICATES,
                   &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")),
                        "device_discovery");
    assert_string_equal(json_string_value(json_object_get(j, "client_id")),
                        "pc-\"7");
    assert_string_equal(json_string_value(json_object_get(j, "workspace")),
                        "acme");
    assert_string_equal(json_string_value(json_object_get(j, "session")),
                        "s-1");
    assert_true(json_is_object(json_object_get(j, "message")));
    assert_string_equal(json_string_value(json_object_get(j, "timestamp")),
                        "2026-11-21T22:26:40.123Z");
    assert_non_null(strstr((const char *) b.data, "\"n\":45.2}"));

    json_decref(j);
    wh_buf_free(&b);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_filter_check),
        cmocka_unit_test(test_topic_match),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_rule_parse),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_data),
        cmocka_unit_test(test_data_duplicates),
        cmocka_unit_test(test_rate_fifty_in_a_second),
        cmocka_unit_test(test_rate_keys_and_rules),
        cmocka_unit_test(test_egress_topic),
        cmocka_unit_test(test_egress_payload),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
