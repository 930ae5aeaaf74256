/* Clocks and RFC 3339 timestamps in int64 microseconds (UTC). Parsing and
 * formatting never consult TZ: the proleptic Gregorian calendar is computed
 * here (gmtime_r and timegm take glibc's time-zone lock on every call, a
 * measurable cost per record in the agent). */
#include "common/timeutil.h"

#include <stdbool.h>
#include <time.h>

#define US_PER_SEC 1000000LL

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the range that fits
 * the fixed-width 4-digit-year format. */
#define TIME_MIN_US (-62167219200LL * US_PER_SEC)
#define TIME_MAX_US (253402300800LL * US_PER_SEC - 1)

int64_t time_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

uint64_t time_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t time_mono_ms(void)
{
    return time_mono_us() / 1000u;
}

/* Days since 1970-01-01 of y-m-d, and back: the civil-calendar algorithms
 * of Howard Hinnant's "chrono-Compatible Low-Level Date Algorithms", over
 * 400-year eras (146097 days) starting on March 1st so that the leap day
 * ends a year. Exact for every year of the 4-digit range (and far beyond). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);                       /* [0, 399] */
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);                          /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void time_format_us(int64_t us, char out[TIME_RFC3339_LEN])
{
    /* Clamp so the output is always the fixed 27-character form. */
    if (us < TIME_MIN_US)
        us = TIME_MIN_US;
    if (us > TIME_MAX_US)
        us = TIME_MAX_US;
    /* Floor division: -1 µs is 1969-12-31T23:59:59.999999Z. */
    int64_t sec = us / US_PER_SEC;
    int64_t frac = us % US_PER_SEC;
    if (frac < 0) {
        frac += US_PER_SEC;
        sec--;
    }
    /* Floor division again, into days and the second of the day. */
    int64_t days = sec / 86400, sod = sec % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t year;
    unsigned mon, mday;
    civil_from_days(days, &year, &mon, &mday);
    put_digits(out, (unsigned)year, 4);
    out[4] = '-';
    put_digits(out + 5, mon, 2);
    out[7] = '-';
    put_digits(out + 8, mday, 2);
    out[10] = 'T';
    put_digits(out + 11, (unsigned)(sod / 3600), 2);
    out[13] = ':';
    put_digits(out + 14, (unsigned)(sod / 60 % 60), 2);
    out[16] = ':';
    put_digits(out + 17, (unsigned)(sod % 60), 2);
    out[19] = '.';
    put_digits(out + 20, (unsigned)frac, 6);
    out[26] = 'Z';
    out[27] = '\0';
}

/* Read exactly n decimal digits at s[*i]; false if any is not a digit. */
static bool take_digits(const char *s, size_t len, size_t *i, int n, int *out)
{
    if (len - *i < (size_t)n)
        return false;
    int v = 0;
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    *out = v;
    return true;
}

static bool take_char(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return false;
    (*i)++;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

int time_parse_rfc3339(const char *s, size_t len, int64_t *us_out)
{
    size_t i = 0;
    int year, mon, day, hour, min, sec;
    if (!s)
        return -1;
    if (!take_digits(s, len, &i, 4, &year) || !take_char(s, len, &i, '-') ||
        !take_digits(s, len, &i, 2, &mon) || !take_char(s, len, &i, '-') ||
        !take_digits(s, len, &i, 2, &day))
        return -1;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return -1;
    i++;
    if (!take_digits(s, len, &i, 2, &hour) || !take_char(s, len, &i, ':') ||
        !take_digits(s, len, &i, 2, &min) || !take_char(s, len, &i, ':') ||
        !take_digits(s, len, &i, 2, &sec))
        return -1;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 ||
        sec > 60)
        return -1;

    int64_t frac_us = 0;
    if (i < len && s[i] == '.') {
        i++;
        int ndig = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            /* Digits beyond the sixth are cut, not rounded: a timestamp
             * never moves into the next microsecond (or day). */
            if (ndig < 6)
                frac_us = frac_us * 10 + (s[i] - '0');
            ndig++;
            i++;
        }
        if (ndig < 1 || ndig > 9)
            return -1;
        for (int k = ndig; k < 6; k++)
            frac_us *= 10;
    }

    int offset_min = 0;
    if (i < len) {
        char c = s[i++];
        if (c == 'Z' || c == 'z') {
            /* UTC */
        } else if (c == '+' || c == '-') {
            int oh, om;
            if (!take_digits(s, len, &i, 2, &oh))
                return -1;
            take_char(s, len, &i, ':'); /* "+hh:mm" or "+hhmm" */
            if (!take_digits(s, len, &i, 2, &om) || oh > 23 || om > 59)
                return -1;
            offset_min = (oh * 60 + om) * (c == '-' ? -1 : 1);
        } else {
            return -1;
        }
    }
    if (i != len)
        return -1;

    /* A leap second has no POSIX representation: keep it inside its minute
     * as the last representable microsecond, so order is preserved. */
    if (sec == 60) {
        sec = 59;
        frac_us = US_PER_SEC - 1;
    }

    int64_t secs = days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hour * 3600 +
                   min * 60 + sec - (int64_t)offset_min * 60;
    *us_out = secs * US_PER_SEC + frac_us;
    return 0;
}

void time_deadline(struct timespec *ts, int clk, uint64_t ms)
{
    clock_gettime((clockid_t)clk, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
