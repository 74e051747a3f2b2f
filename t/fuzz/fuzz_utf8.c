/*
 * libFuzzer target of the incremental UTF-8 validator (common/wh_utf8.c).
 *
 * The input is the byte stream.  The one-shot wh_utf8_validate() must
 * agree with an independent reference decoder (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF) and with wh_utf8_valid();
 * the stream fed in two pieces split at every point (at most 256 points
 * of a long input), and fed byte by byte, must end in the same verdict,
 * and a failure must stay failed whatever is fed after it.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_utf8.h"


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* 0 if p[0..len) is valid UTF-8, -1 if not: the plain way */
static int
fuzz_reference(const uint8_t *p, size_t len)
{
    size_t    i, n, k;
    uint32_t  c, min;

    for (i = 0; i < len; i += n) {
        c = p[i];

        if (c < 0x80) {
            n = 1;
            continue;
        }

        if ((c & 0xe0) == 0xc0) {
            n = 2; c &= 0x1f; min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3; c &= 0x0f; min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4; c &= 0x07; min = 0x10000;
        } else {
            return -1;
        }

        if (len - i < n) {
            return -1;
        }

        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return -1;
            }

            c = (c << 6) | (p[i + k] & 0x3f);
        }

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
            return -1;
        }
    }

    return 0;
}


/* each piece in a buffer of its own exact size, so ASan sees overreads */
static int
fuzz_feed(wh_utf8_t *u, const uint8_t *p, size_t len)
{
    int       rc;
    uint8_t  *copy;

    copy = malloc(len ? len : 1);
    fuzz_assert(copy != NULL);
    memcpy(copy, p, len);
    rc = wh_utf8_feed(u, copy, len);
    free(copy);

    return rc;
}


static int
fuzz_split(const uint8_t *data, size_t size, size_t at)
{
    int        rc1, rc2, rc3;
    wh_utf8_t  u;

    memset(&u, 0, sizeof(u));
    rc1 = fuzz_feed(&u, data, at);
    rc2 = fuzz_feed(&u, data + at, size - at);

    /* sticky: once failed, failed */
    fuzz_assert(rc1 == 0 || rc2 == -1);

    /* nothing more, and an empty piece, change nothing */
    rc3 = fuzz_feed(&u, data, 0);
    fuzz_assert(rc3 == rc2);

    return (rc2 == 0 && wh_utf8_done(&u) == 0) ? 0 : -1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int        whole, ref, rc;
    size_t     i, step;
    uint8_t   *copy;
    wh_utf8_t  u;

    copy = malloc(size ? size : 1);
    fuzz_assert(copy != NULL);
    memcpy(copy, data, size);

    whole = wh_utf8_validate(copy, size);
    ref = fuzz_reference(copy, size);

    fuzz_assert(whole == 0 || whole == -1);
    fuzz_assert(whole == ref);
    fuzz_assert(wh_utf8_valid((const char *) copy, size) == (whole == 0));

    step = size > 256 ? size / 256 : 1;

    for (i = 0; i <= size; i += step) {
        fuzz_assert(fuzz_split(copy, size, i) == whole);
    }

    fuzz_assert(fuzz_split(copy, size, size) == whole);

    /* byte by byte: a byte refused means the whole is invalid, and the
     * end state gives the same verdict */
    memset(&u, 0, sizeof(u));
    rc = 0;

    for (i = 0; i < size; i++) {
        rc = fuzz_feed(&u, copy + i, 1);

        if (rc != 0) {
            fuzz_assert(whole == -1);
        }
    }

    fuzz_assert(((rc == 0 && wh_utf8_done(&u) == 0) ? 0 : -1) == whole);

    /* once refused, refused: more valid text does not undo it */
    if (rc == -1) {
        fuzz_assert(fuzz_feed(&u, (const uint8_t *) "a", 1) == -1);
    }

    free(copy);

    return 0;
}
