
/*
 * Wirehub: what the files of the JWT verifier and signer share, and
 * nothing that the rest of the module needs (see ngx_http_wirehub_jwt.h).
 *
 *   ngx_http_wirehub_jwt.c            token syntax, header, key choice,
 *                                     verify()
 *   ngx_http_wirehub_jwt_keys.c       key loading and checking, the key set
 *   ngx_http_wirehub_jwt_signature.c  the signature, each algorithm
 *   ngx_http_wirehub_jwt_claims.c     the claims
 *   ngx_http_wirehub_jwt_cache.c      the signatures already found good
 *   ngx_http_wirehub_jwt_signer.c     signing tokens
 */


#ifndef _NGX_HTTP_WIREHUB_JWT_INTERNAL_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_JWT_INTERNAL_H_INCLUDED_


#include <jwt.h>
#include <openssl/evp.h>

#include "ngx_http_wirehub_jwt.h"


/* the largest decoded segment: 3/4 of the largest token */
#define NGX_HTTP_WIREHUB_JWT_MAX_DECODED                                      \
    (NGX_HTTP_WIREHUB_JWT_MAX_TOKEN / 4 * 3)

/* the cache's digest of a token: SHA-256 */
#define NGX_HTTP_WIREHUB_JWT_DIGEST  32


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
    unsigned char                     *secret;   /* HMAC only */
    size_t                             secret_len;
    EVP_MAC_CTX                       *mac;      /* HMAC: keyed once */
    EVP_PKEY                          *pkey;     /* the others, parsed once */
    EVP_MD_CTX                        *verify;   /* and set up once */
    size_t                             sig_len;
} ngx_http_wirehub_jwt_key_t;


struct ngx_http_wirehub_jwt_keys_s {
    ngx_http_wirehub_jwt_key_t        *elts;
    size_t                             nelts;
    size_t                             nalloc;
};


/* a header the scanner reads without jansson: the usual ones */
#define NGX_HTTP_WIREHUB_JWT_PLAIN_HEADER  256

/* what the header says: a member absent, or not a string, is NULL */
typedef struct {
    const char                        *alg;
    const char                        *typ;
    const char                        *kid;
    unsigned                           typ_set:1;   /* present, any kind */
    unsigned                           kid_set:1;
    unsigned                           crit:1;
} ngx_http_wirehub_jwt_header_t;


/* one verification: the token taken apart, and where errors go */
typedef struct {
    const unsigned char               *token;
    size_t                             len;
    size_t                             signed_len;  /* header.payload */
    ngx_http_wirehub_jwt_header_t      hdr;
    json_t                            *header;      /* when jansson read it */
    char                               plain[NGX_HTTP_WIREHUB_JWT_PLAIN_HEADER];
    json_t                            *payload;
    const ngx_http_wirehub_jwt_alg_t  *alg;
    const ngx_http_wirehub_jwt_key_t  *key;
    size_t                             sig_len;
    unsigned char                      sig[NGX_HTTP_WIREHUB_JWT_MAX_DECODED];
    unsigned char                      digest[NGX_HTTP_WIREHUB_JWT_DIGEST];
    unsigned                           digest_set:1;
    unsigned                           cached:1;    /* the cache knew it */
    char                              *err;
    size_t                             err_len;
} ngx_http_wirehub_jwt_ctx_t;


/* ngx_http_wirehub_jwt.c */

/* formats a message into err, when there is room for one */
void ngx_http_wirehub_jwt_error(char *err, size_t err_len, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* the same into ctx->err; returns rc */
ngx_http_wirehub_jwt_rc_e ngx_http_wirehub_jwt_fail(
    ngx_http_wirehub_jwt_ctx_t *ctx, ngx_http_wirehub_jwt_rc_e rc,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* an algorithm by its exact, case-sensitive name; NULL if unknown */
const ngx_http_wirehub_jwt_alg_t *ngx_http_wirehub_jwt_alg_find(
    const char *name);


/* ngx_http_wirehub_jwt_keys.c */

int ngx_http_wirehub_jwt_looks_like_pem(const unsigned char *key,
    size_t len);

/* parses a PEM key of the type alg needs; NULL with a message on error */
EVP_PKEY *ngx_http_wirehub_jwt_pem_read(const ngx_http_wirehub_jwt_alg_t *alg,
    const unsigned char *pem, size_t len, int private_key, char *err,
    size_t err_len);

/* reads a whole key file into a malloc'ed buffer; 0 or -1 with a message */
int ngx_http_wirehub_jwt_read_file(const char *path, unsigned char **data,
    size_t *len, char *err, size_t err_len);

/* wipes and frees a buffer that held key material */
void ngx_http_wirehub_jwt_free_secret(unsigned char *data, size_t len);


/* ngx_http_wirehub_jwt_signature.c */

/* ctx->sig against ctx->token with ctx->key, whose alg is ctx->alg */
ngx_http_wirehub_jwt_rc_e ngx_http_wirehub_jwt_check_signature(
    ngx_http_wirehub_jwt_ctx_t *ctx);

/* k->verify for k->pkey: -1 if OpenSSL cannot set it up */
int ngx_http_wirehub_jwt_verify_setup(ngx_http_wirehub_jwt_key_t *k);


/* ngx_http_wirehub_jwt_cache.c */

/* 1 if the cache was made for these keys: it is of no use with others */
int ngx_http_wirehub_jwt_cache_knows(
    const ngx_http_wirehub_jwt_cache_t *cache,
    const ngx_http_wirehub_jwt_keys_t *keys);

/*
 * 1 if ctx->token's signature was found good before; either way the
 * token's digest is left in ctx for ngx_http_wirehub_jwt_cache_add()
 */
int ngx_http_wirehub_jwt_cache_find(ngx_http_wirehub_jwt_cache_t *cache,
    ngx_http_wirehub_jwt_ctx_t *ctx);

/* remembers that ctx->token's signature was found good */
void ngx_http_wirehub_jwt_cache_add(ngx_http_wirehub_jwt_cache_t *cache,
    const ngx_http_wirehub_jwt_ctx_t *ctx);


/* ngx_http_wirehub_jwt_claims.c */

/* ctx->payload against the policy; fills claims, except claims->payload */
ngx_http_wirehub_jwt_rc_e ngx_http_wirehub_jwt_check_claims(
    ngx_http_wirehub_jwt_ctx_t *ctx,
    const ngx_http_wirehub_jwt_policy_t *policy, int64_t now,
    ngx_http_wirehub_jwt_claims_t *claims);


#endif /* _NGX_HTTP_WIREHUB_JWT_INTERNAL_H_INCLUDED_ */
