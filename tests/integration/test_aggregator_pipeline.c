/* auditrail-aggregator against the real stack (fresh database and unique
 * topics per test): re-sends stored once (same bytes, new time, after a
 * restart), forks kept with an incident, poison messages in the DLQ with
 * their origin, Redis down not stopping ingestion, replay restoring exactly
 * the lost rows. Every storage check compares the rows with records computed
 * independently (tests/support/chain.h), after the topic has been drained
 * (so a late duplicate cannot slip past). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "aggregator/dlq.h"
#include "common/xmalloc.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/chain.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/store.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"
#include "tests/support/webhook.h"

#define T0_US    INT64_C(1795722645000000) /* 2026-11-26T19:50:45Z */
#define DRAIN_MS 60000

static double metric(const struct th_env *e, const char *series)
{
    return probe_metric_value(e->aggr[0].port, series);
}

START_TEST(same_envelopes_twice_stored_once)
{
    struct th_env e;
    th_env_init(&e, "aggr_twice", 3);
    struct trecs r = {0};
    trecs_make(&r, "twice", 5, 40, T0_US, 0);
    th_produce(&e, &r, 0, r.n, 0);
    th_produce(&e, &r, 0, r.n, 0);
    th_aggr_start(&e, 0);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &r);
    /* The second copies never reached PostgreSQL's insert: in-batch or LRU. */
    double dups = metric(&e, "auditrail_aggregator_duplicates_total{layer=\"batch\"}") +
                  metric(&e, "auditrail_aggregator_duplicates_total{layer=\"lru\"}") +
                  metric(&e, "auditrail_aggregator_duplicates_total{layer=\"stream\"}") +
                  metric(&e, "auditrail_aggregator_duplicates_total{layer=\"pk\"}");
    ck_assert_double_eq(dups, r.n);
    ck_assert_double_eq(metric(&e, "auditrail_aggregator_inserted_total"), r.n);
    ck_assert(probe_wait_ready(e.aggr[0].port, 0));
    th_aggr_stop(&e, 0);
    trecs_release(&r);
    th_env_release(&e);
}
END_TEST

/* Re-sent with a new read time (the agent re-read them after a crash):
 * stored once, at the first time; after a restart (empty LRU, no Redis) the
 * per-stream rule in PostgreSQL catches them. */
START_TEST(resend_with_new_time_stored_once)
{
    struct th_env e;
    th_env_init(&e, "aggr_newtime", 2);
    struct trecs r = {0}, later = {0};
    trecs_make(&r, "newtime", 3, 30, T0_US, 0);
    /* Same streams and lines, one day and an hour later. */
    trecs_make(&later, "newtime", 3, 30, T0_US + INT64_C(90000000000), 0);
    th_aggr_start(&e, 0);
    th_produce(&e, &r, 0, r.n, 0);
    th_assert_drained(&e, DRAIN_MS);
    th_aggr_stop(&e, 0);

    th_aggr_start(&e, 0);
    th_produce(&e, &later, 0, later.n, 0);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &r); /* the first times */
    ck_assert_double_eq(metric(&e, "auditrail_aggregator_duplicates_total{layer=\"stream\"}"),
                        later.n);
    ck_assert_int_eq(test_pg_int(e.db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    th_aggr_stop(&e, 0);
    trecs_release(&r);
    trecs_release(&later);
    th_env_release(&e);
}
END_TEST

START_TEST(fork_is_an_incident_and_both_kept)
{
    struct webhook *hook = webhook_start();
    struct th_env e;
    th_env_init(&e, "aggr_fork", 1);
    char *alerts = xasprintf("http://127.0.0.1:%u/api/v2/alerts", webhook_port(hook));
    th_aggr_config(&e, 0, NULL, alerts); /* the fork must raise an alert */
    struct tchain s, at5 = {.seq = 0};
    tchain_init(&s, "forked");
    struct trecs want = {0};
    for (int i = 0; i < 10; i++) {
        char line[32];
        snprintf(line, sizeof(line), "original %d", i);
        if (i == 5)
            at5 = s; /* the chain state before seq 5 */
        struct trec r;
        tchain_next(&s, line, strlen(line), T0_US + i, &r);
        trecs_push(&want, &r);
    }
    /* A different record with seq 5 on the same chain: a fork. */
    struct trec fork;
    tchain_next(&at5, "tampered 5", 10, T0_US + 5, &fork);
    trecs_push(&want, &fork);
    th_aggr_start(&e, 0);
    th_produce(&e, &want, 0, want.n, 1);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &want); /* both records with seq 5 */
    ck_assert_int_eq(test_pg_int(e.db, "SELECT count(*) FROM auditrail.integrity_incidents "
                                       "WHERE kind = 'fork' AND seq = 5"),
                     1);
    ck_assert_double_eq(metric(&e, "auditrail_aggregator_integrity_incidents_total{kind=\"fork\"}"),
                        1);
    ck_assert_msg(webhook_wait(hook, "AuditrailIntegrityIncident", 30000), "no alert for the fork");
    th_aggr_stop(&e, 0);
    trecs_release(&want);
    free(alerts);
    th_env_release(&e);
    webhook_stop(hook);
}
END_TEST

/* Assert header `name` of m equals want. */
static void assert_header(const struct tk_msg *m, const char *name, const char *want)
{
    char *v = tk_msg_header(m, name);
    ck_assert_msg(v != NULL, "header %s missing", name);
    ck_assert_str_eq(v, want);
    free(v);
}

START_TEST(poison_messages_go_to_the_dlq)
{
    struct th_env e;
    th_env_init(&e, "aggr_poison", 1);
    struct tchain s;
    tchain_init(&s, "poison");
    struct trecs good = {0};
    struct trec r, tampered;
    tchain_next(&s, "good 0", 6, T0_US, &r);
    trecs_push(&good, &r);
    tchain_next(&s, "good 1", 6, T0_US + 1, &r);
    trecs_push(&good, &r);
    tchain_next(&s, "good 2", 6, T0_US + 2, &tampered);
    *strstr(tampered.json, "good 2") = 'G'; /* hash no longer matches */
    char *v2 = xstrdup(good.v[1].json);
    memcpy(strstr(v2, "\"v\":1"), "\"v\":7", 5);
    const char *notjson = "this is not json\x01\x02";
    struct {
        const char *val;
        size_t len;
        const char *reason;
    } poison[] = {
        {notjson, strlen(notjson), "decode"},
        {tampered.json, tampered.json_len, "integrity"},
        {NULL, 0, "null"},
        {v2, strlen(v2), "version"},
    };
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "traceparent", -1, "00-xyz-01", -1);
    /* offsets: 0 good 0, 1..4 poison, 5 good 1 */
    tk_produce(e.prod, e.topic, 0, s.stream, 32, good.v[0].json, good.v[0].json_len, NULL);
    for (size_t i = 0; i < 4; i++)
        tk_produce(e.prod, e.topic, 0, "k", 1, poison[i].val, poison[i].len, h);
    tk_produce(e.prod, e.topic, 0, s.stream, 32, good.v[1].json, good.v[1].json_len, NULL);
    tk_flush(e.prod);
    th_aggr_start(&e, 0);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &good);

    /* Drained: every DLQ copy was acknowledged before its offset committed. */
    struct tk_msgs m = {0};
    tk_read_topic(e.brokers, e.dlq, &m);
    ck_assert_uint_eq(m.n, 4);
    unsigned seen = 0; /* one bit per origin offset */
    for (size_t i = 0; i < m.n; i++) {
        char *off = tk_msg_header(&m.v[i], DLQ_H_OFFSET);
        ck_assert_ptr_nonnull(off);
        size_t k = (size_t)strtol(off, NULL, 10) - 1;
        free(off);
        ck_assert_uint_lt(k, 4);
        ck_assert_msg(!(seen & (1u << k)), "offset %zu dead-lettered twice", k + 1);
        seen |= 1u << k;
        assert_header(&m.v[i], DLQ_H_TOPIC, e.topic);
        assert_header(&m.v[i], DLQ_H_PARTITION, "0");
        assert_header(&m.v[i], DLQ_H_REASON, poison[k].reason);
        char *err = tk_msg_header(&m.v[i], DLQ_H_ERROR);
        ck_assert_msg(err && strncmp(err, poison[k].reason, strlen(poison[k].reason)) == 0, "%s",
                      err);
        free(err);
        assert_header(&m.v[i], "traceparent", "00-xyz-01");
        ck_assert_uint_eq(m.v[i].len, poison[k].len);
        if (poison[k].val)
            ck_assert(memcmp(m.v[i].val, poison[k].val, poison[k].len) == 0);
        else
            ck_assert_ptr_null(m.v[i].val);
        ck_assert_uint_eq(m.v[i].keylen, 1);
        ck_assert(memcmp(m.v[i].key, "k", 1) == 0);
    }
    ck_assert_uint_eq(seen, 0xf);
    tk_msgs_release(&m);
    ck_assert_double_eq(metric(&e, "auditrail_aggregator_dlq_messages_total{reason=\"decode\"}"),
                        1);
    ck_assert_double_eq(metric(&e, "auditrail_aggregator_dlq_messages_total{reason=\"integrity\"}"),
                        1);
    th_aggr_stop(&e, 0);
    rd_kafka_headers_destroy(h);
    trecs_release(&good);
    trec_release(&tampered);
    free(v2);
    th_env_release(&e);
}
END_TEST

/* The DLQ topic cannot be written (its leader is unavailable): the batch
 * holding the poison message is not committed, consumption pauses, and
 * once the DLQ is back the message lands there and the offsets move on. */
START_TEST(dlq_unavailable_blocks_the_partition)
{
    struct th_env e;
    th_env_init(&e, "aggr_dlqdown", 1);
    struct trecs good = {0};
    trecs_make(&good, "dlqdown", 1, 2, T0_US, 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "topic error %s 5", e.dlq); /* LEADER_NOT_AVAILABLE */
    ck_assert_int_eq(test_kafka_ctl(cmd, NULL, 0), 0);
    const struct trec *g0 = &good.v[0], *g1 = &good.v[1];
    tk_produce(e.prod, e.topic, 0, g0->stream, 32, g0->json, g0->json_len, NULL);
    tk_produce(e.prod, e.topic, 0, "k", 1, "{not json", 9, NULL);
    tk_produce(e.prod, e.topic, 0, g1->stream, 32, g1->json, g1->json_len, NULL);
    tk_flush(e.prod);
    th_aggr_start(&e, 0);
    unsigned port = e.aggr[0].port;
    ck_assert_msg(probe_wait_metric(port, "auditrail_aggregator_paused", 1, 60000),
                  "never paused for the DLQ");
    /* Repeated failures open the DLQ producer's breaker (1 open, 2 half-open). */
    ck_assert_msg(
        probe_wait_metric(port, "auditrail_aggregator_breaker_state{breaker=\"dlq\"}", 1, 60000),
        "DLQ breaker never opened");
    /* Nothing committed past (or with) the unacknowledged DLQ copy. */
    ck_assert_int_eq(
        test_pg_int(e.db, "SELECT coalesce(sum(next_offset), 0) FROM auditrail.kafka_offsets"), 0);
    ck_assert_int_eq(store_rows(e.db), 0);

    snprintf(cmd, sizeof(cmd), "topic error %s 0", e.dlq);
    ck_assert_int_eq(test_kafka_ctl(cmd, NULL, 0), 0);
    th_assert_drained(&e, 90000);
    store_assert_records(e.db, &good);
    ck_assert_msg(probe_wait_metric_range(
                      port, "auditrail_aggregator_breaker_state{breaker=\"dlq\"}", 0, 0, 30000),
                  "DLQ breaker stayed open");
    struct tk_msgs m = {0};
    tk_read_topic(e.brokers, e.dlq, &m);
    ck_assert_uint_ge(m.n, 1); /* at least once: a retried copy may appear twice */
    for (size_t i = 0; i < m.n; i++) {
        ck_assert_uint_eq(m.v[i].len, 9);
        ck_assert(memcmp(m.v[i].val, "{not json", 9) == 0);
        assert_header(&m.v[i], DLQ_H_OFFSET, "1");
    }
    tk_msgs_release(&m);
    th_aggr_stop(&e, 0);
    trecs_release(&good);
    th_env_release(&e);
}
END_TEST

/* Redis configured but unreachable: ingestion goes on, errors counted. */
START_TEST(redis_down_ingestion_continues)
{
    char *url = xasprintf("redis://127.0.0.1:%u/0", probe_free_port());
    struct th_env e;
    th_env_init(&e, "aggr_redisdown", 2);
    th_aggr_config(&e, 0, url, NULL);
    struct trecs r = {0};
    trecs_make(&r, "redisdown", 4, 25, T0_US, 0);
    th_aggr_start(&e, 0);
    th_produce(&e, &r, 0, r.n, 0);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &r);
    ck_assert(metric(&e, "auditrail_aggregator_redis_errors_total") >= 1);
    ck_assert(probe_wait_ready(e.aggr[0].port, 0));
    th_aggr_stop(&e, 0);
    trecs_release(&r);
    th_env_release(&e);
    free(url);
}
END_TEST

/* Redis up: ids committed by one process are skipped by the next one before
 * PostgreSQL (layer redis). */
START_TEST(redis_layer_skips_resends_across_restarts)
{
    struct th_env e;
    th_env_init(&e, "aggr_redisup", 2);
    th_aggr_config(&e, 0, test_stack("STACK_REDIS_URL"), NULL);
    char tag[64];
    snprintf(tag, sizeof(tag), "redisup-%s", e.topic); /* unique ids per run */
    struct trecs r = {0};
    trecs_make(&r, tag, 2, 20, T0_US, 0);
    th_aggr_start(&e, 0);
    th_produce(&e, &r, 0, r.n, 0);
    th_assert_drained(&e, DRAIN_MS);
    th_aggr_stop(&e, 0);
    th_aggr_start(&e, 0);
    th_produce(&e, &r, 0, r.n, 0);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &r);
    ck_assert_double_eq(metric(&e, "auditrail_aggregator_duplicates_total{layer=\"redis\"}"), r.n);
    th_aggr_stop(&e, 0);
    trecs_release(&r);
    th_env_release(&e);
}
END_TEST

/* Replay for recovery: rows lost from PostgreSQL come back from Kafka, and
 * only those. The LRU (same process) and Redis both know the lost ids as
 * committed; the replay must bypass them, first with the aggregator running
 * (it notices at its next commit), then across a restart (LRU empty, Redis
 * full, Kafka's committed offsets mark how far the replay reaches). */
static int run_replay(const struct th_env *e)
{
    char *bin = test_bin("auditrail-aggregator");
    char *cmd =
        xasprintf("%s --config %s replay >>%s 2>&1", bin, e->aggr[0].config, e->aggr[0].log);
    int st = system(cmd);
    free(cmd);
    free(bin);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Every column but ingested_at: a restored row is the lost row. */
static const char SAME_ROWS_SQL[] =
    "SELECT count(*) FROM lost l LEFT JOIN auditrail.events e USING (event_time, id)"
    " WHERE (l.stream_id, l.seq, l.file_offset, l.hash, l.prev_hash, l.read_time,"
    "        l.time_source, l.tenant, l.actor, l.action, l.resource, l.outcome, l.format,"
    "        l.source, l.raw, l.truncated_bytes, l.attrs)"
    "       IS DISTINCT FROM"
    "       (e.stream_id, e.seq, e.file_offset, e.hash, e.prev_hash, e.read_time,"
    "        e.time_source, e.tenant, e.actor, e.action, e.resource, e.outcome, e.format,"
    "        e.source, e.raw, e.truncated_bytes, e.attrs)";

/* Rows of lost missing from auditrail.events or different there. */
static long long differing_rows(PGconn *c)
{
    char *n = test_pg_scalar(c, SAME_ROWS_SQL);
    long long v = atoll(n);
    free(n);
    return v;
}

/* Delete the rows `where` selects, keeping a copy in the table lost. */
static long long lose_rows(PGconn *c, const char *where)
{
    char *sql = xasprintf("DROP TABLE IF EXISTS lost;"
                          "CREATE TABLE lost AS SELECT * FROM auditrail.events WHERE %s;"
                          "DELETE FROM auditrail.events WHERE %s",
                          where, where);
    test_pg_exec(c, sql);
    free(sql);
    char *n = test_pg_scalar(c, "SELECT count(*) FROM lost");
    long long lost = atoll(n);
    free(n);
    return lost;
}

START_TEST(replay_restores_lost_rows_only)
{
    struct th_env e;
    th_env_init(&e, "aggr_replay", 2);
    th_aggr_config(&e, 0, test_stack("STACK_REDIS_URL"), NULL);
    char tag[64];
    snprintf(tag, sizeof(tag), "replay-%s", e.topic);
    struct trecs r = {0};
    trecs_make(&r, tag, 3, 30, T0_US, 0);
    th_aggr_start(&e, 0);
    th_produce(&e, &r, 0, r.n, 0);
    th_assert_drained(&e, DRAIN_MS);

    /* Lose a third of the rows, replay with the aggregator running. */
    PGconn *c = test_pg_connect(e.db);
    ck_assert_int_eq(lose_rows(c, "seq % 3 = 0"), (long long)r.n / 3);
    ck_assert_int_eq(store_rows(e.db), (long long)(r.n - r.n / 3));
    ck_assert_int_eq(run_replay(&e), 0);
    /* New records make it commit, find the offsets moved, and seek back. */
    snprintf(tag, sizeof(tag), "replay-extra-%s", e.topic);
    size_t before = r.n;
    trecs_make(&r, tag, 1, 5, T0_US, 0);
    th_produce(&e, &r, before, r.n, 0);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &r);
    ck_assert_int_eq(differing_rows(c), 0);

    /* Again across a restart: the LRU is empty, Redis still knows every id. */
    th_aggr_stop(&e, 0);
    ck_assert_int_gt(lose_rows(c, "seq % 2 = 1"), 0);
    ck_assert_int_eq(run_replay(&e), 0);
    th_aggr_start(&e, 0);
    th_assert_drained(&e, DRAIN_MS);
    store_assert_records(e.db, &r);
    ck_assert_int_eq(differing_rows(c), 0);
    ck_assert_int_eq(test_pg_int(e.db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    PQfinish(c);
    th_aggr_stop(&e, 0);
    trecs_release(&r);
    th_env_release(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggregator_pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, same_envelopes_twice_stored_once);
    tcase_add_test(tc, resend_with_new_time_stored_once);
    tcase_add_test(tc, fork_is_an_incident_and_both_kept);
    tcase_add_test(tc, poison_messages_go_to_the_dlq);
    tcase_add_test(tc, dlq_unavailable_blocks_the_partition);
    tcase_add_test(tc, redis_down_ingestion_continues);
    tcase_add_test(tc, redis_layer_skips_resends_across_restarts);
    tcase_add_test(tc, replay_restores_lost_rows_only);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
