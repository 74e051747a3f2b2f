
/*
 * Wirehub: the module's part of the durable command queue and the clients
 * registry.  wirehubd owns the queue; a worker delivers a COMMAND to the
 * session wirehubd names, carries command_result back, closes sessions
 * wirehubd kicks (revoked, replaced), and keeps the revocations it is told
 * of so that a deleted client's tokens are refused at the handshake.
 */


#include "ngx_http_wirehub_module.h"
#include "wh_channel.h"


typedef struct {
    ngx_str_node_t                   node;       /* workspace NUL client */
    time_t                           before;     /* iat below it: refused */
} ngx_http_wirehub_revoked_t;


static void ngx_http_wirehub_result_reply(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m);
static ngx_int_t ngx_http_wirehub_revocation_key(ngx_str_t *ws,
    ngx_str_t *client, u_char *buf, ngx_str_t *key);


void
ngx_http_wirehub_commands_init(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_rbtree_init(&wmcf->revoked, &wmcf->revoked_sentinel,
                    ngx_str_rbtree_insert_value);
}


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


/* SESSION_KICK: the client was deleted (4403) or replaced (4408) */

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
 */

ngx_int_t
ngx_http_wirehub_command_result(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref)
{
    char                        *body;
    json_t                      *id, *status;
    wh_link_msg_t                m;
    ngx_http_wirehub_pending_t  *p;

    id = json_object_get(msg, "command_id");
    status = json_object_get(msg, "status");

    if (!json_is_string(id) || json_string_length(id) == 0
        || json_string_length(id) > 64
        || !json_is_string(status)
        || (ngx_strcmp(json_string_value(status), "completed") != 0
            && ngx_strcmp(json_string_value(status), "failed") != 0))
    {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "\"command_id\" and \"status\" (completed or failed) "
                   "are required", ref);
    }

    body = json_dumps(msg, JSON_COMPACT);
    if (body == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&m, sizeof(wh_link_msg_t));
    m.type = WH_LINK_COMMAND_RESULT;
    m.workspace.data = (char *) s->identity->workspace.data;
    m.workspace.len = s->identity->workspace.len;
    m.client_id.data = (char *) s->identity->client_id.data;
    m.client_id.len = s->identity->client_id.len;
    m.session.data = (char *) s->session_id.data;
    m.session.len = s->session_id.len;
    m.body.data = body;
    m.body.len = ngx_strlen(body);

    p = ngx_http_wirehub_link_request(s->main_conf, &m,
                                      ngx_http_wirehub_result_reply, s);
    free(body);

    if (p == NULL) {
        return ngx_http_wirehub_send_client_error(s, "unavailable",
                   "wirehubd is not reachable, send the result again", ref);
    }

    p->info = json_pack("{s:O}", "command_id", id);
    if (p->info && ref) {
        json_object_set(p->info, "ref", ref);
    }

    ngx_queue_insert_tail(&s->pending, &p->queue);

    return NGX_OK;
}


static void
ngx_http_wirehub_result_reply(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m)
{
    json_t                      *ref, *id, *body, *err, *code, *text, *reply;
    ngx_http_wirehub_session_t  *s;

    s = p->data;
    ref = p->info ? json_object_get(p->info, "ref") : NULL;
    id = p->info ? json_object_get(p->info, "command_id") : NULL;

    if (m == NULL) {
        (void) ngx_http_wirehub_send_client_error(s, "unavailable",
                   "wirehubd went away, send the result again", ref);
        return;
    }

    body = json_loadb(m->body.data, m->body.len, 0, NULL);

    if (m->status >= 200 && m->status < 300) {
        reply = json_pack("{s:s,s:O,s:O,s:o}",
                          "type", "command_result_accepted",
                          "command_id", id ? id : json_null(),
                          "status", body && json_object_get(body, "status")
                                    ? json_object_get(body, "status")
                                    : json_null(),
                          "timestamp", ngx_http_wirehub_timestamp());
        json_decref(body);
        (void) ngx_http_wirehub_reply(s, reply, ref);
        return;
    }

    /* wirehubd's {"error":{"code","message"}} goes to the client as is */

    err = body ? json_object_get(body, "error") : NULL;
    code = err ? json_object_get(err, "code") : NULL;
    text = err ? json_object_get(err, "message") : NULL;

    (void) ngx_http_wirehub_send_client_error(s,
               json_is_string(code) ? json_string_value(code) : "internal",
               json_is_string(text) ? json_string_value(text)
                                    : "the result was not accepted",
               ref);

    json_decref(body);
}


static ngx_int_t
ngx_http_wirehub_revocation_key(ngx_str_t *ws, ngx_str_t *client,
    u_char *buf, ngx_str_t *key)
{
    u_char  *p;

    if (ws->len > WH_WORKSPACE_MAX || client->len > 255) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(buf, ws->data, ws->len);
    *p++ = '\0';
    p = ngx_cpymem(p, client->data, client->len);

    key->data = buf;
    key->len = p - buf;

    return NGX_OK;
}


/* REVOKE: tokens of this client issued before id2 (seconds) are refused */

void
ngx_http_wirehub_revoke(ngx_http_wirehub_main_conf_t *wmcf, wh_link_msg_t *m)
{
    u_char                      buf[WH_WORKSPACE_MAX + 257];
    uint32_t                    hash;
    ngx_str_t                   ws, client, key;
    ngx_http_wirehub_revoked_t *rv;

    ws.data = (u_char *) m->workspace.data;
    ws.len = m->workspace.len;
    client.data = (u_char *) m->client_id.data;
    client.len = m->client_id.len;

    if (ngx_http_wirehub_revocation_key(&ws, &client, buf, &key) != NGX_OK) {
        return;
    }

    hash = ngx_crc32_short(key.data, key.len);

    rv = (ngx_http_wirehub_revoked_t *)
             ngx_str_rbtree_lookup(&wmcf->revoked, &key, hash);

    if (rv) {
        rv->before = ngx_max(rv->before, (time_t) m->id2);
        return;
    }

    rv = ngx_alloc(sizeof(ngx_http_wirehub_revoked_t) + key.len,
                   ngx_cycle->log);
    if (rv == NULL) {
        return;
    }

    rv->node.str.data = (u_char *) (rv + 1);
    rv->node.str.len = key.len;
    ngx_memcpy(rv->node.str.data, key.data, key.len);
    rv->node.node.key = hash;
    rv->before = (time_t) m->id2;

    ngx_rbtree_insert(&wmcf->revoked, &rv->node.node);
}


ngx_int_t
ngx_http_wirehub_is_revoked(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_identity_t *id)
{
    u_char                      buf[WH_WORKSPACE_MAX + 257];
    ngx_str_t                   key;
    ngx_http_wirehub_revoked_t *rv;

    if (wmcf->revoked.root == wmcf->revoked.sentinel) {
        return 0;
    }

    if (ngx_http_wirehub_revocation_key(&id->workspace, &id->client_id, buf,
                                        &key)
        != NGX_OK)
    {
        return 0;
    }

    rv = (ngx_http_wirehub_revoked_t *)
             ngx_str_rbtree_lookup(&wmcf->revoked, &key,
                                   ngx_crc32_short(key.data, key.len));

    return rv != NULL && id->iat < rv->before;
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
                                                  NGX_HTTP_WIREHUB_OP_TEXT,
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
