/*
 * The commands' HTTP routes and COMMAND_RESULT (commands_api.c).
 */

#ifndef WH_COMMANDS_API_H
#define WH_COMMANDS_API_H

#include "wh_link.h"
#include "commands.h"
#include "link.h"


/* 1 if path is a route of the commands: /commands/{id} or
 * /clients/{id}/commands */
int wh_commands_api_path(wh_str_t path);

/* REQUEST for those routes */
void wh_commands_api(wh_commands_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t path);

/* COMMAND_RESULT; -1 is a protocol error */
int wh_commands_result(wh_commands_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m);

#endif /* WH_COMMANDS_API_H */
