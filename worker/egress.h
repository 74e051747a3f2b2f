/*
 * MQTT egress without MQTT: the topic of a client event, rendered from
 * the `egress` template with fields the client cannot choose freely
 * (workspace and client id come from its verified session), and the
 * payload published for it.
 *
 *   egress ws/{workspace}/clients/{client}/events/{type};
 *
 * The payload wraps the client's message with who sent it:
 *   {"type":"<event type>","workspace":"acme","client_id":"pc-7",
 *    "session":"s-91f2","message":<the client's JSON message>,
 *    "timestamp":"2026-11-21T10:00:00.123Z"}
 */

#ifndef WH_EGRESS_H
#define WH_EGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "wh_link.h"
#include "ingest.h"


/* the template's fields, in this order */
#define WH_EGRESS_WORKSPACE  0
#define WH_EGRESS_CLIENT     1
#define WH_EGRESS_TYPE       2
#define WH_EGRESS_NFIELDS    3

/* events published and not yet acknowledged, at most (max_queue=) */
#define WH_EGRESS_MAX_QUEUE  10000

typedef struct {
    wh_tpl_t     topic;         /* text NULL: no egress */
    int          qos;
    unsigned     max_queue;     /* events not yet acknowledged */
} wh_egress_conf_t;


/* parses "egress TEMPLATE [qos=0|1] [max_queue=N]" after its name; -1
 * with a message in err */
int wh_egress_parse(wh_egress_conf_t *e, char *const *args, int nargs,
    char *err, size_t errlen);
void wh_egress_free(wh_egress_conf_t *e);

/* appends the NUL-terminated topic; -1 with *why if a field is empty or
 * holds '+', '#', '/' or NUL, or the topic would be invalid (starts
 * with '$', not UTF-8, too long); -2 on ENOMEM */
int wh_egress_topic(const wh_tpl_t *t, wh_str_t ws, wh_str_t client,
    wh_str_t type, wh_buf_t *out, const char **why);

/* appends the payload; body must be valid JSON; -1 if a field is not
 * UTF-8 or on ENOMEM */
int wh_egress_payload(wh_buf_t *out, wh_str_t type, wh_str_t ws,
    wh_str_t client, wh_str_t session, wh_str_t body, int64_t time_ms);

#endif /* WH_EGRESS_H */
