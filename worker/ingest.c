/*
 * Ingest rules, topic matching, payload to `data`, rate coalescing.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wh_channel.h"
#include "wh_json_check.h"
#include "message.h"
#include "ingest.h"


#define WH_TPL_REF_MAX  32      /* bytes of a {name} */


static int
wh_ingest_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg);

    return -1;
}


/* the index of the reference named by [s, s + len), -1 if none */
static int
wh_tpl_ref(const char *s, size_t len, const char *const *names,
    unsigned nrefs)
{
    unsigned  i, n = 0;

    if (names != NULL) {
        for (i = 0; i < nrefs; i++) {
            if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
                return (int) i;
            }
        }

        return -1;
    }

    if (len == 0 || len > 2) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        n = n * 10 + (unsigned) (s[i] - '0');
    }

    return n >= 1 && n <= nrefs ? (int) n - 1 : -1;
}


static void
wh_tpl_add(wh_tpl_t *t, int ref, const char *s, size_t len)
{
    t->parts[t->nparts].ref = ref;
    t->parts[t->nparts].lit.data = s;
    t->parts[t->nparts].lit.len = len;
    t->nparts++;
}


int
wh_tpl_parse(wh_tpl_t *t, const char *text, const char *const *names,
    unsigned nrefs, char *err, size_t errlen)
{
    int          ref;
    char         name[WH_TPL_REF_MAX + 1];
    size_t       n, len;
    const char  *p, *lit, *close;

    memset(t, 0, sizeof(wh_tpl_t));
    len = strlen(text);

    /* at most a literal before and after every reference */
    for (n = 1, p = text; *p; p++) {
        n += *p == '{' ? 2 : 0;
    }

    t->text = strdup(text);
    t->parts = calloc(n, sizeof(wh_tpl_part_t));

    if (t->text == NULL || t->parts == NULL) {
        wh_tpl_free(t);
        return wh_ingest_err(err, errlen, "%s", "out of memory");
    }

    lit = t->text;

    for (p = t->text; *p; p++) {
        if (*p == '}') {
            wh_tpl_free(t);
            return wh_ingest_err(err, errlen, "unbalanced \"}\" in "
                                 "template \"%s\"", text);
        }

        if (*p != '{') {
            continue;
        }

        close = strchr(p, '}');

        if (close == NULL) {
            wh_tpl_free(t);
            return wh_ingest_err(err, errlen, "unbalanced \"{\" in "
                                 "template \"%s\"", text);
        }

        ref = wh_tpl_ref(p + 1, close - p - 1, names, nrefs);

        if (ref < 0) {
            n = (size_t) (close - p + 1) < sizeof(name)
                ? (size_t) (close - p + 1) : sizeof(name) - 1;
            memcpy(name, p, n);
            name[n] = '\0';
            wh_tpl_free(t);
            return wh_ingest_err(err, errlen, names
                                 ? "unknown field \"%s\" in template"
                                 : "\"%s\" names no wildcard of the "
                                   "topic filter", name);
        }

        if (p > lit) {
            wh_tpl_add(t, -1, lit, p - lit);
        }

        wh_tpl_add(t, ref, NULL, 0);
        p = close;
        lit = close + 1;
    }

    if (lit < t->text + len) {
        wh_tpl_add(t, -1, lit, t->text + len - lit);
    }

    return 0;
}


void
wh_tpl_free(wh_tpl_t *t)
{
    free(t->text);
    free(t->parts);
    memset(t, 0, sizeof(wh_tpl_t));
}


int
wh_tpl_render(const wh_tpl_t *t, const wh_str_t *vals, wh_buf_t *out)
{
    unsigned              i;
    const wh_tpl_part_t  *pt;

    for (i = 0; i < t->nparts; i++) {
        pt = &t->parts[i];

        if (wh_buf_append(out, pt->ref < 0 ? pt->lit.data
                                           : vals[pt->ref].data,
                          pt->ref < 0 ? pt->lit.len : vals[pt->ref].len)
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


int
wh_topic_filter_check(const char *filter)
{
    int          nwild = 0;
    size_t       len, flen;
    const char  *f, *fe;

    len = strlen(filter);

    if (len == 0 || len > WH_TOPIC_MAX || !wh_utf8_valid(filter, len)) {
        return -1;
    }

    for (f = filter; ; f = fe + 1) {
        fe = strchr(f, '/');
        fe = fe ? fe : f + strlen(f);
        flen = fe - f;

        if (flen == 1 && (*f == '+' || *f == '#')) {
            if (*f == '#' && *fe != '\0') {
                return -1;
            }

            nwild++;

        } else if (memchr(f, '+', flen) || memchr(f, '#', flen)) {
            return -1;
        }

        if (*fe == '\0') {
            break;
        }
    }

    return nwild;
}


int
wh_topic_match(const char *filter, const char *topic, size_t tlen,
    wh_str_t *caps, unsigned *ncaps)
{
    int          tdone = 0;
    size_t       flen;
    unsigned     n = 0;
    const char  *f, *fe, *t, *te, *tend;

    tend = topic + tlen;

    /* MQTT: wildcards at the first level never match "$SYS/..." */
    if (tlen && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) {
        return 0;
    }

    for (f = filter, t = topic; ; f = fe + 1) {
        fe = strchr(f, '/');
        fe = fe ? fe : f + strlen(f);
        flen = fe - f;

        if (flen == 1 && *f == '#') {
            /* the rest, or nothing: "a/#" matches "a" too */
            caps[n].data = tdone ? tend : t;
            caps[n].len = tdone ? 0 : (size_t) (tend - t);
            *ncaps = n + 1;
            return 1;
        }

        if (tdone) {
            return 0;
        }

        te = memchr(t, '/', tend - t);
        te = te ? te : tend;

        if (flen == 1 && *f == '+') {
            caps[n].data = t;
            caps[n].len = te - t;
            n++;

        } else if (flen != (size_t) (te - t) || memcmp(f, t, flen) != 0) {
            return 0;
        }

        if (te == tend) {
            tdone = 1;
        } else {
            t = te + 1;
        }

        if (*fe == '\0') {
            *ncaps = n;
            return tdone;
        }
    }
}


/* "10/s" or "30/m" -> interval ms */
static int
wh_ingest_rate(const char *v, int64_t *ms)
{
    char           *end;
    unsigned long   n;

    if (*v < '1' || *v > '9') {
        return -1;
    }

    errno = 0;
    n = strtoul(v, &end, 10);

    if (errno != 0 || n == 0 || n > 1000) {
        return -1;
    }

    if (strcmp(end, "/s") == 0) {
        *ms = 1000 / (int64_t) n;
    } else if (strcmp(end, "/m") == 0) {
        *ms = 60000 / (int64_t) n;
    } else {
        return -1;
    }

    return *ms > 0 ? 0 : -1;
}


/* "key=value": the value if arg starts with key= */
static const char *
wh_ingest_kv(const char *arg, const char *key)
{
    size_t  n = strlen(key);

    return strncmp(arg, key, n) == 0 && arg[n] == '=' ? arg + n + 1 : NULL;
}


/* the templates must render valid names for a plain capture value */
static int
wh_ingest_rule_sample(wh_ingest_rule_t *r, char *err, size_t errlen)
{
    int       ok;
    unsigned  i;
    wh_str_t  vals[WH_INGEST_MAX_CAPTURES];
    wh_buf_t  b = { 0 };

    for (i = 0; i < WH_INGEST_MAX_CAPTURES; i++) {
        vals[i].data = "x";
        vals[i].len = 1;
    }

    ok = wh_tpl_render(&r->workspace, vals, &b) == 0
         && wh_workspace_valid((const char *) b.data, b.len);
    b.len = 0;

    if (!ok) {
        wh_buf_free(&b);
        return wh_ingest_err(err, errlen, "workspace template \"%s\" "
                             "cannot give a valid workspace",
                             r->workspace.text);
    }

    ok = wh_tpl_render(&r->channel, vals, &b) == 0
         && wh_channel_valid((const char *) b.data, b.len)
         && !wh_channel_is_system((const char *) b.data, b.len);
    wh_buf_free(&b);

    if (!ok) {
        return wh_ingest_err(err, errlen, "channel template \"%s\" cannot "
                             "give a valid (non-system) channel",
                             r->channel.text);
    }

    return 0;
}


/* "sensors/+/data" with key={1} -> "sensor_id": the level before the
 * key's wildcard, without a plural "s", and "_id" */
static char *
wh_ingest_key_field(const wh_ingest_rule_t *r)
{
    int          ref, w = 0;
    char        *name;
    size_t       len;
    const char  *f, *fe, *prev = NULL, *prev_end = NULL;

    if (r->key.nparts != 1 || r->key.parts[0].ref < 0) {
        return strdup("key");
    }

    ref = r->key.parts[0].ref;

    for (f = r->filter; ; f = fe + 1) {
        fe = strchr(f, '/');
        fe = fe ? fe : f + strlen(f);

        if (fe - f == 1 && (*f == '+' || *f == '#')) {
            if (w++ == ref) {
                break;
            }

            prev = NULL;

        } else {
            prev = f;
            prev_end = fe;
        }

        if (*fe == '\0') {
            break;
        }
    }

    if (prev == NULL || prev_end - prev > 60) {
        return strdup("key");
    }

    len = prev_end - prev;

    if (len > 1 && prev[len - 1] == 's') {
        len--;
    }

    name = malloc(len + 4);

    if (name != NULL) {
        memcpy(name, prev, len);
        memcpy(name + len, "_id", 4);
    }

    return name;
}


static int
wh_ingest_rule_arg(wh_ingest_rule_t *r, const char *arg, char *err,
    size_t errlen)
{
    const char  *v;

    if ((v = wh_ingest_kv(arg, "workspace")) != NULL) {
        return r->workspace.text ? -2
               : wh_tpl_parse(&r->workspace, v, NULL, r->nwild, err,
                              errlen);
    }

    if ((v = wh_ingest_kv(arg, "channel")) != NULL) {
        return r->channel.text ? -2
               : wh_tpl_parse(&r->channel, v, NULL, r->nwild, err, errlen);
    }

    if ((v = wh_ingest_kv(arg, "key")) != NULL) {
        return r->key.text ? -2
               : wh_tpl_parse(&r->key, v, NULL, r->nwild, err, errlen);
    }

    if ((v = wh_ingest_kv(arg, "type")) != NULL) {
        if (r->type) {
            return -2;
        }

        if (!wh_message_type_valid(v, strlen(v))) {
            return wh_ingest_err(err, errlen, "invalid message type "
                                 "\"%s\"", v);
        }

        r->type = strdup(v);
        return r->type ? 0 : wh_ingest_err(err, errlen, "%s",
                                           "out of memory");
    }

    if ((v = wh_ingest_kv(arg, "key_field")) != NULL) {
        if (r->key_field) {
            return -2;
        }

        if (*v == '\0' || strlen(v) > 64 || !wh_utf8_valid(v, strlen(v))) {
            return wh_ingest_err(err, errlen, "invalid key_field \"%s\"",
                                 v);
        }

        /* a payload that is not an object goes in "value" beside it */
        if (strcmp(v, "value") == 0) {
            return wh_ingest_err(err, errlen, "%s", "key_field=value "
                                 "would clash with the \"value\" of a "
                                 "payload that is not an object");
        }

        r->key_field = strdup(v);
        return r->key_field ? 0 : wh_ingest_err(err, errlen, "%s",
                                                "out of memory");
    }

    if ((v = wh_ingest_kv(arg, "rate")) != NULL) {
        if (r->rate_ms) {
            return -2;
        }

        if (wh_ingest_rate(v, &r->rate_ms) != 0) {
            return wh_ingest_err(err, errlen, "invalid rate \"%s\" "
                                 "(N/s or N/m, N from 1 to 1000)", v);
        }

        return 0;
    }

    return wh_ingest_err(err, errlen, "unknown ingest parameter \"%s\"",
                         arg);
}


int
wh_ingest_rule_parse(wh_ingest_rule_t *r, char *const *args, int nargs,
    char *err, size_t errlen)
{
    int  i, rc, nwild;

    memset(r, 0, sizeof(wh_ingest_rule_t));

    if (nargs < 1 || strchr(args[0], '=') != NULL) {
        return wh_ingest_err(err, errlen, "%s", "\"ingest\" needs a topic "
                             "filter first");
    }

    nwild = wh_topic_filter_check(args[0]);

    if (nwild < 0 || nwild > WH_INGEST_MAX_CAPTURES) {
        return wh_ingest_err(err, errlen, "invalid topic filter \"%s\"",
                             args[0]);
    }

    r->nwild = (unsigned) nwild;
    r->filter = strdup(args[0]);

    if (r->filter == NULL) {
        return wh_ingest_err(err, errlen, "%s", "out of memory");
    }

    for (i = 1; i < nargs; i++) {
        rc = wh_ingest_rule_arg(r, args[i], err, errlen);

        if (rc == -2) {
            wh_ingest_err(err, errlen, "duplicate ingest parameter \"%s\"",
                          args[i]);
        }

        if (rc != 0) {
            wh_ingest_rule_free(r);
            return -1;
        }
    }

    if (r->workspace.text == NULL || r->channel.text == NULL
        || r->type == NULL)
    {
        wh_ingest_rule_free(r);
        return wh_ingest_err(err, errlen, "%s", "\"ingest\" needs "
                             "workspace=, channel= and type=");
    }

    if (r->key_field != NULL && r->key.text == NULL) {
        wh_ingest_rule_free(r);
        return wh_ingest_err(err, errlen, "%s", "key_field= needs key=");
    }

    if (wh_ingest_rule_sample(r, err, errlen) != 0) {
        wh_ingest_rule_free(r);
        return -1;
    }

    if (r->key.text != NULL && r->key_field == NULL) {
        r->key_field = wh_ingest_key_field(r);

        if (r->key_field == NULL) {
            wh_ingest_rule_free(r);
            return wh_ingest_err(err, errlen, "%s", "out of memory");
        }
    }

    return 0;
}


void
wh_ingest_rule_free(wh_ingest_rule_t *r)
{
    free(r->filter);
    wh_tpl_free(&r->workspace);
    wh_tpl_free(&r->channel);
    wh_tpl_free(&r->key);
    free(r->type);
    free(r->key_field);
    memset(r, 0, sizeof(wh_ingest_rule_t));
}


/* no key= : the workspace and the channel, which "/" separates safely
 * as a workspace has no "/" */
static int
wh_ingest_default_key(wh_buf_t *b, size_t ws_len, size_t ch_len)
{
    /* the copies read from b itself: no realloc in between */
    if (wh_buf_reserve(b, ws_len + 1 + ch_len) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, b->data, ws_len);
    b->data[b->len + ws_len] = '/';
    memcpy(b->data + b->len + ws_len + 1, b->data + ws_len, ch_len);
    b->len += ws_len + 1 + ch_len;

    return 0;
}


static wh_route_rc_e
wh_ingest_render(const wh_ingest_rule_t *r, const wh_str_t *caps,
    wh_ingest_route_t *route)
{
    size_t           ws_len, ch_len;
    const char      *p;

    route->buf.len = 0;

    if (wh_tpl_render(&r->workspace, caps, &route->buf) != 0) {
        return WH_ROUTE_NOMEM;
    }

    ws_len = route->buf.len;

    if (wh_tpl_render(&r->channel, caps, &route->buf) != 0) {
        return WH_ROUTE_NOMEM;
    }

    ch_len = route->buf.len - ws_len;

    if (r->key.text ? wh_tpl_render(&r->key, caps, &route->buf) != 0
                    : wh_ingest_default_key(&route->buf, ws_len, ch_len)
                      != 0)
    {
        return WH_ROUTE_NOMEM;
    }

    /* every part may have rendered empty: no buffer was allocated then */
    p = route->buf.data ? (const char *) route->buf.data : "";
    route->ws.data = p;
    route->ws.len = ws_len;
    route->ch.data = p + ws_len;
    route->ch.len = ch_len;
    route->key.data = p + ws_len + ch_len;
    route->key.len = route->buf.len - ws_len - ch_len;

    if (!wh_workspace_valid(route->ws.data, route->ws.len)
        || !wh_channel_valid(route->ch.data, route->ch.len)
        || wh_channel_is_system(route->ch.data, route->ch.len)
        || route->key.len > WH_INGEST_KEY_MAX
        || !wh_utf8_valid(route->key.data, route->key.len))
    {
        return WH_ROUTE_BAD_NAME;
    }

    return WH_ROUTE_OK;
}


wh_route_rc_e
wh_ingest_route(const wh_ingest_rule_t *rules, unsigned nrules,
    const char *topic, size_t tlen, wh_ingest_route_t *route)
{
    unsigned  i, ncaps;
    wh_str_t  caps[WH_INGEST_MAX_CAPTURES];

    for (i = 0; i < nrules; i++) {
        if (wh_topic_match(rules[i].filter, topic, tlen, caps, &ncaps)) {
            route->rule = i;
            return wh_ingest_render(&rules[i], caps, route);
        }
    }

    return WH_ROUTE_NO_RULE;
}


/* 1 if the member key as written (escapes included) is name */
static int
wh_ingest_key_is(wh_str_t raw, const char *name)
{
    int            eq;
    json_t        *j;
    size_t         len = strlen(name);
    wh_buf_t       b = { 0 };
    json_error_t   e;

    if (memchr(raw.data, '\\', raw.len) == NULL) {
        return raw.len == len && memcmp(raw.data, name, len) == 0;
    }

    if (wh_buf_append(&b, "\"", 1) != 0
        || wh_buf_append(&b, raw.data, raw.len) != 0
        || wh_buf_append(&b, "\"", 1) != 0)
    {
        wh_buf_free(&b);
        return 0;
    }

    j = json_loadb((const char *) b.data, b.len,
                   JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    wh_buf_free(&b);

    eq = j != NULL && json_string_length(j) == len
         && memcmp(json_string_value(j), name, len) == 0;
    json_decref(j);

    return eq;
}


/* the members of obj but the one named key_field */
static int
wh_ingest_members(wh_buf_t *out, wh_str_t obj, const char *key_field)
{
    wh_str_t     k, v;
    const char  *pos = obj.data, *end = obj.data + obj.len;

    while (wh_json_next_member(&pos, end, &k, &v)) {
        if (wh_ingest_key_is(k, key_field)) {
            continue;
        }

        if (wh_buf_append(out, ",\"", 2) != 0
            || wh_buf_append(out, k.data, k.len) != 0
            || wh_buf_append(out, "\":", 2) != 0
            || wh_buf_append(out, v.data, v.len) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* 1 if payload is JSON with no duplicate member names anywhere (what
 * jansson's JSON_REJECT_DUPLICATES takes), without building it */
static int
wh_ingest_json(const char *payload, size_t len)
{
    int            rc;
    json_t        *root;
    json_error_t   e;

    if (!wh_json_check(payload, len)) {
        return 0;
    }

    rc = wh_json_unique(payload, len);

    if (rc >= 0) {
        return rc;
    }

    root = json_loadb(payload, len, JSON_DECODE_ANY | JSON_ALLOW_NUL
                                    | JSON_REJECT_DUPLICATES, &e);
    json_decref(root);

    return root != NULL;
}


int
wh_ingest_data(wh_buf_t *out, const char *payload, size_t len,
    const char *key_field, wh_str_t key)
{
    int       rc;
    wh_str_t  text;

    if (!wh_ingest_json(payload, len)) {
        return -1;
    }

    text = wh_json_trim(payload, len);

    if (key_field == NULL) {
        return wh_buf_append(out, text.data, text.len) == 0 ? 0 : -2;
    }

    rc = wh_buf_append(out, "{", 1) != 0
         || wh_json_quote(out, key_field, strlen(key_field)) != 0
         || wh_buf_append(out, ":", 1) != 0
         || wh_json_quote(out, key.data, key.len) != 0;

    if (rc == 0 && text.data[0] != '{') {
        rc = wh_buf_append(out, ",\"value\":", 9) != 0
             || wh_buf_append(out, text.data, text.len) != 0;

    } else if (rc == 0) {
        rc = wh_ingest_members(out, text, key_field);
    }

    if (rc != 0 || wh_buf_append(out, "}", 1) != 0) {
        return -2;
    }

    return 0;
}


/* ---------------------------------------------------------------- rate */

struct wh_rate_item_s {
    wh_rate_item_t  *next;          /* in its rule's FIFO */
    unsigned         rule;
    int              pending;       /* value holds a pending value */
    int64_t          window_end;
    size_t           ws_len, ch_len;
    wh_buf_t         value;         /* ws, channel, data back to back */
    wh_str_t         mkey;          /* the map key, in the map entry */
};


int
wh_rate_init(wh_rate_t *r, const int64_t *intervals, unsigned nrules,
    size_t max_keys)
{
    unsigned  i;

    memset(r, 0, sizeof(wh_rate_t));

    r->fifos = calloc(nrules ? nrules : 1, sizeof(wh_rate_fifo_t));

    if (r->fifos == NULL) {
        return -1;
    }

    for (i = 0; i < nrules; i++) {
        r->fifos[i].tail = &r->fifos[i].head;
        r->fifos[i].interval = intervals[i];
    }

    r->nrules = nrules;
    r->max_keys = max_keys;

    return 0;
}


static void
wh_rate_item_free(wh_rate_item_t *it)
{
    wh_buf_free(&it->value);
    free(it);
}


void
wh_rate_free(wh_rate_t *r)
{
    unsigned         i;
    wh_rate_item_t  *it, *next;

    for (i = 0; i < r->nrules; i++) {
        for (it = r->fifos[i].head; it != NULL; it = next) {
            next = it->next;
            wh_rate_item_free(it);
        }
    }

    wh_map_free(&r->keys);
    free(r->fifos);
    memset(r, 0, sizeof(wh_rate_t));
}


static size_t
wh_rate_key(unsigned char *buf, unsigned rule, wh_str_t key)
{
    uint32_t  r = rule;

    memcpy(buf, &r, sizeof(r));
    memcpy(buf + sizeof(r), key.data, key.len);

    return sizeof(r) + key.len;
}


static int
wh_rate_hold(wh_rate_item_t *it, wh_str_t ws, wh_str_t ch, wh_str_t data)
{
    it->value.len = 0;

    if (wh_buf_append(&it->value, ws.data, ws.len) != 0
        || wh_buf_append(&it->value, ch.data, ch.len) != 0
        || wh_buf_append(&it->value, data.data, data.len) != 0)
    {
        return -1;
    }

    it->ws_len = ws.len;
    it->ch_len = ch.len;
    it->pending = 1;

    return 0;
}


static void
wh_rate_push(wh_rate_fifo_t *f, wh_rate_item_t *it, int64_t now)
{
    it->window_end = now + f->interval;
    it->next = NULL;
    *f->tail = it;
    f->tail = &it->next;
}


/* a new window for the key: the value goes out now */
static wh_rate_rc_e
wh_rate_open(wh_rate_t *r, unsigned rule, const unsigned char *mkey,
    size_t mklen, int64_t now)
{
    wh_rate_item_t  *it;
    wh_map_entry_t  *e;

    if (r->keys.count >= r->max_keys) {
        return WH_RATE_SEND;
    }

    it = calloc(1, sizeof(wh_rate_item_t));

    if (it == NULL) {
        return WH_RATE_SEND;
    }

    e = wh_map_put(&r->keys, mkey, mklen, it);

    if (e == NULL) {
        free(it);
        return WH_RATE_SEND;
    }

    it->rule = rule;
    it->mkey.data = (const char *) e->key;
    it->mkey.len = e->klen;
    wh_rate_push(&r->fifos[rule], it, now);

    return WH_RATE_SEND;
}


wh_rate_rc_e
wh_rate_offer(wh_rate_t *r, unsigned rule, wh_str_t key, int64_t now,
    wh_str_t ws, wh_str_t ch, wh_str_t data)
{
    size_t           mklen;
    wh_rate_item_t  *it;
    unsigned char    mkey[4 + WH_INGEST_KEY_MAX];

    if (rule >= r->nrules || r->fifos[rule].interval <= 0
        || key.len > WH_INGEST_KEY_MAX)
    {
        return WH_RATE_SEND;
    }

    mklen = wh_rate_key(mkey, rule, key);
    it = wh_map_get(&r->keys, mkey, mklen);

    if (it == NULL) {
        return wh_rate_open(r, rule, mkey, mklen, now);
    }

    /* in the window: this value replaces the pending one */
    r->coalesced += it->pending;

    if (wh_rate_hold(it, ws, ch, data) != 0) {
        /* no memory to hold it: it goes out now and supersedes the
         * older pending value */
        it->pending = 0;
        return WH_RATE_SEND;
    }

    return WH_RATE_HELD;
}


static void
wh_rate_emit(wh_rate_item_t *it, unsigned rule, wh_rate_emit_pt emit,
    void *ctx)
{
    wh_str_t  ws, ch, data;

    ws.data = (const char *) it->value.data;
    ws.len = it->ws_len;
    ch.data = ws.data + it->ws_len;
    ch.len = it->ch_len;
    data.data = ch.data + it->ch_len;
    data.len = it->value.len - it->ws_len - it->ch_len;
    it->pending = 0;

    emit(ctx, rule, ws, ch, data);
}


void
wh_rate_due(wh_rate_t *r, int64_t now, wh_rate_emit_pt emit, void *ctx)
{
    unsigned         i;
    wh_rate_fifo_t  *f;
    wh_rate_item_t  *it;

    for (i = 0; i < r->nrules; i++) {
        f = &r->fifos[i];

        while (f->head != NULL && f->head->window_end <= now) {
            it = f->head;
            f->head = it->next;

            if (f->head == NULL) {
                f->tail = &f->head;
            }

            if (!it->pending) {
                /* a quiet window: forget the key */
                wh_map_del(&r->keys, it->mkey.data, it->mkey.len);
                wh_rate_item_free(it);
                continue;
            }

            /* the trailing edge opens the next window */
            wh_rate_push(f, it, now);
            wh_rate_emit(it, i, emit, ctx);
        }
    }
}


void
wh_rate_flush(wh_rate_t *r, wh_rate_emit_pt emit, void *ctx)
{
    unsigned         i;
    wh_rate_item_t  *it;

    for (i = 0; i < r->nrules; i++) {
        for (it = r->fifos[i].head; it != NULL; it = it->next) {
            if (it->pending) {
                wh_rate_emit(it, i, emit, ctx);
            }
        }
    }
}


size_t
wh_rate_active(const wh_rate_t *r)
{
    return r->keys.count;
}
