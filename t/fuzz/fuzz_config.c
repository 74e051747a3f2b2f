/*
 * libFuzzer target of wirehubd's config parser (worker/config.c): the
 * input is the text of wirehubd.conf, handed to wh_config_parse(), what
 * wh_config_load() runs on a file's text once read (a file holding a NUL
 * is refused before: such inputs are skipped).  A load
 * either fails with a "FILE:LINE: ..." message or gives a config whose
 * promises hold (names set, map sizes ordered, every ingest rule's
 * filter a valid MQTT filter with as many captures as the rule says,
 * ingest only with mqtt, every quota line with a workspace and a limit);
 * then it must free cleanly.  The same bytes also go through
 * wh_config_size() and wh_config_duration().
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    /* a password_file of /dev/stdin must not wait for a terminal */
    fuzz_assert(freopen("/dev/null", "r", stdin) != NULL);

    return 0;
}


static void
fuzz_units(const uint8_t *data, size_t size)
{
    char     *s;
    size_t    bytes;
    int64_t   ms;

    s = strndup((const char *) data, size < 64 ? size : 64);
    fuzz_assert(s != NULL);

    if (wh_config_size(s, &bytes) == 0) {
        fuzz_assert(s[0] >= '0' && s[0] <= '9');
    }

    if (wh_config_duration(s, &ms) == 0) {
        fuzz_assert(ms >= 0);
    }

    free(s);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          rc, n;
    unsigned     i;
    wh_err_t     err;
    wh_config_t  cf;

    char        *text;

    fuzz_units(data, size);

    if (memchr(data, '\0', size) != NULL) {
        return 0;
    }

    text = strndup((const char *) data, size);
    fuzz_assert(text != NULL);
    memset(&err, 0, sizeof(err));

    rc = wh_config_parse(&cf, "fuzz.conf", text, &err);
    free(text);

    if (rc != 0) {
        fuzz_assert(rc == -1);
        fuzz_assert(err.msg[0] != '\0');
        fuzz_assert(strlen(err.msg) < sizeof(err.msg));

    } else {
        fuzz_assert(cf.listen != NULL && cf.listen[0] != '\0');
        fuzz_assert(cf.storage != NULL && cf.storage[0] != '\0');
        fuzz_assert(cf.map_size >= 1024 * 1024);
        fuzz_assert(cf.max_map_size >= cf.map_size);
        fuzz_assert(cf.history_length >= 1);
        fuzz_assert(cf.stats_interval_ms >= 100);
        fuzz_assert(cf.ningest == 0 || cf.mqtt.host != NULL);
        fuzz_assert(cf.ningest == 0 || cf.ingest != NULL);

        if (cf.mqtt.host != NULL) {
            fuzz_assert(cf.mqtt.port > 0 && cf.mqtt.port <= 65535);
            fuzz_assert(cf.mqtt.qos >= 0 && cf.mqtt.qos <= 2);
        }

        for (i = 0; i < cf.ningest; i++) {
            n = wh_topic_filter_check(cf.ingest[i].filter);
            fuzz_assert(n >= 0 && (unsigned) n == cf.ingest[i].nwild);
            fuzz_assert(cf.ingest[i].channel.text != NULL);
            fuzz_assert(cf.ingest[i].rate_ms >= 0);
        }

        /* every quota line names a workspace and a limit; a rate is
         * never 0 (the bucket would never fill) */
        for (i = 0; i < cf.nquota; i++) {
            fuzz_assert(cf.quota[i].workspace != NULL);
            fuzz_assert(cf.quota[i].set != 0);
            fuzz_assert(!(cf.quota[i].set & (1u << WH_QUOTA_PUBLISH_RATE))
                        || (cf.quota[i].limits.limit[WH_QUOTA_PUBLISH_RATE]
                            >= 1));
        }
    }

    /* a failed load frees what it got so far, a good one all of it */
    wh_config_free(&cf);

    return 0;
}
