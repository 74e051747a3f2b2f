
/*
 * Wirehub: signing tokens for POST /api/clients.
 *
 * libjwt signs (HS*, RS*, ES*) with the key checked and normalised here:
 * a private key is parsed and type-checked like a verification key, then
 * handed to libjwt as the PEM of exactly that key.
 */


#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ngx_http_wirehub_jwt_internal.h"


struct ngx_http_wirehub_jwt_signer_s {
    const ngx_http_wirehub_jwt_alg_t  *alg;
    char                              *kid;      /* NULL: none */
    unsigned char                     *key;      /* secret or private PEM */
    size_t                             key_len;
};


/* the PKCS#8 PEM text of a private key, malloc'ed */
static unsigned char *
ngx_http_wirehub_jwt_pem_write(EVP_PKEY *pkey, size_t *len)
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

    ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);

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

    s->key = ngx_http_wirehub_jwt_pem_write(pkey, &s->key_len);
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
