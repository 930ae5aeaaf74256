/* --from/--to parsing (cli/cli_time.h): relative forms on top of the one
 * RFC 3339 parser (common/timeutil). */
#include "cli/cli_time.h"

#include <stdio.h>
#include <string.h>

#include "common/timeutil.h"

#define US_PER_S INT64_C(1000000)
/* The range the API's fixed 4-digit-year form can say (common/timeutil.c). */
#define MIN_US (INT64_C(-62167219200) * US_PER_S)
#define MAX_US (INT64_C(253402300800) * US_PER_S - 1)

static int64_t unit_us(char u)
{
    switch (u) {
    case 's':
        return US_PER_S;
    case 'm':
        return 60 * US_PER_S;
    case 'h':
        return 3600 * US_PER_S;
    case 'd':
        return 86400 * US_PER_S;
    case 'w':
        return 7 * 86400 * US_PER_S;
    default:
        return 0;
    }
}

static int relative(const char *s, int64_t now_us, int64_t *out)
{
    size_t len = strlen(s);
    size_t digits = len >= 3 ? strspn(s + 1, "0123456789") : 0;
    if (digits == 0 || digits > 12 || digits + 2 != len)
        return -1;
    int64_t unit = unit_us(s[len - 1]);
    if (!unit)
        return -1;
    int64_t n = 0, delta, t;
    for (size_t i = 1; i <= digits; i++)
        n = n * 10 + (s[i] - '0');
    if (__builtin_mul_overflow(n, unit, &delta))
        return -1;
    if (s[0] == '-' ? __builtin_sub_overflow(now_us, delta, &t)
                    : __builtin_add_overflow(now_us, delta, &t))
        return -1;
    *out = t;
    return 0;
}

int cli_time_parse(const char *s, int64_t now_us, int64_t *out_us)
{
    int64_t t;
    size_t len = strlen(s);
    if (strcmp(s, "now") == 0) {
        t = now_us;
    } else if (s[0] == '-' || s[0] == '+') {
        if (relative(s, now_us, &t) != 0)
            return -1;
    } else if (len == 10) {
        char full[32];
        snprintf(full, sizeof(full), "%sT00:00:00Z", s);
        if (time_parse_rfc3339(full, strlen(full), &t) != 0)
            return -1;
    } else if (time_parse_rfc3339(s, len, &t) != 0) {
        return -1;
    }
    if (t < MIN_US || t > MAX_US)
        return -1;
    *out_us = t;
    return 0;
}
