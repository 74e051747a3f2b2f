/*
 * A small JSON writer for the answers of the clients and commands API:
 * built by hand into a buffer so that the JSON a user gave (a command
 * payload, a result, metadata) goes out with its own bytes (jansson
 * would print 45.2 as 45.200000000000003).
 *
 * Every function appends one member ("key":value) or, with key NULL,
 * one array element, preceded by a comma unless the buffer ends with
 * "{", "[" or is empty.  They return 0, or -1 on ENOMEM or a string
 * that is not valid UTF-8; callers OR the results and check once.
 */

#ifndef WH_JSONW_H
#define WH_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "wh_link.h"


/* opens an object or array ('{' or '['), as a member if key is set */
int wh_jw_open(wh_buf_t *b, const char *key, char bracket);
int wh_jw_close(wh_buf_t *b, char bracket);

int wh_jw_str(wh_buf_t *b, const char *key, const char *s, size_t len);
int wh_jw_cstr(wh_buf_t *b, const char *key, const char *s);
/* raw must be one valid JSON text */
int wh_jw_raw(wh_buf_t *b, const char *key, const char *raw, size_t len);
int wh_jw_int(wh_buf_t *b, const char *key, int64_t v);
int wh_jw_bool(wh_buf_t *b, const char *key, int v);
/* an ISO-8601 UTC time, or null when ms is 0 */
int wh_jw_time(wh_buf_t *b, const char *key, int64_t ms);

/* who issued a command or a job, stored as "role:sub" (or "role"):
 * {"sub":"..."|null,"role":"..."} */
int wh_jw_issuer(wh_buf_t *b, const char *key, const char *by,
    size_t len);

#endif /* WH_JSONW_H */
