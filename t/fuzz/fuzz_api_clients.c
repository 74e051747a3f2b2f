/*
 * The body parser of POST/PATCH /clients is static in clients_api.c:
 * this unit includes the file and lends the fuzzer a way in.  Nothing
 * of worker/ is changed for it.
 */

#include "../../worker/clients_api.c"

const char *fuzz_cl_parse_fields(const wh_link_msg_t *m, json_t *body,
    wh_str_t *strs, unsigned *fields);

const char *
fuzz_cl_parse_fields(const wh_link_msg_t *m, json_t *body, wh_str_t *strs,
    unsigned *fields)
{
    return wh_cl_parse_fields(m, body, strs, fields);
}
