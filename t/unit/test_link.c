/*
 * The link codec: every message type round-trips, every truncation and
 * every bad length is an error (never a crash), limits are enforced.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wh_link.h"


static const uint8_t  all_types[] = {
    WH_LINK_HELLO, WH_LINK_WELCOME, WH_LINK_SUBSCRIBE, WH_LINK_SUBSCRIBED,
    WH_LINK_COUNT, WH_LINK_PUBLISH, WH_LINK_PUBLISHED, WH_LINK_MESSAGE,
    WH_LINK_REQUEST, WH_LINK_RESPONSE, WH_LINK_REPLAY, WH_LINK_REPLAY_ITEM,
    WH_LINK_REPLAY_END, WH_LINK_SESSION_OPEN, WH_LINK_SESSION_ACCEPT,
    WH_LINK_SESSION_UPDATE, WH_LINK_SESSION_CLOSE, WH_LINK_PING,
    WH_LINK_PONG, WH_LINK_EVENT, WH_LINK_COMMAND_RESULT, WH_LINK_COMMAND,
    WH_LINK_SESSION_KICK, WH_LINK_REVOKE, WH_LINK_BROADCAST
};

#define NTYPES  (sizeof(all_types) / sizeof(all_types[0]))


static wh_str_t
str(const char *s)
{
    wh_str_t  r = { s, strlen(s) };

    return r;
}


/* every field set to a distinct value */
static void
fill(wh_link_msg_t *m, uint8_t type)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->flag = 1;
    m->status = 0x1234;
    m->req_id = 0xdeadbeef;
    m->count = 77;
    m->id = 0x0102030405060708ULL;
    m->id2 = 0xffffffffffffffffULL;
    m->workspace = str("acme");
    m->channel = str("sensors/V1");
    m->epoch = str("h3k2abcd");
    m->name = str("nginx/3");
    m->path = str("/channels/a/messages");
    m->query = str("since=4&limit=2");
    m->session = str("s-91f2");
    m->client_id = str("pc-7");
    m->client_type = str("gui");
    m->reason = str("bye");
    m->body = str("{\"a\":1}");
}


static int
str_eq(wh_str_t a, wh_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data,
                                                   a.len) == 0);
}


/* the decoded message carries every field the type has on the wire,
 * and exactly those: other fields must stay zero */
static void
check_fields(const wh_link_msg_t *in, const wh_link_msg_t *out)
{
    int                  nonzero = 0;
    const wh_str_t      *si, *so;
    const wh_str_t      *fields_in[11], *fields_out[11];
    size_t               i;

    assert_int_equal(out->type, in->type);
    assert_true(out->flag == 0 || out->flag == in->flag);
    assert_true(out->status == 0 || out->status == in->status);
    assert_true(out->req_id == 0 || out->req_id == in->req_id);
    assert_true(out->count == 0 || out->count == in->count);
    assert_true(out->id == 0 || out->id == in->id);
    assert_true(out->id2 == 0 || out->id2 == in->id2);

    fields_in[0] = &in->workspace;  fields_out[0] = &out->workspace;
    fields_in[1] = &in->channel;    fields_out[1] = &out->channel;
    fields_in[2] = &in->epoch;      fields_out[2] = &out->epoch;
    fields_in[3] = &in->name;       fields_out[3] = &out->name;
    fields_in[4] = &in->path;       fields_out[4] = &out->path;
    fields_in[5] = &in->query;      fields_out[5] = &out->query;
    fields_in[6] = &in->session;    fields_out[6] = &out->session;
    fields_in[7] = &in->client_id;  fields_out[7] = &out->client_id;
    fields_in[8] = &in->client_type; fields_out[8] = &out->client_type;
    fields_in[9] = &in->reason;     fields_out[9] = &out->reason;
    fields_in[10] = &in->body;      fields_out[10] = &out->body;

    for (i = 0; i < 11; i++) {
        si = fields_in[i];
        so = fields_out[i];

        if (so->len) {
            assert_true(str_eq(*si, *so));
            nonzero++;
        }
    }

    nonzero += out->req_id != 0;
    assert_true(nonzero > 0);
}


static void
test_round_trip_every_type(void **state)
{
    size_t          i, flen;
    wh_buf_t        b = { 0 };
    const char     *err;
    wh_link_msg_t   in, out;

    (void) state;

    for (i = 0; i < NTYPES; i++) {
        fill(&in, all_types[i]);
        b.len = 0;
        assert_int_equal(wh_link_encode(&b, &in), 0);
        assert_int_equal(wh_link_frame_len(b.data, b.len, &flen), 1);
        assert_int_equal(flen, b.len);
        assert_int_equal(wh_link_decode(b.data, b.len, &out, &err), 0);
        check_fields(&in, &out);
        assert_string_not_equal(wh_link_type_name(all_types[i]),
                                "unknown");
    }

    wh_buf_free(&b);
}


/* exact wire bytes of one frame, as LINK.md documents them */
static void
test_wire_layout(void **state)
{
    wh_buf_t        b = { 0 };
    wh_link_msg_t   m;
    static const unsigned char  want[] = {
        0, 0, 0, 0x0f,                  /* L = 15 */
        0x01,                           /* HELLO */
        0, 1,                           /* version */
        0, 0, 0x30, 0x39,               /* pid 12345 */
        0, 6, 'n', 'g', 'i', 'n', 'x', '1'
    };

    (void) state;

    memset(&m, 0, sizeof(m));
    m.type = WH_LINK_HELLO;
    m.status = 1;
    m.count = 12345;
    m.name = str("nginx1");
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    wh_buf_free(&b);
}


/* WELCOME ends with the flag byte (bit 0: egress configured) */
static void
test_welcome_layout(void **state)
{
    wh_buf_t        b = { 0 };
    const char     *err;
    wh_link_msg_t   m, out;
    static const unsigned char  want[] = {
        0, 0, 0, 0x10,                  /* L = 16 */
        0x81,                           /* WELCOME */
        0, 1,                           /* version */
        0, 2, 'a', 'b',                 /* instance */
        0, 0, 0, 0, 0, 0, 0x01, 0x02,   /* start time */
        WH_LINK_WELCOME_EGRESS          /* flag */
    };

    (void) state;

    memset(&m, 0, sizeof(m));
    m.type = WH_LINK_WELCOME;
    m.status = 1;
    m.name = str("ab");
    m.id2 = 0x0102;
    m.flag = WH_LINK_WELCOME_EGRESS;
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    assert_int_equal(wh_link_decode(b.data, b.len, &out, &err), 0);
    assert_int_equal(out.flag, WH_LINK_WELCOME_EGRESS);
    assert_int_equal(out.id2, 0x0102);
    wh_buf_free(&b);
}


/* EVENT: workspace, client_id, session, name, then the body blob */
static void
test_event_layout(void **state)
{
    wh_buf_t        b = { 0 };
    const char     *err;
    wh_link_msg_t   m, out;
    static const unsigned char  want[] = {
        0, 0, 0, 0x16,                  /* L = 22 */
        0x0c,                           /* EVENT */
        0, 1, 'w',                      /* workspace */
        0, 2, 'c', '1',                 /* client_id */
        0, 1, 's',                      /* session */
        0, 3, 'e', 'v', 't',            /* name */
        0, 0, 0, 2, '{', '}'            /* body */
    };

    (void) state;

    memset(&m, 0, sizeof(m));
    m.type = WH_LINK_EVENT;
    m.workspace = str("w");
    m.client_id = str("c1");
    m.session = str("s");
    m.name = str("evt");
    m.body = str("{}");
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    assert_int_equal(wh_link_decode(b.data, b.len, &out, &err), 0);
    assert_int_equal(out.body.len, 2);
    assert_memory_equal(out.name.data, "evt", 3);
    assert_string_equal(wh_link_type_name(WH_LINK_EVENT), "EVENT");
    wh_buf_free(&b);
}


static void
test_every_truncation_fails(void **state)
{
    size_t          i, cut, flen;
    wh_buf_t        b = { 0 };
    unsigned char  *copy;
    const char     *err;
    wh_link_msg_t   in, out;

    (void) state;

    for (i = 0; i < NTYPES; i++) {
        fill(&in, all_types[i]);
        b.len = 0;
        assert_int_equal(wh_link_encode(&b, &in), 0);

        for (cut = 0; cut < b.len; cut++) {
            /* a short buffer is "need more", never a frame */
            assert_int_equal(wh_link_frame_len(b.data, cut, &flen), 0);

            /* a frame whose L claims only `cut` bytes of the body */
            if (cut < 5) {
                continue;
            }

            copy = malloc(cut);
            assert_non_null(copy);
            memcpy(copy, b.data, cut);
            copy[0] = (unsigned char) ((cut - 4) >> 24);
            copy[1] = (unsigned char) ((cut - 4) >> 16);
            copy[2] = (unsigned char) ((cut - 4) >> 8);
            copy[3] = (unsigned char) (cut - 4);
            assert_int_equal(wh_link_decode(copy, cut, &out, &err), -1);
            assert_non_null(err);
            free(copy);
        }

        /* the decoder must not trust a prefix that disagrees */
        assert_int_equal(wh_link_decode(b.data, b.len - 1, &out, &err),
                         -1);
    }

    wh_buf_free(&b);
}


static void
test_trailing_bytes_fail(void **state)
{
    wh_buf_t        b = { 0 };
    const char     *err;
    wh_link_msg_t   in, out;

    (void) state;

    fill(&in, WH_LINK_PING);
    assert_int_equal(wh_link_encode(&b, &in), 0);
    assert_int_equal(wh_buf_append(&b, "x", 1), 0);
    b.data[3]++;
    assert_int_equal(wh_link_decode(b.data, b.len, &out, &err), -1);
    assert_string_equal(err, "trailing bytes after the last field");
    wh_buf_free(&b);
}


static void
test_unknown_type_fails(void **state)
{
    unsigned        t;
    size_t          known, i;
    const char     *err;
    wh_link_msg_t   m;
    unsigned char   frame[5] = { 0, 0, 0, 1, 0 };

    (void) state;

    for (t = 0; t < 256; t++) {
        known = 0;

        for (i = 0; i < NTYPES; i++) {
            known |= all_types[i] == t;
        }

        if (known) {
            continue;
        }

        frame[4] = (unsigned char) t;
        assert_int_equal(wh_link_decode(frame, 5, &m, &err), -1);
        assert_string_equal(err, "unknown message type");
        memset(&m, 0, sizeof(m));
        m.type = (uint8_t) t;
        assert_int_equal(wh_link_encode(&(wh_buf_t) { 0 }, &m), -1);
    }
}


static void
test_frame_len_limits(void **state)
{
    size_t          flen = 0;
    unsigned char   zero[4] = { 0, 0, 0, 0 };
    unsigned char   max[4] = { 0x01, 0, 0, 0 };        /* 16 MiB */
    unsigned char   over[4] = { 0x01, 0, 0, 1 };
    unsigned char   huge[4] = { 0xff, 0xff, 0xff, 0xff };

    (void) state;

    assert_int_equal(wh_link_frame_len(zero, 4, &flen), -1);
    assert_int_equal(wh_link_frame_len(over, 4, &flen), -1);
    assert_int_equal(wh_link_frame_len(huge, 4, &flen), -1);
    assert_int_equal(wh_link_frame_len(max, 4, &flen), 0);
    assert_int_equal(wh_link_frame_len(max, 4 + WH_LINK_MAX_FRAME, &flen),
                     1);
    assert_int_equal(flen, 4 + WH_LINK_MAX_FRAME);
}


/* a string length that points past the end of the frame */
static void
test_oversize_field_lengths(void **state)
{
    const char     *err;
    wh_link_msg_t   m;
    unsigned char   hello[] = {
        0, 0, 0, 0x09, WH_LINK_HELLO, 0, 1, 0, 0, 0, 1, 0xff, 0xff
    };
    unsigned char   resp[] = {
        0, 0, 0, 0x15, WH_LINK_RESPONSE, 0, 0, 0, 1, 0, 200, 0, 0, 0,
        0xff, 0xff, 0xff, 0xf0, '{', '}', '!', 0, 0, 0, 2
    };

    (void) state;

    assert_int_equal(wh_link_decode(hello, sizeof(hello), &m, &err), -1);
    assert_int_equal(wh_link_decode(resp, sizeof(resp), &m, &err), -1);
    resp[14] = 0;
    resp[15] = 0;
    resp[16] = 0;
    resp[17] = 3;
    assert_int_equal(wh_link_decode(resp, sizeof(resp), &m, &err), 0);
    assert_int_equal(m.status, 200);
    assert_int_equal(m.body.len, 3);
    assert_int_equal(m.count, 2);
}


static void
test_encode_limits(void **state)
{
    wh_buf_t        b = { 0 };
    char           *big;
    wh_link_msg_t   m;

    (void) state;

    big = calloc(1, WH_LINK_MAX_FRAME + 1);
    assert_non_null(big);

    fill(&m, WH_LINK_HELLO);
    m.name.data = big;
    m.name.len = WH_LINK_MAX_STR + 1;
    assert_int_equal(wh_link_encode(&b, &m), -1);
    assert_int_equal(b.len, 0);
    m.name.len = WH_LINK_MAX_STR;
    assert_int_equal(wh_link_encode(&b, &m), 0);

    b.len = 0;
    fill(&m, WH_LINK_RESPONSE);
    m.body.data = big;
    /* 1 + 4 + 2 + 1 + 2 + 4 ("pc-7") + 4 + body + 4 */
    m.body.len = WH_LINK_MAX_FRAME - 22;
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(b.len, 4 + WH_LINK_MAX_FRAME);
    b.len = 0;
    m.body.len++;
    assert_int_equal(wh_link_encode(&b, &m), -1);
    assert_int_equal(b.len, 0);

    m.body.data = NULL;
    m.body.len = 3;
    assert_int_equal(wh_link_encode(&b, &m), -1);

    free(big);
    wh_buf_free(&b);
}


static void
test_several_frames_in_one_buffer(void **state)
{
    int             i;
    size_t          flen, off = 0;
    wh_buf_t        b = { 0 };
    const char     *err;
    wh_link_msg_t   m;

    (void) state;

    for (i = 0; i < 100; i++) {
        fill(&m, WH_LINK_MESSAGE);
        m.id = (uint64_t) i;
        assert_int_equal(wh_link_encode(&b, &m), 0);
    }

    for (i = 0; i < 100; i++) {
        assert_int_equal(wh_link_frame_len(b.data + off, b.len - off,
                                           &flen), 1);
        assert_int_equal(wh_link_decode(b.data + off, flen, &m, &err), 0);
        assert_int_equal(m.id, (uint64_t) i);
        off += flen;
    }

    assert_int_equal(off, b.len);
    wh_buf_consume(&b, off / 2);
    assert_int_equal(b.len, off - off / 2);
    wh_buf_consume(&b, b.len + 5);
    assert_int_equal(b.len, 0);
    wh_buf_free(&b);
}


/* the builders put each named value where LINK.md says, and it survives
 * the wire */
static void
test_builders(void **state)
{
    wh_buf_t       b = { NULL, 0, 0 };
    wh_link_msg_t  m, out;
    const char    *err;
    size_t         n;

    (void) state;

    wh_link_subscribe(&m, str("acme"), str("sensors/V1"), 3, 41, str("e1"));
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(wh_link_frame_len(b.data, b.len, &n), 1);
    assert_int_equal(wh_link_decode(b.data, n, &out, &err), 0);
    assert_int_equal(out.type, WH_LINK_SUBSCRIBE);
    assert_int_equal(out.count, 3);
    assert_int_equal(out.flag, 1);
    assert_int_equal(out.id, 41);
    assert_true(str_eq(out.epoch, str("e1")));
    assert_true(str_eq(out.channel, str("sensors/V1")));
    wh_buf_consume(&b, n);

    wh_link_subscribe(&m, str("acme"), str("c"), 1, 41, str(""));
    assert_int_equal(m.flag, 0);
    assert_int_equal(m.id, 0);

    wh_link_count(&m, str("acme"), str("c"), 0);
    assert_int_equal(m.type, WH_LINK_COUNT);
    assert_int_equal(m.count, 0);

    wh_link_replay(&m, str("acme"), str("c"), 10, 20, str("e2"), 4096);
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(wh_link_frame_len(b.data, b.len, &n), 1);
    assert_int_equal(wh_link_decode(b.data, n, &out, &err), 0);
    assert_int_equal(out.type, WH_LINK_REPLAY);
    assert_int_equal(out.id, 10);
    assert_int_equal(out.id2, 20);
    assert_int_equal(out.count, 4096);
    wh_buf_consume(&b, n);

    wh_link_request(&m, WH_LINK_ROLE_ADMIN, str("acme"), str("ops-1"),
                    str("GET"), str("/stats"), str("a=1"), str(""));
    assert_int_equal(m.type, WH_LINK_REQUEST);
    assert_int_equal(m.flag, WH_LINK_ROLE_ADMIN);
    assert_true(str_eq(m.path, str("/stats")));
    /* version 4: the caller's sub travels last */
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(wh_link_frame_len(b.data, b.len, &n), 1);
    assert_int_equal(wh_link_decode(b.data, n, &out, &err), 0);
    assert_int_equal(out.type, WH_LINK_REQUEST);
    assert_true(str_eq(out.client_id, str("ops-1")));
    assert_true(str_eq(out.query, str("a=1")));
    wh_buf_consume(&b, n);

    wh_link_session_open(&m, str("s-1"), str("acme"), str("pc-7"),
                         str("gui"), str("Desk"), 1700000000, 8);
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(wh_link_frame_len(b.data, b.len, &n), 1);
    assert_int_equal(wh_link_decode(b.data, n, &out, &err), 0);
    assert_int_equal(out.id2, 1700000000);
    assert_int_equal(out.count, 8);
    assert_true(str_eq(out.client_type, str("gui")));
    wh_buf_consume(&b, n);

    wh_link_hello(&m, 4242, str("nginx/4242"));
    assert_int_equal(m.status, WH_LINK_VERSION);
    assert_int_equal(m.count, 4242);

    wh_link_welcome(&m, str("0123456789abcdef"), 1700000000123ULL, 1);
    assert_int_equal(m.status, WH_LINK_VERSION);
    assert_int_equal(m.flag, WH_LINK_WELCOME_EGRESS);
    assert_int_equal(m.id2, 1700000000123ULL);

    wh_link_subscribed(&m, str("acme"), str("c"), 9, str("e3"), 0);
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(wh_link_frame_len(b.data, b.len, &n), 1);
    assert_int_equal(wh_link_decode(b.data, n, &out, &err), 0);
    assert_int_equal(out.type, WH_LINK_SUBSCRIBED);
    assert_int_equal(out.id, 9);
    assert_int_equal(out.flag, 0);
    wh_buf_consume(&b, n);

    wh_link_response(&m, 7, 201, WH_LINK_RESPONSE_TOKEN, str("pc-7"),
                     str("{}"));
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(wh_link_frame_len(b.data, b.len, &n), 1);
    assert_int_equal(wh_link_decode(b.data, n, &out, &err), 0);
    assert_int_equal(out.status, 201);
    assert_int_equal(out.flag, WH_LINK_RESPONSE_TOKEN);
    assert_true(str_eq(out.client_id, str("pc-7")));
    assert_int_equal(out.count, 0);
    wh_buf_consume(&b, n);

    /* a rate limit's Retry-After travels in count (version 3) */
    wh_link_response(&m, 8, 429, 0, str(""), str("{}"));
    m.count = 3;
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(wh_link_frame_len(b.data, b.len, &n), 1);
    assert_int_equal(wh_link_decode(b.data, n, &out, &err), 0);
    assert_int_equal(out.status, 429);
    assert_int_equal(out.count, 3);
    wh_buf_consume(&b, n);

    wh_link_session_accept(&m, str("s-1"), 4408, 12);
    assert_int_equal(m.status, 4408);
    assert_int_equal(m.count, 12);

    wh_link_session_kick(&m, str("s-1"), 4403, str("client deleted"));
    assert_int_equal(m.type, WH_LINK_SESSION_KICK);
    assert_int_equal(m.status, 4403);

    wh_link_revoke(&m, str("acme"), str("pc-7"), 1700000000);
    assert_int_equal(m.id2, 1700000000);

    wh_link_message(&m, str("acme"), str("c"), 5, str("e"), str("{}"), 77);
    assert_int_equal(m.id, 5);
    assert_int_equal(m.id2, 77);

    wh_link_published(&m, 3, 0, 5, str("e"), str(""));
    assert_int_equal(m.req_id, 3);
    assert_int_equal(m.id, 5);

    wh_link_replay_end(&m, 3, WH_LINK_REPLAY_RECOVERED | WH_LINK_REPLAY_MORE,
                       5, str("e"), 4);
    assert_int_equal(wh_link_encode(&b, &m), 0);
    assert_int_equal(wh_link_frame_len(b.data, b.len, &n), 1);
    assert_int_equal(wh_link_decode(b.data, n, &out, &err), 0);
    assert_int_equal(out.flag, 3);
    assert_int_equal(out.id, 5);
    assert_int_equal(out.id2, 4);
    wh_buf_consume(&b, n);

    wh_buf_free(&b);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_wire_layout),
        cmocka_unit_test(test_welcome_layout),
        cmocka_unit_test(test_event_layout),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_trailing_bytes_fail),
        cmocka_unit_test(test_unknown_type_fails),
        cmocka_unit_test(test_frame_len_limits),
        cmocka_unit_test(test_oversize_field_lengths),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_several_frames_in_one_buffer),
        cmocka_unit_test(test_builders),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
