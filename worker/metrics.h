/*
 * wirehubd's families for /metrics, in the Prometheus text format: the
 * module's wirehub_metrics location asks for them over the link (a
 * REQUEST GET /metrics, admin role, no workspace) and serves them in
 * the same scrape as its own.  docs/metrics.md lists every family.
 */

#ifndef WH_METRICS_H
#define WH_METRICS_H

#include "wh_link.h"
#include "daemon.h"


/* appends every family to out; -1 out of memory */
int wh_metrics_render(wh_daemon_t *d, wh_buf_t *out);

#endif /* WH_METRICS_H */
