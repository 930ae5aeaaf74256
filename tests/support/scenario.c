/* Whole-pipeline scenarios for end-to-end and fault tests. */
#include "tests/support/scenario.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/configs.h"
#include "tests/support/secrets.h"
#include "tests/support/e2e.h"
#include "tests/support/expect.h"
#include "tests/support/probe.h"
#include "tests/support/store.h"
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

static char *agent_config(struct scenario *s)
{
    char *inputs = xstrdup("");
    for (size_t i = 0; i < 5; i++) {
        char *next = xasprintf("%s    - path: %s/%s-*.log\n      format: %s\n", inputs, s->logdir,
                               formats[i], formats[i]);
        free(inputs);
        inputs = next;
    }
    char *extra = xasprintf("  rescan_interval_ms: 200\n"
                            "  rotate_wait_ms: 1000\n"
                            "  kafka_unready_ms: 3000\n"
                            "%s",
                            s->o.agent_extra ? s->o.agent_extra : "");
    char *alerts = secrets_alerts_url(webhook_port(s->hook));
    char *path = xasprintf("%s/agent.yaml", s->tmp);
    struct configs_agent c = {
        .source_name = s->source_name,
        .checkpoint_dir = s->ckdir,
        .brokers = s->brokers,
        .topic = s->topic,
        .http_port = s->agent_port,
        .agent_extra = extra,
        .inputs = inputs,
        .kafka_properties = secrets_kafka_properties(),
        .alerts_url = alerts,
    };
    char *out = configs_write_agent(path, &c);
    free(path);
    free(alerts);
    free(extra);
    free(inputs);
    return out;
}

static char *aggr_config(struct scenario *s, int i)
{
    /* Planted passwords in every DSN, URL and SASL property: every log
     * line, DLQ header and alert body is searched for them at the end. */
    char *alerts = secrets_alerts_url(webhook_port(s->hook));
    char *pg = secrets_conninfo(s->db);
    char *redis = s->o.redis ? secrets_redis_url() : NULL;
    char *path = xasprintf("%s/aggregator-%d.yaml", s->tmp, i);
    struct configs_aggregator c = {
        .brokers = s->brokers,
        .topic = s->topic,
        .group = s->group,
        .dlq_topic = s->dlq,
        .postgres = pg,
        .redis_url = redis,
        .http_port = s->aggr_port[i],
        .kafka_properties = secrets_kafka_properties(),
        .alerts_url = alerts,
        .extra = s->o.aggr_extra,
    };
    char *out = configs_write_aggregator(path, &c);
    free(path);
    free(alerts);
    free(pg);
    free(redis);
    return out;
}

static struct proc *spawn_program(struct scenario *s, const char *program, const char *label,
                                  const char *cfg)
{
    char *log = xasprintf("%s/%s.log", s->tmp, label);
    struct proc *p = proc_spawn_program(program, cfg, log);
    free(log);
    return p;
}

void scenario_kill_restart(struct proc *p)
{
    char st[64];
    int rc = proc_kill(p, SIGKILL);
    ck_assert_msg(rc == 128 + SIGKILL, "%s (start %d) had ended before the kill: %s (log %s)",
                  p->name, p->starts, proc_status_str(p->status[p->nstatus - 1], st, sizeof(st)),
                  p->log);
    proc_restart(p);
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
    s->brokers = xstrdup(test_stack("STACK_KAFKA_BROKERS"));
    s->source_name = xasprintf("e2e/%s/app", name);
    s->hook = webhook_start();

    for (int i = 0; i < o->aggregators; i++) {
        s->aggr_port[i] = probe_free_port();
        s->aggr_cfg[i] = aggr_config(s, i);
        char label[32];
        snprintf(label, sizeof(label), "aggregator-%d", i);
        s->aggr[i] = spawn_program(s, "auditrail-aggregator", label, s->aggr_cfg[i]);
    }
    for (int i = 0; i < o->aggregators; i++)
        ck_assert_msg(probe_wait_ready(s->aggr_port[i], 60000), "aggregator-%d not ready (log %s)",
                      i, s->aggr[i]->log);

    s->agent_port = probe_free_port();
    s->agent_cfg = agent_config(s);
    s->agent = spawn_program(s, "auditrail-agent", "agent", s->agent_cfg);
    ck_assert_msg(probe_wait_ready(s->agent_port, 30000), "agent not ready (log %s)",
                  s->agent->log);

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
        s->writer = proc_spawn("writer", argv, NULL, log);
        free(log);
        free(bin);
    }
}

static bool writer_done(void *ud)
{
    struct scenario *s = ud;
    int st = 0;
    if (proc_alive(s->writer, &st))
        return false;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer failed (log %s)", s->writer->log);
    return true;
}

static void assert_running(struct proc *p)
{
    int st = 0;
    char text[64];
    ck_assert_msg(proc_alive(p, &st), "%s died: %s (log %s)", p->name,
                  proc_status_str(st, text, sizeof(text)), p->log);
}

void scenario_finish(struct scenario *s, unsigned timeout_ms)
{
    if (s->writer && s->writer->pid)
        ck_assert_msg(test_wait_until(writer_done, s, timeout_ms), "writer did not finish");
    struct expect exp = {0};
    expect_add_dir(&exp, s->logdir, 512 * 1024);
    expect_add_dir(&exp, s->extra_expected_dir, 512 * 1024);
    bool landed = store_wait_rows(s->db, (long long)exp.n, timeout_ms);
    assert_running(s->agent);
    for (int i = 0; i < s->o.aggregators; i++)
        assert_running(s->aggr[i]);
    /* The agent drains and exits: after that nothing more is produced, and
     * once the aggregators reach the end of the topic nothing more lands. */
    int rc = proc_stop(s->agent, 30000);
    ck_assert_msg(rc == 0, "agent exited %d on SIGTERM (log %s)", rc, s->agent->log);
    bool drained = store_wait_drained(s->db, s->brokers, s->topic, timeout_ms);
    struct e2e_check_opts opts = {.source_name = s->source_name, .json_columns = s->o.start_writer};
    struct e2e_report r;
    bool ok = e2e_check(s->db, &exp, &opts, &r);
    double gaps = -1;
    probe_metric(s->aggr_port[0], "auditrail_aggregator_offset_gaps_total", &gaps);
    ck_assert_msg(ok && drained,
                  "%s: offset gaps %.0f (kafka-mock trimmed a partition?); landed in time %d, "
                  "drained %d; expected %zu records, %zu rows: missing %zu, unexpected %zu, "
                  "duplicate %zu, streams %zu (bad seq %zu, not files %zu), bad source %zu, "
                  "json rows %zu (bad columns %zu): %s (logs in %s)",
                  s->topic, gaps, landed, drained, r.expected, r.rows, r.missing, r.unexpected,
                  r.duplicate_rows, r.streams, r.streams_bad_seq, r.streams_not_files, r.bad_source,
                  r.json_rows, r.bad_columns, r.problem, s->tmp);
    expect_release(&exp);
    /* SIGTERM drains and exits 0; under the sanitizers a leak or a report at
     * exit turns into a non-zero status here. */
    for (int i = 0; i < s->o.aggregators; i++) {
        rc = proc_stop(s->aggr[i], 30000);
        ck_assert_msg(rc == 0, "aggregator-%d exited %d on SIGTERM (log %s)", i, rc,
                      s->aggr[i]->log);
    }
    /* Nothing planted shows anywhere: not a password from a DSN, URL or
     * SASL property, not a record's content (issue 9 item 13). */
    secrets_assert_file_clean(s->agent->log, true);
    for (int i = 0; i < s->o.aggregators; i++)
        secrets_assert_file_clean(s->aggr[i]->log, true);
    secrets_assert_dlq_clean(s->brokers, s->dlq);
    secrets_assert_webhook_clean(s->hook);
}

void scenario_release(struct scenario *s)
{
    proc_free(s->writer);
    proc_free(s->agent);
    for (int i = 0; i < SCENARIO_MAX_AGGR; i++) {
        proc_free(s->aggr[i]);
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
    free(s->brokers);
    free(s->source_name);
    free(s->agent_cfg);
    memset(s, 0, sizeof(*s));
}
