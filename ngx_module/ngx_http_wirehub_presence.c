
/*
 * Wirehub: sessions as wirehubd sees them.  Every authenticated WebSocket
 * is announced (SESSION_OPEN) and greeted with connection_status only once
 * wirehubd accepted it; after a reconnect of the link every live session
 * is announced again, so that presence and the registry stay true.
 */


#include "ngx_http_wirehub_presence.h"
#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_reply.h"


static ngx_int_t ngx_http_wirehub_session_send_open(
    ngx_http_wirehub_session_t *s);
static void ngx_http_wirehub_sessions_each(ngx_http_wirehub_main_conf_t *wmcf,
    void (*handler)(ngx_http_wirehub_session_t *s));
static void ngx_http_wirehub_session_reopen(ngx_http_wirehub_session_t *s);


static ngx_int_t
ngx_http_wirehub_session_send_open(ngx_http_wirehub_session_t *s)
{
    wh_link_msg_t  m;

    wh_link_session_open(&m, ngx_http_wirehub_wh_ngx_str(&s->id_node.str),
                   ngx_http_wirehub_wh_ngx_str(&s->identity->workspace),
                   ngx_http_wirehub_wh_ngx_str(&s->identity->client_id),
                   ngx_http_wirehub_wh_ngx_str(&s->client_type),
                   ngx_http_wirehub_wh_ngx_str(&s->client_name),
                   (uint64_t) s->identity->iat,
                   (uint32_t) s->conf->max_connections_per_client);

    return ngx_http_wirehub_link_send(s->main_conf, &m);
}


void
ngx_http_wirehub_presence_init(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_rbtree_init(&wmcf->session_ids, &wmcf->session_ids_sentinel,
                    ngx_str_rbtree_insert_value);
}


void
ngx_http_wirehub_session_open(ngx_http_wirehub_session_t *s)
{
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = s->main_conf;

    s->id_node.node.key = ngx_crc32_short(s->id_node.str.data,
                                          s->id_node.str.len);
    ngx_rbtree_insert(&wmcf->session_ids, &s->id_node.node);
    s->opened = 1;

    /* if the link is down now, the next link-up announces the session */

    (void) ngx_http_wirehub_session_send_open(s);
}


void
ngx_http_wirehub_session_update(ngx_http_wirehub_session_t *s)
{
    wh_link_msg_t  m;

    if (!s->opened) {
        return;
    }

    ngx_memzero(&m, sizeof(wh_link_msg_t));

    m.type = WH_LINK_SESSION_UPDATE;
    m.session.data = (char *) s->id_node.str.data;
    m.session.len = s->id_node.str.len;
    m.client_type.data = (char *) s->client_type.data;
    m.client_type.len = s->client_type.len;
    m.name.data = (char *) s->client_name.data;
    m.name.len = s->client_name.len;

    (void) ngx_http_wirehub_link_send(s->main_conf, &m);
}


void
ngx_http_wirehub_session_gone(ngx_http_wirehub_session_t *s,
    const char *reason)
{
    wh_link_msg_t  m;

    if (!s->opened) {
        return;
    }

    s->opened = 0;
    ngx_rbtree_delete(&s->main_conf->session_ids, &s->id_node.node);

    ngx_memzero(&m, sizeof(wh_link_msg_t));

    m.type = WH_LINK_SESSION_CLOSE;
    m.session.data = (char *) s->id_node.str.data;
    m.session.len = s->id_node.str.len;
    m.reason.data = reason;
    m.reason.len = ngx_strlen(reason);

    (void) ngx_http_wirehub_link_send(s->main_conf, &m);
}


static void
ngx_http_wirehub_sessions_each(ngx_http_wirehub_main_conf_t *wmcf,
    void (*handler)(ngx_http_wirehub_session_t *s))
{
    ngx_queue_t  *q;

    for (q = ngx_queue_head(&wmcf->sessions);
         q != ngx_queue_sentinel(&wmcf->sessions);
         q = ngx_queue_next(q))
    {
        handler(ngx_queue_data(q, ngx_http_wirehub_session_t, queue));
    }
}


static void
ngx_http_wirehub_session_reopen(ngx_http_wirehub_session_t *s)
{
    if (s->opened && !s->closed) {
        (void) ngx_http_wirehub_session_send_open(s);
    }
}


void
ngx_http_wirehub_sessions_link_up(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_http_wirehub_sessions_each(wmcf, ngx_http_wirehub_session_reopen);
}


/*
 * The sessions still waiting for SESSION_ACCEPT get their 101 now: the
 * client is not kept waiting for it while wirehubd is away.
 */

void
ngx_http_wirehub_sessions_link_down(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_http_wirehub_sessions_each(wmcf, ngx_http_wirehub_greeted);
}


ngx_http_wirehub_session_t *
ngx_http_wirehub_session_find(ngx_http_wirehub_main_conf_t *wmcf,
    wh_str_t *id)
{
    ngx_str_t        key;
    ngx_str_node_t  *node;

    key.data = (u_char *) id->data;
    key.len = id->len;

    node = ngx_str_rbtree_lookup(&wmcf->session_ids, &key,
                                 ngx_crc32_short(key.data, key.len));
    if (node == NULL) {
        return NULL;
    }

    return (ngx_http_wirehub_session_t *)
               ((u_char *) node
                - offsetof(ngx_http_wirehub_session_t, id_node));
}


void
ngx_http_wirehub_session_accepted(ngx_http_wirehub_main_conf_t *wmcf,
    wh_link_msg_t *m)
{
    char                         reason[124];
    ngx_http_wirehub_session_t  *s;

    s = ngx_http_wirehub_session_find(wmcf, &m->session);

    if (s == NULL || s->closed || s->close_sent) {
        return;
    }

    if (m->status != 0) {
        /* wirehubd refused it: a revoked client, a per-client limit */
        ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                      "wirehub: session refused by wirehubd: %*s",
                      m->reason.len, m->reason.data);
        ngx_cpystrn((u_char *) reason, (u_char *) m->reason.data,
                    ngx_min(m->reason.len + 1, sizeof(reason)));
        ngx_http_wirehub_session_close(s, m->status,
                                       m->reason.len ? reason : "refused");
        return;
    }

    if (s->accepted) {
        /* announced again after a reconnect of the link */
        return;
    }

    s->accepted = 1;

    if (ngx_http_wirehub_send_connection_status(s, m->count) != NGX_OK) {
        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_INTERNAL,
                                       "internal error");
        return;
    }

    if (s->handlers->accepted) {
        s->handlers->accepted(s);
    }
}
