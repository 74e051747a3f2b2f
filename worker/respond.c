/*
 * Answers to a worker's REQUEST (respond.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "message.h"
#include "respond.h"


void
wh_respond(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    const void *body, size_t len)
{
    wh_str_t  none = { NULL, 0 };

    wh_respond_adding(peer, req_id, status, 0, none, body, len);
}


void
wh_respond_adding(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    uint8_t adds, wh_str_t client_id, const void *body, size_t len)
{
    wh_str_t       b;
    wh_link_msg_t  r;

    b.data = body;
    b.len = len;

    wh_link_response(&r, req_id, status, adds, client_id, b);
    wh_link_send(peer, &r);
}

void
wh_respond_json(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    json_t *j)
{
    char  *text;

    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (text == NULL) {
        wh_respond_error(peer, req_id, 503, "unavailable", "out of memory");
        return;
    }

    wh_respond(peer, req_id, status, text, strlen(text));
    free(text);
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


void
wh_respond_err(wh_peer_t *peer, uint32_t req_id, const wh_err_t *err)
{
    wh_buf_t       b = { 0 };
    wh_str_t       none = { NULL, 0 }, body;
    wh_link_msg_t  r;

    if (wh_json_error(&b, wh_err_code(err), err->msg) != 0) {
        wh_link_drop(peer, "out of memory");
        wh_buf_free(&b);
        return;
    }

    body.data = (const char *) b.data;
    body.len = b.len;
    wh_link_response(&r, req_id, (uint16_t) err->status, 0, none, body);
    r.count = err->retry_s;
    wh_link_send(peer, &r);
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


json_t *
wh_request_object(wh_peer_t *peer, const wh_link_msg_t *m, size_t max,
    const char *too_large, const char *shape)
{
    json_t        *body;
    json_error_t   je;

    if (m->body.len > max) {
        wh_respond_error(peer, m->req_id, 413, "too_large", too_large);
        return NULL;
    }

    body = json_loadb(m->body.data, m->body.len, JSON_REJECT_DUPLICATES,
                      &je);

    if (!json_is_object(body)) {
        json_decref(body);
        wh_respond_error(peer, m->req_id, 400, "bad_request", shape);
        return NULL;
    }

    return body;
}


int
wh_method_is(const wh_link_msg_t *m, const char *method)
{
    return m->name.len == strlen(method)
           && memcmp(m->name.data, method, m->name.len) == 0;
}


void
wh_issuer(const wh_link_msg_t *m, char *buf, size_t size, wh_str_t *out)
{
    int  n;

    n = snprintf(buf, size, "%s%s%.*s",
                 m->flag == WH_LINK_ROLE_ADMIN ? "admin" : "service",
                 m->client_id.len ? ":" : "", (int) m->client_id.len,
                 m->client_id.data);

    out->data = buf;
    out->len = n < 0 ? 0 : (size_t) n < size ? (size_t) n : size - 1;
}
