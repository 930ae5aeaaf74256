/* Active replay (auditrail-aggregator replay --from / --from-offset) on the
 * real stack: kafka-mock has no answer to offsetsForTimes, so the start is
 * found by the timestamp search; a time range lands exactly its records; a
 * dry run writes nothing and counts what it would; --from-offset reads only
 * the partitions named; a database rebuilt from the topic alone equals the
 * original row for row (a checker here compares every column); and a
 * replay alongside a running aggregator under load leaves every record
 * exactly once. The group's stored offsets are never touched by a replay.
 * Records and their hashes come from tests/support/chain.h, not the product. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "aggregator/migrate.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/configs.h"
#include "tests/support/kafka.h"
#include "tests/support/store.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define NPARTS   3
#define NSTREAMS 6
#define NRECS    30
#define T0_US    INT64_C(1795651200000000) /* 2026-11-26T00:00:00Z, event_time */

static struct th_env E;
static int64_t ts0_ms; /* Kafka timestamp of record 0 */

static int64_t rec_ts_ms(uint64_t i)
{
    return ts0_ms + (int64_t)i * 1000;
}

static void migrate_db(const char *ci)
{
    struct migrate_report rep;
    char err[512];
    ck_assert_msg(migrate_run(ci, &rep, err, sizeof(err)) == 0, "migrate: %s", err);
}

static void setup(void)
{
    ts0_ms = time_now_us() / 1000 - 3600 * 1000;
    th_env_init(&E, "replay_time", NPARTS);
    migrate_db(E.db);
}

static void teardown(void)
{
    th_env_release(&E);
}

static int64_t sql_int(const char *ci, const char *q)
{
    PGconn *c = test_pg_connect(ci);
    char *v = test_pg_scalar(c, q);
    int64_t n = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    PQfinish(c);
    return n;
}

/* Produce x with a Kafka timestamp of its own (th_produce takes none). */
static void produce_ts(rd_kafka_t *p, int32_t part, const struct trec *x, int64_t ts_ms)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(E.topic), RD_KAFKA_V_PARTITION(part),
            RD_KAFKA_V_KEY(x->stream, strlen(x->stream)), RD_KAFKA_V_VALUE(x->json, x->json_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_END);
        if (!e)
            return;
        ck_assert_msg(e == RD_KAFKA_RESP_ERR__QUEUE_FULL, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(p, 50);
    }
}

/* NSTREAMS chains "tag-j" (stream j on partition j % NPARTS). */
static void chains_init(struct tchain *c, const char *tag)
{
    for (int j = 0; j < NSTREAMS; j++) {
        char name[128];
        snprintf(name, sizeof(name), "%s-%s-%d", tag, E.topic, j);
        tchain_init(&c[j], name);
    }
}

/* Records first..last-1 of every stream (record i of each, then i + 1),
 * record i with Kafka timestamp rec_ts_ms(i), each sent `copies` times;
 * appended to out (may be NULL). */
static void produce(rd_kafka_t *p, struct tchain *c, uint64_t first, uint64_t last, int copies,
                    struct trecs *out)
{
    for (uint64_t i = first; i < last; i++)
        for (int j = 0; j < NSTREAMS; j++) {
            char line[96];
            int n = snprintf(line, sizeof(line), "{\"actor\":\"u%d\",\"action\":\"read\",\"n\":%d}",
                             j, (int)i);
            struct trec x;
            tchain_next(&c[j], line, (size_t)n, T0_US + (int64_t)i * 1000, &x);
            for (int k = 0; k < copies; k++)
                produce_ts(p, j % NPARTS, &x, rec_ts_ms(i));
            if (out)
                trecs_push(out, &x);
            else
                trec_release(&x);
        }
}

/* NRECS records of every stream once, flushed; all of them in *all. */
static void produce_all(struct trecs *all)
{
    struct tchain c[NSTREAMS];
    chains_init(c, "r");
    produce(E.prod, c, 0, NRECS, 1, all);
    tk_flush(E.prod);
}

/* auditrail-aggregator --config config replay ARGS --json: status, report. */
static json_t *run_replay(const char *config, const char *args, int *status)
{
    char *bin = test_bin("auditrail-aggregator");
    char *cmd =
        xasprintf("%s --config %s replay %s --json 2>>%s/replay.log", bin, config, args, E.dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    free(cmd);
    free(bin);
    json_error_t je;
    json_t *j = json_loads(buf, 0, &je);
    ck_assert_msg(j != NULL, "replay printed no JSON (exit %d): %s", *status, buf);
    return j;
}

static json_int_t total(json_t *rep, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(rep, "total"), k));
}

static json_t *part(json_t *rep, int p)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(rep, "partitions"), i, x)
    {
        if (json_integer_value(json_object_get(x, "partition")) == p)
            return x;
    }
    return NULL;
}

static char *time_arg(int64_t ms)
{
    char t[TIME_RFC3339_LEN];
    time_format_us(ms * 1000, t);
    return xstrdup(t);
}

/* The records of all whose seq is in [lo, hi). */
static void subset(const struct trecs *all, uint64_t lo, uint64_t hi, struct trecs *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t k = 0; k < all->n; k++)
        if (all->v[k].seq >= lo && all->v[k].seq < hi) {
            struct trec x = all->v[k];
            x.line = xmemdup(x.line, x.len + 1);
            x.json = xmemdup(x.json, x.json_len + 1);
            trecs_push(out, &x);
        }
}

START_TEST(replay_by_time_lands_exactly_the_range)
{
    struct trecs all = {0}, want;
    produce_all(&all);
    char *from = time_arg(rec_ts_ms(10)), *to = time_arg(rec_ts_ms(20));
    char *args = xasprintf("--from %s --to %s", from, to);
    int st;
    json_t *rep = run_replay(E.aggr[0].config, args, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(total(rep, "inserted"), NSTREAMS * 10);
    ck_assert_int_eq(total(rep, "read"), NSTREAMS * 20); /* from the start to the high watermark */
    ck_assert_int_eq(total(rep, "outside"), NSTREAMS * 10);
    ck_assert_int_eq(total(rep, "dlq"), 0);
    for (int p = 0; p < NPARTS; p++) {
        json_t *x = part(rep, p);
        ck_assert_ptr_nonnull(x);
        ck_assert(json_is_true(json_object_get(x, "searched"))); /* the mock has no answer */
        ck_assert_int_eq(json_integer_value(json_object_get(x, "start")), 10 * NSTREAMS / NPARTS);
    }
    /* Exactly records 10..19 of every stream, as chain.h computed them. */
    subset(&all, 10, 20, &want);
    store_assert_records(E.db, &want);
    trecs_release(&want);
    /* The group's offsets are not the replay's business. */
    ck_assert_int_eq(sql_int(E.db, "SELECT count(*) FROM auditrail.kafka_offsets"), 0);
    json_decref(rep);

    /* Relative times: "-2h" reaches back before the first record. */
    rep = run_replay(E.aggr[0].config, "--from -2h --partitions 1", &st);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(json_array_size(json_object_get(rep, "partitions")), 1);
    ck_assert_int_eq(total(rep, "read"), NRECS * NSTREAMS / NPARTS);
    ck_assert_int_eq(total(rep, "inserted"), (NRECS - 10) * NSTREAMS / NPARTS);
    ck_assert_int_eq(total(rep, "resends"), 10 * NSTREAMS / NPARTS);
    json_decref(rep);
    trecs_release(&all);
    free(args);
    free(from);
    free(to);
}
END_TEST

START_TEST(dry_run_writes_nothing)
{
    struct trecs all = {0}, want;
    produce_all(&all);
    int st;
    json_t *rep = run_replay(E.aggr[0].config, "--from 2000-01-01T00:00:00Z --dry-run", &st);
    ck_assert_int_eq(st, 0);
    ck_assert(json_is_true(json_object_get(rep, "dry_run")));
    ck_assert_int_eq(total(rep, "inserted"), NSTREAMS * NRECS);
    ck_assert_int_eq(sql_int(E.db, "SELECT count(*) FROM auditrail.events"), 0);
    ck_assert_int_eq(sql_int(E.db, "SELECT count(*) FROM auditrail.streams"), 0);
    ck_assert_int_eq(sql_int(E.db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    json_decref(rep);

    /* Half stored, then a dry run over everything: the other half. */
    char *to = time_arg(rec_ts_ms(NRECS / 2));
    char *args = xasprintf("--from 2000-01-01T00:00:00Z --to %s", to);
    rep = run_replay(E.aggr[0].config, args, &st);
    ck_assert_int_eq(st, 0);
    json_decref(rep);
    rep = run_replay(E.aggr[0].config, "--from 2000-01-01T00:00:00Z --dry-run", &st);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(total(rep, "inserted"), NSTREAMS * (NRECS - NRECS / 2));
    ck_assert_int_eq(total(rep, "resends"), NSTREAMS * NRECS / 2);
    subset(&all, 0, NRECS / 2, &want);
    store_assert_records(E.db, &want);
    trecs_release(&want);
    trecs_release(&all);
    json_decref(rep);
    free(args);
    free(to);
}
END_TEST

START_TEST(from_offset_reads_only_what_it_names)
{
    struct trecs all = {0};
    produce_all(&all);
    trecs_release(&all);
    int st;
    json_t *rep = run_replay(E.aggr[0].config, "--from-offset 0:4,2:beginning", &st);
    ck_assert_int_eq(st, 0);
    const int per = NRECS * NSTREAMS / NPARTS;
    ck_assert_int_eq(json_array_size(json_object_get(rep, "partitions")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(part(rep, 0), "inserted")), per - 4);
    ck_assert_int_eq(json_integer_value(json_object_get(part(rep, 2), "inserted")), per);
    ck_assert_ptr_null(part(rep, 1));
    ck_assert_int_eq(sql_int(E.db, "SELECT count(*) FROM auditrail.events"), 2 * per - 4);
    json_decref(rep);

    /* Usage errors: exit 2 before anything is read. */
    const char *bad[] = {"--from-offset 0:1,0:2",
                         "--from-offset 0",
                         "--from -1h --from-offset 0:1",
                         "--from-offset 0:1 --partitions 0",
                         "--from soon",
                         "--to -1h",
                         NULL};
    char *bin = test_bin("auditrail-aggregator");
    for (int i = 0; bad[i]; i++) {
        char *cmd =
            xasprintf("%s --config %s replay %s >/dev/null 2>&1", bin, E.aggr[0].config, bad[i]);
        int w = system(cmd);
        ck_assert_msg(WIFEXITED(w) && WEXITSTATUS(w) == 2, "%s: exit %d", bad[i], WEXITSTATUS(w));
        free(cmd);
    }
    free(bin);
}
END_TEST

/* The columns compared by the rebuild checker: every column of events but
 * ingested_at (the time of the insert itself). */
#define ROW_COLS                                                                                   \
    "event_time, id, stream_id, seq, file_offset, encode(hash, 'hex'), encode(prev_hash, 'hex'),"  \
    " read_time, time_source, tenant, actor, action, resource, outcome, format, source::text,"     \
    " encode(raw, 'hex'), truncated_bytes, attrs::text"

/* Assert that query returns the same rows, in the same order, on a and b. */
static void assert_same_rows(const char *a, const char *b, const char *query, int64_t want_rows)
{
    PGconn *ca = test_pg_connect(a), *cb = test_pg_connect(b);
    PGresult *ra = PQexec(ca, query), *rb = PQexec(cb, query);
    ck_assert_int_eq(PQresultStatus(ra), PGRES_TUPLES_OK);
    ck_assert_int_eq(PQresultStatus(rb), PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(ra), want_rows);
    ck_assert_int_eq(PQntuples(rb), PQntuples(ra));
    ck_assert_int_eq(PQnfields(rb), PQnfields(ra));
    for (int i = 0; i < PQntuples(ra); i++)
        for (int c = 0; c < PQnfields(ra); c++) {
            ck_assert_msg(PQgetisnull(ra, i, c) == PQgetisnull(rb, i, c),
                          "row %d column %s: NULL differs", i, PQfname(ra, c));
            ck_assert_msg(strcmp(PQgetvalue(ra, i, c), PQgetvalue(rb, i, c)) == 0,
                          "row %d column %s: %s vs %s", i, PQfname(ra, c), PQgetvalue(ra, i, c),
                          PQgetvalue(rb, i, c));
        }
    PQclear(ra);
    PQclear(rb);
    PQfinish(ca);
    PQfinish(cb);
}

START_TEST(rebuild_from_the_topic_equals_the_original)
{
    /* The original: re-sends, a fork and a poison message, stored by the
     * aggregator. */
    struct tchain c[NSTREAMS];
    chains_init(c, "rebuild");
    produce(E.prod, c, 0, NRECS / 2, 2, NULL);
    struct tchain forked = c[1];
    struct trec f;
    tchain_next(&forked, "a forked record", 15, T0_US, &f);
    produce_ts(E.prod, 1 % NPARTS, &f, rec_ts_ms(NRECS / 2));
    trec_release(&f);
    tk_produce(E.prod, E.topic, 0, "x", 1, "not an envelope", 15, NULL);
    produce(E.prod, c, NRECS / 2, NRECS, 1, NULL);
    tk_flush(E.prod);
    const int64_t msgs = NSTREAMS * (NRECS / 2) * 2 + 2 + NSTREAMS * (NRECS - NRECS / 2);
    const int64_t rows = NSTREAMS * NRECS + 1;
    th_aggr_start(&E, 0);
    th_assert_drained(&E, 60000);
    th_aggr_stop(&E, 0);
    ck_assert_int_eq(sql_int(E.db, "SELECT count(*) FROM auditrail.events"), rows);

    /* The rebuild: an empty migrated database, the topic alone. */
    char *db2 = test_pg_fresh_db("rebuilt");
    migrate_db(db2);
    char *path = xasprintf("%s/rebuild.yaml", E.dir);
    struct configs_aggregator cc = {.brokers = E.brokers,
                                    .topic = E.topic,
                                    .group = "g-rebuild",
                                    .dlq_topic = E.dlq,
                                    .postgres = db2};
    char *cfg2 = configs_write_aggregator(path, &cc);
    int status;
    json_t *rep = run_replay(cfg2, "--from 1970-01-01T00:00:00Z", &status);
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(total(rep, "read"), msgs);
    ck_assert_int_eq(total(rep, "inserted"), rows);
    ck_assert_int_eq(total(rep, "resends"), NSTREAMS * (NRECS / 2));
    ck_assert_int_eq(total(rep, "forks"), 1);
    ck_assert_int_eq(total(rep, "dlq"), 1);
    json_decref(rep);

    assert_same_rows(E.db, db2, "SELECT " ROW_COLS " FROM auditrail.events ORDER BY event_time, id",
                     rows);
    assert_same_rows(E.db, db2,
                     "SELECT stream_id, last_seq, encode(last_hash, 'hex'), source::text, gaps,"
                     " chain_breaks, forks FROM auditrail.streams ORDER BY stream_id",
                     NSTREAMS);
    assert_same_rows(E.db, db2,
                     "SELECT kind, stream_id, seq, expected, actual FROM"
                     " auditrail.integrity_incidents ORDER BY stream_id, seq, kind",
                     1);
    test_pg_drop_db(db2);
    free(db2);
    free(cfg2);
    free(path);
}
END_TEST

/* The producer of the load test: batches of records until told to stop;
 * every record it sent in `sent`. */
struct load {
    struct tchain c[NSTREAMS];
    struct trecs sent;
    atomic_int stop;
};

static void *load_main(void *arg)
{
    struct load *l = arg;
    rd_kafka_t *p = tk_producer_new(E.brokers);
    for (uint64_t i = NRECS; !atomic_load(&l->stop) && i < NRECS + 400; i += 10) {
        produce(p, l->c, i, i + 10, 1, &l->sent);
        tk_flush(p);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    tk_flush(p);
    tk_producer_free(p);
    return NULL;
}

START_TEST(replay_under_load_alongside_the_consumers)
{
    struct load l = {0};
    chains_init(l.c, "load");
    produce(E.prod, l.c, 0, NRECS, 1, &l.sent);
    tk_flush(E.prod);
    th_aggr_start(&E, 0);
    ck_assert(store_wait_rows(E.db, NSTREAMS * NRECS, 60000));
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, load_main, &l), 0);
    /* Lose rows while the load runs, then replay everything while the
     * aggregator keeps writing the same streams. */
    PGconn *c = test_pg_connect(E.db);
    test_pg_exec(c, "DELETE FROM auditrail.events WHERE seq % 4 = 1");
    PQfinish(c);
    int status;
    json_t *rep = run_replay(E.aggr[0].config, "--from-offset 0:0,1:0,2:0", &status);
    ck_assert_int_eq(status, 0);
    ck_assert_int_ge(total(rep, "inserted"), NSTREAMS * NRECS / 4);
    json_decref(rep);
    atomic_store(&l.stop, 1);
    pthread_join(th, NULL);
    th_assert_drained(&E, 60000);
    th_aggr_stop(&E, 0);
    /* Every row deleted was below the high watermarks the replay took at
     * its start: all restored, none twice, byte for byte. */
    store_assert_records(E.db, &l.sent);
    ck_assert_int_eq(sql_int(E.db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    trecs_release(&l.sent);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replay_time");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, replay_by_time_lands_exactly_the_range);
    tcase_add_test(tc, dry_run_writes_nothing);
    tcase_add_test(tc, from_offset_reads_only_what_it_names);
    tcase_add_test(tc, rebuild_from_the_topic_equals_the_original);
    tcase_add_test(tc, replay_under_load_alongside_the_consumers);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
