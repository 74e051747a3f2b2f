/*
 * wirehubd -c FILE [-t]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"


static void
wh_usage(void)
{
    fprintf(stderr, "usage: wirehubd -c FILE [-t]\n"
            "  -c FILE  configuration file\n"
            "  -t       check the configuration and exit\n");
}


int
main(int argc, char **argv)
{
    int           opt, test = 0, rc;
    const char   *file = NULL;
    wh_err_t      err;
    wh_daemon_t  *d;

    while ((opt = getopt(argc, argv, "c:th")) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 't':
            test = 1;
            break;
        default:
            wh_usage();
            return opt == 'h' ? 0 : 1;
        }
    }

    if (file == NULL || optind != argc) {
        wh_usage();
        return 1;
    }

    d = calloc(1, sizeof(wh_daemon_t));

    if (d == NULL) {
        fprintf(stderr, "wirehubd: out of memory\n");
        return 1;
    }

    if (wh_config_load(&d->conf, file, &err) != 0) {
        fprintf(stderr, "wirehubd: %s\n", err.msg);
        wh_config_free(&d->conf);
        free(d);
        return 1;
    }

    if (test) {
        fprintf(stderr, "wirehubd: configuration file %s: configuration "
                "ok\n", file);
        wh_config_free(&d->conf);
        free(d);
        return 0;
    }

    if (wh_log_open(&d->log, d->conf.log_path, d->conf.log_level,
                    d->conf.log_format, &err) != 0)
    {
        fprintf(stderr, "wirehubd: %s\n", err.msg);
        wh_config_free(&d->conf);
        free(d);
        return 1;
    }

    if (wh_daemon_start(d, &err) != 0) {
        wh_log_error(&d->log, "%s", err.msg);
        fprintf(stderr, "wirehubd: %s\n", err.msg);
        return 1;
    }

    rc = wh_daemon_run(d);

    wh_log_close(&d->log);
    wh_config_free(&d->conf);
    free(d);

    return rc;
}
