/*
 * The Prometheus text exposition format (version 0.0.4), written into a
 * buffer: a family's HELP and TYPE lines, then its samples.  Label
 * values are escaped here, so a caller never has to think about a
 * quote in a name.
 *
 * Every call appends or marks the writer failed (out of memory); the
 * caller checks failed once at the end, as with jsonw.h.
 */

#ifndef WH_PROM_H
#define WH_PROM_H

#include <stdint.h>

#include "wh_link.h"


typedef struct {
    wh_buf_t   *out;
    int         failed;
} wh_prom_t;

/* labels: "name", "value", ..., NULL; or NULL for none */
typedef const char *const  *wh_prom_labels_t;

/* # HELP and # TYPE; type is "counter", "gauge" or "histogram" */
void wh_prom_family(wh_prom_t *p, const char *name, const char *type,
    const char *help);

/* name{labels} v */
void wh_prom_u64(wh_prom_t *p, const char *name, wh_prom_labels_t labels,
    uint64_t v);

/* name{labels} ms as seconds, to the millisecond ("12.345") */
void wh_prom_ms(wh_prom_t *p, const char *name, wh_prom_labels_t labels,
    int64_t ms);

/* a family of one unlabelled sample */
void wh_prom_gauge(wh_prom_t *p, const char *name, const char *help,
    uint64_t v);
void wh_prom_counter(wh_prom_t *p, const char *name, const char *help,
    uint64_t v);

#endif /* WH_PROM_H */
