/*
 * Link server.  Everything is non-blocking; reading takes at most
 * WH_LINK_READ_MAX bytes per peer per turn so that one busy peer
 * cannot starve the others, and all frames read in a turn are handled
 * before the daemon commits them as one group.
 */

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "link.h"


#define WH_LINK_READ_MAX    (1024 * 1024)
#define WH_LINK_READ_CHUNK  (64 * 1024)
#define WH_LINK_EARLY_WRITE (4 * 1024 * 1024)
#define WH_LINK_PAUSE_HIGH  (8 * 1024 * 1024)
#define WH_LINK_PAUSE_LOW   (1024 * 1024)
/* a detached peer's memory outlives any engine call that may name it */
#define WH_LINK_LINGER_MS   30000


static void wh_link_accept(wh_event_t *ev, uint32_t events);
static void wh_link_peer_event(wh_event_t *ev, uint32_t events);
static void wh_link_arm(wh_peer_t *peer);
static void wh_link_hold(wh_peer_t *peer);
static void wh_link_process(wh_peer_t *peer);


/* binds with no permission for anyone but the owner, so that nobody
 * can connect before the socket has its final mode and group */
static int
wh_link_bind(int fd, const struct sockaddr_un *sa, unsigned mode,
    gid_t gid, wh_err_t *err)
{
    int          rc;
    mode_t       old;
    const char  *path = sa->sun_path;

    old = umask(0177);
    rc = bind(fd, (const struct sockaddr *) sa, sizeof(*sa));
    umask(old);

    if (rc == -1) {
        return wh_err(err, 500, "cannot bind \"%s\": %s", path,
                      strerror(errno));
    }

    if (gid != (gid_t) -1 && chown(path, (uid_t) -1, gid) == -1) {
        wh_err(err, 500, "cannot give \"%s\" group %u: %s", path,
               (unsigned) gid, strerror(errno));
        unlink(path);
        return -1;
    }

    if (chmod(path, (mode_t) mode) == -1) {
        wh_err(err, 500, "cannot chmod \"%s\" to %04o: %s", path, mode,
               strerror(errno));
        unlink(path);
        return -1;
    }

    return 0;
}


static int
wh_link_watch(wh_link_t *link, int fd, wh_err_t *err)
{
    link->listen_ev.fd = fd;
    link->listen_ev.handler = wh_link_accept;
    link->listen_ev.data = link;

    if (wh_loop_add(link->loop, &link->listen_ev, EPOLLIN, err) != 0) {
        return -1;
    }

    link->listening = 1;

    return 0;
}


int
wh_link_listen(wh_link_t *link, const char *path, unsigned mode,
    gid_t gid, wh_err_t *err)
{
    int                 fd;
    struct stat         sb;
    struct sockaddr_un  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        return wh_err(err, 500, "socket path \"%s\" is too long", path);
    }

    strcpy(sa.sun_path, path);

    /* a socket left by a previous run; never remove anything else */
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            return wh_err(err, 500, "\"%s\" exists and is not a socket",
                          path);
        }

        if (unlink(path) == -1) {
            return wh_err(err, 500, "cannot remove stale socket \"%s\": "
                          "%s", path, strerror(errno));
        }
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd == -1) {
        return wh_err(err, 500, "socket: %s", strerror(errno));
    }

    if (wh_link_bind(fd, &sa, mode, gid, err) != 0) {
        close(fd);
        return -1;
    }

    if (listen(fd, 128) == -1) {
        wh_err(err, 500, "cannot listen on \"%s\": %s", path,
               strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }

    link->path = strdup(path);

    if (link->path == NULL) {
        close(fd);
        unlink(path);
        return wh_err(err, 500, "out of memory");
    }

    if (wh_link_watch(link, fd, err) != 0) {
        close(fd);
        unlink(path);
        free(link->path);
        link->path = NULL;
        return -1;
    }

    return 0;
}


int
wh_link_adopt(wh_link_t *link, int fd, wh_err_t *err)
{
    /* link->path stays NULL: the socket file is the manager's */
    return wh_link_watch(link, fd, err);
}


/* 1 if a peer of that uid may use the link; a uid refused is logged
 * the first time only, so that a peer retrying cannot fill the log */
static int
wh_link_uid_allowed(wh_link_t *link, uid_t uid, pid_t pid)
{
    unsigned  i;

    for (i = 0; i < link->nuids; i++) {
        if (link->uids[i] == uid) {
            return 1;
        }
    }

    if (wh_map_get(&link->refused, &uid, sizeof(uid)) == NULL) {
        wh_log_warn(link->log, "link: peer refused: uid %d (pid %d) is not "
                    "among the listen peers=; further connections of that "
                    "uid are closed without a line", (int) uid, (int) pid);
        (void) wh_map_put(&link->refused, &uid, sizeof(uid), link);
    }

    return 0;
}


static void
wh_link_peer_add(wh_link_t *link, int fd)
{
    wh_err_t        err;
    wh_peer_t      *peer;
    struct ucred    cred;
    socklen_t       len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        cred.pid = -1;
        cred.uid = (uid_t) -1;
    }

    if (!wh_link_uid_allowed(link, cred.uid, cred.pid)) {
        close(fd);
        return;
    }

    peer = calloc(1, sizeof(wh_peer_t));

    if (peer == NULL) {
        wh_log_error(link->log, "link: out of memory accepting a peer");
        close(fd);
        return;
    }

    peer->pid = cred.pid;
    peer->uid = cred.uid;
    peer->accepted_ms = wh_loop_now();

    peer->link = link;
    peer->serial = ++link->next_serial;
    peer->ev.fd = fd;
    peer->ev.handler = wh_link_peer_event;
    peer->ev.data = peer;

    if (wh_loop_add(link->loop, &peer->ev, EPOLLIN, &err) != 0) {
        wh_log_error(link->log, "link: %s", err.msg);
        close(fd);
        free(peer);
        return;
    }

    peer->armed = EPOLLIN;
    peer->next = link->peers;

    if (link->peers) {
        link->peers->prev = peer;
    }

    link->peers = peer;
    link->npeers++;

    wh_log_info(link->log, "link: peer #%u connected (pid %d, uid %d)",
                peer->serial, (int) peer->pid, (int) peer->uid);
}


static void
wh_link_accept(wh_event_t *ev, uint32_t events)
{
    int         fd, i;
    wh_link_t  *link = ev->data;

    (void) events;

    for (i = 0; i < 64; i++) {
        fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd == -1) {
            if (errno != EAGAIN && errno != EINTR
                && errno != ECONNABORTED)
            {
                wh_log_error(link->log, "link: accept: %s",
                             strerror(errno));
            }

            return;
        }

        wh_link_peer_add(link, fd);
    }
}


void
wh_link_drop(wh_peer_t *peer, const char *why)
{
    if (peer->closing) {
        return;
    }

    peer->closing = 1;
    peer->link->nclosing++;

    wh_log_info(peer->link->log, "link: peer #%u (%s, pid %d) closed: %s",
                peer->serial, peer->name[0] ? peer->name : "-",
                (int) peer->pid, why);
}


static void
wh_link_mark_dirty(wh_peer_t *peer)
{
    if (!peer->dirty) {
        peer->dirty = 1;
        peer->dirty_next = peer->link->dirty;
        peer->link->dirty = peer;
    }
}


static void wh_link_write(wh_peer_t *peer);


static int
wh_link_out_room(wh_peer_t *peer, size_t n)
{
    if (peer->closing) {
        return 0;
    }

    /* a long replay: let the peer drain while more is queued */
    if (peer->out.len - peer->out_pos > WH_LINK_EARLY_WRITE) {
        wh_link_write(peer);

        if (peer->closing) {
            return 0;
        }
    }

    if (peer->out.len - peer->out_pos + n > WH_LINK_OUT_MAX) {
        wh_link_drop(peer, "output bound exceeded (slow peer)");
        return 0;
    }

    /* reclaim what was written before growing the buffer */
    if (peer->out_pos && peer->out.cap - peer->out.len < n) {
        wh_buf_consume(&peer->out, peer->out_pos);
        peer->out_pos = 0;
    }

    return 1;
}


void
wh_link_send(wh_peer_t *peer, const wh_link_msg_t *m)
{
    if (!wh_link_out_room(peer, 1024)) {
        return;
    }

    if (wh_link_encode(&peer->out, m) != 0) {
        wh_log_error(peer->link->log, "link: cannot encode %s for peer "
                     "#%u: %s", wh_link_type_name(m->type), peer->serial,
                     strerror(errno));
        wh_link_drop(peer, "encoding failed");
        return;
    }

    wh_link_mark_dirty(peer);
}


void
wh_link_send_raw(wh_peer_t *peer, const void *frame, size_t len)
{
    if (!wh_link_out_room(peer, len)) {
        return;
    }

    if (wh_buf_append(&peer->out, frame, len) != 0) {
        wh_link_drop(peer, "out of memory");
        return;
    }

    wh_link_mark_dirty(peer);
}


/* splits and dispatches the complete frames read so far */
static void
wh_link_process(wh_peer_t *peer)
{
    int             rc;
    size_t          off = 0, flen;
    const char     *err;
    wh_link_t      *link = peer->link;
    wh_link_msg_t   m;

    while (!peer->closing && !peer->parked) {
        /* before HELLO, no more than a HELLO needs */
        rc = wh_link_frame_len_max(peer->in.data + off, peer->in.len - off,
                                   peer->hello ? WH_LINK_MAX_FRAME
                                               : WH_LINK_HELLO_MAX,
                                   &flen);

        if (rc == 0) {
            break;
        }

        if (rc < 0) {
            wh_link_drop(peer, peer->hello
                               ? "protocol error: invalid frame length"
                               : "protocol error: first frame longer than "
                                 "a HELLO");
            break;
        }

        if (wh_link_decode(peer->in.data + off, flen, &m, &err) != 0) {
            wh_log_warn(link->log, "link: peer #%u: %s (type 0x%02x)",
                        peer->serial, err, peer->in.data[off + 4]);
            wh_link_drop(peer, "protocol error");
            break;
        }

        rc = link->on_frame(peer, &m, link->ctx);

        if (rc == WH_LINK_AGAIN) {
            /* kept in the input buffer, dispatched again by
             * wh_link_wake(); nothing after it runs before it */
            peer->parked = 1;
            link->nparked++;
            break;
        }

        off += flen;

        if (rc != 0) {
            wh_link_drop(peer, "protocol error");
            break;
        }

        /* the rest waits until the peer has read what it was sent */
        if (peer->out.len - peer->out_pos > WH_LINK_PAUSE_HIGH) {
            wh_link_hold(peer);
            break;
        }
    }

    wh_buf_consume(&peer->in, off);
}


static void
wh_link_read(wh_peer_t *peer)
{
    size_t   room, total = 0;
    ssize_t  n;

    while (total < WH_LINK_READ_MAX) {
        if (wh_buf_reserve(&peer->in, WH_LINK_READ_CHUNK) != 0) {
            wh_link_drop(peer, "out of memory");
            return;
        }

        room = peer->in.cap - peer->in.len;
        n = read(peer->ev.fd, peer->in.data + peer->in.len, room);

        if (n > 0) {
            peer->in.len += n;
            total += n;

            /* a short read emptied the socket: the loop is level-
             * triggered and reports what comes later, so no read that
             * would only say EAGAIN */
            if ((size_t) n < room) {
                break;
            }

            continue;
        }

        if (n == 0) {
            wh_link_process(peer);
            wh_link_drop(peer, "peer closed the connection");
            return;
        }

        if (errno == EINTR) {
            continue;
        }

        if (errno == EAGAIN) {
            break;
        }

        wh_link_drop(peer, strerror(errno));
        return;
    }

    wh_link_process(peer);
}


static void
wh_link_write(wh_peer_t *peer)
{
    ssize_t   n;

    while (peer->out_pos < peer->out.len) {
        n = send(peer->ev.fd, peer->out.data + peer->out_pos,
                 peer->out.len - peer->out_pos, MSG_NOSIGNAL);

        if (n > 0) {
            peer->out_pos += n;
            continue;
        }

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == -1 && errno == EAGAIN) {
            break;
        }

        wh_link_drop(peer, n == 0 ? "write returned 0" : strerror(errno));
        return;
    }

    if (peer->out_pos == peer->out.len) {
        peer->out.len = 0;
        peer->out_pos = 0;
    }

    wh_link_arm(peer);
}


/*
 * Flow control: while a peer has more than WH_LINK_PAUSE_HIGH of our
 * output to read, its requests (which could add replays to it) wait, in
 * its input buffer or the socket, until it is down to WH_LINK_PAUSE_LOW;
 * live messages still flow.  EPOLLOUT is armed only while output is
 * pending.
 */

static void
wh_link_hold(wh_peer_t *peer)
{
    if (!peer->paused) {
        peer->paused = 1;
        peer->link->pauses++;
    }
}


static void
wh_link_arm(wh_peer_t *peer)
{
    size_t    pending;
    uint32_t  want;
    wh_err_t  err;

    pending = peer->out.len - peer->out_pos;

    if (pending > WH_LINK_PAUSE_HIGH) {
        wh_link_hold(peer);

    } else if (pending <= WH_LINK_PAUSE_LOW) {
        peer->paused = 0;
    }

    want = (peer->paused || peer->parked ? 0 : EPOLLIN)
           | (pending ? EPOLLOUT : 0);

    if (peer->armed == want) {
        return;
    }

    if (wh_loop_mod(peer->link->loop, &peer->ev, want, &err) != 0) {
        wh_log_error(peer->link->log, "link: %s", err.msg);
        wh_link_drop(peer, "epoll failed");
        return;
    }

    peer->armed = want;
}


static void
wh_link_peer_event(wh_event_t *ev, uint32_t events)
{
    wh_peer_t  *peer = ev->data;

    if (peer->closing) {
        return;
    }

    if (events & EPOLLOUT) {
        wh_link_write(peer);

        /* requests read before the pause, waiting in the input buffer */
        if (!peer->paused && !peer->parked && !peer->closing
            && peer->in.len)
        {
            wh_link_process(peer);
        }
    }

    /* a paused peer is still read when it hangs up or fails */
    if ((events & (EPOLLHUP | EPOLLERR))
        || ((events & EPOLLIN) && !peer->paused && !peer->parked))
    {
        wh_link_read(peer);
    }
}


void
wh_link_wake(wh_link_t *link)
{
    wh_peer_t  *peer, *next;

    if (link->nparked == 0) {
        return;
    }

    link->nparked = 0;

    for (peer = link->peers; peer != NULL; peer = next) {
        next = peer->next;

        if (!peer->parked) {
            continue;
        }

        peer->parked = 0;

        if (!peer->closing) {
            wh_link_process(peer);
            wh_link_arm(peer);
        }
    }
}


int
wh_link_detach(wh_link_t *link)
{
    int         any = 0;
    wh_peer_t  *peer;

    if (link->nclosing == 0) {
        return 0;
    }

    for (peer = link->peers; peer != NULL; peer = peer->next) {
        if (!peer->closing || peer->detached) {
            continue;
        }

        wh_loop_del(link->loop, &peer->ev);
        close(peer->ev.fd);
        peer->ev.fd = -1;
        peer->detached = 1;
        peer->detached_ms = wh_loop_now();
        link->npeers--;
        any = 1;

        link->on_close(peer, link->ctx);
    }

    return any;
}


void
wh_link_flush(wh_link_t *link)
{
    wh_peer_t  *peer, *next;

    for (peer = link->dirty; peer != NULL; peer = next) {
        next = peer->dirty_next;
        peer->dirty = 0;
        peer->dirty_next = NULL;

        if (!peer->closing) {
            wh_link_write(peer);
        }
    }

    link->dirty = NULL;
}


/*
 * Frees the peers detached before the given time.  A detached peer is
 * kept WH_LINK_LINGER_MS first: a cluster engine answers a few loop turns
 * later (each of its calls within its timeout), and the op it answers
 * may name the peer that asked; sending to a detached peer does nothing.
 */
static void
wh_link_free_detached(wh_link_t *link, int64_t before)
{
    wh_peer_t  *peer, *next;

    if (link->nclosing == 0) {
        return;
    }

    for (peer = link->peers; peer != NULL; peer = next) {
        next = peer->next;

        if (!peer->detached || peer->detached_ms > before) {
            continue;
        }

        if (peer->prev) {
            peer->prev->next = peer->next;
        } else {
            link->peers = peer->next;
        }

        if (peer->next) {
            peer->next->prev = peer->prev;
        }

        link->nclosing--;
        wh_buf_free(&peer->in);
        wh_buf_free(&peer->out);
        free(peer);
    }
}


/* once a second at most: the peers are a handful, the turns many */
static void
wh_link_drop_silent(wh_link_t *link, int64_t now)
{
    wh_peer_t  *peer;

    if (now - link->hello_check_ms < 1000) {
        return;
    }

    link->hello_check_ms = now;

    for (peer = link->peers; peer; peer = peer->next) {
        if (!peer->hello && !peer->closing
            && now - peer->accepted_ms >= WH_LINK_HELLO_MS)
        {
            wh_link_drop(peer, "no HELLO within 5 s");
        }
    }
}


void
wh_link_reap(wh_link_t *link)
{
    int64_t  now;

    now = wh_loop_now();

    wh_link_drop_silent(link, now);
    wh_link_free_detached(link, now - WH_LINK_LINGER_MS);
}


/* blocking writes with a deadline, for shutdown only */
static void
wh_link_drain(wh_peer_t *peer, int64_t deadline)
{
    int64_t        left;
    struct pollfd  pfd;

    while (peer->out_pos < peer->out.len && !peer->closing) {
        left = deadline - wh_loop_now();

        if (left <= 0) {
            return;
        }

        pfd.fd = peer->ev.fd;
        pfd.events = POLLOUT;
        pfd.revents = 0;

        if (poll(&pfd, 1, (int) left) <= 0) {
            return;
        }

        wh_link_write(peer);
    }
}


void
wh_link_shutdown(wh_link_t *link, int timeout_ms)
{
    int64_t     deadline;
    wh_peer_t  *peer;

    if (link->listening) {
        wh_loop_del(link->loop, &link->listen_ev);
        close(link->listen_ev.fd);
        link->listening = 0;
    }

    if (link->path != NULL) {
        unlink(link->path);
        free(link->path);
        link->path = NULL;
    }

    wh_map_free(&link->refused);
    deadline = wh_loop_now() + timeout_ms;

    for (peer = link->peers; peer != NULL; peer = peer->next) {
        if (!peer->detached) {
            wh_link_drain(peer, deadline);
        }
    }

    link->dirty = NULL;

    for (peer = link->peers; peer != NULL; peer = peer->next) {
        peer->dirty = 0;
        wh_link_drop(peer, "daemon shutting down");
    }

    wh_link_detach(link);
    wh_link_free_detached(link, INT64_MAX);
}
