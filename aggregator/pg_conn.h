/* The aggregator's one libpq module: every PostgreSQL connection (the batch
 * writer, migrations, partition maintenance, replay, and the read path's
 * pool and health checks) is opened, set up and prepared here, runs every
 * statement here, and has its failures described and classified here once.
 * A connection belongs to one thread at a time; nothing here logs an error
 * (the caller, who knows what failed, does). */
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
    PG_FATAL,     /* 42xxx schema/privileges, 28xxx, XX…: not retryable */
    PG_STATUS_COUNT
};

/* "ok", "transient", "conflict", "data", "fatal" (metric labels). */
const char *pg_status_name(enum pg_status s);
/* Classify a SQLSTATE (5 chars; NULL or malformed = no server answer: a
 * connection-level failure, PG_TRANSIENT). */
enum pg_status pg_classify_sqlstate(const char *sqlstate);

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

/* WAL positions as PostgreSQL prints them ("16/B374D848") <-> 64 bits.
 * parse: 0, or -1 when malformed. */
int pg_lsn_parse(const char *s, uint64_t *out);
void pg_lsn_format(uint64_t lsn, char out[24]);

#endif
