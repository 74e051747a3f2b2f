/*
 * The commands' HTTP routes (/clients/{id}/commands, /commands/{id})
 * and COMMAND_RESULT: parsing the requests into ops of the batch, and
 * the JSON of the answers.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "wh_json_check.h"
#include "wh_time.h"
#include "clients.h"
#include "commands_api.h"
#include "commands_json.h"
#include "jsonw.h"
#include "message.h"
#include "query.h"
#include "respond.h"


#define WH_CMD_BODY_MAX      (256 * 1024)  /* a payload, a result */
#define WH_CMD_TTL_MAX_S     (30 * 86400)
#define WH_CMD_LIMIT_DEF     100
#define WH_CMD_LIMIT_MAX     1000
#define WH_CMD_ID_TIME       11            /* hex digits of ms */
#define WH_CMD_ID_RANDOM     10            /* random hex digits */

#if (WH_CMD_NEW_ID_LEN != 2 + WH_CMD_ID_TIME + WH_CMD_ID_RANDOM)
#error "WH_CMD_NEW_ID_LEN"
#endif


/* ---------------------------------------------------------- answers */


static void
wh_cmd_reply_list(wh_cmd_op_t *op, wh_buf_t *b)
{
    int     rc;
    char    num[32];
    size_t  i;

    rc = wh_jw_open(b, NULL, '{') | wh_jw_open(b, "items", '[');

    for (i = 0; i < op->list.n; i++) {
        rc |= wh_cmd_json_object(b, &op->list.items[i], 0);
    }

    rc |= wh_jw_close(b, ']');

    if (op->list.next) {
        snprintf(num, sizeof(num), "%" PRIu64, op->list.next);
        rc |= wh_jw_cstr(b, "next", num);
    } else {
        rc |= wh_jw_raw(b, "next", "null", 4);
    }

    if ((rc | wh_jw_close(b, '}')) != 0) {
        wh_respond_error(op->peer, op->req_id, 503, "unavailable",
                         "out of memory");
        return;
    }

    wh_respond(op->peer, op->req_id, 200, b->data, b->len);
}


/* an ended command: a cancel (409 conflict) or a second result (409
 * bad_request, as the client sees it) */
static void
wh_cmd_reply_ended(wh_cmd_op_t *op)
{
    char  msg[64];

    snprintf(msg, sizeof(msg), "command already %s",
             wh_cmd_json_status(op->cmd.state.status));

    wh_respond_error(op->peer, op->req_id, 409,
                     op->kind == WH_CMD_OP_CANCEL ? "conflict"
                                                  : "bad_request", msg);
}


/* the one command the op came to */
static void
wh_cmd_reply_one(wh_cmd_op_t *op, wh_buf_t *b)
{
    int       rc;
    uint16_t  status = 200;

    if (op->kind == WH_CMD_OP_GET) {
        rc = wh_cmd_json_object(b, &op->cmd, 1);

    } else {
        /* a new command is accepted; a repeat shows the first one */
        status = op->kind == WH_CMD_OP_CREATE
                 && op->outcome == WH_CMD_DONE ? 202 : 200;
        rc = wh_cmd_json_summary(b, &op->cmd);
    }

    if (rc != 0) {
        wh_respond_error(op->peer, op->req_id, 503, "unavailable",
                         "out of memory");
        return;
    }

    wh_respond(op->peer, op->req_id, status, b->data, b->len);
}


static void
wh_cmd_reply(wh_cmd_op_t *op, int committed, const wh_err_t *err)
{
    wh_err_t  qerr;
    wh_buf_t  b = { NULL, 0, 0 };

    if (wh_respond_failed(op->peer, op->req_id, committed, err)) {
        return;
    }

    switch (op->outcome) {

    case WH_CMD_OVER_QUOTA:
        wh_quota_refuse(op->c->quota, op->ws, WH_QUOTA_QUEUED_COMMANDS,
                        NULL, &qerr);
        wh_respond_err(op->peer, op->req_id, &qerr);
        return;

    case WH_CMD_NO_CLIENT:
        wh_respond_error(op->peer, op->req_id, 404, "not_found",
                         "no such client");
        return;

    case WH_CMD_NO_COMMAND:
        wh_respond_error(op->peer, op->req_id, 404, "not_found",
                         "no such command");
        return;

    case WH_CMD_ENDED:
        wh_cmd_reply_ended(op);
        return;

    default:
        break;
    }

    if (op->kind == WH_CMD_OP_LIST || op->kind == WH_CMD_OP_LIST_WS) {
        wh_cmd_reply_list(op, &b);
    } else {
        wh_cmd_reply_one(op, &b);
    }

    wh_buf_free(&b);
}


/* a request of the peer; answered after the commit */
static void
wh_cmd_submit(wh_cmd_op_t *op, wh_peer_t *peer, uint32_t req_id)
{
    op->reply = wh_cmd_reply;
    op->peer = peer;
    op->req_id = req_id;
    wh_cmd_op_submit(op);
}


/* ------------------------------------------------------ API parsing */


/*
 * "c-" + 11 hex digits of the time in ms + 10 random hex digits: ids
 * made close in time sort close together, so that a batch of new
 * commands dirties a few B-tree pages at the end of the workspace's
 * range, not one random page each (an fsync writes every dirty page).
 */
int
wh_cmd_new_id(char *out, char prefix)
{
    int            i;
    uint64_t       ms;
    unsigned char  *r;
    static const char  hex[] = "0123456789abcdef";

    /* the random digits of 25 ids per getrandom() (a system call per
     * command showed in its cost); up to 256 bytes it is never cut
     * short */
    static unsigned char  pool[25 * WH_CMD_ID_RANDOM];
    static size_t         used = sizeof(pool);

    if (used == sizeof(pool)) {
        if (getrandom(pool, sizeof(pool), 0) != (ssize_t) sizeof(pool)) {
            return -1;
        }

        used = 0;
    }

    r = pool + used;
    used += WH_CMD_ID_RANDOM;

    ms = (uint64_t) wh_time_ms();
    out[0] = prefix;
    out[1] = '-';

    for (i = WH_CMD_ID_TIME - 1; i >= 0; i--) {
        out[2 + i] = hex[ms & 0xf];
        ms >>= 4;
    }

    for (i = 0; i < WH_CMD_ID_RANDOM; i++) {
        out[2 + WH_CMD_ID_TIME + i] = hex[r[i] & 0xf];
    }

    out[2 + WH_CMD_ID_TIME + WH_CMD_ID_RANDOM] = '\0';

    return 0;
}


/* a string member of 1 to max bytes into *out; a message for a 400 */
static const char *
wh_cmd_parse_key(json_t *body, const char *key, size_t max, wh_str_t *out,
    const char *bad)
{
    json_t  *v;

    v = json_object_get(body, key);

    if (v == NULL) {
        return NULL;
    }

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > max)
    {
        return bad;
    }

    out->data = json_string_value(v);
    out->len = json_string_length(v);

    return NULL;
}


/* "not_before": an ISO-8601 UTC time; a message for a 400 */
const char *
wh_cmd_parse_not_before(json_t *body, int64_t *ms)
{
    json_t  *v;

    v = json_object_get(body, "not_before");
    *ms = 0;

    if (v == NULL || json_is_null(v)) {
        return NULL;
    }

    if (!json_is_string(v)
        || wh_time_parse_iso(json_string_value(v), json_string_length(v),
                             ms) != 0)
    {
        return "\"not_before\" must be a UTC time like "
               "2026-12-24T02:00:00Z";
    }

    return NULL;
}


/* the fields of POST /clients/{id}/commands; a message for a 400 */
static const char *
wh_cmd_parse_create(json_t *body, wh_str_t *strs, unsigned *priority,
    int64_t *ttl_ms, int64_t *not_before_ms)
{
    json_t      *v;
    const char  *bad;

    bad = wh_cmd_parse_key(body, "lane", WH_CMD_IDEM_MAX, &strs[9],
                           "\"lane\" must be a string of 1 to 128 bytes");

    if (bad == NULL) {
        bad = wh_cmd_parse_key(body, "supersede_key", WH_CMD_IDEM_MAX,
                               &strs[10], "\"supersede_key\" must be a "
                               "string of 1 to 128 bytes");
    }

    if (bad == NULL) {
        bad = wh_cmd_parse_not_before(body, not_before_ms);
    }

    if (bad != NULL) {
        return bad;
    }

    v = json_object_get(body, "command");

    if (!json_is_string(v) || !wh_message_type_valid(json_string_value(v),
                                                     json_string_length(v)))
    {
        return "\"command\" must be a name of 1 to 128 characters";
    }

    strs[3].data = json_string_value(v);
    strs[3].len = json_string_length(v);

    v = json_object_get(body, "priority");
    *priority = WH_CMD_PRIORITY_DEF;

    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) >= WH_CMD_PRIORITIES)
        {
            return "\"priority\" must be an integer from 0 to 9";
        }

        *priority = (unsigned) json_integer_value(v);
    }

    v = json_object_get(body, "ttl");
    *ttl_ms = 0;

    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1
            || json_integer_value(v) > WH_CMD_TTL_MAX_S)
        {
            return "\"ttl\" must be 1 to 2592000 seconds";
        }

        *ttl_ms = (int64_t) json_integer_value(v) * WH_MS_PER_S;
    }

    v = json_object_get(body, "idempotency_key");

    if (v != NULL) {
        if (!json_is_string(v) || json_string_length(v) == 0
            || json_string_length(v) > WH_CMD_IDEM_MAX)
        {
            return "\"idempotency_key\" must be a string of 1 to 128 "
                   "bytes";
        }

        strs[5].data = json_string_value(v);
        strs[5].len = json_string_length(v);
    }

    return NULL;
}


static int
wh_cmd_key_is(wh_str_t key, const char *name)
{
    return key.len == strlen(name) && memcmp(key.data, name, key.len) == 0;
}


/* a string field of min to max bytes without escapes: 1, else 0 */
static int
wh_cmd_plain_field(wh_str_t v, size_t min, size_t max, wh_str_t *s)
{
    return wh_json_plain_string(v, s) && s->len >= min && s->len <= max;
}


/* a non-negative integer written in at most digits digits: 1, else 0 */
static int
wh_cmd_plain_integer(wh_str_t v, size_t digits, int64_t *out)
{
    size_t  i;

    if (v.len == 0 || v.len > digits) {
        return 0;
    }

    for (*out = 0, i = 0; i < v.len; i++) {
        if (v.data[i] < '0' || v.data[i] > '9') {
            return 0;
        }

        *out = *out * 10 + (v.data[i] - '0');
    }

    return 1;
}


/* one member of a create body into the fields: 1 if its value is as
 * wh_cmd_parse_create() takes it, else 0 */
static int
wh_cmd_scan_member(wh_str_t k, wh_str_t v, wh_str_t *strs,
    unsigned *priority, int64_t *ttl_ms, int64_t *not_before_ms)
{
    int64_t   n;
    wh_str_t  t;

    if (wh_cmd_key_is(k, "command")) {
        return wh_cmd_plain_field(v, 1, SIZE_MAX, &strs[3])
               && wh_message_type_valid(strs[3].data, strs[3].len);
    }

    if (wh_cmd_key_is(k, "payload")) {
        strs[4] = v;
        return 1;
    }

    if (wh_cmd_key_is(k, "priority")) {
        if (!wh_cmd_plain_integer(v, 1, &n)) {
            return 0;
        }

        *priority = (unsigned) n;
        return 1;
    }

    if (wh_cmd_key_is(k, "ttl")) {
        if (!wh_cmd_plain_integer(v, 7, &n) || n < 1
            || n > WH_CMD_TTL_MAX_S)
        {
            return 0;
        }

        *ttl_ms = n * WH_MS_PER_S;
        return 1;
    }

    if (wh_cmd_key_is(k, "idempotency_key")) {
        return wh_cmd_plain_field(v, 1, WH_CMD_IDEM_MAX, &strs[5]);
    }

    if (wh_cmd_key_is(k, "lane")) {
        return wh_cmd_plain_field(v, 1, WH_CMD_IDEM_MAX, &strs[9]);
    }

    if (wh_cmd_key_is(k, "supersede_key")) {
        return wh_cmd_plain_field(v, 1, WH_CMD_IDEM_MAX, &strs[10]);
    }

    if (wh_cmd_key_is(k, "not_before")) {
        if (v.len == 4 && memcmp(v.data, "null", 4) == 0) {
            return 1;
        }

        return wh_cmd_plain_field(v, 1, SIZE_MAX, &t)
               && wh_time_parse_iso(t.data, t.len, not_before_ms) == 0;
    }

    /* what the parser does not ask for it does not check either */
    return 1;
}


/*
 * The fields of a create body without building it, when it is plain: a
 * JSON object, no member name twice at any depth, no escape in a name or
 * in a string field, no \u0000 anywhere, every field valid.  1 when it
 * read them all; 0 sends the body to jansson and wh_cmd_parse_create(),
 * whose answers (a 400 above all) are the only ones.
 */
static int
wh_cmd_scan_create(const wh_link_msg_t *m, wh_str_t *strs,
    unsigned *priority, int64_t *ttl_ms, int64_t *not_before_ms)
{
    wh_str_t     k, v, text;
    const char  *pos, *end;

    if (m->body.len > WH_CMD_BODY_MAX
        || !wh_json_check(m->body.data, m->body.len)
        || memmem(m->body.data, m->body.len, "\\u0000", 6) != NULL
        || wh_json_unique(m->body.data, m->body.len) != 1)
    {
        return 0;
    }

    text = wh_json_trim(m->body.data, m->body.len);

    if (text.data[0] != '{') {
        return 0;
    }

    *priority = WH_CMD_PRIORITY_DEF;
    *ttl_ms = 0;
    *not_before_ms = 0;
    strs[4].data = "{}";
    strs[4].len = 2;

    pos = text.data;
    end = text.data + text.len;

    while (wh_json_next_member(&pos, end, &k, &v)) {
        if (memchr(k.data, '\\', k.len) != NULL
            || !wh_cmd_scan_member(k, v, strs, priority, ttl_ms,
                                   not_before_ms))
        {
            return 0;
        }
    }

    return strs[3].len != 0;
}


/*
 * The Idempotency-Key header, which the module forwards as the
 * idempotency_key query argument: the body's key when it has none, and
 * the same one when it has.  NULL, or why the command is refused.
 */
static const char *
wh_cmd_idem_header(wh_str_t q, char *buf, wh_str_t *key)
{
    int     rc;
    size_t  len;

    rc = wh_query_get(q, "idempotency_key", buf, WH_CMD_IDEM_MAX + 1, &len);

    if (rc == 0) {
        return NULL;
    }

    if (rc < 0 || len == 0) {
        return "Idempotency-Key must be 1 to 128 bytes";
    }

    if (key->len && (key->len != len || memcmp(key->data, buf, len) != 0)) {
        return "Idempotency-Key and \"idempotency_key\" differ";
    }

    key->data = buf;
    key->len = len;

    return NULL;
}


static void
wh_cmd_create(wh_commands_t *c, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t client_id)
{
    char           id[WH_CMD_NEW_ID_LEN + 1], by[WH_ISSUER_MAX];
    char           idem[WH_CMD_IDEM_MAX + 1];
    json_t        *body = NULL;
    int64_t        ttl_ms, not_before_ms;
    unsigned       priority;
    wh_str_t       strs[12];
    const char    *bad = NULL;
    wh_cmd_op_t   *op;

    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;
    strs[1] = client_id;

    if (!wh_cmd_scan_create(m, strs, &priority, &ttl_ms, &not_before_ms)) {
        memset(&strs[2], 0, sizeof(strs) - 2 * sizeof(wh_str_t));

        body = wh_request_object(peer, m, WH_CMD_BODY_MAX,
                                 "the command is larger than 256 KiB",
                                 "the body must be a JSON object {command, "
                                 "payload, priority, ttl, "
                                 "idempotency_key}");

        if (body == NULL) {
            return;
        }

        /* the payload keeps its bytes; an escaped key is re-encoded */
        if (json_object_get(body, "payload") == NULL) {
            strs[4].data = "{}";
            strs[4].len = 2;
        } else if (!wh_json_member(m->body.data, m->body.len, "payload",
                                   &strs[4]))
        {
            bad = "write the key \"payload\" without escapes";
            goto refused;
        }

        bad = wh_cmd_parse_create(body, strs, &priority, &ttl_ms,
                                  &not_before_ms);
    }

    if (bad == NULL) {
        bad = wh_cmd_idem_header(m->query, idem, &strs[5]);
    }

    if (bad != NULL || wh_cmd_new_id(id, 'c') != 0) {
        goto refused;
    }

    strs[2].data = id;
    strs[2].len = strlen(id);

    wh_issuer(m, by, sizeof(by), &strs[11]);
    op = wh_cmd_op_new(c, WH_CMD_OP_CREATE, strs, 12);
    json_decref(body);

    if (op == NULL) {
        wh_respond_error(peer, m->req_id, 503, "unavailable",
                         "out of memory");
        return;
    }

    op->priority = priority;
    op->ttl_ms = ttl_ms;
    op->not_before_ms = not_before_ms;
    wh_cmd_submit(op, peer, m->req_id);

    return;

refused:

    json_decref(body);
    wh_respond_error(peer, m->req_id, bad ? 400 : 503,
                     bad ? "bad_request" : "unavailable",
                     bad ? bad : "no randomness for a command id");
}


/* status=pending,sent -> a bit per status; -1 if one is unknown */
int
wh_cmd_status_mask(wh_str_t q, unsigned *mask)
{
    int          rc, st;
    char         buf[128];
    size_t       len;
    const char  *p, *end, *comma;

    *mask = 0;
    rc = wh_query_get(q, "status", buf, sizeof(buf), &len);

    if (rc <= 0) {
        return rc;
    }

    for (p = buf, end = buf + len; p < end; p = comma + 1) {
        comma = memchr(p, ',', end - p);
        comma = comma ? comma : end;
        st = wh_cmd_status_parse(p, comma - p);

        if (st < 0) {
            return -1;
        }

        *mask |= 1u << st;
    }

    return 0;
}


/* GET /commands: who issued them (a sub), since when; a message for a
 * 400 */
static const char *
wh_cmd_list_filters(const wh_link_msg_t *m, char *sub, size_t size,
    wh_str_t *by, int64_t *since_ms)
{
    int      rc;
    char     since[64];
    size_t   len;

    if (wh_query_get(m->query, "issued_by", sub, size, &by->len) < 0) {
        return "issued_by must be a token subject";
    }

    by->data = sub;
    rc = wh_query_get(m->query, "since", since, sizeof(since), &len);

    if (rc < 0 || (rc == 1 && wh_time_parse_iso(since, len, since_ms) != 0))
    {
        return "since must be a UTC time like 2026-12-24T02:00:00Z";
    }

    return NULL;
}


/* GET /clients/{id}/commands, or with client_id empty GET /commands (the
 * workspace's): ?status=&limit=&cursor=, and issued_by=&since= */
static void
wh_cmd_list(wh_commands_t *c, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t client_id)
{
    int           rc;
    char          sub[WH_CMD_CLIENT_MAX + 1];
    int64_t       since_ms = 0;
    uint64_t      limit = WH_CMD_LIMIT_DEF, cursor = 0;
    unsigned      mask;
    wh_str_t      strs[12];
    const char   *bad = NULL;
    wh_cmd_op_t  *op;

    memset(strs, 0, sizeof(strs));

    if (wh_cmd_status_mask(m->query, &mask) != 0) {
        bad = "status must list pending, sent, completed, failed, "
              "expired, cancelled or superseded";

    } else if ((rc = wh_query_u64(m->query, "limit", &limit)) < 0
               || limit == 0)
    {
        bad = "limit must be 1 to 1000";

    } else if (wh_query_u64(m->query, "cursor", &cursor) < 0) {
        bad = "invalid cursor";

    } else if (client_id.len == 0) {
        bad = wh_cmd_list_filters(m, sub, sizeof(sub), &strs[11],
                                  &since_ms);
    }

    if (bad != NULL) {
        wh_respond_error(peer, m->req_id, 400, "bad_request", bad);
        return;
    }

    strs[0] = m->workspace;
    strs[1] = client_id;
    op = wh_cmd_op_new(c, client_id.len ? WH_CMD_OP_LIST : WH_CMD_OP_LIST_WS,
                       strs, 12);

    if (op == NULL) {
        wh_respond_error(peer, m->req_id, 503, "unavailable",
                         "out of memory");
        return;
    }

    op->status_mask = mask;
    op->since_ms = since_ms;
    op->limit = limit > WH_CMD_LIMIT_MAX ? WH_CMD_LIMIT_MAX : limit;
    op->cursor = cursor;
    wh_cmd_submit(op, peer, m->req_id);
}


static void
wh_cmd_by_id(wh_commands_t *c, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_cmd_op_e kind, wh_str_t id)
{
    wh_str_t      strs[3];
    wh_cmd_op_t  *op;

    strs[0] = m->workspace;
    strs[1].data = "";
    strs[1].len = 0;
    strs[2] = id;

    op = wh_cmd_op_new(c, kind, strs, 3);

    if (op == NULL) {
        wh_respond_error(peer, m->req_id, 503, "unavailable",
                         "out of memory");
        return;
    }

    wh_cmd_submit(op, peer, m->req_id);
}


static int
wh_path_starts(wh_str_t path, const char *prefix, wh_str_t *rest)
{
    size_t  n = strlen(prefix);

    if (path.len < n || memcmp(path.data, prefix, n) != 0) {
        return 0;
    }

    rest->data = path.data + n;
    rest->len = path.len - n;

    return 1;
}


/* /clients/{id}/commands: 1 and the id */
static int
wh_cmd_client_path(wh_str_t path, wh_str_t *client_id)
{
    const char  *slash;
    wh_str_t     rest;

    if (!wh_path_starts(path, "/clients/", &rest)
        || (slash = memchr(rest.data, '/', rest.len)) == NULL
        || rest.data + rest.len - slash != sizeof("/commands") - 1
        || memcmp(slash, "/commands", sizeof("/commands") - 1) != 0)
    {
        return 0;
    }

    client_id->data = rest.data;
    client_id->len = slash - rest.data;

    return 1;
}


int
wh_commands_api_path(wh_str_t path)
{
    wh_str_t  rest;

    return (path.len == sizeof("/commands") - 1
            && memcmp(path.data, "/commands", path.len) == 0)
           || wh_path_starts(path, "/commands/", &rest)
           || wh_cmd_client_path(path, &rest);
}


void
wh_commands_api(wh_commands_t *c, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t path)
{
    wh_str_t  rest, client_id;

    if (path.len == sizeof("/commands") - 1) {
        if (wh_method_is(m, "GET")) {
            rest.data = "";
            rest.len = 0;
            wh_cmd_list(c, peer, m, rest);
            return;
        }

        wh_respond_error(peer, m->req_id, 405, "method_not_allowed",
                         "use GET");
        return;
    }

    if (wh_path_starts(path, "/commands/", &rest) && rest.len
        && memchr(rest.data, '/', rest.len) == NULL)
    {
        if (wh_method_is(m, "GET")) {
            wh_cmd_by_id(c, peer, m, WH_CMD_OP_GET, rest);
            return;
        }

        if (wh_method_is(m, "DELETE")) {
            wh_cmd_by_id(c, peer, m, WH_CMD_OP_CANCEL, rest);
            return;
        }

        wh_respond_error(peer, m->req_id, 405, "method_not_allowed",
                         "use GET or DELETE");
        return;
    }

    if (wh_cmd_client_path(path, &client_id)) {
        if (!wh_client_id_valid(client_id.data, client_id.len)) {
            wh_respond_error(peer, m->req_id, 404, "not_found",
                             "no such client");
            return;
        }

        if (wh_method_is(m, "POST")) {
            wh_cmd_create(c, peer, m, client_id);
            return;
        }

        if (wh_method_is(m, "GET")) {
            wh_cmd_list(c, peer, m, client_id);
            return;
        }

        wh_respond_error(peer, m->req_id, 405, "method_not_allowed",
                         "use POST or GET");
        return;
    }

    wh_respond_error(peer, m->req_id, 404, "not_found",
                     "no such resource");
}


/* --------------------------------------------------- COMMAND_RESULT */


/* the fields of a command_result; a message for a 400 */
static const char *
wh_cmd_parse_result(const wh_link_msg_t *m, json_t *body, wh_str_t *strs,
    wh_cmd_status_e *outcome, char **dumped)
{
    json_t  *v;

    v = json_object_get(body, "command_id");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > WH_CMD_ID_MAX)
    {
        return "\"command_id\" is required";
    }

    strs[2].data = json_string_value(v);
    strs[2].len = json_string_length(v);

    v = json_object_get(body, "status");

    if (json_is_string(v) && strcmp(json_string_value(v), "completed") == 0)
    {
        *outcome = WH_CMD_COMPLETED;

    } else if (json_is_string(v)
               && strcmp(json_string_value(v), "failed") == 0)
    {
        *outcome = WH_CMD_FAILED;

    } else {
        return "\"status\" must be completed or failed";
    }

    if (json_object_get(body, "result") != NULL
        && !wh_json_member(m->body.data, m->body.len, "result", &strs[6]))
    {
        return "write the key \"result\" without escapes";
    }

    v = json_object_get(body, "error");

    if (json_is_string(v)) {
        strs[7].data = json_string_value(v);
        strs[7].len = json_string_length(v);

    } else if (v != NULL) {
        *dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        strs[7].data = *dumped ? *dumped : "";
        strs[7].len = *dumped ? strlen(*dumped) : 0;
    }

    return NULL;
}


/*
 * The common result without jansson: nginx read it before sending it,
 * with jansson or with the same checks without a tree (an object, valid
 * JSON, duplicate keys refused), so the scanner finds its members.
 * 1 when command_id, status and error are strings without escapes and no
 * key is escaped (strs and outcome are then set as the parse would set
 * them); 0 sends the result to jansson, which gives the same answers and
 * the errors.
 */
static int
wh_cmd_scan_result(const wh_link_msg_t *m, wh_str_t *strs,
    wh_cmd_status_e *outcome)
{
    wh_str_t                  v[4], s;
    static const char *const  names[] = { "command_id", "status", "result",
                                          "error" };

    if (!wh_json_members(m->body.data, m->body.len, names, v, 4)
        || !wh_json_plain_string(v[0], &strs[2])
        || strs[2].len == 0 || strs[2].len > WH_CMD_ID_MAX
        || !wh_json_plain_string(v[1], &s)
        || (v[3].len && !wh_json_plain_string(v[3], &strs[7])))
    {
        return 0;
    }

    if (wh_cmd_key_is(s, "completed")) {
        *outcome = WH_CMD_COMPLETED;

    } else if (wh_cmd_key_is(s, "failed")) {
        *outcome = WH_CMD_FAILED;

    } else {
        return 0;
    }

    strs[6] = v[2];

    return 1;
}


int
wh_commands_result(wh_commands_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    char             *dumped = NULL;
    json_t           *body;
    wh_str_t          strs[9];
    const char       *bad;
    wh_cmd_op_t      *op;
    wh_cmd_status_e   outcome = WH_CMD_COMPLETED;

    if (!wh_workspace_valid(m->workspace.data, m->workspace.len)
        || m->client_id.len == 0 || m->client_id.len > WH_CMD_CLIENT_MAX)
    {
        return -1;
    }

    if (m->body.len > WH_CMD_BODY_MAX) {
        wh_respond_error(peer, m->req_id, 413, "too_large",
                         "the result is larger than 256 KiB");
        return 0;
    }

    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;
    strs[1] = m->client_id;
    strs[8] = m->session;
    body = NULL;
    bad = NULL;

    if (!wh_cmd_scan_result(m, strs, &outcome)) {
        memset(strs + 2, 0, 6 * sizeof(wh_str_t));
        outcome = WH_CMD_COMPLETED;
        body = json_loadb(m->body.data, m->body.len, JSON_REJECT_DUPLICATES,
                          NULL);
        bad = json_is_object(body)
              ? wh_cmd_parse_result(m, body, strs, &outcome, &dumped)
              : "the result must be a JSON object";
    }

    if (bad != NULL) {
        json_decref(body);
        free(dumped);
        wh_respond_error(peer, m->req_id, 400, "bad_request", bad);
        return 0;
    }

    op = wh_cmd_op_new(c, WH_CMD_OP_RESULT, strs, 9);
    json_decref(body);
    free(dumped);

    if (op == NULL) {
        wh_respond_error(peer, m->req_id, 503, "unavailable",
                         "out of memory");
        return 0;
    }

    op->reported = outcome;
    wh_cmd_submit(op, peer, m->req_id);

    return 0;
}
