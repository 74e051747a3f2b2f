/*
 * Time helpers.  The ISO formatter does its own civil-date arithmetic
 * (days to year/month/day) so it needs neither gmtime_r nor a locale
 * and cannot fail.
 */

#include <time.h>

#include "wh_time.h"


int64_t
wh_time_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
wh_time_digits(char *out, unsigned v, int n)
{
    while (n--) {
        out[n] = (char) ('0' + v % 10);
        v /= 10;
    }
}


size_t
wh_time_iso(char *out, int64_t ms)
{
    int64_t   days, secs, era, doe, yoe, y, doy, mp, d, m;
    unsigned  msec;

    if (ms < 0) {
        ms = 0;
    }

    if (ms > (int64_t) 253402300799999) {
        ms = 253402300799999;          /* 9999-12-31T23:59:59.999Z */
    }

    msec = (unsigned) (ms % 1000);
    secs = ms / 1000;
    days = secs / 86400;
    secs %= 86400;

    /* days since 1970-01-01 to a civil date (H. Hinnant's algorithm) */
    days += 719468;
    era = days / 146097;
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;

    wh_time_digits(out, (unsigned) y, 4);
    out[4] = '-';
    wh_time_digits(out + 5, (unsigned) m, 2);
    out[7] = '-';
    wh_time_digits(out + 8, (unsigned) d, 2);
    out[10] = 'T';
    wh_time_digits(out + 11, (unsigned) (secs / 3600), 2);
    out[13] = ':';
    wh_time_digits(out + 14, (unsigned) (secs / 60 % 60), 2);
    out[16] = ':';
    wh_time_digits(out + 17, (unsigned) (secs % 60), 2);
    out[19] = '.';
    wh_time_digits(out + 20, msec, 3);
    out[23] = 'Z';
    out[24] = '\0';

    return WH_TIME_ISO_LEN;
}
