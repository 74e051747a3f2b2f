
/*
 * Wirehub: JWT verification: the token's shape, its header, the key.
 *
 * libjwt 1.10.2 trusts its input far too much, so the token is taken apart
 * and checked here first (size, segments, strict base64url, JSON without
 * duplicate keys, the header, the key); then the signature is checked
 * (ngx_http_wirehub_jwt_signature.c) and the claims come from our own
 * strict parse of the payload (ngx_http_wirehub_jwt_claims.c).
 */


#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngx_http_wirehub_jwt_internal.h"


/* verification: the token's shape */


static int
ngx_http_wirehub_jwt_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}


/*
 * Strict base64url without padding: only the 64 letters, no length that
 * cannot come out of an encoder, and the unused low bits of the last letter
 * zero, so that each byte string has exactly one encoding (libjwt's decoder
 * would skip stray bytes and ignore those bits).
 */
static int
ngx_http_wirehub_jwt_b64_decode(const unsigned char *src, size_t len,
    unsigned char *dst, size_t *dst_len)
{
    int       v;
    size_t    i, n;
    uint32_t  bits;

    if (len % 4 == 1) {
        return -1;
    }

    n = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        v = ngx_http_wirehub_jwt_b64_value(src[i]);
        if (v < 0) {
            return -1;
        }

        bits = (bits << 6) | (uint32_t) v;

        if (i % 4 == 3) {
            dst[n++] = (unsigned char) (bits >> 16);
            dst[n++] = (unsigned char) (bits >> 8);
            dst[n++] = (unsigned char) bits;
            bits = 0;
        }
    }

    switch (len % 4) {

    case 2:
        if (bits & 0xf) {
            return -1;
        }

        dst[n++] = (unsigned char) (bits >> 4);
        break;

    case 3:
        if (bits & 0x3) {
            return -1;
        }

        dst[n++] = (unsigned char) (bits >> 10);
        dst[n++] = (unsigned char) (bits >> 2);
        break;

    default:
        break;
    }

    *dst_len = n;

    return 0;
}


/* decodes one segment and parses it as a JSON object */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_parse_segment(ngx_http_wirehub_jwt_ctx_t *ctx,
    const unsigned char *src, size_t len, const char *what, json_t **out)
{
    size_t          n;
    json_t         *json;
    json_error_t    jerr;
    unsigned char   buf[NGX_HTTP_WIREHUB_JWT_MAX_DECODED];

    if (ngx_http_wirehub_jwt_b64_decode(src, len, buf, &n) != 0) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "%s is not base64url", what);
    }

    /* jansson's messages quote the input: keep them out of the logs */
    json = json_loadb((const char *) buf, n, JSON_REJECT_DUPLICATES, &jerr);
    if (json == NULL) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
            json_error_code(&jerr) == json_error_duplicate_key
                ? "duplicate key in %s" : "%s is not valid JSON", what);
    }

    if (!json_is_object(json)) {
        json_decref(json);
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "%s is not a JSON object", what);
    }

    *out = json;

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* past JSON white space: the next other byte, or end */
static char *
ngx_http_wirehub_jwt_skip_ws(char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }

    return p;
}


/* a string of printable ASCII without escapes, p at its quote: its end
 * quote, made a NUL; NULL if it is another kind of string */
static char *
ngx_http_wirehub_jwt_plain_string(char *p, const char *end)
{
    if (p == end || *p++ != '"') {
        return NULL;
    }

    while (p < end && *p != '"') {
        if (*p < 0x20 || *p > 0x7e || *p == '\\') {
            return NULL;
        }

        p++;
    }

    if (p == end) {
        return NULL;
    }

    *p = '\0';

    return p;
}


/*
 * The usual header, {"alg":"..","typ":"..","kid":".."}, read without
 * jansson: string members of printable ASCII without escapes, each of
 * the three at most once and no other.  Anything else is left to
 * jansson (-1), which reads every header and says what is wrong.
 */
static int
ngx_http_wirehub_jwt_plain_header(ngx_http_wirehub_jwt_ctx_t *ctx,
    size_t len)
{
    char                           *p, *key, *value;
    const char                     *end;
    ngx_http_wirehub_jwt_header_t  *h;

    h = &ctx->hdr;
    p = ctx->plain;
    end = p + len;

    p = ngx_http_wirehub_jwt_skip_ws(p, end);

    if (p == end || *p++ != '{') {
        return -1;
    }

    for ( ;; ) {
        key = ngx_http_wirehub_jwt_skip_ws(p, end);
        p = ngx_http_wirehub_jwt_plain_string(key, end);

        if (p == NULL) {
            return -1;
        }

        p = ngx_http_wirehub_jwt_skip_ws(p + 1, end);

        if (p == end || *p++ != ':') {
            return -1;
        }

        value = ngx_http_wirehub_jwt_skip_ws(p, end);
        p = ngx_http_wirehub_jwt_plain_string(value, end);

        if (p == NULL) {
            return -1;
        }

        key++;
        value++;

        if (strcmp(key, "alg") == 0 && h->alg == NULL) {
            h->alg = value;

        } else if (strcmp(key, "typ") == 0 && !h->typ_set) {
            h->typ = value;
            h->typ_set = 1;

        } else if (strcmp(key, "kid") == 0 && !h->kid_set) {
            h->kid = value;
            h->kid_set = 1;

        } else {
            return -1;
        }

        p = ngx_http_wirehub_jwt_skip_ws(p + 1, end);

        if (p < end && *p == ',') {
            p++;
            continue;
        }

        if (p == end || *p++ != '}') {
            return -1;
        }

        return ngx_http_wirehub_jwt_skip_ws(p, end) == end ? 0 : -1;
    }
}


/* what jansson read of a header the scanner left to it */
static void
ngx_http_wirehub_jwt_header_fields(ngx_http_wirehub_jwt_ctx_t *ctx)
{
    json_t                         *v;
    ngx_http_wirehub_jwt_header_t  *h;

    h = &ctx->hdr;

    h->crit = json_object_get(ctx->header, "crit") != NULL;

    v = json_object_get(ctx->header, "typ");
    h->typ_set = v != NULL;
    h->typ = json_string_value(v);

    v = json_object_get(ctx->header, "kid");
    h->kid_set = v != NULL;
    h->kid = json_string_value(v);

    h->alg = json_string_value(json_object_get(ctx->header, "alg"));
}


/* the header: by the scanner when it is a usual one, else by jansson */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_parse_header(ngx_http_wirehub_jwt_ctx_t *ctx,
    const unsigned char *src, size_t len)
{
    size_t                     n;
    ngx_http_wirehub_jwt_rc_e  rc;

    memset(&ctx->hdr, 0, sizeof(ngx_http_wirehub_jwt_header_t));

    if (len <= NGX_HTTP_WIREHUB_JWT_PLAIN_HEADER / 4 * 3
        && ngx_http_wirehub_jwt_b64_decode(src, len,
                                           (unsigned char *) ctx->plain, &n)
           == 0
        && ngx_http_wirehub_jwt_plain_header(ctx, n) == 0)
    {
        return NGX_HTTP_WIREHUB_JWT_OK;
    }

    memset(&ctx->hdr, 0, sizeof(ngx_http_wirehub_jwt_header_t));

    rc = ngx_http_wirehub_jwt_parse_segment(ctx, src, len, "header",
                                            &ctx->header);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    ngx_http_wirehub_jwt_header_fields(ctx);

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* three non-empty base64url segments, the first two JSON objects */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_split(ngx_http_wirehub_jwt_ctx_t *ctx)
{
    const unsigned char        *p, *dot1, *dot2, *end;
    ngx_http_wirehub_jwt_rc_e   rc;

    p = ctx->token;
    end = p + ctx->len;

    dot1 = memchr(p, '.', end - p);
    dot2 = dot1 ? memchr(dot1 + 1, '.', end - dot1 - 1) : NULL;

    if (dot2 == NULL || dot1 == p || dot2 == dot1 + 1 || dot2 + 1 == end
        || memchr(dot2 + 1, '.', end - dot2 - 1) != NULL)
    {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                 "token must have three non-empty segments");
    }

    if (ngx_http_wirehub_jwt_b64_decode(dot2 + 1, end - dot2 - 1, ctx->sig,
                                        &ctx->sig_len)
        != 0)
    {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "signature is not base64url");
    }

    ctx->signed_len = dot2 - p;

    rc = ngx_http_wirehub_jwt_parse_header(ctx, p, dot1 - p);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    return ngx_http_wirehub_jwt_parse_segment(ctx, dot1 + 1, dot2 - dot1 - 1,
                                              "payload", &ctx->payload);
}


/* verification: the header and the key */


static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_header(ngx_http_wirehub_jwt_ctx_t *ctx)
{
    ngx_http_wirehub_jwt_header_t  *h;

    h = &ctx->hdr;

    if (h->crit) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "\"crit\" header is not supported");
    }

    if (h->kid_set && h->kid == NULL) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "header \"kid\" is not a string");
    }

    /* libjwt refuses any other typ, as a bad signature */
    if (h->typ_set && (h->typ == NULL || strcasecmp(h->typ, "JWT") != 0)) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "header \"typ\" is not \"JWT\"");
    }

    if (h->alg == NULL) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "header \"alg\" is not a string");
    }

    if (strcasecmp(h->alg, "none") == 0) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_ALG,
                                         "unsigned token (alg none)");
    }

    /* case-sensitive (RFC 7515 4.1.1), unlike libjwt */
    ctx->alg = ngx_http_wirehub_jwt_alg_find(h->alg);
    if (ctx->alg == NULL) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_ALG,
                                         "algorithm not allowed");
    }

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* with a kid, that key and no other; without, the one key of the alg */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_select_key(ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_keys_t *keys)
{
    size_t                             i, found;
    const char                        *kid;
    const ngx_http_wirehub_jwt_key_t  *k;

    kid = ctx->hdr.kid;
    found = 0;

    for (i = 0; i < keys->nelts; i++) {
        k = &keys->elts[i];

        if (kid != NULL ? (k->kid != NULL && strcmp(k->kid, kid) == 0)
                        : k->alg == ctx->alg)
        {
            ctx->key = k;
            found++;
        }
    }

    if (kid != NULL && found == 0) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID,
                                         "unknown kid");
    }

    if (found == 0) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_ALG,
                                         "no %s key is configured",
                                         ctx->alg->name);
    }

    if (found > 1) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID,
                                         "token has no kid and several %s "
                                         "keys are configured",
                                         ctx->alg->name);
    }

    if (ctx->key->alg != ctx->alg) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_ALG,
                                         "algorithm %s does not match the "
                                         "key's %s", ctx->alg->name,
                                         ctx->key->alg->name);
    }

    if (ctx->sig_len != ctx->key->sig_len) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                                         "signature has the wrong length");
    }

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* the signature, unless the cache has it; a good one goes in the cache */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_cached(ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_keys_t *keys,
    ngx_http_wirehub_jwt_cache_t *cache)
{
    ngx_http_wirehub_jwt_rc_e  rc;

    if (!ngx_http_wirehub_jwt_cache_knows(cache, keys)
        || ctx->alg->family == NGX_HTTP_WIREHUB_JWT_HMAC)
    {
        return ngx_http_wirehub_jwt_check_signature(ctx);
    }

    if (ngx_http_wirehub_jwt_cache_find(cache, ctx)) {
        ctx->cached = 1;
        return NGX_HTTP_WIREHUB_JWT_OK;
    }

    rc = ngx_http_wirehub_jwt_check_signature(ctx);

    if (rc == NGX_HTTP_WIREHUB_JWT_OK) {
        ngx_http_wirehub_jwt_cache_add(cache, ctx);
    }

    return rc;
}


/* everything but the claims: shape, header, key, signature */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_token(ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_keys_t *keys,
    ngx_http_wirehub_jwt_cache_t *cache)
{
    ngx_http_wirehub_jwt_rc_e  rc;

    if (ctx->len > NGX_HTTP_WIREHUB_JWT_MAX_TOKEN) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_TOO_LARGE,
                                         "token is over %d bytes",
                                         NGX_HTTP_WIREHUB_JWT_MAX_TOKEN);
    }

    rc = ngx_http_wirehub_jwt_split(ctx);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    rc = ngx_http_wirehub_jwt_check_header(ctx);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    rc = ngx_http_wirehub_jwt_select_key(ctx, keys);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    return ngx_http_wirehub_jwt_check_cached(ctx, keys, cache);
}


ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_verify(const ngx_http_wirehub_jwt_keys_t *keys,
    ngx_http_wirehub_jwt_cache_t *cache,
    const ngx_http_wirehub_jwt_policy_t *policy, const unsigned char *token,
    size_t len, int64_t now, ngx_http_wirehub_jwt_claims_t *claims,
    char *err, size_t err_len)
{
    ngx_http_wirehub_jwt_ctx_t     ctx;
    ngx_http_wirehub_jwt_rc_e      rc;
    ngx_http_wirehub_jwt_keys_t    no_keys;
    ngx_http_wirehub_jwt_policy_t  defaults;
    ngx_http_wirehub_jwt_claims_t  out;

    /* no keys verify nothing; no policy means the defaults */
    if (keys == NULL) {
        memset(&no_keys, 0, sizeof(no_keys));
        keys = &no_keys;
    }

    if (policy == NULL) {
        memset(&defaults, 0, sizeof(defaults));
        policy = &defaults;
    }

    ctx.token = token;
    ctx.len = len;
    ctx.header = NULL;
    ctx.payload = NULL;
    ctx.alg = NULL;
    ctx.key = NULL;
    ctx.sig_len = 0;
    ctx.digest_set = 0;
    ctx.cached = 0;
    ctx.err = err;
    ctx.err_len = err_len;

    memset(&out, 0, sizeof(out));

    rc = ngx_http_wirehub_jwt_check_token(&ctx, keys, cache);

    if (rc == NGX_HTTP_WIREHUB_JWT_OK) {
        rc = ngx_http_wirehub_jwt_check_claims(&ctx, policy, now, &out);
    }

    json_decref(ctx.header);

    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        json_decref(ctx.payload);
        return rc;
    }

    out.payload = ctx.payload;
    out.cached = ctx.cached;
    *claims = out;

    return NGX_HTTP_WIREHUB_JWT_OK;
}


void
ngx_http_wirehub_jwt_claims_free(ngx_http_wirehub_jwt_claims_t *claims)
{
    json_decref(claims->payload);
    memset(claims, 0, sizeof(ngx_http_wirehub_jwt_claims_t));
}


const char *
ngx_http_wirehub_jwt_rc_code(ngx_http_wirehub_jwt_rc_e rc)
{
    switch (rc) {

    case NGX_HTTP_WIREHUB_JWT_OK:
        return "ok";
    case NGX_HTTP_WIREHUB_JWT_MALFORMED:
        return "invalid_token";
    case NGX_HTTP_WIREHUB_JWT_BAD_ALG:
        return "invalid_algorithm";
    case NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID:
        return "unknown_kid";
    case NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE:
        return "invalid_signature";
    case NGX_HTTP_WIREHUB_JWT_EXPIRED:
        return "token_expired";
    case NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID:
        return "token_not_yet_valid";
    case NGX_HTTP_WIREHUB_JWT_BAD_ISSUER:
        return "invalid_issuer";
    case NGX_HTTP_WIREHUB_JWT_BAD_AUDIENCE:
        return "invalid_audience";
    case NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS:
        return "invalid_claims";
    case NGX_HTTP_WIREHUB_JWT_TOO_LARGE:
        return "token_too_large";
    }

    return "invalid_token";
}

