
/*
 * Wirehub: where a token comes from and how it becomes a verified identity.
 */


#include "ngx_http_wirehub_auth.h"


static ngx_int_t ngx_http_wirehub_find_token(ngx_http_request_t *r,
    ngx_str_t *token);
static ngx_array_t *ngx_http_wirehub_copy_patterns(ngx_pool_t *pool,
    json_t *array);
static ngx_array_t *ngx_http_wirehub_copy_strings(ngx_pool_t *pool,
    ngx_array_t *src);


static ngx_int_t
ngx_http_wirehub_find_token(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h) {
        if (h->value.len > 7
            && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
        {
            p = h->value.data + 7;
            last = h->value.data + h->value.len;

            while (p < last && *p == ' ') {
                p++;
            }

            token->data = p;
            token->len = last - p;
            return NGX_OK;
        }

        return NGX_DECLINED;
    }

    if (r->args.len
        && ngx_http_arg(r, (u_char *) "token", 5, token) == NGX_OK)
    {
        return NGX_OK;
    }

    /* the last path segment, for clients that cannot set headers */

    last = r->uri.data + r->uri.len;

    for (p = last; p > r->uri.data && p[-1] != '/'; p--) {
        /* void */
    }

    if (last - p > 3 && ngx_strncmp(p, "eyJ", 3) == 0
        && ngx_strlchr(p, last, '.') != NULL)
    {
        token->data = p;
        token->len = last - p;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_wirehub_authenticate(ngx_http_request_t *r,
    ngx_http_wirehub_ctx_t *ctx, ngx_uint_t *status, const char **code,
    ngx_str_t *message)
{
    ngx_str_t                      token;
    ngx_http_wirehub_identity_t   *id;
    ngx_http_wirehub_main_conf_t  *wmcf;

    *status = NGX_HTTP_UNAUTHORIZED;

    if (ngx_http_wirehub_find_token(r, &token) != NGX_OK || token.len == 0) {
        *code = "missing_token";
        ngx_str_set(message, "a bearer token is required");
        return NGX_DECLINED;
    }

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    id = ngx_http_wirehub_verify_token(wmcf, r->connection->log, r->pool,
                                       token.data, token.len, code, message);
    if (id == NULL) {
        if (*code == NULL) {
            *status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            *code = "internal";
            ngx_str_set(message, "internal error");
        }

        return NGX_DECLINED;
    }

    ctx->identity = id;

    return NGX_OK;
}


ngx_http_wirehub_identity_t *
ngx_http_wirehub_identity_copy(ngx_pool_t *pool,
    ngx_http_wirehub_identity_t *id)
{
    ngx_uint_t                    i;
    ngx_array_t                  *src, **dst;
    ngx_http_wirehub_identity_t  *copy;

    copy = ngx_palloc(pool, sizeof(ngx_http_wirehub_identity_t));
    if (copy == NULL) {
        return NULL;
    }

    *copy = *id;

    copy->workspace.data = ngx_pstrdup(pool, &id->workspace);
    copy->client_id.data = ngx_pstrdup(pool, &id->client_id);

    if (copy->workspace.data == NULL || copy->client_id.data == NULL) {
        return NULL;
    }

    for (i = 0; i < 2; i++) {
        src = i ? id->publish : id->channels;
        dst = i ? &copy->publish : &copy->channels;

        if (src == NULL) {
            continue;
        }

        *dst = ngx_http_wirehub_copy_strings(pool, src);
        if (*dst == NULL) {
            return NULL;
        }
    }

    return copy;
}


/* what ngx_http_wirehub_identity_copy() takes from a pool, aligned */

size_t
ngx_http_wirehub_identity_size(ngx_http_wirehub_identity_t *id)
{
    size_t        size;
    ngx_str_t    *s;
    ngx_uint_t    i, j;
    ngx_array_t  *a;

    size = ngx_align(sizeof(ngx_http_wirehub_identity_t), NGX_ALIGNMENT)
           + id->workspace.len + id->client_id.len;

    for (i = 0; i < 2; i++) {
        a = i ? id->publish : id->channels;

        if (a == NULL) {
            continue;
        }

        size += NGX_ALIGNMENT + sizeof(ngx_array_t)
                + NGX_ALIGNMENT + ngx_max(a->nelts, 1) * sizeof(ngx_str_t);

        s = a->elts;

        for (j = 0; j < a->nelts; j++) {
            size += s[j].len;
        }
    }

    return size;
}


static ngx_array_t *
ngx_http_wirehub_copy_strings(ngx_pool_t *pool, ngx_array_t *src)
{
    ngx_str_t    *from, *to;
    ngx_uint_t    i;
    ngx_array_t  *a;

    a = ngx_array_create(pool, src->nelts ? src->nelts : 1,
                         sizeof(ngx_str_t));
    if (a == NULL) {
        return NULL;
    }

    from = src->elts;

    for (i = 0; i < src->nelts; i++) {
        to = ngx_array_push(a);
        if (to == NULL) {
            return NULL;
        }

        to->len = from[i].len;
        to->data = ngx_pstrdup(pool, &from[i]);
        if (to->data == NULL) {
            return NULL;
        }
    }

    return a;
}


/*
 * Returns the identity, or NULL with *code and *message set for a rejected
 * token (*code NULL on an allocation failure).  The token itself is never
 * logged: only the reason.
 */

ngx_http_wirehub_identity_t *
ngx_http_wirehub_verify_token(ngx_http_wirehub_main_conf_t *wmcf,
    ngx_log_t *log, ngx_pool_t *pool, u_char *token, size_t len,
    const char **code, ngx_str_t *message)
{
    char                            err[160];
    size_t                          n;
    ngx_http_wirehub_jwt_rc_e       rc;
    ngx_http_wirehub_identity_t    *id;
    ngx_http_wirehub_jwt_claims_t   claims;

    *code = NULL;
    err[0] = '\0';

    if (len > NGX_HTTP_WIREHUB_MAX_TOKEN) {
        rc = NGX_HTTP_WIREHUB_JWT_TOO_LARGE;
        ngx_cpystrn((u_char *) err, (u_char *) "token too large",
                    sizeof(err));

    } else {
        rc = ngx_http_wirehub_jwt_verify(wmcf->keys, &wmcf->policy, token,
                                         len, (int64_t) ngx_time(), &claims,
                                         err, sizeof(err));
    }

    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        *code = ngx_http_wirehub_jwt_rc_code(rc);

        n = ngx_strlen(err);
        message->data = ngx_pnalloc(pool, n);
        if (message->data == NULL) {
            *code = NULL;
            return NULL;
        }

        message->len = n;
        ngx_memcpy(message->data, err, n);

        ngx_log_error(NGX_LOG_INFO, log, 0, "wirehub: token rejected: %s",
                      err);
        return NULL;
    }

    id = ngx_pcalloc(pool, sizeof(ngx_http_wirehub_identity_t));
    if (id == NULL) {
        goto failed;
    }

    id->workspace.len = ngx_strlen(claims.workspace);
    id->workspace.data = ngx_pstrdup(pool, &(ngx_str_t) {
        id->workspace.len, (u_char *) claims.workspace });

    id->client_id.len = ngx_strlen(claims.client_id);
    id->client_id.data = ngx_pstrdup(pool, &(ngx_str_t) {
        id->client_id.len, (u_char *) claims.client_id });

    if (id->workspace.data == NULL || id->client_id.data == NULL) {
        goto failed;
    }

    id->role = claims.role;
    id->exp = (time_t) claims.exp;
    id->iat = (time_t) claims.iat;

    if (claims.channels) {
        id->channels = ngx_http_wirehub_copy_patterns(pool, claims.channels);
        if (id->channels == NULL) {
            goto failed;
        }
    }

    if (claims.publish) {
        id->publish = ngx_http_wirehub_copy_patterns(pool, claims.publish);
        if (id->publish == NULL) {
            goto failed;
        }
    }

    ngx_http_wirehub_jwt_claims_free(&claims);

    return id;

failed:

    ngx_http_wirehub_jwt_claims_free(&claims);

    return NULL;
}


static ngx_array_t *
ngx_http_wirehub_copy_patterns(ngx_pool_t *pool, json_t *array)
{
    size_t        i, n;
    json_t       *item;
    ngx_str_t    *s;
    ngx_array_t  *a;

    n = json_array_size(array);

    a = ngx_array_create(pool, n ? n : 1, sizeof(ngx_str_t));
    if (a == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        item = json_array_get(array, i);

        s = ngx_array_push(a);
        if (s == NULL) {
            return NULL;
        }

        s->len = json_string_length(item);
        s->data = ngx_pnalloc(pool, s->len);
        if (s->data == NULL) {
            return NULL;
        }

        ngx_memcpy(s->data, json_string_value(item), s->len);
    }

    return a;
}
