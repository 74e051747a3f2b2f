
/*
 * Wirehub: JWT verification and signing.
 *
 * Independent of nginx (libc, libjwt 1.10.2, jansson, OpenSSL) so that unit
 * tests and fuzzers can drive it directly.  libjwt 1.10.2 trusts its input
 * far too much (no key means no check, alg "none", algorithm confusion, no
 * claim checks, lenient base64, last-duplicate-wins JSON), so every token is
 * checked strictly here, and libjwt is left only HMAC signatures and
 * signing: RSA and ECDSA signatures are checked with OpenSSL and the public
 * key parsed once, when it is added.
 */


#ifndef _NGX_HTTP_WIREHUB_JWT_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_JWT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


/* the largest token accepted, in bytes */
#define NGX_HTTP_WIREHUB_JWT_MAX_TOKEN      8192

/* the largest key file read, in bytes */
#define NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE   65536

#define NGX_HTTP_WIREHUB_JWT_MAX_KID        256
#define NGX_HTTP_WIREHUB_JWT_MAX_WORKSPACE  64
#define NGX_HTTP_WIREHUB_JWT_MAX_CLIENT_ID  128
#define NGX_HTTP_WIREHUB_JWT_MAX_PATTERN    200


/* the verification keys: opaque, malloc-owned */
typedef struct ngx_http_wirehub_jwt_keys_s  ngx_http_wirehub_jwt_keys_t;


ngx_http_wirehub_jwt_keys_t *ngx_http_wirehub_jwt_keys_create(void);
void ngx_http_wirehub_jwt_keys_destroy(ngx_http_wirehub_jwt_keys_t *keys);

/*
 * alg: "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256",
 * "ES384" or "PS256"; kid may be NULL; key is an HMAC secret, copied, or
 * for the others a PEM public key, parsed and checked here, once.  Returns
 * 0, or -1 with a message in err that never contains key material.
 */
int ngx_http_wirehub_jwt_keys_add(ngx_http_wirehub_jwt_keys_t *keys,
    const char *alg, const char *kid, const unsigned char *key,
    size_t key_len, char *err, size_t err_len);

/*
 * The same, the key read from a file: HMAC secrets are the raw file bytes
 * with one trailing newline stripped, the others PEM text.
 */
int ngx_http_wirehub_jwt_keys_add_file(ngx_http_wirehub_jwt_keys_t *keys,
    const char *alg, const char *kid, const char *path, char *err,
    size_t err_len);

/* the number of keys configured */
size_t ngx_http_wirehub_jwt_keys_count(const ngx_http_wirehub_jwt_keys_t *keys);


typedef struct {
    const char                 *workspace_claim;  /* NULL: "workspace" */
    const char                 *client_claim;     /* NULL: "sub" */
    const char                 *issuer;           /* NULL: not checked */
    const char                 *audience;         /* NULL: not checked */
    long                        leeway;           /* seconds */
    unsigned                    require_exp:1;
} ngx_http_wirehub_jwt_policy_t;


typedef enum {
    NGX_HTTP_WIREHUB_ROLE_CLIENT = 0,
    NGX_HTTP_WIREHUB_ROLE_SERVICE,
    NGX_HTTP_WIREHUB_ROLE_ADMIN
} ngx_http_wirehub_role_e;


typedef struct {
    json_t                     *payload;    /* owned, the verified payload */
    const char                 *workspace;  /* points into payload */
    const char                 *client_id;  /* points into payload */
    ngx_http_wirehub_role_e     role;
    int64_t                     exp;        /* 0 when absent */
    int64_t                     iat;        /* 0 when absent */
    int64_t                     nbf;        /* 0 when absent */
    json_t                     *channels;   /* borrowed array or NULL */
    json_t                     *publish;    /* borrowed array or NULL */
    unsigned                    cached:1;   /* the signature, in the cache */
} ngx_http_wirehub_jwt_claims_t;


typedef enum {
    NGX_HTTP_WIREHUB_JWT_OK = 0,
    /* size, segments, base64, JSON, types, duplicates, crit */
    NGX_HTTP_WIREHUB_JWT_MALFORMED,
    /* none, not allowed, alg != key alg */
    NGX_HTTP_WIREHUB_JWT_BAD_ALG,
    NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID,
    NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
    NGX_HTTP_WIREHUB_JWT_EXPIRED,
    NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID,
    NGX_HTTP_WIREHUB_JWT_BAD_ISSUER,
    NGX_HTTP_WIREHUB_JWT_BAD_AUDIENCE,
    /* missing/invalid workspace, sub, role, channels, publish */
    NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS,
    NGX_HTTP_WIREHUB_JWT_TOO_LARGE
} ngx_http_wirehub_jwt_rc_e;


/*
 * The RS*, PS* and ES* signatures a process found good with one key set,
 * by a digest of the token (ngx_http_wirehub_jwt_cache.c): a
 * token seen again skips the public-key check, nothing else.  HMAC
 * signatures are not kept: checking one costs about what finding it would.
 * A cache serves the keys it was made for, and is destroyed before them;
 * with other keys it is not used.  One per process, used from one thread;
 * entries are rounded up to a power of 2, at least 4, 40 bytes each.
 * NULL: no memory.
 */
typedef struct ngx_http_wirehub_jwt_cache_s  ngx_http_wirehub_jwt_cache_t;

ngx_http_wirehub_jwt_cache_t *ngx_http_wirehub_jwt_cache_create(
    const ngx_http_wirehub_jwt_keys_t *keys, size_t entries);
void ngx_http_wirehub_jwt_cache_destroy(ngx_http_wirehub_jwt_cache_t *cache);


/*
 * Verifies token[0..len) at the time now (seconds since the epoch).  On
 * NGX_HTTP_WIREHUB_JWT_OK *claims is filled and the caller frees it with
 * ngx_http_wirehub_jwt_claims_free(); on failure *claims is untouched and
 * err gets a short message that never contains the token.  keys NULL
 * verifies nothing, policy NULL means the defaults, cache NULL checks
 * every signature.  No other state is kept between calls; the stack use
 * is about 20 KiB.
 */
ngx_http_wirehub_jwt_rc_e ngx_http_wirehub_jwt_verify(
    const ngx_http_wirehub_jwt_keys_t *keys,
    ngx_http_wirehub_jwt_cache_t *cache,
    const ngx_http_wirehub_jwt_policy_t *policy, const unsigned char *token,
    size_t len, int64_t now, ngx_http_wirehub_jwt_claims_t *claims,
    char *err, size_t err_len);

void ngx_http_wirehub_jwt_claims_free(ngx_http_wirehub_jwt_claims_t *claims);

/* a stable machine code for error bodies: "token_expired", "unknown_kid" */
const char *ngx_http_wirehub_jwt_rc_code(ngx_http_wirehub_jwt_rc_e rc);


/* token signing for POST /api/clients: HS*, RS* and ES* */
typedef struct ngx_http_wirehub_jwt_signer_s  ngx_http_wirehub_jwt_signer_t;


/* path: an HMAC secret (one trailing newline stripped) or a PEM private key */
ngx_http_wirehub_jwt_signer_t *ngx_http_wirehub_jwt_signer_create_file(
    const char *alg, const char *path, char *err, size_t err_len);
void ngx_http_wirehub_jwt_signer_destroy(ngx_http_wirehub_jwt_signer_t *s);

/* the kid put in the header of every token signed; NULL: none */
int ngx_http_wirehub_jwt_signer_set_kid(ngx_http_wirehub_jwt_signer_t *s,
    const char *kid, char *err, size_t err_len);

/* claims: a JSON object; returns a malloc'ed token to free(), or NULL */
char *ngx_http_wirehub_jwt_sign(const ngx_http_wirehub_jwt_signer_t *s,
    json_t *claims, char *err, size_t err_len);


#endif /* _NGX_HTTP_WIREHUB_JWT_H_INCLUDED_ */
