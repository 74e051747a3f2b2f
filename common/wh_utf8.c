
/*
 * Wirehub: incremental UTF-8 validation (RFC 3629), for both sides: the
 * module checks text frames as they arrive, wirehubd names and topics.
 *
 * A deterministic automaton over byte classes: every byte moves the state
 * by one table lookup, so a stream can be cut at any byte and the first
 * invalid byte is found as soon as it arrives.  Between characters, two
 * fast paths skip what is certainly valid: runs of ASCII, the common case
 * of JSON text, eight bytes at a time, and complete multibyte characters
 * whole.
 */


#include <string.h>

#include "wh_utf8.h"


/* states; ACCEPT is zero so that a zeroed validator is at a boundary */
enum {
    UTF8_ACCEPT = 0,
    UTF8_REJECT,
    UTF8_TAIL1,         /* one continuation byte 80..BF to go */
    UTF8_TAIL2,         /* two continuation bytes to go */
    UTF8_TAIL3,         /* three continuation bytes to go (F1..F3) */
    UTF8_E0,            /* after E0: A0..BF, else overlong */
    UTF8_ED,            /* after ED: 80..9F, else a surrogate */
    UTF8_F0,            /* after F0: 90..BF, else overlong */
    UTF8_F4,            /* after F4: 80..8F, else above U+10FFFF */
    UTF8_NSTATES
};


/* byte classes: what a byte may be followed by or may follow */
enum {
    UTF8_C_ASCII = 0,   /* 00..7F */
    UTF8_C_CONT_LOW,    /* 80..8F */
    UTF8_C_CONT_MID,    /* 90..9F */
    UTF8_C_CONT_HIGH,   /* A0..BF */
    UTF8_C_LEAD2,       /* C2..DF */
    UTF8_C_E0,          /* E0 */
    UTF8_C_LEAD3,       /* E1..EC, EE, EF */
    UTF8_C_ED,          /* ED */
    UTF8_C_F0,          /* F0 */
    UTF8_C_LEAD4,       /* F1..F3 */
    UTF8_C_F4,          /* F4 */
    UTF8_C_INVALID,     /* C0, C1, F5..FF: never in UTF-8 */
    UTF8_NCLASSES
};


static const uint8_t  wh_utf8_class[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 10 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 20 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 30 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 40 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 50 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 60 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 70 */
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 80 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 90 */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  /* A0 */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  /* B0 */
    11, 11,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* C0 */
     4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* D0 */
     5,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  7,  6,  6,  /* E0 */
     8,  9,  9,  9, 10, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11,  /* F0 */
};


#define R  UTF8_REJECT

static const uint8_t  wh_utf8_next[UTF8_NSTATES][UTF8_NCLASSES]
    = {
    /*                 ascii  80..8F 90..9F A0..BF  lead2  E0
     *                 lead3  ED     F0     lead4   F4     invalid */

    /* ACCEPT */     { UTF8_ACCEPT, R, R, R, UTF8_TAIL1, UTF8_E0,
                       UTF8_TAIL2, UTF8_ED, UTF8_F0, UTF8_TAIL3, UTF8_F4,
                       R },
    /* REJECT */     { R, R, R, R, R, R, R, R, R, R, R, R },
    /* TAIL1 */      { R, UTF8_ACCEPT, UTF8_ACCEPT, UTF8_ACCEPT,
                       R, R, R, R, R, R, R, R },
    /* TAIL2 */      { R, UTF8_TAIL1, UTF8_TAIL1, UTF8_TAIL1,
                       R, R, R, R, R, R, R, R },
    /* TAIL3 */      { R, UTF8_TAIL2, UTF8_TAIL2, UTF8_TAIL2,
                       R, R, R, R, R, R, R, R },
    /* E0 */         { R, R, R, UTF8_TAIL1,
                       R, R, R, R, R, R, R, R },
    /* ED */         { R, UTF8_TAIL1, UTF8_TAIL1, R,
                       R, R, R, R, R, R, R, R },
    /* F0 */         { R, R, UTF8_TAIL2, UTF8_TAIL2,
                       R, R, R, R, R, R, R, R },
    /* F4 */         { R, UTF8_TAIL2, R, R,
                       R, R, R, R, R, R, R, R },
};

#undef R


#define UTF8_HIGH_BITS  0x8080808080808080ULL


/* skips the leading run of ASCII in p, a word at a time while it can */
static const unsigned char *
wh_utf8_skip_ascii(const unsigned char *p,
    const unsigned char *end)
{
    uint64_t  word;

    while (end - p >= 8) {
        memcpy(&word, p, 8);

        if (word & UTF8_HIGH_BITS) {
            break;
        }

        p += 8;
    }

    while (p < end && *p < 0x80) {
        p++;
    }

    return p;
}


/*
 * Skips the complete, valid characters at the start of p, whole
 * characters at a time, and stops at the first byte it is not sure of: a
 * character cut by the end of p or an invalid one, for the automaton to
 * judge.  On text that is mostly multibyte (Cyrillic, CJK) this runs
 * several times faster than a table lookup per byte.
 */
static const unsigned char *
wh_utf8_skip_valid(const unsigned char *p,
    const unsigned char *end)
{
    size_t    need;
    unsigned  lead, low, high;

    while (p < end) {

        if (*p < 0x80) {
            p = wh_utf8_skip_ascii(p, end);
            continue;
        }

        lead = *p;

        if (lead < 0xc2 || lead > 0xf4) {
            return p;
        }

        /*
         * the range of the second byte is what excludes overlong forms,
         * surrogates and code points above U+10FFFF
         */

        if (lead < 0xe0) {
            need = 2;
            low = 0x80;
            high = 0xbf;

        } else if (lead < 0xf0) {
            need = 3;
            low = (lead == 0xe0) ? 0xa0 : 0x80;
            high = (lead == 0xed) ? 0x9f : 0xbf;

        } else {
            need = 4;
            low = (lead == 0xf0) ? 0x90 : 0x80;
            high = (lead == 0xf4) ? 0x8f : 0xbf;
        }

        if ((size_t) (end - p) < need || p[1] < low || p[1] > high
            || (need > 2 && (p[2] & 0xc0) != 0x80)
            || (need > 3 && (p[3] & 0xc0) != 0x80))
        {
            return p;
        }

        p += need;
    }

    return p;
}


int
wh_utf8_feed(wh_utf8_t *u,
    const unsigned char *p, size_t len)
{
    uint32_t              state;
    const unsigned char  *end;

    state = u->state;
    end = p + len;

    if (state == UTF8_REJECT) {
        return -1;
    }

    while (p < end) {

        if (state == UTF8_ACCEPT) {
            p = wh_utf8_skip_valid(p, end);

            if (p == end) {
                break;
            }
        }

        state = wh_utf8_next[state][wh_utf8_class[*p++]];

        if (state == UTF8_REJECT) {
            u->state = UTF8_REJECT;
            return -1;
        }
    }

    u->state = state;

    return 0;
}


int
wh_utf8_done(const wh_utf8_t *u)
{
    return u->state == UTF8_ACCEPT ? 0 : -1;
}


int
wh_utf8_validate(const unsigned char *p, size_t len)
{
    wh_utf8_t  u;

    u.state = UTF8_ACCEPT;

    if (wh_utf8_feed(&u, p, len) != 0) {
        return -1;
    }

    return wh_utf8_done(&u);
}


int
wh_utf8_valid(const char *s, size_t len)
{
    return wh_utf8_validate((const unsigned char *) s, len) == 0;
}
