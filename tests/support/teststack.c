/* Per-test databases and topics on the local stack, and the kafka-mock
 * control socket client used by integration and e2e suites. */
#include "tests/support/teststack.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/testutil.h"

#define CTL_TIMEOUT_MS 10000

/* Names must be unique across forked tests of one process too; the counter
 * alone repeats in sibling forks, hence pid and random bits as well. */
static atomic_uint name_counter;

/* prefix + '_' + pid + '_' + counter + '_' + 8 random hex chars; sep joins. */
static char *unique_name(const char *prefix, char sep)
{
    char clean[25];
    size_t n = 0;
    for (const char *p = prefix ? prefix : "t"; *p && n < sizeof(clean) - 1; p++) {
        char c = (char)tolower((unsigned char)*p);
        clean[n++] = (isalnum((unsigned char)c) || c == '_') ? c : '_';
    }
    clean[n] = '\0';
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)test_now_ms() ^ ((uint32_t)getpid() << 16);
    unsigned cnt = atomic_fetch_add(&name_counter, 1);
    return xasprintf("%s%c%d%c%u%c%08x", n ? clean : "t", sep, (int)getpid(), sep, cnt, sep, rnd);
}

/* Append " key='value'" with libpq's quoting rules. */
static void conninfo_append(char **out, const char *key, const char *val)
{
    size_t len = strlen(val);
    char *q = xmalloc(len * 2 + 1);
    char *w = q;
    for (const char *p = val; *p; p++) {
        if (*p == '\'' || *p == '\\')
            *w++ = '\\';
        *w++ = *p;
    }
    *w = '\0';
    char *next = xasprintf("%s%s%s='%s'", *out, **out ? " " : "", key, q);
    free(q);
    free(*out);
    *out = next;
}

/* conninfo with its dbname replaced by dbname. */
static char *conninfo_with_db(const char *conninfo, const char *dbname)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", err ? err : "out of memory");
        PQfreemem(err);
        ck_abort_msg("bad conninfo '%s': %s", conninfo, msg);
    }
    char *out = xstrdup("");
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val && *o->val && strcmp(o->keyword, "dbname") != 0)
            conninfo_append(&out, o->keyword, o->val);
    }
    conninfo_append(&out, "dbname", dbname);
    PQconninfoFree(opts);
    return out;
}

/* The dbname in conninfo (heap), or NULL when it names none. */
static char *conninfo_db(const char *conninfo)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    char *db = NULL;
    if (!opts)
        return NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "dbname") == 0 && o->val && *o->val)
            db = xstrdup(o->val);
    PQconninfoFree(opts);
    return db;
}

PGconn *test_pg_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        PQfinish(conn);
        ck_abort_msg("connect '%s': %s", conninfo, msg);
    }
    return conn;
}

void test_pg_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        PQclear(res);
        ck_abort_msg("SQL failed: %s: %s", sql, msg);
    }
    PQclear(res);
}

char *test_pg_scalar(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        PQclear(res);
        ck_abort_msg("SQL failed: %s: %s", sql, msg);
    }
    char *out = NULL;
    if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0 &&
        !PQgetisnull(res, 0, 0))
        out = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

long long test_pg_int(const char *conninfo, const char *sql)
{
    PGconn *c = test_pg_connect(conninfo);
    char *v = test_pg_scalar(c, sql);
    long long r = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    PQfinish(c);
    return r;
}

char *test_pg_fresh_db(const char *prefix)
{
    const char *primary = test_stack("STACK_PG_PRIMARY");
    char *name = unique_name(prefix, '_');
    PGconn *conn = test_pg_connect(primary);
    /* The name is built from [a-z0-9_] only, so it needs no quoting. */
    char *sql = xasprintf("CREATE DATABASE %s", name);
    test_pg_exec(conn, sql);
    free(sql);
    PQfinish(conn);
    char *ci = conninfo_with_db(primary, name);
    free(name);
    return ci;
}

char *test_pg_replica_conninfo(const char *primary_conninfo)
{
    char *db = conninfo_db(primary_conninfo);
    ck_assert_msg(db != NULL, "conninfo '%s' names no database", primary_conninfo);
    char *ci = conninfo_with_db(test_stack("STACK_PG_REPLICA"), db);
    free(db);
    return ci;
}

void test_pg_drop_db(const char *conninfo)
{
    if (!conninfo)
        return;
    char *db = conninfo_db(conninfo);
    if (!db)
        return;
    PGconn *conn = PQconnectdb(test_stack("STACK_PG_PRIMARY"));
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "test_pg_drop_db %s: %s", db, PQerrorMessage(conn));
        goto out;
    }
    /* WITH (FORCE) terminates the database's sessions before dropping. */
    char *ident = PQescapeIdentifier(conn, db, strlen(db));
    char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fprintf(stderr, "test_pg_drop_db %s: %s", db, PQerrorMessage(conn));
    PQclear(res);
    free(sql);
    PQfreemem(ident);
out:
    PQfinish(conn);
    free(db);
}

/* One query's first cell, or NULL on any failure (no abort: used while
 * polling). */
static char *try_scalar(const char *conninfo, const char *sql)
{
    char *out = NULL;
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
            out = xstrdup(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    PQfinish(conn);
    return out;
}

struct catch_up {
    const char *replica;
    const char *sql;
};

static bool replica_caught_up(void *ud)
{
    struct catch_up *c = ud;
    char *v = try_scalar(c->replica, c->sql);
    bool ok = v && strcmp(v, "t") == 0;
    free(v);
    return ok;
}

bool test_pg_replica_catch_up(const char *primary_conninfo, const char *replica_conninfo,
                              unsigned timeout_ms)
{
    char *lsn = try_scalar(primary_conninfo, "SELECT pg_current_wal_lsn()");
    if (!lsn)
        return false;
    char *sql = xasprintf("SELECT coalesce(pg_last_wal_replay_lsn() >= '%s'::pg_lsn, false)", lsn);
    struct catch_up c = {.replica = replica_conninfo, .sql = sql};
    bool ok = test_wait_until(replica_caught_up, &c, timeout_ms);
    free(sql);
    free(lsn);
    return ok;
}

static int ctl_fail(char *reply, size_t len, const char *fmt, const char *arg)
{
    if (reply && len)
        snprintf(reply, len, fmt, arg, strerror(errno));
    return -1;
}

static int ctl_send(const char *path, const char *command, char *reply, size_t len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char buf[1024];
    size_t used = 0;
    int rc = -1;

    if (strlen(path) >= sizeof(sa.sun_path))
        return ctl_fail(reply, len, "control socket path too long: %s%.0s", path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ctl_fail(reply, len, "socket %s: %s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        ctl_fail(reply, len, "connect %s: %s", path);
        goto out;
    }
    char *line = xasprintf("%s\n", command);
    size_t left = strlen(line);
    const char *p = line;
    while (left > 0) {
        ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            free(line);
            ctl_fail(reply, len, "send %s: %s", path);
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    free(line);
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, CTL_TIMEOUT_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            errno = ETIMEDOUT;
            ctl_fail(reply, len, "no reply from %s: %s", path);
            goto out;
        }
        ssize_t r = read(fd, buf + used, sizeof(buf) - 1 - used);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            errno = r == 0 ? ECONNRESET : errno;
            ctl_fail(reply, len, "read %s: %s", path);
            goto out;
        }
        used += (size_t)r;
        buf[used] = '\0';
        char *nl = strchr(buf, '\n');
        if (nl || used == sizeof(buf) - 1) {
            if (nl)
                *nl = '\0';
            break;
        }
    }
    if (reply && len)
        snprintf(reply, len, "%s", buf);
    rc = strncmp(buf, "ok", 2) == 0 ? 0 : -1;
out:
    close(fd);
    return rc;
}

int test_kafka_ctl(const char *command, char *reply, size_t len)
{
    return ctl_send(test_stack("STACK_KAFKA_CONTROL"), command, reply, len);
}

int test_kafka_mock_ctl(const struct test_kafka_mock *m, const char *command, char *reply,
                        size_t len)
{
    return ctl_send(m->control, command, reply, len);
}

static bool mock_ready(void *ud)
{
    struct test_kafka_mock *m = ud;
    char *path = xasprintf("%s/bootstrap", m->dir);
    FILE *f = fopen(path, "r");
    free(path);
    if (!f)
        return !proc_alive(m->proc, NULL); /* died: stop waiting */
    char buf[1024] = "";
    bool ok = fgets(buf, sizeof(buf), f) != NULL && buf[0];
    fclose(f);
    if (ok)
        m->bootstraps = xstrdup(buf);
    return ok;
}

struct test_kafka_mock *test_kafka_mock_start(int brokers)
{
    struct test_kafka_mock *m = xcalloc(1, sizeof(*m));
    m->dir = test_tmpdir("kafka-mock");
    m->control = xasprintf("%s/control.sock", m->dir);
    char *boot = xasprintf("%s/bootstrap", m->dir);
    char *log = xasprintf("%s/kafka-mock.log", m->dir);
    char *bin = test_bin("kafka-mock");
    char nbrokers[16];
    snprintf(nbrokers, sizeof(nbrokers), "%d", brokers);
    const char *argv[] = {bin,        "--brokers",        nbrokers, "--control",
                          m->control, "--bootstrap-file", boot,     NULL};
    m->proc = proc_spawn("kafka-mock", argv, NULL, log);
    free(boot);
    free(bin);
    bool ok = test_wait_until(mock_ready, m, 15000);
    if (!ok || !m->bootstraps) {
        char msg[256];
        snprintf(msg, sizeof(msg), "kafka-mock did not start (log: %s)", log);
        free(log);
        test_kafka_mock_stop(m);
        ck_abort_msg("%s", msg);
    }
    free(log);
    return m;
}

int test_kafka_mock_stop(struct test_kafka_mock *m)
{
    if (!m)
        return 0;
    int rc = proc_stop(m->proc, 10000);
    proc_free(m->proc);
    test_rmtree(m->dir);
    free(m->dir);
    free(m->control);
    free(m->bootstraps);
    free(m);
    return rc;
}

char *test_kafka_topic(const char *prefix, int partitions)
{
    char *name = unique_name(prefix, '.');
    char *cmd = xasprintf("topic create %s %d", name, partitions);
    char reply[512];
    int rc = test_kafka_ctl(cmd, reply, sizeof(reply));
    free(cmd);
    if (rc != 0) {
        free(name);
        ck_abort_msg("kafka-mock: creating a topic failed: %s", reply);
    }
    return name;
}
