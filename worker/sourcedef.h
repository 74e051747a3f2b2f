/*
 * What an upstream source is (DESIGN.md "Upstream sources"): its URL,
 * headers, mapping templates and limits, from a `source` line of the
 * configuration or from the JSON of POST /api/sources (also how a
 * run-time source is stored).  Nothing here does I/O but reading a
 * header's file at connect time.
 */

#ifndef WH_SOURCEDEF_H
#define WH_SOURCEDEF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "wh_link.h"
#include "ingest.h"
#include "url.h"


#define WH_SOURCE_ID_MAX        64
#define WH_SOURCE_HEADERS_MAX   16
#define WH_SOURCE_HEADER_MAX    4096    /* bytes of a value, file's too */
#define WH_SOURCE_EVENT_MAX     64      /* bytes of an {event} */

typedef struct {
    char        *name;
    char        *value;         /* the literal part */
    char        *file;          /* "@/path": appended at each connect
                                 * (configuration only); NULL: none */
} wh_source_header_t;

typedef struct {
    char                *id;
    char                *workspace;
    char                *url;
    wh_url_t             parsed;
    wh_source_header_t  *headers;
    unsigned             nheaders;
    char                *subprotocol;   /* NULL: none */
    char                *cafile;        /* NULL: the system's store */
    char                *event_field;
    wh_tpl_t             channel;       /* "{event}" the only reference */
    wh_tpl_t             type;
    wh_tpl_t             mqtt;          /* text NULL: no MQTT publish */
    int64_t              ping_ms;       /* 0: no pings */
    int64_t              reconnect_min_ms;
    int64_t              reconnect_max_ms;
    int64_t              handshake_ms;
    uint64_t             max_message;   /* bytes */
    uint32_t             rate;          /* messages per second */
} wh_source_def_t;


/* the JSON of POST /api/sources (or as stored, or as config.c makes
 * of a `source` line) for workspace ws: {id, url, channel, type,
 * event_field, headers: {name: value}, subprotocol, cafile, mqtt,
 * ping_ms, reconnect_min_ms, reconnect_max_ms, handshake_timeout_ms,
 * max_message, rate}; files 1 (wirehubd.conf's) reads "@/path" in a
 * header value as a file and allows mqtt (else refused); -1 with a
 * message */
int wh_source_def_json(wh_source_def_t *d, wh_str_t ws, json_t *obj,
    int files, char *err, size_t errlen);

/* the definition as JSON: stored (secrets 1: the header values) or
 * for the API (the header names only); NULL out of memory */
json_t *wh_source_def_to_json(const wh_source_def_t *d, int secrets);

void wh_source_def_free(wh_source_def_t *d);

/* the headers as "Name: value\r\n" lines into out, files read now; -1
 * with a message (a file that cannot be read, or a value that holds a
 * line break) */
int wh_source_def_headers(const wh_source_def_t *d, wh_buf_t *out,
    char *err, size_t errlen);

/* 1 if an {event} value may go into a channel name and a type: 1-64
 * bytes of A-Z a-z 0-9 _ - . : but not "." nor ".." */
int wh_source_event_valid(const char *s, size_t len);

#endif /* WH_SOURCEDEF_H */
