/*
 * Sessions and presence.
 */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "wh_channel.h"
#include "jsonw.h"
#include "sessions.h"


#define WH_SESSION_MAX  256     /* bytes of a session string */
#define WH_CLIENT_MAX   256     /* bytes of a client id, type or name */
#define WH_CLKEY_MAX    (WH_WORKSPACE_MAX + 1 + WH_CLIENT_MAX)

/* one per connection a worker holds, so kept small: the strings it is
 * opened with follow it in its allocation, the type and name (which a
 * SESSION_UPDATE changes, and most clients leave empty) are apart */
struct wh_session_s {
    wh_session_t    *next, *prev;      /* in its workspace */
    wh_session_t    *cl_next, *cl_prev;    /* of its client, by age */
    wh_wsinfo_t     *wsi;
    wh_clinfo_t     *cli;
    wh_peer_t       *peer;
    char            *mem;              /* type, then name; or NULL */
    uint16_t         session_len, client_id_len;
    uint16_t         type_len, name_len;
    unsigned char    kicked;           /* SESSION_KICK sent */
    unsigned char    held;             /* SESSION_ACCEPT not sent yet */
    char             str[];            /* session, then client_id */
};

struct wh_wsinfo_s {
    wh_str_t         ws;               /* points into the map key */
    unsigned         count;
    wh_session_t    *head;
};

/* the sessions of one client over all workers, oldest first */
struct wh_clinfo_s {
    wh_map_entry_t  *entry;            /* key: ws "\0" client_id */
    wh_session_t    *head, *tail;
    unsigned         total;
    unsigned         open;             /* not kicked */
};


static wh_str_t
wh_cli_ws(const wh_clinfo_t *cli)
{
    const char  *key = (const char *) cli->entry->key;
    wh_str_t     r = { key, strlen(key) };

    return r;
}


static wh_str_t
wh_cli_client_id(const wh_clinfo_t *cli)
{
    const char  *key = (const char *) cli->entry->key;
    size_t       n = strlen(key) + 1;
    wh_str_t     r = { key + n, cli->entry->klen - n };

    return r;
}


static wh_str_t
wh_se_session(const wh_session_t *se)
{
    wh_str_t  r = { se->str, se->session_len };

    return r;
}


static wh_str_t
wh_se_client_id(const wh_session_t *se)
{
    wh_str_t  r = { se->str + se->session_len, se->client_id_len };

    return r;
}


static wh_str_t
wh_se_type(const wh_session_t *se)
{
    wh_str_t  r = { se->mem ? se->mem : "", se->type_len };

    return r;
}


static wh_str_t
wh_se_name(const wh_session_t *se)
{
    wh_str_t  r = { se->mem ? se->mem + se->type_len : "", se->name_len };

    return r;
}


void
wh_sessions_init(wh_sessions_t *s, wh_channels_t *channels, wh_log_t *log)
{
    memset(s, 0, sizeof(wh_sessions_t));
    s->channels = channels;
    s->log = log;
}


static void
wh_session_free(wh_session_t *se)
{
    free(se->mem);
    free(se);
}


void
wh_sessions_free(wh_sessions_t *s)
{
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&s->sessions, &it)) != NULL) {
        wh_session_free(e->value);
    }

    memset(&it, 0, sizeof(it));

    while ((e = wh_map_next(&s->workspaces, &it)) != NULL) {
        free(e->value);
    }

    memset(&it, 0, sizeof(it));

    while ((e = wh_map_next(&s->clients, &it)) != NULL) {
        free(e->value);
    }

    wh_map_free(&s->sessions);
    wh_map_free(&s->workspaces);
    wh_map_free(&s->clients);
}


/* ws "\0" client; 0 if the client id is too long */
static size_t
wh_clinfo_key(unsigned char *key, wh_str_t ws, wh_str_t client_id)
{
    if (ws.len > WH_WORKSPACE_MAX || client_id.len > WH_CLIENT_MAX) {
        return 0;
    }

    memcpy(key, ws.data, ws.len);
    key[ws.len] = '\0';
    memcpy(key + ws.len + 1, client_id.data, client_id.len);

    return ws.len + 1 + client_id.len;
}


static wh_clinfo_t *
wh_clinfo_find(wh_sessions_t *s, wh_str_t ws, wh_str_t client_id)
{
    size_t         klen;
    unsigned char  key[WH_CLKEY_MAX];

    klen = wh_clinfo_key(key, ws, client_id);

    return klen ? wh_map_get(&s->clients, key, klen) : NULL;
}


static wh_clinfo_t *
wh_clinfo_get(wh_sessions_t *s, wh_str_t ws, wh_str_t client_id)
{
    size_t           klen;
    wh_clinfo_t     *cli;
    wh_map_entry_t  *e;
    unsigned char    key[WH_CLKEY_MAX];

    klen = wh_clinfo_key(key, ws, client_id);

    if (klen == 0) {
        return NULL;
    }

    cli = wh_map_get(&s->clients, key, klen);

    if (cli != NULL) {
        return cli;
    }

    cli = calloc(1, sizeof(wh_clinfo_t));

    if (cli == NULL) {
        return NULL;
    }

    e = wh_map_put(&s->clients, key, klen, cli);

    if (e == NULL) {
        free(cli);
        return NULL;
    }

    cli->entry = e;

    return cli;
}


static void
wh_clinfo_drop_if_unused(wh_sessions_t *s, wh_clinfo_t *cli)
{
    size_t         klen;
    unsigned char  key[WH_CLKEY_MAX];

    if (cli->total != 0) {
        return;
    }

    klen = wh_clinfo_key(key, wh_cli_ws(cli), wh_cli_client_id(cli));
    wh_map_del(&s->clients, key, klen);
    free(cli);
}


/* appends the session to its client's list: it is the newest */
static void
wh_clinfo_link(wh_clinfo_t *cli, wh_session_t *se)
{
    se->cli = cli;
    se->cl_next = NULL;
    se->cl_prev = cli->tail;

    if (cli->tail) {
        cli->tail->cl_next = se;
    } else {
        cli->head = se;
    }

    cli->tail = se;
    cli->total++;
    cli->open++;
}


static void
wh_clinfo_unlink(wh_sessions_t *s, wh_session_t *se)
{
    wh_clinfo_t  *cli = se->cli;

    if (cli == NULL) {
        return;
    }

    if (se->cl_prev) {
        se->cl_prev->cl_next = se->cl_next;
    } else {
        cli->head = se->cl_next;
    }

    if (se->cl_next) {
        se->cl_next->cl_prev = se->cl_prev;
    } else {
        cli->tail = se->cl_prev;
    }

    cli->total--;
    cli->open -= !se->kicked;
    se->cli = NULL;

    wh_clinfo_drop_if_unused(s, cli);
}


static void
wh_session_kick(wh_sessions_t *s, wh_session_t *se, uint16_t code,
    const char *reason)
{
    wh_link_msg_t  r;

    if (se->kicked) {
        return;
    }

    se->kicked = 1;
    se->cli->open--;
    s->kicked++;

    wh_link_session_kick(&r, wh_se_session(se), code, wh_cstr(reason));
    wh_link_send(se->peer, &r);
}


/* a new session made its client exceed the location's limit: the
 * oldest ones give way */
static void
wh_clinfo_enforce(wh_sessions_t *s, wh_clinfo_t *cli, uint32_t limit)
{
    wh_session_t  *se;

    for (se = cli->head; se != NULL && limit && cli->open > limit;
         se = se->cl_next)
    {
        if (!se->kicked) {
            wh_log_info(s->log, "session %.*s of client %.*s replaced by "
                        "a newer connection (limit %u)",
                        (int) se->session_len, se->str,
                        (int) wh_cli_client_id(cli).len,
                        wh_cli_client_id(cli).data,
                        limit);
            wh_session_kick(s, se, WH_CLOSE_REPLACED,
                            "replaced by a newer connection");
        }
    }
}


/* the map key of a session: the peer serial, then the session string */
static size_t
wh_session_key(unsigned char *key, wh_peer_t *peer, wh_str_t session)
{
    memcpy(key, &peer->serial, sizeof(peer->serial));
    memcpy(key + sizeof(peer->serial), session.data, session.len);

    return sizeof(peer->serial) + session.len;
}


static wh_session_t *
wh_session_find(wh_sessions_t *s, wh_peer_t *peer, wh_str_t session)
{
    unsigned char  key[4 + WH_SESSION_MAX];

    if (session.len == 0 || session.len > WH_SESSION_MAX) {
        return NULL;
    }

    return wh_map_get(&s->sessions, key, wh_session_key(key, peer,
                                                         session));
}


int
wh_sessions_identity(wh_sessions_t *s, wh_peer_t *peer, wh_str_t session,
    wh_str_t *ws, wh_str_t *client_id)
{
    wh_session_t  *se;

    se = wh_session_find(s, peer, session);

    if (se == NULL) {
        return 0;
    }

    *ws = se->wsi->ws;
    *client_id = wh_se_client_id(se);

    return 1;
}


/* the sessions of ws the other nodes of a cluster hold, reporting the
 * count here */
static uint64_t
wh_sessions_elsewhere(wh_sessions_t *s, wh_str_t ws, uint64_t here)
{
    return s->elsewhere ? s->elsewhere(s->elsewhere_ctx, ws, here) : 0;
}


/* publishes a $presence event, written straight into one buffer (two
 * a connection) */
static void
wh_presence(wh_sessions_t *s, wh_session_t *se, const char *type,
    const char *reason, int with_name)
{
    int        rc;
    wh_buf_t   b;
    wh_err_t   err;
    wh_str_t   ch = { "$presence", 9 }, t, d, id, ctype, name;

    if (s->quiet) {
        return;
    }

    id = wh_se_client_id(se);
    ctype = wh_se_type(se);
    name = wh_se_name(se);

    memset(&b, 0, sizeof(wh_buf_t));

    rc = wh_jw_open(&b, NULL, '{');
    rc |= wh_jw_str(&b, "client_id", id.data, id.len);
    rc |= wh_jw_str(&b, "client_type", ctype.data, ctype.len);
    rc |= wh_jw_str(&b, "session", se->str, (size_t) se->session_len);
    rc |= wh_jw_cstr(&b, "reason", reason);

    if (with_name) {
        rc |= wh_jw_str(&b, "client_name", name.data, name.len);
    }

    rc |= wh_jw_close(&b, '}');

    if (rc != 0) {
        wh_buf_free(&b);
        wh_log_error(s->log, "presence: cannot build a %s event "
                     "(invalid UTF-8 in a client field?)", type);
        return;
    }

    t.data = type;
    t.len = strlen(type);
    d.data = (const char *) b.data;
    d.len = b.len;

    if (wh_channels_enqueue(s->channels, WH_PUB_DAEMON, NULL, 0,
                            se->wsi->ws, ch, t, d, &err) != 0)
    {
        wh_log_error(s->log, "presence: %s", err.msg);
    }

    wh_buf_free(&b);
}


static wh_wsinfo_t *
wh_wsinfo_get(wh_sessions_t *s, wh_str_t ws)
{
    wh_wsinfo_t     *wsi;
    wh_map_entry_t  *e;

    wsi = wh_map_get(&s->workspaces, ws.data, ws.len);

    if (wsi != NULL) {
        return wsi;
    }

    wsi = calloc(1, sizeof(wh_wsinfo_t));

    if (wsi == NULL) {
        return NULL;
    }

    e = wh_map_put(&s->workspaces, ws.data, ws.len, wsi);

    if (e == NULL) {
        free(wsi);
        return NULL;
    }

    wsi->ws.data = (const char *) e->key;
    wsi->ws.len = ws.len;

    return wsi;
}


static void
wh_session_unlink(wh_sessions_t *s, wh_session_t *se)
{
    unsigned char  key[4 + WH_SESSION_MAX];
    wh_wsinfo_t   *wsi = se->wsi;

    wh_map_del(&s->sessions, key, wh_session_key(key, se->peer,
                                                  wh_se_session(se)));
    wh_clinfo_unlink(s, se);

    if (se->prev) {
        se->prev->next = se->next;
    } else {
        wsi->head = se->next;
    }

    if (se->next) {
        se->next->prev = se->prev;
    }

    --wsi->count;
    (void) wh_sessions_elsewhere(s, wsi->ws, wsi->count);

    if (wsi->count == 0) {
        wh_map_del(&s->workspaces, wsi->ws.data, wsi->ws.len);
        free(wsi);
    }
}


/* a session with its strings; lengths are checked by the caller */
static wh_session_t *
wh_session_new(wh_str_t session, wh_str_t client_id)
{
    wh_session_t  *se;

    se = calloc(1, offsetof(wh_session_t, str) + session.len
                   + client_id.len);

    if (se == NULL) {
        return NULL;
    }

    memcpy(se->str, session.data, session.len);
    se->session_len = (uint16_t) session.len;

    if (client_id.len) {
        memcpy(se->str + session.len, client_id.data, client_id.len);
    }

    se->client_id_len = (uint16_t) client_id.len;

    return se;
}


/* the type and name, in one allocation unless both are empty */
static int
wh_session_set(wh_session_t *se, wh_str_t client_type, wh_str_t name)
{
    char  *mem;

    mem = NULL;

    if (client_type.len + name.len) {
        mem = malloc(client_type.len + name.len);

        if (mem == NULL) {
            return -1;
        }

        if (client_type.len) {
            memcpy(mem, client_type.data, client_type.len);
        }

        if (name.len) {
            memcpy(mem + client_type.len, name.data, name.len);
        }
    }

    free(se->mem);
    se->mem = mem;
    se->type_len = (uint16_t) client_type.len;
    se->name_len = (uint16_t) name.len;

    return 0;
}


static void
wh_session_accept(wh_peer_t *peer, wh_str_t session, uint16_t status,
    uint32_t count)
{
    wh_link_msg_t  r;

    wh_link_session_accept(&r, session, status, count);
    wh_link_send(peer, &r);
}


static void wh_session_end(wh_sessions_t *s, wh_session_t *se,
    const char *reason);


/* accepted, with the workspace's connections on every node */
static void
wh_session_admitted(wh_sessions_t *s, wh_peer_t *peer, wh_str_t session,
    wh_wsinfo_t *wsi)
{
    wh_session_accept(peer, session, 0,
                      wsi->count + wh_sessions_elsewhere(s, wsi->ws,
                                                         wsi->count));
}


/* a token issued before its client was deleted: refused, and a session
 * re-announced with it ends */
static int
wh_session_refused(wh_sessions_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    uint16_t       code;
    wh_session_t  *se;

    if (s->hooks.admit == NULL) {
        return 0;
    }

    code = s->hooks.admit(s->hooks.ctx, m->workspace, m->client_id, m->id2);

    if (code == 0) {
        return 0;
    }

    se = wh_session_find(s, peer, m->session);

    if (se != NULL) {
        wh_session_end(s, se, "revoked");
    }

    wh_session_accept(peer, m->session, code, 0);

    return 1;
}


int
wh_sessions_open(wh_sessions_t *s, wh_peer_t *peer, const wh_link_msg_t *m)
{
    int             resumed, held;
    unsigned char   key[4 + WH_SESSION_MAX];
    wh_session_t   *se;
    wh_wsinfo_t    *wsi;
    wh_clinfo_t    *cli;

    if (m->session.len == 0 || m->session.len > WH_SESSION_MAX) {
        return -1;
    }

    if (!wh_workspace_valid(m->workspace.data, m->workspace.len)
        || m->client_id.len == 0 || m->client_id.len > WH_CLIENT_MAX
        || m->client_type.len > WH_CLIENT_MAX || m->name.len > WH_CLIENT_MAX)
    {
        wh_session_accept(peer, m->session, 400, 0);
        return 0;
    }

    if (wh_session_refused(s, peer, m)) {
        return 0;
    }

    /* a session opened twice on one link: the first one is replaced */
    se = wh_session_find(s, peer, m->session);

    if (se != NULL) {
        wh_session_unlink(s, se);
        wh_session_free(se);
    }

    se = wh_session_new(m->session, m->client_id);
    wsi = wh_wsinfo_get(s, m->workspace);
    cli = wh_clinfo_get(s, m->workspace, m->client_id);

    if (se == NULL || wsi == NULL || cli == NULL
        || wh_session_set(se, m->client_type, m->name) != 0
        || wh_map_put(&s->sessions, key, wh_session_key(key, peer,
                                                        m->session), se)
           == NULL)
    {
        free(se ? se->mem : NULL);
        free(se);

        if (wsi && wsi->count == 0) {
            wh_map_del(&s->workspaces, wsi->ws.data, wsi->ws.len);
            free(wsi);
        }

        if (cli) {
            wh_clinfo_drop_if_unused(s, cli);
        }

        wh_session_accept(peer, m->session, 503, 0);
        return 0;
    }

    se->peer = peer;
    se->wsi = wsi;
    se->next = wsi->head;

    if (wsi->head) {
        wsi->head->prev = se;
    }

    wsi->head = se;
    wsi->count++;
    wh_clinfo_link(cli, se);

    held = s->hooks.hold != NULL
           && s->hooks.hold(s->hooks.ctx, wsi->ws, wh_se_client_id(se));

    se->held = held;

    if (!held) {
        wh_session_admitted(s, peer, m->session, wsi);
    }

    resumed = wh_loop_now() - peer->hello_ms < WH_RESUME_WINDOW_MS;
    wh_presence(s, se, "client_connected",
                resumed ? "resumed" : "connected", 0);

    /* count: the location's wirehub_max_connections_per_client */
    wh_clinfo_enforce(s, cli, m->count);

    if (s->hooks.opened) {
        s->hooks.opened(s->hooks.ctx, wsi->ws, wh_se_client_id(se),
                        wh_se_type(se), wh_se_name(se), held ? peer : NULL,
                        m->session);
    }

    return 0;
}


void
wh_sessions_answer(wh_sessions_t *s, wh_peer_t *peer, wh_str_t session)
{
    wh_session_t  *se;

    se = wh_session_find(s, peer, session);

    if (se != NULL && !peer->closing) {
        se->held = 0;
        wh_session_admitted(s, peer, session, se->wsi);
    }
}


int
wh_sessions_update(wh_sessions_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    wh_session_t  *se;

    se = wh_session_find(s, peer, m->session);

    if (se == NULL) {
        wh_log_debug(s->log, "session update for an unknown session");
        return 0;
    }

    if (m->client_type.len > WH_CLIENT_MAX || m->name.len > WH_CLIENT_MAX) {
        return 0;
    }

    if (wh_session_set(se, m->client_type, m->name) != 0) {
        wh_log_error(s->log, "session update: out of memory");
        return 0;
    }

    wh_presence(s, se, "client_updated", "register", 1);

    if (s->hooks.updated && !se->kicked) {
        s->hooks.updated(s->hooks.ctx, se->wsi->ws, wh_se_client_id(se),
                         wh_se_type(se), wh_se_name(se));
    }

    return 0;
}


static void
wh_session_end(wh_sessions_t *s, wh_session_t *se, const char *reason)
{
    unsigned     left;
    wh_str_t     ws, client_id;
    wh_clinfo_t  *cli = se->cli;

    wh_presence(s, se, "client_disconnected", reason, 0);

    left = cli->open - !se->kicked;
    ws = wh_cli_ws(cli);
    client_id = wh_cli_client_id(cli);

    /* ws and client_id live in the client's entry until it is dropped */
    if (s->hooks.closed && !s->quiet) {
        s->hooks.closed(s->hooks.ctx, ws, client_id, left);
    }

    wh_session_unlink(s, se);
    wh_session_free(se);
}


int
wh_sessions_close(wh_sessions_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    char           reason[65];
    size_t         n;
    wh_session_t  *se;

    se = wh_session_find(s, peer, m->session);

    if (se == NULL) {
        return 0;
    }

    n = m->reason.len < 64 ? m->reason.len : 64;
    memcpy(reason, m->reason.data ? m->reason.data : "", n);
    reason[n] = '\0';

    wh_session_end(s, se, n ? reason : "closed");

    return 0;
}


void
wh_sessions_peer_gone(wh_sessions_t *s, wh_peer_t *peer)
{
    wh_session_t    *se;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&s->sessions, &it)) != NULL) {
        se = e->value;

        if (se->peer == peer) {
            wh_session_end(s, se, "link_lost");
        }
    }
}


unsigned
wh_sessions_of_client(wh_sessions_t *s, wh_str_t ws, wh_str_t client_id)
{
    wh_clinfo_t  *cli;

    cli = wh_clinfo_find(s, ws, client_id);

    return cli ? cli->open : 0;
}


int
wh_sessions_newest(wh_sessions_t *s, wh_str_t ws, wh_str_t client_id,
    wh_peer_t **peer, wh_str_t *session)
{
    wh_clinfo_t   *cli;
    wh_session_t  *se;

    cli = wh_clinfo_find(s, ws, client_id);

    /* a held session gets no command before its SESSION_ACCEPT: the
     * module would pass it on ahead of connection_status */
    for (se = cli ? cli->tail : NULL; se != NULL; se = se->cl_prev) {
        if (!se->kicked && !se->held && !se->peer->closing) {
            *peer = se->peer;
            *session = wh_se_session(se);
            return 1;
        }
    }

    return 0;
}


unsigned
wh_sessions_kick_client(wh_sessions_t *s, wh_str_t ws, wh_str_t client_id,
    uint16_t code, const char *reason)
{
    unsigned       n = 0;
    wh_clinfo_t   *cli;
    wh_session_t  *se;

    cli = wh_clinfo_find(s, ws, client_id);

    for (se = cli ? cli->head : NULL; se != NULL; se = se->cl_next) {
        if (!se->kicked) {
            wh_session_kick(s, se, code, reason);
            n++;
        }
    }

    return n;
}


int
wh_sessions_stats(wh_sessions_t *s, wh_str_t ws, json_t *obj)
{
    json_t        *by, *n;
    wh_wsinfo_t   *wsi;
    wh_session_t  *se;
    char           type[WH_CLIENT_MAX + 1];

    by = json_object();

    if (by == NULL) {
        return -1;
    }

    wsi = wh_map_get(&s->workspaces, ws.data, ws.len);

    for (se = wsi ? wsi->head : NULL; se != NULL; se = se->next) {
        if (se->type_len) {
            memcpy(type, se->mem, se->type_len);
        }

        type[se->type_len] = '\0';

        /* a type with a NUL byte is counted under its prefix */
        if (type[0] == '\0') {
            strcpy(type, "unknown");
        }

        n = json_object_get(by, type);

        if (n != NULL) {
            json_integer_set(n, json_integer_value(n) + 1);
        } else {
            json_object_set_new(by, type, json_integer(1));
        }
    }

    json_object_set_new(obj, "connections",
                        json_integer(wsi ? wsi->count
                                           + wh_sessions_elsewhere(
                                                 s, ws, wsi->count)
                                         : wh_sessions_elsewhere(s, ws,
                                                                 0)));
    json_object_set_new(obj, "by_client_type", by);

    return 0;
}


void
wh_sessions_totals(wh_sessions_t *s, wh_sessions_totals_t *t)
{
    t->sessions = s->sessions.count;
    t->clients = s->clients.count;
    t->workspaces = s->workspaces.count;
}


void
wh_sessions_each_workspace(wh_sessions_t *s, wh_ws_each_pt cb, void *ctx)
{
    wh_wsinfo_t     *wsi;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&s->workspaces, &it)) != NULL) {
        wsi = e->value;
        cb(ctx, wsi->ws);
    }
}


void
wh_sessions_each_client(wh_sessions_t *s, wh_client_each_pt cb, void *ctx)
{
    wh_clinfo_t     *ci;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&s->clients, &it)) != NULL) {
        ci = e->value;

        if (ci->open > 0) {
            cb(ctx, wh_cli_ws(ci), wh_cli_client_id(ci));
        }
    }
}
