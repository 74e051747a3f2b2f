
/*
 * Wirehub: what the module puts into nginx, and the start and end of a
 * worker (ngx_http_wirehub_install.h says why this is not in the file
 * that defines the module object).
 */


#include "ngx_http_wirehub_install.h"
#include "ngx_http_wirehub_auth.h"
#include "ngx_http_wirehub_authz.h"
#include "ngx_http_wirehub_channels.h"
#include "ngx_http_wirehub_content.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_limits.h"
#include "ngx_http_wirehub_link.h"
#include "ngx_http_wirehub_link_handlers.h"
#include "ngx_http_wirehub_log.h"
#include "ngx_http_wirehub_presence.h"
#include "ngx_http_wirehub_session.h"


ngx_int_t
ngx_http_wirehub_install_variables(ngx_conf_t *cf)
{
    return ngx_http_wirehub_add_variables(cf);
}


ngx_int_t
ngx_http_wirehub_install(ngx_conf_t *cf, ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_uint_t                  n;
    ngx_http_handler_pt        *h, *handlers;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * Tokens may travel in the query string or the path; mask them in
     * the request line before anything can write it to a log.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_wirehub_post_read;

    /*
     * Requests that nginx rejects while reading the header never reach
     * the post-read phase, but they are logged: mask the request line
     * first thing in the log phase, before the access log runs.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    handlers = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.elts;
    n = cmcf->phases[NGX_HTTP_LOG_PHASE].handlers.nelts;

    ngx_memmove(&handlers[1], &handlers[0],
                (n - 1) * sizeof(ngx_http_handler_pt));
    handlers[0] = ngx_http_wirehub_log_phase;

    if (wmcf->used && ngx_http_wirehub_counters_add_zone(cf, wmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* no zone, and no lock taken per handshake, unless a limit is set */

    if (wmcf->workspace_limits) {
        return ngx_http_wirehub_workspace_zone_add(cf, wmcf);
    }

    return NGX_OK;
}


ngx_http_handler_pt
ngx_http_wirehub_content_handler(ngx_http_wirehub_mode_e mode)
{
    switch (mode) {
    case NGX_HTTP_WIREHUB_MODE_API:
        return ngx_http_wirehub_api_handler;
    case NGX_HTTP_WIREHUB_MODE_METRICS:
        return ngx_http_wirehub_metrics_handler;
    case NGX_HTTP_WIREHUB_MODE_SSE:
        return ngx_http_wirehub_sse_handler;
    default:
        return ngx_http_wirehub_websocket_handler;
    }
}


void
ngx_http_wirehub_install_cycle(ngx_cycle_t *cycle)
{
    ngx_http_wirehub_log_init(cycle);
}


ngx_int_t
ngx_http_wirehub_worker_start(ngx_cycle_t *cycle,
    ngx_http_wirehub_main_conf_t *wmcf)
{
    /* one receive buffer for the worker: sessions keep no read buffer */

    wmcf->recv_size = NGX_HTTP_WIREHUB_RECV_SIZE;
    wmcf->recv_buf = ngx_alloc(wmcf->recv_size, cycle->log);
    if (wmcf->recv_buf == NULL) {
        return NGX_ERROR;
    }

    ngx_http_wirehub_output_init(wmcf, cycle->log);
    ngx_http_wirehub_channels_init(wmcf);
    ngx_http_wirehub_authz_init(wmcf);
    ngx_http_wirehub_presence_init(wmcf);

    if (!wmcf->used) {
        return NGX_OK;
    }

    if (wmcf->counters && ngx_worker < NGX_HTTP_WIREHUB_MAX_WORKERS) {
        wmcf->counters->worker_pid[ngx_worker] = ngx_pid;
    }

    return ngx_http_wirehub_link_init(cycle, wmcf,
                                      &ngx_http_wirehub_link_handlers);
}


void
ngx_http_wirehub_worker_end(ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_http_wirehub_workspace_exit(wmcf);
    ngx_http_wirehub_link_exit(wmcf);
    ngx_http_wirehub_auth_exit(wmcf);
}
