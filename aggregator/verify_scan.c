/* verify's scan strategy (verify_int.h): every partition of the range is
 * read in physical order (a sequential scan, no sort: as fast as a COPY of
 * the same rows) by a pool of workers sharing one exported snapshot. Each
 * record is checked alone as it comes (hash, id, genesis, signed heads);
 * per partition, each stream's records form runs of consecutive, linked
 * seqs (an ingested stream is stored in order, so normally one run per
 * stream and partition); the runs are merged into the stream's state, the
 * link checked where two runs meet, overlaps (forks) looked up at the end,
 * and the gaps between the runs that remain are reported. Memory: per
 * stream its state (about 600 bytes) and the runs not yet joined; per
 * worker one FETCH of rows and one partition's runs. */
#include <inttypes.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/pg_sql.h"
#include "aggregator/proof_sql.h"
#include "aggregator/verify_int.h"
#include "common/buf.h"
#include "common/htab.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define ID_LEN       VERIFY_ID_LEN
#define PENDING_MAX  10000 /* streams per neighbour lookup */
#define SNAPSHOT_MAX 64

/* One stream's state (under run->mu). */
struct sstream {
    struct vchain ch;
};

/* The scan's shared state (run->strategy, under run->mu but for the list
 * of partitions, read-only once planned). */
struct scan {
    struct htab byid; /* key -> index in s */
    struct sstream *s;
    size_t n, cap;
    struct info *infos;
    size_t ninfos;
    struct htab info_byid;
    char **parts;
    size_t nparts, next;
    char snapshot[SNAPSHOT_MAX];
};

/* A stream's key: its id when it is 32 characters, else 32 hex characters
 * of its SHA-256 (such an id is reported as bad_stream). */
static void stream_key(const char *id, size_t len, char key[ID_LEN])
{
    if (len == ID_LEN) {
        memcpy(key, id, ID_LEN);
        return;
    }
    uint8_t h[32];
    SHA256((const uint8_t *)id, len, h);
    char hex[65];
    hex_encode(h, 16, hex);
    memcpy(key, hex, ID_LEN);
}

/* The global state of a stream, begun on first sight (run->mu held). */
static struct vchain *global(struct run *r, const char *id, size_t len)
{
    struct scan *sc = r->strategy;
    char key[ID_LEN];
    stream_key(id, len, key);
    bool added = false;
    size_t *v = htab_put(&sc->byid, key, &added);
    if (added) {
        if (sc->n == sc->cap) {
            sc->cap = sc->cap ? 2 * sc->cap : 256;
            sc->s = xrealloc(sc->s, sc->cap * sizeof(*sc->s));
        }
        *v = sc->n++;
        verify_begin_stream(r, &sc->s[*v].ch, id, len);
    }
    return &sc->s[*v].ch;
}

/* ---- one partition, in one worker ---- */

struct lstream {
    char key[ID_LEN];
    char *id; /* heap when not the key itself */
    size_t idlen;
    uint8_t genesis[CHAIN_HASH_LEN];
    bool genesis_ok;
    const struct verify_stream_heads *heads;
    bool has;
    struct vrun cur;
    /* Other records at cur.last_seq (forks stored next to each other): the
     * next record may link to any of them. */
    uint8_t alt[VCHAIN_FORKS][CHAIN_HASH_LEN];
    int nalt;
    struct vrun *runs;
    size_t nruns, cap;
};

struct part_state {
    struct run *r;
    struct htab byid;
    struct lstream *s;
    size_t n, cap;
    uint64_t rows, bytes;
};

static struct lstream *local(struct part_state *ps, const char *id, size_t len)
{
    char key[ID_LEN];
    stream_key(id, len, key);
    bool added = false;
    size_t *v = htab_put(&ps->byid, key, &added);
    if (!added)
        return &ps->s[*v];
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 256;
        ps->s = xrealloc(ps->s, ps->cap * sizeof(*ps->s));
    }
    *v = ps->n++;
    struct lstream *l = &ps->s[*v];
    memset(l, 0, sizeof(*l));
    memcpy(l->key, key, ID_LEN);
    l->id = xmemdup(id, len + 1);
    l->id[len] = '\0';
    l->idlen = len;
    if (len == ID_LEN) {
        chain_genesis(id, l->genesis);
        l->genesis_ok = true;
        const struct verify_heads *h = ps->r->o->heads;
        l->heads = h ? h->lookup(h->ud, l->id) : NULL;
    }
    return l;
}

static bool head_seq(const struct verify_stream_heads *h, int64_t seq)
{
    return h && ((h->latest.set && h->latest.seq == seq) ||
                 (h->first_recent.set && h->first_recent.seq == seq) ||
                 (h->cut_anchor.set && h->cut_anchor.seq == seq));
}

static void push_run(struct lstream *l)
{
    if (!l->has)
        return;
    if (l->nruns == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 2;
        l->runs = xrealloc(l->runs, l->cap * sizeof(*l->runs));
    }
    l->runs[l->nruns++] = l->cur;
    l->has = false;
}

/* One record: its own checks, and the run it extends or starts. */
static void take_row(struct part_state *ps, const char *id, size_t idlen, const struct vrow *row)
{
    struct run *r = ps->r;
    struct lstream *l = local(ps, id, idlen);
    static const uint8_t zero[CHAIN_HASH_LEN];
    const uint8_t *hash = row->hash ? row->hash : zero, *prev = row->prev ? row->prev : zero;
    uint8_t h[CHAIN_HASH_LEN];
    bool ok = row->hash && row->prev && row->id;
    if (ok) {
        chain_next(row->prev, (uint64_t)row->seq, row->raw, row->raw_len, h);
        ok =
            memcmp(h, row->hash, CHAIN_HASH_LEN) == 0 && memcmp(row->id, row->hash, 16) == 0 &&
            (row->seq != 0 || !l->genesis_ok || memcmp(row->prev, l->genesis, CHAIN_HASH_LEN) == 0);
    }
    bool head = head_seq(l->heads, row->seq);
    bool next = l->has && row->seq == l->cur.last_seq + 1;
    bool fork = l->has && row->seq == l->cur.last_seq;
    bool link = next && memcmp(prev, l->cur.last_hash, CHAIN_HASH_LEN) != 0;
    for (int k = 0; link && k < l->nalt; k++)
        link = memcmp(prev, l->alt[k], CHAIN_HASH_LEN) != 0;
    if (!ok || head || link || fork) { /* rare: on the stream's state, under the lock */
        pthread_mutex_lock(&r->mu);
        struct vchain *g = global(r, id, idlen);
        if (!ok)
            vchain_check_fields(g, row);
        if (head)
            vchain_check_heads(g, row->seq, row->hash);
        if (link)
            vchain_report_link(g, row, l->cur.last_hash);
        if (fork)
            vchain_note_overlap(g, row->seq, row->seq);
        pthread_mutex_unlock(&r->mu);
    }
    if (fork) { /* the run goes on; the next record may link to either */
        if (l->nalt < VCHAIN_FORKS)
            memcpy(l->alt[l->nalt++], hash, CHAIN_HASH_LEN);
        l->cur.rows++;
        return;
    }
    if (next) {
        l->cur.last_seq = row->seq;
        memcpy(l->cur.last_hash, hash, CHAIN_HASH_LEN);
        l->cur.rows++;
        l->nalt = 0;
        return;
    }
    l->nalt = 0;
    push_run(l);
    l->has = true;
    l->cur = (struct vrun){.first_seq = row->seq,
                           .last_seq = row->seq,
                           .first_time_us = row->event_time_us,
                           .rows = 1};
    memcpy(l->cur.first_prev, prev, CHAIN_HASH_LEN);
    memcpy(l->cur.last_hash, hash, CHAIN_HASH_LEN);
}

/* One FETCH's rows (verify_fetch_all's callback). */
static void take_rows(void *ud, PGresult *res)
{
    struct part_state *ps = ud;
    for (int i = 0; i < PQntuples(res); i++) {
        struct vrow row;
        verify_row_from(res, i, &row);
        ps->bytes += row.raw_len;
        take_row(ps, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0), &row);
    }
}

/* The partition's runs into the streams' states; free the partition. */
static void merge_partition(struct part_state *ps)
{
    struct run *r = ps->r;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < ps->n; i++) {
        struct lstream *l = &ps->s[i];
        push_run(l);
        struct vchain *g = global(r, l->id, l->idlen);
        for (size_t k = 0; k < l->nruns; k++)
            vchain_add_run(g, &l->runs[k]);
        free(l->runs);
        free(l->id);
    }
    r->rep.bytes += ps->bytes;
    pthread_mutex_unlock(&r->mu);
    free(ps->s);
    htab_release(&ps->byid);
}

static enum pg_status scan_partition(struct run *r, struct pg_connection *c, const char *name,
                                     char *err, size_t errlen)
{
    struct buf sql = BUF_INIT;
    buf_addf(&sql, SQL_V_SCAN_FMT, name);
    const char *params[2];
    char f[TIME_RFC3339_LEN], t[TIME_RFC3339_LEN];
    int np = 0;
    if (!r->full) {
        verify_range_text(r->o, f, t);
        params[np++] = f;
        params[np++] = t;
        buf_adds(&sql, SQL_V_SCAN_RANGE);
    }
    enum pg_status st = pg_conn_exec(c, buf_cstr(&sql), np, params, NULL, err, errlen);
    buf_release(&sql);
    if (st != PG_OK)
        return st;
    struct part_state ps = {.r = r};
    htab_init(&ps.byid, ID_LEN, 0);
    st = verify_fetch_all(r, c, take_rows, &ps, err, errlen);
    merge_partition(&ps);
    return st;
}

/* Take partitions until none is left (or the run failed). */
static void scan_partitions(struct run *r, struct pg_connection *c)
{
    struct scan *sc = r->strategy;
    char err[512];
    for (;;) {
        pthread_mutex_lock(&r->mu);
        const char *name =
            r->status != VERIFY_UNAVAILABLE && sc->next < sc->nparts ? sc->parts[sc->next++] : NULL;
        pthread_mutex_unlock(&r->mu);
        if (!name)
            return;
        if (scan_partition(r, c, name, err, sizeof(err)) != PG_OK) {
            verify_fail(r, err);
            return;
        }
    }
}

/* A worker of its own: the exported snapshot, then partitions. */
static void *scan_worker(void *arg)
{
    struct run *r = arg;
    struct scan *sc = r->strategy;
    struct pg_connection *c = pg_conn_new(r->conninfo, &verify_conn_opts);
    char err[512], snap[sizeof(SQL_V_SNAP_FMT) + SNAPSHOT_MAX];
    snprintf(snap, sizeof(snap), SQL_V_SNAP_FMT, sc->snapshot);
    if (pg_conn_open(c, NULL, err, sizeof(err)) != PG_OK ||
        pg_conn_exec(c, SQL_V_BEGIN, 0, NULL, NULL, err, sizeof(err)) != PG_OK ||
        pg_conn_exec(c, snap, 0, NULL, NULL, err, sizeof(err)) != PG_OK)
        verify_fail(r, err);
    else
        scan_partitions(r, c);
    pg_conn_rollback(c);
    pg_conn_free(c);
    return NULL;
}

/* ---- planning and the end ---- */

/* The exported snapshot, every state row, the partitions of the range. */
static enum pg_status plan(struct run *r, struct pg_connection *c, char *err, size_t errlen)
{
    struct scan *sc = r->strategy;
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(c, SQL_V_EXPORT, 0, NULL, &res, err, errlen);
    if (st != PG_OK)
        return st;
    const char *snap = PQgetvalue(res, 0, 0);
    /* Embedded in SET TRANSACTION SNAPSHOT (no parameters there): only
     * what PostgreSQL's ids are made of. */
    if (strlen(snap) >= SNAPSHOT_MAX || strspn(snap, "0123456789ABCDEFabcdef-") != strlen(snap)) {
        snprintf(err, errlen, "unexpected snapshot id from the server");
        PQclear(res);
        return PG_FATAL;
    }
    snprintf(sc->snapshot, sizeof(sc->snapshot), "%s", snap);
    PQclear(res);
    if ((st = pg_conn_exec(c, SQL_V_STREAMS, 0, NULL, &res, err, errlen)) != PG_OK)
        return st;
    size_t n = (size_t)PQntuples(res);
    sc->infos = xcalloc(n ? n : 1, sizeof(*sc->infos));
    htab_init(&sc->info_byid, ID_LEN, n);
    for (size_t i = 0; i < n; i++)
        if (verify_info_from(res, (int)i, &sc->infos[sc->ninfos])) {
            *htab_put(&sc->info_byid, sc->infos[sc->ninfos].id, NULL) = sc->ninfos;
            sc->ninfos++;
        }
    PQclear(res);
    if ((st = pg_conn_exec(c, SQL_V_PARTITIONS, 0, NULL, &res, err, errlen)) != PG_OK)
        return st;
    n = (size_t)PQntuples(res);
    sc->parts = xcalloc(n ? n : 1, sizeof(*sc->parts));
    for (size_t i = 0; i < n; i++) {
        bool bounded = !PQgetisnull(res, (int)i, 1) && !PQgetisnull(res, (int)i, 2);
        int64_t lo = bounded ? strtoll(PQgetvalue(res, (int)i, 1), NULL, 10) : 0;
        int64_t hi = bounded ? strtoll(PQgetvalue(res, (int)i, 2), NULL, 10) : 0;
        if (bounded && (hi <= r->o->from_us || lo >= r->o->to_us))
            continue; /* outside the range */
        sc->parts[sc->nparts++] = xstrdup(PQgetvalue(res, (int)i, 0));
    }
    PQclear(res);
    return PG_OK;
}

static const struct info *info_of(const struct scan *sc, const char *id)
{
    size_t *v = strlen(id) == ID_LEN ? htab_find(&sc->info_byid, id) : NULL;
    return v ? &sc->infos[*v] : NULL;
}

/* Forks: where runs overlapped, the stored hashes tell. */
static enum pg_status look_up_forks(struct run *r, struct pg_connection *c, struct vchain *ch,
                                    char *err, size_t errlen)
{
    for (size_t k = 0; k < ch->novl; k++) {
        char lo[24], hi[24];
        snprintf(lo, sizeof(lo), "%" PRId64, ch->ovl[k].lo);
        snprintf(hi, sizeof(hi), "%" PRId64, ch->ovl[k].hi);
        const char *params[] = {ch->stream, lo, hi};
        PGresult *res = NULL;
        enum pg_status st = pg_conn_exec(c, SQL_V_SEQS, 3, params, &res, err, errlen);
        if (st != PG_OK)
            return st;
        uint8_t first[CHAIN_HASH_LEN], h[CHAIN_HASH_LEN];
        int64_t at = INT64_MIN;
        for (int i = 0; i < PQntuples(res); i++) {
            int64_t seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
            if (hex_decode(PQgetvalue(res, i, 1), CHAIN_HASH_LEN, h) != 0)
                continue;
            if (seq != at) {
                at = seq;
                memcpy(first, h, CHAIN_HASH_LEN);
            } else {
                pthread_mutex_lock(&r->mu);
                vchain_fork(ch, seq, first, h);
                pthread_mutex_unlock(&r->mu);
            }
        }
        PQclear(res);
    }
    return PG_OK;
}

static enum pg_status finish_streams(struct run *r, struct pg_connection *c, char *err,
                                     size_t errlen)
{
    struct scan *sc = r->strategy;
    struct pending *pend = xcalloc(PENDING_MAX, sizeof(*pend));
    size_t npend = 0;
    enum pg_status st = PG_OK;
    for (size_t i = 0; i < sc->n && st == PG_OK; i++) {
        struct vchain *ch = &sc->s[i].ch;
        if ((st = look_up_forks(r, c, ch, err, errlen)) != PG_OK)
            break;
        pthread_mutex_lock(&r->mu);
        vchain_close_runs(ch);
        pthread_mutex_unlock(&r->mu);
        struct vchain_expect e;
        verify_expect_init(r, info_of(sc, ch->stream), &e);
        int64_t np = vchain_need_prev(ch, &e), nn = vchain_need_next(ch, &e);
        if (np < 0 && nn < 0) {
            vchain_end(ch, &e);
            verify_account(r, ch);
            vchain_release(ch);
            continue;
        }
        pend[npend++] = (struct pending){.ch = *ch, .ex = e, .need_prev = np, .need_next = nn};
        memset(ch, 0, sizeof(*ch)); /* the pending copy owns the runs now */
        if (npend == PENDING_MAX) {
            st = verify_resolve_pending(r, c, pend, npend, err, errlen);
            npend = 0;
        }
    }
    if (st == PG_OK)
        st = verify_resolve_pending(r, c, pend, npend, err, errlen);
    free(pend);
    return st;
}

/* Streams the scan did not see: a state row without any record (full
 * verify), or signed heads. */
static void finish_unseen(struct run *r)
{
    struct scan *sc = r->strategy;
    for (size_t i = 0; r->full && i < sc->ninfos; i++) {
        pthread_mutex_lock(&r->mu);
        bool seen = htab_find(&sc->byid, sc->infos[i].id) != NULL;
        struct vchain *g = seen ? NULL : global(r, sc->infos[i].id, ID_LEN);
        pthread_mutex_unlock(&r->mu);
        if (!g)
            continue;
        struct vchain_expect e;
        verify_expect_init(r, &sc->infos[i], &e);
        vchain_end(g, &e);
        verify_account(r, g);
        vchain_release(g);
    }
    const struct verify_heads *h = r->o->heads;
    const char *const *ids;
    size_t n = h ? h->streams(h->ud, &ids) : 0;
    for (size_t i = 0; i < n; i++) {
        if (strlen(ids[i]) != ID_LEN)
            continue;
        pthread_mutex_lock(&r->mu);
        bool seen = htab_find(&sc->byid, ids[i]) != NULL;
        struct vchain *g = seen ? NULL : global(r, ids[i], ID_LEN);
        pthread_mutex_unlock(&r->mu);
        if (!g)
            continue;
        struct vchain_expect e;
        verify_expect_init(r, info_of(sc, ids[i]), &e);
        vchain_end(g, &e);
        verify_account(r, g);
        vchain_release(g);
    }
}

void verify_scan(struct run *r, struct pg_connection *c)
{
    struct scan sc = {0};
    htab_init(&sc.byid, ID_LEN, 0);
    r->strategy = &sc;
    char err[512];
    unsigned workers = r->conninfo ? (r->o->workers ? r->o->workers : VERIFY_DEFAULT_WORKERS) : 1;
    /* The first connection exports the snapshot and keeps its transaction
     * open until the end: the workers import it, and the final lookups
     * read the same state. */
    if (pg_conn_exec(c, SQL_V_BEGIN, 0, NULL, NULL, err, sizeof(err)) != PG_OK ||
        plan(r, c, err, sizeof(err)) != PG_OK) {
        verify_fail(r, err);
        goto out;
    }
    if (workers > sc.nparts)
        workers = sc.nparts ? (unsigned)sc.nparts : 1;
    pthread_t *th = xcalloc(workers, sizeof(*th));
    bool *up = xcalloc(workers, sizeof(*up));
    for (unsigned i = 1; i < workers; i++)
        up[i] = pthread_create(&th[i], NULL, scan_worker, r) == 0; /* else: fewer */
    scan_partitions(r, c);
    for (unsigned i = 1; i < workers; i++)
        if (up[i])
            pthread_join(th[i], NULL);
    free(up);
    free(th);
    pthread_mutex_lock(&r->mu);
    bool ok = r->status != VERIFY_UNAVAILABLE;
    pthread_mutex_unlock(&r->mu);
    if (ok) {
        if (finish_streams(r, c, err, sizeof(err)) != PG_OK)
            verify_fail(r, err);
        else
            finish_unseen(r);
    }
out:
    pg_conn_rollback(c); /* read only: nothing to commit */
    for (size_t i = 0; i < sc.n; i++)
        vchain_release(&sc.s[i].ch);
    free(sc.s);
    htab_release(&sc.byid);
    for (size_t i = 0; i < sc.nparts; i++)
        free(sc.parts[i]);
    free(sc.parts);
    free(sc.infos);
    if (sc.info_byid.slots)
        htab_release(&sc.info_byid);
    r->strategy = NULL;
}
