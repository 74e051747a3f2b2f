/*
 * Time helpers.  The ISO formatter does its own civil-date arithmetic
 * (days to year/month/day) so it needs neither gmtime_r nor a locale
 * and cannot fail.
 */

#include <string.h>
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


/* n decimal digits at s, or -1 */
static int
wh_time_atoi(const char *s, int n)
{
    int  v = 0;

    while (n-- > 0) {
        if (*s < '0' || *s > '9') {
            return -1;
        }

        v = v * 10 + (*s++ - '0');
    }

    return v;
}


int
wh_time_parse_iso(const char *s, size_t len, int64_t *ms)
{
    int        frac = 0;
    time_t     t;
    struct tm  tm;

    if ((len != 20 && len != 24) || s[4] != '-' || s[7] != '-'
        || s[10] != 'T' || s[13] != ':' || s[16] != ':'
        || s[len - 1] != 'Z')
    {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = wh_time_atoi(s, 4) - 1900;
    tm.tm_mon = wh_time_atoi(s + 5, 2) - 1;
    tm.tm_mday = wh_time_atoi(s + 8, 2);
    tm.tm_hour = wh_time_atoi(s + 11, 2);
    tm.tm_min = wh_time_atoi(s + 14, 2);
    tm.tm_sec = wh_time_atoi(s + 17, 2);

    if (len == 24) {
        frac = s[19] == '.' ? wh_time_atoi(s + 20, 3) : -1;
    }

    if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11
        || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0
        || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59
        || tm.tm_sec < 0 || tm.tm_sec > 60 || frac < 0)
    {
        return -1;
    }

    t = timegm(&tm);

    if (t == (time_t) -1) {
        return -1;
    }

    *ms = (int64_t) t * WH_MS_PER_S + frac;

    return 0;
}
