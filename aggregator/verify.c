/* verify (aggregator/verify.h): every stream of a range goes to the scan
 * strategy (verify_scan.c); one stream, or a tenant's streams, are cut into
 * chunks of ids handed to a pool of workers, each with its own connection:
 * a worker reads a chunk in one REPEATABLE READ snapshot through a binary
 * cursor ordered by (stream, seq) (the (stream_id, seq) index) and feeds
 * verify_chain.c. Memory: one FETCH of rows per worker, plus per chunk its
 * streams' state rows and, in a time range, the streams waiting for their
 * neighbours' lookup. Also the helpers both strategies share (verify_int.h). */
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
#include "aggregator/verify_int.h"
#include "common/buf.h"
#include "common/htab.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define DEFAULT_MAX_FINDINGS 100
#define CHUNKS_PER_WORKER    8 /* small chunks keep the workers evenly busy */
#define CHUNK_MAX            1000
#define ID_LEN               VERIFY_ID_LEN

static const char *const verify_session[] = {SQL_QUIET, "SET TIME ZONE 'UTC'", NULL};
const struct pg_conn_opts verify_conn_opts = {
    .application_name = "auditrail-verify",
    .session = verify_session,
};

/* ---- helpers shared with verify_scan.c ---- */

void verify_emit_locked(void *ud, const struct verify_finding *f)
{
    struct run *r = ud;
    pthread_mutex_lock(&r->mu);
    if (r->emit)
        r->emit(r->ud, f);
    pthread_mutex_unlock(&r->mu);
}

void verify_range_text(const struct verify_opts *o, char from[TIME_RFC3339_LEN],
                       char to[TIME_RFC3339_LEN])
{
    time_format_us(o->from_us == VERIFY_UNBOUNDED_FROM ? INT64_C(-62135596800000000) : o->from_us,
                   from);
    time_format_us(o->to_us == VERIFY_UNBOUNDED_TO ? INT64_C(253402300799000000) : o->to_us, to);
}

static int64_t rd64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (uint8_t)p[i];
    return (int64_t)v;
}

void verify_row_from(PGresult *res, int i, struct vrow *row)
{
    const char *v[7];
    int len[7];
    for (int k = 0; k < 7; k++) {
        v[k] = PQgetvalue(res, i, k);
        len[k] = PQgetlength(res, i, k);
    }
    *row = (struct vrow){
        .seq = len[1] == 8 ? rd64(v[1]) : -1,
        .hash = len[2] == CHAIN_HASH_LEN ? (const uint8_t *)v[2] : NULL,
        .prev = len[3] == CHAIN_HASH_LEN ? (const uint8_t *)v[3] : NULL,
        .raw = v[4],
        .raw_len = (size_t)len[4],
        .id = len[5] == 16 ? (const uint8_t *)v[5] : NULL,
        .event_time_us = len[6] == 8 ? rd64(v[6]) + VERIFY_PG_EPOCH_US : INT64_MIN,
    };
}

enum pg_status verify_fetch_all(struct run *r, struct pg_connection *c,
                                void (*each)(void *ud, PGresult *res), void *ud, char *err,
                                size_t errlen)
{
    char fetch[64];
    snprintf(fetch, sizeof(fetch), SQL_V_FETCH_FMT,
             r->o->fetch_rows ? r->o->fetch_rows : VERIFY_DEFAULT_FETCH);
    for (;;) {
        if (r->o->stop && *r->o->stop) {
            snprintf(err, errlen, "interrupted");
            return PG_TRANSIENT;
        }
        PGresult *res = NULL;
        enum pg_status st = pg_conn_exec(c, fetch, 0, NULL, &res, err, errlen);
        if (st != PG_OK)
            return st;
        int n = PQntuples(res);
        each(ud, res);
        PQclear(res);
        if (n == 0)
            return pg_conn_exec(c, SQL_V_CLOSE, 0, NULL, NULL, err, errlen);
    }
}

void verify_begin_stream(struct run *r, struct vchain *c, const char *id, size_t len)
{
    const struct verify_heads *h = r->o->heads;
    char key[65];
    size_t n = len < 64 ? len : 64;
    memcpy(key, id, n);
    key[n] = '\0';
    vchain_begin(c, id, len, h && len == ID_LEN ? h->lookup(h->ud, key) : NULL, verify_emit_locked,
                 r, r->o->max_findings ? r->o->max_findings : DEFAULT_MAX_FINDINGS);
}

void verify_expect_init(const struct run *r, const struct info *in, struct vchain_expect *e)
{
    const struct verify_opts *o = r->o;
    memset(e, 0, sizeof(*e));
    e->full = r->full;
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

void verify_account(struct run *r, const struct vchain *c)
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

void verify_fail(struct run *r, const char *err)
{
    pthread_mutex_lock(&r->mu);
    if (r->status != VERIFY_UNAVAILABLE) {
        r->status = VERIFY_UNAVAILABLE;
        snprintf(r->err, sizeof(r->err), "%s", err);
    }
    pthread_mutex_unlock(&r->mu);
}

static bool failed(struct run *r)
{
    pthread_mutex_lock(&r->mu);
    bool f = r->status == VERIFY_UNAVAILABLE;
    pthread_mutex_unlock(&r->mu);
    return f;
}

bool verify_info_from(PGresult *res, int row, struct info *in)
{
    const char *id = PQgetvalue(res, row, 0), *h = PQgetvalue(res, row, 2);
    if (strlen(id) != ID_LEN)
        return false; /* reported from its records, if any (bad_stream) */
    memcpy(in->id, id, ID_LEN + 1);
    in->last_seq = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    in->first_seen_us = strtoll(PQgetvalue(res, row, 3), NULL, 10);
    if (strlen(h) != 2 * CHAIN_HASH_LEN || hex_decode(h, CHAIN_HASH_LEN, in->last_hash) != 0)
        memset(in->last_hash, 0, CHAIN_HASH_LEN);
    return true;
}

enum pg_status verify_resolve_pending(struct run *r, struct pg_connection *c, struct pending *p,
                                      size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return PG_OK;
    struct buf ids = BUF_INIT, seqs = BUF_INIT;
    pg_array_begin(&ids);
    pg_array_begin(&seqs);
    for (size_t i = 0; i < n; i++) {
        if (p[i].need_prev >= 0) {
            pg_array_str(&ids, p[i].ch.stream);
            pg_array_i64(&seqs, p[i].need_prev);
            p[i].ex.prev_state = 0;
        }
        if (p[i].need_next >= 0) {
            pg_array_str(&ids, p[i].ch.stream);
            pg_array_i64(&seqs, p[i].need_next);
            p[i].ex.next_state = 0;
        }
    }
    const char *params[] = {pg_array_end(&ids), pg_array_end(&seqs)};
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(c, SQL_V_LOOKUP, 2, params, &res, err, errlen);
    buf_release(&ids);
    buf_release(&seqs);
    if (st != PG_OK) {
        for (size_t i = 0; i < n; i++)
            vchain_release(&p[i].ch);
        return st;
    }
    struct htab at;
    htab_init(&at, ID_LEN, n);
    for (size_t i = 0; i < n; i++)
        if (strlen(p[i].ch.stream) == ID_LEN)
            *htab_put(&at, p[i].ch.stream, NULL) = i;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        size_t *k = strlen(id) == ID_LEN ? htab_find(&at, id) : NULL;
        if (!k)
            continue;
        struct pending *q = &p[*k];
        int64_t seq = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        const char *h = PQgetvalue(res, i, 2), *pv = PQgetvalue(res, i, 3);
        if (seq == q->need_prev && q->ex.prev_state == 0 && strlen(h) == 2 * CHAIN_HASH_LEN &&
            hex_decode(h, CHAIN_HASH_LEN, q->ex.prev_hash) == 0)
            q->ex.prev_state = 1;
        if (seq == q->need_next && q->ex.next_state == 0 && strlen(pv) == 2 * CHAIN_HASH_LEN &&
            hex_decode(pv, CHAIN_HASH_LEN, q->ex.next_prev) == 0)
            q->ex.next_state = 1;
    }
    htab_release(&at);
    PQclear(res);
    for (size_t i = 0; i < n; i++) {
        vchain_end(&p[i].ch, &p[i].ex);
        verify_account(r, &p[i].ch);
        vchain_release(&p[i].ch);
    }
    return PG_OK;
}

/* ---- the chunk strategy: named streams ---- */

/* The chunks of stream ids (run->strategy). */
struct chunks {
    char **ids; /* sorted (heap) */
    size_t nids, per, next;
};

struct chunk_state {
    struct run *r;
    char **ids;
    size_t nids;
    struct info *infos;
    size_t ninfos;
    struct htab byid; /* info index by id */
    struct htab seen; /* ids read from the cursor */
    struct pending *pend;
    size_t npend, cappend;
    struct vchain cur;
    bool in_stream;
    uint64_t bytes;
};

static const struct info *info_of(const struct chunk_state *s, const char *id, size_t len)
{
    if (len != ID_LEN)
        return NULL;
    size_t *v = htab_find(&s->byid, id);
    return v ? &s->infos[*v] : NULL;
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
    verify_expect_init(s->r, info_of(s, c->stream, strlen(c->stream)), &e);
    int64_t np = vchain_need_prev(c, &e), nn = vchain_need_next(c, &e);
    if (np < 0 && nn < 0) {
        vchain_end(c, &e);
        verify_account(s->r, c);
        return;
    }
    if (s->npend == s->cappend) {
        s->cappend = s->cappend ? 2 * s->cappend : 16;
        s->pend = xrealloc(s->pend, s->cappend * sizeof(*s->pend));
    }
    s->pend[s->npend++] = (struct pending){.ch = *c, .ex = e, .need_prev = np, .need_next = nn};
}

/* One FETCH's rows (verify_fetch_all's callback). */
static void feed_rows(void *ud, PGresult *res)
{
    struct chunk_state *s = ud;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        size_t idlen = (size_t)PQgetlength(res, i, 0);
        if (!s->in_stream || strlen(s->cur.stream) != idlen ||
            memcmp(s->cur.stream, id, idlen) != 0) {
            finish_current(s);
            verify_begin_stream(s->r, &s->cur, id, idlen);
            s->in_stream = true;
            if (idlen == ID_LEN)
                (void)htab_put(&s->seen, id, NULL);
        }
        struct vrow row;
        verify_row_from(res, i, &row);
        s->bytes += row.raw_len;
        vchain_row(&s->cur, &row);
    }
}

/* WHERE stream_id = ANY($1) [AND the time range]; params set. */
static void chunk_where(const struct chunk_state *s, bool with_time, struct buf *sql,
                        const char **params, int *np, struct buf *ids, char tfrom[TIME_RFC3339_LEN],
                        char tto[TIME_RFC3339_LEN])
{
    const struct verify_opts *o = s->r->o;
    pg_array_begin(ids);
    for (size_t i = 0; i < s->nids; i++)
        pg_array_str(ids, s->ids[i]);
    params[(*np)++] = pg_array_end(ids);
    buf_addf(sql, " WHERE " SQL_V_WHERE_IDS_FMT, *np);
    if (with_time && o->from_us != VERIFY_UNBOUNDED_FROM) {
        time_format_us(o->from_us, tfrom);
        params[(*np)++] = tfrom;
        buf_addf(sql, " AND " SQL_V_WHERE_FROM_FMT, *np);
    }
    if (with_time && o->to_us != VERIFY_UNBOUNDED_TO) {
        time_format_us(o->to_us, tto);
        params[(*np)++] = tto;
        buf_addf(sql, " AND " SQL_V_WHERE_TO_FMT, *np);
    }
}

/* head WHERE … tail on the chunk, into *res (NULL: not kept). */
static enum pg_status chunk_exec(struct chunk_state *s, struct pg_connection *c, const char *head,
                                 bool with_time, const char *tail, PGresult **res, char *err,
                                 size_t errlen)
{
    struct buf sql = BUF_INIT, ids = BUF_INIT;
    const char *params[3];
    int np = 0;
    char f[TIME_RFC3339_LEN], t[TIME_RFC3339_LEN];
    buf_adds(&sql, head);
    chunk_where(s, with_time, &sql, params, &np, &ids, f, t);
    buf_adds(&sql, tail);
    enum pg_status st = pg_conn_exec(c, buf_cstr(&sql), np, params, res, err, errlen);
    buf_release(&sql);
    buf_release(&ids);
    return st;
}

static enum pg_status load_infos(struct chunk_state *s, struct pg_connection *c, char *err,
                                 size_t errlen)
{
    PGresult *res = NULL;
    enum pg_status st = chunk_exec(s, c, SQL_V_STREAMS, false, "", &res, err, errlen);
    if (st != PG_OK)
        return st;
    int n = PQntuples(res);
    s->infos = xcalloc(n ? (size_t)n : 1, sizeof(*s->infos));
    htab_init(&s->byid, ID_LEN, (size_t)n);
    for (int i = 0; i < n; i++)
        if (verify_info_from(res, i, &s->infos[s->ninfos]))
            *htab_put(&s->byid, s->infos[s->ninfos].id, NULL) = s->ninfos, s->ninfos++;
    PQclear(res);
    return PG_OK;
}

static enum pg_status read_cursor(struct chunk_state *s, struct pg_connection *c, char *err,
                                  size_t errlen)
{
    enum pg_status st = chunk_exec(s, c, SQL_V_CURSOR, true, SQL_V_CURSOR_ORDER, NULL, err, errlen);
    if (st == PG_OK)
        st = verify_fetch_all(s->r, c, feed_rows, s, err, errlen);
    if (st != PG_OK)
        return st;
    finish_current(s);
    pthread_mutex_lock(&s->r->mu);
    s->r->rep.bytes += s->bytes;
    pthread_mutex_unlock(&s->r->mu);
    return PG_OK;
}

/* A stream without records read: its state row says some should exist, or
 * it has signed heads. */
static void verify_empty(struct run *r, const char *id, const struct info *in)
{
    struct vchain c;
    struct vchain_expect e;
    verify_begin_stream(r, &c, id, strlen(id));
    verify_expect_init(r, in, &e);
    vchain_end(&c, &e);
    verify_account(r, &c);
}

/* Streams of the chunk the cursor did not show: those of auditrail.streams
 * (every record missing, full verify only) and, for --stream, one with
 * signed heads (a tenant's streams are those holding its records). */
static void verify_unseen(struct chunk_state *s)
{
    struct run *r = s->r;
    for (size_t i = 0; r->full && i < s->ninfos; i++)
        if (!htab_find(&s->seen, s->infos[i].id)) {
            verify_empty(r, s->infos[i].id, &s->infos[i]);
            (void)htab_put(&s->seen, s->infos[i].id, NULL);
        }
    const char *id = r->o->stream;
    if (r->o->heads && id && strlen(id) == ID_LEN && !htab_find(&s->seen, id) &&
        r->o->heads->lookup(r->o->heads->ud, id))
        verify_empty(r, id, NULL);
}

static enum pg_status verify_chunk(struct run *r, char **ids, size_t n, struct pg_connection *c,
                                   char *err, size_t errlen)
{
    struct chunk_state s = {.r = r, .ids = ids, .nids = n};
    htab_init(&s.seen, ID_LEN, 0);
    enum pg_status st = pg_conn_exec(c, SQL_V_BEGIN, 0, NULL, NULL, err, errlen);
    if (st == PG_OK)
        st = load_infos(&s, c, err, errlen);
    if (st == PG_OK)
        st = read_cursor(&s, c, err, errlen);
    if (st == PG_OK) {
        st = verify_resolve_pending(r, c, s.pend, s.npend, err, errlen);
        s.npend = 0;
    }
    if (st == PG_OK) {
        verify_unseen(&s);
        st = pg_conn_commit(c, err, errlen); /* ROLLBACK is no commit */
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

/* The chunk strategy's plan: the stream, or the tenant's streams. */
static enum pg_status plan(struct run *r, struct chunks *k, struct pg_connection *c, char *err,
                           size_t errlen)
{
    const struct verify_opts *o = r->o;
    if (o->stream) {
        k->ids = xcalloc(1, sizeof(*k->ids));
        k->ids[0] = xstrdup(o->stream);
        k->nids = k->per = 1;
        return PG_OK;
    }
    char f[TIME_RFC3339_LEN], t[TIME_RFC3339_LEN];
    verify_range_text(o, f, t);
    const char *params[] = {o->tenant, f, t};
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(c, SQL_V_TENANT_IDS, 3, params, &res, err, errlen);
    if (st != PG_OK)
        return st;
    size_t n = (size_t)PQntuples(res);
    k->ids = xcalloc(n ? n : 1, sizeof(*k->ids));
    for (size_t i = 0; i < n; i++)
        k->ids[i] = xstrdup(PQgetvalue(res, (int)i, 0));
    k->nids = n;
    PQclear(res);
    unsigned workers = o->workers ? o->workers : VERIFY_DEFAULT_WORKERS;
    k->per = n / (workers * CHUNKS_PER_WORKER);
    k->per = k->per < 1 ? 1 : k->per > CHUNK_MAX ? CHUNK_MAX : k->per;
    return PG_OK;
}

static void run_chunks(struct run *r, struct pg_connection *c)
{
    struct chunks *k = r->strategy;
    char err[512];
    for (;;) {
        pthread_mutex_lock(&r->mu);
        size_t a = r->status == VERIFY_UNAVAILABLE ? k->nids : k->next;
        size_t b = a + k->per < k->nids ? a + k->per : k->nids;
        k->next = b > k->next ? b : k->next;
        pthread_mutex_unlock(&r->mu);
        if (a >= b)
            return;
        if (verify_chunk(r, k->ids + a, b - a, c, err, sizeof(err)) != PG_OK) {
            verify_fail(r, err);
            return;
        }
    }
}

static void *chunk_worker(void *arg)
{
    struct run *r = arg;
    struct pg_connection *c = pg_conn_new(r->conninfo, &verify_conn_opts);
    char err[512];
    if (pg_conn_open(c, NULL, err, sizeof(err)) != PG_OK)
        verify_fail(r, err);
    else
        run_chunks(r, c);
    pg_conn_free(c);
    return NULL;
}

static void verify_chunks(struct run *r, struct pg_connection *c)
{
    struct chunks k = {0};
    char err[512];
    r->strategy = &k;
    if (plan(r, &k, c, err, sizeof(err)) != PG_OK) {
        verify_fail(r, err);
    } else {
        unsigned workers =
            r->conninfo ? (r->o->workers ? r->o->workers : VERIFY_DEFAULT_WORKERS) : 1;
        size_t nchunks = (k.nids + k.per - 1) / k.per;
        if (workers > nchunks)
            workers = nchunks ? (unsigned)nchunks : 1;
        pthread_t *th = xcalloc(workers, sizeof(*th));
        bool *up = xcalloc(workers, sizeof(*up));
        for (unsigned i = 1; i < workers; i++)
            up[i] = pthread_create(&th[i], NULL, chunk_worker, r) == 0; /* else: fewer */
        run_chunks(r, c);
        for (unsigned i = 1; i < workers; i++)
            if (up[i])
                pthread_join(th[i], NULL);
        free(up);
        free(th);
    }
    for (size_t i = 0; i < k.nids; i++)
        free(k.ids[i]);
    free(k.ids);
    r->strategy = NULL;
}

/* ---- entry points ---- */

static void run_init(struct run *r, const struct verify_opts *o, verify_emit_fn emit, void *ud)
{
    memset(r, 0, sizeof(*r));
    r->o = o;
    r->full = o->from_us == VERIFY_UNBOUNDED_FROM && o->to_us == VERIFY_UNBOUNDED_TO;
    r->emit = emit;
    r->ud = ud;
    /* Recursive: a vchain reports through verify_emit_locked while its
     * owner may already hold the lock (the scan's shared stream states). */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&r->mu, &ma);
    pthread_mutexattr_destroy(&ma);
}

static enum verify_status run(struct run *r, struct pg_connection *c, struct verify_report *rep,
                              char *err, size_t errlen)
{
    uint64_t t0 = time_mono_us();
    if (!failed(r)) {
        if (r->o->stream || r->o->tenant)
            verify_chunks(r, c);
        else
            verify_scan(r, c);
    }
    r->rep.elapsed_us = time_mono_us() - t0;
    *rep = r->rep;
    enum verify_status st = r->status;
    if (st == VERIFY_UNAVAILABLE)
        snprintf(err, errlen, "%s", r->err);
    else
        st = r->rep.problems ? VERIFY_PROBLEMS : VERIFY_INTACT;
    pthread_mutex_destroy(&r->mu);
    return st;
}

enum verify_status verify_run_on(struct pg_connection *c, const struct verify_opts *o,
                                 verify_emit_fn emit, void *ud, struct verify_report *rep,
                                 char *err, size_t errlen)
{
    struct run r;
    run_init(&r, o, emit, ud);
    return run(&r, c, rep, err, errlen);
}

enum verify_status verify_run(const char *conninfo, const struct verify_opts *o,
                              verify_emit_fn emit, void *ud, struct verify_report *rep, char *err,
                              size_t errlen)
{
    struct run r;
    run_init(&r, o, emit, ud);
    r.conninfo = conninfo;
    struct pg_connection *c = pg_conn_new(conninfo, &verify_conn_opts);
    char e2[512];
    if (pg_conn_open(c, NULL, e2, sizeof(e2)) != PG_OK)
        verify_fail(&r, e2);
    enum verify_status st = run(&r, c, rep, err, errlen);
    pg_conn_free(c);
    return st;
}
