/*
 * WebSocket URL parsing (url.h).  The host is kept as written (the name
 * that SNI and the certificate check use), lower-cased.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"


static int
wh_url_host_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_';
}


static int
wh_url_port(const char *p, size_t n, wh_url_t *out)
{
    size_t    i;
    unsigned  v = 0;

    if (n == 0 || n > 5) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char) p[i])) {
            return -1;
        }

        v = v * 10 + (unsigned) (p[i] - '0');
    }

    if (v == 0 || v > 65535) {
        return -1;
    }

    out->port_num = v;
    memcpy(out->port, p, n);
    out->port[n] = '\0';

    return 0;
}


/* host[:port] or [v6][:port], n bytes at p */
static int
wh_url_authority(const char *p, size_t n, wh_url_t *out, const char **why)
{
    size_t          i, hlen;
    const char     *colon, *host = p;
    unsigned char   addr[16];

    if (n && p[0] == '[') {
        colon = memchr(p, ']', n);

        if (colon == NULL) {
            *why = "unterminated IPv6 address";
            return -1;
        }

        host = p + 1;
        hlen = colon - host;
        colon = colon + 1 < p + n ? colon + 1 : NULL;

        if (colon && *colon != ':') {
            *why = "junk after the IPv6 address";
            return -1;
        }

        out->ipv6 = 1;

    } else {
        colon = memchr(p, ':', n);
        hlen = colon ? (size_t) (colon - p) : n;
    }

    if (hlen == 0 || hlen > WH_URL_HOST_MAX) {
        *why = "no host, or a host name too long";
        return -1;
    }

    for (i = 0; i < hlen; i++) {
        if (!out->ipv6 && !wh_url_host_char((unsigned char) host[i])) {
            *why = "invalid character in the host";
            return -1;
        }

        out->host[i] = (char) tolower((unsigned char) host[i]);
    }

    out->host[hlen] = '\0';

    if (out->ipv6) {
        if (inet_pton(AF_INET6, out->host, addr) != 1) {
            *why = "invalid IPv6 address";
            return -1;
        }

        out->numeric = 1;

    } else {
        out->numeric = inet_pton(AF_INET, out->host, addr) == 1;
    }

    if (colon) {
        if (wh_url_port(colon + 1, p + n - colon - 1, out) != 0) {
            *why = "invalid port";
            return -1;
        }

    } else {
        strcpy(out->port, out->tls ? "443" : "80");
        out->port_num = out->tls ? 443 : 80;
    }

    return 0;
}


int
wh_url_parse(const char *url, wh_url_t *out, const char **why)
{
    size_t       i, n;
    const char  *p, *slash;

    memset(out, 0, sizeof(wh_url_t));
    n = strlen(url);

    if (n > WH_URL_MAX) {
        *why = "URL too long";
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (url[i] <= 0x20 || url[i] >= 0x7f) {
            *why = "the URL must be printable ASCII without spaces";
            return -1;
        }
    }

    if (strncasecmp(url, "ws://", 5) == 0) {
        p = url + 5;

    } else if (strncasecmp(url, "wss://", 6) == 0) {
        p = url + 6;
        out->tls = 1;

    } else {
        *why = "the URL must start with ws:// or wss://";
        return -1;
    }

    if (strchr(url, '#') != NULL) {
        *why = "a WebSocket URL has no fragment";
        return -1;
    }

    slash = p + strcspn(p, "/?");

    if (memchr(p, '@', slash - p) != NULL) {
        *why = "user info in the URL: use a header";
        return -1;
    }

    if (wh_url_authority(p, slash - p, out, why) != 0) {
        return -1;
    }

    n = strlen(slash);
    out->target = malloc(n + 2);

    if (out->target == NULL) {
        *why = "out of memory";
        return -1;
    }

    /* "ws://h?x" asks for "/?x" */
    i = 0;

    if (*slash != '/') {
        out->target[i++] = '/';
    }

    memcpy(out->target + i, slash, n + 1);

    return 0;
}


void
wh_url_free(wh_url_t *u)
{
    free(u->target);
    u->target = NULL;
}
