/* The aggregator's one libpq module: every PostgreSQL connection (the batch
 * writer, migrations, partition maintenance, replay, and the read path's
 * pool and health checks) is opened, set up and prepared here, runs every
 * statement here under a client-side deadline, and has its failures
 * described (tersely: no row data leaves the process) and classified here
 * once. A connection belongs to one thread at a time; nothing here logs an
 * error (the caller, who knows what failed, does). */
#ifndef AUDITRAIL_AGGREGATOR_PG_CONN_H
#define AUDITRAIL_AGGREGATOR_PG_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* What a PostgreSQL call came to. (Not `pg_result`: libpq declares `struct
 * pg_result`, and C shares one tag namespace between structs and enums.) */
enum pg_status {
    PG_OK = 0,
    PG_TRANSIENT, /* connection lost, 40xxx serialization/deadlock, 53xxx, 57P0x,
                     statement or lock timeout: retry after backoff (the next
                     pg_conn_open reconnects) */
    PG_CONFLICT,  /* never from a SQLSTATE: a caller's compare-and-set lost
                     (the writer's offsets: another consumer owns the partition) */
    PG_DATA,      /* 22xxx/23xxx/54xxx: some value is bad; nothing committed */
    PG_FATAL,     /* 42xxx schema/privileges, 28xxx auth, 3D000/3F000, 0A000,
                     XX001/XX002 corruption: configuration, not retryable */
    PG_RESOURCE,  /* 53xxx (out of memory, shared memory/locks, disk full),
                     XX000 and SQLSTATEs of no known class: the server ran out
                     of something or failed in a way that a smaller batch may
                     avoid; retryable (a batch writer shrinks its batch first) */
    PG_STATUS_COUNT
};

/* "ok", "transient", "conflict", "data", "fatal", "resource" (metric
 * labels). */
const char *pg_status_name(enum pg_status s);
/* Classify a SQLSTATE (5 chars; NULL or malformed = no server answer: a
 * connection-level failure, PG_TRANSIENT). The table is README's "Errors by
 * SQLSTATE". */
enum pg_status pg_classify_sqlstate(const char *sqlstate);
/* PG_TRANSIENT or PG_RESOURCE: worth the same call again after a backoff. */
bool pg_status_retryable(enum pg_status s);

/* A server message as it may leave the process (logs, DLQ headers, alerts):
 * its first line, with every quoted value ("…" or '…') and every 0x byte
 * sequence replaced by "…", so that row data a message quotes (invalid
 * input syntax for type json: "<the record>") never does. Messages of
 * classes that only name our objects and roles (sqlstate 42, 3D, 3F, 28:
 * relation "auditrail.streams" does not exist) keep their quotes; byte
 * sequences go always. sqlstate may be NULL (a client-side message: libpq's
 * own, which may quote a piece of the conninfo). out is always terminated
 * (outlen > 0). */
void pg_error_scrub(const char *sqlstate, const char *msg, char *out, size_t outlen);

/* Client-side limits of a connection. Every one has a default
 * (PG_LIMITS_DEFAULT); the conninfo may override the libpq keywords
 * (tcp_user_timeout, keepalives*, connect_timeout). */
struct pg_limits {
    /* How long one statement (or one COPY call) may wait for the server,
     * client side; then the statement is cancelled (PQcancel, in the
     * background), the connection dropped and the call fails PG_TRANSIENT.
     * A frozen or black-holed server still acknowledges TCP, so only this
     * clock notices it. 0 = no limit. */
    int client_timeout_ms;
    /* Session statement_timeout and lock_timeout (0 = the server's). The
     * server's own limits should fire first: client_timeout_ms above them. */
    int statement_timeout_ms;
    int lock_timeout_ms;
    /* libpq tcp_user_timeout: unacknowledged data on a dead link (0 = the
     * kernel's, minutes). Keepalives are always on (idle 10 s, interval
     * 5 s, 3 probes) unless the conninfo says otherwise. */
    int tcp_user_timeout_ms;
};
#define PG_LIMITS_DEFAULT                                                                          \
    {                                                                                              \
        .client_timeout_ms = 40000, .statement_timeout_ms = 30000, .lock_timeout_ms = 10000,       \
        .tcp_user_timeout_ms = 15000                                                               \
    }

/* A statement prepared on every (re)connection under `name`. */
struct pg_stmt {
    const char *name, *sql;
};

struct pg_conn_opts {
    /* application_name unless the conninfo sets one (connect_timeout is
     * 5 s unless the conninfo sets one). */
    const char *application_name;
    /* Run in order after every connect (NULL-terminated; NULL = none). */
    const char *const *session;
    /* Prepared after every connect. */
    const struct pg_stmt *stmts;
    size_t nstmts;
};

/* (Not `struct pg_conn`: that is libpq's own tag behind PGconn.) */
struct pg_connection;

/* A connection to conninfo with opts (conninfo is copied; opts and the
 * strings and tables it points to must outlive the connection: they are
 * meant to be static). Does not connect yet: pg_conn_open does. */
struct pg_connection *pg_conn_new(const char *conninfo, const struct pg_conn_opts *opts);
void pg_conn_free(struct pg_connection *c); /* NULL-safe; disconnects */
/* Replace the limits (a new connection starts with PG_LIMITS_DEFAULT). The
 * client deadline applies from the next statement, the session and libpq
 * settings from the next connect: call it before pg_conn_open. */
void pg_conn_set_limits(struct pg_connection *c, const struct pg_limits *l);

/* Be connected, set up, prepared and outside any transaction: a live
 * connection left inside a transaction is rolled back; a broken one is
 * reconnected. *fresh (may be NULL) is set when this call connected, so
 * that the caller can drop what it cached about the server. PG_OK,
 * PG_TRANSIENT (server unreachable) or PG_FATAL (session setup or prepare
 * refused: schema not migrated, privileges), with err set. */
enum pg_status pg_conn_open(struct pg_connection *c, bool *fresh, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Drop the connection (the next pg_conn_open reconnects). */
void pg_conn_close(struct pg_connection *c);
/* Connected and not known to be broken. */
bool pg_conn_ok(const struct pg_connection *c);

/* Run sql (without parameters: the simple protocol, which may carry several
 * statements; with np > 0 parameters as text: the extended protocol) and
 * check that it succeeded (a command or rows). On PG_OK *res (may be NULL:
 * cleared) holds the result, which the caller PQclears; otherwise err says
 * "<statement>: [SQLSTATE] message" and nothing is returned in *res. */
enum pg_status pg_conn_exec(struct pg_connection *c, const char *sql, int np,
                            const char *const *params, PGresult **res, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* pg_conn_exec for a statement prepared through pg_conn_opts.stmts. */
enum pg_status pg_conn_exec_prepared(struct pg_connection *c, const char *stmt, int np,
                                     const char *const *params, PGresult **res, char *err,
                                     size_t errlen) __attribute__((warn_unused_result));
/* COMMIT, checked: PG_OK only when the server committed. A COMMIT that
 * fails (a deferred constraint, a serialization failure) or that the server
 * answers with ROLLBACK (the transaction had failed) is not a commit: its
 * failure's class, or PG_TRANSIENT for ROLLBACK, with err set. */
enum pg_status pg_conn_commit(struct pg_connection *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The SQLSTATE of the last failed call on c ("" when the server gave none:
 * a lost connection, a client-side error). The read path tells a
 * hot-standby conflict (40001) from a timeout (57014) with it. */
const char *pg_conn_sqlstate(const struct pg_connection *c);
/* Best effort: roll back the transaction in progress, if any (errors are
 * ignored: a broken connection is reconnected by the next pg_conn_open). */
void pg_conn_rollback(struct pg_connection *c);

/* COPY … FROM STDIN: start it (PG_OK when the server waits for data), send
 * data in pieces (0, or -1 when the connection failed: still call
 * pg_conn_copy_end), then end it. client_error non-NULL aborts the COPY
 * with that message. When the server refused the data and failed is not
 * NULL, *failed receives its result (SQLSTATE, CONTEXT naming the line) for
 * the caller to inspect and PQclear. */
enum pg_status pg_conn_copy_begin(struct pg_connection *c, const char *sql, char *err,
                                  size_t errlen) __attribute__((warn_unused_result));
int pg_conn_copy_put(struct pg_connection *c, const void *data, size_t len)
    __attribute__((warn_unused_result));
enum pg_status pg_conn_copy_end(struct pg_connection *c, const char *client_error,
                                PGresult **failed, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Array parameters in text form ({…} literals, e.g. for `= ANY($1::text[])`
 * or unnest): begin (empties a), add elements (strings quoted and escaped),
 * end (returns a's text, valid until a changes). */
void pg_array_begin(struct buf *a);
void pg_array_str(struct buf *a, const char *s);
void pg_array_i64(struct buf *a, int64_t v);
const char *pg_array_end(struct buf *a);

/* A timestamptz parameter in text form for µs since the epoch, for any
 * year PostgreSQL holds: RFC 3339 text (time_format_us) is clamped to
 * years 0000-9999 and PostgreSQL has no year 0 (1 BC), so the calendar's
 * edges need its own form ("0001-12-31 01:00:00.000000+00 BC"). */
#define PG_TIME_TEXT_LEN 48
void pg_time_text(int64_t us, char out[PG_TIME_TEXT_LEN]);

/* WAL positions as PostgreSQL prints them ("16/B374D848") <-> 64 bits.
 * parse: 0, or -1 when malformed. */
int pg_lsn_parse(const char *s, uint64_t *out);
void pg_lsn_format(uint64_t lsn, char out[24]);

#endif
