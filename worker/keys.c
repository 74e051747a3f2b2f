/*
 * The encodings of keys and numbers in stored records (keys.h).
 */

#include <string.h>

#include "keys.h"


void
wh_be64_put(unsigned char *p, uint64_t v)
{
    int  i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char) (v & 0xff);
        v >>= 8;
    }
}


uint64_t
wh_be64_get(const unsigned char *p)
{
    int       i;
    uint64_t  v = 0;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }

    return v;
}


size_t
wh_key_pair(unsigned char *buf, wh_str_t a, wh_str_t b)
{
    memcpy(buf, a.data, a.len);
    buf[a.len] = '\0';
    memcpy(buf + a.len + 1, b.data, b.len);

    return a.len + 1 + b.len;
}


int
wh_key_unpair(const void *key, size_t len, wh_str_t *a, wh_str_t *b)
{
    const char  *nul;

    nul = len ? memchr(key, '\0', len) : NULL;

    if (nul == NULL) {
        return -1;
    }

    a->data = key;
    a->len = nul - a->data;
    b->data = nul + 1;
    b->len = len - a->len - 1;

    return 0;
}


size_t
wh_key_seq(unsigned char *buf, wh_str_t a, wh_str_t b, uint64_t n)
{
    size_t  len;

    len = wh_key_pair(buf, a, b);
    buf[len] = '\0';
    wh_be64_put(buf + len + 1, n);

    return len + 1 + WH_BE64_LEN;
}


size_t
wh_key_idem(unsigned char *buf, wh_str_t ws, wh_str_t client_id,
    wh_str_t idem)
{
    size_t  n;

    n = wh_key_pair(buf, ws, client_id);
    buf[n] = '\0';
    memcpy(buf + n + 1, idem.data, idem.len);

    return n + 1 + idem.len;
}


size_t
wh_key_ws_seq(unsigned char *buf, wh_str_t ws, uint64_t seq)
{
    memcpy(buf, ws.data, ws.len);
    buf[ws.len] = '\0';
    wh_be64_put(buf + ws.len + 1, seq);

    return ws.len + 1 + WH_BE64_LEN;
}


size_t
wh_key_ended(unsigned char *buf, int64_t ended_ms, wh_str_t ws, wh_str_t id)
{
    wh_be64_put(buf, (uint64_t) ended_ms);

    return WH_BE64_LEN + wh_key_pair(buf + WH_BE64_LEN, ws, id);
}
