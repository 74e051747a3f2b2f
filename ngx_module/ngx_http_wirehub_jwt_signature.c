
/*
 * Wirehub: the signature of a JWT.
 *
 * RS*, PS256 and ES* are verified with OpenSSL directly, with the EVP_PKEY
 * parsed once when the key was configured: libjwt 1.10 would parse the PEM
 * text again on every call, which costs several times the ECDSA
 * verification itself; HS* with an HMAC context keyed once (libjwt would
 * parse the whole token again).  By the time a token gets here its shape,
 * header and key have been checked and its signature has exactly the
 * length the key's algorithm produces.
 */


#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "ngx_http_wirehub_jwt_internal.h"


/*
 * The DER form of a JOSE ECDSA signature: SEQUENCE, two INTEGERs of up to
 * half + 1 bytes each, all with one-byte lengths while half <= 60 (P-256
 * and P-384; P-521 would need longer ones and is not supported).
 */
#define NGX_HTTP_WIREHUB_JWT_ECDSA_MAX_HALF  60
#define NGX_HTTP_WIREHUB_JWT_ECDSA_MAX_DER                                    \
    (2 + 2 * (2 + NGX_HTTP_WIREHUB_JWT_ECDSA_MAX_HALF + 1))


/*
 * HS*: the MAC of header.payload as the token has it, with the key's
 * context, compared in constant time.  The token was split and checked
 * already: nothing parses it again.
 */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_hmac(ngx_http_wirehub_jwt_ctx_t *ctx)
{
    int            ok;
    size_t         len;
    unsigned char  mac[EVP_MAX_MD_SIZE];

    ok = EVP_MAC_init(ctx->key->mac, NULL, 0, NULL) == 1
         && EVP_MAC_update(ctx->key->mac, ctx->token, ctx->signed_len) == 1
         && EVP_MAC_final(ctx->key->mac, mac, &len, sizeof(mac)) == 1;

    ERR_clear_error();

    if (!ok) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                                         "cannot compute the HMAC");
    }

    /* select_key() made sure sig_len is the algorithm's */

    if (len != ctx->sig_len || CRYPTO_memcmp(mac, ctx->sig, len) != 0) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                                         "signature mismatch");
    }

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* one DER INTEGER from an unsigned big-endian number: minimal, positive */
static unsigned char *
ngx_http_wirehub_jwt_der_integer(unsigned char *p, const unsigned char *num,
    size_t len)
{
    unsigned char  sign;

    while (len > 1 && num[0] == 0) {
        num++;
        len--;
    }

    /* a set top bit would make the INTEGER negative */
    sign = num[0] >> 7;

    *p++ = 0x02;
    *p++ = (unsigned char) (sign + len);

    if (sign) {
        *p++ = 0x00;
    }

    memcpy(p, num, len);

    return p + len;
}


/*
 * JOSE puts an ECDSA signature as R || S, each as wide as the curve order
 * (RFC 7518 3.4); OpenSSL wants the DER SEQUENCE of the two INTEGERs.
 * R or S out of range (zero, or not below the order) is left to OpenSSL
 * to refuse.  Returns the DER length, 0 if sig_len cannot be converted.
 */
static size_t
ngx_http_wirehub_jwt_ecdsa_der(const unsigned char *sig, size_t sig_len,
    unsigned char *der)
{
    size_t          half;
    unsigned char  *p;

    half = sig_len / 2;

    if (sig_len % 2 != 0 || half == 0
        || half > NGX_HTTP_WIREHUB_JWT_ECDSA_MAX_HALF)
    {
        return 0;
    }

    p = ngx_http_wirehub_jwt_der_integer(der + 2, sig, half);
    p = ngx_http_wirehub_jwt_der_integer(p, sig + half, half);

    der[0] = 0x30;
    der[1] = (unsigned char) (p - der - 2);

    return p - der;
}


/*
 * The padding of the RSA families: PKCS #1 v1.5 for RS*, and for PS256
 * RSASSA-PSS (RFC 7518 3.5) with MGF1 of the same hash and a salt as long
 * as the hash.  Nothing to set for EC.
 */
static int
ngx_http_wirehub_jwt_set_padding(const ngx_http_wirehub_jwt_alg_t *alg,
    EVP_PKEY_CTX *pkey_ctx, const EVP_MD *md)
{
    switch (alg->family) {

    case NGX_HTTP_WIREHUB_JWT_RSA:
        return EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PADDING) == 1;

    case NGX_HTTP_WIREHUB_JWT_RSA_PSS:
        return EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PSS_PADDING)
                   == 1
               && EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_ctx,
                                                   RSA_PSS_SALTLEN_DIGEST)
                   == 1
               && EVP_PKEY_CTX_set_rsa_mgf1_md(pkey_ctx, md) == 1;

    default:
        return 1;
    }
}


/*
 * The verification of a key is set up once, when the key is configured,
 * and copied for each token: EVP_DigestVerifyInit() fetches the digest
 * and the signature from the provider and sets the padding again, about
 * 5 us a token here, a copy of the set-up context a fraction of that.
 */
int
ngx_http_wirehub_jwt_verify_setup(ngx_http_wirehub_jwt_key_t *k)
{
    int            ok;
    const EVP_MD  *md;
    EVP_MD_CTX    *trial;
    EVP_PKEY_CTX  *pkey_ctx;

    k->verify = EVP_MD_CTX_new();
    trial = EVP_MD_CTX_new();

    md = k->alg->md();
    pkey_ctx = NULL;

    /* a provider that cannot copy the context is found out here, not as
     * a "signature mismatch" for every token */
    ok = k->verify != NULL && trial != NULL
         && EVP_DigestVerifyInit(k->verify, &pkey_ctx, md, NULL, k->pkey)
             == 1
         && ngx_http_wirehub_jwt_set_padding(k->alg, pkey_ctx, md)
         && EVP_MD_CTX_copy_ex(trial, k->verify) == 1;

    EVP_MD_CTX_free(trial);

    if (!ok) {
        ERR_clear_error();
        EVP_MD_CTX_free(k->verify);
        k->verify = NULL;
        return -1;
    }

    return 0;
}


/* sig against header.payload with the key's EVP_PKEY */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_evp_verify(ngx_http_wirehub_jwt_ctx_t *ctx,
    const unsigned char *sig, size_t sig_len)
{
    int          ok;
    EVP_MD_CTX  *md_ctx;

    md_ctx = EVP_MD_CTX_new();
    if (md_ctx == NULL) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                                         "out of memory");
    }

    ok = EVP_MD_CTX_copy_ex(md_ctx, ctx->key->verify) == 1
         && EVP_DigestVerify(md_ctx, sig, sig_len, ctx->token,
                             ctx->signed_len)
             == 1;

    EVP_MD_CTX_free(md_ctx);

    /* a refused signature leaves OpenSSL errors that nginx would log */
    ERR_clear_error();

    if (!ok) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                                         "signature mismatch");
    }

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* RS*, PS256 and ES*; ES* signatures converted to DER first */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_pkey(ngx_http_wirehub_jwt_ctx_t *ctx)
{
    size_t         der_len;
    unsigned char  der[NGX_HTTP_WIREHUB_JWT_ECDSA_MAX_DER];

    if (ctx->key->alg->family != NGX_HTTP_WIREHUB_JWT_EC) {
        return ngx_http_wirehub_jwt_evp_verify(ctx, ctx->sig, ctx->sig_len);
    }

    der_len = ngx_http_wirehub_jwt_ecdsa_der(ctx->sig, ctx->sig_len, der);
    if (der_len == 0) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                                         "signature has the wrong length");
    }

    return ngx_http_wirehub_jwt_evp_verify(ctx, der, der_len);
}


ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_signature(ngx_http_wirehub_jwt_ctx_t *ctx)
{
    if (ctx->key->alg->family == NGX_HTTP_WIREHUB_JWT_HMAC) {
        return ngx_http_wirehub_jwt_check_hmac(ctx);
    }

    return ngx_http_wirehub_jwt_check_pkey(ctx);
}
