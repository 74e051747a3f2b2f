/*
 * libFuzzer target for the link decoder: any byte string is split
 * into frames as the daemon does; each frame must decode or fail
 * cleanly, and what decodes must encode back to the same bytes.  The
 * input also becomes the fields of an EVENT and a WELCOME, which must
 * survive encode and decode unchanged.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wh_link.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
fuzz_str_eq(wh_str_t a, wh_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data,
                                                   a.len) == 0);
}


/* the first bytes give the lengths of the four strings, the rest of
 * the input is cut into them and the body */
static void
fuzz_event_round_trip(const uint8_t *data, size_t size)
{
    size_t          i, n, off = 4, flen;
    wh_str_t       *s[5];
    wh_buf_t        out = { 0 };
    const char     *err;
    wh_link_msg_t   m, back;

    if (size < 4) {
        return;
    }

    memset(&m, 0, sizeof(m));
    m.type = size & 1 ? WH_LINK_EVENT : WH_LINK_WELCOME;
    m.flag = data[0];
    m.status = 1;
    m.id2 = size;
    s[0] = &m.workspace;
    s[1] = &m.client_id;
    s[2] = &m.session;
    s[3] = &m.name;
    s[4] = &m.body;

    for (i = 0; i < 5; i++) {
        n = i < 4 ? data[i] : size - off;
        n = n < size - off ? n : size - off;
        s[i]->data = (const char *) data + off;
        s[i]->len = n;
        off += n;
    }

    if (wh_link_encode(&out, &m) != 0
        || wh_link_frame_len(out.data, out.len, &flen) != 1
        || flen != out.len
        || wh_link_decode(out.data, out.len, &back, &err) != 0
        || back.type != m.type
        || !fuzz_str_eq(back.name, m.name))
    {
        abort();
    }

    if (m.type == WH_LINK_WELCOME
        ? back.flag != m.flag || back.id2 != m.id2 || back.body.len != 0
        : !fuzz_str_eq(back.workspace, m.workspace)
          || !fuzz_str_eq(back.client_id, m.client_id)
          || !fuzz_str_eq(back.session, m.session)
          || !fuzz_str_eq(back.body, m.body) || back.flag != 0)
    {
        abort();
    }

    wh_buf_free(&out);
}


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

    fuzz_event_round_trip(data, size);

    wh_buf_free(&out);

    return 0;
}
