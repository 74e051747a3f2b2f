
/*
 * Wirehub: where a token comes from and how it becomes a verified identity.
 */


#include "ngx_http_wirehub_auth.h"
#include "ngx_http_wirehub_counters.h"


/*
 * The tokens a worker has verified, each remembered with the identity it
 * carries, so that the same bytes skip the signature and the JSON while
 * their exp, nbf and iat, with the leeway, would let them pass: a backend
 * sends one token with many API calls, and a connect storm is mostly
 * clients coming back with the token they had.  What the identity may do
 * is still checked every time (ngx_http_wirehub_authz.h, with the
 * revocations).
 *
 * A token is remembered the second time its worker verifies it: the first
 * time only its hash is noted, in a table of 4 bytes a slot.  A fleet that
 * connects once and stays connected costs no entries, and a stream of
 * tokens seen once does not push out the ones that come back.  Sets of
 * four entries, the set chosen by the hash, the least recently used entry
 * of a set replaced.
 */

#define NGX_HTTP_WIREHUB_TOKEN_WAYS       4
#define NGX_HTTP_WIREHUB_TOKEN_CACHE_MAX  2048    /* longer: not kept */


typedef struct {
    ngx_pool_t                    *pool;      /* NULL: empty */
    ngx_str_t                      token;
    uint32_t                       hash;
    ngx_uint_t                     used;      /* the cache's clock; 0 empty */
    time_t                         from;      /* passes from <= now */
    time_t                         until;     /*   and now < until */
    ngx_http_wirehub_identity_t   *id;
} ngx_http_wirehub_token_t;


struct ngx_http_wirehub_token_cache_s {
    ngx_http_wirehub_token_t      *entries;   /* sets of WAYS */
    uint32_t                      *seen;      /* a hash verified once,
                                                 one for each entry */
    ngx_uint_t                     mask;      /* the sets, less one */
    ngx_uint_t                     clock;
};


/* the entries (and the slots of seen) of a cache */
#define ngx_http_wirehub_token_slots(cache)                                   \
    (((cache)->mask + 1) * NGX_HTTP_WIREHUB_TOKEN_WAYS)

/* the set a hash chooses */
#define ngx_http_wirehub_token_set(cache, hash)                               \
    (&(cache)->entries[((hash) & (cache)->mask) * NGX_HTTP_WIREHUB_TOKEN_WAYS])


static ngx_http_wirehub_identity_t *ngx_http_wirehub_verify(
    ngx_http_wirehub_main_conf_t *wmcf, ngx_log_t *log, ngx_pool_t *pool,
    u_char *token, size_t len, const char **code, ngx_str_t *message,
    time_t *from, time_t *until);
static ngx_http_wirehub_jwt_cache_t *ngx_http_wirehub_jwt_cache(
    ngx_http_wirehub_main_conf_t *wmcf);
static ngx_http_wirehub_token_cache_t *ngx_http_wirehub_tokens(
    ngx_http_wirehub_main_conf_t *wmcf);
static ngx_http_wirehub_token_t *ngx_http_wirehub_token_find(
    ngx_http_wirehub_token_cache_t *cache, ngx_str_t *token, uint32_t hash);
static void ngx_http_wirehub_token_keep(ngx_http_wirehub_token_cache_t *cache,
    ngx_http_wirehub_token_t *t, ngx_str_t *token, uint32_t hash,
    ngx_http_wirehub_identity_t *id, time_t from, time_t until);
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
    time_t                           now, from, until;
    uint32_t                         hash;
    ngx_str_t                        token;
    ngx_http_wirehub_token_t        *t;
    ngx_http_wirehub_identity_t     *id;
    ngx_http_wirehub_main_conf_t    *wmcf;
    ngx_http_wirehub_token_cache_t  *cache;

    *status = NGX_HTTP_UNAUTHORIZED;

    if (ngx_http_wirehub_find_token(r, &token) != NGX_OK || token.len == 0) {
        *code = "missing_token";
        ngx_str_set(message, "a bearer token is required");
        return NGX_DECLINED;
    }

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    cache = token.len <= NGX_HTTP_WIREHUB_TOKEN_CACHE_MAX
            ? ngx_http_wirehub_tokens(wmcf) : NULL;
    hash = 0;
    t = NULL;

    if (cache != NULL) {
        hash = ngx_murmur_hash2(token.data, token.len);
        t = ngx_http_wirehub_token_find(cache, &token, hash);
        now = ngx_time();

        if (t != NULL && t->from <= now && now < t->until) {
            /* the request's own copy: the entry may go before the request */
            id = ngx_http_wirehub_identity_copy(r->pool, t->id);
            if (id == NULL) {
                *status = NGX_HTTP_INTERNAL_SERVER_ERROR;
                *code = "internal";
                ngx_str_set(message, "internal error");
                return NGX_DECLINED;
            }

            ngx_http_wirehub_stat(wmcf, tokens_cached, 1);
            ctx->identity = id;
            return NGX_OK;
        }
    }

    id = ngx_http_wirehub_verify(wmcf, r->connection->log, r->pool,
                                 token.data, token.len, code, message,
                                 &from, &until);
    if (id == NULL) {
        if (*code == NULL) {
            *status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            *code = "internal";
            ngx_str_set(message, "internal error");
        }

        return NGX_DECLINED;
    }

    if (cache != NULL) {
        ngx_http_wirehub_token_keep(cache, t, &token, hash, id, from, until);
    }

    ctx->identity = id;

    return NGX_OK;
}


/* the worker's tokens, made at the first: NULL when wirehub_token_cache
 * is 0 or there is no memory for them */

static ngx_http_wirehub_token_cache_t *
ngx_http_wirehub_tokens(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_uint_t                       sets;
    ngx_http_wirehub_token_cache_t  *cache;

    if (wmcf->tokens != NULL || wmcf->token_cache_size == 0) {
        return wmcf->tokens;
    }

    for (sets = 1;
         sets * NGX_HTTP_WIREHUB_TOKEN_WAYS < wmcf->token_cache_size;
         sets <<= 1)
    {
        /* void */
    }

    /* calloc(): the pages of entries never used are never touched */

    cache = ngx_calloc(sizeof(ngx_http_wirehub_token_cache_t),
                       ngx_cycle->log);
    if (cache == NULL) {
        goto failed;
    }

    cache->entries = ngx_calloc(sets * NGX_HTTP_WIREHUB_TOKEN_WAYS
                                * sizeof(ngx_http_wirehub_token_t),
                                ngx_cycle->log);
    cache->seen = ngx_calloc(sets * NGX_HTTP_WIREHUB_TOKEN_WAYS
                             * sizeof(uint32_t), ngx_cycle->log);

    if (cache->entries == NULL || cache->seen == NULL) {
        ngx_free(cache->entries);
        ngx_free(cache->seen);
        ngx_free(cache);
        goto failed;
    }

    cache->mask = sets - 1;
    wmcf->tokens = cache;

    return cache;

failed:

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "wirehub: no memory for the token cache, "
                  "every token is verified");
    wmcf->token_cache_size = 0;

    return NULL;
}


static ngx_http_wirehub_token_t *
ngx_http_wirehub_token_find(ngx_http_wirehub_token_cache_t *cache,
    ngx_str_t *token, uint32_t hash)
{
    ngx_uint_t                 i;
    ngx_http_wirehub_token_t  *set, *t;

    set = ngx_http_wirehub_token_set(cache, hash);

    for (i = 0; i < NGX_HTTP_WIREHUB_TOKEN_WAYS; i++) {
        t = &set[i];

        if (t->pool != NULL && t->hash == hash && t->token.len == token->len
            && ngx_memcmp(t->token.data, token->data, token->len) == 0)
        {
            t->used = ++cache->clock;
            return t;
        }
    }

    return NULL;
}


/*
 * A token just verified: its hash noted the first time, the token and its
 * identity remembered the second, in place of its set's entry used
 * longest ago (an empty one: never).  An entry of the same bytes (t),
 * found out of its times a moment ago, is replaced rather than doubled.
 */

static void
ngx_http_wirehub_token_keep(ngx_http_wirehub_token_cache_t *cache,
    ngx_http_wirehub_token_t *t, ngx_str_t *token, uint32_t hash,
    ngx_http_wirehub_identity_t *id, time_t from, time_t until)
{
    uint32_t                  *seen;
    ngx_uint_t                 i;
    ngx_http_wirehub_token_t  *set;

    if (from >= until) {
        return;
    }

    seen = &cache->seen[hash & (ngx_http_wirehub_token_slots(cache) - 1)];

    if (t == NULL && *seen != hash) {
        *seen = hash;
        return;
    }

    set = ngx_http_wirehub_token_set(cache, hash);

    if (t == NULL) {
        t = &set[0];

        for (i = 1; i < NGX_HTTP_WIREHUB_TOKEN_WAYS; i++) {
            if (set[i].used < t->used) {
                t = &set[i];
            }
        }
    }

    if (t->pool) {
        ngx_destroy_pool(t->pool);
        t->pool = NULL;
    }

    t->used = 0;

    /*
     * Room for the token and the identity in the pool's one block; the
     * cycle's log: the entry outlives the connection's
     */
    t->pool = ngx_create_pool(sizeof(ngx_pool_t) + token->len
                              + ngx_http_wirehub_identity_size(id)
                              + NGX_ALIGNMENT, ngx_cycle->log);
    if (t->pool == NULL) {
        return;
    }

    t->token.data = ngx_pnalloc(t->pool, token->len);
    t->id = ngx_http_wirehub_identity_copy(t->pool, id);

    if (t->token.data == NULL || t->id == NULL) {
        ngx_destroy_pool(t->pool);
        t->pool = NULL;
        return;
    }

    ngx_memcpy(t->token.data, token->data, token->len);
    t->token.len = token->len;
    t->hash = hash;
    t->used = ++cache->clock;
    t->from = from;
    t->until = until;
}


/*
 * The worker's cache of the public-key signatures it found good, made at
 * the first token: NULL (every signature checked) when wirehub_jwt_cache
 * is 0 or there is no memory for it.
 */

static ngx_http_wirehub_jwt_cache_t *
ngx_http_wirehub_jwt_cache(ngx_http_wirehub_main_conf_t *wmcf)
{
    if (wmcf->jwt_cache == NULL && wmcf->jwt_cache_size && wmcf->keys) {
        wmcf->jwt_cache = ngx_http_wirehub_jwt_cache_create(
                                        wmcf->keys, wmcf->jwt_cache_size);
        if (wmcf->jwt_cache == NULL) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "wirehub: no memory for the JWT cache, "
                          "every signature is checked");
            wmcf->jwt_cache_size = 0;
        }
    }

    return wmcf->jwt_cache;
}


void
ngx_http_wirehub_auth_exit(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_uint_t                       i, n;
    ngx_http_wirehub_token_cache_t  *cache;

    ngx_http_wirehub_jwt_cache_destroy(wmcf->jwt_cache);
    wmcf->jwt_cache = NULL;

    cache = wmcf->tokens;

    if (cache == NULL) {
        return;
    }

    n = ngx_http_wirehub_token_slots(cache);

    for (i = 0; i < n; i++) {
        if (cache->entries[i].pool) {
            ngx_destroy_pool(cache->entries[i].pool);
        }
    }

    ngx_free(cache->entries);
    ngx_free(cache->seen);
    ngx_free(cache);
    wmcf->tokens = NULL;
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
    time_t  from, until;

    return ngx_http_wirehub_verify(wmcf, log, pool, token, len, code,
                                   message, &from, &until);
}


/* a claim's time moved by the leeway, not past what time_t holds */

static time_t
ngx_http_wirehub_claim_time(int64_t t, time_t delta)
{
    if (delta >= 0 && t > NGX_MAX_TIME_T_VALUE - delta) {
        return NGX_MAX_TIME_T_VALUE;
    }

    if (delta < 0 && t < -NGX_MAX_TIME_T_VALUE - delta) {
        return -NGX_MAX_TIME_T_VALUE;
    }

    return (time_t) t + delta;
}


/*
 * ngx_http_wirehub_verify_token(), and the seconds [from, until) in which
 * the token's times pass the checks that the codec made at ngx_time()
 * (ngx_http_wirehub_jwt_claims.c: exp <= now - leeway, nbf or iat > now +
 * leeway are refused).
 */

static ngx_http_wirehub_identity_t *
ngx_http_wirehub_verify(ngx_http_wirehub_main_conf_t *wmcf, ngx_log_t *log,
    ngx_pool_t *pool, u_char *token, size_t len, const char **code,
    ngx_str_t *message, time_t *from, time_t *until)
{
    char                            err[160];
    time_t                          leeway, t;
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
        rc = ngx_http_wirehub_jwt_verify(wmcf->keys,
                                         ngx_http_wirehub_jwt_cache(wmcf),
                                         &wmcf->policy, token, len,
                                         (int64_t) ngx_time(), &claims, err,
                                         sizeof(err));
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

    if (claims.cached) {
        ngx_http_wirehub_stat(wmcf, jwt_cached, 1);
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

    leeway = wmcf->policy.leeway > 0 ? (time_t) wmcf->policy.leeway : 0;
    *until = claims.exp ? ngx_http_wirehub_claim_time(claims.exp, leeway)
                        : NGX_MAX_TIME_T_VALUE;
    *from = claims.nbf ? ngx_http_wirehub_claim_time(claims.nbf, -leeway)
                       : -NGX_MAX_TIME_T_VALUE;

    if (claims.iat) {
        t = ngx_http_wirehub_claim_time(claims.iat, -leeway);
        *from = ngx_max(*from, t);
    }

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
