/*
 * The clients registry: the clients of each workspace (registered by
 * POST /clients or by connecting with a valid token), their online
 * state (from sessions.c), and the revocations of deleted clients.
 *
 * LMDB databases:
 *
 *   clients   ws "\0" client_id -> the client (JSON: name, client_type,
 *             metadata as its own text, created and last_seen in ms)
 *   revoked   ws "\0" client_id -> be64 seconds: tokens of that client
 *             issued (iat) before are refused; kept across restarts,
 *             loaded at start and sent to every worker after WELCOME
 *
 * All writes go through the batch (batch.h), so that a client created
 * by the API is in the store before a command can name it.
 */

#ifndef WH_CLIENTS_H
#define WH_CLIENTS_H

#include <lmdb.h>
#include <stdint.h>

#include "wh_link.h"
#include "batch.h"
#include "commands.h"
#include "link.h"
#include "log.h"
#include "map.h"
#include "sessions.h"
#include "store.h"


struct wh_clients_s {
    wh_store_t       *store;
    wh_log_t         *log;
    wh_batch_t       *batch;
    wh_sessions_t    *sessions;
    wh_link_t        *link;
    wh_commands_t    *commands;
    MDB_dbi           clients_db, revoked_db;
    wh_map_t          revoked;      /* ws "\0" client -> seconds */
};


/* opens the databases, loads the revocations and sets the session
 * hooks */
int wh_clients_init(wh_clients_t *cl, wh_store_t *store, wh_batch_t *batch,
    wh_sessions_t *sessions, wh_link_t *link, wh_commands_t *commands,
    wh_log_t *log, wh_err_t *err);
void wh_clients_free(wh_clients_t *cl);

/* REQUEST for /clients and /clients/{id}[/disconnect] */
void wh_clients_api(wh_clients_t *cl, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t path);

/* after WELCOME: every stored revocation, so that the worker refuses
 * revoked tokens from its first handshake on */
void wh_clients_hello(wh_clients_t *cl, wh_peer_t *peer);

/* inside a batch txn: 1 if the client is registered, 0 if not, -1 */
int wh_clients_exists(wh_clients_t *cl, MDB_txn *txn, wh_str_t ws,
    wh_str_t client_id, wh_err_t *err);

/* 1 if id can name a client in an API path: 1-256 bytes without "/",
 * control characters or invalid UTF-8 */
int wh_client_id_valid(const char *id, size_t len);

#endif /* WH_CLIENTS_H */
