/*
 * Open commands in memory: priority lists per client and a min-heap of
 * due times.  Insertion keeps each list in seq order by walking back
 * from its tail, which is O(1) for new commands (the highest seq) and
 * for the load at start (the store hands them over in seq order).
 */

#include <stdlib.h>
#include <string.h>

#include "wh_channel.h"
#include "cmdqueue.h"



static const char  *wh_cmd_status_names[WH_CMD_NSTATUS] = {
    "pending", "sent", "completed", "failed", "expired", "cancelled",
    "superseded"
};


const char *
wh_cmd_status_name(wh_cmd_status_e status)
{
    return (unsigned) status < WH_CMD_NSTATUS
           ? wh_cmd_status_names[status] : NULL;
}


int
wh_cmd_status_parse(const char *name, size_t len)
{
    int  i;

    for (i = 0; i < WH_CMD_NSTATUS; i++) {
        if (strlen(wh_cmd_status_names[i]) == len
            && memcmp(wh_cmd_status_names[i], name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


int
wh_cmd_is_open(wh_cmd_status_e status)
{
    return status == WH_CMD_PENDING || status == WH_CMD_SENT;
}


int64_t
wh_cmd_expires_at(const wh_cmd_policy_t *p, int64_t created_ms,
    int64_t ttl_ms)
{
    return created_ms + (ttl_ms > 0 ? ttl_ms : p->ttl_ms);
}


int64_t
wh_cmd_ack_window(const wh_cmd_policy_t *p, unsigned attempt)
{
    unsigned  shift;

    shift = attempt > 1 ? attempt - 1 : 0;

    if (shift > WH_CMD_BACKOFF_SHIFT) {
        shift = WH_CMD_BACKOFF_SHIFT;
    }

    return p->ack_timeout_ms << shift;
}


int
wh_cmd_window_open(const wh_cmd_policy_t *p, size_t in_flight)
{
    return in_flight < p->window;
}


int
wh_cmd_ack_overdue(const wh_cmd_state_t *s, int64_t now)
{
    return s->status == WH_CMD_SENT && now >= s->deadline_ms;
}


wh_cmd_action_e
wh_cmd_decide(const wh_cmd_policy_t *p, const wh_cmd_state_t *s,
    int64_t now, int online, size_t in_flight)
{
    if (!wh_cmd_is_open(s->status)) {
        return WH_CMD_WAIT;
    }

    if (now >= s->expires_ms) {
        return WH_CMD_EXPIRE;
    }

    if (s->status == WH_CMD_PENDING) {
        if (now < s->not_before_ms) {
            return WH_CMD_WAIT;
        }

        return online && wh_cmd_window_open(p, in_flight) ? WH_CMD_DELIVER
                                                          : WH_CMD_WAIT;
    }

    if (!wh_cmd_ack_overdue(s, now)) {
        return WH_CMD_WAIT;
    }

    if (s->attempt >= p->max_attempts) {
        return WH_CMD_GIVE_UP;
    }

    return online ? WH_CMD_DELIVER : WH_CMD_WAIT;
}


int64_t
wh_cmd_due(const wh_cmd_state_t *s, int64_t now)
{
    if (s->status == WH_CMD_SENT && !wh_cmd_ack_overdue(s, now)
        && s->deadline_ms < s->expires_ms)
    {
        return s->deadline_ms;
    }

    if (s->status == WH_CMD_PENDING && s->not_before_ms > now
        && s->not_before_ms < s->expires_ms)
    {
        return s->not_before_ms;
    }

    /* pending, or waiting offline for a redelivery: only the ttl */
    return s->expires_ms;
}


uint32_t
wh_cmd_lane_hash(const char *name, size_t len)
{
    size_t    i;
    uint32_t  h = 2166136261u;

    if (len == 0) {
        return 0;
    }

    /* FNV-1a: a collision only makes two lanes wait for each other */
    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) name[i]) * 16777619u;
    }

    return h ? h : 1;
}


void
wh_cmd_delivered(const wh_cmd_policy_t *p, wh_cmd_state_t *s, int64_t now)
{
    s->attempt++;
    s->status = WH_CMD_SENT;
    s->deadline_ms = now + wh_cmd_ack_window(p, s->attempt);
}


void
wh_cmdq_init(wh_cmdq_t *q)
{
    memset(q, 0, sizeof(wh_cmdq_t));
}


void
wh_cmdq_free(wh_cmdq_t *q)
{
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&q->cmds, &it)) != NULL) {
        free(e->value);
    }

    memset(&it, 0, sizeof(it));

    while ((e = wh_map_next(&q->clients, &it)) != NULL) {
        free(e->value);
    }

    wh_map_free(&q->cmds);
    wh_map_free(&q->clients);
    wh_map_free(&q->workspaces);
    free(q->heap);
    memset(q, 0, sizeof(wh_cmdq_t));
}


size_t
wh_cmdq_key(unsigned char *buf, wh_str_t ws, wh_str_t name)
{
    if (ws.len > WH_WORKSPACE_MAX || name.len > WH_CMD_CLIENT_MAX) {
        return 0;
    }

    memcpy(buf, ws.data, ws.len);
    buf[ws.len] = '\0';
    memcpy(buf + ws.len + 1, name.data, name.len);

    return ws.len + 1 + name.len;
}


static int
wh_heap_less(wh_cmdq_t *q, size_t a, size_t b)
{
    return q->heap[a]->due_ms < q->heap[b]->due_ms;
}


static void
wh_heap_swap(wh_cmdq_t *q, size_t a, size_t b)
{
    wh_qcmd_t  *t;

    t = q->heap[a];
    q->heap[a] = q->heap[b];
    q->heap[b] = t;
    q->heap[a]->heap = a + 1;
    q->heap[b]->heap = b + 1;
}


static void
wh_heap_up(wh_cmdq_t *q, size_t i)
{
    while (i > 0 && wh_heap_less(q, i, (i - 1) / 2)) {
        wh_heap_swap(q, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}


static void
wh_heap_down(wh_cmdq_t *q, size_t i)
{
    size_t  l, r, m;

    for ( ;; ) {
        l = 2 * i + 1;
        r = l + 1;
        m = i;

        if (l < q->nheap && wh_heap_less(q, l, m)) {
            m = l;
        }

        if (r < q->nheap && wh_heap_less(q, r, m)) {
            m = r;
        }

        if (m == i) {
            return;
        }

        wh_heap_swap(q, i, m);
        i = m;
    }
}


static int
wh_heap_push(wh_cmdq_t *q, wh_qcmd_t *cmd)
{
    size_t      cap;
    wh_qcmd_t **heap;

    if (q->nheap == q->cap) {
        cap = q->cap ? q->cap * 2 : 64;
        heap = realloc(q->heap, cap * sizeof(wh_qcmd_t *));

        if (heap == NULL) {
            return -1;
        }

        q->heap = heap;
        q->cap = cap;
    }

    q->heap[q->nheap] = cmd;
    cmd->heap = ++q->nheap;
    wh_heap_up(q, q->nheap - 1);

    return 0;
}


static void
wh_heap_remove(wh_cmdq_t *q, wh_qcmd_t *cmd)
{
    size_t  i;

    if (cmd->heap == 0) {
        return;
    }

    i = cmd->heap - 1;
    cmd->heap = 0;

    if (i == --q->nheap) {
        return;
    }

    q->heap[i] = q->heap[q->nheap];
    q->heap[i]->heap = i + 1;
    wh_heap_up(q, i);
    wh_heap_down(q, q->heap[i]->heap - 1);
}


static wh_qclient_t *
wh_cmdq_client_get(wh_cmdq_t *q, wh_str_t ws, wh_str_t client_id)
{
    size_t           klen;
    wh_qclient_t    *qc;
    wh_map_entry_t  *e;
    unsigned char    key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, ws, client_id);

    if (klen == 0) {
        return NULL;
    }

    qc = wh_map_get(&q->clients, key, klen);

    if (qc != NULL) {
        return qc;
    }

    qc = calloc(1, sizeof(wh_qclient_t));

    if (qc == NULL) {
        return NULL;
    }

    e = wh_map_put(&q->clients, key, klen, qc);

    if (e == NULL) {
        free(qc);
        return NULL;
    }

    qc->ws.data = (const char *) e->key;
    qc->ws.len = ws.len;
    qc->client_id.data = (const char *) e->key + ws.len + 1;
    qc->client_id.len = client_id.len;

    return qc;
}


static void
wh_cmdq_client_drop(wh_cmdq_t *q, wh_qclient_t *qc)
{
    size_t         klen;
    unsigned char  key[WH_CMDQ_KEY_MAX];

    if (qc->count != 0) {
        return;
    }

    klen = wh_cmdq_key(key, qc->ws, qc->client_id);
    wh_map_del(&q->clients, key, klen);
    free(qc);
}


/* links cmd into its priority list after the last one with a lower
 * seq */
static void
wh_cmdq_link(wh_qclient_t *qc, wh_qcmd_t *cmd)
{
    unsigned    p = cmd->priority;
    wh_qcmd_t  *at;

    for (at = qc->tail[p]; at != NULL && at->seq > cmd->seq; at = at->prev) {
        /* void */
    }

    cmd->prev = at;
    cmd->next = at ? at->next : qc->head[p];

    if (cmd->next) {
        cmd->next->prev = cmd;
    } else {
        qc->tail[p] = cmd;
    }

    if (at) {
        at->next = cmd;
    } else {
        qc->head[p] = cmd;
    }

    cmd->client = qc;
    qc->count++;
}


static void
wh_cmdq_unlink(wh_qcmd_t *cmd)
{
    unsigned       p = cmd->priority;
    wh_qclient_t  *qc = cmd->client;

    if (cmd->prev) {
        cmd->prev->next = cmd->next;
    } else {
        qc->head[p] = cmd->next;
    }

    if (cmd->next) {
        cmd->next->prev = cmd->prev;
    } else {
        qc->tail[p] = cmd->prev;
    }

    cmd->next = NULL;
    cmd->prev = NULL;
    qc->count--;
}


wh_qcmd_t *
wh_cmdq_find(wh_cmdq_t *q, wh_str_t ws, wh_str_t id)
{
    size_t         klen;
    unsigned char  key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, ws, id);

    return klen ? wh_map_get(&q->cmds, key, klen) : NULL;
}


wh_qclient_t *
wh_cmdq_client(wh_cmdq_t *q, wh_str_t ws, wh_str_t client_id)
{
    size_t         klen;
    unsigned char  key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, ws, client_id);

    return klen ? wh_map_get(&q->clients, key, klen) : NULL;
}


/* the open commands of ws change by delta; -1 on ENOMEM */
static int
wh_cmdq_ws_add(wh_cmdq_t *q, wh_str_t ws, int delta)
{
    size_t  n;

    n = (size_t) (uintptr_t) wh_map_get(&q->workspaces, ws.data, ws.len);
    n += delta;

    if (n == 0) {
        wh_map_del(&q->workspaces, ws.data, ws.len);
        return 0;
    }

    return wh_map_put(&q->workspaces, ws.data, ws.len, (void *) (uintptr_t) n)
           ? 0 : -1;
}


static wh_qcmd_t *
wh_cmdq_new(wh_cmdq_t *q, wh_qclient_t *qc, wh_str_t id, unsigned priority,
    uint64_t seq)
{
    size_t           klen;
    wh_qcmd_t       *cmd;
    wh_map_entry_t  *e;
    unsigned char    key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, qc->ws, id);
    cmd = calloc(1, sizeof(wh_qcmd_t));

    if (klen == 0 || cmd == NULL || wh_cmdq_ws_add(q, qc->ws, 1) != 0) {
        free(cmd);
        return NULL;
    }

    e = wh_map_put(&q->cmds, key, klen, cmd);

    if (e == NULL) {
        (void) wh_cmdq_ws_add(q, qc->ws, -1);
        free(cmd);
        return NULL;
    }

    cmd->ws.data = (const char *) e->key;
    cmd->ws.len = qc->ws.len;
    cmd->id.data = (const char *) e->key + qc->ws.len + 1;
    cmd->id.len = id.len;
    cmd->priority = priority;
    cmd->seq = seq;
    wh_cmdq_link(qc, cmd);

    return cmd;
}


wh_qcmd_t *
wh_cmdq_put(wh_cmdq_t *q, wh_str_t ws, wh_str_t client_id, wh_str_t id,
    unsigned priority, uint64_t seq, const wh_cmd_state_t *state,
    int64_t due_ms)
{
    wh_qcmd_t     *cmd;
    wh_qclient_t  *qc;

    if (priority >= WH_CMD_PRIORITIES || id.len == 0
        || id.len > WH_CMD_ID_MAX)
    {
        return NULL;
    }

    cmd = wh_cmdq_find(q, ws, id);

    if (cmd == NULL) {
        qc = wh_cmdq_client_get(q, ws, client_id);

        if (qc == NULL) {
            return NULL;
        }

        cmd = wh_cmdq_new(q, qc, id, priority, seq);

        if (cmd == NULL) {
            wh_cmdq_client_drop(q, qc);
            return NULL;
        }
    }

    cmd->client->sent -= cmd->state.status == WH_CMD_SENT;
    cmd->state = *state;
    cmd->client->sent += cmd->state.status == WH_CMD_SENT;
    wh_cmdq_set_due(q, cmd, due_ms);

    if (cmd->heap == 0) {
        /* no room in the heap: the command must not stay unwatched */
        wh_cmdq_remove(q, cmd);
        return NULL;
    }

    return cmd;
}


void
wh_cmdq_remove(wh_cmdq_t *q, wh_qcmd_t *cmd)
{
    size_t          klen;
    wh_qclient_t   *qc = cmd->client;
    unsigned char   key[WH_CMDQ_KEY_MAX];

    wh_heap_remove(q, cmd);
    wh_cmdq_unlink(cmd);
    qc->sent -= cmd->state.status == WH_CMD_SENT;
    (void) wh_cmdq_ws_add(q, cmd->ws, -1);

    klen = wh_cmdq_key(key, cmd->ws, cmd->id);
    wh_map_del(&q->cmds, key, klen);
    free(cmd);

    wh_cmdq_client_drop(q, qc);
}


void
wh_cmdq_set_due(wh_cmdq_t *q, wh_qcmd_t *cmd, int64_t due_ms)
{
    int64_t  old = cmd->due_ms;

    cmd->due_ms = due_ms;

    if (q->due_set != NULL) {
        q->due_set(q->due_ctx, due_ms);
    }

    if (cmd->heap == 0) {
        (void) wh_heap_push(q, cmd);
        return;
    }

    if (due_ms < old) {
        wh_heap_up(q, cmd->heap - 1);
    } else {
        wh_heap_down(q, cmd->heap - 1);
    }
}


int64_t
wh_cmdq_next_due(const wh_cmdq_t *q)
{
    return q->nheap ? q->heap[0]->due_ms : INT64_MAX;
}


wh_qcmd_t *
wh_cmdq_pop_due(wh_cmdq_t *q, int64_t now)
{
    wh_qcmd_t  *cmd;

    if (q->nheap == 0 || q->heap[0]->due_ms > now) {
        return NULL;
    }

    cmd = q->heap[0];
    wh_heap_remove(q, cmd);

    return cmd;
}


wh_qcmd_t *
wh_cmdq_first(wh_qclient_t *qc)
{
    int  p;

    for (p = WH_CMD_PRIORITIES - 1; p >= 0; p--) {
        if (qc->head[p] != NULL) {
            return qc->head[p];
        }
    }

    return NULL;
}


wh_qcmd_t *
wh_cmdq_next(wh_qcmd_t *cmd)
{
    int  p;

    if (cmd->next != NULL) {
        return cmd->next;
    }

    for (p = (int) cmd->priority - 1; p >= 0; p--) {
        if (cmd->client->head[p] != NULL) {
            return cmd->client->head[p];
        }
    }

    return NULL;
}


size_t
wh_cmdq_count(wh_cmdq_t *q)
{
    return q->cmds.count;
}


size_t
wh_cmdq_count_ws(wh_cmdq_t *q, wh_str_t ws)
{
    return (size_t) (uintptr_t) wh_map_get(&q->workspaces, ws.data, ws.len);
}


void
wh_cmdq_depth(wh_cmdq_t *q, wh_cmdq_depth_t *d)
{
    wh_qclient_t    *qc;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    memset(d, 0, sizeof(wh_cmdq_depth_t));

    while ((e = wh_map_next(&q->clients, &it)) != NULL) {
        qc = e->value;

        if (qc->count == 0) {
            continue;
        }

        d->clients++;
        d->sent += qc->sent;
        d->pending += qc->count - qc->sent;

        if (qc->count > d->deepest) {
            d->deepest = qc->count;
        }
    }
}
