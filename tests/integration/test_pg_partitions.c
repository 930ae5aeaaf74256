/* Partition premake and retention, and maintenance under its lease (Redis
 * with fencing tokens, advisory lock when Redis is down), on a fresh
 * migrated database per test. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aggregator/maintenance.h"
#include "aggregator/partitions.h"
#include "aggregator/pg_writer.h"
#include "common/timeutil.h"
#include "tests/integration/storage_fixtures.h"

static char *ci;
static PGconn *db;               /* the test's own queries */
static struct pg_connection *pc; /* what the partition code is given */

static void setup(void)
{
    ci = fx_fresh_migrated("parts");
    db = test_pg_connect(ci);
    test_pg_exec(db, "SET client_min_messages = warning");
    pc = fx_conn(ci);
}

static void teardown(void)
{
    pg_conn_free(pc);
    PQfinish(db);
    test_pg_drop_db(ci);
    free(ci);
}

static int64_t nparts(void)
{
    return fx_int(db, "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                      "'auditrail.events'::regclass");
}

static bool attached(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE "
             "i.inhparent = 'auditrail.events'::regclass AND c.relname = '%s'",
             name);
    return fx_int(db, sql) == 1;
}

static bool exists(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_class WHERE relname = '%s'", name);
    return fx_int(db, sql) == 1;
}

static char *unique_lease(void)
{
    return xasprintf("test:lease:%d:%llu", (int)getpid(), (unsigned long long)test_now_ms());
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t l = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* One row on the given day through the writer. */
static void put_row(int64_t t, unsigned stream)
{
    char err[512];
    struct pg_writer *w = pg_writer_new(ci, "g", NULL, err, sizeof(err));
    ck_assert_msg(w, "%s", err);
    struct batch b;
    batch_init(&b, "t");
    struct fx_chain c;
    fx_chain_init(&c, stream);
    fx_add_str(&b, &c, "old record", t, 0, 0);
    struct pg_write_stats st = {0};
    enum pg_status r = pg_writer_write(w, &b, &st, err, sizeof(err));
    ck_assert_msg(r == PG_OK, "%s: %s", pg_status_name(r), err);
    pg_write_stats_release(&st);
    batch_release(&b);
    pg_writer_free(w);
}

START_TEST(premake_days_ahead)
{
    struct part_cache c;
    part_cache_init(&c);
    char err[512];
    int created = -1;
    ck_assert_msg(part_premake(&c, pc, FX_T0 + 5, 7, NULL, NULL, &created, err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(created, 8); /* today and 7 days ahead */
    ck_assert_int_eq(nparts(), 8);
    ck_assert(attached("events_p20261126"));
    ck_assert(attached("events_p20261203"));
    ck_assert(!exists("events_p20261125"));
    ck_assert(!exists("events_p20261204"));
    ck_assert_int_eq(part_premake(&c, pc, FX_T0 + 5, 7, NULL, NULL, &created, err, sizeof(err)), 0);
    ck_assert_int_eq(created, 0);
    /* A fresh cache learns the existing ones from the catalog. */
    struct part_cache c2;
    part_cache_init(&c2);
    ck_assert_int_eq(part_cache_refresh(&c2, pc, err, sizeof(err)), 0);
    ck_assert_uint_eq(c2.n, 8);
    ck_assert_int_eq(c2.b[0].lo, FX_T0);
    ck_assert_int_eq(c2.b[7].hi, FX_T0 + 8 * FX_DAY_US);
    ck_assert_int_ge(part_cache_find(&c2, FX_T0 + 3 * FX_DAY_US), 0);
    part_cache_release(&c2);
    part_cache_release(&c);
}
END_TEST

START_TEST(retention_drops_only_old)
{
    struct part_cache c;
    part_cache_init(&c);
    char err[512];
    int n = 0;
    /* Days T0-10 .. T0. */
    ck_assert_int_eq(
        part_premake(&c, pc, FX_T0 - 10 * FX_DAY_US, 10, NULL, NULL, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(nparts(), 11);
    put_row(FX_T0 - 10 * FX_DAY_US + 5, 1);
    put_row(FX_T0 - 5 * FX_DAY_US, 2);
    /* Keep 5 days before today: partitions ending at or before T0-5d go. */
    ck_assert_msg(part_retention(&c, pc, FX_T0 + 3600000000LL, 5, false, 0, NULL, NULL, &n, NULL,
                                 err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(nparts(), 6);
    ck_assert(!exists("events_p20261116"));
    ck_assert(!exists("events_p20261120"));
    ck_assert(attached("events_p20261121")); /* T0-5d: its end is after the cutoff */
    ck_assert(attached("events_p20261126"));
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.events"), 1);
    /* Idempotent. */
    ck_assert_int_eq(
        part_retention(&c, pc, FX_T0, 5, false, 0, NULL, NULL, &n, NULL, err, sizeof(err)), 0);
    ck_assert_int_eq(n, 0);
    /* 0 = keep forever. */
    ck_assert_int_eq(part_retention(&c, pc, FX_T0 + 100 * FX_DAY_US, 0, false, 0, NULL, NULL, &n,
                                    NULL, err, sizeof(err)),
                     0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(nparts(), 6);
    part_cache_release(&c);
}
END_TEST

START_TEST(retention_keep_table_detaches)
{
    struct part_cache c;
    part_cache_init(&c);
    char err[512];
    int n = 0;
    ck_assert_int_eq(
        part_premake(&c, pc, FX_T0 - 3 * FX_DAY_US, 3, NULL, NULL, &n, err, sizeof(err)), 0);
    put_row(FX_T0 - 3 * FX_DAY_US + 7, 3);
    ck_assert_msg(
        part_retention(&c, pc, FX_T0, 1, true, 0, NULL, NULL, &n, NULL, err, sizeof(err)) == 0,
        "%s", err);
    ck_assert_int_eq(n, 2); /* T0-3d and T0-2d end by the cutoff (T0-1d); T0-1d ends after it */
    ck_assert(!exists("events_p20261123"));
    ck_assert(exists("events_p20261123_detached"));
    ck_assert(exists("events_p20261124_detached"));
    ck_assert(attached("events_p20261125"));
    ck_assert_int_eq(nparts(), 2);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.events"), 0);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.events_p20261123_detached"), 1);
    part_cache_release(&c);
}
END_TEST

static int deny(struct pg_connection *conn, void *ud, char *err, size_t errlen)
{
    (*(int *)ud)++;
    snprintf(err, errlen, "fenced");
    return -1;
}

START_TEST(fence_stops_ddl)
{
    struct part_cache c;
    part_cache_init(&c);
    char err[512];
    int n = 0, calls = 0;
    ck_assert_int_eq(part_premake(&c, pc, FX_T0, 3, deny, &calls, &n, err, sizeof(err)), -1);
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(nparts(), 0);
    ck_assert_int_eq(
        part_premake(&c, pc, FX_T0 - 9 * FX_DAY_US, 1, NULL, NULL, &n, err, sizeof(err)), 0);
    ck_assert_int_eq(
        part_retention(&c, pc, FX_T0, 2, false, 0, deny, &calls, &n, NULL, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "fenced");
    ck_assert_int_eq(nparts(), 2); /* nothing dropped */
    /* The connection is usable after the rollbacks. */
    ck_assert_int_eq(part_cache_refresh(&c, pc, err, sizeof(err)), 0);
    part_cache_release(&c);
}
END_TEST

static struct maintenance *maint(const char *lease, bool keep)
{
    struct maintenance_conf mc;
    maintenance_conf_defaults(&mc);
    ck_assert_int_eq(mc.premake_days, 7);
    ck_assert_int_eq(mc.retention_days, 2190);
    mc.retention_days = 30;
    mc.keep_table = keep;
    mc.holder = "test-holder";
    mc.lease_name = lease;
    return maintenance_new(ci, &mc);
}

START_TEST(maintenance_with_redis)
{
    char *lease = unique_lease();
    char err[512] = "";
    struct redis_store *r =
        redis_store_new(test_stack("STACK_REDIS_URL"), 60, 500, err, sizeof(err));
    ck_assert(r);
    /* An old partition that retention must drop. */
    struct part_cache c;
    part_cache_init(&c);
    int n;
    ck_assert_int_eq(
        part_premake(&c, pc, FX_T0 - 40 * FX_DAY_US, 0, NULL, NULL, &n, err, sizeof(err)), 0);
    part_cache_release(&c);

    struct maintenance *m = maint(lease, false);
    struct maintenance_result res;
    ck_assert_msg(maintenance_run_once(m, r, FX_T0, &res, err, sizeof(err)) == 0, "%s", err);
    ck_assert(res.ran);
    ck_assert_str_eq(res.lock, "redis");
    ck_assert_int_gt(res.token, 0);
    ck_assert_int_eq(res.created, 8);
    ck_assert_int_eq(res.dropped, 1);
    ck_assert(!exists("events_p20261017"));
    ck_assert_int_eq(nparts(), 8);
    char sql[128];
    snprintf(sql, sizeof(sql),
             "SELECT token FROM auditrail.maintenance_lease WHERE name = "
             "'partitions'");
    ck_assert_int_eq(fx_int(db, sql), res.token);

    /* Second round: same holder renews (same token), nothing to do. */
    int64_t tok = res.token;
    ck_assert_int_eq(maintenance_run_once(m, r, FX_T0, &res, err, sizeof(err)), 0);
    ck_assert(res.ran);
    ck_assert_int_eq(res.token, tok);
    ck_assert_int_eq(res.created + res.dropped, 0);

    /* Another instance while the lease is held: does not run. */
    struct maintenance_conf mc;
    maintenance_conf_defaults(&mc);
    mc.holder = "other";
    mc.lease_name = lease;
    struct maintenance *m2 = maintenance_new(ci, &mc);
    ck_assert_int_eq(maintenance_run_once(m2, r, FX_T0 + 2 * FX_DAY_US, &res, err, sizeof(err)), 0);
    ck_assert(!res.ran);
    ck_assert_int_eq(res.created, 0);
    ck_assert_int_eq(nparts(), 8);

    /* A stale holder: PostgreSQL has seen a newer token, so its DDL stops. */
    test_pg_exec(db, "UPDATE auditrail.maintenance_lease SET token = 1000000000000");
    ck_assert_int_eq(maintenance_run_once(m, r, FX_T0 + 2 * FX_DAY_US, &res, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "superseded") != NULL, "%s", err);
    ck_assert_int_eq(nparts(), 8); /* premake of the 2 new days was rolled back */

    redis_store_lease_release(r, lease, "test-holder");
    maintenance_free(m2);
    maintenance_free(m);
    redis_store_free(r);
    free(lease);
}
END_TEST

START_TEST(maintenance_redis_down_uses_advisory_lock)
{
    char url[64], err[512] = "";
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", closed_port());
    struct redis_store *r = redis_store_new(url, 60, 200, err, sizeof(err));
    ck_assert(r);
    char *lease = unique_lease();
    struct maintenance *m = maint(lease, false);
    struct maintenance_result res;
    ck_assert_msg(maintenance_run_once(m, r, FX_T0, &res, err, sizeof(err)) == 0, "%s", err);
    ck_assert(res.ran);
    ck_assert_str_eq(res.lock, "advisory");
    ck_assert_int_eq(res.created, 8);

    /* Without Redis at all, and with the advisory lock held elsewhere. */
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%" PRId64 ")", MAINTENANCE_LOCK_KEY);
    test_pg_exec(db, sql);
    ck_assert_int_eq(maintenance_run_once(m, NULL, FX_T0 + 3 * FX_DAY_US, &res, err, sizeof(err)),
                     0);
    ck_assert(!res.ran);
    ck_assert_int_eq(nparts(), 8);
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%" PRId64 ")", MAINTENANCE_LOCK_KEY);
    test_pg_exec(db, sql);
    ck_assert_int_eq(maintenance_run_once(m, NULL, FX_T0 + 3 * FX_DAY_US, &res, err, sizeof(err)),
                     0);
    ck_assert(res.ran);
    ck_assert_str_eq(res.lock, "advisory");
    ck_assert_int_eq(res.created, 3);
    maintenance_free(m);
    redis_store_free(r);
    free(lease);
}
END_TEST

START_TEST(maintenance_unreachable_pg)
{
    struct maintenance_conf mc;
    maintenance_conf_defaults(&mc);
    struct maintenance *m = maintenance_new("host=127.0.0.1 port=1 connect_timeout=2", &mc);
    struct maintenance_result res;
    char err[512] = "";
    ck_assert_int_eq(maintenance_run_once(m, NULL, FX_T0, &res, err, sizeof(err)), -1);
    ck_assert(!res.ran);
    ck_assert_msg(strstr(err, "connect") != NULL, "%s", err);
    maintenance_free(m);
    maintenance_free(NULL);
}
END_TEST

/* Issue 9 item 1: days at the edges of the calendar (year 0 with an offset
 * is year -1; 9999 with a negative offset is 10000) get partitions with
 * valid names and bounds, hold rows written by the writer, and retention
 * reads their names back. On the old names ("events_p-0011231") the CREATE
 * was a syntax error (42601, fatal). */
START_TEST(calendar_edge_days)
{
    static const int64_t y0 = INT64_C(-62167219200) * 1000000;
    static const int64_t y10000 = INT64_C(253402300800) * 1000000;
    const int64_t days[] = {y0 - FX_DAY_US, y0, y10000 - FX_DAY_US, y10000};
    struct part_cache c;
    part_cache_init(&c);
    char err[512];
    int created = 0;
    ck_assert_int_eq(pg_conn_exec(pc, "BEGIN", 0, NULL, NULL, err, sizeof(err)), PG_OK);
    enum pg_status st = part_ensure(&c, pc, days, 4, &created, err, sizeof(err));
    ck_assert_msg(st == PG_OK, "%s: %s", pg_status_name(st), err);
    ck_assert_int_eq(pg_conn_exec(pc, "COMMIT", 0, NULL, NULL, err, sizeof(err)), PG_OK);
    ck_assert_int_eq(created, 4);
    ck_assert(attached("events_pm00011231"));
    ck_assert(attached("events_p00000101"));
    ck_assert(attached("events_p99991231"));
    ck_assert(attached("events_p100000101"));
    /* the bounds are the days: a row of each lands in its own partition */
    for (size_t i = 0; i < 4; i++)
        put_row(days[i] + 3600 * INT64_C(1000000), (unsigned)i + 1);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.events_pm00011231"), 1);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.events_p100000101"), 1);
    /* retention parses the names back and drops the old ones */
    int n = 0;
    ck_assert_msg(
        part_retention(&c, pc, FX_T0, 5, false, 0, NULL, NULL, &n, NULL, err, sizeof(err)) == 0,
        "%s", err);
    ck_assert_int_eq(n, 2);
    ck_assert(!exists("events_pm00011231"));
    ck_assert(attached("events_p100000101"));
    part_cache_release(&c);
}
END_TEST

/* Issue 9 item 4: retention never drops a partition written within the
 * last maintenance period, even when its day is past the cutoff (a writer
 * with another window, a clock behind): the writer's note, checked after
 * DETACH. On the old code the partition and its fresh row were dropped. */
START_TEST(retention_keeps_recent_writes)
{
    struct part_cache c;
    part_cache_init(&c);
    char err[512];
    int n = 0, kept = -1;
    int64_t now = time_now_us();
    int64_t old_day = part_day_floor(now) - 40 * FX_DAY_US;
    ck_assert_int_eq(
        part_premake(&c, pc, old_day - 2 * FX_DAY_US, 2, NULL, NULL, &n, err, sizeof(err)), 0);
    put_row(old_day + 5, 7); /* written now, into a day 40 days back */
    char name[PART_NAME_LEN], sql[256];
    part_day_name(old_day, name);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM auditrail.partition_writes WHERE partition = '%s'", name);
    ck_assert_int_eq(fx_int(db, sql), 1);
    /* retention of 30 days, "written within the last 600 s" */
    ck_assert_msg(
        part_retention(&c, pc, now, 30, false, 600, NULL, NULL, &n, &kept, err, sizeof(err)) == 0,
        "%s", err);
    ck_assert_int_eq(kept, 1);
    ck_assert_int_eq(n, 2); /* the two unwritten days before it went */
    ck_assert(attached(name));
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM auditrail.%s", name);
    ck_assert_int_eq(fx_int(db, sql), 1);
    /* once the write is older than the window, it goes, and so does its note */
    test_pg_exec(db,
                 "UPDATE auditrail.partition_writes SET last_write = now() - interval '1 hour'");
    ck_assert_int_eq(
        part_retention(&c, pc, now, 30, false, 600, NULL, NULL, &n, &kept, err, sizeof(err)), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(kept, 0);
    ck_assert(!exists(name));
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.partition_writes"), 0);
    part_cache_release(&c);
}
END_TEST

/* The writer's note: only days before today, refreshed at most once a
 * minute (a fresh note is not rewritten: no writer queues on it). */
START_TEST(write_notes_past_days_only)
{
    int64_t now = time_now_us();
    int64_t today = part_day_floor(now);
    put_row(today + 1, 1);
    put_row(today - 3 * FX_DAY_US, 2);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.partition_writes"), 1);
    test_pg_exec(db, "UPDATE auditrail.partition_writes SET last_write = now() - interval '30 s'");
    int64_t before = fx_int(db, "SELECT extract(epoch FROM last_write)::bigint FROM "
                                "auditrail.partition_writes");
    put_row(today - 3 * FX_DAY_US + 1, 3);
    ck_assert_int_eq(fx_int(db, "SELECT extract(epoch FROM last_write)::bigint FROM "
                                "auditrail.partition_writes"),
                     before);
    test_pg_exec(db, "UPDATE auditrail.partition_writes SET last_write = now() - interval '90 s'");
    put_row(today - 3 * FX_DAY_US + 2, 4);
    ck_assert_int_ge(fx_int(db, "SELECT extract(epoch FROM now() - last_write)::bigint FROM "
                                "auditrail.partition_writes"),
                     0);
    ck_assert_int_le(fx_int(db, "SELECT extract(epoch FROM now() - last_write)::bigint FROM "
                                "auditrail.partition_writes"),
                     60);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pg_partitions");
    TCase *tc = tcase_create("partitions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, premake_days_ahead);
    tcase_add_test(tc, retention_drops_only_old);
    tcase_add_test(tc, retention_keep_table_detaches);
    tcase_add_test(tc, calendar_edge_days);
    tcase_add_test(tc, retention_keeps_recent_writes);
    tcase_add_test(tc, write_notes_past_days_only);
    tcase_add_test(tc, fence_stops_ddl);
    tcase_add_test(tc, maintenance_with_redis);
    tcase_add_test(tc, maintenance_redis_down_uses_advisory_lock);
    tcase_add_test(tc, maintenance_unreachable_pg);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
