/*
 * The JSON writer.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "wh_time.h"
#include "message.h"
#include "jsonw.h"


/*
 * The comma before the next member or element, and its "key": a key of
 * the code is plain ASCII, written with the comma in one copy (a stored
 * command writes some 90 of them); any other goes through the quoting.
 */
static int
wh_jw_key(wh_buf_t *b, const char *key)
{
    size_t                len;
    unsigned char        *d, last;
    const unsigned char  *k = (const unsigned char *) key;
    int                   comma = 0;

    if (b->len > 0) {
        last = b->data[b->len - 1];
        comma = last != '{' && last != '[';
    }

    if (key == NULL) {
        return comma ? wh_buf_append(b, ",", 1) : 0;
    }

    for (len = 0; wh_json_plain[k[len]]; len++) {
        /* void */
    }

    if (k[len] != '\0') {
        if ((comma && wh_buf_append(b, ",", 1) != 0)
            || wh_json_quote(b, key, strlen(key)) != 0)
        {
            return -1;
        }

        return wh_buf_append(b, ":", 1);
    }

    if (wh_buf_reserve(b, len + 4) != 0) {
        return -1;
    }

    d = b->data + b->len;

    if (comma) {
        *d++ = ',';
    }

    *d++ = '"';
    memcpy(d, key, len);
    d += len;
    *d++ = '"';
    *d++ = ':';
    b->len = (size_t) (d - b->data);

    return 0;
}


int
wh_jw_open(wh_buf_t *b, const char *key, char bracket)
{
    if (b->len > 0 && wh_jw_key(b, key) != 0) {
        return -1;
    }

    return wh_buf_append(b, &bracket, 1);
}


int
wh_jw_close(wh_buf_t *b, char bracket)
{
    return wh_buf_append(b, &bracket, 1);
}


int
wh_jw_str(wh_buf_t *b, const char *key, const char *s, size_t len)
{
    if (wh_jw_key(b, key) != 0) {
        return -1;
    }

    return wh_json_quote(b, s, len);
}


int
wh_jw_cstr(wh_buf_t *b, const char *key, const char *s)
{
    return wh_jw_str(b, key, s, strlen(s));
}


int
wh_jw_raw(wh_buf_t *b, const char *key, const char *raw, size_t len)
{
    if (wh_jw_key(b, key) != 0) {
        return -1;
    }

    return wh_buf_append(b, raw, len);
}


int
wh_jw_int(wh_buf_t *b, const char *key, int64_t v)
{
    char      num[24], *p;
    uint64_t  u;

    /* by hand: snprintf() was most of the cost of a stored command */
    u = v < 0 ? -(uint64_t) v : (uint64_t) v;
    p = num + sizeof(num);

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (v < 0) {
        *--p = '-';
    }

    return wh_jw_raw(b, key, p, (size_t) (num + sizeof(num) - p));
}


int
wh_jw_bool(wh_buf_t *b, const char *key, int v)
{
    return v ? wh_jw_raw(b, key, "true", 4) : wh_jw_raw(b, key, "false", 5);
}


int
wh_jw_time(wh_buf_t *b, const char *key, int64_t ms)
{
    char  ts[WH_TIME_ISO_LEN + 1];

    if (ms == 0) {
        return wh_jw_raw(b, key, "null", 4);
    }

    wh_time_iso(ts, ms);

    return wh_jw_str(b, key, ts, WH_TIME_ISO_LEN);
}


int
wh_jw_issuer(wh_buf_t *b, const char *key, const char *by, size_t len)
{
    int          rc;
    const char  *colon;

    colon = len ? memchr(by, ':', len) : NULL;

    rc = wh_jw_open(b, key, '{');

    if (colon) {
        rc |= wh_jw_str(b, "sub", colon + 1, len - (colon + 1 - by));
    } else {
        rc |= wh_jw_raw(b, "sub", "null", 4);
    }

    rc |= wh_jw_str(b, "role", by, colon ? (size_t) (colon - by) : len);

    return rc | wh_jw_close(b, '}');
}
