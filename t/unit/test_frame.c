
/*
 * Unit tests of the RFC 6455 frame layer.
 *
 * Every byte stream is parsed whole, one byte at a time, cut at every
 * point and (when short) cut at every pair of points, each piece in a
 * buffer of its own exact size so that AddressSanitizer sees any read
 * past it.  Consecutive DATA events are joined before the event sequences
 * are compared, since how a payload is handed out depends on the cuts.
 * An ERROR must come from the very call that was given the offending
 * byte: this is what makes the parser fail fast.
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wh_frame.h"


#define FIN        0x80
#define RSV1       0x40
#define RSV2       0x20
#define RSV3       0x10
#define CONT       WH_WS_OP_CONT
#define TEXT       WH_WS_OP_TEXT
#define BINARY     WH_WS_OP_BINARY
#define CLOSE      WH_WS_OP_CLOSE
#define PING       WH_WS_OP_PING
#define PONG       WH_WS_OP_PONG

#define RC_AGAIN   WH_FRAME_AGAIN
#define RC_DATA    WH_FRAME_DATA
#define RC_END     WH_FRAME_MESSAGE_END
#define RC_CONTROL WH_FRAME_CONTROL
#define RC_ERROR   WH_FRAME_ERROR

/* streams up to this long are also cut at every pair of points */
#define PAIR_CUTS_MAX  96

/* longer streams are cut at every point near their ends only */
#define EVERY_CUT_MAX  4096


typedef struct {
    uint64_t        max_message_size;
    unsigned        require_mask;
    unsigned        allow_rsv1;
} config_t;


/* a client byte stream under construction */
typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          cap;
    size_t          payload;    /* where the last frame's payload starts */
    unsigned        frames;     /* varies the mask key */
} stream_t;


typedef struct {
    wh_frame_rc_e   rc;
    unsigned                      opcode;
    unsigned                      close_code;
    unsigned                      compressed;
    const unsigned char          *data;
    size_t                        len;

    /*
     * DATA cut short by an ERROR: the valid bytes of the piece that holds
     * the bad byte may or may not be handed out before the error, so any
     * prefix passes, except one byte at a time, when all of it must come
     */
    unsigned                      prefix;
} expect_t;


typedef struct {
    wh_frame_rc_e   rc;
    unsigned                      opcode;
    unsigned                      close_code;
    unsigned                      compressed;
    const char                   *reason;
    unsigned char                *data;
    size_t                        len;
    size_t                        cap;
} record_t;


typedef struct {
    record_t       *v;
    size_t          n;
    size_t          cap;
    size_t          error_from;    /* the piece that gave ERROR */
    size_t          error_to;
    int             failed;
} log_t;


#define X_DATA(op, s)                                                        \
    { RC_DATA, op, 0, 0, (const unsigned char *) (s), sizeof(s) - 1, 0 }
#define X_ZDATA(op, s)                                                       \
    { RC_DATA, op, 0, 1, (const unsigned char *) (s), sizeof(s) - 1, 0 }
#define X_PREFIX(op, s)                                                      \
    { RC_DATA, op, 0, 0, (const unsigned char *) (s), sizeof(s) - 1, 1 }
#define X_END(op)         { RC_END, op, 0, 0, NULL, 0, 0 }
#define X_ZEND(op)        { RC_END, op, 0, 1, NULL, 0, 0 }
#define X_CONTROL(op, s)                                                     \
    { RC_CONTROL, op, 0, 0, (const unsigned char *) (s), sizeof(s) - 1, 0 }
#define X_CLOSE(code, s)                                                     \
    { RC_CONTROL, CLOSE, code, 0, (const unsigned char *) (s),              \
      sizeof(s) - 1, 0 }
#define X_ERROR(code)     { RC_ERROR, 0, code, 0, NULL, 0, 0 }

#define NELTS(a)          (sizeof(a) / sizeof((a)[0]))

#define check(cf, s, x, bad)  check_stream(cf, s, x, NELTS(x), bad)


static const config_t  server = { 0, 1, 0 };
static const config_t  client = { 0, 0, 0 };
static const config_t  deflate = { 0, 1, 1 };


static void
put_bytes(stream_t *s, const void *p, size_t n)
{
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2 + 64;
        s->data = realloc(s->data, s->cap);
        assert_non_null(s->data);
    }

    if (n) {
        memcpy(s->data + s->len, p, n);
    }

    s->len += n;
}


/*
 * Appends a frame; length_bytes forces the length encoding (0: minimal,
 * 2 or 8: extended, even where RFC 6455 forbids it).
 */
static void
put_frame_ex(stream_t *s, unsigned byte0, int masked, int length_bytes,
    const void *payload, size_t len)
{
    int            i;
    size_t         k;
    unsigned char  h[14], key[4], byte;

    h[0] = (unsigned char) byte0;
    k = 2;

    if (length_bytes == 0) {
        length_bytes = (len < 126) ? 0 : (len <= 0xffff) ? 2 : 8;
    }

    if (length_bytes == 0) {
        h[1] = (unsigned char) len;

    } else {
        h[1] = (length_bytes == 2) ? 126 : 127;

        for (i = length_bytes - 1; i >= 0; i--) {
            h[k++] = (unsigned char) ((uint64_t) len >> (8 * i));
        }
    }

    /* keys with zero bytes and high bits, different for every frame */
    key[0] = (unsigned char) (0x37 + 11 * s->frames);
    key[1] = (unsigned char) (0xfa - 5 * s->frames);
    key[2] = (s->frames % 3) ? 0x00 : 0x81;
    key[3] = (unsigned char) (0x3d * (s->frames + 1));
    s->frames++;

    if (masked) {
        h[1] |= 0x80;
        memcpy(h + k, key, 4);
        k += 4;
    }

    put_bytes(s, h, k);
    s->payload = s->len;
    put_bytes(s, payload, len);

    if (masked) {
        for (k = 0; k < len; k++) {
            byte = s->data[s->payload + k] ^ key[k % 4];
            s->data[s->payload + k] = byte;
        }
    }
}


static void
put_frame(stream_t *s, unsigned byte0, const char *payload, size_t len)
{
    put_frame_ex(s, byte0, 1, 0, payload, len);
}


#define put_str(s, byte0, str)  put_frame(s, byte0, str, sizeof(str) - 1)


static void
stream_free(stream_t *s)
{
    free(s->data);
    memset(s, 0, sizeof(stream_t));
}


static void
log_free(log_t *log)
{
    size_t  i;

    for (i = 0; i < log->n; i++) {
        free(log->v[i].data);
    }

    free(log->v);
    memset(log, 0, sizeof(log_t));
}


static void
log_event(log_t *log, wh_frame_rc_e rc,
    const wh_frame_event_t *ev)
{
    record_t  *r;

    r = log->n ? &log->v[log->n - 1] : NULL;

    /* DATA is joined: how it is cut depends on how the input was cut */
    if (rc == RC_DATA && r != NULL && r->rc == RC_DATA) {
        assert_int_equal(r->opcode, ev->opcode);
        assert_int_equal(r->compressed, ev->compressed);

    } else {
        if (log->n == log->cap) {
            log->cap = log->cap * 2 + 16;
            log->v = realloc(log->v, log->cap * sizeof(record_t));
            assert_non_null(log->v);
        }

        r = &log->v[log->n++];
        memset(r, 0, sizeof(record_t));
        r->rc = rc;
        r->opcode = ev->opcode;
        r->close_code = ev->close_code;
        r->compressed = ev->compressed;
        r->reason = ev->reason;
    }

    if (r->len + ev->len > r->cap) {
        r->cap = (r->len + ev->len) * 2;
        r->data = realloc(r->data, r->cap);
        assert_non_null(r->data);
    }

    if (ev->len) {
        memcpy(r->data + r->len, ev->data, ev->len);
        r->len += ev->len;
    }
}


/* what must hold of every event, whatever the input */
static void
check_event(const wh_frame_parser_t *p,
    wh_frame_rc_e rc, const wh_frame_event_t *ev,
    const unsigned char *in, size_t used)
{
    switch (rc) {

    case RC_AGAIN:
        assert_null(ev->data);
        assert_int_equal(ev->len, 0);
        break;

    case RC_DATA:
        /* unmasked in place: inside the bytes this call used */
        assert_true(ev->len > 0);
        assert_true(ev->data >= in && ev->data + ev->len <= in + used);
        assert_true(ev->opcode == TEXT || ev->opcode == BINARY);
        assert_int_equal(ev->close_code, 0);
        assert_null(ev->reason);
        break;

    case RC_END:
        assert_true(ev->opcode == TEXT || ev->opcode == BINARY);
        assert_null(ev->data);
        assert_int_equal(ev->len, 0);
        assert_int_equal(ev->close_code, 0);
        assert_null(ev->reason);
        break;

    case RC_CONTROL:
        assert_true(ev->data >= p->control
                    && ev->data + ev->len
                       <= p->control + WH_WS_CONTROL_MAX);
        assert_true(ev->opcode == PING || ev->opcode == PONG
                    || ev->opcode == CLOSE);
        assert_true(ev->opcode == CLOSE ? ev->close_code != 0
                                        : ev->close_code == 0);
        assert_null(ev->reason);
        assert_int_equal(ev->compressed, 0);
        break;

    default:
        assert_int_equal(rc, RC_ERROR);
        assert_true(ev->close_code == 1002 || ev->close_code == 1007
                    || ev->close_code == 1009);
        assert_non_null(ev->reason);
        assert_true(strlen(ev->reason) > 0);
        assert_null(ev->data);
        assert_int_equal(ev->len, 0);
        break;
    }
}


/* after an ERROR, the parser says the same, whatever it is given */
static void
check_stays_failed(wh_frame_parser_t *p,
    const wh_frame_event_t *error, unsigned char *rest,
    size_t len)
{
    size_t                          used;
    unsigned char                   more[16];
    wh_frame_event_t  ev;

    assert_int_equal(wh_frame_parse(p, rest, len, &used, &ev),
                     RC_ERROR);
    assert_int_equal(used, 0);
    assert_int_equal(ev.close_code, error->close_code);
    assert_ptr_equal(ev.reason, error->reason);

    /* a perfectly good frame changes nothing */
    memcpy(more, "\x81\x02ok", 4);
    assert_int_equal(wh_frame_parse(p, more, 4, &used, &ev),
                     RC_ERROR);
    assert_int_equal(used, 0);
    assert_int_equal(ev.close_code, error->close_code);

    assert_int_equal(wh_frame_parse(p, NULL, 0, &used, &ev),
                     RC_ERROR);
    assert_int_equal(used, 0);
}


/* parses one piece of the stream, in a buffer of exactly its size */
static int
feed_piece(wh_frame_parser_t *p, const unsigned char *bytes,
    size_t from, size_t to, log_t *log)
{
    int                             stalls;
    size_t                          off, used, n;
    unsigned char                  *piece;
    wh_frame_rc_e     rc;
    wh_frame_event_t  ev;

    n = to - from;
    piece = malloc(n ? n : 1);
    assert_non_null(piece);
    memcpy(piece, bytes + from, n);

    off = 0;
    stalls = 0;

    for ( ;; ) {
        rc = wh_frame_parse(p, piece + off, n - off, &used,
                                          &ev);
        assert_true(used <= n - off);
        check_event(p, rc, &ev, piece + off, used);
        off += used;

        if (rc == RC_AGAIN) {
            assert_int_equal(off, n);
            break;
        }

        /* an event without input happens once: MESSAGE_END, or ERROR */
        stalls = used ? 0 : stalls + 1;
        assert_true(stalls <= 1);

        log_event(log, rc, &ev);

        if (rc == RC_ERROR) {
            log->failed = 1;
            log->error_from = from;
            log->error_to = to;
            check_stays_failed(p, &ev, piece + off, n - off);
            break;
        }
    }

    free(piece);

    return log->failed ? -1 : 0;
}


/* parses bytes[0..len) cut at cuts[0..ncuts), ascending */
static void
run(const config_t *cf, const unsigned char *bytes, size_t len,
    const size_t *cuts, size_t ncuts, log_t *log)
{
    size_t                           i, from, to;
    wh_frame_parser_t  p;

    memset(log, 0, sizeof(log_t));

    /* init must not depend on what the memory held before */
    memset(&p, 0xa5, sizeof(p));
    p.max_message_size = cf->max_message_size;
    p.require_mask = cf->require_mask;
    p.allow_rsv1 = cf->allow_rsv1;
    wh_frame_parser_init(&p);

    from = 0;

    for (i = 0; i <= ncuts; i++) {
        to = (i < ncuts) ? cuts[i] : len;

        if (feed_piece(&p, bytes, from, to, log) != 0) {
            return;
        }

        from = to;
    }
}


static void
check_log(const log_t *log, const expect_t *x, size_t nx, long bad,
    int bytewise, const char *how)
{
    size_t           i, j;
    const record_t  *r;

    i = 0;

    for (j = 0; j < nx; j++) {
        r = (i < log->n) ? &log->v[i] : NULL;

        if (x[j].prefix) {
            if (r == NULL || r->rc != RC_DATA) {
                if (bytewise && x[j].len) {
                    fail_msg("%s: event %zu: missing DATA before ERROR",
                             how, j);
                }

                continue;
            }

            if (r->len > x[j].len || (bytewise && r->len != x[j].len)
                || memcmp(r->data, x[j].data, r->len) != 0)
            {
                fail_msg("%s: event %zu: DATA not the valid prefix", how, j);
            }

            i++;
            continue;
        }

        if (r == NULL) {
            fail_msg("%s: event %zu (rc %d) missing", how, j, x[j].rc);
        }

        if (r->rc != x[j].rc || r->opcode != x[j].opcode
            || r->close_code != x[j].close_code
            || r->compressed != x[j].compressed || r->len != x[j].len
            || (r->len && memcmp(r->data, x[j].data, r->len) != 0))
        {
            fail_msg("%s: event %zu: got rc %d op %u code %u z %u len %zu, "
                     "want rc %d op %u code %u z %u len %zu", how, j,
                     r->rc, r->opcode, r->close_code, r->compressed, r->len,
                     x[j].rc, x[j].opcode, x[j].close_code, x[j].compressed,
                     x[j].len);
        }

        i++;
    }

    if (i != log->n) {
        fail_msg("%s: %zu events more than expected", how, log->n - i);
    }

    if (bad < 0) {
        assert_false(log->failed);
        return;
    }

    /* the error came from the call given the offending byte, not later */
    if (!log->failed || (size_t) bad < log->error_from
        || (size_t) bad >= log->error_to)
    {
        fail_msg("%s: ERROR not in the piece holding byte %ld", how, bad);
    }
}


static void
run_and_check(const config_t *cf, const stream_t *s, const size_t *cuts,
    size_t ncuts, const expect_t *x, size_t nx, long bad, int bytewise,
    const char *how)
{
    log_t  log;

    run(cf, s->data, s->len, cuts, ncuts, &log);
    check_log(&log, x, nx, bad, bytewise, how);
    log_free(&log);
}


/*
 * bad: the index of the byte that makes the stream invalid (the ERROR
 * must come with it), or -1 for a valid stream
 */
static void
check_stream(const config_t *cf, const stream_t *s, const expect_t *x,
    size_t nx, long bad)
{
    size_t   i, a, b, len, cuts[2], *every;
    char     how[64];

    len = s->len;

    run_and_check(cf, s, NULL, 0, x, nx, bad, 0, "whole");

    /* one byte at a time */
    every = malloc((len ? len : 1) * sizeof(size_t));
    assert_non_null(every);

    for (i = 1; i < len; i++) {
        every[i - 1] = i;
    }

    run_and_check(cf, s, every, len ? len - 1 : 0, x, nx, bad, 1,
                  "bytewise");
    free(every);

    /* every single cut, or those near the ends of a long stream */
    for (a = 1; a < len; a++) {
        if (len > EVERY_CUT_MAX && a > 40 && a < len - 40 && a % 997) {
            continue;
        }

        cuts[0] = a;
        snprintf(how, sizeof(how), "cut at %zu", a);
        run_and_check(cf, s, cuts, 1, x, nx, bad, 0, how);
    }

    if (len > PAIR_CUTS_MAX) {
        return;
    }

    for (a = 1; a < len; a++) {
        for (b = a + 1; b < len; b++) {
            cuts[0] = a;
            cuts[1] = b;
            snprintf(how, sizeof(how), "cuts at %zu, %zu", a, b);
            run_and_check(cf, s, cuts, 2, x, nx, bad, 0, how);
        }
    }
}


/* a stream that fails at its byte bad with code, no event before it */
static void
check_fails_at(const config_t *cf, const stream_t *s, unsigned code,
    long bad)
{
    expect_t  x[1];

    memset(x, 0, sizeof(x));
    x[0].rc = RC_ERROR;
    x[0].close_code = code;

    check_stream(cf, s, x, 1, bad);
}


static void
test_single_text(void **state)
{
    stream_t        s;
    const expect_t  x[] = { X_DATA(TEXT, "Hello"), X_END(TEXT) };

    (void) state;

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "Hello");
    check(&server, &s, x, -1);
    stream_free(&s);
}


static void
test_several_messages(void **state)
{
    stream_t        s;
    const expect_t  x[] = {
        X_DATA(TEXT, "{\"type\":\"ping\"}"), X_END(TEXT),
        X_DATA(BINARY, "\x00\x01\x02\xff"), X_END(BINARY),
        X_CONTROL(PING, "are you there"),
        X_DATA(TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
        X_END(TEXT),
        X_CLOSE(1000, "bye")
    };

    (void) state;

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "{\"type\":\"ping\"}");
    put_str(&s, FIN | BINARY, "\x00\x01\x02\xff");
    put_str(&s, FIN | PING, "are you there");
    put_str(&s, FIN | TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5");
    put_str(&s, FIN | CLOSE, "\x03\xe8" "bye");
    check(&server, &s, x, -1);
    stream_free(&s);
}


/* a payload of len bytes, as one BINARY or TEXT message */
static void
check_length(size_t len, unsigned opcode, int length_bytes)
{
    size_t          i;
    stream_t        s;
    expect_t        x[2];
    unsigned char  *payload;

    payload = malloc(len ? len : 1);
    assert_non_null(payload);

    for (i = 0; i < len; i++) {
        payload[i] = (opcode == TEXT) ? (unsigned char) ('a' + i % 26)
                                      : (unsigned char) (i * 7 + (i >> 8));
    }

    memset(&s, 0, sizeof(s));
    put_frame_ex(&s, FIN | opcode, 1, length_bytes, payload, len);

    memset(x, 0, sizeof(x));
    x[0].rc = RC_DATA;
    x[0].opcode = opcode;
    x[0].data = payload;
    x[0].len = len;
    x[1].rc = RC_END;
    x[1].opcode = opcode;

    /* a message without payload is MESSAGE_END alone */
    if (len == 0) {
        check_stream(&server, &s, x + 1, 1, -1);

    } else {
        check_stream(&server, &s, x, 2, -1);
    }

    stream_free(&s);
    free(payload);
}


static void
test_lengths_7_16_64(void **state)
{
    (void) state;

    check_length(0, BINARY, 0);
    check_length(1, BINARY, 0);
    check_length(7, TEXT, 0);
    check_length(125, BINARY, 0);
    check_length(126, BINARY, 0);
    check_length(127, TEXT, 0);
    check_length(1000, BINARY, 0);
    check_length(65535, BINARY, 0);
    check_length(65536, BINARY, 0);
    check_length(70001, TEXT, 0);
}


static void
test_header_bytes_exact(void **state)
{
    size_t                           used;
    unsigned char                    frame[16];
    wh_frame_parser_t  p;
    wh_frame_event_t   ev;

    (void) state;

    /* RFC 6455 5.7: a masked "Hello" */
    memcpy(frame, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);

    memset(&p, 0, sizeof(p));
    p.require_mask = 1;

    assert_int_equal(wh_frame_parse(&p, frame, 11, &used, &ev),
                     RC_DATA);
    assert_int_equal(used, 11);
    assert_ptr_equal(ev.data, frame + 6);
    assert_int_equal(ev.len, 5);
    assert_memory_equal(frame + 6, "Hello", 5);
    assert_int_equal(ev.opcode, TEXT);

    assert_int_equal(wh_frame_parse(&p, frame + 11, 0, &used,
                                                  &ev),
                     RC_END);
    assert_int_equal(used, 0);
    assert_int_equal(ev.opcode, TEXT);

    assert_int_equal(wh_frame_parse(&p, frame + 11, 0, &used,
                                                  &ev),
                     RC_AGAIN);
    assert_int_equal(used, 0);

    /* RFC 6455 5.7: unmasked, accepted on the client side */
    memcpy(frame, "\x01\x03Hel\x80\x02lo", 9);

    memset(&p, 0, sizeof(p));

    assert_int_equal(wh_frame_parse(&p, frame, 9, &used, &ev),
                     RC_DATA);
    assert_int_equal(used, 5);
    assert_int_equal(wh_frame_parse(&p, frame + 5, 4, &used,
                                                  &ev),
                     RC_DATA);
    assert_int_equal(used, 4);
    assert_memory_equal(ev.data, "lo", 2);
    assert_int_equal(ev.opcode, TEXT);
    assert_int_equal(wh_frame_parse(&p, frame + 9, 0, &used,
                                                  &ev),
                     RC_END);
}


static void
test_unmasked_frames_on_client_side(void **state)
{
    stream_t        s;
    const expect_t  x[] = {
        X_DATA(TEXT, "from the server"), X_END(TEXT),
        X_CONTROL(PING, ""),
        X_DATA(BINARY, "masked anyway"), X_END(BINARY)
    };

    (void) state;

    memset(&s, 0, sizeof(s));
    put_frame_ex(&s, FIN | TEXT, 0, 0, "from the server", 15);
    put_frame_ex(&s, FIN | PING, 0, 0, "", 0);
    put_frame_ex(&s, FIN | BINARY, 1, 0, "masked anyway", 13);
    check(&client, &s, x, -1);
    stream_free(&s);
}


static void
test_fragmented_with_interleaved_control(void **state)
{
    stream_t        s;
    const expect_t  x[] = {
        X_DATA(TEXT, "Hel"),
        X_CONTROL(PING, "ping"),
        X_DATA(TEXT, "lo "),
        X_CONTROL(PONG, ""),
        X_CLOSE(1001, "going"),
        X_DATA(TEXT, "world"),
        X_END(TEXT),
        X_DATA(BINARY, "\x01\x02"),
        X_CONTROL(PING, ""),
        X_END(BINARY)
    };

    (void) state;

    memset(&s, 0, sizeof(s));
    put_str(&s, TEXT, "Hel");
    put_str(&s, FIN | PING, "ping");
    put_str(&s, CONT, "lo ");
    put_str(&s, FIN | PONG, "");
    put_str(&s, FIN | CLOSE, "\x03\xe9going");
    put_str(&s, FIN | CONT, "world");
    put_str(&s, BINARY, "\x01\x02");
    put_str(&s, FIN | PING, "");
    put_str(&s, FIN | CONT, "");
    check(&server, &s, x, -1);
    stream_free(&s);
}


static void
test_zero_length_frames(void **state)
{
    stream_t        s;
    const expect_t  x[] = {
        X_END(TEXT),
        X_END(BINARY),
        X_END(TEXT),
        X_DATA(TEXT, "ab"),
        X_END(TEXT),
        X_CONTROL(PING, ""),
        X_CONTROL(PONG, ""),
        X_CLOSE(1005, "")
    };

    (void) state;

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "");
    put_str(&s, FIN | BINARY, "");
    put_str(&s, TEXT, "");
    put_str(&s, CONT, "");
    put_str(&s, FIN | CONT, "");
    put_str(&s, TEXT, "");
    put_str(&s, CONT, "a");
    put_str(&s, CONT, "");
    put_str(&s, FIN | CONT, "b");
    put_str(&s, FIN | PING, "");
    put_str(&s, FIN | PONG, "");
    put_str(&s, FIN | CLOSE, "");
    check(&server, &s, x, -1);
    stream_free(&s);
}


static void
test_control_frames(void **state)
{
    size_t          i;
    stream_t        s;
    expect_t        x[6];
    unsigned char   payload[125], reason[123];

    (void) state;

    memset(reason, 'r', sizeof(reason));

    for (i = 0; i < sizeof(payload); i++) {
        payload[i] = (unsigned char) (0xff - i);
    }

    memset(&s, 0, sizeof(s));
    put_frame(&s, FIN | PING, (const char *) payload, 125);
    put_frame(&s, FIN | PONG, (const char *) payload, 125);
    put_str(&s, FIN | CLOSE, "\x03\xe8");
    put_str(&s, FIN | CLOSE, "\x13\x87\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc");
    payload[0] = 0x0b;
    payload[1] = 0xb8;
    memcpy(payload + 2, reason, 123);
    put_frame(&s, FIN | CLOSE, (const char *) payload, 125);
    put_str(&s, FIN | CLOSE, "\x0f\xa0\x00");

    memset(x, 0, sizeof(x));

    for (i = 0; i < 125; i++) {
        payload[i] = (unsigned char) (0xff - i);
    }

    x[0].rc = RC_CONTROL;
    x[0].opcode = PING;
    x[0].data = payload;
    x[0].len = 125;
    x[1] = x[0];
    x[1].opcode = PONG;
    x[2].rc = RC_CONTROL;
    x[2].opcode = CLOSE;
    x[2].close_code = 1000;
    x[3] = x[2];
    x[3].close_code = 4999;
    x[3].data = (const unsigned char *) "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc";
    x[3].len = 9;
    x[4] = x[2];
    x[4].close_code = 3000;
    x[4].data = reason;
    x[4].len = 123;
    x[5] = x[2];
    x[5].close_code = 4000;
    x[5].data = (const unsigned char *) "\x00";
    x[5].len = 1;

    check_stream(&server, &s, x, 6, -1);
    stream_free(&s);
}


static void
test_rsv_bits(void **state)
{
    size_t          i;
    stream_t        s;
    const expect_t  x[] = { X_DATA(TEXT, "ab"), X_ERROR(1002) };
    const unsigned  rsv[] = { RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3 };
    const unsigned  ops[] = { TEXT, BINARY, PING, PONG, CLOSE };

    (void) state;

    for (i = 0; i < NELTS(rsv) * NELTS(ops); i++) {
        memset(&s, 0, sizeof(s));
        put_str(&s, FIN | rsv[i % 4] | ops[i / 4], "");
        check_fails_at(&server, &s, 1002, 0);
        stream_free(&s);
    }

    /* on a continuation, after a good first frame */
    for (i = 0; i < NELTS(rsv); i++) {
        memset(&s, 0, sizeof(s));
        put_str(&s, TEXT, "ab");
        put_str(&s, FIN | CONT | rsv[i], "cd");
        check(&server, &s, x, (long) s.payload - 6);
        stream_free(&s);
    }
}


static void
test_unknown_opcodes(void **state)
{
    unsigned  op;
    stream_t  s;

    (void) state;

    for (op = 3; op <= 0xf; op++) {
        if (op >= CLOSE && op <= PONG) {
            continue;
        }

        memset(&s, 0, sizeof(s));
        put_str(&s, FIN | op, "x");
        check_fails_at(&server, &s, 1002, 0);
        stream_free(&s);

        memset(&s, 0, sizeof(s));
        put_str(&s, op, "");
        check_fails_at(&server, &s, 1002, 0);
        stream_free(&s);
    }
}


static void
test_fragmented_control(void **state)
{
    stream_t        s;
    const unsigned  ops[] = { PING, PONG, CLOSE };
    size_t          i;

    (void) state;

    for (i = 0; i < NELTS(ops); i++) {
        memset(&s, 0, sizeof(s));
        put_str(&s, ops[i], "");
        check_fails_at(&server, &s, 1002, 0);
        stream_free(&s);
    }
}


static void
test_control_too_long(void **state)
{
    char            payload[126];
    stream_t        s;
    const unsigned  ops[] = { PING, PONG, CLOSE };
    size_t          i;

    (void) state;

    memset(payload, 'p', sizeof(payload));

    for (i = 0; i < NELTS(ops); i++) {
        memset(&s, 0, sizeof(s));
        put_frame(&s, FIN | ops[i], payload, 126);
        check_fails_at(&server, &s, 1002, 1);
        stream_free(&s);

        /* the 64-bit form is no better */
        memset(&s, 0, sizeof(s));
        put_frame_ex(&s, FIN | ops[i], 1, 8, payload, 1);
        check_fails_at(&server, &s, 1002, 1);
        stream_free(&s);
    }
}


static void
test_continuation_outside_message(void **state)
{
    stream_t        s;
    const expect_t  x[] = { X_DATA(TEXT, "done"), X_END(TEXT),
                            X_ERROR(1002) };

    (void) state;

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | CONT, "x");
    check_fails_at(&server, &s, 1002, 0);
    stream_free(&s);

    memset(&s, 0, sizeof(s));
    put_str(&s, CONT, "");
    check_fails_at(&server, &s, 1002, 0);
    stream_free(&s);

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "done");
    put_str(&s, FIN | CONT, "more");
    check(&server, &s, x, (long) s.payload - 6);
    stream_free(&s);
}


static void
test_data_inside_fragmented_message(void **state)
{
    stream_t        s;
    const expect_t  x[] = { X_DATA(TEXT, "part"), X_CONTROL(PING, ""),
                            X_ERROR(1002) };

    (void) state;

    memset(&s, 0, sizeof(s));
    put_str(&s, TEXT, "part");
    put_str(&s, FIN | PING, "");
    put_str(&s, FIN | TEXT, "new");
    check(&server, &s, x, (long) s.payload - 6);
    stream_free(&s);

    memset(&s, 0, sizeof(s));
    put_str(&s, TEXT, "part");
    put_str(&s, FIN | PING, "");
    put_str(&s, BINARY, "new");
    check(&server, &s, x, (long) s.payload - 6);
    stream_free(&s);
}


static void
test_unmasked_client_frame(void **state)
{
    stream_t        s;
    const expect_t  x[] = { X_DATA(TEXT, "ok"), X_END(TEXT), X_ERROR(1002) };

    (void) state;

    memset(&s, 0, sizeof(s));
    put_frame_ex(&s, FIN | TEXT, 0, 0, "no mask", 7);
    check_fails_at(&server, &s, 1002, 1);
    stream_free(&s);

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "ok");
    put_frame_ex(&s, FIN | PING, 0, 0, "", 0);
    check(&server, &s, x, (long) s.payload - 1);
    stream_free(&s);
}


static void
test_length_high_bit(void **state)
{
    stream_t             s;
    static const char    frame[] = "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x05"
                                   "\x01\x02\x03\x04";

    (void) state;

    memset(&s, 0, sizeof(s));
    put_bytes(&s, frame, sizeof(frame) - 1);
    check_fails_at(&server, &s, 1002, 2);
    check_fails_at(&client, &s, 1002, 2);
    stream_free(&s);
}


static void
test_length_not_minimal(void **state)
{
    size_t                           used;
    stream_t                         s;
    wh_frame_parser_t  p;
    wh_frame_event_t   ev;

    (void) state;

    memset(&s, 0, sizeof(s));
    put_frame_ex(&s, FIN | BINARY, 1, 2, "", 0);
    check_fails_at(&server, &s, 1002, 3);
    stream_free(&s);

    memset(&s, 0, sizeof(s));
    put_frame_ex(&s, FIN | TEXT, 1, 2, "abc", 3);
    check_fails_at(&server, &s, 1002, 3);
    stream_free(&s);

    memset(&s, 0, sizeof(s));
    put_frame_ex(&s, FIN | BINARY, 1, 8, "abc", 3);
    check_fails_at(&server, &s, 1002, 9);
    stream_free(&s);

    /* 125 fits 7 bits, 65535 fits 16 */
    memset(&s, 0, sizeof(s));
    put_bytes(&s, "\x82\xfe\x00\x7d", 4);
    check_fails_at(&server, &s, 1002, 3);
    stream_free(&s);

    memset(&s, 0, sizeof(s));
    put_bytes(&s, "\x82\xff\x00\x00\x00\x00\x00\x00\xff\xff", 10);
    check_fails_at(&server, &s, 1002, 9);
    stream_free(&s);

    /* the smallest lengths of each form are fine */
    memset(&s, 0, sizeof(s));
    put_bytes(&s, "\x82\xfe\x00\x7e", 4);
    put_bytes(&s, "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00", 10);

    memset(&p, 0, sizeof(p));
    assert_int_equal(wh_frame_parse(&p, s.data, 4, &used, &ev),
                     RC_AGAIN);
    assert_int_equal(used, 4);

    memset(&p, 0, sizeof(p));
    assert_int_equal(wh_frame_parse(&p, s.data + 4, 10, &used,
                                                  &ev),
                     RC_AGAIN);
    assert_int_equal(used, 10);

    stream_free(&s);
}


static void
test_utf8_invalid_inside_frame(void **state)
{
    long            bad;
    stream_t        s;
    const expect_t  x[] = { X_PREFIX(TEXT, "Hello "), X_ERROR(1007) };
    const expect_t  y[] = { X_PREFIX(TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83"
                                           "\xce\xbc\xce\xb5\xed"),
                            X_ERROR(1007) };

    (void) state;

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "Hello \xff world, and the rest of it");
    bad = (long) s.payload + 6;
    check(&server, &s, x, bad);
    stream_free(&s);

    /* Autobahn 6.3.1: a surrogate, found at its second byte */
    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
                            "\xed\xa0\x80\x65\x64\x69\x74\x65\x64");
    bad = (long) s.payload + 12;
    check(&server, &s, y, bad);
    stream_free(&s);
}


static void
test_utf8_invalid_across_fragments(void **state)
{
    stream_t        s;
    const expect_t  x[] = { X_DATA(TEXT, "ab\xce"), X_CONTROL(PING, "p"),
                            X_PREFIX(TEXT, ""), X_ERROR(1007) };
    const expect_t  y[] = { X_PREFIX(TEXT, "\xf4\x8f"), X_ERROR(1007) };
    const expect_t  z[] = { X_DATA(TEXT, "\xce\xba!"), X_END(TEXT) };

    (void) state;

    /* a character cut by a fragment boundary, then a space */
    memset(&s, 0, sizeof(s));
    put_str(&s, TEXT, "ab\xce");
    put_str(&s, FIN | PING, "p");
    put_str(&s, FIN | CONT, " cd");
    check(&server, &s, x, (long) s.payload);
    stream_free(&s);

    /* F4 8F is fine, F4 8F 20 is not: the third byte is the bad one */
    memset(&s, 0, sizeof(s));
    put_str(&s, TEXT, "\xf4");
    put_str(&s, CONT, "\x8f\x20\x80");
    put_str(&s, FIN | CONT, "");
    check(&server, &s, y, (long) s.payload - 6 - 3 + 1);
    stream_free(&s);

    /* a character cut by the fragments, and valid */
    memset(&s, 0, sizeof(s));
    put_str(&s, TEXT, "\xce");
    put_str(&s, CONT, "\xba");
    put_str(&s, FIN | CONT, "!");
    check(&server, &s, z, -1);
    stream_free(&s);
}


static void
test_utf8_cut_at_message_end(void **state)
{
    stream_t        s;
    const expect_t  x[] = { X_DATA(TEXT, "ab\xe2\x82"), X_ERROR(1007) };
    const expect_t  y[] = { X_DATA(TEXT, "ab\xe2\x82"), X_CONTROL(PING, ""),
                            X_ERROR(1007) };

    (void) state;

    /* the last byte of the frame completes the message, and fails it */
    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "ab\xe2\x82");
    check(&server, &s, x, (long) s.len - 1);
    stream_free(&s);

    /* an empty final fragment: its last mask key byte */
    memset(&s, 0, sizeof(s));
    put_str(&s, TEXT, "ab\xe2\x82");
    put_str(&s, FIN | PING, "");
    put_str(&s, FIN | CONT, "");
    check(&server, &s, y, (long) s.len - 1);
    stream_free(&s);

    /* unmasked on the client side: the length byte */
    memset(&s, 0, sizeof(s));
    put_frame_ex(&s, TEXT, 0, 0, "ab\xe2\x82", 4);
    put_frame_ex(&s, FIN | CONT, 0, 0, "", 0);
    check(&client, &s, x, (long) s.len - 1);
    stream_free(&s);
}


static void
test_close_one_byte(void **state)
{
    stream_t  s;

    (void) state;

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | CLOSE, "\x03");
    check_fails_at(&server, &s, 1002, 1);
    stream_free(&s);
}


static void
test_close_invalid_codes(void **state)
{
    size_t          i;
    stream_t        s;
    unsigned char   payload[4];
    const unsigned  codes[] = { 0, 999, 1004, 1005, 1006, 1015, 1016, 1100,
                                2000, 2999, 5000, 65535 };

    (void) state;

    for (i = 0; i < NELTS(codes); i++) {
        payload[0] = (unsigned char) (codes[i] >> 8);
        payload[1] = (unsigned char) codes[i];
        payload[2] = 'o';
        payload[3] = 'k';

        memset(&s, 0, sizeof(s));
        put_frame(&s, FIN | CLOSE, (const char *) payload, 2);
        check_fails_at(&server, &s, 1002, (long) s.len - 1);
        stream_free(&s);

        memset(&s, 0, sizeof(s));
        put_frame(&s, FIN | CLOSE, (const char *) payload, 4);
        check_fails_at(&server, &s, 1002, (long) s.len - 1);
        stream_free(&s);
    }
}


static void
test_close_reason_invalid_utf8(void **state)
{
    stream_t  s;

    (void) state;

    /* Autobahn 7.5.1 */
    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | CLOSE, "\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc"
                             "\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64");
    check_fails_at(&server, &s, 1007, (long) s.len - 1);
    stream_free(&s);

    /* a reason that stops inside a character */
    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | CLOSE, "\x03\xe8" "ab\xce");
    check_fails_at(&server, &s, 1007, (long) s.len - 1);
    stream_free(&s);
}


static void
test_max_message_size(void **state)
{
    char            big[300];
    stream_t        s;
    config_t        cf;
    const expect_t  fits[] = {
        X_DATA(TEXT, "0123456789"), X_END(TEXT),
        X_DATA(TEXT, "012345"), X_CONTROL(PING, "control is not counted"),
        X_DATA(TEXT, "6789"), X_END(TEXT),
        X_DATA(BINARY, "0123456789"), X_END(BINARY)
    };
    const expect_t  over[] = { X_DATA(TEXT, "012345"), X_ERROR(1009) };

    (void) state;

    cf = server;
    cf.max_message_size = 10;

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "0123456789");
    put_str(&s, TEXT, "012345");
    put_str(&s, FIN | PING, "control is not counted");
    put_str(&s, FIN | CONT, "6789");
    put_str(&s, FIN | BINARY, "0123456789");
    check(&cf, &s, fits, -1);
    stream_free(&s);

    /* over at the length byte: the payload is never waited for */
    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "0123456789a");
    check_fails_at(&cf, &s, 1009, 1);
    stream_free(&s);

    /* over when the fragments add up */
    memset(&s, 0, sizeof(s));
    put_str(&s, TEXT, "012345");
    put_str(&s, FIN | CONT, "6789a");
    check(&cf, &s, over, (long) s.payload - 5);
    stream_free(&s);

    /* at the last byte of a 16-bit and of a 64-bit length */
    memset(big, 'b', sizeof(big));
    cf.max_message_size = 299;

    memset(&s, 0, sizeof(s));
    put_frame(&s, FIN | BINARY, big, 300);
    check_fails_at(&cf, &s, 1009, 3);
    stream_free(&s);

    memset(&s, 0, sizeof(s));
    put_bytes(&s, "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff", 10);
    check_fails_at(&cf, &s, 1009, 9);
    stream_free(&s);
}


static void
test_compressed_messages(void **state)
{
    stream_t        s;
    const expect_t  x[] = {
        X_ZDATA(TEXT, "\xff\x00not"),
        X_CONTROL(PING, ""),
        X_ZDATA(TEXT, " utf8\xc3"),
        X_ZEND(TEXT),
        X_ZDATA(BINARY, "\x01"), X_ZEND(BINARY),
        X_DATA(TEXT, "plain"), X_END(TEXT),
        X_PREFIX(TEXT, ""), X_ERROR(1007)
    };
    const expect_t  y[] = { X_ZDATA(TEXT, "ab"), X_ERROR(1002) };

    (void) state;

    /* inflated text is the caller's to check; the plain message is not */
    memset(&s, 0, sizeof(s));
    put_str(&s, RSV1 | TEXT, "\xff\x00not");
    put_str(&s, FIN | PING, "");
    put_str(&s, CONT, " utf8\xc3");
    put_str(&s, FIN | CONT, "");
    put_str(&s, FIN | RSV1 | BINARY, "\x01");
    put_str(&s, FIN | TEXT, "plain");
    put_str(&s, FIN | TEXT, "\xff");
    check(&deflate, &s, x, (long) s.payload);
    stream_free(&s);

    /* RSV1 only on the first frame */
    memset(&s, 0, sizeof(s));
    put_str(&s, RSV1 | TEXT, "ab");
    put_str(&s, FIN | RSV1 | CONT, "cd");
    check(&deflate, &s, y, (long) s.payload - 6);
    stream_free(&s);

    /* never on control frames, and RSV2, RSV3 never */
    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | RSV1 | PING, "");
    check_fails_at(&deflate, &s, 1002, 0);
    stream_free(&s);

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | RSV2 | TEXT, "");
    check_fails_at(&deflate, &s, 1002, 0);
    stream_free(&s);
}


/*
 * At rest only between messages: the module drops an idle connection's
 * parser then and starts a fresh one when data comes.  A control frame
 * between fragments does not end the message.
 */
static void
test_at_rest(void **state)
{
    size_t              i, used, len;
    stream_t            s;
    unsigned char      *p;
    wh_frame_rc_e       rc;
    wh_frame_event_t    ev;
    wh_frame_parser_t   parser;
    static const char   want[] = "00000001" "0000000" "0000000" "000000"
                                 "00000001" "000001";

    (void) state;

    memset(&s, 0, sizeof(s));
    put_str(&s, FIN | TEXT, "ab");          /* 8 bytes: rest after it */
    put_str(&s, TEXT, "x");                 /* 7: a message begun */
    put_str(&s, FIN | PING, "p");           /* 7: still inside it */
    put_str(&s, CONT, "");                  /* 6 */
    put_str(&s, FIN | CONT, "yz");          /* 8: the message ends */
    put_str(&s, FIN | PONG, "");            /* 6: between messages */
    assert_int_equal(s.len, sizeof(want) - 1);

    memset(&parser, 0, sizeof(parser));
    parser.require_mask = 1;
    wh_frame_parser_init(&parser);
    assert_true(wh_frame_parser_at_rest(&parser));

    for (i = 0; i < s.len; i++) {
        p = s.data + i;
        len = 1;

        do {
            rc = wh_frame_parse(&parser, p, len, &used, &ev);
            assert_int_not_equal(rc, RC_ERROR);
            p += used;
            len -= used;
        } while (rc != RC_AGAIN);

        assert_int_equal(wh_frame_parser_at_rest(&parser),
                         want[i] == '1');
    }

    stream_free(&s);
}


static void
test_init_keeps_settings(void **state)
{
    wh_frame_parser_t  p;

    (void) state;

    memset(&p, 0xff, sizeof(p));
    p.max_message_size = 12345;
    p.require_mask = 1;
    p.allow_rsv1 = 0;
    wh_frame_parser_init(&p);

    assert_int_equal(p.max_message_size, 12345);
    assert_int_equal(p.require_mask, 1);
    assert_int_equal(p.allow_rsv1, 0);
    assert_int_equal(p.remaining, 0);
    assert_int_equal(p.message_size, 0);
    assert_int_equal(p.utf8.state, 0);
    assert_int_equal(p.state, 0);
    assert_int_equal(p.in_message, 0);

    p.require_mask = 0;
    p.allow_rsv1 = 1;
    wh_frame_parser_init(&p);
    assert_int_equal(p.require_mask, 0);
    assert_int_equal(p.allow_rsv1, 1);
}


static void
test_parser_is_small(void **state)
{
    (void) state;

    assert_true(sizeof(wh_frame_parser_t) <= 200);
}


/* what the server writes, read back by a parser on the client side */
static void
check_header_roundtrip(unsigned opcode, int fin, int rsv1, uint64_t len,
    size_t want, wh_frame_rc_e want_rc)
{
    size_t                           n, used;
    unsigned char                    out[WH_FRAME_HEADER_MAX];
    wh_frame_parser_t  p;
    wh_frame_event_t   ev;

    memset(out, 0xee, sizeof(out));
    n = wh_frame_header(out, opcode, fin, rsv1, len);
    assert_int_equal(n, want);
    assert_int_equal(out[0] & 0x80, fin ? 0x80 : 0);
    assert_int_equal(out[0] & 0x40, rsv1 ? 0x40 : 0);
    assert_int_equal(out[0] & 0x0f, opcode);
    assert_int_equal(out[1] & 0x80, 0);

    memset(&p, 0, sizeof(p));
    p.allow_rsv1 = 1;

    assert_int_equal(wh_frame_parse(&p, out, n, &used, &ev),
                     want_rc);
    assert_int_equal(used, n);
    assert_int_equal(ev.opcode, want_rc == RC_AGAIN ? 0 : opcode);

    if (want_rc == RC_AGAIN) {
        assert_int_equal(p.remaining, len);
    }
}


static void
test_frame_header_builder(void **state)
{
    unsigned char  out[WH_FRAME_HEADER_MAX];

    (void) state;

    check_header_roundtrip(TEXT, 1, 0, 0, 2, RC_END);
    check_header_roundtrip(BINARY, 0, 0, 0, 2, RC_AGAIN);
    check_header_roundtrip(TEXT, 1, 1, 125, 2, RC_AGAIN);
    check_header_roundtrip(BINARY, 0, 0, 126, 4, RC_AGAIN);
    check_header_roundtrip(BINARY, 1, 1, 65535, 4, RC_AGAIN);
    check_header_roundtrip(TEXT, 1, 0, 65536, 10, RC_AGAIN);
    check_header_roundtrip(BINARY, 1, 0, 0x100000005ULL, 10, RC_AGAIN);
    check_header_roundtrip(BINARY, 0, 0, 0x7fffffffffffffffULL, 10,
                           RC_AGAIN);
    check_header_roundtrip(PING, 1, 0, 0, 2, RC_CONTROL);
    check_header_roundtrip(CLOSE, 1, 0, 2, 2, RC_AGAIN);

    assert_int_equal(wh_frame_header(out, TEXT, 1, 0, 5), 2);
    assert_memory_equal(out, "\x81\x05", 2);

    assert_int_equal(wh_frame_header(out, BINARY, 1, 0, 256),
                     4);
    assert_memory_equal(out, "\x82\x7e\x01\x00", 4);

    assert_int_equal(wh_frame_header(out, TEXT, 1, 1, 65536),
                     10);
    assert_memory_equal(out, "\xc1\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);

    assert_int_equal(wh_frame_header(out, PONG, 1, 0, 3), 2);
    assert_memory_equal(out, "\x8a\x03", 2);

    assert_int_equal(wh_frame_header(out, CONT, 0, 0, 1), 2);
    assert_memory_equal(out, "\x00\x01", 2);
}


static void
test_close_payload_builder(void **state)
{
    size_t         n;
    char           reason[200];
    unsigned char  out[WH_WS_CONTROL_MAX + 8];

    (void) state;

    memset(out, 0xee, sizeof(out));
    n = wh_frame_close_payload(out, 1000, "bye");
    assert_int_equal(n, 5);
    assert_memory_equal(out, "\x03\xe8" "bye", 5);

    n = wh_frame_close_payload(out, 4401, NULL);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "\x11\x31", 2);

    n = wh_frame_close_payload(out, 1009, "");
    assert_int_equal(n, 2);

    n = wh_frame_close_payload(out, 0, "ignored");
    assert_int_equal(n, 0);

    /* exactly 123 bytes: kept whole */
    memset(reason, 'r', sizeof(reason));
    reason[123] = '\0';
    n = wh_frame_close_payload(out, 1008, reason);
    assert_int_equal(n, 125);

    /* longer: cut to 123 */
    reason[199] = '\0';
    memset(out, 0xee, sizeof(out));
    n = wh_frame_close_payload(out, 1008, reason);
    assert_int_equal(n, 125);
    assert_int_equal(out[125], 0xee);

    /* a 2-byte character over the limit goes whole */
    memcpy(reason + 122, "\xc3\xa9", 2);
    n = wh_frame_close_payload(out, 1008, reason);
    assert_int_equal(n, 124);
    assert_int_equal(wh_utf8_validate(out + 2, n - 2), 0);

    /* a 4-byte character from byte 121 on goes whole too */
    memset(reason, 'r', 199);
    memcpy(reason + 121, "\xf0\x9f\x98\x80", 4);
    n = wh_frame_close_payload(out, 1008, reason);
    assert_int_equal(n, 2 + 121);

    /* one ending at byte 122 stays */
    memset(reason, 'r', 199);
    memcpy(reason + 119, "\xf0\x9f\x98\x80", 4);
    n = wh_frame_close_payload(out, 1008, reason);
    assert_int_equal(n, 125);
    assert_memory_equal(out + 2 + 119, "\xf0\x9f\x98\x80", 4);
}


static void
test_close_code_table(void **state)
{
    size_t          i;
    unsigned        code, nvalid;
    const unsigned  valid[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                1010, 1011, 1012, 1013, 1014, 3000, 3999,
                                4000, 4401, 4999 };
    const unsigned  invalid[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016,
                                  1100, 2000, 2999, 5000, 65535, 65536,
                                  0x103e8 };

    (void) state;

    for (i = 0; i < NELTS(valid); i++) {
        assert_true(wh_frame_close_code_valid(valid[i]));
    }

    for (i = 0; i < NELTS(invalid); i++) {
        assert_false(wh_frame_close_code_valid(invalid[i]));
    }

    nvalid = 0;

    for (code = 0; code < 70000; code++) {
        nvalid += wh_frame_close_code_valid(code) ? 1 : 0;
    }

    assert_int_equal(nvalid, 4 + 8 + 2000);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_single_text),
        cmocka_unit_test(test_several_messages),
        cmocka_unit_test(test_lengths_7_16_64),
        cmocka_unit_test(test_header_bytes_exact),
        cmocka_unit_test(test_unmasked_frames_on_client_side),
        cmocka_unit_test(test_fragmented_with_interleaved_control),
        cmocka_unit_test(test_zero_length_frames),
        cmocka_unit_test(test_control_frames),
        cmocka_unit_test(test_rsv_bits),
        cmocka_unit_test(test_unknown_opcodes),
        cmocka_unit_test(test_fragmented_control),
        cmocka_unit_test(test_control_too_long),
        cmocka_unit_test(test_continuation_outside_message),
        cmocka_unit_test(test_data_inside_fragmented_message),
        cmocka_unit_test(test_unmasked_client_frame),
        cmocka_unit_test(test_length_high_bit),
        cmocka_unit_test(test_length_not_minimal),
        cmocka_unit_test(test_utf8_invalid_inside_frame),
        cmocka_unit_test(test_utf8_invalid_across_fragments),
        cmocka_unit_test(test_utf8_cut_at_message_end),
        cmocka_unit_test(test_close_one_byte),
        cmocka_unit_test(test_close_invalid_codes),
        cmocka_unit_test(test_close_reason_invalid_utf8),
        cmocka_unit_test(test_max_message_size),
        cmocka_unit_test(test_compressed_messages),
        cmocka_unit_test(test_at_rest),
        cmocka_unit_test(test_init_keeps_settings),
        cmocka_unit_test(test_parser_is_small),
        cmocka_unit_test(test_frame_header_builder),
        cmocka_unit_test(test_close_payload_builder),
        cmocka_unit_test(test_close_code_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
