/*
 * Egress topics and payloads.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_time.h"
#include "message.h"
#include "egress.h"


static const char *const  wh_egress_fields[WH_EGRESS_NFIELDS] = {
    "workspace", "client", "type"
};


static int
wh_egress_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg);

    return -1;
}


/* literal parts of a topic name: no wildcard, UTF-8 */
static int
wh_egress_check_template(const wh_tpl_t *t, char *err, size_t errlen)
{
    int        workspace = 0;
    unsigned   i;
    wh_str_t   lit;

    for (i = 0; i < t->nparts; i++) {
        if (t->parts[i].ref == WH_EGRESS_WORKSPACE) {
            workspace = 1;
        }

        if (t->parts[i].ref >= 0) {
            continue;
        }

        lit = t->parts[i].lit;

        if (memchr(lit.data, '+', lit.len) || memchr(lit.data, '#', lit.len)
            || !wh_utf8_valid(lit.data, lit.len))
        {
            return wh_egress_err(err, errlen, "egress template \"%s\" is "
                                 "not a topic name (no + or #)", t->text);
        }
    }

    if (t->text[0] == '$') {
        return wh_egress_err(err, errlen, "egress template \"%s\" starts "
                             "with \"$\" (reserved topics)", t->text);
    }

    /* the workspace keeps tenants' topics apart */
    if (!workspace) {
        return wh_egress_err(err, errlen, "egress template \"%s\" has no "
                             "{workspace}", t->text);
    }

    return 0;
}


static int
wh_egress_arg(wh_egress_conf_t *e, const char *arg, char *err,
    size_t errlen)
{
    char           *end;
    unsigned long   n;

    if (strcmp(arg, "qos=0") == 0 || strcmp(arg, "qos=1") == 0) {
        e->qos = arg[4] - '0';
        return 0;
    }

    if (strncmp(arg, "max_queue=", 10) == 0) {
        errno = 0;
        n = strtoul(arg + 10, &end, 10);

        if (arg[10] < '1' || arg[10] > '9' || errno != 0 || *end != '\0'
            || n > 1000000)
        {
            return wh_egress_err(err, errlen, "invalid max_queue \"%s\" "
                                 "(1 to 1000000)", arg + 10);
        }

        e->max_queue = (unsigned) n;
        return 0;
    }

    return wh_egress_err(err, errlen, "unknown egress parameter \"%s\"",
                         arg);
}


int
wh_egress_parse(wh_egress_conf_t *e, char *const *args, int nargs,
    char *err, size_t errlen)
{
    int  i;

    memset(e, 0, sizeof(wh_egress_conf_t));
    e->qos = 1;
    e->max_queue = WH_EGRESS_MAX_QUEUE;

    if (nargs < 1 || strchr(args[0], '=') != NULL) {
        return wh_egress_err(err, errlen, "%s", "\"egress\" needs a topic "
                             "template first");
    }

    if (wh_tpl_parse(&e->topic, args[0], wh_egress_fields,
                     WH_EGRESS_NFIELDS, err, errlen) != 0)
    {
        return -1;
    }

    if (wh_egress_check_template(&e->topic, err, errlen) != 0) {
        wh_egress_free(e);
        return -1;
    }

    for (i = 1; i < nargs; i++) {
        if (wh_egress_arg(e, args[i], err, errlen) != 0) {
            wh_egress_free(e);
            return -1;
        }
    }

    return 0;
}


void
wh_egress_free(wh_egress_conf_t *e)
{
    wh_tpl_free(&e->topic);
    memset(e, 0, sizeof(wh_egress_conf_t));
}


/* a field fills exactly one topic level */
static int
wh_egress_field_ok(wh_str_t v)
{
    return v.len > 0 && memchr(v.data, '+', v.len) == NULL
           && memchr(v.data, '#', v.len) == NULL
           && memchr(v.data, '/', v.len) == NULL
           && memchr(v.data, '\0', v.len) == NULL;
}


int
wh_egress_topic(const wh_tpl_t *t, wh_str_t ws, wh_str_t client,
    wh_str_t type, wh_buf_t *out, const char **why)
{
    size_t    start = out->len, len;
    wh_str_t  vals[WH_EGRESS_NFIELDS];

    vals[WH_EGRESS_WORKSPACE] = ws;
    vals[WH_EGRESS_CLIENT] = client;
    vals[WH_EGRESS_TYPE] = type;

    if (!wh_egress_field_ok(ws)) {
        *why = "invalid workspace field";
        return -1;
    }

    if (!wh_egress_field_ok(client)) {
        *why = "client id is empty or holds '+', '#', '/' or NUL";
        return -1;
    }

    if (!wh_egress_field_ok(type)) {
        *why = "event type is empty or holds '+', '#', '/' or NUL";
        return -1;
    }

    if (wh_tpl_render(t, vals, out) != 0) {
        return -2;
    }

    len = out->len - start;

    if (len > WH_TOPIC_MAX
        || !wh_utf8_valid((const char *) out->data + start, len)
        || out->data[start] == '$')
    {
        out->len = start;
        *why = "the topic would be invalid (too long, not UTF-8 or "
               "starting with '$')";
        return -1;
    }

    if (wh_buf_append(out, "", 1) != 0) {
        out->len = start;
        return -2;
    }

    return 0;
}


int
wh_egress_payload(wh_buf_t *out, wh_str_t type, wh_str_t ws,
    wh_str_t client, wh_str_t session, wh_str_t body, int64_t time_ms)
{
    char  ts[WH_TIME_ISO_LEN + 1];

    wh_time_iso(ts, time_ms);

    if (wh_buf_append(out, "{\"type\":", 8) != 0
        || wh_json_quote(out, type.data, type.len) != 0
        || wh_buf_append(out, ",\"workspace\":", 13) != 0
        || wh_json_quote(out, ws.data, ws.len) != 0
        || wh_buf_append(out, ",\"client_id\":", 13) != 0
        || wh_json_quote(out, client.data, client.len) != 0
        || wh_buf_append(out, ",\"session\":", 11) != 0
        || wh_json_quote(out, session.data, session.len) != 0
        || wh_buf_append(out, ",\"message\":", 11) != 0
        || wh_buf_append(out, body.data, body.len) != 0
        || wh_buf_append(out, ",\"timestamp\":\"", 14) != 0
        || wh_buf_append(out, ts, WH_TIME_ISO_LEN) != 0)
    {
        return -1;
    }

    return wh_buf_append(out, "\"}", 2);
}
