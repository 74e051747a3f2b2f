/*
 * Channels: which link peers subscribe to what, the publish pipeline
 * (validate, group-commit, then reply and fan out), subscribe with
 * resume, and replay of history ranges.
 *
 * Publishes are queued while a loop turn reads frames and committed in
 * ONE write txn by wh_channels_commit() at the end of the turn (or
 * before any read of the store, so that every reply reflects every
 * frame handled before it).  Replies and fan-out happen only after the
 * commit: acknowledged means stored.
 */

#ifndef WH_CHANNELS_H
#define WH_CHANNELS_H

#include <stdint.h>

#include "wh_link.h"
#include "link.h"
#include "log.h"
#include "engine.h"
#include "idem.h"
#include "map.h"
#include "quota.h"


/* the largest message text: its MESSAGE frame must fit a link frame */
#define WH_MESSAGE_MAX  (WH_LINK_MAX_FRAME - 1024)

typedef enum {
    WH_PUB_LINK = 0,        /* PUBLISH: answered with PUBLISHED */
    WH_PUB_API,             /* REQUEST: answered with RESPONSE 202 */
    WH_PUB_INGEST,          /* MQTT ingest: no answer; a refusal by a
                             * quota is logged (quota.h) */
    WH_PUB_DAEMON           /* $presence, $stats: no answer */
} wh_pub_origin_e;

typedef struct {
    wh_peer_t   *peer;
    uint32_t     count;
    /* its SUBSCRIBED was sent: it gets the channel's messages.  Until
     * then (a cluster engine's subscribe waits for Redis) what is
     * delivered reaches it by the replay that follows SUBSCRIBED: a
     * live message sent first would make the module drop the replay
     * below its id as already delivered */
    int          answered;
} wh_sub_t;

typedef struct {
    wh_str_t     ws;            /* point into the map entry's key */
    wh_str_t     name;
    wh_sub_t    *subs;
    unsigned     nsubs;
    unsigned     cap;
    uint64_t     total;         /* sum of the peers' counts */
} wh_chan_t;

typedef struct wh_pub_s  wh_pub_t;

typedef struct {
    wh_engine_t *engine;
    wh_quota_t  *quota;
    wh_log_t    *log;
    wh_map_t     chans;         /* ws "\0" channel -> wh_chan_t */
    wh_pub_t    *head;          /* the queued publishes */
    wh_pub_t   **tail;
    wh_pub_t    *last;          /* the last one queued */
    size_t       pending;
    wh_pub_t    *inflight;      /* those of the write under way */
    size_t       inflight_n;
    wh_buf_t     frame;         /* a fan-out frame, encoded once */
    uint64_t     published;     /* counters for stats */
    uint64_t     delivered;
    uint64_t     commits;
    uint32_t     replay_page;   /* messages per REPLAY page */
    wh_idem_table_t  idem;      /* API publishes' Idempotency-Keys */
} wh_channels_t;

typedef struct {
    unsigned     channels;      /* with at least one subscriber */
    uint64_t     subscriptions; /* sum of local subscriber counts */
} wh_chan_stats_t;


void wh_channels_init(wh_channels_t *c, wh_engine_t *engine,
    wh_quota_t *quota, wh_log_t *log);
void wh_channels_free(wh_channels_t *c);

/* link frames; -1 means a protocol error (the peer is dropped) */
int wh_channels_subscribe(wh_channels_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m);
int wh_channels_count(wh_channels_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m);
int wh_channels_publish(wh_channels_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m);
int wh_channels_replay(wh_channels_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m);

/* queues a publish; -1 with err (400, 403, 413, 429 past the publish
 * rate) if it is refused; data of origin WH_PUB_INGEST or WH_PUB_DAEMON
 * must be valid JSON already (it is not checked again).  The channels
 * and history_bytes quotas are checked at the commit, where a refused
 * publish is answered 429 */
int wh_channels_enqueue(wh_channels_t *c, wh_pub_origin_e origin,
    wh_peer_t *peer, uint32_t req_id, wh_str_t ws, wh_str_t ch,
    wh_str_t type, wh_str_t data, wh_err_t *err);

/* an API publish with an Idempotency-Key (idem.h): as enqueue, or a
 * repeat answered at once (200) or refused (409 while the first is not
 * answered) */
int wh_channels_enqueue_keyed(wh_channels_t *c, wh_peer_t *peer,
    uint32_t req_id, wh_str_t ws, wh_str_t ch, wh_str_t type, wh_str_t data,
    wh_str_t key, wh_err_t *err);

/* commits the queued publishes, then answers and fans them out; 0,
 * or WH_ENGINE_AGAIN while a cluster engine's write is under way (run
 * it again at the engine's wake) */
int wh_channels_commit(wh_channels_t *c);

/* a message a cluster engine delivered (wh_engine_handler_t) */
void wh_channels_deliver(wh_channels_t *c, wh_str_t ws, wh_str_t ch,
    uint64_t id, const char *epoch, int64_t time_ms, wh_str_t text);

/* forgets the subscriptions of a peer that went away */
void wh_channels_peer_gone(wh_channels_t *c, wh_peer_t *peer);

/* subscribers of a channel over all peers (0 if none) */
uint64_t wh_channels_subscribers(wh_channels_t *c, wh_str_t ws,
    wh_str_t ch);
void wh_channels_stats(wh_channels_t *c, wh_str_t ws, wh_chan_stats_t *s);

/* reads for the API, after the queued publishes are committed (a reply
 * reflects every publish handled before it): a channel's history after
 * id `after`, at most limit entries; the channels of ws after name
 * `after` */
int wh_channels_history(wh_channels_t *c, wh_str_t ws, wh_str_t ch,
    uint64_t after, size_t limit, wh_hist_item_pt cb, void *ctx,
    wh_hist_range_t *r, wh_err_t *err);
/* the newest (at most limit) entries of a channel below id before (0:
 * the newest of all), oldest first */
int wh_channels_history_last(wh_channels_t *c, wh_str_t ws, wh_str_t ch,
    uint64_t before, size_t limit, wh_hist_item_pt cb, void *ctx,
    wh_hist_range_t *r, wh_err_t *err);
int wh_channels_list(wh_channels_t *c, wh_str_t ws, wh_str_t after,
    wh_chan_item_pt cb, void *ctx, wh_err_t *err);

/* the channels stored in ws (stats) */
int wh_channels_stored(wh_channels_t *c, wh_str_t ws, uint64_t *n,
    wh_err_t *err);

/* the status code name of an error status ("bad_request", ...) */
const char *wh_error_code(int status);
/* the code of an error: a 429 is rate_limited when it has a retry time
 * (a rate), else quota_exceeded */
const char *wh_err_code(const wh_err_t *err);

#endif /* WH_CHANNELS_H */
