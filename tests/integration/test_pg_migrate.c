/* Migrations against the real stack: apply, re-apply is a no-op, concurrent
 * migrators, checksum mismatch, embedded SQL equals schemas/postgres, and
 * the schema reaches the replica. */
#include <pthread.h>

#include "tests/integration/storage_fixtures.h"

static const char *tables[] = {
    "events",           "streams", "kafka_offsets", "integrity_incidents", "maintenance_lease",
    "schema_migrations"};

START_TEST(apply_then_noop)
{
    char *ci = test_pg_fresh_db("mig_apply");
    char err[512];
    struct migrate_report rep;
    ck_assert_msg(migrate_run(ci, &rep, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(rep.applied, (int)migrate_embedded_count);
    ck_assert_int_eq(rep.already, 0);
    ck_assert_int_eq(rep.current_version, migrate_embedded[migrate_embedded_count - 1].version);

    PGconn *c = test_pg_connect(ci);
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        char sql[160];
        snprintf(sql, sizeof(sql), "SELECT to_regclass('auditrail.%s') IS NOT NULL", tables[i]);
        char *v = test_pg_scalar(c, sql);
        ck_assert_msg(v && strcmp(v, "t") == 0, "table %s missing", tables[i]);
        free(v);
    }
    /* events is range-partitioned on event_time with no default partition. */
    char *strat = test_pg_scalar(c, "SELECT partstrat::text || ':' || partdefid::text FROM "
                                    "pg_partitioned_table WHERE partrelid = "
                                    "'auditrail.events'::regclass");
    ck_assert_str_eq(strat, "r:0");
    free(strat);
    int64_t recorded = fx_int(c, "SELECT count(*) FROM auditrail.schema_migrations");
    ck_assert_int_eq(recorded, (int64_t)migrate_embedded_count);

    /* Second run: nothing applied, everything found. */
    ck_assert_msg(migrate_run(ci, &rep, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(rep.applied, 0);
    ck_assert_int_eq(rep.already, (int)migrate_embedded_count);
    ck_assert_int_eq(fx_int(c, "SELECT count(*) FROM auditrail.schema_migrations"), recorded);

    /* The replica has the schema once it has replayed. */
    char *rci = test_pg_replica_conninfo(ci);
    ck_assert(test_pg_replica_catch_up(ci, rci, 20000));
    PGconn *rc = test_pg_connect(rci);
    char *v = test_pg_scalar(rc, "SELECT count(*) FROM pg_tables WHERE schemaname = 'auditrail'");
    ck_assert_int_ge(atoi(v), 6);
    free(v);
    PQfinish(rc);
    free(rci);
    PQfinish(c);
    test_pg_drop_db(ci);
    free(ci);
}
END_TEST

struct mig_thread {
    const char *ci;
    int rc;
    struct migrate_report rep;
    char err[512];
};

static void *mig_run(void *arg)
{
    struct mig_thread *t = arg;
    t->rc = migrate_run(t->ci, &t->rep, t->err, sizeof(t->err));
    return NULL;
}

START_TEST(concurrent_migrators)
{
    char *ci = test_pg_fresh_db("mig_conc");
    enum { N = 4 };
    struct mig_thread t[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].ci = ci;
        ck_assert_int_eq(pthread_create(&th[i], NULL, mig_run, &t[i]), 0);
    }
    int applied = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(t[i].rc == 0, "migrator %d: %s", i, t[i].err);
        applied += t[i].rep.applied;
    }
    /* Exactly one of them applied each migration. */
    ck_assert_int_eq(applied, (int)migrate_embedded_count);
    PGconn *c = test_pg_connect(ci);
    ck_assert_int_eq(fx_int(c, "SELECT count(*) FROM auditrail.schema_migrations"),
                     (int64_t)migrate_embedded_count);
    PQfinish(c);
    test_pg_drop_db(ci);
    free(ci);
}
END_TEST

START_TEST(checksum_mismatch_detected)
{
    char *ci = fx_fresh_migrated("mig_sum");
    struct migration edited[64];
    size_t n = migrate_embedded_count;
    ck_assert_uint_le(n, 64);
    memcpy(edited, migrate_embedded, n * sizeof(*edited));
    const char *sql = "SELECT 1; -- edited after it was applied";
    edited[0].sql = sql;
    edited[0].len = strlen(sql);
    struct pg_connection *c = fx_conn(ci);
    char err[512] = "";
    struct migrate_report rep;
    ck_assert_int_eq(migrate_apply(c, edited, n, &rep, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "checksum mismatch") != NULL, "%s", err);
    /* The lock was released: the unedited set still applies (as a no-op). */
    ck_assert_msg(migrate_apply(c, migrate_embedded, n, &rep, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(rep.applied, 0);
    pg_conn_free(c);
    test_pg_drop_db(ci);
    free(ci);
}
END_TEST

START_TEST(failed_migration_rolls_back)
{
    char *ci = fx_fresh_migrated("mig_fail");
    size_t n = migrate_embedded_count;
    struct migration more[65];
    memcpy(more, migrate_embedded, n * sizeof(*more));
    const char *bad = "CREATE TABLE auditrail.half_done (x int); SELECT no_such_function();";
    more[n] = (struct migration){9999, "broken", bad, strlen(bad)};
    struct pg_connection *pc = fx_conn(ci);
    PGconn *c = test_pg_connect(ci);
    char err[512] = "";
    struct migrate_report rep;
    ck_assert_int_eq(migrate_apply(pc, more, n + 1, &rep, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "9999_broken") != NULL, "%s", err);
    char *v = test_pg_scalar(c, "SELECT to_regclass('auditrail.half_done') IS NULL");
    ck_assert_str_eq(v, "t");
    free(v);
    ck_assert_int_eq(fx_int(c, "SELECT count(*) FROM auditrail.schema_migrations "
                               "WHERE version = 9999"),
                     0);
    PQfinish(c);
    pg_conn_free(pc);
    test_pg_drop_db(ci);
    free(ci);
}
END_TEST

START_TEST(embedded_matches_directory)
{
    char *dir = xasprintf("%s/schemas/postgres", test_repo_root());
    struct migration *m = NULL;
    size_t n = 0;
    char err[256];
    ck_assert_msg(migrate_load_dir(dir, &m, &n, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(n, migrate_embedded_count);
    for (size_t i = 0; i < n; i++) {
        char a[65], b[65];
        migrate_checksum(&m[i], a);
        migrate_checksum(&migrate_embedded[i], b);
        ck_assert_int_eq(m[i].version, migrate_embedded[i].version);
        ck_assert_str_eq(m[i].name, migrate_embedded[i].name);
        ck_assert_str_eq(a, b);
    }
    migrate_list_free(m, n);
    ck_assert_int_eq(migrate_load_dir("/nonexistent/dir", &m, &n, err, sizeof(err)), -1);
    free(dir);
}
END_TEST

START_TEST(unreachable_server_fails)
{
    char err[512] = "";
    struct migrate_report rep;
    ck_assert_int_eq(migrate_run("host=127.0.0.1 port=1 connect_timeout=2", &rep, err, sizeof(err)),
                     -1);
    ck_assert_msg(strstr(err, "connect") != NULL, "%s", err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pg_migrate");
    TCase *tc = tcase_create("migrate");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, apply_then_noop);
    tcase_add_test(tc, concurrent_migrators);
    tcase_add_test(tc, checksum_mismatch_detected);
    tcase_add_test(tc, failed_migration_rolls_back);
    tcase_add_test(tc, embedded_matches_directory);
    tcase_add_test(tc, unreachable_server_fails);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
