/* Process metrics from /proc/self, read by a metrics collector at scrape time
 * (nothing runs between scrapes), and the constant auditrail_build_info. */
#include "common/procmetrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/prog.h"
#include "common/xmalloc.h"

/* Owned by the registry; the collector runs with the registry locked, so
 * this state is never touched by two threads at once. */
struct procmetrics {
    struct metric *cpu, *rss, *vsize, *open_fds, *max_fds, *start;
    uint64_t btime; /* boot time, Unix seconds; 0 = unknown */
    long ticks;     /* sysconf(_SC_CLK_TCK) */
    long page;      /* sysconf(_SC_PAGESIZE) */
    bool warned_stat, warned_fds;
};

/* Read a small /proc file whole; 0 or -1 (errno set). */
static int read_small(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t r = read(fd, out + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    out[len] = '\0';
    return 0;
}

static int parse_u64(const char *s, char **end, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, end, 10);
    if (errno)
        return -1;
    *out = v;
    return 0;
}

int procmetrics_parse_stat(const char *text, struct procmetrics_stat *out)
{
    /* "pid (comm) state ppid ..." — fields 14, 15 (utime, stime), 22
     * (starttime), 23 (vsize), 24 (rss), counted from 1 (proc(5)). */
    const char *p = strrchr(text, ')');
    if (!p)
        return -1;
    p++;
    struct procmetrics_stat st = {0};
    uint64_t *at[25] = {0}; /* field number -> where it goes; others skipped */
    at[14] = &st.utime_ticks;
    at[15] = &st.stime_ticks;
    at[22] = &st.starttime_ticks;
    at[23] = &st.vsize_bytes;
    at[24] = &st.rss_pages;
    for (int field = 3; field <= 24; field++) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            return -1;
        char *end;
        if (at[field]) {
            if (parse_u64(p, &end, at[field]) < 0 || (*end != ' ' && *end != '\n' && *end))
                return -1;
            p = end;
        } else {
            p += strcspn(p, " \n");
        }
    }
    *out = st;
    return 0;
}

int procmetrics_parse_btime(const char *text, uint64_t *out)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, "btime ", 6) != 0)
            continue;
        char *end;
        uint64_t v;
        if (parse_u64(p + 6, &end, &v) < 0 || (*end != '\n' && *end))
            return -1;
        *out = v;
        return 0;
    }
    return -1;
}

/* Entries of /proc/self/fd, less the one the listing itself holds open. */
static int count_fds(uint64_t *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    *out = n ? n - 1 : 0;
    return 0;
}

static void collect(void *ud)
{
    struct procmetrics *pm = ud;
    char text[1024];
    struct procmetrics_stat st;
    if (read_small("/proc/self/stat", text, sizeof(text)) == 0 &&
        procmetrics_parse_stat(text, &st) == 0) {
        double cpu = (double)(st.utime_ticks + st.stime_ticks) / (double)pm->ticks;
        double prev = metric_value(pm->cpu);
        if (cpu > prev)
            metric_add(pm->cpu, cpu - prev); /* a counter: only ever moves up */
        metric_set(pm->rss, (double)st.rss_pages * (double)pm->page);
        metric_set(pm->vsize, (double)st.vsize_bytes);
        if (pm->btime)
            metric_set(pm->start,
                       (double)pm->btime + (double)st.starttime_ticks / (double)pm->ticks);
    } else if (!pm->warned_stat) {
        log_warn("metrics: cannot read /proc/self/stat: process_* CPU and memory stay stale");
        pm->warned_stat = true;
    }
    uint64_t fds;
    if (count_fds(&fds) == 0) {
        metric_set(pm->open_fds, (double)fds);
    } else if (!pm->warned_fds) {
        log_warn("metrics: cannot list /proc/self/fd: %s", strerror(errno));
        pm->warned_fds = true;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        metric_set(pm->max_fds, (double)rl.rlim_cur);
}

void procmetrics_register(struct metrics *m, const char *program)
{
    struct procmetrics *pm = xcalloc(1, sizeof(*pm));
    pm->ticks = sysconf(_SC_CLK_TCK);
    if (pm->ticks <= 0)
        pm->ticks = 100;
    pm->page = sysconf(_SC_PAGESIZE);
    if (pm->page <= 0)
        pm->page = 4096;
    char text[8192];
    if (read_small("/proc/stat", text, sizeof(text)) < 0 ||
        procmetrics_parse_btime(text, &pm->btime) < 0)
        pm->btime = 0; /* process_start_time_seconds stays 0 */
    pm->cpu = metrics_counter(m, "process_cpu_seconds_total",
                              "Total user and system CPU time spent in seconds.", NULL);
    pm->rss =
        metrics_gauge(m, "process_resident_memory_bytes", "Resident memory size in bytes.", NULL);
    pm->vsize =
        metrics_gauge(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.", NULL);
    pm->open_fds = metrics_gauge(m, "process_open_fds", "Number of open file descriptors.", NULL);
    pm->max_fds = metrics_gauge(m, "process_max_fds",
                                "Maximum number of open file descriptors (soft limit).", NULL);
    pm->start = metrics_gauge(m, "process_start_time_seconds",
                              "Start time of the process since the Unix epoch in seconds.", NULL);
    char *labels = xasprintf("program=\"%s\",version=\"%s\"", program, prog_version());
    metric_set(metrics_gauge(m, "auditrail_build_info",
                             "Always 1; the labels say which program and version this is.", labels),
               1);
    free(labels);
    metrics_add_collector(m, collect, pm, free);
}
