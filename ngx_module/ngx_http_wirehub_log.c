
/*
 * Wirehub: no token in the error log.  nginx core itself prints request
 * lines and header lines into error-log lines (a 414, a too long header,
 * a broken request), before any module runs, so masking the request line
 * is not enough: every error-log file gets a writer that replaces what
 * looks like a JWT ("eyJ" base64url "." ...) with "***" before writing.
 */


#include "ngx_http_wirehub_module.h"


static void ngx_http_wirehub_log_writer(ngx_log_t *log, ngx_uint_t level,
    u_char *buf, size_t len);
static void ngx_http_wirehub_log_chain(ngx_log_t *log);
static ngx_uint_t ngx_http_wirehub_b64url(u_char ch);


size_t
ngx_http_wirehub_mask_tokens(u_char *buf, size_t len)
{
    u_char      *p, *q, *last, *run;
    ngx_uint_t   dots;

    p = buf;
    q = buf;
    last = buf + len;

    while (p < last) {

        if (last - p > 3 && p[0] == 'e' && p[1] == 'y' && p[2] == 'J'
            && (p == buf || !ngx_http_wirehub_b64url(p[-1])))
        {
            dots = 0;

            for (run = p; run < last; run++) {
                if (*run == '.') {
                    dots++;

                } else if (!ngx_http_wirehub_b64url(*run)) {
                    break;
                }
            }

            if (dots) {
                q = ngx_cpymem(q, "***", 3);
                p = run;
                continue;
            }
        }

        *q++ = *p++;
    }

    return q - buf;
}


static ngx_uint_t
ngx_http_wirehub_b64url(u_char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
           || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}


static void
ngx_http_wirehub_log_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf,
    size_t len)
{
    len = ngx_http_wirehub_mask_tokens(buf, len);

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
