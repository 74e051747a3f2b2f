/*
 * The body parsers of POST /clients/{id}/commands and of a device's
 * command_result are static in commands_api.c: this unit includes the
 * file and lends the fuzzer a way in.  Nothing of worker/ is changed.
 */

#include "../../worker/commands_api.c"

const char *fuzz_cmd_parse_create(json_t *body, wh_str_t *strs,
    unsigned *priority, int64_t *ttl_ms, int64_t *not_before_ms);
const char *fuzz_cmd_parse_result(const wh_link_msg_t *m, json_t *body,
    wh_str_t *strs, wh_cmd_status_e *outcome, char **dumped);
int fuzz_cmd_scan_create(const wh_link_msg_t *m, wh_str_t *strs,
    unsigned *priority, int64_t *ttl_ms, int64_t *not_before_ms);

const char *
fuzz_cmd_parse_create(json_t *body, wh_str_t *strs, unsigned *priority,
    int64_t *ttl_ms, int64_t *not_before_ms)
{
    return wh_cmd_parse_create(body, strs, priority, ttl_ms,
                               not_before_ms);
}

const char *
fuzz_cmd_parse_result(const wh_link_msg_t *m, json_t *body, wh_str_t *strs,
    wh_cmd_status_e *outcome, char **dumped)
{
    return wh_cmd_parse_result(m, body, strs, outcome, dumped);
}

int
fuzz_cmd_scan_create(const wh_link_msg_t *m, wh_str_t *strs,
    unsigned *priority, int64_t *ttl_ms, int64_t *not_before_ms)
{
    return wh_cmd_scan_create(m, strs, priority, ttl_ms, not_before_ms);
}
