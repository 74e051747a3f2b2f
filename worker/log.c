/*
 * Logging: one line per event, written with a single write(2) so that
 * lines never interleave, prefixed with an ISO time and the level.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wh_time.h"
#include "log.h"


static const char  *wh_log_names[] = { "debug", "info", "warn", "error" };


int
wh_err(wh_err_t *e, int status, const char *fmt, ...)
{
    va_list  ap;

    e->status = status;
    e->retry_s = 0;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);

    return -1;
}


int
wh_log_level(const char *name, int *level)
{
    int  i;

    for (i = 0; i < 4; i++) {
        if (strcmp(name, wh_log_names[i]) == 0) {
            *level = i;
            return 0;
        }
    }

    return -1;
}


static int
wh_log_open_file(const char *path, wh_err_t *err)
{
    int  fd;

    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd == -1) {
        return wh_err(err, 500, "cannot open log file \"%s\": %s", path,
                      strerror(errno));
    }

    return fd;
}


int
wh_log_open(wh_log_t *log, const char *path, int level, wh_err_t *err)
{
    log->fd = STDERR_FILENO;
    log->level = level;
    log->path = NULL;

    if (path == NULL) {
        return 0;
    }

    log->path = strdup(path);

    if (log->path == NULL) {
        return wh_err(err, 500, "out of memory");
    }

    log->fd = wh_log_open_file(path, err);

    if (log->fd == -1) {
        free(log->path);
        log->path = NULL;
        log->fd = STDERR_FILENO;
        return -1;
    }

    return 0;
}


int
wh_log_reopen(wh_log_t *log, wh_err_t *err)
{
    int  fd;

    if (log->path == NULL) {
        return 0;
    }

    fd = wh_log_open_file(log->path, err);

    if (fd == -1) {
        return -1;
    }

    /* keep the descriptor number: nothing else needs to learn of it */
    if (dup2(fd, log->fd) == -1) {
        close(fd);
        return wh_err(err, 500, "dup2 of the log file: %s",
                      strerror(errno));
    }

    close(fd);

    return 0;
}


void
wh_log_close(wh_log_t *log)
{
    if (log->path != NULL) {
        close(log->fd);
        free(log->path);
        log->path = NULL;
    }

    log->fd = STDERR_FILENO;
}


void
wh_log(wh_log_t *log, int level, const char *fmt, ...)
{
    int      n;
    char     line[1024];
    size_t   len;
    va_list  ap;

    if (level < log->level) {
        return;
    }

    len = wh_time_iso(line, wh_time_ms());
    n = snprintf(line + len, sizeof(line) - len, " [%s] %d: ",
                 wh_log_names[level], (int) getpid());
    len += n;

    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    va_end(ap);

    len = n < 0 ? len : len + n;

    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }

    line[len++] = '\n';

    /* a lost log line is not worth failing over */
    n = write(log->fd, line, len);
    (void) n;
}
