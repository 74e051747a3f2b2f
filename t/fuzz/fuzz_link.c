/*
 * libFuzzer target for the link decoder: any byte string is split
 * into frames as the daemon does; each frame must decode or fail
 * cleanly, and what decodes must encode back to the same bytes.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wh_link.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             rc;
    size_t          off = 0, flen;
    wh_buf_t        out = { 0 };
    const char     *err;
    wh_link_msg_t   m;

    while (off < size) {
        rc = wh_link_frame_len(data + off, size - off, &flen);

        if (rc != 1) {
            break;
        }

        if (wh_link_decode(data + off, flen, &m, &err) == 0) {
            out.len = 0;

            if (wh_link_encode(&out, &m) != 0
                || out.len != flen
                || memcmp(out.data, data + off, flen) != 0)
            {
                abort();
            }
        }

        off += flen;
    }

    /* also the whole input as one frame, whatever its prefix says */
    (void) wh_link_decode(data, size, &m, &err);

    wh_buf_free(&out);

    return 0;
}
