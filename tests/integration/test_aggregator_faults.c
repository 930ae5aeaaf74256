/* auditrail-aggregator under faults, on the real stack: two aggregators in
 * one group with rebalances while records flow, and SIGKILL mid-batch again
 * and again — every record stored exactly once (count, distinct ids,
 * contiguous seq per stream). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define T0_US  INT64_C(1795722645000000) /* 2026-11-26T19:50:45Z */
#define NPARTS 4                         /* partitions of every test topic here */

/* Records of nstreams streams, n each, kept in order per stream. */
struct recs {
    int nstreams, n;
    char **json;
    size_t *len;
    struct tenv_stream *s;
};

static void recs_make(struct recs *r, const char *tag, int nstreams, int n)
{
    r->nstreams = nstreams;
    r->n = n;
    r->json = xcalloc((size_t)(nstreams * n), sizeof(*r->json));
    r->len = xcalloc((size_t)(nstreams * n), sizeof(*r->len));
    r->s = xcalloc((size_t)nstreams, sizeof(*r->s));
    for (int j = 0; j < nstreams; j++) {
        char name[96];
        snprintf(name, sizeof(name), "%s-%d", tag, j);
        tenv_stream_init(&r->s[j], name);
    }
    /* ~400-byte records: realistic, and enough bytes for batches to matter. */
    char pad[301];
    memset(pad, 'x', 300);
    pad[300] = '\0';
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nstreams; j++) {
            char line[400];
            snprintf(line, sizeof(line), "{\"actor\":\"u%d\",\"n\":%d,\"pad\":\"%s\"}", j, i, pad);
            size_t k = (size_t)(i * nstreams + j);
            r->json[k] = tenv_next_json(&r->s[j], line, T0_US + i * 1000, &r->len[k]);
        }
}

static void recs_free(struct recs *r)
{
    for (int i = 0; i < r->nstreams * r->n; i++)
        free(r->json[i]);
    free(r->json);
    free(r->len);
    free(r->s);
}

/* Produce records [from, to) of every stream; stream j goes to partition
 * j % nparts (not by key hash): kafka-mock keeps only ~5 MB per partition
 * and deletes older data, so the load must be even. */
static void recs_produce(struct recs *r, rd_kafka_t *p, const char *topic, int nparts, int from,
                         int to)
{
    for (int i = from; i < to; i++)
        for (int j = 0; j < r->nstreams; j++) {
            size_t k = (size_t)(i * r->nstreams + j);
            th_produce(p, topic, j % nparts, r->s[j].stream, 32, r->json[k], r->len[k], NULL);
        }
    th_producer_flush(p);
}

/* The dbname of a conninfo (asks the server). */
static char *db_name_of(const char *conninfo)
{
    PGconn *c = test_pg_connect(conninfo);
    char *v = test_pg_scalar(c, "SELECT current_database()");
    PQfinish(c);
    return v;
}

struct metric_wait {
    int port;
    const char *series;
    double min;
};

static bool metric_at_least(void *ud)
{
    struct metric_wait *w = ud;
    return th_metric(w->port, w->series) >= w->min;
}

START_TEST(two_aggregators_rebalancing_exactly_once)
{
    char *db = test_pg_fresh_db("aggr_rebal");
    char *topic = test_kafka_topic("aggr_rebal", NPARTS);
    char *dlq = test_kafka_topic("dlq", 1);
    char *dir = test_tmpdir("aggr_rebal");
    int pa = th_free_port(), pb = th_free_port();
    char *ca = th_aggr_config(dir, "a.yaml", db, topic, dlq, topic, NULL, pa, NULL);
    char *cb = th_aggr_config(dir, "b.yaml", db, topic, dlq, topic, NULL, pb, NULL);
    char *la = xasprintf("%s/a.log", dir), *lb = xasprintf("%s/b.log", dir);
    struct recs r;
    const int ns = 12, n = 400, total = ns * n;
    recs_make(&r, topic, ns, n);
    rd_kafka_t *p = th_producer_new();

    struct th_aggr *a = th_aggr_start(ca, la, pa);
    recs_produce(&r, p, topic, NPARTS, 0, 100);
    ck_assert(th_wait_rows(db, 1, 60000) >= 1);

    /* B joins mid-stream: the group rebalances and B takes partitions. */
    struct th_aggr *b = th_aggr_start(cb, lb, pb);
    recs_produce(&r, p, topic, NPARTS, 100, 200);
    struct metric_wait wb = {pb, "auditrail_aggregator_assigned_partitions", 1};
    ck_assert_msg(test_wait_until(metric_at_least, &wb, 60000), "B never got partitions");

    /* A leaves cleanly while records flow; B takes everything. */
    recs_produce(&r, p, topic, NPARTS, 200, 250);
    ck_assert_int_eq(th_aggr_stop(a, SIGTERM, 30000), 0);
    recs_produce(&r, p, topic, NPARTS, 250, 300);
    wb.min = NPARTS;
    ck_assert_msg(test_wait_until(metric_at_least, &wb, 60000), "B never got all partitions");

    /* B dies without leaving; A comes back and takes over after B's
     * session times out. */
    ck_assert_int_eq(th_aggr_stop(b, SIGKILL, 10000), 128 + SIGKILL);
    a = th_aggr_start(ca, la, pa);
    recs_produce(&r, p, topic, NPARTS, 300, n);

    ck_assert_int_eq(th_wait_offsets(db, topic, total, 120000), total);
    th_assert_exactly_once(db, total);
    /* Nothing skipped by the broker (the mock's retention) either. */
    ck_assert_double_eq(th_metric(a->http_port, "auditrail_aggregator_offset_gaps_total"), 0);
    ck_assert_int_eq(th_aggr_stop(a, SIGTERM, 30000), 0);

    th_producer_free(p);
    recs_free(&r);
    test_pg_drop_db(db);
    if (!getenv("KEEP_LOGS"))
        test_rmtree(dir);
    free(db);
    free(topic);
    free(dlq);
    free(dir);
    free(ca);
    free(cb);
    free(la);
    free(lb);
}
END_TEST

START_TEST(sigkill_mid_batch_repeatedly)
{
    char *db = test_pg_fresh_db("aggr_kill");
    char *topic = test_kafka_topic("aggr_kill", NPARTS);
    char *dlq = test_kafka_topic("dlq", 1);
    char *dir = test_tmpdir("aggr_kill");
    int port = th_free_port();
    /* Batches of 500 (th_aggr_config): many transactions to land a kill in. */
    char *cfg = th_aggr_config(dir, "k.yaml", db, topic, dlq, topic, NULL, port, NULL);
    char *log = xasprintf("%s/k.log", dir);
    struct recs r;
    const int ns = 8, n = 1500, total = ns * n;
    recs_make(&r, topic, ns, n);
    rd_kafka_t *p = th_producer_new();
    recs_produce(&r, p, topic, NPARTS, 0, n);

    int64_t last = 0;
    int kills = 0;
    for (int round = 0; round < 6; round++) {
        struct th_aggr *a = th_aggr_start(cfg, log, port);
        /* Kill as soon as it made progress: it is then writing the next
         * batch (or between batches, which must be just as safe). */
        int64_t now = th_wait_rows(db, last + 1, 60000);
        ck_assert_int_eq(th_aggr_stop(a, SIGKILL, 10000), 128 + SIGKILL);
        kills++;
        ck_assert_int_gt(now, last);
        /* It may have committed more between our count and the kill. */
        last = th_sql_int(db, "SELECT count(*) FROM auditrail.events");
        if (last >= total)
            break;
    }
    ck_assert_int_ge(kills, 5);
    ck_assert_msg(last < total, "every record stored before the 5th kill; make the test bigger");

    struct th_aggr *a = th_aggr_start(cfg, log, port);
    ck_assert_int_eq(th_wait_offsets(db, topic, total, 120000), total);
    th_assert_exactly_once(db, total);
    /* Nothing skipped by the broker (the mock's retention) either. */
    ck_assert_double_eq(th_metric(a->http_port, "auditrail_aggregator_offset_gaps_total"), 0);
    ck_assert_int_eq(th_aggr_stop(a, SIGTERM, 30000), 0);

    th_producer_free(p);
    recs_free(&r);
    test_pg_drop_db(db);
    if (!getenv("KEEP_LOGS"))
        test_rmtree(dir);
    free(db);
    free(topic);
    free(dlq);
    free(dir);
    free(cfg);
    free(log);
}
END_TEST

struct ready_wait {
    int port;
    bool want;
};

static bool ready_is(void *ud)
{
    struct ready_wait *w = ud;
    return th_ready(w->port) == w->want;
}

/* PostgreSQL unreachable mid-stream (its database refuses connections and
 * our sessions are terminated): the breaker opens, /readyz fails, nothing
 * is lost; when it comes back consumption resumes from the stored offsets. */
START_TEST(postgres_outage_pauses_and_resumes)
{
    char *db = test_pg_fresh_db("aggr_pgdown");
    char *topic = test_kafka_topic("aggr_pgdown", NPARTS);
    char *dlq = test_kafka_topic("dlq", 1);
    char *dir = test_tmpdir("aggr_pgdown");
    int port = th_free_port();
    char *cfg = th_aggr_config(dir, "p.yaml", db, topic, dlq, topic, NULL, port, NULL);
    char *log = xasprintf("%s/p.log", dir);
    char *admin = xstrdup(test_stack("STACK_PG_PRIMARY")); /* another database */
    char *dbname = db_name_of(db);
    struct recs r;
    const int ns = 4, n = 100, total = ns * n;
    recs_make(&r, topic, ns, n);
    rd_kafka_t *p = th_producer_new();

    struct th_aggr *a = th_aggr_start(cfg, log, port);
    recs_produce(&r, p, topic, NPARTS, 0, 40);
    ck_assert_int_eq(th_wait_rows(db, 40 * ns, 60000), 40 * ns);
    struct ready_wait rw = {port, true};
    ck_assert(test_wait_until(ready_is, &rw, 30000));

    PGconn *ac = test_pg_connect(admin);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "ALTER DATABASE %s ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM "
             "pg_stat_activity WHERE datname = '%s'",
             dbname, dbname);
    test_pg_exec(ac, sql);
    recs_produce(&r, p, topic, NPARTS, 40, 70);
    rw.want = false;
    ck_assert_msg(test_wait_until(ready_is, &rw, 60000), "never reported not-ready");
    struct metric_wait mw = {port, "auditrail_aggregator_breaker_state{breaker=\"postgres\"}", 1};
    ck_assert_msg(test_wait_until(metric_at_least, &mw, 30000), "breaker never opened");

    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", dbname);
    test_pg_exec(ac, sql);
    PQfinish(ac);
    recs_produce(&r, p, topic, NPARTS, 70, n);
    ck_assert_int_eq(th_wait_offsets(db, topic, total, 120000), total);
    th_assert_exactly_once(db, total);
    rw.want = true;
    ck_assert(test_wait_until(ready_is, &rw, 30000));
    ck_assert_int_eq(th_aggr_stop(a, SIGTERM, 30000), 0);

    th_producer_free(p);
    recs_free(&r);
    test_pg_drop_db(db);
    if (!getenv("KEEP_LOGS"))
        test_rmtree(dir);
    free(db);
    free(topic);
    free(dlq);
    free(dir);
    free(cfg);
    free(log);
    free(admin);
    free(dbname);
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
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
