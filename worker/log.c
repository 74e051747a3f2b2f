/*
 * Logging: one line per event, written with a single write(2) so that
 * lines never interleave.
 *
 * Text lines start with an ISO time, the level and the pid.  Under
 * journald (stderr is the stream that JOURNAL_STREAM names, see
 * systemd.exec(5)) the journal records time and pid itself, so a line
 * starts with a "<N>" syslog priority instead, which journald turns into
 * the entry's PRIORITY.  JSON lines are one object each (time, level,
 * pid, component: the "name: " a message starts with, msg), for log
 * shippers; under journald they get the "<N>" too, which journald strips.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wh_time.h"
#include "wh_utf8.h"
#include "log.h"


#define WH_LOG_LINE  2048


static const char  *wh_log_names[] = { "debug", "info", "warn", "error" };

/* sd-daemon.h's SD_DEBUG, SD_INFO, SD_WARNING, SD_ERR */
static const char  *wh_log_prio[] = { "<7>", "<6>", "<4>", "<3>" };


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


int
wh_log_format(const char *name, int *format)
{
    if (strcmp(name, "text") == 0) {
        *format = WH_LOG_TEXT;
        return 0;
    }

    if (strcmp(name, "json") == 0) {
        *format = WH_LOG_JSON;
        return 0;
    }

    return -1;
}


/* JOURNAL_STREAM is "device:inode" of the stream systemd connected to
 * stdout/stderr; it is inherited by children that write elsewhere, so
 * only a match with fd itself counts */
static int
wh_log_is_journal(int fd)
{
    char                end;
    const char         *env;
    struct stat         st;
    unsigned long long  dev, ino;

    env = getenv("JOURNAL_STREAM");

    if (env == NULL
        || sscanf(env, "%llu:%llu%c", &dev, &ino, &end) != 2
        || fstat(fd, &st) != 0)
    {
        return 0;
    }

    return (unsigned long long) st.st_dev == dev
           && (unsigned long long) st.st_ino == ino;
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
wh_log_open(wh_log_t *log, const char *path, int level, int format,
    wh_err_t *err)
{
    log->fd = STDERR_FILENO;
    log->level = level;
    log->format = format;
    log->journal = 0;
    log->path = NULL;

    if (path == NULL) {
        log->journal = wh_log_is_journal(STDERR_FILENO);
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


/*
 * Appends s[0..len) to out[*pos..size) as the inside of a JSON string,
 * whole escapes only; bytes that are not UTF-8 become U+FFFD.  Stops
 * early when the line is full.
 */
static void
wh_log_json_str(char *out, size_t *pos, size_t size, const char *s,
    size_t len)
{
    size_t          i, n, need;
    char            esc[8];
    const char     *src;
    unsigned char   c;

    for (i = 0; i < len; i += n) {
        c = (unsigned char) s[i];
        n = 1;
        src = esc;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            need = 2;

        } else if (c < 0x20) {
            need = (size_t) snprintf(esc, sizeof(esc), "\\u%04x", c);

        } else if (c < 0x80) {
            src = s + i;
            need = 1;

        } else {
            n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

            if (i + n <= len && wh_utf8_valid(s + i, n)) {
                src = s + i;
                need = n;

            } else {
                n = 1;
                src = "\\ufffd";
                need = 6;
            }
        }

        if (*pos + need > size) {
            return;
        }

        memcpy(out + *pos, src, need);
        *pos += need;
    }
}


/* "name: " at the start of a message: letters, spaces, "_" and "-" */
static size_t
wh_log_component(const char *msg, size_t len)
{
    size_t  i;

    for (i = 0; i < len && i < 32; i++) {
        if (msg[i] == ':') {
            return (i > 0 && i + 1 < len && msg[i + 1] == ' ') ? i : 0;
        }

        if (!((msg[i] >= 'a' && msg[i] <= 'z')
              || (msg[i] >= 'A' && msg[i] <= 'Z')
              || msg[i] == ' ' || msg[i] == '_' || msg[i] == '-'))
        {
            return 0;
        }
    }

    return 0;
}


static size_t
wh_log_json(wh_log_t *log, int level, char *line, const char *msg,
    size_t len)
{
    int     n;
    char    t[40];
    size_t  pos, comp, size;

    /* room for the closing "}\n" */
    size = WH_LOG_LINE - 3;
    pos = 0;

    if (log->journal) {
        memcpy(line, wh_log_prio[level], 3);
        pos = 3;
    }

    t[wh_time_iso(t, wh_time_ms())] = '\0';
    n = snprintf(line + pos, size - pos,
                 "{\"time\":\"%s\",\"level\":\"%s\",\"pid\":%d,", t,
                 wh_log_names[level], (int) getpid());
    pos += n;

    comp = wh_log_component(msg, len);

    if (comp > 0) {
        memcpy(line + pos, "\"component\":\"", 13);
        pos += 13;
        wh_log_json_str(line, &pos, size - 2, msg, comp);
        memcpy(line + pos, "\",", 2);
        pos += 2;
        msg += comp + 2;
        len -= comp + 2;
    }

    memcpy(line + pos, "\"msg\":\"", 7);
    pos += 7;
    wh_log_json_str(line, &pos, size - 1, msg, len);
    line[pos++] = '"';
    line[pos++] = '}';
    line[pos++] = '\n';

    return pos;
}


void
wh_log(wh_log_t *log, int level, const char *fmt, ...)
{
    int      n;
    char     msg[1024], line[WH_LOG_LINE];
    size_t   len, mlen;
    va_list  ap;

    if (level < log->level) {
        return;
    }

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    mlen = n < 0 ? 0 : (size_t) n < sizeof(msg) ? (size_t) n
                                                  : sizeof(msg) - 1;

    if (log->format == WH_LOG_JSON) {
        len = wh_log_json(log, level, line, msg, mlen);

    } else {
        if (log->journal) {
            memcpy(line, wh_log_prio[level], 3);
            len = 3;

        } else {
            len = wh_time_iso(line, wh_time_ms());
            len += snprintf(line + len, sizeof(line) - len, " [%s] %d: ",
                            wh_log_names[level], (int) getpid());
        }

        memcpy(line + len, msg, mlen);
        len += mlen;
        line[len++] = '\n';
    }

    /* a lost log line is not worth failing over */
    n = write(log->fd, line, len);
    (void) n;
}
