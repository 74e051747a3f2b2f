
/*
 * Wirehub: the Prometheus text exposition of the wirehub_metrics location,
 * from the counters all workers share.  wirehubd's own families (history,
 * commands, storage, MQTT) are fetched over the link and appended as
 * wirehubd wrote them; while it is down the scrape has the module's alone.
 */


#include "ngx_http_wirehub_content.h"
#include "ngx_http_wirehub_counters.h"
#include "ngx_http_wirehub_http.h"
#include "ngx_http_wirehub_link.h"


static ngx_int_t ngx_http_wirehub_metrics_text(ngx_http_request_t *r,
    ngx_str_t *daemon);
static void ngx_http_wirehub_metrics_reply(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m);
static void ngx_http_wirehub_metrics_cleanup(void *data);
static ngx_str_t ngx_http_wirehub_metrics_daemon_version(ngx_str_t *daemon);


static const char  *ngx_http_wirehub_handshake_results[] = {
    "ok", "bad_request", "unauthorized", "forbidden", "unavailable",
    "quota_exceeded"
};


static const char  *ngx_http_wirehub_close_reasons[] = {
    "client", "protocol", "too_big", "slow_consumer", "expired", "idle",
    "shutdown", "refused"
};


/* the directive behind each label of wirehub_limited_total */
static const char  *ngx_http_wirehub_limits[] = {
    "message_rate", "max_subscriptions", "max_connections_per_workspace"
};


ngx_int_t
ngx_http_wirehub_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      method, path, none;
    wh_link_msg_t                  m;
    ngx_http_cleanup_t            *cln;
    ngx_http_wirehub_ctx_t        *ctx;
    ngx_http_wirehub_main_conf_t  *wmcf;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    ctx = ngx_http_wirehub_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&method, "GET");
    ngx_str_set(&path, "/metrics");
    ngx_str_null(&none);

    wh_link_request(&m, WH_LINK_ROLE_ADMIN,
                    ngx_http_wirehub_wh_ngx_str(&none),
                    ngx_http_wirehub_wh_ngx_str(&none),
                    ngx_http_wirehub_wh_ngx_str(&method),
                    ngx_http_wirehub_wh_ngx_str(&path),
                    ngx_http_wirehub_wh_ngx_str(&none),
                    ngx_http_wirehub_wh_ngx_str(&none));

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->api_call = ngx_http_wirehub_link_request(wmcf, &m,
                                         ngx_http_wirehub_metrics_reply, r);

    if (ctx->api_call == NULL) {
        /* wirehubd down: what the workers know is still worth scraping */
        return ngx_http_wirehub_metrics_text(r, NULL);
    }

    cln->handler = ngx_http_wirehub_metrics_cleanup;
    cln->data = ctx;

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_wirehub_metrics_cleanup(void *data)
{
    ngx_http_wirehub_ctx_t *ctx = data;

    if (ctx->api_call) {
        ngx_http_wirehub_pending_cancel(ctx->api_call);
        ctx->api_call = NULL;
    }
}


static void
ngx_http_wirehub_metrics_reply(ngx_http_wirehub_pending_t *p,
    wh_link_msg_t *m)
{
    ngx_str_t                daemon;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_wirehub_ctx_t  *ctx;

    r = p->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_wirehub_module);
    ctx->api_call = NULL;

    daemon.len = 0;

    if (m && m->status == NGX_HTTP_OK) {
        daemon.data = (u_char *) m->body.data;
        daemon.len = m->body.len;
    }

    ngx_http_finalize_request(r, ngx_http_wirehub_metrics_text(r,
                                               daemon.len ? &daemon : NULL));
    ngx_http_run_posted_requests(c);
}


/*
 * wirehubd's version, from the version label of its wirehubd_build_info
 * sample; empty if unknown.  Only the characters of a version are taken,
 * so the value needs no escaping as a label of wirehub_build_info.
 */
static ngx_str_t
ngx_http_wirehub_metrics_daemon_version(ngx_str_t *daemon)
{
    u_char     *p, *last, *start;
    ngx_str_t   v;

    static u_char  sample[] = "\nwirehubd_build_info{version=\"";

    ngx_str_null(&v);

    if (daemon == NULL) {
        return v;
    }

    /* the body starts with a HELP line: the sample follows a newline */
    p = ngx_strnstr(daemon->data, (char *) sample, daemon->len);
    if (p == NULL) {
        return v;
    }

    start = p + sizeof(sample) - 1;
    last = daemon->data + daemon->len;

    for (p = start; p < last && p - start < 64; p++) {
        if (*p == '"') {
            v.data = start;
            v.len = p - start;
            return v;
        }

        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')
              || (*p >= 'A' && *p <= 'Z') || *p == '.' || *p == '-'
              || *p == '+' || *p == '~' || *p == '_'))
        {
            break;
        }
    }

    return v;
}


static ngx_int_t
ngx_http_wirehub_metrics_text(ngx_http_request_t *r, ngx_str_t *daemon)
{
    u_char                        *p;
    size_t                         len;
    ngx_buf_t                     *b;
    ngx_str_t                      version;
    ngx_uint_t                     i, n, cumulative, workers;
    ngx_http_wirehub_counters_t   *cnt, zero;
    ngx_http_wirehub_main_conf_t  *wmcf;

    wmcf = ngx_http_get_module_main_conf(r, ngx_http_wirehub_module);

    cnt = wmcf->counters;
    if (cnt == NULL) {
        ngx_memzero(&zero, sizeof(ngx_http_wirehub_counters_t));
        cnt = &zero;
    }

    len = 12288 + (daemon ? daemon->len : 0);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    workers = 0;

    for (i = 0; i < NGX_HTTP_WIREHUB_MAX_WORKERS; i++) {
        if (cnt->worker_connections[i] || cnt->worker_pid[i]) {
            workers++;
        }
    }

    version = ngx_http_wirehub_metrics_daemon_version(daemon);

    p = ngx_sprintf(p,
        "# HELP wirehub_build_info Versions of the module, of nginx and of "
        "wirehubd (empty while unknown); always 1.\n"
        "# TYPE wirehub_build_info gauge\n"
        "wirehub_build_info{version=\"%s\",nginx=\"%s\",daemon=\"%V\"}"
        " 1\n",
        NGX_HTTP_WIREHUB_VERSION, NGINX_VERSION, &version);

    p = ngx_sprintf(p,
        "# HELP wirehub_connections Open WebSocket connections and SSE "
        "streams.\n"
        "# TYPE wirehub_connections gauge\n"
        "wirehub_connections %uA\n"
        "# HELP wirehub_workers Nginx worker processes serving Wirehub.\n"
        "# TYPE wirehub_workers gauge\n"
        "wirehub_workers %ui\n"
        "# HELP wirehub_handshakes_total WebSocket handshakes by result.\n"
        "# TYPE wirehub_handshakes_total counter\n",
        cnt->connections, workers);

    for (i = 0; i < NGX_HTTP_WIREHUB_HS_RESULTS; i++) {
        p = ngx_sprintf(p, "wirehub_handshakes_total{result=\"%s\"} %uA\n",
                        ngx_http_wirehub_handshake_results[i],
                        cnt->handshakes[i]);
    }

    p = ngx_sprintf(p,
        "# HELP wirehub_sse_streams Open SSE streams (wirehub_connections "
        "counts them too).\n"
        "# TYPE wirehub_sse_streams gauge\n"
        "wirehub_sse_streams %uA\n"
        "# HELP wirehub_sse_handshakes_total SSE stream requests by "
        "result.\n"
        "# TYPE wirehub_sse_handshakes_total counter\n",
        cnt->sse_streams);

    for (i = 0; i < NGX_HTTP_WIREHUB_HS_RESULTS; i++) {
        p = ngx_sprintf(p,
                        "wirehub_sse_handshakes_total{result=\"%s\"} %uA\n",
                        ngx_http_wirehub_handshake_results[i],
                        cnt->sse_handshakes[i]);
    }

    p = ngx_sprintf(p,
        "# HELP wirehub_closes_total WebSocket and SSE closes by reason.\n"
        "# TYPE wirehub_closes_total counter\n");

    for (i = 0; i < NGX_HTTP_WIREHUB_CLOSE_REASONS; i++) {
        p = ngx_sprintf(p, "wirehub_closes_total{reason=\"%s\"} %uA\n",
                        ngx_http_wirehub_close_reasons[i], cnt->closes[i]);
    }

    p = ngx_sprintf(p,
        "# HELP wirehub_messages_delivered_total Channel messages queued "
        "to clients.\n"
        "# TYPE wirehub_messages_delivered_total counter\n"
        "wirehub_messages_delivered_total %uA\n"
        "# HELP wirehub_messages_received_total Messages received from "
        "clients.\n"
        "# TYPE wirehub_messages_received_total counter\n"
        "wirehub_messages_received_total %uA\n"
        "# HELP wirehub_subscriptions Client subscriptions to channels.\n"
        "# TYPE wirehub_subscriptions gauge\n"
        "wirehub_subscriptions %uA\n"
        "# HELP wirehub_link_up Workers whose link to wirehubd is up.\n"
        "# TYPE wirehub_link_up gauge\n"
        "wirehub_link_up %uA\n"
        "# HELP wirehub_link_reconnects_total Reconnects of worker links "
        "to wirehubd.\n"
        "# TYPE wirehub_link_reconnects_total counter\n"
        "wirehub_link_reconnects_total %uA\n"
        "# HELP wirehub_link_refused_total Connections closed (1013) "
        "for holding more than their share of a backed-up link.\n"
        "# TYPE wirehub_link_refused_total counter\n"
        "wirehub_link_refused_total %uA\n"
        "# HELP wirehub_limited_total Client actions refused by a "
        "wirehub_* limit: messages dropped, channels and handshakes "
        "refused.\n"
        "# TYPE wirehub_limited_total counter\n",
        cnt->delivered, cnt->received, cnt->subscriptions, cnt->link_up,
        cnt->link_reconnects, cnt->link_refused);

    for (i = 0; i < NGX_HTTP_WIREHUB_LIMITS; i++) {
        p = ngx_sprintf(p, "wirehub_limited_total{limit=\"%s\"} %uA\n",
                        ngx_http_wirehub_limits[i], cnt->limited[i]);
    }

    p = ngx_sprintf(p,
        "# HELP wirehub_rate_limit_closes_total Connections closed (1008) "
        "for staying over wirehub_message_rate.\n"
        "# TYPE wirehub_rate_limit_closes_total counter\n"
        "wirehub_rate_limit_closes_total %uA\n"
        "# HELP wirehub_publishes_paced_total Answers to HTTP publishes "
        "and broadcasts that waited for their worker to write the "
        "messages it had queued.\n"
        "# TYPE wirehub_publishes_paced_total counter\n"
        "wirehub_publishes_paced_total %uA\n"
        "# HELP wirehub_jwt_signatures_cached_total Tokens whose RS, PS "
        "or ES signature their worker had found good before, and did not "
        "check again.\n"
        "# TYPE wirehub_jwt_signatures_cached_total counter\n"
        "wirehub_jwt_signatures_cached_total %uA\n"
        "# HELP wirehub_jwt_tokens_cached_total Tokens their worker had "
        "verified before and found in its cache, neither signature nor "
        "claims parsed again.\n"
        "# TYPE wirehub_jwt_tokens_cached_total counter\n"
        "wirehub_jwt_tokens_cached_total %uA\n"
        "# HELP wirehub_backend_calls Calls to the application "
        "(wirehub_rpc_pass, wirehub_event_pass) in flight, with those "
        "whose client left.\n"
        "# TYPE wirehub_backend_calls gauge\n"
        "wirehub_backend_calls %uA\n"
        "# HELP wirehub_backend_calls_total Calls to the application "
        "that ended, by result (failed: not 2xx, not JSON for an rpc, "
        "or no answer).\n"
        "# TYPE wirehub_backend_calls_total counter\n"
        "wirehub_backend_calls_total{result=\"ok\"} %uA\n"
        "wirehub_backend_calls_total{result=\"failed\"} %uA\n"
        "# HELP wirehub_publish_to_delivery_seconds From the commit of a "
        "message to its queueing on a worker.\n"
        "# TYPE wirehub_publish_to_delivery_seconds histogram\n",
        cnt->rate_closes, cnt->paced, cnt->jwt_cached, cnt->tokens_cached,
        cnt->backend_calls,
        cnt->backend_ok, cnt->backend_failed);

    n = NGX_HTTP_WIREHUB_LATENCY_BUCKETS;
    cumulative = 0;

    for (i = 0; i < n; i++) {
        cumulative += cnt->latency[i];
        p = ngx_sprintf(p,
                "wirehub_publish_to_delivery_seconds_bucket{le=\"%ui.%06ui\"}"
                " %ui\n",
                ngx_http_wirehub_latency_bounds[i] / 1000000,
                ngx_http_wirehub_latency_bounds[i] % 1000000, cumulative);
    }

    cumulative += cnt->latency[n];

    p = ngx_sprintf(p,
        "wirehub_publish_to_delivery_seconds_bucket{le=\"+Inf\"} %ui\n"
        "wirehub_publish_to_delivery_seconds_sum %uA.%06uA\n"
        "wirehub_publish_to_delivery_seconds_count %ui\n",
        cumulative, cnt->latency_sum_us / 1000000,
        cnt->latency_sum_us % 1000000, cumulative);

    if (daemon) {
        p = ngx_cpymem(p, daemon->data, daemon->len);

        if (daemon->len && daemon->data[daemon->len - 1] != '\n') {
            *p++ = '\n';
        }
    }

    b->last = p;

    return ngx_http_wirehub_send_body(r, NGX_HTTP_OK,
                                      "text/plain; version=0.0.4; "
                                      "charset=utf-8", b);
}
