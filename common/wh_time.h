/*
 * Wall-clock time for message timestamps, shared by both sides.
 */

#ifndef WH_TIME_H
#define WH_TIME_H

#include <stddef.h>
#include <stdint.h>


#define WH_TIME_ISO_LEN  24     /* "2026-11-21T10:00:00.123Z" */
#define WH_MS_PER_S      1000

/* milliseconds since the epoch (CLOCK_REALTIME) */
int64_t wh_time_ms(void);

/* writes the ISO-8601 UTC form of ms and a NUL into out (at least
 * WH_TIME_ISO_LEN + 1 bytes); returns the length, WH_TIME_ISO_LEN */
size_t wh_time_iso(char *out, int64_t ms);

/* parses "2026-12-24T02:00:00Z" (with optional .fff milliseconds) into
 * ms since the epoch; -1 if it is not that form */
int wh_time_parse_iso(const char *s, size_t len, int64_t *ms);

#endif /* WH_TIME_H */
