
/*
 * Wirehub: no token in the error log.  nginx core itself prints request
 * lines and header lines into error-log lines (a 414, a too long header,
 * a broken request), before any module runs, so masking the request line
 * is not enough: every error-log file gets a writer that replaces what
 * looks like a JWT ("eyJ" base64url "." ...) with "***" before writing.
 * The request line is masked too, and what log formats may print of a
 * connection is offered as $wirehub_* variables.
 */


#include "ngx_http_wirehub_log.h"


#define NGX_HTTP_WIREHUB_MASK  "***"


static ngx_int_t ngx_http_wirehub_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void ngx_http_wirehub_log_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len);
static void ngx_http_wirehub_log_chain(ngx_log_t *log);
static u_char *ngx_http_wirehub_token_at(u_char *start, u_char *p,
    u_char *last);
static ngx_uint_t ngx_http_wirehub_b64url(u_char ch);
static size_t ngx_http_wirehub_mask_tokens(u_char *dst, u_char *src,
    size_t len);
static ngx_uint_t ngx_http_wirehub_has_token(u_char *src, size_t len);
static ngx_int_t ngx_http_wirehub_mask_request(ngx_http_request_t *r);


/*
 * One rule for every place a token could leak: a run that looks like a
 * JWT ("eyJ", base64url of '{"', then base64url and at least one ".", not
 * inside a longer base64url word) and the value of a "token=" argument.
 * Returns where the token that starts at p ends, or NULL.
 */

static u_char *
ngx_http_wirehub_token_at(u_char *start, u_char *p, u_char *last)
{
    u_char      *run;
    ngx_uint_t   dots;

    if (p - start >= 6 && ngx_strncasecmp(p - 6, (u_char *) "token=", 6) == 0)
    {
        for (run = p; run < last; run++) {
            if (*run == ' ' || *run == '&' || *run == '/' || *run == '?'
                || *run == '#' || *run == '"')
            {
                break;
            }
        }

        return (run > p) ? run : NULL;
    }

    if (last - p <= 3 || p[0] != 'e' || p[1] != 'y' || p[2] != 'J'
        || (p > start && ngx_http_wirehub_b64url(p[-1])))
    {
        return NULL;
    }

    dots = 0;

    for (run = p; run < last; run++) {
        if (*run == '.') {
            dots++;

        } else if (!ngx_http_wirehub_b64url(*run)) {
            break;
        }
    }

    return dots ? run : NULL;
}


static ngx_uint_t
ngx_http_wirehub_b64url(u_char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
           || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}


/*
 * Copies src to dst with every token replaced by "***" (shortened for
 * tokens of fewer than three bytes: the result is never longer, so dst may
 * be src).  Returns the new length.
 */

static size_t
ngx_http_wirehub_mask_tokens(u_char *dst, u_char *src, size_t len)
{
    u_char  *p, *q, *last, *end;

    p = src;
    q = dst;
    last = src + len;

    while (p < last) {
        end = ngx_http_wirehub_token_at(src, p, last);

        if (end) {
            q = ngx_cpymem(q, NGX_HTTP_WIREHUB_MASK,
                           ngx_min((size_t) (end - p),
                                   sizeof(NGX_HTTP_WIREHUB_MASK) - 1));
            p = end;
            continue;
        }

        *q++ = *p++;
    }

    return q - dst;
}


/* the scan alone, so that requests without a token cost no copy */

static ngx_uint_t
ngx_http_wirehub_has_token(u_char *src, size_t len)
{
    u_char  *p, *last;

    last = src + len;

    for (p = src; p < last; p++) {
        if ((*p == 'e' || (p > src && p[-1] == '='))
            && ngx_http_wirehub_token_at(src, p, last))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The request line is what nginx prints in error-log lines and in
 * $request.  It points into the header buffer that r->uri and r->args
 * share, where the token is still looked up: a masked copy replaces it.
 */

static ngx_int_t
ngx_http_wirehub_mask_request(ngx_http_request_t *r)
{
    u_char  *dst;

    if (!ngx_http_wirehub_has_token(r->request_line.data,
                                    r->request_line.len))
    {
        return NGX_OK;
    }

    dst = ngx_pnalloc(r->pool, r->request_line.len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    r->request_line.len = ngx_http_wirehub_mask_tokens(dst,
                                                       r->request_line.data,
                                                       r->request_line.len);
    r->request_line.data = dst;

    return NGX_OK;
}


static void
ngx_http_wirehub_log_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    len = ngx_http_wirehub_mask_tokens(buf, buf, len);

    if (ngx_time() == log->disk_full_time) {
        return;
    }

    if (ngx_write_fd(log->file->fd, buf, len) == -1
        && ngx_errno == NGX_ENOSPC)
    {
        log->disk_full_time = ngx_time();
    }
}


static void
ngx_http_wirehub_log_chain(ngx_log_t *log)
{
    for ( /* void */ ; log; log = log->next) {
        /* syslog and memory logs have writers of their own: left alone */
        if (log->writer == NULL && log->file) {
            log->writer = ngx_http_wirehub_log_writer;
        }
    }
}


/*
 * Called at init_module: the cycle's own error log, and the logs of every
 * listening socket (the server-level error_log), which connections copy.
 * An error_log set inside a location is not covered.
 */

void
ngx_http_wirehub_log_init(ngx_cycle_t *cycle)
{
    ngx_uint_t        i;
    ngx_listening_t  *ls;

    ngx_http_wirehub_log_chain(&cycle->new_log);
    ngx_http_wirehub_log_chain(cycle->log);

    ls = cycle->listening.elts;

    for (i = 0; i < cycle->listening.nelts; i++) {
        ngx_http_wirehub_log_chain(ls[i].logp);
        ngx_http_wirehub_log_chain(&ls[i].log);
    }
}


enum {
    NGX_HTTP_WIREHUB_VAR_WORKSPACE = 0,
    NGX_HTTP_WIREHUB_VAR_CLIENT_ID,
    NGX_HTTP_WIREHUB_VAR_REQUEST
};


static ngx_http_variable_t  ngx_http_wirehub_vars[] = {

    { ngx_string("wirehub_workspace"), NULL, ngx_http_wirehub_variable,
      NGX_HTTP_WIREHUB_VAR_WORKSPACE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("wirehub_client_id"), NULL, ngx_http_wirehub_variable,
      NGX_HTTP_WIREHUB_VAR_CLIENT_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("wirehub_request"), NULL, ngx_http_wirehub_variable,
      NGX_HTTP_WIREHUB_VAR_REQUEST, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_wirehub_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_wirehub_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *s;
    ngx_http_wirehub_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_wirehub_module);

    s = NULL;

    if (ctx) {
        switch (data) {

        case NGX_HTTP_WIREHUB_VAR_WORKSPACE:
            s = ctx->identity ? &ctx->identity->workspace : NULL;
            break;

        case NGX_HTTP_WIREHUB_VAR_CLIENT_ID:
            s = ctx->identity ? &ctx->identity->client_id : NULL;
            break;

        default:
            break;
        }
    }

    if (data == NGX_HTTP_WIREHUB_VAR_REQUEST) {
        /*
         * The post-read handler masked request_line already, unless no
         * location uses the module (it then installs no handler): masked
         * here, for the log formats that ask.
         */

        if (ngx_http_wirehub_mask_request(r) != NGX_OK) {
            return NGX_ERROR;
        }

        s = &r->request_line;
    }

    if (s == NULL || s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_wirehub_post_read(ngx_http_request_t *r)
{
    if (ngx_http_wirehub_mask_request(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/*
 * Requests that nginx rejects while reading the header never reach the
 * post-read phase, but they are logged; for the others the scan finds
 * nothing left to mask.
 */

ngx_int_t
ngx_http_wirehub_log_phase(ngx_http_request_t *r)
{
    if (ngx_http_wirehub_has_token(r->request_line.data,
                                   r->request_line.len))
    {
        r->request_line.len = ngx_http_wirehub_mask_tokens(
                                  r->request_line.data, r->request_line.data,
                                  r->request_line.len);
    }

    return NGX_OK;
}
