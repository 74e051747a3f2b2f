
/*
 * Wirehub: whether text is JSON, without building it.  wirehubd checks
 * every message it stores (an MQTT payload, a publish's data, an upstream
 * event) and keeps the text; a parser's tree was built only to be freed.
 *
 * The answer is jansson's (2.14, JSON_DECODE_ANY | JSON_ALLOW_NUL): any
 * value at the top, UTF-8 throughout, \u0000 in strings but not in keys,
 * surrogates only in pairs, integers within int64, reals that do not
 * overflow a double, at most 2048 levels of values; but a NUL byte after a
 * number or a literal, which jansson skips ("[1\0]"), is refused, as RFC
 * 8259 says.  t/fuzz/fuzz_json_check.c holds the two to these answers.
 * Only libc is used.
 */

#ifndef WH_JSON_CHECK_H
#define WH_JSON_CHECK_H

#include <stddef.h>
#include <string.h>

#include "wh_json.h"


/* jansson's nesting limit: a value inside 2047 others is the deepest */
#define WH_JSON_MAX_DEPTH  2048


/* 1 if text[0..len) is one JSON value (whitespace around it), else 0 */
int wh_json_check(const char *text, size_t len);


/*
 * 1 if jansson, as a client's message is loaded (JSON_REJECT_DUPLICATES,
 * no JSON_ALLOW_NUL), takes text, and the scan is sure of it; 0 when a
 * parser must decide.  Inline: the programs that never call it need not
 * link wh_json.c.
 */
static inline int
wh_json_check_strict(const char *text, size_t len)
{
    size_t  i;

    /* \u0000 anywhere, even after an escaped backslash: a parser decides */
    for (i = 0; i + 6 <= len; i++) {
        if (text[i] == '\\' && memcmp(text + i + 1, "u0000", 5) == 0) {
            return 0;
        }
    }

    return wh_json_check(text, len) && wh_json_unique(text, len) == 1;
}

#endif /* WH_JSON_CHECK_H */
