
/*
 * A log-linear histogram in the manner of HdrHistogram: values below 64
 * are exact, above that each power of two is split into 32 buckets, so a
 * percentile is within about 3% of the true value at every scale.
 */


#include "wsl.h"


#define WSL_HIST_LINEAR     64
#define WSL_HIST_SUB_BITS   5
#define WSL_HIST_SUB        (1u << WSL_HIST_SUB_BITS)
#define WSL_HIST_FIRST_EXP  6


static unsigned
wsl_hist_index(uint64_t v)
{
    unsigned  exp, sub, index;

    if (v < WSL_HIST_LINEAR) {
        return (unsigned) v;
    }

    exp = 63 - (unsigned) __builtin_clzll(v);
    sub = (unsigned) (v >> (exp - WSL_HIST_SUB_BITS)) & (WSL_HIST_SUB - 1);
    index = WSL_HIST_LINEAR + (exp - WSL_HIST_FIRST_EXP) * WSL_HIST_SUB + sub;

    return index < WSL_HIST_BUCKETS ? index : WSL_HIST_BUCKETS - 1;
}


/* the middle of a bucket: the value a percentile in it is reported as */
static uint64_t
wsl_hist_value(unsigned index)
{
    unsigned  exp, sub;
    uint64_t  low, width;

    if (index < WSL_HIST_LINEAR) {
        return index;
    }

    exp = (index - WSL_HIST_LINEAR) / WSL_HIST_SUB + WSL_HIST_FIRST_EXP;
    sub = (index - WSL_HIST_LINEAR) % WSL_HIST_SUB;
    width = (uint64_t) 1 << (exp - WSL_HIST_SUB_BITS);
    low = ((uint64_t) 1 << exp) + sub * width;

    return low + width / 2;
}


void
wsl_hist_add(wsl_hist_t *h, uint64_t value)
{
    if (h->count == 0 || value < h->min) {
        h->min = value;
    }

    if (value > h->max) {
        h->max = value;
    }

    h->count++;
    h->sum += value;
    h->buckets[wsl_hist_index(value)]++;
}


void
wsl_hist_merge(wsl_hist_t *into, const wsl_hist_t *from)
{
    unsigned  i;

    if (from->count == 0) {
        return;
    }

    if (into->count == 0 || from->min < into->min) {
        into->min = from->min;
    }

    if (from->max > into->max) {
        into->max = from->max;
    }

    into->count += from->count;
    into->sum += from->sum;

    for (i = 0; i < WSL_HIST_BUCKETS; i++) {
        into->buckets[i] += from->buckets[i];
    }
}


uint64_t
wsl_hist_percentile(const wsl_hist_t *h, double pct)
{
    unsigned  i;
    uint64_t  rank, seen, value;

    if (h->count == 0) {
        return 0;
    }

    rank = (uint64_t) (pct / 100.0 * (double) h->count + 0.5);

    if (rank < 1) {
        rank = 1;
    }

    seen = 0;

    for (i = 0; i < WSL_HIST_BUCKETS; i++) {
        seen += h->buckets[i];

        if (seen >= rank) {
            value = wsl_hist_value(i);
            /* a bucket's middle may lie outside what was seen */
            if (value > h->max) {
                return h->max;
            }
            return value < h->min ? h->min : value;
        }
    }

    return h->max;
}
