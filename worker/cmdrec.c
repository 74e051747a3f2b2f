/*
 * A stored command record read without jansson (cmdrec.h).
 */

#include <string.h>

#include "cmdrec.h"


#define WH_CMDREC_DIGITS  18        /* more could overflow int64 */

typedef struct {
    const char   *p, *end;
    char         *out;              /* next free byte of the scratch */
} wh_cmdrec_scan_t;

/* a scanned value */
typedef struct {
    int        kind;                /* '"', '0' or '[' */
    wh_str_t   str;
    int64_t    num;
} wh_cmdrec_val_t;


const char  *wh_cmdrec_str_keys[WH_CMDREC_STRS] = {
    "client", "command", "payload", "idem", "result", "error", "reason",
    "lane", "supersede", "issued_by", "job"
};

const char  *wh_cmdrec_int_keys[WH_CMDREC_INTS] = {
    "priority", "seq", "status", "attempt", "expires", "deadline",
    "created", "updated", "not_before", "jidx"
};

static const char  *wh_cmdrec_event_str_keys[] = { "session", "reason" };
static const char  *wh_cmdrec_event_int_keys[] = {
    "status", "at", "attempt"
};


/* the next byte that is not JSON white space; -1 at the end */
static int
wh_cmdrec_peek(wh_cmdrec_scan_t *s)
{
    while (s->p < s->end
           && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n'
               || *s->p == '\r'))
    {
        s->p++;
    }

    return s->p < s->end ? (unsigned char) *s->p : -1;
}


static int
wh_cmdrec_expect(wh_cmdrec_scan_t *s, char c)
{
    if (wh_cmdrec_peek(s) != (unsigned char) c) {
        return -1;
    }

    s->p++;

    return 0;
}


static int
wh_cmdrec_hex4(const char *p, unsigned *v)
{
    int  i, d;

    *v = 0;

    for (i = 0; i < 4; i++) {
        d = p[i];

        if (d >= '0' && d <= '9') {
            d -= '0';
        } else if (d >= 'a' && d <= 'f') {
            d -= 'a' - 10;
        } else if (d >= 'A' && d <= 'F') {
            d -= 'A' - 10;
        } else {
            return -1;
        }

        *v = *v << 4 | (unsigned) d;
    }

    return 0;
}


/* \uXXXX (and its low surrogate) at s->p, after the backslash and the
 * u, written out as UTF-8; NUL and lone surrogates are refused, as
 * jansson refuses them */
static int
wh_cmdrec_unicode(wh_cmdrec_scan_t *s)
{
    unsigned   c, lo;
    char      *o = s->out;

    if (s->end - s->p < 4 || wh_cmdrec_hex4(s->p, &c) != 0) {
        return -1;
    }

    s->p += 4;

    if (c >= 0xdc00 && c <= 0xdfff) {
        return -1;
    }

    if (c >= 0xd800 && c <= 0xdbff) {
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u'
            || wh_cmdrec_hex4(s->p + 2, &lo) != 0
            || lo < 0xdc00 || lo > 0xdfff)
        {
            return -1;
        }

        s->p += 6;
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
    }

    if (c == 0) {
        return -1;
    }

    if (c < 0x80) {
        *o++ = (char) c;
    } else if (c < 0x800) {
        *o++ = (char) (0xc0 | c >> 6);
        *o++ = (char) (0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        *o++ = (char) (0xe0 | c >> 12);
        *o++ = (char) (0x80 | (c >> 6 & 0x3f));
        *o++ = (char) (0x80 | (c & 0x3f));
    } else {
        *o++ = (char) (0xf0 | c >> 18);
        *o++ = (char) (0x80 | (c >> 12 & 0x3f));
        *o++ = (char) (0x80 | (c >> 6 & 0x3f));
        *o++ = (char) (0x80 | (c & 0x3f));
    }

    s->out = o;

    return 0;
}


/* a string at s->p (its opening quote): into the text when it has no
 * escape, else unescaped into the scratch */
static int
wh_cmdrec_string(wh_cmdrec_scan_t *s, wh_str_t *out)
{
    const char  *start, *q;

    if (wh_cmdrec_expect(s, '"') != 0) {
        return -1;
    }

    start = s->p;

    for (q = start; q < s->end && *q != '"' && *q != '\\'; q++) {
        if ((unsigned char) *q < 0x20) {
            return -1;
        }
    }

    if (q == s->end) {
        return -1;
    }

    if (*q == '"') {
        out->data = start;
        out->len = (size_t) (q - start);
        s->p = q + 1;
        return 0;
    }

    /* escapes: the whole string goes to the scratch */
    out->data = s->out;
    memcpy(s->out, start, (size_t) (q - start));
    s->out += q - start;
    s->p = q;

    while (s->p < s->end && *s->p != '"') {

        if ((unsigned char) *s->p < 0x20) {
            return -1;
        }

        if (*s->p != '\\') {
            *s->out++ = *s->p++;
            continue;
        }

        if (s->end - s->p < 2) {
            return -1;
        }

        s->p += 2;

        switch (s->p[-1]) {
        case '"':  *s->out++ = '"';  break;
        case '\\': *s->out++ = '\\'; break;
        case '/':  *s->out++ = '/';  break;
        case 'b':  *s->out++ = '\b'; break;
        case 'f':  *s->out++ = '\f'; break;
        case 'n':  *s->out++ = '\n'; break;
        case 'r':  *s->out++ = '\r'; break;
        case 't':  *s->out++ = '\t'; break;

        case 'u':
            if (wh_cmdrec_unicode(s) != 0) {
                return -1;
            }
            break;

        default:
            return -1;
        }
    }

    if (s->p == s->end) {
        return -1;
    }

    s->p++;
    out->len = (size_t) (s->out - out->data);

    return 0;
}


/* a plain integer; a fraction, an exponent or a leading zero is left
 * to jansson */
static int
wh_cmdrec_int(wh_cmdrec_scan_t *s, int64_t *v)
{
    int       neg = 0, n = 0;
    int64_t   x = 0;

    if (s->p < s->end && *s->p == '-') {
        neg = 1;
        s->p++;
    }

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        if (n == WH_CMDREC_DIGITS || (n == 1 && x == 0)) {
            return -1;
        }

        x = x * 10 + (*s->p++ - '0');
        n++;
    }

    if (n == 0
        || (s->p < s->end
            && (*s->p == '.' || *s->p == 'e' || *s->p == 'E')))
    {
        return -1;
    }

    *v = neg ? -x : x;

    return 0;
}


/* a string or an integer; '[' is left at s->p for the caller */
static int
wh_cmdrec_value(wh_cmdrec_scan_t *s, wh_cmdrec_val_t *v)
{
    int  c;

    c = wh_cmdrec_peek(s);
    v->kind = c == '"' ? '"' : c == '[' ? '[' : '0';

    if (c == '"') {
        return wh_cmdrec_string(s, &v->str);
    }

    return c == '[' ? 0 : wh_cmdrec_int(s, &v->num);
}


static int
wh_cmdrec_find(const char **keys, size_t n, wh_str_t key)
{
    size_t  i;

    /* the first byte sorts out most names before a strlen() */
    for (i = 0; i < n; i++) {
        if ((key.len == 0 || keys[i][0] == key.data[0])
            && strlen(keys[i]) == key.len
            && memcmp(keys[i], key.data, key.len) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}


/* a member's value where the record keeps it: a string read where an
 * integer belongs is 0, an integer where a string belongs is "", as
 * jansson's readers of the record see them */
static void
wh_cmdrec_set(const wh_cmdrec_val_t *v, int si, wh_str_t *strs, int ii,
    int64_t *ints)
{
    wh_str_t  none = { "", 0 };

    if (si >= 0) {
        strs[si] = v->kind == '"' ? v->str : none;
    }

    if (ii >= 0) {
        ints[ii] = v->kind == '0' ? v->num : 0;
    }
}


/* the members of one object, s->p at its "{": into strs and ints, by
 * the keys named; hist: "history" is read into rec (else refused) */
static int
wh_cmdrec_object(wh_cmdrec_scan_t *s, const char **skeys, size_t ns,
    wh_str_t *strs, const char **ikeys, size_t ni, int64_t *ints,
    wh_cmdrec_t *rec);


static int
wh_cmdrec_history(wh_cmdrec_scan_t *s, wh_cmdrec_t *rec)
{
    wh_cmdrec_event_t  *ev;
    wh_str_t            strs[2];
    int64_t             ints[3];

    rec->nhistory = 0;
    s->p++;

    if (wh_cmdrec_peek(s) == ']') {
        s->p++;
        return 0;
    }

    for ( ;; ) {
        if (rec->nhistory == WH_CMD_HISTORY_MAX) {
            return -1;
        }

        memset(strs, 0, sizeof(strs));
        memset(ints, 0, sizeof(ints));
        strs[0].data = "";
        strs[1].data = "";

        if (wh_cmdrec_object(s, wh_cmdrec_event_str_keys, 2, strs,
                             wh_cmdrec_event_int_keys, 3, ints, NULL)
            != 0)
        {
            return -1;
        }

        ev = &rec->history[rec->nhistory++];
        ev->status = ints[0];
        ev->at = ints[1];
        ev->attempt = ints[2];
        ev->session = strs[0];
        ev->reason = strs[1];

        switch (wh_cmdrec_peek(s)) {
        case ',':
            s->p++;
            break;
        case ']':
            s->p++;
            return 0;
        default:
            return -1;
        }
    }
}


static int
wh_cmdrec_object(wh_cmdrec_scan_t *s, const char **skeys, size_t ns,
    wh_str_t *strs, const char **ikeys, size_t ni, int64_t *ints,
    wh_cmdrec_t *rec)
{
    int               si, ii, hist;
    wh_str_t          key;
    wh_cmdrec_val_t   v;

    if (wh_cmdrec_expect(s, '{') != 0) {
        return -1;
    }

    if (wh_cmdrec_peek(s) == '}') {
        s->p++;
        return 0;
    }

    for ( ;; ) {
        if (wh_cmdrec_string(s, &key) != 0
            || wh_cmdrec_expect(s, ':') != 0
            || wh_cmdrec_value(s, &v) != 0)
        {
            return -1;
        }

        hist = rec != NULL && key.len == 7
               && memcmp(key.data, "history", 7) == 0;

        if (v.kind == '[') {
            if (!hist || wh_cmdrec_history(s, rec) != 0) {
                return -1;
            }

        } else if (hist) {
            /* not an array: no history, as json_array_size() says */
            rec->nhistory = 0;
        }

        si = wh_cmdrec_find(skeys, ns, key);
        ii = wh_cmdrec_find(ikeys, ni, key);

        if (v.kind != '[') {
            wh_cmdrec_set(&v, si, strs, ii, ints);
        }

        if (rec != NULL && si == WH_CMDREC_CLIENT) {
            rec->has_client = v.kind == '"';
        }

        switch (wh_cmdrec_peek(s)) {
        case ',':
            s->p++;
            break;
        case '}':
            s->p++;
            return 0;
        default:
            return -1;
        }
    }
}


/* the whole text, one object: the named members into strs and ints
 * (absent ones "" and 0), and with rec its history */
static int
wh_cmdrec_text(const char *text, size_t len, const char **skeys, size_t ns,
    wh_str_t *strs, const char **ikeys, size_t ni, int64_t *ints,
    wh_cmdrec_t *rec, char *scratch)
{
    size_t            i;
    wh_cmdrec_scan_t  s;

    for (i = 0; i < ns; i++) {
        strs[i].data = "";
        strs[i].len = 0;
    }

    memset(ints, 0, ni * sizeof(int64_t));

    s.p = text;
    s.end = text + len;
    s.out = scratch;

    if (wh_cmdrec_object(&s, skeys, ns, strs, ikeys, ni, ints, rec) != 0
        || wh_cmdrec_peek(&s) != -1)
    {
        return WH_CMDREC_OTHER;
    }

    return 0;
}


int
wh_cmdrec_scan(const char *text, size_t len, wh_cmdrec_t *rec,
    char *scratch)
{
    rec->has_client = 0;
    rec->nhistory = 0;

    return wh_cmdrec_text(text, len, wh_cmdrec_str_keys, WH_CMDREC_STRS,
                          rec->strs, wh_cmdrec_int_keys, WH_CMDREC_INTS,
                          rec->ints, rec, scratch);
}


int
wh_cmdrec_scan_flat(const char *text, size_t len, const char **skeys,
    size_t ns, wh_str_t *strs, const char **ikeys, size_t ni, int64_t *ints,
    char *scratch)
{
    return wh_cmdrec_text(text, len, skeys, ns, strs, ikeys, ni, ints, NULL,
                          scratch);
}
