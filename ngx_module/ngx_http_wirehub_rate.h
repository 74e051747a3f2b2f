
/*
 * Wirehub: the token bucket behind wirehub_message_rate.
 *
 * A rate of N messages per period and a burst become whole units: every
 * millisecond adds N units, a message costs the period in milliseconds,
 * and the bucket holds burst messages' worth.  1r/m and 50r/s are exact
 * that way: no rounding lets a client through early or starves it.
 *
 * libc only, so that the unit tests drive it with a clock of their own.
 */


#ifndef _NGX_HTTP_WIREHUB_RATE_H_INCLUDED_
#define _NGX_HTTP_WIREHUB_RATE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* still over the rate this long after the first drop: the client goes */
#define NGX_HTTP_WIREHUB_RATE_CLOSE_AFTER  10000

/* so many bursts dropped in one stretch of limiting: the client goes */
#define NGX_HTTP_WIREHUB_RATE_CLOSE_BURSTS 3

/* the shortest spell without a drop that ends a stretch of limiting */
#define NGX_HTTP_WIREHUB_RATE_QUIET_MIN    1000

/* bounds of N and of the burst: far beyond any use, never an overflow */
#define NGX_HTTP_WIREHUB_RATE_MAX          1000000


typedef struct {
    uint64_t                   per_ms;    /* units a millisecond adds */
    uint64_t                   cost;      /* units a message takes */
    uint64_t                   capacity;  /* units the bucket holds */
    uint64_t                   quiet;     /* ms without a drop: calm again */
    uint64_t                   burst;
} ngx_http_wirehub_rate_t;


/* one connection's bucket; all zero is a bucket not used yet */
typedef struct {
    uint64_t                   level;
    uint64_t                   last;      /* ms the level was brought up to */
    uint64_t                   since;     /* ms of the first drop */
    uint64_t                   last_drop;
    uint64_t                   dropped;   /* in this stretch of limiting */
    unsigned                   started:1;
    unsigned                   limited:1;
} ngx_http_wirehub_bucket_t;


typedef enum {
    NGX_HTTP_WIREHUB_RATE_PASS = 0,
    NGX_HTTP_WIREHUB_RATE_DROP,
    NGX_HTTP_WIREHUB_RATE_CLOSE
} ngx_http_wirehub_rate_rc_e;


/* a rate as configured and not "off": all zero is a rate not configured */
#define ngx_http_wirehub_rate_is_set(rate)  ((rate)->cost != 0)
#define ngx_http_wirehub_rate_is_off(rate)  ((rate)->per_ms == 0)


/*
 * "50r/s", "600r/m" or "0": 0 and *n, *period_ms (1000 or 60000), or -1.
 */
int ngx_http_wirehub_rate_parse(const char *text, size_t len, uint64_t *n,
    uint64_t *period_ms);

/*
 * n messages per period_ms with room for burst at once; burst 0 takes
 * one second's worth of the rate (at least 1); n 0 is "off".  0, or -1
 * when a value is out of bounds.
 */
int ngx_http_wirehub_rate_init(ngx_http_wirehub_rate_t *rate, uint64_t n,
    uint64_t period_ms, uint64_t burst);

/* a message at now_ms (a monotonic clock): pass, drop, or close */
ngx_http_wirehub_rate_rc_e ngx_http_wirehub_rate_take(
    const ngx_http_wirehub_rate_t *rate, ngx_http_wirehub_bucket_t *b,
    uint64_t now_ms);


#endif /* _NGX_HTTP_WIREHUB_RATE_H_INCLUDED_ */
