
/*
 * libFuzzer target for ngx_http_wirehub_jwt_verify() with a fixed HS256 key
 * and one public key each for ES256, ES384, RS256 and PS256.
 *
 * The first input byte chooses what the rest is, modulo 4:
 *   0: a raw token.  Nothing the fuzzer writes can carry a valid signature
 *      by the keys below, so any acceptance is a forgery and aborts.
 *   1: "HEADER\nPAYLOAD" (or only PAYLOAD under a fixed header): JSON text
 *      that is encoded and signed here with the HS256 secret.
 *   2: a recipe for a header and a payload built with jansson from claim
 *      names and values likely to matter, then signed.  jansson is not
 *      instrumented, so the fuzzer would seldom write valid JSON itself:
 *      this mode is what brings signed tokens to every claim check.
 *   3: a signature: the next byte picks ES256, ES384, RS256 or PS256 for a
 *      fixed, valid header and payload, and whether the rest is the
 *      signature as it is or cut or zero-padded to the length that the
 *      algorithm needs, so that it reaches OpenSSL (for ES*, through the
 *      conversion to DER).  Any acceptance is a forgery.
 * The higher bits of the first byte choose the policy.  A token signed
 * here with the HMAC secret must never pass the public keys alone.  Each
 * token is verified without a cache, then twice through the keys' cache
 * (ngx_http_wirehub_jwt_cache.c), and the answers must be the same.
 */


#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_wirehub_jwt.h"


#define FUZZ_NOW        1700000000
#define FUZZ_MAX_DEPTH  3
#define FUZZ_MODES      4


typedef struct {
    const uint8_t  *pos;
    const uint8_t  *end;
} fuzz_reader_t;


/* the keys, made once: libFuzzer gives the target no other place for them */
typedef struct {
    ngx_http_wirehub_jwt_keys_t   *all;      /* HS256 and the public keys */
    ngx_http_wirehub_jwt_keys_t   *public;   /* the public keys only */
    ngx_http_wirehub_jwt_cache_t  *all_cache;
    ngx_http_wirehub_jwt_cache_t  *public_cache;
} fuzz_keys_t;


static fuzz_keys_t  fuzz_keys;


static const char  fuzz_secret[] = "wirehub-fuzz-secret-0123456789abcdef";

static const char  *fuzz_public_keys[][2] = {
    { "ES256",
      "-----BEGIN PUBLIC KEY-----\n"
      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEz2FHN0MAjuuyHJjOzaK4+PhiPWTV\n"
      "bTEe4UdRCTQ+Vjt9UdZOHr6uAVp4YbKFt/p76DXe21jwOiR1p/psmLDZiA==\n"
      "-----END PUBLIC KEY-----\n" },
    { "ES384",
      "-----BEGIN PUBLIC KEY-----\n"
      "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAExlnOwom7Iq1S1KcCMBh89mfWdn3Xixx3\n"
      "gZ9B+3O5mdMy5qoucwf6bXQhqGdIhDohBGGmA7uqgQY+VY3gFPCZxxL9u24UTCaF\n"
      "3IWknsnq8r/G2PE9knn4bCrjw4Zr0TSZ\n"
      "-----END PUBLIC KEY-----\n" },
    { "RS256", NULL },
    { "PS256", NULL }
};

static const char  fuzz_rsa_key[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwYfMUB/LBTX6mBgkWqqm\n"
    "7TypQDBYxI6VzamXOZK+zNkb8HZCwttmWlfWNwulherHYTE2VupHVQvkXT1LQfm+\n"
    "yrqRTaWgABgsWcxxnEbj7DF0V6TG4b+WPxwAtYhPWMrvL6ViQ+3LzXPIgTJ61zTj\n"
    "gY86GSUN4bpuAttZAvUhEq052moGNh4R+Mnz1bYPHu3qD1jMoYrZ7mKZKvzADxAU\n"
    "Ao3LLeVbgis0bJckxBHFhIboqfq+mnILh2AuYBGlwfisgcxP5iimW6HKVgDhL0H9\n"
    "ayxoDFAi+Oyc5JfotgsgeqC9+RC+KGQ000g5fe4ZrV1GiX6ZxmOmgqq1jUGimKvO\n"
    "WwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

/* mode 3: a valid header per public key and its signature length */
static const struct {
    const char  *header;
    size_t       sig_len;
} fuzz_forged[] = {
    { "{\"alg\":\"ES256\"}", 64 },
    { "{\"alg\":\"ES384\"}", 96 },
    { "{\"alg\":\"RS256\"}", 256 },
    { "{\"alg\":\"PS256\"}", 256 }
};

static const char  fuzz_forged_payload[] =
    "{\"workspace\":\"acme\",\"sub\":\"pc-7\",\"exp\":1700000060}";

static const char  *fuzz_header_keys[] = {
    "alg", "kid", "typ", "crit", "b64", "jku", "x5c", "alg"
};

static const char  *fuzz_claim_keys[] = {
    "workspace", "sub", "exp", "nbf", "iat", "iss", "aud", "role",
    "channels", "publish", "ws", "jti", "workspace", "sub", "exp", "role"
};

static const char  *fuzz_words[] = {
    "", "w", "c", "acme", "pc-7", "a.b_c-d", "a:b@c", "a/b", "a b", "iss",
    "aud", "client", "service", "admin", "Admin", "HS256", "hs256", "none",
    "RS256", "ES256", "PS256", "JWT", "jwt", "at+jwt", "k1", "sensors/+",
    "$presence", "#", "\xc3\xa9"
};


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static uint8_t
fuzz_byte(fuzz_reader_t *r)
{
    return (r->pos < r->end) ? *r->pos++ : 0;
}


static json_t *fuzz_value(fuzz_reader_t *r, int depth);


/* a string: a known word, or raw bytes (NULL when not UTF-8) */
static json_t *
fuzz_string(fuzz_reader_t *r)
{
    size_t   len;
    uint8_t  b;

    b = fuzz_byte(r);

    if (b < 128) {
        return json_string(fuzz_words[b % (sizeof(fuzz_words)
                                           / sizeof(fuzz_words[0]))]);
    }

    len = b - 128;
    if (len > (size_t) (r->end - r->pos)) {
        len = r->end - r->pos;
    }

    r->pos += len;

    return json_stringn((const char *) r->pos - len, len);
}


/* a time near FUZZ_NOW, or anywhere */
static json_t *
fuzz_number(fuzz_reader_t *r, int real)
{
    int      i;
    int16_t  delta;
    int64_t  any;

    delta = (int16_t) (fuzz_byte(r) << 8);
    delta = (int16_t) (delta | fuzz_byte(r));

    if (real) {
        return json_real(FUZZ_NOW + delta / 4.0);
    }

    if (delta != INT16_MIN) {
        return json_integer(FUZZ_NOW + delta);
    }

    any = 0;
    for (i = 0; i < 8; i++) {
        any = (int64_t) ((uint64_t) any << 8 | fuzz_byte(r));
    }

    return json_integer(any);
}


static json_t *
fuzz_container(fuzz_reader_t *r, int depth, int object)
{
    size_t   i, n;
    json_t  *c, *v;

    c = object ? json_object() : json_array();
    n = fuzz_byte(r) % 5;

    for (i = 0; c != NULL && i < n; i++) {
        v = fuzz_value(r, depth + 1);

        if (object) {
            json_object_set_new(c, fuzz_words[i], v);

        } else {
            json_array_append_new(c, v);
        }
    }

    return c;
}


static json_t *
fuzz_value(fuzz_reader_t *r, int depth)
{
    json_t  *v;

    switch (fuzz_byte(r) % (depth < FUZZ_MAX_DEPTH ? 9 : 7)) {

    case 0:
        v = json_null();
        break;

    case 1:
        v = json_true();
        break;

    case 2:
        v = json_false();
        break;

    case 3:
    case 4:
        v = fuzz_number(r, 0);
        break;

    case 5:
        v = fuzz_number(r, 1);
        break;

    case 6:
        v = fuzz_string(r);
        break;

    case 7:
        v = fuzz_container(r, depth, 0);
        break;

    default:
        v = fuzz_container(r, depth, 1);
        break;
    }

    return v ? v : json_null();
}


/*
 * An object of up to 15 members named from keys.  The high bits of the
 * first byte start it with valid members (alg, or workspace, sub and exp)
 * for the random ones to spoil or not: valid claims by chance are rare.
 */
static char *
fuzz_object(fuzz_reader_t *r, const char **keys, size_t nkeys, int header)
{
    char     *text;
    size_t    i, n;
    json_t   *obj;
    uint8_t   b;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    b = fuzz_byte(r);
    n = b & 0xf;

    if (header && (b & 0x10)) {
        json_object_set_new(obj, "alg", json_string("HS256"));
    }

    if (!header && (b & 0x10)) {
        json_object_set_new(obj, "workspace", json_string("acme"));
    }

    if (!header && (b & 0x20)) {
        json_object_set_new(obj, "sub", json_string("pc-7"));
    }

    if (!header && (b & 0x40)) {
        json_object_set_new(obj, "exp", json_integer(FUZZ_NOW + 60));
    }

    for (i = 0; i < n; i++) {
        json_object_set_new(obj, keys[fuzz_byte(r) % nkeys],
                            fuzz_value(r, 1));
    }

    if (header && (b & 0x20)) {
        json_object_set_new(obj, "alg", json_string("HS256"));
    }

    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);

    return text;
}


/* base64url without padding; returns the end of what was written */
static char *
fuzz_b64url(char *out, const uint8_t *in, size_t len)
{
    int  i, n;

    n = EVP_EncodeBlock((unsigned char *) out, in, (int) len);

    while (n > 0 && out[n - 1] == '=') {
        n--;
    }

    for (i = 0; i < n; i++) {
        if (out[i] == '+') {
            out[i] = '-';

        } else if (out[i] == '/') {
            out[i] = '_';
        }
    }

    return out + n;
}


/*
 * "b64(header).b64(payload).b64(sig)", malloc'ed; sig NULL: the HMAC of
 * the secret over the first two segments.
 */
static char *
fuzz_token(const uint8_t *header, size_t header_len, const uint8_t *payload,
    size_t payload_len, const uint8_t *sig, size_t sig_len)
{
    char           *token, *p;
    unsigned int    mac_len;
    unsigned char   mac[EVP_MAX_MD_SIZE];

    token = malloc(4 * ((header_len + payload_len + sig_len) / 3 + 3) + 64);
    if (token == NULL) {
        return NULL;
    }

    p = fuzz_b64url(token, header, header_len);
    *p++ = '.';
    p = fuzz_b64url(p, payload, payload_len);

    if (sig == NULL) {
        if (HMAC(EVP_sha256(), fuzz_secret, sizeof(fuzz_secret) - 1,
                 (unsigned char *) token, p - token, mac, &mac_len)
            == NULL)
        {
            free(token);
            return NULL;
        }

        sig = mac;
        sig_len = mac_len;
    }

    *p++ = '.';
    p = fuzz_b64url(p, sig, sig_len);
    *p = '\0';

    return token;
}


static char *
fuzz_sign(const uint8_t *header, size_t header_len, const uint8_t *payload,
    size_t payload_len)
{
    return fuzz_token(header, header_len, payload, payload_len, NULL, 0);
}


/* mode 1: the input is the JSON text */
static char *
fuzz_sign_text(const uint8_t *data, size_t size)
{
    const uint8_t  *nl;

    static const char  default_header[] = "{\"alg\":\"HS256\"}";

    nl = memchr(data, '\n', size);

    if (nl == NULL) {
        return fuzz_sign((const uint8_t *) default_header,
                         sizeof(default_header) - 1, data, size);
    }

    return fuzz_sign(data, nl - data, nl + 1, size - (nl - data) - 1);
}


/* mode 2: the input is a recipe */
static char *
fuzz_sign_recipe(const uint8_t *data, size_t size)
{
    char           *header, *payload, *token;
    fuzz_reader_t   r;

    r.pos = data;
    r.end = data + size;

    header = fuzz_object(&r, fuzz_header_keys,
                         sizeof(fuzz_header_keys) / sizeof(char *), 1);
    payload = fuzz_object(&r, fuzz_claim_keys,
                          sizeof(fuzz_claim_keys) / sizeof(char *), 0);

    token = NULL;

    if (header != NULL && payload != NULL) {
        token = fuzz_sign((const uint8_t *) header, strlen(header),
                          (const uint8_t *) payload, strlen(payload));
    }

    free(header);
    free(payload);

    return token;
}


/* mode 3: the input is a signature */
static char *
fuzz_forge(const uint8_t *data, size_t size)
{
    size_t          i, sig_len;
    uint8_t         pick;
    const char     *header;
    const uint8_t  *sig;
    uint8_t         fitted[256];

    pick = size ? data[0] : 0;
    sig = size ? data + 1 : data;
    sig_len = size ? size - 1 : 0;

    i = pick % (sizeof(fuzz_forged) / sizeof(fuzz_forged[0]));
    header = fuzz_forged[i].header;

    if (!(pick & 0x4)) {
        memset(fitted, 0, sizeof(fitted));
        memcpy(fitted, sig, sig_len < fuzz_forged[i].sig_len
                            ? sig_len : fuzz_forged[i].sig_len);
        sig = fitted;
        sig_len = fuzz_forged[i].sig_len;
    }

    return fuzz_token((const uint8_t *) header, strlen(header),
                      (const uint8_t *) fuzz_forged_payload,
                      sizeof(fuzz_forged_payload) - 1, sig, sig_len);
}


static void
fuzz_policy(uint8_t mode, ngx_http_wirehub_jwt_policy_t *policy)
{
    static const long  leeways[] = { 0, 30, -1, 0x7fffffffffffffffL };

    memset(policy, 0, sizeof(ngx_http_wirehub_jwt_policy_t));

    mode /= FUZZ_MODES;

    policy->issuer = (mode & 0x01) ? "iss" : NULL;
    policy->audience = (mode & 0x02) ? "aud" : NULL;
    policy->require_exp = (mode & 0x04) ? 1 : 0;
    policy->leeway = leeways[(mode >> 3) & 3];
    policy->workspace_claim = (mode & 0x20) ? "ws" : NULL;
}


static void
fuzz_check_claims(ngx_http_wirehub_jwt_claims_t *claims)
{
    if (claims->payload == NULL || claims->workspace == NULL
        || claims->client_id == NULL || claims->workspace[0] == '\0'
        || strlen(claims->workspace) > NGX_HTTP_WIREHUB_JWT_MAX_WORKSPACE
        || strlen(claims->client_id) > NGX_HTTP_WIREHUB_JWT_MAX_CLIENT_ID
        || (claims->channels != NULL && !json_is_array(claims->channels))
        || (claims->publish != NULL && !json_is_array(claims->publish)))
    {
        abort();
    }
}


static void
fuzz_add_key(ngx_http_wirehub_jwt_keys_t *keys, const char *alg,
    const char *key, size_t len)
{
    char  err[256];

    if (ngx_http_wirehub_jwt_keys_add(keys, alg, NULL,
                                      (const unsigned char *) key, len, err,
                                      sizeof(err))
        != 0)
    {
        abort();
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t       i;
    const char  *pem;

    (void) argc;
    (void) argv;

    fuzz_keys.all = ngx_http_wirehub_jwt_keys_create();
    fuzz_keys.public = ngx_http_wirehub_jwt_keys_create();

    if (fuzz_keys.all == NULL || fuzz_keys.public == NULL) {
        abort();
    }

    fuzz_keys.all_cache = ngx_http_wirehub_jwt_cache_create(fuzz_keys.all,
                                                            16);
    fuzz_keys.public_cache = ngx_http_wirehub_jwt_cache_create(
                                                      fuzz_keys.public, 16);

    if (fuzz_keys.all_cache == NULL || fuzz_keys.public_cache == NULL) {
        abort();
    }

    fuzz_add_key(fuzz_keys.all, "HS256", fuzz_secret,
                 sizeof(fuzz_secret) - 1);

    for (i = 0; i < sizeof(fuzz_public_keys) / sizeof(fuzz_public_keys[0]);
         i++)
    {
        pem = fuzz_public_keys[i][1] ? fuzz_public_keys[i][1] : fuzz_rsa_key;

        fuzz_add_key(fuzz_keys.all, fuzz_public_keys[i][0], pem,
                     strlen(pem));
        fuzz_add_key(fuzz_keys.public, fuzz_public_keys[i][0], pem,
                     strlen(pem));
    }

    return 0;
}


/* modes 1 to 3: the token made from the input, malloc'ed */
static char *
fuzz_make_token(const uint8_t *data, size_t size)
{
    char  *token;

    switch (data[0] % FUZZ_MODES) {

    case 1:
        token = fuzz_sign_text(data + 1, size - 1);
        break;

    case 2:
        token = fuzz_sign_recipe(data + 1, size - 1);
        break;

    default:
        token = fuzz_forge(data + 1, size - 1);
        break;
    }

    if (token == NULL) {
        abort();
    }

    return token;
}


static ngx_http_wirehub_jwt_rc_e
fuzz_verify_once(const ngx_http_wirehub_jwt_keys_t *keys,
    ngx_http_wirehub_jwt_cache_t *cache,
    const ngx_http_wirehub_jwt_policy_t *policy, const uint8_t *token,
    size_t len)
{
    ngx_http_wirehub_jwt_rc_e      rc;
    ngx_http_wirehub_jwt_claims_t  claims;
    char                           err[256];

    err[0] = '\0';
    rc = ngx_http_wirehub_jwt_verify(keys, cache, policy, token, len,
                                     FUZZ_NOW, &claims, err, sizeof(err));

    if (rc == NGX_HTTP_WIREHUB_JWT_OK) {
        fuzz_check_claims(&claims);
        ngx_http_wirehub_jwt_claims_free(&claims);

    } else if (err[0] == '\0') {
        abort();
    }

    return rc;
}


/* the same answer with the keys' cache as without, seen once or twice */
static ngx_http_wirehub_jwt_rc_e
fuzz_verify(const ngx_http_wirehub_jwt_keys_t *keys,
    ngx_http_wirehub_jwt_cache_t *cache,
    const ngx_http_wirehub_jwt_policy_t *policy, const uint8_t *token,
    size_t len)
{
    ngx_http_wirehub_jwt_rc_e  rc;

    rc = fuzz_verify_once(keys, NULL, policy, token, len);

    if (fuzz_verify_once(keys, cache, policy, token, len) != rc
        || fuzz_verify_once(keys, cache, policy, token, len) != rc)
    {
        abort();
    }

    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                             forged;
    char                           *made;
    size_t                          len;
    const uint8_t                  *token;
    ngx_http_wirehub_jwt_policy_t   policy;

    if (size == 0) {
        return 0;
    }

    fuzz_policy(data[0], &policy);

    /* mode 0 verifies the input in place: ASan sees any read past it */
    made = NULL;
    token = data + 1;
    len = size - 1;

    if (data[0] % FUZZ_MODES != 0) {
        made = fuzz_make_token(data, size);
        token = (const uint8_t *) made;
        len = strlen(made);
    }

    forged = (data[0] % FUZZ_MODES == 0 || data[0] % FUZZ_MODES == 3);

    if (fuzz_verify(fuzz_keys.all, fuzz_keys.all_cache, &policy, token, len)
        == NGX_HTTP_WIREHUB_JWT_OK)
    {
        /* a forgery, or an HMAC-signed token that a public key accepts */
        if (forged
            || fuzz_verify(fuzz_keys.public, fuzz_keys.public_cache, &policy,
                           token, len)
               == NGX_HTTP_WIREHUB_JWT_OK)
        {
            abort();
        }
    }

    free(made);

    return 0;
}
