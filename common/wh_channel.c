/*
 * Channel grammar.  Every check works on explicit lengths: the strings
 * come from the network and may hold NUL bytes, which are invalid.
 */

#include <string.h>

#include "wh_channel.h"


static const char  *wh_system_channels[] = {
    "$presence", "$commands", "$stats", "$sources", NULL
};


static int
wh_channel_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'
           || c == ':';
}


int
wh_channel_is_system(const char *s, size_t len)
{
    size_t  i, n;

    for (i = 0; wh_system_channels[i] != NULL; i++) {
        n = strlen(wh_system_channels[i]);

        if (len == n && memcmp(s, wh_system_channels[i], n) == 0) {
            return 1;
        }
    }

    return 0;
}


/* a segment of a name or a pattern; wildcards only when allowed */
static int
wh_segment_valid(const char *s, size_t len, int last, int wildcards)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    if (len == 1 && (s[0] == '+' || s[0] == '#')) {
        return wildcards && (s[0] == '+' || last);
    }

    if ((len == 1 && s[0] == '.')
        || (len == 2 && s[0] == '.' && s[1] == '.'))
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!wh_channel_char((unsigned char) s[i])) {
            return 0;
        }
    }

    return 1;
}


static int
wh_name_valid(const char *s, size_t len, int wildcards)
{
    size_t       seg;
    const char  *end, *slash;

    if (s == NULL || len == 0 || len > WH_CHANNEL_MAX) {
        return 0;
    }

    if (s[0] == '$') {
        return wh_channel_is_system(s, len);
    }

    end = s + len;

    for ( ;; ) {
        slash = memchr(s, '/', end - s);
        seg = (slash ? slash : end) - s;

        if (!wh_segment_valid(s, seg, slash == NULL, wildcards)) {
            return 0;
        }

        if (slash == NULL) {
            return 1;
        }

        s = slash + 1;
    }
}


int
wh_channel_valid(const char *s, size_t len)
{
    return wh_name_valid(s, len, 0);
}


int
wh_pattern_valid(const char *s, size_t len)
{
    return wh_name_valid(s, len, 1);
}


/* the length of the segment starting at s */
static size_t
wh_segment_len(const char *s, const char *end)
{
    const char  *slash;

    slash = memchr(s, '/', end - s);

    return (slash ? slash : end) - s;
}


int
wh_pattern_match(const char *pat, size_t plen, const char *name,
    size_t nlen)
{
    size_t       pseg, nseg;
    const char  *pend, *nend;

    if (!wh_pattern_valid(pat, plen) || !wh_channel_valid(name, nlen)) {
        return 0;
    }

    if (pat[0] == '$' || name[0] == '$') {
        return plen == nlen && memcmp(pat, name, nlen) == 0;
    }

    pend = pat + plen;
    nend = name + nlen;

    for ( ;; ) {
        pseg = wh_segment_len(pat, pend);

        if (pseg == 1 && pat[0] == '#') {
            return 1;
        }

        if (name == NULL) {
            /* the name ended: only "parent/#" may still match */
            return 0;
        }

        nseg = wh_segment_len(name, nend);

        if (!(pseg == 1 && pat[0] == '+')
            && (pseg != nseg || memcmp(pat, name, nseg) != 0))
        {
            return 0;
        }

        pat += pseg;
        name += nseg;

        if (pat == pend) {
            return name == nend;
        }

        pat++;
        name = name == nend ? NULL : name + 1;
    }
}


int
wh_workspace_valid(const char *s, size_t len)
{
    size_t         i;
    unsigned char  c;

    if (s == NULL || len == 0 || len > WH_WORKSPACE_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.'
              || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}
