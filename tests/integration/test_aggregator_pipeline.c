/* auditrail-aggregator against the real stack (fresh database and unique
 * topics per test): re-sends stored once (same bytes, new time, after a
 * restart), forks kept with an incident, poison messages in the DLQ with
 * their origin, Redis down not stopping ingestion. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "aggregator/dlq.h"
#include "common/httpd.h"
#include "common/xmalloc.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define T0_US INT64_C(1795722645000000) /* 2026-11-26T19:50:45Z */

struct fx {
    char *db, *topic, *dlq, *dir, *cfg, *log;
    int port;
    struct th_aggr *proc;
    rd_kafka_t *prod;
};

static void fx_init(struct fx *f, const char *name, int partitions, const char *redis_url)
{
    memset(f, 0, sizeof(*f));
    f->db = test_pg_fresh_db(name);
    f->topic = test_kafka_topic(name, partitions);
    f->dlq = test_kafka_topic("dlq", 1);
    f->dir = test_tmpdir(name);
    f->port = th_free_port();
    f->cfg = th_aggr_config(f->dir, "aggregator.yaml", f->db, f->topic, f->dlq, f->topic, redis_url,
                            f->port, NULL);
    f->log = xasprintf("%s/aggregator.log", f->dir);
    f->prod = th_producer_new();
}

static void fx_start(struct fx *f)
{
    f->proc = th_aggr_start(f->cfg, f->log, f->port);
}

/* SIGTERM must finish cleanly with exit 0. */
static void fx_stop(struct fx *f)
{
    int rc = th_aggr_stop(f->proc, SIGTERM, 30000);
    f->proc = NULL;
    ck_assert_msg(rc == 0, "aggregator exit %d (log %s)", rc, f->log);
}

static void fx_release(struct fx *f)
{
    if (f->proc)
        th_aggr_stop(f->proc, SIGKILL, 5000);
    th_producer_free(f->prod);
    test_pg_drop_db(f->db);
    if (getenv("KEEP_LOGS") == NULL)
        test_rmtree(f->dir);
    free(f->db);
    free(f->topic);
    free(f->dlq);
    free(f->dir);
    free(f->cfg);
    free(f->log);
}

/* n records on each of nstreams streams; returns the JSON of each (heap
 * array of heap strings, streams interleaved) so tests can send them again. */
static char **make_records(const char *tag, int nstreams, int n, int64_t t0, size_t **lens,
                           char ***keys)
{
    char **out = xcalloc((size_t)(nstreams * n), sizeof(*out));
    *lens = xcalloc((size_t)(nstreams * n), sizeof(**lens));
    *keys = xcalloc((size_t)(nstreams * n), sizeof(**keys));
    struct tenv_stream *s = xcalloc((size_t)nstreams, sizeof(*s));
    for (int j = 0; j < nstreams; j++) {
        char name[64];
        snprintf(name, sizeof(name), "%s-%d", tag, j);
        tenv_stream_init(&s[j], name);
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < nstreams; j++) {
            char line[96];
            snprintf(line, sizeof(line), "{\"actor\":\"u%d\",\"action\":\"read\",\"n\":%d}", j, i);
            size_t k = (size_t)(i * nstreams + j);
            out[k] = tenv_next_json(&s[j], line, t0 + i * 1000, &(*lens)[k]);
            (*keys)[k] = xstrdup(s[j].stream);
        }
    }
    free(s);
    return out;
}

static void free_records(char **r, size_t *lens, char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i]);
        free(keys[i]);
    }
    free(r);
    free(lens);
    free(keys);
}

static void produce_records(struct fx *f, char **r, size_t *lens, char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        th_produce(f->prod, f->topic, -1, keys[i], strlen(keys[i]), r[i], lens[i], NULL);
    th_producer_flush(f->prod);
}

START_TEST(same_envelopes_twice_stored_once)
{
    struct fx f;
    fx_init(&f, "aggr_twice", 3, NULL);
    size_t *lens;
    char **keys;
    const int ns = 5, n = 40, total = ns * n;
    char **r = make_records("twice", ns, n, T0_US, &lens, &keys);
    produce_records(&f, r, lens, keys, (size_t)total);
    produce_records(&f, r, lens, keys, (size_t)total);
    fx_start(&f);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, 2 * total, 60000), 2 * total);
    th_assert_exactly_once(f.db, total);
    /* The second copies never reached PostgreSQL's insert: in-batch or LRU. */
    double dups = th_metric(f.port, "auditrail_aggregator_duplicates_total{layer=\"batch\"}") +
                  th_metric(f.port, "auditrail_aggregator_duplicates_total{layer=\"lru\"}") +
                  th_metric(f.port, "auditrail_aggregator_duplicates_total{layer=\"stream\"}") +
                  th_metric(f.port, "auditrail_aggregator_duplicates_total{layer=\"pk\"}");
    ck_assert_double_eq(dups, total);
    ck_assert_double_eq(th_metric(f.port, "auditrail_aggregator_inserted_total"), total);
    ck_assert(th_ready(f.port));
    fx_stop(&f);
    free_records(r, lens, keys, (size_t)total);
    fx_release(&f);
}
END_TEST

/* Re-sent with a new read time (the agent re-read them after a crash):
 * stored once, at the first time; after a restart (empty LRU, no Redis) the
 * per-stream rule in PostgreSQL catches them. */
START_TEST(resend_with_new_time_stored_once)
{
    struct fx f;
    fx_init(&f, "aggr_newtime", 2, NULL);
    size_t *lens, *lens2;
    char **keys, **keys2;
    const int ns = 3, n = 30, total = ns * n;
    char **r = make_records("newtime", ns, n, T0_US, &lens, &keys);
    /* Same streams and lines, one day and an hour later. */
    char **r2 = make_records("newtime", ns, n, T0_US + INT64_C(90000000000), &lens2, &keys2);
    fx_start(&f);
    produce_records(&f, r, lens, keys, (size_t)total);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, total, 60000), total);
    fx_stop(&f);

    fx_start(&f);
    produce_records(&f, r2, lens2, keys2, (size_t)total);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, 2 * total, 60000), 2 * total);
    th_assert_exactly_once(f.db, total);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM auditrail.events WHERE event_time >= "
             "to_timestamp(%lld) + interval '1 hour'",
             (long long)(T0_US / 1000000));
    ck_assert_int_eq(th_sql_int(f.db, sql), 0);
    ck_assert_double_eq(
        th_metric(f.port, "auditrail_aggregator_duplicates_total{layer=\"stream\"}"), total);
    ck_assert_int_eq(th_sql_int(f.db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    fx_stop(&f);
    free_records(r, lens, keys, (size_t)total);
    free_records(r2, lens2, keys2, (size_t)total);
    fx_release(&f);
}
END_TEST

/* A stand-in Alertmanager: counts POSTs to /api/v2/alerts (httpd discards
 * request bodies, so the count is what can be checked). */
static bool alert_sink(void *ud, const struct httpd_request *req, struct httpd_response *resp)
{
    if (strcmp(httpd_request_method(req), "POST") != 0 ||
        strcmp(httpd_request_path(req), "/api/v2/alerts") != 0)
        return false;
    atomic_fetch_add((atomic_int *)ud, 1);
    resp->status = 200;
    return true;
}

static bool alerts_arrived(void *ud)
{
    return atomic_load((atomic_int *)ud) > 0;
}

START_TEST(fork_is_an_incident_and_both_kept)
{
    atomic_int posts;
    atomic_init(&posts, 0);
    char err[256];
    struct httpd_conf hc = {.listen = "127.0.0.1:0", .handler = alert_sink, .handler_ud = &posts};
    struct httpd *sink = httpd_start(&hc, err, sizeof(err));
    ck_assert_msg(sink != NULL, "%s", err);
    struct fx f;
    fx_init(&f, "aggr_fork", 1, NULL);
    /* Alerts go to the sink: the fork must raise one. */
    char *extra =
        xasprintf("alerts:\n  url: http://127.0.0.1:%u/api/v2/alerts\n", httpd_port(sink));
    free(f.cfg);
    f.cfg = th_aggr_config(f.dir, "aggregator.yaml", f.db, f.topic, f.dlq, f.topic, NULL, f.port,
                           extra);
    free(extra);
    struct tenv_stream s, s2;
    tenv_stream_init(&s, "forked");
    char *msgs[11];
    size_t lens[11];
    for (int i = 0; i < 10; i++) {
        char line[32];
        snprintf(line, sizeof(line), "original %d", i);
        if (i == 5)
            s2 = s; /* the chain state before seq 5 */
        msgs[i] = tenv_next_json(&s, line, T0_US + i, &lens[i]);
    }
    /* A different record with seq 5 on the same chain: a fork. */
    msgs[10] = tenv_next_json(&s2, "tampered 5", T0_US + 5, &lens[10]);
    fx_start(&f);
    for (int i = 0; i < 11; i++)
        th_produce(f.prod, f.topic, 0, s.stream, strlen(s.stream), msgs[i], lens[i], NULL);
    th_producer_flush(f.prod);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, 11, 60000), 11);
    ck_assert_int_eq(th_sql_int(f.db, "SELECT count(*) FROM auditrail.events"), 11);
    ck_assert_int_eq(th_sql_int(f.db, "SELECT count(*) FROM auditrail.events WHERE seq = 5"), 2);
    ck_assert_int_eq(th_sql_int(f.db, "SELECT count(*) FROM auditrail.integrity_incidents "
                                      "WHERE kind = 'fork' AND seq = 5"),
                     1);
    ck_assert_double_eq(
        th_metric(f.port, "auditrail_aggregator_integrity_incidents_total{kind=\"fork\"}"), 1);
    ck_assert_msg(test_wait_until(alerts_arrived, &posts, 30000), "no alert for the fork");
    fx_stop(&f);
    for (int i = 0; i < 11; i++)
        free(msgs[i]);
    fx_release(&f);
    httpd_stop(sink);
}
END_TEST

/* Assert header `name` of m equals want. */
static void assert_header(const struct th_msg *m, const char *name, const char *want)
{
    char *v = th_msg_header(m, name);
    ck_assert_msg(v != NULL, "header %s missing", name);
    ck_assert_str_eq(v, want);
    free(v);
}

START_TEST(poison_messages_go_to_the_dlq)
{
    struct fx f;
    fx_init(&f, "aggr_poison", 1, NULL);
    struct tenv_stream s;
    tenv_stream_init(&s, "poison");
    size_t l0, l1, l2;
    char *good0 = tenv_next_json(&s, "good 0", T0_US, &l0);
    char *good1 = tenv_next_json(&s, "good 1", T0_US + 1, &l1);
    char *tampered = tenv_next_json(&s, "good 2", T0_US + 2, &l2);
    *strstr(tampered, "good 2") = 'G'; /* hash no longer matches */
    char *v2 = xstrdup(good1);
    memcpy(strstr(v2, "\"v\":1"), "\"v\":7", 5);
    const char *notjson = "this is not json\x01\x02";
    struct {
        const char *val;
        size_t len;
        const char *reason;
    } poison[] = {
        {notjson, strlen(notjson), "decode"},
        {tampered, l2, "integrity"},
        {NULL, 0, "null"},
        {v2, strlen(v2), "version"},
    };
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "traceparent", -1, "00-xyz-01", -1);
    /* offsets: 0 good0, 1..4 poison, 5 good1 */
    th_produce(f.prod, f.topic, 0, s.stream, 32, good0, l0, NULL);
    for (size_t i = 0; i < 4; i++)
        th_produce(f.prod, f.topic, 0, "k", 1, poison[i].val, poison[i].len, h);
    th_produce(f.prod, f.topic, 0, s.stream, 32, good1, l1, NULL);
    th_producer_flush(f.prod);
    fx_start(&f);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, 6, 60000), 6);
    ck_assert_int_eq(th_sql_int(f.db, "SELECT count(*) FROM auditrail.events"), 2);

    size_t n = 0;
    struct th_msg *m = th_consume_all(f.dlq, 4, 30000, &n);
    ck_assert_uint_eq(n, 4);
    for (size_t i = 0; i < n; i++) {
        char *off = th_msg_header(&m[i], DLQ_H_OFFSET);
        ck_assert_ptr_nonnull(off);
        size_t k = (size_t)strtol(off, NULL, 10) - 1;
        free(off);
        ck_assert_uint_lt(k, 4);
        assert_header(&m[i], DLQ_H_TOPIC, f.topic);
        assert_header(&m[i], DLQ_H_PARTITION, "0");
        assert_header(&m[i], DLQ_H_REASON, poison[k].reason);
        char *err = th_msg_header(&m[i], DLQ_H_ERROR);
        ck_assert_msg(err && strncmp(err, poison[k].reason, strlen(poison[k].reason)) == 0, "%s",
                      err);
        free(err);
        assert_header(&m[i], "traceparent", "00-xyz-01");
        ck_assert_uint_eq(m[i].len, poison[k].len);
        if (poison[k].val)
            ck_assert(memcmp(m[i].val, poison[k].val, poison[k].len) == 0);
        else
            ck_assert_ptr_null(m[i].val);
        ck_assert_uint_eq(m[i].keylen, 1);
        ck_assert(memcmp(m[i].key, "k", 1) == 0);
    }
    th_msgs_free(m, n);
    ck_assert_double_eq(
        th_metric(f.port, "auditrail_aggregator_dlq_messages_total{reason=\"decode\"}"), 1);
    ck_assert_double_eq(
        th_metric(f.port, "auditrail_aggregator_dlq_messages_total{reason=\"integrity\"}"), 1);
    fx_stop(&f);
    rd_kafka_headers_destroy(h);
    free(good0);
    free(good1);
    free(tampered);
    free(v2);
    fx_release(&f);
}
END_TEST

struct paused_wait {
    int port;
};

static bool is_paused(void *ud)
{
    struct paused_wait *w = ud;
    return th_metric(w->port, "auditrail_aggregator_paused") >= 1;
}

/* The DLQ topic cannot be written (its leader is unavailable): the batch
 * holding the poison message is not committed, consumption pauses, and
 * once the DLQ is back the message lands there and the offsets move on. */
static bool dlq_breaker_not_closed(void *ud)
{
    struct paused_wait *w = ud;
    return th_metric(w->port, "auditrail_aggregator_breaker_state{breaker=\"dlq\"}") >= 1;
}

static bool dlq_breaker_closed(void *ud)
{
    struct paused_wait *w = ud;
    return th_metric(w->port, "auditrail_aggregator_breaker_state{breaker=\"dlq\"}") == 0;
}

START_TEST(dlq_unavailable_blocks_the_partition)
{
    struct fx f;
    fx_init(&f, "aggr_dlqdown", 1, NULL);
    struct tenv_stream s;
    tenv_stream_init(&s, "dlqdown");
    size_t l0, l1;
    char *good0 = tenv_next_json(&s, "good 0", T0_US, &l0);
    char *good1 = tenv_next_json(&s, "good 1", T0_US + 1, &l1);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "topic error %s 5", f.dlq); /* LEADER_NOT_AVAILABLE */
    ck_assert_int_eq(test_kafka_ctl(cmd, NULL, 0), 0);
    th_produce(f.prod, f.topic, 0, s.stream, 32, good0, l0, NULL);
    th_produce(f.prod, f.topic, 0, "k", 1, "{not json", 9, NULL);
    th_produce(f.prod, f.topic, 0, s.stream, 32, good1, l1, NULL);
    th_producer_flush(f.prod);
    fx_start(&f);
    struct paused_wait pw = {f.port};
    ck_assert_msg(test_wait_until(is_paused, &pw, 60000), "never paused for the DLQ");
    /* Repeated failures open the DLQ producer's breaker (1 open, 2 half-open). */
    ck_assert_msg(test_wait_until(dlq_breaker_not_closed, &pw, 60000), "DLQ breaker never opened");
    /* Nothing committed past (or with) the unacknowledged DLQ copy. */
    ck_assert_int_le(th_wait_offsets(f.db, f.topic, 1, 0), 0);
    ck_assert_int_eq(th_sql_int(f.db, "SELECT count(*) FROM auditrail.events"), 0);

    snprintf(cmd, sizeof(cmd), "topic error %s 0", f.dlq);
    ck_assert_int_eq(test_kafka_ctl(cmd, NULL, 0), 0);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, 3, 90000), 3);
    ck_assert_int_eq(th_sql_int(f.db, "SELECT count(*) FROM auditrail.events"), 2);
    ck_assert_msg(test_wait_until(dlq_breaker_closed, &pw, 30000), "DLQ breaker stayed open");
    size_t n = 0;
    struct th_msg *m = th_consume_all(f.dlq, 1, 30000, &n);
    ck_assert_uint_ge(n, 1); /* at least once: a retried copy may appear twice */
    ck_assert_uint_eq(m[0].len, 9);
    ck_assert(memcmp(m[0].val, "{not json", 9) == 0);
    assert_header(&m[0], DLQ_H_OFFSET, "1");
    th_msgs_free(m, n);
    fx_stop(&f);
    free(good0);
    free(good1);
    fx_release(&f);
}
END_TEST

/* Redis configured but unreachable: ingestion goes on, errors counted. */
START_TEST(redis_down_ingestion_continues)
{
    char *url = xasprintf("redis://127.0.0.1:%d/0", th_free_port());
    struct fx f;
    fx_init(&f, "aggr_redisdown", 2, url);
    size_t *lens;
    char **keys;
    const int ns = 4, n = 25, total = ns * n;
    char **r = make_records("redisdown", ns, n, T0_US, &lens, &keys);
    fx_start(&f);
    produce_records(&f, r, lens, keys, (size_t)total);
    ck_assert_int_eq(th_wait_rows(f.db, total, 60000), total);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, total, 60000), total);
    th_assert_exactly_once(f.db, total);
    ck_assert(th_metric(f.port, "auditrail_aggregator_redis_errors_total") >= 1);
    ck_assert(th_ready(f.port));
    fx_stop(&f);
    free_records(r, lens, keys, (size_t)total);
    fx_release(&f);
    free(url);
}
END_TEST

/* Redis up: ids committed by one process are skipped by the next one before
 * PostgreSQL (layer redis). */
START_TEST(redis_layer_skips_resends_across_restarts)
{
    struct fx f;
    char *url = xstrdup(test_stack("STACK_REDIS_URL")); /* test_stack's buffer is reused */
    fx_init(&f, "aggr_redisup", 2, url);
    size_t *lens;
    char **keys;
    const int ns = 2, n = 20, total = ns * n;
    char tag[64];
    snprintf(tag, sizeof(tag), "redisup-%s", f.topic); /* unique ids per run */
    char **r = make_records(tag, ns, n, T0_US, &lens, &keys);
    fx_start(&f);
    produce_records(&f, r, lens, keys, (size_t)total);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, total, 60000), total);
    fx_stop(&f);
    fx_start(&f);
    produce_records(&f, r, lens, keys, (size_t)total);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, 2 * total, 60000), 2 * total);
    th_assert_exactly_once(f.db, total);
    ck_assert_double_eq(th_metric(f.port, "auditrail_aggregator_duplicates_total{layer=\"redis\"}"),
                        total);
    fx_stop(&f);
    free_records(r, lens, keys, (size_t)total);
    fx_release(&f);
    free(url);
}
END_TEST

/* Replay for recovery: rows lost from PostgreSQL come back from Kafka, and
 * only those. The LRU (same process) and Redis both know the lost ids as
 * committed; the replay must bypass them, first with the aggregator running
 * (it notices at its next commit), then across a restart (LRU empty, Redis
 * full, Kafka's committed offsets mark how far the replay reaches). */
static int run_replay(struct fx *f)
{
    char *bin = test_bin("auditrail-aggregator");
    char *cmd = xasprintf("%s --config %s replay >>%s 2>&1", bin, f->cfg, f->log);
    int st = system(cmd);
    free(cmd);
    free(bin);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(replay_restores_lost_rows_only)
{
    struct fx f;
    char *url = xstrdup(test_stack("STACK_REDIS_URL"));
    fx_init(&f, "aggr_replay", 2, url);
    size_t *lens, *lens2;
    char **keys, **keys2;
    const int ns = 3, n = 30, total = ns * n;
    char tag[64];
    snprintf(tag, sizeof(tag), "replay-%s", f.topic);
    char **r = make_records(tag, ns, n, T0_US, &lens, &keys);
    fx_start(&f);
    produce_records(&f, r, lens, keys, (size_t)total);
    ck_assert_int_eq(th_wait_offsets(f.db, f.topic, total, 60000), total);

    /* Lose a third of the rows, replay with the aggregator running. */
    PGconn *c = test_pg_connect(f.db);
    test_pg_exec(c, "DELETE FROM auditrail.events WHERE seq % 3 = 0");
    ck_assert_int_eq(th_sql_int(f.db, "SELECT count(*) FROM auditrail.events"), total - total / 3);
    ck_assert_int_eq(run_replay(&f), 0);
    /* New records make it commit, find the offsets moved, and seek back. */
    snprintf(tag, sizeof(tag), "replay-extra-%s", f.topic);
    char **r2 = make_records(tag, 1, 5, T0_US, &lens2, &keys2);
    produce_records(&f, r2, lens2, keys2, 5);
    ck_assert_int_eq(th_wait_rows(f.db, total + 5, 60000), total + 5);
    th_assert_exactly_once(f.db, total + 5);

    /* Again across a restart: the LRU is empty, Redis still knows every id. */
    fx_stop(&f);
    test_pg_exec(c, "DELETE FROM auditrail.events WHERE seq % 2 = 1");
    ck_assert_int_eq(run_replay(&f), 0);
    fx_start(&f);
    ck_assert_int_eq(th_wait_rows(f.db, total + 5, 60000), total + 5);
    th_assert_exactly_once(f.db, total + 5);
    ck_assert_int_eq(th_sql_int(f.db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    PQfinish(c);
    fx_stop(&f);
    free_records(r, lens, keys, (size_t)total);
    free_records(r2, lens2, keys2, 5);
    fx_release(&f);
    free(url);
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
