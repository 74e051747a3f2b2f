/*
 * JSON text helpers: quoting, errors, the message envelope.  The text a
 * message carries is checked by wh_json_check() and kept as it came
 * (numbers are not reformatted, e.g. 45.2 stays 45.2).
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "wh_time.h"
#include "wh_utf8.h"
#include "message.h"


#define WH_JP16  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1

const unsigned char  wh_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,         /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,         /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,         /* ' ' '"' */
    WH_JP16, WH_JP16,                                       /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,         /* '\\' */
    WH_JP16, WH_JP16                                        /* to 0x7f */
    /* 0x80 and above: 0, UTF-8 to check */
};


int
wh_json_quote(wh_buf_t *out, const char *s, size_t len)
{
    char                  esc[8];
    size_t                i, start;
    unsigned char        *d;
    const unsigned char  *p = (const unsigned char *) s;

    /* most strings (ids, names, times) are ASCII with nothing to escape:
     * checked and copied in one pass */
    for (i = 0; i < len && wh_json_plain[p[i]]; i++) {
        /* void */
    }

    if (i == len) {
        if (wh_buf_reserve(out, len + 2) != 0) {
            return -1;
        }

        d = out->data + out->len;
        d[0] = '"';
        memcpy(d + 1, s, len);
        d[len + 1] = '"';
        out->len += len + 2;

        return 0;
    }

    /* the plain run before i is ASCII: UTF-8 is checked from i on, and
     * the escapes looked for from i on */
    if (!wh_utf8_valid(s + i, len - i) || wh_buf_append(out, "\"", 1) != 0)
    {
        return -1;
    }

    /* runs without a byte to escape (multibyte characters included) are
     * copied whole */

    for (start = 0; i < len; i++) {

        if (p[i] != '"' && p[i] != '\\' && p[i] >= 0x20) {
            continue;
        }

        if (p[i] < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", p[i]);

        } else {
            esc[0] = '\\';
            esc[1] = (char) p[i];
        }

        if (wh_buf_append(out, p + start, i - start) != 0
            || wh_buf_append(out, esc, p[i] < 0x20 ? 6 : 2) != 0)
        {
            return -1;
        }

        start = i + 1;
    }

    if (wh_buf_append(out, p + start, len - start) != 0) {
        return -1;
    }

    return wh_buf_append(out, "\"", 1);
}


int
wh_json_error(wh_buf_t *out, const char *code, const char *message)
{
    if (wh_buf_append(out, "{\"error\":{\"code\":", 17) != 0
        || wh_json_quote(out, code, strlen(code)) != 0
        || wh_buf_append(out, ",\"message\":", 11) != 0
        || wh_json_quote(out, message, strlen(message)) != 0)
    {
        return -1;
    }

    return wh_buf_append(out, "}}", 2);
}


int
wh_message_type_valid(const char *s, size_t len)
{
    size_t                i;
    const unsigned char  *p = (const unsigned char *) s;

    if (len == 0 || len > WH_TYPE_MAX) {
        return 0;
    }

    if (!wh_utf8_valid(s, len)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


int
wh_message_build(wh_buf_t *out, wh_str_t type, wh_str_t channel,
    uint64_t id, const char *epoch, wh_str_t data, int64_t time_ms)
{
    int     n;
    char    num[64], ts[WH_TIME_ISO_LEN + 1];

    if (type.len == 0) {
        type.data = "message";
        type.len = 7;
    }

    n = snprintf(num, sizeof(num), ",\"id\":%" PRIu64 ",\"epoch\":\"", id);
    wh_time_iso(ts, time_ms);

    if (wh_buf_reserve(out, type.len * 6 + channel.len + data.len + 128)
        != 0
        || wh_buf_append(out, "{\"type\":", 8) != 0
        || wh_json_quote(out, type.data, type.len) != 0
        || wh_buf_append(out, ",\"channel\":\"", 12) != 0
        || wh_buf_append(out, channel.data, channel.len) != 0
        || wh_buf_append(out, "\"", 1) != 0
        || wh_buf_append(out, num, n) != 0
        || wh_buf_append(out, epoch, strlen(epoch)) != 0
        || wh_buf_append(out, "\",\"data\":", 9) != 0
        || wh_buf_append(out, data.data, data.len) != 0
        || wh_buf_append(out, ",\"timestamp\":\"", 14) != 0
        || wh_buf_append(out, ts, WH_TIME_ISO_LEN) != 0)
    {
        return -1;
    }

    return wh_buf_append(out, "\"}", 2);
}
