/*
 * wirehubd's log lines (worker/log.c): the text line, the JSON object
 * per line of format=json (escaped, bytes that are not UTF-8 replaced,
 * the component split off), and the "<N>" priority with no time of our
 * own when stderr is the journal's stream (JOURNAL_STREAM).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "../../worker/log.h"


/* the file's lines, NUL-separated in buf; returns how many */
static int
read_lines(const char *path, char *buf, size_t size, char **lines, int max)
{
    int      n;
    char    *p, *nl;
    FILE    *f;
    size_t   len;

    f = fopen(path, "r");
    assert_non_null(f);
    len = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[len] = '\0';

    n = 0;

    for (p = buf; *p != '\0' && n < max; p = nl + 1) {
        nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = '\0';
        lines[n++] = p;
    }

    return n;
}


static void
temp_path(char *path, size_t size)
{
    int  fd;

    snprintf(path, size, "/tmp/wh-test-log.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}


static void
test_text(void **state)
{
    char       path[64], buf[4096], *lines[4];
    wh_log_t   log;
    wh_err_t   err;

    (void) state;

    temp_path(path, sizeof(path));
    assert_int_equal(wh_log_open(&log, path, WH_LOG_INFO, WH_LOG_TEXT,
                                 &err), 0);
    wh_log_debug(&log, "not written");
    wh_log_warn(&log, "link: peer #%u gone", 3u);
    wh_log_close(&log);

    assert_int_equal(read_lines(path, buf, sizeof(buf), lines, 4), 1);
    /* 2026-12-05T13:37:00.123Z [warn] PID: link: peer #3 gone */
    assert_int_equal(strlen(lines[0]) > 24, 1);
    assert_int_equal(lines[0][10], 'T');
    assert_non_null(strstr(lines[0], "Z [warn] "));
    assert_non_null(strstr(lines[0], ": link: peer #3 gone"));
    unlink(path);
}


static void
test_json(void **state)
{
    char         path[64], buf[8192], *lines[4];
    json_t      *o;
    wh_log_t     log;
    wh_err_t     err;
    const char  *bad = "q\"\\\x01 \xff \xc3\xa9";

    (void) state;

    temp_path(path, sizeof(path));
    assert_int_equal(wh_log_open(&log, path, WH_LOG_DEBUG, WH_LOG_JSON,
                                 &err), 0);
    wh_log_info(&log, "commands: %d open", 7);
    wh_log_error(&log, "signal 15: shutting down");
    wh_log_warn(&log, "mqtt: topic %s", bad);
    wh_log_close(&log);

    assert_int_equal(read_lines(path, buf, sizeof(buf), lines, 4), 3);

    o = json_loads(lines[0], JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 5);
    assert_string_equal(json_string_value(json_object_get(o, "level")),
                        "info");
    assert_string_equal(json_string_value(json_object_get(o, "component")),
                        "commands");
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "7 open");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")),
                     getpid());
    assert_int_equal(strlen(json_string_value(json_object_get(o, "time"))),
                     24);
    json_decref(o);

    /* no "name: " prefix of letters: the whole message, no component */
    o = json_loads(lines[1], 0, NULL);
    assert_non_null(o);
    assert_null(json_object_get(o, "component"));
    assert_string_equal(json_string_value(json_object_get(o, "level")),
                        "error");
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "signal 15: shutting down");
    json_decref(o);

    o = json_loads(lines[2], 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "topic q\"\\\x01 \xef\xbf\xbd \xc3\xa9");
    json_decref(o);

    unlink(path);
}


/* stderr is the stream JOURNAL_STREAM names: "<N>" and no time */
static void
test_journal(void **state)
{
    int          saved, fd;
    char         path[64], env[64], buf[4096], *lines[4];
    json_t      *o;
    wh_log_t     log;
    wh_err_t     err;
    struct stat  st;

    (void) state;

    temp_path(path, sizeof(path));
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    saved = dup(STDERR_FILENO);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);

    /* another stream's numbers (a child's stderr elsewhere): no match */
    snprintf(env, sizeof(env), "%llu:%llu",
             (unsigned long long) st.st_dev,
             (unsigned long long) st.st_ino + 1);
    setenv("JOURNAL_STREAM", env, 1);
    assert_int_equal(wh_log_open(&log, NULL, WH_LOG_INFO, WH_LOG_TEXT,
                                 &err), 0);
    assert_int_equal(log.journal, 0);
    wh_log_close(&log);

    snprintf(env, sizeof(env), "%llu:%llu",
             (unsigned long long) st.st_dev,
             (unsigned long long) st.st_ino);
    setenv("JOURNAL_STREAM", env, 1);

    assert_int_equal(wh_log_open(&log, NULL, WH_LOG_DEBUG, WH_LOG_TEXT,
                                 &err), 0);
    assert_int_equal(log.journal, 1);
    wh_log_info(&log, "link: listening");
    wh_log_error(&log, "storage: full");
    wh_log_debug(&log, "expiry: 0 removed");
    wh_log_close(&log);

    assert_int_equal(wh_log_open(&log, NULL, WH_LOG_INFO, WH_LOG_JSON,
                                 &err), 0);
    wh_log_warn(&log, "mqtt: away");
    wh_log_close(&log);

    dup2(saved, STDERR_FILENO);
    close(saved);
    unsetenv("JOURNAL_STREAM");

    assert_int_equal(read_lines(path, buf, sizeof(buf), lines, 4), 4);
    assert_string_equal(lines[0], "<6>link: listening");
    assert_string_equal(lines[1], "<3>storage: full");
    assert_string_equal(lines[2], "<7>expiry: 0 removed");
    assert_memory_equal(lines[3], "<4>{", 4);
    o = json_loads(lines[3] + 3, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "away");
    json_decref(o);
    unlink(path);
}


static void
test_long_line(void **state)
{
    char       path[64], buf[8192], *lines[4], big[3000];
    json_t    *o;
    wh_log_t   log;
    wh_err_t   err;

    (void) state;

    /* a message past the buffer, all of it escapes: cut, still JSON */
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    temp_path(path, sizeof(path));
    assert_int_equal(wh_log_open(&log, path, WH_LOG_INFO, WH_LOG_JSON,
                                 &err), 0);
    wh_log_info(&log, "x: %s", big);
    wh_log_close(&log);

    assert_int_equal(read_lines(path, buf, sizeof(buf), lines, 4), 1);
    o = json_loads(lines[0], 0, NULL);
    assert_non_null(o);
    assert_true(strlen(json_string_value(json_object_get(o, "msg"))) > 500);
    json_decref(o);
    unlink(path);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_journal),
        cmocka_unit_test(test_long_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
