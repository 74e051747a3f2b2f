/*
 * libFuzzer target of permessage-deflate (ngx_module/
 * ngx_http_wirehub_deflate.c), the module's own code compiled against
 * nginx's headers with the nginx functions it calls replaced by libc
 * ones (ngx_libc.c).  The worker's one zlib pair is kept across inputs,
 * as it is kept across messages.
 *
 * The first byte picks the mode (low 2 bits) and the size limit:
 *   0 inflate: the rest is a compressed message, inflated with the limit
 *     of the byte; the verdict and bytes must be those of a fresh raw
 *     zlib inflate of the message and 00 00 ff ff into max + 1 bytes
 *     (OK within max with the same bytes, DECLINED past it, ABORT on
 *     corrupt data), and the same again on a second call (no context
 *     is taken over from one message to the next);
 *   1 round trip: the rest is a payload; the frame
 *     ngx_http_wirehub_deflate_frame() makes is a server frame (FIN,
 *     RSV1, no mask, the opcode, the right length) whose payload
 *     inflates back to it;
 *   2 negotiation: the rest, cut at '\n', are header values of
 *     Sec-WebSocket-Extensions (a line starting with '!' is another
 *     header), in two list parts; an accepted offer answers the fixed
 *     response, and a plain "permessage-deflate" is always accepted.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "ngx_http_wirehub_deflate.h"


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                         \
        }                                                                    \
    } while (0)


/* what ngx_http_wirehub_deflate.c answers (defined there, not exported) */
#define FUZZ_RESPONSE                                                        \
    "permessage-deflate; server_no_context_takeover; "                       \
    "client_no_context_takeover"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* ------------------------------------------------------------ the target */

static ngx_http_wirehub_main_conf_t  fuzz_wmcf;
static ngx_log_t                     fuzz_log;

static const size_t  fuzz_max[8] = { 0, 1, 16, 255, 1000, 4096, 65536,
                                     1 << 20 };


/* a fresh raw inflate of in and the tail into max + 1 bytes */
static ngx_int_t
fuzz_reference(const u_char *in, size_t len, size_t max, u_char **out,
    size_t *out_len)
{
    int       rc;
    u_char   *msg, *buf;
    z_stream  z;

    msg = malloc(len + 4);
    buf = malloc(max + 1);
    fuzz_assert(msg != NULL && buf != NULL);
    memcpy(msg, in, len);
    memcpy(msg + len, "\x00\x00\xff\xff", 4);

    memset(&z, 0, sizeof(z));
    fuzz_assert(inflateInit2(&z, -15) == Z_OK);

    z.next_in = msg;
    z.avail_in = len + 4;
    z.next_out = buf;
    z.avail_out = max + 1;

    rc = inflate(&z, Z_SYNC_FLUSH);

    *out_len = max + 1 - z.avail_out;
    *out = buf;

    inflateEnd(&z);
    free(msg);

    if (*out_len > max) {
        return NGX_DECLINED;
    }

    if (rc == Z_STREAM_END || rc == Z_OK || rc == Z_BUF_ERROR) {
        return NGX_OK;
    }

    return NGX_ABORT;
}


static void
fuzz_inflate(const u_char *data, size_t len, size_t max)
{
    int        i;
    u_char    *in, *out, *want;
    size_t     out_len, want_len;
    ngx_int_t  rc, ref;

    in = malloc(len ? len : 1);
    fuzz_assert(in != NULL);
    memcpy(in, data, len);

    ref = fuzz_reference(in, len, max, &want, &want_len);

    for (i = 0; i < 2; i++) {
        out = NULL;
        out_len = 0;
        rc = ngx_http_wirehub_inflate(&fuzz_wmcf, in, len, max, &out,
                                      &out_len, &fuzz_log);

        if (rc != ref) {
            fprintf(stderr, "inflate %d, reference %d (%zu bytes)\n",
                    (int) rc, (int) ref, want_len);
        }

        fuzz_assert(rc == ref);

        if (rc == NGX_OK) {
            fuzz_assert(out_len <= max && out_len == want_len);
            fuzz_assert(memcmp(out, want, out_len) == 0);
            free(out);
        }
    }

    free(want);
    free(in);
}


static void
fuzz_round_trip(const u_char *data, size_t len, unsigned opcode)
{
    u_char                        *payload, *out;
    size_t                         hlen, plen, out_len;
    ngx_int_t                      rc;
    ngx_http_wirehub_out_frame_t  *frame;

    payload = malloc(len ? len : 1);
    fuzz_assert(payload != NULL);
    memcpy(payload, data, len);

    frame = ngx_http_wirehub_deflate_frame(&fuzz_wmcf, &fuzz_log, 15, opcode,
                                           payload, len);
    fuzz_assert(frame != NULL && frame->refs == 1 && frame->len >= 2);

    /* FIN, RSV1, the opcode; unmasked */
    fuzz_assert(frame->data[0] == (0x80 | 0x40 | opcode));
    fuzz_assert((frame->data[1] & 0x80) == 0);

    plen = frame->data[1] & 0x7f;
    hlen = 2;

    if (plen == 126) {
        fuzz_assert(frame->len >= 4);
        plen = (size_t) frame->data[2] << 8 | frame->data[3];
        hlen = 4;
        fuzz_assert(plen >= 126);

    } else if (plen == 127) {
        fuzz_assert(frame->len >= 10);
        plen = 0;
        for (hlen = 2; hlen < 10; hlen++) {
            plen = plen << 8 | frame->data[hlen];
        }
        fuzz_assert(plen > 0xffff);
    }

    fuzz_assert(hlen + plen == frame->len);

    rc = ngx_http_wirehub_inflate(&fuzz_wmcf, frame->data + hlen, plen, len,
                                  &out, &out_len, &fuzz_log);
    fuzz_assert(rc == NGX_OK && out_len == len);
    fuzz_assert(memcmp(out, payload, len) == 0);

    free(out);
    free(frame);
    free(payload);
}


static void
fuzz_negotiate(const u_char *data, size_t size)
{
    size_t               n, i, k, first;
    u_char              *p, *nl, *end;
    ngx_int_t            rc;
    ngx_uint_t           window;
    ngx_str_t            response;
    ngx_list_part_t      part2;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;
    int                  plain = 0;

    static u_char  ext[] = "Sec-WebSocket-Extensions";
    static u_char  other[] = "Sec-WebSocket-Protocol";

    for (n = 1, i = 0; i < size; i++) {
        n += data[i] == '\n';
    }

    h = calloc(n, sizeof(ngx_table_elt_t));
    r = calloc(1, sizeof(ngx_http_request_t));
    fuzz_assert(h != NULL && r != NULL);

    p = (u_char *) data;
    end = p + size;

    for (k = 0; k < n; k++) {
        nl = memchr(p, '\n', end - p);
        nl = nl ? nl : end;

        if (nl > p && *p == '!') {
            h[k].key.data = other;
            h[k].key.len = sizeof(other) - 1;
            p++;

        } else {
            h[k].key.data = ext;
            h[k].key.len = sizeof(ext) - 1;
            plain |= (nl - p == 18
                      && memcmp(p, "permessage-deflate", 18) == 0);
        }

        /* each value in a buffer of its exact size */
        h[k].value.len = nl - p;
        h[k].value.data = malloc(h[k].value.len ? h[k].value.len : 1);
        fuzz_assert(h[k].value.data != NULL);
        memcpy(h[k].value.data, p, h[k].value.len);

        p = nl + (nl < end);
    }

    first = n / 2;

    r->headers_in.headers.part.elts = h;
    r->headers_in.headers.part.nelts = first;
    r->headers_in.headers.part.next = &part2;
    part2.elts = h + first;
    part2.nelts = n - first;
    part2.next = NULL;

    ngx_str_null(&response);
    window = 0;
    rc = ngx_http_wirehub_deflate_negotiate(r, &response, &window);

    fuzz_assert(rc == NGX_OK || rc == NGX_DECLINED);
    fuzz_assert(!plain || rc == NGX_OK);

    if (rc == NGX_OK) {
        /* the fixed answer, with the window the offer named, if any */
        fuzz_assert(window >= 8 && window <= 15);
        fuzz_assert(response.len >= sizeof(FUZZ_RESPONSE) - 1
                    && memcmp(response.data, FUZZ_RESPONSE,
                              sizeof(FUZZ_RESPONSE) - 1) == 0);

    } else {
        fuzz_assert(response.data == NULL);
    }

    for (k = 0; k < n; k++) {
        free(h[k].value.data);
    }

    free(h);
    free(r);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }

    switch (data[0] & 3) {
    case 0:
        fuzz_inflate(data + 1, size - 1, fuzz_max[(data[0] >> 2) & 7]);
        break;
    case 1:
        fuzz_round_trip(data + 1, size - 1, (data[0] & 4) ? 2 : 1);
        break;
    case 2:
        fuzz_negotiate(data + 1, size - 1);
        break;
    default:
        /* the same as 0 with the limit of the next byte's bits */
        fuzz_inflate(data + 1, size - 1, fuzz_max[(data[0] >> 5) & 7]);
        break;
    }

    return 0;
}
