
/*
 * Wirehub: counters shared by all worker processes, in one shared memory
 * zone updated with atomic adds, so that they are summed over workers by
 * construction and survive reloads.
 */


#ifndef _NGX_HTTP_WIREHUB_COUNTERS_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_COUNTERS_H_INCLUDED_


#include "ngx_http_wirehub.h"


#define NGX_HTTP_WIREHUB_MAX_WORKERS      64
#define NGX_HTTP_WIREHUB_LATENCY_BUCKETS  12


enum {
    NGX_HTTP_WIREHUB_HS_OK = 0,
    NGX_HTTP_WIREHUB_HS_BAD_REQUEST,
    NGX_HTTP_WIREHUB_HS_UNAUTHORIZED,
    NGX_HTTP_WIREHUB_HS_FORBIDDEN,
    NGX_HTTP_WIREHUB_HS_UNAVAILABLE,
    NGX_HTTP_WIREHUB_HS_QUOTA_EXCEEDED,
    NGX_HTTP_WIREHUB_HS_RESULTS
};

enum {
    NGX_HTTP_WIREHUB_CLOSED_CLIENT = 0,
    NGX_HTTP_WIREHUB_CLOSED_PROTOCOL,
    NGX_HTTP_WIREHUB_CLOSED_TOO_BIG,
    NGX_HTTP_WIREHUB_CLOSED_SLOW,
    NGX_HTTP_WIREHUB_CLOSED_EXPIRED,
    NGX_HTTP_WIREHUB_CLOSED_IDLE,
    NGX_HTTP_WIREHUB_CLOSED_SHUTDOWN,
    NGX_HTTP_WIREHUB_CLOSED_REFUSED,
    NGX_HTTP_WIREHUB_CLOSE_REASONS
};

/* what a wirehub_* limit refused: the label of wirehub_limited_total */
enum {
    NGX_HTTP_WIREHUB_LIMIT_MESSAGE_RATE = 0,
    NGX_HTTP_WIREHUB_LIMIT_SUBSCRIPTIONS,
    NGX_HTTP_WIREHUB_LIMIT_WORKSPACE_CONNECTIONS,
    NGX_HTTP_WIREHUB_LIMITS
};


struct ngx_http_wirehub_counters_s {
    ngx_atomic_t                     connections;  /* with SSE streams */
    ngx_atomic_t                     handshakes[NGX_HTTP_WIREHUB_HS_RESULTS];
    ngx_atomic_t                     sse_streams;
    ngx_atomic_t                     sse_handshakes[
                                         NGX_HTTP_WIREHUB_HS_RESULTS];
    ngx_atomic_t                     closes[NGX_HTTP_WIREHUB_CLOSE_REASONS];
    ngx_atomic_t                     delivered;
    ngx_atomic_t                     received;
    ngx_atomic_t                     subscriptions;
    ngx_atomic_t                     link_up;
    ngx_atomic_t                     link_reconnects;
    ngx_atomic_t                     link_refused;
    ngx_atomic_t                     limited[NGX_HTTP_WIREHUB_LIMITS];
    ngx_atomic_t                     rate_closes;
    ngx_atomic_t                     paced;        /* API answers held */
    ngx_atomic_t                     jwt_cached;   /* signatures skipped */
    ngx_atomic_t                     tokens_cached;   /* not verified */
    ngx_atomic_t                     backend_calls;   /* in flight */
    ngx_atomic_t                     backend_ok;
    ngx_atomic_t                     backend_failed;
    ngx_atomic_t                     latency[NGX_HTTP_WIREHUB_LATENCY_BUCKETS
                                             + 1];
    ngx_atomic_t                     latency_sum_us;
    ngx_atomic_t                     worker_pid[NGX_HTTP_WIREHUB_MAX_WORKERS];
    ngx_atomic_t                     worker_connections[
                                         NGX_HTTP_WIREHUB_MAX_WORKERS];
};


extern ngx_uint_t  ngx_http_wirehub_latency_bounds[
                       NGX_HTTP_WIREHUB_LATENCY_BUCKETS];


ngx_int_t ngx_http_wirehub_counters_add_zone(ngx_conf_t *cf,
    ngx_http_wirehub_main_conf_t *wmcf);
void ngx_http_wirehub_observe_latency(ngx_http_wirehub_main_conf_t *wmcf,
    uint64_t published_ms);

#define ngx_http_wirehub_stat(wmcf, field, n)                                 \
    if ((wmcf)->counters) {                                                   \
        (void) ngx_atomic_fetch_add(&(wmcf)->counters->field, (n));           \
    }

/* per worker process: the first NGX_HTTP_WIREHUB_MAX_WORKERS are counted */
#define ngx_http_wirehub_worker_stat(wmcf, field, n)                          \
    if ((wmcf)->counters && ngx_worker < NGX_HTTP_WIREHUB_MAX_WORKERS) {     \
        (void) ngx_atomic_fetch_add(&(wmcf)->counters->field[ngx_worker],     \
                                    (n));                                     \
    }


#endif /* _NGX_HTTP_WIREHUB_COUNTERS_H_INCLUDED_ */
