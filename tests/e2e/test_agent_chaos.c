/* The agent under faults: SIGKILL at random moments while files are written
 * and rotated (both rename styles), all brokers down for 20 s, a file deleted
 * before it was fully read, inode reuse, copytruncate, a 2 MB line, a binary
 * file. Every written record must be in the topic, only exact re-sends
 * duplicated, seq contiguous per stream, each stream one file's records in
 * order (verified independently). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/agent_harness.h"
#include "tests/support/probe.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define RAW_INPUTS "    - path: %s/*.log\n      format: raw\n"
#define MAX_RECORD (512 * 1024) /* the agent's default max_record_bytes */

/* --- writer child for the kill test --- */

#define W_FILES          3
#define W_ROTATE_EVERY   700
#define W_LINES_PER_FILE 3500

/* Writes W_LINES_PER_FILE lines per file at about 600 lines/s in total,
 * rotating every W_ROTATE_EVERY lines: odd generations renamed inside the
 * glob (app-i.log -> app-i.log.G), even ones outside it (-> rot-i.G). */
static void writer_main(void *ud)
{
    const char *dir = ud;
    FILE *f[W_FILES];
    char path[512];
    int gen[W_FILES] = {0};
    for (int i = 0; i < W_FILES; i++) {
        snprintf(path, sizeof(path), "%s/app-%d.log", dir, i);
        f[i] = fopen(path, "a");
    }
    struct timespec pause = {0, 5 * 1000 * 1000};
    for (int n = 0; n < W_LINES_PER_FILE; n++) {
        for (int i = 0; i < W_FILES; i++) {
            fprintf(f[i], "{\"actor\":\"w%d\",\"gen\":%d,\"n\":%d,\"pad\":\"%0*d\"}\n", i, gen[i],
                    n, 40 + (n * 7) % 60, n);
            fflush(f[i]);
            if ((n + 1) % W_ROTATE_EVERY == 0) {
                char live[512], rot[512];
                snprintf(live, sizeof(live), "%s/app-%d.log", dir, i);
                if (gen[i] % 2)
                    snprintf(rot, sizeof(rot), "%s/app-%d.log.%d", dir, i, gen[i]);
                else
                    snprintf(rot, sizeof(rot), "%s/rot-%d.%d", dir, i, gen[i]);
                rename(live, rot);
                /* a few lines still reach the old file before the reopen */
                fprintf(f[i], "{\"actor\":\"w%d\",\"gen\":%d,\"late\":true}\n", i, gen[i]);
                fclose(f[i]);
                gen[i]++;
                f[i] = fopen(live, "a");
            }
        }
        if (n % 2 == 0)
            nanosleep(&pause, NULL);
    }
    for (int i = 0; i < W_FILES; i++)
        fclose(f[i]);
    _exit(0);
}

START_TEST(test_sigkill_during_writes_and_rotations)
{
    struct ah_env e;
    ah_env_init(&e, "agentkill",
                &(struct ah_opts){.agent_extra = "  rotate_wait_ms: 300\n"
                                                 "  checkpoint_interval_ms: 200\n"
                                                 "  rescan_interval_ms: 200\n",
                                  .inputs = "    - path: %s/app-*.log*\n      format: json\n",
                                  .partitions = 8});
    unsigned seed = test_seed("test_sigkill_during_writes_and_rotations");
    char *wlog = xasprintf("%s/writer.log", e.dir);
    struct proc *writer = proc_fork("writer", writer_main, e.logs, wlog);
    ah_start(&e);
    int kills = 0;
    for (;;) {
        int st = 0;
        bool writer_done = !proc_alive(writer, &st);
        struct timespec t = {0, (long)(300 + rand_r(&seed) % 1500) * 1000 * 1000};
        nanosleep(&t, NULL);
        ah_kill(&e);
        kills++;
        ah_start(&e);
        if (writer_done) {
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer failed (log %s)", wlog);
            if (kills >= 5)
                break;
        }
    }
    struct expect x = {0};
    expect_add_dir(&x, e.logs, MAX_RECORD);
    ck_assert_uint_ge(x.n, (size_t)W_FILES * W_LINES_PER_FILE);
    /* the last agent ships the rest, then stops cleanly */
    ck_assert_msg(ah_wait_distinct(&e, x.n, 60000), "not every record reached the topic");
    ah_stop(&e);
    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = (long)x.n, .streams = AH_ANY, .dups = AH_ANY}, &m);
    ah_assert_files(&m, &x);
    fprintf(stderr, "kill test: %d kills, %zu records, %zu exact re-sends\n", kills, m.n, m.dups);
    ah_msgs_release(&m);
    expect_release(&x);
    proc_free(writer);
    free(wlog);
    ah_env_release(&e);
}
END_TEST

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* The agent reports Kafka unreachable (auditrail_agent_kafka_up 0). */
static bool kafka_down(const struct ah_env *e)
{
    return probe_wait_metric_range(e->port, "auditrail_agent_kafka_up", 0, 0, 15000);
}

static void append_n(const char *path, const char *tag, int from, int to, int pad)
{
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    for (int i = from; i < to; i++)
        fprintf(f, "%s %07d %0*d\n", tag, i, pad, i);
    fclose(f);
}

/* Collect the topic and assert its streams are exactly the files of x,
 * with `dups` exact re-sends (AH_ANY after a Kafka fault). */
static void assert_shipped(struct ah_env *e, struct expect *x, long streams, long dups)
{
    struct ah_msgs m = {0};
    ah_collect(e, (struct ah_want){.records = (long)x->n, .streams = streams, .dups = dups}, &m);
    ah_assert_files(&m, x);
    if (m.dups)
        fprintf(stderr, "%s: %zu exact re-sends\n", e->topic, m.dups);
    ah_msgs_release(&m);
    expect_release(x);
}

START_TEST(test_brokers_down_20s)
{
    struct ah_env e;
    ah_env_init(&e, "agentdown",
                &(struct ah_opts){.agent_extra = "  max_inflight_bytes: 256KiB\n"
                                                 "  kafka_unready_ms: 3000\n"
                                                 "  shutdown_timeout_ms: 20000\n",
                                  .inputs = RAW_INPUTS,
                                  .private_mock = true});
    char *a = ah_path(&e, "a.log");
    append_n(a, "before", 0, 1000, 100);
    ah_start(&e);
    ah_wait_acked(&e, 1000);
    ck_assert(probe_wait_ready(e.port, 10000));
    char reply[256];
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "brokers down", reply, sizeof(reply)), 0);
    uint64_t down_at = test_now_ms();
    /* ~2 MB of lines (~10 MB of envelopes) written while Kafka is away: far
     * more than max_inflight_bytes, little enough for the mock's ~5 MB per
     * partition (DESIGN.md §9) */
    append_n(a, "during", 0, 20000, 80);
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_backpressure_paused", 1, 15000));
    ck_assert(kafka_down(&e));
    /* Kafka down is not "not ready": the sidecar keeps its application in
     * its Services; the file is the buffer (README, Health) */
    ck_assert_int_eq(probe_http_get(e.port, "/readyz", NULL), 200);
    ck_assert_int_eq(probe_http_get(e.port, "/livez", NULL), 200);
    long rss_during = rss_kb(e.agent->pid);
    while (test_now_ms() - down_at < 20000) {
        long r = rss_kb(e.agent->pid);
        if (r > rss_during)
            rss_during = r;
        struct timespec t = {0, 200 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    double unacked = probe_metric_value(e.port, "auditrail_agent_unacked_bytes");
    ck_assert_msg(unacked <= 256 * 1024 + 8192, "unacked bytes %.0f above the limit", unacked);
    ck_assert_int_eq(probe_http_get(e.port, "/readyz", NULL), 200); /* all through the outage */
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "brokers up", reply, sizeof(reply)), 0);
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_records_acked_total", 21000, 120000));
    ck_assert_int_eq(probe_http_get(e.port, "/readyz", NULL), 200);
    ah_stop(&e);
    /* memory stayed bounded while the backlog waited in the file */
    ck_assert_msg(rss_during < 64 * 1024, "RSS %ld kB while Kafka was down", rss_during);
    fprintf(stderr, "brokers down: peak RSS %ld kB\n", rss_during);
    struct expect x = {0};
    expect_add_file(&x, a, false, MAX_RECORD);
    assert_shipped(&e, &x, 1, AH_ANY);
    free(a);
    ah_env_release(&e);
}
END_TEST

START_TEST(test_deleted_before_fully_read)
{
    struct ah_env e;
    ah_env_init(&e, "agentdel",
                &(struct ah_opts){.agent_extra = "  max_inflight_records: 64\n"
                                                 "  rotate_wait_ms: 100\n",
                                  .inputs = RAW_INPUTS});
    char *a = ah_path(&e, "a.log");
    append_n(a, "del", 0, 30000, 20);
    struct expect x = {0};
    expect_add_file(&x, a, false, MAX_RECORD);
    ah_start(&e);
    ah_wait_acked(&e, 1);
    ck_assert_int_eq(unlink(a), 0);
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_files_deleted_total", 1, 20000));
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_records_acked_total", 30000, 60000));
    ah_stop(&e);
    assert_shipped(&e, &x, 1, 0);
    free(a);
    ah_env_release(&e);
}
END_TEST

START_TEST(test_inode_reuse_after_restart)
{
    struct ah_env e;
    ah_env_init(&e, "agentreuse", &(struct ah_opts){.inputs = RAW_INPUTS});
    char *a = ah_path(&e, "a.log"), *b = ah_path(&e, "b.log");
    /* same first line in both files: only dev+inode+birth time tell them apart */
    append_n(a, "same", 0, 1, 5);
    append_n(a, "A", 1, 50, 5);
    ah_start(&e);
    ah_wait_acked(&e, 50);
    ah_stop(&e);
    struct stat sa, sb;
    ck_assert_int_eq(stat(a, &sa), 0);
    struct expect x = {0};
    expect_add_file(&x, a, false, MAX_RECORD);
    ck_assert_int_eq(unlink(a), 0);
    /* ext4 hands the freed inode to the next file created */
    bool reused = false;
    for (int i = 0; i < 200 && !reused; i++) {
        append_n(b, "same", 0, 1, 5);
        append_n(b, "B", 1, 80, 5);
        ck_assert_int_eq(stat(b, &sb), 0);
        reused = sb.st_ino == sa.st_ino;
        if (!reused)
            unlink(b);
    }
    ck_assert_msg(reused, "the filesystem did not reuse the inode");
    expect_add_file(&x, b, false, MAX_RECORD);
    ah_start(&e);
    ah_wait_acked(&e, 80);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_inode_reuses_total"), 1);
    ah_stop(&e);
    assert_shipped(&e, &x, 2, 0); /* all of B from seq 0, as a stream of its own */
    free(a);
    free(b);
    ah_env_release(&e);
}
END_TEST

START_TEST(test_copytruncate_long_line_binary)
{
    struct ah_env e;
    ah_env_init(&e, "agenthard",
                &(struct ah_opts){.agent_extra = "  rotate_wait_ms: 100\n",
                                  .inputs = "    - path: %s/*.log\n      format: json\n",
                                  .partitions = 8});
    char *c = ah_path(&e, "c.log"), *big = ah_path(&e, "big.log"), *bin = ah_path(&e, "bin.log");
    /* a 2 MB line between two short ones */
    size_t n = 2 * 1024 * 1024;
    char *line = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        line[i] = (char)('a' + i % 26);
    line[n] = '\n';
    test_write_file(big, "first\n", 6, false);
    test_write_file(big, line, n + 1, true);
    test_write_file(big, "last\n", 5, true);
    /* binary: random bytes */
    unsigned seed = 7;
    size_t bn = 256 * 1024;
    uint8_t *rnd = xmalloc(bn);
    for (size_t i = 0; i < bn; i++)
        rnd[i] = (uint8_t)rand_r(&seed);
    rnd[bn - 1] = '\n';
    test_write_file(bin, rnd, bn, false);
    append_n(c, "pre", 0, 200, 10);
    ah_start(&e);
    ah_wait_acked(&e, 203);
    /* copytruncate: copy, then truncate in place, then the app writes on */
    struct expect x = {0};
    expect_add_file(&x, c, false, MAX_RECORD); /* the copy's records: generation 0 */
    ck_assert_int_eq(truncate(c, 0), 0);
    append_n(c, "post", 0, 100, 10);
    expect_add_file(&x, c, false, MAX_RECORD);
    expect_add_file(&x, bin, false, MAX_RECORD);
    expect_add_file(&x, big, false, MAX_RECORD); /* the cut record keeps max_record_bytes */
    ck_assert_uint_eq(x.file[3].n, 3);
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_file_truncations_total", 1, 20000));
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_records_acked_total", (double)x.n, 20000));
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_records_truncated_total"), 1);
    ah_stop(&e);
    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = (long)x.n, .streams = 4}, &m);
    ah_assert_files(&m, &x);
    const struct ah_msg *b0 = ah_first_of(&m, big);
    ck_assert_ptr_nonnull(b0);
    for (size_t i = 0; i < m.n; i++)
        ck_assert_uint_eq(m.v[i].truncated, &m.v[i] == b0 + 1 ? n - MAX_RECORD : 0);
    ah_msgs_release(&m);
    expect_release(&x);
    free(rnd);
    free(line);
    free(c);
    free(big);
    free(bin);
    ah_env_release(&e);
}
END_TEST

/* Deliveries that fail (message.timeout.ms passes while every broker is
 * down) never advance the checkpoint: the stream is re-read from its
 * acknowledged prefix and the re-sent records carry identical ids. */
START_TEST(test_failed_delivery_rewinds)
{
    struct ah_env e;
    ah_env_init(&e, "agentfail",
                &(struct ah_opts){.agent_extra = "  kafka_unready_ms: 2000\n",
                                  .inputs = RAW_INPUTS,
                                  .kafka_properties = "    message.timeout.ms: \"1500\"\n",
                                  .private_mock = true});
    char *a = ah_path(&e, "a.log");
    append_n(a, "ok", 0, 100, 10);
    ah_start(&e);
    ah_wait_acked(&e, 100);
    char reply[256];
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "brokers down", reply, sizeof(reply)), 0);
    append_n(a, "lost-then-resent", 0, 200, 10);
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_delivery_errors_total", 1, 30000));
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_rewinds_total", 1, 30000));
    ck_assert(kafka_down(&e));
    ck_assert_int_eq(probe_http_get(e.port, "/readyz", NULL), 200); /* Kafka is not readiness */
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "brokers up", reply, sizeof(reply)), 0);
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_records_acked_total", 300, 60000));
    ah_stop(&e);
    struct expect x = {0};
    expect_add_file(&x, a, false, MAX_RECORD);
    assert_shipped(&e, &x, 1, AH_ANY);
    free(a);
    ah_env_release(&e);
}
END_TEST

/* A fatal producer error (the broker rejects a sequence: idempotence is
 * broken) stops the agent with status 3 after writing the checkpoint of what
 * was acknowledged; the restart re-sends the rest: nothing is lost. */
START_TEST(test_fatal_producer_error_exits_3)
{
    struct ah_env e;
    ah_env_init(&e, "agentfatal",
                &(struct ah_opts){.inputs = RAW_INPUTS, .partitions = 1, .private_mock = true});
    char *a = ah_path(&e, "a.log");
    append_n(a, "acked", 0, 50, 10);
    ah_start(&e);
    ah_wait_acked(&e, 50);
    char reply[256];
    /* Produce (API key 0) answered with OUT_OF_ORDER_SEQUENCE_NUMBER (45) */
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "errors push 0 45 3", reply, sizeof(reply)), 0);
    append_n(a, "rejected", 0, 10, 10);
    ck_assert_int_eq(proc_wait(e.agent, 30000), 3);
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "errors clear 0", reply, sizeof(reply)), 0);
    ah_start(&e);
    ah_wait_acked(&e, 10);
    ah_stop(&e);
    struct expect x = {0};
    expect_add_file(&x, a, false, MAX_RECORD);
    assert_shipped(&e, &x, 1, AH_ANY);
    free(a);
    ah_env_release(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_chaos");
    TCase *tc = tcase_create("chaos");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_sigkill_during_writes_and_rotations);
    tcase_add_test(tc, test_brokers_down_20s);
    tcase_add_test(tc, test_deleted_before_fully_read);
    tcase_add_test(tc, test_inode_reuse_after_restart);
    tcase_add_test(tc, test_copytruncate_long_line_binary);
    tcase_add_test(tc, test_failed_delivery_rewinds);
    tcase_add_test(tc, test_fatal_producer_error_exits_3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
