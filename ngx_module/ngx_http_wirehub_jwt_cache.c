
/*
 * Wirehub: the public-key signatures a process has found good.
 *
 * A client that reconnects brings the token it had, and checking an ES256
 * signature again costs about 80 us of the 200 a handshake costs.  A
 * signature found good is remembered by the SHA-256 of the whole token, in
 * a cache made for one key set, so only the same bytes checked by the same
 * keys skip the check; everything else about the token (its header, its
 * claims, exp and nbf against the clock) is checked again every time.
 * Digests rather than tokens: 40 bytes an entry, whatever the token's
 * length.
 *
 * Sets of four entries, the set chosen by the digest, the least recently
 * used entry of a set replaced: no allocation after the cache is made.
 * Nothing is shared: one cache per process, used from one thread.
 */


#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "ngx_http_wirehub_jwt_internal.h"


#define NGX_HTTP_WIREHUB_JWT_CACHE_WAYS  4


/*
 * No key in an entry: the cache serves one key set, and the same bytes
 * name the same key of it (ngx_http_wirehub_jwt_select_key()).
 */
typedef struct {
    unsigned char                      digest[NGX_HTTP_WIREHUB_JWT_DIGEST];
    uint64_t                           used;     /* the clock; 0: empty */
} ngx_http_wirehub_jwt_cached_t;


struct ngx_http_wirehub_jwt_cache_s {
    const ngx_http_wirehub_jwt_keys_t *keys;     /* the only ones it knows */
    ngx_http_wirehub_jwt_cached_t     *entries;
    size_t                             mask;     /* the sets, less one */
    uint64_t                           clock;
    EVP_MD                            *sha256;   /* fetched once */
    EVP_MD_CTX                        *md_ctx;
};


ngx_http_wirehub_jwt_cache_t *
ngx_http_wirehub_jwt_cache_create(const ngx_http_wirehub_jwt_keys_t *keys,
    size_t entries)
{
    size_t                         sets;
    ngx_http_wirehub_jwt_cache_t  *cache;

    sets = 1;

    while (sets * NGX_HTTP_WIREHUB_JWT_CACHE_WAYS < entries
           && sets < ((size_t) -1 >> 8))
    {
        sets <<= 1;
    }

    cache = calloc(1, sizeof(ngx_http_wirehub_jwt_cache_t));
    if (cache == NULL) {
        return NULL;
    }

    cache->entries = calloc(sets * NGX_HTTP_WIREHUB_JWT_CACHE_WAYS,
                            sizeof(ngx_http_wirehub_jwt_cached_t));
    cache->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    cache->md_ctx = EVP_MD_CTX_new();
    cache->keys = keys;
    cache->mask = sets - 1;

    ERR_clear_error();

    if (cache->entries == NULL || cache->sha256 == NULL
        || cache->md_ctx == NULL)
    {
        ngx_http_wirehub_jwt_cache_destroy(cache);
        return NULL;
    }

    return cache;
}


void
ngx_http_wirehub_jwt_cache_destroy(ngx_http_wirehub_jwt_cache_t *cache)
{
    if (cache == NULL) {
        return;
    }

    EVP_MD_CTX_free(cache->md_ctx);
    EVP_MD_free(cache->sha256);
    free(cache->entries);
    free(cache);
}


/* the set that the digest falls in */
static ngx_http_wirehub_jwt_cached_t *
ngx_http_wirehub_jwt_cache_set(ngx_http_wirehub_jwt_cache_t *cache,
    const unsigned char *digest)
{
    size_t  n;

    memcpy(&n, digest, sizeof(n));

    return &cache->entries[(n & cache->mask)
                           * NGX_HTTP_WIREHUB_JWT_CACHE_WAYS];
}


int
ngx_http_wirehub_jwt_cache_knows(const ngx_http_wirehub_jwt_cache_t *cache,
    const ngx_http_wirehub_jwt_keys_t *keys)
{
    return cache != NULL && cache->keys == keys;
}


int
ngx_http_wirehub_jwt_cache_find(ngx_http_wirehub_jwt_cache_t *cache,
    ngx_http_wirehub_jwt_ctx_t *ctx)
{
    int                             ok;
    size_t                          i;
    unsigned int                    len;
    ngx_http_wirehub_jwt_cached_t  *set;

    ok = EVP_DigestInit_ex2(cache->md_ctx, cache->sha256, NULL) == 1
         && EVP_DigestUpdate(cache->md_ctx, ctx->token, ctx->len) == 1
         && EVP_DigestFinal_ex(cache->md_ctx, ctx->digest, &len) == 1
         && len == NGX_HTTP_WIREHUB_JWT_DIGEST;

    ERR_clear_error();

    /* without a digest the signature is checked and not remembered */
    ctx->digest_set = ok;

    if (!ok) {
        return 0;
    }

    set = ngx_http_wirehub_jwt_cache_set(cache, ctx->digest);

    for (i = 0; i < NGX_HTTP_WIREHUB_JWT_CACHE_WAYS; i++) {
        if (set[i].used != 0
            && memcmp(set[i].digest, ctx->digest,
                      NGX_HTTP_WIREHUB_JWT_DIGEST)
               == 0)
        {
            set[i].used = ++cache->clock;
            return 1;
        }
    }

    return 0;
}


void
ngx_http_wirehub_jwt_cache_add(ngx_http_wirehub_jwt_cache_t *cache,
    const ngx_http_wirehub_jwt_ctx_t *ctx)
{
    size_t                          i;
    ngx_http_wirehub_jwt_cached_t  *set, *e;

    if (!ctx->digest_set) {
        return;
    }

    set = ngx_http_wirehub_jwt_cache_set(cache, ctx->digest);
    e = &set[0];

    /* an empty entry, or the one used longest ago (empty ones are 0) */

    for (i = 1; i < NGX_HTTP_WIREHUB_JWT_CACHE_WAYS; i++) {
        if (set[i].used < e->used) {
            e = &set[i];
        }
    }

    memcpy(e->digest, ctx->digest, NGX_HTTP_WIREHUB_JWT_DIGEST);
    e->used = ++cache->clock;
}
