/*
 * libFuzzer target of the HTTP API's JSON bodies as wirehubd reads them
 * (worker/api.c, clients_api.c, commands_api.c), without a daemon.
 *
 * The first byte picks a route; the rest is the body, in a buffer of its
 * exact size.  Every route loads the body with jansson as the route does,
 * then:
 *   0 publish (POST /channels/..): "type" a string or absent, "data"
 *     required; the raw "data" bytes wh_json_member() finds (if it finds
 *     them) must parse to the value jansson holds; wh_api_scan_publish(),
 *     the path without jansson, takes only what jansson takes, with the
 *     type jansson holds and data bytes that parse to jansson's value;
 *   1 clients (POST/PATCH /clients): wh_cl_parse_fields(); accepted
 *     fields have the promised lengths, raw "metadata" parses to the
 *     object jansson holds;
 *   2 commands (POST /clients/{id}/commands): wh_cmd_parse_create() and
 *     the raw "payload"; wh_cmd_scan_create(), the path without jansson,
 *     declines what jansson refuses and reads exactly the fields the
 *     parse reads from what it takes;
 *   3 command_result: wh_cmd_parse_result() and the raw "result".
 * Every route also walks the body with wh_json_next_member(), which must
 * give the members jansson gives, in order, keys as written.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wh_json.h"
#include "wh_utf8.h"
#include "clients.h"
#include "cmdqueue.h"
#include "engine.h"
#include "message.h"


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

const char *fuzz_cl_parse_fields(const wh_link_msg_t *m, json_t *body,
    wh_str_t *strs, unsigned *fields);
const char *fuzz_cmd_parse_create(json_t *body, wh_str_t *strs,
    unsigned *priority, int64_t *ttl_ms, int64_t *not_before_ms);
const char *fuzz_cmd_parse_result(const wh_link_msg_t *m, json_t *body,
    wh_str_t *strs, wh_cmd_status_e *outcome, char **dumped);
int fuzz_cmd_scan_create(const wh_link_msg_t *m, wh_str_t *strs,
    unsigned *priority, int64_t *ttl_ms, int64_t *not_before_ms);
int fuzz_api_scan_publish(wh_str_t body, wh_str_t *type, wh_str_t *data);


/* the raw member key of text, if found, is the value jansson holds */
static void
fuzz_raw(const char *text, size_t len, json_t *body, const char *key,
    int must_find)
{
    int       found;
    json_t   *v, *got;
    wh_str_t  raw;

    v = json_object_get(body, key);
    found = wh_json_member(text, len, key, &raw);

    if (v == NULL) {
        fuzz_assert(!found);
        return;
    }

    /* not found only when the key is escaped in the text */
    fuzz_assert(found || !must_find || memchr(text, '\\', len) != NULL);

    if (!found) {
        return;
    }

    fuzz_assert(raw.data >= text && raw.data + raw.len <= text + len);
    got = json_loadb(raw.data, raw.len, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                     NULL);
    fuzz_assert(got != NULL && json_equal(got, v));
    json_decref(got);
}


/* the members one by one, as jansson sees them (keys without escapes) */
static void
fuzz_walk(const char *text, size_t len, json_t *body)
{
    size_t       n = 0;
    json_t      *v, *got;
    wh_str_t     k, val;
    const char  *pos = text;
    char        *key;

    while (wh_json_next_member(&pos, text + len, &k, &val)) {
        fuzz_assert(k.data >= text && k.data + k.len <= text + len);
        fuzz_assert(val.data >= text && val.data + val.len <= text + len);
        n++;

        if (memchr(k.data, '\\', k.len) != NULL) {
            continue;
        }

        key = strndup(k.data, k.len);
        fuzz_assert(key != NULL);

        if (strlen(key) == k.len) {
            v = json_object_get(body, key);
            fuzz_assert(v != NULL);
            got = json_loadb(val.data, val.len,
                             JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            fuzz_assert(got != NULL && json_equal(got, v));
            json_decref(got);
        }

        free(key);
    }

    fuzz_assert(n == json_object_size(body));
}


static void
fuzz_publish(const char *text, size_t len)
{
    int        scanned;
    json_t    *body, *type, *got;
    wh_str_t   t, raw;

    scanned = fuzz_api_scan_publish((wh_str_t) { text, len }, &t, &raw);

    body = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                      NULL);

    if (body == NULL || !json_is_object(body)) {
        fuzz_assert(!scanned);
        json_decref(body);
        return;
    }

    if (scanned) {
        /* what wh_api_publish() enqueues on the jansson path */
        type = json_object_get(body, "type");
        fuzz_assert(type == NULL || json_is_string(type));
        fuzz_assert(t.len == (type ? json_string_length(type) : 0));
        fuzz_assert(t.len == 0
                    || memcmp(t.data, json_string_value(type), t.len) == 0);

        got = json_loadb(raw.data, raw.len,
                         JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        fuzz_assert(got != NULL
                    && json_equal(got, json_object_get(body, "data")));
        json_decref(got);
    }

    fuzz_walk(text, len, body);

    type = json_object_get(body, "type");

    if ((type == NULL || json_is_string(type))
        && json_object_get(body, "data") != NULL)
    {
        fuzz_raw(text, len, body, "data", 1);
        fuzz_raw(text, len, body, "ref", 1);
    }

    json_decref(body);
}


static void
fuzz_clients(const wh_link_msg_t *m)
{
    json_t      *body, *meta, *got;
    unsigned     fields = 0;
    wh_str_t     strs[6];
    const char  *bad;

    body = json_loadb(m->body.data, m->body.len, JSON_REJECT_DUPLICATES,
                      NULL);

    if (!json_is_object(body)) {
        json_decref(body);
        return;
    }

    fuzz_walk(m->body.data, m->body.len, body);
    memset(strs, 0, sizeof(strs));
    bad = fuzz_cl_parse_fields(m, body, strs, &fields);

    if (bad == NULL) {
        fuzz_assert(!(fields & WH_CL_NAME)
                    || (strs[2].len >= 1 && strs[2].len <= 256));
        fuzz_assert(!(fields & WH_CL_TYPE)
                    || (strs[3].len >= 1 && strs[3].len <= 256));
        meta = json_object_get(body, "metadata");
        fuzz_assert(!(fields & WH_CL_META) == (meta == NULL));

        if (json_is_object(meta)) {
            got = json_loadb(strs[4].data, strs[4].len, 0, NULL);
            fuzz_assert(got != NULL && json_equal(got, meta));
            json_decref(got);
        }
    }

    json_decref(body);
}


static int
fuzz_same_str(wh_str_t a, wh_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len)
                                            == 0);
}


static void
fuzz_commands(const wh_link_msg_t *m)
{
    int          i, scanned;
    json_t      *body;
    int64_t      ttl_ms, not_before_ms, f_ttl_ms, f_not_before_ms;
    unsigned     priority, f_priority;
    wh_str_t     strs[12], fast[12];  /* as wh_commands_api_create's */
    wh_str_t     payload = { "{}", 2 };
    const char  *bad;

    memset(fast, 0, sizeof(fast));
    scanned = fuzz_cmd_scan_create(m, fast, &f_priority, &f_ttl_ms,
                                   &f_not_before_ms);

    body = json_loadb(m->body.data, m->body.len, JSON_REJECT_DUPLICATES,
                      NULL);

    if (!json_is_object(body)) {
        fuzz_assert(!scanned);
        json_decref(body);
        return;
    }

    fuzz_walk(m->body.data, m->body.len, body);
    fuzz_raw(m->body.data, m->body.len, body, "payload", 1);

    memset(strs, 0, sizeof(strs));
    bad = fuzz_cmd_parse_create(body, strs, &priority, &ttl_ms,
                                &not_before_ms);

    if (bad == NULL) {
        fuzz_assert(wh_message_type_valid(strs[3].data, strs[3].len));
        fuzz_assert(priority < WH_CMD_PRIORITIES);
        fuzz_assert(ttl_ms == 0
                    || (ttl_ms >= 1000 && ttl_ms <= 30LL * 86400 * 1000));
        fuzz_assert(strs[5].data == NULL
                    || (strs[5].len >= 1 && strs[5].len <= WH_CMD_IDEM_MAX));
    }

    if (scanned) {
        /* what wh_cmd_create() takes on the jansson path */
        fuzz_assert(bad == NULL);

        if (json_object_get(body, "payload") != NULL) {
            fuzz_assert(wh_json_member(m->body.data, m->body.len,
                                       "payload", &payload));
        }

        fuzz_assert(fuzz_same_str(fast[4], payload));
        fuzz_assert(f_priority == priority && f_ttl_ms == ttl_ms
                    && f_not_before_ms == not_before_ms);

        for (i = 0; i < 12; i++) {
            fuzz_assert(i == 4 || fuzz_same_str(fast[i], strs[i]));
        }
    }

    json_decref(body);
}


static void
fuzz_result(const wh_link_msg_t *m)
{
    char             *dumped = NULL;
    json_t           *body, *v, *got;
    wh_str_t          strs[9];
    const char       *bad;
    wh_cmd_status_e   outcome = WH_CMD_COMPLETED;

    body = json_loadb(m->body.data, m->body.len, JSON_REJECT_DUPLICATES,
                      NULL);

    if (!json_is_object(body)) {
        json_decref(body);
        return;
    }

    fuzz_walk(m->body.data, m->body.len, body);
    memset(strs, 0, sizeof(strs));
    bad = fuzz_cmd_parse_result(m, body, strs, &outcome, &dumped);

    if (bad == NULL) {
        fuzz_assert(strs[2].len >= 1 && strs[2].len <= WH_CMD_ID_MAX);
        fuzz_assert(outcome == WH_CMD_COMPLETED || outcome == WH_CMD_FAILED);

        v = json_object_get(body, "result");

        if (v != NULL) {
            got = json_loadb(strs[6].data, strs[6].len,
                             JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            fuzz_assert(got != NULL && json_equal(got, v));
            json_decref(got);
        }

        v = json_object_get(body, "error");
        fuzz_assert((v == NULL) == (strs[7].data == NULL));
    }

    free(dumped);
    json_decref(body);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *text;
    size_t          len;
    wh_link_msg_t   m;

    if (size == 0) {
        return 0;
    }

    len = size - 1;
    text = malloc(len ? len : 1);
    fuzz_assert(text != NULL);
    memcpy(text, data + 1, len);

    memset(&m, 0, sizeof(m));
    m.workspace = (wh_str_t) { "demo", 4 };
    m.client_id = (wh_str_t) { "dev-1", 5 };
    m.body = (wh_str_t) { text, len };

    switch (data[0] & 3) {
    case 0:
        fuzz_publish(text, len);
        break;
    case 1:
        fuzz_clients(&m);
        break;
    case 2:
        fuzz_commands(&m);
        break;
    default:
        fuzz_result(&m);
        break;
    }

    free(text);

    return 0;
}
