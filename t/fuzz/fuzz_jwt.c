
/*
 * libFuzzer target for ngx_http_wirehub_jwt_verify() with a fixed HS256 key.
 *
 * The first input byte chooses what the rest is, modulo 3:
 *   0: a raw token.  Nothing the fuzzer writes can carry a valid HMAC of the
 *      secret below, so any acceptance is a forgery and aborts.
 *   1: "HEADER\nPAYLOAD" (or only PAYLOAD under a fixed header): JSON text
 *      that is encoded and signed here.
 *   2: a recipe for a header and a payload built with jansson from claim
 *      names and values likely to matter, then signed.  jansson is not
 *      instrumented, so the fuzzer would seldom write valid JSON itself:
 *      this mode is what brings signed tokens to every claim check.
 * The higher bits of the first byte choose the policy.
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


typedef struct {
    const uint8_t  *pos;
    const uint8_t  *end;
} fuzz_reader_t;


static const char  fuzz_secret[] = "wirehub-fuzz-secret-0123456789abcdef";

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


/* "b64(header).b64(payload).b64(hmac)", malloc'ed */
static char *
fuzz_sign(const uint8_t *header, size_t header_len, const uint8_t *payload,
    size_t payload_len)
{
    char           *token, *p;
    unsigned int    mac_len;
    unsigned char   mac[EVP_MAX_MD_SIZE];

    token = malloc(4 * ((header_len + payload_len) / 3 + 2) + 64);
    if (token == NULL) {
        return NULL;
    }

    p = fuzz_b64url(token, header, header_len);
    *p++ = '.';
    p = fuzz_b64url(p, payload, payload_len);

    if (HMAC(EVP_sha256(), fuzz_secret, sizeof(fuzz_secret) - 1,
             (unsigned char *) token, p - token, mac, &mac_len)
        == NULL)
    {
        free(token);
        return NULL;
    }

    *p++ = '.';
    p = fuzz_b64url(p, mac, mac_len);
    *p = '\0';

    return token;
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


static void
fuzz_policy(uint8_t mode, ngx_http_wirehub_jwt_policy_t *policy)
{
    static const long  leeways[] = { 0, 30, -1, 0x7fffffffffffffffL };

    memset(policy, 0, sizeof(ngx_http_wirehub_jwt_policy_t));

    mode /= 3;

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


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                           *signed_token;
    size_t                          len;
    const uint8_t                  *token;
    ngx_http_wirehub_jwt_rc_e       rc;
    ngx_http_wirehub_jwt_keys_t    *keys;
    ngx_http_wirehub_jwt_policy_t   policy;
    ngx_http_wirehub_jwt_claims_t   claims;
    char                            err[256];

    if (size == 0) {
        return 0;
    }

    keys = ngx_http_wirehub_jwt_keys_create();
    if (keys == NULL
        || ngx_http_wirehub_jwt_keys_add(keys, "HS256", NULL,
                                         (const unsigned char *) fuzz_secret,
                                         sizeof(fuzz_secret) - 1, err,
                                         sizeof(err))
           != 0)
    {
        abort();
    }

    fuzz_policy(data[0], &policy);

    signed_token = NULL;
    token = data + 1;
    len = size - 1;

    if (data[0] % 3 != 0) {
        signed_token = (data[0] % 3 == 1) ? fuzz_sign_text(data + 1, size - 1)
                                          : fuzz_sign_recipe(data + 1,
                                                             size - 1);
        if (signed_token == NULL) {
            abort();
        }

        token = (const uint8_t *) signed_token;
        len = strlen(signed_token);
    }

    err[0] = '\0';
    rc = ngx_http_wirehub_jwt_verify(keys, &policy, token, len, FUZZ_NOW,
                                     &claims, err, sizeof(err));

    if (rc == NGX_HTTP_WIREHUB_JWT_OK) {
        if (signed_token == NULL) {
            /* a raw token the fuzzer wrote passed: a forgery */
            abort();
        }

        fuzz_check_claims(&claims);
        ngx_http_wirehub_jwt_claims_free(&claims);

    } else if (err[0] == '\0') {
        abort();
    }

    free(signed_token);
    ngx_http_wirehub_jwt_keys_destroy(keys);

    return 0;
}
