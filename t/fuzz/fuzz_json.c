/*
 * libFuzzer target for wh_json_member: for any input jansson accepts as
 * an object, every member the scan is asked for must be found, and its
 * bytes must parse to the value jansson holds.  Inputs jansson refuses
 * are scanned too: the scan may fail, never crash or read outside.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wh_json.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* the keys wh_json_member is for: ASCII, at most 64 bytes */
static int
fuzz_ascii(const char *key)
{
    size_t  i;

    for (i = 0; key[i]; i++) {
        if ((unsigned char) key[i] >= 0x80 || i >= 64) {
            return 0;
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t      *obj, *value, *got;
    wh_str_t     v;
    const char  *key;

    obj = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                     NULL);

    if (obj == NULL || !json_is_object(obj)) {
        (void) wh_json_member((const char *) data, size, "data", &v);
        json_decref(obj);
        return 0;
    }

    json_object_foreach(obj, key, value) {
        if (!fuzz_ascii(key)) {
            continue;
        }

        if (wh_json_member((const char *) data, size, key, &v) != 1) {
            abort();
        }

        got = json_loadb(v.data, v.len, JSON_DECODE_ANY, NULL);

        if (got == NULL || !json_equal(got, value)) {
            abort();
        }

        json_decref(got);
    }

    json_decref(obj);

    return 0;
}
