/* Process metrics (the Prometheus client conventions, process_*) read from
 * /proc/self at scrape time, and auditrail_build_info, for both programs. */
#ifndef AUDITRAIL_PROCMETRICS_H
#define AUDITRAIL_PROCMETRICS_H

#include <stdint.h>

struct metrics;

/* Register on m: process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds, and auditrail_build_info{program,version} 1.
 * The process_* values are read from /proc/self each time m is rendered
 * (a metrics collector; the registry owns the state). A value that cannot
 * be read keeps its last one, and the failure is logged once. `program` is
 * copied. */
void procmetrics_register(struct metrics *m, const char *program);

/* The fields of /proc/<pid>/stat that the metrics use. */
struct procmetrics_stat {
    uint64_t utime_ticks, stime_ticks; /* CPU time, clock ticks */
    uint64_t starttime_ticks;          /* start after boot, clock ticks */
    uint64_t vsize_bytes;
    uint64_t rss_pages;
};

/* Parse the text of /proc/<pid>/stat (the command name may hold spaces and
 * parentheses: fields are counted from the last ')'). Returns 0, or -1 when
 * the text is not a stat line; out is then untouched. */
int procmetrics_parse_stat(const char *text, struct procmetrics_stat *out);

/* The boot time (Unix seconds) from the text of /proc/stat ("btime N").
 * Returns 0, or -1 when absent or malformed. */
int procmetrics_parse_btime(const char *text, uint64_t *out);

#endif
