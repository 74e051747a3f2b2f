
/*
 * Wirehub: what every JWT check shares: the table of algorithms a key or a
 * token may name, and how a failure is reported.  The verification
 * (ngx_http_wirehub_jwt.c), its claims and signature parts, the keys and
 * the signer all build on it.
 */


#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/objects.h>

#include "ngx_http_wirehub_jwt_internal.h"


/* every algorithm a key or a token may name */
static const ngx_http_wirehub_jwt_alg_t  ngx_http_wirehub_jwt_algs[] = {
    { "HS256", JWT_ALG_HS256, NGX_HTTP_WIREHUB_JWT_HMAC, 0, 32, EVP_sha256 },
    { "HS384", JWT_ALG_HS384, NGX_HTTP_WIREHUB_JWT_HMAC, 0, 48, EVP_sha384 },
    { "HS512", JWT_ALG_HS512, NGX_HTTP_WIREHUB_JWT_HMAC, 0, 64, EVP_sha512 },
    { "RS256", JWT_ALG_RS256, NGX_HTTP_WIREHUB_JWT_RSA, 0, 0, EVP_sha256 },
    { "RS384", JWT_ALG_RS384, NGX_HTTP_WIREHUB_JWT_RSA, 0, 0, EVP_sha384 },
    { "RS512", JWT_ALG_RS512, NGX_HTTP_WIREHUB_JWT_RSA, 0, 0, EVP_sha512 },
    { "ES256", JWT_ALG_ES256, NGX_HTTP_WIREHUB_JWT_EC,
      NID_X9_62_prime256v1, 64, EVP_sha256 },
    { "ES384", JWT_ALG_ES384, NGX_HTTP_WIREHUB_JWT_EC,
      NID_secp384r1, 96, EVP_sha384 },
    { "PS256", JWT_ALG_INVAL, NGX_HTTP_WIREHUB_JWT_RSA_PSS, 0, 0, EVP_sha256 }
};


void
ngx_http_wirehub_jwt_error(char *err, size_t err_len, const char *fmt, ...)
{
    va_list  args;

    if (err == NULL || err_len == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, err_len, fmt, args);
    va_end(args);
}


ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_fail(ngx_http_wirehub_jwt_ctx_t *ctx,
    ngx_http_wirehub_jwt_rc_e rc, const char *fmt, ...)
{
    va_list  args;

    if (ctx->err != NULL && ctx->err_len > 0) {
        va_start(args, fmt);
        vsnprintf(ctx->err, ctx->err_len, fmt, args);
        va_end(args);
    }

    return rc;
}


const ngx_http_wirehub_jwt_alg_t *
ngx_http_wirehub_jwt_alg_find(const char *name)
{
    size_t  i;

    if (name == NULL) {
        return NULL;
    }

    for (i = 0; i < sizeof(ngx_http_wirehub_jwt_algs)
                    / sizeof(ngx_http_wirehub_jwt_algs[0]); i++)
    {
        if (strcmp(ngx_http_wirehub_jwt_algs[i].name, name) == 0) {
            return &ngx_http_wirehub_jwt_algs[i];
        }
    }

    return NULL;
}
