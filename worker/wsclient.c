/*
 * The outbound WebSocket connection (wsclient.h).
 *
 *   RESOLVING -> CONNECTING -> [TLS] -> UPGRADE -> OPEN
 *
 * Every state is driven by level-triggered epoll events on the one
 * socket and by wh_wsc_tick(); nothing waits.  A state that fails tries
 * the next address of the lookup while one is left (connect), or ends
 * the connection through the closed handler with a reason.
 *
 * The handlers may not free the connection; a connection that ended
 * while an event or tick was handled is freed when that returns.
 */

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "wh_frame.h"
#include "wh_link.h"
#include "wh_version.h"
#include "wsclient.h"


#define WH_WSC_READ        16384    /* the largest TLS record's text */
#define WH_WSC_HEAD_MAX    16384    /* the upgrade answer's head */
#define WH_WSC_GUID        "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef enum {
    WH_WSC_RESOLVING = 0,
    WH_WSC_CONNECTING,
    WH_WSC_TLS,
    WH_WSC_UPGRADE,
    WH_WSC_OPEN
} wh_wsc_state_e;

static const char *const  wh_wsc_stages[] = {
    "resolving", "connecting", "in the TLS handshake", "in the upgrade",
    "open"
};

struct wh_wsc_s {
    wh_loop_t                *loop;
    wh_wsc_conf_t             conf;
    const wh_wsc_handlers_t  *h;
    void                     *ctx;
    wh_event_t                ev;           /* fd -1: no socket */
    uint32_t                  events;       /* watched for */
    wh_resolve_t             *lookup;
    struct addrinfo          *addrs;
    struct addrinfo          *next;         /* to try after this one */
    SSL                      *ssl;
    wh_wsc_state_e            state;
    int64_t                   started;
    int64_t                   last_rx;
    int64_t                   ping_sent;    /* 0: none outstanding */
    wh_buf_t                  out;          /* bytes not yet sent */
    wh_buf_t                  head;         /* the upgrade answer */
    wh_buf_t                  msg;          /* the text message so far */
    wh_buf_t                  rest;         /* read, not parsed: came
                                             * after a pause */
    uint64_t                  binary;       /* its length, if binary */
    wh_frame_parser_t         parser;
    char                      accept[32];   /* Sec-WebSocket-Accept */
    char                      error[WH_WSC_REASON_MAX];
    unsigned                  close_code;   /* sent for an error */
    unsigned                  registered:1; /* with epoll */
    unsigned                  paused:1;
    unsigned                  want_write:1; /* TLS needs the socket
                                             * writable to go on */
    unsigned                  ended:1;      /* closed was called */
};


static void wh_wsc_event(wh_event_t *ev, uint32_t events);
static void wh_wsc_connect_next(wh_wsc_t *c);


/* ----------------------------------------------------------- teardown */

static void
wh_wsc_drop_socket(wh_wsc_t *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }

    if (c->ev.fd != -1) {
        if (c->registered) {
            wh_loop_del(c->loop, &c->ev);
        }

        close(c->ev.fd);
        c->ev.fd = -1;
    }

    c->events = 0;
    c->registered = 0;
    c->want_write = 0;
}


static void
wh_wsc_free(wh_wsc_t *c)
{
    wh_wsc_drop_socket(c);

    if (c->lookup) {
        wh_resolve_cancel(c->lookup);
    }

    if (c->addrs) {
        freeaddrinfo(c->addrs);
    }

    wh_buf_free(&c->out);
    wh_buf_free(&c->rest);
    wh_buf_free(&c->head);
    wh_buf_free(&c->msg);
    free(c);
}


/* the connection ended: tell the owner once; it is freed by whoever
 * runs the event or the tick */
static void
wh_wsc_end(wh_wsc_t *c, const char *fmt, ...) WH_PRINTF(2, 3);

static void
wh_wsc_end(wh_wsc_t *c, const char *fmt, ...)
{
    char     reason[WH_WSC_REASON_MAX];
    va_list  ap;

    if (c->ended) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);

    c->ended = 1;
    wh_wsc_drop_socket(c);
    c->h->closed(c->ctx, c->close_code, reason);
}


static void
wh_wsc_tls_error(char *buf, size_t size, const char *what)
{
    unsigned long  e;
    char           text[120];

    e = ERR_peek_last_error();
    ERR_error_string_n(e, text, sizeof(text));
    ERR_clear_error();
    snprintf(buf, size, "%s: %s", what, e ? text : "connection lost");
}


/* ------------------------------------------------------------ the wire */

/* a plain socket's recv() or send() result n as wh_wsc_recv() answers */
static ssize_t
wh_wsc_sys(wh_wsc_t *c, ssize_t n, const char *what)
{
    if (n >= 0) {
        return n;
    }

    if (errno == EAGAIN || errno == EINTR) {
        return -1;
    }

    snprintf(c->error, sizeof(c->error), "%s: %s", what, strerror(errno));

    return -2;
}


/* a failed SSL_read() (reading) or SSL_write() as wh_wsc_recv()
 * answers: only a read may see the peer's end */
static ssize_t
wh_wsc_tls(wh_wsc_t *c, int n, int reading)
{
    switch (SSL_get_error(c->ssl, n)) {

    case SSL_ERROR_WANT_READ:
        return -1;

    case SSL_ERROR_WANT_WRITE:
        c->want_write = 1;
        return -1;

    case SSL_ERROR_ZERO_RETURN:
        if (reading) {
            return 0;
        }

        break;

    case SSL_ERROR_SYSCALL:
        if (reading && ERR_peek_error() == 0 && errno == 0) {
            return 0;
        }

        break;
    }

    wh_wsc_tls_error(c->error, sizeof(c->error),
                     reading ? "TLS read" : "TLS write");

    return -2;
}


/* > 0 bytes read, 0 the peer closed, -1 nothing now, -2 error (in
 * c->error) */
static ssize_t
wh_wsc_recv(wh_wsc_t *c, void *buf, size_t size)
{
    int  n;

    if (c->ssl == NULL) {
        return wh_wsc_sys(c, recv(c->ev.fd, buf, size, 0), "recv");
    }

    ERR_clear_error();
    n = SSL_read(c->ssl, buf, (int) size);

    return n > 0 ? n : wh_wsc_tls(c, n, 1);
}


/* as wh_wsc_recv(), for writing (never 0) */
static ssize_t
wh_wsc_send(wh_wsc_t *c, const void *buf, size_t len)
{
    int  n;

    if (c->ssl == NULL) {
        return wh_wsc_sys(c, send(c->ev.fd, buf, len, MSG_NOSIGNAL),
                          "send");
    }

    ERR_clear_error();
    c->want_write = 0;
    n = SSL_write(c->ssl, buf, (int) len);

    return n > 0 ? n : wh_wsc_tls(c, n, 0);
}


/* sends what is queued, as far as the socket takes it; -1 ended */
static int
wh_wsc_flush(wh_wsc_t *c)
{
    ssize_t  n;

    while (c->out.len) {
        n = wh_wsc_send(c, c->out.data, c->out.len);

        if (n == -1) {
            return 0;
        }

        if (n < 0) {
            wh_wsc_end(c, "%s", c->error);
            return -1;
        }

        wh_buf_consume(&c->out, (size_t) n);
    }

    return 0;
}


/* what the socket is watched for, from the state */
static void
wh_wsc_watch(wh_wsc_t *c)
{
    uint32_t  events;
    wh_err_t  err;

    if (c->ended || c->ev.fd == -1) {
        return;
    }

    switch (c->state) {

    case WH_WSC_CONNECTING:
        events = EPOLLOUT;
        break;

    case WH_WSC_TLS:
        events = c->want_write ? EPOLLOUT : EPOLLIN;
        break;

    default:
        events = (c->paused ? 0 : EPOLLIN)
                 | (c->out.len || c->want_write ? EPOLLOUT : 0);
        break;
    }

    /* none stays registered: EPOLLERR and EPOLLHUP still come; once
     * they came while paused, not until it resumes (they would spin) */
    if (!c->registered) {
        if (events == 0) {
            return;
        }

        if (wh_loop_add(c->loop, &c->ev, events, &err) != 0) {
            wh_wsc_end(c, "%s", err.msg);
            return;
        }

        c->registered = 1;
        c->events = events;
        return;
    }

    if (c->events != events) {
        if (wh_loop_mod(c->loop, &c->ev, events, &err) != 0) {
            wh_wsc_end(c, "%s", err.msg);
            return;
        }

        c->events = events;
    }
}


/* a masked frame (RFC 6455 5.3: a client masks all it sends); -1 out of
 * memory */
static int
wh_wsc_frame(wh_wsc_t *c, unsigned opcode, const void *payload,
    size_t len)
{
    size_t          i, n;
    unsigned char   head[WH_FRAME_HEADER_MAX + 4], *p;
    const unsigned char  *in = payload;

    n = wh_frame_header(head, opcode, 1, 0, len);
    head[1] |= 0x80;

    if (getrandom(head + n, 4, 0) != 4) {
        memset(head + n, 0x5a, 4);
    }

    if (wh_buf_reserve(&c->out, n + 4 + len) != 0) {
        return -1;
    }

    p = c->out.data + c->out.len;
    memcpy(p, head, n + 4);
    p += n + 4;

    for (i = 0; i < len; i++) {
        p[i] = in[i] ^ head[n + (i & 3)];
    }

    c->out.len += n + 4 + len;

    return 0;
}


/* ------------------------------------------------------------- frames */

static void
wh_wsc_message_end(wh_wsc_t *c, unsigned opcode)
{
    if (opcode == WH_WS_OP_TEXT) {
        c->h->message(c->ctx, (const char *) c->msg.data, c->msg.len);

        /* a large message's buffer goes; a small one is reused */
        if (c->msg.cap > 4 * WH_WSC_READ) {
            wh_buf_free(&c->msg);
        }

        c->msg.len = 0;
        return;
    }

    c->h->binary(c->ctx, (size_t) c->binary);
    c->binary = 0;
}


static void
wh_wsc_control(wh_wsc_t *c, const wh_frame_event_t *ev)
{
    unsigned char  payload[WH_WS_CONTROL_MAX];
    size_t         n;

    switch (ev->opcode) {

    case WH_WS_OP_PING:
        if (wh_wsc_frame(c, WH_WS_OP_PONG, ev->data, ev->len) != 0) {
            wh_wsc_end(c, "out of memory");
        }

        return;

    case WH_WS_OP_PONG:
        return;

    default:
        /* echo the code, then the connection is over (the server
         * closes TCP; not waiting for it costs nothing here) */
        n = wh_frame_close_payload(payload,
                                   ev->close_code == WH_WS_CLOSE_NO_STATUS
                                   ? 0 : ev->close_code, NULL);

        if (wh_wsc_frame(c, WH_WS_OP_CLOSE, payload, n) == 0) {
            (void) wh_wsc_flush(c);
        }

        wh_wsc_end(c, "closed by the server (%u%s%.*s)", ev->close_code,
                   ev->len ? " " : "", (int) (ev->len < 100 ? ev->len : 100),
                   (const char *) ev->data);
        return;
    }
}


static void
wh_wsc_protocol_error(wh_wsc_t *c, const wh_frame_event_t *ev)
{
    unsigned char  payload[WH_WS_CONTROL_MAX];
    size_t         n;

    n = wh_frame_close_payload(payload, ev->close_code, ev->reason);
    c->close_code = ev->close_code;

    if (wh_wsc_frame(c, WH_WS_OP_CLOSE, payload, n) == 0) {
        (void) wh_wsc_flush(c);
    }

    wh_wsc_end(c, "%s (closed with %u)", ev->reason, ev->close_code);
}


/* the frames in buf[0..len) */
static void
wh_wsc_frames(wh_wsc_t *c, unsigned char *buf, size_t len)
{
    size_t            used, pos = 0;
    wh_frame_rc_e     rc;
    wh_frame_event_t  ev;

    while (!c->ended) {
        rc = wh_frame_parse(&c->parser, buf + pos, len - pos, &used, &ev);
        pos += used;

        switch (rc) {

        case WH_FRAME_AGAIN:
            return;

        case WH_FRAME_DATA:
            if (ev.opcode != WH_WS_OP_TEXT) {
                c->binary += ev.len;

            } else if (wh_buf_append(&c->msg, ev.data, ev.len) != 0) {
                wh_wsc_end(c, "out of memory");
            }

            break;

        case WH_FRAME_MESSAGE_END:
            wh_wsc_message_end(c, ev.opcode);

            /* the owner paused: no message more until it resumes */
            if (c->paused && !c->ended && pos < len
                && wh_buf_append(&c->rest, buf + pos, len - pos) != 0)
            {
                wh_wsc_end(c, "out of memory");
            }

            if (c->paused) {
                return;
            }

            break;

        case WH_FRAME_CONTROL:
            wh_wsc_control(c, &ev);
            break;

        case WH_FRAME_ERROR:
            wh_wsc_protocol_error(c, &ev);
            return;
        }
    }
}


/* ------------------------------------------------------------ upgrade */

static int
wh_wsc_key(wh_wsc_t *c, char *key)
{
    size_t          n;
    unsigned char   raw[16], md[EVP_MAX_MD_SIZE];
    unsigned int    mdlen;
    char            both[24 + sizeof(WH_WSC_GUID)];

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t) sizeof(raw)) {
        return -1;
    }

    EVP_EncodeBlock((unsigned char *) key, raw, sizeof(raw));
    n = strlen(key);
    memcpy(both, key, n);
    memcpy(both + n, WH_WSC_GUID, sizeof(WH_WSC_GUID) - 1);

    if (EVP_Digest(both, n + sizeof(WH_WSC_GUID) - 1, md, &mdlen,
                   EVP_sha1(), NULL) != 1)
    {
        return -1;
    }

    EVP_EncodeBlock((unsigned char *) c->accept, md, mdlen);

    return 0;
}


/* the GET that asks for the upgrade, queued to go once connected */
static int
wh_wsc_request(wh_wsc_t *c, const char *headers)
{
    int              n;
    char             key[32], host[WH_URL_HOST_MAX + 16], *req;
    size_t           size;
    const wh_url_t  *u = c->conf.url;

    if (wh_wsc_key(c, key) != 0) {
        return -1;
    }

    /* the port only when it is not the scheme's */
    snprintf(host, sizeof(host), u->ipv6 ? "[%s]" : "%s", u->host);

    if (u->port_num != (u->tls ? 443u : 80u)) {
        n = (int) strlen(host);
        snprintf(host + n, sizeof(host) - n, ":%u", u->port_num);
    }

    size = strlen(u->target) + strlen(host) + 256
           + (headers ? strlen(headers) : 0)
           + (c->conf.subprotocol ? strlen(c->conf.subprotocol) : 0);
    req = malloc(size);

    if (req == NULL) {
        return -1;
    }

    n = snprintf(req, size,
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "%s%s%s"
                 "User-Agent: wirehubd/" WH_VERSION "\r\n"
                 "%s\r\n",
                 u->target, host, key,
                 c->conf.subprotocol ? "Sec-WebSocket-Protocol: " : "",
                 c->conf.subprotocol ? c->conf.subprotocol : "",
                 c->conf.subprotocol ? "\r\n" : "",
                 headers ? headers : "");

    if (n < 0 || (size_t) n >= size
        || wh_buf_append(&c->out, req, (size_t) n) != 0)
    {
        free(req);
        return -1;
    }

    free(req);

    return 0;
}


/* 1 if the comma-separated header value holds token (any case) */
static int
wh_wsc_has_token(const char *v, size_t len, const char *token)
{
    size_t  i, start, n = strlen(token);

    for (i = 0; i <= len; i++) {
        start = i;

        while (i < len && v[i] != ',') {
            i++;
        }

        while (start < i && (v[start] == ' ' || v[start] == '\t')) {
            start++;
        }

        while (i > start && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
            i--;
        }

        if (i - start == n && strncasecmp(v + start, token, n) == 0) {
            return 1;
        }

        while (i < len && v[i] != ',') {
            i++;
        }
    }

    return 0;
}


static const char  wh_wsc_not_101[] = "not 101";


/* checks the answer's head (NUL-terminated, without the blank line);
 * NULL if it accepts the upgrade, else why not */
static const char *
wh_wsc_check_head(wh_wsc_t *c, char *head)
{
    char        *line, *next, *colon, *v;
    size_t       vlen;
    unsigned     seen = 0;
    const char  *proto = c->conf.subprotocol;

    if (strncmp(head, "HTTP/1.1 101", 12) != 0
        && strncmp(head, "HTTP/1.0 101", 12) != 0)
    {
        return wh_wsc_not_101;      /* the status line says why */
    }

    for (line = strstr(head, "\r\n"); line; line = next) {
        line += 2;
        next = strstr(line, "\r\n");

        if (next) {
            *next = '\0';
        }

        colon = strchr(line, ':');

        if (colon == NULL) {
            if (next) {
                *next = '\r';
            }

            continue;
        }

        for (v = colon + 1; *v == ' ' || *v == '\t'; v++) {
            /* void */
        }

        vlen = strlen(v);

        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t')) {
            vlen--;
        }

#define WH_IS(name)  ((size_t) (colon - line) == sizeof(name) - 1       \
                      && strncasecmp(line, name, sizeof(name) - 1) == 0)

        if (WH_IS("upgrade")) {
            if (!wh_wsc_has_token(v, vlen, "websocket")) {
                return "Upgrade is not websocket";
            }

            seen |= 1;

        } else if (WH_IS("connection")) {
            if (!wh_wsc_has_token(v, vlen, "upgrade")) {
                return "Connection does not say upgrade";
            }

            seen |= 2;

        } else if (WH_IS("sec-websocket-accept")) {
            if (vlen != strlen(c->accept)
                || memcmp(v, c->accept, vlen) != 0)
            {
                return "wrong Sec-WebSocket-Accept";
            }

            seen |= 4;

        } else if (WH_IS("sec-websocket-protocol")) {
            if (proto == NULL || vlen != strlen(proto)
                || memcmp(v, proto, vlen) != 0)
            {
                return "a subprotocol that was not asked for";
            }

            seen |= 8;

        } else if (WH_IS("sec-websocket-extensions")) {
            return "an extension that was not asked for";
        }

#undef WH_IS

        if (next) {
            *next = '\r';
        }
    }

    if ((seen & 7) != 7) {
        return "Upgrade, Connection or Sec-WebSocket-Accept missing";
    }

    if (proto && !(seen & 8)) {
        return "the server chose no subprotocol";
    }

    return NULL;
}


/* reads the upgrade answer; once it is whole and right, OPEN, and what
 * followed it is frames */
static void
wh_wsc_upgrade_read(wh_wsc_t *c)
{
    char           *end, *head;
    size_t          hlen, rest;
    ssize_t         n;
    const char     *why;
    unsigned char   buf[WH_WSC_READ];

    n = wh_wsc_recv(c, buf, sizeof(buf));

    if (n == -1) {
        return;
    }

    if (n <= 0) {
        wh_wsc_end(c, "%s in the upgrade",
                   n == 0 ? "connection closed" : c->error);
        return;
    }

    if (wh_buf_append(&c->head, buf, (size_t) n) != 0
        || wh_buf_reserve(&c->head, 1) != 0)
    {
        wh_wsc_end(c, "out of memory");
        return;
    }

    c->head.data[c->head.len] = '\0';
    head = (char *) c->head.data;
    end = strstr(head, "\r\n\r\n");

    if (end == NULL) {
        if (c->head.len > WH_WSC_HEAD_MAX || strlen(head) < c->head.len) {
            wh_wsc_end(c, "upgrade answer too long or binary");
        }

        return;
    }

    hlen = end - head + 4;
    rest = c->head.len - hlen;
    *end = '\0';
    why = wh_wsc_check_head(c, head);

    if (why == wh_wsc_not_101) {
        head[strcspn(head, "\r")] = '\0';
        wh_wsc_end(c, "upgrade refused: %.80s", head);
        return;
    }

    if (why) {
        wh_wsc_end(c, "upgrade refused: %s", why);
        return;
    }

    c->state = WH_WSC_OPEN;
    c->last_rx = wh_loop_now();
    c->h->open(c->ctx);

    if (rest && !c->ended) {
        memcpy(buf, c->head.data + hlen, rest);
        wh_wsc_frames(c, buf, rest);
    }

    wh_buf_free(&c->head);
}


/* --------------------------------------------------------- connecting */

static void
wh_wsc_tls_step(wh_wsc_t *c)
{
    int    rc;
    long   vr;
    char   why[WH_WSC_REASON_MAX];

    ERR_clear_error();
    c->want_write = 0;
    rc = SSL_connect(c->ssl);

    if (rc == 1) {
        c->state = WH_WSC_UPGRADE;
        (void) wh_wsc_flush(c);
        return;
    }

    switch (SSL_get_error(c->ssl, rc)) {

    case SSL_ERROR_WANT_READ:
        return;

    case SSL_ERROR_WANT_WRITE:
        c->want_write = 1;
        return;

    default:
        vr = SSL_get_verify_result(c->ssl);

        if (vr != X509_V_OK) {
            wh_wsc_end(c, "certificate verify failed: %s",
                       X509_verify_cert_error_string(vr));
            return;
        }

        wh_wsc_tls_error(why, sizeof(why), "TLS handshake");
        wh_wsc_end(c, "%s", why);
        return;
    }
}


static int
wh_wsc_tls_start(wh_wsc_t *c)
{
    X509_VERIFY_PARAM  *param;
    const wh_url_t     *u = c->conf.url;

    c->ssl = SSL_new(c->conf.tls);

    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->ev.fd) != 1) {
        wh_wsc_tls_error(c->error, sizeof(c->error), "TLS setup");
        return -1;
    }

    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE
                         | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                         | SSL_MODE_RELEASE_BUFFERS);
    param = SSL_get0_param(c->ssl);

    if (u->numeric) {
        /* no SNI for an address (RFC 6066 3); its IP SAN is checked */
        if (X509_VERIFY_PARAM_set1_ip_asc(param, u->host) != 1) {
            wh_wsc_tls_error(c->error, sizeof(c->error), "TLS setup");
            return -1;
        }

    } else if (SSL_set_tlsext_host_name(c->ssl, u->host) != 1
               || SSL_set1_host(c->ssl, u->host) != 1)
    {
        wh_wsc_tls_error(c->error, sizeof(c->error), "TLS setup");
        return -1;
    }

    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    c->state = WH_WSC_TLS;
    wh_wsc_tls_step(c);

    return 0;
}


/* the socket is writable while connecting: connected, or not */
static void
wh_wsc_connected(wh_wsc_t *c)
{
    int        e = 0, one = 1;
    socklen_t  len = sizeof(e);

    if (getsockopt(c->ev.fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1) {
        e = errno;
    }

    if (e != 0) {
        snprintf(c->error, sizeof(c->error), "connect: %s", strerror(e));
        wh_wsc_drop_socket(c);
        wh_wsc_connect_next(c);
        return;
    }

    (void) setsockopt(c->ev.fd, IPPROTO_TCP, TCP_NODELAY, &one,
                      sizeof(one));
    freeaddrinfo(c->addrs);
    c->addrs = NULL;
    c->next = NULL;

    if (c->conf.url->tls) {
        if (wh_wsc_tls_start(c) != 0) {
            wh_wsc_end(c, "%s", c->error);
        }

        return;
    }

    c->state = WH_WSC_UPGRADE;
    (void) wh_wsc_flush(c);
}


/* the next address of the lookup; ends the connection with the last
 * error when none is left */
static void
wh_wsc_connect_next(wh_wsc_t *c)
{
    int               fd;
    struct addrinfo  *a;

    while ((a = c->next) != NULL) {
        c->next = a->ai_next;
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);

        if (fd == -1) {
            snprintf(c->error, sizeof(c->error), "socket: %s",
                     strerror(errno));
            continue;
        }

        if (connect(fd, a->ai_addr, a->ai_addrlen) == -1
            && errno != EINPROGRESS)
        {
            snprintf(c->error, sizeof(c->error), "connect: %s",
                     strerror(errno));
            close(fd);
            continue;
        }

        c->ev.fd = fd;
        c->state = WH_WSC_CONNECTING;
        return;
    }

    wh_wsc_end(c, "%s", c->error[0] ? c->error : "no address to connect");
}


static void
wh_wsc_resolved(void *ctx, struct addrinfo *res, int rc)
{
    wh_wsc_t  *c = ctx;

    c->lookup = NULL;

    if (rc != 0) {
        wh_wsc_end(c, "cannot resolve \"%s\": %s", c->conf.url->host,
                   gai_strerror(rc));
        wh_wsc_free(c);
        return;
    }

    c->addrs = res;
    c->next = res;
    wh_wsc_connect_next(c);

    if (c->ended) {
        wh_wsc_free(c);
        return;
    }

    wh_wsc_watch(c);

    if (c->ended) {
        wh_wsc_free(c);
    }
}


/* -------------------------------------------------------------- events */

static void
wh_wsc_read(wh_wsc_t *c)
{
    ssize_t        n;
    unsigned char  buf[WH_WSC_READ];

    if (c->state == WH_WSC_UPGRADE) {
        wh_wsc_upgrade_read(c);
        return;
    }

    /* what was read before a pause goes first */
    if (c->rest.len) {
        return;
    }

    /* one read per event: a flooding server waits its turn */
    n = wh_wsc_recv(c, buf, sizeof(buf));

    if (n == -1) {
        return;
    }

    if (n <= 0) {
        wh_wsc_end(c, "%s", n == 0 ? "connection closed without a close "
                                     "frame" : c->error);
        return;
    }

    c->last_rx = wh_loop_now();
    c->ping_sent = 0;
    wh_wsc_frames(c, buf, (size_t) n);
}


static void
wh_wsc_event(wh_event_t *ev, uint32_t events)
{
    wh_wsc_t  *c = ev->data;

    switch (c->state) {

    case WH_WSC_CONNECTING:
        wh_wsc_connected(c);
        break;

    case WH_WSC_TLS:
        wh_wsc_tls_step(c);
        break;

    default:
        /* a hang-up while paused waits for the resume: level-triggered,
         * it would come back at once, and nothing may be read yet */
        if ((events & (EPOLLERR | EPOLLHUP)) && (c->paused || c->rest.len))
        {
            wh_loop_del(c->loop, &c->ev);
            c->registered = 0;
            c->events = 0;
            return;
        }

        /* a TLS read that wanted the socket writable goes on now */
        if ((events & EPOLLOUT) && c->want_write && c->out.len == 0) {
            c->want_write = 0;
            events |= EPOLLIN;
        }

        if ((events & EPOLLOUT) && wh_wsc_flush(c) != 0) {
            break;
        }

        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            wh_wsc_read(c);
        }

        if (!c->ended && c->out.len) {
            (void) wh_wsc_flush(c);
        }

        break;
    }

    if (c->ended) {
        wh_wsc_free(c);
        return;
    }

    wh_wsc_watch(c);

    if (c->ended) {
        wh_wsc_free(c);
    }
}


/* ----------------------------------------------------------------- API */

SSL_CTX *
wh_wsc_tls_ctx(const char *cafile, wh_err_t *err)
{
    char      why[WH_WSC_REASON_MAX];
    SSL_CTX  *ctx;

    ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        wh_wsc_tls_error(why, sizeof(why), "SSL_CTX_new");
        wh_err(err, 500, "%s", why);
        return NULL;
    }

    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    if ((cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL)
                : SSL_CTX_set_default_verify_paths(ctx)) != 1)
    {
        wh_wsc_tls_error(why, sizeof(why), cafile ? cafile
                                                  : "the system's CAs");
        wh_err(err, 400, "cannot load %s", why);
        SSL_CTX_free(ctx);
        return NULL;
    }

    return ctx;
}


wh_wsc_t *
wh_wsc_open(wh_loop_t *loop, wh_resolver_t *resolver,
    const wh_wsc_conf_t *conf, const wh_wsc_handlers_t *h, void *ctx,
    wh_err_t *err)
{
    wh_wsc_t  *c;

    c = calloc(1, sizeof(wh_wsc_t));

    if (c == NULL) {
        wh_err(err, 503, "out of memory");
        return NULL;
    }

    c->loop = loop;
    c->conf = *conf;
    c->h = h;
    c->ctx = ctx;
    c->ev.fd = -1;
    c->ev.handler = wh_wsc_event;
    c->ev.data = c;
    c->started = wh_loop_now();
    c->parser.max_message_size = conf->max_message;

    if (wh_wsc_request(c, conf->headers) != 0) {
        wh_err(err, 503, "out of memory");
        free(c->out.data);
        free(c);
        return NULL;
    }

    /* no header is kept past the request it went into */
    c->conf.headers = NULL;

    /* an address literal too: a lookup of one never blocks, and the
     * outcome comes from the loop like any other */
    c->lookup = wh_resolve_start(resolver, conf->url->host, conf->url->port,
                                 wh_wsc_resolved, c, err);

    if (c->lookup == NULL) {
        wh_wsc_free(c);
        return NULL;
    }

    return c;
}


void
wh_wsc_tick(wh_wsc_t *c, int64_t now)
{
    wh_buf_t  rest;

    if (c->state != WH_WSC_OPEN) {
        if (now - c->started >= c->conf.handshake_ms) {
            wh_wsc_end(c, "no connection within %lld ms (%s)",
                       (long long) c->conf.handshake_ms,
                       wh_wsc_stages[c->state]);
        }

    } else if (c->conf.ping_ms > 0) {
        if (c->ping_sent == 0 && now - c->last_rx >= c->conf.ping_ms) {
            if (wh_wsc_frame(c, WH_WS_OP_PING, "wh", 2) != 0) {
                wh_wsc_end(c, "out of memory");
            } else {
                c->ping_sent = now;
                (void) wh_wsc_flush(c);
            }

        } else if (c->ping_sent && now - c->ping_sent >= c->conf.ping_ms) {
            wh_wsc_end(c, "no answer to a ping within %lld ms",
                       (long long) c->conf.ping_ms);
        }
    }

    /* what a pause held back */
    if (!c->ended && !c->paused && c->rest.len) {
        rest = c->rest;
        memset(&c->rest, 0, sizeof(wh_buf_t));
        wh_wsc_frames(c, rest.data, rest.len);
        wh_buf_free(&rest);
    }

    /* a TLS record read in part before a pause is not in the socket
     * any more: epoll would not say so */
    if (!c->ended && !c->paused && !c->rest.len && c->ssl
        && c->state == WH_WSC_OPEN && SSL_pending(c->ssl) > 0)
    {
        wh_wsc_read(c);
    }

    if (c->ended) {
        wh_wsc_free(c);
        return;
    }

    wh_wsc_watch(c);

    if (c->ended) {
        wh_wsc_free(c);
    }
}


void
wh_wsc_pause(wh_wsc_t *c, int paused)
{
    if (c->paused == (unsigned) !!paused) {
        return;
    }

    c->paused = !!paused;

    /* from inside a handler the event that called it watches after */
    if (c->state == WH_WSC_OPEN && c->registered) {
        wh_wsc_watch(c);
    }
}


void
wh_wsc_close(wh_wsc_t *c, unsigned code, const char *reason)
{
    unsigned char  payload[WH_WS_CONTROL_MAX];
    size_t         n;

    if (c->state == WH_WSC_OPEN && !c->ended) {
        n = wh_frame_close_payload(payload, code, reason);

        if (wh_wsc_frame(c, WH_WS_OP_CLOSE, payload, n) == 0) {
            c->ended = 1;       /* no handler from the flush */
            (void) wh_wsc_flush(c);
        }
    }

    c->ended = 1;
    wh_wsc_free(c);
}
