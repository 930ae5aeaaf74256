/* verify against the real stack: a database filled by the pg_writer, then
 * tampered with in SQL as a database administrator could (a row's raw, its
 * hash, its prev; a row deleted, inserted, two rows reordered); each is
 * found by `auditrail-aggregator verify` with the right evidence and exit
 * status 1, an intact database gives 0, a time range, a tenant and one
 * stream select what is read, an unreachable database gives 4 and bad
 * arguments 2. The library is also called directly (one worker and many
 * must agree). The expected hashes come from the fixtures' chains. */
#include <jansson.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aggregator/pg_writer.h"
#include "aggregator/verify.h"
#include "tests/integration/storage_fixtures.h"

#define NSTREAMS 3
#define NRECS    40 /* per stream: 20 on day 0, 20 on day 1 */

static char *ci, *dir, *cfg;
static PGconn *db;
/* hashes[s][seq] as written (hex) */
static char hashes[NSTREAMS][NRECS][2 * CHAIN_HASH_LEN + 1];
static char streams[NSTREAMS][CHAIN_STREAM_HEX_LEN + 1];

static int64_t rec_time(int seq)
{
    return fx_rec_time(seq, NRECS);
}

/* NSTREAMS streams of NRECS records, stream 2 of tenant t2, written by the
 * pg_writer in two batches. */
static void fill(void)
{
    fx_fill_chains(ci, NSTREAMS, NRECS, streams, &hashes[0][0][0]);
}

static void setup(void)
{
    ci = fx_fresh_migrated("verify");
    db = test_pg_connect(ci);
    fill();
    dir = test_tmpdir("verify");
    cfg = xasprintf("%s/aggregator.yaml", dir);
    char *yaml = xasprintf("kafka: {brokers: \"127.0.0.1:9\"}\npostgres: {primary: \"%s\"}\n"
                           "log: {level: warn}\n",
                           ci);
    test_write_file(cfg, yaml, strlen(yaml), false);
    free(yaml);
}

static void teardown(void)
{
    PQfinish(db);
    test_pg_drop_db(ci);
    free(ci);
    test_rmtree(dir);
    free(dir);
    free(cfg);
}

/* What a run of the binary printed (--json): its findings and summary. */
struct result {
    int status;
    json_t *findings; /* array */
    json_t *summary;
};

static void result_release(struct result *r)
{
    json_decref(r->findings);
    json_decref(r->summary);
}

/* auditrail-aggregator --config cfg verify --json ARGS (config: which file). */
static struct result run_verify_cfg(const char *config, const char *args)
{
    char *bin = test_bin("auditrail-aggregator");
    char *cmd = xasprintf("%s --config %s verify --json %s 2>>%s/stderr.log", bin, config,
                          args ? args : "", dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    struct result r = {.findings = json_array()};
    char line[8192];
    while (fgets(line, sizeof(line), p)) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        ck_assert_msg(j != NULL, "not JSON: %s", line);
        if (json_object_get(j, "summary")) {
            r.summary = json_incref(json_object_get(j, "summary"));
            json_decref(j);
        } else {
            json_array_append_new(r.findings, j);
        }
    }
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    free(cmd);
    free(bin);
    return r;
}

static struct result run_verify(const char *args)
{
    return run_verify_cfg(cfg, args);
}

static const char *fs(json_t *f, const char *k)
{
    const char *v = json_string_value(json_object_get(f, k));
    return v ? v : "";
}

static json_int_t fi(json_t *f, const char *k)
{
    return json_integer_value(json_object_get(f, k));
}

/* The finding of kind in stream s at seq (asserted to exist). */
static json_t *finding(const struct result *r, const char *kind, int s, json_int_t seq)
{
    size_t i;
    json_t *f;
    json_array_foreach(r->findings, i, f)
    {
        if (!strcmp(fs(f, "kind"), kind) && !strcmp(fs(f, "stream"), streams[s]) &&
            fi(f, "seq") == seq)
            return f;
    }
    char *all = json_dumps(r->findings, JSON_COMPACT);
    ck_abort_msg("no %s at stream %d seq %lld in %s", kind, s, (long long)seq, all);
    return NULL;
}

/* Exit status 1 and a summary that says so. */
static void assert_problems(const struct result *r)
{
    ck_assert_int_eq(r->status, 1);
    ck_assert_str_eq(fs(r->summary, "status"), "problems");
}

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sql(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *q = NULL;
    ck_assert_int_ge(vasprintf(&q, fmt, ap), 0);
    va_end(ap);
    test_pg_exec(db, q);
    free(q);
}

START_TEST(intact_database_exits_0)
{
    struct result r = run_verify(NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(fs(r.summary, "status"), "intact");
    ck_assert_int_eq(fi(r.summary, "streams"), NSTREAMS);
    ck_assert_int_eq(fi(r.summary, "records"), NSTREAMS * NRECS);
    ck_assert_int_eq(json_array_size(r.findings), 0);
    result_release(&r);

    /* The library with one worker and with several agrees. */
    for (unsigned w = 1; w <= 5; w += 4) {
        struct verify_opts o = {.from_us = VERIFY_UNBOUNDED_FROM,
                                .to_us = VERIFY_UNBOUNDED_TO,
                                .horizon_us = INT64_MIN,
                                .workers = w,
                                .fetch_rows = 7};
        struct verify_report rep;
        char err[512];
        ck_assert_int_eq(verify_run(ci, &o, NULL, NULL, &rep, err, sizeof(err)), VERIFY_INTACT);
        ck_assert_uint_eq(rep.streams, NSTREAMS);
        ck_assert_uint_eq(rep.records, NSTREAMS * NRECS);
        ck_assert_uint_eq(rep.problems, 0);
    }
}
END_TEST

START_TEST(tampered_raw)
{
    sql("UPDATE auditrail.events SET raw = convert_to('{\"actor\":\"mallory\"}', 'UTF8')"
        " WHERE stream_id = '%s' AND seq = 7",
        streams[1]);
    struct result r = run_verify(NULL);
    assert_problems(&r);
    ck_assert_int_eq(fi(r.summary, "problems"), 1);
    json_t *f = finding(&r, "hash_mismatch", 1, 7);
    ck_assert_str_eq(fs(f, "stored"), hashes[1][7]);
    ck_assert_str_ne(fs(f, "computed"), hashes[1][7]);
    ck_assert_str_eq(fs(f, "event_time"), "2026-11-26T00:00:07.000000Z");
    result_release(&r);
}
END_TEST

START_TEST(tampered_hash)
{
    /* A new hash (and id, as a careful forger would) for seq 12. */
    sql("UPDATE auditrail.events SET hash = sha256('x'::bytea),"
        " id = encode(substr(sha256('x'::bytea), 1, 16), 'hex')::uuid"
        " WHERE stream_id = '%s' AND seq = 12",
        streams[0]);
    struct result r = run_verify(NULL);
    assert_problems(&r);
    json_t *f = finding(&r, "hash_mismatch", 0, 12);
    ck_assert_str_eq(fs(f, "computed"), hashes[0][12]);
    f = finding(&r, "broken_link", 0, 13);
    ck_assert_str_eq(fs(f, "stored"), hashes[0][12]); /* seq 13's prev */
    ck_assert_int_eq(fi(r.summary, "problems"), 2);
    result_release(&r);
}
END_TEST

START_TEST(tampered_prev)
{
    sql("UPDATE auditrail.events SET prev_hash = sha256('y'::bytea)"
        " WHERE stream_id = '%s' AND seq = 30",
        streams[2]);
    struct result r = run_verify(NULL);
    assert_problems(&r);
    finding(&r, "hash_mismatch", 2, 30);
    json_t *f = finding(&r, "broken_link", 2, 30);
    ck_assert_str_eq(fs(f, "computed"), hashes[2][29]);
    ck_assert_int_eq(fi(r.summary, "problems"), 2);
    result_release(&r);
}
END_TEST

START_TEST(deleted_row)
{
    sql("DELETE FROM auditrail.events WHERE stream_id = '%s' AND seq = 21", streams[1]);
    struct result r = run_verify(NULL);
    assert_problems(&r);
    json_t *f = finding(&r, "gap", 1, 21);
    ck_assert_int_eq(fi(f, "seq_end"), 21);
    ck_assert_int_eq(fi(r.summary, "problems"), 1);
    result_release(&r);

    /* The last record deleted: auditrail.streams still knows it. */
    sql("DELETE FROM auditrail.events WHERE stream_id = '%s' AND seq = %d", streams[0], NRECS - 1);
    r = run_verify(NULL);
    f = finding(&r, "tail_missing", 0, NRECS - 1);
    ck_assert_str_eq(fs(f, "computed"), hashes[0][NRECS - 1]);
    result_release(&r);
}
END_TEST

START_TEST(inserted_row)
{
    /* A forged record at seq 5 with a correct hash of its own. */
    sql("INSERT INTO auditrail.events (event_time, id, stream_id, seq, file_offset, hash,"
        " prev_hash, read_time, time_source, format, source, raw)"
        " SELECT event_time + interval '1 ms', encode(substr(h, 1, 16), 'hex')::uuid, stream_id,"
        " seq, file_offset, h, prev_hash, read_time, time_source, format, source, r"
        " FROM (SELECT *, convert_to('forged', 'UTF8') AS r,"
        "   sha256(prev_hash || int8send(seq) || convert_to('forged', 'UTF8')) AS h"
        "   FROM auditrail.events WHERE stream_id = '%s' AND seq = 5) x",
        streams[0]);
    struct result r = run_verify(NULL);
    assert_problems(&r);
    finding(&r, "fork", 0, 5);
    ck_assert_int_eq(fi(r.summary, "problems"), 1);
    result_release(&r);
}
END_TEST

/* A fork the aggregator stored itself (two records of one seq in one batch,
 * so next to each other on disk) and the stream going on from the first of
 * them: one fork, and no broken link for the record after it (the scan keeps
 * both hashes as possible predecessors). */
START_TEST(stored_fork_next_to_each_other)
{
    char err[512] = "";
    struct pg_writer *w = pg_writer_new(ci, "g1", NULL, err, sizeof(err));
    ck_assert_msg(w != NULL, "pg_writer_new: %s", err);
    struct fx_chain ch;
    fx_chain_init(&ch, 7);
    struct batch b;
    batch_init(&b, "audit");
    uint8_t prev4[CHAIN_HASH_LEN];
    for (int i = 0; i < 8; i++) {
        if (i == 5)
            memcpy(prev4, ch.prev, CHAIN_HASH_LEN);
        char line[32];
        snprintf(line, sizeof(line), "{\"n\":%d}", i);
        fx_add_str(&b, &ch, line, rec_time(i), 0, (int64_t)b.n);
        if (i == 5) { /* the other record of seq 5, right after the first */
            struct envelope e;
            fx_env(&e, ch.stream, 5, prev4, "{\"n\":\"other\"}", 13, rec_time(5));
            batch_add(&b, &e, 0, (int64_t)b.n);
        }
    }
    struct pg_write_stats st = {0};
    ck_assert_msg(pg_writer_write(w, &b, &st, err, sizeof(err)) == PG_OK, "write: %s", err);
    ck_assert_uint_eq(st.inserted, 9);
    pg_write_stats_release(&st);
    batch_release(&b);
    pg_writer_free(w);

    struct result r = run_verify(NULL);
    assert_problems(&r);
    size_t i;
    json_t *f;
    int forks = 0;
    json_array_foreach(r.findings, i, f)
    {
        ck_assert_msg(!strcmp(fs(f, "kind"), "fork"), "not a fork: %s", json_dumps(f, 0));
        ck_assert_str_eq(fs(f, "stream"), ch.stream);
        ck_assert_int_eq(fi(f, "seq"), 5);
        forks++;
    }
    ck_assert_int_eq(forks, 1);
    ck_assert_int_eq(fi(r.summary, "problems"), 1);
    result_release(&r);
}
END_TEST

START_TEST(reordered_rows)
{
    sql("UPDATE auditrail.events SET seq = CASE seq WHEN 3 THEN 4 ELSE 3 END"
        " WHERE stream_id = '%s' AND seq IN (3, 4)",
        streams[2]);
    struct result r = run_verify(NULL);
    assert_problems(&r);
    finding(&r, "hash_mismatch", 2, 3);
    finding(&r, "hash_mismatch", 2, 4);
    result_release(&r);
}
END_TEST

START_TEST(time_range_tenant_and_stream)
{
    /* Tamper in day 0; verify day 1 only: intact except its first link. */
    sql("UPDATE auditrail.events SET raw = 'z'::bytea WHERE stream_id = '%s' AND seq = 2",
        streams[0]);
    struct result r = run_verify("--from 2026-11-27T00:00:00Z --to 2026-11-28T00:00:00Z");
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(fi(r.summary, "records"), NSTREAMS * NRECS / 2);
    result_release(&r);

    /* Record 19 (day 0) gets a new hash: day 1's first record no longer
     * links to it. */
    sql("UPDATE auditrail.events SET hash = sha256('w'::bytea) WHERE stream_id = '%s' AND seq = 19",
        streams[1]);
    r = run_verify("--from 2026-11-27T00:00:00Z --to 2026-11-28T00:00:00Z");
    ck_assert_int_eq(r.status, 1);
    json_t *f = finding(&r, "broken_link", 1, 20);
    ck_assert_str_eq(fs(f, "stored"), hashes[1][19]);
    result_release(&r);

    /* Tenant t2 is stream 2 only (intact); stream 0 alone has one problem. */
    r = run_verify("--tenant t2");
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(fi(r.summary, "streams"), 1);
    result_release(&r);
    char args[128];
    snprintf(args, sizeof(args), "--stream %s", streams[0]);
    r = run_verify(args);
    ck_assert_int_eq(r.status, 1);
    ck_assert_int_eq(fi(r.summary, "streams"), 1);
    finding(&r, "hash_mismatch", 0, 2);
    result_release(&r);
}
END_TEST

START_TEST(unavailable_and_usage)
{
    char *bad = xasprintf("%s/bad.yaml", dir);
    const char *yaml = "kafka: {brokers: \"127.0.0.1:9\"}\n"
                       "postgres: {primary: \"host=127.0.0.1 port=1 dbname=x connect_timeout=2\"}\n"
                       "log: {level: error}\n";
    test_write_file(bad, yaml, strlen(yaml), false);
    struct result r = run_verify_cfg(bad, NULL);
    ck_assert_int_eq(r.status, 4);
    ck_assert_str_eq(fs(r.summary, "status"), "unavailable");
    result_release(&r);
    free(bad);

    r = run_verify("--from yesterday");
    ck_assert_int_eq(r.status, 2);
    result_release(&r);
    r = run_verify("--bogus");
    ck_assert_int_eq(r.status, 2);
    result_release(&r);
    r = run_verify("--from -1h --to -2h");
    ck_assert_int_eq(r.status, 2);
    result_release(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("verify");
    TCase *tc = tcase_create("verify");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, intact_database_exits_0);
    tcase_add_test(tc, tampered_raw);
    tcase_add_test(tc, tampered_hash);
    tcase_add_test(tc, tampered_prev);
    tcase_add_test(tc, deleted_row);
    tcase_add_test(tc, inserted_row);
    tcase_add_test(tc, stored_fork_next_to_each_other);
    tcase_add_test(tc, reordered_rows);
    tcase_add_test(tc, time_range_tenant_and_stream);
    tcase_add_test(tc, unavailable_and_usage);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
