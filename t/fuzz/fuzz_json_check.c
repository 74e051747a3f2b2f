/*
 * libFuzzer target for wh_json_check: its answer must be jansson's
 * (JSON_DECODE_ANY | JSON_ALLOW_NUL, as wirehubd asked jansson before)
 * for every input, but one: jansson skips a NUL byte that follows a number
 * or a literal ("[1\0]"), which the check refuses as RFC 8259 does.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wh_json_check.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* jansson accepted text with NUL bytes: only after scalars can they be
 * (a string may not hold one raw), and without them the check must
 * accept it */
static int
fuzz_nul_skipped(const uint8_t *data, size_t size)
{
    int      ok;
    char    *text;
    size_t   i, n;

    if (memchr(data, '\0', size) == NULL) {
        return 0;
    }

    text = malloc(size ? size : 1);

    if (text == NULL) {
        return 1;
    }

    for (n = 0, i = 0; i < size; i++) {
        if (data[i] != '\0') {
            text[n++] = (char) data[i];
        }
    }

    ok = wh_json_check(text, n);
    free(text);

    return ok;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int      ours;
    json_t  *j;

    j = json_loadb((const char *) data, size,
                   JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    ours = wh_json_check((const char *) data, size);

    if (ours != (j != NULL) && !(j != NULL && fuzz_nul_skipped(data, size)))
    {
        abort();
    }

    json_decref(j);

    return 0;
}
