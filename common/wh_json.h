/*
 * Wirehub: where a member's value lies in JSON text, so that what a client
 * wrote is forwarded byte for byte (a full parser re-serializes: 0.1
 * becomes 0.10000000000000001, and whitespace and escapes change).
 *
 * The text must be valid JSON, as a full parser checked it first; the scan
 * only finds bounds.  Only libc is used: both sides may compile it.
 */

#ifndef WH_JSON_H
#define WH_JSON_H

#include <stddef.h>

#include "wh_link.h"


/* what wh_json_unique() scans: as deep and as wide as a sensor's payload
 * or an API body is */
#define WH_JSON_UNIQUE_DEPTH    8
#define WH_JSON_UNIQUE_MEMBERS  32


/* 1 and *value (the member's bytes) if the object in text has a member
 * named key (an ASCII name, found also when the text escapes it), 0 if
 * it has none or text is not an object */
int wh_json_member(const char *text, size_t len, const char *key,
    wh_str_t *value);

/* iterates the members of an object text (*pos starts at the text, end is
 * its end): 1 with the member's key as written, without its quotes
 * (escapes not decoded), and its value; 0 after the last */
int wh_json_next_member(const char **pos, const char *end, wh_str_t *key,
    wh_str_t *value);

/* 1 if no object in text (valid JSON) has two members of one name, 0 if
 * one has; -1 if the scan cannot tell and a parser must: a key with an
 * escape (it may spell another key), an object in an array or a brace
 * in a string, objects deeper than WH_JSON_UNIQUE_DEPTH or wider than
 * WH_JSON_UNIQUE_MEMBERS */
int wh_json_unique(const char *text, size_t len);

/* s without leading and trailing JSON whitespace */
wh_str_t wh_json_trim(const char *s, size_t len);

/* 1 and *s (its text) if v, a JSON value, is a string written without
 * escapes, else 0 */
int wh_json_plain_string(wh_str_t v, wh_str_t *s);

/* 1 if text, an object of valid JSON whose names are unique, writes no
 * name with an escape: values[i] is then the text of the member named
 * names[i] (len 0: none); 0 if a name is escaped or text is no object
 * with members, and a parser must read it */
int wh_json_members(const char *text, size_t len, const char *const *names,
    wh_str_t *values, size_t n);

#endif /* WH_JSON_H */
