/* The PostgreSQL writer (aggregator/pg_writer.h): one transaction per batch,
 * or per run of its rows on at most max_days days.
 *
 * Order inside a transaction: compare-and-set of the Kafka offsets first
 * (it takes the offsets' row locks, so a competing consumer of the same
 * partition waits and then fails its CAS instead of doing the work twice);
 * ensure partitions; lock the batch's streams (new ones get their row
 * first, so two writers of one new stream serialize too; sorted, FOR
 * UPDATE); look up stored hashes only where needed (seq <= last_seq, or the
 * predecessor of a row below last_seq), first in the rows' own days, then
 * within each stream's event_time range — statements planned with their
 * bounds, so only those partitions are read and locked; classify in C
 * (re-send, fork, gap, chain break); store the remaining rows with a binary
 * COPY straight into auditrail.events under a savepoint, or, if a primary
 * key already exists, through a temp staging table and INSERT … SELECT … ON
 * CONFLICT DO NOTHING; upsert streams (with their event_time range); record
 * incidents; COMMIT, checked. Classifying before sending means the common
 * case costs one COPY, close to a raw COPY of the same rows. All SQL is in
 * pg_sql.h; values travel as parameters or COPY data, never as SQL text. */
#include "aggregator/pg_writer.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/chain_check.h"
#include "aggregator/partitions.h"
#include "aggregator/pg_copy.h"
#include "aggregator/pg_sql.h"
#include "common/buf.h"
#include "common/hashchain.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define COPY_FLUSH_BYTES (1u << 20)

struct pg_writer {
    struct pg_connection *conn;
    char *group;
    int max_days;
    struct part_cache parts;
    /* Monotonic ms when the call in progress started (0: none), for
     * pg_writer_busy_ms from any thread. */
    atomic_uint_fast64_t busy_since;
    bool dry_run; /* roll back instead of committing (replay --dry-run) */
};

static void busy_begin(struct pg_writer *w)
{
    uint64_t now = time_mono_ms();
    atomic_store(&w->busy_since, now ? now : 1);
}

static void busy_end(struct pg_writer *w)
{
    atomic_store(&w->busy_since, 0);
}

uint64_t pg_writer_busy_ms(const struct pg_writer *w)
{
    uint64_t since = atomic_load(&((struct pg_writer *)w)->busy_since);
    uint64_t now = time_mono_ms();
    return since && now > since ? now - since : 0;
}

/* ---- connection ---- */

static const struct pg_stmt writer_stmts[] = {
    {STMT_W_OFFSET_LOAD, SQL_W_OFFSET_LOAD},
    {STMT_W_OFFSET_CAS, SQL_W_OFFSET_CAS},
    {STMT_W_OFFSET_INIT, SQL_W_OFFSET_INIT},
    {STMT_W_STREAMS_NEW, SQL_W_STREAMS_NEW},
    {STMT_W_STREAMS_LOCK, SQL_W_STREAMS_LOCK},
    {STMT_W_STREAMS_UNUSED, SQL_W_STREAMS_UNUSED},
    {STMT_W_INSERT, SQL_W_INSERT},
    {STMT_W_STREAMS_UPSERT, SQL_W_STREAMS_UPSERT},
    {STMT_W_INCIDENT, SQL_W_INCIDENT},
};
static const char *const writer_session[] = {SQL_W_SESSION, SQL_W_STAGE_CREATE, NULL};
static const struct pg_conn_opts writer_conn_opts = {
    .application_name = "auditrail-aggregator",
    .session = writer_session,
    .stmts = writer_stmts,
    .nstmts = sizeof(writer_stmts) / sizeof(writer_stmts[0]),
};

/* Connected, prepared and idle; a new connection may see another partition
 * set, so the cache is reloaded before its next use. */
static enum pg_status ensure_conn(struct pg_writer *w, char *err, size_t errlen)
{
    bool fresh = false;
    enum pg_status s = pg_conn_open(w->conn, &fresh, err, errlen);
    if (fresh)
        w->parts.stale = true;
    return s;
}

struct pg_writer *pg_writer_new(const char *conninfo, const char *group,
                                const struct pg_writer_opts *opts, char *err, size_t errlen)
{
    static const struct pg_writer_opts defaults = PG_WRITER_OPTS_DEFAULT;
    if (!opts)
        opts = &defaults;
    struct pg_writer *w = xcalloc(1, sizeof(*w));
    w->conn = pg_conn_new(conninfo, &writer_conn_opts);
    pg_conn_set_limits(w->conn, &opts->limits);
    w->max_days = opts->max_days > 0 ? opts->max_days : PG_WRITER_MAX_DAYS;
    w->group = xstrdup(group ? group : "");
    part_cache_init(&w->parts);
    if (ensure_conn(w, err, errlen) != PG_OK) {
        pg_writer_free(w);
        return NULL;
    }
    return w;
}

void pg_writer_free(struct pg_writer *w)
{
    if (!w)
        return;
    pg_conn_free(w->conn);
    part_cache_release(&w->parts);
    free(w->group);
    free(w);
}

void pg_write_stats_release(struct pg_write_stats *s)
{
    if (!s)
        return;
    free(s->committed);
    memset(s, 0, sizeof(*s));
}

void pg_writer_set_dry_run(struct pg_writer *w, bool on)
{
    w->dry_run = on;
}

enum pg_status pg_writer_ping(struct pg_writer *w, char *err, size_t errlen)
{
    busy_begin(w);
    enum pg_status r = ensure_conn(w, err, errlen);
    if (r == PG_OK)
        r = pg_conn_exec(w->conn, SQL_PING, 0, NULL, NULL, err, errlen);
    busy_end(w);
    return r;
}

static enum pg_status load_offset(struct pg_writer *w, const char *topic, int32_t partition,
                                  int64_t *out, char *err, size_t errlen)
{
    enum pg_status r = ensure_conn(w, err, errlen);
    if (r != PG_OK)
        return r;
    char part[16];
    snprintf(part, sizeof(part), "%" PRId32, partition);
    const char *params[] = {w->group, topic, part};
    PGresult *res = NULL;
    r = pg_conn_exec_prepared(w->conn, STMT_W_OFFSET_LOAD, 3, params, &res, err, errlen);
    if (r != PG_OK)
        return r;
    *out = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return PG_OK;
}

enum pg_status pg_writer_load_offset(struct pg_writer *w, const char *topic, int32_t partition,
                                     int64_t *out, char *err, size_t errlen)
{
    busy_begin(w);
    enum pg_status r = load_offset(w, topic, partition, out, err, errlen);
    busy_end(w);
    return r;
}

/* ---- the transaction's steps ---- */

static enum pg_status cas_offsets(struct pg_writer *w, const struct batch *b, char *err,
                                  size_t errlen)
{
    /* In partition order: two consumers overlapping during a rebalance
     * then queue on the same first row instead of deadlocking. */
    const struct batch_offset *sorted[b->noffsets ? b->noffsets : 1];
    for (size_t i = 0; i < b->noffsets; i++) {
        size_t j = i;
        for (; j > 0 && sorted[j - 1]->partition > b->offsets[i].partition; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = &b->offsets[i];
    }
    for (size_t i = 0; i < b->noffsets; i++) {
        const struct batch_offset *o = sorted[i];
        char part[16], next[24], exp[24];
        snprintf(part, sizeof(part), "%" PRId32, o->partition);
        snprintf(next, sizeof(next), "%" PRId64, o->next_offset);
        snprintf(exp, sizeof(exp), "%" PRId64, o->expected_offset);
        const char *p[] = {w->group, b->topic, part, next, exp};
        PGresult *r = NULL;
        enum pg_status pr = pg_conn_exec_prepared(
            w->conn, o->expected_offset < 0 ? STMT_W_OFFSET_INIT : STMT_W_OFFSET_CAS,
            o->expected_offset < 0 ? 4 : 5, p, &r, err, errlen);
        if (pr != PG_OK)
            return pr;
        bool moved = strcmp(PQcmdTuples(r), "1") == 0;
        PQclear(r);
        if (!moved) {
            snprintf(err, errlen,
                     "offset compare-and-set lost for %s[%" PRId32 "] (expected %" PRId64
                     "): another consumer owns the partition",
                     b->topic, o->partition, o->expected_offset);
            return PG_CONFLICT;
        }
    }
    return PG_OK;
}

/* What copy_rows sends and what it learned from a failure. */
struct copy_req {
    const uint8_t *status;  /* rows with 0 are sent */
    const uint8_t *noattrs; /* rows with 1 get attrs NULL (may be NULL) */
    bool strict;            /* validate attrs with jansson */
    const char *sql;        /* COPY … FROM STDIN (FORMAT binary) */
    /* out */
    size_t cut_rows; /* rows sent with an indexed field cut */
    ssize_t bad_row; /* batch index of the row the server named, or -1 */
    bool attrs_col;  /* the error was in the attrs column */
    bool constraint; /* the error names a constraint (not partition routing) */
    char sqlstate[6];
};

/* The server named a row of the COPY that failed ("COPY events, line N,
 * column x": the N-th row sent); remember which batch row, and whether
 * attrs was the column. The CONTEXT is read here only: it quotes the row
 * and never leaves the process. */
static void copy_failure(struct copy_req *q, const struct batch *b, const PGresult *r)
{
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", st ? st : "");
    const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
    const char *cp = ctx ? strstr(ctx, "COPY ") : NULL; /* after "JSON data, line 1" */
    const char *ln = cp ? strstr(cp, ", line ") : NULL;
    if (ln)
        ln += 2;
    long line = ln ? strtol(ln + 5, NULL, 10) : 0;
    for (size_t i = 0; line > 0 && i < b->n; i++)
        if (!q->status[i] && --line == 0)
            q->bad_row = (ssize_t)i;
    q->attrs_col = cp && strstr(cp, "column attrs") != NULL;
    q->constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) != NULL;
}

/* COPY the rows whose status is 0 into events or the staging table. */
static enum pg_status copy_rows(struct pg_writer *w, const struct batch *b, struct copy_req *q,
                                char *err, size_t errlen)
{
    q->bad_row = -1;
    q->attrs_col = false;
    q->constraint = false;
    q->sqlstate[0] = '\0';
    q->cut_rows = 0;
    enum pg_status pr = pg_conn_copy_begin(w->conn, q->sql, err, errlen);
    if (pr != PG_OK)
        return pr;
    struct buf cb = BUF_INIT;
    struct pg_copy_src sc = {NULL, NULL};
    pg_copy_header(&cb);
    int rc = 0;
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        if (q->status[i])
            continue;
        enum pg_copy_attrs attrs = q->noattrs && q->noattrs[i] ? PG_COPY_ATTRS_NULL
                                   : q->strict                 ? PG_COPY_ATTRS_STRICT
                                                               : PG_COPY_ATTRS_CHEAP;
        if (pg_copy_row(&cb, &b->rows[i].env, &sc, attrs))
            q->cut_rows++;
        if (cb.len >= COPY_FLUSH_BYTES) {
            rc = pg_conn_copy_put(w->conn, cb.p, cb.len);
            buf_reset(&cb);
        }
    }
    pg_copy_src_release(&sc);
    pg_copy_trailer(&cb);
    if (rc == 0)
        rc = pg_conn_copy_put(w->conn, cb.p, cb.len);
    buf_release(&cb);
    PGresult *failed = NULL;
    pr = pg_conn_copy_end(w->conn, rc == 0 ? NULL : "client error", &failed, err, errlen);
    if (failed) {
        copy_failure(q, b, failed);
        PQclear(failed);
    }
    return pr;
}

/* What the transaction knows of each stream of the batch (indexed like the
 * chain_check's streams). */
struct stream_info {
    bool stored;  /* it has stored rows (last_seq >= 0) */
    bool created; /* its row was inserted by this transaction */
    bool ranged;  /* min/max below are known */
    int64_t min_us, max_us;
};

/* The stream ids of the check as a text[] literal in a (begun by the
 * caller's pg_array_begin). */
static const char *stream_ids(struct chain_check *cc, struct buf *a)
{
    pg_array_begin(a);
    for (size_t i = 0; i < chain_check_nstreams(cc); i++)
        pg_array_str(a, chain_check_stream(cc, i)->id);
    return pg_array_end(a);
}

/* Lock the batch's streams, new ones included (their row inserted first,
 * last_seq -1), and hand their stored state to the check. */
static enum pg_status lock_streams(struct pg_writer *w, struct chain_check *cc,
                                   struct stream_info *info, char *err, size_t errlen)
{
    struct buf a = BUF_INIT;
    const char *p[] = {stream_ids(cc, &a)};
    PGresult *r = NULL;
    enum pg_status pr = pg_conn_exec_prepared(w->conn, STMT_W_STREAMS_NEW, 1, p, &r, err, errlen);
    if (pr == PG_OK) {
        PQclear(r);
        r = NULL;
        pr = pg_conn_exec_prepared(w->conn, STMT_W_STREAMS_LOCK, 1, p, &r, err, errlen);
    }
    buf_release(&a);
    if (pr != PG_OK)
        return pr;
    for (int i = 0; i < PQntuples(r); i++) {
        ssize_t k = chain_check_find(cc, PQgetvalue(r, i, 0));
        if (k < 0)
            continue;
        int64_t last_seq = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        struct stream_info *si = &info[k];
        si->ranged = !PQgetisnull(r, i, 3) && !PQgetisnull(r, i, 4);
        if (si->ranged) {
            si->min_us = strtoll(PQgetvalue(r, i, 3), NULL, 10);
            si->max_us = strtoll(PQgetvalue(r, i, 4), NULL, 10);
        }
        if (last_seq < 0) {
            si->created = true; /* ours, or one that never stored a row */
            continue;
        }
        si->stored = true;
        uint8_t last[CHAIN_HASH_LEN] = {0};
        const char *h = PQgetvalue(r, i, 2); /* bytea text: \x + hex */
        if (strlen(h) == 2 + 2 * CHAIN_HASH_LEN)
            (void)hex_decode(h + 2, CHAIN_HASH_LEN, last);
        chain_check_set_state(cc, (size_t)k, last_seq, last);
    }
    PQclear(r);
    return PG_OK;
}

/* Run SQL_W_LOOKUP_RANGE (or, lo == hi == 0, SQL_W_LOOKUP_ALL) over the
 * pairs l[idx[i]] and hand the stored hashes found to the check. */
static enum pg_status lookup_exec(struct pg_writer *w, struct chain_check *cc,
                                  const struct chain_lookup *l, const size_t *idx, size_t n,
                                  int64_t lo, int64_t hi, char *err, size_t errlen)
{
    struct buf ids = BUF_INIT, seqs = BUF_INIT;
    pg_array_begin(&ids);
    pg_array_begin(&seqs);
    for (size_t i = 0; i < n; i++) {
        pg_array_str(&ids, chain_check_stream(cc, l[idx[i]].stream)->id);
        pg_array_i64(&seqs, l[idx[i]].seq);
    }
    char from[PG_TIME_TEXT_LEN], to[PG_TIME_TEXT_LEN];
    pg_time_text(lo, from);
    pg_time_text(hi, to);
    const char *p[] = {pg_array_end(&ids), pg_array_end(&seqs), from, to};
    bool all = lo == 0 && hi == 0;
    PGresult *r = NULL;
    /* Unprepared on purpose: planned with its bounds (pg_sql.h). */
    enum pg_status pr = pg_conn_exec(w->conn, all ? SQL_W_LOOKUP_ALL : SQL_W_LOOKUP_RANGE,
                                     all ? 2 : 4, p, &r, err, errlen);
    buf_release(&ids);
    buf_release(&seqs);
    if (pr != PG_OK)
        return pr;
    for (int i = 0; i < PQntuples(r); i++) {
        ssize_t k = chain_check_find(cc, PQgetvalue(r, i, 0));
        const char *h = PQgetvalue(r, i, 2);
        uint8_t hash[CHAIN_HASH_LEN];
        if (k >= 0 && strlen(h) == 2 + 2 * CHAIN_HASH_LEN &&
            hex_decode(h + 2, CHAIN_HASH_LEN, hash) == 0)
            chain_check_add_stored(cc, (size_t)k, strtoll(PQgetvalue(r, i, 1), NULL, 10), hash);
    }
    PQclear(r);
    return PG_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The narrow lookup: every pair within its row's own UTC day, one statement
 * per run of consecutive days (usually one). */
static enum pg_status lookup_days(struct pg_writer *w, const struct batch *b,
                                  struct chain_check *cc, const struct chain_lookup *l, size_t np,
                                  char *err, size_t errlen)
{
    int64_t *day = xmalloc(np * sizeof(*day)), *days = xmalloc(np * sizeof(*days));
    size_t *idx = xmalloc(np * sizeof(*idx));
    for (size_t i = 0; i < np; i++)
        days[i] = day[i] = part_day_floor(b->rows[l[i].row].env.time_us);
    qsort(days, np, sizeof(*days), cmp_i64);
    enum pg_status pr = PG_OK;
    for (size_t i = 0; i < np && pr == PG_OK;) {
        size_t j = i + 1;
        while (j < np && days[j] - days[j - 1] <= PART_DAY_US)
            j++;
        int64_t lo = days[i], hi = days[j - 1] + PART_DAY_US;
        size_t n = 0;
        for (size_t k = 0; k < np; k++)
            if (day[k] >= lo && day[k] < hi)
                idx[n++] = k;
        pr = lookup_exec(w, cc, l, idx, n, lo, hi, err, errlen);
        i = j;
    }
    free(day);
    free(days);
    free(idx);
    return pr;
}

/* The wide lookup, for what the narrow one did not settle (a re-send whose
 * time changed, the predecessor of a late row, an older fork): per stream,
 * within its event_time range; across all partitions only for a stream
 * whose range is unknown (stored before migration 002). */
static enum pg_status lookup_streams(struct pg_writer *w, struct chain_check *cc,
                                     const struct stream_info *info, const struct chain_lookup *l,
                                     size_t np, char *err, size_t errlen)
{
    size_t *idx = xmalloc(np * sizeof(*idx));
    enum pg_status pr = PG_OK;
    for (size_t k = 0; k < chain_check_nstreams(cc) && pr == PG_OK; k++) {
        if (!info[k].stored)
            continue; /* nothing stored: nothing to find */
        size_t n = 0;
        for (size_t i = 0; i < np; i++)
            if (l[i].stream == k && !chain_check_resolved(cc, &l[i]))
                idx[n++] = i;
        if (n == 0)
            continue;
        if (info[k].ranged)
            pr = lookup_exec(w, cc, l, idx, n, info[k].min_us, info[k].max_us + 1, err, errlen);
        else
            pr = lookup_exec(w, cc, l, idx, n, 0, 0, err, errlen);
    }
    free(idx);
    return pr;
}

/* Fetch the stored hashes the check needs: first in the rows' own days,
 * then within their streams' ranges for what that did not settle. The wide
 * lookup may return rows again: duplicates are harmless to the check. */
static enum pg_status lookup(struct pg_writer *w, const struct batch *b, struct chain_check *cc,
                             const struct stream_info *info, char *err, size_t errlen)
{
    const struct chain_lookup *l;
    size_t np = chain_check_lookups(cc, &l);
    if (np == 0)
        return PG_OK;
    enum pg_status pr = lookup_days(w, b, cc, l, np, err, errlen);
    if (pr == PG_OK)
        pr = lookup_streams(w, cc, info, l, np, err, errlen);
    return pr;
}

/* After this many rows refused by jsonb, stop guessing and validate the
 * whole batch with jansson. */
#define ATTRS_RETRIES 4

/* Store the rows with status CHAIN_ROW_STORE: COPY straight into events under a
 * savepoint. If jsonb refuses a row's attrs, roll back to the savepoint and
 * resend with that row's attrs NULL. On a primary-key conflict (23505) roll
 * back and go through staging + INSERT … ON CONFLICT DO NOTHING instead. */
static enum pg_status store_rows(struct pg_writer *w, const struct batch *b, const uint8_t *status,
                                 size_t to_store, struct pg_write_stats *stats, char *err,
                                 size_t errlen)
{
    struct copy_req q = {.status = status, .sql = SQL_W_EVENTS_COPY};
    uint8_t *noattrs = NULL;
    enum pg_status pr;
    for (int attempt = 0;; attempt++) {
        if ((pr = pg_conn_exec(w->conn, SQL_W_SAVEPOINT, 0, NULL, NULL, err, errlen)) != PG_OK)
            goto out;
        pr = copy_rows(w, b, &q, err, errlen);
        if (pr == PG_OK) {
            stats->inserted = to_store;
            stats->fields_cut = q.cut_rows;
            pr = pg_conn_exec(w->conn, SQL_W_SAVEPOINT_RELEASE, 0, NULL, NULL, err, errlen);
            goto out;
        }
        stats->bad_row = q.bad_row;
        if (pr != PG_DATA || !q.attrs_col || q.strict)
            break;
        /* The record looked like a JSON object but is not one jsonb takes
         * (syntax, encoding, depth): store it with attrs NULL. */
        if ((pr = pg_conn_exec(w->conn, SQL_W_SAVEPOINT_ROLLBACK, 0, NULL, NULL, err, errlen)) !=
            PG_OK)
            goto out;
        if (!noattrs)
            noattrs = xcalloc(b->n, 1);
        if (q.bad_row >= 0 && attempt < ATTRS_RETRIES)
            noattrs[q.bad_row] = 1;
        else
            q.strict = true;
        q.noattrs = noattrs;
        stats->bad_row = -1;
    }
    if (strcmp(q.sqlstate, "23505") != 0) {
        /* 23514 without a constraint is "no partition of relation found
         * for row": every row's day was ensured, so our cache is stale (a
         * partition was dropped behind us); the caller's retry refreshes it
         * and re-creates the partition. With one, it is a CHECK constraint
         * (an operator's) refusing the row: data. */
        if (strcmp(q.sqlstate, "23514") == 0 && !q.constraint)
            pr = PG_TRANSIENT;
        goto out;
    }
    stats->bad_row = -1;
    /* Rare path: validate attrs up front rather than retry around them. */
    q.sql = SQL_W_STAGE_COPY;
    q.strict = true;
    if ((pr = pg_conn_exec(w->conn, SQL_W_SAVEPOINT_ROLLBACK, 0, NULL, NULL, err, errlen)) !=
            PG_OK ||
        (pr = copy_rows(w, b, &q, err, errlen)) != PG_OK) {
        stats->bad_row = q.bad_row;
        goto out;
    }
    PGresult *r = NULL;
    if ((pr = pg_conn_exec_prepared(w->conn, STMT_W_INSERT, 0, NULL, &r, err, errlen)) != PG_OK)
        goto out;
    stats->inserted = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
    stats->fields_cut = q.cut_rows;
    PQclear(r);
    log_info("pg_writer: %zu of %zu rows were already stored under their primary key",
             to_store - stats->inserted, to_store);
out:
    free(noattrs);
    return pr;
}

static enum pg_status upsert_streams(struct pg_writer *w, struct chain_check *cc, char *err,
                                     size_t errlen)
{
    enum { NCOL = 9 };
    struct buf a[NCOL];
    for (int i = 0; i < NCOL; i++) {
        a[i] = (struct buf)BUF_INIT;
        pg_array_begin(&a[i]);
    }
    struct pg_copy_src sc = {NULL, NULL};
    size_t cnt = 0;
    for (size_t k = 0; k < chain_check_nstreams(cc); k++) {
        const struct chain_stream *s = chain_check_stream(cc, k);
        if (!s->touched)
            continue;
        char hex[2 * CHAIN_HASH_LEN + 1], lo[PG_TIME_TEXT_LEN], hi[PG_TIME_TEXT_LEN];
        hex_encode(s->new_hash, CHAIN_HASH_LEN, hex);
        pg_time_text(s->min_time_us, lo);
        pg_time_text(s->max_time_us, hi);
        pg_array_str(&a[0], s->id);
        pg_array_i64(&a[1], s->new_seq);
        pg_array_str(&a[2], hex);
        pg_array_i64(&a[3], s->gaps);
        pg_array_i64(&a[4], s->breaks);
        pg_array_i64(&a[5], s->forks);
        pg_array_str(&a[6], pg_copy_src_json(&sc, s->src));
        pg_array_str(&a[7], lo);
        pg_array_str(&a[8], hi);
        cnt++;
    }
    enum pg_status pr = PG_OK;
    pg_copy_src_release(&sc);
    if (cnt) {
        const char *p[NCOL];
        for (int i = 0; i < NCOL; i++)
            p[i] = pg_array_end(&a[i]);
        pr = pg_conn_exec_prepared(w->conn, STMT_W_STREAMS_UPSERT, NCOL, p, NULL, err, errlen);
    }
    for (int i = 0; i < NCOL; i++)
        buf_release(&a[i]);
    return pr;
}

/* Streams whose row this transaction inserted but which stored nothing: no
 * row left with last_seq -1. */
static enum pg_status drop_unused_streams(struct pg_writer *w, struct chain_check *cc,
                                          const struct stream_info *info, char *err, size_t errlen)
{
    struct buf a = BUF_INIT;
    pg_array_begin(&a);
    size_t n = 0;
    for (size_t k = 0; k < chain_check_nstreams(cc); k++)
        if (info[k].created && !chain_check_stream(cc, k)->touched) {
            pg_array_str(&a, chain_check_stream(cc, k)->id);
            n++;
        }
    enum pg_status pr = PG_OK;
    if (n) {
        const char *p[] = {pg_array_end(&a)};
        pr = pg_conn_exec_prepared(w->conn, STMT_W_STREAMS_UNUSED, 1, p, NULL, err, errlen);
    }
    buf_release(&a);
    return pr;
}

static enum pg_status insert_incidents(struct pg_writer *w, struct chain_check *cc, char *err,
                                       size_t errlen)
{
    const struct chain_incident *inc;
    size_t n = chain_check_incidents(cc, &inc);
    /* Rare: one prepared INSERT each. */
    for (size_t i = 0; i < n; i++) {
        char seq[24];
        snprintf(seq, sizeof(seq), "%" PRId64, inc[i].seq);
        const char *p[] = {inc[i].kind,   chain_check_stream(cc, inc[i].stream)->id,
                           seq,           inc[i].expected,
                           inc[i].actual, inc[i].evidence};
        enum pg_status pr =
            pg_conn_exec_prepared(w->conn, STMT_W_INCIDENT, 6, p, NULL, err, errlen);
        if (pr != PG_OK)
            return pr;
    }
    return PG_OK;
}

/* Once committed: one line per incident (logged here, where their details
 * are known, and only once they are stored). */
static void log_incidents(struct chain_check *cc)
{
    const struct chain_incident *inc;
    size_t n = chain_check_incidents(cc, &inc);
    for (size_t i = 0; i < n; i++)
        log_warn("integrity: %s stream=%s seq=%" PRId64 " expected=%s actual=%s", inc[i].kind,
                 chain_check_stream(cc, inc[i].stream)->id, inc[i].seq, inc[i].expected,
                 inc[i].actual);
}

/* Make sure the partitions of the batch's days exist (in the transaction). */
static enum pg_status ensure_partitions(struct pg_writer *w, const struct batch *b, size_t *created,
                                        char *err, size_t errlen)
{
    int64_t *times = xmalloc(b->n * sizeof(*times));
    for (size_t i = 0; i < b->n; i++)
        times[i] = b->rows[i].env.time_us;
    struct part_groups g;
    part_groups_init(&g, times, b->n);
    free(times);
    int made = 0;
    enum pg_status pr = part_ensure(&w->parts, w->conn, g.days, g.m, &made, err, errlen);
    if (pr == PG_OK) /* retention keeps what was written lately (issue 9 item 4) */
        pr = part_note_writes(w->conn, g.days, g.m, time_now_us(), err, errlen);
    part_groups_release(&g);
    *created = (size_t)made;
    return pr;
}

/* The rows' part of the transaction (b->n > 0): partitions, the streams'
 * locked state and stored hashes, the check, then storing what it kept, the
 * streams' new state and the incidents. *ccp receives the check (freed by
 * the caller) for what follows the commit. */
static enum pg_status write_rows(struct pg_writer *w, const struct batch *b,
                                 struct pg_write_stats *stats, struct chain_check **ccp, char *err,
                                 size_t errlen)
{
    enum pg_status pr = ensure_partitions(w, b, &stats->partitions_created, err, errlen);
    if (pr != PG_OK)
        return pr;
    struct chain_check *cc = *ccp = chain_check_new(b);
    struct stream_info *info = xcalloc(chain_check_nstreams(cc) + 1, sizeof(*info));
    if ((pr = lock_streams(w, cc, info, err, errlen)) != PG_OK ||
        (pr = lookup(w, b, cc, info, err, errlen)) != PG_OK)
        goto out;
    chain_check_run(cc);
    const struct chain_stats *cs = chain_check_stats(cc);
    stats->dup_stream = cs->resends;
    stats->forks = cs->forks;
    stats->gaps = cs->gaps;
    stats->chain_breaks = cs->chain_breaks;
    size_t to_store = b->n - cs->resends;
    if (to_store > 0) {
        pr = store_rows(w, b, chain_check_status(cc), to_store, stats, err, errlen);
        if (pr != PG_OK)
            goto out;
        stats->dup_pk = to_store - stats->inserted;
    }
    if ((pr = upsert_streams(w, cc, err, errlen)) != PG_OK ||
        (pr = drop_unused_streams(w, cc, info, err, errlen)) != PG_OK)
        goto out;
    pr = insert_incidents(w, cc, err, errlen);
out:
    free(info);
    return pr;
}

/* One transaction for b (a whole batch, or a run of its rows: see
 * pg_writer_write). stats: this transaction's counts; bad_row indexes b. */
static enum pg_status write_tx(struct pg_writer *w, const struct batch *b,
                               struct pg_write_stats *stats, char *err, size_t errlen)
{
    struct chain_check *cc = NULL;
    enum pg_status pr = ensure_conn(w, err, errlen);
    if (pr != PG_OK)
        return pr;
    if ((pr = pg_conn_exec(w->conn, SQL_BEGIN, 0, NULL, NULL, err, errlen)) != PG_OK ||
        (pr = cas_offsets(w, b, err, errlen)) != PG_OK ||
        (b->n > 0 && (pr = write_rows(w, b, stats, &cc, err, errlen)) != PG_OK))
        goto fail;
    if (w->dry_run) { /* everything done, nothing kept; partitions made are gone */
        pr = pg_conn_exec(w->conn, SQL_ROLLBACK, 0, NULL, NULL, err, errlen);
        w->parts.stale = true;
        goto out;
    }
    /* A failed COMMIT (or one answered ROLLBACK) leaves nothing committed
     * (or, on a lost link, an unknown outcome: the offset CAS makes the
     * retry safe); nothing is marked committed. */
    if ((pr = pg_conn_commit(w->conn, err, errlen)) == PG_OK && cc)
        log_incidents(cc);
    goto out;
fail:
    pg_conn_rollback(w->conn);
    /* The partition set may have changed under us (retention, another
     * creator): reload it before the retry. */
    w->parts.stale = true;
out:
    chain_check_free(cc);
    return pr;
}

/* The end of the run of rows from `from` that falls on at most max_days
 * UTC days. */
static size_t run_end(const struct batch *b, size_t from, int max_days)
{
    int64_t days[max_days];
    int nd = 0;
    for (size_t i = from; i < b->n; i++) {
        int64_t d = part_day_floor(b->rows[i].env.time_us);
        bool seen = false;
        for (int k = nd; k-- > 0 && !seen;) /* the latest days first: rows cluster */
            seen = days[k] == d;
        if (seen)
            continue;
        if (nd == max_days)
            return i;
        days[nd++] = d;
    }
    return b->n;
}

static void stats_add(struct pg_write_stats *t, const struct pg_write_stats *s)
{
    t->inserted += s->inserted;
    t->fields_cut += s->fields_cut;
    t->dup_stream += s->dup_stream;
    t->dup_pk += s->dup_pk;
    t->forks += s->forks;
    t->gaps += s->gaps;
    t->chain_breaks += s->chain_breaks;
    t->partitions_created += s->partitions_created;
    t->transactions++;
}

enum pg_status pg_writer_write(struct pg_writer *w, const struct batch *b,
                               struct pg_write_stats *stats, char *err, size_t errlen)
{
    uint8_t *committed = stats->committed;
    memset(stats, 0, sizeof(*stats));
    stats->committed = xrealloc(committed, b->n ? b->n : 1);
    memset(stats->committed, 0, b->n ? b->n : 1);
    stats->bad_row = -1;
    err[0] = '\0';
    busy_begin(w);

    /* The offsets of a run before the last: checked, not moved (a
     * partition without a stored offset yet has nothing to check). */
    struct batch_offset *hold = xmalloc((b->noffsets ? b->noffsets : 1) * sizeof(*hold));
    size_t nhold = 0;
    for (size_t i = 0; i < b->noffsets; i++)
        if (b->offsets[i].expected_offset >= 0) {
            hold[nhold] = b->offsets[i];
            hold[nhold++].next_offset = b->offsets[i].expected_offset;
        }
    enum pg_status pr = PG_OK;
    size_t from = 0;
    do {
        size_t to = run_end(b, from, w->max_days);
        bool last = to == b->n;
        struct batch run = {
            .topic = b->topic,
            .rows = b->rows + from,
            .n = to - from,
            .cap = to - from,
            .offsets = last ? b->offsets : hold,
            .noffsets = last ? b->noffsets : nhold,
        };
        struct pg_write_stats rs = {.bad_row = -1};
        pr = write_tx(w, &run, &rs, err, errlen);
        if (pr != PG_OK) {
            stats->bad_row = pr == PG_DATA && rs.bad_row >= 0 ? (ssize_t)from + rs.bad_row : -1;
            break;
        }
        stats_add(stats, &rs);
        if (to > from)
            memset(stats->committed + from, 1, to - from);
        from = to;
    } while (from < b->n);
    free(hold);
    if (pr == PG_OK && stats->transactions > 1)
        log_info("pg_writer: %zu rows over more than %d days written in %zu transactions", b->n,
                 w->max_days, stats->transactions);
    if (pr != PG_OK) {
        ssize_t bad = stats->bad_row;
        uint8_t *cm = stats->committed;
        memset(stats, 0, sizeof(*stats));
        memset(cm, 0, b->n ? b->n : 1);
        stats->committed = cm;
        stats->bad_row = bad;
    }
    busy_end(w);
    return pr;
}

/* ---- read path: the ingest side's last commit position (/v1/status) */
enum pg_status pg_writer_wal_lsn(struct pg_writer *w, char *out, size_t len, char *err,
                                 size_t errlen)
{
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(w->conn, SQL_W_WAL_LSN, 0, NULL, &res, err, errlen);
    if (st == PG_OK) {
        snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return st;
}
