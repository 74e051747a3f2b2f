/*
 * The state's databases (kv.h): their names, and which are keyed by
 * workspace; the prefixes of cursors, for every store.
 */

#include <string.h>

#include "kv.h"


const wh_kv_db_t  wh_kv_dbs[WH_KV_NDBS] = {
    [WH_KV_CLIENTS]    = { "clients", 1 },
    [WH_KV_REVOKED]    = { "revoked", 1 },
    [WH_KV_COMMANDS]   = { "commands", 1 },
    [WH_KV_CMD_OPEN]   = { "cmd_open", 1 },
    [WH_KV_CMD_CLIENT] = { "cmd_client", 1 },
    [WH_KV_CMD_IDEM]   = { "cmd_idem", 1 },
    [WH_KV_CMD_META]   = { "cmd_meta", 0 },
    [WH_KV_CMD_WS]     = { "cmd_ws", 1 },
    [WH_KV_CMD_ENDED]  = { "cmd_ended", 0 },
    [WH_KV_JOBS]       = { "jobs", 1 },
    [WH_KV_JOB_EXEC]   = { "job_exec", 1 },
    [WH_KV_SOURCES]    = { "sources", 1 }
};


size_t
wh_kv_prefix_end(const void *prefix, size_t plen, void *out)
{
    unsigned char  *o = out;

    memcpy(o, prefix, plen);

    while (plen > 0 && o[plen - 1] == 0xff) {
        plen--;
    }

    if (plen > 0) {
        o[plen - 1]++;
    }

    return plen;
}


int
wh_kv_in_prefix(const wh_kv_val_t *prefix, const void *key, size_t klen)
{
    return prefix == NULL
           || (klen >= prefix->len
               && memcmp(key, prefix->data, prefix->len) == 0);
}
