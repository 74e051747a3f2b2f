/*
 * Socket activation: the link's listening socket handed over by systemd
 * (wirehubd.socket), or by any manager that speaks the same protocol,
 * read without libsystemd.  The manager binds the socket with its final
 * owner, group and mode before wirehubd starts, so the daemon needs no
 * membership in nginx's group and nginx never races the bind.
 *
 * The protocol (sd_listen_fds(3)): LISTEN_PID names the process the
 * sockets are for, LISTEN_FDS how many there are, from fd 3 on.
 */

#ifndef WH_LISTENFD_H
#define WH_LISTENFD_H

#include <stddef.h>
#include <sys/types.h>

#include "log.h"


#define WH_LISTENFD_FIRST  3

typedef struct {
    int     fd;          /* the inherited socket, non-blocking, CLOEXEC */
    char    path[108];   /* its address; "" for an abstract or unnamed */
    gid_t   gid;         /* the socket file's group; (gid_t) -1 if none */
} wh_listenfd_t;

/* 1: a socket was handed over, *lf describes it, and LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES are removed from the environment (a
 * child must not take them for its own); 0: nothing was handed to this
 * process; -1: something was, but not exactly one listening AF_UNIX
 * stream socket (*err says what) */
int wh_listenfd_take(wh_listenfd_t *lf, wh_err_t *err);

#endif
