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
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/partitions.h"
#include "aggregator/pg_copy.h"
#include "aggregator/pg_sql.h"
#include "common/buf.h"
#include "common/hashchain.h"
#include "common/log.h"
#include "common/xmalloc.h"

#define COPY_FLUSH_BYTES (1u << 20)

struct pg_writer {
    struct pg_connection *conn;
    char *group;
    struct part_cache parts;
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

/* ---- per-batch classification state ---- */

struct stream_st {
    const char *id;   /* points into the batch */
    bool exists;      /* has a streams row */
    int64_t last_seq; /* -1 when new */
    uint8_t last_hash[CHAIN_HASH_LEN];
    int64_t new_seq; /* after this batch */
    uint8_t new_hash[CHAIN_HASH_LEN];
    bool touched;                      /* something stored: upsert */
    const struct envelope_source *src; /* of its first stored row */
    int64_t gaps, breaks, forks;
};

struct stored_hash { /* one result row of the lookup */
    size_t sidx;
    int64_t seq;
    uint8_t hash[CHAIN_HASH_LEN];
};

struct incident {
    const char *kind;
    size_t sidx;
    int64_t seq;
    char expected[72], actual[72];
    char *evidence; /* heap JSON */
};

struct wctx {
    const struct batch *b;
    struct stream_st *st;
    size_t nst;
    size_t *row_st; /* row -> stream index */
    size_t *order;  /* rows sorted by (stream, seq, ord) */
    struct stored_hash *sh;
    size_t nsh;
    uint8_t *status; /* per row: 0 store, 1 dup_stream */
    struct incident *inc;
    size_t ninc, inccap;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * UINT64_C(1099511628211);
    return h;
}

static void index_streams(struct wctx *c)
{
    const struct batch *b = c->b;
    size_t cap = 16;
    while (cap < 2 * b->n)
        cap *= 2;
    size_t *slot = xcalloc(cap, sizeof(*slot));
    c->st = xcalloc(b->n ? b->n : 1, sizeof(*c->st));
    c->row_st = xmalloc((b->n ? b->n : 1) * sizeof(*c->row_st));
    for (size_t i = 0; i < b->n; i++) {
        const char *id = b->rows[i].env.stream;
        size_t h = fnv(id) & (cap - 1);
        while (slot[h] && strcmp(c->st[slot[h] - 1].id, id) != 0)
            h = (h + 1) & (cap - 1);
        if (!slot[h]) {
            struct stream_st *s = &c->st[c->nst];
            s->id = id;
            s->last_seq = -1;
            s->new_seq = -1;
            slot[h] = ++c->nst;
        }
        c->row_st[i] = slot[h] - 1;
    }
    free(slot);
}

static int cmp_order(const void *a, const void *b, void *ud)
{
    const struct wctx *c = ud;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (c->row_st[x] != c->row_st[y])
        return c->row_st[x] < c->row_st[y] ? -1 : 1;
    uint64_t sx = c->b->rows[x].env.seq, sy = c->b->rows[y].env.seq;
    if (sx != sy)
        return sx < sy ? -1 : 1;
    return (x > y) - (x < y);
}

static int cmp_sh(const void *a, const void *b)
{
    const struct stored_hash *x = a, *y = b;
    if (x->sidx != y->sidx)
        return x->sidx < y->sidx ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Range [*lo, *hi) of stored hashes for (sidx, seq). */
static void sh_range(const struct wctx *c, size_t sidx, int64_t seq, size_t *lo, size_t *hi)
{
    struct stored_hash key = {.sidx = sidx, .seq = seq};
    size_t l = 0, h = c->nsh;
    while (l < h) {
        size_t m = l + (h - l) / 2;
        if (cmp_sh(&c->sh[m], &key) < 0)
            l = m + 1;
        else
            h = m;
    }
    *lo = l;
    while (l < c->nsh && cmp_sh(&c->sh[l], &key) == 0)
        l++;
    *hi = l;
}

static void add_incident(struct wctx *c, const char *kind, size_t row, const char *expected,
                         const char *actual, const char *extra)
{
    if (c->ninc == c->inccap) {
        c->inccap = c->inccap ? c->inccap * 2 : 8;
        c->inc = xrealloc(c->inc, c->inccap * sizeof(*c->inc));
    }
    const struct batch_row *r = &c->b->rows[row];
    struct incident *in = &c->inc[c->ninc++];
    in->kind = kind;
    in->sidx = c->row_st[row];
    in->seq = (int64_t)r->env.seq;
    snprintf(in->expected, sizeof(in->expected), "%s", expected);
    snprintf(in->actual, sizeof(in->actual), "%s", actual);
    /* Only hex, numbers and our own words go in: no escaping needed except
     * the topic, which json_dumps handles. */
    json_t *ev = json_pack("{s:s, s:s, s:i, s:I}", "id", r->env.id, "topic",
                           c->b->topic ? c->b->topic : "", "kafka_partition",
                           (int)r->kafka_partition, "kafka_offset", (json_int_t)r->kafka_offset);
    if (extra) {
        json_t *x = json_loads(extra, 0, NULL);
        if (x)
            json_object_update(ev, x);
        json_decref(x);
    }
    in->evidence = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(ev);
}

static bool hash_in(const uint8_t *h, const uint8_t (*set)[CHAIN_HASH_LEN], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(h, set[i], CHAIN_HASH_LEN) == 0)
            return true;
    return false;
}

/* Classify every row: duplicates, forks, gaps, chain breaks; compute each
 * stream's new state. Needs c->st (locked state) and c->sh (lookups). */
static void classify(struct wctx *c, struct pg_write_stats *stats)
{
    const struct batch *b = c->b;
    size_t n = b->n;
    /* Distinct hashes of the previous (stream, seq) group in sorted order,
     * for the chain check of the next one. */
    uint8_t(*prev_set)[CHAIN_HASH_LEN] = xmalloc((n + 1) * CHAIN_HASH_LEN);
    uint8_t(*cur_set)[CHAIN_HASH_LEN] = xmalloc((n + 1) * CHAIN_HASH_LEN);
    uint8_t(*kept)[CHAIN_HASH_LEN] = xmalloc((n + 1) * CHAIN_HASH_LEN);
    size_t nprev = 0;
    size_t prev_sidx = SIZE_MAX;
    int64_t prev_seq = -2;
    int64_t expect_next = 0; /* per stream: next seq without a gap */

    for (size_t gi = 0; gi < n;) {
        size_t r0 = c->order[gi];
        size_t sidx = c->row_st[r0];
        struct stream_st *s = &c->st[sidx];
        int64_t seq = (int64_t)b->rows[r0].env.seq;
        size_t ge = gi;
        while (ge < n && c->row_st[c->order[ge]] == sidx &&
               (int64_t)b->rows[c->order[ge]].env.seq == seq)
            ge++;
        if (sidx != prev_sidx) {
            nprev = 0;
            prev_seq = -2;
            expect_next = s->last_seq + 1;
        }

        size_t slo = 0, shi = 0;
        if (seq <= s->last_seq)
            sh_range(c, sidx, seq, &slo, &shi);
        size_t nkept = 0, ncur = 0;
        bool any_stored = false;
        size_t first_stored_row = SIZE_MAX;
        for (size_t k = gi; k < ge; k++) {
            size_t r = c->order[k];
            const struct envelope *e = &b->rows[r].env;
            if (!hash_in(e->hash, (const uint8_t(*)[CHAIN_HASH_LEN])cur_set, ncur))
                memcpy(cur_set[ncur++], e->hash, CHAIN_HASH_LEN);
            bool stored_same = false;
            for (size_t j = slo; j < shi; j++)
                stored_same |= memcmp(c->sh[j].hash, e->hash, CHAIN_HASH_LEN) == 0;
            if (stored_same || hash_in(e->hash, (const uint8_t(*)[CHAIN_HASH_LEN])kept, nkept)) {
                c->status[r] = 1; /* re-send: same stream, seq and hash */
                stats->dup_stream++;
                continue;
            }
            c->status[r] = 0;
            if (shi > slo || nkept > 0) {
                char exp[72], act[72];
                hex_encode(shi > slo ? c->sh[slo].hash : kept[0], CHAIN_HASH_LEN, exp);
                hex_encode(e->hash, CHAIN_HASH_LEN, act);
                add_incident(c, "fork", r, exp, act,
                             shi > slo ? "{\"other\":\"stored\"}" : "{\"other\":\"batch\"}");
                stats->forks++;
                s->forks++;
            }
            memcpy(kept[nkept++], e->hash, CHAIN_HASH_LEN);
            any_stored = true;
            if (first_stored_row == SIZE_MAX)
                first_stored_row = r;
            if (!s->src)
                s->src = &e->source;

            /* Chain check: prev must be a known hash of seq - 1. */
            uint8_t(*known)[CHAIN_HASH_LEN] = NULL;
            size_t nknown = 0;
            uint8_t genesis[CHAIN_HASH_LEN];
            const char *from = NULL;
            uint8_t(*tmp)[CHAIN_HASH_LEN] = NULL;
            if (seq == 0) {
                chain_genesis(s->id, genesis);
                known = &genesis;
                nknown = 1;
                from = "genesis";
            } else {
                size_t plo = 0, phi = 0;
                if (seq - 1 < s->last_seq)
                    sh_range(c, sidx, seq - 1, &plo, &phi);
                bool batch_prev = prev_sidx == sidx && prev_seq == seq - 1 && nprev > 0;
                bool last = s->exists && seq - 1 == s->last_seq;
                size_t cnt = (phi - plo) + (batch_prev ? nprev : 0) + (last ? 1 : 0);
                if (cnt) {
                    tmp = xmalloc(cnt * CHAIN_HASH_LEN);
                    for (size_t j = plo; j < phi; j++)
                        memcpy(tmp[nknown++], c->sh[j].hash, CHAIN_HASH_LEN);
                    if (last)
                        memcpy(tmp[nknown++], s->last_hash, CHAIN_HASH_LEN);
                    for (size_t j = 0; batch_prev && j < nprev; j++)
                        memcpy(tmp[nknown++], prev_set[j], CHAIN_HASH_LEN);
                    known = tmp;
                    from = phi > plo ? "stored" : last ? "last_hash" : "batch";
                }
            }
            if (nknown && !hash_in(e->prev, (const uint8_t(*)[CHAIN_HASH_LEN])known, nknown)) {
                char exp[72], act[72], extra[64];
                hex_encode(known[0], CHAIN_HASH_LEN, exp);
                hex_encode(e->prev, CHAIN_HASH_LEN, act);
                snprintf(extra, sizeof(extra), "{\"expected_from\":\"%s\"}", from);
                add_incident(c, "chain_break", r, exp, act, extra);
                stats->chain_breaks++;
                s->breaks++;
            }
            free(tmp);
        }

        if (any_stored) {
            s->touched = true;
            if (seq > s->last_seq) {
                if (seq != expect_next) {
                    char exp[32], act[32], extra[96];
                    snprintf(exp, sizeof(exp), "%" PRId64, expect_next);
                    snprintf(act, sizeof(act), "%" PRId64, seq);
                    snprintf(extra, sizeof(extra),
                             "{\"missing_from\":%" PRId64 ",\"missing_to\":%" PRId64 "}",
                             expect_next, seq - 1);
                    add_incident(c, "gap", first_stored_row, exp, act, extra);
                    stats->gaps++;
                    s->gaps++;
                }
                expect_next = seq + 1;
                if (seq > s->new_seq) {
                    s->new_seq = seq;
                    memcpy(s->new_hash, b->rows[first_stored_row].env.hash, CHAIN_HASH_LEN);
                }
            }
        }
        memcpy(prev_set, cur_set, ncur * CHAIN_HASH_LEN);
        nprev = ncur;
        prev_sidx = sidx;
        prev_seq = seq;
        gi = ge;
    }
    free(prev_set);
    free(cur_set);
    free(kept);
}

static void wctx_release(struct wctx *c)
{
    free(c->st);
    free(c->row_st);
    free(c->order);
    free(c->sh);
    free(c->status);
    for (size_t i = 0; i < c->ninc; i++)
        free(c->inc[i].evidence);
    free(c->inc);
}

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

static enum pg_status lock_streams(struct pg_writer *w, struct wctx *c, char *err, size_t errlen)
{
    struct buf a = {0};
    pg_array_begin(&a);
    for (size_t i = 0; i < c->nst; i++)
        pg_array_str(&a, c->st[i].id);
    const char *p[] = {pg_array_end(&a)};
    PGresult *r = NULL;
    enum pg_status pr = pg_conn_exec_prepared(w->conn, STMT_W_STREAMS_LOCK, 1, p, &r, err, errlen);
    buf_release(&a);
    if (pr != PG_OK)
        return pr;
    /* Few streams per batch: match rows back by a linear scan per result. */
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        for (size_t k = 0; k < c->nst; k++) {
            if (strcmp(c->st[k].id, id) != 0)
                continue;
            struct stream_st *s = &c->st[k];
            s->exists = true;
            s->last_seq = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            s->new_seq = s->last_seq;
            const char *h = PQgetvalue(r, i, 2); /* bytea text: \x + hex */
            if (strlen(h) == 2 + 2 * CHAIN_HASH_LEN)
                (void)hex_decode(h + 2, CHAIN_HASH_LEN, s->last_hash);
            memcpy(s->new_hash, s->last_hash, CHAIN_HASH_LEN);
            break;
        }
    }
    PQclear(r);
    return PG_OK;
}

/* A (stream, seq) whose stored hashes classification needs: the group's own
 * seq (re-send or fork?) or its predecessor (chain check of a row below
 * last_seq). gi..ge is the group in c->order. */
struct lookup_pair {
    size_t sidx;
    int64_t seq;
    int64_t day_s; /* UTC day (epoch seconds) of the group's first row: the hint */
    bool pred;
    size_t gi, ge;
};

/* Run one lookup statement over pairs[i] for i in idx and append the
 * results to c->sh. */
static enum pg_status lookup_run(struct pg_writer *w, struct wctx *c,
                                 const struct lookup_pair *pairs, const size_t *idx, size_t n,
                                 bool by_day, char *err, size_t errlen)
{
    struct buf ids = {0}, seqs = {0}, days = {0};
    pg_array_begin(&ids);
    pg_array_begin(&seqs);
    pg_array_begin(&days);
    for (size_t i = 0; i < n; i++) {
        const struct lookup_pair *lp = &pairs[idx[i]];
        pg_array_str(&ids, c->st[lp->sidx].id);
        pg_array_i64(&seqs, lp->seq);
        pg_array_i64(&days, lp->day_s);
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
    int nt = PQntuples(r);
    c->sh = xrealloc(c->sh, (c->nsh + (size_t)nt + 1) * sizeof(*c->sh));
    for (int i = 0; i < nt; i++) {
        const char *id = PQgetvalue(r, i, 0);
        const char *h = PQgetvalue(r, i, 2);
        size_t k;
        for (k = 0; k < c->nst && strcmp(c->st[k].id, id) != 0; k++)
            ;
        if (k == c->nst || strlen(h) != 2 + 2 * CHAIN_HASH_LEN)
            continue;
        struct stored_hash *x = &c->sh[c->nsh];
        x->sidx = k;
        x->seq = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        if (hex_decode(h + 2, CHAIN_HASH_LEN, x->hash) == 0)
            c->nsh++;
    }
    PQclear(r);
    if (c->nsh > 1)
        qsort(c->sh, c->nsh, sizeof(*c->sh), cmp_sh);
    return PG_OK;
}

/* Whether the day lookup answered the pair for good: every hash the group
 * needs (its rows' hashes, or their prevs for a predecessor pair) was found.
 * Otherwise another partition may hold a row of that (stream, seq): a
 * re-send whose time changed, or an older fork. */
static bool pair_resolved(const struct wctx *c, const struct lookup_pair *lp)
{
    size_t lo, hi;
    sh_range(c, lp->sidx, lp->seq, &lo, &hi);
    if (lo == hi)
        return false;
    for (size_t k = lp->gi; k < lp->ge; k++) {
        const struct envelope *e = &c->b->rows[c->order[k]].env;
        const uint8_t *want = lp->pred ? e->prev : e->hash;
        bool found = false;
        for (size_t j = lo; j < hi && !found; j++)
            found = memcmp(c->sh[j].hash, want, CHAIN_HASH_LEN) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Fetch stored hashes for the (stream, seq) pairs that need them: first in
 * the partition of the row's own day (run-time pruned to one partition per
 * pair), then across all partitions for what that did not settle. */
static enum pg_status lookup(struct pg_writer *w, struct wctx *c, char *err, size_t errlen)
{
    const struct batch *b = c->b;
    struct lookup_pair *pairs = NULL;
    size_t np = 0, cap = 0;
    for (size_t gi = 0; gi < b->n;) {
        size_t r = c->order[gi];
        size_t sidx = c->row_st[r];
        const struct stream_st *s = &c->st[sidx];
        int64_t seq = (int64_t)b->rows[r].env.seq;
        size_t ge = gi;
        while (ge < b->n && c->row_st[c->order[ge]] == sidx &&
               (int64_t)b->rows[c->order[ge]].env.seq == seq)
            ge++;
        int64_t day_s = part_day_floor(b->rows[r].env.time_us) / 1000000;
        for (int pred = 0; pred < 2; pred++) {
            bool need = pred ? seq > 0 && seq - 1 < s->last_seq : seq <= s->last_seq;
            if (!need)
                continue;
            if (np == cap) {
                cap = cap ? cap * 2 : 16;
                pairs = xrealloc(pairs, cap * sizeof(*pairs));
            }
            pairs[np++] = (struct lookup_pair){sidx, pred ? seq - 1 : seq, day_s, pred, gi, ge};
        }
        gi = ge;
    }
    enum pg_status pr = PG_OK;
    size_t *idx = NULL;
    if (np == 0)
        goto out;
    idx = xmalloc(np * sizeof(*idx));
    for (size_t i = 0; i < np; i++)
        idx[i] = i;
    if ((pr = lookup_run(w, c, pairs, idx, np, true, err, errlen)) != PG_OK)
        goto out;
    size_t nun = 0;
    for (size_t i = 0; i < np; i++)
        if (!pair_resolved(c, &pairs[i]))
            idx[nun++] = i;
    /* The wide lookup returns these pairs' rows again: duplicates in c->sh
     * are harmless to classification. */
    if (nun)
        pr = lookup_run(w, c, pairs, idx, nun, false, err, errlen);
out:
    free(idx);
    free(pairs);
    return pr;
}

/* After this many rows refused by jsonb, stop guessing and validate the
 * whole batch with jansson. */
#define ATTRS_RETRIES 4

/* Store the rows with status 0: COPY straight into events under a
 * savepoint. If jsonb refuses a row's attrs, roll back to the savepoint and
 * resend with that row's attrs NULL. On a primary-key conflict (23505) roll
 * back and go through staging + INSERT … ON CONFLICT DO NOTHING instead. */
static enum pg_status store_rows(struct pg_writer *w, struct wctx *c, size_t to_store,
                                 size_t *inserted, ssize_t *bad_row, char *err, size_t errlen)
{
    struct copy_req q = {.status = c->status, .sql = SQL_W_EVENTS_COPY};
    uint8_t *noattrs = NULL;
    enum pg_status pr;
    for (int attempt = 0;; attempt++) {
        if ((pr = pg_conn_exec(w->conn, SQL_W_SAVEPOINT, 0, NULL, NULL, err, errlen)) != PG_OK)
            goto out;
        pr = copy_rows(w, c->b, &q, err, errlen);
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
            noattrs = xcalloc(c->b->n, 1);
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
        (pr = copy_rows(w, c->b, &q, err, errlen)) != PG_OK) {
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

static enum pg_status upsert_streams(struct pg_writer *w, struct wctx *c, char *err, size_t errlen)
{
    struct buf a[7] = {{0}};
    for (int i = 0; i < 7; i++)
        pg_array_begin(&a[i]);
    struct pg_copy_src sc = {NULL, NULL};
    size_t cnt = 0;
    for (size_t k = 0; k < c->nst; k++) {
        const struct stream_st *s = &c->st[k];
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

static enum pg_status insert_incidents(struct pg_writer *w, struct wctx *c, char *err,
                                       size_t errlen)
{
    /* Rare: one prepared INSERT each. */
    for (size_t i = 0; i < c->ninc; i++) {
        const struct incident *in = &c->inc[i];
        char seq[24];
        snprintf(seq, sizeof(seq), "%" PRId64, in->seq);
        const char *p[] = {in->kind,     c->st[in->sidx].id, seq,
                           in->expected, in->actual,         in->evidence};
        enum pg_status pr =
            pg_conn_exec_prepared(w->conn, STMT_W_INCIDENT, 6, p, NULL, err, errlen);
        if (pr != PG_OK)
            return pr;
        log_warn("integrity: %s stream=%s seq=%s expected=%s actual=%s", in->kind,
                 c->st[in->sidx].id, seq, in->expected, in->actual);
    }
    return PG_OK;
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

    struct wctx c = {.b = b};
    struct part_groups g = {0};
    enum pg_status pr = ensure_conn(w, err, errlen);
    if (pr != PG_OK)
        return pr;
    if ((pr = pg_conn_exec(w->conn, SQL_BEGIN, 0, NULL, NULL, err, errlen)) != PG_OK)
        goto fail;
    if ((pr = cas_offsets(w, b, err, errlen)) != PG_OK)
        goto fail;

    if (b->n > 0) {
        int64_t *times = xmalloc(b->n * sizeof(*times));
        for (size_t i = 0; i < b->n; i++)
            times[i] = b->rows[i].env.time_us;
        part_groups_build(&g, times, b->n);
        free(times);
        int created = 0;
        if ((pr = part_ensure(&w->parts, w->conn, g.days, g.m, &created, err, errlen)) != PG_OK)
            goto fail;
        stats->partitions_created = (size_t)created;

        index_streams(&c);
        c.order = xmalloc(b->n * sizeof(*c.order));
        for (size_t i = 0; i < b->n; i++)
            c.order[i] = i;
        qsort_r(c.order, b->n, sizeof(*c.order), cmp_order, &c);
        if ((pr = lock_streams(w, &c, err, errlen)) != PG_OK ||
            (pr = lookup(w, &c, err, errlen)) != PG_OK)
            goto fail;
        c.status = xcalloc(b->n, 1);
        classify(&c, stats);
        size_t to_store = b->n - stats->dup_stream;
        if (to_store > 0) {
            if ((pr = store_rows(w, &c, to_store, &stats->inserted, &stats->bad_row, err,
                                 errlen)) != PG_OK)
                goto fail;
            stats->dup_pk = to_store - stats->inserted;
        }
        if ((pr = upsert_streams(w, &c, err, errlen)) != PG_OK ||
            (pr = insert_incidents(w, &c, err, errlen)) != PG_OK)
            goto fail;
    }
    if ((pr = pg_conn_exec(w->conn, SQL_COMMIT, 0, NULL, NULL, err, errlen)) != PG_OK) {
        /* A failed COMMIT leaves nothing committed (or, on a lost link, an
         * unknown outcome: the offset CAS makes the retry safe). */
        goto out;
    }
    memset(stats->committed, 1, b->n);
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
    part_groups_release(&g);
    wctx_release(&c);
    return pr;
}
