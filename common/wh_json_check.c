/*
 * Wirehub: whether text is JSON (wh_json_check.h), in one pass with a
 * stack of one bit per open container.
 */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wh_utf8.h"
#include "wh_json_check.h"


/* a real without an exponent and with fewer integer digits cannot
 * overflow a double (DBL_MAX is about 1.8e308) */
#define WH_JC_SAFE_DIGITS  300
/* a real copied for strtod() on the stack up to this length */
#define WH_JC_REAL_BUF     128


typedef enum {
    WH_JC_VALUE = 0,            /* a value is due */
    WH_JC_KEY,                  /* an object's key is due */
    WH_JC_NEXT                  /* after a value: ',', a close or the end */
} wh_jc_state_e;

typedef struct {
    const unsigned char  *p, *end;
    size_t                depth;                /* containers open */
    unsigned char         object[WH_JSON_MAX_DEPTH / 8];
} wh_jc_t;


static void
wh_jc_ws(wh_jc_t *c)
{
    while (c->p < c->end
           && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n'
               || *c->p == '\r'))
    {
        c->p++;
    }
}


static int
wh_jc_digit(wh_jc_t *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}


static void
wh_jc_digits(wh_jc_t *c)
{
    while (wh_jc_digit(c)) {
        c->p++;
    }
}


static int
wh_jc_hex4(const unsigned char *p, unsigned *v)
{
    int  i;

    *v = 0;

    for (i = 0; i < 4; i++) {
        *v <<= 4;

        if (p[i] >= '0' && p[i] <= '9') {
            *v |= p[i] - '0';

        } else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f') {
            *v |= (p[i] | 0x20) - 'a' + 10;

        } else {
            return -1;
        }
    }

    return 0;
}


/* \uXXXX at p (past the backslash): a surrogate only as a pair, no NUL in
 * a key; returns past it, or NULL */
static const unsigned char *
wh_jc_unicode(const unsigned char *p, const unsigned char *end, int key)
{
    unsigned  u, low;

    if (end - p < 5 || wh_jc_hex4(p + 1, &u) != 0) {
        return NULL;
    }

    p += 5;

    if ((u == 0 && key) || (u >= 0xdc00 && u <= 0xdfff)) {
        return NULL;
    }

    if (u < 0xd800 || u > 0xdbff) {
        return p;
    }

    if (end - p < 6 || p[0] != '\\' || p[1] != 'u'
        || wh_jc_hex4(p + 2, &low) != 0 || low < 0xdc00 || low > 0xdfff)
    {
        return NULL;
    }

    return p + 6;
}


/* a string, at its opening quote (the text's UTF-8 is checked already) */
static int
wh_jc_string(wh_jc_t *c, int key)
{
    const unsigned char  *p;

    for (p = c->p + 1; p < c->end; /* void */) {

        if (*p == '"') {
            c->p = p + 1;
            return 0;
        }

        if (*p < 0x20) {
            return -1;
        }

        if (*p != '\\') {
            p++;
            continue;
        }

        if (++p == c->end) {
            return -1;
        }

        if (*p == 'u') {
            p = wh_jc_unicode(p, c->end, key);

            if (p == NULL) {
                return -1;
            }

            continue;
        }

        if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
            return -1;
        }

        p++;
    }

    return -1;
}


/* an integer's digits (no sign, no leading zero) within int64 */
static int
wh_jc_int_fits(const unsigned char *digits, size_t n, int negative)
{
    if (n != 19) {
        return n < 19;
    }

    return memcmp(digits, negative ? "9223372036854775808"
                                   : "9223372036854775807", 19) <= 0;
}


/* a real that strtod() does not overflow, as jansson asks */
static int
wh_jc_real_fits(const unsigned char *s, size_t len)
{
    int     fits;
    char    buf[WH_JC_REAL_BUF], *copy;
    double  d;

    copy = len < sizeof(buf) ? buf : malloc(len + 1);

    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, s, len);
    copy[len] = '\0';

    errno = 0;
    d = strtod(copy, NULL);
    fits = !((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE);

    if (copy != buf) {
        free(copy);
    }

    return fits;
}


static int
wh_jc_number(wh_jc_t *c)
{
    int                   negative, exponent = 0, real = 0;
    size_t                n;
    const unsigned char  *start, *digits;

    start = c->p;
    negative = *c->p == '-';
    c->p += negative;
    digits = c->p;

    if (!wh_jc_digit(c)) {
        return -1;
    }

    if (*c->p == '0') {
        c->p++;

        if (wh_jc_digit(c)) {
            return -1;
        }

    } else {
        wh_jc_digits(c);
    }

    n = (size_t) (c->p - digits);

    if (c->p < c->end && *c->p == '.') {
        c->p++;

        if (!wh_jc_digit(c)) {
            return -1;
        }

        wh_jc_digits(c);
        real = 1;
    }

    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;

        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) {
            c->p++;
        }

        if (!wh_jc_digit(c)) {
            return -1;
        }

        wh_jc_digits(c);
        real = exponent = 1;
    }

    if (!real) {
        return wh_jc_int_fits(digits, n, negative) ? 0 : -1;
    }

    if (!exponent && n < WH_JC_SAFE_DIGITS) {
        return 0;
    }

    return wh_jc_real_fits(start, (size_t) (c->p - start)) ? 0 : -1;
}


static int
wh_jc_literal(wh_jc_t *c, const char *word, size_t len)
{
    if ((size_t) (c->end - c->p) < len || memcmp(c->p, word, len) != 0) {
        return -1;
    }

    c->p += len;

    return 0;
}


static int
wh_jc_scalar(wh_jc_t *c)
{
    switch (*c->p) {

    case '"':
        return wh_jc_string(c, 0);

    case 't':
        return wh_jc_literal(c, "true", 4);

    case 'f':
        return wh_jc_literal(c, "false", 5);

    case 'n':
        return wh_jc_literal(c, "null", 4);

    default:
        return *c->p == '-' || (*c->p >= '0' && *c->p <= '9')
               ? wh_jc_number(c) : -1;
    }
}


static void
wh_jc_open(wh_jc_t *c, int object)
{
    unsigned char  bit = (unsigned char) (1u << (c->depth % 8));

    if (object) {
        c->object[c->depth / 8] |= bit;
    } else {
        c->object[c->depth / 8] &= (unsigned char) ~bit;
    }

    c->depth++;
    c->p++;
}


static int
wh_jc_in_object(const wh_jc_t *c)
{
    size_t  top = c->depth - 1;

    return (c->object[top / 8] >> (top % 8)) & 1;
}


/* a value is due: a container opens (or closes at once), a scalar ends */
static wh_jc_state_e
wh_jc_value(wh_jc_t *c, int *failed)
{
    wh_jc_ws(c);

    /* jansson counts every value a level, the scalars too */
    if (c->p == c->end || c->depth + 1 > WH_JSON_MAX_DEPTH) {
        *failed = 1;
        return WH_JC_NEXT;
    }

    if (*c->p == '{' || *c->p == '[') {
        wh_jc_open(c, *c->p == '{');
        wh_jc_ws(c);

        if (c->p < c->end && *c->p == (wh_jc_in_object(c) ? '}' : ']')) {
            c->p++;
            c->depth--;
            return WH_JC_NEXT;
        }

        return wh_jc_in_object(c) ? WH_JC_KEY : WH_JC_VALUE;
    }

    *failed = wh_jc_scalar(c) != 0;

    return WH_JC_NEXT;
}


/* "key": */
static int
wh_jc_key(wh_jc_t *c)
{
    wh_jc_ws(c);

    if (c->p == c->end || *c->p != '"' || wh_jc_string(c, 1) != 0) {
        return -1;
    }

    wh_jc_ws(c);

    if (c->p == c->end || *c->p != ':') {
        return -1;
    }

    c->p++;

    return 0;
}


/* after a value: -1 wrong, 0 the text is done, 1 and the next state */
static int
wh_jc_next(wh_jc_t *c, wh_jc_state_e *state)
{
    int  object;

    wh_jc_ws(c);

    if (c->depth == 0) {
        return c->p == c->end ? 0 : -1;
    }

    if (c->p == c->end) {
        return -1;
    }

    object = wh_jc_in_object(c);

    if (*c->p == ',') {
        c->p++;
        *state = object ? WH_JC_KEY : WH_JC_VALUE;
        return 1;
    }

    if (*c->p != (object ? '}' : ']')) {
        return -1;
    }

    c->p++;
    c->depth--;
    *state = WH_JC_NEXT;

    return 1;
}


int
wh_json_check(const char *text, size_t len)
{
    int            rc, failed = 0;
    wh_jc_t        c;
    wh_jc_state_e  state = WH_JC_VALUE;

    /* jansson decodes every byte it reads as UTF-8 */
    if (!wh_utf8_valid(text, len)) {
        return 0;
    }

    c.p = (const unsigned char *) text;
    c.end = c.p + len;
    c.depth = 0;

    for ( ;; ) {
        switch (state) {

        case WH_JC_VALUE:
            state = wh_jc_value(&c, &failed);

            if (failed) {
                return 0;
            }

            break;

        case WH_JC_KEY:
            if (wh_jc_key(&c) != 0) {
                return 0;
            }

            state = WH_JC_VALUE;
            break;

        default:
            rc = wh_jc_next(&c, &state);

            if (rc <= 0) {
                return rc == 0;
            }
        }
    }
}
