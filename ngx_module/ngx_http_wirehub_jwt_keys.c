
/*
 * Wirehub: JWT verification keys: reading, checking, the key set.
 *
 * Every key is checked once, here, at configuration time: an HMAC secret
 * must not look like a PEM key (the classic algorithm confusion), a public
 * key must be of the type and curve its algorithm needs, RSA keys at least
 * 2048 bits.  Public keys are parsed once into an EVP_PKEY that every
 * verification then uses as is.
 */


/* memmem(): nginx defines it in its own headers, which this file avoids */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "ngx_http_wirehub_jwt_internal.h"


/* RFC 7518 3.3: RSA keys of at least 2048 bits */
#define NGX_HTTP_WIREHUB_JWT_MIN_RSA_BITS  2048


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


int
ngx_http_wirehub_jwt_looks_like_pem(const unsigned char *key, size_t len)
{
    return memmem(key, len, "-----BEGIN", sizeof("-----BEGIN") - 1) != NULL;
}


EVP_PKEY *
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


/*
 * An HMAC context keyed once with the secret: each verification starts
 * again from the hashed key (EVP_MAC_init() without a key), about a
 * quarter of what HMAC() costs when it fetches and keys all anew.
 */
static int
ngx_http_wirehub_jwt_mac_init(ngx_http_wirehub_jwt_key_t *k, char *err,
    size_t err_len)
{
    int           ok;
    EVP_MAC      *mac;
    OSSL_PARAM    params[2];

    mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (mac == NULL) {
        ERR_clear_error();
        ngx_http_wirehub_jwt_error(err, err_len, "no HMAC in OpenSSL");
        return -1;
    }

    k->mac = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                    (char *) EVP_MD_get0_name(k->alg->md()), 0);
    params[1] = OSSL_PARAM_construct_end();

    ok = k->mac != NULL
         && EVP_MAC_init(k->mac, k->secret, k->secret_len, params) == 1;

    ERR_clear_error();

    if (!ok) {
        ngx_http_wirehub_jwt_error(err, err_len, "cannot key %s",
                                   k->alg->name);
        return -1;
    }

    return 0;
}


/* fills the key material of k: a secret, or a parsed public key */
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

        k->secret = malloc(key_len);
        if (k->secret == NULL) {
            ngx_http_wirehub_jwt_error(err, err_len, "out of memory");
            return -1;
        }

        memcpy(k->secret, key, key_len);
        k->secret_len = key_len;
        k->sig_len = alg->sig_len;

        return ngx_http_wirehub_jwt_mac_init(k, err, err_len);
    }

    k->pkey = ngx_http_wirehub_jwt_pem_read(alg, key, key_len, 0, err,
                                            err_len);
    if (k->pkey == NULL) {
        return -1;
    }

    k->sig_len = alg->sig_len ? alg->sig_len
                              : (size_t) EVP_PKEY_get_size(k->pkey);

    if (ngx_http_wirehub_jwt_verify_setup(k) != 0) {
        ngx_http_wirehub_jwt_error(err, err_len,
                                   "OpenSSL cannot verify %s with this key",
                                   alg->name);
        return -1;
    }

    return 0;
}


static void
ngx_http_wirehub_jwt_key_free(ngx_http_wirehub_jwt_key_t *k)
{
    if (k->secret != NULL) {
        ngx_http_wirehub_jwt_free_secret(k->secret, k->secret_len);
    }

    EVP_MAC_CTX_free(k->mac);
    EVP_MD_CTX_free(k->verify);
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


int
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


void
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

