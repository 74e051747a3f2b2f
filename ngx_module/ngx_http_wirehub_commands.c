
/*
 * Wirehub: the module's part of the durable command queue and the clients
 * registry.  wirehubd owns the queue; a worker delivers a COMMAND to the
 * session wirehubd names, carries command_result back, closes sessions
 * wirehubd kicks (revoked, replaced, disconnected), and delivers workspace
 * broadcasts.
 * The revocations wirehubd announces are kept by the authorization.
 */


#include "ngx_http_wirehub_commands.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_presence.h"
#include "ngx_http_wirehub_reply.h"
#include "wh_json.h"
#include "wh_time.h"


/* bytes of a command id, as wirehubd gives them (WH_CMD_ID_MAX) */
#define NGX_HTTP_WIREHUB_MAX_COMMAND_ID  64


/* a result's command id and ref, as JSON text, until wirehubd answers */
typedef struct {
    ngx_str_t    id;
    ngx_str_t    ref;       /* len 0: the result had none */
} ngx_http_wirehub_result_note_t;


static ngx_int_t ngx_http_wirehub_result_send(ngx_http_wirehub_session_t *s,
    ngx_str_t *raw, wh_str_t id, wh_str_t ref);
static ngx_int_t ngx_http_wirehub_result_error(
    ngx_http_wirehub_session_t *s, const char *code, const char *message,
    wh_str_t ref);
static void ngx_http_wirehub_result_reply(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m);
static ngx_int_t ngx_http_wirehub_result_accepted(
    ngx_http_wirehub_session_t *s, ngx_http_wirehub_result_note_t *note,
    wh_link_msg_t *m);


/* COMMAND: the device_command JSON, built by wirehubd, to one session */

void
ngx_http_wirehub_command(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m)
{
    ngx_http_wirehub_session_t  *s;

    s = ngx_http_wirehub_session_find(wmcf, &m->session);

    if (s == NULL || s->closed || s->close_sent) {
        /* gone meanwhile: wirehubd sends it again after ack_timeout */
        return;
    }

    (void) ngx_http_wirehub_send_text(s, (u_char *) m->body.data,
                                      m->body.len);
}


/*
 * SESSION_KICK: the client was deleted (4403), replaced (4408) or
 * disconnected by an operator (4409, the reason "retry_after=N"); the
 * code and reason are wirehubd's
 */

void
ngx_http_wirehub_session_kick(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m)
{
    char                         reason[124];
    ngx_http_wirehub_session_t  *s;

    s = ngx_http_wirehub_session_find(wmcf, &m->session);

    if (s == NULL || s->closed) {
        return;
    }

    ngx_cpystrn((u_char *) reason, (u_char *) m->reason.data,
                ngx_min(m->reason.len + 1, sizeof(reason)));

    ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                  "wirehub: session closed by wirehubd (%ui %s)",
                  (ngx_uint_t) m->status, reason);

    ngx_http_wirehub_session_close(s, m->status, reason);
}


/*
 * {"type":"command_result","command_id":...,"status":"completed"|"failed",
 *  "result":{...}|"error":"..."}: wirehubd checks that the command is this
 * client's and still open; what it answers goes back to the client.
 * Most results are read without a tree (the plain handler); jansson reads
 * the rest and gives the errors.
 */

ngx_int_t
ngx_http_wirehub_command_result(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref, ngx_str_t *raw)
{
    char       *idt, *reft;
    json_t     *id, *status;
    wh_str_t    id_text, ref_text;
    ngx_int_t   rc;

    id = json_object_get(msg, "command_id");
    status = json_object_get(msg, "status");

    if (!json_is_string(id) || json_string_length(id) == 0
        || json_string_length(id) > NGX_HTTP_WIREHUB_MAX_COMMAND_ID
        || !json_is_string(status)
        || (ngx_strcmp(json_string_value(status), "completed") != 0
            && ngx_strcmp(json_string_value(status), "failed") != 0))
    {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "\"command_id\" and \"status\" (completed or failed) "
                   "are required", ref);
    }

    idt = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
    reft = ref ? json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    id_text.data = idt;
    id_text.len = idt ? ngx_strlen(idt) : 0;
    ref_text.data = reft;
    ref_text.len = reft ? ngx_strlen(reft) : 0;

    rc = ngx_http_wirehub_result_send(s, raw, id_text, ref_text);

    free(idt);
    free(reft);

    return rc;
}


/*
 * The same read by a scan: "command_id" and "status" strings without
 * escapes, the status completed or failed; anything else (and the
 * errors) is jansson's.  ref is the text of the message's "ref", a
 * string without escapes, or empty.
 */

ngx_int_t
ngx_http_wirehub_command_result_plain(ngx_http_wirehub_session_t *s,
    ngx_str_t *raw, wh_str_t ref)
{
    wh_str_t                  v[2], id, status;
    static const char *const  names[] = { "command_id", "status" };

    if (!wh_json_members((char *) raw->data, raw->len, names, v, 2)
        || !wh_json_plain_string(v[0], &id)
        || id.len == 0 || id.len > NGX_HTTP_WIREHUB_MAX_COMMAND_ID
        || !wh_json_plain_string(v[1], &status)
        || !(wh_str_eq(status, wh_cstr("completed"))
             || wh_str_eq(status, wh_cstr("failed"))))
    {
        return NGX_DECLINED;
    }

    return ngx_http_wirehub_result_send(s, raw, v[0], ref);
}


/*
 * The result goes to wirehubd as the client wrote it (wirehubd reads it
 * again); the command id and the ref wait with the request as JSON text,
 * for the answer.
 */

static ngx_int_t
ngx_http_wirehub_result_send(ngx_http_wirehub_session_t *s, ngx_str_t *raw,
    wh_str_t id, wh_str_t ref)
{
    wh_link_msg_t                     m;
    ngx_http_wirehub_pending_t       *p;
    ngx_http_wirehub_result_note_t   *note;

    ngx_memzero(&m, sizeof(wh_link_msg_t));
    m.type = WH_LINK_COMMAND_RESULT;
    m.workspace.data = (char *) s->identity->workspace.data;
    m.workspace.len = s->identity->workspace.len;
    m.client_id.data = (char *) s->identity->client_id.data;
    m.client_id.len = s->identity->client_id.len;
    m.session.data = (char *) s->id_node.str.data;
    m.session.len = s->id_node.str.len;
    /* the client's bytes: wirehubd parses the result itself */
    m.body.data = (char *) raw->data;
    m.body.len = raw->len;

    p = ngx_http_wirehub_link_request(s->main_conf, &m,
                                      ngx_http_wirehub_result_reply, s);

    if (p == NULL) {
        return ngx_http_wirehub_result_error(s, "unavailable",
                   "wirehubd is not reachable, send the result again", ref);
    }

    /* without it, the answer names no command and no ref */

    note = ngx_alloc(sizeof(ngx_http_wirehub_result_note_t) + id.len
                     + ref.len, s->connection->log);

    if (note) {
        note->id.data = (u_char *) note
                        + sizeof(ngx_http_wirehub_result_note_t);
        note->id.len = id.len;
        note->ref.data = note->id.data + id.len;
        note->ref.len = ref.len;
        /* an empty one may have no data at all */

        if (id.len) {
            ngx_memcpy(note->id.data, id.data, id.len);
        }

        if (ref.len) {
            ngx_memcpy(note->ref.data, ref.data, ref.len);
        }
    }

    p->note = note;
    ngx_queue_insert_tail(&s->pending, &p->queue);

    return NGX_OK;
}


/* an error that carries the client's ref, held as its JSON text */

static ngx_int_t
ngx_http_wirehub_result_error(ngx_http_wirehub_session_t *s,
    const char *code, const char *message, wh_str_t ref)
{
    json_t     *r;
    ngx_int_t   rc;

    r = ref.len ? json_loadb(ref.data, ref.len, JSON_DECODE_ANY, NULL)
                : NULL;
    rc = ngx_http_wirehub_send_client_error(s, code, message, r);
    json_decref(r);

    return rc;
}


/*
 * {"type":"command_result_accepted","command_id":..,"status":..,
 *  "timestamp":..[,"ref":..]}, the status as wirehubd wrote it: written
 * by hand, as every result is answered (a jansson object parsed, built
 * and printed each time showed in the cost of a command)
 */
static ngx_int_t
ngx_http_wirehub_result_accepted(ngx_http_wirehub_session_t *s,
    ngx_http_wirehub_result_note_t *note, wh_link_msg_t *m)
{
    char       iso[WH_TIME_ISO_LEN + 1];
    u_char    *text, *last;
    size_t     len;
    wh_str_t   status;
    ngx_str_t  id, ref;
    ngx_int_t  rc;

    if (wh_json_member(m->body.data, m->body.len, "status", &status) != 1) {
        status.data = "null";
        status.len = 4;
    }

    ngx_str_set(&id, "null");
    ngx_str_null(&ref);

    if (note) {
        id = note->id.len ? note->id : id;
        ref = note->ref;
    }

    wh_time_iso(iso, wh_time_ms());

    len = sizeof("{\"type\":\"command_result_accepted\",\"command_id\":"
                 ",\"status\":,\"timestamp\":\"\",\"ref\":}")
          + id.len + status.len + WH_TIME_ISO_LEN + ref.len;

    text = ngx_alloc(len, s->connection->log);

    if (text == NULL) {
        return NGX_ERROR;
    }

    last = ngx_snprintf(text, len, "{\"type\":\"command_result_accepted\","
                        "\"command_id\":%V,\"status\":%*s,"
                        "\"timestamp\":\"%s\"", &id, status.len,
                        status.data, iso);

    if (ref.len) {
        last = ngx_snprintf(last, len - (last - text), ",\"ref\":%V", &ref);
    }

    *last++ = '}';

    rc = ngx_http_wirehub_send_text(s, text, last - text);

    ngx_free(text);

    return rc;
}


static void
ngx_http_wirehub_result_reply(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m)
{
    json_t                          *body, *err, *code, *text;
    wh_str_t                         ref;
    ngx_http_wirehub_session_t      *s;
    ngx_http_wirehub_result_note_t  *note;

    s = p->data;
    note = p->note;
    ref.data = note ? (char *) note->ref.data : NULL;
    ref.len = note ? note->ref.len : 0;

    if (m == NULL) {
        (void) ngx_http_wirehub_result_error(s, "unavailable",
                   "wirehubd went away, send the result again", ref);
        return;
    }

    if (m->status >= 200 && m->status < 300) {
        (void) ngx_http_wirehub_result_accepted(s, note, m);
        return;
    }

    body = json_loadb(m->body.data, m->body.len, 0, NULL);

    /* wirehubd's {"error":{"code","message"}} goes to the client as is */

    err = body ? json_object_get(body, "error") : NULL;
    code = err ? json_object_get(err, "code") : NULL;
    text = err ? json_object_get(err, "message") : NULL;

    (void) ngx_http_wirehub_result_error(s,
               json_is_string(code) ? json_string_value(code) : "internal",
               json_is_string(text) ? json_string_value(text)
                                    : "the result was not accepted",
               ref);

    json_decref(body);
}


/*
 * BROADCAST: one message (already serialized by wirehubd) to every
 * accepted session of a workspace on this worker, framed once.
 */

void
ngx_http_wirehub_broadcast(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m)
{
    ngx_uint_t                     n;
    ngx_queue_t                   *q;
    ngx_http_wirehub_session_t    *s;
    ngx_http_wirehub_out_frame_t  *frame;

    frame = NULL;
    n = 0;

    for (q = ngx_queue_head(&wmcf->sessions);
         q != ngx_queue_sentinel(&wmcf->sessions);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_http_wirehub_session_t, queue);

        if (s->identity == NULL || !s->accepted || s->close_sent
            || s->identity->workspace.len != m->workspace.len
            || ngx_strncmp(s->identity->workspace.data, m->workspace.data,
                           m->workspace.len) != 0)
        {
            continue;
        }

        if (frame == NULL) {
            frame = ngx_http_wirehub_frame_create(ngx_cycle->log,
                                                  WH_WS_OP_TEXT,
                                                  (u_char *) m->body.data,
                                                  m->body.len);
            if (frame == NULL) {
                return;
            }
        }

        (void) ngx_http_wirehub_send_frame(s, frame);
        n++;
    }

    if (frame) {
        ngx_http_wirehub_frame_release(frame);
    }

    ngx_http_wirehub_stat(wmcf, delivered, n);
}
