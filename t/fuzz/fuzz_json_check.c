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


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int      ours;
    json_t  *j;

    j = json_loadb((const char *) data, size,
                   JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    ours = wh_json_check((const char *) data, size);

    if (ours != (j != NULL)
        && !(j != NULL && memchr(data, '\0', size) != NULL))
    {
        abort();
    }

    json_decref(j);

    return 0;
}
