
/*
 * libFuzzer target of the RFC 6455 frame parser.
 *
 * Input: one byte of settings, two bytes that seed how the rest is cut,
 * then the byte stream.  The stream is parsed three times: whole, one
 * byte at a time and in random pieces (some empty), every piece in a
 * buffer of its own exact size.  Each call must keep its promises
 * (consumed <= len, AGAIN consumes all, events point where they should,
 * ERROR is final), and the three runs must agree: the same events at the
 * same payload offsets and the same payload, except that a run ending in
 * ERROR may have handed out fewer bytes of the piece that held the bad
 * byte.  Completed text messages and close reasons must be valid UTF-8.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_frame.h"


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                         \
        }                                                                    \
    } while (0)


typedef struct {
    wh_frame_rc_e   rc;
    unsigned                      opcode;
    unsigned                      close_code;
    unsigned                      compressed;
    const char                   *reason;
    size_t                        data_before;   /* payload bytes so far */
    size_t                        len;           /* of a control payload */
    unsigned char                 control[WH_WS_CONTROL_MAX];
} fuzz_event_t;


typedef struct {
    wh_frame_parser_t   parser;
    fuzz_event_t                     *events;
    size_t                            nevents;
    size_t                            max_events;
    unsigned char                    *data;          /* all DATA, joined */
    size_t                            data_len;
    size_t                            message_start;
    int                               failed;
} fuzz_run_t;


int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);


static const uint64_t  fuzz_max_sizes[4] = { 0, 16, 1000, 70000 };


static void
fuzz_check_event(fuzz_run_t *run, wh_frame_rc_e rc,
    const wh_frame_event_t *ev, const unsigned char *in,
    size_t used)
{
    const unsigned char  *control;

    control = run->parser.control;

    switch (rc) {

    case WH_FRAME_DATA:
        fuzz_assert(ev->len > 0);
        fuzz_assert(ev->data >= in && ev->data + ev->len <= in + used);
        fuzz_assert(ev->opcode == WH_WS_OP_TEXT
                    || ev->opcode == WH_WS_OP_BINARY);
        fuzz_assert(ev->compressed == 0 || run->parser.allow_rsv1);
        break;

    case WH_FRAME_MESSAGE_END:
        fuzz_assert(ev->data == NULL && ev->len == 0);
        fuzz_assert(ev->opcode == WH_WS_OP_TEXT
                    || ev->opcode == WH_WS_OP_BINARY);

        if (ev->opcode == WH_WS_OP_TEXT && !ev->compressed) {
            fuzz_assert(wh_utf8_validate(
                            run->data + run->message_start,
                            run->data_len - run->message_start) == 0);
        }

        if (run->parser.max_message_size) {
            fuzz_assert(run->data_len - run->message_start
                        <= run->parser.max_message_size);
        }

        break;

    case WH_FRAME_CONTROL:
        fuzz_assert(ev->data >= control
                    && ev->data + ev->len
                       <= control + WH_WS_CONTROL_MAX);
        fuzz_assert(ev->opcode == WH_WS_OP_PING
                    || ev->opcode == WH_WS_OP_PONG
                    || ev->opcode == WH_WS_OP_CLOSE);

        if (ev->opcode == WH_WS_OP_CLOSE) {
            fuzz_assert(ev->close_code == WH_WS_CLOSE_NO_STATUS
                        || wh_frame_close_code_valid(
                               ev->close_code));
            fuzz_assert(ev->len <= WH_WS_CLOSE_REASON_MAX);
            fuzz_assert(wh_utf8_validate(ev->data, ev->len) == 0);
        }

        break;

    case WH_FRAME_ERROR:
        fuzz_assert(ev->close_code == 1002 || ev->close_code == 1007
                    || ev->close_code == 1009);
        fuzz_assert(ev->reason != NULL);
        break;

    default:
        fuzz_assert(rc == WH_FRAME_AGAIN);
        fuzz_assert(ev->data == NULL && ev->len == 0);
        break;
    }
}


static void
fuzz_record(fuzz_run_t *run, wh_frame_rc_e rc,
    const wh_frame_event_t *ev)
{
    fuzz_event_t  *e;

    if (rc == WH_FRAME_DATA) {
        memcpy(run->data + run->data_len, ev->data, ev->len);
        run->data_len += ev->len;
        return;
    }

    fuzz_assert(run->nevents < run->max_events);

    e = &run->events[run->nevents++];
    memset(e, 0, sizeof(fuzz_event_t));
    e->rc = rc;
    e->opcode = ev->opcode;
    e->close_code = ev->close_code;
    e->compressed = ev->compressed;
    e->reason = ev->reason;
    e->data_before = run->data_len;

    if (rc == WH_FRAME_CONTROL) {
        e->len = ev->len;
        memcpy(e->control, ev->data, ev->len);
    }

    if (rc == WH_FRAME_MESSAGE_END) {
        run->message_start = run->data_len;
    }
}


/* parses one piece, copied to a buffer of exactly its size */
static void
fuzz_feed(fuzz_run_t *run, const uint8_t *bytes, size_t len)
{
    size_t                          off, used;
    unsigned char                  *piece;
    wh_frame_rc_e     rc;
    wh_frame_event_t  ev, again;

    piece = malloc(len ? len : 1);
    fuzz_assert(piece != NULL);
    memcpy(piece, bytes, len);

    off = 0;

    while (!run->failed) {
        rc = wh_frame_parse(&run->parser, piece + off,
                                          len - off, &used, &ev);
        fuzz_assert(used <= len - off);
        fuzz_check_event(run, rc, &ev, piece + off, used);

        if (rc == WH_FRAME_AGAIN) {
            fuzz_assert(used == len - off);
            break;
        }

        fuzz_record(run, rc, &ev);
        off += used;

        if (rc == WH_FRAME_ERROR) {
            run->failed = 1;

            /* final: the same error, nothing consumed */
            rc = wh_frame_parse(&run->parser, piece + off,
                                              len - off, &used, &again);
            fuzz_assert(rc == WH_FRAME_ERROR && used == 0);
            fuzz_assert(again.close_code == ev.close_code
                        && again.reason == ev.reason);
        }
    }

    free(piece);
}


static void
fuzz_run_init(fuzz_run_t *run, unsigned settings, size_t len)
{
    memset(run, 0, sizeof(fuzz_run_t));

    run->parser.require_mask = settings & 1;
    run->parser.allow_rsv1 = (settings >> 1) & 1;
    run->parser.max_message_size = fuzz_max_sizes[(settings >> 2) & 3];
    wh_frame_parser_init(&run->parser);

    /* every event but MESSAGE_END and ERROR consumes a byte */
    run->max_events = 2 * len + 2;
    run->events = malloc(run->max_events * sizeof(fuzz_event_t));
    run->data = malloc(len ? len : 1);
    fuzz_assert(run->events != NULL && run->data != NULL);
}


static void
fuzz_run_free(fuzz_run_t *run)
{
    free(run->events);
    free(run->data);
}


static int
fuzz_same_event(const fuzz_event_t *a, const fuzz_event_t *b)
{
    return a->rc == b->rc && a->opcode == b->opcode
           && a->close_code == b->close_code
           && a->compressed == b->compressed && a->reason == b->reason
           && a->len == b->len && memcmp(a->control, b->control, a->len) == 0;
}


/* two runs of the same stream tell the same story */
static void
fuzz_compare(const fuzz_run_t *a, const fuzz_run_t *b)
{
    size_t  i, common;

    fuzz_assert(a->failed == b->failed);
    fuzz_assert(a->nevents == b->nevents);

    for (i = 0; i < a->nevents; i++) {
        fuzz_assert(fuzz_same_event(&a->events[i], &b->events[i]));

        if (i + 1 < a->nevents || !a->failed) {
            fuzz_assert(a->events[i].data_before
                        == b->events[i].data_before);
        }
    }

    if (!a->failed) {
        fuzz_assert(a->data_len == b->data_len);
    }

    common = (a->data_len < b->data_len) ? a->data_len : b->data_len;
    fuzz_assert(memcmp(a->data, b->data, common) == 0);
}


static uint32_t
fuzz_next(uint32_t *seed)
{
    /* xorshift32: any cheap, reproducible sequence will do */
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;

    return *seed;
}


int
LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    size_t          i, n, len;
    unsigned        settings;
    uint32_t        seed;
    fuzz_run_t      whole, bytewise, pieces;
    const uint8_t  *stream;

    if (size < 3) {
        return 0;
    }

    settings = input[0];
    seed = ((uint32_t) input[1] << 8 | input[2]) * 2654435761u + 1;
    stream = input + 3;
    len = size - 3;

    fuzz_run_init(&whole, settings, len);
    fuzz_feed(&whole, stream, len);
    fuzz_feed(&whole, stream + len, 0);

    fuzz_run_init(&bytewise, settings, len);

    for (i = 0; i < len; i++) {
        fuzz_feed(&bytewise, stream + i, 1);
    }

    fuzz_run_init(&pieces, settings, len);

    for (i = 0; i < len; i += n) {
        n = fuzz_next(&seed) % (1u << (fuzz_next(&seed) % 9));
        n = (n < len - i) ? n : len - i;
        fuzz_feed(&pieces, stream + i, n);
    }

    fuzz_compare(&whole, &bytewise);
    fuzz_compare(&whole, &pieces);

    fuzz_run_free(&whole);
    fuzz_run_free(&bytewise);
    fuzz_run_free(&pieces);

    return 0;
}
