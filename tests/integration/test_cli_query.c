/* The auditrail CLI against a real auditrail-aggregator --role query on the
 * real stack (primary + streaming replica), with real tokens: every verb,
 * the table (hostile records escaped), --json and NDJSON, an export to a
 * file whose bytes are the API's NDJSON, exit statuses 0-4 (the server
 * stopped for 4), --cacert against the API over TLS, an export of ~90 MB
 * in the CLI's constant memory (max RSS against its own baseline), and no
 * token in any output.
 * STACK: reads only; safe beside other suites. */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/io.h"
#include "tests/integration/cli_fixtures.h"
#include "tests/integration/query_fixtures.h"
#include "tests/integration/storage_fixtures.h"
#include "tests/support/probe.h"
#include "tests/support/proc.h"

#define SA       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SB       "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define NA       3000 /* tenant A's plain rows, every 30 s from 2026-11-26 00:00:30 (+1 hostile) */
#define NB       100
#define RANGE    "--from 2026-11-26 --to 2026-11-28"
#define RANGE_QS "from=2026-11-26T00:00:00Z&to=2026-11-28T00:00:00Z"

static const char LOAD_SQL[] =
    "CREATE TABLE auditrail.events_p20261126 PARTITION OF auditrail.events"
    " FOR VALUES FROM ('2026-11-26 00:00:00+00') TO ('2026-11-27 00:00:00+00');"
    "CREATE TABLE auditrail.events_p20261127 PARTITION OF auditrail.events"
    " FOR VALUES FROM ('2026-11-27 00:00:00+00') TO ('2026-11-28 00:00:00+00');"
    "INSERT INTO auditrail.events (event_time, id, stream_id, seq, file_offset, hash, prev_hash,"
    " read_time, time_source, tenant, actor, action, resource, outcome, format, source, raw, attrs)"
    " SELECT timestamptz '2026-11-26 00:00:00+00' + g * interval '30 seconds',"
    " md5('A' || g)::uuid, '" SA "', g, g * 200, sha256(('A' || g)::bytea),"
    " sha256(('A' || (g - 1))::bytea), timestamptz '2026-11-26 00:00:01+00' + g * interval '30 s',"
    " 'payload', 'A', (ARRAY['alice', 'bob', 'carol'])[g % 3 + 1],"
    " CASE WHEN g % 4 = 0 THEN 'update' ELSE 'read' END, 'Patient/' || (g % 50), 'success',"
    " 'json', '{\"name\": \"ns/app-a\", \"host\": \"n1\"}'::jsonb,"
    " convert_to('{\"n\":' || g || ',\"pad\":\"' || repeat('x', 150) || '\"}', 'UTF8'),"
    " ('{\"n\":' || g || ',\"pad\":\"' || repeat('x', 150) || '\"}')::jsonb"
    " FROM generate_series(1, 3000) g;"
    "INSERT INTO auditrail.events (event_time, id, stream_id, seq, file_offset, hash, prev_hash,"
    " read_time, time_source, tenant, actor, action, resource, outcome, format, source, raw, attrs)"
    " SELECT timestamptz '2026-11-26 00:00:15+00' + g * interval '1 minute', md5('B' || g)::uuid,"
    " '" SB "', g, g * 100, sha256(('B' || g)::bytea), sha256(('B' || (g - 1))::bytea),"
    " timestamptz '2026-11-26 00:00:16+00' + g * interval '1 minute', 'payload', 'B', 'alice',"
    " 'read', 'Patient/' || (g % 5), 'success', 'json', '{\"name\": \"ns/app-b\"}'::jsonb,"
    " convert_to('{\"b\":' || g || '}', 'UTF8'), NULL FROM generate_series(1, 100) g;"
    /* a hostile record of tenant A: terminal controls in the actor, a bidi
     * override in the resource, a number no double holds in attrs */
    "INSERT INTO auditrail.events (event_time, id, stream_id, seq, file_offset, hash, prev_hash,"
    " read_time, time_source, tenant, actor, action, resource, outcome, format, source, raw, attrs)"
    " VALUES (timestamptz '2026-11-26 12:00:10.5+00', md5('hostile')::uuid, '" SA "', 5000, 1,"
    " sha256('h'::bytea), sha256('g'::bytea), now(), 'payload', 'A',"
    " E'\\x1b[2J\\x1b[1;1Hmallory\\x07', 'read', E'Patient/\\u202e7', 'success', 'json',"
    " '{\"name\": \"ns/app-a\"}'::jsonb, convert_to('{\"n\":1e400}', 'UTF8'),"
    " '{\"n\": 1e400}'::jsonb);"
    "INSERT INTO auditrail.streams (stream_id, last_seq, last_hash, source) VALUES"
    " ('" SA "', 5000, sha256('h'::bytea), '{\"name\": \"ns/app-a\"}'),"
    " ('" SB "', 100, sha256('B100'::bytea), '{\"name\": \"ns/app-b\"}');"
    "INSERT INTO auditrail.integrity_incidents (kind, stream_id, seq, expected, actual) VALUES"
    " ('gap', '" SA "', 3001, '3001', '5000'), ('fork', '" SB "', 3, 'aa', 'bb')";

static char *ci, *rci, *dir, *cfg;
static unsigned port, tls_port;
static struct proc *agg;
static char *tok_reader, *tok_auditor, *tok_admin, *tok_b;
static char *f_reader, *f_auditor, *f_admin; /* token files */

static void write_config(const char *extra)
{
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "kafka:\n  brokers: 127.0.0.1:9\n  topic: q.unused\n  group: q-unused\n"
            "  dlq_topic: q.unused.dlq\n"
            "postgres:\n  primary: \"%s\"\n  replicas: [\"%s\"]\n  health_interval_ms: 100\n"
            "  max_replica_lag_ms: 3000\n"
            "http:\n  listen: 127.0.0.1:%u\n"
            "query:\n  audit_log: %s/api-audit.log\n  token_cache_s: 1\n  cache_ttl_s: 1\n"
            "  export_chunk_bytes: 64KiB\n  pool_size: 4\n%s",
            ci, rci, port, dir, extra ? extra : "");
    fclose(f);
}

static char *token_file(const char *name, const char *token)
{
    char *p = xasprintf("%s/%s.token", dir, name);
    test_write_file(p, token, strlen(token), false);
    chmod(p, 0600);
    return p;
}

static void start_aggregator(void)
{
    char *log = xasprintf("%s/aggregator.log", dir);
    char *bin = test_bin("auditrail-aggregator");
    const char *argv[] = {bin, "--config", cfg, "--role", "query", NULL};
    agg = proc_spawn("aggregator", argv, NULL, log);
    free(bin);
    free(log);
    ck_assert_msg(probe_wait_status(port, "/healthz", 200, 20000),
                  "the aggregator does not answer");
}

static void setup_with(const char *extra)
{
    ci = fx_fresh_migrated("qcli");
    rci = test_pg_replica_conninfo(ci);
    dir = test_tmpdir("qcli");
    cfg = xasprintf("%s/aggregator.yaml", dir);
    port = probe_free_port();
    write_config(extra);
    PGconn *db = test_pg_connect(ci);
    test_pg_exec(db, LOAD_SQL);
    PQfinish(db);
    tok_reader = qfx_token(cfg, "create --tenant A --role reader --name cli-reader");
    tok_auditor = qfx_token(cfg, "create --tenant A --role auditor --name cli-auditor");
    tok_admin = qfx_token(cfg, "create --role admin --name cli-admin");
    tok_b = qfx_token(cfg, "create --tenant B --role auditor --name cli-auditor-b");
    f_reader = token_file("reader", tok_reader);
    f_auditor = token_file("auditor", tok_auditor);
    f_admin = token_file("admin", tok_admin);
    ck_assert(test_pg_replica_catch_up(ci, rci, 30000));
    start_aggregator();
}

static void setup(void)
{
    setup_with(NULL);
}

static void teardown(void)
{
    proc_free(agg); /* stopped by the test or killed here */
    agg = NULL;
    test_pg_drop_db(ci);
    test_rmtree(dir);
    free(ci);
    free(rci);
    free(dir);
    free(cfg);
    free(tok_reader);
    free(tok_auditor);
    free(tok_admin);
    free(tok_b);
    free(f_reader);
    free(f_auditor);
    free(f_admin);
}

/* ---- running the CLI */

static void slurp(const char *path, struct buf *b)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(io_read_all(fd, (size_t)1 << 30, b), 0);
    close(fd);
    buf_cstr(b);
}

/* auditrail --url API ARGS (a printf format), with stdout and stderr. */
static struct cfx_run cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct cfx_run cli(const char *fmt, ...)
{
    const char *const tokens[] = {tok_reader, tok_auditor, tok_admin, tok_b, NULL};
    va_list ap;
    va_start(ap, fmt);
    struct cfx_run r = cfx_vrun(port, tokens, fmt, ap);
    va_end(ap);
    return r;
}

static void assert_inert(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        ck_assert_msg((*p >= 0x20 || *p == '\n') && *p != 0x7f, "control 0x%02x in output", *p);
        ck_assert_msg(!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f), "C1 control in output");
    }
}

/* The API asked directly (curl, the fixture's client). */
static struct qfx_reply api(const char *path, const char *token)
{
    return qfx_get(port, path, token, NULL);
}

/* "N events · served by X · replica lag L ms · cache hit|miss\n" with the
 * answer's own values. */
static void assert_summary(const char *err, unsigned long n, const char *noun)
{
    char served[96] = "", cache[8] = "";
    unsigned long got_n = 0, lag = 0;
    char nn[32];
    int k = sscanf(err,
                   "%lu %31s \xc2\xb7 served by %95[^\xc2] \xc2\xb7 replica lag %lu ms "
                   "\xc2\xb7 cache %7s",
                   &got_n, nn, served, &lag, cache);
    ck_assert_msg(k == 5, "summary line: '%s'", err);
    ck_assert_msg(got_n == n && strcmp(nn, noun) == 0, "summary: '%s' (wanted %lu %s)", err, n,
                  noun);
    served[strlen(served) - 1] = '\0'; /* the space before the separator */
    char *want_replica = xasprintf("replica 127.0.0.1:%s", test_stack("STACK_PG_REPLICA_PORT"));
    ck_assert_msg(strcmp(served, "primary") == 0 || strcmp(served, want_replica) == 0,
                  "served by '%s'", served);
    free(want_replica);
    ck_assert_msg(strcmp(cache, "hit") == 0 || strcmp(cache, "miss") == 0, "cache '%s'", cache);
    ck_assert_uint_eq(cfx_lines(err), 1);
}

START_TEST(query_table_json_and_summary)
{
    /* a page as a table: header + 100 rows (the API's default page) */
    struct cfx_run r = cli("--token-file %s query " RANGE, f_reader);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert_uint_eq(cfx_lines(r.out.p), 1 + 100);
    ck_assert_ptr_nonnull(strstr(r.out.p, "2026-11-26T00:00:30.000000Z  A               bob"));
    assert_summary(r.err.p, 100, "events");
    cfx_run_free(&r);
    /* filters: alice's updates over two days, every page */
    r = cli("--token-file %s query " RANGE " --actor alice --action update --all", f_reader);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    /* alice is g % 3 == 0, an update g % 4 == 0: g = 12, 24, …, 3000 */
    ck_assert_uint_eq(cfx_lines(r.out.p), 1 + 250);
    assert_summary(r.err.p, 250, "events");
    cfx_run_free(&r);
    /* the hostile record: on the page, escaped, its columns in place */
    r = cli("--token-file %s query --from 2026-11-26T12:00:10Z --to 2026-11-26T12:00:11Z",
            f_reader);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    assert_inert(r.out.p);
    ck_assert_msg(strstr(r.out.p, "  A               \\x1b[2J\\x1b[1;1Hmal\xe2\x80\xa6  read  ") &&
                      strstr(r.out.p, "Patient/\\u202e7  "),
                  "%s", r.out.p);
    assert_summary(r.err.p, 1, "events");
    cfx_run_free(&r);
    /* --json: the API's page, byte for byte, nothing on stderr */
    r = cli("--token-file %s query --json --limit 7 --actor bob " RANGE, f_reader);
    ck_assert_int_eq(r.status, 0);
    struct qfx_reply a = api("/v1/events?actor=bob&" RANGE_QS "&limit=7", tok_reader);
    ck_assert_int_eq(a.status, 200);
    buf_addc(&a.body, '\n');
    ck_assert_str_eq(r.out.p, a.body.p);
    ck_assert_str_eq(r.err.p, "");
    qfx_reply_free(&a);
    cfx_run_free(&r);
    /* a cursor from --json, given back */
    r = cli("--token-file %s query --json --limit 2 " RANGE, f_reader);
    json_t *j = json_loads(r.out.p, 0, NULL);
    const char *next = json_string_value(json_object_get(j, "next_cursor"));
    ck_assert_ptr_nonnull(next);
    cfx_run_free(&r);
    r = cli("--token-file %s query --limit 1 --cursor %s " RANGE, f_reader, next);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert_ptr_nonnull(strstr(r.out.p, SA ":3\n")); /* the third event */
    cfx_run_free(&r);
    /* the cursor is bound to its filters: another filter is the API's 400 */
    r = cli("--token-file %s query --limit 1 --actor bob --cursor %s " RANGE, f_reader, next);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err.p, "(HTTP 400 bad_cursor)"));
    cfx_run_free(&r);
    json_decref(j);
}
END_TEST

START_TEST(query_all_equals_export)
{
    /* every event of tenant A, three ways: the API's export, the CLI's
     * export to a file, and --all --json over pages of 1000 */
    struct qfx_reply a = api("/v1/events/export?" RANGE_QS, tok_auditor);
    ck_assert_int_eq(a.status, 200);
    ck_assert_uint_eq(cfx_lines(a.body.p), NA + 1);
    char *file = xasprintf("%s/export.ndjson", dir), *part = xasprintf("%s.part", file);
    struct cfx_run r = cli("--token-file %s export " RANGE " -o %s", f_auditor, file);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert_str_eq(r.out.p, "");
    struct buf f = BUF_INIT;
    slurp(file, &f);
    ck_assert_uint_eq(f.len, a.body.len);
    ck_assert(memcmp(f.p, a.body.p, f.len) == 0);
    struct stat st;
    ck_assert_int_ne(stat(part, &st), 0); /* renamed, nothing left behind */
    cfx_run_free(&r);
    r = cli("--token-file %s query --all --json " RANGE, f_auditor);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert_uint_eq(r.out.len, a.body.len);
    ck_assert(memcmp(r.out.p, a.body.p, r.out.len) == 0);
    cfx_run_free(&r);
    /* to stdout with a filter */
    r = cli("--token-file %s export " RANGE " --actor carol", f_auditor);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(cfx_lines(r.out.p), NA / 3);
    cfx_run_free(&r);
    /* an admin reads another tenant's; --tenant for a reader of A is 403 */
    r = cli("--token-file %s export " RANGE " --tenant B", f_admin);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(cfx_lines(r.out.p), NB);
    cfx_run_free(&r);
    /* a reader may not export: 3, and no file */
    unlink(file);
    r = cli("--token-file %s export " RANGE " -o %s", f_reader, file);
    ck_assert_int_eq(r.status, 3);
    ck_assert_str_eq(r.err.p, "auditrail: this endpoint needs an auditor or admin token (HTTP 403 "
                              "role_forbidden)\n");
    ck_assert_int_ne(stat(file, &st), 0);
    ck_assert_int_ne(stat(part, &st), 0);
    cfx_run_free(&r);
    /* --all bounded by --max: 1, and the rows up to it */
    r = cli("--token-file %s query --all --max 1500 --json " RANGE, f_auditor);
    ck_assert_int_eq(r.status, 1);
    ck_assert_uint_eq(cfx_lines(r.out.p), 1500);
    ck_assert_ptr_nonnull(strstr(r.err.p, "stopped at --max 1500 events; more follow: --cursor "));
    cfx_run_free(&r);
    buf_release(&f);
    qfx_reply_free(&a);
    free(file);
    free(part);
}
END_TEST

START_TEST(streams_stream_and_incidents)
{
    struct cfx_run r = cli("--token-file %s streams --counts", f_auditor);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert_uint_eq(cfx_lines(r.out.p), 2); /* header + A's stream only */
    ck_assert_ptr_nonnull(strstr(r.out.p, SA "  5000 "));
    ck_assert_ptr_nonnull(strstr(r.out.p, " 3001 ")); /* rows */
    assert_summary(r.err.p, 1, "streams");
    cfx_run_free(&r);
    r = cli("--token-file %s streams --json", f_admin);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.out.p, SA) && strstr(r.out.p, SB), "%s", r.out.p);
    cfx_run_free(&r);
    r = cli("--token-file %s stream %s", f_auditor, SA);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert_ptr_nonnull(strstr(r.out.p, "stream        " SA "\n"));
    ck_assert_ptr_nonnull(strstr(r.out.p, "source.name   ns/app-a\n"));
    ck_assert_ptr_nonnull(strstr(r.out.p, "rows          3001\n"));
    ck_assert_ptr_nonnull(strstr(r.out.p, "\n1 incident:\n"));
    ck_assert_ptr_nonnull(strstr(r.out.p, "gap          " SA ":3001"));
    cfx_run_free(&r);
    /* B's stream is not visible to A's auditor: 1, like one that does not exist */
    r = cli("--token-file %s stream %s", f_auditor, SB);
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err.p, "auditrail: no such stream (for this token) (HTTP 404 not_found)\n");
    cfx_run_free(&r);
    r = cli("--token-file %s stream cccccccccccccccccccccccccccccccc --json", f_admin);
    ck_assert_int_eq(r.status, 1);
    cfx_run_free(&r);
    r = cli("--token-file %s stream %s --json", f_admin, SB);
    ck_assert_int_eq(r.status, 0);
    struct qfx_reply a = api("/v1/streams/" SB, tok_admin);
    buf_addc(&a.body, '\n');
    ck_assert_str_eq(r.out.p, a.body.p);
    qfx_reply_free(&a);
    cfx_run_free(&r);
    r = cli("--token-file %s incidents --kind gap", f_admin);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert_uint_eq(cfx_lines(r.out.p), 2);
    ck_assert_ptr_nonnull(strstr(r.out.p, "gap          " SA ":3001"));
    assert_summary(r.err.p, 1, "incidents");
    cfx_run_free(&r);
    r = cli("--token-file %s incidents --all --json", f_admin);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(cfx_lines(r.out.p), 2); /* NDJSON: both incidents */
    cfx_run_free(&r);
    /* a reader has no streams or incidents */
    r = cli("--token-file %s incidents", f_reader);
    ck_assert_int_eq(r.status, 3);
    cfx_run_free(&r);
}
END_TEST

struct revoked_wait {
    const char *file;
};

static bool refused(void *ud)
{
    struct revoked_wait *w = ud;
    struct cfx_run r = cli("--token-file %s query --limit 1", w->file);
    bool is = r.status == 3 && strstr(r.err.p, "(HTTP 401 token_revoked)");
    cfx_run_free(&r);
    return is;
}

/* The CLI's exit status, and a piece of the one line it wrote on stderr. */
static void expect(int status, const char *err_part, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void expect(int status, const char *err_part, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *args;
    ck_assert_int_ge(vasprintf(&args, fmt, ap), 0);
    va_end(ap);
    struct cfx_run r = cli("%s", args);
    ck_assert_msg(r.status == status, "%s: exit %d, wanted %d: %s", args, r.status, status,
                  r.err.p);
    ck_assert_msg(cfx_lines(r.err.p) == 1 && (!err_part || strstr(r.err.p, err_part)), "%s: '%s'",
                  args, r.err.p);
    cfx_run_free(&r);
    free(args);
}

START_TEST(exit_statuses)
{
    /* 0, and 1 with --fail-empty when nothing matches */
    struct cfx_run r = cli("--token-file %s query " RANGE " --actor nobody", f_reader);
    ck_assert_int_eq(r.status, 0);
    assert_summary(r.err.p, 0, "events");
    cfx_run_free(&r);
    expect(1, NULL, "--token-file %s query " RANGE " --actor nobody --fail-empty", f_reader);
    /* 2: usage (nothing sent), and parameters the API refuses */
    expect(2, "--from: not a time", "--token-file %s query --from last-week", f_reader);
    expect(2, "(HTTP 400 range_too_wide)", "--token-file %s query --from -40d", f_reader);
    expect(2, "(HTTP 400 bad_lsn)", "--token-file %s query --min-lsn nonsense", f_reader);
    /* 3: no token, an unknown one, a tenant not the token's */
    expect(3, "no token given", "query");
    expect(3, "(HTTP 401 unknown_token)",
           "--token atr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA query");
    expect(3, "(HTTP 403 tenant_forbidden)", "--token-file %s query --tenant B", f_reader);
    /* --min-lsn: read your writes at the primary's position */
    struct qfx_reply s = api("/v1/status", NULL);
    json_t *j = json_loads(s.body.p, 0, NULL);
    const char *lsn = json_string_value(json_object_get(j, "primary_lsn"));
    ck_assert_msg(lsn != NULL, "%s", s.body.p);
    expect(0, "1 events", "--token-file %s query " RANGE " --limit 1 --min-lsn %s", f_reader, lsn);
    json_decref(j);
    qfx_reply_free(&s);
    /* 3 for a token revoked while in use */
    char *tok = qfx_token(cfg, "create --tenant A --role reader --name cli-revoked");
    char *f = token_file("revoked", tok);
    setenv("AUDITRAIL_TOKEN", tok, 1); /* the environment works too */
    r = cli("query --limit 1");
    unsetenv("AUDITRAIL_TOKEN");
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert(!strstr(r.out.p, tok + 4) && !strstr(r.err.p, tok + 4));
    cfx_run_free(&r);
    free(qfx_token(cfg, "revoke cli-revoked"));
    struct revoked_wait w = {f};
    ck_assert_msg(test_wait_until(refused, &w, 10000), "a revoked token still reads");
    free(f);
    free(tok);
    /* the API's own audit log saw names, never secrets */
    char *log = xasprintf("%s/api-audit.log", dir);
    struct buf audit = BUF_INIT;
    slurp(log, &audit);
    ck_assert_ptr_nonnull(strstr(audit.p, "\"token\":\"cli-reader\""));
    ck_assert_ptr_null(strstr(audit.p, tok_reader + 4));
    buf_release(&audit);
    free(log);
}
END_TEST

START_TEST(unavailable_when_the_server_stops)
{
    struct cfx_run r = cli("--token-file %s health", f_reader);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out.p, "readyz  200"));
    cfx_run_free(&r);
    r = cli("--token-file %s metrics auditrail_aggregator_query_requests_total", f_reader);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out.p, "auditrail_aggregator_query_requests_total{"));
    cfx_run_free(&r);
    ck_assert_int_eq(proc_stop(agg, 30000), 0);
    static const char *const verbs[] = {"query",     "export", "streams", "stream " SA,
                                        "incidents", "health", "metrics"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        r = cli("--token-file %s %s", f_auditor, verbs[i]);
        ck_assert_msg(r.status == 4, "%s: exit %d", verbs[i], r.status);
        char *want = xasprintf("auditrail: http://127.0.0.1:%u unavailable: ", port);
        ck_assert_msg(strncmp(r.err.p, want, strlen(want)) == 0 && cfx_lines(r.err.p) == 1,
                      "%s: %s", verbs[i], r.err.p);
        free(want);
        ck_assert_str_eq(r.out.p, "");
        cfx_run_free(&r);
    }
}
END_TEST

/* ---- an export larger than the CLI's memory: constant RSS */

#define BIG_ROWS 100000 /* of ~900 bytes of NDJSON each: ~90 MB */

static const char BIG_SQL[] =
    "CREATE TABLE auditrail.events_p20261201 PARTITION OF auditrail.events"
    " FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2026-12-02 00:00:00+00');"
    "INSERT INTO auditrail.events (event_time, id, stream_id, seq, file_offset, hash, prev_hash,"
    " read_time, time_source, tenant, actor, action, resource, outcome, format, source, raw, attrs)"
    " SELECT timestamptz '2026-12-01 00:00:00+00' + g * interval '500 ms', md5('big' || g)::uuid,"
    " 'cccccccccccccccccccccccccccccccc', g, g, sha256(('c' || g)::bytea),"
    " sha256(('c' || (g - 1))::bytea), now(), 'payload', 'A', 'alice', 'read', 'Patient/' || g,"
    " 'success', 'raw', '{\"name\": \"big\"}'::jsonb, convert_to(repeat('y', 500), 'UTF8'), NULL"
    " FROM generate_series(1, 100000) g";

static void big_setup(void)
{
    setup();
    PGconn *db = test_pg_connect(ci);
    test_pg_exec(db, BIG_SQL);
    PQfinish(db);
    ck_assert(test_pg_replica_catch_up(ci, rci, 60000));
}

/* The largest RSS (KiB) of the processes of the shell command cmd, from a
 * child of our own whose only children they are. */
static long max_rss_kb(const char *cmd)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        int st = system(cmd);
        struct rusage ru;
        getrusage(RUSAGE_CHILDREN, &ru);
        long v[2] = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, ru.ru_maxrss};
        ssize_t w = write(fds[1], v, sizeof(v));
        _exit(w == (ssize_t)sizeof(v) ? 0 : 1);
    }
    close(fds[1]);
    long v[2] = {-1, -1};
    ck_assert_int_eq(read(fds[0], v, sizeof(v)), (ssize_t)sizeof(v));
    close(fds[0]);
    waitpid(pid, NULL, 0);
    ck_assert_msg(v[0] == 0, "%s: exit %ld", cmd, v[0]);
    return v[1];
}

START_TEST(export_in_constant_memory)
{
    char *bin = test_bin("auditrail");
    char *out = xasprintf("%s/big.count", dir);
    /* the same program doing almost nothing: its baseline */
    char *cmd = xasprintf("'%s' --url http://127.0.0.1:%u health >/dev/null", bin, port);
    long base = max_rss_kb(cmd);
    free(cmd);
    cmd = xasprintf("'%s' --url http://127.0.0.1:%u --token-file %s export --from 2026-12-01 "
                    "--to 2026-12-02 | wc -c >'%s'",
                    bin, port, f_auditor, out);
    long big = max_rss_kb(cmd);
    struct buf n = BUF_INIT;
    slurp(out, &n);
    long long bytes = atoll(n.p);
    ck_assert_msg(bytes > 80LL * 1024 * 1024, "the export was %lld bytes", bytes);
    /* ~90 MB went through; the CLI grew by less than 8 MiB over its baseline */
    ck_assert_msg(big < base + 8 * 1024, "export max RSS %ld KiB, baseline %ld KiB", big, base);
    buf_release(&n);
    free(cmd);
    free(out);
    free(bin);
}
END_TEST

/* ---- over TLS: the API on query.listen with a certificate, --cacert */

static char *tls_dir;

static void tls_setup(void)
{
    tls_dir = test_tmpdir("qcli-tls");
    char *cmd = xasprintf("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
                          "-addext subjectAltName=IP:127.0.0.1 -keyout '%s/key.pem' "
                          "-out '%s/cert.pem' >/dev/null 2>&1",
                          tls_dir, tls_dir);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    tls_port = probe_free_port();
    char *extra = xasprintf("  listen: 127.0.0.1:%u\n  tls_cert: %s/cert.pem\n"
                            "  tls_key: %s/key.pem\n",
                            tls_port, tls_dir, tls_dir);
    setup_with(extra);
    free(extra);
}

static void tls_teardown(void)
{
    teardown();
    test_rmtree(tls_dir);
    free(tls_dir);
}

START_TEST(tls_with_cacert)
{
    /* the URL of the TLS listener replaces the fixture's (the later --url wins) */
    struct cfx_run r = cli(
        "query --url https://127.0.0.1:%u --token-file %s --cacert %s/cert.pem " RANGE " --limit 3",
        tls_port, f_reader, tls_dir);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert_uint_eq(cfx_lines(r.out.p), 4);
    assert_summary(r.err.p, 3, "events");
    cfx_run_free(&r);
    /* without the CA the certificate is refused: unavailable, said once */
    r = cli("query --url https://127.0.0.1:%u --token-file %s " RANGE, tls_port, f_reader);
    ck_assert_int_eq(r.status, 4);
    ck_assert_uint_eq(cfx_lines(r.err.p), 1);
    ck_assert_str_eq(r.out.p, "");
    cfx_run_free(&r);
    /* export over TLS, the same bytes as over it with curl's own CA check */
    r = cli("export --url https://127.0.0.1:%u --token-file %s --cacert %s/cert.pem " RANGE
            " --actor alice",
            tls_port, f_auditor, tls_dir);
    ck_assert_msg(r.status == 0, "%s", r.err.p);
    ck_assert_uint_eq(cfx_lines(r.out.p), NA / 3);
    cfx_run_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_query");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, query_table_json_and_summary);
    tcase_add_test(tc, query_all_equals_export);
    tcase_add_test(tc, streams_stream_and_incidents);
    tcase_add_test(tc, exit_statuses);
    tcase_add_test(tc, unavailable_when_the_server_stops);
    suite_add_tcase(s, tc);
    TCase *tm = tcase_create("memory");
    tcase_add_checked_fixture(tm, big_setup, teardown);
    tcase_set_timeout(tm, 300);
    tcase_add_test(tm, export_in_constant_memory);
    suite_add_tcase(s, tm);
    TCase *tt = tcase_create("tls");
    tcase_add_checked_fixture(tt, tls_setup, tls_teardown);
    tcase_set_timeout(tt, 180);
    tcase_add_test(tt, tls_with_cacert);
    suite_add_tcase(s, tt);
    return test_run_suite(s);
}
