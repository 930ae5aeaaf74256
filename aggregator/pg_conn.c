/* The libpq module of aggregator/pg_conn.h. Every statement is sent with a
 * PQsend* call and its result collected by wait_result(), the one place
 * where the client waits for the server: a client-side deadline
 * (non-blocking libpq + poll + PQcancel) belongs there and in the COPY
 * calls. Every failure text is built by failure(), the one place for
 * redacting what a message may carry. */
#include "aggregator/pg_conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/pg_sql.h"
#include "common/log.h"
#include "common/xmalloc.h"

#define CONNECT_TIMEOUT_S "5"
#define LABEL_MAX         48 /* characters of SQL text naming a statement in errors */

struct pg_connection {
    char *conninfo;
    const struct pg_conn_opts *opts;
    PGconn *conn;     /* NULL or broken: reconnect on the next pg_conn_open */
    char sqlstate[6]; /* of the last failure ("" = none, or no server answer) */
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
    case PG_STATUS_COUNT:
        break;
    }
    return "unknown";
}

enum pg_status pg_classify_sqlstate(const char *s)
{
    if (!s || strlen(s) != 5)
        return PG_TRANSIENT; /* no SQLSTATE: the connection failed */
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "40", 2) == 0 || strncmp(s, "53", 2) == 0 ||
        strncmp(s, "58", 2) == 0)
        return PG_TRANSIENT;
    if (strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 ||
        strcmp(s, "57014") == 0 || strcmp(s, "55P03") == 0)
        return PG_TRANSIENT; /* shutdown, crash, starting; statement/lock timeout */
    if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0 || strncmp(s, "54", 2) == 0)
        return PG_DATA; /* 54: e.g. a value too large for a btree index entry */
    return PG_FATAL;    /* 42 (schema, privileges), 28, 3D, XX… */
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
 * it. res may be NULL (nothing came back). */
static enum pg_status failure(const struct pg_connection *c, const PGresult *res, const char *what,
                              char *err, size_t errlen)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    remember_sqlstate((struct pg_connection *)c, st);
    if (!msg || !*msg)
        msg = c->conn ? PQerrorMessage(c->conn) : "no connection";
    snprintf(err, errlen, "%s: %s%s%s%s", what, st ? "[" : "", st ? st : "", st ? "] " : "", msg);
    size_t l = strlen(err);
    while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
        err[--l] = '\0';
    if (!st && pg_conn_ok(c))
        return PG_FATAL; /* a client-side error (e.g. protocol), not a lost link */
    return pg_classify_sqlstate(st);
}

/* Wait for the result of what was just sent (sent: the PQsend* call's
 * return), as PQexec would return it: the last result, or the first error.
 * NULL when nothing could be sent or nothing came back. The one place where
 * the client waits for the server. */
static PGresult *wait_result(struct pg_connection *c, int sent)
{
    if (!sent)
        return NULL;
    PGresult *keep = NULL, *r;
    while ((r = PQgetResult(c->conn)) != NULL) {
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

void pg_conn_rollback(struct pg_connection *c)
{
    if (pg_conn_ok(c) && PQtransactionStatus(c->conn) != PQTRANS_IDLE)
        PQclear(run(c, RUN_SQL, SQL_ROLLBACK, NULL, 0, NULL));
}

/* Session statements and prepared statements of a new connection. */
static enum pg_status set_up(struct pg_connection *c, char *err, size_t errlen)
{
    const struct pg_conn_opts *o = c->opts;
    char e2[512];
    for (const char *const *s = o->session; s && *s; s++)
        if (pg_conn_exec(c, *s, 0, NULL, NULL, e2, sizeof(e2)) != PG_OK) {
            snprintf(err, errlen, "session setup: %s", e2);
            return pg_conn_ok(c) ? PG_FATAL : PG_TRANSIENT;
        }
    for (size_t i = 0; i < o->nstmts; i++) {
        PGresult *r = run(c, RUN_PREPARE, o->stmts[i].name, o->stmts[i].sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(e2, sizeof(e2), "prepare %s", o->stmts[i].name);
            (void)failure(c, r, e2, err, errlen);
            PQclear(r);
            return pg_conn_ok(c) ? PG_FATAL : PG_TRANSIENT;
        }
        PQclear(r);
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
    /* connect_timeout and application_name first, so that the conninfo
     * (expanded as dbname) can override them. */
    const char *kw[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *val[] = {CONNECT_TIMEOUT_S, c->opts->application_name, c->conninfo, NULL};
    c->conn = PQconnectdbParams(kw, val, 1);
    if (!pg_conn_ok(c)) {
        (void)failure(c, NULL, "connect", err, errlen);
        pg_conn_close(c);
        return PG_TRANSIENT;
    }
    enum pg_status s = set_up(c, err, errlen);
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
    return c;
}

void pg_conn_free(struct pg_connection *c)
{
    if (!c)
        return;
    pg_conn_close(c);
    free(c->conninfo);
    free(c);
}

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
    return c->conn && PQputCopyData(c->conn, data, (int)len) == 1 ? 0 : -1;
}

enum pg_status pg_conn_copy_end(struct pg_connection *c, const char *client_error,
                                PGresult **failed, char *err, size_t errlen)
{
    if (!c->conn || PQputCopyEnd(c->conn, client_error) != 1)
        return failure(c, NULL, "copy end", err, errlen);
    PGresult *r = wait_result(c, 1);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        PQclear(r);
        return PG_OK;
    }
    enum pg_status s = failure(c, r, "copy", err, errlen);
    if (failed && r)
        *failed = r;
    else
        PQclear(r);
    return s;
}

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
