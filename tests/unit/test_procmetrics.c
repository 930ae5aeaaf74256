/* Process metrics: every family registered, values that follow what the
 * process really does (fds opened, memory touched, CPU burnt, rlimit), the
 * build version from the VERSION file, and the /proc parsers' failure paths. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/metrics.h"
#include "common/procmetrics.h"
#include "common/prog.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

/* The value of the unlabelled sample `name` in a fresh rendering of m. */
static double sample_of(struct metrics *m, const char *name)
{
    char *text = metrics_render(m);
    char *key = xasprintf("\n%s ", name);
    char *p = strstr(text, key);
    ck_assert_msg(p, "%s not rendered", name);
    double v = strtod(p + strlen(key), NULL);
    free(key);
    free(text);
    return v;
}

START_TEST(every_family_and_build_info)
{
    struct metrics *m = metrics_new();
    procmetrics_register(m, "unit");
    char *text = metrics_render(m);
    static const char *const want[] = {
        "# TYPE process_cpu_seconds_total counter\n",
        "# TYPE process_resident_memory_bytes gauge\n",
        "# TYPE process_virtual_memory_bytes gauge\n",
        "# TYPE process_open_fds gauge\n",
        "# TYPE process_max_fds gauge\n",
        "# TYPE process_start_time_seconds gauge\n",
        "# TYPE auditrail_build_info gauge\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]), "missing %s", want[i]);
    /* the version compiled in is the repository's VERSION file */
    char *vpath = xasprintf("%s/VERSION", test_repo_root());
    FILE *f = fopen(vpath, "r");
    ck_assert_ptr_nonnull(f);
    char version[64] = {0};
    ck_assert_ptr_nonnull(fgets(version, sizeof(version), f));
    fclose(f);
    version[strcspn(version, "\n")] = '\0';
    ck_assert_str_eq(prog_version(), version);
    char *info = xasprintf("\nauditrail_build_info{program=\"unit\",version=\"%s\"} 1\n", version);
    ck_assert_msg(strstr(text, info), "no %s in\n%s", info + 1, text);
    free(info);
    free(vpath);
    free(text);
    ck_assert(sample_of(m, "process_resident_memory_bytes") > 0);
    ck_assert(sample_of(m, "process_virtual_memory_bytes") >=
              sample_of(m, "process_resident_memory_bytes"));
    metrics_free(m);
}
END_TEST

START_TEST(open_fds_follow_the_process)
{
    struct metrics *m = metrics_new();
    procmetrics_register(m, "unit");
    double before = sample_of(m, "process_open_fds");
    ck_assert(before >= 3); /* stdin, stdout, stderr at least */
    int fds[10];
    for (int i = 0; i < 10; i++) {
        fds[i] = open("/dev/null", O_RDONLY);
        ck_assert_int_ge(fds[i], 0);
    }
    ck_assert_double_eq(sample_of(m, "process_open_fds"), before + 10);
    for (int i = 0; i < 10; i++)
        close(fds[i]);
    ck_assert_double_eq(sample_of(m, "process_open_fds"), before);
    metrics_free(m);
}
END_TEST

START_TEST(max_fds_is_the_soft_limit)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = 300; /* Check forks each test: this process only */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    struct metrics *m = metrics_new();
    procmetrics_register(m, "unit");
    ck_assert_double_eq(sample_of(m, "process_max_fds"), 300);
    metrics_free(m);
}
END_TEST

START_TEST(resident_memory_follows_touched_pages)
{
    struct metrics *m = metrics_new();
    procmetrics_register(m, "unit");
    double before = sample_of(m, "process_resident_memory_bytes");
    size_t n = 64u << 20;
    char *p = xmalloc(n);
    memset(p, 0x5a, n);
    double after = sample_of(m, "process_resident_memory_bytes");
    ck_assert_msg(after >= before + (double)(48u << 20), "RSS %.0f -> %.0f after touching 64 MiB",
                  before, after);
    ck_assert_int_eq(p[n - 1], 0x5a);
    free(p);
    metrics_free(m);
}
END_TEST

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

START_TEST(cpu_seconds_count_what_was_burnt)
{
    struct metrics *m = metrics_new();
    procmetrics_register(m, "unit");
    double before = sample_of(m, "process_cpu_seconds_total");
    double start = cpu_now();
    volatile unsigned long spin = 0;
    while (cpu_now() - start < 0.3) /* a condition on CPU time, not a timer */
        for (int i = 0; i < 100000; i++)
            spin += (unsigned long)i;
    double after = sample_of(m, "process_cpu_seconds_total");
    /* /proc counts in clock ticks (10 ms): allow two of them */
    ck_assert_msg(after >= before + 0.28, "cpu %.3f -> %.3f after 0.3 s", before, after);
    ck_assert(sample_of(m, "process_cpu_seconds_total") >= after); /* never down */
    metrics_free(m);
}
END_TEST

START_TEST(start_time_is_this_process)
{
    struct metrics *m = metrics_new();
    procmetrics_register(m, "unit");
    double start = sample_of(m, "process_start_time_seconds");
    double now = (double)time(NULL);
    /* Check forked this process moments ago; the boot-time arithmetic is
     * good to about a second */
    ck_assert_msg(start <= now + 1 && start >= now - 120, "start %.2f, now %.0f", start, now);
    metrics_free(m);
}
END_TEST

START_TEST(parse_stat_counts_from_the_last_paren)
{
    /* a command name with spaces and parentheses, as a process may choose */
    const char *line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 1200 0 3 0 "
                       "731 212 0 0 20 0 5 0 987654 123456789 2048 18446744073709551615\n";
    struct procmetrics_stat st;
    ck_assert_int_eq(procmetrics_parse_stat(line, &st), 0);
    ck_assert_uint_eq(st.utime_ticks, 731);
    ck_assert_uint_eq(st.stime_ticks, 212);
    ck_assert_uint_eq(st.starttime_ticks, 987654);
    ck_assert_uint_eq(st.vsize_bytes, 123456789);
    ck_assert_uint_eq(st.rss_pages, 2048);

    static const char *const bad[] = {
        "",
        "4242 no parenthesis S 1 2 3",
        "4242 (cut) S 1 4242 4242 0 -1 4194560 1200 0 3 0 731 212 0 0 20 0 5 0 987654\n",
        "4242 (x) S 1 4242 4242 0 -1 4194560 1200 0 3 0 7x1 212 0 0 20 0 5 0 9 1 2\n",
        "4242 (x) S 1 4242 4242 0 -1 4194560 1200 0 3 0 -5 212 0 0 20 0 5 0 9 1 2\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct procmetrics_stat keep = {.utime_ticks = 77};
        ck_assert_msg(procmetrics_parse_stat(bad[i], &keep) == -1, "accepted: %s", bad[i]);
        ck_assert_uint_eq(keep.utime_ticks, 77); /* untouched on error */
    }
}
END_TEST

START_TEST(parse_btime)
{
    uint64_t bt = 0;
    ck_assert_int_eq(
        procmetrics_parse_btime("cpu  1 2 3\nintr 5\nbtime 1764400000\nprocesses 9\n", &bt), 0);
    ck_assert_uint_eq(bt, 1764400000);
    ck_assert_int_eq(procmetrics_parse_btime("btime 17\n", &bt), 0);
    ck_assert_uint_eq(bt, 17);
    bt = 5;
    ck_assert_int_eq(procmetrics_parse_btime("cpu 1\nprocesses 9\n", &bt), -1);
    ck_assert_int_eq(procmetrics_parse_btime("btime x\n", &bt), -1);
    ck_assert_int_eq(procmetrics_parse_btime("btime 12z\n", &bt), -1);
    ck_assert_int_eq(procmetrics_parse_btime("", &bt), -1);
    ck_assert_uint_eq(bt, 5);
}
END_TEST

static Suite *procmetrics_suite(void)
{
    Suite *s = suite_create("procmetrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, every_family_and_build_info);
    tcase_add_test(tc, open_fds_follow_the_process);
    tcase_add_test(tc, max_fds_is_the_soft_limit);
    tcase_add_test(tc, resident_memory_follows_touched_pages);
    tcase_add_test(tc, cpu_seconds_count_what_was_burnt);
    tcase_add_test(tc, start_time_is_this_process);
    tcase_add_test(tc, parse_stat_counts_from_the_last_paren);
    tcase_add_test(tc, parse_btime);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(procmetrics_suite());
}
