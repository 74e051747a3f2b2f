/*
 * Socket activation without libsystemd: see listenfd.h.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listenfd.h"


/* the environment variable as a positive number, else -1 */
static long
wh_listenfd_env(const char *name)
{
    char        *end;
    long         v;
    const char  *s = getenv(name);

    if (s == NULL || *s == '\0') {
        return -1;
    }

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || *end != '\0' || v <= 0) {
        return -1;
    }

    return v;
}


static int
wh_listenfd_sockopt(int fd, int opt, int *value)
{
    socklen_t  len = sizeof(*value);

    return getsockopt(fd, SOL_SOCKET, opt, value, &len);
}


/* a listening AF_UNIX stream socket, or a message saying what it is */
static int
wh_listenfd_check(int fd, wh_err_t *err)
{
    int          domain, type, accepting;
    struct stat  sb;

    if (fstat(fd, &sb) == -1) {
        return wh_err(err, 500, "inherited fd %d: %s", fd, strerror(errno));
    }

    if (!S_ISSOCK(sb.st_mode)) {
        return wh_err(err, 500, "inherited fd %d is not a socket", fd);
    }

    if (wh_listenfd_sockopt(fd, SO_DOMAIN, &domain) == -1
        || wh_listenfd_sockopt(fd, SO_TYPE, &type) == -1
        || wh_listenfd_sockopt(fd, SO_ACCEPTCONN, &accepting) == -1)
    {
        return wh_err(err, 500, "inherited fd %d: getsockopt: %s", fd,
                      strerror(errno));
    }

    if (domain != AF_UNIX || type != SOCK_STREAM) {
        return wh_err(err, 500, "inherited fd %d is not a Unix stream "
                      "socket (ListenStream= a path in the .socket unit)",
                      fd);
    }

    if (!accepting) {
        return wh_err(err, 500, "inherited fd %d is not listening", fd);
    }

    return 0;
}


/* the path it is bound to and that file's group, for the log and for
 * the default peers (the users of the socket's group) */
static void
wh_listenfd_describe(wh_listenfd_t *lf)
{
    struct stat         sb;
    struct sockaddr_un  sa;
    socklen_t           len = sizeof(sa);

    lf->path[0] = '\0';
    lf->gid = (gid_t) -1;
    memset(&sa, 0, sizeof(sa));

    if (getsockname(lf->fd, (struct sockaddr *) &sa, &len) == -1
        || len <= offsetof(struct sockaddr_un, sun_path)
        || sa.sun_path[0] == '\0')
    {
        return;
    }

    memcpy(lf->path, sa.sun_path, sizeof(lf->path) - 1);
    lf->path[sizeof(lf->path) - 1] = '\0';

    if (stat(lf->path, &sb) == 0) {
        lf->gid = sb.st_gid;
    }
}


int
wh_listenfd_take(wh_listenfd_t *lf, wh_err_t *err)
{
    int   flags;
    long  pid, n;

    pid = wh_listenfd_env("LISTEN_PID");
    n = wh_listenfd_env("LISTEN_FDS");

    /* meant for another process (a parent that did not clean up) */
    if (pid == -1 || n == -1 || (pid_t) pid != getpid()) {
        return 0;
    }

    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");

    if (n != 1) {
        return wh_err(err, 500, "LISTEN_FDS=%ld: wirehubd takes exactly "
                      "one socket (one ListenStream= in the .socket unit)",
                      n);
    }

    lf->fd = WH_LISTENFD_FIRST;

    if (wh_listenfd_check(lf->fd, err) != 0) {
        return -1;
    }

    flags = fcntl(lf->fd, F_GETFL);

    if (flags == -1
        || fcntl(lf->fd, F_SETFL, flags | O_NONBLOCK) == -1
        || fcntl(lf->fd, F_SETFD, FD_CLOEXEC) == -1)
    {
        return wh_err(err, 500, "inherited fd %d: fcntl: %s", lf->fd,
                      strerror(errno));
    }

    wh_listenfd_describe(lf);

    return 1;
}
