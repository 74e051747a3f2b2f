/*
 * The clients registry's HTTP routes (clients_api.c).
 */

#ifndef WH_CLIENTS_API_H
#define WH_CLIENTS_API_H

#include "wh_link.h"
#include "clients.h"
#include "link.h"


/* REQUEST for /clients and /clients/{id}[/disconnect] */
void wh_clients_api(wh_clients_t *cl, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t path);

#endif /* WH_CLIENTS_API_H */
