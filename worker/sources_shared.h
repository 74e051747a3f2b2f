/*
 * Run-time upstream sources in a cluster (engine redis): the records
 * are written through the batch (a cluster write waits for Redis, which
 * the synchronous path of sources.c cannot), each source runs on the
 * node that created it (its record says which, "_node"), every node
 * lists, reads and deletes them all, and a node whose lease ended has
 * its sources taken over by another.
 */

#ifndef WH_SOURCES_SHARED_H
#define WH_SOURCES_SHARED_H

#include "wh_link.h"
#include "link.h"
#include "sources.h"


/* the cluster's side of s (the batch its writes go through); starts
 * the take-over scan; 0 on one node (nothing to do) */
int wh_sources_shared_init(wh_sources_t *s, wh_batch_t *batch,
    wh_err_t *err);
void wh_sources_shared_stop(wh_sources_t *s);

/* 1 if run-time sources are the cluster's (the routes below answer) */
int wh_sources_shared(const wh_sources_t *s);

void wh_sources_shared_create(wh_sources_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m);
void wh_sources_shared_list(wh_sources_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m);
/* GET or DELETE /sources/{id} */
void wh_sources_shared_one(wh_sources_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t id);

/* another node deleted (ws, id) (engine.h WH_NOTE_SOURCE): stops it if
 * this node runs it */
void wh_sources_changed_elsewhere(wh_sources_t *s, wh_str_t ws,
    wh_str_t id);

#endif /* WH_SOURCES_SHARED_H */
