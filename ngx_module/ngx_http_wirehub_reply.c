
/*
 * Wirehub: the protocol's own messages to a client (errors, pongs, status,
 * the echo of "ref"), as JSON text frames.
 */


#include "ngx_http_wirehub_reply.h"
#include "wh_time.h"


/* connection_status at its longest: the names, a session id, the figures */
#define NGX_HTTP_WIREHUB_STATUS_LEN  512


static ngx_int_t ngx_http_wirehub_send_json(ngx_http_wirehub_session_t *s,
    json_t *msg);


json_t *
ngx_http_wirehub_timestamp(void)
{
    char  iso[WH_TIME_ISO_LEN + 1];

    wh_time_iso(iso, wh_time_ms());

    return json_string(iso);
}


ngx_int_t
ngx_http_wirehub_reply(ngx_http_wirehub_session_t *s, json_t *reply,
    json_t *ref)
{
    ngx_int_t  rc;

    if (reply == NULL) {
        return NGX_ERROR;
    }

    if (ref && json_object_set(reply, "ref", ref) != 0) {
        json_decref(reply);
        return NGX_ERROR;
    }

    rc = ngx_http_wirehub_send_json(s, reply);
    json_decref(reply);

    return rc;
}


static ngx_int_t
ngx_http_wirehub_send_json(ngx_http_wirehub_session_t *s, json_t *msg)
{
    char       *text;
    ngx_int_t   rc;

    text = json_dumps(msg, JSON_COMPACT);
    if (text == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_wirehub_send_text(s, (u_char *) text, ngx_strlen(text));
    free(text);

    return rc;
}


ngx_int_t
ngx_http_wirehub_send_client_error(ngx_http_wirehub_session_t *s,
    const char *code, const char *message, json_t *ref)
{
    return ngx_http_wirehub_reply(s,
               json_pack("{s:s,s:s,s:s,s:o}", "type", "error", "code", code,
                         "message", message,
                         "timestamp", ngx_http_wirehub_timestamp()),
               ref);
}


/*
 * Printed, not built: it is sent on every connection.  The client id and
 * the workspace are names of [A-Za-z0-9_.:@-] (the token's claims were
 * checked) and the session id is ours, so nothing needs escaping.
 */

ngx_int_t
ngx_http_wirehub_send_connection_status(ngx_http_wirehub_session_t *s,
    ngx_uint_t active_clients)
{
    u_char                       *p, *last;
    u_char                        text[NGX_HTTP_WIREHUB_STATUS_LEN];
    char                          iso[WH_TIME_ISO_LEN + 1];
    ngx_http_wirehub_identity_t  *id;

    id = s->identity;
    last = text + sizeof(text);

    wh_time_iso(iso, wh_time_ms());

    p = ngx_slprintf(text, last,
                     "{\"type\":\"connection_status\",\"data\":{"
                     "\"status\":\"connected\",\"client_id\":\"%V\","
                     "\"workspace\":\"%V\",\"session\":\"%V\","
                     "\"active_clients\":%ui",
                     &id->client_id, &id->workspace, &s->id_node.str,
                     active_clients);

    /* the token's exp: a client refreshes in band before it (no exp: none) */

    if (id->exp) {
        p = ngx_slprintf(p, last, ",\"exp\":%T", id->exp);
    }

    p = ngx_slprintf(p, last, "},\"timestamp\":\"%s\"}", iso);

    if (p == last) {
        return NGX_ERROR;
    }

    ngx_http_wirehub_greeted(s);

    return ngx_http_wirehub_send_text(s, text, p - text);
}


ngx_int_t
ngx_http_wirehub_channel_error(ngx_http_wirehub_session_t *s,
    const char *code, const char *message, json_t *name, json_t *ref)
{
    json_t  *reply;

    reply = json_pack("{s:s,s:s,s:s,s:O,s:o}", "type", "error", "code", code,
                      "message", message, "channel", name,
                      "timestamp", ngx_http_wirehub_timestamp());

    return ngx_http_wirehub_reply(s, reply, ref);
}
