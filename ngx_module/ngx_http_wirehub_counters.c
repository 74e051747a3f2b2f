
/*
 * Wirehub: counters shared by all worker processes (one shared memory zone,
 * updated with atomic adds, so old and new workers of a reload agree).
 */


#include "ngx_http_wirehub_counters.h"


#define NGX_HTTP_WIREHUB_ZONE_NAME  "wirehub_metrics"
#define NGX_HTTP_WIREHUB_ZONE_SIZE  (64 * 1024)


static ngx_int_t ngx_http_wirehub_counters_init_zone(ngx_shm_zone_t *zone,
    void *data);
static uint64_t ngx_http_wirehub_now_us(void);


/* upper bounds of the latency buckets, in microseconds */
ngx_uint_t  ngx_http_wirehub_latency_bounds[NGX_HTTP_WIREHUB_LATENCY_BUCKETS]
    = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000
};


ngx_int_t
ngx_http_wirehub_counters_add_zone(ngx_conf_t *cf,
    ngx_http_wirehub_main_conf_t *wmcf)
{
    ngx_str_t  name;

    ngx_str_set(&name, NGX_HTTP_WIREHUB_ZONE_NAME);

    wmcf->metrics_zone = ngx_shared_memory_add(cf, &name,
                                               NGX_HTTP_WIREHUB_ZONE_SIZE,
                                               &ngx_http_wirehub_module);
    if (wmcf->metrics_zone == NULL) {
        return NGX_ERROR;
    }

    wmcf->metrics_zone->init = ngx_http_wirehub_counters_init_zone;
    wmcf->metrics_zone->data = wmcf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_wirehub_counters_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t               *shpool;
    ngx_http_wirehub_main_conf_t  *wmcf, *old;

    wmcf = zone->data;

    if (data) {
        /* a reload: counters keep counting, as Prometheus expects */
        old = data;
        wmcf->counters = old->counters;
        zone->data = wmcf;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    wmcf->counters = ngx_slab_calloc(shpool,
                                     sizeof(ngx_http_wirehub_counters_t));
    if (wmcf->counters == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_wirehub_observe_latency(ngx_http_wirehub_main_conf_t *wmcf,
    uint64_t published_ms)
{
    int64_t                       us;
    ngx_uint_t                    i, n;
    ngx_http_wirehub_counters_t  *cnt;

    cnt = wmcf->counters;

    if (cnt == NULL || published_ms == 0) {
        return;
    }

    us = (int64_t) (ngx_http_wirehub_now_us() - published_ms * 1000);

    if (us < 0) {
        us = 0;
    }

    n = NGX_HTTP_WIREHUB_LATENCY_BUCKETS;

    for (i = 0; i < n; i++) {
        if ((ngx_uint_t) us <= ngx_http_wirehub_latency_bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&cnt->latency[i], 1);
    (void) ngx_atomic_fetch_add(&cnt->latency_sum_us, us);
}


static uint64_t
ngx_http_wirehub_now_us(void)
{
    struct timeval  tv;

    ngx_gettimeofday(&tv);

    return (uint64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}
