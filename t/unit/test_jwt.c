
/*
 * Unit tests of the JWT verifier and signer (ngx_http_wirehub_jwt*.c).
 *
 * Tokens are minted here: with the module's signer (libjwt), with HMAC over
 * hand-written JSON for malformed and hostile headers, and with OpenSSL for
 * PS256, which libjwt 1.10 cannot sign, and for RSA and ECDSA signatures
 * bent on purpose.  A few tokens minted by PyJWT are embedded as they are,
 * to check the verifier against another implementation.  Keys live in
 * t/keys.
 */


#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "ngx_http_wirehub_jwt.h"


#define NOW      1700000000LL
#define LEEWAY   30
#define ERR_LEN  256

#define HS256_HEADER  "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define RS256_HEADER  "{\"alg\":\"RS256\"}"
/* a JWT header past what the plain-header scanner takes */
#define LONG_HEADER_LEN  314
#define RS384_HEADER  "{\"alg\":\"RS384\"}"
#define RS512_HEADER  "{\"alg\":\"RS512\"}"
#define PS256_HEADER  "{\"alg\":\"PS256\"}"
#define ES256_HEADER  "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define ES384_HEADER  "{\"alg\":\"ES384\"}"

/* the claims of the PyJWT tokens, and the same with another sub */
#define PYJWT_EXP            4102444800LL
#define PYJWT_OTHER_PAYLOAD                                                  \
    "{\"workspace\":\"acme\",\"sub\":\"py-2\",\"exp\":4102444800,"            \
    "\"iat\":1699999990}"

#define PKCS1    0
#define PSS      RSA_PSS_SALTLEN_DIGEST


typedef struct {
    ngx_http_wirehub_jwt_keys_t  *all;       /* one key per alg, no kid */
    ngx_http_wirehub_jwt_keys_t  *kids;      /* HS256 a, HS256 b, ES256 e */
    ngx_http_wirehub_jwt_keys_t  *rsa_only;  /* RS256 only */
    unsigned char                *secret;    /* hs256.secret, no newline */
    size_t                        secret_len;
    unsigned char                *secret_b;  /* hs256-b.secret */
    size_t                        secret_b_len;
    unsigned char                *rsa_pub;   /* rsa2048.pub.pem as is */
    size_t                        rsa_pub_len;
    EVP_PKEY                     *rsa_priv;
    EVP_PKEY                     *ec256_priv;
    EVP_PKEY                     *ec384_priv;
    EVP_PKEY                     *ec256_other;  /* made here, unknown */
} test_env_t;


/* helpers */


static const char *
key_path(const char *name)
{
    static char  path[512];
    const char  *slash;

    /* t/unit/test_jwt.c -> t/keys/NAME, wherever the tree is */
    slash = strrchr(__FILE__, '/');
    slash = slash ? slash : __FILE__;

    snprintf(path, sizeof(path), "%.*s/../keys/%s",
             (int) (slash - __FILE__), __FILE__, name);

    return path;
}


static unsigned char *
read_key(const char *name, size_t *len)
{
    FILE           *f;
    unsigned char  *buf;

    f = fopen(key_path(name), "rb");
    assert_non_null(f);

    buf = malloc(NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE);
    assert_non_null(buf);

    *len = fread(buf, 1, NGX_HTTP_WIREHUB_JWT_MAX_KEY_FILE, f);
    fclose(f);
    assert_true(*len > 0);

    return buf;
}


static char *
b64url(const unsigned char *data, size_t len)
{
    int     n;
    char   *out, *p;

    out = malloc(4 * ((len + 2) / 3) + 1);
    assert_non_null(out);

    n = EVP_EncodeBlock((unsigned char *) out, data, (int) len);

    while (n > 0 && out[n - 1] == '=') {
        n--;
    }

    out[n] = '\0';

    for (p = out; *p; p++) {
        if (*p == '+') {
            *p = '-';

        } else if (*p == '/') {
            *p = '_';
        }
    }

    return out;
}


static const EVP_MD *
hmac_md(const char *alg)
{
    if (strcmp(alg, "HS384") == 0) {
        return EVP_sha384();
    }

    if (strcmp(alg, "HS512") == 0) {
        return EVP_sha512();
    }

    return EVP_sha256();
}


/* "b64(header).b64(payload)", malloc'ed */
static char *
signing_input(const char *header, const char *payload)
{
    char  *h, *p, *out;

    h = b64url((const unsigned char *) header, strlen(header));
    p = b64url((const unsigned char *) payload, strlen(payload));

    out = malloc(strlen(h) + strlen(p) + 2);
    assert_non_null(out);
    sprintf(out, "%s.%s", h, p);

    free(h);
    free(p);

    return out;
}


static char *
join_signature(char *input, const unsigned char *sig, size_t sig_len)
{
    char  *s, *out;

    s = b64url(sig, sig_len);

    out = malloc(strlen(input) + strlen(s) + 2);
    assert_non_null(out);
    sprintf(out, "%s.%s", input, s);

    free(input);
    free(s);

    return out;
}


/* an HMAC token over hand-written JSON (duplicates and all) */
static char *
hmac_token(const char *alg, const unsigned char *secret, size_t secret_len,
    const char *header, const char *payload)
{
    char           *input;
    unsigned int    mac_len;
    unsigned char   mac[EVP_MAX_MD_SIZE];

    input = signing_input(header, payload);

    assert_non_null(HMAC(hmac_md(alg), secret, (int) secret_len,
                         (unsigned char *) input, strlen(input), mac,
                         &mac_len));

    return join_signature(input, mac, mac_len);
}


static char *
hs_token(test_env_t *env, const char *payload)
{
    return hmac_token("HS256", env->secret, env->secret_len, HS256_HEADER,
                      payload);
}


/*
 * An RSA token signed with OpenSSL and md: PKCS #1 v1.5 when salt is 0,
 * else PSS with that salt length (RSA_PSS_SALTLEN_DIGEST is what PS256
 * means).
 */
static char *
rsa_token_md(test_env_t *env, const EVP_MD *md, int salt, const char *header,
    const char *payload)
{
    char           *input;
    size_t          sig_len;
    EVP_MD_CTX     *md_ctx;
    EVP_PKEY_CTX   *pkey_ctx;
    unsigned char   sig[1024];

    input = signing_input(header, payload);

    md_ctx = EVP_MD_CTX_new();
    assert_non_null(md_ctx);
    assert_int_equal(EVP_DigestSignInit(md_ctx, &pkey_ctx, md, NULL,
                                        env->rsa_priv), 1);

    if (salt != 0) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pkey_ctx,
                                                RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_ctx, salt),
                         1);
    }

    sig_len = sizeof(sig);
    assert_int_equal(EVP_DigestSign(md_ctx, sig, &sig_len,
                                    (unsigned char *) input, strlen(input)),
                     1);
    EVP_MD_CTX_free(md_ctx);

    return join_signature(input, sig, sig_len);
}


static char *
rsa_token(test_env_t *env, int salt, const char *header, const char *payload)
{
    return rsa_token_md(env, EVP_sha256(), salt, header, payload);
}


/*
 * An ECDSA signature by pkey with md over input: as JOSE puts it, R || S
 * of half bytes each, into raw; and, when der is not NULL, as OpenSSL
 * makes it, DER, into der[0..*der_len).
 */
static void
ec_sign(EVP_PKEY *pkey, const EVP_MD *md, const char *input,
    unsigned char *raw, size_t half, unsigned char *der, size_t *der_len)
{
    size_t                n;
    ECDSA_SIG            *sig;
    EVP_MD_CTX           *md_ctx;
    const unsigned char  *p;
    unsigned char         buf[256];

    md_ctx = EVP_MD_CTX_new();
    assert_non_null(md_ctx);
    assert_int_equal(EVP_DigestSignInit(md_ctx, NULL, md, NULL, pkey), 1);

    n = sizeof(buf);
    assert_int_equal(EVP_DigestSign(md_ctx, buf, &n,
                                    (const unsigned char *) input,
                                    strlen(input)),
                     1);
    EVP_MD_CTX_free(md_ctx);

    p = buf;
    sig = d2i_ECDSA_SIG(NULL, &p, (long) n);
    assert_non_null(sig);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, (int) half),
                     half);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + half,
                                  (int) half),
                     half);
    ECDSA_SIG_free(sig);

    if (der != NULL) {
        memcpy(der, buf, n);
        *der_len = n;
    }
}


/* an ES token signed with OpenSSL: ES256 and ES384 by their headers */
static char *
ec_token(EVP_PKEY *pkey, const EVP_MD *md, size_t half, const char *header,
    const char *payload)
{
    char           *input;
    unsigned char   raw[2 * 66];

    input = signing_input(header, payload);
    ec_sign(pkey, md, input, raw, half, NULL, NULL);

    return join_signature(input, raw, 2 * half);
}


/* a token from the module's signer, from a key file in t/keys */
static char *
signer_token(const char *alg, const char *key_file, const char *payload)
{
    char                           *token;
    json_t                         *claims;
    ngx_http_wirehub_jwt_signer_t  *s;
    char                            err[ERR_LEN];

    s = ngx_http_wirehub_jwt_signer_create_file(alg, key_path(key_file), err,
                                                sizeof(err));
    if (s == NULL) {
        fail_msg("signer %s %s: %s", alg, key_file, err);
    }

    claims = json_loads(payload, 0, NULL);
    assert_non_null(claims);

    token = ngx_http_wirehub_jwt_sign(s, claims, err, sizeof(err));
    if (token == NULL) {
        fail_msg("sign %s: %s", alg, err);
    }

    json_decref(claims);
    ngx_http_wirehub_jwt_signer_destroy(s);

    return token;
}


static char *
payload_with(const char *extra)
{
    static char  buf[16384];

    snprintf(buf, sizeof(buf),
             "{\"workspace\":\"acme\",\"sub\":\"pc-7\",\"exp\":%lld,"
             "\"iat\":%lld%s%s}", NOW + 600, NOW - 10,
             extra[0] ? "," : "", extra);

    return buf;
}


static ngx_http_wirehub_jwt_policy_t
default_policy(void)
{
    ngx_http_wirehub_jwt_policy_t  policy;

    memset(&policy, 0, sizeof(policy));
    policy.leeway = LEEWAY;

    return policy;
}


/*
 * A cache for each long-lived key set of the tests, small enough that the
 * tokens of the whole run evict each other.
 */
#define TEST_CACHE_ENTRIES  16

static struct {
    const ngx_http_wirehub_jwt_keys_t  *keys;
    ngx_http_wirehub_jwt_cache_t       *cache;
} test_caches[3];


static ngx_http_wirehub_jwt_cache_t *
cache_for(const ngx_http_wirehub_jwt_keys_t *keys)
{
    size_t  i;

    for (i = 0; i < sizeof(test_caches) / sizeof(test_caches[0]); i++) {
        if (test_caches[i].keys == keys) {
            return test_caches[i].cache;
        }
    }

    return NULL;
}


/*
 * The same answer through the key set's cache, twice: a token found good
 * before may skip its signature, nothing else, and a bad one never passes
 * because a good one was seen.
 */
static void
expect_cached_at(int line, const ngx_http_wirehub_jwt_keys_t *keys,
    const ngx_http_wirehub_jwt_policy_t *policy, const char *token,
    size_t len, ngx_http_wirehub_jwt_rc_e expected)
{
    int                             i;
    ngx_http_wirehub_jwt_rc_e       rc;
    ngx_http_wirehub_jwt_cache_t   *cache;
    ngx_http_wirehub_jwt_claims_t   claims;
    char                            err[ERR_LEN];

    cache = cache_for(keys);
    if (cache == NULL) {
        return;
    }

    for (i = 0; i < 2; i++) {
        rc = ngx_http_wirehub_jwt_verify(keys, cache, policy,
                                         (const unsigned char *) token, len,
                                         NOW, &claims, err, sizeof(err));
        if (rc != expected) {
            fail_msg("line %d: verify through the cache (%d): %s (%s), "
                     "expected %s", line, i,
                     ngx_http_wirehub_jwt_rc_code(rc), err,
                     ngx_http_wirehub_jwt_rc_code(expected));
        }

        if (rc == NGX_HTTP_WIREHUB_JWT_OK) {
            ngx_http_wirehub_jwt_claims_free(&claims);
        }
    }
}


/*
 * Verifies and checks the result code; on failure also that the message is
 * set, names no part of the token and that the claims were not touched.
 * Helpers take the caller's line: cmocka would name the helper's.
 */
static void
expect_token_at(int line, const ngx_http_wirehub_jwt_keys_t *keys,
    const ngx_http_wirehub_jwt_policy_t *policy, const char *token,
    size_t len, ngx_http_wirehub_jwt_rc_e expected,
    ngx_http_wirehub_jwt_claims_t *out)
{
    const char                     *dot;
    unsigned char                  *raw;
    ngx_http_wirehub_jwt_rc_e       rc;
    ngx_http_wirehub_jwt_claims_t   claims;
    char                            err[ERR_LEN];

    memset(&claims, 0xa5, sizeof(claims));
    err[0] = '\0';

    expect_cached_at(line, keys, policy, token, len, expected);

    rc = ngx_http_wirehub_jwt_verify(keys, NULL, policy,
                                     (const unsigned char *) token, len, NOW,
                                     &claims, err, sizeof(err));
    if (rc != expected) {
        fail_msg("line %d: verify: %s (%s), expected %s", line,
                 ngx_http_wirehub_jwt_rc_code(rc), err,
                 ngx_http_wirehub_jwt_rc_code(expected));
    }

    if (rc == NGX_HTTP_WIREHUB_JWT_OK && claims.cached) {
        fail_msg("line %d: cached without a cache", line);
    }

    /* nginx would log stale OpenSSL errors against another connection */
    if (ERR_peek_error() != 0) {
        fail_msg("line %d: OpenSSL error queue not empty", line);
    }

    if (rc == NGX_HTTP_WIREHUB_JWT_OK) {
        if (claims.payload == NULL) {
            fail_msg("line %d: no payload", line);
        }

        if (out != NULL) {
            *out = claims;

        } else {
            ngx_http_wirehub_jwt_claims_free(&claims);
        }

        return;
    }

    raw = (unsigned char *) &claims;
    dot = memchr(token, '.', len);

    if (err[0] == '\0' || raw[0] != 0xa5 || raw[sizeof(claims) - 1] != 0xa5
        || (dot != NULL && dot - token >= 8
            && memmem(err, strlen(err), token, dot - token) != NULL))
    {
        fail_msg("line %d: no message, claims touched or token in \"%s\"",
                 line, err);
    }
}

#define expect_token(...)  expect_token_at(__LINE__, __VA_ARGS__)


static void
expect_at(int line, const ngx_http_wirehub_jwt_keys_t *keys,
    const ngx_http_wirehub_jwt_policy_t *policy, char *token,
    ngx_http_wirehub_jwt_rc_e expected)
{
    expect_token_at(line, keys, policy, token, strlen(token), expected,
                    NULL);
    free(token);
}

#define expect(...)  expect_at(__LINE__, __VA_ARGS__)


/* verifies and checks that the message names the reason */
static void
expect_message_at(int line, const ngx_http_wirehub_jwt_keys_t *keys,
    char *token, ngx_http_wirehub_jwt_rc_e expected, const char *message)
{
    ngx_http_wirehub_jwt_rc_e       rc;
    ngx_http_wirehub_jwt_policy_t   policy;
    ngx_http_wirehub_jwt_claims_t   claims;
    char                            err[ERR_LEN];

    policy = default_policy();
    err[0] = '\0';

    rc = ngx_http_wirehub_jwt_verify(keys, NULL, &policy,
                                     (const unsigned char *) token,
                                     strlen(token), NOW, &claims, err,
                                     sizeof(err));
    free(token);

    if (rc != expected || strcmp(err, message) != 0) {
        fail_msg("line %d: %s \"%s\", expected %s \"%s\"", line,
                 ngx_http_wirehub_jwt_rc_code(rc), err,
                 ngx_http_wirehub_jwt_rc_code(expected), message);
    }

    if (ERR_peek_error() != 0) {
        fail_msg("line %d: OpenSSL error queue not empty", line);
    }
}

#define expect_message(...)  expect_message_at(__LINE__, __VA_ARGS__)


/* an HS256 token with this payload against the one-key-per-alg set */
static void
expect_payload_at(int line, test_env_t *env,
    const ngx_http_wirehub_jwt_policy_t *policy, const char *payload,
    ngx_http_wirehub_jwt_rc_e expected)
{
    expect_at(line, env->all, policy, hs_token(env, payload), expected);
}

#define expect_payload(...)  expect_payload_at(__LINE__, __VA_ARGS__)


static void
expect_claim_at(int line, test_env_t *env, const char *extra,
    ngx_http_wirehub_jwt_rc_e expected)
{
    ngx_http_wirehub_jwt_policy_t  policy;

    policy = default_policy();
    expect_payload_at(line, env, &policy, payload_with(extra), expected);
}

#define expect_claim(...)  expect_claim_at(__LINE__, __VA_ARGS__)


static void
add_key_file(ngx_http_wirehub_jwt_keys_t *keys, const char *alg,
    const char *kid, const char *file)
{
    char  err[ERR_LEN];

    if (ngx_http_wirehub_jwt_keys_add_file(keys, alg, kid, key_path(file),
                                           err, sizeof(err))
        != 0)
    {
        fail_msg("add %s %s: %s", alg, file, err);
    }
}


/* fixture */


static EVP_PKEY *
read_private_key(const char *name)
{
    BIO       *bio;
    EVP_PKEY  *pkey;

    bio = BIO_new_file(key_path(name), "r");
    assert_non_null(bio);
    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pkey);

    return pkey;
}


static int
group_setup(void **state)
{
    int          i;
    test_env_t  *env;

    env = calloc(1, sizeof(test_env_t));
    assert_non_null(env);

    env->all = ngx_http_wirehub_jwt_keys_create();
    assert_non_null(env->all);
    add_key_file(env->all, "HS256", NULL, "hs256.secret");
    add_key_file(env->all, "HS384", NULL, "hs256.secret");
    add_key_file(env->all, "HS512", NULL, "hs256.secret");
    add_key_file(env->all, "RS256", NULL, "rsa2048.pub.pem");
    add_key_file(env->all, "RS384", NULL, "rsa2048.pub.pem");
    add_key_file(env->all, "RS512", NULL, "rsa2048.pub.pem");
    add_key_file(env->all, "ES256", NULL, "ec256.pub.pem");
    add_key_file(env->all, "ES384", NULL, "ec384.pub.pem");
    add_key_file(env->all, "PS256", NULL, "rsa2048.pub.pem");
    assert_int_equal(ngx_http_wirehub_jwt_keys_count(env->all), 9);

    env->kids = ngx_http_wirehub_jwt_keys_create();
    assert_non_null(env->kids);
    add_key_file(env->kids, "HS256", "a", "hs256.secret");
    add_key_file(env->kids, "HS256", "b", "hs256-b.secret");
    add_key_file(env->kids, "ES256", "e", "ec256.pub.pem");

    env->rsa_only = ngx_http_wirehub_jwt_keys_create();
    assert_non_null(env->rsa_only);
    add_key_file(env->rsa_only, "RS256", "r", "rsa2048.pub.pem");

    env->secret = read_key("hs256.secret", &env->secret_len);
    assert_int_equal(env->secret[env->secret_len - 1], '\n');
    env->secret_len--;

    env->secret_b = read_key("hs256-b.secret", &env->secret_b_len);
    env->secret_b_len--;

    env->rsa_pub = read_key("rsa2048.pub.pem", &env->rsa_pub_len);

    env->rsa_priv = read_private_key("rsa2048.pem");
    env->ec256_priv = read_private_key("ec256.pem");
    env->ec384_priv = read_private_key("ec384.pem");
    env->ec256_other = EVP_EC_gen("P-256");
    assert_non_null(env->ec256_other);

    test_caches[0].keys = env->all;
    test_caches[1].keys = env->kids;
    test_caches[2].keys = env->rsa_only;

    for (i = 0; i < 3; i++) {
        test_caches[i].cache = ngx_http_wirehub_jwt_cache_create(
                                   test_caches[i].keys, TEST_CACHE_ENTRIES);
        assert_non_null(test_caches[i].cache);
    }

    *state = env;

    return 0;
}


static int
group_teardown(void **state)
{
    int          i;
    test_env_t  *env;

    env = *state;

    for (i = 0; i < 3; i++) {
        ngx_http_wirehub_jwt_cache_destroy(test_caches[i].cache);
        test_caches[i].cache = NULL;
        test_caches[i].keys = NULL;
    }

    ngx_http_wirehub_jwt_keys_destroy(env->all);
    ngx_http_wirehub_jwt_keys_destroy(env->kids);
    ngx_http_wirehub_jwt_keys_destroy(env->rsa_only);
    free(env->secret);
    free(env->secret_b);
    free(env->rsa_pub);
    EVP_PKEY_free(env->rsa_priv);
    EVP_PKEY_free(env->ec256_priv);
    EVP_PKEY_free(env->ec384_priv);
    EVP_PKEY_free(env->ec256_other);
    free(env);

    return 0;
}


/* accepted tokens */


static void
test_accept_every_algorithm(void **state)
{
    test_env_t                     *env;
    size_t                          i;
    const char                     *payload;
    ngx_http_wirehub_jwt_policy_t   policy;

    static const char  *signed_by_module[][2] = {
        { "HS256", "hs256.secret" },
        { "HS384", "hs256.secret" },
        { "HS512", "hs256.secret" },
        { "RS256", "rsa2048.pem" },
        { "RS384", "rsa2048.pem" },
        { "RS512", "rsa2048.pem" },
        { "ES256", "ec256.pem" },
        { "ES384", "ec384.pem" }
    };

    env = *state;
    policy = default_policy();
    payload = payload_with("");

    for (i = 0; i < sizeof(signed_by_module) / sizeof(signed_by_module[0]);
         i++)
    {
        expect(env->all, &policy,
               signer_token(signed_by_module[i][0], signed_by_module[i][1],
                            payload),
               NGX_HTTP_WIREHUB_JWT_OK);
    }

    expect(env->all, &policy,
           hmac_token("HS512", env->secret, env->secret_len,
                      "{\"alg\":\"HS512\"}", payload),
           NGX_HTTP_WIREHUB_JWT_OK);

    expect(env->all, &policy,
           rsa_token(env, PSS, "{\"alg\":\"PS256\",\"typ\":\"JWT\"}", payload),
           NGX_HTTP_WIREHUB_JWT_OK);

    expect(env->all, &policy,
           rsa_token(env, PKCS1, "{\"alg\":\"RS256\"}", payload),
           NGX_HTTP_WIREHUB_JWT_OK);

    /* typ is compared as libjwt does, without case */
    expect(env->all, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", payload),
           NGX_HTTP_WIREHUB_JWT_OK);
}


static void
test_accept_fills_claims(void **state)
{
    test_env_t                     *env;
    ngx_http_wirehub_jwt_policy_t   policy;
    ngx_http_wirehub_jwt_claims_t   claims;
    char                           *token;

    env = *state;
    policy = default_policy();

    token = hs_token(env, "{\"workspace\":\"acme.prod-1\","
                          "\"sub\":\"pc_7:agent@desk-4.x\","
                          "\"role\":\"service\",\"exp\":1700000600,"
                          "\"nbf\":1699999000,\"iat\":1699999990,"
                          "\"channels\":[\"sensors/+\",\"$presence\"],"
                          "\"publish\":[]}");

    expect_token(env->all, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_OK, &claims);
    free(token);

    assert_string_equal(claims.workspace, "acme.prod-1");
    assert_string_equal(claims.client_id, "pc_7:agent@desk-4.x");
    assert_int_equal(claims.role, NGX_HTTP_WIREHUB_ROLE_SERVICE);
    assert_int_equal(claims.exp, 1700000600);
    assert_int_equal(claims.nbf, 1699999000);
    assert_int_equal(claims.iat, 1699999990);
    assert_int_equal(json_array_size(claims.channels), 2);
    assert_string_equal(json_string_value(json_array_get(claims.channels, 1)),
                        "$presence");
    assert_non_null(claims.publish);
    assert_int_equal(json_array_size(claims.publish), 0);
    assert_ptr_equal(json_object_get(claims.payload, "channels"),
                     claims.channels);

    ngx_http_wirehub_jwt_claims_free(&claims);
    assert_null(claims.payload);

    /* the defaults: role client, no lists, no times */
    token = hs_token(env, "{\"workspace\":\"w\",\"sub\":\"c\","
                          "\"role\":\"admin\"}");
    expect_token(env->all, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_OK, &claims);
    free(token);

    assert_int_equal(claims.role, NGX_HTTP_WIREHUB_ROLE_ADMIN);
    assert_int_equal(claims.exp, 0);
    assert_int_equal(claims.nbf, 0);
    assert_int_equal(claims.iat, 0);
    assert_null(claims.channels);
    assert_null(claims.publish);
    ngx_http_wirehub_jwt_claims_free(&claims);

    token = hs_token(env, "{\"workspace\":\"w\",\"sub\":\"c\"}");
    expect_token(env->all, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_OK, &claims);
    free(token);
    assert_int_equal(claims.role, NGX_HTTP_WIREHUB_ROLE_CLIENT);
    ngx_http_wirehub_jwt_claims_free(&claims);
}


static void
test_claim_names_configurable(void **state)
{
    test_env_t                     *env;
    ngx_http_wirehub_jwt_policy_t   policy;
    ngx_http_wirehub_jwt_claims_t   claims;
    char                           *token;

    env = *state;
    policy = default_policy();
    policy.workspace_claim = "tenant";
    policy.client_claim = "cid";

    token = hs_token(env, "{\"tenant\":\"t1\",\"cid\":\"dev-9\","
                          "\"sub\":\"ignored\"}");
    expect_token(env->all, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_OK, &claims);
    free(token);

    assert_string_equal(claims.workspace, "t1");
    assert_string_equal(claims.client_id, "dev-9");
    ngx_http_wirehub_jwt_claims_free(&claims);

    expect_payload(env, &policy, payload_with(""),
                   NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
}


/* the shape of the token */


static void
test_size_limit(void **state)
{
    test_env_t                     *env;
    size_t                          len, pad;
    char                           *token, *filler;
    ngx_http_wirehub_jwt_policy_t   policy;

    env = *state;
    policy = default_policy();

    filler = malloc(8192);
    assert_non_null(filler);

    /* grow a claim until the token is 8192 bytes: the largest accepted */
    memcpy(filler, "\"pad\":\"", 7);
    len = 0;

    for (pad = 5000; len < NGX_HTTP_WIREHUB_JWT_MAX_TOKEN; pad++) {
        memset(filler + 7, 'x', pad);
        strcpy(filler + 7 + pad, "\"");

        token = hs_token(env, payload_with(filler));
        len = strlen(token);
        free(token);
    }

    pad--;
    assert_int_equal(len, NGX_HTTP_WIREHUB_JWT_MAX_TOKEN);
    token = hs_token(env, payload_with(filler));
    expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_OK);

    /* one byte more of claim, one letter more of token */
    strcpy(filler + 7 + pad, "x\"");
    token = hs_token(env, payload_with(filler));
    assert_int_equal(strlen(token), NGX_HTTP_WIREHUB_JWT_MAX_TOKEN + 1);
    expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_TOO_LARGE);

    free(filler);

    /* 12 MiB crashes libjwt: it must never get there */
    len = 12 * 1024 * 1024;
    token = malloc(len + 1);
    assert_non_null(token);
    memset(token, 'a', len);
    token[10] = '.';
    token[20] = '.';
    token[len] = '\0';
    expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_TOO_LARGE);
}


static void
expand_shape(char *out, const char *shape, const char *h, const char *p,
    const char *sig)
{
    for ( /* void */ ; *shape; shape++) {
        switch (*shape) {

        case '#':
            out = stpcpy(out, h);
            break;

        case '@':
            out = stpcpy(out, p);
            break;

        case '!':
            out = stpcpy(out, sig);
            break;

        default:
            *out++ = *shape;
        }
    }

    *out = '\0';
}


static void
test_malformed_segments(void **state)
{
    test_env_t                     *env;
    size_t                          i, len;
    char                           *good, *bad, *h, *p, *sig;
    ngx_http_wirehub_jwt_policy_t   policy;

    /* # is the header, @ the payload, ! the signature of a valid token */
    static const char  *shapes[] = {
        "",
        ".",
        "..",
        "...",
        "#",
        "#.@",
        "#.@.",
        "#.@.!.",
        "#.@.!.!",
        ".@.!",
        "#..!",
        "#.!",
        "#.@.!=",
        "#=.@.!",
        "#.@==.!",
        "#.@.!AA",
        "#A.@.!",
        " #.@.!",
        "#.@.! ",
        "#.@.!\n",
        "#.@.+!",
        "#.@./!",
        "#.@.%!",
        "Bearer #.@.!"
    };

    env = *state;
    policy = default_policy();

    good = hs_token(env, payload_with(""));
    len = strlen(good);

    h = strdup(good);
    assert_non_null(h);
    p = strchr(h, '.');
    *p++ = '\0';
    sig = strchr(p, '.');
    *sig++ = '\0';

    /* the signature is 43 letters, the header 36: neither is 4k + 1 long */
    assert_int_equal(strlen(sig) % 4, 3);
    assert_int_equal(strlen(h) % 4, 0);

    bad = malloc(3 * len + 16);
    assert_non_null(bad);

    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        expand_shape(bad, shapes[i], h, p, sig);
        expect_token(env->all, &policy, bad, strlen(bad),
                     NGX_HTTP_WIREHUB_JWT_MALFORMED, NULL);
    }

    /* each letter of the valid token replaced by a stray byte */
    strcpy(bad, good);

    for (i = 0; i < len; i++) {
        if (good[i] == '.') {
            continue;
        }

        bad[i] = (i % 3 == 0) ? '=' : (i % 3 == 1) ? '\0' : '+';
        expect_token(env->all, &policy, bad, len,
                     NGX_HTTP_WIREHUB_JWT_MALFORMED, NULL);
        bad[i] = good[i];
    }

    expect_token(env->all, &policy, bad, len, NGX_HTTP_WIREHUB_JWT_OK, NULL);

    free(bad);
    free(h);
    free(good);
}


/* the unused low bits of the last letter must be zero, in every segment */
static void
test_malformed_trailing_bits(void **state)
{
    test_env_t                     *env;
    int                             v;
    char                           *token, *last;
    ngx_http_wirehub_jwt_policy_t   policy;

    static const char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    env = *state;
    policy = default_policy();

    /* a 32-byte HMAC is 43 letters: the last one has 2 unused low bits */
    token = hs_token(env, payload_with(""));
    last = token + strlen(token) - 1;
    v = (int) (strchr(alphabet, *last) - alphabet);
    assert_int_equal(v & 3, 0);

    *last = alphabet[v ^ 1];
    expect_token(env->all, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_MALFORMED, NULL);

    *last = alphabet[v ^ 2];
    expect_token(env->all, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_MALFORMED, NULL);

    /* a used bit changed: well formed, wrong */
    *last = alphabet[v ^ 4];
    expect_token(env->all, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE, NULL);

    *last = alphabet[v];
    expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_OK);

    /* a 64-byte ES256 signature is 86 letters: 4 unused low bits */
    token = signer_token("ES256", "ec256.pem", payload_with(""));
    last = token + strlen(token) - 1;
    v = (int) (strchr(alphabet, *last) - alphabet);
    assert_int_equal(v & 0xf, 0);

    *last = alphabet[v ^ 1];
    expect_token(env->all, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_MALFORMED, NULL);

    *last = alphabet[v ^ 8];
    expect_token(env->all, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_MALFORMED, NULL);

    *last = alphabet[v];
    expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_OK);

    /* "e30" is "{}"; "e31" decodes to the same bytes with a stray bit */
    expect_token(env->all, &policy, "e30.e31.AAAA", 12,
                 NGX_HTTP_WIREHUB_JWT_MALFORMED, NULL);
    expect_token(env->all, &policy, "e31.e30.AAAA", 12,
                 NGX_HTTP_WIREHUB_JWT_MALFORMED, NULL);
}


/* HS256 tokens with each of the headers and one payload: rc for all */
static void
expect_headers(test_env_t *env, ngx_http_wirehub_jwt_policy_t *policy,
    const char **headers, size_t n, const char *payload,
    ngx_http_wirehub_jwt_rc_e rc)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        expect(env->all, policy,
               hmac_token("HS256", env->secret, env->secret_len, headers[i],
                          payload),
               rc);
    }
}


static void
test_malformed_json(void **state)
{
    test_env_t                     *env;
    size_t                          i;
    const char                     *payload;
    ngx_http_wirehub_jwt_policy_t   policy;

    static const char  *headers[] = {
        "{\"alg\":\"HS256\"",
        "[\"HS256\"]",
        "\"HS256\"",
        "{\"alg\":\"HS256\"} x",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
        "{\"alg\":\"RS256\",\"alg\":\"HS256\"}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\",\"crit\":[]}",
        "{}",
        "{\"alg\":256}",
        "{\"alg\":null}",
        "{\"alg\":\"HS256\",\"kid\":5}",
        "{\"alg\":\"HS256\",\"kid\":null}",
        "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"HS256\",\"typ\":5}",
        /* what the plain-header scanner hands to jansson, refused there */
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\",}",
        "{\"alg\":\"HS256\"\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\",\"crit\":\"exp\"}",
        "{\"alg\" \"HS256\"}",
        "{\"alg\":\"HS\t256\"}",
        " {\"alg\":\"HS256\"}}"
    };

    static const char  *payloads[] = {
        "",
        "{",
        "[]",
        "null",
        "{\"workspace\":\"a\",\"sub\":\"b\",\"sub\":\"admin\"}",
        "{\"workspace\":\"a\",\"sub\":\"b\\u0000c\"}",
        "{\"workspace\":\"a\",\"sub\":\"b\",\"exp\":1e999}"
    };

    env = *state;
    policy = default_policy();
    payload = payload_with("");

    expect_headers(env, &policy, headers, sizeof(headers) / sizeof(headers[0]),
                   payload, NGX_HTTP_WIREHUB_JWT_MALFORMED);

    for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        expect(env->all, &policy,
               hmac_token("HS256", env->secret, env->secret_len,
                          HS256_HEADER, payloads[i]),
               NGX_HTTP_WIREHUB_JWT_MALFORMED);
    }
}


/* headers the scanner reads and headers it leaves to jansson: the same
 * answers */
static void
test_header_forms(void **state)
{
    char                            long_header[LONG_HEADER_LEN + 1];
    size_t                          head;
    test_env_t                     *env;
    const char                     *payload;
    ngx_http_wirehub_jwt_policy_t   policy;

    const char  *headers[] = {
        "{\"alg\":\"HS256\"}",
        "{\"typ\":\"JWT\",\"alg\":\"HS256\"}",
        "{\"alg\":\"HS256\",\"typ\":\"jwt\"}",
        " { \"alg\" : \"HS256\" ,\n\t\"typ\" :\r\"JWT\" } ",
        /* left to jansson: escapes, another member, a long header */
        "{\"alg\":\"HS\\u0032\\u0035\\u0036\"}",
        "{\"alg\":\"HS256\",\"cty\":\"x\"}",
        "{\"alg\":\"HS256\",\"x\":[1,{\"y\":null}]}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"note\":\"caf\xc3\xa9\"}",
        long_header
    };

    /* longer than the scanner takes (NGX_HTTP_WIREHUB_JWT_PLAIN_HEADER
     * bytes decoded): all of it read by jansson */
    head = strlen(strcpy(long_header, "{\"alg\":\"HS256\",\"pad\":\""));
    memset(long_header + head, 'x', LONG_HEADER_LEN - head - 2);
    strcpy(long_header + LONG_HEADER_LEN - 2, "\"}");

    env = *state;
    policy = default_policy();
    payload = payload_with("");

    expect_headers(env, &policy, headers, sizeof(headers) / sizeof(headers[0]),
                   payload, NGX_HTTP_WIREHUB_JWT_OK);

    /* a kid in a plain header picks its key; an unknown one is refused */
    expect(env->kids, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"HS256\",\"kid\":\"a\"}", payload),
           NGX_HTTP_WIREHUB_JWT_OK);
    expect(env->kids, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"kid\":\"zz\",\"alg\":\"HS256\"}", payload),
           NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID);
    expect(env->all, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"none\"}", payload),
           NGX_HTTP_WIREHUB_JWT_BAD_ALG);
    expect(env->all, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"hs256\"}", payload),
           NGX_HTTP_WIREHUB_JWT_BAD_ALG);
}


/* algorithms */


static void
test_alg_none_and_unknown(void **state)
{
    test_env_t                     *env;
    size_t                          i;
    char                           *input, *token;
    ngx_http_wirehub_jwt_policy_t   policy;

    static const char  *headers[] = {
        "{\"alg\":\"none\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"NONE\"}",
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":\"\"}",
        "{\"alg\":\"ES512\"}",
        "{\"alg\":\"PS384\"}",
        "{\"alg\":\"EdDSA\"}"
    };

    env = *state;
    policy = default_policy();

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        expect(env->all, &policy,
               hmac_token("HS256", env->secret, env->secret_len, headers[i],
                          payload_with("")),
               NGX_HTTP_WIREHUB_JWT_BAD_ALG);

        /* the unsigned form has no signature at all */
        input = signing_input(headers[i], payload_with(""));
        token = malloc(strlen(input) + 2);
        assert_non_null(token);
        sprintf(token, "%s.", input);
        free(input);
        expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_MALFORMED);
    }
}


static void
test_alg_confusion(void **state)
{
    test_env_t                     *env;
    const char                     *payload;
    ngx_http_wirehub_jwt_policy_t   policy;

    env = *state;
    policy = default_policy();
    payload = payload_with("");

    /* HMAC keyed with the RSA public key, against that RSA key */
    expect(env->rsa_only, &policy,
           hmac_token("HS256", env->rsa_pub, env->rsa_pub_len, HS256_HEADER,
                      payload),
           NGX_HTTP_WIREHUB_JWT_BAD_ALG);

    expect(env->rsa_only, &policy,
           hmac_token("HS256", env->rsa_pub, env->rsa_pub_len,
                      "{\"alg\":\"HS256\",\"kid\":\"r\"}", payload),
           NGX_HTTP_WIREHUB_JWT_BAD_ALG);

    /* with an HS256 key configured too, the forgery is a bad signature */
    expect(env->all, &policy,
           hmac_token("HS256", env->rsa_pub, env->rsa_pub_len, HS256_HEADER,
                      payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    /* an ES256 key named by kid, a token claiming RS256 or HS256 */
    expect(env->kids, &policy,
           rsa_token(env, PKCS1, "{\"alg\":\"RS256\",\"kid\":\"e\"}", payload),
           NGX_HTTP_WIREHUB_JWT_BAD_ALG);
    expect(env->kids, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"HS256\",\"kid\":\"e\"}", payload),
           NGX_HTTP_WIREHUB_JWT_BAD_ALG);

    /* PS256 means a salt as long as the hash, nothing else */
    expect(env->all, &policy,
           rsa_token(env, RSA_PSS_SALTLEN_MAX, "{\"alg\":\"PS256\"}",
                     payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    expect(env->all, &policy,
           rsa_token(env, 20, "{\"alg\":\"PS256\"}", payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    /* RS256 signature presented as PS256 and the other way round */
    expect(env->rsa_only, &policy,
           rsa_token(env, PSS, "{\"alg\":\"RS256\"}", payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    expect(env->all, &policy,
           rsa_token(env, PKCS1, "{\"alg\":\"PS256\"}", payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    /* an HS256 token against a set without HS256 */
    expect(env->rsa_only, &policy, hs_token(env, payload),
           NGX_HTTP_WIREHUB_JWT_BAD_ALG);
}


static void
test_no_keys(void **state)
{
    test_env_t                     *env;
    ngx_http_wirehub_jwt_keys_t    *keys;
    ngx_http_wirehub_jwt_policy_t   policy;

    env = *state;
    policy = default_policy();

    keys = ngx_http_wirehub_jwt_keys_create();
    assert_non_null(keys);
    assert_int_equal(ngx_http_wirehub_jwt_keys_count(keys), 0);

    expect(keys, &policy, hs_token(env, payload_with("")),
           NGX_HTTP_WIREHUB_JWT_BAD_ALG);
    expect(NULL, &policy, hs_token(env, payload_with("")),
           NGX_HTTP_WIREHUB_JWT_BAD_ALG);

    /* no policy: the defaults */
    expect(env->all, NULL, hs_token(env, payload_with("")),
           NGX_HTTP_WIREHUB_JWT_OK);

    ngx_http_wirehub_jwt_keys_destroy(keys);
}


/* signatures */


static void
test_bad_signatures(void **state)
{
    test_env_t                     *env;
    size_t                          i;
    char                           *token, *sig, *other, *payload;
    ngx_http_wirehub_jwt_policy_t   policy;

    static const char  *signed_by_module[][2] = {
        { "HS256", "hs256.secret" },
        { "HS384", "hs256.secret" },
        { "HS512", "hs256.secret" },
        { "RS256", "rsa2048.pem" },
        { "RS512", "rsa2048.pem" },
        { "ES256", "ec256.pem" },
        { "ES384", "ec384.pem" }
    };

    env = *state;
    policy = default_policy();
    /* a copy: payload_with() reuses its buffer */
    payload = strdup(payload_with(""));
    assert_non_null(payload);

    /* the first signature letter changed: a mismatch */
    for (i = 0; i < sizeof(signed_by_module) / sizeof(signed_by_module[0]);
         i++)
    {
        token = signer_token(signed_by_module[i][0], signed_by_module[i][1],
                             payload);
        sig = strrchr(token, '.') + 1;
        sig[0] = (sig[0] == 'A') ? 'B' : 'A';
        expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    }

    token = rsa_token(env, PSS, "{\"alg\":\"PS256\"}", payload);
    sig = strrchr(token, '.') + 1;
    sig[5] = (sig[5] == 'A') ? 'B' : 'A';
    expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    /* signatures cut short: 63 of 64 bytes, 255 of 256 */
    token = signer_token("ES256", "ec256.pem", payload);
    token[strlen(token) - 2] = '\0';
    expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    token = rsa_token(env, PSS, "{\"alg\":\"PS256\"}", payload);
    token[strlen(token) - 2] = '\0';
    expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    /* the claims of one token with the signature of another */
    token = hs_token(env, payload);
    other = hs_token(env, payload_with("\"role\":\"admin\""));
    strcpy(strrchr(other, '.'), strrchr(token, '.'));
    expect(env->all, &policy, other, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_OK);

    token = signer_token("ES256", "ec256.pem", payload);
    other = signer_token("ES256", "ec256.pem",
                         payload_with("\"role\":\"admin\""));
    strcpy(strrchr(other, '.'), strrchr(token, '.'));
    expect(env->all, &policy, other, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    free(token);

    expect(env->all, &policy,
           hmac_token("HS256", env->secret_b, env->secret_b_len,
                      HS256_HEADER, payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    /* the secret with its newline is another secret */
    expect(env->all, &policy,
           hmac_token("HS256", env->secret, env->secret_len + 1,
                      HS256_HEADER, payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    free(payload);
}


static void
test_kid_selection(void **state)
{
    test_env_t                     *env;
    const char                     *payload;
    ngx_http_wirehub_jwt_policy_t   policy;

    env = *state;
    policy = default_policy();
    payload = payload_with("");

    expect(env->kids, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"HS256\",\"kid\":\"a\"}", payload),
           NGX_HTTP_WIREHUB_JWT_OK);
    expect(env->kids, &policy,
           hmac_token("HS256", env->secret_b, env->secret_b_len,
                      "{\"alg\":\"HS256\",\"kid\":\"b\"}", payload),
           NGX_HTTP_WIREHUB_JWT_OK);

    /* the named key and no other, even when another would verify */
    expect(env->kids, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"HS256\",\"kid\":\"b\"}", payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    expect(env->kids, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"HS256\",\"kid\":\"c\"}", payload),
           NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID);
    expect(env->kids, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"HS256\",\"kid\":\"A\"}", payload),
           NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID);
    expect(env->kids, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"HS256\",\"kid\":\"\"}", payload),
           NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID);

    /* a kid where the key set has none */
    expect(env->all, &policy,
           hmac_token("HS256", env->secret, env->secret_len,
                      "{\"alg\":\"HS256\",\"kid\":\"a\"}", payload),
           NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID);

    /* no kid: two HS256 keys are ambiguous, one ES256 key is not */
    expect(env->kids, &policy, hs_token(env, payload),
           NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID);
    expect(env->kids, &policy, signer_token("ES256", "ec256.pem", payload),
           NGX_HTTP_WIREHUB_JWT_OK);
}


/* signatures: another implementation's tokens, OpenSSL's edge cases */


typedef struct {
    const char  *alg;
    int          high_s;  /* ES only: S above half the curve order */
    const char  *token;
} pyjwt_token_t;


/*
 * Minted by PyJWT 2.6.0 (python3-jwt, over python3-cryptography) with the
 * keys in t/keys:
 *     jwt.encode({"workspace": "acme", "sub": "py-1", "exp": 4102444800,
 *                 "iat": 1699999990}, key, algorithm=ALG)
 * PyJWT makes ECDSA signatures with a high S about half of the time, as
 * OpenSSL does: both ES256 forms are here.
 */
static const pyjwt_token_t  pyjwt_tokens[] = {
    { "RS256", 0,
      "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ3b3Jrc3BhY2UiOiJhY21lIiwic3V"
      "iIjoicHktMSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNjk5OTk5OTkwfQ.BoWYZBiW"
      "hwFoXk4ckEJoB8m82RQDMkFVVIDWxwu3i5O7NzKADUc6QT5Yk_G266yOjG-qWZzIRVek"
      "2q-n6Hgt-4FoF4upAVtARp2FbH3omfeFDUzlZZNItzueTXVVNcI20SEU5Qgz69tAlwo5"
      "B-5nqQJowhfQaiapUGnH_40qUcX6kjLRQFlVQMr8ETZKpUIN7Aq2AhaL5rcKhCK8A4lJ"
      "SmcIKQ5cbQBM-GpoqANPmuKv66tTMcpfVmxnLJQ4NbKNCZ6g0vzZLvgvhaB7ohdOMVvl"
      "5bRkRMQCPFE649S8p2-fSewX5OaHTadtTfsN8jmhk8j_FFxXXDvseRS1zl3T7A" },
    { "RS384", 0,
      "eyJhbGciOiJSUzM4NCIsInR5cCI6IkpXVCJ9.eyJ3b3Jrc3BhY2UiOiJhY21lIiwic3V"
      "iIjoicHktMSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNjk5OTk5OTkwfQ.OiF-zwQT"
      "I5Gj1bSPHc0NQipkab4ot-7mSioxLJe3q6IYdgEeNuVgLOsP4lp-vabs-OAZXn18LkrN"
      "NJxrwl7VSNAvURv59nletIvMlMcC10b13J8emUZ7nD1ElMNtiiiCa4vRGo_tirQGLRiO"
      "psDrSwaZVJBoTufNJjEtY-OE-G1ctER6ELdcjS17r8vzKOoGbx9Jfr1ymj1uhq4cXjTH"
      "ZCgO0r5Gr61pHO9smcl3qo3czflM093oJ0ItxONnNv3oS_9DHJhIdMM10igZQUel5bXf"
      "5-CRc_HYZGsJKxWV2K3pI990GIE-BxlRs-V1KgoorM5s8Lga_RZtA7cFIzxbSg" },
    { "RS512", 0,
      "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.eyJ3b3Jrc3BhY2UiOiJhY21lIiwic3V"
      "iIjoicHktMSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNjk5OTk5OTkwfQ.FRpQk6wd"
      "UbRY_7WR25ORl3-fq0a7xXBTzTTThXBxxaSJqcvdYJYfzdhjBXB7qn9ppNN0ejs_ReTO"
      "tLhNJaKFgeogRFDMaTxpurWRs4uLTr9Ld7lZR8aVD5XmjGsQvsXiUwJh6rZbhAiK4xZ7"
      "Sgo7X-DwKseEb499GbuRQIq81zH-nhqHzu621qgMSEe3Xn6nPoN5ARiipPOefrz9vji0"
      "8m-vuy_svhKh8JEkc9K25lawuvVP7gfA6ebDHWU4yCveE77oZg90sB2RBBdQk-9kfYKw"
      "JNJGpMGGGNTX-WcC9Gotl1TfmWE7Bm2q2eMigOKpEjYLHkrFT3wYPNL9zcBkUg" },
    { "PS256", 0,
      "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJ3b3Jrc3BhY2UiOiJhY21lIiwic3V"
      "iIjoicHktMSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNjk5OTk5OTkwfQ.USkr-tkE"
      "xfJTQjdPEqOI6zmSs3Cx2d4DhZcgfjKhCGkrmdV3fr8a5QHLZ8YXQdBSz8v6g6ybA8Ey"
      "nvUKHSo3JMMUC_Xhy21hjlcSdOtqYy40Cmkv9JJkakdNSjq9WCPVfnFnSWqvf33MEeTu"
      "h01CKoUXXK5glSGxhiYnit7XfVe4xi-upezmuQY5TipsZGE-pgNHDpDILU62rv35xgKV"
      "kpHY1Pjx4yL27O5QLaBVRaqGuXQnlOE3QFBUo58yNNVgxcULzAwWiBxsa67PIdfDVIKQ"
      "BfSI1HyESygRRxJ4gpQHfeTo2bWsw1uxuvvZsxSTedSaYCPkUulchWgIBIE1xQ" },
    { "ES256", 1,
      "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJ3b3Jrc3BhY2UiOiJhY21lIiwic3V"
      "iIjoicHktMSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNjk5OTk5OTkwfQ.o9cQ2MTb"
      "KqonrIacOVAogrgQY9d2WMKc_db1VEjyz6-URizl0Ku2FANcM9Xsrrjzq9xYe-cDZt3X"
      "OCBnKqF5dw" },
    { "ES256", 0,
      "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJ3b3Jrc3BhY2UiOiJhY21lIiwic3V"
      "iIjoicHktMSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNjk5OTk5OTkwfQ.gFvAGWGc"
      "P2tBl5gbhcQF9m9U1gg9Ym7VFLyCpzrfxltS997UmuAvZ9ZejF9S3nqjpcZOWY32vZJC"
      "Cg-lw6Jjkw" },
    { "ES384", 1,
      "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9.eyJ3b3Jrc3BhY2UiOiJhY21lIiwic3V"
      "iIjoicHktMSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNjk5OTk5OTkwfQ.SRwVsBFV"
      "pG3jcyYVLI3MqvuCvEOG0oq7PQtkve-fWdde89iEW5eEw9jU34TvGk90hNKnbaiLqAR2"
      "mnwIA9q1nWpjXkyTRFAsaErctsq2neTrRZMk08iMimADSdGfTZfG" },
};


static size_t
b64url_decode(const char *src, size_t len, unsigned char *dst,
    size_t dst_size)
{
    int     n;
    char   *std;
    size_t  i, pad;

    pad = (4 - len % 4) % 4;
    assert_true((len + pad) / 4 * 3 <= dst_size);

    std = malloc(len + pad + 1);
    assert_non_null(std);

    for (i = 0; i < len; i++) {
        std[i] = (src[i] == '-') ? '+' : (src[i] == '_') ? '/' : src[i];
    }

    memset(std + len, '=', pad);
    std[len + pad] = '\0';

    n = EVP_DecodeBlock(dst, (unsigned char *) std, (int) (len + pad));
    free(std);
    assert_true(n >= 0);

    return (size_t) n - pad;
}


/* the order n of a curve, to BN_free() */
static BIGNUM *
curve_order(int nid)
{
    BIGNUM    *n;
    EC_GROUP  *group;

    group = EC_GROUP_new_by_curve_name(nid);
    assert_non_null(group);
    n = BN_dup(EC_GROUP_get0_order(group));
    EC_GROUP_free(group);
    assert_non_null(n);

    return n;
}


/* 1 when S of R || S is above n / 2: what "low S" rules would refuse */
static int
s_is_high(const unsigned char *raw, size_t half, int nid)
{
    int      high;
    BIGNUM  *n, *s;

    n = curve_order(nid);
    s = BN_bin2bn(raw + half, (int) half, NULL);
    assert_non_null(s);
    assert_int_equal(BN_rshift1(n, n), 1);

    high = BN_cmp(s, n) > 0;

    BN_free(s);
    BN_free(n);

    return high;
}


/* S becomes n - S: the other valid signature with the same R */
static void
negate_s(unsigned char *raw, size_t half, int nid)
{
    BIGNUM  *n, *s;

    n = curve_order(nid);
    s = BN_bin2bn(raw + half, (int) half, NULL);
    assert_non_null(s);
    assert_int_equal(BN_sub(s, n, s), 1);
    assert_int_equal(BN_bn2binpad(s, raw + half, (int) half), half);

    BN_free(s);
    BN_free(n);
}


/* the order n itself, half bytes at p: too large for R or S */
static void
put_order(unsigned char *p, size_t half, int nid)
{
    BIGNUM  *n;

    n = curve_order(nid);
    assert_int_equal(BN_bn2binpad(n, p, (int) half), half);
    BN_free(n);
}


static void
test_pyjwt_tokens(void **state)
{
    test_env_t                     *env;
    size_t                          i, half, len;
    char                           *token, *sig, *other;
    const char                     *t, *dot1, *dot2;
    ngx_http_wirehub_jwt_policy_t   policy;
    ngx_http_wirehub_jwt_claims_t   claims;
    unsigned char                   raw[512];

    env = *state;
    policy = default_policy();
    other = b64url((const unsigned char *) PYJWT_OTHER_PAYLOAD,
                   strlen(PYJWT_OTHER_PAYLOAD));

    for (i = 0; i < sizeof(pyjwt_tokens) / sizeof(pyjwt_tokens[0]); i++) {
        t = pyjwt_tokens[i].token;

        expect_token(env->all, &policy, t, strlen(t),
                     NGX_HTTP_WIREHUB_JWT_OK, &claims);
        assert_string_equal(claims.workspace, "acme");
        assert_string_equal(claims.client_id, "py-1");
        assert_int_equal(claims.exp, PYJWT_EXP);
        ngx_http_wirehub_jwt_claims_free(&claims);

        dot1 = strchr(t, '.');
        dot2 = strrchr(t, '.');

        /* the fixture is what its name says */
        len = b64url_decode(t, dot1 - t, raw, sizeof(raw) - 1);
        raw[len] = '\0';
        assert_non_null(strstr((char *) raw, pyjwt_tokens[i].alg));

        if (pyjwt_tokens[i].alg[0] == 'E') {
            len = b64url_decode(dot2 + 1, strlen(dot2 + 1), raw,
                                sizeof(raw));
            half = len / 2;
            assert_int_equal(s_is_high(raw, half,
                                       half == 32 ? NID_X9_62_prime256v1
                                                  : NID_secp384r1),
                             pyjwt_tokens[i].high_s);
        }

        /* one letter of the signature changed */
        token = strdup(t);
        assert_non_null(token);
        sig = strrchr(token, '.') + 1;
        sig[10] = (sig[10] == 'A') ? 'B' : 'A';
        expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

        /* its signature under other claims */
        token = malloc(strlen(t) + strlen(other) + 2);
        assert_non_null(token);
        sprintf(token, "%.*s.%s%s", (int) (dot1 - t), t, other, dot2);
        expect(env->all, &policy, token, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    }

    free(other);
}


static void
test_ecdsa_accepted(void **state)
{
    test_env_t                     *env;
    int                             high;
    char                           *input;
    size_t                          i, tries;
    unsigned int                    forms;
    const char                     *payload;
    ngx_http_wirehub_jwt_policy_t   policy;
    unsigned char                   raw[96];

    static const struct {
        const char  *header;
        size_t       half;
        int          nid;
    } curves[] = {
        { ES256_HEADER, 32, NID_X9_62_prime256v1 },
        { ES384_HEADER, 48, NID_secp384r1 }
    };

    env = *state;
    policy = default_policy();
    payload = payload_with("");

    /* OpenSSL's own signatures, put as JOSE wants them */
    expect(env->all, &policy,
           ec_token(env->ec256_priv, EVP_sha256(), 32, ES256_HEADER, payload),
           NGX_HTTP_WIREHUB_JWT_OK);
    expect(env->all, &policy,
           ec_token(env->ec384_priv, EVP_sha384(), 48, ES384_HEADER, payload),
           NGX_HTTP_WIREHUB_JWT_OK);

    /*
     * (R, n - S) verifies as well as (R, S), and signers make either: low
     * S is not required, or half of PyJWT's tokens would be refused.
     */
    for (i = 0; i < 2; i++) {
        input = signing_input(curves[i].header, payload);
        ec_sign(i ? env->ec384_priv : env->ec256_priv,
                i ? EVP_sha384() : EVP_sha256(), input, raw, curves[i].half,
                NULL, NULL);
        high = s_is_high(raw, curves[i].half, curves[i].nid);

        expect(env->all, &policy,
               join_signature(strdup(input), raw, 2 * curves[i].half),
               NGX_HTTP_WIREHUB_JWT_OK);

        negate_s(raw, curves[i].half, curves[i].nid);
        assert_int_not_equal(s_is_high(raw, curves[i].half, curves[i].nid),
                             high);
        expect(env->all, &policy,
               join_signature(input, raw, 2 * curves[i].half),
               NGX_HTTP_WIREHUB_JWT_OK);
    }

    /*
     * Every form of DER INTEGER: R and S with a leading zero byte that must
     * be dropped (the next byte below 0x80) and with the top bit set (a
     * zero byte added), from signatures made until each form has come up.
     */
    input = signing_input(ES256_HEADER, payload);
    forms = 0;

    for (tries = 0; forms != 0xf && tries < 20000; tries++) {
        ec_sign(env->ec256_priv, EVP_sha256(), input, raw, 32, NULL, NULL);

        for (i = 0; i < 2; i++) {
            if (raw[32 * i] == 0 && raw[32 * i + 1] < 0x80
                && !(forms & (1u << (2 * i))))
            {
                forms |= 1u << (2 * i);
                expect(env->all, &policy,
                       join_signature(strdup(input), raw, 64),
                       NGX_HTTP_WIREHUB_JWT_OK);
            }

            if ((raw[32 * i] & 0x80) && !(forms & (2u << (2 * i)))) {
                forms |= 2u << (2 * i);
                expect(env->all, &policy,
                       join_signature(strdup(input), raw, 64),
                       NGX_HTTP_WIREHUB_JWT_OK);
            }
        }
    }

    assert_int_equal(forms, 0xf);
    free(input);
}


static void
test_ecdsa_refused(void **state)
{
    test_env_t                     *env;
    size_t                          i, der_len;
    char                           *input;
    const char                     *payload;
    ngx_http_wirehub_jwt_policy_t   policy;
    unsigned char                   good[64], raw[64], der[80];

    env = *state;
    policy = default_policy();
    payload = payload_with("");

    input = signing_input(ES256_HEADER, payload);
    ec_sign(env->ec256_priv, EVP_sha256(), input, good, 32, der, &der_len);

    /* R or S zero, or not below the order: never a signature */
    for (i = 0; i < 9; i++) {
        memcpy(raw, good, 64);

        switch (i) {
        case 0:
            memset(raw, 0, 32);
            break;
        case 1:
            memset(raw + 32, 0, 32);
            break;
        case 2:
            memset(raw, 0, 64);
            break;
        case 3:
            put_order(raw, 32, NID_X9_62_prime256v1);
            break;
        case 4:
            put_order(raw + 32, 32, NID_X9_62_prime256v1);
            break;
        case 5:
            memset(raw, 0xff, 32);
            break;
        case 6:
            memset(raw + 32, 0xff, 32);
            break;
        case 7:
            /* R and S swapped */
            memcpy(raw, good + 32, 32);
            memcpy(raw + 32, good, 32);
            break;
        default:
            /* the last bit of S */
            raw[63] ^= 1;
            break;
        }

        expect(env->all, &policy, join_signature(strdup(input), raw, 64),
               NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    }

    /* the DER form, as OpenSSL makes it and some signers send it */
    expect_message(env->all, join_signature(strdup(input), der, der_len),
                   NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                   "signature has the wrong length");
    expect(env->all, &policy, join_signature(input, good, 64),
           NGX_HTTP_WIREHUB_JWT_OK);

    /* another key on the same curve; the right key with another hash */
    expect(env->all, &policy,
           ec_token(env->ec256_other, EVP_sha256(), 32, ES256_HEADER,
                    payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    expect(env->all, &policy,
           ec_token(env->ec256_priv, EVP_sha384(), 32, ES256_HEADER,
                    payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    expect(env->all, &policy,
           ec_token(env->ec384_priv, EVP_sha256(), 48, ES384_HEADER,
                    payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    /* a key on the other curve: R || S of the other width */
    expect_message(env->all,
                   ec_token(env->ec384_priv, EVP_sha384(), 48, ES256_HEADER,
                            payload),
                   NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                   "signature has the wrong length");
    expect_message(env->all,
                   ec_token(env->ec256_priv, EVP_sha256(), 32, ES384_HEADER,
                            payload),
                   NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                   "signature has the wrong length");

    /* the same numbers zero-padded to ES384 width */
    expect_message(env->all,
                   ec_token(env->ec256_priv, EVP_sha256(), 48, ES256_HEADER,
                            payload),
                   NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                   "signature has the wrong length");
}


/* the cache of signatures found good */


/* verifies through cache at now; returns claims.cached, -1 on failure */
static int
cached_verify_at(int line, const ngx_http_wirehub_jwt_keys_t *keys,
    ngx_http_wirehub_jwt_cache_t *cache, const char *token, int64_t now,
    ngx_http_wirehub_jwt_rc_e expected)
{
    int                             cached;
    ngx_http_wirehub_jwt_rc_e       rc;
    ngx_http_wirehub_jwt_policy_t   policy;
    ngx_http_wirehub_jwt_claims_t   claims;
    char                            err[ERR_LEN];

    policy = default_policy();

    rc = ngx_http_wirehub_jwt_verify(keys, cache, &policy,
                                     (const unsigned char *) token,
                                     strlen(token), now, &claims, err,
                                     sizeof(err));
    if (rc != expected) {
        fail_msg("line %d: %s (%s), expected %s", line,
                 ngx_http_wirehub_jwt_rc_code(rc), err,
                 ngx_http_wirehub_jwt_rc_code(expected));
    }

    if (rc != NGX_HTTP_WIREHUB_JWT_OK) {
        return -1;
    }

    cached = claims.cached;
    ngx_http_wirehub_jwt_claims_free(&claims);

    return cached;
}

#define cached_verify(...)  cached_verify_at(__LINE__, __VA_ARGS__)


/* a cache for every key and an ES256 token it has seen once: a good
 * token is checked the first time and found the second */
static ngx_http_wirehub_jwt_cache_t *
cache_with_es256(test_env_t *env, char **token)
{
    ngx_http_wirehub_jwt_cache_t  *cache;

    cache = ngx_http_wirehub_jwt_cache_create(env->all, 64);
    assert_non_null(cache);

    *token = ec_token(env->ec256_priv, EVP_sha256(), 32, ES256_HEADER,
                      payload_with(""));

    assert_int_equal(cached_verify(env->all, cache, *token, NOW,
                                   NGX_HTTP_WIREHUB_JWT_OK), 0);
    assert_int_equal(cached_verify(env->all, cache, *token, NOW,
                                   NGX_HTTP_WIREHUB_JWT_OK), 1);

    return cache;
}


static void
test_cache_skips_only_the_signature(void **state)
{
    char                          *good, *again, *forged, *hs, *p;
    test_env_t                    *env;
    ngx_http_wirehub_jwt_cache_t  *cache;

    env = *state;

    cache = cache_with_es256(env, &good);

    /* the claims are checked every time: exp passes while the entry stays */
    cached_verify(env->all, cache, good, NOW + 600 + LEEWAY,
                  NGX_HTTP_WIREHUB_JWT_EXPIRED);
    cached_verify(env->all, cache, good, NOW - 10 - LEEWAY - 1,
                  NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID);
    assert_int_equal(cached_verify(env->all, cache, good, NOW,
                                   NGX_HTTP_WIREHUB_JWT_OK), 1);

    /* the same claims signed again (ECDSA is randomized): other bytes */
    again = ec_token(env->ec256_priv, EVP_sha256(), 32, ES256_HEADER,
                     payload_with(""));
    assert_string_not_equal(again, good);
    assert_int_equal(cached_verify(env->all, cache, again, NOW,
                                   NGX_HTTP_WIREHUB_JWT_OK), 0);

    /* another payload under the good signature */
    forged = ec_token(env->ec256_priv, EVP_sha256(), 32, ES256_HEADER,
                      payload_with("\"role\":\"admin\""));
    p = strrchr(forged, '.');
    assert_non_null(p);
    strcpy(p, strrchr(good, '.'));
    cached_verify(env->all, cache, forged, NOW,
                  NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    cached_verify(env->all, cache, forged, NOW,
                  NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    /* an HMAC is cheaper to check than to look up: never cached */
    hs = hs_token(env, payload_with(""));
    assert_int_equal(cached_verify(env->all, cache, hs, NOW,
                                   NGX_HTTP_WIREHUB_JWT_OK), 0);
    assert_int_equal(cached_verify(env->all, cache, hs, NOW,
                                   NGX_HTTP_WIREHUB_JWT_OK), 0);

    free(good);
    free(again);
    free(forged);
    free(hs);
    ngx_http_wirehub_jwt_cache_destroy(cache);
}


/* a cache serves the keys it was made for: with others it is not used */
static void
test_cache_serves_its_keys(void **state)
{
    BIO                           *bio;
    long                           len;
    char                          *token, *pem;
    test_env_t                    *env;
    ngx_http_wirehub_jwt_keys_t   *other;
    char                           err[ERR_LEN];
    ngx_http_wirehub_jwt_cache_t  *cache;

    env = *state;

    cache = cache_with_es256(env, &token);

    /* the same alg, another public key: the token is refused there */
    other = ngx_http_wirehub_jwt_keys_create();
    assert_non_null(other);
    bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, env->ec256_other), 1);
    len = BIO_get_mem_data(bio, &pem);
    assert_int_equal(ngx_http_wirehub_jwt_keys_add(other, "ES256", NULL,
                                                   (unsigned char *) pem,
                                                   len, err, sizeof(err)),
                     0);
    BIO_free(bio);

    cached_verify(other, cache, token, NOW,
                  NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    assert_int_equal(cached_verify(env->rsa_only, cache, token, NOW,
                                   NGX_HTTP_WIREHUB_JWT_BAD_ALG), -1);
    assert_int_equal(cached_verify(env->kids, cache, token, NOW,
                                   NGX_HTTP_WIREHUB_JWT_OK), 0);

    ngx_http_wirehub_jwt_keys_destroy(other);
    free(token);
    ngx_http_wirehub_jwt_cache_destroy(cache);
}


/* one set of four: the entry used longest ago goes first */
static void
test_cache_replaces_least_recent(void **state)
{
    int                            i;
    char                          *tokens[5];
    test_env_t                    *env;
    ngx_http_wirehub_jwt_cache_t  *cache;

    /* which token, and whether the cache knows it by then */
    static const int  steps[][2] = {
        { 0, 0 }, { 1, 0 }, { 2, 0 }, { 3, 0 },
        { 0, 1 },                   /* 0 again: 1 is now the oldest */
        { 4, 0 },                   /* a fifth token takes 1's place */
        { 0, 1 }, { 2, 1 }, { 3, 1 }, { 4, 1 },
        { 1, 0 },                   /* 1 again, in the place of 0 */
        { 0, 0 }
    };

    env = *state;

    cache = ngx_http_wirehub_jwt_cache_create(env->all, 1);
    assert_non_null(cache);

    for (i = 0; i < 5; i++) {
        tokens[i] = ec_token(env->ec256_priv, EVP_sha256(), 32,
                             ES256_HEADER, payload_with(""));
    }

    for (i = 0; i < (int) (sizeof(steps) / sizeof(steps[0])); i++) {
        if (cached_verify(env->all, cache, tokens[steps[i][0]], NOW,
                          NGX_HTTP_WIREHUB_JWT_OK)
            != steps[i][1])
        {
            fail_msg("step %d: token %d %s", i, steps[i][0],
                     steps[i][1] ? "not found" : "found");
        }
    }

    for (i = 0; i < 5; i++) {
        free(tokens[i]);
    }

    ngx_http_wirehub_jwt_cache_destroy(cache);
}


static void
test_rsa_signatures(void **state)
{
    test_env_t                     *env;
    size_t                          i;
    const char                     *payload;
    ngx_http_wirehub_jwt_policy_t   policy;
    unsigned char                   sig[256];

    static const char  *headers[] = {
        RS256_HEADER, RS384_HEADER, RS512_HEADER, PS256_HEADER
    };

    env = *state;
    policy = default_policy();
    payload = payload_with("");

    expect(env->all, &policy,
           rsa_token_md(env, EVP_sha384(), PKCS1, RS384_HEADER, payload),
           NGX_HTTP_WIREHUB_JWT_OK);
    expect(env->all, &policy,
           rsa_token_md(env, EVP_sha512(), PKCS1, RS512_HEADER, payload),
           NGX_HTTP_WIREHUB_JWT_OK);

    /* a signature made with another hash than the algorithm's */
    expect(env->all, &policy,
           rsa_token_md(env, EVP_sha256(), PKCS1, RS384_HEADER, payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    expect(env->all, &policy,
           rsa_token_md(env, EVP_sha512(), PKCS1, RS256_HEADER, payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    expect(env->all, &policy,
           rsa_token_md(env, EVP_sha384(), PSS, PS256_HEADER, payload),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    /* as long as the modulus, and no signature: zero, and above it */
    for (i = 0; i < 2 * sizeof(headers) / sizeof(headers[0]); i++) {
        memset(sig, (i % 2) ? 0xff : 0x00, sizeof(sig));
        expect(env->all, &policy,
               join_signature(signing_input(headers[i / 2], payload), sig,
                              sizeof(sig)),
               NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);
    }
}


/* a signature of any other length never reaches the crypto */
static void
test_signature_lengths(void **state)
{
    test_env_t     *env;
    size_t          i, j;
    const char     *payload;
    unsigned char   sig[512];

    static const struct {
        const char  *header;
        size_t       lengths[8];
    } cases[] = {
        { HS256_HEADER, { 1, 16, 31, 33, 48, 64 } },
        { RS256_HEADER, { 1, 128, 255, 257, 384, 512 } },
        { PS256_HEADER, { 1, 255, 257, 512 } },
        { ES256_HEADER, { 1, 32, 63, 65, 70, 71, 72, 96 } },
        { ES384_HEADER, { 1, 48, 64, 95, 97, 102, 104, 132 } }
    };

    env = *state;
    payload = payload_with("");
    memset(sig, 0x5a, sizeof(sig));

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (j = 0; j < 8 && cases[i].lengths[j] != 0; j++) {
            expect_message(env->all,
                           join_signature(signing_input(cases[i].header,
                                                        payload),
                                          sig, cases[i].lengths[j]),
                           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                           "signature has the wrong length");
        }
    }
}


/* key configuration */


static void
expect_add_fails_at(int line, ngx_http_wirehub_jwt_keys_t *keys,
    const char *alg, const char *kid, const unsigned char *key, size_t len,
    const char *word)
{
    char  err[ERR_LEN];

    err[0] = '\0';

    if (ngx_http_wirehub_jwt_keys_add(keys, alg, kid, key, len, err,
                                      sizeof(err))
        != -1
        || strstr(err, word) == NULL || ERR_peek_error() != 0)
    {
        fail_msg("line %d: add %s: \"%s\" lacks \"%s\"", line,
                 alg ? alg : "(null)", err, word);
    }
}

#define expect_add_fails(...)  expect_add_fails_at(__LINE__, __VA_ARGS__)


static void
expect_add_file_fails_at(int line, ngx_http_wirehub_jwt_keys_t *keys,
    const char *alg, const char *kid, const char *file, const char *word)
{
    char  err[ERR_LEN];

    err[0] = '\0';

    if (ngx_http_wirehub_jwt_keys_add_file(keys, alg, kid, key_path(file),
                                           err, sizeof(err))
        != -1
        || strstr(err, word) == NULL || ERR_peek_error() != 0)
    {
        fail_msg("line %d: add %s %s: \"%s\" lacks \"%s\"", line, alg, file,
                 err, word);
    }
}

#define expect_add_file_fails(...)                                            \
    expect_add_file_fails_at(__LINE__, __VA_ARGS__)


static void
test_keys_add_refusals(void **state)
{
    test_env_t                   *env;
    size_t                        len;
    unsigned char                *pem;
    ngx_http_wirehub_jwt_keys_t  *keys;

    env = *state;

    keys = ngx_http_wirehub_jwt_keys_create();
    assert_non_null(keys);

    expect_add_fails(keys, "HS256", NULL, (const unsigned char *) "", 0,
                     "empty");
    expect_add_fails(keys, "HS256", NULL, NULL, 0, "empty");
    expect_add_fails(keys, "none", NULL, (const unsigned char *) "k", 1,
                     "unsupported");
    expect_add_fails(keys, "hs256", NULL, (const unsigned char *) "k", 1,
                     "unsupported");
    expect_add_fails(keys, "ES512", NULL, (const unsigned char *) "k", 1,
                     "unsupported");
    expect_add_fails(keys, NULL, NULL, (const unsigned char *) "k", 1,
                     "unsupported");

    /* an HMAC algorithm with a PEM key: the confusion, refused up front */
    expect_add_fails(keys, "HS256", NULL, env->rsa_pub, env->rsa_pub_len,
                     "PEM");
    expect_add_file_fails(keys, "HS256", NULL, "rsa2048.pub.pem", "PEM");
    expect_add_file_fails(keys, "HS512", NULL, "ec256.pub.pem", "PEM");
    expect_add_file_fails(keys, "HS384", NULL, "rsa2048.pem", "PEM");

    /* asymmetric algorithms need a public key of the right type */
    expect_add_fails(keys, "RS256", NULL, env->secret, env->secret_len,
                     "public key");
    expect_add_file_fails(keys, "RS256", NULL, "hs256.secret", "public key");
    expect_add_file_fails(keys, "RS256", NULL, "rsa2048.pem", "public key");
    expect_add_file_fails(keys, "ES256", NULL, "ec256.pem", "public key");
    expect_add_file_fails(keys, "RS256", NULL, "ec256.pub.pem", "RSA");
    expect_add_file_fails(keys, "PS256", NULL, "ec384.pub.pem", "RSA");
    expect_add_file_fails(keys, "ES256", NULL, "rsa2048.pub.pem", "EC");
    expect_add_file_fails(keys, "ES256", NULL, "ec384.pub.pem", "prime256v1");
    expect_add_file_fails(keys, "ES384", NULL, "ec256.pub.pem", "secp384r1");
    expect_add_file_fails(keys, "HS256", NULL, "no-such-file", "cannot open");

    /* a truncated PEM */
    pem = read_key("ec256.pub.pem", &len);
    expect_add_fails(keys, "ES256", NULL, pem, len / 2, "public key");
    free(pem);

    /* kids: 1..256 bytes, unique; a key without kid alone for its alg */
    expect_add_file_fails(keys, "HS256", "", "hs256.secret", "kid");
    add_key_file(keys, "HS256", "k1", "hs256.secret");
    expect_add_file_fails(keys, "HS256", "k1", "hs256-b.secret", "duplicate");
    expect_add_file_fails(keys, "ES256", "k1", "ec256.pub.pem", "duplicate");
    expect_add_file_fails(keys, "HS256", NULL, "hs256-b.secret", "kid");
    add_key_file(keys, "ES256", NULL, "ec256.pub.pem");
    expect_add_file_fails(keys, "ES256", "k2", "ec256.pub.pem", "kid");
    add_key_file(keys, "HS256", "k2", "hs256-b.secret");

    assert_int_equal(ngx_http_wirehub_jwt_keys_count(keys), 3);

    ngx_http_wirehub_jwt_keys_destroy(keys);
    ngx_http_wirehub_jwt_keys_destroy(NULL);
}


static void
test_keys_add_secret_newline(void **state)
{
    test_env_t                     *env;
    ngx_http_wirehub_jwt_keys_t    *keys;
    ngx_http_wirehub_jwt_policy_t   policy;
    char                            err[ERR_LEN];

    env = *state;
    policy = default_policy();

    /* keys_add takes the bytes as they are, newline included */
    keys = ngx_http_wirehub_jwt_keys_create();
    assert_non_null(keys);
    assert_int_equal(ngx_http_wirehub_jwt_keys_add(keys, "HS256", NULL,
                                                   env->secret,
                                                   env->secret_len + 1,
                                                   err, sizeof(err)),
                     0);

    expect(keys, &policy,
           hmac_token("HS256", env->secret, env->secret_len + 1,
                      HS256_HEADER, payload_with("")),
           NGX_HTTP_WIREHUB_JWT_OK);
    expect(keys, &policy, hs_token(env, payload_with("")),
           NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE);

    ngx_http_wirehub_jwt_keys_destroy(keys);
}


/* claims */


static void
test_time_claim_types(void **state)
{
    size_t                         i;
    ngx_http_wirehub_jwt_policy_t  policy;

    static const char  *claims[] = {
        "\"nbf\":\"1700000000\"",
        "\"nbf\":true",
        "\"nbf\":null",
        "\"nbf\":[1]",
        "\"nbf\":{}"
    };

    for (i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        expect_claim(*state, claims[i], NGX_HTTP_WIREHUB_JWT_MALFORMED);
    }

    policy = default_policy();

    expect_payload(*state, &policy,
                   "{\"workspace\":\"w\",\"sub\":\"c\",\"exp\":\"2000000000\"}",
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);
    expect_payload(*state, &policy,
                   "{\"workspace\":\"w\",\"sub\":\"c\",\"exp\":false}",
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);
    expect_payload(*state, &policy,
                   "{\"workspace\":\"w\",\"sub\":\"c\",\"exp\":null}",
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);
    expect_payload(*state, &policy,
                   "{\"workspace\":\"w\",\"sub\":\"c\",\"iat\":\"now\"}",
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);

    /* a real number far in the future is a number all the same */
    expect_payload(*state, &policy,
                   "{\"workspace\":\"w\",\"sub\":\"c\",\"exp\":1e30}",
                   NGX_HTTP_WIREHUB_JWT_OK);
}


/* a payload with one time claim at now + delta */
static void
expect_time_at(int line, test_env_t *env, long leeway, const char *name,
    double delta, ngx_http_wirehub_jwt_rc_e expected)
{
    char                           payload[256];
    ngx_http_wirehub_jwt_policy_t  policy;

    policy = default_policy();
    policy.leeway = leeway;

    if (delta == (long long) delta) {
        snprintf(payload, sizeof(payload),
                 "{\"workspace\":\"w\",\"sub\":\"c\",\"%s\":%lld}", name,
                 NOW + (long long) delta);

    } else {
        snprintf(payload, sizeof(payload),
                 "{\"workspace\":\"w\",\"sub\":\"c\",\"%s\":%.1f}", name,
                 (double) NOW + delta);
    }

    expect_payload_at(line, env, &policy, payload, expected);
}

#define expect_time(...)  expect_time_at(__LINE__, __VA_ARGS__)


static void
test_time_boundaries(void **state)
{
    test_env_t  *env;

    env = *state;

    /* exp must be after now - leeway */
    expect_time(env, 30, "exp", -30, NGX_HTTP_WIREHUB_JWT_EXPIRED);
    expect_time(env, 30, "exp", -29, NGX_HTTP_WIREHUB_JWT_OK);
    expect_time(env, 0, "exp", 0, NGX_HTTP_WIREHUB_JWT_EXPIRED);
    expect_time(env, 0, "exp", 1, NGX_HTTP_WIREHUB_JWT_OK);
    expect_time(env, -5, "exp", 0, NGX_HTTP_WIREHUB_JWT_EXPIRED);
    expect_time(env, -5, "exp", 1, NGX_HTTP_WIREHUB_JWT_OK);

    /* fractions round towards refusal: exp down, nbf and iat up */
    expect_time(env, 30, "exp", -29.5, NGX_HTTP_WIREHUB_JWT_EXPIRED);
    expect_time(env, 30, "exp", -28.5, NGX_HTTP_WIREHUB_JWT_OK);

    /* nbf may be at most now + leeway */
    expect_time(env, 30, "nbf", 30, NGX_HTTP_WIREHUB_JWT_OK);
    expect_time(env, 30, "nbf", 31, NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID);
    expect_time(env, 30, "nbf", 29.5, NGX_HTTP_WIREHUB_JWT_OK);
    expect_time(env, 30, "nbf", 30.5, NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID);
    expect_time(env, 0, "nbf", 0, NGX_HTTP_WIREHUB_JWT_OK);
    expect_time(env, 0, "nbf", 1, NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID);

    /* iat may not be in the future beyond the leeway */
    expect_time(env, 30, "iat", 30, NGX_HTTP_WIREHUB_JWT_OK);
    expect_time(env, 30, "iat", 31, NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID);
    expect_time(env, 30, "iat", -86400, NGX_HTTP_WIREHUB_JWT_OK);

    /* extremes must not overflow */
    expect_time(env, 30, "exp", -NOW - 1e18, NGX_HTTP_WIREHUB_JWT_EXPIRED);
    expect_time(env, 30, "nbf", 1e18, NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID);
    expect_time(env, 0x7fffffffffffffffL, "nbf", 0, NGX_HTTP_WIREHUB_JWT_OK);
    expect_time(env, 0x7fffffffffffffffL, "exp", -NOW,
                NGX_HTTP_WIREHUB_JWT_OK);
    expect_claim(env, "\"nbf\":-9223372036854775808",
                 NGX_HTTP_WIREHUB_JWT_OK);
    expect_claim(env, "\"nbf\":9223372036854775807",
                 NGX_HTTP_WIREHUB_JWT_NOT_YET_VALID);
}


static void
test_require_exp(void **state)
{
    ngx_http_wirehub_jwt_policy_t  policy;

    policy = default_policy();
    policy.require_exp = 1;

    expect_payload(*state, &policy, "{\"workspace\":\"w\",\"sub\":\"c\"}",
                   NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_payload(*state, &policy, payload_with(""),
                   NGX_HTTP_WIREHUB_JWT_OK);
}


static void
test_issuer(void **state)
{
    ngx_http_wirehub_jwt_policy_t  policy;

    policy = default_policy();

    /* unchecked without a policy, but a wrong type is still refused */
    expect_payload(*state, &policy, payload_with("\"iss\":\"anyone\""),
                   NGX_HTTP_WIREHUB_JWT_OK);
    expect_payload(*state, &policy, payload_with("\"iss\":7"),
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);

    policy.issuer = "https://auth.example.com";

    expect_payload(*state, &policy,
                   payload_with("\"iss\":\"https://auth.example.com\""),
                   NGX_HTTP_WIREHUB_JWT_OK);
    expect_payload(*state, &policy, payload_with(""),
                   NGX_HTTP_WIREHUB_JWT_BAD_ISSUER);
    expect_payload(*state, &policy,
                   payload_with("\"iss\":\"https://auth.example.com/\""),
                   NGX_HTTP_WIREHUB_JWT_BAD_ISSUER);
    expect_payload(*state, &policy,
                   payload_with("\"iss\":\"https://auth.example.co\""),
                   NGX_HTTP_WIREHUB_JWT_BAD_ISSUER);
    expect_payload(*state, &policy,
                   payload_with("\"iss\":[\"https://auth.example.com\"]"),
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);
    expect_payload(*state, &policy, payload_with("\"iss\":null"),
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);
}


static void
test_audience(void **state)
{
    ngx_http_wirehub_jwt_policy_t  policy;

    policy = default_policy();

    expect_payload(*state, &policy, payload_with("\"aud\":[\"x\",\"y\"]"),
                   NGX_HTTP_WIREHUB_JWT_OK);
    expect_payload(*state, &policy, payload_with("\"aud\":{}"),
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);

    policy.audience = "wirehub";

    expect_payload(*state, &policy, payload_with("\"aud\":\"wirehub\""),
                   NGX_HTTP_WIREHUB_JWT_OK);
    expect_payload(*state, &policy,
                   payload_with("\"aud\":[\"other\",\"wirehub\"]"),
                   NGX_HTTP_WIREHUB_JWT_OK);
    expect_payload(*state, &policy, payload_with(""),
                   NGX_HTTP_WIREHUB_JWT_BAD_AUDIENCE);
    expect_payload(*state, &policy, payload_with("\"aud\":\"wirehub2\""),
                   NGX_HTTP_WIREHUB_JWT_BAD_AUDIENCE);
    expect_payload(*state, &policy, payload_with("\"aud\":[]"),
                   NGX_HTTP_WIREHUB_JWT_BAD_AUDIENCE);
    expect_payload(*state, &policy, payload_with("\"aud\":[\"other\"]"),
                   NGX_HTTP_WIREHUB_JWT_BAD_AUDIENCE);
    expect_payload(*state, &policy,
                   payload_with("\"aud\":[\"wirehub\",1]"),
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);
    expect_payload(*state, &policy, payload_with("\"aud\":[[\"wirehub\"]]"),
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);
    expect_payload(*state, &policy, payload_with("\"aud\":1"),
                   NGX_HTTP_WIREHUB_JWT_MALFORMED);
}


/* a payload with a workspace and sub of given text */
static void
expect_identity_at(int line, test_env_t *env, const char *workspace,
    const char *sub, ngx_http_wirehub_jwt_rc_e expected)
{
    char                           payload[1024];
    ngx_http_wirehub_jwt_policy_t  policy;

    policy = default_policy();
    snprintf(payload, sizeof(payload), "{\"workspace\":%s,\"sub\":%s}",
             workspace, sub);

    expect_payload_at(line, env, &policy, payload, expected);
}

#define expect_identity(...)  expect_identity_at(__LINE__, __VA_ARGS__)


static void
test_workspace_and_client(void **state)
{
    test_env_t                     *env;
    ngx_http_wirehub_jwt_policy_t   policy;
    char                            name[256];

    env = *state;
    policy = default_policy();

    expect_identity(env, "\"a\"", "\"b\"", NGX_HTTP_WIREHUB_JWT_OK);
    expect_identity(env, "\"A-z_0.9\"", "\"a:b@c.d-e_f\"",
                    NGX_HTTP_WIREHUB_JWT_OK);

    expect_payload(env, &policy, "{\"sub\":\"c\"}",
                   NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_payload(env, &policy, "{\"workspace\":\"w\"}",
                   NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

    expect_identity(env, "\"\"", "\"b\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "\"a/b\"", "\"b\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "\"a:b\"", "\"b\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "\"a b\"", "\"b\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "\"\\u00e9\"", "\"b\"",
                    NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "1", "\"b\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "null", "\"b\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "[\"a\"]", "\"b\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

    expect_identity(env, "\"a\"", "\"\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "\"a\"", "\"b/c\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "\"a\"", "\"b c\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "\"a\"", "\"b\\n\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "\"a\"", "42", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_identity(env, "\"a\"", "true", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

    /* lengths: workspace 64, client 128 */
    name[0] = '"';
    memset(name + 1, 'w', 64);
    strcpy(name + 65, "\"");
    expect_identity(env, name, "\"b\"", NGX_HTTP_WIREHUB_JWT_OK);
    strcpy(name + 65, "w\"");
    expect_identity(env, name, "\"b\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

    memset(name + 1, 'c', 128);
    strcpy(name + 129, "\"");
    expect_identity(env, "\"a\"", name, NGX_HTTP_WIREHUB_JWT_OK);
    strcpy(name + 129, "c\"");
    expect_identity(env, "\"a\"", name, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
}


static void
test_role(void **state)
{
    expect_claim(*state, "\"role\":\"client\"", NGX_HTTP_WIREHUB_JWT_OK);
    expect_claim(*state, "\"role\":\"service\"", NGX_HTTP_WIREHUB_JWT_OK);
    expect_claim(*state, "\"role\":\"admin\"", NGX_HTTP_WIREHUB_JWT_OK);
    expect_claim(*state, "\"role\":\"root\"",
                 NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_claim(*state, "\"role\":\"Admin\"",
                 NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_claim(*state, "\"role\":\"\"", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_claim(*state, "\"role\":1", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_claim(*state, "\"role\":null", NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    expect_claim(*state, "\"role\":[\"admin\"]",
                 NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
}


static void
test_channel_lists(void **state)
{
    size_t       i, n;
    const char  *names[] = { "channels", "publish" };
    char         claim[512];

    for (i = 0; i < 2; i++) {
        snprintf(claim, sizeof(claim), "\"%s\":[\"a/+\",\"#\"]", names[i]);
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_OK);

        snprintf(claim, sizeof(claim), "\"%s\":[]", names[i]);
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_OK);

        snprintf(claim, sizeof(claim), "\"%s\":\"a/+\"", names[i]);
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

        snprintf(claim, sizeof(claim), "\"%s\":null", names[i]);
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

        snprintf(claim, sizeof(claim), "\"%s\":{\"a\":1}", names[i]);
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

        snprintf(claim, sizeof(claim), "\"%s\":[\"a\",1]", names[i]);
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

        snprintf(claim, sizeof(claim), "\"%s\":[\"a\",[\"b\"]]", names[i]);
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

        snprintf(claim, sizeof(claim), "\"%s\":[\"\"]", names[i]);
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);

        /* 200 bytes is the longest channel name */
        n = (size_t) snprintf(claim, sizeof(claim), "\"%s\":[\"", names[i]);
        memset(claim + n, 'x', 200);
        strcpy(claim + n + 200, "\"]");
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_OK);

        strcpy(claim + n + 200, "x\"]");
        expect_claim(*state, claim, NGX_HTTP_WIREHUB_JWT_BAD_CLAIMS);
    }
}


static void
test_messages(void **state)
{
    test_env_t  *env;
    char        *token;

    env = *state;

    expect_message(env->all,
                   hmac_token("HS256", env->secret, env->secret_len,
                              "{\"alg\":\"None\"}", payload_with("")),
                   NGX_HTTP_WIREHUB_JWT_BAD_ALG, "unsigned token (alg none)");
    expect_message(env->all,
                   hmac_token("HS256", env->secret, env->secret_len,
                              "{\"alg\":\"HS256\",\"kid\":\"x\"}",
                              payload_with("")),
                   NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID, "unknown kid");
    expect_message(env->all,
                   hs_token(env, "{\"workspace\":\"w\",\"sub\":\"c\","
                                 "\"exp\":1}"),
                   NGX_HTTP_WIREHUB_JWT_EXPIRED, "token expired");
    expect_message(env->all,
                   hs_token(env, "{\"workspace\":\"w\",\"sub\":\"c\","
                                 "\"exp\":\"1\"}"),
                   NGX_HTTP_WIREHUB_JWT_MALFORMED,
                   "claim \"exp\" is not a number");
    expect_message(env->all,
                   hmac_token("HS256", env->secret_b, env->secret_b_len,
                              HS256_HEADER, payload_with("")),
                   NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE, "signature mismatch");

    /* cut short, the signature never reaches libjwt */
    token = signer_token("ES256", "ec256.pem", payload_with(""));
    token[strlen(token) - 2] = '\0';
    expect_message(env->all, token, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                   "signature has the wrong length");

    token = rsa_token(env, PKCS1, "{\"alg\":\"RS256\"}", payload_with(""));
    strcpy(strrchr(token, '.') + 1, "AAAA");
    expect_message(env->all, token, NGX_HTTP_WIREHUB_JWT_BAD_SIGNATURE,
                   "signature has the wrong length");
}


static void
test_rc_codes(void **state)
{
    int          i, j;
    const char  *codes[NGX_HTTP_WIREHUB_JWT_TOO_LARGE + 1];

    (void) state;

    for (i = 0; i <= NGX_HTTP_WIREHUB_JWT_TOO_LARGE; i++) {
        codes[i] = ngx_http_wirehub_jwt_rc_code(i);
        assert_non_null(codes[i]);
        assert_true(codes[i][0] != '\0');

        for (j = 0; j < i; j++) {
            assert_string_not_equal(codes[i], codes[j]);
        }
    }

    assert_string_equal(ngx_http_wirehub_jwt_rc_code(
                            NGX_HTTP_WIREHUB_JWT_EXPIRED), "token_expired");
    assert_string_equal(ngx_http_wirehub_jwt_rc_code(
                            NGX_HTTP_WIREHUB_JWT_MALFORMED), "invalid_token");
    assert_string_equal(ngx_http_wirehub_jwt_rc_code(
                            NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID), "unknown_kid");
}


/* signing */


static void
expect_signer_fails_at(int line, const char *alg, const char *file,
    const char *word)
{
    char                            err[ERR_LEN];
    ngx_http_wirehub_jwt_signer_t  *s;

    err[0] = '\0';
    s = ngx_http_wirehub_jwt_signer_create_file(alg, key_path(file), err,
                                                sizeof(err));

    if (s != NULL || strstr(err, word) == NULL || ERR_peek_error() != 0) {
        ngx_http_wirehub_jwt_signer_destroy(s);
        fail_msg("line %d: signer %s %s: \"%s\" lacks \"%s\"", line, alg,
                 file, err, word);
    }
}

#define expect_signer_fails(...)  expect_signer_fails_at(__LINE__, __VA_ARGS__)


static void
test_signer_refusals(void **state)
{
    (void) state;

    expect_signer_fails("PS256", "rsa2048.pem", "unsupported");
    expect_signer_fails("none", "hs256.secret", "unsupported");
    expect_signer_fails("HS256", "rsa2048.pem", "PEM");
    expect_signer_fails("RS256", "rsa2048.pub.pem", "private key");
    expect_signer_fails("RS256", "ec256.pem", "RSA");
    expect_signer_fails("ES256", "ec384.pem", "prime256v1");
    expect_signer_fails("ES384", "ec256.pem", "secp384r1");
    expect_signer_fails("ES256", "hs256.secret", "private key");
    expect_signer_fails("ES256", "no-such-file", "cannot open");

    /* an encrypted key is refused, never a passphrase prompt */
    expect_signer_fails("ES256", "ec256-encrypted.pem", "unencrypted");
}


static void
test_signer_sign(void **state)
{
    test_env_t                     *env;
    char                           *token, *big;
    json_t                         *claims, *array;
    ngx_http_wirehub_jwt_signer_t  *s;
    ngx_http_wirehub_jwt_policy_t   policy;
    ngx_http_wirehub_jwt_claims_t   out;
    char                            err[ERR_LEN];

    env = *state;
    policy = default_policy();

    s = ngx_http_wirehub_jwt_signer_create_file("HS256",
                                                key_path("hs256-b.secret"),
                                                err, sizeof(err));
    assert_non_null(s);

    claims = json_pack("{s:s, s:s, s:I, s:[s,s]}", "workspace", "acme",
                       "sub", "dev-1", "iat", (json_int_t) NOW,
                       "channels", "a/#", "$commands");
    assert_non_null(claims);

    /* without a kid, two HS256 keys are ambiguous; with it, fine */
    token = ngx_http_wirehub_jwt_sign(s, claims, err, sizeof(err));
    assert_non_null(token);
    expect(env->kids, &policy, token, NGX_HTTP_WIREHUB_JWT_UNKNOWN_KID);

    assert_int_equal(ngx_http_wirehub_jwt_signer_set_kid(s, "b", err,
                                                         sizeof(err)),
                     0);
    token = ngx_http_wirehub_jwt_sign(s, claims, err, sizeof(err));
    assert_non_null(token);

    expect_token(env->kids, &policy, token, strlen(token),
                 NGX_HTTP_WIREHUB_JWT_OK, &out);
    assert_string_equal(out.client_id, "dev-1");
    assert_int_equal(out.iat, NOW);
    assert_int_equal(json_array_size(out.channels), 2);
    ngx_http_wirehub_jwt_claims_free(&out);
    free(token);

    assert_int_equal(ngx_http_wirehub_jwt_signer_set_kid(s, "", err,
                                                         sizeof(err)),
                     -1);

    array = json_array();
    assert_null(ngx_http_wirehub_jwt_sign(s, array, err, sizeof(err)));
    assert_non_null(strstr(err, "object"));
    json_decref(array);

    big = malloc(8192);
    assert_non_null(big);
    memset(big, 'x', 8191);
    big[8191] = '\0';
    json_object_set_new(claims, "big", json_string(big));
    free(big);

    assert_null(ngx_http_wirehub_jwt_sign(s, claims, err, sizeof(err)));
    assert_non_null(strstr(err, "8192"));

    json_decref(claims);
    ngx_http_wirehub_jwt_signer_destroy(s);
    ngx_http_wirehub_jwt_signer_destroy(NULL);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_accept_every_algorithm),
        cmocka_unit_test(test_accept_fills_claims),
        cmocka_unit_test(test_claim_names_configurable),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_malformed_segments),
        cmocka_unit_test(test_malformed_trailing_bits),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_header_forms),
        cmocka_unit_test(test_alg_none_and_unknown),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_no_keys),
        cmocka_unit_test(test_bad_signatures),
        cmocka_unit_test(test_kid_selection),
        cmocka_unit_test(test_pyjwt_tokens),
        cmocka_unit_test(test_ecdsa_accepted),
        cmocka_unit_test(test_ecdsa_refused),
        cmocka_unit_test(test_cache_skips_only_the_signature),
        cmocka_unit_test(test_cache_serves_its_keys),
        cmocka_unit_test(test_cache_replaces_least_recent),
        cmocka_unit_test(test_rsa_signatures),
        cmocka_unit_test(test_signature_lengths),
        cmocka_unit_test(test_keys_add_refusals),
        cmocka_unit_test(test_keys_add_secret_newline),
        cmocka_unit_test(test_time_claim_types),
        cmocka_unit_test(test_time_boundaries),
        cmocka_unit_test(test_require_exp),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_workspace_and_client),
        cmocka_unit_test(test_role),
        cmocka_unit_test(test_channel_lists),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_rc_codes),
        cmocka_unit_test(test_signer_refusals),
        cmocka_unit_test(test_signer_sign)
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
