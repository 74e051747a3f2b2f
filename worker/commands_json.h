/*
 * The JSON of a command: as the API shows it, as the "$commands" event
 * announces a status change, as the device receives it.  Only the API
 * (commands_api.c) and the notes (commands_notes.c) render; the
 * operations decide.
 */

#ifndef WH_COMMANDS_JSON_H
#define WH_COMMANDS_JSON_H

#include <stdint.h>

#include "wh_link.h"
#include "engine.h"


/* the status's name; a corrupt one shows as "unknown" */
const char *wh_cmd_json_status(wh_cmd_status_e status);

/* the command as GET /commands/{id} (with_history) and the listing
 * show it */
int wh_cmd_json_object(wh_buf_t *b, const wh_command_t *cmd,
    int with_history);

/* {"command_id","status","client_id","priority","attempt","expires_at"}
 * of the answers to a create, a cancel, a result */
int wh_cmd_json_summary(wh_buf_t *b, const wh_command_t *cmd);

/* the data of a command_status event */
int wh_cmd_json_event(wh_buf_t *b, const wh_command_t *cmd);

/* the device_command message, sent at now */
int wh_cmd_json_device(wh_buf_t *b, const wh_command_t *cmd, int64_t now);

#endif /* WH_COMMANDS_JSON_H */
