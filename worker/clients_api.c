/*
 * The clients registry's HTTP routes (/clients, /clients/{id},
 * /clients/{id}/disconnect): parsing the requests into ops of the
 * batch, and the JSON of the answers.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "wh_time.h"
#include "clients_api.h"
#include "jsonw.h"
#include "message.h"
#include "query.h"
#include "respond.h"


#define WH_CL_BODY_MAX      (64 * 1024)
#define WH_CL_FIELD_MAX     256       /* bytes of a name or a type */
#define WH_CL_LIMIT_DEF     100
#define WH_CL_LIMIT_MAX     1000
#define WH_CL_ID_RANDOM     8         /* bytes: "cl-" + 16 hex */
#define WH_CL_RETRY_DEF     30        /* s: a disconnect's retry_after */
#define WH_CL_RETRY_MAX     86400


/* the client as the API shows it */
static int
wh_cl_json(wh_clients_t *cl, wh_buf_t *b, const wh_client_t *client)
{
    int       rc;
    unsigned  n;

    n = wh_sessions_of_client(cl->sessions, client->ws, client->id);

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_str(b, "id", client->id.data, client->id.len);
    rc |= wh_jw_str(b, "name", client->name.data, client->name.len);
    rc |= wh_jw_str(b, "client_type", client->client_type.data,
                    client->client_type.len);
    rc |= wh_jw_bool(b, "online", n > 0);
    rc |= wh_jw_int(b, "connections", n);
    rc |= wh_jw_time(b, "last_seen",
                     wh_clients_last_seen(cl, client->ws, client->id,
                                          client->last_seen_ms));
    rc |= wh_jw_time(b, "created_at", client->created_ms);

    if (client->metadata.len) {
        rc |= wh_jw_raw(b, "metadata", client->metadata.data,
                        client->metadata.len);
    }

    return rc | wh_jw_close(b, '}');
}


/* ---------------------------------------------------------- answers */


static int
wh_cl_json_list(wh_cl_op_t *op, wh_buf_t *b)
{
    int                 rc;
    size_t              i;
    const wh_client_t  *last;

    rc = wh_jw_open(b, NULL, '{') | wh_jw_open(b, "items", '[');

    for (i = 0; i < op->list.n; i++) {
        rc |= wh_cl_json(op->cl, b, &op->list.items[i]);
    }

    rc |= wh_jw_close(b, ']');

    if (op->list.more && op->list.n) {
        last = &op->list.items[op->list.n - 1];
        rc |= wh_jw_str(b, "next", last->id.data, last->id.len);
    } else {
        rc |= wh_jw_raw(b, "next", "null", 4);
    }

    return rc | wh_jw_close(b, '}');
}


/* {"id", key: n} of a delete (a bool) or a disconnect (a count) */
static int
wh_cl_json_gone(wh_cl_op_t *op, wh_buf_t *b)
{
    int  rc;

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_str(b, "id", op->client_id.data, op->client_id.len);

    if (op->kind == WH_CL_OP_DELETE) {
        rc |= wh_jw_bool(b, "deleted", 1);
    } else {
        rc |= wh_jw_int(b, "disconnected", op->disconnected);
        rc |= wh_jw_int(b, "retry_after", op->retry_after);
    }

    return rc | wh_jw_close(b, '}');
}


static void
wh_cl_reply(wh_cl_op_t *op, int committed, const wh_err_t *err)
{
    int       rc;
    uint16_t  status = 200;
    wh_err_t  qerr;
    wh_buf_t  b = { NULL, 0, 0 };

    if (wh_respond_failed(op->peer, op->req_id, committed, err)) {
        return;
    }

    if (op->outcome == WH_CL_OVER_QUOTA) {
        wh_quota_refuse(op->cl->quota, op->ws, WH_QUOTA_CLIENTS, NULL,
                        &qerr);
        wh_respond_err(op->peer, op->req_id, &qerr);
        return;
    }

    if (op->outcome == WH_CL_EXISTS) {
        wh_respond_error(op->peer, op->req_id, 409, "conflict",
                         "a client with this id exists");
        return;
    }

    if (op->outcome == WH_CL_NOT_FOUND) {
        wh_respond_error(op->peer, op->req_id, 404, "not_found",
                         "no such client");
        return;
    }

    switch (op->kind) {

    case WH_CL_OP_LIST:
        rc = wh_cl_json_list(op, &b);
        break;

    case WH_CL_OP_DELETE:
    case WH_CL_OP_DISCONNECT:
        rc = wh_cl_json_gone(op, &b);
        break;

    default:
        status = op->kind == WH_CL_OP_CREATE ? 201 : 200;
        rc = wh_cl_json(op->cl, &b, &op->client);
        break;
    }

    if (rc != 0) {
        wh_respond_error(op->peer, op->req_id, 503, "unavailable",
                         "out of memory");

    } else if (op->kind == WH_CL_OP_CREATE) {
        /* a new client gets a token to connect with, if nginx can sign */
        wh_respond_adding(op->peer, op->req_id, status,
                          WH_LINK_RESPONSE_TOKEN, op->client.id, b.data,
                          b.len);

    } else {
        wh_respond(op->peer, op->req_id, status, b.data, b.len);
    }

    wh_buf_free(&b);
}


/* a request of the peer, to be answered after the commit; NULL when
 * out of memory (then answered 503) */
static wh_cl_op_t *
wh_cl_request(wh_clients_t *cl, wh_cl_op_e kind, wh_peer_t *peer,
    uint32_t req_id, const wh_str_t *strs)
{
    wh_cl_op_t  *op;

    op = wh_cl_op_new(cl, kind, strs);

    if (op == NULL) {
        wh_respond_error(peer, req_id, 503, "unavailable", "out of memory");
        return NULL;
    }

    op->reply = wh_cl_reply;
    op->peer = peer;
    op->req_id = req_id;

    return op;
}


static void
wh_cl_queue(wh_clients_t *cl, wh_cl_op_e kind, wh_peer_t *peer,
    uint32_t req_id, const wh_str_t *strs, unsigned fields, size_t limit)
{
    wh_cl_op_t  *op;

    op = wh_cl_request(cl, kind, peer, req_id, strs);

    if (op != NULL) {
        op->fields = fields;
        op->limit = limit;
        wh_cl_op_submit(op);
    }
}


/* ------------------------------------------------------ API parsing */


/* a string member of 1 to max bytes: 1 set, 0 absent, -1 invalid */
static int
wh_cl_field(json_t *body, const char *key, size_t max, wh_str_t *out)
{
    json_t  *v;

    v = json_object_get(body, key);

    if (v == NULL) {
        return 0;
    }

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > max)
    {
        return -1;
    }

    out->data = json_string_value(v);
    out->len = json_string_length(v);

    return 1;
}


/* name, client_type and metadata of a create or patch body; a message
 * for a 400, or NULL */
static const char *
wh_cl_parse_fields(const wh_link_msg_t *m, json_t *body, wh_str_t *strs,
    unsigned *fields)
{
    int      rc;
    json_t  *meta;

    if ((rc = wh_cl_field(body, "name", WH_CL_FIELD_MAX, &strs[2])) < 0) {
        return "\"name\" must be a string of 1 to 256 bytes";
    }

    *fields |= rc ? WH_CL_NAME : 0;
    rc = wh_cl_field(body, "client_type", WH_CL_FIELD_MAX, &strs[3]);

    if (rc < 0) {
        return "\"client_type\" must be a string of 1 to 256 bytes";
    }

    *fields |= rc ? WH_CL_TYPE : 0;
    meta = json_object_get(body, "metadata");

    if (meta == NULL) {
        return NULL;
    }

    if (!json_is_object(meta) && !json_is_null(meta)) {
        return "\"metadata\" must be an object (or null to remove it)";
    }

    *fields |= WH_CL_META;

    if (json_is_object(meta)
        && !wh_json_member(m->body.data, m->body.len, "metadata", &strs[4]))
    {
        return "write the key \"metadata\" without escapes";
    }

    return NULL;
}


static int
wh_cl_new_id(char *out)
{
    int            i;
    unsigned char  r[WH_CL_ID_RANDOM];
    static const char  hex[] = "0123456789abcdef";

    if (getrandom(r, sizeof(r), 0) != (ssize_t) sizeof(r)) {
        return -1;
    }

    memcpy(out, "cl-", 3);

    for (i = 0; i < WH_CL_ID_RANDOM; i++) {
        out[3 + 2 * i] = hex[r[i] >> 4];
        out[4 + 2 * i] = hex[r[i] & 0xf];
    }

    out[3 + 2 * WH_CL_ID_RANDOM] = '\0';

    return 0;
}


/* POST /clients and PATCH /clients/{id} */
static void
wh_cl_write(wh_clients_t *cl, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_cl_op_e kind, wh_str_t client_id)
{
    char           id[4 + 2 * WH_CL_ID_RANDOM];
    json_t        *body;
    unsigned       fields = 0;
    wh_str_t       strs[WH_CL_OP_STRS];
    const char    *bad = NULL;
    json_error_t   je;

    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;
    strs[1] = client_id;

    body = m->body.len <= WH_CL_BODY_MAX
           ? json_loadb(m->body.data, m->body.len, JSON_REJECT_DUPLICATES,
                        &je)
           : NULL;

    if (!json_is_object(body)) {
        bad = "the body must be a JSON object {name, client_type, "
              "metadata} of at most 64 KiB";

    } else {
        bad = wh_cl_parse_fields(m, body, strs, &fields);
    }

    if (bad == NULL && kind == WH_CL_OP_CREATE) {
        if ((fields & (WH_CL_NAME | WH_CL_TYPE)) != (WH_CL_NAME | WH_CL_TYPE))
        {
            bad = "\"name\" and \"client_type\" are required";

        } else if (wh_cl_field(body, "id", WH_CMD_CLIENT_MAX, &strs[1]) < 0
                   || (strs[1].len
                       && !wh_client_id_valid(strs[1].data, strs[1].len)))
        {
            bad = "\"id\" must be 1 to 256 bytes without \"/\" or control "
                  "characters";

        } else if (strs[1].len == 0 && wh_cl_new_id(id) == 0) {
            strs[1].data = id;
            strs[1].len = strlen(id);
        }
    }

    if (bad == NULL && strs[1].len == 0) {
        bad = "no randomness for a client id";
    }

    if (bad != NULL) {
        wh_respond_error(peer, m->req_id, 400, "bad_request", bad);
    } else {
        wh_cl_queue(cl, kind, peer, m->req_id, strs, fields, 0);
    }

    json_decref(body);
}


/*
 * POST /clients/{id}/disconnect: no body, or {"retry_after": seconds}
 * from 0 to 86400 (default 30): how long the closed sessions are told to
 * wait before they connect again.
 */
static void
wh_cl_disconnect(wh_clients_t *cl, wh_peer_t *peer, const wh_link_msg_t *m,
    const wh_str_t *strs)
{
    json_t        *body, *v;
    uint32_t       retry_after = WH_CL_RETRY_DEF;
    wh_cl_op_t    *op;
    const char    *bad = NULL;
    json_error_t   je;

    body = NULL;

    if (m->body.len > WH_CL_BODY_MAX) {
        bad = "the body must be at most 64 KiB";

    } else if (m->body.len > 0) {
        body = json_loadb(m->body.data, m->body.len, JSON_REJECT_DUPLICATES,
                          &je);
        v = json_object_get(body, "retry_after");

        if (!json_is_object(body)) {
            bad = "the body must be a JSON object {retry_after}";

        } else if (v != NULL
                   && (!json_is_integer(v) || json_integer_value(v) < 0
                       || json_integer_value(v) > WH_CL_RETRY_MAX))
        {
            bad = "\"retry_after\" must be an integer of seconds from 0 "
                  "to 86400";

        } else if (v != NULL) {
            retry_after = (uint32_t) json_integer_value(v);
        }
    }

    json_decref(body);

    if (bad != NULL) {
        wh_respond_error(peer, m->req_id, 400, "bad_request", bad);
        return;
    }

    op = wh_cl_request(cl, WH_CL_OP_DISCONNECT, peer, m->req_id, strs);

    if (op != NULL) {
        op->retry_after = retry_after;
        wh_cl_op_submit(op);
    }
}


static void
wh_cl_list(wh_clients_t *cl, wh_peer_t *peer, const wh_link_msg_t *m)
{
    int       rc;
    char      cursor[WH_CMD_CLIENT_MAX + 1];
    uint64_t  limit = WH_CL_LIMIT_DEF;
    wh_str_t  strs[WH_CL_OP_STRS];

    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;

    rc = wh_query_u64(m->query, "limit", &limit);

    if (rc < 0 || limit == 0) {
        wh_respond_error(peer, m->req_id, 400, "bad_request",
                         "limit must be 1 to 1000");
        return;
    }

    rc = wh_query_get(m->query, "cursor", cursor, sizeof(cursor),
                      &strs[5].len);

    if (rc < 0) {
        wh_respond_error(peer, m->req_id, 400, "bad_request",
                         "invalid cursor");
        return;
    }

    strs[5].data = cursor;
    strs[5].len = rc == 1 ? strs[5].len : 0;

    wh_cl_queue(cl, WH_CL_OP_LIST, peer, m->req_id, strs, 0,
                limit > WH_CL_LIMIT_MAX ? WH_CL_LIMIT_MAX : limit);
}


static void
wh_cl_one(wh_clients_t *cl, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t client_id, wh_str_t rest)
{
    wh_str_t  strs[WH_CL_OP_STRS];

    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;
    strs[1] = client_id;

    if (rest.len == 0 && wh_method_is(m, "GET")) {
        wh_cl_queue(cl, WH_CL_OP_GET, peer, m->req_id, strs, 0, 0);

    } else if (rest.len == 0 && wh_method_is(m, "PATCH")) {
        wh_cl_write(cl, peer, m, WH_CL_OP_PATCH, client_id);

    } else if (rest.len == 0 && wh_method_is(m, "DELETE")) {
        wh_cl_queue(cl, WH_CL_OP_DELETE, peer, m->req_id, strs, 0, 0);

    } else if (rest.len == sizeof("/disconnect") - 1
               && memcmp(rest.data, "/disconnect", rest.len) == 0
               && wh_method_is(m, "POST"))
    {
        wh_cl_disconnect(cl, peer, m, strs);

    } else if (rest.len == 0 || (rest.len == sizeof("/disconnect") - 1
                                 && memcmp(rest.data, "/disconnect",
                                           rest.len) == 0))
    {
        wh_respond_error(peer, m->req_id, 405, "method_not_allowed",
                         "method not allowed here");

    } else {
        wh_respond_error(peer, m->req_id, 404, "not_found",
                         "no such resource");
    }
}


void
wh_clients_api(wh_clients_t *cl, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t path)
{
    const char  *slash;
    wh_str_t     id, rest, none = { "", 0 };
    static const char  prefix[] = "/clients/";

    if (path.len == sizeof("/clients") - 1) {
        if (wh_method_is(m, "POST")) {
            wh_cl_write(cl, peer, m, WH_CL_OP_CREATE, none);

        } else if (wh_method_is(m, "GET")) {
            wh_cl_list(cl, peer, m);

        } else {
            wh_respond_error(peer, m->req_id, 405, "method_not_allowed",
                             "use GET or POST");
        }

        return;
    }

    if (path.len <= sizeof(prefix) - 1
        || memcmp(path.data, prefix, sizeof(prefix) - 1) != 0)
    {
        wh_respond_error(peer, m->req_id, 404, "not_found",
                         "no such resource");
        return;
    }

    id.data = path.data + sizeof(prefix) - 1;
    id.len = path.len - (sizeof(prefix) - 1);
    slash = memchr(id.data, '/', id.len);
    rest.data = slash ? slash : id.data + id.len;
    rest.len = id.data + id.len - rest.data;
    id.len = rest.data - id.data;

    if (!wh_client_id_valid(id.data, id.len)) {
        /* like any client that does not exist */
        wh_respond_error(peer, m->req_id, 404, "not_found",
                         "no such client");
        return;
    }

    wh_cl_one(cl, peer, m, id, rest);
}
