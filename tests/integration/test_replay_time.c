/* Active replay (auditrail-aggregator replay --from / --from-offset) on the
 * real stack: kafka-mock has no answer to offsetsForTimes, so the start is
 * found by the timestamp search; a time range lands exactly its records; a
 * dry run writes nothing and counts what it would; --from-offset reads only
 * the partitions named; a database rebuilt from the topic alone equals the
 * original row for row (a checker here compares every column); and a
 * replay alongside a running aggregator under load leaves every record
 * exactly once. The group's stored offsets are never touched by a replay. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/migrate.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define NPARTS   3
#define NSTREAMS 6
#define NRECS    30
#define T0_US    INT64_C(1795651200000000) /* 2026-11-26T00:00:00Z, event_time */

static int64_t ts0_ms; /* Kafka timestamp of record 0 */
static char *db, *dir, *cfg, *topic, *dlq;

static int64_t rec_ts_ms(int i)
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
    db = test_pg_fresh_db("replay_time");
    migrate_db(db);
    topic = test_kafka_topic("replay_time", NPARTS);
    dlq = test_kafka_topic("replay_time_dlq", 1);
    dir = test_tmpdir("replay_time");
    cfg = th_aggr_config(dir, "aggregator.yaml", db, topic, dlq, "g-replay", NULL, th_free_port(),
                         NULL);
}

static void teardown(void)
{
    test_pg_drop_db(db);
    test_rmtree(dir);
    free(db);
    free(dir);
    free(cfg);
    free(topic);
    free(dlq);
}

static void produce_ts(rd_kafka_t *p, int32_t part, const char *key, const char *val, size_t len,
                       int64_t ts_ms)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)val, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_END);
        if (!e)
            return;
        ck_assert_msg(e == RD_KAFKA_RESP_ERR__QUEUE_FULL, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(p, 50);
    }
}

/* Records first..last-1 of NSTREAMS streams "tag-j" (stream j on partition
 * j % NPARTS), record i with timestamp rec_ts_ms(i); copies: how many times
 * each is sent (2 = a re-send right after). Streams continue across calls
 * through st. */
static void produce(rd_kafka_t *p, struct tenv_stream *st, int first, int last, int copies)
{
    for (int i = first; i < last; i++)
        for (int j = 0; j < NSTREAMS; j++) {
            char line[96];
            snprintf(line, sizeof(line), "{\"actor\":\"u%d\",\"action\":\"read\",\"n\":%d}", j, i);
            size_t len = 0;
            char *json = tenv_next_json(&st[j], line, T0_US + (int64_t)i * 1000, &len);
            for (int c = 0; c < copies; c++)
                produce_ts(p, j % NPARTS, st[j].stream, json, len, rec_ts_ms(i));
            free(json);
        }
}

static void streams_init(struct tenv_stream *st, const char *tag)
{
    for (int j = 0; j < NSTREAMS; j++) {
        char name[128];
        snprintf(name, sizeof(name), "%s-%s-%d", tag, topic, j);
        tenv_stream_init(&st[j], name);
    }
}

/* Produce NRECS records of every stream once, and flush. */
static void produce_all(void)
{
    rd_kafka_t *p = th_producer_new();
    struct tenv_stream st[NSTREAMS];
    streams_init(st, "r");
    produce(p, st, 0, NRECS, 1);
    th_producer_flush(p);
    th_producer_free(p);
}

/* auditrail-aggregator --config config replay ARGS --json: status and report. */
static json_t *run_replay(const char *config, const char *args, int *status)
{
    char *bin = test_bin("auditrail-aggregator");
    char *cmd =
        xasprintf("%s --config %s replay %s --json 2>>%s/replay.log", bin, config, args, dir);
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

START_TEST(replay_by_time_lands_exactly_the_range)
{
    produce_all();
    char *from = time_arg(rec_ts_ms(10)), *to = time_arg(rec_ts_ms(20));
    char *args = xasprintf("--from %s --to %s", from, to);
    int st;
    json_t *rep = run_replay(cfg, args, &st);
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
    /* Exactly records 10..19 of every stream. */
    ck_assert_int_eq(th_sql_int(db, "SELECT count(*) FROM auditrail.events"), NSTREAMS * 10);
    ck_assert_int_eq(th_sql_int(db, "SELECT count(DISTINCT (stream_id, seq)) FROM auditrail.events"
                                    " WHERE seq BETWEEN 10 AND 19"),
                     NSTREAMS * 10);
    /* The group's offsets are not the replay's business. */
    ck_assert_int_eq(th_sql_int(db, "SELECT count(*) FROM auditrail.kafka_offsets"), 0);
    json_decref(rep);

    /* Relative times: "-2h" reaches back before the first record. */
    rep = run_replay(cfg, "--from -2h --partitions 1", &st);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(json_array_size(json_object_get(rep, "partitions")), 1);
    ck_assert_int_eq(total(rep, "read"), NRECS * NSTREAMS / NPARTS);
    ck_assert_int_eq(total(rep, "inserted"), (NRECS - 10) * NSTREAMS / NPARTS);
    ck_assert_int_eq(total(rep, "resends"), 10 * NSTREAMS / NPARTS);
    json_decref(rep);
    free(args);
    free(from);
    free(to);
}
END_TEST

START_TEST(dry_run_writes_nothing)
{
    produce_all();
    int st;
    json_t *rep = run_replay(cfg, "--from 2000-01-01T00:00:00Z --dry-run", &st);
    ck_assert_int_eq(st, 0);
    ck_assert(json_is_true(json_object_get(rep, "dry_run")));
    ck_assert_int_eq(total(rep, "inserted"), NSTREAMS * NRECS);
    ck_assert_int_eq(th_sql_int(db, "SELECT count(*) FROM auditrail.events"), 0);
    ck_assert_int_eq(th_sql_int(db, "SELECT count(*) FROM auditrail.streams"), 0);
    ck_assert_int_eq(th_sql_int(db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    json_decref(rep);

    /* Half stored, then a dry run over everything: the other half. */
    char *to = time_arg(rec_ts_ms(NRECS / 2));
    char *args = xasprintf("--from 2000-01-01T00:00:00Z --to %s", to);
    rep = run_replay(cfg, args, &st);
    ck_assert_int_eq(st, 0);
    json_decref(rep);
    rep = run_replay(cfg, "--from 2000-01-01T00:00:00Z --dry-run", &st);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(total(rep, "inserted"), NSTREAMS * (NRECS - NRECS / 2));
    ck_assert_int_eq(total(rep, "resends"), NSTREAMS * NRECS / 2);
    ck_assert_int_eq(th_sql_int(db, "SELECT count(*) FROM auditrail.events"), NSTREAMS * NRECS / 2);
    json_decref(rep);
    free(args);
    free(to);
}
END_TEST

START_TEST(from_offset_reads_only_what_it_names)
{
    produce_all();
    int st;
    json_t *rep = run_replay(cfg, "--from-offset 0:4,2:beginning", &st);
    ck_assert_int_eq(st, 0);
    const int per = NRECS * NSTREAMS / NPARTS;
    ck_assert_int_eq(json_array_size(json_object_get(rep, "partitions")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(part(rep, 0), "inserted")), per - 4);
    ck_assert_int_eq(json_integer_value(json_object_get(part(rep, 2), "inserted")), per);
    ck_assert_ptr_null(part(rep, 1));
    ck_assert_int_eq(th_sql_int(db, "SELECT count(*) FROM auditrail.events"), 2 * per - 4);
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
        char *cmd = xasprintf("%s --config %s replay %s >/dev/null 2>&1", bin, cfg, bad[i]);
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
    rd_kafka_t *p = th_producer_new();
    struct tenv_stream st[NSTREAMS];
    streams_init(st, "rebuild");
    produce(p, st, 0, NRECS / 2, 2);
    struct tenv_stream fork = st[1];
    size_t len;
    char *forked = tenv_next_json(&fork, "a forked record", T0_US, &len);
    produce_ts(p, 1 % NPARTS, fork.stream, forked, len, rec_ts_ms(NRECS / 2));
    free(forked);
    produce_ts(p, 0, "x", "not an envelope", 15, rec_ts_ms(NRECS / 2));
    produce(p, st, NRECS / 2, NRECS, 1);
    th_producer_flush(p);
    th_producer_free(p);
    const int64_t msgs = NSTREAMS * (NRECS / 2) * 2 + 2 + NSTREAMS * (NRECS - NRECS / 2);
    const int64_t rows = NSTREAMS * NRECS + 1;

    char *log = xasprintf("%s/aggregator.log", dir);
    struct th_aggr *a = th_aggr_start(cfg, log, 0);
    free(log);
    ck_assert_int_eq(th_wait_offsets(db, topic, msgs, 60000), msgs);
    ck_assert_int_eq(th_aggr_stop(a, SIGTERM, 10000), 0);
    ck_assert_int_eq(th_sql_int(db, "SELECT count(*) FROM auditrail.events"), rows);

    /* The rebuild: an empty migrated database, the topic alone. */
    char *db2 = test_pg_fresh_db("rebuilt");
    migrate_db(db2);
    char *cfg2 = th_aggr_config(dir, "rebuild.yaml", db2, topic, dlq, "g-rebuild", NULL,
                                th_free_port(), NULL);
    int status;
    json_t *rep = run_replay(cfg2, "--from 1970-01-01T00:00:00Z", &status);
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(total(rep, "read"), msgs);
    ck_assert_int_eq(total(rep, "inserted"), rows);
    ck_assert_int_eq(total(rep, "resends"), NSTREAMS * (NRECS / 2));
    ck_assert_int_eq(total(rep, "forks"), 1);
    ck_assert_int_eq(total(rep, "dlq"), 1);
    json_decref(rep);

    assert_same_rows(db, db2, "SELECT " ROW_COLS " FROM auditrail.events ORDER BY event_time, id",
                     rows);
    assert_same_rows(db, db2,
                     "SELECT stream_id, last_seq, encode(last_hash, 'hex'), source::text, gaps,"
                     " chain_breaks, forks FROM auditrail.streams ORDER BY stream_id",
                     NSTREAMS);
    assert_same_rows(db, db2,
                     "SELECT kind, stream_id, seq, expected, actual FROM"
                     " auditrail.integrity_incidents ORDER BY stream_id, seq, kind",
                     1);
    test_pg_drop_db(db2);
    free(db2);
    free(cfg2);
}
END_TEST

/* The producer of the load test: batches of records until told to stop. */
struct load {
    struct tenv_stream st[NSTREAMS];
    atomic_int rounds, stop;
};

static void *load_main(void *arg)
{
    struct load *l = arg;
    rd_kafka_t *p = th_producer_new();
    int i = NRECS;
    while (!atomic_load(&l->stop) && i < NRECS + 400) {
        produce(p, l->st, i, i + 10, 1);
        i += 10;
        atomic_fetch_add(&l->rounds, 1);
        rd_kafka_flush(p, 10000);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    th_producer_flush(p);
    th_producer_free(p);
    atomic_store(&l->rounds, -i); /* done: how many records per stream */
    return NULL;
}

static bool rows_at_least(void *ud)
{
    return th_sql_int(db, "SELECT count(*) FROM auditrail.events") >= *(int64_t *)ud;
}

START_TEST(replay_under_load_alongside_the_consumers)
{
    struct load l = {0};
    streams_init(l.st, "load");
    rd_kafka_t *p = th_producer_new();
    produce(p, l.st, 0, NRECS, 1);
    th_producer_flush(p);
    th_producer_free(p);

    char *log = xasprintf("%s/aggregator.log", dir);
    struct th_aggr *a = th_aggr_start(cfg, log, 0);
    free(log);
    int64_t first = NSTREAMS * NRECS;
    ck_assert(test_wait_until(rows_at_least, &first, 60000));
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, load_main, &l), 0);
    /* Lose rows while the load runs, then replay everything while the
     * aggregator keeps writing the same streams. */
    PGconn *c = test_pg_connect(db);
    test_pg_exec(c, "DELETE FROM auditrail.events WHERE seq % 4 = 1");
    int status;
    json_t *rep = run_replay(cfg, "--from-offset 0:0,1:0,2:0", &status);
    ck_assert_int_eq(status, 0);
    ck_assert_int_ge(total(rep, "inserted"), NSTREAMS * NRECS / 4);
    json_decref(rep);
    atomic_store(&l.stop, 1);
    pthread_join(th, NULL);
    int per_stream = -atomic_load(&l.rounds);
    int64_t msgs = (int64_t)NSTREAMS * per_stream;
    ck_assert_int_eq(th_wait_offsets(db, topic, msgs, 60000), msgs);
    ck_assert_int_eq(th_aggr_stop(a, SIGTERM, 10000), 0);
    /* Every row deleted was below the high watermarks the replay took at
     * its start: all restored, none twice. */
    th_assert_exactly_once(db, msgs);
    ck_assert_int_eq(th_sql_int(db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    PQfinish(c);
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
