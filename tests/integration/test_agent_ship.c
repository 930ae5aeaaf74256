/* The agent binary against kafka-mock: records come back byte-exact, chains
 * verified independently (tests/support/agent_harness.c), checkpoints
 * continue the chain across restarts, rotation and copytruncate, config
 * errors. One unique topic per test. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/agent_harness.h"
#include "tests/support/teststack.h"
#include "tests/support/e2e.h"
#include "tests/support/testutil.h"
#include "tests/support/webhook.h"

struct alert_wait {
    struct webhook *hook;
    const char *name;
};

static bool alert_seen(void *ud)
{
    struct alert_wait *w = ud;
    return webhook_count(w->hook, w->name) > 0;
}

struct env {
    char *dir, *logs, *config, *log, *topic;
    char *brokers; /* copied: test_stack() returns static storage */
    int port;
};

static void env_init(struct env *e, const char *name, const char *extra, const char *inputs_fmt)
{
    e->dir = test_tmpdir(name);
    e->logs = xasprintf("%s/logs", e->dir);
    mkdir(e->logs, 0755);
    e->log = xasprintf("%s/agent.log", e->dir);
    e->brokers = xstrdup(test_stack("STACK_KAFKA_BROKERS"));
    e->topic = test_kafka_topic(name, 4);
    e->port = ah_free_port();
    char *inputs = xasprintf(inputs_fmt, e->logs);
    e->config = ah_write_config(e->dir, e->brokers, e->topic, e->port, extra, inputs, NULL);
    free(inputs);
}

static void env_free(struct env *e)
{
    test_rmtree(e->dir);
    free(e->dir);
    free(e->logs);
    free(e->config);
    free(e->log);
    free(e->topic);
    free(e->brokers);
}

static char *path_in(const struct env *e, const char *name)
{
    return xasprintf("%s/%s", e->logs, name);
}

/* Records of one stream in seq order must be exactly `lines`. */
static void assert_stream_is(const struct ah_msgs *m, const char *stream, uint8_t **lines,
                             size_t *lens, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].stream, stream) != 0)
            continue;
        ck_assert_msg(k < n, "stream %s has more records than lines (%zu)", stream, n);
        ck_assert_uint_eq(m->v[i].seq, k);
        ck_assert_msg(m->v[i].line_len == lens[k] && !memcmp(m->v[i].line, lines[k], lens[k]),
                      "stream %s seq %zu differs from the file's line", stream, k);
        k++;
    }
    ck_assert_uint_eq(k, n);
}

/* The stream whose records came from `path` (first match). */
static const char *stream_of(const struct ah_msgs *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].path && !strcmp(m->v[i].path, path))
            return m->v[i].stream;
    return NULL;
}

static size_t count_streams(const struct ah_msgs *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += i == 0 || strcmp(m->v[i].stream, m->v[i - 1].stream) != 0;
    return n;
}

START_TEST(test_byte_exact_and_chained)
{
    struct env e;
    env_init(&e, "agent-exact", "  max_record_bytes: 1KiB\n  rotate_wait_ms: 100\n",
             "    - path: %s/*.log\n      format: json\n");
    char *a = path_in(&e, "a.log"), *b = path_in(&e, "b.log");
    /* a.log: JSON, CRLF, NUL, invalid UTF-8, empty lines, a cut line */
    size_t big = 3000;
    char *longline = xmalloc(big + 1);
    memset(longline, 'L', big);
    longline[big] = '\0';
    char *content = xasprintf("{\"time\":\"2026-11-26T10:00:00Z\",\"actor\":\"ann\"}\n"
                              "crlf line\r\n\n\n%s\nutf8 \xc3\xa9 ok\n",
                              longline);
    size_t clen = strlen(content);
    test_write_file(a, content, clen, false);
    static const uint8_t bin[] = "nul\x00inside\nbad \xff\xfe utf8\n";
    test_write_file(a, bin, sizeof(bin) - 1, true);
    test_write_file(b, "b one\nb two\nno newline yet", 26, false);

    pid_t pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 8, 20000));
    /* b's last line waits for its newline while the file is live... */
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_records_read_total"), 8);
    /* ...and is emitted once the file is deleted and drained */
    unlink(b);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 9, 20000));
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_records_truncated_total"), 1);
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_truncated_bytes_total"), big - 1024);
    ck_assert_int_eq(ah_http_get(e.port, "/healthz", NULL), 200);
    ck_assert_int_eq(ah_http_get(e.port, "/readyz", NULL), 200);
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);

    struct ah_msgs m = {0};
    ah_consume(e.brokers, e.topic, 9, 20000, &m);
    size_t dups;
    char err[256];
    ck_assert_msg(ah_verify_chains(&m, &dups, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(m.n, 9);
    ck_assert_uint_eq(dups, 0);
    ck_assert_uint_eq(count_streams(&m), 2);

    size_t alen;
    uint8_t *adata = ah_read_file(a, &alen);
    size_t *lens, n;
    uint8_t **lines = ah_split_lines(adata, alen, false, &lens, &n);
    ck_assert_uint_eq(n, 6);
    lens[2] = 1024; /* the cut record keeps max_record_bytes */
    const char *sa = stream_of(&m, a);
    ck_assert_ptr_nonnull(sa);
    assert_stream_is(&m, sa, lines, lens, n);
    for (size_t i = 0; i < m.n; i++)
        if (!strcmp(m.v[i].stream, sa) && m.v[i].seq == 2)
            ck_assert_uint_eq(m.v[i].truncated, big - 1024);
    ah_lines_free(lines, lens, n);
    free(adata);

    static const char *bl[] = {"b one", "b two", "no newline yet"};
    size_t bls[] = {5, 5, 14};
    const char *sb = stream_of(&m, b);
    ck_assert_ptr_nonnull(sb);
    assert_stream_is(&m, sb, (uint8_t **)bl, bls, 3);
    ah_msgs_free(&m);
    free(a);
    free(b);
    free(content);
    free(longline);
    env_free(&e);
}
END_TEST

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

static bool backlog_empty(void *ud)
{
    return ah_metric(*(int *)ud, "auditrail_agent_backlog_bytes") == 0;
}

START_TEST(test_restart_continues_chain)
{
    struct env e;
    env_init(&e, "agent-restart", "", "    - path: %s/*.log\n      format: raw\n");
    char *a = path_in(&e, "app.log");
    append_lines(a, "r", 0, 100);
    pid_t pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 100, 20000));
    ck_assert_msg(test_wait_until(backlog_empty, &e.port, 20000), "backlog_bytes not 0 once acked");
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);
    append_lines(a, "r", 100, 250);
    pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 150, 20000));
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);

    struct ah_msgs m = {0};
    ah_consume(e.brokers, e.topic, 250, 20000, &m);
    size_t dups;
    char err[256];
    ck_assert_msg(ah_verify_chains(&m, &dups, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(count_streams(&m), 1); /* the same stream, continued */
    ck_assert_uint_eq(m.n, 250);
    ck_assert_uint_eq(dups, 0); /* a clean stop re-sends nothing */
    size_t len, *lens, n;
    uint8_t *data = ah_read_file(a, &len);
    uint8_t **lines = ah_split_lines(data, len, false, &lens, &n);
    assert_stream_is(&m, m.v[0].stream, lines, lens, n);
    ah_lines_free(lines, lens, n);
    free(data);
    ah_msgs_free(&m);
    free(a);
    env_free(&e);
}
END_TEST

/* logrotate's rename + create, once with the rotated name inside the glob
 * (app.log -> app.log.1, glob app.log*) and once outside it (-> old.txt):
 * lines written to the old file after the rename are shipped, the rotated
 * file is never re-read, the new file is a new stream. */
static void rotation_case(const char *rotated_name, const char *tag)
{
    struct env e;
    env_init(&e, tag, "  rotate_wait_ms: 300\n", "    - path: %s/app.log*\n      format: raw\n");
    char *a = path_in(&e, "app.log"), *r = path_in(&e, rotated_name);
    append_lines(a, "gen1", 0, 50);
    pid_t pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 50, 20000));
    ck_assert_int_eq(rename(a, r), 0);
    append_lines(r, "gen1", 50, 60); /* the writer has not reopened yet */
    test_write_file(r, "gen1 final without newline", 26, true);
    append_lines(a, "gen2", 0, 40);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 101, 20000));
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_rotations_total", 1, 5000));
    /* a restart must not re-read either file */
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);
    pid = ah_agent_start(e.config, e.log);
    append_lines(a, "gen2", 40, 45);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 5, 20000));
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);

    struct ah_msgs m = {0};
    ah_consume(e.brokers, e.topic, 106, 20000, &m);
    size_t dups;
    char err[256];
    ck_assert_msg(ah_verify_chains(&m, &dups, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(m.n, 106);
    ck_assert_uint_eq(dups, 0);
    ck_assert_uint_eq(count_streams(&m), 2);
    size_t len, *lens, n;
    uint8_t *data = ah_read_file(r, &len);
    uint8_t **lines = ah_split_lines(data, len, true, &lens, &n);
    ck_assert_uint_eq(n, 61);
    /* the rotated file's stream: the record read first at app.log */
    const char *s1 = NULL;
    for (size_t i = 0; i < m.n; i++)
        if (m.v[i].line_len >= 4 && !memcmp(m.v[i].line, "gen1", 4))
            s1 = m.v[i].stream;
    ck_assert_ptr_nonnull(s1);
    assert_stream_is(&m, s1, lines, lens, n);
    ah_lines_free(lines, lens, n);
    free(data);
    data = ah_read_file(a, &len);
    lines = ah_split_lines(data, len, false, &lens, &n);
    ck_assert_uint_eq(n, 45);
    const char *s2 = NULL;
    for (size_t i = 0; i < m.n; i++)
        if (!memcmp(m.v[i].line, "gen2", 4))
            s2 = m.v[i].stream;
    ck_assert_ptr_nonnull(s2);
    ck_assert_str_ne(s1, s2);
    assert_stream_is(&m, s2, lines, lens, n);
    ah_lines_free(lines, lens, n);
    free(data);
    ah_msgs_free(&m);
    free(a);
    free(r);
    env_free(&e);
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

START_TEST(test_copytruncate_new_generation)
{
    struct env e;
    env_init(&e, "agent-ctrunc", "", "    - path: %s/*.log\n      format: raw\n");
    char *a = path_in(&e, "app.log");
    append_lines(a, "before", 0, 30);
    pid_t pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 30, 20000));
    ck_assert_int_eq(truncate(a, 0), 0);
    append_lines(a, "after", 0, 20);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 50, 20000));
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_file_truncations_total"), 1);
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);
    struct ah_msgs m = {0};
    ah_consume(e.brokers, e.topic, 50, 20000, &m);
    size_t dups;
    char err[256];
    ck_assert_msg(ah_verify_chains(&m, &dups, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(m.n, 50);
    ck_assert_uint_eq(count_streams(&m), 2);
    ah_msgs_free(&m);
    free(a);
    env_free(&e);
}
END_TEST

START_TEST(test_multiline_join_and_flush)
{
    struct env e;
    env_init(&e, "agent-ml", "",
             "    - path: %s/*.log\n      format: raw\n      multiline:\n"
             "        start_pattern: \"^[0-9]{4}-\"\n        flush_ms: 200\n");
    char *a = path_in(&e, "pg.log");
    const char *text = "2026-01 SELECT *\n  FROM t\n\n  WHERE x\n2026-02 UPDATE t\n  SET y\n";
    test_write_file(a, text, strlen(text), false);
    pid_t pid = ah_agent_start(e.config, e.log);
    /* the first record ends at the second start line; the second after 200 ms of quiet */
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 2, 20000));
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);
    struct ah_msgs m = {0};
    ah_consume(e.brokers, e.topic, 2, 20000, &m);
    size_t dups;
    char err[256];
    ck_assert_msg(ah_verify_chains(&m, &dups, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(m.n, 2);
    const char *r0 = "2026-01 SELECT *\n  FROM t\n\n  WHERE x", *r1 = "2026-02 UPDATE t\n  SET y";
    ck_assert_uint_eq(m.v[0].line_len, strlen(r0));
    ck_assert_int_eq(memcmp(m.v[0].line, r0, strlen(r0)), 0);
    ck_assert_uint_eq(m.v[0].offset, 0);
    ck_assert_uint_eq(m.v[1].line_len, strlen(r1));
    ck_assert_int_eq(memcmp(m.v[1].line, r1, strlen(r1)), 0);
    ah_msgs_free(&m);
    free(a);
    env_free(&e);
}
END_TEST

START_TEST(test_read_from_end)
{
    struct env e;
    env_init(&e, "agent-end", "  read_from: end\n", "    - path: %s/*.log\n      format: raw\n");
    char *a = path_in(&e, "old.log"), *b = path_in(&e, "new.log");
    append_lines(a, "old", 0, 10);
    pid_t pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_open_files", 1, 20000));
    append_lines(a, "tail", 0, 5);
    append_lines(b, "newfile", 0, 3); /* appears later: read from its beginning */
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 8, 20000));
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);
    /* a restart is not a first start: nothing old comes back */
    pid = ah_agent_start(e.config, e.log);
    append_lines(a, "tail", 5, 6);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 1, 20000));
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);
    struct ah_msgs m = {0};
    ah_consume(e.brokers, e.topic, 9, 20000, &m);
    size_t dups;
    char err[256];
    ck_assert_msg(ah_verify_chains(&m, &dups, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(m.n, 9);
    for (size_t i = 0; i < m.n; i++)
        ck_assert_msg(memcmp(m.v[i].line, "old", 3) != 0, "an existing line was shipped");
    ah_msgs_free(&m);
    free(a);
    free(b);
    env_free(&e);
}
END_TEST

START_TEST(test_max_open_files)
{
    struct env e;
    env_init(&e, "agent-maxopen", "  max_open_files: 1\n  rotate_wait_ms: 100\n",
             "    - path: %s/*.log\n      format: raw\n");
    char *f[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d.log", i);
        f[i] = path_in(&e, name);
        append_lines(f[i], name, 0, 10);
    }
    pid_t pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 10, 20000));
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_open_files"), 1);
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_files_waiting"), 2);
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_open_files_max"), 1);
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_records_acked_total"), 10);
    /* the open file goes away: drained, closed, the next one opens */
    unlink(f[0]);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 20, 20000));
    unlink(f[1]);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 30, 20000));
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_files_waiting"), 0);
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);
    for (int i = 0; i < 3; i++)
        free(f[i]);
    env_free(&e);
}
END_TEST

/* The agent dies, the file is rotated to a name outside the glob while it is
 * down, and more lines reach the rotated file: the restart finds it again by
 * its inode, drains it on the same stream, and reads the new file. */
START_TEST(test_rotated_outside_glob_while_down)
{
    struct env e;
    env_init(&e, "agent-down-rot", "  rotate_wait_ms: 100\n",
             "    - path: %s/app.log\n      format: raw\n");
    char *a = path_in(&e, "app.log"), *r = path_in(&e, "app.log-old");
    append_lines(a, "first", 0, 40);
    pid_t pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 40, 20000));
    /* let a checkpoint be written, then crash */
    ck_assert(
        e2e_wait_metric((unsigned)e.port, "auditrail_agent_checkpoint_writes_total", 2, 20000));
    ck_assert_int_eq(ah_agent_stop(pid, SIGKILL, 5000), 128 + SIGKILL);
    ck_assert_int_eq(rename(a, r), 0);
    append_lines(r, "first", 40, 55);
    append_lines(a, "second", 0, 20);
    pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 35, 20000));
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);
    struct ah_msgs m = {0};
    ah_consume(e.brokers, e.topic, 75, 20000, &m);
    size_t dups;
    char err[256];
    ck_assert_msg(ah_verify_chains(&m, &dups, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(m.n, 75);
    ck_assert_uint_eq(count_streams(&m), 2);
    size_t len, *lens, n;
    uint8_t *data = ah_read_file(r, &len);
    uint8_t **lines = ah_split_lines(data, len, false, &lens, &n);
    ck_assert_uint_eq(n, 55);
    const char *s1 = NULL;
    for (size_t i = 0; i < m.n; i++)
        if (!memcmp(m.v[i].line, "first", 5))
            s1 = m.v[i].stream;
    ck_assert_ptr_nonnull(s1);
    assert_stream_is(&m, s1, lines, lens, n);
    ah_lines_free(lines, lens, n);
    free(data);
    ah_msgs_free(&m);
    free(a);
    free(r);
    env_free(&e);
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
    struct env e;
    env_init(&e, "agent-nokafka", "", "    - path: %s/*.log\n      format: raw\n");
    struct webhook *hook = webhook_start();
    free(e.config);
    char *brokers = xasprintf("127.0.0.1:%d", ah_free_port()); /* nothing listens */
    char *inputs = xasprintf("    - path: %s/*.log\n      format: raw\n", e.logs);
    char *alerts =
        xasprintf("alerts:\n  url: http://127.0.0.1:%u/api/v2/alerts\n", webhook_port(hook));
    e.config =
        ah_write_config(e.dir, brokers, e.topic, e.port,
                        "  kafka_unready_ms: 300\n  shutdown_timeout_ms: 0\n", inputs, alerts);
    char *a = path_in(&e, "a.log");
    append_lines(a, "k", 0, 20);
    pid_t pid = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_read_total", 20, 20000));
    /* nothing acknowledged: the whole file is backlog */
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_backlog_bytes", 20 * 14, 20000));
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_backlog_bytes"), 20 * 14);
    struct alert_wait w = {hook, "AuditrailKafkaUnavailable"};
    ck_assert_msg(test_wait_until(alert_seen, &w, 20000), "no AuditrailKafkaUnavailable alert");
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_kafka_up"), 0);
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_records_acked_total"), 0);
    char *body = NULL;
    ck_assert_int_eq(ah_http_get(e.port, "/readyz", &body), 200);
    free(body);
    body = NULL;
    ck_assert_int_eq(ah_http_get(e.port, "/livez", &body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"live\":true"));
    free(body);
    body = NULL;
    ck_assert_int_eq(ah_http_get(e.port, "/metrics", &body), 200);
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
    ck_assert(ah_metric(e.port, "process_open_fds") > 0);
    ck_assert_int_eq(ah_agent_stop(pid, SIGTERM, 20000), 0);
    webhook_stop(hook);
    free(a);
    free(alerts);
    free(inputs);
    free(brokers);
    env_free(&e);
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
