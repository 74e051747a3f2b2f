/*
 * Wirehub: the bounds of a member's value in valid JSON text.
 */

#include <string.h>

#include "wh_json.h"


/* the longest member name compared after unescaping */
#define WH_JSON_KEY_MAX  64


static int
wh_json_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


static const char *
wh_json_ws(const char *p, const char *end)
{
    while (p < end && wh_json_is_space(*p)) {
        p++;
    }

    return p;
}


/* p at the opening quote; returns past the closing one, or NULL */
static const char *
wh_json_string_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }

        if (*p == '"') {
            return p + 1;
        }
    }

    return NULL;
}


static const char *
wh_json_value_end(const char *p, const char *end)
{
    int  depth;

    if (p >= end) {
        return NULL;
    }

    if (*p == '"') {
        return wh_json_string_end(p, end);
    }

    if (*p == '{' || *p == '[') {
        depth = 0;

        while (p < end) {
            if (*p == '"') {
                p = wh_json_string_end(p, end);
                if (p == NULL) {
                    return NULL;
                }
                continue;
            }

            if (*p == '{' || *p == '[') {
                depth++;

            } else if (*p == '}' || *p == ']') {
                if (--depth == 0) {
                    return p + 1;
                }
            }

            p++;
        }

        return NULL;
    }

    /* a number, true, false or null */

    while (p < end && *p != ',' && *p != '}' && *p != ']'
           && !wh_json_is_space(*p))
    {
        p++;
    }

    return p;
}


static int
wh_json_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* the character a two-byte escape stands for */
static char
wh_json_unescape(char c)
{
    switch (c) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return c;       /* " \\ / */
    }
}


/*
 * Whether the raw name (between its quotes) is key once unescaped.  A key
 * is ASCII, so a \uXXXX beyond it never matches.
 */

static int
wh_json_name_is(const char *raw, size_t len, const char *key)
{
    int          h, cp;
    size_t       i, n, klen;

    klen = strlen(key);

    if (memchr(raw, '\\', len) == NULL) {
        return len == klen && memcmp(raw, key, len) == 0;
    }

    n = 0;

    for (i = 0; i < len; n++) {
        if (n >= klen || n >= WH_JSON_KEY_MAX) {
            return 0;
        }

        if (raw[i] != '\\') {
            if (raw[i] != key[n]) {
                return 0;
            }

            i++;
            continue;
        }

        if (i + 1 >= len) {
            return 0;
        }

        if (raw[i + 1] != 'u') {
            if (wh_json_unescape(raw[i + 1]) != key[n]) {
                return 0;
            }

            i += 2;
            continue;
        }

        if (i + 6 > len) {
            return 0;
        }

        cp = 0;

        for (h = 0; h < 4; h++) {
            if (wh_json_hex(raw[i + 2 + h]) < 0) {
                return 0;
            }

            cp = cp * 16 + wh_json_hex(raw[i + 2 + h]);
        }

        if (cp != (unsigned char) key[n]) {
            return 0;
        }

        i += 6;
    }

    return n == klen;
}


int
wh_json_member(const char *text, size_t len, const char *key,
    wh_str_t *value)
{
    const char  *p, *end, *name, *name_end, *v, *v_end;

    p = text;
    end = text + len;

    p = wh_json_ws(p, end);

    if (p >= end || *p != '{') {
        return 0;
    }

    p = wh_json_ws(p + 1, end);

    if (p < end && *p == '}') {
        return 0;
    }

    while (p < end && *p == '"') {
        name = p + 1;
        name_end = wh_json_string_end(p, end);

        if (name_end == NULL) {
            return 0;
        }

        p = wh_json_ws(name_end, end);

        if (p >= end || *p != ':') {
            return 0;
        }

        v = wh_json_ws(p + 1, end);
        v_end = wh_json_value_end(v, end);

        if (v_end == NULL) {
            return 0;
        }

        if (wh_json_name_is(name, (size_t) (name_end - 1 - name), key)) {
            value->data = v;
            value->len = (size_t) (v_end - v);
            return 1;
        }

        p = wh_json_ws(v_end, end);

        if (p < end && *p == ',') {
            p = wh_json_ws(p + 1, end);
            continue;
        }

        return 0;
    }

    return 0;
}


int
wh_json_next_member(const char **pos, const char *end, wh_str_t *key,
    wh_str_t *value)
{
    const char  *p, *k, *v, *v_end;

    p = wh_json_ws(*pos, end);

    /* the opening brace, or the comma after the previous member */

    if (p == end || (*p != '{' && *p != ',')) {
        goto done;
    }

    p = wh_json_ws(p + 1, end);

    if (p == end || *p != '"') {
        goto done;
    }

    k = p + 1;
    p = wh_json_string_end(p, end);

    if (p == NULL) {
        goto done;
    }

    key->data = k;
    key->len = (size_t) (p - 1 - k);
    p = wh_json_ws(p, end);

    if (p == end || *p != ':') {
        goto done;
    }

    v = wh_json_ws(p + 1, end);
    v_end = wh_json_value_end(v, end);

    if (v_end == NULL) {
        goto done;
    }

    value->data = v;
    value->len = (size_t) (v_end - v);
    *pos = v_end;

    return 1;

done:

    *pos = end;

    return 0;
}


static int
wh_json_unique_in(wh_str_t v, unsigned depth)
{
    int          rc;
    unsigned     i, n = 0;
    wh_str_t     k, val, keys[WH_JSON_UNIQUE_MEMBERS];
    const char  *pos = v.data, *end = v.data + v.len;

    if (v.len == 0 || memchr(v.data, '{', v.len) == NULL) {
        return 1;
    }

    if (v.data[0] != '{' || depth == WH_JSON_UNIQUE_DEPTH) {
        return -1;
    }

    while (wh_json_next_member(&pos, end, &k, &val)) {
        if (n == WH_JSON_UNIQUE_MEMBERS
            || memchr(k.data, '\\', k.len) != NULL)
        {
            return -1;
        }

        for (i = 0; i < n; i++) {
            if (keys[i].len == k.len
                && memcmp(keys[i].data, k.data, k.len) == 0)
            {
                return 0;
            }
        }

        keys[n++] = k;
        rc = wh_json_unique_in(val, depth + 1);

        if (rc != 1) {
            return rc;
        }
    }

    return 1;
}


int
wh_json_unique(const char *text, size_t len)
{
    return wh_json_unique_in(wh_json_trim(text, len), 0);
}


wh_str_t
wh_json_trim(const char *s, size_t len)
{
    wh_str_t  r;

    while (len && wh_json_is_space(s[0])) {
        s++;
        len--;
    }

    while (len && wh_json_is_space(s[len - 1])) {
        len--;
    }

    r.data = s;
    r.len = len;

    return r;
}


int
wh_json_plain_string(wh_str_t v, wh_str_t *s)
{
    if (v.len < 2 || v.data[0] != '"' || v.data[v.len - 1] != '"'
        || memchr(v.data + 1, '\\', v.len - 2) != NULL)
    {
        return 0;
    }

    s->data = v.data + 1;
    s->len = v.len - 2;

    return 1;
}


int
wh_json_members(const char *text, size_t len, const char *const *names,
    wh_str_t *values, size_t n)
{
    size_t       i;
    wh_str_t     key, v, rest;
    const char  *pos, *end, *last;

    memset(values, 0, n * sizeof(wh_str_t));

    pos = text;
    end = text + len;

    for (last = pos; wh_json_next_member(&pos, end, &key, &v); last = pos) {

        if (memchr(key.data, '\\', key.len) != NULL) {
            return 0;
        }

        for (i = 0; i < n; i++) {
            if (strlen(names[i]) == key.len
                && memcmp(names[i], key.data, key.len) == 0)
            {
                values[i] = v;
                break;
            }
        }
    }

    /* the scan stops at the close or at what it cannot read (jansson
     * lets a NUL byte follow a number): only the close will do */
    rest = wh_json_trim(last, (size_t) (end - last));

    return rest.len == 1 && rest.data[0] == '}';
}
