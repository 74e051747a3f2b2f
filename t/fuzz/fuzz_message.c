/*
 * libFuzzer target of what the module does with a client's JSON message
 * before its dispatcher (ngx_http_wirehub_messages.c, which needs nginx):
 * jansson loads it with JSON_REJECT_DUPLICATES, "ref" and "type" are
 * read, publish forwards the raw bytes of "data" (wh_json_member), and
 * channel names and patterns are checked and matched (common/wh_channel.c).
 *
 *   - for an object, wh_json_member() of "data", "ref", "type", "channel"
 *     and "event" finds (unless the key is escaped) the bytes of the value
 *     jansson holds; any text, JSON or not, is scanned without a fault;
 *   - "channel" and each string of "channels" are judged by
 *     wh_channel_valid() and wh_pattern_valid() as a plain reference of
 *     the grammar judges them, and every pattern of "channels" is matched
 *     against every name there, as the reference matches;
 *   - the first two lines of the raw input are also taken as a pattern
 *     and a name, each in a buffer of its exact size;
 *   - the scan the module reads a plain command_result with, in place of
 *     jansson (wh_json_members() of "type", "ref", "command_id" and
 *     "status", then wh_json_check_strict()),
 *     takes only what jansson takes, and finds the values it holds.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wh_channel.h"
#include "wh_json.h"
#include "wh_json_check.h"


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                         \
        }                                                                    \
    } while (0)


#define FUZZ_MAX_LEVELS  (WH_CHANNEL_MAX + 1)
#define FUZZ_MAX_NAMES   8


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


typedef struct {
    const char  *p;
    size_t       len;
} fuzz_level_t;


static size_t
fuzz_levels(const char *s, size_t len, fuzz_level_t *lv)
{
    size_t  n = 0, i, start = 0;

    for (i = 0; i <= len; i++) {
        if (i == len || s[i] == '/') {
            lv[n].p = s + start;
            lv[n].len = i - start;
            n++;
            start = i + 1;
        }
    }

    return n;
}


static int
fuzz_is(const fuzz_level_t *l, const char *s)
{
    return l->len == strlen(s) && memcmp(l->p, s, l->len) == 0;
}


/* the grammar of wh_channel.h, written plainly */
static int
fuzz_valid(const char *s, size_t len, int pattern)
{
    size_t        n, i, k;
    unsigned char c;
    fuzz_level_t  lv[FUZZ_MAX_LEVELS];

    if (len == 0 || len > WH_CHANNEL_MAX) {
        return 0;
    }

    if ((len == 9 && memcmp(s, "$presence", 9) == 0)
        || (len == 9 && memcmp(s, "$commands", 9) == 0)
        || (len == 6 && memcmp(s, "$stats", 6) == 0)
        || (len == 8 && memcmp(s, "$sources", 8) == 0))
    {
        return 1;
    }

    n = fuzz_levels(s, len, lv);

    for (i = 0; i < n; i++) {
        if (pattern && (fuzz_is(&lv[i], "+")
                        || (i + 1 == n && fuzz_is(&lv[i], "#"))))
        {
            continue;
        }

        if (lv[i].len == 0 || fuzz_is(&lv[i], ".") || fuzz_is(&lv[i], ".."))
        {
            return 0;
        }

        for (k = 0; k < lv[i].len; k++) {
            c = (unsigned char) lv[i].p[k];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '_' || c == '-'
                  || c == '.' || c == ':'))
            {
                return 0;
            }
        }
    }

    return 1;
}


static int
fuzz_match(const char *pat, size_t plen, const char *name, size_t nlen)
{
    size_t        np, nn, i;
    fuzz_level_t  p[FUZZ_MAX_LEVELS], n[FUZZ_MAX_LEVELS];

    if (!fuzz_valid(pat, plen, 1) || !fuzz_valid(name, nlen, 0)) {
        return 0;
    }

    if (pat[0] == '$' || name[0] == '$') {
        return plen == nlen && memcmp(pat, name, plen) == 0;
    }

    np = fuzz_levels(pat, plen, p);
    nn = fuzz_levels(name, nlen, n);

    for (i = 0; i < np; i++) {
        if (fuzz_is(&p[i], "#")) {
            return 1;
        }

        if (i >= nn) {
            return 0;
        }

        if (!fuzz_is(&p[i], "+")
            && (p[i].len != n[i].len
                || memcmp(p[i].p, n[i].p, n[i].len) != 0))
        {
            return 0;
        }
    }

    return nn == np;
}


static void
fuzz_name(const char *s, size_t len)
{
    char  *copy;

    copy = malloc(len ? len : 1);
    fuzz_assert(copy != NULL);
    memcpy(copy, s, len);

    fuzz_assert(wh_channel_valid(copy, len) == fuzz_valid(copy, len, 0));
    fuzz_assert(wh_pattern_valid(copy, len) == fuzz_valid(copy, len, 1));

    if (wh_channel_valid(copy, len)) {
        fuzz_assert(wh_pattern_valid(copy, len));
        fuzz_assert(wh_pattern_match(copy, len, copy, len));
    }

    free(copy);
}


static void
fuzz_pair(const char *pat, size_t plen, const char *name, size_t nlen)
{
    int    rc;
    char  *p, *n;

    p = malloc(plen ? plen : 1);
    n = malloc(nlen ? nlen : 1);
    fuzz_assert(p != NULL && n != NULL);
    memcpy(p, pat, plen);
    memcpy(n, name, nlen);

    rc = wh_pattern_match(p, plen, n, nlen);
    fuzz_assert(rc == fuzz_match(p, plen, n, nlen));

    free(p);
    free(n);
}


static void
fuzz_raw(const char *text, size_t len, json_t *msg, const char *key)
{
    int       found;
    json_t   *v, *got;
    wh_str_t  raw;

    v = json_object_get(msg, key);
    found = wh_json_member(text, len, key, &raw);

    if (v == NULL) {
        fuzz_assert(!found);
        return;
    }

    fuzz_assert(found || memchr(text, '\\', len) != NULL);

    if (found) {
        fuzz_assert(raw.data >= text && raw.data + raw.len <= text + len);
        got = json_loadb(raw.data, raw.len, JSON_DECODE_ANY, NULL);
        fuzz_assert(got != NULL && json_equal(got, v));
        json_decref(got);
    }
}


/* what the module's plain path takes, jansson takes, with these values */
static void
fuzz_plain(const char *text, size_t len, json_t *msg)
{
    size_t                    i;
    json_t                   *got;
    wh_str_t                  v[4];
    static const char *const  names[] = { "type", "ref", "command_id",
                                          "status" };

    if (!wh_json_members(text, len, names, v, 4)
        || !wh_json_check_strict(text, len))
    {
        return;
    }

    fuzz_assert(msg != NULL && json_is_object(msg));

    for (i = 0; i < 4; i++) {
        if (v[i].len == 0) {
            fuzz_assert(json_object_get(msg, names[i]) == NULL);
            continue;
        }

        fuzz_assert(v[i].data >= text && v[i].data + v[i].len <= text + len);
        got = json_loadb(v[i].data, v[i].len, JSON_DECODE_ANY, NULL);
        fuzz_assert(got != NULL
                    && json_equal(got, json_object_get(msg, names[i])));
        json_decref(got);
    }
}


static void
fuzz_message(const char *text, size_t len)
{
    size_t       i, j, n;
    json_t      *msg, *v, *list;
    wh_str_t     raw, names[FUZZ_MAX_NAMES];

    msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);

    fuzz_plain(text, len, msg);

    if (msg == NULL || !json_is_object(msg)) {
        (void) wh_json_member(text, len, "data", &raw);
        (void) wh_json_member(text, len, "type", &raw);
        json_decref(msg);
        return;
    }

    fuzz_raw(text, len, msg, "data");
    fuzz_raw(text, len, msg, "ref");
    fuzz_raw(text, len, msg, "type");
    fuzz_raw(text, len, msg, "channel");
    fuzz_raw(text, len, msg, "event");

    v = json_object_get(msg, "channel");

    if (json_is_string(v)) {
        fuzz_name(json_string_value(v), json_string_length(v));
    }

    list = json_object_get(msg, "channels");
    n = 0;

    if (json_is_array(list)) {
        json_array_foreach(list, i, v) {
            if (!json_is_string(v) || n == FUZZ_MAX_NAMES) {
                continue;
            }

            names[n].data = json_string_value(v);
            names[n].len = json_string_length(v);
            fuzz_name(names[n].data, names[n].len);
            n++;
        }
    }

    for (i = 0; i < n; i++) {
        for (j = 0; j < n; j++) {
            fuzz_pair(names[i].data, names[i].len, names[j].data,
                      names[j].len);
        }
    }

    json_decref(msg);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        *text;
    const char  *s = (const char *) data, *nl1, *nl2;

    text = malloc(size ? size : 1);
    fuzz_assert(text != NULL);
    memcpy(text, data, size);
    fuzz_message(text, size);
    free(text);

    nl1 = memchr(s, '\n', size);

    if (nl1 != NULL) {
        nl2 = memchr(nl1 + 1, '\n', s + size - nl1 - 1);
        nl2 = nl2 ? nl2 : s + size;

        fuzz_name(s, nl1 - s);
        fuzz_name(nl1 + 1, nl2 - nl1 - 1);
        fuzz_pair(s, nl1 - s, nl1 + 1, nl2 - nl1 - 1);
    }

    return 0;
}
