/* verify (aggregator/verify.h): plan chunks of streams, hand them to a pool
 * of workers, each with its own connection; a worker reads a chunk in one
 * REPEATABLE READ snapshot through a binary cursor ordered by (stream, seq)
 * and feeds verify_chain.c, which does the checking. Memory: one FETCH of
 * rows per worker, plus per chunk its streams' rows of auditrail.streams
 * and, in a time range, the streams waiting for their neighbours' lookup. */
#include "aggregator/verify.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/pg_conn.h"
#include "aggregator/pg_sql.h"
#include "aggregator/proof_sql.h"
#include "aggregator/verify_chain.h"
#include "common/buf.h"
#include "common/htab.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define DEFAULT_WORKERS      4
#define DEFAULT_FETCH        2000
#define DEFAULT_MAX_FINDINGS 100
#define CHUNKS_PER_WORKER    8 /* small chunks keep the workers evenly busy */
#define LIST_CHUNK_MAX       1000
#define PG_EPOCH_US          INT64_C(946684800000000) /* 2000-01-01 in Unix µs */
#define ID_LEN               CHAIN_STREAM_HEX_LEN

static const char *const verify_session[] = {SQL_QUIET, "SET TIME ZONE 'UTC'", NULL};
static const struct pg_conn_opts verify_conn_opts = {
    .application_name = "auditrail-verify",
    .session = verify_session,
};

/* A chunk of streams: a range [lo, hi) of ids (NULL = open), or a list. */
struct chunk {
    const char *lo, *hi;
    char **ids;
    size_t nids;
    bool list;
};

struct run {
    const struct verify_opts *o;
    bool full; /* no time range */
    verify_emit_fn emit;
    void *ud;
    pthread_mutex_t mu; /* emit, rep, next, status */
    struct chunk *chunks;
    size_t nchunks, next;
    char **ids; /* the plan's stream ids (heap) */
    size_t nids;
    struct verify_report rep;
    enum verify_status status;
    char err[512];
    const char *conninfo;
};

/* auditrail.streams' row of a stream. */
struct info {
    char id[ID_LEN + 1];
    int64_t last_seq, first_seen_us;
    uint8_t last_hash[CHAIN_HASH_LEN];
};

/* A stream of a time range waiting for the lookup of its neighbours. */
struct pending {
    struct vchain ch;
    struct vchain_expect ex;
    int64_t need_prev, need_next;
};

struct chunk_state {
    struct run *r;
    const struct chunk *k;
    struct info *infos;
    size_t ninfos;
    struct htab byid; /* info index by id */
    struct htab seen; /* ids read from the cursor */
    struct pending *pend;
    size_t npend, cappend;
    struct vchain cur;
    bool in_stream;
};

static void emit_locked(void *ud, const struct verify_finding *f)
{
    struct run *r = ud;
    pthread_mutex_lock(&r->mu);
    if (r->emit)
        r->emit(r->ud, f);
    pthread_mutex_unlock(&r->mu);
}

static int64_t rd64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (uint8_t)p[i];
    return (int64_t)v;
}

static const struct verify_stream_heads *heads_of(const struct run *r, const char *id)
{
    const struct verify_heads *h = r->o->heads;
    return h ? h->lookup(h->ud, id) : NULL;
}

static const struct info *info_of(const struct chunk_state *s, const char *id, size_t len)
{
    if (len != ID_LEN)
        return NULL;
    size_t *v = htab_find(&s->byid, id);
    return v ? &s->infos[*v] : NULL;
}

static void expect_init(const struct chunk_state *s, const struct info *in, struct vchain_expect *e)
{
    const struct verify_opts *o = s->r->o;
    memset(e, 0, sizeof(*e));
    e->full = s->r->full;
    e->from_us = o->from_us;
    e->to_us = o->to_us;
    e->horizon_us = o->horizon_us;
    e->prev_state = e->next_state = -1;
    if (in) {
        e->have_state = true;
        e->last_seq = in->last_seq;
        memcpy(e->last_hash, in->last_hash, CHAIN_HASH_LEN);
        e->began_before_horizon = in->first_seen_us < o->horizon_us;
    }
}

/* Count a finished stream into the report. */
static void account(struct run *r, const struct vchain *c)
{
    pthread_mutex_lock(&r->mu);
    r->rep.streams++;
    r->rep.records += c->nrows;
    r->rep.problems += c->problems;
    r->rep.notes += c->notes;
    for (int i = 0; i < VERIFY_KIND_COUNT; i++)
        r->rep.by_kind[i] += c->by_kind[i];
    pthread_mutex_unlock(&r->mu);
}

static void begin_stream(struct chunk_state *s, struct vchain *c, const char *id, size_t len)
{
    char key[65];
    size_t n = len < 64 ? len : 64;
    memcpy(key, id, n);
    key[n] = '\0';
    const struct run *r = s->r;
    vchain_begin(c, id, len, len == ID_LEN ? heads_of(r, key) : NULL, emit_locked, s->r,
                 r->o->max_findings ? r->o->max_findings : DEFAULT_MAX_FINDINGS);
}

/* The current stream's records are all read: end it now, or (time range)
 * after the lookup of its neighbours. */
static void finish_current(struct chunk_state *s)
{
    if (!s->in_stream)
        return;
    s->in_stream = false;
    struct vchain *c = &s->cur;
    struct vchain_expect e;
    expect_init(s, info_of(s, c->stream, strlen(c->stream)), &e);
    int64_t np = vchain_need_prev(c, &e), nn = vchain_need_next(c, &e);
    if (np < 0 && nn < 0) {
        vchain_end(c, &e);
        account(s->r, c);
        return;
    }
    if (s->npend == s->cappend) {
        s->cappend = s->cappend ? 2 * s->cappend : 16;
        s->pend = xrealloc(s->pend, s->cappend * sizeof(*s->pend));
    }
    struct pending *p = &s->pend[s->npend++];
    p->ch = *c;
    p->ex = e;
    p->need_prev = np;
    p->need_next = nn;
}

/* One FETCH's rows. */
static void feed_rows(struct chunk_state *s, PGresult *res, uint64_t *bytes)
{
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        size_t idlen = (size_t)PQgetlength(res, i, 0);
        if (!s->in_stream || strlen(s->cur.stream) != idlen ||
            memcmp(s->cur.stream, id, idlen) != 0) {
            finish_current(s);
            begin_stream(s, &s->cur, id, idlen);
            s->in_stream = true;
            if (idlen == ID_LEN)
                (void)htab_put(&s->seen, id, NULL);
        }
        struct vrow row = {
            .seq = PQgetlength(res, i, 1) == 8 ? rd64(PQgetvalue(res, i, 1)) : -1,
            .hash = PQgetlength(res, i, 2) == CHAIN_HASH_LEN
                        ? (const uint8_t *)PQgetvalue(res, i, 2)
                        : NULL,
            .prev = PQgetlength(res, i, 3) == CHAIN_HASH_LEN
                        ? (const uint8_t *)PQgetvalue(res, i, 3)
                        : NULL,
            .raw = PQgetvalue(res, i, 4),
            .raw_len = (size_t)PQgetlength(res, i, 4),
            .id = PQgetlength(res, i, 5) == 16 ? (const uint8_t *)PQgetvalue(res, i, 5) : NULL,
            .event_time_us =
                PQgetlength(res, i, 6) == 8 ? rd64(PQgetvalue(res, i, 6)) + PG_EPOCH_US : INT64_MIN,
        };
        *bytes += row.raw_len;
        vchain_row(&s->cur, &row);
    }
}

/* The chunk's filters and their parameters. with_time: the event_time range. */
static void chunk_where(const struct run *r, const struct chunk *k, bool with_time, struct buf *sql,
                        const char **params, int *np, struct buf *ids, char tfrom[TIME_RFC3339_LEN],
                        char tto[TIME_RFC3339_LEN])
{
    int nw = 0;
#define WHERE(fmt, val)                                                                            \
    do {                                                                                           \
        buf_adds(sql, nw++ ? " AND " : " WHERE ");                                                 \
        params[*np] = (val);                                                                       \
        buf_addf(sql, fmt, ++*np);                                                                 \
    } while (0)
    if (k->list) {
        pg_array_begin(ids);
        for (size_t i = 0; i < k->nids; i++)
            pg_array_str(ids, k->ids[i]);
        WHERE(SQL_V_WHERE_IDS_FMT, pg_array_end(ids));
    } else {
        if (k->lo)
            WHERE(SQL_V_WHERE_LO_FMT, k->lo);
        if (k->hi)
            WHERE(SQL_V_WHERE_HI_FMT, k->hi);
    }
    if (with_time && r->o->from_us != VERIFY_UNBOUNDED_FROM) {
        time_format_us(r->o->from_us, tfrom);
        WHERE(SQL_V_WHERE_FROM_FMT, tfrom);
    }
    if (with_time && r->o->to_us != VERIFY_UNBOUNDED_TO) {
        time_format_us(r->o->to_us, tto);
        WHERE(SQL_V_WHERE_TO_FMT, tto);
    }
#undef WHERE
}

static enum pg_status load_infos(struct chunk_state *s, struct pg_connection *c, char *err,
                                 size_t errlen)
{
    struct buf sql = BUF_INIT, ids = BUF_INIT;
    const char *params[4];
    int np = 0;
    char f[TIME_RFC3339_LEN], t[TIME_RFC3339_LEN];
    buf_adds(&sql, SQL_V_STREAMS);
    chunk_where(s->r, s->k, false, &sql, params, &np, &ids, f, t);
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(c, buf_cstr(&sql), np, params, &res, err, errlen);
    buf_release(&sql);
    buf_release(&ids);
    if (st != PG_OK)
        return st;
    int n = PQntuples(res);
    s->infos = xcalloc(n ? (size_t)n : 1, sizeof(*s->infos));
    htab_init(&s->byid, ID_LEN, (size_t)n);
    for (int i = 0; i < n; i++) {
        const char *id = PQgetvalue(res, i, 0);
        const char *h = PQgetvalue(res, i, 2);
        if (strlen(id) != ID_LEN)
            continue; /* reported from its records, if any (bad_stream) */
        struct info *in = &s->infos[s->ninfos];
        memcpy(in->id, id, ID_LEN + 1);
        in->last_seq = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        in->first_seen_us = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        if (strlen(h) != 2 * CHAIN_HASH_LEN || hex_decode(h, CHAIN_HASH_LEN, in->last_hash) != 0)
            memset(in->last_hash, 0, CHAIN_HASH_LEN);
        *htab_put(&s->byid, id, NULL) = s->ninfos++;
    }
    PQclear(res);
    return PG_OK;
}

static enum pg_status read_cursor(struct chunk_state *s, struct pg_connection *c, char *err,
                                  size_t errlen)
{
    struct buf sql = BUF_INIT, ids = BUF_INIT;
    const char *params[4];
    int np = 0;
    char f[TIME_RFC3339_LEN], t[TIME_RFC3339_LEN];
    buf_adds(&sql, SQL_V_CURSOR);
    chunk_where(s->r, s->k, true, &sql, params, &np, &ids, f, t);
    buf_adds(&sql, SQL_V_CURSOR_ORDER);
    enum pg_status st = pg_conn_exec(c, buf_cstr(&sql), np, params, NULL, err, errlen);
    buf_release(&sql);
    buf_release(&ids);
    if (st != PG_OK)
        return st;
    char fetch[64];
    unsigned rows = s->r->o->fetch_rows ? s->r->o->fetch_rows : DEFAULT_FETCH;
    snprintf(fetch, sizeof(fetch), SQL_V_FETCH_FMT, rows);
    uint64_t bytes = 0;
    for (;;) {
        if (s->r->o->stop && *s->r->o->stop) {
            snprintf(err, errlen, "interrupted");
            return PG_TRANSIENT;
        }
        PGresult *res = NULL;
        if ((st = pg_conn_exec(c, fetch, 0, NULL, &res, err, errlen)) != PG_OK)
            return st;
        int n = PQntuples(res);
        feed_rows(s, res, &bytes);
        PQclear(res);
        if (n == 0)
            break;
    }
    finish_current(s);
    pthread_mutex_lock(&s->r->mu);
    s->r->rep.bytes += bytes;
    pthread_mutex_unlock(&s->r->mu);
    return pg_conn_exec(c, SQL_V_CLOSE, 0, NULL, NULL, err, errlen);
}

/* Time range: look up the neighbours of the pending streams, then end them. */
static enum pg_status resolve_pending(struct chunk_state *s, struct pg_connection *c, char *err,
                                      size_t errlen)
{
    if (s->npend == 0)
        return PG_OK;
    struct buf ids = BUF_INIT, seqs = BUF_INIT;
    pg_array_begin(&ids);
    pg_array_begin(&seqs);
    for (size_t i = 0; i < s->npend; i++) {
        struct pending *p = &s->pend[i];
        if (p->need_prev >= 0) {
            pg_array_str(&ids, p->ch.stream);
            pg_array_i64(&seqs, p->need_prev);
            p->ex.prev_state = 0;
        }
        if (p->need_next >= 0) {
            pg_array_str(&ids, p->ch.stream);
            pg_array_i64(&seqs, p->need_next);
            p->ex.next_state = 0;
        }
    }
    const char *params[] = {pg_array_end(&ids), pg_array_end(&seqs)};
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(c, SQL_V_LOOKUP, 2, params, &res, err, errlen);
    buf_release(&ids);
    buf_release(&seqs);
    if (st != PG_OK)
        return st;
    /* Few rows per stream: a linear match per row is enough for a chunk. */
    struct htab at;
    htab_init(&at, ID_LEN, s->npend);
    for (size_t i = 0; i < s->npend; i++)
        if (strlen(s->pend[i].ch.stream) == ID_LEN)
            *htab_put(&at, s->pend[i].ch.stream, NULL) = i;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        size_t *k = strlen(id) == ID_LEN ? htab_find(&at, id) : NULL;
        if (!k)
            continue;
        struct pending *p = &s->pend[*k];
        int64_t seq = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        const char *h = PQgetvalue(res, i, 2), *pv = PQgetvalue(res, i, 3);
        if (seq == p->need_prev && p->ex.prev_state == 0 && strlen(h) == 2 * CHAIN_HASH_LEN &&
            hex_decode(h, CHAIN_HASH_LEN, p->ex.prev_hash) == 0)
            p->ex.prev_state = 1;
        if (seq == p->need_next && p->ex.next_state == 0 && strlen(pv) == 2 * CHAIN_HASH_LEN &&
            hex_decode(pv, CHAIN_HASH_LEN, p->ex.next_prev) == 0)
            p->ex.next_state = 1;
    }
    htab_release(&at);
    PQclear(res);
    for (size_t i = 0; i < s->npend; i++) {
        vchain_end(&s->pend[i].ch, &s->pend[i].ex);
        account(s->r, &s->pend[i].ch);
    }
    s->npend = 0;
    return PG_OK;
}

/* A stream without records read: its state row says some should exist, or
 * it has signed heads. */
static void verify_empty(struct chunk_state *s, const char *id, const struct info *in)
{
    struct vchain c;
    struct vchain_expect e;
    begin_stream(s, &c, id, strlen(id));
    expect_init(s, in, &e);
    vchain_end(&c, &e);
    account(s->r, &c);
}

/* Streams of the chunk that the cursor did not show: those of
 * auditrail.streams (every record missing, full verify only) and those
 * with signed heads. */
static void verify_unseen(struct chunk_state *s)
{
    const struct run *r = s->r;
    if (r->full)
        for (size_t i = 0; i < s->ninfos; i++)
            if (!htab_find(&s->seen, s->infos[i].id)) {
                verify_empty(s, s->infos[i].id, &s->infos[i]);
                (void)htab_put(&s->seen, s->infos[i].id, NULL);
            }
    const struct verify_heads *h = r->o->heads;
    if (!h || (s->k->list && !r->o->stream))
        return; /* by tenant: only streams holding its records */
    const char *const *ids;
    size_t n = h->streams(h->ud, &ids);
    for (size_t i = 0; i < n; i++) {
        const char *id = ids[i];
        if (strlen(id) != ID_LEN || htab_find(&s->seen, id))
            continue;
        if (s->k->list
                ? strcmp(id, s->k->ids[0]) != 0
                : (s->k->lo && strcmp(id, s->k->lo) < 0) || (s->k->hi && strcmp(id, s->k->hi) >= 0))
            continue;
        verify_empty(s, id, info_of(s, id, ID_LEN));
    }
}

static enum pg_status verify_chunk(struct run *r, const struct chunk *k, struct pg_connection *c,
                                   char *err, size_t errlen)
{
    struct chunk_state s = {.r = r, .k = k};
    htab_init(&s.seen, ID_LEN, 0);
    enum pg_status st = pg_conn_exec(c, SQL_V_BEGIN, 0, NULL, NULL, err, errlen);
    if (st == PG_OK)
        st = load_infos(&s, c, err, errlen);
    if (st == PG_OK)
        st = read_cursor(&s, c, err, errlen);
    if (st == PG_OK)
        st = resolve_pending(&s, c, err, errlen);
    if (st == PG_OK) {
        verify_unseen(&s);
        st = pg_conn_exec(c, SQL_COMMIT, 0, NULL, NULL, err, errlen);
    } else {
        pg_conn_rollback(c);
    }
    free(s.infos);
    free(s.pend);
    if (s.byid.slots)
        htab_release(&s.byid);
    htab_release(&s.seen);
    return st;
}

/* ---- planning ---- */

static enum pg_status plan(struct run *r, struct pg_connection *c, char *err, size_t errlen)
{
    const struct verify_opts *o = r->o;
    unsigned workers = o->workers ? o->workers : DEFAULT_WORKERS;
    if (o->stream) {
        r->ids = xcalloc(1, sizeof(*r->ids));
        r->ids[0] = xstrdup(o->stream);
        r->nids = 1;
        r->chunks = xcalloc(1, sizeof(*r->chunks));
        r->chunks[0] = (struct chunk){.ids = r->ids, .nids = 1, .list = true};
        r->nchunks = 1;
        return PG_OK;
    }
    PGresult *res = NULL;
    enum pg_status st;
    if (o->tenant) {
        char f[TIME_RFC3339_LEN], t[TIME_RFC3339_LEN];
        time_format_us(o->from_us == VERIFY_UNBOUNDED_FROM ? INT64_C(-62135596800000000)
                                                           : o->from_us,
                       f); /* 0001-01-01 */
        time_format_us(o->to_us == VERIFY_UNBOUNDED_TO ? INT64_C(253402300799000000) : o->to_us, t);
        const char *params[] = {o->tenant, f, t};
        st = pg_conn_exec(c, SQL_V_TENANT_IDS, 3, params, &res, err, errlen);
    } else {
        st = pg_conn_exec(c, SQL_V_STREAM_IDS, 0, NULL, &res, err, errlen);
    }
    if (st != PG_OK)
        return st;
    size_t n = (size_t)PQntuples(res);
    r->ids = xcalloc(n ? n : 1, sizeof(*r->ids));
    for (size_t i = 0; i < n; i++)
        r->ids[i] = xstrdup(PQgetvalue(res, (int)i, 0));
    r->nids = n;
    PQclear(res);
    size_t per = n / (workers * CHUNKS_PER_WORKER);
    if (per < 1)
        per = 1;
    if (o->tenant && per > LIST_CHUNK_MAX)
        per = LIST_CHUNK_MAX;
    size_t nch = n ? (n + per - 1) / per : (o->tenant ? 0 : 1);
    r->chunks = xcalloc(nch ? nch : 1, sizeof(*r->chunks));
    for (size_t i = 0; i < nch; i++) {
        struct chunk *k = &r->chunks[i];
        size_t a = i * per, b = a + per < n ? a + per : n;
        if (o->tenant) {
            *k = (struct chunk){.ids = r->ids + a, .nids = b - a, .list = true};
        } else {
            /* Open at both ends, so that records of streams missing from
             * auditrail.streams are read too. */
            k->lo = i == 0 ? NULL : r->ids[a];
            k->hi = i + 1 == nch ? NULL : r->ids[b];
        }
    }
    r->nchunks = nch;
    return PG_OK;
}

/* ---- running ---- */

static void fail_run(struct run *r, const char *err)
{
    pthread_mutex_lock(&r->mu);
    if (r->status != VERIFY_UNAVAILABLE) {
        r->status = VERIFY_UNAVAILABLE;
        snprintf(r->err, sizeof(r->err), "%s", err);
    }
    r->next = r->nchunks; /* the others stop after their chunk */
    pthread_mutex_unlock(&r->mu);
}

static const struct chunk *take_chunk(struct run *r)
{
    pthread_mutex_lock(&r->mu);
    const struct chunk *k = r->next < r->nchunks ? &r->chunks[r->next++] : NULL;
    pthread_mutex_unlock(&r->mu);
    return k;
}

static void run_chunks(struct run *r, struct pg_connection *c)
{
    char err[512];
    const struct chunk *k;
    while ((k = take_chunk(r)) != NULL)
        if (verify_chunk(r, k, c, err, sizeof(err)) != PG_OK) {
            fail_run(r, err);
            return;
        }
}

static void *worker_main(void *arg)
{
    struct run *r = arg;
    struct pg_connection *c = pg_conn_new(r->conninfo, &verify_conn_opts);
    char err[512];
    if (pg_conn_open(c, NULL, err, sizeof(err)) != PG_OK)
        fail_run(r, err);
    else
        run_chunks(r, c);
    pg_conn_free(c);
    return NULL;
}

static void run_init(struct run *r, const struct verify_opts *o, verify_emit_fn emit, void *ud)
{
    memset(r, 0, sizeof(*r));
    r->o = o;
    r->full = o->from_us == VERIFY_UNBOUNDED_FROM && o->to_us == VERIFY_UNBOUNDED_TO;
    r->emit = emit;
    r->ud = ud;
    pthread_mutex_init(&r->mu, NULL);
}

static enum verify_status run_finish(struct run *r, uint64_t t0, struct verify_report *rep,
                                     char *err, size_t errlen)
{
    r->rep.elapsed_us = time_mono_us() - t0;
    *rep = r->rep;
    enum verify_status st = r->status;
    if (st == VERIFY_UNAVAILABLE)
        snprintf(err, errlen, "%s", r->err);
    else
        st = r->rep.problems ? VERIFY_PROBLEMS : VERIFY_INTACT;
    for (size_t i = 0; i < r->nids; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->chunks);
    pthread_mutex_destroy(&r->mu);
    return st;
}

enum verify_status verify_run_on(struct pg_connection *c, const struct verify_opts *o,
                                 verify_emit_fn emit, void *ud, struct verify_report *rep,
                                 char *err, size_t errlen)
{
    struct run r;
    uint64_t t0 = time_mono_us();
    run_init(&r, o, emit, ud);
    char e2[512];
    if (plan(&r, c, e2, sizeof(e2)) != PG_OK)
        fail_run(&r, e2);
    else
        run_chunks(&r, c);
    return run_finish(&r, t0, rep, err, errlen);
}

enum verify_status verify_run(const char *conninfo, const struct verify_opts *o,
                              verify_emit_fn emit, void *ud, struct verify_report *rep, char *err,
                              size_t errlen)
{
    struct run r;
    uint64_t t0 = time_mono_us();
    run_init(&r, o, emit, ud);
    r.conninfo = conninfo;
    struct pg_connection *c = pg_conn_new(conninfo, &verify_conn_opts);
    char e2[512];
    if (pg_conn_open(c, NULL, e2, sizeof(e2)) != PG_OK || plan(&r, c, e2, sizeof(e2)) != PG_OK) {
        fail_run(&r, e2);
        pg_conn_free(c);
        return run_finish(&r, t0, rep, err, errlen);
    }
    unsigned workers = o->workers ? o->workers : DEFAULT_WORKERS;
    if (workers > r.nchunks)
        workers = r.nchunks ? (unsigned)r.nchunks : 1;
    /* The planning connection is the first worker's. */
    pthread_t *th = xcalloc(workers, sizeof(*th));
    bool *up = xcalloc(workers, sizeof(*up));
    for (unsigned i = 1; i < workers; i++)
        up[i] = pthread_create(&th[i], NULL, worker_main, &r) == 0; /* else: fewer workers */
    run_chunks(&r, c);
    for (unsigned i = 1; i < workers; i++)
        if (up[i])
            pthread_join(th[i], NULL);
    free(up);
    free(th);
    pg_conn_free(c);
    return run_finish(&r, t0, rep, err, errlen);
}
