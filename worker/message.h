/*
 * The client-facing JSON of channel messages and small JSON helpers.
 * A message text is built once, stored in history and sent as is:
 *
 * {"type":"<type>","channel":"<ch>","id":N,"epoch":"<e>",
 *  "data":<data JSON>,"timestamp":"2026-11-21T10:00:00.123Z"}
 */

#ifndef WH_MESSAGE_H
#define WH_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "wh_json.h"
#include "wh_utf8.h"
#include "wh_link.h"


#define WH_TYPE_MAX     128     /* bytes of a message type */

/* 1 for a byte a JSON string holds as it is and that needs no UTF-8
 * check (printable ASCII but '"' and '\\'), 0 for any other (NUL too) */
extern const unsigned char  wh_json_plain[256];

/* appends the JSON string of s (quotes included); -1 if s is not
 * valid UTF-8 or on ENOMEM */
int wh_json_quote(wh_buf_t *out, const char *s, size_t len);

/* appends {"error":{"code":"..","message":".."}} */
int wh_json_error(wh_buf_t *out, const char *code, const char *message);

/* appends the message text; type and channel must be valid (type
 * empty means "message"), data a valid JSON text */
int wh_message_build(wh_buf_t *out, wh_str_t type, wh_str_t channel,
    uint64_t id, const char *epoch, wh_str_t data, int64_t time_ms);

/* 1 if type is acceptable as a message type: 1-128 bytes of valid
 * UTF-8 without control characters */
int wh_message_type_valid(const char *s, size_t len);

#endif /* WH_MESSAGE_H */
