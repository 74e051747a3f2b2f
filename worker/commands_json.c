/*
 * The JSON of a command (commands_json.h).
 */

#include "jsonw.h"
#include "commands_json.h"


const char *
wh_cmd_json_status(wh_cmd_status_e status)
{
    const char  *name;

    name = wh_cmd_status_name(status);

    return name ? name : "unknown";
}


static int
wh_cmd_json_history(wh_buf_t *b, const wh_command_t *cmd)
{
    int                    rc;
    size_t                 i;
    const wh_cmd_event_t  *e;

    rc = wh_jw_open(b, "history", '[');

    for (i = 0; i < cmd->nhistory; i++) {
        e = &cmd->history[i];
        rc |= wh_jw_open(b, NULL, '{');
        rc |= wh_jw_cstr(b, "status", wh_cmd_json_status(e->status));
        rc |= wh_jw_time(b, "at", e->at_ms);

        if (e->attempt) {
            rc |= wh_jw_int(b, "attempt", e->attempt);
            rc |= wh_jw_str(b, "session", e->session.data, e->session.len);
        }

        if (e->reason.len) {
            rc |= wh_jw_str(b, "reason", e->reason.data, e->reason.len);
        }

        rc |= wh_jw_close(b, '}');
    }

    return rc | wh_jw_close(b, ']');
}


/* a string member only when it is set */
static int
wh_cmd_json_opt(wh_buf_t *b, const char *key, wh_str_t s, int raw)
{
    if (s.len == 0) {
        return 0;
    }

    return raw ? wh_jw_raw(b, key, s.data, s.len)
               : wh_jw_str(b, key, s.data, s.len);
}


int
wh_cmd_json_object(wh_buf_t *b, const wh_command_t *cmd, int with_history)
{
    int  rc;

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_str(b, "command_id", cmd->id.data, cmd->id.len);
    rc |= wh_jw_str(b, "client_id", cmd->client_id.data,
                    cmd->client_id.len);
    rc |= wh_jw_str(b, "command", cmd->command.data, cmd->command.len);
    rc |= wh_jw_raw(b, "payload", cmd->payload.data, cmd->payload.len);
    rc |= wh_jw_int(b, "priority", cmd->priority);
    rc |= wh_jw_cstr(b, "status", wh_cmd_json_status(cmd->state.status));
    rc |= wh_jw_int(b, "attempt", cmd->state.attempt);
    rc |= wh_jw_time(b, "created_at", cmd->created_ms);
    rc |= wh_jw_time(b, "updated_at", cmd->updated_ms);
    rc |= wh_jw_time(b, "expires_at", cmd->state.expires_ms);
    rc |= wh_cmd_json_opt(b, "idempotency_key", cmd->idem, 0);
    rc |= wh_cmd_json_opt(b, "result", cmd->result, 1);
    rc |= wh_cmd_json_opt(b, "error", cmd->error, 0);
    rc |= wh_cmd_json_opt(b, "reason", cmd->reason, 0);
    rc |= wh_cmd_json_opt(b, "lane", cmd->lane, 0);
    rc |= wh_cmd_json_opt(b, "supersede_key", cmd->supersede, 0);
    if (cmd->issued_by.len) {
        rc |= wh_jw_issuer(b, "issued_by", cmd->issued_by.data,
                           cmd->issued_by.len);
    }

    rc |= wh_cmd_json_opt(b, "job_id", cmd->job, 0);

    if (cmd->state.not_before_ms) {
        rc |= wh_jw_time(b, "not_before", cmd->state.not_before_ms);
    }

    if (with_history) {
        rc |= wh_cmd_json_history(b, cmd);
    }

    return rc | wh_jw_close(b, '}');
}


int
wh_cmd_json_summary(wh_buf_t *b, const wh_command_t *cmd)
{
    int  rc;

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_str(b, "command_id", cmd->id.data, cmd->id.len);
    rc |= wh_jw_cstr(b, "status", wh_cmd_json_status(cmd->state.status));
    rc |= wh_jw_str(b, "client_id", cmd->client_id.data,
                    cmd->client_id.len);
    rc |= wh_jw_int(b, "priority", cmd->priority);
    rc |= wh_jw_int(b, "attempt", cmd->state.attempt);
    rc |= wh_jw_time(b, "expires_at", cmd->state.expires_ms);

    if (cmd->issued_by.len) {
        rc |= wh_jw_issuer(b, "issued_by", cmd->issued_by.data,
                           cmd->issued_by.len);
    }

    return rc | wh_jw_close(b, '}');
}


int
wh_cmd_json_event(wh_buf_t *b, const wh_command_t *cmd)
{
    int  rc;

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_str(b, "command_id", cmd->id.data, cmd->id.len);
    rc |= wh_jw_str(b, "client_id", cmd->client_id.data,
                    cmd->client_id.len);
    rc |= wh_jw_str(b, "command", cmd->command.data, cmd->command.len);
    rc |= wh_jw_cstr(b, "status", wh_cmd_json_status(cmd->state.status));
    rc |= wh_jw_int(b, "attempt", cmd->state.attempt);
    rc |= wh_cmd_json_opt(b, "reason", cmd->reason, 0);
    rc |= wh_cmd_json_opt(b, "error", cmd->error, 0);
    rc |= wh_cmd_json_opt(b, "job_id", cmd->job, 0);

    return rc | wh_jw_close(b, '}');
}


int
wh_cmd_json_device(wh_buf_t *b, const wh_command_t *cmd, int64_t now)
{
    int  rc;

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_cstr(b, "type", "device_command");
    rc |= wh_jw_str(b, "command_id", cmd->id.data, cmd->id.len);
    rc |= wh_jw_str(b, "command", cmd->command.data, cmd->command.len);
    rc |= wh_jw_raw(b, "payload", cmd->payload.data, cmd->payload.len);
    rc |= wh_jw_int(b, "priority", cmd->priority);
    rc |= wh_jw_int(b, "attempt", cmd->state.attempt);
    rc |= wh_cmd_json_opt(b, "lane", cmd->lane, 0);
    rc |= wh_jw_time(b, "timestamp", now);

    return rc | wh_jw_close(b, '}');
}
