/*
 * Query strings of the HTTP API routes (api.c, clients_api.c,
 * commands_api.c).
 */

#ifndef WH_QUERY_H
#define WH_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "wh_link.h"


/* the percent-decoded value of key in a query string: 1 found, 0 not,
 * -1 if it does not fit out (size bytes with the NUL) or is malformed */
int wh_query_get(wh_str_t q, const char *key, char *out, size_t size,
    size_t *len);

/* a decimal query parameter; 0 absent, 1 set, -1 invalid */
int wh_query_u64(wh_str_t q, const char *key, uint64_t *v);

#endif /* WH_QUERY_H */
