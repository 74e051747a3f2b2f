/*
 * An outbound WebSocket connection (RFC 6455, client side) driven from
 * wirehubd's epoll loop: name resolution on resolve.h's threads, a
 * non-blocking connect, TLS with OpenSSL (SNI, the certificate checked
 * against the system store or a cafile, the host name verified), the
 * HTTP upgrade, then common/wh_frame.c's parser for what the server
 * sends and masked frames for what it is sent (pongs, pings, close).
 *
 * Nothing here decides what a message means or when to reconnect: the
 * owner gets text messages and the end of the connection through a
 * table of handlers and keeps its own policy (sources.c).
 */

#ifndef WH_WSCLIENT_H
#define WH_WSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "log.h"
#include "loop.h"
#include "resolve.h"
#include "url.h"


#define WH_WSC_REASON_MAX  160

typedef struct wh_wsc_s  wh_wsc_t;

typedef struct {
    /* the upgrade was answered 101 and checked */
    void  (*open)(void *ctx);
    /* a complete text message (valid UTF-8, not NUL-terminated) */
    void  (*message)(void *ctx, const char *text, size_t len);
    /* a complete binary message, of len bytes (not kept) */
    void  (*binary)(void *ctx, size_t len);
    /* the connection ended, before or after open; code is the close
     * code sent for a protocol error of the server (1002, 1007, 1009:
     * a message past max_message), else 0; the connection is freed
     * when this returns */
    void  (*closed)(void *ctx, unsigned code, const char *reason);
} wh_wsc_handlers_t;

typedef struct {
    const wh_url_t      *url;
    SSL_CTX             *tls;           /* for wss:// */
    const char          *subprotocol;   /* NULL: none asked for */
    const char          *headers;       /* "Name: value\r\n"..., or NULL */
    uint64_t             max_message;   /* larger ones close with 1009 */
    int64_t              handshake_ms;  /* resolve to 101, at most */
    int64_t              ping_ms;       /* 0: no pings */
} wh_wsc_conf_t;


/* a client TLS context: peer verification against cafile, or the
 * system's store when NULL; TLS 1.2 at least */
SSL_CTX *wh_wsc_tls_ctx(const char *cafile, wh_err_t *err);

/* starts connecting (conf is copied); NULL with err if nothing could
 * start, else every outcome comes through the handlers, never from
 * this call */
wh_wsc_t *wh_wsc_open(wh_loop_t *loop, wh_resolver_t *resolver,
    const wh_wsc_conf_t *conf, const wh_wsc_handlers_t *h, void *ctx,
    wh_err_t *err);

/* timeouts and pings, from the owner's periodic timer; may end the
 * connection (through closed) */
void wh_wsc_tick(wh_wsc_t *c, int64_t now);

/* stops (1) or resumes (0) reading: the owner's flow control, TCP
 * pushes back on the server meanwhile.  From the message handler it
 * takes effect at once: the rest of what was read waits, and is
 * handled by wh_wsc_tick() after the owner resumes */
void wh_wsc_pause(wh_wsc_t *c, int paused);

/* sends a close frame if it can without waiting and frees the
 * connection; closed is not called */
void wh_wsc_close(wh_wsc_t *c, unsigned code, const char *reason);

#endif /* WH_WSCLIENT_H */
