
/*
 * floor: the least a WebSocket fan-out server can do, as the benchmark's
 * reference point.  One thread, one epoll loop.
 *
 *   GET /sub/NAME + Upgrade: websocket   subscribes to channel NAME
 *   POST /pub/NAME (Content-Length)      frames the body once, send()s the
 *                                        frame to each subscriber with one
 *                                        call, answers 202
 *   POST /cmd/NAME (Content-Length)      a durable command for the device
 *                                        subscribed as NAME (404 if none)
 *
 * No authentication, no history, no queues: a subscriber whose socket does
 * not take a whole frame at once is dropped (counted at exit).  Channels
 * are kept in a small open-addressing table.
 *
 * Durable commands are the least group commit: a command (and a device's
 * command_result) is a line appended to the log; at the end of each loop
 * turn one write() and one fdatasync() cover all of the turn's lines, and
 * only then go the 202s, the device_command frames and the
 * command_result_accepted frames.  No queue: a command is lost if its
 * device is gone.
 *
 *   floor PORT [LOG]    listens on 127.0.0.1:PORT until SIGTERM / SIGINT;
 *                       commands are refused (503) without LOG
 */


#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/evp.h>


#define FL_EVENTS       512
#define FL_MAX_HEAD     8192
#define FL_MAX_BODY     65536
#define FL_MAX_NAME     200
#define FL_TABLE        4096
#define FL_WS_GUID      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define FL_MAX_ID       32


typedef enum {
    FL_CONN_HTTP = 0,
    FL_CONN_SUB,
    FL_CONN_DEAD
} fl_conn_kind_e;


typedef struct fl_channel_s  fl_channel_t;

typedef struct fl_conn_s  fl_conn_t;

struct fl_conn_s {
    int              fd;
    int              kind;
    fl_conn_t       *next_dead;
    fl_channel_t    *channel;
    unsigned         slot;          /* index in channel->subs */
    char            *in;
    size_t           in_len;
};


/* a growable byte buffer, kept from turn to turn */
typedef struct {
    char            *data;
    size_t           len, cap;
} fl_buf_t;


/* what leaves once the turn's log is on disk: this header, its len bytes,
 * then the next one at a pointer-aligned offset */
typedef struct {
    fl_conn_t       *conn;
    size_t           len;
} fl_out_t;


struct fl_channel_s {
    char             name[FL_MAX_NAME + 1];
    fl_conn_t      **subs;
    unsigned         nsubs;
    unsigned         cap;
};


typedef struct {
    int              ep;
    int              listener;
    fl_conn_t       *dead;          /* closed, freed after the event batch */
    fl_channel_t    *table[FL_TABLE];
    char             frame[FL_MAX_BODY + 16];
    char             buf[FL_MAX_BODY + FL_MAX_HEAD];
    unsigned long    published;
    unsigned long    sent;
    unsigned long    dropped;
    int              log;           /* the commands' log, -1 if none */
    fl_buf_t         lines;         /* for the log, this turn */
    fl_buf_t         out;           /* fl_out_t records, this turn */
    unsigned long    commands;
    unsigned long    results;
    unsigned long    syncs;
} fl_server_t;


static volatile sig_atomic_t  fl_stop;


static void
fl_on_signal(int signo)
{
    (void) signo;
    fl_stop = 1;
}


static fl_channel_t *
fl_channel(fl_server_t *srv, const char *name, size_t len)
{
    unsigned       h, i;
    fl_channel_t  *ch;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) name[i]) * 16777619u;
    }

    for (i = 0; i < FL_TABLE; i++) {
        ch = srv->table[(h + i) % FL_TABLE];

        if (ch == NULL) {
            ch = calloc(1, sizeof(fl_channel_t));
            if (ch == NULL) {
                return NULL;
            }
            memcpy(ch->name, name, len);
            srv->table[(h + i) % FL_TABLE] = ch;
            return ch;
        }

        if (strlen(ch->name) == len && memcmp(ch->name, name, len) == 0) {
            return ch;
        }
    }

    return NULL;
}


static int
fl_channel_add(fl_channel_t *ch, fl_conn_t *c)
{
    fl_conn_t  **p;

    if (ch->nsubs == ch->cap) {
        p = realloc(ch->subs, (ch->cap ? ch->cap * 2 : 16) * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        ch->subs = p;
        ch->cap = ch->cap ? ch->cap * 2 : 16;
    }

    c->channel = ch;
    c->slot = ch->nsubs;
    ch->subs[ch->nsubs++] = c;

    return 0;
}


/*
 * Out of its channel and its socket closed now; the memory waits for the
 * end of the event batch, which may still name this connection.
 */
static void
fl_close(fl_server_t *srv, fl_conn_t *c)
{
    fl_channel_t  *ch;

    if (c->kind == FL_CONN_DEAD) {
        return;
    }

    ch = c->channel;

    if (ch) {
        ch->subs[c->slot] = ch->subs[--ch->nsubs];
        ch->subs[c->slot]->slot = c->slot;
        c->channel = NULL;
    }

    (void) epoll_ctl(srv->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->kind = FL_CONN_DEAD;
    c->next_dead = srv->dead;
    srv->dead = c;
}


static void
fl_free_dead(fl_server_t *srv)
{
    fl_conn_t  *c;

    while (srv->dead) {
        c = srv->dead;
        srv->dead = c->next_dead;
        free(c->in);
        free(c);
    }
}


static size_t
fl_frame(char *out, const char *data, size_t len)
{
    size_t  hlen;

    out[0] = (char) 0x81;

    if (len < 126) {
        out[1] = (char) len;
        hlen = 2;

    } else if (len < 65536) {
        out[1] = 126;
        out[2] = (char) (len >> 8);
        out[3] = (char) len;
        hlen = 4;

    } else {
        return 0;
    }

    memcpy(out + hlen, data, len);
    return hlen + len;
}


/* the one thing this server does: one send() per subscriber */
static void
fl_publish(fl_server_t *srv, const char *name, size_t nlen, const char *body,
    size_t blen)
{
    size_t         flen;
    ssize_t        n;
    unsigned       i;
    fl_channel_t  *ch;

    srv->published++;

    ch = fl_channel(srv, name, nlen);
    flen = fl_frame(srv->frame, body, blen);

    if (ch == NULL || flen == 0) {
        return;
    }

    i = 0;

    while (i < ch->nsubs) {
        n = send(ch->subs[i]->fd, srv->frame, flen,
                 MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n == (ssize_t) flen) {
            srv->sent++;
            i++;
            continue;
        }

        srv->dropped++;
        fl_close(srv, ch->subs[i]);
    }
}


static int
fl_reply(int fd, const char *text)
{
    size_t  len;

    len = strlen(text);

    return send(fd, text, len, MSG_NOSIGNAL) == (ssize_t) len ? 0 : -1;
}


/* room for n more bytes at b->data + b->len, or NULL */
static char *
fl_buf_room(fl_buf_t *b, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->len + n > b->cap) {
        cap = b->cap ? b->cap : 65536;

        while (cap < b->len + n) {
            cap *= 2;
        }

        p = realloc(b->data, cap);
        if (p == NULL) {
            return NULL;
        }

        b->data = p;
        b->cap = cap;
    }

    return b->data + b->len;
}


/* a line for this turn's write to the log: "a b" */
static int
fl_log_line(fl_server_t *srv, const char *a, size_t alen, const char *b,
    size_t blen)
{
    char  *p;

    p = fl_buf_room(&srv->lines, alen + blen + 2);
    if (p == NULL) {
        return -1;
    }

    memcpy(p, a, alen);
    p[alen] = ' ';
    memcpy(p + alen + 1, b, blen);
    p[alen + 1 + blen] = '\n';
    srv->lines.len += alen + blen + 2;

    return 0;
}


#define fl_out_size(len)                                                     \
    (sizeof(fl_out_t) + (((len) + sizeof(void *) - 1) & ~(sizeof(void *) - 1)))


/* data for c once the turn's lines are on disk; frame: as a text frame */
static int
fl_after(fl_server_t *srv, fl_conn_t *c, const char *data, size_t len,
    int frame)
{
    char      *p;
    fl_out_t  *o;

    if (frame && len >= 65536) {
        return -1;
    }

    p = fl_buf_room(&srv->out, fl_out_size(len + 4));
    if (p == NULL) {
        return -1;
    }

    o = (fl_out_t *) p;
    o->conn = c;

    if (frame) {
        o->len = fl_frame(p + sizeof(fl_out_t), data, len);

    } else {
        memcpy(p + sizeof(fl_out_t), data, len);
        o->len = len;
    }

    srv->out.len += fl_out_size(o->len);

    return 0;
}


static void fl_close(fl_server_t *srv, fl_conn_t *c);


/*
 * The end of a loop turn: the group commit.  One write() and one
 * fdatasync() for every line of the turn, then what waited for them.
 */
static void
fl_commit(fl_server_t *srv)
{
    size_t     off;
    ssize_t    n;
    fl_out_t  *o;

    if (srv->lines.len) {
        for (off = 0; off < srv->lines.len; off += (size_t) n) {
            n = write(srv->log, srv->lines.data + off, srv->lines.len - off);

            if (n <= 0) {
                fprintf(stderr, "floor: log: %s\n", strerror(errno));
                exit(1);
            }
        }

        if (fdatasync(srv->log) != 0) {
            fprintf(stderr, "floor: log: fdatasync: %s\n", strerror(errno));
            exit(1);
        }

        srv->lines.len = 0;
        srv->syncs++;
    }

    for (off = 0; off < srv->out.len; off += fl_out_size(o->len)) {
        o = (fl_out_t *) (srv->out.data + off);

        if (o->conn->kind != FL_CONN_DEAD
            && send(o->conn->fd, (char *) o + sizeof(fl_out_t), o->len,
                    MSG_NOSIGNAL | MSG_DONTWAIT)
               != (ssize_t) o->len)
        {
            srv->dropped++;
            fl_close(srv, o->conn);
        }
    }

    srv->out.len = 0;
}


/* POST /cmd/NAME: logged, then answered and sent to the device */
static int
fl_command(fl_server_t *srv, fl_conn_t *c, const char *name, size_t nlen,
    const char *body, size_t blen)
{
    int            n;
    char           id[FL_MAX_ID], head[128];
    fl_channel_t  *ch;

    static const char  unknown[] = "HTTP/1.1 404 Not Found\r\n"
                                   "Content-Length: 0\r\n\r\n";
    static const char  nolog[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                 "Content-Length: 0\r\n\r\n";

    if (srv->log == -1) {
        return fl_reply(c->fd, nolog);
    }

    ch = fl_channel(srv, name, nlen);

    if (ch == NULL || ch->nsubs == 0) {
        return fl_reply(c->fd, unknown);
    }

    n = snprintf(id, sizeof(id), "c-%lu", ++srv->commands);

    if (fl_log_line(srv, id, (size_t) n, body, blen) != 0) {
        return -1;
    }

    /* the 202 with the id, then the device's frame with the body */
    snprintf(head, sizeof(head), "{\"command_id\":\"%s\"}", id);
    n = snprintf(srv->buf, sizeof(srv->buf),
                 "HTTP/1.1 202 Accepted\r\nContent-Type: application/json"
                 "\r\nContent-Length: %zu\r\n\r\n%s", strlen(head), head);

    if (fl_after(srv, c, srv->buf, (size_t) n, 0) != 0) {
        return -1;
    }

    n = snprintf(srv->buf, sizeof(srv->buf),
                 "{\"type\":\"device_command\",\"command_id\":\"%s\","
                 "\"command\":%.*s}", id, (int) blen, body);

    if (n < 0 || (size_t) n >= sizeof(srv->buf)) {
        return -1;
    }

    return fl_after(srv, ch->subs[0], srv->buf, (size_t) n, 1);
}


/* a device's command_result: logged, then command_result_accepted */
static int
fl_result(fl_server_t *srv, fl_conn_t *c, const char *data, size_t len)
{
    int          n;
    char         msg[128];
    const char  *id, *end;

    id = memmem(data, len, "\"command_id\":\"", 14);
    if (id == NULL || srv->log == -1) {
        return 0;
    }

    id += 14;
    end = memchr(id, '"', len - (size_t) (id - data));

    if (end == NULL || end - id >= FL_MAX_ID) {
        return -1;
    }

    if (fl_log_line(srv, "r", 1, id, (size_t) (end - id)) != 0) {
        return -1;
    }

    srv->results++;
    n = snprintf(msg, sizeof(msg), "{\"type\":\"command_result_accepted\","
                 "\"command_id\":\"%.*s\"}", (int) (end - id), id);

    return fl_after(srv, c, msg, (size_t) n, 1);
}


static int
fl_upgrade(fl_server_t *srv, fl_conn_t *c, const char *head,
    const char *name, size_t nlen)
{
    int            n;
    char           src[128], accept[64], resp[256];
    const char    *k, *end;
    unsigned int   dlen;
    unsigned char  digest[EVP_MAX_MD_SIZE];
    fl_channel_t  *ch;

    k = strcasestr(head, "\r\nSec-WebSocket-Key:");
    if (k == NULL) {
        return -1;
    }

    k += 20;

    while (*k == ' ') {
        k++;
    }

    end = strstr(k, "\r\n");
    if (end == NULL || end - k > 64) {
        return -1;
    }

    n = snprintf(src, sizeof(src), "%.*s%s", (int) (end - k), k, FL_WS_GUID);

    if (EVP_Digest(src, (size_t) n, digest, &dlen, EVP_sha1(), NULL) != 1) {
        return -1;
    }

    EVP_EncodeBlock((unsigned char *) accept, digest, (int) dlen);

    snprintf(resp, sizeof(resp),
             "HTTP/1.1 101 Switching Protocols\r\n"
             "Upgrade: websocket\r\n"
             "Connection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n\r\n", accept);

    ch = fl_channel(srv, name, nlen);

    if (ch == NULL || fl_reply(c->fd, resp) != 0
        || fl_channel_add(ch, c) != 0)
    {
        return -1;
    }

    c->kind = FL_CONN_SUB;
    return 0;
}


/* one request from c->in; bytes used, 0 if incomplete, -1 to close */
static ssize_t
fl_request(fl_server_t *srv, fl_conn_t *c)
{
    int          post, cmd;
    char        *end, *h, *path, *sp;
    long         clen;
    size_t       hlen, nlen;

    c->in[c->in_len] = '\0';

    end = strstr(c->in, "\r\n\r\n");
    if (end == NULL) {
        return c->in_len >= FL_MAX_HEAD ? -1 : 0;
    }

    hlen = (size_t) (end - c->in) + 4;
    post = strncmp(c->in, "POST /pub/", 10) == 0;
    cmd = strncmp(c->in, "POST /cmd/", 10) == 0;

    if (!post && !cmd && strncmp(c->in, "GET /sub/", 9) != 0) {
        return -1;
    }

    path = c->in + (post || cmd ? 10 : 9);
    sp = strchr(path, ' ');
    nlen = sp ? (size_t) (sp - path) : 0;

    if (nlen == 0 || nlen > FL_MAX_NAME) {
        return -1;
    }

    if (!post && !cmd) {
        return fl_upgrade(srv, c, c->in, path, nlen) == 0 ? (ssize_t) hlen
                                                          : -1;
    }

    h = strcasestr(c->in, "\r\nContent-Length:");
    clen = (h && h < end) ? strtol(h + 17, NULL, 10) : -1;

    if (clen < 0 || clen > FL_MAX_BODY) {
        return -1;
    }

    if (c->in_len < hlen + (size_t) clen) {
        return 0;
    }

    if (cmd) {
        return fl_command(srv, c, path, nlen, c->in + hlen, (size_t) clen)
               == 0 ? (ssize_t) (hlen + (size_t) clen) : -1;
    }

    fl_publish(srv, path, nlen, c->in + hlen, (size_t) clen);

    if (fl_reply(c->fd, "HTTP/1.1 202 Accepted\r\n"
                        "Content-Length: 0\r\n\r\n") != 0)
    {
        return -1;
    }

    return (ssize_t) (hlen + (size_t) clen);
}


/*
 * A subscriber's frame at p (avail bytes; masked, as from any client):
 * close is answered and ends it, a text frame is a device's
 * command_result.  Bytes used, 0 if the frame is incomplete, -1 to close.
 */
static ssize_t
fl_subscriber_frame(fl_server_t *srv, fl_conn_t *c, unsigned char *p,
    size_t avail)
{
    size_t          hlen, len, i;
    unsigned char  *mask;

    static const char  close_frame[] = { (char) 0x88, 0x00 };

    if (avail < 2) {
        return 0;
    }

    len = p[1] & 0x7f;
    hlen = 2;

    if (len == 127 || !(p[1] & 0x80)) {
        return -1;
    }

    if (len == 126) {
        if (avail < 4) {
            return 0;
        }
        len = ((size_t) p[2] << 8) | p[3];
        hlen = 4;
    }

    mask = p + hlen;
    hlen += 4;

    if (len > FL_MAX_BODY) {
        return -1;
    }

    if (avail < hlen + len) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        p[hlen + i] ^= mask[i % 4];
    }

    switch (p[0] & 0x0f) {

    case 0x08:
        (void) send(c->fd, close_frame, 2, MSG_NOSIGNAL);
        return -1;

    case 0x01:
        if (fl_result(srv, c, (char *) p + hlen, len) != 0) {
            return -1;
        }
        break;

    default:
        break;
    }

    return (ssize_t) (hlen + len);
}


/*
 * A subscriber's frames at p; a partial one is kept in c->in, which is
 * freed once empty: an idle subscriber holds no buffer.
 */
static void
fl_subscriber_input(fl_server_t *srv, fl_conn_t *c, char *p, size_t len)
{
    ssize_t  used;

    while (len > 0) {
        used = fl_subscriber_frame(srv, c, (unsigned char *) p, len);

        if (used < 0) {
            fl_close(srv, c);
            return;
        }

        if (used == 0) {
            break;
        }

        p += used;
        len -= (size_t) used;
    }

    if (len && c->in == NULL) {
        c->in = malloc(FL_MAX_HEAD + FL_MAX_BODY + 1);
        if (c->in == NULL) {
            fl_close(srv, c);
            return;
        }
    }

    if (len) {
        memmove(c->in, p, len);

    } else {
        free(c->in);
        c->in = NULL;
    }

    c->in_len = len;
}


static void
fl_read(fl_server_t *srv, fl_conn_t *c)
{
    ssize_t  n, used;

    if (c->kind == FL_CONN_DEAD) {
        return;
    }

    if (c->kind == FL_CONN_SUB && c->in == NULL) {
        /* nothing pending: frames are read where they land */
        n = recv(c->fd, srv->buf, sizeof(srv->buf), 0);

        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            fl_close(srv, c);

        } else if (n > 0) {
            fl_subscriber_input(srv, c, srv->buf, (size_t) n);
        }

        return;
    }

    if (c->in == NULL) {
        c->in = malloc(FL_MAX_HEAD + FL_MAX_BODY + 1);
        if (c->in == NULL) {
            fl_close(srv, c);
            return;
        }
    }

    n = recv(c->fd, c->in + c->in_len, FL_MAX_HEAD + FL_MAX_BODY - c->in_len,
             0);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        fl_close(srv, c);
        return;
    }

    c->in_len += (size_t) (n > 0 ? n : 0);

    while (c->kind == FL_CONN_HTTP && c->in_len > 0) {
        used = fl_request(srv, c);

        if (used < 0) {
            fl_close(srv, c);
            return;
        }

        if (used == 0) {
            break;
        }

        memmove(c->in, c->in + used, c->in_len - (size_t) used);
        c->in_len -= (size_t) used;
    }

    /* a subscriber's pending bytes, or what followed its upgrade */
    if (c->kind == FL_CONN_SUB) {
        fl_subscriber_input(srv, c, c->in, c->in_len);
    }
}


static void
fl_accept(fl_server_t *srv)
{
    int                 fd, one;
    fl_conn_t          *c;
    struct epoll_event  ev;

    for ( ;; ) {
        fd = accept4(srv->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            return;
        }

        one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        c = calloc(1, sizeof(fl_conn_t));
        if (c == NULL) {
            close(fd);
            continue;
        }

        c->fd = fd;
        ev.events = EPOLLIN;
        ev.data.ptr = c;

        if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
        }
    }
}


static void
fl_server_free(fl_server_t *srv)
{
    unsigned  i;

    for (i = 0; i < FL_TABLE; i++) {
        if (srv->table[i]) {
            free(srv->table[i]->subs);
            free(srv->table[i]);
        }
    }

    free(srv);
}


static int
fl_listen(fl_server_t *srv, int port)
{
    int                 one;
    struct sockaddr_in  sa;
    struct epoll_event  ev;

    srv->listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (srv->listener == -1) {
        return -1;
    }

    one = 1;
    (void) setsockopt(srv->listener, SOL_SOCKET, SO_REUSEADDR, &one,
                      sizeof(one));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (bind(srv->listener, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || listen(srv->listener, 4096) != 0)
    {
        return -1;
    }

    srv->ep = epoll_create1(0);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;

    return epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->listener, &ev);
}


int
main(int argc, char **argv)
{
    int                  i, n, port;
    fl_server_t         *srv;
    struct epoll_event   events[FL_EVENTS];

    port = (argc == 2 || argc == 3) ? atoi(argv[1]) : 0;

    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: floor PORT [LOG]\n");
        return 2;
    }

    srv = calloc(1, sizeof(fl_server_t));

    if (srv == NULL || fl_listen(srv, port) != 0) {
        fprintf(stderr, "floor: cannot listen on 127.0.0.1:%d: %s\n", port,
                strerror(errno));
        return 1;
    }

    srv->log = argc == 3 ? open(argv[2], O_WRONLY | O_CREAT | O_APPEND
                                         | O_CLOEXEC, 0600)
                         : -1;

    if (argc == 3 && srv->log == -1) {
        fprintf(stderr, "floor: cannot open %s: %s\n", argv[2],
                strerror(errno));
        return 1;
    }

    signal(SIGTERM, fl_on_signal);
    signal(SIGINT, fl_on_signal);
    signal(SIGPIPE, SIG_IGN);

    while (!fl_stop) {
        n = epoll_wait(srv->ep, events, FL_EVENTS, 200);

        for (i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) {
                fl_accept(srv);
            } else {
                fl_read(srv, events[i].data.ptr);
            }
        }

        fl_commit(srv);
        fl_free_dead(srv);
    }

    fprintf(stderr, "floor: %lu published, %lu frames sent, %lu "
            "subscribers dropped; %lu commands, %lu results, %lu syncs\n",
            srv->published, srv->sent, srv->dropped, srv->commands,
            srv->results, srv->syncs);
    fl_server_free(srv);
    return 0;
}
