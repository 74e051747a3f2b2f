/*
 * Answers to a worker's REQUEST (respond.h).
 */

#include <string.h>

#include "channels.h"
#include "message.h"
#include "respond.h"


void
wh_respond(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    const void *body, size_t len)
{
    wh_link_msg_t  r;

    memset(&r, 0, sizeof(r));
    r.type = WH_LINK_RESPONSE;
    r.req_id = req_id;
    r.status = status;
    r.body.data = body;
    r.body.len = len;
    wh_link_send(peer, &r);
}


void
wh_respond_error(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    const char *code, const char *message)
{
    wh_buf_t  b = { 0 };

    if (wh_json_error(&b, code, message) != 0) {
        wh_link_drop(peer, "out of memory");
    } else {
        wh_respond(peer, req_id, status, b.data, b.len);
    }

    wh_buf_free(&b);
}


int
wh_respond_failed(wh_peer_t *peer, uint32_t req_id, int committed,
    const wh_err_t *err)
{
    if (err == NULL) {
        return 0;
    }

    wh_respond_error(peer, req_id, (uint16_t) err->status,
                     wh_error_code(err->status),
                     committed ? "stored, but the sync to disk failed"
                               : "storage error, retry");

    return 1;
}


int
wh_method_is(const wh_link_msg_t *m, const char *method)
{
    return m->name.len == strlen(method)
           && memcmp(m->name.data, method, m->name.len) == 0;
}
