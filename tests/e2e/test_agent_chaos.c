/* The agent under faults: SIGKILL at random moments while files are written
 * and rotated (both rename styles), all brokers down for 20 s, a file deleted
 * before it was fully read, inode reuse, copytruncate, a 2 MB line, a binary
 * file. Every written record must be in the topic, only exact re-sends
 * duplicated, seq contiguous per stream (verified independently). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include "common/xmalloc.h"
#include "tests/support/agent_harness.h"
#include "tests/support/teststack.h"
#include "tests/support/e2e.h"
#include "tests/support/testutil.h"

struct env {
    char *dir, *logs, *config, *log, *topic, *brokers;
    int port;
    struct test_kafka_mock *mock;
};

static void env_init(struct env *e, const char *name, const char *extra, const char *inputs_fmt,
                     int partitions, bool private_mock)
{
    memset(e, 0, sizeof(*e));
    e->dir = test_tmpdir(name);
    e->logs = xasprintf("%s/logs", e->dir);
    mkdir(e->logs, 0755);
    e->log = xasprintf("%s/agent.log", e->dir);
    if (private_mock) {
        e->mock = test_kafka_mock_start(3);
        e->brokers = xstrdup(e->mock->bootstraps);
        e->topic = xasprintf("%s.%d", name, (int)getpid());
        char cmd[256], reply[256];
        snprintf(cmd, sizeof(cmd), "topic create %s %d", e->topic, partitions);
        ck_assert_msg(test_kafka_mock_ctl(e->mock, cmd, reply, sizeof(reply)) == 0, "%s", reply);
    } else {
        e->brokers = xstrdup(test_stack("STACK_KAFKA_BROKERS"));
        e->topic = test_kafka_topic(name, partitions);
    }
    e->port = ah_free_port();
    char *inputs = xasprintf(inputs_fmt, e->logs);
    e->config = ah_write_config(e->dir, e->brokers, e->topic, e->port, extra, inputs, NULL);
    free(inputs);
}

static void env_free(struct env *e)
{
    test_kafka_mock_stop(e->mock);
    test_rmtree(e->dir);
    free(e->dir);
    free(e->logs);
    free(e->config);
    free(e->log);
    free(e->topic);
    free(e->brokers);
}

/* Every line of every regular file in dir (all end with '\n' unless final). */
struct lineset {
    uint8_t **v;
    size_t *lens;
    size_t n, cap;
};

static void lineset_add_file(struct lineset *ls, const char *path, bool final)
{
    size_t len, *lens, n;
    uint8_t *data = ah_read_file(path, &len);
    ck_assert_ptr_nonnull(data);
    uint8_t **lines = ah_split_lines(data, len, final, &lens, &n);
    for (size_t i = 0; i < n; i++) {
        if (ls->n == ls->cap) {
            ls->cap = ls->cap ? ls->cap * 2 : 1024;
            ls->v = xrealloc(ls->v, ls->cap * sizeof(*ls->v));
            ls->lens = xrealloc(ls->lens, ls->cap * sizeof(*ls->lens));
        }
        ls->v[ls->n] = lines[i];
        ls->lens[ls->n++] = lens[i];
    }
    free(lines);
    free(lens);
    free(data);
}

static void lineset_add_dir(struct lineset *ls, const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        lineset_add_file(ls, p, true);
        free(p);
    }
    closedir(d);
}

static void lineset_free(struct lineset *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        free(ls->v[i]);
    free(ls->v);
    free(ls->lens);
}

struct blob {
    const uint8_t *p;
    size_t n;
};

static int cmp_blob(const void *a, const void *b)
{
    const struct blob *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* The deduplicated records are exactly the lines written (as multisets). */
static void assert_records_are_lines(const struct ah_msgs *m, const struct lineset *ls)
{
    ck_assert_uint_eq(m->n, ls->n);
    struct blob *a = xmalloc((m->n + 1) * sizeof(*a)), *b = xmalloc((ls->n + 1) * sizeof(*b));
    for (size_t i = 0; i < m->n; i++)
        a[i] = (struct blob){m->v[i].line, m->v[i].line_len};
    for (size_t i = 0; i < ls->n; i++)
        b[i] = (struct blob){ls->v[i], ls->lens[i]};
    qsort(a, m->n, sizeof(*a), cmp_blob);
    qsort(b, ls->n, sizeof(*b), cmp_blob);
    for (size_t i = 0; i < m->n; i++)
        ck_assert_msg(cmp_blob(&a[i], &b[i]) == 0, "record %zu of %zu differs from the lines", i,
                      m->n);
    free(a);
    free(b);
}

static void consume_and_verify(const struct env *e, size_t want, struct ah_msgs *m, size_t *dups)
{
    ah_consume(e->brokers, e->topic, want, 60000, m);
    char err[256];
    ck_assert_msg(ah_verify_chains(m, dups, err, sizeof(err)) == 0, "%s", err);
}

/* --- writer child for the kill test --- */

#define W_FILES          3
#define W_ROTATE_EVERY   700
#define W_LINES_PER_FILE 3500

/* Writes W_LINES_PER_FILE lines per file at about 600 lines/s in total,
 * rotating every W_ROTATE_EVERY lines: odd generations renamed inside the
 * glob (app-i.log -> app-i.log.G), even ones outside it (-> rot-i.G). */
static void writer_main(const char *dir)
{
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
    struct env e;
    env_init(&e, "agentkill",
             "  rotate_wait_ms: 300\n  checkpoint_interval_ms: 200\n  rescan_interval_ms: 200\n",
             "    - path: %s/app-*.log*\n      format: json\n", 8, false);
    srand((unsigned)time(NULL));
    pid_t writer = fork();
    ck_assert_int_ge(writer, 0);
    if (writer == 0)
        writer_main(e.logs);
    pid_t agent = ah_agent_start(e.config, e.log);
    int kills = 0;
    for (;;) {
        int st;
        bool writer_done = waitpid(writer, &st, WNOHANG) == writer;
        struct timespec t = {0, (long)(300 + rand() % 1500) * 1000 * 1000};
        nanosleep(&t, NULL);
        ck_assert_int_eq(ah_agent_stop(agent, SIGKILL, 5000), 128 + SIGKILL);
        kills++;
        agent = ah_agent_start(e.config, e.log);
        if (writer_done && kills >= 5)
            break;
    }
    ck_assert_int_ge(kills, 5);
    struct lineset ls = {0};
    lineset_add_dir(&ls, e.logs);
    ck_assert_uint_ge(ls.n, (size_t)W_FILES * W_LINES_PER_FILE);
    /* the last agent ships the rest; then a clean stop */
    struct ah_msgs m = {0};
    size_t dups;
    consume_and_verify(&e, ls.n, &m, &dups);
    ck_assert_int_eq(ah_agent_stop(agent, SIGTERM, 20000), 0);
    assert_records_are_lines(&m, &ls);
    fprintf(stderr, "kill test: %d kills, %zu records, %zu exact re-sends\n", kills, m.n, dups);
    ah_msgs_free(&m);
    lineset_free(&ls);
    env_free(&e);
}
END_TEST

static long rss_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, strlen(field)))
            v = strtol(line + strlen(field) + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

struct ready_wait {
    int port, want;
};

static bool readyz_is(void *ud)
{
    struct ready_wait *w = ud;
    return ah_http_get(w->port, "/readyz", NULL) == w->want;
}

static bool kafka_down(void *ud)
{
    return ah_metric(*(int *)ud, "auditrail_agent_kafka_up") == 0;
}

static void append_n(const char *path, const char *tag, int from, int to, int pad)
{
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    for (int i = from; i < to; i++)
        fprintf(f, "%s %07d %0*d\n", tag, i, pad, i);
    fclose(f);
}

START_TEST(test_brokers_down_20s)
{
    struct env e;
    env_init(&e, "agentdown",
             "  max_inflight_bytes: 256KiB\n  kafka_unready_ms: 3000\n"
             "  shutdown_timeout_ms: 20000\n",
             "    - path: %s/*.log\n      format: raw\n", 4, true);
    char *a = xasprintf("%s/a.log", e.logs);
    append_n(a, "before", 0, 1000, 100);
    pid_t agent = ah_agent_start(e.config, e.log);
    ck_assert(
        e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 1000, 30000));
    struct ready_wait rw = {e.port, 200};
    ck_assert(test_wait_until(readyz_is, &rw, 10000));
    char reply[256];
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "brokers down", reply, sizeof(reply)), 0);
    uint64_t down_at = test_now_ms();
    /* ~2 MB of lines (~10 MB of envelopes) written while Kafka is away: far
     * more than max_inflight_bytes, little enough for the mock's ~5 MB per
     * partition (DESIGN.md §9) */
    append_n(a, "during", 0, 20000, 80);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_backpressure_paused", 1, 15000));
    ck_assert(test_wait_until(kafka_down, &e.port, 15000));
    /* Kafka down is not "not ready": the sidecar keeps its application in
     * its Services; the file is the buffer (README, Health) */
    ck_assert_int_eq(ah_http_get(e.port, "/readyz", NULL), 200);
    ck_assert_int_eq(ah_http_get(e.port, "/livez", NULL), 200);
    long rss_during = rss_kb(agent, "VmRSS:");
    while (test_now_ms() - down_at < 20000) {
        long r = rss_kb(agent, "VmRSS:");
        if (r > rss_during)
            rss_during = r;
        struct timespec t = {0, 200 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    double unacked = ah_metric(e.port, "auditrail_agent_unacked_bytes");
    ck_assert_msg(unacked <= 256 * 1024 + 8192, "unacked bytes %.0f above the limit", unacked);
    ck_assert_int_eq(ah_http_get(e.port, "/readyz", NULL), 200); /* all through the outage */
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "brokers up", reply, sizeof(reply)), 0);
    ck_assert(
        e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 21000, 120000));
    ck_assert_int_eq(ah_http_get(e.port, "/readyz", NULL), 200);
    ck_assert_int_eq(ah_agent_stop(agent, SIGTERM, 30000), 0);
    /* memory stayed bounded while the backlog waited in the file */
    ck_assert_msg(rss_during < 64 * 1024, "RSS %ld kB while Kafka was down", rss_during);
    struct lineset ls = {0};
    lineset_add_file(&ls, a, false);
    struct ah_msgs m = {0};
    size_t dups;
    consume_and_verify(&e, ls.n, &m, &dups);
    assert_records_are_lines(&m, &ls);
    fprintf(stderr, "brokers down: peak RSS %ld kB, %zu re-sends\n", rss_during, dups);
    ah_msgs_free(&m);
    lineset_free(&ls);
    free(a);
    env_free(&e);
}
END_TEST

START_TEST(test_deleted_before_fully_read)
{
    struct env e;
    env_init(&e, "agentdel", "  max_inflight_records: 64\n  rotate_wait_ms: 100\n",
             "    - path: %s/*.log\n      format: raw\n", 4, false);
    char *a = xasprintf("%s/a.log", e.logs);
    append_n(a, "del", 0, 30000, 20);
    struct lineset ls = {0};
    lineset_add_file(&ls, a, false);
    pid_t agent = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 1, 20000));
    ck_assert_int_eq(unlink(a), 0);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_files_deleted_total", 1, 20000));
    ck_assert(
        e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 30000, 60000));
    ck_assert_int_eq(ah_agent_stop(agent, SIGTERM, 20000), 0);
    struct ah_msgs m = {0};
    size_t dups;
    consume_and_verify(&e, ls.n, &m, &dups);
    assert_records_are_lines(&m, &ls);
    ah_msgs_free(&m);
    lineset_free(&ls);
    free(a);
    env_free(&e);
}
END_TEST

START_TEST(test_inode_reuse_after_restart)
{
    struct env e;
    env_init(&e, "agentreuse", "", "    - path: %s/*.log\n      format: raw\n", 4, false);
    char *a = xasprintf("%s/a.log", e.logs), *b = xasprintf("%s/b.log", e.logs);
    /* same first line in both files: only dev+inode+birth time tell them apart */
    append_n(a, "same", 0, 1, 5);
    append_n(a, "A", 1, 50, 5);
    pid_t agent = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 50, 20000));
    ck_assert_int_eq(ah_agent_stop(agent, SIGTERM, 20000), 0);
    struct stat sa, sb;
    ck_assert_int_eq(stat(a, &sa), 0);
    struct lineset ls = {0};
    lineset_add_file(&ls, a, false);
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
    lineset_add_file(&ls, b, false);
    agent = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 80, 20000));
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_inode_reuses_total"), 1);
    ck_assert_int_eq(ah_agent_stop(agent, SIGTERM, 20000), 0);
    struct ah_msgs m = {0};
    size_t dups;
    consume_and_verify(&e, 130, &m, &dups);
    assert_records_are_lines(&m, &ls); /* all of B from seq 0, nothing skipped */
    ck_assert_str_ne(m.v[0].stream, m.v[m.n - 1].stream);
    ah_msgs_free(&m);
    lineset_free(&ls);
    free(a);
    free(b);
    env_free(&e);
}
END_TEST

START_TEST(test_copytruncate_long_line_binary)
{
    struct env e;
    env_init(&e, "agenthard", "  rotate_wait_ms: 100\n",
             "    - path: %s/*.log\n      format: json\n", 8, false);
    char *c = xasprintf("%s/c.log", e.logs), *big = xasprintf("%s/big.log", e.logs),
         *bin = xasprintf("%s/bin.log", e.logs), *copy = xasprintf("%s/c.copy", e.dir);
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
    srand(7);
    size_t bn = 256 * 1024;
    uint8_t *rnd = xmalloc(bn);
    for (size_t i = 0; i < bn; i++)
        rnd[i] = (uint8_t)rand();
    rnd[bn - 1] = '\n';
    test_write_file(bin, rnd, bn, false);
    append_n(c, "pre", 0, 200, 10);
    pid_t agent = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 203, 20000));
    /* copytruncate: copy, then truncate in place, then the app writes on */
    size_t clen;
    uint8_t *cdata = ah_read_file(c, &clen);
    test_write_file(copy, cdata, clen, false);
    free(cdata);
    ck_assert_int_eq(truncate(c, 0), 0);
    append_n(c, "post", 0, 100, 10);
    struct lineset ls = {0};
    lineset_add_file(&ls, copy, false);
    lineset_add_file(&ls, c, false);
    lineset_add_file(&ls, bin, false);
    size_t before = ls.n;
    lineset_add_file(&ls, big, false);
    ck_assert_uint_eq(ls.n, before + 3);
    ls.lens[before + 1] = 512 * 1024; /* the cut record keeps max_record_bytes */
    ck_assert(
        e2e_wait_metric((unsigned)e.port, "auditrail_agent_file_truncations_total", 1, 20000));
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", (double)ls.n,
                              20000));
    ck_assert_int_eq(ah_metric(e.port, "auditrail_agent_records_truncated_total"), 1);
    ck_assert_int_eq(ah_agent_stop(agent, SIGTERM, 20000), 0);
    struct ah_msgs m = {0};
    size_t dups;
    consume_and_verify(&e, ls.n, &m, &dups);
    assert_records_are_lines(&m, &ls);
    ck_assert_uint_eq(dups, 0);
    bool saw_cut = false;
    for (size_t i = 0; i < m.n; i++)
        if (m.v[i].truncated) {
            ck_assert_uint_eq(m.v[i].truncated, n - 512 * 1024);
            saw_cut = true;
        }
    ck_assert(saw_cut);
    ah_msgs_free(&m);
    lineset_free(&ls);
    free(rnd);
    free(line);
    free(c);
    free(big);
    free(bin);
    free(copy);
    env_free(&e);
}
END_TEST

/* Deliveries that fail (message.timeout.ms passes while every broker is
 * down) never advance the checkpoint: the stream is re-read from its
 * acknowledged prefix and the re-sent records carry identical ids. */
START_TEST(test_failed_delivery_rewinds)
{
    struct env e;
    env_init(&e, "agentfail", "  kafka_unready_ms: 2000\n",
             "    - path: %s/*.log\n      format: raw\n", 4, true);
    free(e.config);
    char *inputs = xasprintf("    - path: %s/*.log\n      format: raw\n", e.logs);
    e.config = ah_write_config(e.dir, e.brokers, e.topic, e.port, "  kafka_unready_ms: 2000\n",
                               inputs, "  properties:\n    message.timeout.ms: \"1500\"\n");
    free(inputs);
    char *a = xasprintf("%s/a.log", e.logs);
    append_n(a, "ok", 0, 100, 10);
    pid_t agent = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 100, 30000));
    char reply[256];
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "brokers down", reply, sizeof(reply)), 0);
    append_n(a, "lost-then-resent", 0, 200, 10);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_delivery_errors_total", 1, 30000));
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_rewinds_total", 1, 30000));
    ck_assert(test_wait_until(kafka_down, &e.port, 15000));
    ck_assert_int_eq(ah_http_get(e.port, "/readyz", NULL), 200); /* Kafka is not readiness */
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "brokers up", reply, sizeof(reply)), 0);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 300, 60000));
    ck_assert_int_eq(ah_agent_stop(agent, SIGTERM, 20000), 0);
    struct lineset ls = {0};
    lineset_add_file(&ls, a, false);
    struct ah_msgs m = {0};
    size_t dups;
    consume_and_verify(&e, ls.n, &m, &dups);
    assert_records_are_lines(&m, &ls);
    ah_msgs_free(&m);
    lineset_free(&ls);
    free(a);
    env_free(&e);
}
END_TEST

/* A fatal producer error (the broker rejects a sequence: idempotence is
 * broken) stops the agent with status 3 after writing the checkpoint of what
 * was acknowledged; the restart re-sends the rest: nothing is lost. */
START_TEST(test_fatal_producer_error_exits_3)
{
    struct env e;
    env_init(&e, "agentfatal", "", "    - path: %s/*.log\n      format: raw\n", 1, true);
    char *a = xasprintf("%s/a.log", e.logs);
    append_n(a, "acked", 0, 50, 10);
    pid_t agent = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 50, 30000));
    char reply[256];
    /* Produce (API key 0) answered with OUT_OF_ORDER_SEQUENCE_NUMBER (45) */
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "errors push 0 45 3", reply, sizeof(reply)), 0);
    append_n(a, "rejected", 0, 10, 10);
    ck_assert_int_eq(ah_agent_stop(agent, 0, 30000), 3);
    ck_assert_int_eq(test_kafka_mock_ctl(e.mock, "errors clear 0", reply, sizeof(reply)), 0);
    agent = ah_agent_start(e.config, e.log);
    ck_assert(e2e_wait_metric((unsigned)e.port, "auditrail_agent_records_acked_total", 10, 30000));
    ck_assert_int_eq(ah_agent_stop(agent, SIGTERM, 20000), 0);
    struct lineset ls = {0};
    lineset_add_file(&ls, a, false);
    struct ah_msgs m = {0};
    size_t dups;
    consume_and_verify(&e, ls.n, &m, &dups);
    assert_records_are_lines(&m, &ls);
    ah_msgs_free(&m);
    lineset_free(&ls);
    free(a);
    env_free(&e);
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
