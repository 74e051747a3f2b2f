/*
 * The upstream sources' HTTP routes (sources_api.c).
 */

#ifndef WH_SOURCES_API_H
#define WH_SOURCES_API_H

#include "wh_link.h"
#include "link.h"
#include "sources.h"


/* 1 if path is /sources or /sources/{id} */
int wh_sources_api_path(wh_str_t path);

/* REQUEST for /sources and /sources/{id} */
void wh_sources_api(wh_sources_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t path);

#endif /* WH_SOURCES_API_H */
