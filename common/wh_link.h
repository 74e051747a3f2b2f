/*
 * Wirehub link protocol (WH_LINK_VERSION): the frames between every
 * nginx worker process and wirehubd.  worker/LINK.md is the normative
 * description; this codec is shared by both sides so they cannot drift
 * apart.
 *
 * Only libc is used here: the nginx module compiles this file too.
 */

#ifndef WH_LINK_H
#define WH_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>


#define WH_LINK_VERSION          4

/* the largest L (frame bytes after the 4-byte length prefix) */
#define WH_LINK_MAX_FRAME        (16u * 1024 * 1024)
#define WH_LINK_MAX_STR          0xffffu

/* worker -> daemon */
#define WH_LINK_HELLO            0x01
#define WH_LINK_SUBSCRIBE        0x02
#define WH_LINK_COUNT            0x03
#define WH_LINK_PUBLISH          0x04
#define WH_LINK_REQUEST          0x06
#define WH_LINK_REPLAY           0x07
#define WH_LINK_SESSION_OPEN     0x08
#define WH_LINK_SESSION_UPDATE   0x09
#define WH_LINK_SESSION_CLOSE    0x0a
#define WH_LINK_PING             0x0b
#define WH_LINK_EVENT            0x0c
#define WH_LINK_COMMAND_RESULT   0x0d

/* daemon -> worker */
#define WH_LINK_WELCOME          0x81
#define WH_LINK_SUBSCRIBED       0x82
#define WH_LINK_PUBLISHED        0x84
#define WH_LINK_MESSAGE          0x85
#define WH_LINK_RESPONSE         0x86
#define WH_LINK_REPLAY_ITEM      0x87
#define WH_LINK_REPLAY_END       0x88
#define WH_LINK_SESSION_ACCEPT   0x89
#define WH_LINK_PONG             0x8b
#define WH_LINK_SESSION_KICK     0x8a
#define WH_LINK_COMMAND          0x8c
#define WH_LINK_BROADCAST        0x8d
#define WH_LINK_REVOKE           0x8e

/* WELCOME flag bits */
#define WH_LINK_WELCOME_EGRESS   0x01    /* EVENT goes to MQTT */

/* REPLAY_END flag bits */
#define WH_LINK_REPLAY_RECOVERED 0x01    /* history reached: no gap */
#define WH_LINK_REPLAY_MORE      0x02    /* one page: ask for the next */

/* RESPONSE flag: what the module adds to the answer, or does with it,
 * because only nginx holds what it takes; the route in wirehubd decides,
 * the module never parses paths */
#define WH_LINK_RESPONSE_TOKEN   0x01    /* a token signed for client_id */
#define WH_LINK_RESPONSE_WORKERS 0x02    /* the workers' view, as "nginx" */
#define WH_LINK_RESPONSE_FANOUT  0x04    /* its message goes out through
                                            the workers: answered once the
                                            worker wrote what it queued */

/* REQUEST flag: the caller's role, as verified by the module */
#define WH_LINK_ROLE_CLIENT      0
#define WH_LINK_ROLE_SERVICE     1
#define WH_LINK_ROLE_ADMIN       2


typedef struct {
    const char  *data;
    size_t       len;
} wh_str_t;

typedef struct {
    uint8_t      type;
    uint8_t      flag;       /* has_since / recovered / role */
    uint16_t     status;     /* version / http status / ... */
    uint32_t     req_id;
    uint32_t     count;      /* pid / local subscribers / active clients
                              * / Retry-After seconds */
    uint64_t     id;         /* message id / since id / last id */
    uint64_t     id2;        /* up_to id / time */
    wh_str_t     workspace, channel, epoch, name, path, query, session,
                 client_id, client_type, reason;
    wh_str_t     body;       /* blob */
} wh_link_msg_t;

static inline int
wh_str_eq(wh_str_t a, wh_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len)
                                            == 0);
}


/* a C string as a wh_str_t */
static inline wh_str_t
wh_cstr(const char *s)
{
    wh_str_t  r;

    r.data = s;
    r.len = strlen(s);

    return r;
}

/* a growable byte buffer; data is malloc/realloc-owned */
typedef struct {
    unsigned char  *data;
    size_t          len, cap;
} wh_buf_t;


/* appends one frame to out; 0, or -1 (ENOMEM, unknown type, a field
 * too long or a frame over WH_LINK_MAX_FRAME: out is then unchanged) */
int wh_link_encode(wh_buf_t *out, const wh_link_msg_t *m);

/* 1 and *frame_len (4 + L) if buf starts with a complete frame, 0 if
 * more bytes are needed, -1 if the length prefix is invalid */
int wh_link_frame_len(const unsigned char *buf, size_t len,
    size_t *frame_len);
/* the same with L bound by max (<= WH_LINK_MAX_FRAME): -1 as soon as the
 * prefix passes it, before the rest is read */
int wh_link_frame_len_max(const unsigned char *buf, size_t len, size_t max,
    size_t *frame_len);

/* decodes one complete frame (prefix included); the strings of m point
 * into frame.  0, or -1 with *err set to a static message. */
int wh_link_decode(const unsigned char *frame, size_t frame_len,
    wh_link_msg_t *m, const char **err);

/* the name of a message type ("HELLO", ...), "unknown" if none */
const char *wh_link_type_name(uint8_t type);

/*
 * Per-type builders.  The numeric fields of wh_link_msg_t mean different
 * things in different types (flag, status, count, id, id2: see
 * worker/LINK.md); these set them by name, from an empty message, for the
 * types whose numbers are not self-evident.
 */

void wh_link_hello(wh_link_msg_t *m, uint32_t pid, wh_str_t name);

/* SUBSCRIBE, resuming after since_id when since_epoch is not empty */
void wh_link_subscribe(wh_link_msg_t *m, wh_str_t workspace,
    wh_str_t channel, uint32_t subscribers, uint64_t since_id,
    wh_str_t since_epoch);

void wh_link_count(wh_link_msg_t *m, wh_str_t workspace, wh_str_t channel,
    uint32_t subscribers);

/* REPLAY of the ids after after_id up to up_to (both of epoch) */
/* REPLAY of (after_id, up_to], one page: at most page_bytes of bodies
 * (0: the daemon's bound), at least one message */
void wh_link_replay(wh_link_msg_t *m, wh_str_t workspace, wh_str_t channel,
    uint64_t after_id, uint64_t up_to, wh_str_t epoch, uint32_t page_bytes);

/* RESPONSE, asking the module to add what adds names (WH_LINK_RESPONSE_*)
 * for client_id; no Retry-After (count 0: set it after, for a 429
 * rate_limited) */
void wh_link_response(wh_link_msg_t *m, uint32_t req_id, uint16_t status,
    uint8_t adds, wh_str_t client_id, wh_str_t body);

/* REQUEST: an HTTP API call, role one of WH_LINK_ROLE_*, sub the
 * caller's token's subject (never the token) */
void wh_link_request(wh_link_msg_t *m, uint8_t role, wh_str_t workspace,
    wh_str_t sub, wh_str_t method, wh_str_t path, wh_str_t query,
    wh_str_t body);

void wh_link_session_open(wh_link_msg_t *m, wh_str_t session,
    wh_str_t workspace, wh_str_t client_id, wh_str_t client_type,
    wh_str_t name, uint64_t iat, uint32_t max_per_client);

/* daemon -> worker */

void wh_link_welcome(wh_link_msg_t *m, wh_str_t instance, uint64_t start_ms,
    int egress);

void wh_link_subscribed(wh_link_msg_t *m, wh_str_t workspace,
    wh_str_t channel, uint64_t last_id, wh_str_t epoch, int recovered);

/* PUBLISHED: status 0 and id, epoch; or an HTTP status and reason (for
 * 429, id is the Retry-After of a rate limit, 0 for a quota) */
void wh_link_published(wh_link_msg_t *m, uint32_t req_id, uint16_t status,
    uint64_t id, wh_str_t epoch, wh_str_t reason);

/* MESSAGE: the client-facing JSON, and when it was stored (latency) */
void wh_link_message(wh_link_msg_t *m, wh_str_t workspace, wh_str_t channel,
    uint64_t id, wh_str_t epoch, wh_str_t json, uint64_t stored_ms);

/* REPLAY_END: flags WH_LINK_REPLAY_*, the channel's last id, and the
 * last id this page sent (where the next page starts) */
void wh_link_replay_end(wh_link_msg_t *m, uint32_t req_id, uint8_t flags,
    uint64_t last_id, wh_str_t epoch, uint64_t sent_up_to);

/* SESSION_ACCEPT: refusal 0 (accepted) or the close code to use */
void wh_link_session_accept(wh_link_msg_t *m, wh_str_t session,
    uint16_t refusal, uint32_t active_clients);

void wh_link_session_kick(wh_link_msg_t *m, wh_str_t session,
    uint16_t close_code, wh_str_t reason);

/* REVOKE: tokens issued before before_s (seconds) are refused */
void wh_link_revoke(wh_link_msg_t *m, wh_str_t workspace,
    wh_str_t client_id, uint64_t before_s);

void wh_buf_free(wh_buf_t *b);
/* ensures room for n more bytes: 0, or -1 on ENOMEM */
int wh_buf_reserve(wh_buf_t *b, size_t n);
/* drops the first n bytes */
void wh_buf_consume(wh_buf_t *b, size_t n);
/* appends n bytes: 0, or -1 on ENOMEM */
int wh_buf_append(wh_buf_t *b, const void *p, size_t n);

#endif /* WH_LINK_H */
