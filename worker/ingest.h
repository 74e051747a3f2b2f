/*
 * MQTT ingest without MQTT: the `ingest` rules (topic filter ->
 * workspace, channel, type and key templates), topic matching with
 * captures, the JSON `data` built from a payload and the topic, and
 * the per-key rate coalescer.  Nothing here does I/O, so all of it is
 * unit-tested on its own (t/unit/test_ingest.c); mqtt.c drives it.
 */

#ifndef WH_INGEST_H
#define WH_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "wh_link.h"
#include "map.h"


#define WH_INGEST_MAX_CAPTURES  16
#define WH_INGEST_KEY_MAX       256      /* bytes of a rendered key */
#define WH_TOPIC_MAX            65535    /* MQTT's limit */

/* a template: literal text and references, e.g. "sensors/{1}" */
typedef struct {
    int          ref;           /* -1: literal; else a value index */
    wh_str_t     lit;           /* points into the template's text */
} wh_tpl_part_t;

typedef struct {
    char           *text;       /* as written; NULL: no template */
    wh_tpl_part_t  *parts;
    unsigned        nparts;
} wh_tpl_t;

typedef struct {
    char        *filter;        /* MQTT topic filter */
    unsigned     nwild;         /* its wildcards: the captures */
    wh_tpl_t     workspace;
    wh_tpl_t     channel;
    wh_tpl_t     key;           /* text NULL: the channel is the key */
    char        *type;          /* the message type */
    char        *key_field;     /* data member named after the key */
    int64_t      rate_ms;       /* coalescing interval; 0: none */
} wh_ingest_rule_t;

/* a topic routed by a rule: the rendered names point into buf */
typedef struct {
    unsigned     rule;
    wh_str_t     ws, ch, key;
    wh_buf_t     buf;
} wh_ingest_route_t;

typedef enum {
    WH_ROUTE_OK = 0,
    WH_ROUTE_NO_RULE,           /* no filter matches the topic */
    WH_ROUTE_BAD_NAME,          /* rendered an invalid workspace, channel
                                   or key */
    WH_ROUTE_NOMEM
} wh_route_rc_e;


/* parses "{N}" (names == NULL: N from 1 to nrefs) or "{name}" (names
 * has nrefs entries) templates; -1 with a message in err */
int wh_tpl_parse(wh_tpl_t *t, const char *text, const char *const *names,
    unsigned nrefs, char *err, size_t errlen);
void wh_tpl_free(wh_tpl_t *t);
/* appends the template with vals[i] for reference i; -1 on ENOMEM */
int wh_tpl_render(const wh_tpl_t *t, const wh_str_t *vals, wh_buf_t *out);

/* an MQTT subscription filter: '+' and '#' fill whole levels, '#' only
 * last, valid UTF-8 without NUL; the number of wildcards, -1 if not */
int wh_topic_filter_check(const char *filter);

/* matches a topic against a filter the MQTT way ('+' one level, '#'
 * the rest, no wildcard at the first level matches a "$" topic);
 * 1 and the captures (one per wildcard, in order) or 0 */
int wh_topic_match(const char *filter, const char *topic, size_t tlen,
    wh_str_t *caps, unsigned *ncaps);

/* parses the arguments of an `ingest` directive after its name:
 * FILTER workspace=W channel=C type=T [key=K] [key_field=F]
 * [rate=N/s|N/m]; -1 with a message in err */
int wh_ingest_rule_parse(wh_ingest_rule_t *r, char *const *args,
    int nargs, char *err, size_t errlen);
void wh_ingest_rule_free(wh_ingest_rule_t *r);

/* the first rule whose filter matches routes the topic; the caller
 * frees route->buf */
wh_route_rc_e wh_ingest_route(const wh_ingest_rule_t *rules,
    unsigned nrules, const char *topic, size_t tlen,
    wh_ingest_route_t *route);

/* the `data` JSON of a payload: a JSON object gets key_field set to key
 * first (replacing a member of that name: the topic is the authority),
 * any other JSON value becomes {key_field: key, "value": payload};
 * without key_field the payload is kept as is.  Bytes of the payload's
 * values are kept (45.2 stays 45.2).  0, -1 if the payload is not one
 * JSON value (or has duplicate keys), -2 on ENOMEM */
int wh_ingest_data(wh_buf_t *out, const char *payload, size_t len,
    const char *key_field, wh_str_t key);


/*
 * The rate coalescer.  Per (rule, key): the first value of an interval
 * goes out at once and opens a window; later values in the window
 * replace one pending value; when the window ends the pending value
 * goes out (trailing edge) and opens the next window, or, if nothing
 * is pending, the key is forgotten.  Windows of one rule end in the
 * order they opened, so each rule keeps a FIFO and a tick only looks
 * at the windows that are due.
 */

typedef struct wh_rate_item_s  wh_rate_item_t;

typedef struct {
    wh_rate_item_t  *head;
    wh_rate_item_t **tail;
    int64_t          interval;
} wh_rate_fifo_t;

typedef struct {
    wh_map_t         keys;      /* rule (4 bytes) + key -> item */
    wh_rate_fifo_t  *fifos;     /* one per rule */
    unsigned         nrules;
    size_t           max_keys;  /* past it values pass through */
    uint64_t         coalesced; /* values replaced by a later one */
} wh_rate_t;

/* a pending value whose window ended */
typedef void (*wh_rate_emit_pt)(void *ctx, unsigned rule, wh_str_t ws,
    wh_str_t ch, wh_str_t data);

typedef enum {
    WH_RATE_SEND = 0,           /* send the value now */
    WH_RATE_HELD                /* kept as the key's pending value */
} wh_rate_rc_e;


/* intervals[i] is rule i's interval in ms (0: rule not coalesced);
 * -1 on ENOMEM */
int wh_rate_init(wh_rate_t *r, const int64_t *intervals, unsigned nrules,
    size_t max_keys);
void wh_rate_free(wh_rate_t *r);

/* offers a value at time now (ms); a value that cannot be held (no
 * memory, max_keys reached) is WH_RATE_SEND */
wh_rate_rc_e wh_rate_offer(wh_rate_t *r, unsigned rule, wh_str_t key,
    int64_t now, wh_str_t ws, wh_str_t ch, wh_str_t data);

/* emits the pending values of windows that ended by now */
void wh_rate_due(wh_rate_t *r, int64_t now, wh_rate_emit_pt emit,
    void *ctx);

/* emits every pending value (shutdown: the last value goes out) */
void wh_rate_flush(wh_rate_t *r, wh_rate_emit_pt emit, void *ctx);

/* keys with an open window */
size_t wh_rate_active(const wh_rate_t *r);

#endif /* WH_INGEST_H */
