
/*
 * Wirehub: the token bucket behind wirehub_message_rate (see the header
 * for the units).  A connection starts with a full bucket.  A message that
 * finds a message's worth passes; one that does not is dropped.  A stretch
 * of limiting starts at a drop and lasts until the client has gone a quiet
 * spell without one (a second, or the time the bucket takes to fill, if
 * longer): a client still dropping 10 s into it, or with 3 bursts dropped
 * in it, is closed.
 */


#include "ngx_http_wirehub_rate.h"


static uint64_t ngx_http_wirehub_rate_since(uint64_t now, uint64_t then);


int
ngx_http_wirehub_rate_parse(const char *text, size_t len, uint64_t *n,
    uint64_t *period_ms)
{
    size_t    i;
    uint64_t  value;

    *period_ms = 1000;

    if (len == 1 && text[0] == '0') {
        *n = 0;
        return 0;
    }

    if (len < 4 || text[len - 3] != 'r' || text[len - 2] != '/') {
        return -1;
    }

    switch (text[len - 1]) {
    case 's':
        *period_ms = 1000;
        break;
    case 'm':
        *period_ms = 60000;
        break;
    default:
        return -1;
    }

    value = 0;

    for (i = 0; i < len - 3; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }

        value = value * 10 + (uint64_t) (text[i] - '0');

        if (value > NGX_HTTP_WIREHUB_RATE_MAX) {
            return -1;
        }
    }

    *n = value;

    return 0;
}


int
ngx_http_wirehub_rate_init(ngx_http_wirehub_rate_t *rate, uint64_t n,
    uint64_t period_ms, uint64_t burst)
{
    uint64_t  fill;

    if (n > NGX_HTTP_WIREHUB_RATE_MAX || burst > NGX_HTTP_WIREHUB_RATE_MAX
        || (period_ms != 1000 && period_ms != 60000))
    {
        return -1;
    }

    /* "off" is still a configured rate, so a level below may not inherit */

    if (n == 0) {
        rate->per_ms = 0;
        rate->cost = 1;
        rate->capacity = 0;
        rate->quiet = 0;
        rate->burst = 0;
        return 0;
    }

    if (burst == 0) {
        burst = n * 1000 / period_ms;
        if (burst == 0) {
            burst = 1;
        }
    }

    rate->per_ms = n;
    rate->cost = period_ms;
    rate->capacity = burst * period_ms;
    rate->burst = burst;

    fill = (rate->capacity + n - 1) / n;

    rate->quiet = (fill > NGX_HTTP_WIREHUB_RATE_QUIET_MIN)
                  ? fill : NGX_HTTP_WIREHUB_RATE_QUIET_MIN;

    return 0;
}


ngx_http_wirehub_rate_rc_e
ngx_http_wirehub_rate_take(const ngx_http_wirehub_rate_t *rate,
    ngx_http_wirehub_bucket_t *b, uint64_t now_ms)
{
    uint64_t  elapsed, room;

    if (rate->per_ms == 0) {
        return NGX_HTTP_WIREHUB_RATE_PASS;
    }

    if (!b->started) {
        b->started = 1;
        b->level = rate->capacity;
        b->last = now_ms;
    }

    /* elapsed * per_ms is computed only when it fits in the room left */

    elapsed = ngx_http_wirehub_rate_since(now_ms, b->last);
    room = rate->capacity - b->level;

    if (elapsed > room / rate->per_ms) {
        b->level = rate->capacity;

    } else {
        b->level += elapsed * rate->per_ms;
    }

    if (now_ms > b->last) {
        b->last = now_ms;
    }

    if (b->limited
        && ngx_http_wirehub_rate_since(now_ms, b->last_drop) >= rate->quiet)
    {
        b->limited = 0;
        b->dropped = 0;
    }

    /*
     * A message that passes does not end the stretch: a client sending
     * twenty times the rate gets one in twenty through and is still a
     * flood.
     */

    if (b->level >= rate->cost) {
        b->level -= rate->cost;
        return NGX_HTTP_WIREHUB_RATE_PASS;
    }

    if (!b->limited) {
        b->limited = 1;
        b->since = now_ms;
    }

    b->last_drop = now_ms;
    b->dropped++;

    if (ngx_http_wirehub_rate_since(now_ms, b->since)
            >= NGX_HTTP_WIREHUB_RATE_CLOSE_AFTER
        || b->dropped >= NGX_HTTP_WIREHUB_RATE_CLOSE_BURSTS * rate->burst)
    {
        return NGX_HTTP_WIREHUB_RATE_CLOSE;
    }

    return NGX_HTTP_WIREHUB_RATE_DROP;
}


/* ms from then to now; 0 should the clock ever be seen to step back */

static uint64_t
ngx_http_wirehub_rate_since(uint64_t now, uint64_t then)
{
    return (now > then) ? now - then : 0;
}
