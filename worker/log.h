/*
 * wirehubd logging and error reporting.  An error travels up as a
 * wh_err_t (an HTTP-like status and a message) and is logged once, by
 * whoever decides what to do about it.
 */

#ifndef WH_LOG_H
#define WH_LOG_H

#include <stddef.h>


#define WH_LOG_DEBUG  0
#define WH_LOG_INFO   1
#define WH_LOG_WARN   2
#define WH_LOG_ERROR  3

#define WH_LOG_TEXT   0
#define WH_LOG_JSON   1

typedef struct {
    int    fd;          /* 2 for stderr */
    int    level;
    int    format;      /* WH_LOG_TEXT or WH_LOG_JSON */
    int    journal;     /* stderr is journald's stream (JOURNAL_STREAM):
                         * a "<N>" priority instead of our own time */
    char  *path;        /* NULL: stderr */
} wh_log_t;

typedef struct {
    int        status;      /* 400, 503, 507, ... */
    unsigned   retry_s;     /* a rate limit (429): seconds before a
                             * retry can pass (Retry-After); else 0 */
    char       msg[256];
} wh_err_t;


#define WH_PRINTF(f, a)  __attribute__((format(printf, f, a)))

/* sets *e (retry_s 0) and returns -1, so that "return wh_err(...)"
 * reads well */
int wh_err(wh_err_t *e, int status, const char *fmt, ...) WH_PRINTF(3, 4);

/* -1 and *level unchanged if name is not a level */
int wh_log_level(const char *name, int *level);

/* -1 and *format unchanged if name is neither "text" nor "json" */
int wh_log_format(const char *name, int *format);

int wh_log_open(wh_log_t *log, const char *path, int level, int format,
    wh_err_t *err);
/* reopens the file (SIGHUP, after logrotate moved it) */
int wh_log_reopen(wh_log_t *log, wh_err_t *err);
void wh_log_close(wh_log_t *log);

void wh_log(wh_log_t *log, int level, const char *fmt, ...) WH_PRINTF(3, 4);

#define wh_log_debug(log, ...)  wh_log(log, WH_LOG_DEBUG, __VA_ARGS__)
#define wh_log_info(log, ...)   wh_log(log, WH_LOG_INFO, __VA_ARGS__)
#define wh_log_warn(log, ...)   wh_log(log, WH_LOG_WARN, __VA_ARGS__)
#define wh_log_error(log, ...)  wh_log(log, WH_LOG_ERROR, __VA_ARGS__)

#endif /* WH_LOG_H */
