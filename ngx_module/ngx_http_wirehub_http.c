
/*
 * Wirehub: HTTP answers that are not an upgrade, and the request's context.
 * Every error is JSON ({"error":{"code","message"}}), so API clients and
 * WebSocket clients that failed their handshake parse the same thing.
 */


#include "ngx_http_wirehub_http.h"


ngx_http_wirehub_ctx_t *
ngx_http_wirehub_get_ctx(ngx_http_request_t *r)
{
    ngx_http_wirehub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_wirehub_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_wirehub_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_wirehub_module);

    return ctx;
}


ngx_table_elt_t *
ngx_http_wirehub_header(ngx_http_request_t *r, const char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_int_t
ngx_http_wirehub_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, ngx_str_t *message)
{
    char         *text;
    size_t        len;
    json_t       *body;
    ngx_buf_t    *b;
    ngx_str_t     version;

    body = json_pack("{s:{s:s,s:s%}}", "error", "code", code,
                     "message", (char *) message->data, message->len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(text);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, text, len);
    *b->last++ = '\n';
    free(text);

    if (status == NGX_HTTP_UPGRADE_REQUIRED) {
        ngx_str_set(&version, "13");
        if (ngx_http_wirehub_add_header(r, "Sec-WebSocket-Version", &version)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");
    }


    if (status == NGX_HTTP_UNAUTHORIZED) {
        ngx_str_set(&version, "Bearer");
        if (ngx_http_wirehub_add_header(r, "WWW-Authenticate", &version)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_http_discard_request_body(r);

    return ngx_http_wirehub_send_body(r, status, "application/json", b);
}


/*
 * Every response of the module that is not an upgrade: status, type and
 * body, and Retry-After when wirehubd is away (503).
 */

ngx_int_t
ngx_http_wirehub_send_body(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_str_t    retry;
    ngx_chain_t  out;

    if (status == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ngx_str_set(&retry, "2");

        if (ngx_http_wirehub_add_header(r, "Retry-After", &retry) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_wirehub_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}
