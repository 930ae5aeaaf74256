/* Internals shared by verify's two strategies, and by nothing else:
 * verify.c reads chunks of named streams through cursors ordered by (stream,
 * seq) (one stream, or a tenant's streams: selective, by index), and
 * verify_scan.c reads every partition of the range in physical order in one
 * exported snapshot (every stream: sequential scans, no sort), merging runs
 * of linked records per stream. Both feed verify_chain.c. */
#ifndef AUDITRAIL_AGGREGATOR_VERIFY_INT_H
#define AUDITRAIL_AGGREGATOR_VERIFY_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/pg_conn.h"
#include "aggregator/verify.h"
#include "aggregator/verify_chain.h"

#define VERIFY_DEFAULT_WORKERS 4
#define VERIFY_DEFAULT_FETCH   2000
#define VERIFY_ID_LEN          CHAIN_STREAM_HEX_LEN
#define VERIFY_PG_EPOCH_US     INT64_C(946684800000000) /* 2000-01-01 in Unix µs */

extern const struct pg_conn_opts verify_conn_opts;

/* A run of verify: options, the sink, the report, the failure. */
struct run {
    const struct verify_opts *o;
    bool full; /* no time range */
    verify_emit_fn emit;
    void *ud;
    pthread_mutex_t mu; /* recursive: emit, rep, status, the strategy's shared state */
    struct verify_report rep;
    enum verify_status status;
    char err[512];
    const char *conninfo; /* NULL: one borrowed connection */
    void *strategy;       /* the strategy's state */
};

/* auditrail.streams' row of a stream. */
struct info {
    char id[VERIFY_ID_LEN + 1];
    int64_t last_seq, first_seen_us;
    uint8_t last_hash[CHAIN_HASH_LEN];
};

/* A stream waiting for the lookup of its neighbours (time range). */
struct pending {
    struct vchain ch;
    struct vchain_expect ex;
    int64_t need_prev, need_next;
};

/* The sink of every vchain (ud: the run): findings serialized. */
void verify_emit_locked(void *ud, const struct verify_finding *f);
/* Start a vchain for a stream (its signed heads looked up). */
void verify_begin_stream(struct run *r, struct vchain *c, const char *id, size_t len);
/* The expectation of a stream from its state row (in may be NULL). */
void verify_expect_init(const struct run *r, const struct info *in, struct vchain_expect *e);
/* Count a finished stream into the report (locks). */
void verify_account(struct run *r, const struct vchain *c);
/* The run failed: keep the first error, stop the workers. */
void verify_fail(struct run *r, const char *err);
/* An info row from SQL_V_STREAMS's columns; false when the id is not 32
 * characters. */
bool verify_info_from(PGresult *res, int row, struct info *in);
/* Look up the neighbours the pending streams need, end and account them
 * (they are released). */
enum pg_status verify_resolve_pending(struct run *r, struct pg_connection *c, struct pending *p,
                                      size_t n, char *err, size_t errlen);
/* The range as RFC 3339 texts (unbounded ends as 0001-01-01 and
 * 9999-12-31 23:59:59). */
void verify_range_text(const struct verify_opts *o, char from[28], char to[28]);
/* Row i of a binary result of the cursor's columns (stream_id, seq, hash,
 * prev_hash, raw, id, event_time): everything but the stream id. */
void verify_row_from(PGresult *res, int i, struct vrow *row);
/* FETCH the open cursor verify_rows to its end, handing each result to
 * each (o->stop is honoured), then CLOSE it. */
enum pg_status verify_fetch_all(struct run *r, struct pg_connection *c,
                                void (*each)(void *ud, PGresult *res), void *ud, char *err,
                                size_t errlen);

/* The scan strategy (verify_scan.c): every stream of the range, on c (open,
 * idle) plus o->workers - 1 connections of their own when r->conninfo. */
void verify_scan(struct run *r, struct pg_connection *c);

#endif
