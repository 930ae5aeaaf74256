/* The hostile suite, PostgreSQL side (issue 9 items 1, 5, 6, 7, 8, 13):
 * cases per item against the real stack and real auditrail-aggregators.
 * Each case sends normal records on one chain around the hostile ones and
 * asserts: the process never exits; every record lands exactly once with
 * its chain intact (the independent records of tests/support/chain.h); a
 * hostile record is stored or dead-lettered with its class, never silently
 * gone; no record content shows in a log line, a DLQ header or an alert.
 *
 * STACK: alone case frozen (not for parallel runs): frozen_postgres stops
 * (SIGSTOP) every process of the stack's PostgreSQL primary for 40 s; any
 * other suite using the stack meanwhile would stall. The other cases (case
 * "rows") use their own databases and topics and run beside other suites.
 * Sleeps here are fault durations, never waits for a condition. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/dlq.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/chain.h"
#include "tests/support/configs.h"
#include "tests/support/hostile.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/proc.h"
#include "tests/support/store.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"
#include "tests/support/webhook.h"

#define WAIT_MS  90000
#define HOUR_US  INT64_C(3600000000)
#define METRIC_P "auditrail_aggregator_"
/* Planted in record data: must never leave the aggregator except as the
 * record itself (raw, attrs, the DLQ copy's value). */
#define MARKER "MARKER-7f3a9c-PATIENT-0042"

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* ---- the fixture: one aggregator, its database, topic and webhook ---- */

/* An aggregator of the fixture's group on port, with its config in
 * dir/<tag>.yaml and its log in dir/<tag>.log; env: NAME=value overrides
 * of its configuration (may be NULL: the postgres section is written by
 * configs.c). Started; *log (may be NULL) gets the log's path. */
/* An aggregator of the fixture's database and topics, started with verb
 * (NULL: it runs) and env; its log path in *log when asked. */
static struct proc *hp_aggregator_verb(struct hfx *x, const char *tag, unsigned port,
                                       const char *const *env, char **log, const char *verb)
{
    char *alerts = xasprintf("http://127.0.0.1:%u/api/v2/alerts", webhook_port(x->hook));
    char *path = xasprintf("%s/%s.yaml", x->dir, tag);
    char *logp = xasprintf("%s/%s.log", x->dir, tag);
    struct configs_aggregator c = {
        .brokers = x->brokers,
        .topic = x->topic,
        .group = x->topic,
        .dlq_topic = x->dlq,
        .postgres = x->db,
        .http_port = port,
        .alerts_url = alerts,
    };
    char *cfg = configs_write_aggregator(path, &c);
    char *bin = test_bin("auditrail-aggregator");
    const char *argv[] = {bin, "--config", cfg, verb, NULL};
    struct proc *p = proc_spawn(tag, argv, env, logp);
    free(bin);
    free(cfg);
    free(path);
    free(alerts);
    if (log)
        *log = logp;
    else
        free(logp);
    return p;
}

static struct proc *hp_aggregator(struct hfx *x, const char *tag, unsigned port,
                                  const char *const *env, char **log)
{
    return hp_aggregator_verb(x, tag, port, env, log, NULL);
}

static void hp_init_parts(struct hfx *x, const char *name, const char *const *env, int partitions)
{
    hfx_init(x, name, partitions, "hostile-pg-dlq", 0, WAIT_MS);
    x->aggr = hp_aggregator(x, "aggregator", x->port, env, NULL);
    ck_assert_msg(probe_wait_ready(x->port, WAIT_MS), "aggregator not ready (log %s)", x->log);
}

static void hp_init(struct hfx *x, const char *name, const char *const *env)
{
    hp_init_parts(x, name, env, 1);
}

/* The next record of the chain with line, and fields.<field> = value in
 * its envelope (fields are not covered by the hash). */
static void hp_next_with_field(struct hfx *x, const char *line, const char *field,
                               const char *value, struct trec *r)
{
    tchain_next(&x->chain, line, strlen(line), x->t_us + (int64_t)x->chain.seq, r);
    if (!field)
        return;
    json_error_t e;
    json_t *o = json_loads(r->json, 0, &e);
    ck_assert_ptr_nonnull(o);
    json_object_set_new(json_object_get(o, "fields"), field, json_string(value));
    free(r->json);
    r->json = json_dumps(o, JSON_COMPACT);
    r->json_len = strlen(r->json);
    json_decref(o);
}

/* Nothing of the record data planted with MARKER in the log, in a DLQ
 * header, or in an alert. */
static void assert_no_marker(struct hfx *x)
{
    size_t len = 0;
    uint8_t *log = test_read_file(x->log, &len);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(!memmem(log, len, MARKER, strlen(MARKER)), "the marker is in the log %s", x->log);
    free(log);
    struct tk_msgs m = {0};
    tk_read_topic(x->brokers, x->dlq, &m);
    static const char *const hdrs[] = {DLQ_H_ERROR, DLQ_H_REASON, DLQ_H_TOPIC, DLQ_H_PARTITION,
                                       DLQ_H_OFFSET};
    for (size_t i = 0; i < m.n; i++)
        for (size_t h = 0; h < sizeof(hdrs) / sizeof(hdrs[0]); h++) {
            char *v = tk_msg_header(&m.v[i], hdrs[h]);
            ck_assert_msg(!v || !strstr(v, MARKER), "the marker is in DLQ header %s: %s", hdrs[h],
                          v);
            free(v);
        }
    tk_msgs_release(&m);
}

/* The end of every case: everything handled, the records exactly once with
 * their chains, the process alive until a clean stop, no marker out. */
static void hp_finish(struct hfx *x)
{
    hfx_finish(x);
    assert_no_marker(x);
}

/* ---- freezing the stack's PostgreSQL primary ---------------------------- */

/* The primary's postmaster and its children, frozen together; a guardian
 * process continues them when the test lets go of it, or when the test
 * process dies in any way (its end of a pipe closes), so a failed or killed
 * test never leaves the stack frozen. */
struct freeze {
    pid_t pids[256];
    size_t n;
    pid_t guardian;
    int pipe_w;
};

static pid_t postmaster_pid(void)
{
    char *path = xasprintf("%s/pg-primary/postmaster.pid", test_stack("STACK_DIR"));
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    long pid = 0;
    ck_assert_int_eq(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    free(path);
    ck_assert_int_gt(pid, 1);
    return (pid_t)pid;
}

/* The children of parent (from /proc). */
static void children_of(pid_t parent, struct freeze *fz)
{
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && fz->n < sizeof(fz->pids) / sizeof(fz->pids[0])) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')'); /* after "(comm)": " S ppid" */
        long ppid = 0;
        if (rp && sscanf(rp + 2, "%*c %ld", &ppid) == 1 && ppid == parent)
            fz->pids[fz->n++] = (pid_t)pid;
    }
    closedir(d);
}

/* SIGCONT the postmaster and every child it has now. */
static void thaw_all(pid_t postmaster)
{
    kill(postmaster, SIGCONT);
    struct freeze now = {.n = 0};
    children_of(postmaster, &now);
    for (size_t i = 0; i < now.n; i++)
        kill(now.pids[i], SIGCONT);
}

static void freeze_stop(struct freeze *fz)
{
    memset(fz, 0, sizeof(*fz));
    pid_t pm = postmaster_pid();
    int p[2];
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0); /* no program started later holds it */
    fz->guardian = fork();
    ck_assert_int_ge(fz->guardian, 0);
    if (fz->guardian == 0) {
        /* Its own session: a kill of the test's process group (a runner's
         * timeout) ends the test, closes the pipe and leaves this one to
         * thaw. */
        setsid();
        close(p[1]);
        char c;
        while (read(p[0], &c, 1) != 0) /* EOF: thaw, or the test is gone */
            ;
        thaw_all(pm);
        _exit(0);
    }
    close(p[0]);
    fz->pipe_w = p[1];
    /* The postmaster first: it starts no new child meanwhile. A backend
     * may still exit between the listing and its signal. */
    fz->pids[fz->n++] = pm;
    ck_assert_int_eq(kill(pm, SIGSTOP), 0);
    children_of(pm, fz);
    for (size_t i = 1; i < fz->n; i++)
        ck_assert_msg(kill(fz->pids[i], SIGSTOP) == 0 || errno == ESRCH, "SIGSTOP %d: %s",
                      (int)fz->pids[i], strerror(errno));
}

static void freeze_thaw(struct freeze *fz)
{
    if (fz->pipe_w <= 0)
        return;
    close(fz->pipe_w);
    fz->pipe_w = -1;
    waitpid(fz->guardian, NULL, 0);
    thaw_all(fz->pids[0]); /* and once more ourselves */
}

static struct freeze the_freeze;

/* Checked teardown (the test's process, after a failed assertion too):
 * thaw at once rather than when the process exits. */
static void thaw_teardown(void)
{
    freeze_thaw(&the_freeze);
}

/* ---- item 6: a hung PostgreSQL ------------------------------------------ */

struct ready_probe {
    unsigned port;
    char *body;
};

static bool stalled_reason(void *ud)
{
    struct ready_probe *rp = ud;
    free(rp->body);
    rp->body = NULL;
    long st = probe_http_get(rp->port, "/readyz", &rp->body);
    return st == 503 && rp->body && strstr(rp->body, "PostgreSQL write in flight");
}

/* The measurement: every PostgreSQL process stopped (SIGSTOP) for
 * 40 s while records flow. A frozen server still acknowledges TCP, so the
 * writer saw nothing wrong: /readyz stayed 200 throughout, the consumer
 * stopped polling and was expelled from the group. Now the client's
 * deadline ends the write, /readyz says why within write_stall_ms, an alert
 * fires, the consumer keeps polling (no rebalance), and after the thaw
 * everything lands exactly once. */
START_TEST(frozen_postgres)
{
    static const char *const env[] = {"AUDITRAIL_POSTGRES_WRITE_STALL_MS=3000",
                                      "AUDITRAIL_POSTGRES_CLIENT_TIMEOUT_MS=8000",
                                      "AUDITRAIL_POSTGRES_STATEMENT_TIMEOUT_MS=6000",
                                      "AUDITRAIL_PARTITIONS_MAINTENANCE_INTERVAL_S=86400", NULL};
    struct hfx x;
    hp_init(&x, "hostile_frozen", env);
    hfx_normal(&x, 50);
    ck_assert(store_wait_rows(x.db, 50, WAIT_MS));
    double rebalances = hfx_metric(&x, METRIC_P "rebalances_total");

    freeze_stop(&the_freeze);
    uint64_t frozen_at = test_now_ms();
    hfx_normal(&x, 10); /* a batch in flight when the server froze */
    struct ready_probe rp = {x.port, NULL};
    ck_assert_msg(test_wait_until(stalled_reason, &rp, 20000),
                  "/readyz did not report the stalled write (last: %s)",
                  rp.body ? rp.body : "no answer");
    free(rp.body);
    ck_assert_msg(webhook_wait(x.hook, "AuditrailWriteStalled", 20000),
                  "no AuditrailWriteStalled alert");
    /* Records keep coming for the rest of the 40 s; the process stays in
     * the group (no rebalance: librdkafka expels a consumer that stops
     * polling for max.poll.interval.ms, 10 s here). */
    while (test_now_ms() - frozen_at < 40000) {
        hfx_normal(&x, 5);
        ck_assert_double_eq(hfx_metric(&x, METRIC_P "assigned_partitions"), 1);
        ck_assert_double_eq(hfx_metric(&x, METRIC_P "rebalances_total"), rebalances);
        hfx_assert_alive(&x);
        sleep_ms(2000);
    }
    freeze_thaw(&the_freeze);

    ck_assert_msg(store_wait_rows(x.db, (long long)x.want.n, WAIT_MS),
                  "records did not land after the thaw (log %s)", x.log);
    ck_assert(probe_wait_ready(x.port, WAIT_MS));
    ck_assert_double_eq(hfx_metric(&x, METRIC_P "rebalances_total"), rebalances);
    ck_assert_double_ge(hfx_metric(&x, METRIC_P "batch_writes_total{result=\"transient\"}"), 1);
    hp_finish(&x);
    hfx_release(&x);
}
END_TEST

/* A session holding the day partition of the fixture's records in SHARE
 * mode (open transaction): writes into it wait, reads and the other
 * members' start (statements prepared on auditrail.*) do not. */
static PGconn *lock_day_partition(struct hfx *x)
{
    char day[16];
    time_t secs = (time_t)(x->t_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(day, sizeof(day), "%Y%m%d", &tm);
    char *sql = xasprintf("BEGIN; LOCK TABLE auditrail.events_p%s IN SHARE MODE", day);
    PGconn *lock = test_pg_connect(x->db);
    test_pg_exec(lock, sql);
    free(sql);
    return lock;
}

/* A rebalance while a write hangs (a lock held on the day's partition, no
 * lock timeout): the revocation waited for the writer without
 * bound, inside librdkafka's poll, so the member stopped polling and the
 * group could not rebalance with it. Now it waits 5 s, abandons the batch
 * (the write is left to finish: its result is only accounted) and the
 * group rebalances at once, both members each with a partition, while the
 * write still hangs; once the lock goes, everything lands exactly once. */
START_TEST(revocation_during_stalled_write)
{
    static const char *const env[] = {"AUDITRAIL_POSTGRES_LOCK_TIMEOUT_MS=0",
                                      "AUDITRAIL_POSTGRES_STATEMENT_TIMEOUT_MS=240000",
                                      "AUDITRAIL_POSTGRES_CLIENT_TIMEOUT_MS=250000",
                                      "AUDITRAIL_POSTGRES_WRITE_STALL_MS=2000", NULL};
    struct hfx x;
    hp_init_parts(&x, "hostile_revoke", env, 2);
    hfx_normal(&x, 20);
    ck_assert(store_wait_rows(x.db, 20, WAIT_MS));

    PGconn *lock = lock_day_partition(&x);
    hfx_normal(&x, 10);
    struct ready_probe rp = {x.port, NULL};
    ck_assert_msg(test_wait_until(stalled_reason, &rp, WAIT_MS), "no write in flight");
    free(rp.body);

    unsigned port2 = probe_free_port();
    char *log2 = NULL;
    struct proc *second = hp_aggregator(&x, "second", port2, env, &log2);
    /* The group rebalances while the lock is still held. */
    ck_assert_msg(probe_wait_metric_range(port2, METRIC_P "assigned_partitions", 1, 1, WAIT_MS),
                  "the second member got no partition (logs %s, %s)", x.log, log2);
    ck_assert_msg(probe_wait_metric_range(x.port, METRIC_P "assigned_partitions", 1, 1, WAIT_MS),
                  "the first member did not keep one partition (log %s)", x.log);
    ck_assert_int_eq(test_pg_int(x.db, "SELECT count(*) FROM auditrail.events"), 20);
    hfx_assert_alive(&x);
    test_pg_exec(lock, "COMMIT");
    PQfinish(lock);
    hfx_normal(&x, 10);
    hfx_drained(&x);
    int st = 0;
    ck_assert_msg(proc_alive(second, &st), "the second member exited (log %s)", log2);
    ck_assert_int_eq(proc_stop(second, 30000), 0);
    proc_free(second);
    free(log2);
    hp_finish(&x);
    hfx_release(&x);
}
END_TEST

/* ---- item 5: long indexed fields ---------------------------------------- */

/* A 3 KB resource (a signed URL): PostgreSQL refused the row (54000: index
 * row size exceeds the btree maximum), the record went to the DLQ and left
 * a gap in its stream. Now it is stored, the column cut to 512 bytes and
 * marked, the record whole in raw. */
START_TEST(long_field_stored)
{
    struct hfx x;
    hp_init(&x, "hostile_long", NULL);
    hfx_normal(&x, 5);
    char url[3100];
    int n = snprintf(url, sizeof(url), "https://files.example/%s?sig=", MARKER);
    FILE *f = fopen("/dev/urandom", "r");
    ck_assert_ptr_nonnull(f);
    while (n < 3000)
        url[n++] = "0123456789abcdef"[fgetc(f) & 15];
    fclose(f);
    url[n] = '\0';
    char *line = xasprintf("{\"actor\":\"dr.long\",\"resource\":\"%s\"}", url);
    struct trec r;
    hp_next_with_field(&x, line, "resource", url, &r);
    hfx_send(&x, &r);
    free(line);
    hfx_normal(&x, 5);
    hfx_drained(&x);
    ck_assert_msg(hfx_metric(&x, METRIC_P "dlq_messages_total") == 0,
                  "the record was dead-lettered (log %s)", x.log);
    store_assert_records(x.db, &x.want);
    ck_assert_int_eq(
        test_pg_int(x.db, "SELECT count(*) FROM auditrail.events WHERE fields_cut = '{resource}'"
                          " AND octet_length(resource) = 512"),
        1);
    ck_assert_double_eq(hfx_metric(&x, METRIC_P "fields_cut_total"), 1);
    hp_finish(&x);
    hfx_release(&x);
}
END_TEST

/* ---- item 7: out of shared memory, and other resource errors ------------ */

/* A test-only trigger that makes the server refuse, like an exhausted lock
 * table does (53200 out of shared memory), any transaction storing more
 * than 3 rows, and, always, a row whose record holds STUCK while the
 * setting hostile.stuck is on. */
static void resource_trigger(const char *db)
{
    PGconn *c = test_pg_connect(db);
    test_pg_exec(c, "CREATE FUNCTION public.scarce() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " DECLARE n int := coalesce(nullif(current_setting('hostile.rows', true), ''),"
                    "  '0')::int + 1;"
                    " BEGIN PERFORM set_config('hostile.rows', n::text, true);"
                    "  IF n > 3 OR (position(convert_to('STUCK', 'UTF8') IN NEW.raw) > 0 AND"
                    "   EXISTS (SELECT 1 FROM public.stuck)) THEN"
                    "   RAISE EXCEPTION 'out of shared memory' USING ERRCODE = '53200',"
                    "    HINT = 'You might need to increase max_locks_per_transaction.';"
                    "  END IF; RETURN NEW; END $$;"
                    "CREATE TABLE public.stuck (on_ bool);"
                    "CREATE TRIGGER scarce BEFORE INSERT ON auditrail.events FOR EACH ROW"
                    " EXECUTE FUNCTION public.scarce()");
    PQfinish(c);
}

/* A batch the server cannot take whole (53200 was transient: the same batch
 * retried forever, nothing stored): written in smaller parts, each
 * committed, none dead-lettered. */
START_TEST(resource_error_shrinks_batch)
{
    struct hfx x;
    hp_init(&x, "hostile_scarce", NULL);
    resource_trigger(x.db);
    hfx_normal(&x, 40);
    ck_assert_msg(store_wait_rows(x.db, 40, WAIT_MS), "not stored (log %s)", x.log);
    ck_assert_double_ge(hfx_metric(&x, METRIC_P "batch_writes_total{result=\"resource\"}"), 1);
    ck_assert_double_eq(hfx_metric(&x, METRIC_P "dlq_messages_total"), 0);
    hp_finish(&x);
    hfx_release(&x);
}
END_TEST

/* A record the server refuses even alone for lack of resources: it is not
 * dead-lettered (the data is not at fault); it waits, with what follows it,
 * retried with backoff, and an alert says so; once the server can take it,
 * it lands in order, the chain without a gap. */
START_TEST(resource_error_single_record_waits)
{
    struct hfx x;
    hp_init(&x, "hostile_stuck", NULL);
    resource_trigger(x.db);
    PGconn *c = test_pg_connect(x.db);
    test_pg_exec(c, "INSERT INTO public.stuck VALUES (true)");
    hfx_normal(&x, 2);
    ck_assert(store_wait_rows(x.db, 2, WAIT_MS));
    struct trec r;
    hp_next_with_field(&x, "{\"actor\":\"dr.stuck\",\"note\":\"STUCK\"}", NULL, NULL, &r);
    hfx_send(&x, &r);
    hfx_normal(&x, 2);
    ck_assert_msg(webhook_wait(x.hook, "AuditrailWriteResources", WAIT_MS),
                  "no AuditrailWriteResources alert (log %s)", x.log);
    ck_assert_int_eq(store_rows(x.db), 2);
    ck_assert_double_eq(hfx_metric(&x, METRIC_P "dlq_messages_total"), 0);
    hfx_assert_alive(&x);
    test_pg_exec(c, "DELETE FROM public.stuck"); /* the server has room again */
    PQfinish(c);
    ck_assert_msg(store_wait_rows(x.db, 5, WAIT_MS), "the waiting record did not land");
    hp_finish(&x);
    hfx_release(&x);
}
END_TEST

/* ---- item 7: a backfill over 400 days ----------------------------------- */

/* Records each transaction at its COMMIT (deferred constraint triggers on
 * the offsets and streams rows the writer writes): how many locks it holds.
 * Test-only objects in the case's own database. */
static void record_locks(const char *db)
{
    PGconn *c = test_pg_connect(db);
    test_pg_exec(c, "CREATE TABLE public.tx_locks (n int);"
                    "CREATE FUNCTION public.tx_locks_f() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN INSERT INTO public.tx_locks SELECT count(*) FROM pg_locks"
                    "  WHERE pid = pg_backend_pid(); RETURN NULL; END $$;"
                    "CREATE CONSTRAINT TRIGGER tx_locks_s AFTER INSERT OR UPDATE ON"
                    " auditrail.streams DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                    " EXECUTE FUNCTION public.tx_locks_f();"
                    "CREATE CONSTRAINT TRIGGER tx_locks_o AFTER INSERT OR UPDATE ON"
                    " auditrail.kafka_offsets DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                    " EXECUTE FUNCTION public.tx_locks_f()");
    PQfinish(c);
}

/* One stream backfilled over 400 days, sent at once (a few batches of
 * many days each): one transaction created and locked a partition per
 * day with its indexes (about 14 locks a day, where the lock table holds
 * 64 per connection), and out of shared memory was retried forever. Now a
 * transaction writes at most partitions.max_days_per_batch days (8): its
 * locks stay bounded and everything lands, in order, never in the DLQ. */
START_TEST(backfill_400_days)
{
    enum { DAYS = 400 };
    const int64_t day_us = 24 * HOUR_US;
    struct hfx x;
    hp_init(&x, "hostile_backfill", NULL);
    record_locks(x.db);
    hfx_normal(&x, 5);
    struct tchain back;
    tchain_init(&back, "hostile_backfill_400");
    int64_t t0 = time_now_us() - (int64_t)(DAYS + 1) * day_us;
    for (int i = 0; i < DAYS; i++) {
        char line[96];
        snprintf(line, sizeof(line), "{\"actor\":\"dr.backfill\",\"action\":\"read\",\"n\":%d}", i);
        struct trec r;
        tchain_next(&back, line, strlen(line), t0 + (int64_t)i * day_us, &r);
        hfx_send(&x, &r);
    }
    tk_flush(x.prod);
    hfx_normal(&x, 5);
    ck_assert_msg(store_wait_rows(x.db, DAYS + 10, WAIT_MS), "not stored (log %s)", x.log);
    ck_assert_int_ge(test_pg_int(x.db, "SELECT count(*) FROM pg_inherits"
                                       " WHERE inhparent = 'auditrail.events'::regclass"),
                     DAYS);
    int peak = test_pg_int(x.db, "SELECT max(n) FROM public.tx_locks");
    ck_assert_msg(peak > 0 && peak <= 16 * 8 + 32, "a transaction held %d locks", peak);
    ck_assert_msg(hfx_metric(&x, METRIC_P "dlq_messages_total") == 0,
                  "records dead-lettered (log %s)", x.log);
    hp_finish(&x);
    hfx_release(&x);
}
END_TEST

/* ---- item 8: one new stream through two partitions at once ------------- */

struct lock_waiters {
    const char *db;
    long long n;
};

/* Sessions of the case's database waiting for a lock (the writers). */
static bool lock_waiters(void *ud)
{
    struct lock_waiters *w = ud;
    return test_pg_int(w->db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                              " 'Lock' AND datname = current_database()") >= w->n;
}

/* The ten first records of the stream "hostile_race_new" read at t_us
 * (+ seq µs), produced to partition part. */
static void race_copy(struct hfx *x, int32_t part, int64_t t_us, struct trecs *out)
{
    struct tchain c;
    tchain_init(&c, "hostile_race_new");
    for (int i = 0; i < 10; i++) {
        char line[96];
        snprintf(line, sizeof(line), "{\"actor\":\"dr.race\",\"action\":\"read\",\"n\":%d}", i);
        struct trec r;
        tchain_next(&c, line, strlen(line), t_us + i, &r);
        tk_produce(x->prod, x->topic, part, r.stream, strlen(r.stream), r.json, r.json_len, NULL);
        trecs_push(out, &r);
    }
}

/* One new stream arriving through both partitions of the topic (a re-send
 * with a new read time, so another primary key), each partition with its
 * own aggregator of the group. New streams were not locked: both writers
 * found no stored state and both stored every record (20 rows, a chain
 * with every seq twice). Now the new stream's row is inserted and locked
 * first: the second writer waits for the first and drops the records as
 * re-sends. Both writers are held at their COPY (a SHARE lock on the day's
 * partition) until both are in, so they really overlap. */
START_TEST(new_stream_two_writers)
{
    static const char *const env[] = {"AUDITRAIL_POSTGRES_LOCK_TIMEOUT_MS=0", NULL};
    struct hfx x;
    hp_init_parts(&x, "hostile_race", env, 2);
    unsigned port2 = probe_free_port();
    char *log2 = NULL;
    struct proc *second = hp_aggregator(&x, "second", port2, env, &log2);
    ck_assert_msg(probe_wait_metric_range(port2, METRIC_P "assigned_partitions", 1, 1, WAIT_MS),
                  "the second member got no partition (logs %s, %s)", x.log, log2);
    ck_assert_msg(probe_wait_metric_range(x.port, METRIC_P "assigned_partitions", 1, 1, WAIT_MS),
                  "the first member did not keep one partition (log %s)", x.log);
    hfx_normal(&x, 5); /* the day's partition exists */
    ck_assert(store_wait_rows(x.db, 5, WAIT_MS));

    PGconn *lock = lock_day_partition(&x);
    struct trecs a = {0}, b = {0};
    int64_t ta = x.t_us + 1000, tb = x.t_us + 1000000;
    race_copy(&x, 0, ta, &a);
    race_copy(&x, 1, tb, &b);
    tk_flush(x.prod);
    struct lock_waiters w = {x.db, 2};
    ck_assert_msg(test_wait_until(lock_waiters, &w, WAIT_MS), "the two writers did not meet");
    test_pg_exec(lock, "COMMIT");
    PQfinish(lock);

    hfx_drained(&x);
    char *q =
        xasprintf("SELECT count(*) FROM auditrail.events WHERE stream_id = '%s'", a.v[0].stream);
    ck_assert_int_eq(test_pg_int(x.db, q), 10);
    free(q);
    q = xasprintf("SELECT last_seq FROM auditrail.streams WHERE stream_id = '%s'", a.v[0].stream);
    ck_assert_int_eq(test_pg_int(x.db, q), 9);
    free(q);
    /* Whichever copy won, all of it: its records must be stored exactly. */
    q = xasprintf("SELECT (extract(epoch FROM min(event_time)) * 1000000)::bigint FROM"
                  " auditrail.events WHERE stream_id = '%s'",
                  a.v[0].stream);
    long long first_us = test_pg_int(x.db, q);
    free(q);
    ck_assert_msg(first_us == ta || first_us == tb, "race rows at %lld", first_us);
    struct trecs *won = first_us == ta ? &a : &b;
    for (size_t i = 0; i < won->n; i++)
        trecs_push(&x.want, &won->v[i]);
    trecs_release(&a);
    trecs_release(&b);
    ck_assert_double_ge(
        hfx_metric(&x, METRIC_P "duplicates_total{layer=\"stream\"}") +
            probe_metric_value(port2, METRIC_P "duplicates_total{layer=\"stream\"}"),
        10);
    int st = 0;
    ck_assert_msg(proc_alive(second, &st), "the second member exited (log %s)", log2);
    ck_assert_int_eq(proc_stop(second, 30000), 0);
    proc_free(second);
    free(log2);
    hp_finish(&x);
    hfx_release(&x);
}
END_TEST

/* ---- items 1 and 13: a row refused by PostgreSQL, quoting its content --- */

/* An operator's trigger refuses a row, quoting the record in the message
 * and its DETAIL (as CHECK constraints quote the failing row): the record
 * goes to the DLQ (class storage) and the rest is stored; the error that
 * leaves the process names the SQLSTATE, never the record. */
/* An operator's trigger that refuses every record holding REFUSE, quoting
 * it in the message and its DETAIL (as CHECK constraints quote the row). */
static void refuse_trigger(const char *db)
{
    PGconn *c = test_pg_connect(db);
    test_pg_exec(c, "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN IF position(convert_to('REFUSE', 'UTF8') IN NEW.raw) > 0 THEN"
                    "  RAISE EXCEPTION 'record refused: \"%\"', convert_from(NEW.raw, 'UTF8')"
                    "   USING ERRCODE = '22023', DETAIL = convert_from(NEW.raw, 'UTF8');"
                    " END IF; RETURN NEW; END $$;"
                    "CREATE TRIGGER refuse BEFORE INSERT ON auditrail.events FOR EACH ROW"
                    " EXECUTE FUNCTION public.refuse()");
    PQfinish(c);
}

/* The only message of the DLQ topic: a storage one naming the SQLSTATE. */
static void assert_one_storage_dlq(struct hfx *x)
{
    struct tk_msgs m = {0};
    tk_read_topic(x->brokers, x->dlq, &m);
    ck_assert_uint_eq(m.n, 1);
    char *cls = tk_msg_header(&m.v[0], DLQ_H_REASON), *err = tk_msg_header(&m.v[0], DLQ_H_ERROR);
    ck_assert_str_eq(cls, "storage");
    ck_assert_msg(err && strstr(err, "[22023]"), "%s", err);
    free(cls);
    free(err);
    tk_msgs_release(&m);
}

START_TEST(refused_row_text_scrubbed)
{
    struct hfx x;
    hp_init(&x, "hostile_refused", NULL);
    refuse_trigger(x.db);
    hfx_normal(&x, 3);
    struct trec r;
    hp_next_with_field(&x, "{\"actor\":\"dr.refused\",\"note\":\"REFUSE " MARKER "\"}", NULL, NULL,
                       &r);
    tk_produce(x.prod, x.topic, 0, r.stream, strlen(r.stream), r.json, r.json_len, NULL);
    trec_release(&r);
    /* A refused record leaves a gap: the rest goes on another chain. */
    tchain_init(&x.chain, "hostile_refused_after");
    hfx_normal(&x, 3);
    hfx_drained(&x);
    assert_one_storage_dlq(&x);
    ck_assert(webhook_wait(x.hook, "AuditrailDLQWrite", WAIT_MS));
    hp_finish(&x);
    hfx_release(&x);
}
END_TEST

/* Two writer connections, a batch over several partitions cut into two
 * concurrent transactions, one of which PostgreSQL refuses for one row:
 * the part that committed stays committed (its rows are not written
 * twice), the refused part is merged back, its bad row isolated to the DLQ
 * and the rest of it stored; every other record exactly once. */
START_TEST(refused_row_in_one_part)
{
    static const char *const env[] = {"AUDITRAIL_WRITER_CONNECTIONS=2", NULL};
    struct hfx x;
    hfx_init(&x, "hostile_parts", 8, "hostile-pg-dlq", 0, WAIT_MS);
    struct proc *mig = hp_aggregator_verb(&x, "migrate", x.port, env, NULL, "migrate");
    ck_assert_int_eq(proc_wait(mig, WAIT_MS), 0);
    proc_free(mig);
    refuse_trigger(x.db);
    /* Everything in the topic before the aggregator starts: its first
     * batches span every partition. */
    for (int s = 0; s < 6; s++) {
        char name[32];
        snprintf(name, sizeof(name), "hostile_parts_%d", s);
        tchain_init(&x.chain, name);
        for (int i = 0; i < 40; i++) {
            struct trec r;
            hp_next_with_field(&x,
                               i == 20 && s == 3 ? "{\"note\":\"REFUSE " MARKER "\"}"
                                                 : "{\"actor\":\"dr.parts\"}",
                               NULL, NULL, &r);
            if (i == 20 && s == 3) { /* refused: the rest of it on a chain of its own */
                tk_produce(x.prod, x.topic, RD_KAFKA_PARTITION_UA, r.stream, strlen(r.stream),
                           r.json, r.json_len, NULL);
                trec_release(&r);
                tchain_init(&x.chain, "hostile_parts_3b");
                continue;
            }
            hfx_send(&x, &r);
        }
    }
    tk_flush(x.prod);
    x.aggr = hp_aggregator(&x, "aggregator", x.port, env, NULL);
    ck_assert_msg(probe_wait_ready(x.port, WAIT_MS), "aggregator not ready (log %s)", x.log);
    hfx_drained(&x);
    assert_one_storage_dlq(&x);
    ck_assert_double_ge(hfx_metric(&x, METRIC_P "batch_cuts_total"), 1);
    ck_assert_double_ge(hfx_metric(&x, METRIC_P "batch_writes_total{result=\"data\"}"), 1);
    hp_finish(&x);
    hfx_release(&x);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hostile_pg");
    TCase *tc = tcase_create("rows");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, long_field_stored);
    tcase_add_test(tc, resource_error_shrinks_batch);
    tcase_add_test(tc, resource_error_single_record_waits);
    tcase_add_test(tc, refused_row_text_scrubbed);
    tcase_add_test(tc, refused_row_in_one_part);
    tcase_add_test(tc, revocation_during_stalled_write);
    tcase_add_test(tc, backfill_400_days);
    tcase_add_test(tc, new_stream_two_writers);
    suite_add_tcase(s, tc);
    TCase *fz = tcase_create("frozen");
    tcase_add_checked_fixture(fz, NULL, thaw_teardown);
    tcase_set_timeout(fz, 300);
    tcase_add_test(fz, frozen_postgres);
    suite_add_tcase(s, fz);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
