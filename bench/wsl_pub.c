
/*
 * The publisher of wsload: HTTP/1.1 POSTs over a few keep-alive
 * connections, one request in flight on each.
 *
 * At a fixed rate, message s is due at t0 + s / rate and carries that
 * time, not the time it finally went out, so a publisher that falls behind
 * shows up in the latency (no coordinated omission).  At "as fast as
 * possible" a window bounds the messages in flight: message s goes out
 * once every ready subscriber has received message s - window, counted in
 * the shared ack ring.
 */


#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "wsl.h"
#include "wsl_net.h"


#define WSL_PUB_IN          8192
#define WSL_PUB_TICK_US     1000
#define WSL_PUB_STALL_US    2000000
#define WSL_PUB_ENVELOPE    256
#define WSL_PUB_MQTT_BATCH  65536
#define WSL_PUB_BURST       1024


typedef struct {
    int         fd;
    int         busy;
    int         connected;
    int         mqtt_ready;         /* CONNACK received */
    uint64_t    sent_us;
    char       *out;
    size_t      out_len;
    size_t      out_sent;
    size_t      out_cap;
    char        in[WSL_PUB_IN];
    size_t      in_len;
} wsl_pub_conn_t;


typedef struct {
    const wsl_conf_t  *conf;
    wsl_shared_t      *sh;
    wsl_slot_t        *slot;
    int                ep;
    unsigned           nconns;
    wsl_pub_conn_t     conns[WSL_PUB_MAX_CONNS];
    char               auth[WSL_MAX_TOKEN + 64];
    char              *pad;
    char              *body;
    uint64_t           next_seq;
    uint64_t           t0_us;
    uint64_t           blocked_since;
} wsl_pub_t;


static int
wsl_pub_want(wsl_pub_t *pb, wsl_pub_conn_t *pc, uint32_t events, int op)
{
    struct epoll_event  ev;

    ev.events = events;
    ev.data.ptr = pc;

    return epoll_ctl(pb->ep, op, pc->fd, &ev);
}


static int
wsl_pub_connect(wsl_pub_t *pb, wsl_pub_conn_t *pc)
{
    pc->fd = wsl_connect(&pb->conf->pub_server,
                         pb->conf->pub_server.sin_addr);
    pc->busy = 0;
    pc->connected = 0;
    pc->mqtt_ready = 0;
    pc->in_len = 0;
    pc->out_len = 0;
    pc->out_sent = 0;

    if (pc->fd == -1) {
        return -1;
    }

    return wsl_pub_want(pb, pc, EPOLLOUT, EPOLL_CTL_ADD);
}


static void
wsl_pub_reconnect(wsl_pub_t *pb, wsl_pub_conn_t *pc)
{
    if (pc->busy) {
        atomic_fetch_add_explicit(&pb->sh->pub_errors, 1,
                                  memory_order_relaxed);
    }

    if (pc->fd != -1) {
        close(pc->fd);
        pc->fd = -1;
    }

    (void) wsl_pub_connect(pb, pc);
}


/* the data object, padded to --size bytes */
static int
wsl_pub_data(wsl_pub_t *pb, uint64_t seq, uint64_t t, char *out,
    size_t len)
{
    int     n;
    size_t  pad;

    n = snprintf(out, len, "{\"wl_t\":%llu,\"wl_s\":%llu,\"pad\":\"",
                 (unsigned long long) t, (unsigned long long) seq);
    if (n < 0 || (size_t) n + 3 > len) {
        return -1;
    }

    pad = (pb->conf->size > (size_t) n + 2) ? pb->conf->size - (size_t) n - 2
                                             : 0;
    if ((size_t) n + pad + 3 > len) {
        return -1;
    }

    memcpy(out + n, pb->pad, pad);
    memcpy(out + n + pad, "\"}", 3);

    return n + (int) pad + 2;
}


static int
wsl_pub_reserve(wsl_pub_conn_t *pc, size_t more)
{
    char    *p;
    size_t   cap;

    if (pc->out_len + more <= pc->out_cap) {
        return 0;
    }

    cap = pc->out_len + more + WSL_PUB_MQTT_BATCH;

    p = realloc(pc->out, cap);
    if (p == NULL) {
        return -1;
    }

    pc->out = p;
    pc->out_cap = cap;
    return 0;
}


static int
wsl_pub_http(wsl_pub_t *pb, wsl_pub_conn_t *pc, const char *path,
    const char *body, int blen)
{
    int  n;

    if (wsl_pub_reserve(pc, (size_t) blen + sizeof(pb->auth) + 1024) != 0) {
        return -1;
    }

    n = snprintf(pc->out, pc->out_cap,
                 "POST %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "%s"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %d\r\n\r\n%.*s",
                 path, pb->conf->pub_host, pb->auth, blen, blen, body);
    if (n < 0 || (size_t) n >= pc->out_cap) {
        return -1;
    }

    pc->out_len = (size_t) n;
    pc->out_sent = 0;
    pc->busy = 1;
    pc->sent_us = wsl_now_us();

    return wsl_pub_want(pb, pc, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
}


/* QoS 0 has no answer: packets queue up and go out in batches */
static int
wsl_pub_mqtt(wsl_pub_t *pb, wsl_pub_conn_t *pc, const char *path,
    const char *body, int blen)
{
    size_t  n;

    if (wsl_pub_reserve(pc, (size_t) blen + 512) != 0) {
        return -1;
    }

    /* mqtt://host:port/TOPIC: the topic is the path without its "/" */
    n = wsl_mqtt_publish((uint8_t *) pc->out + pc->out_len,
                         pc->out_cap - pc->out_len, path + 1, body,
                         (size_t) blen);
    if (n == 0) {
        return -1;
    }

    pc->out_len += n;
    atomic_fetch_add_explicit(&pb->sh->published, 1, memory_order_relaxed);

    return 0;
}


static int
wsl_pub_request(wsl_pub_t *pb, wsl_pub_conn_t *pc, uint64_t seq, uint64_t t)
{
    int     n, blen;
    char    channel[256], path[512], *body;
    size_t  cap;

    wsl_channel_name(pb->conf, (unsigned) (seq % pb->conf->channels),
                     channel, sizeof(channel));

    if (wsl_expand(pb->conf->pub_path, channel, path, sizeof(path)) != 0) {
        return -1;
    }

    body = pb->body;
    cap = pb->conf->size + WSL_PUB_ENVELOPE;

    if (pb->conf->mode == WSL_MODE_COMMANDS) {
        n = snprintf(body, cap, "{\"command\":\"bench\",\"priority\":5,"
                                "\"payload\":");
        blen = wsl_pub_data(pb, seq, t, body + n, cap - (size_t) n - 1);
        if (blen < 0) {
            return -1;
        }
        blen += n;
        body[blen++] = '}';

    } else if (pb->conf->proto == WSL_PROTO_JSON && !pb->conf->pub_mqtt) {
        n = snprintf(body, cap, "{\"type\":\"bench\",\"data\":");
        blen = wsl_pub_data(pb, seq, t, body + n, cap - (size_t) n - 1);
        if (blen < 0) {
            return -1;
        }
        blen += n;
        body[blen++] = '}';

    } else {
        blen = wsl_pub_data(pb, seq, t, body, cap);
        if (blen < 0) {
            return -1;
        }
    }

    return pb->conf->pub_mqtt ? wsl_pub_mqtt(pb, pc, path, body, blen)
                              : wsl_pub_http(pb, pc, path, body, blen);
}


/* a whole response in pc->in: its length, 0 if not yet, -1 if malformed */
static ssize_t
wsl_pub_response_len(wsl_pub_conn_t *pc, int *status)
{
    char        *end, *h, *body;
    size_t       hlen;
    long         clen;

    pc->in[pc->in_len] = '\0';

    end = strstr(pc->in, "\r\n\r\n");
    if (end == NULL) {
        return pc->in_len + 1 >= WSL_PUB_IN ? -1 : 0;
    }

    if (sscanf(pc->in, "HTTP/1.%*c %d", status) != 1) {
        return -1;
    }

    hlen = (size_t) (end - pc->in) + 4;
    body = end + 4;

    h = strcasestr(pc->in, "\r\ncontent-length:");
    if (h && h < end) {
        clen = strtol(h + 17, NULL, 10);
        if (clen < 0 || hlen + (size_t) clen >= WSL_PUB_IN) {
            return -1;
        }
        return (pc->in_len >= hlen + (size_t) clen)
               ? (ssize_t) (hlen + (size_t) clen) : 0;
    }

    h = strcasestr(pc->in, "\r\ntransfer-encoding: chunked");
    if (h && h < end) {
        h = strstr(body, "0\r\n\r\n");
        return h ? (ssize_t) ((size_t) (h - pc->in) + 5) : 0;
    }

    return (ssize_t) hlen;
}


/* an MQTT broker answers CONNECT with CONNACK, then nothing at QoS 0 */
static void
wsl_pub_mqtt_answer(wsl_pub_t *pb, wsl_pub_conn_t *pc)
{
    if (!pc->mqtt_ready && pc->in_len >= 4) {
        if ((uint8_t) pc->in[0] != 0x20 || pc->in[3] != 0) {
            snprintf(pb->sh->error, sizeof(pb->sh->error),
                     "the broker refused the publisher's CONNECT");
            wsl_pub_reconnect(pb, pc);
            return;
        }
        pc->mqtt_ready = 1;
    }

    if (pc->mqtt_ready) {
        pc->in_len = 0;
    }
}


static void
wsl_pub_read(wsl_pub_t *pb, wsl_pub_conn_t *pc)
{
    int      status, keep;
    ssize_t  n, len;

    n = recv(pc->fd, pc->in + pc->in_len, WSL_PUB_IN - 1 - pc->in_len, 0);

    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }

    if (n <= 0) {
        wsl_pub_reconnect(pb, pc);
        return;
    }

    pc->in_len += (size_t) n;

    if (pb->conf->pub_mqtt) {
        wsl_pub_mqtt_answer(pb, pc);
        return;
    }
    status = 0;

    len = wsl_pub_response_len(pc, &status);
    if (len == 0) {
        return;
    }

    if (len < 0) {
        wsl_pub_reconnect(pb, pc);
        return;
    }

    if (status >= 200 && status < 300) {
        atomic_fetch_add_explicit(&pb->sh->published, 1,
                                  memory_order_relaxed);

        if (atomic_load_explicit(&pb->sh->phase, memory_order_relaxed)
            == WSL_PHASE_MEASURE)
        {
            wsl_hist_add(&pb->slot->publish, wsl_now_us() - pc->sent_us);
        }

    } else {
        atomic_fetch_add_explicit(&pb->sh->pub_errors, 1,
                                  memory_order_relaxed);
        if (pb->sh->error[0] == '\0') {
            snprintf(pb->sh->error, sizeof(pb->sh->error),
                     "publish answered %d", status);
        }
    }

    keep = strcasestr(pc->in, "\r\nconnection: close") == NULL;

    memmove(pc->in, pc->in + len, pc->in_len - (size_t) len);
    pc->in_len -= (size_t) len;
    pc->busy = 0;

    if (!keep) {
        wsl_pub_reconnect(pb, pc);
    }
}


static int
wsl_pub_connected(wsl_pub_t *pb, wsl_pub_conn_t *pc)
{
    char    id[32];
    size_t  n;

    if (wsl_connect_result(pc->fd) != 0) {
        return -1;
    }

    pc->connected = 1;

    if (!pb->conf->pub_mqtt) {
        return 0;
    }

    snprintf(id, sizeof(id), "wl-pub-%d-%d", (int) getpid(),
             (int) (pc - pb->conns));

    if (wsl_pub_reserve(pc, 256) != 0) {
        return -1;
    }

    n = wsl_mqtt_connect((uint8_t *) pc->out, pc->out_cap, id);
    pc->out_len = n;
    pc->out_sent = 0;

    return n ? 0 : -1;
}


static void
wsl_pub_write(wsl_pub_t *pb, wsl_pub_conn_t *pc)
{
    ssize_t  n;

    if (!pc->connected && wsl_pub_connected(pb, pc) != 0) {
        wsl_pub_reconnect(pb, pc);
        return;
    }

    if (pc->out_sent < pc->out_len) {
        n = wsl_send(pc->fd, pc->out + pc->out_sent,
                     pc->out_len - pc->out_sent);
        if (n < 0) {
            wsl_pub_reconnect(pb, pc);
            return;
        }
        pc->out_sent += (size_t) n;
    }

    if (pc->out_sent < pc->out_len) {
        (void) wsl_pub_want(pb, pc, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        return;
    }

    if (pb->conf->pub_mqtt) {
        pc->out_len = 0;
        pc->out_sent = 0;
    }

    (void) wsl_pub_want(pb, pc, EPOLLIN, EPOLL_CTL_MOD);
}


static wsl_pub_conn_t *
wsl_pub_idle(wsl_pub_t *pb)
{
    unsigned         i;
    wsl_pub_conn_t  *pc;

    for (i = 0; i < pb->nconns; i++) {
        pc = &pb->conns[i];

        if (!pc->connected) {
            continue;
        }

        if (pb->conf->pub_mqtt
            ? pc->mqtt_ready && pc->out_len - pc->out_sent
                                < WSL_PUB_MQTT_BATCH
            : !pc->busy)
        {
            return pc;
        }
    }

    return NULL;
}


/* may message `seq` go out now; its send time into *t */
static int
wsl_pub_due(wsl_pub_t *pb, uint64_t seq, uint64_t now, uint64_t *t)
{
    uint64_t  need, acked;

    if (pb->conf->rate > 0) {
        *t = pb->t0_us + (uint64_t) ((double) seq * 1e6 / pb->conf->rate);
        return *t <= now;
    }

    *t = now;

    if (seq < pb->conf->window) {
        return 1;
    }

    /* every ready subscriber of the message's channel has it */
    need = atomic_load_explicit(&pb->sh->ready, memory_order_relaxed)
           / pb->conf->channels;
    acked = atomic_load_explicit(
                &pb->sh->acks[(seq - pb->conf->window) % WSL_ACK_RING],
                memory_order_relaxed);

    if (acked >= (need ? need : 1)) {
        pb->blocked_since = 0;
        return 1;
    }

    if (pb->blocked_since == 0) {
        pb->blocked_since = now;
        return 0;
    }

    if (now - pb->blocked_since > WSL_PUB_STALL_US) {
        atomic_fetch_add_explicit(&pb->sh->stalls, 1, memory_order_relaxed);
        pb->blocked_since = 0;
        return 1;
    }

    return 0;
}


static void
wsl_pub_dispatch(wsl_pub_t *pb)
{
    unsigned         i, burst;
    uint64_t         now, t;
    wsl_pub_conn_t  *pc;

    now = wsl_now_us();

    for (burst = 0; burst < WSL_PUB_BURST; burst++) {
        pc = wsl_pub_idle(pb);

        if (pc == NULL || !wsl_pub_due(pb, pb->next_seq, now, &t)) {
            break;
        }

        atomic_store_explicit(&pb->sh->acks[pb->next_seq % WSL_ACK_RING], 0,
                              memory_order_relaxed);

        if (wsl_pub_request(pb, pc, pb->next_seq, t) != 0) {
            wsl_pub_reconnect(pb, pc);
            return;
        }

        pb->next_seq++;

        if (!pb->conf->pub_mqtt) {
            wsl_pub_write(pb, pc);
        }
    }

    /* MQTT packets of this turn leave in one send per connection */
    for (i = 0; pb->conf->pub_mqtt && i < pb->nconns; i++) {
        pc = &pb->conns[i];

        if (pc->connected && pc->out_sent < pc->out_len) {
            wsl_pub_write(pb, pc);
        }
    }
}


static int
wsl_pub_init(wsl_pub_t *pb, const wsl_conf_t *conf, wsl_shared_t *sh,
    unsigned proc)
{
    char           token[WSL_MAX_TOKEN], err[WSL_ERR_LEN];
    unsigned       i;
    wsl_signer_t  *signer;

    pb->conf = conf;
    pb->sh = sh;
    pb->slot = &sh->slots[proc];
    pb->nconns = conf->pub_conns;
    pb->ep = epoll_create1(EPOLL_CLOEXEC);
    pb->pad = malloc(conf->size + 1);
    pb->body = malloc(conf->size + WSL_PUB_ENVELOPE);

    if (pb->ep == -1 || pb->pad == NULL || pb->body == NULL) {
        return -1;
    }

    memset(pb->pad, 'x', conf->size);

    if (conf->proto == WSL_PROTO_JSON && !conf->pub_mqtt
        && (conf->alg != NULL || conf->token_file != NULL))
    {
        signer = wsl_signer_open(conf, err, sizeof(err));
        if (signer == NULL
            || wsl_signer_mint(signer, "wl-publisher", 1, token,
                               sizeof(token)) != 0)
        {
            snprintf(sh->error, sizeof(sh->error), "publisher token: %.200s",
                     signer ? "cannot sign" : err);
            wsl_signer_close(signer);
            return -1;
        }

        wsl_signer_close(signer);
        snprintf(pb->auth, sizeof(pb->auth),
                 "Authorization: Bearer %s\r\n", token);
    }

    for (i = 0; i < pb->nconns; i++) {
        pb->conns[i].fd = -1;
        if (wsl_pub_connect(pb, &pb->conns[i]) != 0) {
            snprintf(sh->error, sizeof(sh->error),
                     "publisher cannot connect: %s", strerror(errno));
            return -1;
        }
    }

    return 0;
}


/*
 * Sleep until the next message is due (a fixed rate is kept to within the
 * timer slack, not the millisecond of epoll_wait), or a tick when the
 * window waits for acks.
 */
static void
wsl_pub_timeout(wsl_pub_t *pb, int phase, struct timespec *ts)
{
    uint64_t  now, due, wait_us;

    wait_us = WSL_PUB_TICK_US;

    /* with every connection busy, a response is what wakes us */
    if (phase >= WSL_PHASE_WARMUP && pb->conf->rate > 0
        && wsl_pub_idle(pb) != NULL)
    {
        now = wsl_now_us();
        due = pb->t0_us
              + (uint64_t) ((double) pb->next_seq * 1e6 / pb->conf->rate);
        wait_us = due > now ? due - now : 0;

        if (wait_us > WSL_PUB_TICK_US) {
            wait_us = WSL_PUB_TICK_US;
        }
    }

    ts->tv_sec = 0;
    ts->tv_nsec = (long) wait_us * 1000;
}


int
wsl_run_publisher(const wsl_conf_t *conf, wsl_shared_t *sh, unsigned proc)
{
    int                  i, n, phase;
    wsl_pub_t           *pb;
    wsl_pub_conn_t      *pc;
    struct timespec      timeout;
    struct epoll_event   events[WSL_PUB_MAX_CONNS];

    pb = calloc(1, sizeof(wsl_pub_t));
    if (pb == NULL || wsl_pub_init(pb, conf, sh, proc) != 0) {
        return -1;
    }

    for ( ;; ) {
        phase = atomic_load_explicit(&sh->phase, memory_order_relaxed);

        if (phase == WSL_PHASE_STOP) {
            break;
        }

        if (phase >= WSL_PHASE_WARMUP) {
            if (pb->t0_us == 0) {
                pb->t0_us = wsl_now_us();
            }
            wsl_pub_dispatch(pb);
        }

        wsl_pub_timeout(pb, phase, &timeout);
        n = epoll_pwait2(pb->ep, events, WSL_PUB_MAX_CONNS, &timeout, NULL);

        for (i = 0; i < n; i++) {
            pc = events[i].data.ptr;

            if (events[i].events & EPOLLOUT) {
                wsl_pub_write(pb, pc);
            }

            if (pc->connected
                && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            {
                wsl_pub_read(pb, pc);
            }
        }
    }

    sh->slots[proc].cpu_us = (uint64_t) (wsl_self_cpu_s() * 1e6);
    return 0;
}
