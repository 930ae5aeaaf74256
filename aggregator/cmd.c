/* Helpers the aggregator's operator subcommands share (aggregator/cmd.h):
 * usage errors, time arguments. */
#include "aggregator/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/prog.h"
#include "common/timeutil.h"

int cmd_usage(const char *verb, const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "auditrail-aggregator %s: ", verb);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return PROG_EXIT_USAGE;
}

int cmd_parse_time(const char *s, int64_t now_us, int64_t *out_us)
{
    if (strcmp(s, "now") == 0) {
        *out_us = now_us;
        return 0;
    }
    if (s[0] == '-' && s[1] >= '0' && s[1] <= '9') {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(s + 1, &end, 10);
        int64_t unit = 0;
        if (end && end[0] && !end[1])
            unit = end[0] == 's'   ? INT64_C(1000000)
                   : end[0] == 'm' ? INT64_C(60000000)
                   : end[0] == 'h' ? INT64_C(3600000000)
                   : end[0] == 'd' ? INT64_C(86400000000)
                                   : 0;
        /* at most ~ 290 000 years back: no overflow */
        if (!unit || errno || n < 0 || n > INT64_MAX / 2 / unit)
            return -1;
        *out_us = now_us - (int64_t)n * unit;
        return 0;
    }
    return time_parse_rfc3339(s, strlen(s), out_us);
}
