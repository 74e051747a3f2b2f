/*
 * Source definitions (sourcedef.h): one JSON form for the three ways a
 * source is defined (a `source` line, as config.c turns it into JSON;
 * POST /api/sources; the stored record), checked in one place.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wh_channel.h"
#include "message.h"
#include "log.h"
#include "sourcedef.h"


#define WH_SOURCE_MAX_MESSAGE   (8u * 1024 * 1024)

static const char *const  wh_source_refs[] = { "event" };

/* the members a definition may have */
static const char *const  wh_source_keys[] = {
    "id", "url", "channel", "type", "event_field", "headers",
    "subprotocol", "cafile", "mqtt", "ping_ms", "reconnect_min_ms",
    "reconnect_max_ms", "handshake_timeout_ms", "max_message", "rate",
    NULL
};


static int
wh_sd_err(char *err, size_t errlen, const char *fmt, ...)
    WH_PRINTF(3, 4);

static int
wh_sd_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);

    return -1;
}


static int
wh_sd_id_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > WH_SOURCE_ID_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!isalnum((unsigned char) s[i]) && s[i] != '_' && s[i] != '-'
            && s[i] != '.')
        {
            return 0;
        }
    }

    return 1;
}


int
wh_source_event_valid(const char *s, size_t len)
{
    size_t  i;

    /* "." and ".." are no channel segment */
    if (len == 0 || len > WH_SOURCE_EVENT_MAX
        || (len <= 2 && strspn(s, ".") == len))
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!isalnum((unsigned char) s[i]) && s[i] != '_' && s[i] != '-'
            && s[i] != '.' && s[i] != ':')
        {
            return 0;
        }
    }

    return 1;
}


/* an HTTP token (RFC 9110 5.6.2) */
static int
wh_sd_token(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > 128) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!isalnum((unsigned char) s[i])
            && strchr("!#$%&'*+-.^_`|~", s[i]) == NULL)
        {
            return 0;
        }
    }

    return 1;
}


/* printable, tab allowed: nothing that ends a header line */
static int
wh_sd_field_value(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
        {
            return 0;
        }
    }

    return 1;
}


static int
wh_sd_strdup(char **dst, json_t *v, const char *key, char *err,
    size_t errlen)
{
    if (v == NULL) {
        return 0;
    }

    if (!json_is_string(v) || json_string_length(v) == 0
        || strlen(json_string_value(v)) != json_string_length(v))
    {
        return wh_sd_err(err, errlen, "\"%s\" must be a non-empty string",
                         key);
    }

    *dst = strdup(json_string_value(v));

    return *dst ? 0 : wh_sd_err(err, errlen, "out of memory");
}


static int
wh_sd_int(int64_t *dst, json_t *obj, const char *key, int64_t min,
    int64_t max, char *err, size_t errlen)
{
    json_t  *v = json_object_get(obj, key);

    if (v == NULL) {
        return 0;
    }

    if (!json_is_integer(v) || json_integer_value(v) < min
        || json_integer_value(v) > max)
    {
        return wh_sd_err(err, errlen, "\"%s\" must be an integer from "
                         "%lld to %lld", key, (long long) min,
                         (long long) max);
    }

    *dst = json_integer_value(v);

    return 0;
}


/* a template over {event}: what it renders with a sample event must be
 * a valid name (valid(s, len)) */
static int
wh_sd_tpl(wh_tpl_t *t, const char *text, const char *key,
    int (*valid)(const char *, size_t), char *err, size_t errlen)
{
    int        ok;
    wh_buf_t   b = { NULL, 0, 0 };
    wh_str_t   sample = { "event", 5 };
    char       msg[200];

    if (wh_tpl_parse(t, text, wh_source_refs, 1, msg, sizeof(msg)) != 0) {
        return wh_sd_err(err, errlen, "\"%s\": %s", key, msg);
    }

    if (wh_tpl_render(t, &sample, &b) != 0) {
        return wh_sd_err(err, errlen, "out of memory");
    }

    ok = valid((const char *) b.data, b.len);
    wh_buf_free(&b);

    return ok ? 0 : wh_sd_err(err, errlen, "\"%s\" does not make a valid "
                              "name: \"%s\"", key, text);
}


static int
wh_sd_channel_ok(const char *s, size_t len)
{
    return wh_channel_valid(s, len) && !wh_channel_is_system(s, len);
}


static int
wh_sd_topic_ok(const char *s, size_t len)
{
    return len > 0 && len < 65536 && memchr(s, '+', len) == NULL
           && memchr(s, '#', len) == NULL && memchr(s, '\0', len) == NULL;
}


static int
wh_sd_header(wh_source_header_t *h, const char *name, json_t *v,
    int files, char *err, size_t errlen)
{
    const char  *s, *at;
    size_t       len;

    if (!wh_sd_token(name, strlen(name))) {
        return wh_sd_err(err, errlen, "invalid header name \"%.64s\"",
                         name);
    }

    if (!json_is_string(v)) {
        return wh_sd_err(err, errlen, "header \"%s\": the value must be a "
                         "string", name);
    }

    s = json_string_value(v);
    len = json_string_length(v);

    if (len > WH_SOURCE_HEADER_MAX || strlen(s) != len
        || !wh_sd_field_value(s, len))
    {
        return wh_sd_err(err, errlen, "header \"%s\": the value must be at "
                         "most 4096 bytes without control characters",
                         name);
    }

    at = files ? strstr(s, "@/") : NULL;
    h->name = strdup(name);
    h->value = at ? strndup(s, at - s) : strdup(s);
    h->file = at ? strdup(at + 1) : NULL;

    if (h->name == NULL || h->value == NULL || (at && h->file == NULL)) {
        return wh_sd_err(err, errlen, "out of memory");
    }

    return 0;
}


static int
wh_sd_headers(wh_source_def_t *d, json_t *obj, int files, char *err,
    size_t errlen)
{
    json_t      *v, *hs = json_object_get(obj, "headers");
    const char  *name;

    if (hs == NULL) {
        return 0;
    }

    if (!json_is_object(hs) || json_object_size(hs) > WH_SOURCE_HEADERS_MAX)
    {
        return wh_sd_err(err, errlen, "\"headers\" must be an object of at "
                         "most %d names", WH_SOURCE_HEADERS_MAX);
    }

    d->headers = calloc(json_object_size(hs) + 1,
                        sizeof(wh_source_header_t));

    if (d->headers == NULL) {
        return wh_sd_err(err, errlen, "out of memory");
    }

    json_object_foreach(hs, name, v) {
        if (wh_sd_header(&d->headers[d->nheaders++], name, v, files, err,
                         errlen) != 0)
        {
            return -1;
        }
    }

    return 0;
}


static int
wh_sd_strings(wh_source_def_t *d, json_t *obj, char *err, size_t errlen)
{
    char        *channel = NULL, *type = NULL, *mqtt = NULL;
    int          rc;
    const char  *why;

    rc = wh_sd_strdup(&d->url, json_object_get(obj, "url"), "url", err,
                      errlen)
         || wh_sd_strdup(&d->event_field, json_object_get(obj,
                         "event_field"), "event_field", err, errlen)
         || wh_sd_strdup(&d->subprotocol, json_object_get(obj,
                         "subprotocol"), "subprotocol", err, errlen)
         || wh_sd_strdup(&d->cafile, json_object_get(obj, "cafile"),
                         "cafile", err, errlen)
         || wh_sd_strdup(&channel, json_object_get(obj, "channel"),
                         "channel", err, errlen)
         || wh_sd_strdup(&type, json_object_get(obj, "type"), "type", err,
                         errlen)
         || wh_sd_strdup(&mqtt, json_object_get(obj, "mqtt"), "mqtt", err,
                         errlen);

    if (rc == 0 && (d->url == NULL || channel == NULL)) {
        rc = wh_sd_err(err, errlen, "\"url\" and \"channel\" are "
                       "required");
    }

    if (rc == 0 && wh_url_parse(d->url, &d->parsed, &why) != 0) {
        rc = wh_sd_err(err, errlen, "\"url\": %s", why);
    }

    if (rc == 0 && d->subprotocol
        && !wh_sd_token(d->subprotocol, strlen(d->subprotocol)))
    {
        rc = wh_sd_err(err, errlen, "\"subprotocol\" must be a token");
    }

    if (rc == 0 && d->event_field == NULL
        && (d->event_field = strdup("event")) == NULL)
    {
        rc = wh_sd_err(err, errlen, "out of memory");
    }

    rc = rc ? rc
         : wh_sd_tpl(&d->channel, channel, "channel", wh_sd_channel_ok, err,
                     errlen)
           || wh_sd_tpl(&d->type, type ? type : "{event}", "type",
                        wh_message_type_valid, err, errlen)
           || (mqtt && wh_sd_tpl(&d->mqtt, mqtt, "mqtt", wh_sd_topic_ok,
                                 err, errlen));

    free(channel);
    free(type);
    free(mqtt);

    return rc ? -1 : 0;
}


static int
wh_sd_limits(wh_source_def_t *d, json_t *obj, char *err, size_t errlen)
{
    int64_t  max_message = 1024 * 1024, rate = 1000;

    d->ping_ms = 30000;
    d->reconnect_min_ms = 1000;
    d->reconnect_max_ms = 60000;
    d->handshake_ms = 10000;

    if (wh_sd_int(&d->ping_ms, obj, "ping_ms", 0, 3600000, err, errlen)
        || wh_sd_int(&d->reconnect_min_ms, obj, "reconnect_min_ms", 10,
                     3600000, err, errlen)
        || wh_sd_int(&d->reconnect_max_ms, obj, "reconnect_max_ms", 10,
                     86400000, err, errlen)
        || wh_sd_int(&d->handshake_ms, obj, "handshake_timeout_ms", 100,
                     600000, err, errlen)
        || wh_sd_int(&max_message, obj, "max_message", 16,
                     WH_SOURCE_MAX_MESSAGE, err, errlen)
        || wh_sd_int(&rate, obj, "rate", 1, 1000000, err, errlen))
    {
        return -1;
    }

    if (d->ping_ms != 0 && d->ping_ms < 100) {
        return wh_sd_err(err, errlen, "\"ping_ms\" must be 0 (off) or at "
                         "least 100");
    }

    if (d->reconnect_max_ms < d->reconnect_min_ms) {
        return wh_sd_err(err, errlen, "reconnect_max is below "
                         "reconnect_min");
    }

    d->max_message = (uint64_t) max_message;
    d->rate = (uint32_t) rate;

    return 0;
}


int
wh_source_def_json(wh_source_def_t *d, wh_str_t ws, json_t *obj, int files,
    char *err, size_t errlen)
{
    /* the broker is shared by every workspace: a topic is the
     * operator's to choose, not a tenant's */
    if (!files && json_object_get(obj, "mqtt") != NULL) {
        memset(d, 0, sizeof(wh_source_def_t));
        return wh_sd_err(err, errlen, "\"mqtt\" is for sources of "
                         "wirehubd.conf only");
    }

    size_t       i;
    json_t      *v;
    const char  *key;

    memset(d, 0, sizeof(wh_source_def_t));

    if (!json_is_object(obj)) {
        return wh_sd_err(err, errlen, "a source is a JSON object");
    }

    json_object_foreach(obj, key, v) {
        for (i = 0; wh_source_keys[i] && strcmp(wh_source_keys[i], key);
             i++)
        {
            /* void */
        }

        if (wh_source_keys[i] == NULL) {
            return wh_sd_err(err, errlen, "unknown member \"%.64s\"", key);
        }
    }

    v = json_object_get(obj, "id");

    if (!json_is_string(v)
        || !wh_sd_id_valid(json_string_value(v), json_string_length(v)))
    {
        return wh_sd_err(err, errlen, "\"id\" must be 1-64 of "
                         "[A-Za-z0-9_.-]");
    }

    if (!wh_workspace_valid(ws.data, ws.len)) {
        return wh_sd_err(err, errlen, "invalid workspace");
    }

    d->id = strdup(json_string_value(v));
    d->workspace = strndup(ws.data, ws.len);

    if (d->id == NULL || d->workspace == NULL) {
        return wh_sd_err(err, errlen, "out of memory");
    }

    if (wh_sd_strings(d, obj, err, errlen) != 0
        || wh_sd_headers(d, obj, files, err, errlen) != 0
        || wh_sd_limits(d, obj, err, errlen) != 0)
    {
        return -1;
    }

    return 0;
}


static int
wh_sd_set_str(json_t *obj, const char *key, const char *s)
{
    return s ? json_object_set_new(obj, key, json_string(s)) : 0;
}


json_t *
wh_source_def_to_json(const wh_source_def_t *d, int secrets)
{
    int       rc;
    json_t   *obj, *hs;
    unsigned  i;

    obj = json_object();
    hs = secrets ? json_object() : json_array();

    if (obj == NULL || hs == NULL) {
        json_decref(obj);
        json_decref(hs);
        return NULL;
    }

    /* a header from a file is shown, never stored: only configuration
     * sources have those, and they are not stored */
    for (rc = 0, i = 0; i < d->nheaders; i++) {
        rc |= secrets ? json_object_set_new(hs, d->headers[i].name,
                                            json_string(d->headers[i].value))
                      : json_array_append_new(hs,
                                              json_string(d->headers[i].name));
    }

    rc |= json_object_set_new(obj, "headers", hs);
    rc |= wh_sd_set_str(obj, "id", d->id);
    rc |= wh_sd_set_str(obj, "url", d->url);
    rc |= wh_sd_set_str(obj, "channel", d->channel.text);
    rc |= wh_sd_set_str(obj, "type", d->type.text);
    rc |= wh_sd_set_str(obj, "event_field", d->event_field);
    rc |= wh_sd_set_str(obj, "subprotocol", d->subprotocol);
    rc |= wh_sd_set_str(obj, "cafile", d->cafile);
    rc |= wh_sd_set_str(obj, "mqtt", d->mqtt.text);
    rc |= json_object_set_new(obj, "ping_ms", json_integer(d->ping_ms));
    rc |= json_object_set_new(obj, "reconnect_min_ms",
                              json_integer(d->reconnect_min_ms));
    rc |= json_object_set_new(obj, "reconnect_max_ms",
                              json_integer(d->reconnect_max_ms));
    rc |= json_object_set_new(obj, "handshake_timeout_ms",
                              json_integer(d->handshake_ms));
    rc |= json_object_set_new(obj, "max_message",
                              json_integer((json_int_t) d->max_message));
    rc |= json_object_set_new(obj, "rate", json_integer(d->rate));

    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }

    return obj;
}


void
wh_source_def_free(wh_source_def_t *d)
{
    unsigned  i;

    for (i = 0; i < d->nheaders; i++) {
        free(d->headers[i].name);

        if (d->headers[i].value) {
            memset(d->headers[i].value, 0, strlen(d->headers[i].value));
        }

        free(d->headers[i].value);
        free(d->headers[i].file);
    }

    free(d->headers);
    free(d->id);
    free(d->workspace);
    free(d->url);
    wh_url_free(&d->parsed);
    free(d->subprotocol);
    free(d->cafile);
    free(d->event_field);
    wh_tpl_free(&d->channel);
    wh_tpl_free(&d->type);
    wh_tpl_free(&d->mqtt);
    memset(d, 0, sizeof(wh_source_def_t));
}


/* the file's text without its trailing line break and blanks */
static int
wh_sd_read_file(const char *path, wh_buf_t *out, char *err, size_t errlen)
{
    int      fd;
    char     buf[WH_SOURCE_HEADER_MAX + 1];
    ssize_t  n;

    fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1) {
        return wh_sd_err(err, errlen, "cannot open header file \"%s\": %s",
                         path, strerror(errno));
    }

    n = read(fd, buf, sizeof(buf));
    close(fd);

    if (n < 0 || n > WH_SOURCE_HEADER_MAX) {
        return wh_sd_err(err, errlen, "cannot read header file \"%s\" (or "
                         "larger than 4096 bytes)", path);
    }

    while (n > 0 && isspace((unsigned char) buf[n - 1])) {
        n--;
    }

    if (!wh_sd_field_value(buf, (size_t) n)) {
        memset(buf, 0, sizeof(buf));
        return wh_sd_err(err, errlen, "header file \"%s\" holds control "
                         "characters", path);
    }

    n = wh_buf_append(out, buf, (size_t) n) == 0 ? 0 : -1;
    memset(buf, 0, sizeof(buf));

    return n == 0 ? 0 : wh_sd_err(err, errlen, "out of memory");
}


int
wh_source_def_headers(const wh_source_def_t *d, wh_buf_t *out, char *err,
    size_t errlen)
{
    unsigned                   i;
    const wh_source_header_t  *h;

    for (i = 0; i < d->nheaders; i++) {
        h = &d->headers[i];

        if (wh_buf_append(out, h->name, strlen(h->name)) != 0
            || wh_buf_append(out, ": ", 2) != 0
            || wh_buf_append(out, h->value, strlen(h->value)) != 0)
        {
            return wh_sd_err(err, errlen, "out of memory");
        }

        if (h->file && wh_sd_read_file(h->file, out, err, errlen) != 0) {
            return -1;
        }

        if (wh_buf_append(out, "\r\n", 2) != 0) {
            return wh_sd_err(err, errlen, "out of memory");
        }
    }

    return wh_buf_append(out, "", 1) == 0 ? 0
           : wh_sd_err(err, errlen, "out of memory");
}
