/* The agent binary against kafka-mock: records come back byte-exact, chains
 * verified independently (tests/support/agent_harness.c), each stream
 * exactly one file's records in order (tests/support/expect.c), checkpoints
 * continue the chain across restarts, rotation and copytruncate, config
 * errors. One unique topic per test. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/agent_harness.h"
#include "tests/support/probe.h"
#include "tests/support/testutil.h"
#include "tests/support/webhook.h"

#define RAW_INPUTS "    - path: %s/*.log\n      format: raw\n"

static void append_lines(const char *path, const char *tag, int from, int to)
{
    char line[128];
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    for (int i = from; i < to; i++) {
        int n = snprintf(line, sizeof(line), "%s line %06d\n", tag, i);
        fwrite(line, 1, (size_t)n, f);
    }
    fclose(f);
}

static size_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (size_t)st.st_size;
}

/* A file's records as they are now: for one that changes or goes later. */
static void expect_now(struct expect *x, const char *path, bool final)
{
    expect_add_file(x, path, final, 0);
}

START_TEST(test_byte_exact_and_chained)
{
    struct ah_env e;
    ah_env_init(
        &e, "agent-exact",
        &(struct ah_opts){.agent_extra = "  max_record_bytes: 1KiB\n  rotate_wait_ms: 100\n",
                          .inputs = "    - path: %s/*.log\n      format: json\n"});
    char *a = ah_path(&e, "a.log"), *b = ah_path(&e, "b.log");
    /* a.log: JSON, CRLF, NUL, invalid UTF-8, empty lines, a cut line */
    size_t big = 3000;
    char *longline = xmalloc(big + 1);
    memset(longline, 'L', big);
    longline[big] = '\0';
    char *content = xasprintf("{\"time\":\"2026-11-26T10:00:00Z\",\"actor\":\"ann\"}\n"
                              "crlf line\r\n\n\n%s\nutf8 \xc3\xa9 ok\n",
                              longline);
    test_write_file(a, content, strlen(content), false);
    static const uint8_t bin[] = "nul\x00inside\nbad \xff\xfe utf8\n";
    test_write_file(a, bin, sizeof(bin) - 1, true);
    static const char bcontent[] = "b one\nb two\nno newline yet";
    test_write_file(b, bcontent, sizeof(bcontent) - 1, false);

    ah_start(&e);
    ah_wait_acked(&e, 8);
    /* b's last line waits for its newline while the file is live... */
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_records_read_total"), 8);
    /* ...and is emitted once the file is deleted and drained */
    unlink(b);
    ah_wait_acked(&e, 9);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_records_truncated_total"), 1);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_truncated_bytes_total"),
                     big - 1024);
    ck_assert_int_eq(probe_http_get(e.port, "/healthz", NULL), 200);
    ck_assert_int_eq(probe_http_get(e.port, "/readyz", NULL), 200);
    ah_stop(&e);

    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = 9, .streams = 2}, &m);
    struct expect x = {0};
    expect_add_file(&x, a, false, 1024); /* the cut record keeps max_record_bytes */
    expect_add_bytes(&x, "b.log", bcontent, sizeof(bcontent) - 1, true, 0);
    ah_assert_files(&m, &x);
    const struct ah_msg *first = ah_first_of(&m, a);
    ck_assert_ptr_nonnull(first);
    ck_assert_uint_eq(first[2].seq, 2);
    ck_assert_uint_eq(first[2].truncated, big - 1024);
    expect_release(&x);
    ah_msgs_release(&m);
    free(a);
    free(b);
    free(content);
    free(longline);
    ah_env_release(&e);
}
END_TEST

START_TEST(test_restart_continues_chain)
{
    struct ah_env e;
    ah_env_init(&e, "agent-restart", &(struct ah_opts){.inputs = RAW_INPUTS});
    char *a = ah_path(&e, "app.log");
    append_lines(a, "r", 0, 100);
    ah_start(&e);
    ah_wait_acked(&e, 100);
    ck_assert_msg(probe_wait_metric_range(e.port, "auditrail_agent_backlog_bytes", 0, 0, 20000),
                  "backlog_bytes not 0 once acked");
    ah_stop(&e);
    append_lines(a, "r", 100, 250);
    ah_start(&e);
    ah_wait_acked(&e, 150);
    ah_stop(&e);

    /* The same stream, continued; a clean stop re-sends nothing. */
    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = 250, .streams = 1}, &m);
    struct expect x = {0};
    expect_now(&x, a, false);
    ah_assert_files(&m, &x);
    expect_release(&x);
    ah_msgs_release(&m);
    free(a);
    ah_env_release(&e);
}
END_TEST

/* logrotate's rename + create, once with the rotated name inside the glob
 * (app.log -> app.log.1, glob app.log*) and once outside it (-> old.txt):
 * lines written to the old file after the rename are shipped, the rotated
 * file is never re-read, the new file is a new stream. */
static void rotation_case(const char *rotated_name, const char *tag)
{
    struct ah_env e;
    ah_env_init(&e, tag,
                &(struct ah_opts){.agent_extra = "  rotate_wait_ms: 300\n",
                                  .inputs = "    - path: %s/app.log*\n      format: raw\n"});
    char *a = ah_path(&e, "app.log"), *r = ah_path(&e, rotated_name);
    append_lines(a, "gen1", 0, 50);
    ah_start(&e);
    ah_wait_acked(&e, 50);
    ck_assert_int_eq(rename(a, r), 0);
    append_lines(r, "gen1", 50, 60); /* the writer has not reopened yet */
    test_write_file(r, "gen1 final without newline", 26, true);
    append_lines(a, "gen2", 0, 40);
    ah_wait_acked(&e, 101);
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_rotations_total", 1, 5000));
    /* a restart must not re-read either file */
    ah_stop(&e);
    ah_start(&e);
    append_lines(a, "gen2", 40, 45);
    ah_wait_acked(&e, 5);
    ah_stop(&e);

    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = 106, .streams = 2}, &m);
    struct expect x = {0};
    expect_now(&x, r, true);
    expect_now(&x, a, false);
    ck_assert_uint_eq(x.file[0].n, 61);
    ck_assert_uint_eq(x.file[1].n, 45);
    ah_assert_files(&m, &x);
    expect_release(&x);
    ah_msgs_release(&m);
    free(a);
    free(r);
    ah_env_release(&e);
}

START_TEST(test_rotation_rename_inside_glob)
{
    rotation_case("app.log.1", "agent-rot-in");
}
END_TEST

START_TEST(test_rotation_rename_outside_glob)
{
    rotation_case("old.txt", "agent-rot-out");
}
END_TEST

/* Truncated in place and written again: the old generation's 30 records are
 * one stream, the 20 after the truncation a new stream from seq 0. */
START_TEST(test_copytruncate_new_generation)
{
    struct ah_env e;
    ah_env_init(&e, "agent-ctrunc", &(struct ah_opts){.inputs = RAW_INPUTS});
    char *a = ah_path(&e, "app.log");
    append_lines(a, "before", 0, 30);
    ah_start(&e);
    ah_wait_acked(&e, 30);
    struct expect x = {0};
    expect_now(&x, a, false); /* generation 0, gone after the truncation */
    ck_assert_int_eq(truncate(a, 0), 0);
    append_lines(a, "after", 0, 20);
    ah_wait_acked(&e, 50);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_file_truncations_total"), 1);
    ah_stop(&e);
    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = 50, .streams = 2}, &m);
    expect_now(&x, a, false); /* generation 1 */
    ah_assert_files(&m, &x);
    expect_release(&x);
    ah_msgs_release(&m);
    free(a);
    ah_env_release(&e);
}
END_TEST

START_TEST(test_multiline_join_and_flush)
{
    struct ah_env e;
    ah_env_init(&e, "agent-ml",
                &(struct ah_opts){.inputs = "    - path: %s/*.log\n      format: raw\n"
                                            "      multiline:\n"
                                            "        start_pattern: \"^[0-9]{4}-\"\n"
                                            "        flush_ms: 200\n"});
    char *a = ah_path(&e, "pg.log");
    const char *text = "2026-01 SELECT *\n  FROM t\n\n  WHERE x\n2026-02 UPDATE t\n  SET y\n";
    test_write_file(a, text, strlen(text), false);
    ah_start(&e);
    /* the first record ends at the second start line; the second after 200 ms of quiet */
    ah_wait_acked(&e, 2);
    ah_stop(&e);
    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = 2, .streams = 1}, &m);
    const char *r0 = "2026-01 SELECT *\n  FROM t\n\n  WHERE x", *r1 = "2026-02 UPDATE t\n  SET y";
    ck_assert_uint_eq(m.v[0].line_len, strlen(r0));
    ck_assert_int_eq(memcmp(m.v[0].line, r0, strlen(r0)), 0);
    ck_assert_uint_eq(m.v[0].offset, 0);
    ck_assert_uint_eq(m.v[1].line_len, strlen(r1));
    ck_assert_int_eq(memcmp(m.v[1].line, r1, strlen(r1)), 0);
    ck_assert_uint_eq(m.v[1].offset, strlen(r0) + 1);
    ah_msgs_release(&m);
    free(a);
    ah_env_release(&e);
}
END_TEST

/* read_from: end skips what a file held at the first start and ships what
 * is appended after, from the old end; a file that appears later is read
 * from its beginning; a restart is not a first start. */
START_TEST(test_read_from_end)
{
    struct ah_env e;
    ah_env_init(&e, "agent-end",
                &(struct ah_opts){.agent_extra = "  read_from: end\n", .inputs = RAW_INPUTS});
    char *a = ah_path(&e, "old.log"), *b = ah_path(&e, "new.log");
    append_lines(a, "old", 0, 10);
    size_t old_end = file_size(a);
    ah_start(&e);
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_open_files", 1, 20000));
    append_lines(a, "tail", 0, 5);
    append_lines(b, "newfile", 0, 3); /* appears later: read from its beginning */
    ah_wait_acked(&e, 8);
    ah_stop(&e);
    ah_start(&e);
    append_lines(a, "tail", 5, 6);
    ah_wait_acked(&e, 1);
    ah_stop(&e);
    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = 9, .streams = 2}, &m);
    size_t len;
    uint8_t *data = test_read_file(a, &len);
    ck_assert_ptr_nonnull(data);
    struct expect x = {0};
    expect_add_bytes(&x, "old.log after its end at the start", data + old_end, len - old_end, false,
                     0);
    expect_now(&x, b, false);
    ah_assert_files(&m, &x);
    const struct ah_msg *first = ah_first_of(&m, a);
    ck_assert_ptr_nonnull(first);
    ck_assert_uint_eq(first->offset, old_end);
    ck_assert_uint_eq(ah_first_of(&m, b)->offset, 0);
    free(data);
    expect_release(&x);
    ah_msgs_release(&m);
    free(a);
    free(b);
    ah_env_release(&e);
}
END_TEST

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Every record of the stream of path was read at or after not_before. */
static void assert_read_after(const struct ah_msgs *m, const char *path, int64_t not_before)
{
    const struct ah_msg *x = ah_first_of(m, path);
    ck_assert_ptr_nonnull(x);
    const char *stream = x->stream;
    for (const struct ah_msg *end = m->v + m->n; x < end && !strcmp(x->stream, stream); x++)
        ck_assert_msg(x->read_time_us >= not_before,
                      "%s seq %llu read while another file was open (max_open_files 1)", path,
                      (unsigned long long)x->seq);
}

/* max_open_files: 1 holds the other files back until the open one is
 * drained and closed: f1 is read only after f0 is gone, f2 after f1; each
 * file is still shipped whole, as one stream. */
START_TEST(test_max_open_files)
{
    struct ah_env e;
    ah_env_init(&e, "agent-maxopen",
                &(struct ah_opts){.agent_extra = "  max_open_files: 1\n  rotate_wait_ms: 100\n",
                                  .inputs = RAW_INPUTS});
    char *f[3];
    struct expect x = {0};
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d.log", i);
        f[i] = ah_path(&e, name);
        append_lines(f[i], name, 0, 10);
        expect_now(&x, f[i], false);
    }
    ah_start(&e);
    ah_wait_acked(&e, 10);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_open_files"), 1);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_files_waiting"), 2);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_open_files_max"), 1);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_records_acked_total"), 10);
    /* the open file goes away: drained, closed, the next one opens */
    int64_t gone0 = wall_us();
    unlink(f[0]);
    ah_wait_acked(&e, 20);
    int64_t gone1 = wall_us();
    unlink(f[1]);
    ah_wait_acked(&e, 30);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_files_waiting"), 0);
    ah_stop(&e);
    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = 30, .streams = 3}, &m);
    ah_assert_files(&m, &x);
    assert_read_after(&m, f[1], gone0);
    assert_read_after(&m, f[2], gone1);
    expect_release(&x);
    ah_msgs_release(&m);
    for (int i = 0; i < 3; i++)
        free(f[i]);
    ah_env_release(&e);
}
END_TEST

/* The agent dies, the file is rotated to a name outside the glob while it is
 * down, and more lines reach the rotated file: the restart finds it again by
 * its inode, drains it on the same stream, and reads the new file. */
START_TEST(test_rotated_outside_glob_while_down)
{
    struct ah_env e;
    ah_env_init(&e, "agent-down-rot",
                &(struct ah_opts){.agent_extra = "  rotate_wait_ms: 100\n",
                                  .inputs = "    - path: %s/app.log\n      format: raw\n"});
    char *a = ah_path(&e, "app.log"), *r = ah_path(&e, "app.log-old");
    append_lines(a, "first", 0, 40);
    ah_start(&e);
    ah_wait_acked(&e, 40);
    /* let a checkpoint be written, then crash */
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_checkpoint_writes_total", 2, 20000));
    ah_kill(&e);
    ck_assert_int_eq(rename(a, r), 0);
    append_lines(r, "first", 40, 55);
    append_lines(a, "second", 0, 20);
    ah_start(&e);
    ah_wait_acked(&e, 35);
    ah_stop(&e);
    struct ah_msgs m = {0};
    ah_collect(&e, (struct ah_want){.records = 75, .streams = 2}, &m);
    struct expect x = {0};
    expect_now(&x, r, false);
    expect_now(&x, a, false);
    ah_assert_files(&m, &x);
    expect_release(&x);
    ah_msgs_release(&m);
    free(a);
    free(r);
    ah_env_release(&e);
}
END_TEST

static int run_check(const char *config)
{
    char *bin = test_bin("auditrail-agent");
    char *cmd = xasprintf("'%s' --config '%s' --check-config >/dev/null 2>&1", bin, config);
    int st = system(cmd);
    free(cmd);
    free(bin);
    return WEXITSTATUS(st);
}

START_TEST(test_check_config)
{
    char *dir = test_tmpdir("agent-cfg");
    char *p = xasprintf("%s/c.yaml", dir);
    static const char *good =
        "agent:\n  checkpoint_dir: /tmp/x\n  inputs:\n    - path: /tmp/*.log\n"
        "      format: json\nkafka:\n  brokers: a:1\n";
    static const char *bad[] = {
        "agent:\n  inputs:\n    - path: /tmp/*.log\n      format: nope\nkafka:\n  brokers: a:1\n",
        "agent:\n  bogus: 1\n  inputs:\n    - path: /tmp/*.log\nkafka:\n  brokers: a:1\n",
        "agent:\n  read_from: middle\n  inputs:\n    - path: /tmp/*.log\nkafka:\n  brokers: a:1\n",
        "agent:\n  inputs:\n    - path: /tmp/*.log\n      multiline:\n        start_pattern: "
        "\"([\"\nkafka:\n  brokers: a:1\n",
        "agent:\n  inputs: []\nkafka:\n  brokers: a:1\n",
    };
    test_write_file(p, good, strlen(good), false);
    ck_assert_int_eq(run_check(p), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        test_write_file(p, bad[i], strlen(bad[i]), false);
        ck_assert_msg(run_check(p) == 2, "bad config #%zu accepted", i);
    }
    free(p);
    test_rmtree(dir);
    free(dir);
}
END_TEST

/* Kafka unreachable from the start: the agent keeps reading into its
 * in-flight budget, fires AuditrailKafkaUnavailable, shows kafka_up 0, and
 * stays ready and live: a sidecar's readiness must not take the application
 * out of its Services for a Kafka outage (the file is the buffer). Its
 * /metrics carries the process metrics and build info. */
START_TEST(test_kafka_unreachable_stays_ready)
{
    struct webhook *hook = webhook_start();
    char *brokers = xasprintf("127.0.0.1:%u", probe_free_port()); /* nothing listens */
    char *alerts = xasprintf("http://127.0.0.1:%u/api/v2/alerts", webhook_port(hook));
    struct ah_env e;
    ah_env_init(&e, "agent-nokafka",
                &(struct ah_opts){.agent_extra = "  kafka_unready_ms: 300\n"
                                                 "  shutdown_timeout_ms: 0\n",
                                  .inputs = RAW_INPUTS,
                                  .brokers = brokers,
                                  .alerts_url = alerts});
    char *a = ah_path(&e, "a.log");
    append_lines(a, "k", 0, 20);
    ah_start(&e);
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_records_read_total", 20, 20000));
    /* nothing acknowledged: the whole file is backlog */
    ck_assert(probe_wait_metric(e.port, "auditrail_agent_backlog_bytes", 20 * 14, 20000));
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_backlog_bytes"), 20 * 14);
    ck_assert_msg(webhook_wait(hook, "AuditrailKafkaUnavailable", 20000),
                  "no AuditrailKafkaUnavailable alert");
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_kafka_up"), 0);
    ck_assert_int_eq(probe_metric_value(e.port, "auditrail_agent_records_acked_total"), 0);
    ck_assert_int_eq(probe_http_get(e.port, "/readyz", NULL), 200);
    char *body = NULL;
    ck_assert_int_eq(probe_http_get(e.port, "/livez", &body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"live\":true"));
    free(body);
    body = NULL;
    ck_assert_int_eq(probe_http_get(e.port, "/metrics", &body), 200);
    /* the process metrics are registered (their values: test_procmetrics) */
    ck_assert(strstr(body, "\nprocess_resident_memory_bytes "));
    ck_assert(strstr(body, "\nauditrail_build_info{program=\"agent\",version=\""));
    /* handed to the producer (librdkafka queues them while no broker is up),
     * counted under the input's format */
    ck_assert_msg(
        strstr(body, "\nauditrail_agent_records_produced_by_format_total{format=\"raw\"} 20\n"),
        "raw records not counted by format");
    ck_assert(
        strstr(body, "\nauditrail_agent_records_produced_by_format_total{format=\"json\"} 0\n"));
    free(body);
    ck_assert(probe_metric_value(e.port, "process_open_fds") > 0);
    ah_stop(&e);
    webhook_stop(hook);
    free(a);
    free(alerts);
    free(brokers);
    ah_env_release(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_ship");
    TCase *tc = tcase_create("ship");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_byte_exact_and_chained);
    tcase_add_test(tc, test_restart_continues_chain);
    tcase_add_test(tc, test_rotation_rename_inside_glob);
    tcase_add_test(tc, test_rotation_rename_outside_glob);
    tcase_add_test(tc, test_copytruncate_new_generation);
    tcase_add_test(tc, test_check_config);
    tcase_add_test(tc, test_multiline_join_and_flush);
    tcase_add_test(tc, test_read_from_end);
    tcase_add_test(tc, test_max_open_files);
    tcase_add_test(tc, test_rotated_outside_glob_while_down);
    tcase_add_test(tc, test_kafka_unreachable_stays_ready);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
