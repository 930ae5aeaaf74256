/* Clocks and RFC 3339 timestamps. Times are int64 microseconds since the Unix
 * epoch (UTC) throughout auditrail. */
#ifndef AUDITRAIL_TIMEUTIL_H
#define AUDITRAIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define TIME_RFC3339_LEN 28 /* "2026-11-26T19:50:45.123456Z" + NUL */

int64_t time_now_us(void);   /* CLOCK_REALTIME */
uint64_t time_mono_ms(void); /* CLOCK_MONOTONIC */
uint64_t time_mono_us(void);
/* A deadline ms from now on clock clk (for pthread_cond_timedwait). */
struct timespec;
void time_deadline(struct timespec *ts, int clk, uint64_t ms);
/* Write "YYYY-MM-DDTHH:MM:SS.ffffffZ" (always 6 fraction digits, UTC). */
void time_format_us(int64_t us, char out[TIME_RFC3339_LEN]);
/* Parse an RFC 3339 / ISO 8601 timestamp of exactly `len` bytes:
 * date 'T' or ' ' time, optional fraction (1-9 digits, cut to µs), then 'Z',
 * '+hh:mm', '-hh:mm', '+hhmm' or nothing (UTC). Returns 0, or -1 if malformed
 * or out of range (fields checked, incl. days per month). */
int time_parse_rfc3339(const char *s, size_t len, int64_t *us_out);

#endif
