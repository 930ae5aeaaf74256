/* The CLI's issue 11 verbs on the real stack: `auditrail verify` against a
 * real auditrail-aggregator --role query with real tokens (an intact
 * stream, a row tampered with in SQL found with its evidence, a time range,
 * every stream of a tenant, a reader refused, the server stopped), and
 * `auditrail replay` running the aggregator's replay against kafka-mock (a
 * dry run: its report, its exit status, nothing written). No token in any
 * output. Chains are written by the pg_writer from the fixtures' hashes. */
#include <check.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/integration/cli_fixtures.h"
#include "tests/integration/query_fixtures.h"
#include "tests/integration/storage_fixtures.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/proc.h"

#define NSTREAMS 3  /* 0 and 1 of tenant t1, 2 of tenant t2 */
#define NRECS    40 /* per stream: 20 on 2026-11-26, 20 on 2026-11-27 */

static char *ci, *dir, *cfg;
static unsigned port;
static struct proc *agg;
static char streams[NSTREAMS][CHAIN_STREAM_HEX_LEN + 1];
static char hashes[NSTREAMS][NRECS][2 * CHAIN_HASH_LEN + 1];
static char *tok_reader, *tok_auditor, *tok_admin;
static char *f_reader, *f_auditor, *f_admin;

static char *token_file(const char *name, const char *token)
{
    char *p = xasprintf("%s/%s.token", dir, name);
    test_write_file(p, token, strlen(token), false);
    chmod(p, 0600);
    return p;
}

static void setup(void)
{
    ci = fx_fresh_migrated("vcli");
    fx_fill_chains(ci, NSTREAMS, NRECS, streams, &hashes[0][0][0]);
    dir = test_tmpdir("vcli");
    cfg = xasprintf("%s/aggregator.yaml", dir);
    port = probe_free_port();
    char *yaml = xasprintf("kafka:\n  brokers: 127.0.0.1:9\npostgres:\n  primary: \"%s\"\n"
                           "http:\n  listen: 127.0.0.1:%u\nquery:\n  audit_log: %s/api-audit.log\n"
                           "  pool_size: 2\nlog: {level: warn}\n",
                           ci, port, dir);
    test_write_file(cfg, yaml, strlen(yaml), false);
    free(yaml);
    tok_reader = qfx_token(cfg, "create --tenant t1 --role reader --name v-reader");
    tok_auditor = qfx_token(cfg, "create --tenant t1 --role auditor --name v-auditor");
    tok_admin = qfx_token(cfg, "create --role admin --name v-admin");
    f_reader = token_file("reader", tok_reader);
    f_auditor = token_file("auditor", tok_auditor);
    f_admin = token_file("admin", tok_admin);
    char *log = xasprintf("%s/aggregator.log", dir);
    char *bin = test_bin("auditrail-aggregator");
    const char *argv[] = {bin, "--config", cfg, "--role", "query", NULL};
    agg = proc_spawn("aggregator", argv, NULL, log);
    free(bin);
    free(log);
    ck_assert_msg(probe_wait_status(port, "/healthz", 200, 20000),
                  "the aggregator does not answer");
}

static void teardown(void)
{
    proc_free(agg);
    agg = NULL;
    test_pg_drop_db(ci);
    test_rmtree(dir);
    free(ci);
    free(dir);
    free(cfg);
    free(tok_reader);
    free(tok_auditor);
    free(tok_admin);
    free(f_reader);
    free(f_auditor);
    free(f_admin);
}

/* auditrail --url API ARGS (a printf format), with stdout and stderr. */
static struct cfx_run cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct cfx_run cli(const char *fmt, ...)
{
    const char *const tokens[] = {tok_reader, tok_auditor, tok_admin, NULL};
    va_list ap;
    va_start(ap, fmt);
    struct cfx_run r = cfx_vrun(port, tokens, fmt, ap);
    va_end(ap);
    return r;
}

static void sql(const char *q)
{
    PGconn *db = test_pg_connect(ci);
    test_pg_exec(db, q);
    PQfinish(db);
}

/* What verify should compute for stream s at seq, from the table itself. */
static char *computed_hash(int s, int seq)
{
    PGconn *db = test_pg_connect(ci);
    char *q = xasprintf("SELECT encode(sha256(prev_hash || int8send(seq) || raw), 'hex')"
                        " FROM auditrail.events WHERE stream_id = '%s' AND seq = %d",
                        streams[s], seq);
    char *v = test_pg_scalar(db, q);
    ck_assert_ptr_nonnull(v);
    free(q);
    PQfinish(db);
    return v;
}

static void tamper_raw(int s, int seq)
{
    char *q = xasprintf("UPDATE auditrail.events SET raw = convert_to('{\"actor\":\"mallory\"}',"
                        " 'UTF8') WHERE stream_id = '%s' AND seq = %d",
                        streams[s], seq);
    sql(q);
    free(q);
}

#define DOT " \xc2\xb7 "

START_TEST(one_stream_intact_then_tampered)
{
    /* intact: 0, no findings, the summary */
    struct cfx_run r = cli("--token-file %s verify --stream %s", f_auditor, streams[1]);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err.p);
    ck_assert_str_eq(r.out.p, "");
    ck_assert_msg(strncmp(r.err.p, "intact" DOT "1 stream" DOT "40 records" DOT "0 problems", 40) ==
                      0,
                  "%s", r.err.p);
    ck_assert_uint_eq(cfx_lines(r.err.p), 1);
    cfx_run_free(&r);

    /* a database administrator rewrites one record's raw */
    tamper_raw(1, 5);
    char *computed = computed_hash(1, 5);
    r = cli("--token-file %s verify --stream %s", f_auditor, streams[1]);
    ck_assert_msg(r.status == 1, "exit %d: %s", r.status, r.err.p);
    ck_assert_uint_eq(cfx_lines(r.out.p), 2); /* the header and the one finding */
    char *want = xasprintf("\nhash_mismatch         %s:5  ", streams[1]);
    ck_assert_msg(strstr(r.out.p, want), "%s", r.out.p);
    free(want);
    /* its evidence: the stored hash as written, and SHA-256 of what is there now */
    want = xasprintf("  %s  %s  ", hashes[1][5], computed);
    ck_assert_msg(strstr(r.out.p, want), "%s", r.out.p);
    free(want);
    ck_assert_msg(
        strncmp(r.err.p, "problems" DOT "1 stream" DOT "40 records" DOT "1 problems", 42) == 0,
        "%s", r.err.p);
    cfx_run_free(&r);

    /* --json: the API's answer, one line (only its "seconds" differ
     * between two runs) */
    r = cli("--token-file %s verify --stream %s --json", f_auditor, streams[1]);
    ck_assert_int_eq(r.status, 1);
    ck_assert_uint_eq(cfx_lines(r.out.p), 1);
    char *path = xasprintf("/v1/streams/%s/verify", streams[1]);
    struct qfx_reply a = qfx_get(port, path, tok_auditor, NULL);
    ck_assert_int_eq(a.status, 200);
    json_t *got = json_loads(r.out.p, 0, NULL), *api = json_loads(buf_cstr(&a.body), 0, NULL);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(api);
    json_object_del(json_object_get(got, "summary"), "seconds");
    json_object_del(json_object_get(api, "summary"), "seconds");
    ck_assert_msg(json_equal(got, api), "%s", r.out.p);
    json_decref(got);
    json_decref(api);
    ck_assert_str_eq(r.err.p, "");
    qfx_reply_free(&a);
    free(path);
    cfx_run_free(&r);

    /* the other stream is still intact; t2's stream is not t1's: 1 (404) */
    r = cli("--token-file %s verify --stream %s", f_auditor, streams[0]);
    ck_assert_int_eq(r.status, 0);
    cfx_run_free(&r);
    r = cli("--token-file %s verify --stream %s", f_auditor, streams[2]);
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err.p, "(HTTP 404 not_found)"));
    ck_assert_str_eq(r.out.p, "");
    cfx_run_free(&r);
    free(computed);
}
END_TEST

START_TEST(every_stream_of_a_range)
{
    /* t1's auditor: streams 0 and 1, intact */
    struct cfx_run r = cli("--token-file %s verify", f_auditor);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err.p);
    ck_assert_msg(strncmp(r.err.p, "intact" DOT "2 streams" DOT "80 records", 29) == 0, "%s",
                  r.err.p);
    cfx_run_free(&r);
    tamper_raw(1, 5);
    r = cli("--token-file %s verify", f_auditor);
    ck_assert_msg(r.status == 1, "exit %d: %s", r.status, r.err.p);
    ck_assert_uint_eq(cfx_lines(r.out.p), 2);
    char *want = xasprintf("%s:5  ", streams[1]);
    ck_assert_msg(strstr(r.out.p, want) && !strstr(r.out.p, streams[0]), "%s", r.out.p);
    free(want);
    ck_assert_msg(
        strncmp(r.err.p, "problems" DOT "2 streams" DOT "80 records" DOT "1 problems", 43) == 0,
        "%s", r.err.p);
    cfx_run_free(&r);
    /* --json: one answer per stream */
    r = cli("--token-file %s verify --json", f_auditor);
    ck_assert_int_eq(r.status, 1);
    ck_assert_uint_eq(cfx_lines(r.out.p), 2);
    cfx_run_free(&r);
    /* the range: 2026-11-27 only, after the tampered record: intact */
    r = cli("--token-file %s verify --from 2026-11-27 --to 2026-11-28", f_auditor);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err.p);
    ck_assert_msg(strncmp(r.err.p, "intact" DOT "2 streams" DOT "40 records", 29) == 0, "%s",
                  r.err.p);
    cfx_run_free(&r);
    /* an admin, every tenant, then t2 alone */
    r = cli("--token-file %s verify", f_admin);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strncmp(r.err.p, "problems" DOT "3 streams" DOT "120 records", 33) == 0, "%s",
                  r.err.p);
    cfx_run_free(&r);
    r = cli("--token-file %s verify --tenant t2", f_admin);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strncmp(r.err.p, "intact" DOT "1 stream" DOT "40 records", 27) == 0, "%s",
                  r.err.p);
    cfx_run_free(&r);
}
END_TEST

START_TEST(refused_and_unavailable)
{
    /* a reader may not verify: 3, both forms */
    struct cfx_run r = cli("--token-file %s verify --stream %s", f_reader, streams[0]);
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err.p, "(HTTP 403 role_forbidden)"));
    ck_assert_str_eq(r.out.p, "");
    cfx_run_free(&r);
    r = cli("--token-file %s verify", f_reader);
    ck_assert_int_eq(r.status, 3);
    cfx_run_free(&r);
    /* no token: 3 */
    r = cli("verify --stream %s", streams[0]);
    ck_assert_int_eq(r.status, 3);
    cfx_run_free(&r);
    /* the server stopped: 4, both forms */
    ck_assert_int_eq(proc_stop(agg, 30000), 0);
    r = cli("--token-file %s verify --stream %s", f_auditor, streams[0]);
    ck_assert_int_eq(r.status, 4);
    ck_assert_uint_eq(cfx_lines(r.err.p), 1);
    ck_assert_str_eq(r.out.p, "");
    cfx_run_free(&r);
    r = cli("--token-file %s verify", f_auditor);
    ck_assert_int_eq(r.status, 4);
    ck_assert_str_eq(r.out.p, "");
    cfx_run_free(&r);
}
END_TEST

/* ---- auditrail replay: the aggregator's replay, run by the CLI */

#define RSTREAMS 2
#define RRECS    10

static struct th_env E;

static void replay_setup(void)
{
    th_env_init(&E, "cli_replay", 1);
    struct migrate_report rep;
    char err[512];
    ck_assert_msg(migrate_run(E.db, &rep, err, sizeof(err)) == 0, "migrate: %s", err);
}

static void replay_teardown(void)
{
    th_env_release(&E);
}

static int64_t count_events(void)
{
    PGconn *db = test_pg_connect(E.db);
    char *v = test_pg_scalar(db, "SELECT count(*) FROM auditrail.events");
    int64_t n = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    PQfinish(db);
    return n;
}

START_TEST(replay_dry_run_through_the_cli)
{
    /* records with Kafka timestamps of now: inside --from -1h */
    struct trecs all = {0};
    trecs_make(&all, "cli-replay", RSTREAMS, RRECS, FX_T0, 0);
    th_produce(&E, &all, 0, all.n, 1);
    char *bin = test_bin("auditrail");
    /* the form, the report the aggregator prints, its status 0 */
    char *cmd = xasprintf("'%s' replay --config '%s' --from -1h --dry-run", bin, E.aggr[0].config);
    struct buf out = BUF_INIT, err = BUF_INIT;
    int st = proc_run_sh(cmd, &out, &err);
    ck_assert_msg(st == 0, "exit %d: %s", st, buf_cstr(&err));
    ck_assert_msg(strstr(buf_cstr(&out), "replay (dry run: nothing written) done") &&
                      strstr(out.p, "\ntotal "),
                  "%s", out.p);
    ck_assert_int_eq(count_events(), 0);
    free(cmd);
    buf_reset(&out);
    buf_reset(&err);
    /* --json passed on too: the counts are the aggregator's */
    cmd = xasprintf("'%s' replay --config '%s' --from -1h --dry-run --json", bin, E.aggr[0].config);
    ck_assert_int_eq(proc_run_sh(cmd, &out, &err), 0);
    json_t *j = json_loads(buf_cstr(&out), 0, NULL);
    ck_assert_msg(j != NULL, "%s", out.p);
    ck_assert(json_is_true(json_object_get(j, "dry_run")));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "total"), "inserted")),
                     RSTREAMS * RRECS);
    ck_assert_int_eq(count_events(), 0);
    json_decref(j);
    free(cmd);
    buf_reset(&out);
    buf_reset(&err);
    /* the aggregator's refusal and its status: 2, its own message */
    cmd =
        xasprintf("'%s' replay --config '%s' --from -1h --from-offset 0:0", bin, E.aggr[0].config);
    st = proc_run_sh(cmd, &out, &err);
    ck_assert_int_eq(st, 2);
    ck_assert_msg(strstr(buf_cstr(&err), "auditrail-aggregator"), "%s", err.p);
    buf_release(&out);
    buf_release(&err);
    free(cmd);
    free(bin);
    trecs_release(&all);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_verify");
    TCase *tc = tcase_create("verify");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, one_stream_intact_then_tampered);
    tcase_add_test(tc, every_stream_of_a_range);
    tcase_add_test(tc, refused_and_unavailable);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("replay");
    tcase_add_checked_fixture(tr, replay_setup, replay_teardown);
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, replay_dry_run_through_the_cli);
    suite_add_tcase(s, tr);
    return test_run_suite(s);
}
