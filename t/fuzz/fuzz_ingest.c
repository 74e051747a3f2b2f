/*
 * libFuzzer target of MQTT topic -> channel mapping (worker/ingest.c),
 * used as t/unit/test_ingest.c uses it.
 *
 * Input lines: 1: an `ingest` rule's arguments, split on spaces
 * (FILTER workspace=.. channel=.. type=.. [key=..] [key_field=..]
 * [rate=..]); 2: a topic; 3: a key_field; the rest: a payload.
 *   - wh_topic_filter_check() of the filter, and wh_topic_match() of the
 *     topic against it, must agree with a plain level-by-level reference
 *     (captures too);
 *   - a rule that parses has as many captures as its filter wildcards;
 *     a topic it routes renders a valid workspace and a valid channel
 *     that is not a system one, and a key of at most WH_INGEST_KEY_MAX
 *     bytes of UTF-8;
 *   - wh_ingest_data() takes what jansson takes with duplicate member
 *     names refused (but a NUL after a scalar, as wh_json_check());
 *     without key_field the payload trimmed, with it
 *     an object whose key_field is the key and whose other members are
 *     the payload's (or {"value": payload}).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wh_channel.h"
#include "wh_json.h"
#include "wh_json_check.h"
#include "wh_utf8.h"
#include "ingest.h"


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                         \
        }                                                                    \
    } while (0)


#define FUZZ_MAX_ARGS  16
#define FUZZ_MAX_LEVELS  64


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


typedef struct {
    const char  *p;
    size_t       len;
} fuzz_level_t;


static size_t
fuzz_levels(const char *s, size_t len, fuzz_level_t *lv, size_t max)
{
    size_t       n = 0;
    const char  *p = s, *end = s + len, *sl;

    for ( ;; ) {
        if (n == max) {
            return max + 1;
        }

        sl = memchr(p, '/', end - p);
        lv[n].p = p;
        lv[n].len = (sl ? sl : end) - p;
        n++;

        if (sl == NULL) {
            return n;
        }

        p = sl + 1;
    }
}


/* the reference: -1 if the filter is not valid, else the match */
static int
fuzz_match(const char *filter, const char *topic, size_t tlen,
    wh_str_t *caps, unsigned *ncaps)
{
    size_t        nf, nt, i;
    unsigned      n = 0;
    fuzz_level_t  f[FUZZ_MAX_LEVELS], t[FUZZ_MAX_LEVELS];

    nf = fuzz_levels(filter, strlen(filter), f, FUZZ_MAX_LEVELS);
    nt = fuzz_levels(topic, tlen, t, FUZZ_MAX_LEVELS);

    if (nf > FUZZ_MAX_LEVELS || nt > FUZZ_MAX_LEVELS) {
        return -1;
    }

    if (tlen && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) {
        return 0;
    }

    for (i = 0; i < nf; i++) {
        if (f[i].len == 1 && f[i].p[0] == '#') {
            caps[n].data = i < nt ? t[i].p : topic + tlen;
            caps[n].len = i < nt ? (size_t) (topic + tlen - t[i].p) : 0;
            *ncaps = n + 1;
            return 1;
        }

        if (i >= nt) {
            return 0;
        }

        if (f[i].len == 1 && f[i].p[0] == '+') {
            caps[n++] = (wh_str_t) { t[i].p, t[i].len };

        } else if (f[i].len != t[i].len
                   || memcmp(f[i].p, t[i].p, t[i].len) != 0)
        {
            return 0;
        }
    }

    *ncaps = n;

    return nt == nf;
}


static int
fuzz_filter_check(const char *filter)
{
    int           nwild = 0;
    size_t        n, i, len = strlen(filter);
    fuzz_level_t  lv[FUZZ_MAX_LEVELS];

    if (len == 0 || !wh_utf8_valid(filter, len)) {
        return -1;
    }

    n = fuzz_levels(filter, len, lv, FUZZ_MAX_LEVELS);

    if (n > FUZZ_MAX_LEVELS) {
        return -2;       /* not judged here */
    }

    for (i = 0; i < n; i++) {
        if (lv[i].len == 1 && (lv[i].p[0] == '+' || lv[i].p[0] == '#')) {
            if (lv[i].p[0] == '#' && i + 1 != n) {
                return -1;
            }

            nwild++;

        } else if (memchr(lv[i].p, '+', lv[i].len)
                   || memchr(lv[i].p, '#', lv[i].len))
        {
            return -1;
        }
    }

    return nwild;
}


static void
fuzz_topic(const char *filter, const char *topic, size_t tlen)
{
    int       nwild, rc, ref;
    unsigned  i, n, rn;
    wh_str_t  caps[FUZZ_MAX_LEVELS + 1], rcaps[FUZZ_MAX_LEVELS + 1];

    nwild = wh_topic_filter_check(filter);
    ref = fuzz_filter_check(filter);

    if (ref == -2) {
        return;
    }

    fuzz_assert(nwild == ref);

    if (nwild < 0) {
        return;
    }

    n = rn = 12345;
    rc = wh_topic_match(filter, topic, tlen, caps, &n);
    ref = fuzz_match(filter, topic, tlen, rcaps, &rn);

    if (ref < 0) {
        return;
    }

    fuzz_assert(rc == ref);

    if (rc == 1) {
        fuzz_assert(n == rn && n == (unsigned) nwild);

        for (i = 0; i < n; i++) {
            fuzz_assert(caps[i].len == rcaps[i].len);
            fuzz_assert(caps[i].data >= topic
                        && caps[i].data + caps[i].len <= topic + tlen);
            fuzz_assert(memcmp(caps[i].data, rcaps[i].data, caps[i].len)
                        == 0);
        }
    }
}


static void
fuzz_route(const wh_ingest_rule_t *r, const char *topic, size_t tlen)
{
    wh_route_rc_e      rc;
    wh_ingest_route_t  rt;

    memset(&rt, 0, sizeof(rt));
    rc = wh_ingest_route(r, 1, topic, tlen, &rt);

    if (rc == WH_ROUTE_OK) {
        fuzz_assert(rt.rule == 0);
        fuzz_assert(wh_workspace_valid(rt.ws.data, rt.ws.len));
        fuzz_assert(wh_channel_valid(rt.ch.data, rt.ch.len));
        fuzz_assert(!wh_channel_is_system(rt.ch.data, rt.ch.len));
        /* a key may be empty ("key=", or a capture of an empty level) */
        fuzz_assert(rt.key.len <= WH_INGEST_KEY_MAX);
        fuzz_assert(wh_utf8_valid(rt.key.data, rt.key.len));
    }

    wh_buf_free(&rt.buf);
}


/* jansson took a NUL byte after a number or a literal ("[1\0]"), which
 * wh_json_check() refuses (t/fuzz/fuzz_json_check.c): without its NUL
 * bytes (the same members) the payload is taken, so the NULs alone were
 * the reason */
static int
fuzz_nul_skipped(const char *payload, size_t len)
{
    int       ok;
    char     *text;
    size_t    i, n;
    wh_buf_t  out = { 0 };

    if (memchr(payload, '\0', len) == NULL) {
        return 0;
    }

    text = malloc(len);
    fuzz_assert(text != NULL);

    for (n = 0, i = 0; i < len; i++) {
        if (payload[i] != '\0') {
            text[n++] = payload[i];
        }
    }

    ok = wh_ingest_data(&out, text, n, NULL, (wh_str_t) { "", 0 }) == 0;
    wh_buf_free(&out);
    free(text);

    return ok;
}


static void
fuzz_data(const char *payload, size_t len, const char *key_field,
    wh_str_t key)
{
    int            rc;
    json_t        *root, *got, *v;
    wh_str_t       trimmed;
    wh_buf_t       out = { 0 };

    rc = wh_ingest_data(&out, payload, len, key_field, key);
    root = json_loadb(payload, len, JSON_DECODE_ANY | JSON_ALLOW_NUL
                                    | JSON_REJECT_DUPLICATES, NULL);

    fuzz_assert(rc == 0 || rc == -1 || rc == -2);
    fuzz_assert((rc == -1) == (root == NULL)
                || (rc == -1 && fuzz_nul_skipped(payload, len)));

    if (rc != 0) {
        /* -2 is ENOMEM, or a key or key_field that is no UTF-8 text */
        fuzz_assert(rc != -2 || !wh_utf8_valid(key.data, key.len)
                    || !wh_utf8_valid(key_field, strlen(key_field)));
        json_decref(root);
        wh_buf_free(&out);
        return;
    }

    if (key_field == NULL) {
        trimmed = wh_json_trim(payload, len);
        fuzz_assert(out.len == trimmed.len
                    && memcmp(out.data, trimmed.data, out.len) == 0);
        json_decref(root);
        wh_buf_free(&out);
        return;
    }

    /* a rule refuses key_field=value (the output would repeat the key):
     * the daemon never asks for it */
    if (strcmp(key_field, "value") == 0 && !json_is_object(root)) {
        json_decref(root);
        wh_buf_free(&out);
        return;
    }

    got = json_loadb((const char *) out.data, out.len,
                     JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
    fuzz_assert(got != NULL && json_is_object(got));

    v = json_object_get(got, key_field);
    fuzz_assert(json_is_string(v) && json_string_length(v) == key.len
                && memcmp(json_string_value(v), key.data, key.len) == 0);

    if (json_is_object(root)) {
        json_object_del(root, key_field);
        json_object_del(got, key_field);

        fuzz_assert(json_equal(got, root));

    } else if (strcmp(key_field, "value") != 0) {
        fuzz_assert(json_equal(json_object_get(got, "value"), root));
    }

    json_decref(got);
    json_decref(root);
    wh_buf_free(&out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int               nargs;
    char             *text, *line[3], *p, *save, *tok, *args[FUZZ_MAX_ARGS];
    char              err[200];
    char             *topic, *payload;
    size_t            tlen, plen, i;
    wh_ingest_rule_t  rule;

    text = malloc(size + 1);
    fuzz_assert(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    /* three lines, then the payload */
    p = text;

    for (i = 0; i < 3; i++) {
        line[i] = p;
        p = memchr(p, '\n', text + size - p);

        if (p == NULL) {
            p = text + size;
            for (i++; i < 3; i++) {
                line[i] = p;
            }
            break;
        }

        *p++ = '\0';
    }

    payload = p;
    plen = text + size - p;

    /* the topic, in a buffer of its own exact size */
    tlen = strlen(line[1]);
    topic = malloc(tlen ? tlen : 1);
    fuzz_assert(topic != NULL);
    memcpy(topic, line[1], tlen);

    /* the filter alone: the first word of the rule line */
    tok = strndup(line[0], strcspn(line[0], " "));
    fuzz_assert(tok != NULL);
    fuzz_topic(tok, topic, tlen);
    free(tok);

    nargs = 0;
    for (tok = strtok_r(line[0], " ", &save); tok && nargs < FUZZ_MAX_ARGS;
         tok = strtok_r(NULL, " ", &save))
    {
        args[nargs++] = tok;
    }

    memset(&rule, 0, sizeof(rule));
    err[0] = '\0';

    if (nargs > 0 && wh_ingest_rule_parse(&rule, args, nargs, err,
                                          sizeof(err)) == 0)
    {
        fuzz_assert(rule.filter != NULL);
        fuzz_assert(wh_topic_filter_check(rule.filter)
                    == (int) rule.nwild);
        fuzz_assert(rule.nwild <= WH_INGEST_MAX_CAPTURES);
        fuzz_assert(rule.rate_ms >= 0);
        fuzz_route(&rule, topic, tlen);
        wh_ingest_rule_free(&rule);

    } else if (nargs > 0) {
        fuzz_assert(err[0] != '\0');
    }

    if (strcmp(line[2], "value") == 0) {
        char  *bad[] = { "a/+", "workspace=w", "channel=c", "type=t",
                         "key={1}", "key_field=value" };

        fuzz_assert(wh_ingest_rule_parse(&rule, bad, 6, err, sizeof(err))
                    != 0);
    }

    payload = memcpy(malloc(plen ? plen : 1), payload, plen);
    fuzz_assert(payload != NULL);
    fuzz_data(payload, plen, line[2][0] ? line[2] : NULL,
              (wh_str_t) { topic, tlen });

    free(payload);
    free(topic);
    free(text);

    return 0;
}
