/*
 * Answers to a worker's REQUEST, shared by the clients and commands
 * routes.
 */

#ifndef WH_RESPOND_H
#define WH_RESPOND_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "wh_link.h"
#include "link.h"


/* a RESPONSE frame with the body as it is */
void wh_respond(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    const void *body, size_t len);

/* the same, asking the module to add what only nginx holds (adds: the
 * WH_LINK_RESPONSE_* bits) for client_id */
void wh_respond_adding(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    uint8_t adds, wh_str_t client_id, const void *body, size_t len);

/* j as the body (taken: decref'd); NULL, or out of memory: 503 */
void wh_respond_json(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    json_t *j);

/* {"error":{"code","message"}}; out of memory the peer is dropped */
void wh_respond_error(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    const char *code, const char *message);

/* err as {"error":{"code","message"}} with err's status, the code
 * wh_err_code() names and, for a rate, its Retry-After */
void wh_respond_err(wh_peer_t *peer, uint32_t req_id, const wh_err_t *err);

/* after a batch (batch.h): answers a storage error (committed 0) or a
 * failed sync (committed 1, err set) and returns 1; 0 if there was
 * none */
int wh_respond_failed(wh_peer_t *peer, uint32_t req_id, int committed,
    const wh_err_t *err);

/* who makes the REQUEST, as commands and jobs store it: "role:sub"
 * ("role" alone when the module sent no sub); out points into buf */
#define WH_ISSUER_MAX  (16 + 256)     /* a role, ":", a client id */
void wh_issuer(const wh_link_msg_t *m, char *buf, size_t size,
    wh_str_t *out);

/* the REQUEST's body as a JSON object of at most max bytes; NULL once
 * answered 413 with too_large (the limit, in words) or 400 with shape
 * (what the body must be) */
json_t *wh_request_object(wh_peer_t *peer, const wh_link_msg_t *m,
    size_t max, const char *too_large, const char *shape);

/* 1 if the REQUEST's method is method */
int wh_method_is(const wh_link_msg_t *m, const char *method);

#endif /* WH_RESPOND_H */
