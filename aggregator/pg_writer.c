/* The PostgreSQL writer (aggregator/pg_writer.h): one transaction per batch.
 *
 * Order inside the transaction: compare-and-set of the Kafka offsets first
 * (it takes the offsets' row locks, so a competing consumer of the same
 * partition waits and then fails its CAS instead of doing the work twice);
 * ensure partitions; lock the batch's streams (sorted, FOR UPDATE); look up
 * stored hashes only where needed (seq <= last_seq, or the predecessor of a
 * row below last_seq), first in the row's own day partition, then wide;
 * classify in C (re-send, fork, gap, chain break); store the remaining rows
 * with a binary COPY straight into auditrail.events under a savepoint, or,
 * if a primary key already exists, through a temp staging table and
 * INSERT … SELECT … ON CONFLICT DO NOTHING; upsert streams; record
 * incidents; COMMIT. Classifying before sending means the common case costs
 * one COPY, close to a raw COPY of the same rows. All SQL is in pg_sql.h;
 * values travel as parameters or COPY data, never as SQL text. */
#include "aggregator/pg_writer.h"

#include <inttypes.h>
#include <libpq-fe.h>
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
    struct part_cache parts;
    bool dry_run; /* roll back instead of committing (replay --dry-run) */
};

/* ---- connection ---- */

static const struct pg_stmt writer_stmts[] = {
    {STMT_W_OFFSET_LOAD, SQL_W_OFFSET_LOAD}, {STMT_W_OFFSET_CAS, SQL_W_OFFSET_CAS},
    {STMT_W_OFFSET_INIT, SQL_W_OFFSET_INIT}, {STMT_W_STREAMS_LOCK, SQL_W_STREAMS_LOCK},
    {STMT_W_LOOKUP, SQL_W_LOOKUP},           {STMT_W_LOOKUP_DAY, SQL_W_LOOKUP_DAY},
    {STMT_W_INSERT, SQL_W_INSERT},           {STMT_W_STREAMS_UPSERT, SQL_W_STREAMS_UPSERT},
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

struct pg_writer *pg_writer_new(const char *conninfo, const char *group, char *err, size_t errlen)
{
    struct pg_writer *w = xcalloc(1, sizeof(*w));
    w->conn = pg_conn_new(conninfo, &writer_conn_opts);
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
    enum pg_status r = ensure_conn(w, err, errlen);
    if (r != PG_OK)
        return r;
    return pg_conn_exec(w->conn, SQL_PING, 0, NULL, NULL, err, errlen);
}

enum pg_status pg_writer_load_offset(struct pg_writer *w, const char *topic, int32_t partition,
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
    ssize_t bad_row; /* batch index of the row the server named, or -1 */
    bool attrs_col;  /* the error was in the attrs column */
    char sqlstate[6];
};

/* The server named a row of the COPY that failed ("COPY events, line N,
 * column x": the N-th row sent); remember which batch row, and whether
 * attrs was the column. */
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
}

/* COPY the rows whose status is 0 into events or the staging table. */
static enum pg_status copy_rows(struct pg_writer *w, const struct batch *b, struct copy_req *q,
                                char *err, size_t errlen)
{
    q->bad_row = -1;
    q->attrs_col = false;
    q->sqlstate[0] = '\0';
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
        pg_copy_row(&cb, &b->rows[i].env, &sc, attrs);
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

/* Lock the batch's streams and hand their stored state to the check. */
static enum pg_status lock_streams(struct pg_writer *w, struct chain_check *cc, char *err,
                                   size_t errlen)
{
    struct buf a = BUF_INIT;
    pg_array_begin(&a);
    for (size_t i = 0; i < chain_check_nstreams(cc); i++)
        pg_array_str(&a, chain_check_stream(cc, i)->id);
    const char *p[] = {pg_array_end(&a)};
    PGresult *r = NULL;
    enum pg_status pr = pg_conn_exec_prepared(w->conn, STMT_W_STREAMS_LOCK, 1, p, &r, err, errlen);
    buf_release(&a);
    if (pr != PG_OK)
        return pr;
    for (int i = 0; i < PQntuples(r); i++) {
        ssize_t k = chain_check_find(cc, PQgetvalue(r, i, 0));
        if (k < 0)
            continue;
        uint8_t last[CHAIN_HASH_LEN] = {0};
        const char *h = PQgetvalue(r, i, 2); /* bytea text: \x + hex */
        if (strlen(h) == 2 + 2 * CHAIN_HASH_LEN)
            (void)hex_decode(h + 2, CHAIN_HASH_LEN, last);
        chain_check_set_state(cc, (size_t)k, strtoll(PQgetvalue(r, i, 1), NULL, 10), last);
    }
    PQclear(r);
    return PG_OK;
}

/* Run one lookup statement over the pairs l[idx[i]] and hand the stored
 * hashes found to the check. by_day: only in each pair's own UTC day. */
static enum pg_status lookup_run(struct pg_writer *w, const struct batch *b, struct chain_check *cc,
                                 const struct chain_lookup *l, const size_t *idx, size_t n,
                                 bool by_day, char *err, size_t errlen)
{
    struct buf ids = BUF_INIT, seqs = BUF_INIT, days = BUF_INIT;
    pg_array_begin(&ids);
    pg_array_begin(&seqs);
    pg_array_begin(&days);
    for (size_t i = 0; i < n; i++) {
        const struct chain_lookup *lp = &l[idx[i]];
        pg_array_str(&ids, chain_check_stream(cc, lp->stream)->id);
        pg_array_i64(&seqs, lp->seq);
        pg_array_i64(&days, part_day_floor(b->rows[lp->row].env.time_us) / 1000000);
    }
    const char *p[] = {pg_array_end(&ids), pg_array_end(&seqs), pg_array_end(&days)};
    PGresult *r = NULL;
    enum pg_status pr = pg_conn_exec_prepared(w->conn, by_day ? STMT_W_LOOKUP_DAY : STMT_W_LOOKUP,
                                              by_day ? 3 : 2, p, &r, err, errlen);
    buf_release(&ids);
    buf_release(&seqs);
    buf_release(&days);
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

/* Fetch stored hashes for the (stream, seq) pairs that need them: first in
 * the partition of the row's own day (run-time pruned to one partition per
 * pair), then across all partitions for what that did not settle. */
static enum pg_status lookup(struct pg_writer *w, const struct batch *b, struct chain_check *cc,
                             char *err, size_t errlen)
{
    const struct chain_lookup *l;
    size_t np = chain_check_lookups(cc, &l);
    if (np == 0)
        return PG_OK;
    size_t *idx = xmalloc(np * sizeof(*idx));
    for (size_t i = 0; i < np; i++)
        idx[i] = i;
    enum pg_status pr = lookup_run(w, b, cc, l, idx, np, true, err, errlen);
    size_t nun = 0;
    for (size_t i = 0; pr == PG_OK && i < np; i++)
        if (!chain_check_resolved(cc, &l[i]))
            idx[nun++] = i;
    /* The wide lookup returns these pairs' rows again: duplicates are
     * harmless to the check. */
    if (pr == PG_OK && nun)
        pr = lookup_run(w, b, cc, l, idx, nun, false, err, errlen);
    free(idx);
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
                                 size_t to_store, size_t *inserted, ssize_t *bad_row, char *err,
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
            *inserted = to_store;
            pr = pg_conn_exec(w->conn, SQL_W_SAVEPOINT_RELEASE, 0, NULL, NULL, err, errlen);
            goto out;
        }
        *bad_row = q.bad_row;
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
        *bad_row = -1;
    }
    if (strcmp(q.sqlstate, "23505") != 0) {
        /* events has no CHECK constraint, so 23514 is "no partition of
         * relation found for row": every row's day was ensured, so our cache
         * is stale (a partition was dropped behind us); the caller's retry
         * refreshes it and re-creates the partition. */
        if (strcmp(q.sqlstate, "23514") == 0)
            pr = PG_TRANSIENT;
        goto out;
    }
    *bad_row = -1;
    /* Rare path: validate attrs up front rather than retry around them. */
    q.sql = SQL_W_STAGE_COPY;
    q.strict = true;
    if ((pr = pg_conn_exec(w->conn, SQL_W_SAVEPOINT_ROLLBACK, 0, NULL, NULL, err, errlen)) !=
            PG_OK ||
        (pr = copy_rows(w, b, &q, err, errlen)) != PG_OK) {
        *bad_row = q.bad_row;
        goto out;
    }
    PGresult *r = NULL;
    if ((pr = pg_conn_exec_prepared(w->conn, STMT_W_INSERT, 0, NULL, &r, err, errlen)) != PG_OK)
        goto out;
    *inserted = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    log_info("pg_writer: %zu of %zu rows were already stored under their primary key",
             to_store - *inserted, to_store);
out:
    free(noattrs);
    return pr;
}

static enum pg_status upsert_streams(struct pg_writer *w, struct chain_check *cc, char *err,
                                     size_t errlen)
{
    struct buf a[7] = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
    for (int i = 0; i < 7; i++)
        pg_array_begin(&a[i]);
    struct pg_copy_src sc = {NULL, NULL};
    size_t cnt = 0;
    for (size_t k = 0; k < chain_check_nstreams(cc); k++) {
        const struct chain_stream *s = chain_check_stream(cc, k);
        if (!s->touched)
            continue;
        char hex[2 * CHAIN_HASH_LEN + 1];
        hex_encode(s->new_hash, CHAIN_HASH_LEN, hex);
        pg_array_str(&a[0], s->id);
        pg_array_i64(&a[1], s->new_seq);
        pg_array_str(&a[2], hex);
        pg_array_i64(&a[3], s->gaps);
        pg_array_i64(&a[4], s->breaks);
        pg_array_i64(&a[5], s->forks);
        pg_array_str(&a[6], pg_copy_src_json(&sc, s->src));
        cnt++;
    }
    enum pg_status pr = PG_OK;
    pg_copy_src_release(&sc);
    if (cnt) {
        const char *p[7];
        for (int i = 0; i < 7; i++)
            p[i] = pg_array_end(&a[i]);
        pr = pg_conn_exec_prepared(w->conn, STMT_W_STREAMS_UPSERT, 7, p, NULL, err, errlen);
    }
    for (int i = 0; i < 7; i++)
        buf_release(&a[i]);
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
    if ((pr = lock_streams(w, cc, err, errlen)) != PG_OK ||
        (pr = lookup(w, b, cc, err, errlen)) != PG_OK)
        return pr;
    chain_check_run(cc);
    const struct chain_stats *cs = chain_check_stats(cc);
    stats->dup_stream = cs->resends;
    stats->forks = cs->forks;
    stats->gaps = cs->gaps;
    stats->chain_breaks = cs->chain_breaks;
    size_t to_store = b->n - cs->resends;
    if (to_store > 0) {
        pr = store_rows(w, b, chain_check_status(cc), to_store, &stats->inserted, &stats->bad_row,
                        err, errlen);
        if (pr != PG_OK)
            return pr;
        stats->dup_pk = to_store - stats->inserted;
    }
    if ((pr = upsert_streams(w, cc, err, errlen)) != PG_OK)
        return pr;
    return insert_incidents(w, cc, err, errlen);
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
        if (pr == PG_OK)
            memset(stats->committed, 1, b->n);
        goto out;
    }
    if ((pr = pg_conn_exec(w->conn, SQL_COMMIT, 0, NULL, NULL, err, errlen)) != PG_OK) {
        /* A failed COMMIT leaves nothing committed (or, on a lost link, an
         * unknown outcome: the offset CAS makes the retry safe). */
        goto out;
    }
    memset(stats->committed, 1, b->n);
    if (cc)
        log_incidents(cc);
    goto out;

fail:
    pg_conn_rollback(w->conn);
    /* The partition set may have changed under us (retention, another
     * creator): reload it before the retry. */
    w->parts.stale = true;
out:
    if (pr != PG_OK) {
        size_t keep_bad = (size_t)stats->bad_row;
        uint8_t *cm = stats->committed;
        memset(stats, 0, sizeof(*stats));
        stats->committed = cm;
        stats->bad_row = pr == PG_DATA ? (ssize_t)keep_bad : -1;
    }
    chain_check_free(cc);
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
