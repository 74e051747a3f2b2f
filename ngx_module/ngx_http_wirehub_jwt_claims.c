
/*
 * Wirehub: the claims of a JWT whose signature has been checked.
 *
 * The claims come from our own strict parse of the payload (no duplicate
 * keys), never from libjwt.  Every claim that Wirehub reads has exactly one
 * JSON type; a claim of another type is refused, not ignored.
 */


#include <stdint.h>
#include <string.h>

#include "ngx_http_wirehub_jwt_internal.h"


/* the verified time claims, rounded towards refusal */
typedef struct {
    int64_t                            exp;
    int64_t                            nbf;
    int64_t                            iat;
} ngx_http_wirehub_jwt_times_t;


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


ngx_http_wirehub_jwt_rc_e
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
