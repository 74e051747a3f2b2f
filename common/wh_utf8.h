
/*
 * Wirehub: incremental UTF-8 validation (RFC 3629).
 *
 * Depends on libc only, so that unit tests and fuzzers can use it
 * without nginx.
 */


#ifndef WH_UTF8_H
#define WH_UTF8_H


#include <stddef.h>
#include <stdint.h>


/*
 * The state of a validator; all zeroes is the start of a stream.  A stream
 * may be fed in pieces cut anywhere, even inside a character.
 */
typedef struct {
    uint32_t  state;
} wh_utf8_t;


/*
 * Feeds len bytes; returns 0 while the stream is valid so far and -1 from
 * the first invalid byte on (the failure is sticky).  A character that is
 * merely cut short by the end of p is not an error yet: see _done().
 * Overlong forms, surrogates (U+D800..U+DFFF) and code points above
 * U+10FFFF are invalid.
 */
int wh_utf8_feed(wh_utf8_t *u,
    const unsigned char *p, size_t len);

/* returns 0 if the stream so far ends on a character boundary, else -1 */
int wh_utf8_done(const wh_utf8_t *u);

/* returns 0 if p[0..len) is complete, valid UTF-8, else -1 */
int wh_utf8_validate(const unsigned char *p, size_t len);

/* the same as a truth value: 1 if s[0..len) is valid UTF-8 */
int wh_utf8_valid(const char *s, size_t len);


#endif /* WH_UTF8_H */
