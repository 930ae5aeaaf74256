/* The fault suite (issue 5): the whole pipeline — writer, agent, aggregators,
 * the real stack — with one thing broken and healed per case, then the
 * independent checker: every written record in auditrail.events exactly once,
 * byte-identical, seq contiguous, chains verifying; processes alive; the
 * fault visible in metrics and, where it is an alert, at a test webhook.
 *
 * Sleeps here are fault durations (how long a dependency stays down), never
 * waits for a condition: those use test_wait_until. */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/e2e.h"
#include "tests/support/scenario.h"
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

static bool not_ready(void *ud)
{
    unsigned *port = ud;
    return e2e_http_get(*port, "/readyz", NULL) == 503;
}

static bool rows_present(void *ud)
{
    struct scenario *s = ud;
    return e2e_row_count(s->db) > 0;
}

struct hook_cond {
    struct webhook *w;
    const char *name;
};

static bool hook_got(void *ud)
{
    struct hook_cond *h = ud;
    return webhook_count(h->w, h->name) > 0;
}

static void assert_alert(struct scenario *s, const char *alertname)
{
    struct hook_cond h = {s->hook, alertname};
    ck_assert_msg(test_wait_until(hook_got, &h, 30000), "no %s alert reached the webhook",
                  alertname);
}

/* Wait until the pipeline is moving: rows are landing. */
static void await_flow(struct scenario *s)
{
    ck_assert_msg(test_wait_until(rows_present, s, 60000), "no rows landed (logs in %s)", s->tmp);
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
    ck_assert_msg(test_wait_until(not_ready, &s.aggr_port[0], 30000),
                  "aggregator stayed ready with PostgreSQL down");
    ck_assert(e2e_wait_metric(
        s.aggr_port[0], "auditrail_aggregator_breaker_state{breaker=\"postgres\"}", 1, 30000));
    sleep_ms(20000);
    ck_assert_int_eq(scenario_stack("start pg-primary"), 0);
    ck_assert(e2e_wait_ready(s.aggr_port[0], 60000));
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
    ck_assert_msg(test_wait_until(not_ready, &s.aggr_port[0], 30000),
                  "aggregator stayed ready with PostgreSQL killed");
    ck_assert_int_eq(scenario_stack("start pg-primary"), 0);
    ck_assert(e2e_wait_ready(s.aggr_port[0], 60000));
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
    long long before = e2e_row_count(s.db);
    ck_assert(e2e_wait_metric(s.aggr_port[0], "auditrail_aggregator_redis_errors_total", 1, 30000));
    /* Rows keep landing while Redis is down. */
    ck_assert(e2e_wait_rows(s.db, before + 1000, 60000));
    ck_assert_int_eq(e2e_http_get(s.aggr_port[0], "/readyz", NULL), 200);
    ck_assert_int_eq(scenario_stack("start redis"), 0);
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* 4. All Kafka brokers down for 20 s; then one broker down while the others
 *    serve. */
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
    ck_assert_msg(test_wait_until(not_ready, &s.agent_port, 30000),
                  "agent stayed ready with every broker down");
    sleep_ms(20000);
    /* Memory stays bounded while the file is the buffer. */
    long rss = scenario_rss_kib(s.agent->pid);
    ck_assert_msg(rss > 0 && rss < 64 * 1024, "agent RSS %ld KiB during the outage", rss);
    assert_alert(&s, "AuditrailKafkaUnavailable");
    ck_assert_int_eq(test_kafka_ctl("brokers up", reply, sizeof(reply)), 0);
    ck_assert(e2e_wait_ready(s.agent_port, 60000));
    ck_assert_int_eq(test_kafka_ctl("broker down 2", reply, sizeof(reply)), 0);
    long long before = e2e_row_count(s.db);
    ck_assert(e2e_wait_rows(s.db, before + 500, 60000));
    ck_assert_int_eq(test_kafka_ctl("broker up 2", reply, sizeof(reply)), 0);
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* 5. The agent SIGKILLed 5 times and two aggregators 5 times each, at random
 *    moments, during rotations and rebalances. */
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
    unsigned seed = (unsigned)time(NULL);
    fprintf(stderr, "processes_killed: seed %u\n", seed);
    for (int round = 0; round < 5; round++) {
        sleep_ms(500 + (unsigned)(rand_r(&seed) % 2000));
        e2e_kill(s.agent, SIGKILL);
        scenario_restart_agent(&s);
        for (int i = 0; i < 2; i++) {
            sleep_ms(200 + (unsigned)(rand_r(&seed) % 1000));
            e2e_kill(s.aggr[i], SIGKILL);
            scenario_restart_aggr(&s, i);
        }
    }
    ck_assert(e2e_wait_ready(s.agent_port, 30000));
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* 6. Poison: garbage, invalid UTF-8, NUL, CRLF, a 2 MB line, a binary file,
 *    an empty file, a file deleted mid-read, and bad envelopes produced
 *    straight to the topic (-> DLQ with reasons, everything else stored). */
static void produce_raw(const char *topic, const char *const *values, size_t n)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", test_stack("STACK_KAFKA_BROKERS"), err,
                                sizeof(err)) == RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE((void *)values[i], strlen(values[i])),
            RD_KAFKA_V_KEY("poison", 6), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        ck_assert_int_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    ck_assert_int_eq(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* Consume the DLQ topic until n messages arrived; count those whose
 * auditrail-error header is present and origin headers name `topic`. */
static size_t consume_dlq(const char *dlq, const char *topic, size_t n)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char *group = xasprintf("dlq-check-%d", (int)getpid());
    ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", test_stack("STACK_KAFKA_BROKERS"), err,
                                sizeof(err)) == RD_KAFKA_CONF_OK);
    ck_assert(rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) == RD_KAFKA_CONF_OK);
    ck_assert(rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err)) ==
              RD_KAFKA_CONF_OK);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, dlq, RD_KAFKA_PARTITION_UA);
    ck_assert_int_eq(rd_kafka_subscribe(c, sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);
    size_t seen = 0, good = 0;
    uint64_t deadline = test_now_ms() + 60000;
    while (seen < n && test_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (!m->err) {
            seen++;
            rd_kafka_headers_t *h = NULL;
            const void *v;
            size_t vlen;
            bool has_err = false, has_origin = false;
            if (rd_kafka_message_headers(m, &h) == 0) {
                has_err =
                    rd_kafka_header_get_last(h, "auditrail-error", &v, &vlen) == 0 && vlen > 0;
                has_origin = rd_kafka_header_get_last(h, "auditrail-topic", &v, &vlen) == 0 &&
                             vlen == strlen(topic) && memcmp(v, topic, vlen) == 0;
            }
            if (has_err && has_origin)
                good++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    free(group);
    return good;
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
    WRITE_LIT(p, "{not json\n\x01\x02\x03 garbage\n{\"n\":1,\"ts\":\"bad\"}\n");
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
    /* Bad envelopes straight to the topic. */
    const char *bad[] = {"not json at all", "{\"v\":2}", "{\"v\":1,\"id\":\"x\"}", "[]", "{}"};
    produce_raw(s.topic, bad, 5);
    /* A file deleted before it was fully read: with every broker down and a
     * small in-flight bound the agent reads the start of it and stops; the
     * file is deleted then, and must still arrive whole once Kafka is back
     * (the agent keeps the deleted file open until it is drained). A copy
     * goes where the checker finds it. */
    /* Everything so far lands first, so the agent is not already held back
     * by unacknowledged records when the brokers go. */
    struct e2e_records sofar = {0};
    e2e_collect_records(s.logdir, 512 * 1024, &sofar);
    ck_assert(e2e_wait_rows(s.db, (long long)sofar.n, 60000));
    e2e_records_release(&sofar);
    char reply[256];
    ck_assert_int_eq(test_kafka_ctl("brokers down", reply, sizeof(reply)), 0);
    double read_before = e2e_metric(s.agent_port, "auditrail_agent_records_read_total");
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
    ck_assert(e2e_wait_metric(s.agent_port, "auditrail_agent_records_read_total", read_before + 1,
                              30000));
    ck_assert_int_eq(unlink(p), 0);
    free(p);
    free(deleted);
    ck_assert_int_eq(test_kafka_ctl("brokers up", reply, sizeof(reply)), 0);

    ck_assert_uint_eq(consume_dlq(s.dlq, s.topic, 5), 5);
    ck_assert(e2e_wait_metric(s.aggr_port[0], "auditrail_aggregator_dlq_messages_total", 5, 30000));
    assert_alert(&s, "AuditrailDLQWrite");
    scenario_finish(&s, FINISH_TIMEOUT_MS);
    scenario_release(&s);
}
END_TEST

/* 7. A slow database: the test holds a lock the writer needs for 15 s. The
 *    aggregator waits (bounded memory: it pauses, librdkafka's queue is
 *    bounded), Kafka buffers, nothing is lost. */
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
    long long during = e2e_row_count(s.db);
    sleep_ms(15000);
    long rss = scenario_rss_kib(s.aggr[0]->pid);
    ck_assert_msg(rss > 0 && rss < 512 * 1024, "aggregator RSS %ld KiB while blocked", rss);
    ck_assert_int_eq(e2e_row_count(s.db), during); /* nothing committed around the lock */
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
    ck_assert_int_eq(e2e_row_count(s.db), 200000);
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
    ck_assert_int_ge(e2e_row_count(s.db), 10000);
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
