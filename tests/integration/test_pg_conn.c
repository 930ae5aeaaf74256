/* pg_conn against the real stack: the client-side deadline on statements
 * and COPY (a backend frozen with SIGSTOP, a statement that sleeps), the
 * session limits every connection gets, COMMIT that is not a commit, and
 * error texts that carry no row data (issue 9 items 6, 8 and 13).
 * Freezes single backends of its own databases (never the postmaster). */
#include <signal.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/pg_sql.h"
#include "common/timeutil.h"
#include "tests/integration/storage_fixtures.h"

static char *ci;
static PGconn *db;
static struct pg_connection *c;
static pid_t frozen = -1; /* a backend stopped by the test: continued in teardown */

static void setup(void)
{
    ci = fx_fresh_migrated("pgconn");
    db = test_pg_connect(ci);
    c = NULL;
    frozen = -1;
}

static void teardown(void)
{
    if (frozen > 0)
        kill(frozen, SIGCONT);
    pg_conn_free(c);
    PQfinish(db);
    test_pg_drop_db(ci);
    free(ci);
}

static const char *const quiet[] = {"SET client_min_messages = warning", NULL};
static const struct pg_conn_opts opts = {.application_name = "auditrail-test-conn",
                                         .session = quiet};

/* A connection with limits l, open. */
static struct pg_connection *open_with(const struct pg_limits *l)
{
    struct pg_connection *n = pg_conn_new(ci, &opts);
    pg_conn_set_limits(n, l);
    char err[512];
    enum pg_status s = pg_conn_open(n, NULL, err, sizeof(err));
    ck_assert_msg(s == PG_OK, "pg_conn_open: %s", err);
    return n;
}

static pid_t backend_pid(struct pg_connection *n)
{
    PGresult *r = NULL;
    char err[512];
    ck_assert_int_eq(pg_conn_exec(n, "SELECT pg_backend_pid()", 0, NULL, &r, err, sizeof(err)),
                     PG_OK);
    pid_t pid = (pid_t)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    ck_assert_int_gt(pid, 0);
    return pid;
}

static void freeze(pid_t pid)
{
    frozen = pid;
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
}

/* Wait until no backend of ours runs sql_like (the server cancelled or
 * ended it). */
static bool await_gone(const char *sql_like, int timeout_ms)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
             "'auditrail-test-conn' AND state = 'active' AND query LIKE '%s'",
             sql_like);
    uint64_t end = time_mono_ms() + (uint64_t)timeout_ms;
    while (time_mono_ms() < end) {
        if (fx_int(db, sql) == 0)
            return true;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* A statement the server does not answer within the client deadline: the
 * call returns PG_TRANSIENT, the connection is dropped, the server-side
 * statement is cancelled, and the next open reconnects. */
START_TEST(deadline_on_a_slow_statement)
{
    struct pg_limits l = PG_LIMITS_DEFAULT;
    l.client_timeout_ms = 300;
    l.statement_timeout_ms = 0;
    c = open_with(&l);
    char err[512] = "";
    enum pg_status s = pg_conn_exec(c, "SELECT pg_sleep(60)", 0, NULL, NULL, err, sizeof(err));
    ck_assert_int_eq(s, PG_TRANSIENT);
    ck_assert_msg(strstr(err, "client deadline") != NULL, "%s", err);
    ck_assert(!pg_conn_ok(c));
    ck_assert_msg(await_gone("SELECT pg_sleep(60)", 10000), "the statement was not cancelled");
    bool fresh = false;
    ck_assert_int_eq(pg_conn_open(c, &fresh, err, sizeof(err)), PG_OK);
    ck_assert(fresh);
    ck_assert_int_eq(pg_conn_exec(c, SQL_PING, 0, NULL, NULL, err, sizeof(err)), PG_OK);
}
END_TEST

/* A frozen backend (SIGSTOP: its socket still takes our bytes, the kernel
 * acknowledges them, nothing answers) — the case the issue measured. Before
 * the deadline existed this call blocked until the process was continued. */
START_TEST(deadline_on_a_frozen_backend)
{
    struct pg_limits l = PG_LIMITS_DEFAULT;
    l.client_timeout_ms = 500;
    c = open_with(&l);
    freeze(backend_pid(c));
    char err[512] = "";
    ck_assert_int_eq(pg_conn_exec(c, SQL_PING, 0, NULL, NULL, err, sizeof(err)), PG_TRANSIENT);
    ck_assert_msg(strstr(err, "client deadline") != NULL, "%s", err);
    ck_assert(!pg_conn_ok(c));
    /* The other backends are not frozen: a new connection works. */
    ck_assert_int_eq(pg_conn_open(c, NULL, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_conn_exec(c, SQL_PING, 0, NULL, NULL, err, sizeof(err)), PG_OK);
}
END_TEST

/* COPY into a frozen backend: once the socket buffers are full the data
 * waits, and the deadline ends the COPY (put fails, end reports it). */
START_TEST(deadline_on_copy)
{
    struct pg_limits l = PG_LIMITS_DEFAULT;
    l.client_timeout_ms = 500;
    c = open_with(&l);
    char err[512] = "";
    ck_assert_int_eq(
        pg_conn_exec(c, "CREATE TEMP TABLE t (x text)", 0, NULL, NULL, err, sizeof(err)), PG_OK);
    pid_t pid = backend_pid(c);
    ck_assert_int_eq(pg_conn_copy_begin(c, "COPY t FROM STDIN", err, sizeof(err)), PG_OK);
    freeze(pid);
    size_t len = 1 << 20;
    char *chunk = xmalloc(len);
    memset(chunk, 'a', len - 1);
    chunk[len - 1] = '\n';
    int rc = 0;
    for (int i = 0; i < 256 && rc == 0; i++) /* far more than any socket buffer */
        rc = pg_conn_copy_put(c, chunk, len);
    free(chunk);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(pg_conn_copy_end(c, "client error", NULL, err, sizeof(err)), PG_TRANSIENT);
    ck_assert_msg(strstr(err, "client deadline") != NULL, "%s", err);
}
END_TEST

/* The session limits every connection gets (the writer's, the
 * maintenance's, the tools'). */
START_TEST(session_limits)
{
    struct pg_limits l = PG_LIMITS_DEFAULT;
    l.statement_timeout_ms = 12000;
    l.lock_timeout_ms = 3000;
    l.client_timeout_ms = 20000;
    c = open_with(&l);
    PGresult *r = NULL;
    char err[512];
    ck_assert_int_eq(pg_conn_exec(c,
                                  "SELECT current_setting('statement_timeout'),"
                                  " current_setting('lock_timeout'),"
                                  " current_setting('idle_in_transaction_session_timeout')",
                                  0, NULL, &r, err, sizeof(err)),
                     PG_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "12s");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "3s");
    ck_assert_str_eq(PQgetvalue(r, 0, 2), "20s");
    PQclear(r);
    /* The server's own statement_timeout: a clean, transient 57014. */
    l.statement_timeout_ms = 200;
    pg_conn_set_limits(c, &l);
    pg_conn_close(c);
    ck_assert_int_eq(pg_conn_open(c, NULL, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_conn_exec(c, "SELECT pg_sleep(5)", 0, NULL, NULL, err, sizeof(err)),
                     PG_TRANSIENT);
    ck_assert_msg(strstr(err, "[57014]") != NULL, "%s", err);
}
END_TEST

/* COMMIT of a transaction that had failed answers ROLLBACK, without an
 * error: it is not a commit. (pg_conn_exec(COMMIT), which the writer used
 * before, reports PG_OK for it.) */
START_TEST(commit_that_rolled_back)
{
    struct pg_limits l = PG_LIMITS_DEFAULT;
    c = open_with(&l);
    char err[512] = "";
    ck_assert_int_eq(pg_conn_exec(c, SQL_BEGIN, 0, NULL, NULL, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_conn_exec(c, "SELECT 1/0", 0, NULL, NULL, err, sizeof(err)), PG_DATA);
    ck_assert_int_eq(pg_conn_exec(c, SQL_COMMIT, 0, NULL, NULL, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_conn_exec(c, SQL_BEGIN, 0, NULL, NULL, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_conn_exec(c, "SELECT 1/0", 0, NULL, NULL, err, sizeof(err)), PG_DATA);
    ck_assert_int_eq(pg_conn_commit(c, err, sizeof(err)), PG_TRANSIENT);
    ck_assert_msg(strstr(err, "rolled") != NULL, "%s", err);
    /* A deferred constraint that fails at COMMIT. */
    test_pg_exec(db, "CREATE TABLE defer_t (x int);"
                     "CREATE FUNCTION defer_f() RETURNS trigger LANGUAGE plpgsql AS $$"
                     " BEGIN RAISE EXCEPTION 'refused SECRET' USING ERRCODE = '23514'; END $$;"
                     "CREATE CONSTRAINT TRIGGER defer_tr AFTER INSERT ON defer_t"
                     " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION defer_f()");
    ck_assert_int_eq(pg_conn_exec(c, SQL_BEGIN, 0, NULL, NULL, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(
        pg_conn_exec(c, "INSERT INTO defer_t VALUES (1)", 0, NULL, NULL, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(pg_conn_commit(c, err, sizeof(err)), PG_DATA);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM defer_t"), 0);
    ck_assert_int_eq(pg_conn_commit(c, err, sizeof(err)), PG_OK); /* outside: a warning only */
}
END_TEST

/* Errors carry the SQLSTATE and the primary message without the values it
 * quotes; never DETAIL or CONTEXT (which quote the row). */
START_TEST(terse_errors)
{
    struct pg_limits l = PG_LIMITS_DEFAULT;
    c = open_with(&l);
    test_pg_exec(db, "CREATE TABLE terse_t (k text PRIMARY KEY);"
                     "INSERT INTO terse_t VALUES ('SECRET-1')");
    const char *p[] = {"SECRET-1"};
    char err[512] = "";
    ck_assert_int_eq(
        pg_conn_exec(c, "INSERT INTO terse_t VALUES ($1)", 1, p, NULL, err, sizeof(err)), PG_DATA);
    ck_assert_msg(strstr(err, "[23505]") != NULL, "%s", err);
    ck_assert_msg(!strstr(err, "SECRET") && !strstr(err, "Key"), "%s", err);
    const char *j[] = {"{\"ssn\": SECRET-2"};
    ck_assert_int_eq(pg_conn_exec(c, "SELECT $1::jsonb", 1, j, NULL, err, sizeof(err)), PG_DATA);
    ck_assert_msg(strstr(err, "[22P02]") != NULL, "%s", err);
    ck_assert_msg(!strstr(err, "SECRET") && !strstr(err, "ssn"), "%s", err);
    const char *u[] = {"SECRET-3"};
    ck_assert_int_eq(pg_conn_exec(c, "SELECT $1::uuid", 1, u, NULL, err, sizeof(err)), PG_DATA);
    ck_assert_msg(!strstr(err, "SECRET"), "%s", err);
    /* A connection string that does not parse: libpq quotes a piece of it. */
    struct pg_connection *bad = pg_conn_new("host=127.0.0.1 password SECRET-4", &opts);
    ck_assert_int_eq(pg_conn_open(bad, NULL, err, sizeof(err)), PG_TRANSIENT);
    ck_assert_msg(!strstr(err, "SECRET"), "%s", err);
    pg_conn_free(bad);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pg_conn");
    TCase *tc = tcase_create("conn");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, deadline_on_a_slow_statement);
    tcase_add_test(tc, deadline_on_a_frozen_backend);
    tcase_add_test(tc, deadline_on_copy);
    tcase_add_test(tc, session_limits);
    tcase_add_test(tc, commit_that_rolled_back);
    tcase_add_test(tc, terse_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
