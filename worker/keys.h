/*
 * The encodings of keys and numbers in stored records, whatever the
 * engine: a big-endian 64-bit number sorts as its value does under
 * memcmp() (LMDB's order, Redis's ZRANGEBYLEX order), and "\0" ends a
 * workspace, a channel or a client id (none may contain it), so that a
 * prefix of a key never runs into another's.  Callers bound the
 * lengths: buf must hold the key.
 */

#ifndef WH_KEYS_H
#define WH_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "wh_link.h"


/* a big-endian 64-bit number in keys and values (ids, seqs, times) */
#define WH_BE64_LEN  8

void wh_be64_put(unsigned char *p, uint64_t v);
uint64_t wh_be64_get(const unsigned char *p);

/* a "\0" b: workspace and channel, client, command, job, source */
size_t wh_key_pair(unsigned char *buf, wh_str_t a, wh_str_t b);
/* a key of wh_key_pair() back into a and b: 0, or -1 without a "\0" */
int wh_key_unpair(const void *key, size_t len, wh_str_t *a, wh_str_t *b);
/* a "\0" b "\0" be64 n: a history entry, a command of a client, an
 * execution of a job */
size_t wh_key_seq(unsigned char *buf, wh_str_t a, wh_str_t b, uint64_t n);
/* ws "\0" client "\0" idempotency key */
size_t wh_key_idem(unsigned char *buf, wh_str_t ws, wh_str_t client_id,
    wh_str_t idem);
/* ws "\0" be64 seq: the workspace's commands in creation order */
size_t wh_key_ws_seq(unsigned char *buf, wh_str_t ws, uint64_t seq);
/* be64 ended ms, ws "\0" id: the ended commands, the oldest end first */
size_t wh_key_ended(unsigned char *buf, int64_t ended_ms, wh_str_t ws,
    wh_str_t id);

#endif /* WH_KEYS_H */
