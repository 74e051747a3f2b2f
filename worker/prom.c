/*
 * The Prometheus text writer (prom.h).
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "prom.h"


static void
wh_prom_put(wh_prom_t *p, const char *s, size_t len)
{
    if (!p->failed && wh_buf_append(p->out, s, len) != 0) {
        p->failed = 1;
    }
}


static void
wh_prom_puts(wh_prom_t *p, const char *s)
{
    wh_prom_put(p, s, strlen(s));
}


/* HELP text escapes backslash and newline; a label value also the
 * double quote */
static void
wh_prom_escaped(wh_prom_t *p, const char *s, int quote)
{
    const char  *run;

    for (run = s; *s != '\0'; s++) {
        if (*s != '\\' && *s != '\n' && !(quote && *s == '"')) {
            continue;
        }

        wh_prom_put(p, run, (size_t) (s - run));
        wh_prom_puts(p, *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : "\\\"");
        run = s + 1;
    }

    wh_prom_put(p, run, (size_t) (s - run));
}


void
wh_prom_family(wh_prom_t *p, const char *name, const char *type,
    const char *help)
{
    wh_prom_puts(p, "# HELP ");
    wh_prom_puts(p, name);
    wh_prom_puts(p, " ");
    wh_prom_escaped(p, help, 0);
    wh_prom_puts(p, "\n# TYPE ");
    wh_prom_puts(p, name);
    wh_prom_puts(p, " ");
    wh_prom_puts(p, type);
    wh_prom_puts(p, "\n");
}


static void
wh_prom_series(wh_prom_t *p, const char *name, wh_prom_labels_t labels)
{
    size_t  i;

    wh_prom_puts(p, name);

    if (labels == NULL || labels[0] == NULL) {
        wh_prom_puts(p, " ");
        return;
    }

    for (i = 0; labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
        wh_prom_puts(p, i == 0 ? "{" : ",");
        wh_prom_puts(p, labels[i]);
        wh_prom_puts(p, "=\"");
        wh_prom_escaped(p, labels[i + 1], 1);
        wh_prom_puts(p, "\"");
    }

    wh_prom_puts(p, "} ");
}


void
wh_prom_u64(wh_prom_t *p, const char *name, wh_prom_labels_t labels,
    uint64_t v)
{
    char  num[24];

    wh_prom_series(p, name, labels);
    snprintf(num, sizeof(num), "%" PRIu64 "\n", v);
    wh_prom_puts(p, num);
}


void
wh_prom_ms(wh_prom_t *p, const char *name, wh_prom_labels_t labels,
    int64_t ms)
{
    char  num[32];

    wh_prom_series(p, name, labels);
    snprintf(num, sizeof(num), "%s%" PRId64 ".%03" PRId64 "\n",
             ms < 0 ? "-" : "", (ms < 0 ? -ms : ms) / 1000,
             (ms < 0 ? -ms : ms) % 1000);
    wh_prom_puts(p, num);
}


void
wh_prom_gauge(wh_prom_t *p, const char *name, const char *help, uint64_t v)
{
    wh_prom_family(p, name, "gauge", help);
    wh_prom_u64(p, name, NULL, v);
}


void
wh_prom_counter(wh_prom_t *p, const char *name, const char *help,
    uint64_t v)
{
    wh_prom_family(p, name, "counter", help);
    wh_prom_u64(p, name, NULL, v);
}
