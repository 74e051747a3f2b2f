/*
 * libFuzzer target of the HTTP API's query strings (worker/query.c).
 *
 * Input: a byte choosing the key (one of the keys the routes read, or the
 * text up to the first '\n' of the rest) and the size of the output
 * buffer, then the query string, in a buffer of its exact size.  What
 * wh_query_get() finds must be what an independent reading finds (the
 * first "key=" segment between '&'s, '+' a space, "%XX" a byte, a bad
 * escape or too little room -1), NUL-terminated inside the buffer;
 * wh_query_u64() must be 1 only for digits that strtoull takes whole.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const char  *fuzz_keys[] = {
    "limit", "cursor", "since", "status", "channel", "a", "", "a=b"
};


static int
fuzz_hex(int c)
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


/* the same contract, written plainly */
static int
fuzz_reference(const char *q, size_t qlen, const char *key, char *out,
    size_t size, size_t *len)
{
    size_t  klen, i, seg, end, n;

    klen = strlen(key);

    for (seg = 0; seg < qlen; seg = end + 1) {
        for (end = seg; end < qlen && q[end] != '&'; end++) {
            /* void */
        }

        if (end - seg < klen + 1 || memcmp(q + seg, key, klen) != 0
            || q[seg + klen] != '=')
        {
            continue;
        }

        n = 0;

        for (i = seg + klen + 1; i < end; i++) {
            if (n + 1 >= size) {
                return -1;
            }

            if (q[i] == '%') {
                if (end - i < 3 || fuzz_hex((unsigned char) q[i + 1]) < 0
                    || fuzz_hex((unsigned char) q[i + 2]) < 0)
                {
                    return -1;
                }

                out[n++] = (char) (fuzz_hex((unsigned char) q[i + 1]) * 16
                                   + fuzz_hex((unsigned char) q[i + 2]));
                i += 2;

            } else {
                out[n++] = q[i] == '+' ? ' ' : q[i];
            }
        }

        out[n] = '\0';
        *len = n;

        return 1;
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           rc, ref, rc64;
    char         *key, *copy, *out, *want, *end;
    size_t        outsize, len, wlen, i;
    uint64_t      v;
    wh_str_t      q;
    const char   *nl;
    const uint8_t *rest;
    size_t         rlen;

    if (size < 2) {
        return 0;
    }

    outsize = 1 + (data[1] & 0x7f);
    rest = data + 2;
    rlen = size - 2;

    if ((data[0] & 0x0f) < sizeof(fuzz_keys) / sizeof(fuzz_keys[0])) {
        key = strdup(fuzz_keys[data[0] & 0x0f]);

    } else {
        nl = memchr(rest, '\n', rlen);

        if (nl == NULL) {
            return 0;
        }

        key = strndup((const char *) rest, nl - (const char *) rest);
        rlen -= nl + 1 - (const char *) rest;
        rest = (const uint8_t *) nl + 1;
    }

    fuzz_assert(key != NULL);

    copy = malloc(rlen ? rlen : 1);
    out = malloc(outsize);
    want = malloc(outsize);
    fuzz_assert(copy != NULL && out != NULL && want != NULL);
    memcpy(copy, rest, rlen);

    q.data = copy;
    q.len = rlen;

    len = (size_t) -1;
    wlen = (size_t) -1;
    rc = wh_query_get(q, key, out, outsize, &len);
    ref = fuzz_reference(copy, rlen, key, want, outsize, &wlen);

    /* a key with a NUL in it is cut there by strlen on both sides */
    fuzz_assert(rc == ref);

    if (rc == 1) {
        fuzz_assert(len == wlen && len < outsize && out[len] == '\0');
        fuzz_assert(memcmp(out, want, len) == 0);
    }

    rc64 = wh_query_u64(q, key, &v);
    fuzz_assert(rc64 >= -1 && rc64 <= 1);

    if (rc64 == 1) {
        /* the same key read with plenty of room: digits only, in range */
        free(out);
        out = malloc(32);
        fuzz_assert(out != NULL);
        fuzz_assert(wh_query_get(q, key, out, 32, &len) == 1 && len > 0);

        for (i = 0; i < len; i++) {
            fuzz_assert(out[i] >= '0' && out[i] <= '9');
        }

        fuzz_assert(strtoull(out, &end, 10) == v && *end == '\0');
    }

    free(key);
    free(copy);
    free(out);
    free(want);

    return 0;
}
