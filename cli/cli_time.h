/* --from and --to as people write them: RFC 3339, a date, "now", or a
 * time relative to now ("-24h", "-7d", "-30m"). Pure: now is passed in. */
#ifndef AUDITRAIL_CLI_TIME_H
#define AUDITRAIL_CLI_TIME_H

#include <stdint.h>

/* Parse s into µs since the epoch (UTC):
 *   "now"                    now_us
 *   "-N<unit>", "+N<unit>"   now_us minus/plus N units; unit s, m, h, d, w
 *   "YYYY-MM-DD"             that day's midnight, UTC
 *   RFC 3339                 "2026-11-26T19:50:45Z", "…45.123+01:00" (no zone: UTC)
 * Returns 0, or -1 when malformed or outside years 0000-9999. */
int cli_time_parse(const char *s, int64_t now_us, int64_t *out_us)
    __attribute__((warn_unused_result));

#endif
