
/*
 * Wirehub: publishing from a WebSocket client.  The message is stored by
 * wirehubd before the client hears "published" and before anyone else
 * receives it.
 */


#include "ngx_http_wirehub_channels.h"
#include "ngx_http_wirehub_authz.h"
#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_reply.h"
#include "wh_channel.h"
#include "wh_json.h"


static void ngx_http_wirehub_published(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m);


ngx_int_t
ngx_http_wirehub_publish(ngx_http_wirehub_session_t *s, json_t *msg,
    json_t *ref, ngx_str_t *raw)
{
    json_t                      *name, *data, *event;
    wh_str_t                     body;
    wh_link_msg_t                m;
    ngx_http_wirehub_pending_t  *p;
    ngx_http_wirehub_denial_t    denial;
    ngx_http_wirehub_resource_t  res;

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
                                   || json_string_length(event)
                                      > NGX_HTTP_WIREHUB_MAX_EVENT)))
    {
        return ngx_http_wirehub_send_client_error(s, "bad_request",
                   "\"data\" is required and \"event\" is a short string",
                   ref);
    }

    ngx_memzero(&res, sizeof(ngx_http_wirehub_resource_t));
    res.channel.data = (u_char *) json_string_value(name);
    res.channel.len = json_string_length(name);

    if (ngx_http_wirehub_authorize(s->main_conf, s->identity,
                                   NGX_HTTP_WIREHUB_ACT_PUBLISH, &res,
                                   &denial, s->connection->log)
        != NGX_OK)
    {
        return ngx_http_wirehub_channel_error(s, denial.code, denial.message,
                                              name, ref);
    }

    /* the client's bytes, as the HTTP API keeps them: no re-encoding */

    if (wh_json_member((char *) raw->data, raw->len, "data", &body) != 1) {
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
    m.body = body;
    m.client_id.data = (char *) s->identity->client_id.data;
    m.client_id.len = s->identity->client_id.len;

    p = ngx_http_wirehub_link_request(s->main_conf, &m,
                                      ngx_http_wirehub_published, s);

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
    size_t                       n;
    u_char                       reason[128];
    json_t                      *ref, *name;
    const char                  *code;
    ngx_http_wirehub_session_t  *s;

    s = p->data;
    ref = p->info ? json_object_get(p->info, "ref") : NULL;
    name = p->info ? json_object_get(p->info, "channel") : NULL;

    if (m != NULL && m->status == NGX_HTTP_TOO_MANY_REQUESTS) {

        /*
         * wirehubd gives a retry time for a rate, none for a quota, and
         * its reason names the limit
         */

        n = ngx_min(m->reason.len, sizeof(reason) - 1);
        ngx_memcpy(reason, m->reason.data, n);
        reason[n] = '\0';

        (void) ngx_http_wirehub_channel_error(s,
                   m->id ? "rate_limited" : "quota_exceeded",
                   (char *) reason, name ? name : json_null(), ref);
        return;
    }

    if (m == NULL || m->status != 0) {
        code = (m == NULL || m->status == NGX_HTTP_SERVICE_UNAVAILABLE
                || m->status == NGX_HTTP_INSUFFICIENT_STORAGE)
               ? "unavailable"
               : (m->status == NGX_HTTP_BAD_REQUEST ? "bad_request"
                  : (m->status == NGX_HTTP_FORBIDDEN ? "forbidden"
                     : (m->status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                        ? "too_large" : "internal")));

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
