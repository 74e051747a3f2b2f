
/*
 * Wirehub: the module's limits on one connection and on one workspace.
 *
 * wirehub_message_rate: every client message takes a token from its
 * connection's bucket first; one that finds none is answered
 * "rate_limited" and dropped, and a client that keeps going over is
 * closed with 1008.
 *
 * wirehub_max_connections_per_workspace: connections are counted per
 * workspace across all worker processes as ngx_http_limit_conn_module
 * counts them per key: a red-black tree in a shared zone, one node per
 * workspace that has connections.  A connection holds its count until its
 * pool goes, or until its worker exits (a worker gone with its
 * connections still open, after worker_shutdown_timeout, gives them back
 * too); reloads keep the zone, so old and new workers share the counts.
 */


#include "ngx_http_wirehub_limits.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_reply.h"


#define NGX_HTTP_WIREHUB_WORKSPACE_ZONE  "wirehub_workspaces"


/* a workspace's count, laid over the rbtree node from its color on */
typedef struct {
    u_char                           color;
    u_char                           len;
    uint32_t                         conns;
    u_char                           data[1];
} ngx_http_wirehub_workspace_node_t;


typedef struct {
    ngx_rbtree_t                     rbtree;
    ngx_rbtree_node_t                sentinel;
} ngx_http_wirehub_workspace_shctx_t;


struct ngx_http_wirehub_hold_s {
    ngx_queue_t                      queue;      /* workspace_holds */
    ngx_shm_zone_t                  *zone;
    ngx_rbtree_node_t               *node;       /* NULL once released */
};


static ngx_int_t ngx_http_wirehub_workspace_init_zone(ngx_shm_zone_t *zone,
    void *data);
static void ngx_http_wirehub_workspace_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_rbtree_node_t *ngx_http_wirehub_workspace_lookup(
    ngx_rbtree_t *rbtree, ngx_str_t *ws, uint32_t hash);
static void ngx_http_wirehub_workspace_put(ngx_shm_zone_t *zone,
    ngx_rbtree_node_t *node);
static void ngx_http_wirehub_workspace_cleanup(void *data);


ngx_int_t
ngx_http_wirehub_limit_message(ngx_http_wirehub_session_t *s,
    unsigned opcode, u_char *data, size_t len)
{
    json_t                      *msg, *ref;
    ngx_http_wirehub_rate_rc_e   rc;

    rc = ngx_http_wirehub_rate_take(&s->conf->message_rate, &s->rate,
                                    ngx_current_msec);

    if (rc == NGX_HTTP_WIREHUB_RATE_PASS) {
        return NGX_OK;
    }

    ngx_http_wirehub_stat(s->main_conf,
                          limited[NGX_HTTP_WIREHUB_LIMIT_MESSAGE_RATE], 1);

    if (rc == NGX_HTTP_WIREHUB_RATE_CLOSE) {
        ngx_http_wirehub_stat(s->main_conf, rate_closes, 1);

        ngx_log_error(NGX_LOG_INFO, s->connection->log, 0,
                      "wirehub: closing a client that stays over "
                      "wirehub_message_rate");

        ngx_http_wirehub_session_close(s, NGX_HTTP_WIREHUB_CLOSE_POLICY,
                                       "message rate exceeded");
        return NGX_DECLINED;
    }

    /*
     * The error carries the message's "ref", when it has a valid one, so
     * that the client knows which message was dropped; nothing else of
     * the message is looked at.
     */

    msg = NULL;
    ref = NULL;

    if (opcode == WH_WS_OP_TEXT) {
        msg = json_loadb((char *) data, len, JSON_REJECT_DUPLICATES, NULL);

        if (json_is_object(msg)) {
            ref = json_object_get(msg, "ref");

            if (ref && (!json_is_string(ref)
                        || json_string_length(ref)
                           > NGX_HTTP_WIREHUB_MAX_REF))
            {
                ref = NULL;
            }
        }
    }

    (void) ngx_http_wirehub_send_client_error(s, "rate_limited",
                        "too many messages: this one was dropped", ref);
    json_decref(msg);

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_wirehub_workspace_zone_add(ngx_conf_t *cf,
    ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_str_t        name;
    ngx_shm_zone_t  *zone;

    ngx_str_set(&name, NGX_HTTP_WIREHUB_WORKSPACE_ZONE);

    zone = ngx_shared_memory_add(cf, &name, wmcf->workspace_zone_size,
                                 &ngx_http_wirehub_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_wirehub_workspace_init_zone;
    wmcf->workspace_zone = zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_workspace_init_zone(ngx_shm_zone_t *zone, void *data)
{
    size_t                               len;
    ngx_slab_pool_t                     *shpool;
    ngx_http_wirehub_workspace_shctx_t  *ctx;

    /* a reload: the counts of the old workers' connections go on */

    if (data) {
        zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    ctx = ngx_slab_alloc(shpool, sizeof(ngx_http_wirehub_workspace_shctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&ctx->rbtree, &ctx->sentinel,
                    ngx_http_wirehub_workspace_insert);

    shpool->data = ctx;
    zone->data = ctx;

    len = sizeof(" in \"wirehub_workspace_zone\"");

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in \"wirehub_workspace_zone\"%Z");

    return NGX_OK;
}


static void
ngx_http_wirehub_workspace_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                  **p;
    ngx_http_wirehub_workspace_node_t   *wn, *wnt;

    for ( ;; ) {

        if (node->key < temp->key) {

            p = &temp->left;

        } else if (node->key > temp->key) {

            p = &temp->right;

        } else { /* node->key == temp->key */

            wn = (ngx_http_wirehub_workspace_node_t *) &node->color;
            wnt = (ngx_http_wirehub_workspace_node_t *) &temp->color;

            p = (ngx_memn2cmp(wn->data, wnt->data, wn->len, wnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_rbtree_node_t *
ngx_http_wirehub_workspace_lookup(ngx_rbtree_t *rbtree, ngx_str_t *ws,
    uint32_t hash)
{
    ngx_int_t                           rc;
    ngx_rbtree_node_t                  *node, *sentinel;
    ngx_http_wirehub_workspace_node_t  *wn;

    node = rbtree->root;
    sentinel = rbtree->sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        wn = (ngx_http_wirehub_workspace_node_t *) &node->color;

        rc = ngx_memn2cmp(ws->data, wn->data, ws->len, (size_t) wn->len);

        if (rc == 0) {
            return node;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


ngx_int_t
ngx_http_wirehub_workspace_acquire(ngx_http_request_t *r,
    ngx_http_wirehub_identity_t *id, ngx_http_wirehub_hold_t **hold)
{
    size_t                               n;
    uint32_t                             hash, conns;
    ngx_str_t                           *ws;
    ngx_uint_t                           limit;
    ngx_shm_zone_t                      *zone;
    ngx_slab_pool_t                     *shpool;
    ngx_rbtree_node_t                   *node;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_wirehub_hold_t             *h;
    ngx_http_wirehub_loc_conf_t         *wlcf;
    ngx_http_wirehub_main_conf_t        *wmcf;
    ngx_http_wirehub_workspace_node_t   *wn;
    ngx_http_wirehub_workspace_shctx_t  *ctx;

    *hold = NULL;

    wlcf = ngx_http_get_module_loc_conf(r, ngx_http_wirehub_module);
    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    limit = wlcf->max_connections_per_workspace;
    zone = wmcf->workspace_zone;

    if (limit == 0 || zone == NULL || id == NULL) {
        return NGX_OK;
    }

    ws = &id->workspace;

    if (ws->len == 0 || ws->len > 255) {
        return NGX_ERROR;
    }

    ctx = zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;
    hash = ngx_crc32_short(ws->data, ws->len);

    ngx_shmtx_lock(&shpool->mutex);

    node = ngx_http_wirehub_workspace_lookup(&ctx->rbtree, ws, hash);

    if (node == NULL) {
        n = offsetof(ngx_rbtree_node_t, color)
            + offsetof(ngx_http_wirehub_workspace_node_t, data)
            + ws->len;

        node = ngx_slab_alloc_locked(shpool, n);

        if (node == NULL) {
            ngx_shmtx_unlock(&shpool->mutex);
            return NGX_BUSY;
        }

        wn = (ngx_http_wirehub_workspace_node_t *) &node->color;

        node->key = hash;
        wn->len = (u_char) ws->len;
        wn->conns = 1;
        ngx_memcpy(wn->data, ws->data, ws->len);

        ngx_rbtree_insert(&ctx->rbtree, node);

    } else {
        wn = (ngx_http_wirehub_workspace_node_t *) &node->color;

        if (wn->conns >= limit) {
            conns = wn->conns;
            ngx_shmtx_unlock(&shpool->mutex);

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "wirehub: handshake refused: workspace \"%V\" "
                          "has %uD connections, its limit",
                          ws, conns);
            return NGX_DECLINED;
        }

        wn->conns++;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    /*
     * The connection's pool, not the request's: the request is freed once
     * the 101 is out, the connection is what is counted.  The hold itself
     * is outside the pool, so that the cleanup may move to the session's
     * pool when that becomes the connection's.
     */

    h = ngx_alloc(sizeof(ngx_http_wirehub_hold_t), r->connection->log);
    if (h == NULL) {
        ngx_http_wirehub_workspace_put(zone, node);
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->connection->pool, 0);
    if (cln == NULL) {
        ngx_free(h);
        ngx_http_wirehub_workspace_put(zone, node);
        return NGX_ERROR;
    }

    cln->data = h;
    h->zone = zone;
    h->node = node;
    ngx_queue_insert_tail(&wmcf->workspace_holds, &h->queue);

    cln->handler = ngx_http_wirehub_workspace_cleanup;

    *hold = h;

    return NGX_OK;
}


void
ngx_http_wirehub_workspace_release(ngx_http_wirehub_hold_t *hold)
{
    if (hold->node == NULL) {
        return;
    }

    ngx_http_wirehub_workspace_put(hold->zone, hold->node);

    hold->node = NULL;
    ngx_queue_remove(&hold->queue);
}


static void
ngx_http_wirehub_workspace_cleanup(void *data)
{
    ngx_http_wirehub_workspace_release(data);
    ngx_free(data);
}


void
ngx_http_wirehub_workspace_exit(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_queue_t  *q;

    while (!ngx_queue_empty(&wmcf->workspace_holds)) {
        q = ngx_queue_head(&wmcf->workspace_holds);

        ngx_http_wirehub_workspace_release(
            ngx_queue_data(q, ngx_http_wirehub_hold_t, queue));
    }
}


static void
ngx_http_wirehub_workspace_put(ngx_shm_zone_t *zone, ngx_rbtree_node_t *node)
{
    ngx_slab_pool_t                     *shpool;
    ngx_http_wirehub_workspace_node_t   *wn;
    ngx_http_wirehub_workspace_shctx_t  *ctx;

    ctx = zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;
    wn = (ngx_http_wirehub_workspace_node_t *) &node->color;

    ngx_shmtx_lock(&shpool->mutex);

    wn->conns--;

    if (wn->conns == 0) {
        ngx_rbtree_delete(&ctx->rbtree, node);
        ngx_slab_free_locked(shpool, node);
    }

    ngx_shmtx_unlock(&shpool->mutex);
}
