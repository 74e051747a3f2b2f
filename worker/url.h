/*
 * WebSocket URLs (RFC 6455 section 3): "ws://host[:port]/path?query"
 * and "wss://...", split into what a connection needs.
 */

#ifndef WH_URL_H
#define WH_URL_H


#define WH_URL_HOST_MAX  255
#define WH_URL_MAX       2048

typedef struct {
    int         tls;                    /* wss:// */
    int         numeric;                /* host is an address literal */
    int         ipv6;                   /* ... an IPv6 one */
    char        host[WH_URL_HOST_MAX + 1];  /* without IPv6 brackets */
    char        port[6];
    unsigned    port_num;
    char       *target;                 /* path and query, malloc'd */
} wh_url_t;


/* -1 and *why (a static string) if url is not a ws:// or wss:// URL
 * without user info and fragment, of printable ASCII; ENOMEM too */
int wh_url_parse(const char *url, wh_url_t *out, const char **why);
void wh_url_free(wh_url_t *u);

#endif /* WH_URL_H */
