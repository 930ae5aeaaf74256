/* The libpq module of aggregator/pg_conn.h. Connections are non-blocking
 * once open: every statement is sent with a PQsend* call and its result
 * collected by wait_result(), and every COPY call flushes with flush_out();
 * both wait in poll(2) on the socket up to the client-side deadline, the one
 * place where the client waits for the server. Every failure text is built
 * by failure(), from the SQLSTATE and the scrubbed primary message only. */
#include "aggregator/pg_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/pg_sql.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define CONNECT_TIMEOUT_S "5"
#define LABEL_MAX         48 /* characters of SQL text naming a statement in errors */
/* Keepalives on every connection (the conninfo may override them): an idle
 * dead link is noticed after about 10 + 3 × 5 s. */
#define KEEPALIVES_IDLE_S     "10"
#define KEEPALIVES_INTERVAL_S "5"
#define KEEPALIVES_COUNT      "3"

/* A PQcancel sent in the background: it connects to the postmaster and
 * waits until that closes the socket, which a frozen server never does, so
 * it must not run on the caller's thread. Shared by the connection and its
 * thread (refs); a connection starts no new one while one runs. */
struct cancel_job {
    atomic_int refs;
    atomic_bool done;
    PGcancel *pc;
};

struct pg_connection {
    char *conninfo;
    const struct pg_conn_opts *opts;
    struct pg_limits limits;
    PGconn *conn;            /* NULL or broken: reconnect on the next pg_conn_open */
    char client_err[160];    /* the last client-side failure (deadline), for failure() */
    struct cancel_job *cjob; /* the last background cancel, or NULL */
    char sqlstate[6];        /* of the last failure ("" = none, or no server answer) */
};

const char *pg_status_name(enum pg_status s)
{
    switch (s) {
    case PG_OK:
        return "ok";
    case PG_TRANSIENT:
        return "transient";
    case PG_CONFLICT:
        return "conflict";
    case PG_DATA:
        return "data";
    case PG_FATAL:
        return "fatal";
    case PG_RESOURCE:
        return "resource";
    case PG_STATUS_COUNT:
        break;
    }
    return "unknown";
}

bool pg_status_retryable(enum pg_status s)
{
    return s == PG_TRANSIENT || s == PG_RESOURCE;
}

/* The classes of README's "Errors by SQLSTATE". What one batch's content can
 * provoke (22, 23, 54) is PG_DATA: it costs the rows concerned, never the
 * process. Only what is about the server's configuration or our schema is
 * PG_FATAL. */
enum pg_status pg_classify_sqlstate(const char *s)
{
    if (!s || strlen(s) != 5)
        return PG_TRANSIENT; /* no SQLSTATE: the connection failed */
    static const struct {
        const char *prefix;
        enum pg_status st;
    } table[] = {
        /* exact codes first: they refine their class */
        {"57P04", PG_FATAL},  /* database dropped */
        {"XX001", PG_FATAL},  /* data corrupted */
        {"XX002", PG_FATAL},  /* index corrupted */
        {"08", PG_TRANSIENT}, /* connection exception */
        {"25", PG_TRANSIENT}, /* transaction state, e.g. 25006 read-only after a failover */
        {"40", PG_TRANSIENT}, /* serialization failure, deadlock */
        {"55", PG_TRANSIENT}, /* lock not available (lock_timeout), object in use */
        {"57", PG_TRANSIENT}, /* shutdown, crash, starting, statement timeout, cancel */
        {"58", PG_TRANSIENT}, /* system (I/O) error */
        {"72", PG_TRANSIENT}, /* snapshot too old */
        {"22", PG_DATA},      /* data exception: a value */
        {"23", PG_DATA},      /* integrity constraint: a row */
        {"54", PG_DATA},      /* program limit, e.g. a btree index entry too large */
        {"53", PG_RESOURCE},  /* insufficient resources: memory, locks, disk */
        {"0A", PG_FATAL},     /* feature not supported (server version) */
        {"28", PG_FATAL},     /* authorization */
        {"3D", PG_FATAL},     /* no such database */
        {"3F", PG_FATAL},     /* no such schema */
        {"42", PG_FATAL},     /* schema or privileges (never built from input) */
        {"F0", PG_FATAL},     /* server configuration file */
        {"HV", PG_FATAL},     /* foreign data wrapper */
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strncmp(s, table[i].prefix, strlen(table[i].prefix)) == 0)
            return table[i].st;
    /* XX000 internal errors, P0 (a trigger someone added), anything new:
     * neither provably the data nor the configuration. Retry, smaller. */
    return PG_RESOURCE;
}

static bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* p starts "0x" + a hex digit: the end of that byte sequence ("0xc3 0x28"). */
static const char *skip_bytes(const char *p)
{
    const char *e = p;
    for (;;) {
        e += 2;
        while (is_hex(*e))
            e++;
        if (e[0] != ' ' || e[1] != '0' || e[2] != 'x' || !is_hex(e[3]))
            return e;
        e++;
    }
}

/* Classes whose messages name our own objects and roles (a missing
 * relation, a privilege, an unknown database): never row values, and what
 * the operator needs to read. */
static bool names_objects_only(const char *sqlstate)
{
    return sqlstate && (strncmp(sqlstate, "42", 2) == 0 || strncmp(sqlstate, "3D", 2) == 0 ||
                        strncmp(sqlstate, "3F", 2) == 0 || strncmp(sqlstate, "28", 2) == 0);
}

void pg_error_scrub(const char *sqlstate, const char *msg, char *out, size_t outlen)
{
    static const char cut[] = "…";
    const size_t cl = sizeof(cut) - 1;
    size_t o = 0;
    if (!outlen)
        return;
    const char *s = msg ? msg : "";
    bool keep_quoted = names_objects_only(sqlstate);
    for (const char *p = s; *p && *p != '\n'; p++) {
        if ((*p == '"' || *p == '\'') && !keep_quoted) {
            /* A quoted value: keep the quotes, drop what they hold. Values
             * may hold quotes themselves (PostgreSQL does not escape them),
             * so it runs to the last such quote of the line (or to its end:
             * unterminated). */
            char q = *p;
            const char *e = NULL;
            for (const char *x = p + 1; *x && *x != '\n'; x++)
                if (*x == q)
                    e = x;
            if (!e)
                e = p + strcspn(p, "\n");
            if (o + cl + 2 < outlen) {
                out[o++] = q;
                memcpy(out + o, cut, cl);
                o += cl;
                out[o++] = q;
            }
            if (*e != q)
                break;
            p = e;
        } else if (p[0] == '0' && p[1] == 'x' && is_hex(p[2]) &&
                   (p == s || !(is_hex(p[-1]) || (p[-1] >= 'g' && p[-1] <= 'z')))) {
            /* "invalid byte sequence for encoding "UTF8": 0xc3 0x28": the
             * bytes are the record's. */
            if (o + cl + 2 < outlen) {
                out[o++] = '0';
                out[o++] = 'x';
                memcpy(out + o, cut, cl);
                o += cl;
            }
            p = skip_bytes(p) - 1;
        } else if (o + 1 < outlen) {
            out[o++] = *p;
        }
    }
    while (o && (out[o - 1] == ' ' || out[o - 1] == '\t'))
        o--;
    out[o] = '\0';
}

bool pg_conn_ok(const struct pg_connection *c)
{
    return c->conn && PQstatus(c->conn) == CONNECTION_OK;
}

/* A statement's name in messages: a prepared statement's name, or the
 * beginning of its SQL text (first line, at most LABEL_MAX characters). */
static void label(const char *sql, char *out, size_t len)
{
    size_t n = strcspn(sql, "\n");
    bool cut = n > LABEL_MAX;
    if (cut) /* on a UTF-8 boundary: migrations may hold non-ASCII text */
        for (n = LABEL_MAX; n > 0 && ((unsigned char)sql[n] & 0xC0) == 0x80; n--)
            ;
    snprintf(out, len, "%.*s%s", (int)n, sql, cut ? "…" : "");
}

/* ---- read path additions (pool and router): remembered SQLSTATE */
static void remember_sqlstate(struct pg_connection *c, const char *st)
{
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st && strlen(st) == 5 ? st : "");
}

const char *pg_conn_sqlstate(const struct pg_connection *c)
{
    return c->sqlstate;
}

/* Describe a failed call in err ("what: [SQLSTATE] message") and classify
 * it. res may be NULL (nothing came back). Only the SQLSTATE and the
 * scrubbed primary message: never DETAIL, HINT or CONTEXT, which quote row
 * data. */
static enum pg_status failure(const struct pg_connection *c, const PGresult *res, const char *what,
                              char *err, size_t errlen)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg && res)
        msg = PQresultErrorMessage(res);
    remember_sqlstate((struct pg_connection *)c, st);
    if (!msg || !*msg)
        msg = c->client_err[0] ? c->client_err
              : c->conn        ? PQerrorMessage(c->conn)
                               : "no connection";
    char clean[400];
    pg_error_scrub(st, msg, clean, sizeof(clean));
    snprintf(err, errlen, "%s: %s%s%s%s", what, st ? "[" : "", st ? st : "", st ? "] " : "", clean);
    if (!st && pg_conn_ok(c))
        return PG_FATAL; /* a client-side error (e.g. protocol), not a lost link */
    return pg_classify_sqlstate(st);
}

/* ---- the deadline ---- */

static void cancel_job_unref(struct cancel_job *j)
{
    if (j && atomic_fetch_sub(&j->refs, 1) == 1) {
        PQfreeCancel(j->pc);
        free(j);
    }
}

static void *cancel_main(void *arg)
{
    struct cancel_job *j = arg;
    char e[256];
    if (!PQcancel(j->pc, e, sizeof(e))) {
        char clean[256];
        pg_error_scrub(NULL, e, clean, sizeof(clean));
        log_debug("cancel request not delivered: %s", clean);
    }
    atomic_store(&j->done, true);
    cancel_job_unref(j);
    return NULL;
}

/* Ask the server, in the background, to cancel what the connection runs
 * (best effort: its statement_timeout ends it anyway, and the dropped
 * connection ends its transaction once it reads again). */
static void cancel_background(struct pg_connection *c)
{
    if (c->cjob && !atomic_load(&c->cjob->done))
        return; /* the previous one still waits for the server */
    cancel_job_unref(c->cjob);
    c->cjob = NULL;
    PGcancel *pc = PQgetCancel(c->conn);
    if (!pc)
        return;
    struct cancel_job *j = xcalloc(1, sizeof(*j));
    atomic_init(&j->refs, 2);
    atomic_init(&j->done, false);
    j->pc = pc;
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, cancel_main, j) != 0) {
        PQfreeCancel(pc);
        free(j);
        j = NULL;
    }
    pthread_attr_destroy(&at);
    c->cjob = j;
}

/* The deadline passed: cancel in the background, drop the connection (the
 * next pg_conn_open reconnects), remember why for failure(). */
static void timed_out(struct pg_connection *c, const char *doing)
{
    snprintf(c->client_err, sizeof(c->client_err),
             "no answer from the server within %d ms while %s (client deadline): connection "
             "dropped",
             c->limits.client_timeout_ms, doing);
    cancel_background(c);
    PQfinish(c->conn);
    c->conn = NULL;
}

static uint64_t deadline_of(const struct pg_connection *c)
{
    return c->limits.client_timeout_ms > 0 ? time_mono_ms() + (uint64_t)c->limits.client_timeout_ms
                                           : 0;
}

/* Wait until the socket is readable (or writable too, when out), or the
 * deadline (0: none). 1 ready, 0 deadline passed, -1 error. */
static int wait_socket(PGconn *conn, bool out, uint64_t deadline)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = (short)(POLLIN | (out ? POLLOUT : 0))};
    if (p.fd < 0)
        return -1;
    for (;;) {
        int timeout = -1;
        if (deadline) {
            uint64_t now = time_mono_ms();
            if (now >= deadline)
                return 0;
            timeout = deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
        }
        int r = poll(&p, 1, timeout);
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Send what libpq holds for the server. 0 sent, -1 the connection failed,
 * 1 the deadline passed. While the server does not read, read what it says
 * (an error can come before it has read everything). */
static int flush_out(struct pg_connection *c, uint64_t deadline)
{
    for (;;) {
        int f = PQflush(c->conn);
        if (f <= 0)
            return f;
        int w = wait_socket(c->conn, true, deadline);
        if (w <= 0)
            return w == 0 ? 1 : -1;
        if (!PQconsumeInput(c->conn))
            return -1;
    }
}

/* Read until a result can be taken without blocking. 0, -1 (failed: libpq
 * has the error for PQgetResult), 1 deadline. */
static int await_result(struct pg_connection *c, uint64_t deadline)
{
    while (PQisBusy(c->conn)) {
        int w = wait_socket(c->conn, false, deadline);
        if (w <= 0)
            return w == 0 ? 1 : -1;
        if (!PQconsumeInput(c->conn))
            return -1;
    }
    return 0;
}

/* Wait for the result of what was just sent (sent: the PQsend* call's
 * return), as PQexec would return it: the last result, or the first error.
 * NULL when nothing could be sent or nothing came back (the deadline: the
 * connection is then dropped). */
static PGresult *wait_result(struct pg_connection *c, int sent)
{
    if (!sent)
        return NULL;
    uint64_t deadline = deadline_of(c);
    if (flush_out(c, deadline) == 1) {
        timed_out(c, "sending a statement");
        return NULL;
    }
    PGresult *keep = NULL, *r;
    for (;;) {
        if (await_result(c, deadline) == 1) {
            PQclear(keep);
            timed_out(c, "waiting for a result");
            return NULL;
        }
        if ((r = PQgetResult(c->conn)) == NULL)
            break;
        ExecStatusType st = PQresultStatus(r);
        if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r); /* later results of a failed multi-statement string */
        } else {
            PQclear(keep);
            keep = r;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH ||
            PQstatus(c->conn) == CONNECTION_BAD)
            break;
    }
    return keep;
}

enum run_kind { RUN_SQL, RUN_PREPARED, RUN_PREPARE };

/* Send one statement and wait for its result: every statement goes through
 * here. text is the SQL (RUN_SQL) or the statement's name; sql is what
 * RUN_PREPARE prepares under that name. */
static PGresult *run(struct pg_connection *c, enum run_kind kind, const char *text, const char *sql,
                     int np, const char *const *params)
{
    c->client_err[0] = '\0';
    if (!c->conn)
        return NULL;
    switch (kind) {
    case RUN_PREPARE:
        return wait_result(c, PQsendPrepare(c->conn, text, sql, 0, NULL));
    case RUN_PREPARED:
        return wait_result(c, PQsendQueryPrepared(c->conn, text, np, params, NULL, NULL, 0));
    case RUN_SQL:
        break;
    }
    if (np > 0)
        return wait_result(c, PQsendQueryParams(c->conn, text, np, NULL, params, NULL, NULL, 0));
    return wait_result(c, PQsendQuery(c->conn, text));
}

static enum pg_status run_checked(struct pg_connection *c, enum run_kind kind, const char *what,
                                  int np, const char *const *params, PGresult **res, char *err,
                                  size_t errlen)
{
    PGresult *r = run(c, kind, what, NULL, np, params);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char name[LABEL_MAX + 8];
        label(what, name, sizeof(name));
        enum pg_status s = failure(c, r, name, err, errlen);
        PQclear(r);
        return s;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return PG_OK;
}

enum pg_status pg_conn_exec(struct pg_connection *c, const char *sql, int np,
                            const char *const *params, PGresult **res, char *err, size_t errlen)
{
    return run_checked(c, RUN_SQL, sql, np, params, res, err, errlen);
}

enum pg_status pg_conn_exec_prepared(struct pg_connection *c, const char *stmt, int np,
                                     const char *const *params, PGresult **res, char *err,
                                     size_t errlen)
{
    return run_checked(c, RUN_PREPARED, stmt, np, params, res, err, errlen);
}

enum pg_status pg_conn_commit(struct pg_connection *c, char *err, size_t errlen)
{
    PGresult *r = NULL;
    enum pg_status s = pg_conn_exec(c, SQL_COMMIT, 0, NULL, &r, err, errlen);
    if (s != PG_OK)
        return s;
    /* A transaction that had failed ends with COMMIT answering ROLLBACK. */
    bool committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
    PQclear(r);
    if (!committed) {
        snprintf(err, errlen, "COMMIT: the server rolled the transaction back");
        return PG_TRANSIENT;
    }
    return PG_OK;
}

void pg_conn_rollback(struct pg_connection *c)
{
    if (pg_conn_ok(c) && PQtransactionStatus(c->conn) != PQTRANS_IDLE)
        PQclear(run(c, RUN_SQL, SQL_ROLLBACK, NULL, 0, NULL));
}

/* ---- connecting ---- */

/* NOTICEs and WARNINGs go to the log at debug level, tersely (libpq's
 * default prints them whole on stderr). */
static void notice_receiver(void *arg, const PGresult *res)
{
    (void)arg;
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    char clean[256];
    pg_error_scrub(st, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), clean, sizeof(clean));
    log_debug("PostgreSQL notice [%s] %s", st ? st : "", clean);
}

/* The session limits, in one round trip, as parameters. */
static enum pg_status set_limits(struct pg_connection *c, char *err, size_t errlen)
{
    char stmt[16], lock[16], idle[16];
    snprintf(stmt, sizeof(stmt), "%d", c->limits.statement_timeout_ms);
    snprintf(lock, sizeof(lock), "%d", c->limits.lock_timeout_ms);
    /* A transaction we gave up on (deadline) is ended by the server too. */
    snprintf(idle, sizeof(idle), "%d", c->limits.client_timeout_ms);
    const char *p[] = {stmt, lock, idle};
    return pg_conn_exec(c, SQL_SESSION_LIMITS, 3, p, NULL, err, errlen);
}

/* Session statements and prepared statements of a new connection. */
static enum pg_status set_up(struct pg_connection *c, char *err, size_t errlen)
{
    const struct pg_conn_opts *o = c->opts;
    char e2[512];
    if (set_limits(c, e2, sizeof(e2)) != PG_OK) {
        snprintf(err, errlen, "session setup: %s", e2);
        return pg_conn_ok(c) ? PG_FATAL : PG_TRANSIENT;
    }
    for (const char *const *s = o->session; s && *s; s++)
        if (pg_conn_exec(c, *s, 0, NULL, NULL, e2, sizeof(e2)) != PG_OK) {
            snprintf(err, errlen, "session setup: %s", e2);
            return pg_conn_ok(c) ? PG_FATAL : PG_TRANSIENT;
        }
    for (size_t i = 0; i < o->nstmts; i++) {
        PGresult *r = run(c, RUN_PREPARE, o->stmts[i].name, o->stmts[i].sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(e2, sizeof(e2), "prepare %s", o->stmts[i].name);
            enum pg_status s = failure(c, r, e2, err, errlen);
            PQclear(r);
            return pg_conn_ok(c) ? (s == PG_TRANSIENT ? PG_TRANSIENT : PG_FATAL) : PG_TRANSIENT;
        }
        PQclear(r);
    }
    return PG_OK;
}

/* Connect (blocking, bounded by connect_timeout per host: libpq's own
 * multi-host logic needs it) and make the connection non-blocking and
 * terse. */
static enum pg_status connect_now(struct pg_connection *c, char *err, size_t errlen)
{
    char tcp_user[16];
    snprintf(tcp_user, sizeof(tcp_user), "%d", c->limits.tcp_user_timeout_ms);
    /* Our defaults first, so that the conninfo (expanded as dbname) can
     * override them. */
    const char *kw[] = {"connect_timeout",
                        "application_name",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "dbname",
                        NULL};
    const char *val[] = {CONNECT_TIMEOUT_S,
                         c->opts->application_name,
                         "1",
                         KEEPALIVES_IDLE_S,
                         KEEPALIVES_INTERVAL_S,
                         KEEPALIVES_COUNT,
                         tcp_user,
                         c->conninfo,
                         NULL};
    c->client_err[0] = '\0';
    c->conn = PQconnectdbParams(kw, val, 1);
    if (!pg_conn_ok(c)) {
        char what[160];
        const char *h = c->conn ? PQhost(c->conn) : NULL, *p = c->conn ? PQport(c->conn) : NULL;
        snprintf(what, sizeof(what), "connect to %s%s%s", h && *h ? h : "PostgreSQL",
                 p && *p ? ":" : "", p && *p ? p : "");
        (void)failure(c, NULL, what, err, errlen);
        pg_conn_close(c);
        return PG_TRANSIENT;
    }
    PQsetErrorVerbosity(c->conn, PQERRORS_TERSE);
    PQsetNoticeReceiver(c->conn, notice_receiver, NULL);
    if (PQsetnonblocking(c->conn, 1) != 0) {
        (void)failure(c, NULL, "non-blocking mode", err, errlen);
        pg_conn_close(c);
        return PG_TRANSIENT;
    }
    return PG_OK;
}

enum pg_status pg_conn_open(struct pg_connection *c, bool *fresh, char *err, size_t errlen)
{
    if (fresh)
        *fresh = false;
    if (pg_conn_ok(c)) {
        pg_conn_rollback(c);
        if (pg_conn_ok(c))
            return PG_OK;
    }
    if (c->conn) {
        pg_conn_close(c);
        log_info("%s: reconnecting to PostgreSQL", c->opts->application_name);
    }
    enum pg_status s = connect_now(c, err, errlen);
    if (s == PG_OK)
        s = set_up(c, err, errlen);
    if (s != PG_OK) {
        pg_conn_close(c);
        return s;
    }
    if (fresh)
        *fresh = true;
    return PG_OK;
}

void pg_conn_close(struct pg_connection *c)
{
    if (c->conn)
        PQfinish(c->conn);
    c->conn = NULL;
}

struct pg_connection *pg_conn_new(const char *conninfo, const struct pg_conn_opts *opts)
{
    struct pg_connection *c = xcalloc(1, sizeof(*c));
    c->conninfo = xstrdup(conninfo ? conninfo : "");
    c->opts = opts;
    c->limits = (struct pg_limits)PG_LIMITS_DEFAULT;
    return c;
}

void pg_conn_set_limits(struct pg_connection *c, const struct pg_limits *l)
{
    c->limits = *l;
}

void pg_conn_free(struct pg_connection *c)
{
    if (!c)
        return;
    pg_conn_close(c);
    cancel_job_unref(c->cjob);
    free(c->conninfo);
    free(c);
}

/* ---- COPY ---- */

enum pg_status pg_conn_copy_begin(struct pg_connection *c, const char *sql, char *err,
                                  size_t errlen)
{
    PGresult *r = run(c, RUN_SQL, sql, NULL, 0, NULL);
    enum pg_status s = PG_OK;
    if (PQresultStatus(r) != PGRES_COPY_IN)
        s = failure(c, r, "copy", err, errlen);
    PQclear(r);
    return s;
}

int pg_conn_copy_put(struct pg_connection *c, const void *data, size_t len)
{
    if (!c->conn || len > INT_MAX)
        return -1;
    uint64_t deadline = deadline_of(c);
    for (;;) {
        int r = PQputCopyData(c->conn, data, (int)len);
        if (r < 0)
            return -1;
        /* Queued (1) or not (0: libpq's buffer is full): either way send
         * now, so that the deadline covers a server that stopped reading. */
        int f = flush_out(c, deadline);
        if (f == 1) {
            timed_out(c, "sending COPY data");
            return -1;
        }
        if (f < 0)
            return -1;
        if (r == 1)
            return 0;
    }
}

enum pg_status pg_conn_copy_end(struct pg_connection *c, const char *client_error,
                                PGresult **failed, char *err, size_t errlen)
{
    /* client_err is not cleared here: a deadline in pg_conn_copy_put left
     * its reason there. */
    uint64_t deadline = deadline_of(c);
    for (;;) {
        if (!c->conn)
            return failure(c, NULL, "copy end", err, errlen);
        int r = PQputCopyEnd(c->conn, client_error);
        if (r < 0)
            return failure(c, NULL, "copy end", err, errlen);
        if (r == 1)
            break;
        int f = flush_out(c, deadline); /* 0: libpq's buffer is full */
        if (f == 1)
            timed_out(c, "ending a COPY");
        else if (f < 0)
            return failure(c, NULL, "copy end", err, errlen);
    }
    PGresult *res = wait_result(c, 1);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        return PG_OK;
    }
    enum pg_status s = failure(c, res, "copy", err, errlen);
    if (failed && res)
        *failed = res;
    else
        PQclear(res);
    return s;
}

/* ---- array parameters ---- */

void pg_array_begin(struct buf *a)
{
    buf_reset(a);
    buf_addc(a, '{');
}

void pg_array_str(struct buf *a, const char *s)
{
    if (a->len > 1)
        buf_addc(a, ',');
    buf_addc(a, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_addc(a, '\\');
        buf_addc(a, *s);
    }
    buf_addc(a, '"');
}

void pg_array_i64(struct buf *a, int64_t v)
{
    buf_addf(a, a->len > 1 ? ",%" PRId64 : "%" PRId64, v);
}

void pg_time_text(int64_t us, char out[PG_TIME_TEXT_LEN])
{
    /* Floor division: -1 µs is 1969-12-31 23:59:59.999999. */
    int64_t sec = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    long long year = (long long)tm.tm_year + 1900; /* proleptic, year 0 = 1 BC */
    bool bc = year <= 0;
    snprintf(out, PG_TIME_TEXT_LEN, "%04lld-%02d-%02d %02d:%02d:%02d.%06lld+00%s",
             bc ? 1 - year : year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long long)frac, bc ? " BC" : "");
}

const char *pg_array_end(struct buf *a)
{
    buf_addc(a, '}');
    return buf_cstr(a);
}

/* ---- read path additions: LSN text */
int pg_lsn_parse(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || strlen(s) > 17)
        return -1;
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789abcdefABCDEF/", *p))
            return -1;
    errno = 0;
    unsigned long hi = strtoul(s, &end, 16);
    if (end == s || *end != '/' || errno || hi > UINT32_MAX)
        return -1;
    const char *lo_s = end + 1;
    unsigned long lo = strtoul(lo_s, &end, 16);
    if (end == lo_s || *end || errno || lo > UINT32_MAX)
        return -1;
    *out = ((uint64_t)hi << 32) | (uint64_t)lo;
    return 0;
}

void pg_lsn_format(uint64_t lsn, char out[24])
{
    snprintf(out, 24, "%" PRIX64 "/%" PRIX64, lsn >> 32, lsn & 0xffffffffu);
}
