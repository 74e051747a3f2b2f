
/*
 * Wirehub: JWT verification and signing.
 *
 * libjwt 1.10.2 verifies signatures and nothing else, and even that only
 * when it is handed the right key: so the token is taken apart and checked
 * here first (size, segments, strict base64url, JSON without duplicate
 * keys, the header, the key), libjwt checks the signature, and the claims
 * come from our own strict parse of the payload.  PS256 is verified with
 * OpenSSL directly because libjwt 1.10 does not know it.
 */


/* memmem(): nginx defines it in its own headers, which this file avoids */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "ngx_http_wirehub_jwt.h"


/* the largest decoded segment: 3/4 of the largest token */
#define NGX_HTTP_WIREHUB_JWT_MAX_DECODED                                      \
    (NGX_HTTP_WIREHUB_JWT_MAX_TOKEN / 4 * 3)

/* RFC 7518 3.3: RSA keys of at least 2048 bits */
#define NGX_HTTP_WIREHUB_JWT_MIN_RSA_BITS  2048


typedef enum {
    NGX_HTTP_WIREHUB_JWT_HMAC = 0,
    NGX_HTTP_WIREHUB_JWT_RSA,
    NGX_HTTP_WIREHUB_JWT_EC,
    NGX_HTTP_WIREHUB_JWT_RSA_PSS
} ngx_http_wirehub_jwt_family_e;


typedef struct {
    const char                     *name;
    jwt_alg_t                       jwt_alg;    /* JWT_ALG_INVAL: not libjwt */
    ngx_http_wirehub_jwt_family_e   family;
    int                             curve_nid;  /* EC only */
    size_t                          sig_len;    /* 0: the RSA modulus size */
    const EVP_MD                 *(*md)(void);
} ngx_http_wirehub_jwt_alg_t;


typedef struct {
    const ngx_http_wirehub_jwt_alg_t  *alg;
    char                              *kid;      /* NULL: none */
    unsigned char                     *key;      /* secret or public PEM */
    size_t                             key_len;
    size_t                             sig_len;
    EVP_PKEY                          *pkey;     /* asymmetric only */
} ngx_http_wirehub_jwt_key_t;


struct ngx_http_wirehub_jwt_keys_s {
    ngx_http_wirehub_jwt_key_t        *elts;
    size_t                             nelts;
    size_t                             nalloc;
};


struct ngx_http_wirehub_jwt_signer_s {
    const ngx_http_wirehub_jwt_alg_t  *alg;
    char                              *kid;      /* NULL: none */
    unsigned char                     *key;      /* secret or private PEM */
    size_t                             key_len;
};


/* one verification: the token taken apart, and where errors go */
typedef struct {
    const unsigned char               *token;
    size_t                             len;
    size_t                             signed_len;  /* header.payload */
    json_t                            *header;
    json_t                            *payload;
    const ngx_http_wirehub_jwt_alg_t  *alg;
    const ngx_http_wirehub_jwt_key_t  *key;
    size_t                             sig_len;
    unsigned char                      sig[NGX_HTTP_WIREHUB_JWT_MAX_DECODED];
    char                              *err;
    size_t                             err_len;
} ngx_http_wirehub_jwt_ctx_t;


/* the verified time claims, rounded towards refusal */
typedef struct {
    int64_t                            exp;
    int64_t                            nbf;
    int64_t                            iat;
} ngx_http_wirehub_jwt_times_t;


static void ngx_http_wirehub_jwt_error(char *err, size_t err_len,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ngx_http_wirehub_jwt_rc_e ngx_http_wirehub_jwt_fail(
    ngx_http_wirehub_jwt_ctx_t *ctx, ngx_http_wirehub_jwt_rc_e rc,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));


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


static void
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


static ngx_http_wirehub_jwt_rc_e
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


static const ngx_http_wirehub_jwt_alg_t *
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


/* keys */


static int
ngx_http_wirehub_jwt_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    /* an encrypted key must never make nginx wait for a terminal */
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;

    return -1;
}


/* 0 when pkey is the key type (and curve) alg needs */
static int
ngx_http_wirehub_jwt_pkey_check(const ngx_http_wirehub_jwt_alg_t *alg,
    EVP_PKEY *pkey, char *err, size_t err_len)
{
    char  group[64];

    if (alg->family == NGX_HTTP_WIREHUB_JWT_EC) {
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC
            || EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1
            || OBJ_sn2nid(group) != alg->curve_nid)
        {
            ngx_http_wirehub_jwt_error(err, err_len,
                "%s needs an EC key on curve %s", alg->name,
                OBJ_nid2sn(alg->curve_nid));
            return -1;
        }

        return 0;
    }

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        ngx_http_wirehub_jwt_error(err, err_len, "%s needs an RSA key",
                                   alg->name);
        return -1;
    }

    if (EVP_PKEY_get_bits(pkey) < NGX_HTTP_WIREHUB_JWT_MIN_RSA_BITS) {
        ngx_http_wirehub_jwt_error(err, err_len,
            "%s needs an RSA key of at least %d bits", alg->name,
            NGX_HTTP_WIREHUB_JWT_MIN_RSA_BITS);
        return -1;
    }

    return 0;
}


static int
ngx_http_wirehub_jwt_looks_like_pem(const unsigned char *key, size_t len)
{
    return memmem(key, len, "-----BEGIN", sizeof("-----BEGIN") - 1) != NULL;
}


/* the PEM text of pkey (public, or PKCS#8 private), malloc'ed */
static unsigned char *
ngx_http_wirehub_jwt_pem_write(EVP_PKEY *pkey, int private_key,
    size_t *len)
{
    BIO            *bio;
    long            n;
    char           *data;
    unsigned char  *pem;
    int             ok;

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return NULL;
    }

    if (private_key) {
        ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);

    } else {
        ok = PEM_write_bio_PUBKEY(bio, pkey);
    }

    pem = NULL;
    n = BIO_get_mem_data(bio, &data);

    if (ok == 1 && n > 0) {
        pem = malloc(n);
        if (pem != NULL) {
            memcpy(pem, data, n);
            *len = n;
        }
    }

    /* the private key text must not linger in freed memory */
    if (n > 0) {
        OPENSSL_cleanse(data, n);
    }

    BIO_free(bio);

    return pem;
}


/* parses a PEM key of the type alg needs; NULL with a message on error */
static EVP_PKEY *
ngx_http_wirehub_jwt_pem_read(const ngx_http_wirehub_jwt_alg_t *alg,
    const unsigned char *pem, size_t len, int private_key, char *err,
    size_t err_len)
{
    BIO       *bio;
    EVP_PKEY  *pkey;

    if (len > NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE) {
        ngx_http_wirehub_jwt_error(err, err_len, "%s key is too large",
                                   alg->name);
        return NULL;
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
        return NULL;
    }

    if (private_key) {
        pkey = PEM_read_bio_PrivateKey(bio, NULL,
                                       ngx_http_wirehub_jwt_no_passphrase,
                                       NULL);

    } else {
        pkey = PEM_read_bio_PUBKEY(bio, NULL,
                                   ngx_http_wirehub_jwt_no_passphrase, NULL);
    }

    BIO_free(bio);
    ERR_clear_error();

    if (pkey == NULL) {
        ngx_http_wirehub_jwt_error(err, err_len,
            private_key ? "%s key is not an unencrypted PEM private key"
                    : "%s key is not a PEM public key (\"BEGIN PUBLIC KEY\")",
            alg->name);
        return NULL;
    }

    if (ngx_http_wirehub_jwt_pkey_check(alg, pkey, err, err_len) != 0) {
        EVP_PKEY_free(pkey);
        return NULL;
    }

    return pkey;
}


/* 0 when the new key can be told apart from every configured one */
static int
ngx_http_wirehub_jwt_keys_check_kid(const ngx_http_wirehub_jwt_keys_t *keys,
    const ngx_http_wirehub_jwt_alg_t *alg, const char *kid, char *err,
    size_t err_len)
{
    size_t                             i;
    const ngx_http_wirehub_jwt_key_t  *k;

    if (kid != NULL
        && (kid[0] == '\0' || strlen(kid) > NGX_HTTP_WIREHUB_JWT_MAX_KID))
    {
        ngx_http_wirehub_jwt_error(err, err_len, "kid must be 1 to %d bytes",
                                   NGX_HTTP_WIREHUB_JWT_MAX_KID);
        return -1;
    }

    for (i = 0; i < keys->nelts; i++) {
        k = &keys->elts[i];

        if (kid != NULL && k->kid != NULL && strcmp(kid, k->kid) == 0) {
            ngx_http_wirehub_jwt_error(err, err_len, "duplicate kid \"%.64s\"",
                                       kid);
            return -1;
        }

        /* a token without kid picks the one key of its alg */
        if (k->alg == alg && (kid == NULL || k->kid == NULL)) {
            ngx_http_wirehub_jwt_error(err, err_len,
                "several %s keys: each needs a kid", alg->name);
            return -1;
        }
    }

    return 0;
}


/* fills the key material of k: a secret, or a normalised public PEM */
static int
ngx_http_wirehub_jwt_key_init(ngx_http_wirehub_jwt_key_t *k,
    const unsigned char *key, size_t key_len, char *err, size_t err_len)
{
    const ngx_http_wirehub_jwt_alg_t  *alg;

    alg = k->alg;

    if (alg->family == NGX_HTTP_WIREHUB_JWT_HMAC) {
        if (ngx_http_wirehub_jwt_looks_like_pem(key, key_len)) {
            ngx_http_wirehub_jwt_error(err, err_len,
                "%s secret looks like a PEM key: an HMAC algorithm "
                "cannot use a public key", alg->name);
            return -1;
        }

        k->key = malloc(key_len);
        if (k->key == NULL) {
            ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
            return -1;
        }

        memcpy(k->key, key, key_len);
        k->key_len = key_len;
        k->sig_len = alg->sig_len;
        return 0;
    }

    k->pkey = ngx_http_wirehub_jwt_pem_read(alg, key, key_len, 0, err,
                                            err_len);
    if (k->pkey == NULL) {
        return -1;
    }

    /* libjwt gets exactly the one key checked above, nothing else */
    k->key = ngx_http_wirehub_jwt_pem_write(k->pkey, 0, &k->key_len);
    if (k->key == NULL) {
        ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
        return -1;
    }

    k->sig_len = alg->sig_len ? alg->sig_len
                              : (size_t) EVP_PKEY_get_size(k->pkey);
    return 0;
}


static void
ngx_http_wirehub_jwt_key_free(ngx_http_wirehub_jwt_key_t *k)
{
    if (k->key != NULL) {
        OPENSSL_cleanse(k->key, k->key_len);
        free(k->key);
    }

    EVP_PKEY_free(k->pkey);
    free(k->kid);
}


ngx_http_wirehub_jwt_keys_t *
ngx_http_wirehub_jwt_keys_create(void)
{
    return calloc(1, sizeof(ngx_http_wirehub_jwt_keys_t));
}


void
ngx_http_wirehub_jwt_keys_destroy(ngx_http_wirehub_jwt_keys_t *keys)
{
    size_t  i;

    if (keys == NULL) {
        return;
    }

    for (i = 0; i < keys->nelts; i++) {
        ngx_http_wirehub_jwt_key_free(&keys->elts[i]);
    }

    free(keys->elts);
    free(keys);
}


size_t
ngx_http_wirehub_jwt_keys_count(const ngx_http_wirehub_jwt_keys_t *keys)
{
    return keys->nelts;
}


static int
ngx_http_wirehub_jwt_keys_grow(ngx_http_wirehub_jwt_keys_t *keys)
{
    size_t                       n;
    ngx_http_wirehub_jwt_key_t  *elts;

    if (keys->nelts < keys->nalloc) {
        return 0;
    }

    n = keys->nalloc ? keys->nalloc * 2 : 4;

    elts = realloc(keys->elts, n * sizeof(ngx_http_wirehub_jwt_key_t));
    if (elts == NULL) {
        return -1;
    }

    keys->elts = elts;
    keys->nalloc = n;

    return 0;
}


int
ngx_http_wirehub_jwt_keys_add(ngx_http_wirehub_jwt_keys_t *keys,
    const char *alg, const char *kid, const unsigned char *key,
    size_t key_len, char *err, size_t err_len)
{
    ngx_http_wirehub_jwt_key_t         k;
    const ngx_http_wirehub_jwt_alg_t  *a;

    a = ngx_http_wirehub_jwt_alg_find(alg);
    if (a == NULL) {
        ngx_http_wirehub_jwt_error(err, err_len,
            "unsupported algorithm \"%.16s\"", alg ? alg : "");
        return -1;
    }

    if (key == NULL || key_len == 0) {
        ngx_http_wirehub_jwt_error(err, err_len, "empty %s key", a->name);
        return -1;
    }

    /* libjwt takes the key length as an int */
    if (key_len > NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE) {
        ngx_http_wirehub_jwt_error(err, err_len, "%s key is too large",
                                   a->name);
        return -1;
    }

    if (ngx_http_wirehub_jwt_keys_check_kid(keys, a, kid, err, err_len)
        != 0)
    {
        return -1;
    }

    memset(&k, 0, sizeof(k));
    k.alg = a;

    if (ngx_http_wirehub_jwt_keys_grow(keys) != 0
        || (kid != NULL && (k.kid = strdup(kid)) == NULL))
    {
        ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
        return -1;
    }

    if (ngx_http_wirehub_jwt_key_init(&k, key, key_len, err, err_len) != 0) {
        ngx_http_wirehub_jwt_key_free(&k);
        return -1;
    }

    keys->elts[keys->nelts++] = k;

    return 0;
}


/* reads a whole key file into a malloc'ed buffer; 0 or -1 with a message */
static int
ngx_http_wirehub_jwt_read_file(const char *path, unsigned char **data,
    size_t *len, char *err, size_t err_len)
{
    FILE           *f;
    size_t          n;
    unsigned char  *buf;

    f = fopen(path, "rbe");
    if (f == NULL) {
        ngx_http_wirehub_jwt_error(err, err_len, "cannot open \"%s\": %s",
                                   path, strerror(errno));
        return -1;
    }

    buf = malloc(NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE + 1);
    if (buf == NULL) {
        fclose(f);
        ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
        return -1;
    }

    n = fread(buf, 1, NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE + 1, f);

    if (ferror(f) || n > NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE) {
        ngx_http_wirehub_jwt_error(err, err_len,
            ferror(f) ? "cannot read \"%s\"" : "\"%s\" is too large", path);
        fclose(f);
        OPENSSL_cleanse(buf, n);
        free(buf);
        return -1;
    }

    fclose(f);

    *data = buf;
    *len = n;

    return 0;
}


static void
ngx_http_wirehub_jwt_free_secret(unsigned char *data, size_t len)
{
    OPENSSL_cleanse(data, len);
    free(data);
}


int
ngx_http_wirehub_jwt_keys_add_file(ngx_http_wirehub_jwt_keys_t *keys,
    const char *alg, const char *kid, const char *path, char *err,
    size_t err_len)
{
    int                                rc;
    size_t                             len;
    unsigned char                     *data;
    const ngx_http_wirehub_jwt_alg_t  *a;

    a = ngx_http_wirehub_jwt_alg_find(alg);
    if (a == NULL) {
        ngx_http_wirehub_jwt_error(err, err_len,
            "unsupported algorithm \"%.16s\"", alg ? alg : "");
        return -1;
    }

    if (ngx_http_wirehub_jwt_read_file(path, &data, &len, err, err_len)
        != 0)
    {
        return -1;
    }

    /* "echo secret > file" leaves a newline that is not part of it */
    if (a->family == NGX_HTTP_WIREHUB_JWT_HMAC
        && len > 0 && data[len - 1] == '\n')
    {
        len--;
    }

    rc = ngx_http_wirehub_jwt_keys_add(keys, alg, kid, data, len, err,
                                       err_len);

    ngx_http_wirehub_jwt_free_secret(data, NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE);

    return rc;
}


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

    rc = ngx_http_wirehub_jwt_parse_segment(ctx, p, dot1 - p, "header",
                                            &ctx->header);
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
    json_t  *alg, *kid, *typ;

    if (json_object_get(ctx->header, "crit") != NULL) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "\"crit\" header is not supported");
    }

    kid = json_object_get(ctx->header, "kid");
    if (kid != NULL && !json_is_string(kid)) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "header \"kid\" is not a string");
    }

    /* libjwt refuses any other typ, as a bad signature */
    typ = json_object_get(ctx->header, "typ");
    if (typ != NULL
        && (!json_is_string(typ)
            || strcasecmp(json_string_value(typ), "JWT") != 0))
    {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "header \"typ\" is not \"JWT\"");
    }

    alg = json_object_get(ctx->header, "alg");
    if (!json_is_string(alg)) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "header \"alg\" is not a string");
    }

    if (strcasecmp(json_string_value(alg), "none") == 0) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_ALG,
                                         "unsigned token (alg none)");
    }

    /* case-sensitive (RFC 7515 4.1.1), unlike libjwt */
    ctx->alg = ngx_http_wirehub_jwt_alg_find(json_string_value(alg));
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

    kid = json_string_value(json_object_get(ctx->header, "kid"));
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


/* verification: the signature */


static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_libjwt(ngx_http_wirehub_jwt_ctx_t *ctx)
{
    int        rc;
    jwt_t     *jwt;
    jwt_alg_t  alg;
    char       token[NGX_HTTP_WIREHUB_JWT_MAX_TOKEN + 1];

    memcpy(token, ctx->token, ctx->len);
    token[ctx->len] = '\0';

    jwt = NULL;
    rc = jwt_decode(&jwt, token, ctx->key->key, (int) ctx->key->key_len);

    /* libjwt leaves OpenSSL errors behind that nginx would log later */
    ERR_clear_error();

    if (rc != 0) {
        jwt_free(jwt);
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                                         rc == ENOMEM ? "out of memory"
                                                      : "signature mismatch");
    }

    alg = jwt_get_alg(jwt);
    jwt_free(jwt);

    if (alg != ctx->key->alg->jwt_alg) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_ALG,
                                         "libjwt verified another algorithm");
    }

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* RSASSA-PSS (RFC 7518 3.5): MGF1 with the same hash, salt of hash size */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_pss(ngx_http_wirehub_jwt_ctx_t *ctx)
{
    int            ok;
    const EVP_MD  *md;
    EVP_MD_CTX    *md_ctx;
    EVP_PKEY_CTX  *pkey_ctx;

    md_ctx = EVP_MD_CTX_new();
    if (md_ctx == NULL) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                                         "out of memory");
    }

    md = ctx->key->alg->md();
    pkey_ctx = NULL;

    ok = EVP_DigestVerifyInit(md_ctx, &pkey_ctx, md, NULL, ctx->key->pkey)
             == 1
         && EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PSS_PADDING)
             == 1
         && EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_ctx, RSA_PSS_SALTLEN_DIGEST)
             == 1
         && EVP_PKEY_CTX_set_rsa_mgf1_md(pkey_ctx, md) == 1
         && EVP_DigestVerify(md_ctx, ctx->sig, ctx->sig_len, ctx->token,
                             ctx->signed_len)
             == 1;

    EVP_MD_CTX_free(md_ctx);
    ERR_clear_error();

    if (!ok) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                                         "signature mismatch");
    }

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* verification: the claims */


/* seconds from a JSON number, rounded towards refusal: down or up */
static int64_t
ngx_http_wirehub_jwt_seconds(json_t *value, int round_up)
{
    double   d;
    int64_t  t;

    if (json_is_integer(value)) {
        return json_integer_value(value);
    }

    d = json_real_value(value);

    if (d >= 9.2e18) {
        return INT64_MAX;
    }

    if (d <= -9.2e18) {
        return INT64_MIN;
    }

    t = (int64_t) d;

    if (round_up && (double) t < d) {
        t++;

    } else if (!round_up && (double) t > d) {
        t--;
    }

    return t;
}


static int64_t
ngx_http_wirehub_jwt_add(int64_t a, int64_t b)
{
    int64_t  sum;

    if (__builtin_add_overflow(a, b, &sum)) {
        return b > 0 ? INT64_MAX : INT64_MIN;
    }

    return sum;
}


/* 0: absent, 1: present, -1: not a number (the message is set) */
static int
ngx_http_wirehub_jwt_time_claim(ngx_http_wirehub_jwt_ctx_t *ctx,
    const char *name, int round_up, int64_t *out)
{
    json_t  *value;

    *out = 0;

    value = json_object_get(ctx->payload, name);
    if (value == NULL) {
        return 0;
    }

    if (!json_is_number(value)) {
        ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                  "claim \"%s\" is not a number", name);
        return -1;
    }

    *out = ngx_http_wirehub_jwt_seconds(value, round_up);

    return 1;
}


static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_times(ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_policy_t *policy, int64_t now,
    ngx_http_wirehub_jwt_times_t *times)
{
    int      has_exp, has_nbf, has_iat;
    int64_t  leeway;

    has_exp = ngx_http_wirehub_jwt_time_claim(ctx, "exp", 0, &times->exp);
    has_nbf = ngx_http_wirehub_jwt_time_claim(ctx, "nbf", 1, &times->nbf);
    has_iat = ngx_http_wirehub_jwt_time_claim(ctx, "iat", 1, &times->iat);

    if (has_exp < 0 || has_nbf < 0 || has_iat < 0) {
        return NGX_HTTP_WIREHUB_JWT_MALFORMED;
    }

    leeway = policy->leeway > 0 ? policy->leeway : 0;

    if (has_exp == 0 && policy->require_exp) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS,
                                         "claim \"exp\" is required");
    }

    if (has_exp && times->exp <= ngx_http_wirehub_jwt_add(now, -leeway)) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_EXPIRED,
                                         "token expired");
    }

    if (has_nbf && times->nbf > ngx_http_wirehub_jwt_add(now, leeway)) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID,
                                         "token not valid yet (nbf)");
    }

    if (has_iat && times->iat > ngx_http_wirehub_jwt_add(now, leeway)) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID,
                                         "token issued in the future (iat)");
    }

    return NGX_HTTP_WIREHUB_JWT_OK;
}


static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_issuer(ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_policy_t *policy)
{
    json_t  *iss;

    iss = json_object_get(ctx->payload, "iss");

    if (iss != NULL && !json_is_string(iss)) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                                         "claim \"iss\" is not a string");
    }

    if (policy->issuer == NULL) {
        return NGX_HTTP_WIREHUB_JWT_OK;
    }

    if (iss == NULL || strcmp(json_string_value(iss), policy->issuer) != 0) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_ISSUER,
                                         iss ? "wrong issuer"
                                             : "claim \"iss\" is missing");
    }

    return NGX_HTTP_WIREHUB_JWT_OK;
}


static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_audience(ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_policy_t *policy)
{
    int      found;
    size_t   i;
    json_t  *aud, *v;

    aud = json_object_get(ctx->payload, "aud");
    found = 0;

    if (json_is_string(aud)) {
        found = policy->audience != NULL
                && strcmp(json_string_value(aud), policy->audience) == 0;

    } else if (json_is_array(aud)) {
        json_array_foreach(aud, i, v) {
            if (!json_is_string(v)) {
                return ngx_http_wirehub_jwt_fail(ctx,
                           NGX_HTTP_WIREHUB_JWT_MALFORMED,
                           "claim \"aud\" is not an array of strings");
            }

            if (policy->audience != NULL
                && strcmp(json_string_value(v), policy->audience) == 0)
            {
                found = 1;
            }
        }

    } else if (aud != NULL) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_MALFORMED,
                   "claim \"aud\" is not a string or an array of strings");
    }

    if (policy->audience != NULL && !found) {
        return ngx_http_wirehub_jwt_fail(ctx,
                                         NGX_HTTP_WIREHUB_JWT_BAD_AUDIENCE,
                                         aud ? "wrong audience"
                                             : "claim \"aud\" is missing");
    }

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* 1..max bytes of letters, digits and the bytes in extra */
static int
ngx_http_wirehub_jwt_is_name(json_t *value, size_t max, const char *extra)
{
    size_t       i, len;
    const char  *s;

    if (!json_is_string(value)) {
        return 0;
    }

    s = json_string_value(value);
    len = json_string_length(value);

    if (len == 0 || len > max) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || strchr(extra, s[i]) != NULL))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_role(ngx_http_wirehub_jwt_ctx_t *ctx,
    ngx_http_wirehub_role_e *role)
{
    json_t      *value;
    const char  *s;

    *role = NGX_HTTP_WIREHUB_ROLE_CLIENT;

    value = json_object_get(ctx->payload, "role");
    if (value == NULL) {
        return NGX_HTTP_WIREHUB_JWT_OK;
    }

    s = json_is_string(value) ? json_string_value(value) : "";

    if (strcmp(s, "client") == 0) {
        return NGX_HTTP_WIREHUB_JWT_OK;
    }

    if (strcmp(s, "service") == 0) {
        *role = NGX_HTTP_WIREHUB_ROLE_SERVICE;
        return NGX_HTTP_WIREHUB_JWT_OK;
    }

    if (strcmp(s, "admin") == 0) {
        *role = NGX_HTTP_WIREHUB_ROLE_ADMIN;
        return NGX_HTTP_WIREHUB_JWT_OK;
    }

    return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS,
               "claim \"role\" is not \"client\", \"service\" or \"admin\"");
}


/* an optional array of 1..200 byte strings; the patterns are checked later */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_list(ngx_http_wirehub_jwt_ctx_t *ctx,
    const char *name, json_t **list)
{
    size_t   i, len;
    json_t  *value, *v;

    *list = NULL;

    value = json_object_get(ctx->payload, name);
    if (value == NULL) {
        return NGX_HTTP_WIREHUB_JWT_OK;
    }

    if (!json_is_array(value)) {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS,
                                         "claim \"%s\" is not an array",
                                         name);
    }

    json_array_foreach(value, i, v) {
        len = json_is_string(v) ? json_string_length(v) : 0;

        if (len == 0 || len > NGX_HTTP_WIREHUB_JWT_MAX_PATTERN) {
            return ngx_http_wirehub_jwt_fail(ctx,
                       NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS,
                       "claim \"%s\" must hold strings of 1 to %d bytes",
                       name, NGX_HTTP_WIREHUB_JWT_MAX_PATTERN);
        }
    }

    *list = value;

    return NGX_HTTP_WIREHUB_JWT_OK;
}


static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_identity(ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_policy_t *policy,
    ngx_http_wirehub_jwt_claims_t *claims)
{
    json_t                     *workspace, *client;
    const char                 *workspace_claim, *client_claim;
    ngx_http_wirehub_jwt_rc_e   rc;

    workspace_claim = policy->workspace_claim ? policy->workspace_claim
                                              : "workspace";
    client_claim = policy->client_claim ? policy->client_claim : "sub";

    workspace = json_object_get(ctx->payload, workspace_claim);
    if (!ngx_http_wirehub_jwt_is_name(workspace,
                                      NGX_HTTP_WIREHUB_JWT_MAX_WORKSPACE,
                                      "_.-"))
    {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS,
                   "claim \"%.64s\" must be 1 to %d bytes of "
                   "[A-Za-z0-9_.-]", workspace_claim,
                   NGX_HTTP_WIREHUB_JWT_MAX_WORKSPACE);
    }

    client = json_object_get(ctx->payload, client_claim);
    if (!ngx_http_wirehub_jwt_is_name(client,
                                      NGX_HTTP_WIREHUB_JWT_MAX_CLIENT_ID,
                                      "_.:@-"))
    {
        return ngx_http_wirehub_jwt_fail(ctx, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS,
                   "claim \"%.64s\" must be 1 to %d bytes of "
                   "[A-Za-z0-9_.:@-]", client_claim,
                   NGX_HTTP_WIREHUB_JWT_MAX_CLIENT_ID);
    }

    claims->workspace = json_string_value(workspace);
    claims->client_id = json_string_value(client);

    rc = ngx_http_wirehub_jwt_check_role(ctx, &claims->role);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    rc = ngx_http_wirehub_jwt_check_list(ctx, "channels", &claims->channels);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    return ngx_http_wirehub_jwt_check_list(ctx, "publish", &claims->publish);
}


static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_claims(ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_policy_t *policy, int64_t now,
    ngx_http_wirehub_jwt_claims_t *claims)
{
    ngx_http_wirehub_jwt_rc_e     rc;
    ngx_http_wirehub_jwt_times_t  times;

    rc = ngx_http_wirehub_jwt_check_times(ctx, policy, now, &times);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    rc = ngx_http_wirehub_jwt_check_issuer(ctx, policy);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    rc = ngx_http_wirehub_jwt_check_audience(ctx, policy);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    rc = ngx_http_wirehub_jwt_check_identity(ctx, policy, claims);
    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return rc;
    }

    claims->exp = times.exp;
    claims->nbf = times.nbf;
    claims->iat = times.iat;

    return NGX_HTTP_WIREHUB_JWT_OK;
}


/* everything but the claims: shape, header, key, signature */
static ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_check_token(ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_keys_t *keys)
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

    if (ctx->key->alg->jwt_alg == JWT_ALG_INVAL) {
        return ngx_http_wirehub_jwt_check_pss(ctx);
    }

    return ngx_http_wirehub_jwt_check_libjwt(ctx);
}


ngx_http_wirehub_jwt_rc_e
ngx_http_wirehub_jwt_verify(const ngx_http_wirehub_jwt_keys_t *keys,
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
    ctx.err = err;
    ctx.err_len = err_len;

    memset(&out, 0, sizeof(out));

    rc = ngx_http_wirehub_jwt_check_token(&ctx, keys);

    if (rc == NGX_HTTP_WIREHUB_JWT_OK) {
        rc = ngx_http_wirehub_jwt_check_claims(&ctx, policy, now, &out);
    }

    json_decref(ctx.header);

    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        json_decref(ctx.payload);
        return rc;
    }

    out.payload = ctx.payload;
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


/* signing */


/* the key material of a signer: a secret, or a normalised private PEM */
static int
ngx_http_wirehub_jwt_signer_key(ngx_http_wirehub_jwt_signer_t *s,
    const unsigned char *data, size_t len, char *err, size_t err_len)
{
    EVP_PKEY  *pkey;

    if (s->alg->family == NGX_HTTP_WIREHUB_JWT_HMAC) {
        if (len > 0 && data[len - 1] == '\n') {
            len--;
        }

        if (len == 0 || ngx_http_wirehub_jwt_looks_like_pem(data, len)) {
            ngx_http_wirehub_jwt_error(err, err_len,
                len ? "%s secret looks like a PEM key" : "empty %s key",
                s->alg->name);
            return -1;
        }

        s->key = malloc(len);
        if (s->key == NULL) {
            ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
            return -1;
        }

        memcpy(s->key, data, len);
        s->key_len = len;
        return 0;
    }

    pkey = ngx_http_wirehub_jwt_pem_read(s->alg, data, len, 1, err, err_len);
    if (pkey == NULL) {
        return -1;
    }

    s->key = ngx_http_wirehub_jwt_pem_write(pkey, 1, &s->key_len);
    EVP_PKEY_free(pkey);

    if (s->key == NULL) {
        ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
        return -1;
    }

    return 0;
}


ngx_http_wirehub_jwt_signer_t *
ngx_http_wirehub_jwt_signer_create_file(const char *alg, const char *path,
    char *err, size_t err_len)
{
    int                             rc;
    size_t                          len;
    unsigned char                  *data;
    ngx_http_wirehub_jwt_signer_t  *s;

    s = calloc(1, sizeof(ngx_http_wirehub_jwt_signer_t));
    if (s == NULL) {
        ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
        return NULL;
    }

    s->alg = ngx_http_wirehub_jwt_alg_find(alg);

    if (s->alg == NULL || s->alg->jwt_alg == JWT_ALG_INVAL) {
        ngx_http_wirehub_jwt_error(err, err_len,
            "unsupported signing algorithm \"%.16s\"", alg ? alg : "");
        free(s);
        return NULL;
    }

    if (ngx_http_wirehub_jwt_read_file(path, &data, &len, err, err_len)
        != 0)
    {
        free(s);
        return NULL;
    }

    rc = ngx_http_wirehub_jwt_signer_key(s, data, len, err, err_len);

    ngx_http_wirehub_jwt_free_secret(data, NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE);

    if (rc != 0) {
        free(s);
        return NULL;
    }

    return s;
}


void
ngx_http_wirehub_jwt_signer_destroy(ngx_http_wirehub_jwt_signer_t *s)
{
    if (s == NULL) {
        return;
    }

    ngx_http_wirehub_jwt_free_secret(s->key, s->key_len);
    free(s->kid);
    free(s);
}


int
ngx_http_wirehub_jwt_signer_set_kid(ngx_http_wirehub_jwt_signer_t *s,
    const char *kid, char *err, size_t err_len)
{
    char  *copy;

    copy = NULL;

    if (kid != NULL) {
        if (kid[0] == '\0' || strlen(kid) > NGX_HTTP_WIREHUB_JWT_MAX_KID) {
            ngx_http_wirehub_jwt_error(err, err_len,
                                       "kid must be 1 to %d bytes",
                                       NGX_HTTP_WIREHUB_JWT_MAX_KID);
            return -1;
        }

        copy = strdup(kid);
        if (copy == NULL) {
            ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
            return -1;
        }
    }

    free(s->kid);
    s->kid = copy;

    return 0;
}


/* a jwt_t holding the claims, ready to encode; NULL with a message */
static jwt_t *
ngx_http_wirehub_jwt_sign_prepare(const ngx_http_wirehub_jwt_signer_t *s,
    json_t *claims, char *err, size_t err_len)
{
    int     rc;
    char   *text;
    jwt_t  *jwt;

    text = json_dumps(claims, JSON_COMPACT);
    if (text == NULL || jwt_new(&jwt) != 0) {
        free(text);
        ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
        return NULL;
    }

    rc = jwt_add_grants_json(jwt, text);
    free(text);

    if (rc == 0 && s->kid != NULL) {
        rc = jwt_add_header(jwt, "kid", s->kid);
    }

    if (rc == 0) {
        rc = jwt_set_alg(jwt, s->alg->jwt_alg, s->key, (int) s->key_len);
    }

    if (rc != 0) {
        jwt_free(jwt);
        ngx_http_wirehub_jwt_error(err, err_len, "cannot prepare token: %s",
                                   strerror(rc));
        return NULL;
    }

    return jwt;
}


char *
ngx_http_wirehub_jwt_sign(const ngx_http_wirehub_jwt_signer_t *s,
    json_t *claims, char *err, size_t err_len)
{
    char   *token;
    jwt_t  *jwt;

    if (!json_is_object(claims)) {
        ngx_http_wirehub_jwt_error(err, err_len,
                                   "claims must be a JSON object");
        return NULL;
    }

    jwt = ngx_http_wirehub_jwt_sign_prepare(s, claims, err, err_len);
    if (jwt == NULL) {
        return NULL;
    }

    token = jwt_encode_str(jwt);
    jwt_free(jwt);
    ERR_clear_error();

    if (token == NULL) {
        ngx_http_wirehub_jwt_error(err, err_len, "cannot sign token");
        return NULL;
    }

    /* a token that verify() would refuse is no use to anyone */
    if (strlen(token) > NGX_HTTP_WIREHUB_JWT_MAX_TOKEN) {
        free(token);
        ngx_http_wirehub_jwt_error(err, err_len, "token would be over %d "
                                   "bytes", NGX_HTTP_WIREHUB_JWT_MAX_TOKEN);
        return NULL;
    }

    return token;
}
