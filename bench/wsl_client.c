
/*
 * The client side of wsload: one epoll loop holding many RFC 6455 client
 * connections.  A connection goes CONNECTING -> UPGRADING (request sent,
 * waiting for 101) -> WELCOME (JSON protocol: waiting for the server's
 * first message) -> SUBSCRIBING (waiting for "subscribed") -> READY.  The
 * path protocol is READY right after the 101.  In connect mode a READY
 * connection is counted, reset, and its slot opened again at once.
 */


#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "wsl.h"
#include "wsl_net.h"


#define WSL_SCRATCH         65536
#define WSL_MAX_FRAME       (16u * 1024 * 1024)
#define WSL_MAX_HEAD        8192
#define WSL_MAX_SEND_FRAME  4096
#define WSL_EVENTS          512
#define WSL_TICK_MS         5
#define WSL_TOKEN_POOL      1024
#define WSL_RESULTS_FIFO    16
#define WSL_WS_GUID         "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#define WSL_OP_CONT     0x0
#define WSL_OP_TEXT     0x1
#define WSL_OP_BINARY   0x2
#define WSL_OP_CLOSE    0x8
#define WSL_OP_PING     0x9
#define WSL_OP_PONG     0xA


typedef enum {
    WSL_CONN_FREE = 0,
    WSL_CONN_CONNECTING,
    WSL_CONN_UPGRADING,
    WSL_CONN_WELCOME,
    WSL_CONN_SUBSCRIBING,
    WSL_CONN_READY,
    WSL_CONN_DONE
} wsl_conn_state_e;


typedef struct {
    int             fd;
    uint8_t         state;
    uint8_t         in_message;     /* a fragmented message is open */
    uint32_t        index;          /* client number across processes */
    uint64_t        started_us;
    char            key[28];        /* Sec-WebSocket-Key */
    char           *out;            /* bytes send() has not taken yet */
    uint32_t        out_len;
    uint32_t        out_sent;
    char           *in;             /* an incomplete head or frame */
    uint32_t        in_len;
    uint32_t        in_cap;
    char           *msg;            /* fragments of a message so far */
    uint32_t        msg_len;
    uint64_t       *sent;           /* commands: wl_t of results in flight */
    uint8_t         sent_head;
    uint8_t         sent_len;
} wsl_conn_t;


typedef struct {
    const wsl_conf_t   *conf;
    wsl_shared_t       *sh;
    wsl_slot_t         *slot;
    int                 ep;
    int                 phase;
    wsl_signer_t       *signer;
    wsl_conn_t         *conns;
    unsigned            count;
    unsigned            next_open;
    unsigned            handshaking;
    wsl_conn_t        **free_conns;    /* connect mode: slots to reopen */
    unsigned            nfree;
    char              **pool;          /* connect mode: premade tokens */
    unsigned            pool_size;
    unsigned            pool_next;
    uint64_t            started_us;
    uint64_t            rng;
    char                scratch[WSL_SCRATCH];
} wsl_clients_t;


static int wsl_conn_open(wsl_clients_t *cl, wsl_conn_t *c);
static void wsl_conn_close(wsl_clients_t *cl, wsl_conn_t *c);
static int wsl_conn_input(wsl_clients_t *cl, wsl_conn_t *c, char *data,
    size_t len);


static uint64_t
wsl_rand(wsl_clients_t *cl)
{
    cl->rng ^= cl->rng >> 12;
    cl->rng ^= cl->rng << 25;
    cl->rng ^= cl->rng >> 27;

    return cl->rng * 0x2545F4914F6CDD1DULL;
}


static int
wsl_conn_want(wsl_clients_t *cl, wsl_conn_t *c, uint32_t events, int op)
{
    struct epoll_event  ev;

    ev.events = events;
    ev.data.ptr = c;

    return epoll_ctl(cl->ep, op, c->fd, &ev);
}


/* send now what the socket takes, keep the rest for EPOLLOUT */
static int
wsl_conn_write(wsl_clients_t *cl, wsl_conn_t *c, const char *data,
    size_t len)
{
    char     *p;
    ssize_t   n;
    uint32_t  pending;

    pending = c->out_len - c->out_sent;
    n = 0;

    if (pending == 0) {
        n = wsl_send(c->fd, data, len);
        if (n < 0) {
            return -1;
        }

        if ((size_t) n == len) {
            return 0;
        }
    }

    p = malloc(pending + len - (size_t) n);
    if (p == NULL) {
        return -1;
    }

    if (pending) {
        memcpy(p, c->out + c->out_sent, pending);
    }

    memcpy(p + pending, data + n, len - (size_t) n);
    free(c->out);
    c->out = p;
    c->out_len = pending + (uint32_t) (len - (size_t) n);
    c->out_sent = 0;

    return wsl_conn_want(cl, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
}


static int
wsl_conn_flush(wsl_clients_t *cl, wsl_conn_t *c)
{
    ssize_t  n;

    if (c->out_len == c->out_sent) {
        return 0;
    }

    n = wsl_send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent);
    if (n < 0) {
        return -1;
    }

    c->out_sent += (uint32_t) n;

    if (c->out_sent < c->out_len) {
        return 0;
    }

    free(c->out);
    c->out = NULL;
    c->out_len = 0;
    c->out_sent = 0;

    return wsl_conn_want(cl, c, EPOLLIN, EPOLL_CTL_MOD);
}


/* a client frame: FIN set, masked with a fresh key (RFC 6455 5.3) */
static int
wsl_conn_send_frame(wsl_clients_t *cl, wsl_conn_t *c, unsigned op,
    const char *data, size_t len)
{
    size_t    i, hlen;
    uint32_t  mask;
    uint8_t   frame[WSL_MAX_SEND_FRAME + 8], *m;

    if (len > WSL_MAX_SEND_FRAME) {
        return -1;
    }

    frame[0] = (uint8_t) (0x80 | op);

    if (len < 126) {
        frame[1] = (uint8_t) (0x80 | len);
        hlen = 2;

    } else {
        frame[1] = 0x80 | 126;
        frame[2] = (uint8_t) (len >> 8);
        frame[3] = (uint8_t) len;
        hlen = 4;
    }

    mask = (uint32_t) wsl_rand(cl);
    m = frame + hlen;
    memcpy(m, &mask, 4);
    hlen += 4;

    for (i = 0; i < len; i++) {
        frame[hlen + i] = (uint8_t) data[i] ^ m[i & 3];
    }

    return wsl_conn_write(cl, c, (char *) frame, hlen + len);
}


static void
wsl_ws_key(wsl_clients_t *cl, wsl_conn_t *c)
{
    uint64_t  raw[2];

    raw[0] = wsl_rand(cl);
    raw[1] = wsl_rand(cl);
    EVP_EncodeBlock((unsigned char *) c->key, (unsigned char *) raw, 16);
}


static const char *
wsl_conn_token(wsl_clients_t *cl, wsl_conn_t *c, char *buf, size_t len)
{
    char  sub[32];

    if (cl->signer == NULL) {
        return NULL;
    }

    if (cl->pool) {
        return cl->pool[cl->pool_next++ % cl->pool_size];
    }

    snprintf(sub, sizeof(sub), "wl-%u", c->index);

    if (wsl_signer_mint(cl->signer, sub, 0, buf, len) != 0) {
        return NULL;
    }

    return buf;
}


static int
wsl_conn_upgrade(wsl_clients_t *cl, wsl_conn_t *c)
{
    int          n;
    char         path[512], channel[256], auth[WSL_MAX_TOKEN + 32];
    char         token[WSL_MAX_TOKEN], req[WSL_MAX_TOKEN + 1024];
    const char  *tok;

    wsl_channel_name(cl->conf, c->index % cl->conf->channels, channel,
                     sizeof(channel));

    if (wsl_expand(cl->conf->ws_path, channel, path, sizeof(path)) != 0) {
        return -1;
    }

    auth[0] = '\0';
    tok = wsl_conn_token(cl, c, token, sizeof(token));

    if (cl->signer && tok == NULL) {
        return -1;
    }

    if (tok) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", tok);

    } else if (cl->conf->proto == WSL_PROTO_MQTT) {
        snprintf(auth, sizeof(auth), "Sec-WebSocket-Protocol: mqtt\r\n");
    }

    wsl_ws_key(cl, c);

    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "%s\r\n",
                 path, cl->conf->host, c->key, auth);
    if (n < 0 || (size_t) n >= sizeof(req)) {
        return -1;
    }

    c->state = WSL_CONN_UPGRADING;

    if (wsl_conn_want(cl, c, EPOLLIN, EPOLL_CTL_MOD) != 0) {
        return -1;
    }

    return wsl_conn_write(cl, c, req, (size_t) n);
}


static int
wsl_conn_ready(wsl_clients_t *cl, wsl_conn_t *c)
{
    uint64_t  took;

    took = wsl_now_us() - c->started_us;
    cl->handshaking--;

    if (cl->conf->mode == WSL_MODE_CONNECT) {
        if (cl->phase == WSL_PHASE_MEASURE) {
            atomic_fetch_add_explicit(&cl->sh->handshakes, 1,
                                      memory_order_relaxed);
            wsl_hist_add(&cl->slot->handshake, took);
        }

        /* counted: not an error when it closes now */
        c->state = WSL_CONN_READY;
        wsl_conn_close(cl, c);
        return -1;
    }

    wsl_hist_add(&cl->slot->handshake, took);
    c->state = WSL_CONN_READY;
    atomic_fetch_add_explicit(&cl->sh->ready, 1, memory_order_relaxed);

    return 0;
}


/* what client c subscribes to: its channel through --sub-topic */
static int
wsl_conn_topic(wsl_clients_t *cl, wsl_conn_t *c, char *out, size_t len)
{
    char  channel[256];

    wsl_channel_name(cl->conf, c->index % cl->conf->channels, channel,
                     sizeof(channel));

    return wsl_expand(cl->conf->sub_topic, channel, out, len);
}


static int
wsl_conn_mqtt_send(wsl_clients_t *cl, wsl_conn_t *c, const uint8_t *pkt,
    size_t len)
{
    if (len == 0) {
        return -1;
    }

    if (cl->conf->sub_tcp) {
        return wsl_conn_write(cl, c, (const char *) pkt, len);
    }

    return wsl_conn_send_frame(cl, c, WSL_OP_BINARY, (const char *) pkt,
                               len);
}


static int
wsl_conn_mqtt_hello(wsl_clients_t *cl, wsl_conn_t *c)
{
    char     id[32];
    uint8_t  pkt[256];

    snprintf(id, sizeof(id), "wl-%u", c->index);
    c->state = WSL_CONN_WELCOME;

    return wsl_conn_mqtt_send(cl, c, pkt,
                              wsl_mqtt_connect(pkt, sizeof(pkt), id));
}


static int
wsl_conn_subscribe(wsl_clients_t *cl, wsl_conn_t *c)
{
    int      n;
    char     topic[256], msg[512];
    uint8_t  pkt[512];

    if (wsl_conn_topic(cl, c, topic, sizeof(topic)) != 0) {
        return -1;
    }

    c->state = WSL_CONN_SUBSCRIBING;

    if (cl->conf->proto == WSL_PROTO_MQTT) {
        return wsl_conn_mqtt_send(cl, c, pkt,
                                  wsl_mqtt_subscribe(pkt, sizeof(pkt),
                                                     topic));
    }

    n = snprintf(msg, sizeof(msg),
                 "{\"type\":\"subscribe\",\"channels\":[\"%s\"]}", topic);
    if (n < 0 || (size_t) n >= sizeof(msg)) {
        return -1;
    }

    return wsl_conn_send_frame(cl, c, WSL_OP_TEXT, msg, (size_t) n);
}


static void
wsl_conn_delivery(wsl_clients_t *cl, const char *data, size_t len)
{
    uint64_t  t, seq, now;

    atomic_fetch_add_explicit(&cl->sh->delivered, 1, memory_order_relaxed);

    if (wsl_find_number(data, len, WSL_PAYLOAD_SEQ, &seq) == 0) {
        atomic_fetch_add_explicit(&cl->sh->acks[seq % WSL_ACK_RING], 1,
                                  memory_order_relaxed);
    }

    if (cl->phase != WSL_PHASE_MEASURE
        || wsl_find_number(data, len, WSL_PAYLOAD_TIME, &t) != 0)
    {
        return;
    }

    now = wsl_now_us();
    wsl_hist_add(&cl->slot->latency, now > t ? now - t : 0);
}


/* the string value of `"key":"..."` (no escapes in ids), or -1 */
static int
wsl_find_string(const char *data, size_t len, const char *key,
    const char **value, size_t *vlen)
{
    size_t       klen;
    const char  *p, *q, *end;

    klen = strlen(key);
    end = data + len;

    p = memmem(data, len, key, klen);
    if (p == NULL || p + klen >= end || p[klen] != '"') {
        return -1;
    }

    p += klen + 1;
    q = memchr(p, '"', (size_t) (end - p));

    if (q == NULL || q == p || q - p > 128) {
        return -1;
    }

    *value = p;
    *vlen = (size_t) (q - p);
    return 0;
}


/*
 * A device: each device_command is answered with command_result at once;
 * command_result_accepted (the result is stored) ends the command, and
 * the time since the publisher sent it is the end-to-end ack latency.
 * Results are accepted in the order they were sent on a connection.
 */
static int
wsl_conn_command(wsl_clients_t *cl, wsl_conn_t *c, const char *data,
    size_t len)
{
    int          n;
    char         reply[512];
    size_t       idlen;
    uint64_t     t;
    const char  *id;

    if (memmem(data, len, "\"command_result_accepted\"", 25)) {
        if (c->sent_len == 0) {
            return 0;
        }

        t = c->sent[c->sent_head];
        c->sent_head = (uint8_t) ((c->sent_head + 1) % WSL_RESULTS_FIFO);
        c->sent_len--;

        if (cl->phase == WSL_PHASE_MEASURE && t != 0) {
            wsl_hist_add(&cl->slot->ack, wsl_now_us() - t);
        }

        return 0;
    }

    if (memmem(data, len, "\"error\"", 7)) {
        atomic_fetch_add_explicit(&cl->sh->results_refused, 1,
                                  memory_order_relaxed);
        return 0;
    }

    if (memmem(data, len, "\"device_command\"", 16) == NULL
        || wsl_find_string(data, len, "\"command_id\":", &id, &idlen) != 0)
    {
        return 0;
    }

    wsl_conn_delivery(cl, data, len);

    n = snprintf(reply, sizeof(reply),
                 "{\"type\":\"command_result\",\"command_id\":\"%.*s\","
                 "\"status\":\"completed\",\"result\":{}}", (int) idlen, id);

    if (c->sent == NULL) {
        c->sent = calloc(WSL_RESULTS_FIFO, sizeof(uint64_t));
    }

    /* a full FIFO forgets its oldest: that command goes unmeasured */
    if (c->sent && c->sent_len == WSL_RESULTS_FIFO) {
        c->sent_head = (uint8_t) ((c->sent_head + 1) % WSL_RESULTS_FIFO);
        c->sent_len--;
    }

    if (c->sent) {
        if (wsl_find_number(data, len, WSL_PAYLOAD_TIME, &t) != 0) {
            t = 0;
        }
        c->sent[(c->sent_head + c->sent_len) % WSL_RESULTS_FIFO] = t;
        c->sent_len++;
    }

    if (wsl_conn_send_frame(cl, c, WSL_OP_TEXT, reply, (size_t) n) != 0) {
        wsl_conn_close(cl, c);
        return -1;
    }

    return 0;
}


/* one MQTT packet from the server; -1 if the connection is gone */
static int
wsl_conn_mqtt_packet(wsl_clients_t *cl, wsl_conn_t *c, unsigned type,
    const uint8_t *p, size_t len, size_t hlen)
{
    if (type == WSL_MQTT_PUBLISH && c->state == WSL_CONN_READY) {
        wsl_conn_delivery(cl, (const char *) p, len);
        return 0;
    }

    if (type == WSL_MQTT_CONNACK && c->state == WSL_CONN_WELCOME) {
        /* the return code is the second byte of the variable header */
        if (len < hlen + 2 || p[hlen + 1] != 0
            || wsl_conn_subscribe(cl, c) != 0)
        {
            wsl_conn_close(cl, c);
            return -1;
        }
        return 0;
    }

    if (type == WSL_MQTT_SUBACK && c->state == WSL_CONN_SUBSCRIBING) {
        if (p[len - 1] == 0x80) {
            wsl_conn_close(cl, c);
            return -1;
        }
        return wsl_conn_ready(cl, c);
    }

    return 0;
}


/* MQTT packets: bytes used (a partial packet stays), -1 if gone */
static ssize_t
wsl_conn_mqtt(wsl_clients_t *cl, wsl_conn_t *c, const uint8_t *p,
    size_t len)
{
    size_t    used, hlen;
    ssize_t   n;
    unsigned  type;

    used = 0;

    while (used < len) {
        n = wsl_mqtt_packet(p + used, len - used, &type, &hlen);

        if (n < 0) {
            wsl_conn_close(cl, c);
            return -1;
        }

        if (n == 0) {
            break;
        }

        if (wsl_conn_mqtt_packet(cl, c, type, p + used, (size_t) n, hlen)
            != 0)
        {
            return -1;
        }

        used += (size_t) n;
    }

    return (ssize_t) used;
}


/* a complete text or binary message; -1 if the connection is gone */
static int
wsl_conn_message(wsl_clients_t *cl, wsl_conn_t *c, const char *data,
    size_t len)
{
    /* over WebSocket a binary message carries whole MQTT packets */
    if (cl->conf->proto == WSL_PROTO_MQTT) {
        return wsl_conn_mqtt(cl, c, (const uint8_t *) data, len) < 0 ? -1
                                                                     : 0;
    }

    switch (c->state) {

    case WSL_CONN_WELCOME:
        if (memmem(data, len, "\"connection_status\"", 19) == NULL) {
            wsl_conn_close(cl, c);
            return -1;
        }

        if (cl->conf->mode == WSL_MODE_CONNECT
            || cl->conf->mode == WSL_MODE_COMMANDS)
        {
            return wsl_conn_ready(cl, c);
        }

        if (wsl_conn_subscribe(cl, c) != 0) {
            wsl_conn_close(cl, c);
            return -1;
        }

        return 0;

    case WSL_CONN_SUBSCRIBING:
        if (memmem(data, len, "\"subscribed\"", 12)) {
            return wsl_conn_ready(cl, c);
        }

        if (memmem(data, len, "\"error\"", 7)) {
            wsl_conn_close(cl, c);
            return -1;
        }

        return 0;

    case WSL_CONN_READY:
        if (cl->conf->mode == WSL_MODE_COMMANDS) {
            return wsl_conn_command(cl, c, data, len);
        }

        wsl_conn_delivery(cl, data, len);
        return 0;

    default:
        return 0;
    }
}


static int
wsl_conn_fragment(wsl_clients_t *cl, wsl_conn_t *c, unsigned op, int fin,
    const char *data, size_t len)
{
    int    rc;
    char  *p;

    if (op != WSL_OP_CONT && !c->in_message && fin) {
        return wsl_conn_message(cl, c, data, len);
    }

    if ((op == WSL_OP_CONT) != (c->in_message != 0)
        || c->msg_len + len > WSL_MAX_FRAME)
    {
        wsl_conn_close(cl, c);
        return -1;
    }

    p = realloc(c->msg, c->msg_len + len + 1);
    if (p == NULL) {
        wsl_conn_close(cl, c);
        return -1;
    }

    memcpy(p + c->msg_len, data, len);
    c->msg = p;
    c->msg_len += (uint32_t) len;
    c->in_message = 1;

    if (!fin) {
        return 0;
    }

    rc = wsl_conn_message(cl, c, c->msg, c->msg_len);

    if (rc == 0) {
        free(c->msg);
        c->msg = NULL;
        c->msg_len = 0;
        c->in_message = 0;
    }

    return rc;
}


static int
wsl_conn_frame(wsl_clients_t *cl, wsl_conn_t *c, unsigned op, int fin,
    const char *data, size_t len)
{
    switch (op) {

    case WSL_OP_PING:
        if (wsl_conn_send_frame(cl, c, WSL_OP_PONG, data, len) != 0) {
            wsl_conn_close(cl, c);
            return -1;
        }
        return 0;

    case WSL_OP_PONG:
        return 0;

    case WSL_OP_CLOSE:
        /* echo the code, then the server closes the TCP connection */
        (void) wsl_conn_send_frame(cl, c, WSL_OP_CLOSE, data,
                                   len >= 2 ? 2 : 0);
        wsl_conn_close(cl, c);
        return -1;

    case WSL_OP_CONT:
    case WSL_OP_TEXT:
    case WSL_OP_BINARY:
        return wsl_conn_fragment(cl, c, op, fin, data, len);

    default:
        wsl_conn_close(cl, c);
        return -1;
    }
}


/* bytes used (a partial frame stays), or -1 if the connection is gone */
static ssize_t
wsl_conn_frames(wsl_clients_t *cl, wsl_conn_t *c, const uint8_t *p,
    size_t len)
{
    size_t    used, hlen;
    uint64_t  plen;

    used = 0;

    while (len - used >= 2) {
        hlen = 2;
        plen = p[used + 1] & 0x7f;

        if (p[used + 1] & 0x80) {
            /* a server must not mask (RFC 6455 5.1) */
            wsl_conn_close(cl, c);
            return -1;
        }

        if (plen == 126) {
            if (len - used < 4) {
                break;
            }
            plen = (uint64_t) p[used + 2] << 8 | p[used + 3];
            hlen = 4;

        } else if (plen == 127) {
            if (len - used < 10) {
                break;
            }
            memcpy(&plen, p + used + 2, 8);
            plen = be64toh(plen);
            hlen = 10;
        }

        if (plen > WSL_MAX_FRAME) {
            wsl_conn_close(cl, c);
            return -1;
        }

        if (len - used < hlen + plen) {
            break;
        }

        if (wsl_conn_frame(cl, c, p[used] & 0x0f, p[used] & 0x80,
                           (const char *) p + used + hlen, plen) != 0)
        {
            return -1;
        }

        used += hlen + plen;
    }

    return (ssize_t) used;
}


static int
wsl_accept_ok(const char *key, const char *head)
{
    char           expected[32], src[64];
    const char    *h;
    unsigned char  digest[EVP_MAX_MD_SIZE];
    unsigned int   dlen;

    snprintf(src, sizeof(src), "%s%s", key, WSL_WS_GUID);

    if (EVP_Digest(src, strlen(src), digest, &dlen, EVP_sha1(), NULL) != 1) {
        return 0;
    }

    EVP_EncodeBlock((unsigned char *) expected, digest, (int) dlen);

    h = strcasestr(head, "\r\nSec-WebSocket-Accept:");
    if (h == NULL) {
        return 0;
    }

    h += 23;

    while (*h == ' ') {
        h++;
    }

    return strncmp(h, expected, strlen(expected)) == 0;
}


/* the 101 head; bytes used, 0 if incomplete, -1 if the connection is gone */
static ssize_t
wsl_conn_head(wsl_clients_t *cl, wsl_conn_t *c, const char *data,
    size_t len)
{
    char        head[WSL_MAX_HEAD];
    size_t      hlen;
    const char  *end;

    end = memmem(data, len, "\r\n\r\n", 4);

    if (end == NULL) {
        if (len >= WSL_MAX_HEAD) {
            wsl_conn_close(cl, c);
            return -1;
        }
        return 0;
    }

    hlen = (size_t) (end - data) + 4;

    if (hlen >= WSL_MAX_HEAD) {
        wsl_conn_close(cl, c);
        return -1;
    }

    memcpy(head, data, hlen);
    head[hlen] = '\0';

    if (strncmp(head, "HTTP/1.1 101", 12) != 0 || !wsl_accept_ok(c->key, head))
    {
        wsl_conn_close(cl, c);
        return -1;
    }

    if (cl->conf->proto == WSL_PROTO_JSON) {
        c->state = WSL_CONN_WELCOME;

    } else if (cl->conf->proto == WSL_PROTO_MQTT) {
        if (wsl_conn_mqtt_hello(cl, c) != 0) {
            wsl_conn_close(cl, c);
            return -1;
        }

    } else if (wsl_conn_ready(cl, c) != 0) {
        return -1;
    }

    return (ssize_t) hlen;
}


static int
wsl_conn_input(wsl_clients_t *cl, wsl_conn_t *c, char *data, size_t len)
{
    size_t   used;
    ssize_t  n;

    if (cl->conf->sub_tcp) {
        n = wsl_conn_mqtt(cl, c, (uint8_t *) data, len);
        return n < 0 ? -1 : (int) n;
    }

    used = 0;

    if (c->state == WSL_CONN_UPGRADING) {
        n = wsl_conn_head(cl, c, data, len);
        if (n <= 0) {
            return (int) n;
        }
        used = (size_t) n;
    }

    n = wsl_conn_frames(cl, c, (uint8_t *) data + used, len - used);
    if (n < 0) {
        return -1;
    }

    return (int) (used + (size_t) n);
}


/* keep what was not used for the next read */
static int
wsl_conn_keep(wsl_conn_t *c, const char *rest, size_t len)
{
    char  *p;

    c->in_len = (uint32_t) len;

    if (len == 0) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
        return 0;
    }

    if (len > c->in_cap) {
        p = malloc(len);
        if (p == NULL) {
            return -1;
        }
        memcpy(p, rest, len);
        free(c->in);
        c->in = p;
        c->in_cap = (uint32_t) len;
        return 0;
    }

    memmove(c->in, rest, len);
    return 0;
}


static void
wsl_conn_read(wsl_clients_t *cl, wsl_conn_t *c)
{
    int      used;
    char    *data, *p;
    size_t   len;
    ssize_t  n;

    n = recv(c->fd, cl->scratch, sizeof(cl->scratch), 0);

    if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
        wsl_conn_close(cl, c);
        return;
    }

    if (n < 0) {
        return;
    }

    data = cl->scratch;
    len = (size_t) n;

    if (c->in_len) {
        p = realloc(c->in, c->in_len + len);
        if (p == NULL) {
            wsl_conn_close(cl, c);
            return;
        }
        memcpy(p + c->in_len, cl->scratch, len);
        c->in = p;
        c->in_cap = c->in_len + (uint32_t) len;
        len += c->in_len;
        data = c->in;
    }

    used = wsl_conn_input(cl, c, data, len);
    if (used < 0) {
        return;
    }

    if (wsl_conn_keep(c, data + used, len - (size_t) used) != 0) {
        wsl_conn_close(cl, c);
    }
}


static void
wsl_conn_event(wsl_clients_t *cl, wsl_conn_t *c, uint32_t events)
{
    /* closed earlier in this batch of events */
    if (c->fd == -1) {
        return;
    }

    if (c->state == WSL_CONN_CONNECTING) {
        if (wsl_connect_result(c->fd) != 0
            || (cl->conf->sub_tcp
                ? wsl_conn_want(cl, c, EPOLLIN, EPOLL_CTL_MOD) != 0
                  || wsl_conn_mqtt_hello(cl, c) != 0
                : wsl_conn_upgrade(cl, c) != 0))
        {
            wsl_conn_close(cl, c);
        }
        return;
    }

    if ((events & EPOLLOUT) && wsl_conn_flush(cl, c) != 0) {
        wsl_conn_close(cl, c);
        return;
    }

    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        wsl_conn_read(cl, c);
    }
}


static void
wsl_conn_release(wsl_conn_t *c)
{
    free(c->out);
    free(c->in);
    free(c->msg);
    free(c->sent);
    c->sent = NULL;
    c->sent_head = c->sent_len = 0;
    c->out = c->in = c->msg = NULL;
    c->out_len = c->out_sent = c->in_len = c->in_cap = c->msg_len = 0;
    c->in_message = 0;
    c->fd = -1;
}


/* every close goes here: it keeps the shared counters right */
static void
wsl_conn_close(wsl_clients_t *cl, wsl_conn_t *c)
{
    int  connect_mode;

    connect_mode = (cl->conf->mode == WSL_MODE_CONNECT);

    if (c->state == WSL_CONN_READY && !connect_mode) {
        atomic_fetch_sub_explicit(&cl->sh->ready, 1, memory_order_relaxed);
        if (cl->phase != WSL_PHASE_STOP) {
            atomic_fetch_add_explicit(&cl->sh->lost, 1,
                                      memory_order_relaxed);
        }

    } else if (c->state != WSL_CONN_READY && c->state != WSL_CONN_FREE
               && c->state != WSL_CONN_DONE)
    {
        cl->handshaking--;
        /* the stop cuts handshakes short: not the server's failure */
        if (cl->phase != WSL_PHASE_STOP) {
            atomic_fetch_add_explicit(connect_mode
                                          ? &cl->sh->handshake_errors
                                          : &cl->sh->failed,
                                      1, memory_order_relaxed);
        }
    }

    if (c->fd != -1) {
        wsl_abort(c->fd);
    }

    wsl_conn_release(c);

    if (connect_mode) {
        c->state = WSL_CONN_FREE;
        cl->free_conns[cl->nfree++] = c;

    } else {
        c->state = WSL_CONN_DONE;
    }
}


static int
wsl_conn_open(wsl_clients_t *cl, wsl_conn_t *c)
{
    const wsl_conf_t  *conf;

    conf = cl->conf;

    c->started_us = wsl_now_us();
    c->fd = wsl_connect(&conf->server,
                        conf->sources[c->index % conf->nsources]);
    c->state = WSL_CONN_CONNECTING;
    cl->handshaking++;

    if (c->fd == -1
        || wsl_conn_want(cl, c, EPOLLOUT, EPOLL_CTL_ADD) != 0)
    {
        wsl_conn_close(cl, c);
        return -1;
    }

    return 0;
}


/* open what the ramp and the in-flight bound allow now */
static void
wsl_clients_open(wsl_clients_t *cl)
{
    double    allowed;
    unsigned  inflight;

    inflight = cl->conf->inflight;

    if (cl->conf->mode == WSL_MODE_CONNECT) {
        if (cl->phase != WSL_PHASE_WARMUP && cl->phase != WSL_PHASE_MEASURE)
        {
            return;
        }

        while (cl->nfree && cl->handshaking < inflight) {
            (void) wsl_conn_open(cl, cl->free_conns[--cl->nfree]);
        }

        return;
    }

    allowed = (double) (wsl_now_us() - cl->started_us) / 1e6
              * cl->conf->ramp / cl->conf->procs + 1;

    while (cl->next_open < cl->count && cl->next_open < allowed
           && cl->handshaking < inflight)
    {
        (void) wsl_conn_open(cl, &cl->conns[cl->next_open++]);
    }
}


static int
wsl_clients_pool(wsl_clients_t *cl, unsigned proc)
{
    char      sub[32], token[WSL_MAX_TOKEN];
    unsigned  i;

    cl->pool_size = WSL_TOKEN_POOL;
    cl->pool = calloc(cl->pool_size, sizeof(char *));
    if (cl->pool == NULL) {
        return -1;
    }

    for (i = 0; i < cl->pool_size; i++) {
        snprintf(sub, sizeof(sub), "wl-%u-%u", proc, i);

        if (wsl_signer_mint(cl->signer, sub, 0, token, sizeof(token)) != 0) {
            return -1;
        }

        cl->pool[i] = strdup(token);
        if (cl->pool[i] == NULL) {
            return -1;
        }
    }

    return 0;
}


static int
wsl_clients_init(wsl_clients_t *cl, const wsl_conf_t *conf,
    wsl_shared_t *sh, unsigned proc, unsigned first, unsigned count)
{
    unsigned  i;
    char      err[WSL_ERR_LEN];

    cl->conf = conf;
    cl->sh = sh;
    cl->slot = &sh->slots[proc];
    cl->count = count;
    cl->rng = (uint64_t) getpid() * 0x9E3779B97F4A7C15ULL ^ wsl_now_us();

    cl->ep = epoll_create1(EPOLL_CLOEXEC);
    cl->conns = calloc(count, sizeof(wsl_conn_t));
    cl->free_conns = calloc(count, sizeof(wsl_conn_t *));

    if (cl->ep == -1 || cl->conns == NULL || cl->free_conns == NULL) {
        return -1;
    }

    for (i = 0; i < count; i++) {
        cl->conns[i].fd = -1;
        cl->conns[i].index = first + i;
        cl->free_conns[i] = &cl->conns[count - 1 - i];
    }

    cl->nfree = count;

    if (conf->alg == NULL && conf->token_file == NULL) {
        return 0;
    }

    cl->signer = wsl_signer_open(conf, err, sizeof(err));
    if (cl->signer == NULL) {
        snprintf(sh->error, sizeof(sh->error), "%s", err);
        return -1;
    }

    if (conf->mode == WSL_MODE_CONNECT && conf->token_file == NULL
        && !conf->new_tokens)
    {
        return wsl_clients_pool(cl, proc);
    }

    return 0;
}


int
wsl_run_clients(const wsl_conf_t *conf, wsl_shared_t *sh, unsigned proc,
    unsigned first, unsigned count)
{
    int                  i, n;
    unsigned             k;
    wsl_clients_t       *cl;
    struct epoll_event   events[WSL_EVENTS];

    cl = calloc(1, sizeof(wsl_clients_t));
    if (cl == NULL || wsl_clients_init(cl, conf, sh, proc, first, count) != 0)
    {
        return -1;
    }

    cl->started_us = wsl_now_us();

    for ( ;; ) {
        cl->phase = atomic_load_explicit(&sh->phase, memory_order_relaxed);

        if (cl->phase == WSL_PHASE_STOP) {
            break;
        }

        wsl_clients_open(cl);

        n = epoll_wait(cl->ep, events, WSL_EVENTS, WSL_TICK_MS);

        for (i = 0; i < n; i++) {
            wsl_conn_event(cl, events[i].data.ptr, events[i].events);
        }
    }

    for (k = 0; k < count; k++) {
        if (cl->conns[k].fd != -1) {
            wsl_conn_close(cl, &cl->conns[k]);
        }
    }

    cl->slot->cpu_us = (uint64_t) (wsl_self_cpu_s() * 1e6);
    return 0;
}
