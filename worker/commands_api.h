/*
 * The commands' HTTP routes and COMMAND_RESULT (commands_api.c).
 */

#ifndef WH_COMMANDS_API_H
#define WH_COMMANDS_API_H

#include <jansson.h>

#include "wh_link.h"
#include "commands.h"
#include "link.h"


#define WH_CMD_NEW_ID_LEN  23      /* "c-" + 21 characters */


/* 1 if path is a route of the commands: /commands/{id} or
 * /clients/{id}/commands */
int wh_commands_api_path(wh_str_t path);

/* REQUEST for those routes */
void wh_commands_api(wh_commands_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t path);

/* COMMAND_RESULT; -1 is a protocol error */
int wh_commands_result(wh_commands_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m);

/* a new id: prefix "-" + the time in ms and random hex digits, so that
 * ids made close in time sort close together (out: WH_CMD_NEW_ID_LEN +
 * 1 bytes); -1 without randomness */
int wh_cmd_new_id(char *out, char prefix);

/* the query's status=pending,sent as a bit per status; -1 if one is
 * unknown */
int wh_cmd_status_mask(wh_str_t query, unsigned *mask);

/* "not_before" of a body (absent: 0); a message for a 400 */
const char *wh_cmd_parse_not_before(json_t *body, int64_t *ms);

#endif /* WH_COMMANDS_API_H */
