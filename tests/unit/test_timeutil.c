/* RFC 3339 parsing and formatting: expected epoch values come from
 * `date -u -d … +%s` (GNU coreutils), not from the code under test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeutil.h"
#include "tests/support/testutil.h"

#define S 1000000LL

static int parse(const char *s, int64_t *us)
{
    return time_parse_rfc3339(s, strlen(s), us);
}

static void expect_us(const char *s, int64_t want)
{
    int64_t got = 0x5a5a5a5a;
    ck_assert_msg(parse(s, &got) == 0, "rejected valid '%s'", s);
    ck_assert_msg(got == want, "'%s': got %lld want %lld", s, (long long)got, (long long)want);
}

static void expect_bad(const char *s)
{
    int64_t got;
    ck_assert_msg(parse(s, &got) == -1, "accepted invalid '%s'", s);
}

static void expect_fmt(int64_t us, const char *want)
{
    char out[TIME_RFC3339_LEN];
    memset(out, 'X', sizeof(out));
    time_format_us(us, out);
    ck_assert_str_eq(out, want);
}

START_TEST(parse_utc_with_fraction)
{
    expect_us("2026-11-26T19:50:45.123456Z", 1795722645 * S + 123456);
    expect_us("2026-11-26T19:50:45Z", 1795722645 * S);
    expect_us("1970-01-01T00:00:00Z", 0);
    expect_us("2026-11-26t19:50:45z", 1795722645 * S);
    expect_us("2026-11-26 19:50:45Z", 1795722645 * S);
    expect_us("2026-11-26T19:50:45", 1795722645 * S); /* no zone = UTC */
}
END_TEST

START_TEST(parse_offsets)
{
    int64_t want = 1795722645 * S + 500000;
    expect_us("2026-11-26T20:50:45.5+01:00", want);
    expect_us("2026-11-26T20:50:45.5+0100", want);
    expect_us("2026-11-26T14:20:45.5-05:30", want);
    expect_us("2026-11-26T14:20:45.5-0530", want);
    expect_us("2026-11-26T19:50:45.5+00:00", want);
    expect_us("2026-11-26T19:50:45.5-00:00", want);
    /* An offset that crosses midnight and the year. */
    expect_us("2027-01-01T05:00:00+06:00", (1798761600LL - 3600) * S);
}
END_TEST

START_TEST(parse_fraction_truncates)
{
    int64_t base = 1795722645 * S;
    expect_us("2026-11-26T19:50:45.9Z", base + 900000);
    expect_us("2026-11-26T19:50:45.12Z", base + 120000);
    expect_us("2026-11-26T19:50:45.1234569Z", base + 123456);
    expect_us("2026-11-26T19:50:45.999999999Z", base + 999999);
    expect_us("2026-11-26T19:50:45.000001Z", base + 1);
    expect_bad("2026-11-26T19:50:45.1234567891Z"); /* 10 digits */
    expect_bad("2026-11-26T19:50:45.Z");
    expect_bad("2026-11-26T19:50:45,5Z");
}
END_TEST

START_TEST(parse_leap_years)
{
    expect_us("2024-02-29T12:00:00Z", 1709208000 * S);
    expect_us("2000-02-29T00:00:00Z", (951868800LL - 86400) * S);
    expect_bad("2023-02-29T00:00:00Z");
    expect_bad("1900-02-29T00:00:00Z");
    expect_bad("2100-02-29T00:00:00Z");
    expect_bad("2024-02-30T00:00:00Z");
}
END_TEST

START_TEST(parse_leap_second_clamps)
{
    expect_us("2016-12-31T23:59:60Z", 1483228799 * S + 999999);
    expect_us("2016-12-31T23:59:60.5Z", 1483228799 * S + 999999);
    expect_bad("2016-12-31T23:59:61Z");
}
END_TEST

START_TEST(parse_rejects_out_of_range_fields)
{
    expect_bad("2026-00-10T00:00:00Z");
    expect_bad("2026-13-10T00:00:00Z");
    expect_bad("2026-01-00T00:00:00Z");
    expect_bad("2026-01-32T00:00:00Z");
    expect_bad("2026-04-31T00:00:00Z");
    expect_bad("2026-06-31T00:00:00Z");
    expect_bad("2026-01-10T24:00:00Z");
    expect_bad("2026-01-10T23:60:00Z");
    expect_bad("2026-01-10T23:00:00+24:00");
    expect_bad("2026-01-10T23:00:00+05:60");
}
END_TEST

START_TEST(parse_rejects_malformed)
{
    expect_bad("");
    expect_bad("2026");
    expect_bad("2026-1-10T00:00:00Z");
    expect_bad("2026-01-10T0:00:00Z");
    expect_bad("2026-01-10T00:00Z");
    expect_bad("2026-01-10X00:00:00Z");
    expect_bad("2026-01-10T00:00:00ZZ");
    expect_bad("2026-01-10T00:00:00 Z");
    expect_bad("2026-01-10T00:00:00+05");
    expect_bad("2026-01-10T00:00:00+5:00");
    expect_bad("2026-01-10T00:00:00+05:0");
    expect_bad("2026-01-10T00:00:00+05:00:00");
    expect_bad("2026-01-10T00:00:00UTC");
    expect_bad("+026-01-10T00:00:00Z");
    expect_bad("2026-01-10T00:00:00.5Z ");
    expect_bad(" 2026-01-10T00:00:00Z");
}
END_TEST

START_TEST(parse_honours_len)
{
    const char *s = "2026-11-26T19:50:45.123456Zjunk";
    int64_t us;
    ck_assert_int_eq(time_parse_rfc3339(s, 27, &us), 0);
    ck_assert_int_eq(us, 1795722645 * S + 123456);
    ck_assert_int_eq(time_parse_rfc3339(s, strlen(s), &us), -1);
    /* Cut inside the fraction / before the zone: still well-formed. */
    ck_assert_int_eq(time_parse_rfc3339(s, 22, &us), 0);
    ck_assert_int_eq(us, 1795722645 * S + 120000);
    /* Cut inside a field. */
    ck_assert_int_eq(time_parse_rfc3339(s, 18, &us), -1);
    ck_assert_int_eq(time_parse_rfc3339(s, 0, &us), -1);
    char nul[] = "2026-11-26T19:50:45\0Z";
    ck_assert_int_eq(time_parse_rfc3339(nul, sizeof(nul) - 1, &us), -1);
}
END_TEST

START_TEST(format_fixed_width)
{
    expect_fmt(1795722645 * S + 123456, "2026-11-26T19:50:45.123456Z");
    expect_fmt(0, "1970-01-01T00:00:00.000000Z");
    expect_fmt(-1, "1969-12-31T23:59:59.999999Z");
    expect_fmt(-S, "1969-12-31T23:59:59.000000Z");
    expect_fmt(1709208000 * S + 7, "2024-02-29T12:00:00.000007Z");
    expect_fmt(-62167219200LL * S, "0000-01-01T00:00:00.000000Z");
    expect_fmt(253402300799LL * S + 999999, "9999-12-31T23:59:59.999999Z");
    /* Outside four-digit years: clamped, still 27 characters. */
    expect_fmt(INT64_MIN, "0000-01-01T00:00:00.000000Z");
    expect_fmt(INT64_MAX, "9999-12-31T23:59:59.999999Z");
}
END_TEST

START_TEST(independent_of_tz)
{
    setenv("TZ", "America/New_York", 1);
    tzset();
    expect_us("2026-07-01T12:00:00Z", 1782907200LL * S);
    expect_fmt(1782907200LL * S, "2026-07-01T12:00:00.000000Z");
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    expect_us("2026-07-01T12:00:00", 1782907200LL * S);
    unsetenv("TZ");
    tzset();
}
END_TEST

START_TEST(round_trip)
{
    /* Deterministic LCG over the whole four-digit-year range. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    const int64_t lo = -62167219200LL * S, hi = 253402300800LL * S - 1;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t us = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        char buf[TIME_RFC3339_LEN];
        time_format_us(us, buf);
        ck_assert_uint_eq(strlen(buf), 27);
        int64_t back;
        ck_assert_int_eq(time_parse_rfc3339(buf, 27, &back), 0);
        ck_assert_int_eq(back, us);
    }
}
END_TEST

/* The calendar arithmetic against glibc's gmtime_r and timegm as the
 * oracle: every day of 1896-2104 and every 97th day of the whole 4-digit
 * range, each at a different time of day, formatted and parsed back. */
static void check_day_against_libc(int64_t day, int64_t sod)
{
    int64_t sec = day * 86400 + sod;
    int64_t us = sec * S + (sod * 7919) % S;
    struct tm tm;
    time_t t = (time_t)sec;
    ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
    char want[64], got[TIME_RFC3339_LEN];
    snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long long)(us - sec * S));
    time_format_us(us, got);
    ck_assert_msg(strcmp(got, want) == 0, "%lld: got %s, gmtime_r gives %s", (long long)us, got,
                  want);
    int64_t back = 0;
    ck_assert_int_eq(time_parse_rfc3339(got, strlen(got), &back), 0);
    ck_assert_msg(back == us, "%s parsed to %lld, want %lld", got, (long long)back, (long long)us);
    ck_assert_msg((int64_t)timegm(&tm) == sec, "%s: timegm disagrees", got);
}

START_TEST(calendar_matches_libc)
{
    const int64_t y0 = -719528, y10000 = 2932897; /* days of 0000-01-01 and 10000-01-01 */
    const int64_t y1896 = -27028, y2104 = 48942;
    for (int64_t d = y1896; d < y2104; d++)
        check_day_against_libc(d, (d - y0) * 4099 % 86400);
    for (int64_t d = y0; d < y10000; d += 97)
        check_day_against_libc(d, 86399 - (d - y0) % 86400);
    /* The first and last representable days at both ends of the day. */
    check_day_against_libc(y0, 0);
    check_day_against_libc(y10000 - 1, 86399);
}
END_TEST

START_TEST(clocks)
{
    int64_t now = time_now_us();
    int64_t wall = (int64_t)time(NULL) * S;
    ck_assert(now >= wall - 2 * S && now <= wall + 2 * S);
    uint64_t a = time_mono_us(), b = time_mono_us();
    ck_assert(b >= a);
    ck_assert(time_mono_ms() >= a / 1000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timeutil");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parse_utc_with_fraction);
    tcase_add_test(tc, parse_offsets);
    tcase_add_test(tc, parse_fraction_truncates);
    tcase_add_test(tc, parse_leap_years);
    tcase_add_test(tc, parse_leap_second_clamps);
    tcase_add_test(tc, parse_rejects_out_of_range_fields);
    tcase_add_test(tc, parse_rejects_malformed);
    tcase_add_test(tc, parse_honours_len);
    tcase_add_test(tc, format_fixed_width);
    tcase_add_test(tc, independent_of_tz);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, calendar_matches_libc);
    tcase_add_test(tc, clocks);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
