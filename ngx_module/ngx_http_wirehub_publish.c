
/*
 * Wirehub: publishing from a WebSocket client.  The message is stored by
 * wirehubd before the client hears "published" and before anyone else
 * receives it.
 */


#include "ngx_http_wirehub_module.h"
#include "wh_channel.h"


static ngx_uint_t ngx_http_wirehub_may_publish(
    ngx_http_wirehub_identity_t *id, const char *name, size_t len);
static void ngx_http_wirehub_published(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m);


static ngx_uint_t
ngx_http_wirehub_may_publish(ngx_http_wirehub_identity_t *id,
    const char *name, size_t len)
{
    ngx_str_t   *pat;
    ngx_uint_t   i;

    /* system channels are written by wirehubd only */

    if (wh_channel_is_system(name, len)) {
        return 0;
    }

    if (id->publish == NULL) {
        return id->role != NGX_HTTP_WIREHUB_ROLE_CLIENT;
    }

    pat = id->publish->elts;

    for (i = 0; i < id->publish->nelts; i++) {
        if (wh_pattern_match((char *) pat[i].data, pat[i].len, name, len)) {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_wirehub_publish(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref)
{
    char                        *body;
    json_t                      *name, *data, *event;
    wh_link_msg_t                m;
    ngx_http_wirehub_pending_t  *p;

    name = json_object_get(msg, "channel");
    data = json_object_get(msg, "data");
    event = json_object_get(msg, "event");

    if (!json_is_string(name)
        || !wh_channel_valid(json_string_value(name),
                             json_string_length(name)))
    {
        return ngx_http_wirehub_send_client_error(s, "bad_channel",
                   "\"channel\" is not a valid channel name", ref);
    }

    if (data == NULL || (event && (!json_is_string(event)
                                   || json_string_length(event) == 0
                                   || json_string_length(event) > 64)))
    {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "\"data\" is required and \"event\" is a short string",
                   ref);
    }

    if (!ngx_http_wirehub_may_publish(s->identity, json_string_value(name),
                                      json_string_length(name)))
    {
        return ngx_http_wirehub_channel_error(s, "forbidden",
                   "the token does not allow publishing here", name, ref);
    }

    body = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    if (body == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&m, sizeof(wh_link_msg_t));
    m.type = WH_LINK_PUBLISH;
    m.workspace.data = (char *) s->identity->workspace.data;
    m.workspace.len = s->identity->workspace.len;
    m.channel.data = json_string_value(name);
    m.channel.len = json_string_length(name);
    m.name.data = event ? json_string_value(event) : "message";
    m.name.len = event ? json_string_length(event) : sizeof("message") - 1;
    m.body.data = body;
    m.body.len = ngx_strlen(body);
    m.client_id.data = (char *) s->identity->client_id.data;
    m.client_id.len = s->identity->client_id.len;

    p = ngx_http_wirehub_link_request(s->main_conf, &m,
                                      ngx_http_wirehub_published, s);
    free(body);

    if (p == NULL) {
        return ngx_http_wirehub_channel_error(s, "unavailable",
                   "wirehubd is not reachable, retry", name, ref);
    }

    p->info = json_pack("{s:O}", "channel", name);
    if (p->info && ref) {
        json_object_set(p->info, "ref", ref);
    }

    ngx_queue_insert_tail(&s->pending, &p->queue);

    return NGX_OK;
}


static void
ngx_http_wirehub_published(ngx_http_wirehub_pending_t *p, wh_link_msg_t *m)
{
    json_t                      *ref, *name;
    const char                  *code;
    ngx_http_wirehub_session_t  *s;

    s = p->data;
    ref = p->info ? json_object_get(p->info, "ref") : NULL;
    name = p->info ? json_object_get(p->info, "channel") : NULL;

    if (m == NULL || m->status != 0) {
        code = (m == NULL || m->status == 503 || m->status == 507)
               ? "unavailable"
               : (m->status == 400 ? "bad_request"
                  : (m->status == 403 ? "forbidden"
                     : (m->status == 413 ? "too_large" : "internal")));

        (void) ngx_http_wirehub_channel_error(s, code,
                   m ? "wirehubd refused the message"
                     : "wirehubd went away before the message was stored",
                   name ? name : json_null(), ref);
        return;
    }

    (void) ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:O,s:I,s:s%,s:o}", "type", "published",
                         "channel", name ? name : json_null(),
                         "id", (json_int_t) m->id,
                         "epoch", m->epoch.data, m->epoch.len,
                         "timestamp", ngx_http_wirehub_timestamp()),
               ref);
}
