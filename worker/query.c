/*
 * Query strings of the HTTP API: the percent-decoded value of a key.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"


static int
wh_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}


int
wh_query_get(wh_str_t q, const char *key, char *out, size_t size,
    size_t *len)
{
    size_t       klen, n;
    const char  *p, *end, *amp;

    klen = strlen(key);
    p = q.data;
    end = q.data + q.len;

    for ( /* void */ ; p < end; p = amp + 1) {
        amp = memchr(p, '&', end - p);
        amp = amp ? amp : end;

        if ((size_t) (amp - p) <= klen || memcmp(p, key, klen) != 0
            || p[klen] != '=')
        {
            continue;
        }

        for (p += klen + 1, n = 0; p < amp; p++, n++) {
            if (n + 1 >= size) {
                return -1;
            }

            if (*p == '%') {
                if (amp - p < 3 || wh_hex(p[1]) < 0 || wh_hex(p[2]) < 0) {
                    return -1;
                }

                out[n] = (char) (wh_hex(p[1]) * 16 + wh_hex(p[2]));
                p += 2;

            } else {
                out[n] = *p == '+' ? ' ' : *p;
            }
        }

        out[n] = '\0';
        *len = n;

        return 1;
    }

    return 0;
}


int
wh_query_u64(wh_str_t q, const char *key, uint64_t *v)
{
    int     rc;
    char    buf[32], *end;
    size_t  len;

    rc = wh_query_get(q, key, buf, sizeof(buf), &len);

    if (rc <= 0) {
        return rc;
    }

    if (len == 0) {
        return 0;
    }

    if (buf[0] < '0' || buf[0] > '9') {
        return -1;
    }

    errno = 0;
    *v = strtoull(buf, &end, 10);

    /* all of it: "5%00x" is not 5 */
    return errno == 0 && end == buf + len ? 1 : -1;
}
