
/*
 * Wirehub: authorization, the rules of DESIGN.md in one place.  The
 * revocations wirehubd announces (REVOKE, replayed after every WELCOME) are
 * kept here too: a deleted client's tokens issued before its deletion are
 * refused for every action.
 */


#include "ngx_http_wirehub_authz.h"
#include "wh_channel.h"


/* the longest client id wirehubd accepts */
#define NGX_HTTP_WIREHUB_CLIENT_MAX  255


typedef struct {
    ngx_str_node_t                   node;       /* workspace NUL client */
    time_t                           before;     /* iat below it: refused */
} ngx_http_wirehub_revoked_t;


static ngx_uint_t ngx_http_wirehub_is_revoked(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_http_wirehub_identity_t *id);
static ngx_int_t ngx_http_wirehub_revocation_key(ngx_str_t *ws,
    ngx_str_t *client, u_char *buf, ngx_str_t *key);
static ngx_uint_t ngx_http_wirehub_may_read(ngx_http_wirehub_identity_t *id,
    ngx_str_t *channel);
static ngx_uint_t ngx_http_wirehub_may_publish(
    ngx_http_wirehub_identity_t *id, ngx_str_t *channel);
static ngx_uint_t ngx_http_wirehub_matches(ngx_array_t *patterns,
    ngx_str_t *channel);
static ngx_int_t ngx_http_wirehub_deny(ngx_http_wirehub_denial_t *denial,
    ngx_uint_t status, const char *code, const char *message);


static const char  *ngx_http_wirehub_actions[] = {
    "connection", "subscribe", "publish", "API call", "refresh"
};


ngx_int_t
ngx_http_wirehub_authorize(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_identity_t *id, ngx_http_wirehub_action_e action,
    ngx_http_wirehub_resource_t *resource, ngx_http_wirehub_denial_t *denial,
    ngx_log_t *log)
{
    ngx_int_t  rc;

    rc = NGX_OK;

    if (ngx_http_wirehub_is_revoked(wmcf, id)) {
        rc = ngx_http_wirehub_deny(denial, NGX_HTTP_UNAUTHORIZED,
                                   "token_revoked",
                                   "the client was deleted: its tokens are "
                                   "revoked");
        goto done;
    }

    switch (action) {

    case NGX_HTTP_WIREHUB_ACT_CONNECT:
        break;

    case NGX_HTTP_WIREHUB_ACT_SUBSCRIBE:
        if (!ngx_http_wirehub_may_read(id, &resource->channel)) {
            rc = ngx_http_wirehub_deny(denial, NGX_HTTP_FORBIDDEN,
                                       "forbidden",
                                       "the token does not allow this "
                                       "channel");
        }
        break;

    case NGX_HTTP_WIREHUB_ACT_PUBLISH:
        if (!ngx_http_wirehub_may_publish(id, &resource->channel)) {
            rc = ngx_http_wirehub_deny(denial, NGX_HTTP_FORBIDDEN,
                                       "forbidden",
                                       "the token does not allow "
                                       "publishing here");
        }
        break;

    case NGX_HTTP_WIREHUB_ACT_API:
        if (id->role == NGX_HTTP_WIREHUB_ROLE_CLIENT) {
            rc = ngx_http_wirehub_deny(denial, NGX_HTTP_FORBIDDEN,
                                       "forbidden",
                                       "the API needs a service or admin "
                                       "token");
            break;
        }

        /* an admin token may act in any workspace it names */

        if (resource->workspace.data == NULL
            || (resource->workspace.len == id->workspace.len
                && ngx_strncmp(resource->workspace.data, id->workspace.data,
                               id->workspace.len) == 0)
            || (id->role == NGX_HTTP_WIREHUB_ROLE_ADMIN
                && wh_workspace_valid((char *) resource->workspace.data,
                                      resource->workspace.len)))
        {
            break;
        }

        rc = ngx_http_wirehub_deny(denial, NGX_HTTP_FORBIDDEN, "forbidden",
                                   "X-Workspace-ID does not match the "
                                   "token");
        break;

    case NGX_HTTP_WIREHUB_ACT_REFRESH:
        if (id->workspace.len != resource->workspace.len
            || ngx_strncmp(id->workspace.data, resource->workspace.data,
                           id->workspace.len) != 0
            || id->client_id.len != resource->client_id.len
            || ngx_strncmp(id->client_id.data, resource->client_id.data,
                           id->client_id.len) != 0)
        {
            rc = ngx_http_wirehub_deny(denial, NGX_HTTP_FORBIDDEN,
                                       "forbidden",
                                       "a refresh token must name the same "
                                       "workspace and client");
        }
        break;
    }

done:

    if (rc != NGX_OK) {
        /* the client's doing: INFO, and never the token */
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "wirehub: %s refused: %s",
                      ngx_http_wirehub_actions[action], denial->message);
    }

    return rc;
}


static ngx_int_t
ngx_http_wirehub_deny(ngx_http_wirehub_denial_t *denial, ngx_uint_t status,
    const char *code, const char *message)
{
    denial->status = status;
    denial->code = code;
    denial->message = message;

    return NGX_DECLINED;
}


/*
 * "channels" patterns bound what a client may read (absent: every channel
 * but the system ones); service and admin tokens read everything of their
 * workspace.  Wildcards never match system channels (wh_pattern_match).
 */

static ngx_uint_t
ngx_http_wirehub_may_read(ngx_http_wirehub_identity_t *id,
    ngx_str_t *channel)
{
    if (id->role != NGX_HTTP_WIREHUB_ROLE_CLIENT) {
        return 1;
    }

    if (id->channels == NULL) {
        return !wh_channel_is_system((char *) channel->data, channel->len);
    }

    return ngx_http_wirehub_matches(id->channels, channel);
}


/*
 * System channels are written by wirehubd only; "publish" patterns bound
 * what a token may write (absent: nothing for clients, everything for
 * service and admin tokens).
 */

static ngx_uint_t
ngx_http_wirehub_may_publish(ngx_http_wirehub_identity_t *id,
    ngx_str_t *channel)
{
    if (wh_channel_is_system((char *) channel->data, channel->len)) {
        return 0;
    }

    if (id->publish == NULL) {
        return id->role != NGX_HTTP_WIREHUB_ROLE_CLIENT;
    }

    return ngx_http_wirehub_matches(id->publish, channel);
}


static ngx_uint_t
ngx_http_wirehub_matches(ngx_array_t *patterns, ngx_str_t *channel)
{
    ngx_str_t   *pat;
    ngx_uint_t   i;

    pat = patterns->elts;

    for (i = 0; i < patterns->nelts; i++) {
        if (wh_pattern_match((char *) pat[i].data, pat[i].len,
                             (char *) channel->data, channel->len))
        {
            return 1;
        }
    }

    return 0;
}


void
ngx_http_wirehub_authz_init(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_rbtree_init(&wmcf->revoked, &wmcf->revoked_sentinel,
                    ngx_str_rbtree_insert_value);
}


static ngx_int_t
ngx_http_wirehub_revocation_key(ngx_str_t *ws, ngx_str_t *client,
    u_char *buf, ngx_str_t *key)
{
    u_char  *p;

    if (ws->len > WH_WORKSPACE_MAX
        || client->len > NGX_HTTP_WIREHUB_CLIENT_MAX)
    {
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
    u_char                      buf[WH_WORKSPACE_MAX + 1
                                    + NGX_HTTP_WIREHUB_CLIENT_MAX + 1];
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


static ngx_uint_t
ngx_http_wirehub_is_revoked(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_http_wirehub_identity_t *id)
{
    return id->iat < ngx_http_wirehub_revoked_until(wmcf, &id->workspace,
                                                    &id->client_id);
}


/*
 * The first iat a token of this client may carry, 0 if it was never
 * deleted.  A token issued before the delete by a clock running ahead
 * carries an iat up to the leeway after it, and is still refused; so is
 * one issued meanwhile with an honest clock, which is why the token
 * minted at registration takes this iat.
 */

time_t
ngx_http_wirehub_revoked_until(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_str_t *workspace, ngx_str_t *client_id)
{
    u_char                      buf[WH_WORKSPACE_MAX + 1
                                    + NGX_HTTP_WIREHUB_CLIENT_MAX + 1];
    ngx_str_t                   key;
    ngx_http_wirehub_revoked_t *rv;

    if (wmcf->revoked.root == wmcf->revoked.sentinel) {
        return 0;
    }

    if (ngx_http_wirehub_revocation_key(workspace, client_id, buf, &key)
        != NGX_OK)
    {
        return 0;
    }

    rv = (ngx_http_wirehub_revoked_t *)
             ngx_str_rbtree_lookup(&wmcf->revoked, &key,
                                   ngx_crc32_short(key.data, key.len));

    if (rv == NULL) {
        return 0;
    }

    /*
     * before is the second after the delete: a clock up to the leeway
     * ahead wrote at most before - 1 + leeway, and a token minted now
     * with that iat is still accepted by the iat check (iat <= now +
     * leeway).
     */

    return (wmcf->leeway > 0) ? rv->before - 1 + wmcf->leeway : rv->before;
}
