
/*
 * Sockets and small helpers shared by the client and publisher loops.
 */


#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "wsl.h"
#include "wsl_net.h"


uint64_t
wsl_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


/*
 * A non-blocking connect from `source`.  IP_BIND_ADDRESS_NO_PORT leaves
 * the port to connect(), so each source address has the whole ephemeral
 * range for this server: several sources pass the ~28k ports of one.
 * Returns the socket (connect in progress) or -1 with errno set.
 */
int
wsl_connect(const struct sockaddr_in *server, struct in_addr source)
{
    int                 fd, one, saved;
    struct sockaddr_in  local;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }

    one = 1;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (source.s_addr != server->sin_addr.s_addr) {
        (void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                          sizeof(one));

        memset(&local, 0, sizeof(local));
        local.sin_family = AF_INET;
        local.sin_addr = source;

        if (bind(fd, (struct sockaddr *) &local, sizeof(local)) != 0) {
            goto failed;
        }
    }

    if (connect(fd, (const struct sockaddr *) server, sizeof(*server)) != 0
        && errno != EINPROGRESS)
    {
        goto failed;
    }

    return fd;

failed:

    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}


/* close with RST: no TIME_WAIT left on the client's port */
void
wsl_abort(int fd)
{
    struct linger  lg;

    lg.l_onoff = 1;
    lg.l_linger = 0;
    (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}


int
wsl_connect_result(int fd)
{
    int        err;
    socklen_t  len;

    err = 0;
    len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        return errno;
    }

    return err;
}


/* "{ch}" in `tmpl` replaced by `channel` */
int
wsl_expand(const char *tmpl, const char *channel, char *out, size_t len)
{
    size_t       n, clen;
    const char  *p;

    p = strstr(tmpl, "{ch}");
    if (p == NULL) {
        n = strlen(tmpl);
        if (n >= len) {
            return -1;
        }
        memcpy(out, tmpl, n + 1);
        return 0;
    }

    n = (size_t) (p - tmpl);
    clen = strlen(channel);

    if (n + clen + strlen(p + 4) >= len) {
        return -1;
    }

    memcpy(out, tmpl, n);
    memcpy(out + n, channel, clen);
    strcpy(out + n + clen, p + 4);
    return 0;
}


/* channel number i of the run: "NAME" when there is one, else "NAME-i" */
void
wsl_channel_name(const wsl_conf_t *conf, unsigned i, char *out, size_t len)
{
    if (conf->channels <= 1) {
        (void) snprintf(out, len, "%s", conf->channel);
    } else {
        (void) snprintf(out, len, "%s-%u", conf->channel, i);
    }
}


/* the unsigned decimal after `"key":` (spaces allowed), or -1 */
int
wsl_find_number(const char *data, size_t len, const char *key,
    uint64_t *value)
{
    size_t       klen;
    uint64_t     v;
    const char  *p, *end;

    klen = strlen(key);
    end = data + len;

    p = memmem(data, len, key, klen);
    if (p == NULL) {
        return -1;
    }

    p += klen;

    while (p < end && *p == ' ') {
        p++;
    }

    if (p == end || *p < '0' || *p > '9') {
        return -1;
    }

    v = 0;

    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t) (*p - '0');
        p++;
    }

    *value = v;
    return 0;
}


/* write all of `data` or report how much went out (EAGAIN is not fatal) */
ssize_t
wsl_send(int fd, const void *data, size_t len)
{
    ssize_t  n;

    do {
        n = send(fd, data, len, MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);

    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return 0;
    }

    return n;
}
