/* auditrail-aggregator under faults, on the real stack: two aggregators in
 * one group with rebalances while records flow, SIGKILL mid-batch again and
 * again, PostgreSQL unreachable — once the topic is drained, every record
 * stored exactly once with the bytes, hashes and times computed
 * independently (tests/support/chain.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/chain.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/store.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define T0_US    INT64_C(1795722645000000) /* 2026-11-26T19:50:45Z */
#define NPARTS   4                         /* partitions of every test topic here */
#define PAD      300                       /* ~400-byte records: batches' bytes matter */
#define DRAIN_MS 120000

/* Records i in [from, to) of every stream of r (ns streams), stream j to
 * partition j % NPARTS (not by key hash): kafka-mock keeps only ~5 MB per
 * partition and deletes older data, so the load must be even. */
static void produce_rounds(struct th_env *e, const struct trecs *r, int ns, int from, int to)
{
    th_produce(e, r, (size_t)(from * ns), (size_t)(to * ns), NPARTS);
}

/* A fresh env and ns streams of n records each (~400 bytes). */
static void fx_init(struct th_env *e, struct trecs *r, const char *name, int ns, int n)
{
    th_env_init(e, name, NPARTS);
    memset(r, 0, sizeof(*r));
    trecs_make(r, e->topic, ns, n, T0_US, PAD);
}

/* Nothing skipped by the broker (the mock's retention) either. */
static void assert_no_offset_gaps(const struct th_env *e, int i)
{
    ck_assert_double_eq(
        probe_metric_value(e->aggr[i].port, "auditrail_aggregator_offset_gaps_total"), 0);
}

START_TEST(two_aggregators_rebalancing_exactly_once)
{
    struct th_env e;
    struct trecs r;
    const int ns = 12, n = 400;
    fx_init(&e, &r, "aggr_rebal", ns, n);
    unsigned pb = e.aggr[1].port;

    th_aggr_start(&e, 0);
    produce_rounds(&e, &r, ns, 0, 100);
    ck_assert(store_wait_rows(e.db, 1, 60000));

    /* B joins mid-stream: the group rebalances and B takes partitions. */
    th_aggr_start(&e, 1);
    produce_rounds(&e, &r, ns, 100, 200);
    ck_assert_msg(probe_wait_metric(pb, "auditrail_aggregator_assigned_partitions", 1, 60000),
                  "B never got partitions");

    /* A leaves cleanly while records flow; B takes everything. */
    produce_rounds(&e, &r, ns, 200, 250);
    th_aggr_stop(&e, 0);
    produce_rounds(&e, &r, ns, 250, 300);
    ck_assert_msg(probe_wait_metric(pb, "auditrail_aggregator_assigned_partitions", NPARTS, 60000),
                  "B never got all partitions");

    /* B dies without leaving; A comes back and takes over after B's
     * session times out. */
    th_aggr_kill(&e, 1);
    th_aggr_start(&e, 0);
    produce_rounds(&e, &r, ns, 300, n);

    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &r);
    assert_no_offset_gaps(&e, 0);
    th_aggr_stop(&e, 0);
    trecs_release(&r);
    th_env_release(&e);
}
END_TEST

START_TEST(sigkill_mid_batch_repeatedly)
{
    struct th_env e;
    struct trecs r;
    /* Batches of 500 (th_env): many transactions to land a kill in. */
    const int ns = 8, n = 1500;
    fx_init(&e, &r, "aggr_kill", ns, n);
    produce_rounds(&e, &r, ns, 0, n);

    long long last = 0;
    int kills = 0;
    for (int round = 0; round < 6; round++) {
        th_aggr_start(&e, 0);
        /* Kill as soon as it made progress: it is then writing the next
         * batch (or between batches, which must be just as safe). */
        ck_assert(store_wait_rows(e.db, last + 1, 60000));
        th_aggr_kill(&e, 0);
        kills++;
        /* It may have committed more between our count and the kill. */
        last = store_rows(e.db);
        if (last >= (long long)r.n)
            break;
    }
    ck_assert_int_ge(kills, 5);
    ck_assert_msg(last < (long long)r.n,
                  "every record stored before the 5th kill; make the test bigger");

    th_aggr_start(&e, 0);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &r);
    assert_no_offset_gaps(&e, 0);
    th_aggr_stop(&e, 0);
    trecs_release(&r);
    th_env_release(&e);
}
END_TEST

/* Let sessions into database db again, or keep them out and end the ones
 * it has (the database unreachable for the aggregator, the server up for
 * the other suites). */
static void db_connections(const char *db, bool allow)
{
    PGconn *admin = test_pg_connect(test_stack("STACK_PG_PRIMARY")); /* another database */
    /* Its name from the conninfo: a database refusing sessions cannot say. */
    PQconninfoOption *opts = PQconninfoParse(db, NULL);
    ck_assert_ptr_nonnull(opts);
    char *dbname = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "dbname") && o->val)
            dbname = xstrdup(o->val);
    PQconninfoFree(opts);
    ck_assert_ptr_nonnull(dbname);
    char *sql = allow ? xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS true", dbname)
                      : xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS false; SELECT "
                                  "pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                  "datname = '%s'",
                                  dbname, dbname);
    test_pg_exec(admin, sql);
    free(sql);
    free(dbname);
    PQfinish(admin);
}

/* PostgreSQL unreachable mid-stream (its database refuses connections and
 * our sessions are terminated): the breaker opens, /readyz fails, nothing
 * is lost; when it comes back consumption resumes from the stored offsets. */
START_TEST(postgres_outage_pauses_and_resumes)
{
    struct th_env e;
    struct trecs r;
    const int ns = 4, n = 100;
    fx_init(&e, &r, "aggr_pgdown", ns, n);
    unsigned port = e.aggr[0].port;

    th_aggr_start(&e, 0);
    produce_rounds(&e, &r, ns, 0, 40);
    th_assert_drained(&e, 60000);
    ck_assert_int_eq(store_rows(e.db), 40 * ns);
    ck_assert(probe_wait_ready(port, 30000));

    db_connections(e.db, false);
    produce_rounds(&e, &r, ns, 40, 70);
    ck_assert_msg(probe_wait_status(port, "/readyz", 503, 60000), "never reported not-ready");
    ck_assert_msg(probe_wait_metric(
                      port, "auditrail_aggregator_breaker_state{breaker=\"postgres\"}", 1, 30000),
                  "breaker never opened");

    db_connections(e.db, true);
    produce_rounds(&e, &r, ns, 70, n);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &r);
    ck_assert(probe_wait_ready(port, 30000));
    th_aggr_stop(&e, 0);
    trecs_release(&r);
    th_env_release(&e);
}
END_TEST

/* Whether the log at path says what within timeout_ms. */
static bool log_says(const char *path, const char *what, unsigned timeout_ms)
{
    uint64_t deadline = test_now_ms() + timeout_ms;
    for (;;) {
        size_t len = 0;
        uint8_t *log = test_read_file(path, &len);
        bool found = log && memmem(log, len, what, strlen(what));
        free(log);
        if (found)
            return true;
        if (test_now_ms() >= deadline)
            return false;
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
}

/* Every broker and the database gone while batches, their Kafka commits
 * and fetches are in flight, then SIGTERM: the aggregator stops with exit
 * 0 within the harness's stop timeout, and a restart once they are back
 * stores everything exactly once. librdkafka's synchronous consumer close
 * waited for the group coordinator forever (join state
 * wait-unassign-to-complete): the aggregator hung until killed; this case
 * caught it under the sanitizer build, where the timing lands there. The
 * close is now bounded (consumer.c, CONSUMER_CLOSE_MS). A private
 * kafka-mock, so that the shared one stays up for the other suites. */
START_TEST(stops_while_kafka_is_down)
{
    struct th_env e;
    struct trecs r;
    const int ns = 4, n = 400;
    fx_init(&e, &r, "aggr_kdown", ns, n);
    struct test_kafka_mock *m = test_kafka_mock_start(3);
    char reply[256];
    char *cmd = xasprintf("topic create %s %d", e.topic, NPARTS);
    ck_assert_int_eq(test_kafka_mock_ctl(m, cmd, reply, sizeof(reply)), 0);
    free(cmd);
    cmd = xasprintf("topic create %s 1", e.dlq);
    ck_assert_int_eq(test_kafka_mock_ctl(m, cmd, reply, sizeof(reply)), 0);
    free(cmd);
    tk_producer_free(e.prod);
    free(e.brokers);
    e.brokers = xstrdup(m->bootstraps);
    e.prod = tk_producer_new(e.brokers);
    th_aggr_config(&e, 0, NULL, NULL);

    th_aggr_start(&e, 0);
    ck_assert(probe_wait_ready(e.aggr[0].port, 30000));
    /* Brokers down while batches, their Kafka commits and fetches are in
     * flight. */
    produce_rounds(&e, &r, ns, 0, n);
    ck_assert(probe_wait_metric(e.aggr[0].port, "auditrail_aggregator_inserted_total", 1, 30000));
    ck_assert_int_eq(test_kafka_mock_ctl(m, "brokers down", reply, sizeof(reply)), 0);
    ck_assert_msg(log_says(e.aggr[0].log, "brokers are down", 30000),
                  "the aggregator never noticed the brokers down (log %s)", e.aggr[0].log);
    db_connections(e.db, false);
    th_aggr_stop(&e, 0); /* exit 0 within the harness's stop timeout */
    db_connections(e.db, true);
    ck_assert_int_eq(test_kafka_mock_ctl(m, "brokers up", reply, sizeof(reply)), 0);
    th_aggr_start(&e, 0); /* what was not committed is read again */
    th_assert_drained(&e, 60000);
    th_aggr_stop(&e, 0);
    store_assert_records(e.db, &r);
    test_kafka_mock_stop(m);
    trecs_release(&r);
    th_env_release(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggregator_faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, two_aggregators_rebalancing_exactly_once);
    tcase_add_test(tc, sigkill_mid_batch_repeatedly);
    tcase_add_test(tc, postgres_outage_pauses_and_resumes);
    tcase_add_test(tc, stops_while_kafka_is_down);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
