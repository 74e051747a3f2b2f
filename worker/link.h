/*
 * The link server: a Unix SOCK_STREAM listener and one peer per nginx
 * worker process.  Frames are split and decoded here and handed to the
 * daemon; replies are encoded into a per-peer output buffer that is
 * flushed at the end of each loop turn.  A peer with much output pending
 * is not read until it has caught up (flow control); one whose pending
 * output still passes WH_LINK_OUT_MAX has stopped reading altogether and
 * is dropped: it reconnects and resumes from history.
 */

#ifndef WH_LINK_SERVER_H
#define WH_LINK_SERVER_H

#include <stdint.h>
#include <sys/types.h>

#include "wh_link.h"
#include "log.h"
#include "loop.h"
#include "map.h"


#define WH_LINK_OUT_MAX   (64u * 1024 * 1024)

/* an nginx worker sends HELLO as soon as it connects: a peer that is
 * silent this long, or whose first frame is longer than a HELLO can be,
 * is not one (it would otherwise hold its buffer until it went away) */
#define WH_LINK_HELLO_MS  5000
#define WH_LINK_HELLO_MAX 1024

typedef struct wh_link_s  wh_link_t;
typedef struct wh_peer_s  wh_peer_t;

struct wh_peer_s {
    wh_event_t     ev;
    wh_link_t     *link;
    uint32_t       serial;       /* unique for the daemon's life */
    pid_t          pid;          /* SO_PEERCRED */
    uid_t          uid;
    char           name[64];     /* from HELLO */
    int            hello;        /* HELLO received */
    int            closing;      /* to be detached at the end of turn */
    int            detached;     /* fd closed, on_close called */
    int64_t        detached_ms;  /* when (wh_loop_now()) */
    uint32_t       armed;        /* the epoll events asked for */
    int            paused;       /* its requests wait: output is high */
    int            parked;       /* a frame waits for the engine
                                  * (WH_LINK_AGAIN); nothing after it is
                                  * read or dispatched */
    int64_t        hello_ms;     /* monotonic time of HELLO */
    int64_t        accepted_ms;  /* monotonic time of accept */
    wh_buf_t       in;
    wh_buf_t       out;
    size_t         out_pos;      /* bytes of out already written */
    wh_peer_t     *next, *prev;  /* all peers */
    wh_peer_t     *dirty_next;   /* peers with output to flush */
    int            dirty;
};

/* a decoded frame; return -1 to drop the peer as a protocol error,
 * WH_LINK_AGAIN to have it dispatched again after wh_link_wake() (the
 * engine answered WH_ENGINE_AGAIN: the handler must not have acted) */
#define WH_LINK_AGAIN  1

typedef int (*wh_link_frame_pt)(wh_peer_t *peer, const wh_link_msg_t *m,
    void *ctx);
typedef void (*wh_link_close_pt)(wh_peer_t *peer, void *ctx);

struct wh_link_s {
    wh_event_t          listen_ev;
    int                 listening;    /* listen_ev is in the loop */
    char               *path;        /* unlinked at shutdown; NULL for
                                      * an inherited socket */
    wh_loop_t          *loop;
    wh_log_t           *log;
    wh_peer_t          *peers;
    wh_peer_t          *dirty;
    unsigned            npeers;       /* connected */
    unsigned            nclosing;     /* closing or detached, not freed */
    uint32_t            next_serial;
    uint64_t            pauses;       /* times a peer's reads were held */
    unsigned            nparked;      /* peers with a frame parked */
    wh_link_frame_pt    on_frame;
    wh_link_close_pt    on_close;
    void               *ctx;
    const uid_t        *uids;         /* the peers accepted (SO_PEERCRED) */
    unsigned            nuids;
    wh_map_t            refused;      /* uids refused, logged once each */
    int64_t             hello_check_ms; /* last look for silent peers */
};


/* binds path (a stale socket file is removed first), then gives the
 * socket file the permission bits mode and, unless gid is (gid_t) -1,
 * that group (the nginx workers' group).  A peer whose uid is not one
 * of link->uids is closed at accept, before anything is read or sent
 * (each such uid is logged once) */
int wh_link_listen(wh_link_t *link, const char *path, unsigned mode,
    gid_t gid, wh_err_t *err);

/* the same with a listening socket handed over by a service manager
 * (listenfd.h): accepted from as is, closed at shutdown, its file never
 * removed (the manager owns it and keeps it across restarts) */
int wh_link_adopt(wh_link_t *link, int fd, wh_err_t *err);

/* encodes m into the peer's output; a peer past its bound is dropped */
void wh_link_send(wh_peer_t *peer, const wh_link_msg_t *m);
/* appends an already encoded frame (fan-out) */
void wh_link_send_raw(wh_peer_t *peer, const void *frame, size_t len);

/* marks the peer to be closed at the end of this turn */
void wh_link_drop(wh_peer_t *peer, const char *why);

/* dispatches again the frames parked with WH_LINK_AGAIN, in order */
void wh_link_wake(wh_link_t *link);
/* closes the fds of dropped peers and calls on_close for each; 1 if
 * any was detached */
int wh_link_detach(wh_link_t *link);
/* writes pending output of every dirty peer */
void wh_link_flush(wh_link_t *link);
/* frees the peers detached long enough ago that no engine call under
 * way can still name them (a cluster engine answers turns later), and
 * drops those that have not sent HELLO within WH_LINK_HELLO_MS */
void wh_link_reap(wh_link_t *link);

/* shutdown: stop listening, write what can be written within
 * timeout_ms, close every peer */
void wh_link_shutdown(wh_link_t *link, int timeout_ms);

#endif /* WH_LINK_SERVER_H */
