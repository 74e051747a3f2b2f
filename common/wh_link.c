/*
 * The link codec: one table lists the fields of every message type in
 * wire order, and one encoder and one decoder walk it.  Decoding never
 * allocates and checks every length against the end of the frame.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wh_link.h"


typedef enum {
    WH_F_END = 0,
    WH_F_U8,
    WH_F_U16,
    WH_F_U32,
    WH_F_U64,
    WH_F_STR,
    WH_F_BLOB
} wh_field_kind_e;

typedef struct {
    uint8_t      kind;
    uint16_t     offset;     /* of the member in wh_link_msg_t */
} wh_field_t;

typedef struct {
    const char        *name;
    const wh_field_t  *fields;
} wh_type_t;


#define F(kind, member)  { WH_F_##kind, offsetof(wh_link_msg_t, member) }
#define FEND             { WH_F_END, 0 }

static const wh_field_t  wh_hello[] = {
    F(U16, status), F(U32, count), F(STR, name), FEND
};
static const wh_field_t  wh_welcome[] = {
    F(U16, status), F(STR, name), F(U64, id2), F(U8, flag), FEND
};
static const wh_field_t  wh_subscribe[] = {
    F(STR, workspace), F(STR, channel), F(U32, count), F(U8, flag),
    F(U64, id), F(STR, epoch), FEND
};
static const wh_field_t  wh_subscribed[] = {
    F(STR, workspace), F(STR, channel), F(U64, id), F(STR, epoch),
    F(U8, flag), FEND
};
static const wh_field_t  wh_count[] = {
    F(STR, workspace), F(STR, channel), F(U32, count), FEND
};
static const wh_field_t  wh_publish[] = {
    F(U32, req_id), F(STR, workspace), F(STR, channel), F(STR, name),
    F(BLOB, body), F(STR, client_id), FEND
};
static const wh_field_t  wh_published[] = {
    F(U32, req_id), F(U16, status), F(U64, id), F(STR, epoch),
    F(STR, reason), FEND
};
static const wh_field_t  wh_message[] = {
    F(STR, workspace), F(STR, channel), F(U64, id), F(STR, epoch),
    F(BLOB, body), F(U64, id2), FEND
};
static const wh_field_t  wh_request[] = {
    F(U32, req_id), F(STR, workspace), F(U8, flag), F(STR, name),
    F(STR, path), F(STR, query), F(BLOB, body), F(STR, client_id), FEND
};
static const wh_field_t  wh_response[] = {
    F(U32, req_id), F(U16, status), F(U8, flag), F(STR, client_id),
    F(BLOB, body), F(U32, count), FEND
};
static const wh_field_t  wh_replay[] = {
    F(U32, req_id), F(STR, workspace), F(STR, channel), F(U64, id),
    F(STR, epoch), F(U64, id2), F(U32, count), FEND
};
static const wh_field_t  wh_replay_item[] = {
    F(U32, req_id), F(U64, id), F(BLOB, body), FEND
};
static const wh_field_t  wh_replay_end[] = {
    F(U32, req_id), F(U8, flag), F(U64, id), F(STR, epoch), F(U64, id2),
    FEND
};
static const wh_field_t  wh_session_open[] = {
    F(STR, session), F(STR, workspace), F(STR, client_id),
    F(STR, client_type), F(STR, name), F(U64, id2), F(U32, count), FEND
};
static const wh_field_t  wh_session_accept[] = {
    F(STR, session), F(U16, status), F(U32, count), FEND
};
static const wh_field_t  wh_session_update[] = {
    F(STR, session), F(STR, client_type), F(STR, name), FEND
};
static const wh_field_t  wh_session_close[] = {
    F(STR, session), F(STR, reason), FEND
};
static const wh_field_t  wh_ping[] = {
    F(U32, req_id), FEND
};
static const wh_field_t  wh_event[] = {
    F(STR, workspace), F(STR, client_id), F(STR, session), F(STR, name),
    F(BLOB, body), FEND
};

static const wh_field_t  wh_command_result[] = {
    F(U32, req_id), F(STR, workspace), F(STR, client_id), F(STR, session),
    F(BLOB, body), FEND
};
static const wh_field_t  wh_command[] = {
    F(STR, session), F(STR, workspace), F(STR, client_id), F(BLOB, body),
    FEND
};
static const wh_field_t  wh_session_kick[] = {
    F(STR, session), F(U16, status), F(STR, reason), FEND
};
static const wh_field_t  wh_revoke[] = {
    F(STR, workspace), F(STR, client_id), F(U64, id2), FEND
};

static const wh_field_t  wh_broadcast[] = {
    F(STR, workspace), F(BLOB, body), FEND
};

static const wh_type_t  wh_types[256] = {
    [WH_LINK_HELLO] =          { "HELLO", wh_hello },
    [WH_LINK_WELCOME] =        { "WELCOME", wh_welcome },
    [WH_LINK_SUBSCRIBE] =      { "SUBSCRIBE", wh_subscribe },
    [WH_LINK_SUBSCRIBED] =     { "SUBSCRIBED", wh_subscribed },
    [WH_LINK_COUNT] =          { "COUNT", wh_count },
    [WH_LINK_PUBLISH] =        { "PUBLISH", wh_publish },
    [WH_LINK_PUBLISHED] =      { "PUBLISHED", wh_published },
    [WH_LINK_MESSAGE] =        { "MESSAGE", wh_message },
    [WH_LINK_REQUEST] =        { "REQUEST", wh_request },
    [WH_LINK_RESPONSE] =       { "RESPONSE", wh_response },
    [WH_LINK_REPLAY] =         { "REPLAY", wh_replay },
    [WH_LINK_REPLAY_ITEM] =    { "REPLAY_ITEM", wh_replay_item },
    [WH_LINK_REPLAY_END] =     { "REPLAY_END", wh_replay_end },
    [WH_LINK_SESSION_OPEN] =   { "SESSION_OPEN", wh_session_open },
    [WH_LINK_SESSION_ACCEPT] = { "SESSION_ACCEPT", wh_session_accept },
    [WH_LINK_SESSION_UPDATE] = { "SESSION_UPDATE", wh_session_update },
    [WH_LINK_SESSION_CLOSE] =  { "SESSION_CLOSE", wh_session_close },
    [WH_LINK_PING] =           { "PING", wh_ping },
    [WH_LINK_PONG] =           { "PONG", wh_ping },
    [WH_LINK_EVENT] =          { "EVENT", wh_event },
    [WH_LINK_COMMAND_RESULT] = { "COMMAND_RESULT", wh_command_result },
    [WH_LINK_COMMAND] =        { "COMMAND", wh_command },
    [WH_LINK_SESSION_KICK] =   { "SESSION_KICK", wh_session_kick },
    [WH_LINK_REVOKE] =         { "REVOKE", wh_revoke },
    [WH_LINK_BROADCAST] =      { "BROADCAST", wh_broadcast },
};


static void
wh_put_be(unsigned char *p, uint64_t v, size_t n)
{
    while (n--) {
        p[n] = (unsigned char) (v & 0xff);
        v >>= 8;
    }
}


static uint64_t
wh_get_be(const unsigned char *p, size_t n)
{
    uint64_t  v = 0;

    while (n--) {
        v = (v << 8) | *p++;
    }

    return v;
}


static size_t
wh_int_size(uint8_t kind)
{
    switch (kind) {
    case WH_F_U8:
        return 1;
    case WH_F_U16:
        return 2;
    case WH_F_U32:
        return 4;
    default:
        return 8;
    }
}


static uint64_t
wh_int_get(const wh_link_msg_t *m, const wh_field_t *f)
{
    const char  *p = (const char *) m + f->offset;

    switch (f->kind) {
    case WH_F_U8:
        return *(const uint8_t *) p;
    case WH_F_U16:
        return *(const uint16_t *) p;
    case WH_F_U32:
        return *(const uint32_t *) p;
    default:
        return *(const uint64_t *) p;
    }
}


static void
wh_int_set(wh_link_msg_t *m, const wh_field_t *f, uint64_t v)
{
    char  *p = (char *) m + f->offset;

    switch (f->kind) {
    case WH_F_U8:
        *(uint8_t *) p = (uint8_t) v;
        break;
    case WH_F_U16:
        *(uint16_t *) p = (uint16_t) v;
        break;
    case WH_F_U32:
        *(uint32_t *) p = (uint32_t) v;
        break;
    default:
        *(uint64_t *) p = v;
        break;
    }
}


/* the size of the frame body (L), or 0 if a field does not fit */
static size_t
wh_link_body_size(const wh_link_msg_t *m, const wh_field_t *f)
{
    size_t           size = 1;
    const wh_str_t  *s;

    for ( /* void */ ; f->kind != WH_F_END; f++) {
        if (f->kind != WH_F_STR && f->kind != WH_F_BLOB) {
            size += wh_int_size(f->kind);
            continue;
        }

        s = (const wh_str_t *) ((const char *) m + f->offset);

        if (s->len > 0 && s->data == NULL) {
            return 0;
        }

        if (f->kind == WH_F_STR) {
            if (s->len > WH_LINK_MAX_STR) {
                return 0;
            }
            size += 2 + s->len;

        } else {
            if (s->len > WH_LINK_MAX_FRAME) {
                return 0;
            }
            size += 4 + s->len;
        }
    }

    return size <= WH_LINK_MAX_FRAME ? size : 0;
}


int
wh_link_encode(wh_buf_t *out, const wh_link_msg_t *m)
{
    size_t            body, n;
    unsigned char    *p;
    const wh_str_t   *s;
    const wh_field_t *f;

    f = wh_types[m->type].fields;

    if (f == NULL) {
        errno = EINVAL;
        return -1;
    }

    body = wh_link_body_size(m, f);

    if (body == 0) {
        errno = EMSGSIZE;
        return -1;
    }

    if (wh_buf_reserve(out, 4 + body) != 0) {
        return -1;
    }

    p = out->data + out->len;
    wh_put_be(p, body, 4);
    p[4] = m->type;
    p += 5;

    for ( /* void */ ; f->kind != WH_F_END; f++) {
        if (f->kind != WH_F_STR && f->kind != WH_F_BLOB) {
            n = wh_int_size(f->kind);
            wh_put_be(p, wh_int_get(m, f), n);
            p += n;
            continue;
        }

        s = (const wh_str_t *) ((const char *) m + f->offset);
        n = f->kind == WH_F_STR ? 2 : 4;
        wh_put_be(p, s->len, n);
        p += n;

        if (s->len) {
            memcpy(p, s->data, s->len);
            p += s->len;
        }
    }

    out->len += 4 + body;

    return 0;
}


int
wh_link_frame_len(const unsigned char *buf, size_t len, size_t *frame_len)
{
    return wh_link_frame_len_max(buf, len, WH_LINK_MAX_FRAME, frame_len);
}


int
wh_link_frame_len_max(const unsigned char *buf, size_t len, size_t max,
    size_t *frame_len)
{
    uint64_t  l;

    if (len < 4) {
        return 0;
    }

    l = wh_get_be(buf, 4);

    if (l < 1 || l > max) {
        return -1;
    }

    if (len < 4 + l) {
        return 0;
    }

    *frame_len = 4 + l;

    return 1;
}


int
wh_link_decode(const unsigned char *frame, size_t frame_len,
    wh_link_msg_t *m, const char **err)
{
    size_t               n, left;
    uint64_t             l;
    wh_str_t            *s;
    const unsigned char *p;
    const wh_field_t    *f;

    memset(m, 0, sizeof(wh_link_msg_t));

    if (frame_len < 5) {
        *err = "frame too short";
        return -1;
    }

    l = wh_get_be(frame, 4);

    if (l != frame_len - 4 || l > WH_LINK_MAX_FRAME) {
        *err = "frame length mismatch";
        return -1;
    }

    m->type = frame[4];
    f = wh_types[m->type].fields;

    if (f == NULL) {
        *err = "unknown message type";
        return -1;
    }

    p = frame + 5;
    left = frame_len - 5;

    for ( /* void */ ; f->kind != WH_F_END; f++) {
        if (f->kind != WH_F_STR && f->kind != WH_F_BLOB) {
            n = wh_int_size(f->kind);

            if (left < n) {
                *err = "truncated field";
                return -1;
            }

            wh_int_set(m, f, wh_get_be(p, n));
            p += n;
            left -= n;
            continue;
        }

        n = f->kind == WH_F_STR ? 2 : 4;

        if (left < n) {
            *err = "truncated length";
            return -1;
        }

        l = wh_get_be(p, n);
        p += n;
        left -= n;

        if (l > left) {
            *err = "truncated string";
            return -1;
        }

        s = (wh_str_t *) ((char *) m + f->offset);
        s->data = l ? (const char *) p : "";
        s->len = l;
        p += l;
        left -= l;
    }

    if (left != 0) {
        *err = "trailing bytes after the last field";
        return -1;
    }

    return 0;
}


const char *
wh_link_type_name(uint8_t type)
{
    return wh_types[type].name ? wh_types[type].name : "unknown";
}


void
wh_buf_free(wh_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


int
wh_buf_reserve(wh_buf_t *b, size_t n)
{
    size_t          cap;
    unsigned char  *p;

    if (b->cap - b->len >= n) {
        return 0;
    }

    if (n > SIZE_MAX / 2 - b->len) {
        errno = ENOMEM;
        return -1;
    }

    cap = b->cap ? b->cap : 256;

    while (cap - b->len < n) {
        cap *= 2;
    }

    p = realloc(b->data, cap);

    if (p == NULL) {
        return -1;
    }

    b->data = p;
    b->cap = cap;

    return 0;
}


void
wh_buf_consume(wh_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }

    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}


int
wh_buf_append(wh_buf_t *b, const void *p, size_t n)
{
    /* the JSON writers append a few bytes at a time: no call while the
     * room is there */
    if (b->cap - b->len < n && wh_buf_reserve(b, n) != 0) {
        return -1;
    }

    if (n) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }

    return 0;
}


void
wh_link_hello(wh_link_msg_t *m, uint32_t pid, wh_str_t name)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_HELLO;
    m->status = WH_LINK_VERSION;
    m->count = pid;
    m->name = name;
}


void
wh_link_subscribe(wh_link_msg_t *m, wh_str_t workspace, wh_str_t channel,
    uint32_t subscribers, uint64_t since_id, wh_str_t since_epoch)
{
    wh_link_count(m, workspace, channel, subscribers);
    m->type = WH_LINK_SUBSCRIBE;

    if (since_epoch.len) {
        m->flag = 1;
        m->id = since_id;
        m->epoch = since_epoch;
    }
}


void
wh_link_count(wh_link_msg_t *m, wh_str_t workspace, wh_str_t channel,
    uint32_t subscribers)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_COUNT;
    m->workspace = workspace;
    m->channel = channel;
    m->count = subscribers;
}


void
wh_link_replay(wh_link_msg_t *m, wh_str_t workspace, wh_str_t channel,
    uint64_t after_id, uint64_t up_to, wh_str_t epoch, uint32_t page_bytes)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_REPLAY;
    m->workspace = workspace;
    m->channel = channel;
    m->id = after_id;
    m->id2 = up_to;
    m->epoch = epoch;
    m->count = page_bytes;
}


void
wh_link_response(wh_link_msg_t *m, uint32_t req_id, uint16_t status,
    uint8_t adds, wh_str_t client_id, wh_str_t body)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_RESPONSE;
    m->req_id = req_id;
    m->status = status;
    m->flag = adds;
    m->client_id = client_id;
    m->body = body;
}


void
wh_link_request(wh_link_msg_t *m, uint8_t role, wh_str_t workspace,
    wh_str_t sub, wh_str_t method, wh_str_t path, wh_str_t query,
    wh_str_t body)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_REQUEST;
    m->flag = role;
    m->workspace = workspace;
    m->client_id = sub;
    m->name = method;
    m->path = path;
    m->query = query;
    m->body = body;
}


void
wh_link_session_open(wh_link_msg_t *m, wh_str_t session, wh_str_t workspace,
    wh_str_t client_id, wh_str_t client_type, wh_str_t name, uint64_t iat,
    uint32_t max_per_client)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_SESSION_OPEN;
    m->session = session;
    m->workspace = workspace;
    m->client_id = client_id;
    m->client_type = client_type;
    m->name = name;
    m->id2 = iat;
    m->count = max_per_client;
}


void
wh_link_welcome(wh_link_msg_t *m, wh_str_t instance, uint64_t start_ms,
    int egress)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_WELCOME;
    m->status = WH_LINK_VERSION;
    m->name = instance;
    m->id2 = start_ms;
    m->flag = egress ? WH_LINK_WELCOME_EGRESS : 0;
}


void
wh_link_subscribed(wh_link_msg_t *m, wh_str_t workspace, wh_str_t channel,
    uint64_t last_id, wh_str_t epoch, int recovered)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_SUBSCRIBED;
    m->workspace = workspace;
    m->channel = channel;
    m->id = last_id;
    m->epoch = epoch;
    m->flag = recovered ? 1 : 0;
}


void
wh_link_published(wh_link_msg_t *m, uint32_t req_id, uint16_t status,
    uint64_t id, wh_str_t epoch, wh_str_t reason)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_PUBLISHED;
    m->req_id = req_id;
    m->status = status;
    m->id = id;
    m->epoch = epoch;
    m->reason = reason;
}


void
wh_link_message(wh_link_msg_t *m, wh_str_t workspace, wh_str_t channel,
    uint64_t id, wh_str_t epoch, wh_str_t json, uint64_t stored_ms)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_MESSAGE;
    m->workspace = workspace;
    m->channel = channel;
    m->id = id;
    m->epoch = epoch;
    m->body = json;
    m->id2 = stored_ms;
}


void
wh_link_replay_end(wh_link_msg_t *m, uint32_t req_id, uint8_t flags,
    uint64_t last_id, wh_str_t epoch, uint64_t sent_up_to)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_REPLAY_END;
    m->req_id = req_id;
    m->flag = flags;
    m->id = last_id;
    m->epoch = epoch;
    m->id2 = sent_up_to;
}


void
wh_link_session_accept(wh_link_msg_t *m, wh_str_t session, uint16_t refusal,
    uint32_t active_clients)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_SESSION_ACCEPT;
    m->session = session;
    m->status = refusal;
    m->count = active_clients;
}


void
wh_link_session_kick(wh_link_msg_t *m, wh_str_t session, uint16_t close_code,
    wh_str_t reason)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_SESSION_KICK;
    m->session = session;
    m->status = close_code;
    m->reason = reason;
}


void
wh_link_revoke(wh_link_msg_t *m, wh_str_t workspace, wh_str_t client_id,
    uint64_t before_s)
{
    memset(m, 0, sizeof(wh_link_msg_t));
    m->type = WH_LINK_REVOKE;
    m->workspace = workspace;
    m->client_id = client_id;
    m->id2 = before_s;
}
