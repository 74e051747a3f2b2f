/*
 * The clients registry: the clients of each workspace (registered by
 * POST /clients or by connecting with a valid token), their online
 * state (from sessions.c), and the revocations of deleted clients
 * (kept across restarts, loaded at start and sent to every worker
 * after WELCOME).
 *
 * The state is in the engine (engine.h).  Every read and write is an op
 * of the batch (batch.h), so that a client created by the API is in the
 * store before a command can name it; the API makes the op, submits it
 * and renders what it came to in its reply.
 */

#ifndef WH_CLIENTS_H
#define WH_CLIENTS_H

#include <stdint.h>

#include "wh_link.h"
#include "batch.h"
#include "commands.h"
#include "engine.h"
#include "link.h"
#include "log.h"
#include "map.h"
#include "quota.h"
#include "sessions.h"
#include "u64map.h"


/* a session opening or the last one closing changes only last_seen of a
 * client whose record exists: such writes wait up to this long and go
 * in one commit, the newest of each client only (a reconnect storm
 * costs no synced commit per handshake) */
#define WH_CL_SEEN_FLUSH_MS   1000
/* clients known to be registered, remembered as 64-bit hashes */
#define WH_CL_KNOWN_MAX       (1 << 21)

typedef struct {
    wh_engine_t      *engine;
    wh_log_t         *log;
    wh_batch_t       *batch;
    wh_sessions_t    *sessions;
    wh_link_t        *link;
    wh_commands_t    *commands;
    wh_quota_t       *quota;        /* clients, at registration */
    wh_map_t          revoked;      /* ws "\0" client -> seconds */
    wh_u64map_t       known;        /* clients whose record was seen
                                     * committed: a seeded hash of ws
                                     * "\0" client -> a hash of its
                                     * client_type and name */
    uint64_t          seed;
    wh_map_t          seen_writes;  /* ws "\0" client -> wh_cl_op_t:
                                     * the delayed last_seen writes of
                                     * known clients, for the flush */
} wh_clients_t;

typedef enum {
    WH_CL_OP_CREATE = 0,
    WH_CL_OP_LIST,
    WH_CL_OP_GET,
    WH_CL_OP_PATCH,
    WH_CL_OP_DELETE,
    WH_CL_OP_DISCONNECT,
    WH_CL_OP_SEEN,          /* a session opened or registered */
    WH_CL_OP_GONE,          /* the client's last session closed */
    WH_CL_OP_REVOCATIONS    /* cluster: every revocation read again
                             * (notes of other nodes may be lost) */
} wh_cl_op_e;

/* what a request came to (storage errors aside) */
typedef enum {
    WH_CL_DONE = 0,         /* client (or list) is the answer */
    WH_CL_EXISTS,           /* create: the id is taken */
    WH_CL_NOT_FOUND,
    WH_CL_OVER_QUOTA        /* create, or a new client's session: the
                             * workspace has its clients (the session
                             * stands, the client is not registered) */
} wh_cl_outcome_e;

/* which fields a create or a patch sets */
#define WH_CL_NAME      0x01
#define WH_CL_TYPE      0x02
#define WH_CL_META      0x04

typedef struct wh_cl_op_s  wh_cl_op_t;

/* after the commit; as wh_cmd_reply_pt */
typedef void (*wh_cl_reply_pt)(wh_cl_op_t *op, int committed,
    const wh_err_t *err);

#define WH_CL_OP_STRS   7

struct wh_cl_op_s {
    wh_op_t           op;
    wh_clients_t     *cl;
    wh_cl_op_e        kind;

    /* the request; strings point into mem (WH_CL_OP_STRS of them, in
     * this order, session last) */
    wh_str_t          ws, client_id, name, client_type, metadata, cursor;
    unsigned          fields;         /* WH_CL_NAME, ... */
    size_t            limit;

    /* what it came to */
    wh_cl_outcome_e   outcome;
    wh_client_t       client;
    wh_client_list_t  list;
    unsigned          disconnected;   /* sessions a disconnect closes */
    uint32_t          retry_after;    /* disconnect: seconds to wait */
    uint64_t          revoke_s;       /* delete: tokens before refused */
    int               created;        /* a client was registered */
    int               held;           /* holds a place of the quota
                                       * until done */
    int               exists;         /* the record is there after it */
    int               delayed;        /* a delayed last_seen write: it
                                       * registers nobody */
    int64_t           at_ms;          /* seen and gone: when */

    /* who waits for it: the API's (NULL reply: nobody), or a session
     * whose open is answered once its client is stored (peer, session) */
    wh_cl_reply_pt    reply;
    wh_peer_t        *peer;
    uint32_t          req_id;
    wh_str_t          session;

    wh_cmd_notes_t    notes;          /* delete: cancelled commands */
    wh_map_t          revoked;        /* revocations: ws "\0" client ->
                                       * seconds, as stored */
    char             *mem;
};


/* loads the revocations, counts the clients of each workspace into
 * quota and sets the session hooks */
int wh_clients_init(wh_clients_t *cl, wh_engine_t *engine,
    wh_batch_t *batch, wh_sessions_t *sessions, wh_link_t *link,
    wh_commands_t *commands, wh_quota_t *quota, wh_log_t *log,
    wh_err_t *err);
void wh_clients_free(wh_clients_t *cl);

/* a request; strings: ws, client_id, name, client_type, metadata,
 * cursor, copied.  NULL out of memory */
wh_cl_op_t *wh_cl_op_new(wh_clients_t *cl, wh_cl_op_e kind,
    const wh_str_t *strs);
/* queues it for the end of the loop turn */
void wh_cl_op_submit(wh_cl_op_t *op);

/* after WELCOME: every stored revocation, so that the worker refuses
 * revoked tokens from its first handshake on */
void wh_clients_hello(wh_clients_t *cl, wh_peer_t *peer);

/* 1 if id can name a client in an API path: 1-256 bytes without "/",
 * control characters or invalid UTF-8 */
int wh_client_id_valid(const char *id, size_t len);

/* the delayed last_seen writes into the batch (every
 * WH_CL_SEEN_FLUSH_MS, and before exit) */
void wh_clients_flush(wh_clients_t *cl);
/* when a delayed write of the client is newer than what the store says */
int64_t wh_clients_last_seen(wh_clients_t *cl, wh_str_t ws,
    wh_str_t client_id, int64_t stored_ms);

/* cluster: another node deleted or disconnected a client
 * (WH_NOTE_REVOKED, WH_NOTE_DISCONNECT): the same happens here */
void wh_clients_changed_elsewhere(wh_clients_t *cl,
    const wh_engine_note_t *n);

#endif /* WH_CLIENTS_H */
