/* The fault suite (issue 5): the whole pipeline — writer, agent, aggregators,
 * the real stack — with one thing broken and healed per case, then the
 * independent checker: every written record in auditrail.events exactly once,
 * byte-identical, seq contiguous, chains verifying; processes alive; the
 * fault visible in metrics and, where it is an alert, at a test webhook.
 *
 * Sleeps here are fault durations (how long a dependency stays down), never
 * waits for a condition: those use test_wait_until.
 * STACK: alone (every service of the stack is stopped, killed or made to
 * fail in turn: never in parallel with other suites). */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/dlq.h"
#include "common/buf.h"
#include "common/xmalloc.h"
#include "tests/support/expect.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/scenario.h"
#include "tests/support/secrets.h"
#include "tests/support/store.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define FINISH_TIMEOUT_MS 180000
/* Write a string literal, NUL bytes included, without its terminator. */
#define WRITE_LIT(path, lit) test_write_file((path), (lit), sizeof(lit) - 1, false)

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static bool not_ready(unsigned port)
{
    return probe_wait_status(port, "/readyz", 503, 30000);
}

static void assert_alert(struct scenario *s, const char *alertname)
{
    ck_assert_msg(webhook_wait(s->hook, alertname, 30000), "no %s alert reached the webhook",
                  alertname);
}

/* Wait until the pipeline is moving: rows are landing. */
static void await_flow(struct scenario *s)
{
    ck_assert_msg(store_wait_rows(s->db, 1, 60000), "no rows landed (logs in %s)", s->tmp);
}

/* 1. PostgreSQL primary stopped for 20 s, then started. */
START_TEST(pg_primary_stopped)
{
    struct scenario s;
    struct scenario_opts o;
    scenario_defaults(&o);
    o.count = 5000;
    o.rate = 800; /* 30 s of writing: the outage falls inside it */
    scenario_start(&s, "pgstop", &o);
    await_flow(&s);
    ck_assert_int_eq(scenario_stack("stop pg-primary"), 0);
    ck_assert_msg(not_ready(s.aggr_port[0]), "aggregator stayed ready with PostgreSQL down");
    ck_assert(probe_wait_metric(
        s.aggr_port[0], "auditrail_aggregator_breaker_state{breaker=\"postgres\"}", 1, 30000));
    sleep_ms(20000);
    ck_assert_int_eq(scenario_stack("start pg-primary"), 0);
    ck_assert(probe_wait_ready(s.aggr_port[0], 60000));
    assert_alert(&s, "AuditrailBreakerOpen");
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* 2. PostgreSQL primary killed with SIGKILL (crash recovery), then started. */
START_TEST(pg_primary_killed)
{
    struct scenario s;
    struct scenario_opts o;
    scenario_defaults(&o);
    o.count = 4000;
    scenario_start(&s, "pgkill", &o);
    await_flow(&s);
    ck_assert_int_eq(scenario_stack("kill pg-primary"), 0);
    ck_assert_msg(not_ready(s.aggr_port[0]), "aggregator stayed ready with PostgreSQL killed");
    ck_assert_int_eq(scenario_stack("start pg-primary"), 0);
    ck_assert(probe_wait_ready(s.aggr_port[0], 60000));
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* 3. Redis killed, and later restarted: ingestion goes on without it. */
START_TEST(redis_killed)
{
    struct scenario s;
    struct scenario_opts o;
    scenario_defaults(&o);
    o.count = 4000;
    scenario_start(&s, "rediskill", &o);
    await_flow(&s);
    ck_assert_int_eq(scenario_stack("kill redis"), 0);
    long long before = store_rows(s.db);
    ck_assert(
        probe_wait_metric(s.aggr_port[0], "auditrail_aggregator_redis_errors_total", 1, 30000));
    /* Rows keep landing while Redis is down. */
    ck_assert(store_wait_rows(s.db, before + 1000, 60000));
    ck_assert_int_eq(probe_http_get(s.aggr_port[0], "/readyz", NULL), 200);
    ck_assert_int_eq(scenario_stack("start redis"), 0);
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* A real cluster elects new leaders from the in-sync replicas and moves
 * the group's coordinator when a broker fails; kafka-mock does neither, so
 * the test does it: every partition and the group go to brokers 1 and 3. */
static void fail_over_from_broker2(const struct scenario *s)
{
    char cmd[512], reply[256];
    for (int part = 0; part < s->o.partitions; part++) {
        snprintf(cmd, sizeof(cmd), "leader %s %d %d", s->topic, part, part % 2 ? 1 : 3);
        ck_assert_msg(test_kafka_ctl(cmd, reply, sizeof(reply)) == 0, "%s: %s", cmd, reply);
    }
    snprintf(cmd, sizeof(cmd), "coordinator group %s 1", s->group);
    ck_assert_msg(test_kafka_ctl(cmd, reply, sizeof(reply)) == 0, "%s: %s", cmd, reply);
}

/* 4. All Kafka brokers down for 20 s; then one broker down while the others
 *    serve (after the fail-over a real cluster would make). */
START_TEST(kafka_brokers_down)
{
    struct scenario s;
    struct scenario_opts o;
    scenario_defaults(&o);
    o.count = 5000;
    o.rate = 800;
    scenario_start(&s, "kafkadown", &o);
    await_flow(&s);
    char reply[256];
    ck_assert_int_eq(test_kafka_ctl("brokers down", reply, sizeof(reply)), 0);
    ck_assert_msg(probe_wait_metric_range(s.agent_port, "auditrail_agent_kafka_up", 0, 0, 30000),
                  "agent kept reporting Kafka up with every broker down");
    sleep_ms(20000);
    /* Kafka down is not "not ready" for a sidecar: the file is the buffer. */
    ck_assert_int_eq(probe_http_get(s.agent_port, "/readyz", NULL), 200);
    /* Memory stays bounded while the file is the buffer. */
    long rss = scenario_rss_kib(s.agent->pid);
    ck_assert_msg(rss > 0 && rss < 64 * 1024, "agent RSS %ld KiB during the outage", rss);
    assert_alert(&s, "AuditrailKafkaUnavailable");
    long long before = store_rows(s.db);
    ck_assert_int_eq(test_kafka_ctl("brokers up", reply, sizeof(reply)), 0);
    ck_assert(probe_wait_metric(s.agent_port, "auditrail_agent_kafka_up", 1, 60000));
    /* Flowing again (the group has rejoined) before the next fault. */
    ck_assert(store_wait_rows(s.db, before + 500, 60000));
    ck_assert_int_eq(test_kafka_ctl("broker down 2", reply, sizeof(reply)), 0);
    before = store_rows(s.db);
    fail_over_from_broker2(&s);
    /* Records written now must arrive while broker 2 stays down. The
     * writer may have finished and its backlog landed already, so the test
     * writes its own (in the log directory, where the checker finds it). */
    enum { N_FAILOVER = 1000 };
    struct buf lines = BUF_INIT;
    for (int i = 0; i < N_FAILOVER; i++)
        buf_addf(&lines, "{\"n\":%d,\"action\":\"read\",\"actor\":\"dr.who\"}\n", 200000 + i);
    char *p = xasprintf("%s/json-failover.log", s.logdir);
    test_write_file(p, lines.p, lines.len, false);
    free(p);
    buf_release(&lines);
    ck_assert(store_wait_rows(s.db, before + N_FAILOVER, 60000));
    ck_assert_int_eq(test_kafka_ctl("broker up 2", reply, sizeof(reply)), 0);
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* 5. The agent SIGKILLed 5 times and two aggregators 5 times each, at random
 *    moments, during rotations and rebalances. Every instance must have run
 *    until its kill: one that crashed (or hit a sanitizer report) before
 *    fails the case. */
START_TEST(processes_killed)
{
    struct scenario s;
    struct scenario_opts o;
    scenario_defaults(&o);
    o.aggregators = 2;
    o.count = 5000;
    o.rate = 1000;
    o.rotate_every = 700;
    scenario_start(&s, "kills", &o);
    await_flow(&s);
    unsigned seed = test_seed("processes_killed");
    for (int round = 0; round < 5; round++) {
        sleep_ms(500 + (unsigned)(rand_r(&seed) % 2000));
        scenario_kill_restart(s.agent);
        for (int i = 0; i < 2; i++) {
            sleep_ms(200 + (unsigned)(rand_r(&seed) % 1000));
            scenario_kill_restart(s.aggr[i]);
        }
    }
    ck_assert(probe_wait_ready(s.agent_port, 30000));
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* 6. Poison: garbage, invalid UTF-8, NUL, CRLF, a 2 MB line, a binary file,
 *    an empty file, a file deleted mid-read, and bad envelopes produced
 *    straight to the topic (-> DLQ with reasons, everything else stored). */
/* Bad envelopes produced straight to the topic, and the DLQ class each
 * must be filed under (aggregator/validate.h). */
static const struct {
    const char *value, *reason;
} bad_envelopes[] = {
    {"not json at all " SECRET_MARKER, "decode"},
    {"{\"v\":2}", "version"},
    {"{\"v\":1,\"id\":\"x\"}", "schema"},
    {"[]", "decode"},
    {"{}", "version"},
};
#define N_BAD (sizeof(bad_envelopes) / sizeof(bad_envelopes[0]))

static void produce_bad_envelopes(const char *topic)
{
    rd_kafka_t *p = tk_producer_new(test_stack("STACK_KAFKA_BROKERS"));
    for (size_t i = 0; i < N_BAD; i++)
        tk_produce(p, topic, 0, "poison", 6, bad_envelopes[i].value, strlen(bad_envelopes[i].value),
                   NULL);
    tk_flush(p);
    tk_producer_free(p);
}

/* The DLQ holds each bad envelope once, byte for byte, with its key, its
 * class, an error naming that class, and its origin (distinct offsets). */
static void assert_dlq(const struct scenario *s)
{
    struct tk_msgs m = {0};
    tk_read_topic(s->brokers, s->dlq, &m);
    ck_assert_uint_eq(m.n, N_BAD);
    bool seen[N_BAD] = {false};
    long long origin[N_BAD];
    for (size_t i = 0; i < m.n; i++) {
        const struct tk_msg *x = &m.v[i];
        size_t k = 0;
        while (k < N_BAD && (x->len != strlen(bad_envelopes[k].value) ||
                             memcmp(x->val, bad_envelopes[k].value, x->len) != 0))
            k++;
        ck_assert_msg(k < N_BAD, "DLQ message %zu is no bad envelope: %.*s", i, (int)x->len,
                      (const char *)x->val);
        ck_assert_msg(!seen[k], "\"%s\" dead-lettered twice", bad_envelopes[k].value);
        seen[k] = true;
        ck_assert_uint_eq(x->keylen, 6);
        ck_assert(memcmp(x->key, "poison", 6) == 0);
        char *reason = tk_msg_header(x, DLQ_H_REASON), *err = tk_msg_header(x, DLQ_H_ERROR);
        char *topic = tk_msg_header(x, DLQ_H_TOPIC), *part = tk_msg_header(x, DLQ_H_PARTITION);
        char *off = tk_msg_header(x, DLQ_H_OFFSET);
        ck_assert_msg(reason && strcmp(reason, bad_envelopes[k].reason) == 0,
                      "\"%s\": class %s, expected %s", bad_envelopes[k].value, reason,
                      bad_envelopes[k].reason);
        ck_assert_msg(err && strncmp(err, reason, strlen(reason)) == 0 &&
                          err[strlen(reason)] == ':',
                      "error header \"%s\" for class %s", err, reason);
        ck_assert_str_eq(topic ? topic : "", s->topic);
        ck_assert_str_eq(part ? part : "", "0");
        ck_assert_ptr_nonnull(off);
        origin[k] = atoll(off);
        free(reason);
        free(err);
        free(topic);
        free(part);
        free(off);
    }
    /* Produced in this order to partition 0: their origin offsets follow. */
    for (size_t k = 1; k < N_BAD; k++)
        ck_assert_msg(origin[k] > origin[k - 1], "origin offsets %lld then %lld", origin[k - 1],
                      origin[k]);
    tk_msgs_release(&m);
}

START_TEST(poison)
{
    struct scenario s;
    struct scenario_opts o;
    scenario_defaults(&o);
    o.start_writer = false;
    o.agent_extra = "  max_inflight_bytes: 64KiB\n";
    scenario_start(&s, "poison", &o);
    char *p;
    /* Every name matches the json input's glob, so the JSON parser meets
     * all of it and must fall back to raw without losing a byte. */
    p = xasprintf("%s/json-garbage.log", s.logdir);
    /* The marker is record data: scenario_finish finds it in no log line,
     * DLQ header or alert body. */
    WRITE_LIT(p, "{not json " SECRET_MARKER "\n\x01\x02\x03 garbage\n{\"n\":1,\"ts\":\"bad "
                 "" SECRET_MARKER "\"}\n");
    free(p);
    p = xasprintf("%s/json-utf8.log", s.logdir);
    WRITE_LIT(p, "{\"n\":\"\xff\xfe\"}\nplain \xc3\x28 invalid\n");
    free(p);
    p = xasprintf("%s/json-nul-crlf.log", s.logdir);
    WRITE_LIT(p, "with\0nul inside\nwindows line\r\n{\"n\":3}\r\n\n\n");
    free(p);
    /* A 2 MB line is cut to max_record_bytes (the checker cuts alike). */
    size_t big = 2 * 1024 * 1024;
    char *line = xmalloc(big + 1);
    memset(line, 'x', big);
    line[big] = '\n';
    p = xasprintf("%s/json-big.log", s.logdir);
    test_write_file(p, line, big + 1, false);
    free(p);
    free(line);
    /* A binary file. */
    unsigned seed = 99;
    uint8_t bin[8192];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (uint8_t)rand_r(&seed);
    bin[sizeof(bin) - 1] = '\n';
    p = xasprintf("%s/json-binary.log", s.logdir);
    test_write_file(p, bin, sizeof(bin), false);
    free(p);
    p = xasprintf("%s/json-empty.log", s.logdir);
    test_write_file(p, "", 0, false);
    free(p);
    /* Bad envelopes straight to the topic: dead-lettered before the
     * brokers go down below, so that no retry can copy one twice. */
    produce_bad_envelopes(s.topic);
    ck_assert(
        probe_wait_metric(s.aggr_port[0], "auditrail_aggregator_dlq_messages_total", N_BAD, 60000));
    /* A file deleted before it was fully read: with every broker down and a
     * small in-flight bound the agent reads the start of it and stops; the
     * file is deleted then, and must still arrive whole once Kafka is back
     * (the agent keeps the deleted file open until it is drained). A copy
     * goes where the checker finds it. */
    /* Everything so far lands first, so the agent is not already held back
     * by unacknowledged records when the brokers go. */
    struct expect sofar = {0};
    expect_add_dir(&sofar, s.logdir, 512 * 1024);
    ck_assert(store_wait_rows(s.db, (long long)sofar.n, 60000));
    expect_release(&sofar);
    char reply[256];
    ck_assert_int_eq(test_kafka_ctl("brokers down", reply, sizeof(reply)), 0);
    double read_before = probe_metric_value(s.agent_port, "auditrail_agent_records_read_total");
    char *deleted = xstrdup("");
    for (int i = 0; i < 20000; i++) {
        char *next = xasprintf("%s{\"n\":%d,\"action\":\"read\",\"actor\":\"dr.who\"}\n", deleted,
                               100000 + i);
        free(deleted);
        deleted = next;
    }
    p = xasprintf("%s/json-deleted.log", s.extra_expected_dir);
    test_write_file(p, deleted, strlen(deleted), false);
    free(p);
    p = xasprintf("%s/json-deleted.log", s.logdir);
    test_write_file(p, deleted, strlen(deleted), false);
    ck_assert(probe_wait_metric(s.agent_port, "auditrail_agent_records_read_total", read_before + 1,
                                30000));
    ck_assert_int_eq(unlink(p), 0);
    free(p);
    free(deleted);
    ck_assert_int_eq(test_kafka_ctl("brokers up", reply, sizeof(reply)), 0);

    assert_alert(&s, "AuditrailDLQWrite");
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    assert_dlq(&s);
    scenario_release(&s);
}
END_TEST

/* 7. A slow database: the test holds a lock the writer needs for 15 s. The
 *    aggregator waits (bounded memory: it pauses, librdkafka's queue is
 *    bounded), Kafka buffers, nothing is lost. */

/* The aggregator's writer session waits on a lock (pg_stat_activity); its
 * connection's application_name is the default of aggregator/pg_writer.h. */
static const char WRITER_WAITS_SQL[] =
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    "   AND application_name = 'auditrail-aggregator' AND wait_event_type = 'Lock'";

static bool writer_blocked(void *ud)
{
    return test_pg_int(ud, WRITER_WAITS_SQL) > 0;
}

START_TEST(slow_database)
{
    struct scenario s;
    struct scenario_opts o;
    scenario_defaults(&o);
    o.count = 4000;
    scenario_start(&s, "slowdb", &o);
    await_flow(&s);
    PGconn *lock = test_pg_connect(s.db);
    test_pg_exec(lock, "BEGIN");
    test_pg_exec(lock, "LOCK TABLE auditrail.streams IN ACCESS EXCLUSIVE MODE");
    long long during = store_rows(s.db);
    uint64_t locked_at = test_now_ms();
    /* The writer is really held up by the lock, not merely idle. */
    ck_assert_msg(test_wait_until(writer_blocked, s.db, 15000),
                  "the aggregator never waited on the lock (log %s)", s.aggr[0]->log);
    uint64_t held = test_now_ms() - locked_at;
    if (held < 15000)
        sleep_ms((unsigned)(15000 - held));
    ck_assert_msg(writer_blocked(s.db), "the aggregator stopped waiting on the lock");
    long rss = scenario_rss_kib(s.aggr[0]->pid);
    ck_assert_msg(rss > 0 && rss < 512 * 1024, "aggregator RSS %ld KiB while blocked", rss);
    ck_assert_int_eq(store_rows(s.db), during); /* nothing committed around the lock */
    test_pg_exec(lock, "COMMIT");
    PQfinish(lock);
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* Volume (issue 4's end-to-end case): 200 000 records in five formats with
 * rotations through agent, Kafka and aggregator; every one stored once,
 * byte-identical, every chain verified. The writer is paced so that the
 * aggregator keeps up: kafka-mock drops a partition's oldest data past
 * ~5 MB, which a lagging consumer would see as loss that real Kafka would not
 * cause. */
START_TEST(volume)
{
    struct scenario s;
    struct scenario_opts o;
    scenario_defaults(&o);
    o.count = 40000;
    o.rate = 10000;
    o.rotate_every = 4000;
    o.partitions = 128;
    scenario_start(&s, "volume", &o);
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    ck_assert_int_eq(store_rows(s.db), 200000);
    scenario_release(&s);
}
END_TEST

/* The baseline: nothing broken; also proves the checker sees real rows. */
START_TEST(baseline)
{
    struct scenario s;
    struct scenario_opts o;
    scenario_defaults(&o);
    scenario_start(&s, "baseline", &o);
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    ck_assert_int_ge(store_rows(s.db), 10000);
    scenario_release(&s);
}
END_TEST

/* Runs in the parent after each case, passed or failed: a case that broke
 * something and failed before healing it must not break the next one. */
static void heal_stack(void)
{
    char reply[256];
    test_kafka_ctl("brokers up", reply, sizeof(reply));
    scenario_stack("up");
}

int main(void)
{
    Suite *su = suite_create("faults");
    struct {
        const char *name;
        const TTest *t;
    } cases[] = {
        {"baseline", baseline},
        {"volume", volume},
        {"pg_primary_stopped", pg_primary_stopped},
        {"pg_primary_killed", pg_primary_killed},
        {"redis_killed", redis_killed},
        {"kafka_brokers_down", kafka_brokers_down},
        {"processes_killed", processes_killed},
        {"poison", poison},
        {"slow_database", slow_database},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 400);
        tcase_add_unchecked_fixture(tc, NULL, heal_stack);
        tcase_add_test(tc, cases[i].t);
        suite_add_tcase(su, tc);
    }
    return test_run_suite(su);
}
