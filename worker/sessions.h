/*
 * Sessions: the WebSocket connections the nginx workers report, per
 * workspace, and the $presence events they cause.  A session is named
 * by its worker (the link peer) and the worker-unique session string;
 * all sessions of a worker end with its link.
 */

#ifndef WH_SESSIONS_H
#define WH_SESSIONS_H

#include <stdint.h>

#include <jansson.h>

#include "wh_link.h"
#include "channels.h"
#include "link.h"
#include "log.h"
#include "map.h"


/* SESSION_OPEN this soon after its link's HELLO is a worker re-sending
 * the sessions it kept while the link was down: reason "resumed" */
#define WH_RESUME_WINDOW_MS  2000

/* close codes wirehubd asks the module to close sessions with */
#define WH_CLOSE_REVOKED     4403
#define WH_CLOSE_REPLACED    4408
#define WH_CLOSE_KICKED      4409    /* by an operator: retry_after=N */

typedef struct wh_session_s  wh_session_t;
typedef struct wh_wsinfo_s   wh_wsinfo_t;
typedef struct wh_clinfo_s   wh_clinfo_t;

/* what the clients registry and the command queue learn of sessions;
 * any member may be NULL */
typedef struct {
    /* SESSION_OPEN: 0 admits it, else the close code it is refused
     * with (a client deleted after the token was issued) */
    uint16_t  (*admit)(void *ctx, wh_str_t ws, wh_str_t client_id,
                       uint64_t iat);
    /* SESSION_OPEN admitted: 1 holds its answer back until the write
     * opened() starts is stored (cluster mode: a new client's record, so
     * that another node's API knows the client once the session does) */
    int       (*hold)(void *ctx, wh_str_t ws, wh_str_t client_id);
    /* a session was opened: client_type and name are the session's; peer
     * and session name it when its answer is held, and the hook answers
     * it with wh_sessions_answer() (peer NULL: answered already) */
    void      (*opened)(void *ctx, wh_str_t ws, wh_str_t client_id,
                        wh_str_t client_type, wh_str_t name, wh_peer_t *peer,
                        wh_str_t session);
    void      (*updated)(void *ctx, wh_str_t ws, wh_str_t client_id,
                         wh_str_t client_type, wh_str_t name);
    /* a session ended; left: the client's sessions still open */
    void      (*closed)(void *ctx, wh_str_t ws, wh_str_t client_id,
                        unsigned left);
    void       *ctx;
} wh_session_hooks_t;

typedef struct {
    wh_channels_t       *channels;
    wh_log_t            *log;
    wh_map_t             sessions;     /* serial + session -> session */
    wh_map_t             workspaces;   /* ws -> wh_wsinfo_t */
    wh_map_t             clients;      /* ws "\0" client -> wh_clinfo_t */
    wh_session_hooks_t   hooks;
    /* cluster mode: reports the sessions of ws here, answers those the
     * other nodes hold (NULL: one node) */
    uint64_t           (*elsewhere)(void *ctx, wh_str_t ws, uint64_t here);
    void                *elsewhere_ctx;
    uint64_t             kicked;       /* sessions kicked, for stats */
    int                  quiet;        /* shutting down: no events */
} wh_sessions_t;

typedef void (*wh_ws_each_pt)(void *ctx, wh_str_t ws);


void wh_sessions_init(wh_sessions_t *s, wh_channels_t *channels,
    wh_log_t *log);
void wh_sessions_free(wh_sessions_t *s);

/* link frames; -1 means a protocol error */
int wh_sessions_open(wh_sessions_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m);
/* the answer hooks.hold() held back: the session is accepted now, with
 * the connections counted now, unless it is gone meanwhile */
void wh_sessions_answer(wh_sessions_t *s, wh_peer_t *peer,
    wh_str_t session);
int wh_sessions_update(wh_sessions_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m);
int wh_sessions_close(wh_sessions_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m);

/* closes every session of a peer whose link is gone */
void wh_sessions_peer_gone(wh_sessions_t *s, wh_peer_t *peer);

/* the workspace and client id a session was opened with (they point
 * into the session): 1, or 0 if the peer has no such session */
int wh_sessions_identity(wh_sessions_t *s, wh_peer_t *peer,
    wh_str_t session, wh_str_t *ws, wh_str_t *client_id);

/* a client's open sessions (kicked ones not counted) */
unsigned wh_sessions_of_client(wh_sessions_t *s, wh_str_t ws,
    wh_str_t client_id);

/* the client's newest open session: 1 with its peer and session string
 * (valid until the session closes), 0 if the client is offline */
int wh_sessions_newest(wh_sessions_t *s, wh_str_t ws, wh_str_t client_id,
    wh_peer_t **peer, wh_str_t *session);

/* asks the module to close every open session of the client with the
 * close code and reason (SESSION_KICK); returns how many */
unsigned wh_sessions_kick_client(wh_sessions_t *s, wh_str_t ws,
    wh_str_t client_id, uint16_t code, const char *reason);

/* sets "connections" and "by_client_type" of obj for the workspace */
int wh_sessions_stats(wh_sessions_t *s, wh_str_t ws, json_t *obj);

/* over all workspaces (metrics) */
typedef struct {
    size_t               sessions;     /* open, as the workers report */
    size_t               clients;      /* clients with a session */
    size_t               workspaces;   /* workspaces with a session */
} wh_sessions_totals_t;

void wh_sessions_totals(wh_sessions_t *s, wh_sessions_totals_t *t);

/* calls cb for every client that has sessions */
typedef void (*wh_client_each_pt)(void *ctx, wh_str_t ws,
    wh_str_t client_id);
void wh_sessions_each_client(wh_sessions_t *s, wh_client_each_pt cb,
    void *ctx);

/* calls cb for every workspace that has sessions */
void wh_sessions_each_workspace(wh_sessions_t *s, wh_ws_each_pt cb,
    void *ctx);

#endif /* WH_SESSIONS_H */
