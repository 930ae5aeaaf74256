/* Whole-pipeline scenarios for end-to-end and fault tests. */
#include "tests/support/scenario.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

/* The writer's mixed mode gives file i format i % 5 and names it after it. */
static const char *const formats[] = {"json", "kv", "k8s-audit", "auditd", "fhir"};

void scenario_defaults(struct scenario_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->aggregators = 1;
    o->files = 5;
    o->count = 2000;
    o->rate = 1000;
    o->rotate_every = 1500;
    o->rotate_style = "rename";
    /* kafka-mock keeps ~5 MB per partition and a stream's records share
     * one: spread the streams (every rotation starts one) thin. */
    o->partitions = 24;
    o->redis = true;
    o->start_writer = true;
}

int scenario_stack(const char *args)
{
    char *cmd = xasprintf("%s/scripts/stack %s >/dev/null 2>&1", test_repo_root(), args);
    int st = system(cmd);
    free(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

long scenario_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[256];
    long kib = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    }
    fclose(f);
    return kib;
}

static void write_text(const char *path, const char *text)
{
    test_write_file(path, text, strlen(text), false);
}

static char *agent_config(struct scenario *s, const char *name)
{
    char *inputs = xstrdup("");
    for (size_t i = 0; i < 5; i++) {
        char *next = xasprintf("%s    - path: %s/%s-*.log\n      format: %s\n", inputs, s->logdir,
                               formats[i], formats[i]);
        free(inputs);
        inputs = next;
    }
    char *yaml = xasprintf("agent:\n"
                           "  source_name: e2e/%s/app\n"
                           "  checkpoint_dir: %s\n"
                           "  rescan_interval_ms: 200\n"
                           "  rotate_wait_ms: 1000\n"
                           "  kafka_unready_ms: 3000\n"
                           "%s"
                           "  inputs:\n%s"
                           "kafka:\n"
                           "  brokers: %s\n"
                           "  topic: %s\n"
                           "alerts:\n"
                           "  url: http://127.0.0.1:%u/api/v2/alerts\n"
                           "  min_interval_ms: 1000\n"
                           "http:\n"
                           "  listen: 127.0.0.1:%u\n",
                           name, s->ckdir, s->o.agent_extra ? s->o.agent_extra : "", inputs,
                           test_stack("STACK_KAFKA_BROKERS"), s->topic, webhook_port(s->hook),
                           s->agent_port);
    free(inputs);
    char *path = xasprintf("%s/agent.yaml", s->tmp);
    write_text(path, yaml);
    free(yaml);
    return path;
}

static char *aggr_config(struct scenario *s, int i)
{
    char *redis = s->o.redis ? xasprintf("redis:\n  url: %s\n  timeout_ms: 200\n",
                                         test_stack("STACK_REDIS_URL"))
                             : xstrdup("");
    char *yaml =
        xasprintf("kafka:\n"
                  "  brokers: %s\n"
                  "  topic: %s\n"
                  "  group: %s\n"
                  "  dlq_topic: %s\n"
                  "  properties:\n"
                  "    session.timeout.ms: \"6000\"\n"
                  "    heartbeat.interval.ms: \"500\"\n"
                  "    max.poll.interval.ms: \"10000\"\n"
                  "postgres:\n"
                  "  primary: %s\n"
                  "%s"
                  "batch:\n"
                  "  max_ms: 100\n"
                  "breaker:\n"
                  "  open_base_ms: 200\n"
                  "  open_max_ms: 2000\n"
                  "alerts:\n"
                  "  url: http://127.0.0.1:%u/api/v2/alerts\n"
                  "  min_interval_ms: 1000\n"
                  "http:\n"
                  "  listen: 127.0.0.1:%u\n"
                  "%s",
                  test_stack("STACK_KAFKA_BROKERS"), s->topic, s->group, s->dlq, s->db, redis,
                  webhook_port(s->hook), s->aggr_port[i], s->o.aggr_extra ? s->o.aggr_extra : "");
    free(redis);
    char *path = xasprintf("%s/aggregator-%d.yaml", s->tmp, i);
    write_text(path, yaml);
    free(yaml);
    return path;
}

static struct e2e_proc *spawn_bin(struct scenario *s, const char *bin_name, const char *label,
                                  const char *cfg)
{
    char *bin = test_bin(bin_name);
    char *log = xasprintf("%s/%s.log", s->tmp, label);
    const char *argv[] = {bin, "--config", cfg, NULL};
    struct e2e_proc *p = e2e_spawn(label, argv, NULL, log);
    free(log);
    free(bin);
    return p;
}

void scenario_restart_aggr(struct scenario *s, int i)
{
    e2e_restart(s->aggr[i]);
}

void scenario_restart_agent(struct scenario *s)
{
    e2e_restart(s->agent);
}

void scenario_start(struct scenario *s, const char *name, const struct scenario_opts *o)
{
    memset(s, 0, sizeof(*s));
    s->o = *o;
    s->tmp = test_tmpdir(name);
    s->logdir = xasprintf("%s/logs", s->tmp);
    s->ckdir = xasprintf("%s/checkpoints", s->tmp);
    s->extra_expected_dir = xasprintf("%s/expected-extra", s->tmp);
    ck_assert_int_eq(mkdir(s->logdir, 0755), 0);
    ck_assert_int_eq(mkdir(s->ckdir, 0755), 0);
    ck_assert_int_eq(mkdir(s->extra_expected_dir, 0755), 0);
    s->db = test_pg_fresh_db(name);
    s->topic = test_kafka_topic(name, o->partitions);
    char *dlqname = xasprintf("%s-dlq", name);
    s->dlq = test_kafka_topic(dlqname, 1);
    free(dlqname);
    s->group = xasprintf("e2e-%s-%d", name, (int)getpid());
    s->hook = webhook_start();

    for (int i = 0; i < o->aggregators; i++) {
        s->aggr_port[i] = e2e_free_port();
        s->aggr_cfg[i] = aggr_config(s, i);
        char label[32];
        snprintf(label, sizeof(label), "aggregator-%d", i);
        s->aggr[i] = spawn_bin(s, "auditrail-aggregator", label, s->aggr_cfg[i]);
    }
    for (int i = 0; i < o->aggregators; i++)
        ck_assert_msg(e2e_wait_ready(s->aggr_port[i], 60000), "aggregator-%d not ready (log %s)", i,
                      s->aggr[i]->log);

    s->agent_port = e2e_free_port();
    s->agent_cfg = agent_config(s, name);
    s->agent = spawn_bin(s, "auditrail-agent", "agent", s->agent_cfg);
    ck_assert_msg(e2e_wait_ready(s->agent_port, 30000), "agent not ready (log %s)", s->agent->log);

    if (o->start_writer) {
        char *bin = test_bin("audit-writer");
        char files[16], count[16], rate[16], rot[16];
        snprintf(files, sizeof(files), "%d", o->files);
        snprintf(count, sizeof(count), "%d", o->count);
        snprintf(rate, sizeof(rate), "%d", o->rate);
        snprintf(rot, sizeof(rot), "%d", o->rotate_every);
        const char *argv[] = {bin,
                              "--dir",
                              s->logdir,
                              "--files",
                              files,
                              "--format",
                              "mixed",
                              "--count",
                              count,
                              "--rate",
                              rate,
                              "--seed",
                              "7",
                              "--rotate-every",
                              rot,
                              "--rotate-style",
                              o->rotate_style,
                              "--no-timestamp-ratio",
                              "0.2",
                              NULL};
        char *log = xasprintf("%s/writer.log", s->tmp);
        s->writer = e2e_spawn("writer", argv, NULL, log);
        free(log);
        free(bin);
    }
}

static bool writer_done(void *ud)
{
    struct scenario *s = ud;
    int st = 0;
    if (e2e_alive(s->writer, &st))
        return false;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer failed (log %s)", s->writer->log);
    return true;
}

void scenario_finish(struct scenario *s, unsigned timeout_ms)
{
    if (s->writer && s->writer->pid)
        ck_assert_msg(test_wait_until(writer_done, s, timeout_ms), "writer did not finish");
    struct e2e_records exp = {0};
    e2e_collect_records(s->logdir, 512 * 1024, &exp);
    e2e_collect_records(s->extra_expected_dir, 512 * 1024, &exp);
    bool landed = e2e_wait_rows(s->db, (long long)exp.n, timeout_ms);
    struct e2e_report r;
    bool ok = e2e_check(s->db, &exp, &r);
    double gaps = e2e_metric(s->aggr_port[0], "auditrail_aggregator_offset_gaps_total");
    ck_assert_msg(ok,
                  "%s: offset gaps %.0f (kafka-mock trimmed a partition?); "
                  "expected %zu records, %zu rows (landed in time: %d): missing %zu, "
                  "unexpected %zu, duplicate %zu, streams %zu (bad seq %zu): %s (logs in %s)",
                  s->topic, gaps, r.expected, r.rows, landed, r.missing, r.unexpected,
                  r.duplicate_rows, r.streams, r.streams_bad_seq, r.problem, s->tmp);
    e2e_records_release(&exp);
    int st = 0;
    ck_assert_msg(e2e_alive(s->agent, &st), "agent died (status %d, log %s)", st, s->agent->log);
    for (int i = 0; i < s->o.aggregators; i++)
        ck_assert_msg(e2e_alive(s->aggr[i], &st), "aggregator-%d died (status %d, log %s)", i, st,
                      s->aggr[i]->log);
    /* SIGTERM drains and exits 0; under the sanitizers a leak or a report at
     * exit turns into a non-zero status here. */
    int rc = e2e_stop(s->agent, 30000);
    ck_assert_msg(rc == 0, "agent exited %d on SIGTERM (log %s)", rc, s->agent->log);
    for (int i = 0; i < s->o.aggregators; i++) {
        rc = e2e_stop(s->aggr[i], 30000);
        ck_assert_msg(rc == 0, "aggregator-%d exited %d on SIGTERM (log %s)", i, rc,
                      s->aggr[i]->log);
    }
}

void scenario_release(struct scenario *s)
{
    e2e_proc_free(s->writer);
    e2e_proc_free(s->agent);
    for (int i = 0; i < SCENARIO_MAX_AGGR; i++) {
        e2e_proc_free(s->aggr[i]);
        free(s->aggr_cfg[i]);
    }
    webhook_stop(s->hook);
    if (s->db)
        test_pg_drop_db(s->db);
    /* Keep the directory of a failed run for its logs. */
    if (!getenv("AUDITRAIL_KEEP_TMP"))
        test_rmtree(s->tmp);
    free(s->tmp);
    free(s->logdir);
    free(s->ckdir);
    free(s->extra_expected_dir);
    free(s->db);
    free(s->topic);
    free(s->dlq);
    free(s->group);
    free(s->agent_cfg);
    memset(s, 0, sizeof(*s));
}
