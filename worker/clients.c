/*
 * The clients registry's operations.  Like the commands, every read
 * and write is an op of the batch (batch.h): it sees what earlier ops
 * of the same turn wrote, acts (a revocation, a disconnect) and answers
 * only after the commit.
 *
 * A session opening registers its client in the turn it opens, so that
 * a command can name the client as soon as it has its
 * connection_status.  Once a client's record is known to exist, a
 * session opening or its last one closing only moves last_seen: that
 * write waits for the next flush (WH_CL_SEEN_FLUSH_MS), the newest of
 * each client only, and the API shows the waiting value meanwhile.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "wh_time.h"
#include "message.h"
#include "clients.h"


static wh_str_t  wh_none = { "", 0 };


static void wh_cl_op_free(wh_cl_op_t *op);


/* ------------------------------------------------------ known clients */


/* seeded FNV-1a: ids are chosen by API callers, the seed is not */
static uint64_t
wh_cl_hash(const wh_clients_t *cl, const unsigned char *key, size_t klen)
{
    size_t    i;
    uint64_t  h = 0xcbf29ce484222325ULL ^ cl->seed;

    for (i = 0; i < klen; i++) {
        h ^= key[i];
        h *= 0x100000001b3ULL;
    }

    return h;
}


/* what a record says of its client, so that a session saying the same
 * needs no write of it */
static uint32_t
wh_cl_fields_tag(wh_str_t client_type, wh_str_t name)
{
    size_t    i;
    uint32_t  h = 0x811c9dc5;

    for (i = 0; i < client_type.len; i++) {
        h = (h ^ (unsigned char) client_type.data[i]) * 0x01000193;
    }

    h = (h ^ 0xff) * 0x01000193;

    for (i = 0; i < name.len; i++) {
        h = (h ^ (unsigned char) name.data[i]) * 0x01000193;
    }

    return h;
}


static void
wh_cl_known_add(wh_clients_t *cl, wh_str_t ws, wh_str_t client_id,
    uint32_t tag)
{
    size_t         klen;
    unsigned char  key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, ws, client_id);

    /* full: that client's sessions write at once, as before */
    if (klen) {
        (void) wh_u64map_put(&cl->known, wh_cl_hash(cl, key, klen), tag);
    }
}


/* a session's news needs no write now: the record exists and says the
 * same of the client (or the session says nothing of it) */
static int
wh_cl_known_same(wh_clients_t *cl, const unsigned char *key, size_t klen,
    unsigned fields, wh_str_t client_type, wh_str_t name)
{
    uint32_t  tag;

    if (klen == 0
        || !wh_u64map_get(&cl->known, wh_cl_hash(cl, key, klen), &tag))
    {
        return 0;
    }

    return fields == 0
           || (fields == (WH_CL_TYPE | WH_CL_NAME)
               && tag == wh_cl_fields_tag(client_type, name));
}


/* deleted: a delayed write must not register it again */
static void
wh_cl_forget(wh_clients_t *cl, wh_str_t ws, wh_str_t client_id)
{
    size_t          klen;
    wh_cl_op_t     *op;
    unsigned char   key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, ws, client_id);

    if (klen == 0) {
        return;
    }

    wh_u64map_del(&cl->known, wh_cl_hash(cl, key, klen));
    op = wh_map_del(&cl->seen_writes, key, klen);

    if (op != NULL) {
        wh_cl_op_free(op);
    }
}


void
wh_clients_flush(wh_clients_t *cl)
{
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    if (cl->seen_writes.count == 0) {
        return;
    }

    while ((e = wh_map_next(&cl->seen_writes, &it)) != NULL) {
        wh_batch_add(cl->batch, e->value, 0);
    }

    wh_map_free(&cl->seen_writes);
}


int64_t
wh_clients_last_seen(wh_clients_t *cl, wh_str_t ws, wh_str_t client_id,
    int64_t stored_ms)
{
    size_t          klen;
    wh_cl_op_t     *op;
    unsigned char   key[WH_CMDQ_KEY_MAX];

    if (cl->seen_writes.count == 0) {
        return stored_ms;
    }

    klen = wh_cmdq_key(key, ws, client_id);
    op = klen ? wh_map_get(&cl->seen_writes, key, klen) : NULL;

    return op != NULL && op->at_ms > stored_ms ? op->at_ms : stored_ms;
}


int
wh_client_id_valid(const char *id, size_t len)
{
    size_t  i;

    if (len == 0 || len > WH_CMD_CLIENT_MAX || !wh_utf8_valid(id, len)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) id[i] < 0x20 || id[i] == 0x7f || id[i] == '/') {
            return 0;
        }
    }

    return 1;
}


/*
 * The revocation of a deleted client: its tokens issued (iat, in
 * seconds) before the second this returns are refused.  It rounds up,
 * so that a token issued in the second of the delete is refused too.
 */
static uint64_t
wh_cl_revoke_before(int64_t now_ms)
{
    return (uint64_t) (now_ms + WH_MS_PER_S - 1) / WH_MS_PER_S;
}


/* ------------------------------------------------------------ apply */


/* sets the fields the op carries */
static void
wh_cl_set_fields(wh_client_t *client, const wh_cl_op_t *op)
{
    if (op->fields & WH_CL_NAME) {
        client->name = op->name;
    }

    if (op->fields & WH_CL_TYPE) {
        client->client_type = op->client_type;
    }

    /* metadata null (empty here) removes it */
    if (op->fields & WH_CL_META) {
        client->metadata = op->metadata;
    }
}


/* a client named by the op's ws and client_id, with nothing set */
static void
wh_cl_blank(wh_client_t *client, const wh_cl_op_t *op, int64_t now)
{
    memset(client, 0, sizeof(wh_client_t));
    client->ws = op->ws;
    client->id = op->client_id;
    client->name = wh_none;
    client->client_type = wh_none;
    client->metadata = wh_none;
    client->created_ms = now;
}


/*
 * A new client takes a place of the workspace's clients quota, held
 * from here to done, where the count follows the commit: the
 * registrations of one batch cannot pass the quota together.  The op
 * owns the place, so a batch applied again does not take it twice.
 */
static int
wh_cl_hold(wh_clients_t *cl, wh_cl_op_t *op)
{
    if (!op->held && wh_quota_take(cl->quota, op->ws, WH_QUOTA_CLIENTS) != 0)
    {
        op->outcome = WH_CL_OVER_QUOTA;
        return -1;
    }

    op->held = 1;
    op->created = 1;

    return 0;
}


static int
wh_cl_apply_create(wh_clients_t *cl, wh_etxn_t *t, wh_cl_op_t *op,
    int64_t now, wh_err_t *err)
{
    int  rc;

    rc = wh_etxn_ops(t)->client_get(t, op->ws, op->client_id, NULL, err);

    if (rc != 0) {
        op->outcome = WH_CL_EXISTS;
        return rc < 0 ? -1 : 0;
    }

    if (wh_cl_hold(cl, op) != 0) {
        return 0;
    }

    op->op.sync = 1;
    op->exists = 1;
    wh_cl_blank(&op->client, op, now);
    wh_cl_set_fields(&op->client, op);

    return wh_etxn_ops(t)->client_put(t, &op->client, err);
}


/* get and patch */
static int
wh_cl_apply_get(wh_etxn_t *t, wh_cl_op_t *op, wh_err_t *err)
{
    int  rc;

    rc = wh_etxn_ops(t)->client_get(t, op->ws, op->client_id, &op->client,
                                    err);

    if (rc <= 0) {
        op->outcome = WH_CL_NOT_FOUND;
        return rc;
    }

    op->exists = 1;

    if (op->kind != WH_CL_OP_PATCH) {
        return 0;
    }

    op->op.sync = 1;
    wh_cl_set_fields(&op->client, op);

    return wh_etxn_ops(t)->client_put(t, &op->client, err);
}


/* delete and disconnect: of a client that exists */
static int
wh_cl_apply_end(wh_clients_t *cl, wh_etxn_t *t, wh_cl_op_t *op,
    int64_t now, wh_err_t *err)
{
    int  rc;

    rc = wh_etxn_ops(t)->client_get(t, op->ws, op->client_id, NULL, err);

    if (rc <= 0) {
        op->outcome = WH_CL_NOT_FOUND;
        return rc;
    }

    if (op->kind == WH_CL_OP_DISCONNECT) {
        op->disconnected = wh_sessions_of_client(cl->sessions, op->ws,
                                                 op->client_id);
        return 0;
    }

    op->op.sync = 1;

    op->revoke_s = wh_cl_revoke_before(now);

    if (wh_etxn_ops(t)->client_revoke(t, op->ws, op->client_id,
                                      op->revoke_s, err) != 0)
    {
        return -1;
    }

    return wh_commands_drop_client(cl->commands, t, op->ws, op->client_id,
                                   now, &op->notes, err);
}


/* a stored revocation into the map ctx (ws "\0" client -> seconds) */
static int
wh_cl_collect_revoked(void *ctx, wh_str_t ws, wh_str_t client_id,
    uint64_t before_s)
{
    size_t          klen;
    unsigned char   key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, ws, client_id);

    if (klen == 0) {
        return 0;
    }

    return wh_map_put(ctx, key, klen, (void *) (uintptr_t) before_s)
           == NULL ? -1 : 0;
}


/* a session opened (implicit registration) or its last one closed */
static int
wh_cl_apply_seen(wh_clients_t *cl, wh_etxn_t *t, wh_cl_op_t *op,
    int64_t now, wh_err_t *err)
{
    int  rc;

    rc = wh_etxn_ops(t)->client_get(t, op->ws, op->client_id, &op->client,
                                    err);

    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        /* deleted meanwhile (nothing to remember), or no room */
        if (op->kind == WH_CL_OP_GONE || op->delayed
            || wh_cl_hold(cl, op) != 0)
        {
            return 0;
        }

        wh_cl_blank(&op->client, op, now);
    }

    op->exists = 1;

    /* a delayed write never takes last_seen back (nor a node whose
     * clock is behind) */
    if (op->at_ms > op->client.last_seen_ms) {
        op->client.last_seen_ms = op->at_ms;
    }

    wh_cl_set_fields(&op->client, op);

    return wh_etxn_ops(t)->client_put(t, &op->client, err);
}


static int
wh_cl_op_apply(wh_op_t *base, wh_etxn_t *t, wh_err_t *err)
{
    int64_t        now;
    wh_cl_op_t    *op = (wh_cl_op_t *) base;
    wh_clients_t  *cl = op->cl;

    /* a batch may be applied again: start from scratch */
    wh_cmd_notes_done(cl->commands, &op->notes, 0);
    wh_client_free(&op->client);
    wh_client_list_free(&op->list);
    op->outcome = WH_CL_DONE;
    op->created = 0;
    op->exists = 0;

    now = wh_time_ms();

    switch (op->kind) {

    case WH_CL_OP_CREATE:
        return wh_cl_apply_create(cl, t, op, now, err);

    case WH_CL_OP_LIST:
        return wh_etxn_ops(t)->client_list(t, op->ws, op->cursor, op->limit,
                                           &op->list, err);

    case WH_CL_OP_GET:
    case WH_CL_OP_PATCH:
        return wh_cl_apply_get(t, op, err);

    case WH_CL_OP_DELETE:
    case WH_CL_OP_DISCONNECT:
        return wh_cl_apply_end(cl, t, op, now, err);

    case WH_CL_OP_REVOCATIONS:
        wh_map_free(&op->revoked);
        return wh_etxn_ops(t)->revocations(t, wh_cl_collect_revoked,
                                           &op->revoked, err);

    default:
        return wh_cl_apply_seen(cl, t, op, now, err);
    }
}


/* ------------------------------------------------------------- done */


static void
wh_cl_revoked_set(wh_clients_t *cl, wh_str_t ws, wh_str_t client_id,
    uint64_t before)
{
    size_t         klen;
    uint64_t       old;
    unsigned char  key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, ws, client_id);
    old = (uint64_t) (uintptr_t) wh_map_get(&cl->revoked, key, klen);

    if (old < before
        && wh_map_put(&cl->revoked, key, klen, (void *) (uintptr_t) before)
           == NULL)
    {
        wh_log_error(cl->log, "clients: out of memory: the revocation of "
                     "%.*s applies after a restart", (int) client_id.len,
                     client_id.data);
    }
}


static void
wh_cl_send_revoke(wh_peer_t *peer, wh_str_t ws, wh_str_t client_id,
    uint64_t before)
{
    wh_link_msg_t  m;

    if (!peer->hello || peer->closing) {
        return;
    }

    wh_link_revoke(&m, ws, client_id, before);
    wh_link_send(peer, &m);
}


/* the client is deleted: every worker refuses its old tokens, its
 * sessions close */
static void
wh_cl_deleted(wh_clients_t *cl, wh_str_t ws, wh_str_t client_id,
    uint64_t before)
{
    unsigned    n;
    wh_peer_t  *peer;

    wh_cl_forget(cl, ws, client_id);
    wh_cl_revoked_set(cl, ws, client_id, before);

    for (peer = cl->link->peers; peer != NULL; peer = peer->next) {
        wh_cl_send_revoke(peer, ws, client_id, before);
    }

    n = wh_sessions_kick_client(cl->sessions, ws, client_id,
                                WH_CLOSE_REVOKED, "client deleted");

    wh_log_info(cl->log, "clients: %.*s of %.*s deleted, %u sessions "
                "closed", (int) client_id.len, client_id.data,
                (int) ws.len, ws.data, n);
}


/* an operator disconnected the client: its sessions close with 4409 and a
 * reason that tells how long to wait before reconnecting */
static void
wh_cl_disconnected(wh_clients_t *cl, wh_str_t ws, wh_str_t client_id,
    uint64_t retry_after)
{
    char  reason[sizeof("retry_after=4294967295")];

    snprintf(reason, sizeof(reason), "retry_after=%u",
             (unsigned) retry_after);

    (void) wh_sessions_kick_client(cl->sessions, ws, client_id,
                                   WH_CLOSE_KICKED, reason);
}


/* what the store holds and memory did not: revocations of other nodes
 * whose notes were lost */
static void
wh_cl_resynced(wh_clients_t *cl, wh_cl_op_t *op)
{
    uint64_t         before;
    wh_str_t         ws, client_id;
    const char      *nul;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&op->revoked, &it)) != NULL) {
        before = (uint64_t) (uintptr_t) e->value;

        if ((uint64_t) (uintptr_t) wh_map_get(&cl->revoked, e->key,
                                              e->klen) >= before)
        {
            continue;
        }

        nul = memchr(e->key, '\0', e->klen);
        ws.data = (const char *) e->key;
        ws.len = nul - ws.data;
        client_id.data = nul + 1;
        client_id.len = e->klen - ws.len - 1;
        wh_cl_deleted(cl, ws, client_id, before);
    }
}


void
wh_clients_changed_elsewhere(wh_clients_t *cl, const wh_engine_note_t *n)
{
    size_t       i;
    wh_str_t     none[WH_CL_OP_STRS];
    wh_cl_op_t  *op;

    switch (n->kind) {

    case WH_NOTE_REVOKED:
        wh_cl_deleted(cl, n->ws, n->client_id, n->arg);
        break;

    case WH_NOTE_DISCONNECT:
        wh_cl_disconnected(cl, n->ws, n->client_id, n->arg);
        break;

    case WH_NOTE_RESYNC:
        for (i = 0; i < WH_CL_OP_STRS; i++) {
            none[i] = wh_none;
        }

        op = wh_cl_op_new(cl, WH_CL_OP_REVOCATIONS, none);

        if (op == NULL) {
            wh_log_error(cl->log, "clients: out of memory: revocations "
                         "made elsewhere wait for a restart");
            break;
        }

        wh_batch_add(cl->batch, &op->op, 0);
        break;

    default:
        break;
    }
}


static void
wh_cl_op_free(wh_cl_op_t *op)
{
    wh_map_free(&op->revoked);
    wh_cmd_notes_done(op->cl->commands, &op->notes, 0);
    wh_client_free(&op->client);
    wh_client_list_free(&op->list);
    free(op->mem);
    free(op);
}


/* what the commit changed of the workspace's clients quota */
static void
wh_cl_quota_done(wh_clients_t *cl, wh_cl_op_t *op, int committed)
{
    wh_err_t  err;

    if (op->held) {
        wh_quota_release(cl->quota, op->ws, WH_QUOTA_CLIENTS);
    }

    if (!committed) {
        return;
    }

    if (op->outcome == WH_CL_DONE && (op->created
                                      || op->kind == WH_CL_OP_DELETE))
    {
        wh_quota_add(cl->quota, op->ws, WH_QUOTA_CLIENTS,
                     op->created ? 1 : -1);

    } else if (op->outcome == WH_CL_OVER_QUOTA && op->reply == NULL) {
        /* a session: nobody to answer, the log says it */
        wh_quota_refuse(cl->quota, op->ws, WH_QUOTA_CLIENTS,
                        "the registration of a connecting client", &err);
    }
}


/*
 * A session is accepted (peer NULL: it was already) before its commands
 * are looked up: the module passes a command on at once, and
 * connection_status must go first.
 */
static void
wh_cl_online(wh_clients_t *cl, wh_peer_t *peer, wh_str_t session,
    wh_str_t ws, wh_str_t client_id)
{
    if (peer != NULL) {
        wh_sessions_answer(cl->sessions, peer, session);
    }

    wh_commands_client_online(cl->commands, ws, client_id);
}


static void
wh_cl_op_done(wh_op_t *base, int committed, const wh_err_t *err)
{
    wh_cl_op_t    *op = (wh_cl_op_t *) base;
    wh_clients_t  *cl = op->cl;

    wh_cl_quota_done(cl, op, committed);

    if (committed && op->kind == WH_CL_OP_REVOCATIONS) {
        wh_cl_resynced(cl, op);
    }

    if (committed && op->outcome == WH_CL_DONE) {
        if (op->exists) {
            wh_cl_known_add(cl, op->ws, op->client_id,
                            wh_cl_fields_tag(op->client.client_type,
                                             op->client.name));
        }

        /* here, and on the other nodes of a cluster */
        if (op->kind == WH_CL_OP_DELETE) {
            wh_cl_deleted(cl, op->ws, op->client_id, op->revoke_s);
            wh_engine_notify(cl->engine, WH_NOTE_REVOKED, op->ws,
                             op->client_id, op->revoke_s);

        } else if (op->kind == WH_CL_OP_DISCONNECT) {
            wh_cl_disconnected(cl, op->ws, op->client_id, op->retry_after);
            wh_engine_notify(cl->engine, WH_NOTE_DISCONNECT, op->ws,
                             op->client_id, op->retry_after);
        }
    }

    wh_cmd_notes_done(cl->commands, &op->notes, committed);

    if (op->reply != NULL) {
        op->reply(op, committed, err);

    } else if (op->peer != NULL) {
        /* stored or not, the session waits no longer */
        wh_cl_online(cl, op->peer, op->session, op->ws, op->client_id);
    }

    wh_cl_op_free(op);
}


wh_cl_op_t *
wh_cl_op_new(wh_clients_t *cl, wh_cl_op_e kind, const wh_str_t *strs)
{
    wh_cl_op_t  *op;
    wh_str_t    *dst[WH_CL_OP_STRS];

    op = calloc(1, sizeof(wh_cl_op_t));

    if (op == NULL) {
        return NULL;
    }

    dst[0] = &op->ws;
    dst[1] = &op->client_id;
    dst[2] = &op->name;
    dst[3] = &op->client_type;
    dst[4] = &op->metadata;
    dst[5] = &op->cursor;
    dst[6] = &op->session;

    if (wh_strs_copy(&op->mem, dst, strs, WH_CL_OP_STRS) != 0) {
        free(op);
        return NULL;
    }

    op->op.apply = wh_cl_op_apply;
    op->op.done = wh_cl_op_done;
    op->cl = cl;
    op->kind = kind;
    wh_cmd_notes_init(&op->notes);

    return op;
}


void
wh_cl_op_submit(wh_cl_op_t *op)
{
    wh_batch_add(op->cl->batch, &op->op, 0);
}


/* ------------------------------------------------------ session hooks */


static uint16_t
wh_cl_admit(void *ctx, wh_str_t ws, wh_str_t client_id, uint64_t iat)
{
    size_t          klen;
    uint64_t        before;
    unsigned char   key[WH_CMDQ_KEY_MAX];
    wh_clients_t   *cl = ctx;

    if (cl->revoked.count == 0 || client_id.len > WH_CMD_CLIENT_MAX) {
        return 0;
    }

    klen = wh_cmdq_key(key, ws, client_id);
    before = (uint64_t) (uintptr_t) wh_map_get(&cl->revoked, key, klen);

    return iat < before ? WH_CLOSE_REVOKED : 0;
}


/* a delayed write that says the same of the client as a new one */
static int
wh_cl_same_fields(const wh_cl_op_t *op, unsigned fields,
    wh_str_t client_type, wh_str_t name)
{
    return op->fields == fields
           && op->client_type.len == client_type.len
           && op->name.len == name.len
           && memcmp(op->client_type.data, client_type.data,
                     client_type.len) == 0
           && memcmp(op->name.data, name.data, name.len) == 0;
}


/* the op of the write, NULL when there is none (delayed, or no memory);
 * session names the session its write may answer (wh_cl_opened) */
static wh_cl_op_t *
wh_cl_seen(wh_clients_t *cl, wh_cl_op_e kind, wh_str_t ws,
    wh_str_t client_id, wh_str_t client_type, wh_str_t name,
    wh_str_t session)
{
    int             known;
    size_t          klen;
    int64_t         now;
    unsigned        fields;
    wh_str_t        strs[WH_CL_OP_STRS];
    wh_cl_op_t     *op, *late;
    unsigned char   key[WH_CMDQ_KEY_MAX];

    now = wh_time_ms();

    /* what the client says of itself, when it says something */
    fields = (client_type.len ? WH_CL_TYPE : 0) | (name.len ? WH_CL_NAME : 0);

    klen = wh_cmdq_key(key, ws, client_id);
    late = klen ? wh_map_get(&cl->seen_writes, key, klen) : NULL;

    if (late != NULL && wh_cl_same_fields(late, fields, client_type, name)) {
        late->kind = kind;
        late->at_ms = now;
        return NULL;
    }

    if (late != NULL) {
        /* it says something else: the older write goes first */
        wh_map_del(&cl->seen_writes, key, klen);
        wh_cl_op_submit(late);
    }

    known = wh_cl_known_same(cl, key, klen, fields, client_type, name);

    memset(strs, 0, sizeof(strs));
    strs[0] = ws;
    strs[1] = client_id;
    strs[2] = name;
    strs[3] = client_type;
    strs[6] = session;

    op = wh_cl_op_new(cl, kind, strs);

    if (op == NULL) {
        wh_log_error(cl->log, "clients: out of memory");
        return NULL;
    }

    op->fields = fields;
    op->at_ms = now;

    if (known && wh_map_put(&cl->seen_writes, key, klen, op) != NULL) {
        op->delayed = 1;
        return NULL;
    }

    wh_cl_op_submit(op);

    return op;
}


/* a session of a client this node does not know to be stored: in a
 * cluster, another node's API could look for it before the session's
 * write reaches Redis (one node: the write is stored before the turn's
 * answers go out) */
static int
wh_cl_unstored(void *ctx, wh_str_t ws, wh_str_t client_id)
{
    size_t          klen;
    wh_clients_t   *cl = ctx;
    unsigned char   key[WH_CMDQ_KEY_MAX];

    if (!wh_engine_shared(cl->engine)) {
        return 0;
    }

    klen = wh_cmdq_key(key, ws, client_id);

    return !wh_cl_known_same(cl, key, klen, 0, wh_none, wh_none);
}


static void
wh_cl_opened(void *ctx, wh_str_t ws, wh_str_t client_id,
    wh_str_t client_type, wh_str_t name, wh_peer_t *peer, wh_str_t session)
{
    wh_cl_op_t     *op;
    wh_clients_t   *cl = ctx;

    op = wh_cl_seen(cl, WH_CL_OP_SEEN, ws, client_id, client_type, name,
                    peer != NULL ? session : wh_none);

    if (op != NULL && peer != NULL) {
        /* answered, and its commands looked up, by wh_cl_op_done */
        op->peer = peer;
        return;
    }

    /* nothing to wait for: answered at once */
    wh_cl_online(cl, peer, session, ws, client_id);
}


static void
wh_cl_updated(void *ctx, wh_str_t ws, wh_str_t client_id,
    wh_str_t client_type, wh_str_t name)
{
    wh_cl_seen(ctx, WH_CL_OP_SEEN, ws, client_id, client_type, name,
               wh_none);
}


static void
wh_cl_closed(void *ctx, wh_str_t ws, wh_str_t client_id, unsigned left)
{
    if (left == 0) {
        wh_cl_seen(ctx, WH_CL_OP_GONE, ws, client_id, wh_none, wh_none,
                   wh_none);
    }
}


void
wh_clients_hello(wh_clients_t *cl, wh_peer_t *peer)
{
    wh_str_t         ws, client_id;
    const char      *nul;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&cl->revoked, &it)) != NULL) {
        nul = memchr(e->key, '\0', e->klen);
        ws.data = (const char *) e->key;
        ws.len = nul - ws.data;
        client_id.data = nul + 1;
        client_id.len = e->klen - ws.len - 1;
        wh_cl_send_revoke(peer, ws, client_id,
                          (uint64_t) (uintptr_t) e->value);
    }
}


/* ------------------------------------------------------ start, end */


/* a stored client: counted for the quota, and known (after a restart
 * its sessions move last_seen only; one that names its client_type and
 * name writes them once) */
static int
wh_cl_loaded(void *ctx, wh_str_t ws, wh_str_t id, uint64_t bytes)
{
    wh_clients_t  *cl = ctx;

    wh_cl_known_add(cl, ws, id, wh_cl_fields_tag(wh_none, wh_none));

    return wh_quota_count_client(cl->quota, ws, id, bytes);
}


/* the revocations, and the clients of each workspace for the quota:
 * counted from none on each run (the Redis engine runs it once per page
 * of clients it fetched) */
static int
wh_cl_load(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    wh_clients_t  *cl = ctx;

    wh_quota_recount(cl->quota, WH_QUOTA_CLIENTS);

    return wh_etxn_ops(t)->revocations(t, wh_cl_collect_revoked,
                                       &cl->revoked, err) != 0
           || wh_etxn_ops(t)->client_each(t, wh_cl_loaded, cl, err) != 0
           ? -1 : 0;
}


int
wh_clients_init(wh_clients_t *cl, wh_engine_t *engine, wh_batch_t *batch,
    wh_sessions_t *sessions, wh_link_t *link, wh_commands_t *commands,
    wh_quota_t *quota, wh_log_t *log, wh_err_t *err)
{
    memset(cl, 0, sizeof(wh_clients_t));
    wh_u64map_init(&cl->known, WH_CL_KNOWN_MAX);

    if (getrandom(&cl->seed, sizeof(cl->seed), 0)
        != (ssize_t) sizeof(cl->seed))
    {
        cl->seed = (uint64_t) wh_time_ms();
    }

    cl->engine = engine;
    cl->log = log;
    cl->batch = batch;
    cl->sessions = sessions;
    cl->link = link;
    cl->commands = commands;
    cl->quota = quota;

    if (wh_engine_write(engine, WH_ENGINE_STATE, wh_cl_load, cl, err) != 0) {
        wh_map_free(&cl->revoked);
        return -1;
    }

    sessions->hooks.admit = wh_cl_admit;
    sessions->hooks.hold = wh_cl_unstored;
    sessions->hooks.opened = wh_cl_opened;
    sessions->hooks.updated = wh_cl_updated;
    sessions->hooks.closed = wh_cl_closed;
    sessions->hooks.ctx = cl;

    if (cl->revoked.count) {
        wh_log_info(log, "clients: %zu revocations loaded",
                    cl->revoked.count);
    }

    return 0;
}


void
wh_clients_free(wh_clients_t *cl)
{
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&cl->seen_writes, &it)) != NULL) {
        wh_cl_op_free(e->value);
    }

    wh_map_free(&cl->seen_writes);
    wh_map_free(&cl->revoked);
    wh_u64map_free(&cl->known);
}
