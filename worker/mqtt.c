/*
 * The MQTT client.  libmosquitto never blocks here: its socket is in
 * the daemon's epoll set, keepalive runs from a timer, and reconnects
 * are ours (libmosquitto reconnects only inside loop_forever, with a
 * backoff that has no jitter).
 *
 * Durability of ingest: libmosquitto sends the PUBACK of a QoS 1
 * message before it calls on_message, so the broker forgets a message
 * before wirehubd has stored it.  Each read burst is therefore
 * committed to LMDB as soon as the burst is handled, before the loop
 * does anything else; what a crash can still lose is the burst being
 * handled (at most WH_MQTT_READ_BURST packets, a few milliseconds of
 * work at most) and the pending values the rate coalescer holds (at
 * most one interval per key, each superseded by a later reading).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <mosquitto.h>

#include "wh_json_check.h"
#include "wh_time.h"
#include "message.h"
#include "egress.h"
#include "mqtt.h"


#define WH_MQTT_READ_BURST    256
#define WH_MQTT_INFLIGHT      100
#define WH_MQTT_MAX_KEYS      100000     /* coalesced keys held at once */
#define WH_MQTT_NOTE_MS       10000

static const char *const  wh_note_names[WH_NOTE_COUNT] = {
    "non-JSON payloads dropped",
    "oversize payloads dropped",
    "topics dropped (no rule, or an invalid rendered name)",
    "ingested messages refused by storage",
    "client events dropped"
};


static void wh_mqtt_connect(wh_mqtt_t *mq);
static void wh_mqtt_watch(wh_mqtt_t *mq);


/* ---------------------------------------------------------------- notes */

/* a log-safe copy: no control characters, bounded */
static void
wh_mqtt_sample(char *dst, size_t size, const char *s, size_t len)
{
    size_t  i;

    len = len < size - 1 ? len : size - 1;

    for (i = 0; i < len; i++) {
        dst[i] = (unsigned char) s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    }

    dst[len] = '\0';
}


static void
wh_mqtt_note(wh_mqtt_t *mq, wh_mqtt_note_e kind, const char *what,
    size_t len)
{
    int64_t          now;
    wh_mqtt_note_t  *n = &mq->notes[kind];

    n->count++;
    mq->n.dropped++;
    wh_mqtt_sample(n->sample, sizeof(n->sample), what, len);

    now = wh_loop_now();

    if (n->last_log != 0 && now - n->last_log < WH_MQTT_NOTE_MS) {
        return;
    }

    wh_log_warn(mq->log, "mqtt: %s: %s (further ones are counted and "
                "logged every %d s)", wh_note_names[kind], n->sample,
                WH_MQTT_NOTE_MS / 1000);
    n->last_log = now;
    n->logged = n->count;
}


static void
wh_mqtt_notes_flush(wh_mqtt_t *mq, int64_t now)
{
    int              i;
    wh_mqtt_note_t  *n;

    for (i = 0; i < WH_NOTE_COUNT; i++) {
        n = &mq->notes[i];

        if (n->count == n->logged || now - n->last_log < WH_MQTT_NOTE_MS) {
            continue;
        }

        wh_log_warn(mq->log, "mqtt: %llu more %s in the last %d s (last: "
                    "%s)", (unsigned long long) (n->count - n->logged),
                    wh_note_names[i], WH_MQTT_NOTE_MS / 1000, n->sample);
        n->last_log = now;
        n->logged = n->count;
    }
}


/* ---------------------------------------------------------------- ingest */

static void
wh_mqtt_store(wh_mqtt_t *mq, unsigned rule, wh_str_t ws, wh_str_t ch,
    wh_str_t data)
{
    wh_err_t  err;
    wh_str_t  type;

    type.data = mq->conf->ingest[rule].type;
    type.len = strlen(type.data);

    if (wh_channels_enqueue(mq->channels, WH_PUB_INGEST, NULL, 0, ws, ch,
                            type, data, &err) != 0)
    {
        if (err.status == 429) {
            /* counted and logged per workspace by the quota */
            mq->n.dropped++;
            return;
        }

        wh_mqtt_note(mq, WH_NOTE_STORE, err.msg, strlen(err.msg));
        return;
    }

    mq->n.ingested++;
}


/* a coalesced value whose window ended */
static void
wh_mqtt_emit(void *ctx, unsigned rule, wh_str_t ws, wh_str_t ch,
    wh_str_t data)
{
    wh_mqtt_store(ctx, rule, ws, ch, data);
}


static void
wh_mqtt_ingest(wh_mqtt_t *mq, const char *topic, const void *payload,
    size_t len)
{
    int                      rc;
    size_t                   tlen = strlen(topic);
    wh_str_t                 data;
    wh_route_rc_e            route;
    const wh_ingest_rule_t  *rule;

    if (len > mq->conf->mqtt.max_payload) {
        mq->n.oversize++;
        wh_mqtt_note(mq, WH_NOTE_OVERSIZE, topic, tlen);
        return;
    }

    route = wh_ingest_route(mq->conf->ingest, mq->conf->ningest, topic,
                            tlen, &mq->route);

    if (route != WH_ROUTE_OK) {
        wh_mqtt_note(mq, WH_NOTE_TOPIC, topic, tlen);
        return;
    }

    rule = &mq->conf->ingest[mq->route.rule];
    mq->data.len = 0;
    rc = wh_ingest_data(&mq->data, payload, len, rule->key_field,
                        mq->route.key);

    if (rc != 0) {
        mq->n.non_json += rc == -1;
        wh_mqtt_note(mq, rc == -1 ? WH_NOTE_NON_JSON : WH_NOTE_STORE,
                     topic, tlen);
        return;
    }

    data.data = (const char *) mq->data.data;
    data.len = mq->data.len;

    if (rule->rate_ms) {
        /* a window opens or holds a value: it ends on the fast tick */
        wh_loop_timer_by(&mq->tick, WH_MQTT_TICK_MS);
    }

    if (rule->rate_ms && mq->rate_shared) {
        wh_coalesce_offer(&mq->shared, mq->route.rule, mq->route.key,
                          mq->route.ws, mq->route.ch, data);
        return;
    }

    if (rule->rate_ms
        && wh_rate_offer(&mq->rate, mq->route.rule, mq->route.key,
                         wh_loop_now(), mq->route.ws, mq->route.ch, data)
           == WH_RATE_HELD)
    {
        return;
    }

    wh_mqtt_store(mq, mq->route.rule, mq->route.ws, mq->route.ch, data);
}


static void
wh_mqtt_on_message(struct mosquitto *mosq, void *obj,
    const struct mosquitto_message *msg)
{
    wh_mqtt_t  *mq = obj;

    (void) mosq;

    mq->n.messages_in++;
    wh_mqtt_ingest(mq, msg->topic, msg->payload, (size_t) msg->payloadlen);
}


/* ---------------------------------------------------------------- state */

static const char *
wh_mqtt_state_name(wh_mqtt_state_e s)
{
    switch (s) {
    case WH_MQTT_CONNECTED:
        return "connected";
    case WH_MQTT_CONNECTING:
    case WH_MQTT_HELPER:
        return "connecting";
    default:
        return "waiting";
    }
}


static void
wh_mqtt_error(wh_mqtt_t *mq, int rc, int err)
{
    snprintf(mq->last_error, sizeof(mq->last_error), "%s",
             rc == MOSQ_ERR_ERRNO ? strerror(err) : mosquitto_strerror(rc));
}


/* xorshift64*: jitter only, no secrets */
static uint64_t
wh_mqtt_random(wh_mqtt_t *mq)
{
    mq->rng ^= mq->rng >> 12;
    mq->rng ^= mq->rng << 25;
    mq->rng ^= mq->rng >> 27;

    return mq->rng * 0x2545f4914f6cdd1dULL;
}


/* exponential backoff with "equal jitter": half the step, plus a
 * random part of the other half, so that many daemons restarted
 * together do not reconnect in step */
static int64_t
wh_mqtt_backoff(wh_mqtt_t *mq)
{
    int64_t   step;
    unsigned  i;

    step = mq->conf->mqtt.reconnect_min_ms;

    for (i = 0; i < mq->attempt && step < mq->conf->mqtt.reconnect_max_ms;
         i++)
    {
        step *= 2;
    }

    if (step > mq->conf->mqtt.reconnect_max_ms) {
        step = mq->conf->mqtt.reconnect_max_ms;
    }

    return step / 2 + (int64_t) (wh_mqtt_random(mq)
                                 % (uint64_t) (step / 2 + 1));
}


static void
wh_mqtt_schedule(wh_mqtt_t *mq, int was_connected)
{
    int64_t  delay, now;

    now = wh_loop_now();
    delay = wh_mqtt_backoff(mq);
    mq->next_attempt = now + delay;
    mq->state = WH_MQTT_IDLE;
    wh_loop_timer_by(&mq->tick, delay < WH_MQTT_TICK_MS ? WH_MQTT_TICK_MS
                                                   : delay);

    if (was_connected) {
        mq->down_since = now;
        wh_log_warn(mq->log, "mqtt: lost the broker %s:%d (%s); "
                    "reconnecting in %lld ms", mq->conf->mqtt.host,
                    mq->conf->mqtt.port, mq->last_error,
                    (long long) delay);
    } else {
        mq->n.failures++;
        wh_log_warn(mq->log, "mqtt: cannot connect to %s:%d (%s); "
                    "attempt %u, next in %lld ms", mq->conf->mqtt.host,
                    mq->conf->mqtt.port, mq->last_error, mq->attempt + 1,
                    (long long) delay);
    }

    mq->attempt++;
}


/*
 * With `shared=GROUP` the filter becomes $share/GROUP/FILTER: the broker
 * hands each message to one subscriber of the group, so the wirehubd of
 * a cluster ingest it once between them.  Messages still arrive under
 * their own topic, which the ingest rules match as usual.
 */
static void
wh_mqtt_subscribe(wh_mqtt_t *mq, const char *filter)
{
    int          rc;
    char        *shared = NULL;
    const char  *group = mq->conf->mqtt.shared;

    if (group != NULL) {
        if (asprintf(&shared, "$share/%s/%s", group, filter) < 0) {
            wh_log_error(mq->log, "mqtt: cannot subscribe to \"%s\": "
                         "out of memory", filter);
            return;
        }

        filter = shared;
    }

    rc = mosquitto_subscribe(mq->mosq, NULL, filter, mq->conf->mqtt.qos);

    if (rc != MOSQ_ERR_SUCCESS) {
        wh_log_error(mq->log, "mqtt: cannot subscribe to \"%s\": %s",
                     filter, mosquitto_strerror(rc));
    }

    free(shared);
}


static void
wh_mqtt_on_connect(struct mosquitto *mosq, void *obj, int rc, int flags)
{
    unsigned    i;
    int64_t     now;
    wh_mqtt_t  *mq = obj;

    (void) mosq;

    if (rc != 0) {
        /* libmosquitto closes the connection next: on_disconnect */
        snprintf(mq->last_error, sizeof(mq->last_error), "%s",
                 mosquitto_connack_string(rc));
        mq->refused = 1;
        return;
    }

    now = wh_loop_now();

    if (mq->down_since) {
        mq->n.reconnects++;
        wh_log_info(mq->log, "mqtt: connected to %s:%d again after %lld "
                    "ms (session present: %d)", mq->conf->mqtt.host,
                    mq->conf->mqtt.port,
                    (long long) (now - mq->down_since), flags & 1);
    } else {
        wh_log_info(mq->log, "mqtt: connected to %s:%d as \"%s\" "
                    "(session present: %d)", mq->conf->mqtt.host,
                    mq->conf->mqtt.port, mq->conf->mqtt.client_id,
                    flags & 1);
    }

    mq->state = WH_MQTT_CONNECTED;
    mq->subacks = 0;
    mq->attempt = 0;
    mq->down_since = 0;
    mq->last_error[0] = '\0';

    /* every time: a broker without persistence forgot them, whatever
     * session_present says */
    for (i = 0; i < mq->conf->ningest; i++) {
        wh_mqtt_subscribe(mq, mq->conf->ingest[i].filter);
    }
}


static void
wh_mqtt_on_subscribe(struct mosquitto *mosq, void *obj, int mid,
    int qos_count, const int *granted_qos)
{
    wh_mqtt_t  *mq = obj;

    (void) mosq;

    /* 0x80: the broker refused the filter (ACL) */
    if (qos_count == 1 && granted_qos[0] == 0x80) {
        wh_log_error(mq->log, "mqtt: the broker refused a subscription "
                     "(mid %d)", mid);
        return;
    }

    mq->subacks++;
}


static void
wh_mqtt_on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    int         err = errno, was_connected;
    wh_mqtt_t  *mq = obj;

    (void) mosq;

    /* libmosquitto closed the socket already, which took it out of
     * the epoll set: its number may be reused by now */
    mq->sock_fd = -1;
    was_connected = mq->state == WH_MQTT_CONNECTED;

    if (mq->stopping) {
        mq->state = WH_MQTT_IDLE;
        return;
    }

    if (!mq->refused) {
        wh_mqtt_error(mq, rc ? rc : MOSQ_ERR_CONN_LOST, err);
    }

    wh_mqtt_schedule(mq, was_connected);
}


static void
wh_mqtt_on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    wh_mqtt_t  *mq = obj;

    (void) mosq;
    (void) mid;

    mq->n.messages_out++;

    if (mq->egress_pending) {
        mq->egress_pending--;
    }
}


/* ---------------------------------------------------------------- I/O */

static void
wh_mqtt_read(wh_mqtt_t *mq)
{
    int  i, rc;

    /* one packet per call while the queues are empty; a read that
     * found the socket drained leaves EAGAIN in errno */
    for (i = 0; i < WH_MQTT_READ_BURST; i++) {
        errno = 0;
        rc = mosquitto_loop_read(mq->mosq, 1);

        if (rc != MOSQ_ERR_SUCCESS) {
            mq->io_rc = rc;
            mq->io_errno = errno;
            break;
        }

        if (mq->sock_fd == -1 || errno == EAGAIN) {
            break;
        }
    }

    /* the broker has its PUBACKs: store what they acknowledged now */
    wh_channels_commit(mq->channels);
}


static void
wh_mqtt_sock_event(wh_event_t *ev, uint32_t events)
{
    int         rc;
    wh_mqtt_t  *mq = ev->data;

    if (mq->sock_fd == -1) {
        return;
    }

    if (events & EPOLLOUT) {
        errno = 0;
        rc = mosquitto_loop_write(mq->mosq, 1);

        if (rc != MOSQ_ERR_SUCCESS) {
            mq->io_rc = rc;
            mq->io_errno = errno;
        }
    }

    if (mq->sock_fd != -1 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        wh_mqtt_read(mq);
    }

    wh_mqtt_watch(mq);
}


/* keeps the epoll registration in step with libmosquitto's socket and
 * whether it has output waiting */
static void
wh_mqtt_watch(wh_mqtt_t *mq)
{
    int       fd;
    uint32_t  want;
    wh_err_t  err;

    if (mq->state != WH_MQTT_CONNECTING && mq->state != WH_MQTT_CONNECTED)
    {
        return;
    }

    fd = mosquitto_socket(mq->mosq);

    if (fd == -1) {
        /* closed without on_disconnect: libmosquitto does that when
         * the TLS handshake fails */
        mq->sock_fd = -1;
        wh_mqtt_error(mq, mq->io_rc ? mq->io_rc : MOSQ_ERR_CONN_LOST,
                      mq->io_errno);
        wh_mqtt_schedule(mq, mq->state == WH_MQTT_CONNECTED);
        return;
    }

    want = EPOLLIN | (mosquitto_want_write(mq->mosq) ? EPOLLOUT : 0);

    if (fd == mq->sock_fd && want == mq->sock_events) {
        return;
    }

    mq->sock_ev.fd = fd;

    if (fd == mq->sock_fd) {
        if (wh_loop_mod(mq->loop, &mq->sock_ev, want, &err) == 0) {
            mq->sock_events = want;
            return;
        }

    } else if (wh_loop_add(mq->loop, &mq->sock_ev, want, &err) == 0) {
        mq->sock_fd = fd;
        mq->sock_events = want;
        return;
    }

    /* without epoll the connection is deaf: start over */
    wh_log_error(mq->log, "mqtt: %s", err.msg);
    mq->sock_fd = -1;
    mosquitto_disconnect(mq->mosq);
}


/* the end of a connect call, from the loop or the helper */
static void
wh_mqtt_connect_done(wh_mqtt_t *mq, int rc, int err)
{
    if (rc != MOSQ_ERR_SUCCESS) {
        wh_mqtt_error(mq, rc, err);
        wh_mqtt_schedule(mq, 0);
        return;
    }

    mq->state = WH_MQTT_CONNECTING;
    wh_loop_timer_by(&mq->tick, WH_MQTT_TICK_MS);
    mq->sock_fd = -1;
    mq->sock_events = 0;
    mq->io_rc = 0;
    mq->io_errno = 0;
    wh_mqtt_watch(mq);
}


static void *
wh_mqtt_helper(void *arg)
{
    ssize_t         n;
    uint64_t        one = 1;
    wh_mqtt_job_t  *job = arg;

    job->rc = mosquitto_connect_async(job->mosq, job->host, job->port,
                                      job->keepalive);
    job->err = errno;

    n = write(job->efd, &one, sizeof(one));
    (void) n;

    return NULL;
}


static void
wh_mqtt_helper_event(wh_event_t *ev, uint32_t events)
{
    int             rc, err;
    ssize_t         n;
    uint64_t        v;
    wh_mqtt_t      *mq = ev->data;
    wh_mqtt_job_t  *job = mq->job;

    (void) events;

    n = read(ev->fd, &v, sizeof(v));

    if (n != (ssize_t) sizeof(v) || mq->state != WH_MQTT_HELPER) {
        return;
    }

    pthread_join(mq->helper, NULL);
    rc = job->rc;
    err = job->err;
    free(job->host);
    free(job);
    mq->job = NULL;
    mq->state = WH_MQTT_IDLE;

    wh_mqtt_connect_done(mq, rc, err);
}


/* a host name: libmosquitto's blocking getaddrinfo runs in a helper */
static int
wh_mqtt_start_helper(wh_mqtt_t *mq)
{
    int             rc;
    wh_mqtt_job_t  *job;

    job = calloc(1, sizeof(wh_mqtt_job_t));

    if (job == NULL || (job->host = strdup(mq->conf->mqtt.host)) == NULL) {
        free(job);
        return ENOMEM;
    }

    job->mosq = mq->mosq;
    job->port = mq->conf->mqtt.port;
    job->keepalive = mq->conf->mqtt.keepalive;
    job->efd = mq->helper_ev.fd;

    rc = pthread_create(&mq->helper, NULL, wh_mqtt_helper, job);

    if (rc != 0) {
        free(job->host);
        free(job);
        return rc;
    }

    mq->job = job;
    mq->state = WH_MQTT_HELPER;
    wh_loop_timer_by(&mq->tick, WH_MQTT_TICK_MS);

    return 0;
}


static void
wh_mqtt_connect(wh_mqtt_t *mq)
{
    int  rc;

    mq->refused = 0;

    if (!mq->conf->mqtt.numeric) {
        rc = wh_mqtt_start_helper(mq);

        if (rc != 0) {
            wh_mqtt_error(mq, MOSQ_ERR_ERRNO, rc);
            wh_mqtt_schedule(mq, 0);
        }

        return;
    }

    errno = 0;
    rc = mosquitto_connect_async(mq->mosq, mq->conf->mqtt.host,
                                 mq->conf->mqtt.port,
                                 mq->conf->mqtt.keepalive);
    wh_mqtt_connect_done(mq, rc, errno);
}


/* the delay to the next tick */
static int64_t
wh_mqtt_tick_interval(wh_mqtt_t *mq, int64_t now)
{
    int64_t  delay;

    if (wh_rate_active(&mq->rate)
        || (mq->rate_shared && wh_coalesce_waiting(&mq->shared))
        || mq->state == WH_MQTT_HELPER || mq->state == WH_MQTT_CONNECTING)
    {
        return WH_MQTT_TICK_MS;
    }

    if (mq->state != WH_MQTT_IDLE) {
        return WH_MQTT_IDLE_TICK_MS;
    }

    delay = mq->next_attempt - now;

    return delay < WH_MQTT_TICK_MS ? WH_MQTT_TICK_MS
           : delay > WH_MQTT_IDLE_TICK_MS ? WH_MQTT_IDLE_TICK_MS : delay;
}


static void
wh_mqtt_tick(wh_timer_t *t)
{
    int64_t     now;
    wh_mqtt_t  *mq = t->data;

    now = wh_loop_now();

    wh_rate_due(&mq->rate, now, wh_mqtt_emit, mq);

    if (mq->rate_shared) {
        wh_coalesce_due(&mq->shared, now);
    }

    wh_mqtt_notes_flush(mq, now);

    switch (mq->state) {

    case WH_MQTT_IDLE:
        if (now >= mq->next_attempt) {
            wh_mqtt_connect(mq);
        }
        break;

    case WH_MQTT_CONNECTING:
    case WH_MQTT_CONNECTED:
        /* keepalive: PINGREQ, or a dead connection closed */
        (void) mosquitto_loop_misc(mq->mosq);
        wh_mqtt_watch(mq);
        break;

    default:
        break;
    }

    t->interval = wh_mqtt_tick_interval(mq, now);
}


/* ---------------------------------------------------------------- egress */

int
wh_mqtt_egress(const wh_mqtt_t *mq)
{
    return mq->mosq != NULL && mq->conf->egress.topic.text != NULL;
}


/* 0 and the client's verified identity, or -1 with why */
static int
wh_mqtt_event_identity(wh_mqtt_t *mq, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t *ws, wh_str_t *client,
    const char **why)
{
    if (!wh_sessions_identity(mq->sessions, peer, m->session, ws, client))
    {
        *why = "no such session on this link";
        return -1;
    }

    /* the module fills both from the same verified token */
    if (ws->len != m->workspace.len || client->len != m->client_id.len
        || memcmp(ws->data, m->workspace.data, ws->len) != 0
        || memcmp(client->data, m->client_id.data, client->len) != 0)
    {
        *why = "workspace or client id differ from the session's";
        return -1;
    }

    if (!wh_message_type_valid(m->name.data, m->name.len)) {
        *why = "invalid event type";
        return -1;
    }

    if (!wh_json_check(m->body.data, m->body.len)) {
        *why = "the event is not valid JSON";
        return -1;
    }

    return 0;
}


static int
wh_mqtt_publish(wh_mqtt_t *mq, const char **why)
{
    int                      rc, qos;
    unsigned                 max_queue;
    const wh_egress_conf_t  *eg = &mq->conf->egress;

    /* without an egress directive (sources' mqtt= only), its defaults */
    qos = eg->topic.text ? eg->qos : 1;
    max_queue = eg->topic.text ? eg->max_queue : WH_EGRESS_MAX_QUEUE;

    if (mq->state == WH_MQTT_HELPER) {
        *why = "broker connection in progress";
        return -1;
    }

    if (mq->egress_pending >= max_queue) {
        *why = "too many events wait for the broker (max_queue)";
        return -1;
    }

    rc = mosquitto_publish(mq->mosq, NULL, (const char *) mq->topic.data,
                           (int) mq->payload.len, mq->payload.data, qos,
                           false);

    /* a QoS 1 message stays queued in libmosquitto while the broker is
     * away and goes out after the next CONNACK */
    if (rc == MOSQ_ERR_SUCCESS || (rc == MOSQ_ERR_NO_CONN && qos == 1)) {
        mq->egress_pending += qos;
        wh_mqtt_watch(mq);
        return 0;
    }

    *why = mosquitto_strerror(rc);

    return -1;
}


void
wh_mqtt_event(wh_mqtt_t *mq, wh_peer_t *peer, const wh_link_msg_t *m)
{
    int          rc;
    char         what[160];
    wh_str_t     ws, client;
    const char  *why;

    if (!wh_mqtt_egress(mq)) {
        why = "no egress configured";
        goto drop;
    }

    if (wh_mqtt_event_identity(mq, peer, m, &ws, &client, &why) != 0) {
        goto drop;
    }

    mq->topic.len = 0;
    mq->payload.len = 0;
    rc = wh_egress_topic(&mq->conf->egress.topic, ws, client, m->name,
                         &mq->topic, &why);

    if (rc == -2
        || (rc == 0 && wh_egress_payload(&mq->payload, m->name, ws, client,
                                         m->session, m->body,
                                         wh_time_ms()) != 0))
    {
        why = "out of memory, or a field is not UTF-8";
        goto drop;
    }

    if (rc == 0 && wh_mqtt_publish(mq, &why) == 0) {
        return;
    }

drop:

    snprintf(what, sizeof(what), "%s (workspace \"%.*s\", type \"%.*s\")",
             why, (int) (m->workspace.len < 64 ? m->workspace.len : 64),
             m->workspace.data,
             (int) (m->name.len < 64 ? m->name.len : 64), m->name.data);
    wh_mqtt_note(mq, WH_NOTE_EGRESS, what, strlen(what));
}


int
wh_mqtt_publish_text(wh_mqtt_t *mq, wh_str_t topic, wh_str_t text,
    const char **why)
{
    if (mq->mosq == NULL) {
        *why = "no mqtt directive";
        return -1;
    }

    mq->topic.len = 0;
    mq->payload.len = 0;

    if (wh_buf_append(&mq->topic, topic.data, topic.len) != 0
        || wh_buf_append(&mq->topic, "", 1) != 0
        || wh_buf_append(&mq->payload, text.data, text.len) != 0)
    {
        *why = "out of memory";
        return -1;
    }

    return wh_mqtt_publish(mq, why);
}


/* ---------------------------------------------------------------- setup */

static int
wh_mqtt_options(wh_mqtt_t *mq, wh_err_t *err)
{
    int                    rc;
    const wh_mqtt_conf_t  *c = &mq->conf->mqtt;

    mosquitto_int_option(mq->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_max_inflight_messages_set(mq->mosq, WH_MQTT_INFLIGHT);

    if (c->username != NULL) {
        rc = mosquitto_username_pw_set(mq->mosq, c->username, c->password);

        if (rc != MOSQ_ERR_SUCCESS) {
            return wh_err(err, 500, "mqtt: credentials: %s",
                          mosquitto_strerror(rc));
        }
    }

    if (c->cafile != NULL) {
        rc = mosquitto_tls_set(mq->mosq, c->cafile, NULL, c->certfile,
                               c->keyfile, NULL);

        if (rc != MOSQ_ERR_SUCCESS) {
            return wh_err(err, 500, "mqtt: TLS setup: %s",
                          mosquitto_strerror(rc));
        }
    }

    mosquitto_connect_with_flags_callback_set(mq->mosq, wh_mqtt_on_connect);
    mosquitto_disconnect_callback_set(mq->mosq, wh_mqtt_on_disconnect);
    mosquitto_message_callback_set(mq->mosq, wh_mqtt_on_message);
    mosquitto_publish_callback_set(mq->mosq, wh_mqtt_on_publish);
    mosquitto_subscribe_callback_set(mq->mosq, wh_mqtt_on_subscribe);

    return 0;
}


static int
wh_mqtt_rate_init(wh_mqtt_t *mq, wh_engine_t *engine, wh_err_t *err)
{
    int       rc;
    int64_t  *intervals;
    unsigned  i, n = mq->conf->ningest;

    intervals = calloc(n ? n : 1, sizeof(int64_t));

    if (intervals == NULL) {
        return wh_err(err, 500, "out of memory");
    }

    for (i = 0; i < n; i++) {
        intervals[i] = mq->conf->ingest[i].rate_ms;
    }

    rc = wh_rate_init(&mq->rate, intervals, n, WH_MQTT_MAX_KEYS);

    if (rc == 0 && engine != NULL && engine->ops->rate != NULL) {
        rc = wh_coalesce_init(&mq->shared, engine, intervals, n,
                              wh_mqtt_emit, mq);
        mq->rate_shared = rc == 0;
    }

    free(intervals);

    return rc == 0 ? 0 : wh_err(err, 500, "out of memory");
}


static int
wh_mqtt_events(wh_mqtt_t *mq, wh_err_t *err)
{
    int  fd;

    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd == -1) {
        return wh_err(err, 500, "mqtt: eventfd: %s", strerror(errno));
    }

    mq->helper_ev.fd = fd;
    mq->helper_ev.handler = wh_mqtt_helper_event;
    mq->helper_ev.data = mq;
    mq->sock_ev.handler = wh_mqtt_sock_event;
    mq->sock_ev.data = mq;
    mq->tick.interval = WH_MQTT_TICK_MS;
    mq->tick.handler = wh_mqtt_tick;
    mq->tick.data = mq;

    if (wh_loop_add(mq->loop, &mq->helper_ev, EPOLLIN, err) != 0
        || wh_loop_timer(mq->loop, &mq->tick, err) != 0)
    {
        return -1;
    }

    return 0;
}


int
wh_mqtt_init(wh_mqtt_t *mq, const wh_config_t *conf, wh_loop_t *loop,
    wh_log_t *log, wh_channels_t *channels, wh_sessions_t *sessions,
    wh_engine_t *engine, wh_err_t *err)
{
    memset(mq, 0, sizeof(wh_mqtt_t));
    mq->conf = conf;
    mq->loop = loop;
    mq->log = log;
    mq->channels = channels;
    mq->sessions = sessions;
    mq->sock_fd = -1;
    mq->helper_ev.fd = -1;

    if (conf->mqtt.host == NULL) {
        return 0;
    }

    if (getrandom(&mq->rng, sizeof(mq->rng), 0) != sizeof(mq->rng)
        || mq->rng == 0)
    {
        mq->rng = (uint64_t) wh_time_ms() | 1;
    }

    mosquitto_lib_init();

    /* clean_session off: the broker keeps QoS 1 messages for us while
     * wirehubd is down */
    mq->mosq = mosquitto_new(conf->mqtt.client_id, false, mq);

    if (mq->mosq == NULL) {
        mosquitto_lib_cleanup();
        return wh_err(err, 500, "mqtt: mosquitto_new: %s",
                      strerror(errno));
    }

    if (wh_mqtt_options(mq, err) != 0 || wh_mqtt_rate_init(mq, engine, err) != 0
        || wh_mqtt_events(mq, err) != 0)
    {
        wh_mqtt_stop(mq);
        return -1;
    }

    wh_log_info(log, "mqtt: broker %s:%d%s, client id \"%s\", %u ingest "
                "rules, egress %s", conf->mqtt.host, conf->mqtt.port,
                conf->mqtt.cafile ? " (TLS)" : "", conf->mqtt.client_id,
                conf->ningest,
                conf->egress.topic.text ? conf->egress.topic.text : "off");

    mq->next_attempt = wh_loop_now();
    wh_mqtt_connect(mq);

    return 0;
}


void
wh_mqtt_stop(wh_mqtt_t *mq)
{
    if (mq->mosq == NULL) {
        return;
    }

    mq->stopping = 1;

    /* the last value always goes out */
    wh_rate_flush(&mq->rate, wh_mqtt_emit, mq);

    if (mq->rate_shared) {
        wh_coalesce_stop(&mq->shared);
    }

    if (mq->state == WH_MQTT_HELPER) {
        /* it may sit in a resolver for seconds: leave it the handle,
         * its job and the eventfd; the process is exiting */
        wh_log_warn(mq->log, "mqtt: a connect is in progress; not "
                    "waiting for it");
        pthread_detach(mq->helper);
        return;
    }

    if (mq->sock_fd != -1) {
        wh_loop_del(mq->loop, &mq->sock_ev);
        mq->sock_fd = -1;
    }

    if (mq->state == WH_MQTT_CONNECTED) {
        /* a clean DISCONNECT: the session stays for the next start */
        mosquitto_disconnect(mq->mosq);
        (void) mosquitto_loop_write(mq->mosq, 1);
    }

    mosquitto_destroy(mq->mosq);
    mq->mosq = NULL;
    mosquitto_lib_cleanup();

    if (mq->helper_ev.fd != -1) {
        wh_loop_del(mq->loop, &mq->helper_ev);
        close(mq->helper_ev.fd);
        mq->helper_ev.fd = -1;
    }

    wh_rate_free(&mq->rate);

    if (mq->rate_shared) {
        wh_coalesce_free(&mq->shared);
        mq->rate_shared = 0;
    }

    wh_buf_free(&mq->route.buf);
    wh_buf_free(&mq->data);
    wh_buf_free(&mq->topic);
    wh_buf_free(&mq->payload);
}


json_t *
wh_mqtt_stats(const wh_mqtt_t *mq)
{
    char     broker[300];
    json_t  *o;

    if (mq->mosq == NULL) {
        return json_pack("{s:b}", "configured", 0);
    }

    snprintf(broker, sizeof(broker), "%s:%d", mq->conf->mqtt.host,
             mq->conf->mqtt.port);

    o = json_pack("{s:b,s:s,s:s,s:b,s:b,s:s}",
                  "configured", 1,
                  "broker", broker,
                  "client_id", mq->conf->mqtt.client_id,
                  "connected", mq->state == WH_MQTT_CONNECTED,
                  "subscribed", mq->state == WH_MQTT_CONNECTED
                                && mq->subacks >= mq->conf->ningest,
                  "state", wh_mqtt_state_name(mq->state));

    if (o == NULL) {
        return NULL;
    }

    json_object_set_new(o, "last_error", mq->last_error[0]
                                         ? json_string(mq->last_error)
                                         : json_null());
    json_object_set_new(o, "reconnects", json_integer(mq->n.reconnects));
    json_object_set_new(o, "connect_failures",
                        json_integer(mq->n.failures));
    json_object_set_new(o, "messages_in", json_integer(mq->n.messages_in));
    json_object_set_new(o, "ingested", json_integer(mq->n.ingested));
    json_object_set_new(o, "coalesced",
                        json_integer(mq->rate.coalesced
                                     + mq->shared.coalesced));
    json_object_set_new(o, "coalescing",
                        json_integer((json_int_t) (mq->rate_shared
                                     ? wh_coalesce_waiting(&mq->shared)
                                     : wh_rate_active(&mq->rate))));
    json_object_set_new(o, "messages_out",
                        json_integer(mq->n.messages_out));
    json_object_set_new(o, "egress_queued",
                        json_integer(mq->egress_pending));
    json_object_set_new(o, "dropped", json_integer(mq->n.dropped));
    json_object_set_new(o, "non_json", json_integer(mq->n.non_json));
    json_object_set_new(o, "oversize", json_integer(mq->n.oversize));
    json_object_set_new(o, "egress_dropped",
                        json_integer(mq->notes[WH_NOTE_EGRESS].count));

    return o;
}
