
/*
 * JWTs for the load: minted here with OpenSSL (HS256 by HMAC, ES256 by
 * ECDSA over P-256 with the signature in JOSE's r || s form), or one token
 * read from a file and used by every client.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "wsl.h"


#define WSL_TOKEN_TTL   3600
#define WSL_SECRET_MAX  1024
#define WSL_ES256_PART  32


typedef enum {
    WSL_SIGN_FILE = 0,
    WSL_SIGN_HS256,
    WSL_SIGN_ES256
} wsl_sign_e;


struct wsl_signer_s {
    wsl_sign_e      kind;
    const char     *workspace;
    char            header[128];        /* base64url of the JOSE header */
    unsigned char   secret[WSL_SECRET_MAX];
    size_t          secret_len;
    EVP_PKEY       *pkey;
    char            token[WSL_MAX_TOKEN];
};


static size_t
wsl_b64url(const unsigned char *in, size_t len, char *out)
{
    static const char  abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t    i, n;
    uint32_t  v;

    n = 0;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];
        out[n++] = abc[v >> 6 & 63];
        out[n++] = abc[v & 63];
    }

    if (len - i == 1) {
        v = (uint32_t) in[i] << 16;
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];

    } else if (len - i == 2) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        out[n++] = abc[v >> 18 & 63];
        out[n++] = abc[v >> 12 & 63];
        out[n++] = abc[v >> 6 & 63];
    }

    out[n] = '\0';
    return n;
}


static int
wsl_read_file(const char *path, unsigned char *buf, size_t cap, size_t *len,
    char *err, size_t errlen)
{
    FILE    *f;
    size_t   n;

    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }

    n = fread(buf, 1, cap, f);
    fclose(f);

    if (n == 0 || n == cap) {
        snprintf(err, errlen, "%s is empty or too large", path);
        return -1;
    }

    *len = n;
    return 0;
}


/* one trailing newline is not part of a secret, as nginx reads it */
static int
wsl_signer_hs256(wsl_signer_t *s, const char *path, char *err,
    size_t errlen)
{
    if (wsl_read_file(path, s->secret, sizeof(s->secret), &s->secret_len,
                      err, errlen) != 0)
    {
        return -1;
    }

    if (s->secret[s->secret_len - 1] == '\n') {
        s->secret_len--;
    }

    return 0;
}


static int
wsl_signer_es256(wsl_signer_t *s, const char *path, char *err,
    size_t errlen)
{
    FILE  *f;

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }

    s->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);

    if (s->pkey == NULL || EVP_PKEY_base_id(s->pkey) != EVP_PKEY_EC) {
        snprintf(err, errlen, "%s is not an EC private key", path);
        return -1;
    }

    return 0;
}


static int
wsl_signer_file(wsl_signer_t *s, const char *path, char *err, size_t errlen)
{
    size_t  len;

    if (wsl_read_file(path, (unsigned char *) s->token,
                      sizeof(s->token) - 1, &len, err, errlen) != 0)
    {
        return -1;
    }

    while (len > 0 && (s->token[len - 1] == '\n' || s->token[len - 1] == '\r'
                       || s->token[len - 1] == ' '))
    {
        len--;
    }

    s->token[len] = '\0';
    return 0;
}


wsl_signer_t *
wsl_signer_open(const wsl_conf_t *conf, char *err, size_t errlen)
{
    int            rc;
    char           json[128];
    wsl_signer_t  *s;

    s = calloc(1, sizeof(wsl_signer_t));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    s->workspace = conf->workspace;

    if (conf->token_file) {
        s->kind = WSL_SIGN_FILE;
        rc = wsl_signer_file(s, conf->token_file, err, errlen);

    } else if (strcmp(conf->alg, "HS256") == 0) {
        s->kind = WSL_SIGN_HS256;
        rc = wsl_signer_hs256(s, conf->key_file, err, errlen);

    } else if (strcmp(conf->alg, "ES256") == 0) {
        s->kind = WSL_SIGN_ES256;
        rc = wsl_signer_es256(s, conf->key_file, err, errlen);

    } else {
        snprintf(err, errlen, "unsupported algorithm \"%s\"", conf->alg);
        rc = -1;
    }

    if (rc != 0) {
        wsl_signer_close(s);
        return NULL;
    }

    if (s->kind != WSL_SIGN_FILE) {
        if (conf->kid) {
            snprintf(json, sizeof(json),
                     "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                     conf->alg, conf->kid);
        } else {
            snprintf(json, sizeof(json), "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
                     conf->alg);
        }

        wsl_b64url((unsigned char *) json, strlen(json), s->header);
    }

    return s;
}


static int
wsl_sign_hs256(wsl_signer_t *s, const char *input, size_t len,
    unsigned char *sig, size_t *siglen)
{
    unsigned int  n;

    n = 0;

    if (HMAC(EVP_sha256(), s->secret, (int) s->secret_len,
             (const unsigned char *) input, len, sig, &n) == NULL)
    {
        return -1;
    }

    *siglen = n;
    return 0;
}


/* JOSE wants r and s as two fixed 32-byte big-endian numbers, not DER */
static int
wsl_sign_es256(wsl_signer_t *s, const char *input, size_t len,
    unsigned char *sig, size_t *siglen)
{
    int                   rc;
    size_t                der_len;
    EVP_MD_CTX           *md;
    ECDSA_SIG            *ec;
    const BIGNUM         *r, *ss;
    unsigned char         der[128];
    const unsigned char  *p;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return -1;
    }

    der_len = sizeof(der);
    rc = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s->pkey) == 1
         && EVP_DigestSign(md, der, &der_len, (const unsigned char *) input,
                           len) == 1;
    EVP_MD_CTX_free(md);

    if (!rc) {
        return -1;
    }

    p = der;
    ec = d2i_ECDSA_SIG(NULL, &p, (long) der_len);
    if (ec == NULL) {
        return -1;
    }

    ECDSA_SIG_get0(ec, &r, &ss);
    rc = BN_bn2binpad(r, sig, WSL_ES256_PART) == WSL_ES256_PART
         && BN_bn2binpad(ss, sig + WSL_ES256_PART, WSL_ES256_PART)
            == WSL_ES256_PART;
    ECDSA_SIG_free(ec);

    *siglen = 2 * WSL_ES256_PART;
    return rc ? 0 : -1;
}


/* a token for client `sub`; `service` adds role service (for the API) */
int
wsl_signer_mint(wsl_signer_t *s, const char *sub, int service, char *out,
    size_t outlen)
{
    int            n, rc;
    char           claims[512], input[1024];
    size_t         len, siglen;
    unsigned char  sig[128];

    if (s->kind == WSL_SIGN_FILE) {
        n = snprintf(out, outlen, "%s", s->token);
        return (n < 0 || (size_t) n >= outlen) ? -1 : 0;
    }

    n = snprintf(claims, sizeof(claims),
                 "{\"sub\":\"%s\",\"workspace\":\"%s\",\"exp\":%ld%s}",
                 sub, s->workspace, (long) time(NULL) + WSL_TOKEN_TTL,
                 service ? ",\"role\":\"service\"" : "");
    if (n < 0 || (size_t) n >= sizeof(claims)) {
        return -1;
    }

    len = (size_t) snprintf(input, sizeof(input), "%s.", s->header);
    len += wsl_b64url((unsigned char *) claims, (size_t) n, input + len);

    rc = (s->kind == WSL_SIGN_HS256)
         ? wsl_sign_hs256(s, input, len, sig, &siglen)
         : wsl_sign_es256(s, input, len, sig, &siglen);
    if (rc != 0) {
        return -1;
    }

    if (len + 2 + (siglen * 4 + 2) / 3 >= outlen) {
        return -1;
    }

    memcpy(out, input, len);
    out[len++] = '.';
    wsl_b64url(sig, siglen, out + len);

    return 0;
}


void
wsl_signer_close(wsl_signer_t *s)
{
    if (s == NULL) {
        return;
    }

    EVP_PKEY_free(s->pkey);
    OPENSSL_cleanse(s->secret, sizeof(s->secret));
    free(s);
}
