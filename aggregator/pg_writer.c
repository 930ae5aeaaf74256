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

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/partitions.h"
#include "aggregator/pg_sql.h"
#include "common/hashchain.h"
#include "common/log.h"
#include "common/xmalloc.h"

#define PG_EPOCH_OFFSET_US INT64_C(946684800000000) /* 2000-01-01 - 1970-01-01 */
#define COPY_FLUSH_BYTES   (1u << 20)

struct pg_writer {
    char *conninfo;
    char *group;
    PGconn *conn; /* NULL or broken: reconnect on the next call */
    struct part_cache parts;
};

/* ---- growable byte buffer ---- */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t c = b->cap ? b->cap : 4096;
    while (c < b->len + more)
        c *= 2;
    b->p = xrealloc(b->p, c);
    b->cap = c;
}

static void buf_add(struct buf *b, const void *d, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* NUL-terminate (not counted in len) and return the string. */
static const char *buf_cstr(struct buf *b)
{
    buf_reserve(b, 1);
    b->p[b->len] = '\0';
    return b->p;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- binary COPY encoding ---- */

static void put_i16(struct buf *b, int16_t v)
{
    uint16_t n = htons((uint16_t)v);
    buf_add(b, &n, 2);
}

static void put_i32(struct buf *b, int32_t v)
{
    uint32_t n = htonl((uint32_t)v);
    buf_add(b, &n, 4);
}

static void put_i64(struct buf *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    uint8_t o[8];
    for (int i = 7; i >= 0; i--) {
        o[i] = (uint8_t)u;
        u >>= 8;
    }
    buf_add(b, o, 8);
}

static void fld_null(struct buf *b)
{
    put_i32(b, -1);
}

static void fld_bytes(struct buf *b, const void *d, size_t n)
{
    put_i32(b, (int32_t)n);
    buf_add(b, d, n);
}

static void fld_text(struct buf *b, const char *s)
{
    if (!s)
        fld_null(b);
    else
        fld_bytes(b, s, strlen(s));
}

static void fld_i64(struct buf *b, int64_t v)
{
    put_i32(b, 8);
    put_i64(b, v);
}

static void fld_time(struct buf *b, int64_t unix_us)
{
    fld_i64(b, unix_us - PG_EPOCH_OFFSET_US);
}

/* jsonb binary: a version byte (1) then the JSON text. */
static void fld_jsonb(struct buf *b, const void *text, size_t n)
{
    put_i32(b, (int32_t)(n + 1));
    uint8_t ver = 1;
    buf_add(b, &ver, 1);
    buf_add(b, text, n);
}

static void uuid_bytes(const struct envelope *e, uint8_t out[16])
{
    /* 8-4-4-4-12; envelope_decode validated it. Fall back to the contract
     * (the first 16 bytes of the hash) if it is somehow malformed. */
    static const int pos[5][2] = {{0, 4}, {9, 2}, {14, 2}, {19, 2}, {24, 6}};
    size_t o = 0;
    for (int i = 0; i < 5; i++) {
        if (hex_decode(e->id + pos[i][0], (size_t)pos[i][1], out + o) < 0) {
            memcpy(out, e->hash, 16);
            return;
        }
        o += (size_t)pos[i][1];
    }
}

/* Strict check: the record is a JSON object jsonb can hold (valid UTF-8, no
 * \u0000, numbers in range), by parsing it with jansson (~µs per record). */
static bool line_is_json_object(const uint8_t *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len || line[i] != '{')
        return false;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)line, len, JSON_DECODE_INT_AS_REAL, &jerr);
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

/* Cheap check: it looks like one JSON object jsonb could hold ('{' … '}', no
 * NUL byte, no \u0000). PostgreSQL's jsonb parser is the real validator: a
 * row it refuses is retried with attrs NULL (store_rows). */
static bool line_maybe_json_object(const uint8_t *line, size_t len)
{
    size_t i = 0, j = len;
    while (i < j && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    while (j > i && (line[j - 1] == ' ' || line[j - 1] == '\t' || line[j - 1] == '\r'))
        j--;
    if (j - i < 2 || line[i] != '{' || line[j - 1] != '}')
        return false;
    return !memchr(line, 0, len) && !memmem(line, len, "\\u0000", 6);
}

static char *source_json(const struct envelope_source *s)
{
    json_t *o = json_object();
    const char *k[] = {"name", "host", "namespace", "pod", "container", "path"};
    const char *v[] = {s->name, s->host, s->namespace_, s->pod, s->container, s->path};
    for (int i = 0; i < 6; i++)
        if (v[i])
            json_object_set_new(o, k[i], json_string(v[i]));
    char *txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return txt;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool source_eq(const struct envelope_source *a, const struct envelope_source *b)
{
    return str_eq(a->name, b->name) && str_eq(a->host, b->host) &&
           str_eq(a->namespace_, b->namespace_) && str_eq(a->pod, b->pod) &&
           str_eq(a->container, b->container) && str_eq(a->path, b->path);
}

/* The previous row's source JSON: rows of one stream share their source,
 * and serializing it is a good part of the encoding cost. */
struct src_cache {
    const struct envelope_source *src;
    char *json;
};

static const char *src_json(struct src_cache *sc, const struct envelope_source *s)
{
    if (!sc->json || !source_eq(sc->src, s)) {
        free(sc->json);
        sc->json = source_json(s);
    }
    sc->src = s;
    return sc->json;
}

/* One row in the column order of SQL_W_COPY_COLS (events without
 * ingested_at). attrs: 0 = NULL, 1 = cheap check, 2 = strict check. */
static void copy_row(struct buf *b, const struct envelope *e, struct src_cache *sc, int attrs)
{
    uint8_t uuid[16];
    uuid_bytes(e, uuid);
    put_i16(b, 19);
    fld_time(b, e->time_us);
    fld_bytes(b, uuid, 16);
    fld_text(b, e->stream);
    fld_i64(b, (int64_t)e->seq);
    fld_i64(b, (int64_t)e->offset);
    fld_bytes(b, e->hash, CHAIN_HASH_LEN);
    fld_bytes(b, e->prev, CHAIN_HASH_LEN);
    fld_time(b, e->read_time_us);
    fld_text(b, e->time_source == TIME_SOURCE_PAYLOAD ? "payload" : "read");
    fld_text(b, e->fields.tenant);
    fld_text(b, e->fields.actor);
    fld_text(b, e->fields.action);
    fld_text(b, e->fields.resource);
    fld_text(b, e->fields.outcome);
    fld_text(b, e->format ? e->format : "raw");
    const char *src = src_json(sc, &e->source);
    fld_jsonb(b, src, strlen(src));
    fld_bytes(b, e->line ? (const void *)e->line : "", e->line_len);
    fld_i64(b, (int64_t)e->truncated_bytes);
    /* A cut record is not the JSON it started as. */
    bool json = attrs && e->truncated_bytes == 0 &&
                (attrs == 2 ? line_is_json_object(e->line, e->line_len)
                            : line_maybe_json_object(e->line, e->line_len));
    if (json)
        fld_jsonb(b, e->line, e->line_len);
    else
        fld_null(b);
}

/* ---- results and errors ---- */

const char *pg_result_name(enum pg_write_result r)
{
    switch (r) {
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
    case PG_RESULT_COUNT:
        break;
    }
    return "unknown";
}

enum pg_write_result pg_classify_sqlstate(const char *s)
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

static void trim_msg(char *err)
{
    size_t l = strlen(err);
    while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
        err[--l] = '\0';
}

/* Classify a failed result (res may be NULL) and describe it in err. */
static enum pg_write_result fail(struct pg_writer *w, PGresult *res, const char *what, char *err,
                                 size_t errlen)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = w->conn ? PQerrorMessage(w->conn) : "no connection";
    snprintf(err, errlen, "%s: %s%s%s", what, st ? "[" : "", st ? st : "", st ? "] " : "");
    size_t l = strlen(err);
    snprintf(err + l, errlen > l ? errlen - l : 0, "%s", msg);
    trim_msg(err);
    if (!st && w->conn && PQstatus(w->conn) == CONNECTION_OK)
        return PG_FATAL; /* a client-side error (e.g. protocol), not a lost link */
    return pg_classify_sqlstate(st);
}

/* ---- connection ---- */

static int setup(struct pg_writer *w, char *err, size_t errlen)
{
    static const struct {
        const char *name, *sql;
    } stmts[] = {
        {STMT_W_OFFSET_LOAD, SQL_W_OFFSET_LOAD}, {STMT_W_OFFSET_CAS, SQL_W_OFFSET_CAS},
        {STMT_W_OFFSET_INIT, SQL_W_OFFSET_INIT}, {STMT_W_STREAMS_LOCK, SQL_W_STREAMS_LOCK},
        {STMT_W_LOOKUP, SQL_W_LOOKUP},           {STMT_W_LOOKUP_DAY, SQL_W_LOOKUP_DAY},
        {STMT_W_INSERT, SQL_W_INSERT},           {STMT_W_STREAMS_UPSERT, SQL_W_STREAMS_UPSERT},
        {STMT_W_INCIDENT, SQL_W_INCIDENT},
    };
    const char *init[] = {SQL_W_SESSION, SQL_W_STAGE_CREATE};
    for (size_t i = 0; i < sizeof(init) / sizeof(init[0]); i++) {
        PGresult *r = PQexec(w->conn, init[i]);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "session setup: %s", PQresultErrorMessage(r));
            trim_msg(err);
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        PGresult *r = PQprepare(w->conn, stmts[i].name, stmts[i].sql, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "prepare %s: %s", stmts[i].name, PQresultErrorMessage(r));
            trim_msg(err);
            PQclear(r);
            return -1;
        }
        PQclear(r);
    }
    w->parts.stale = true;
    return 0;
}

/* Connect (or reconnect) when needed. PG_OK, PG_TRANSIENT (server not
 * reachable) or PG_FATAL (schema missing, privileges). */
static enum pg_write_result ensure_conn(struct pg_writer *w, char *err, size_t errlen)
{
    if (w->conn && PQstatus(w->conn) == CONNECTION_OK) {
        if (PQtransactionStatus(w->conn) != PQTRANS_IDLE)
            PQclear(PQexec(w->conn, "ROLLBACK"));
        if (PQstatus(w->conn) == CONNECTION_OK)
            return PG_OK;
    }
    if (w->conn) {
        PQfinish(w->conn);
        w->conn = NULL;
        log_info("pg_writer: reconnecting");
    }
    /* connect_timeout and application_name first so the conninfo can
     * override them. */
    const char *kw[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *val[] = {"5", "auditrail-aggregator", w->conninfo, NULL};
    w->conn = PQconnectdbParams(kw, val, 1);
    if (PQstatus(w->conn) != CONNECTION_OK) {
        snprintf(err, errlen, "connect: %s", PQerrorMessage(w->conn));
        trim_msg(err);
        PQfinish(w->conn);
        w->conn = NULL;
        return PG_TRANSIENT;
    }
    if (setup(w, err, errlen) < 0) {
        enum pg_write_result r = PQstatus(w->conn) == CONNECTION_OK ? PG_FATAL : PG_TRANSIENT;
        PQfinish(w->conn);
        w->conn = NULL;
        return r;
    }
    return PG_OK;
}

struct pg_writer *pg_writer_new(const char *conninfo, const char *group, char *err, size_t errlen)
{
    struct pg_writer *w = xcalloc(1, sizeof(*w));
    w->conninfo = xstrdup(conninfo);
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
    if (w->conn)
        PQfinish(w->conn);
    part_cache_release(&w->parts);
    free(w->conninfo);
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

enum pg_write_result pg_writer_ping(struct pg_writer *w, char *err, size_t errlen)
{
    enum pg_write_result r = ensure_conn(w, err, errlen);
    if (r != PG_OK)
        return r;
    PGresult *res = PQexec(w->conn, "SELECT 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        r = fail(w, res, "ping", err, errlen);
    PQclear(res);
    return r;
}

enum pg_write_result pg_writer_load_offset(struct pg_writer *w, const char *topic,
                                           int32_t partition, int64_t *out, char *err,
                                           size_t errlen)
{
    enum pg_write_result r = ensure_conn(w, err, errlen);
    if (r != PG_OK)
        return r;
    char part[16];
    snprintf(part, sizeof(part), "%" PRId32, partition);
    const char *params[] = {w->group, topic, part};
    PGresult *res = PQexecPrepared(w->conn, STMT_W_OFFSET_LOAD, 3, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        r = fail(w, res, "load offset", err, errlen);
    } else {
        *out = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    }
    PQclear(res);
    return r;
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

/* Array literal element, quoted ("…" with \ and " escaped). */
static void arr_str(struct buf *a, const char *s)
{
    buf_add(a, a->len > 1 ? ",\"" : "\"", a->len > 1 ? 2 : 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_add(a, "\\", 1);
        buf_add(a, s, 1);
    }
    buf_add(a, "\"", 1);
}

static void arr_i64(struct buf *a, int64_t v)
{
    buf_fmt(a, a->len > 1 ? ",%" PRId64 : "%" PRId64, v);
}

static void arr_init(struct buf *a)
{
    a->len = 0;
    buf_add(a, "{", 1);
}

static const char *arr_done(struct buf *a)
{
    buf_add(a, "}", 1);
    return buf_cstr(a);
}

/* Run a prepared statement expecting `want`; on success *res holds the
 * result (or is cleared when res is NULL). */
static enum pg_write_result exec_prep(struct pg_writer *w, const char *stmt, int np,
                                      const char *const *params, ExecStatusType want,
                                      PGresult **res, char *err, size_t errlen)
{
    PGresult *r = PQexecPrepared(w->conn, stmt, np, params, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        enum pg_write_result pr = fail(w, r, stmt, err, errlen);
        PQclear(r);
        return pr;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return PG_OK;
}

static enum pg_write_result exec_simple(struct pg_writer *w, const char *sql, char *err,
                                        size_t errlen)
{
    PGresult *r = PQexec(w->conn, sql);
    enum pg_write_result pr = PG_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        pr = fail(w, r, sql, err, errlen);
    PQclear(r);
    return pr;
}

static enum pg_write_result cas_offsets(struct pg_writer *w, const struct batch *b, char *err,
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
        enum pg_write_result pr =
            exec_prep(w, o->expected_offset < 0 ? STMT_W_OFFSET_INIT : STMT_W_OFFSET_CAS,
                      o->expected_offset < 0 ? 4 : 5, p, PGRES_COMMAND_OK, &r, err, errlen);
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

/* COPY the rows whose status is 0 into events or the staging table. */
static enum pg_write_result copy_rows(struct pg_writer *w, const struct batch *b,
                                      struct copy_req *q, char *err, size_t errlen)
{
    q->bad_row = -1;
    q->attrs_col = false;
    q->sqlstate[0] = '\0';
    const char *sql = q->sql;
    const uint8_t *status = q->status;
    PGresult *r = PQexec(w->conn, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        enum pg_write_result pr = fail(w, r, "copy", err, errlen);
        PQclear(r);
        return pr;
    }
    PQclear(r);
    struct buf cb = {0};
    static const char hdr[] = "PGCOPY\n\377\r\n\0";
    buf_add(&cb, hdr, 11);
    put_i32(&cb, 0); /* flags */
    put_i32(&cb, 0); /* header extension length */
    int ok = 1;
    struct src_cache sc = {NULL, NULL};
    for (size_t i = 0; i < b->n && ok == 1; i++) {
        if (status[i])
            continue;
        int attrs = q->noattrs && q->noattrs[i] ? 0 : q->strict ? 2 : 1;
        copy_row(&cb, &b->rows[i].env, &sc, attrs);
        if (cb.len >= COPY_FLUSH_BYTES) {
            ok = PQputCopyData(w->conn, cb.p, (int)cb.len);
            cb.len = 0;
        }
    }
    free(sc.json);
    put_i16(&cb, -1); /* trailer */
    if (ok == 1)
        ok = PQputCopyData(w->conn, cb.p, (int)cb.len);
    buf_free(&cb);
    if (PQputCopyEnd(w->conn, ok == 1 ? NULL : "client error") != 1)
        return fail(w, NULL, "copy end", err, errlen);
    enum pg_write_result pr = PG_OK;
    while ((r = PQgetResult(w->conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && pr == PG_OK) {
            pr = fail(w, r, "copy", err, errlen);
            const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", st ? st : "");
            /* "COPY events, line N, column x": the N-th row we sent. */
            const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
            const char *cp = ctx ? strstr(ctx, "COPY ") : NULL; /* after "JSON data, line 1" */
            const char *ln = cp ? strstr(cp, ", line ") : NULL;
            if (ln)
                ln += 2;
            long line = ln ? strtol(ln + 5, NULL, 10) : 0;
            for (size_t i = 0; line > 0 && i < b->n; i++)
                if (!status[i] && --line == 0)
                    q->bad_row = (ssize_t)i;
            q->attrs_col = cp && strstr(cp, "column attrs") != NULL;
        }
        PQclear(r);
    }
    return pr;
}

static enum pg_write_result lock_streams(struct pg_writer *w, struct wctx *c, char *err,
                                         size_t errlen)
{
    struct buf a = {0};
    arr_init(&a);
    for (size_t i = 0; i < c->nst; i++)
        arr_str(&a, c->st[i].id);
    const char *p[] = {arr_done(&a)};
    PGresult *r = NULL;
    enum pg_write_result pr =
        exec_prep(w, STMT_W_STREAMS_LOCK, 1, p, PGRES_TUPLES_OK, &r, err, errlen);
    buf_free(&a);
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
static enum pg_write_result lookup_run(struct pg_writer *w, struct wctx *c,
                                       const struct lookup_pair *pairs, const size_t *idx, size_t n,
                                       bool by_day, char *err, size_t errlen)
{
    struct buf ids = {0}, seqs = {0}, days = {0};
    arr_init(&ids);
    arr_init(&seqs);
    arr_init(&days);
    for (size_t i = 0; i < n; i++) {
        const struct lookup_pair *lp = &pairs[idx[i]];
        arr_str(&ids, c->st[lp->sidx].id);
        arr_i64(&seqs, lp->seq);
        arr_i64(&days, lp->day_s);
    }
    const char *p[] = {arr_done(&ids), arr_done(&seqs), arr_done(&days)};
    PGresult *r = NULL;
    enum pg_write_result pr = exec_prep(w, by_day ? STMT_W_LOOKUP_DAY : STMT_W_LOOKUP,
                                        by_day ? 3 : 2, p, PGRES_TUPLES_OK, &r, err, errlen);
    buf_free(&ids);
    buf_free(&seqs);
    buf_free(&days);
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
static enum pg_write_result lookup(struct pg_writer *w, struct wctx *c, char *err, size_t errlen)
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
    enum pg_write_result pr = PG_OK;
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
static enum pg_write_result store_rows(struct pg_writer *w, struct wctx *c, size_t to_store,
                                       size_t *inserted, ssize_t *bad_row, char *err, size_t errlen)
{
    struct copy_req q = {.status = c->status, .sql = SQL_W_EVENTS_COPY};
    uint8_t *noattrs = NULL;
    enum pg_write_result pr;
    for (int attempt = 0;; attempt++) {
        if ((pr = exec_simple(w, SQL_W_SAVEPOINT, err, errlen)) != PG_OK)
            goto out;
        pr = copy_rows(w, c->b, &q, err, errlen);
        if (pr == PG_OK) {
            *inserted = to_store;
            pr = exec_simple(w, SQL_W_SAVEPOINT_RELEASE, err, errlen);
            goto out;
        }
        *bad_row = q.bad_row;
        if (pr != PG_DATA || !q.attrs_col || q.strict)
            break;
        /* The record looked like a JSON object but is not one jsonb takes
         * (syntax, encoding, depth): store it with attrs NULL. */
        if ((pr = exec_simple(w, SQL_W_SAVEPOINT_ROLLBACK, err, errlen)) != PG_OK)
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
    if ((pr = exec_simple(w, SQL_W_SAVEPOINT_ROLLBACK, err, errlen)) != PG_OK ||
        (pr = copy_rows(w, c->b, &q, err, errlen)) != PG_OK) {
        *bad_row = q.bad_row;
        goto out;
    }
    PGresult *r = NULL;
    if ((pr = exec_prep(w, STMT_W_INSERT, 0, NULL, PGRES_COMMAND_OK, &r, err, errlen)) != PG_OK)
        goto out;
    *inserted = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    log_info("pg_writer: %zu of %zu rows were already stored under their primary key",
             to_store - *inserted, to_store);
out:
    free(noattrs);
    return pr;
}

static enum pg_write_result upsert_streams(struct pg_writer *w, struct wctx *c, char *err,
                                           size_t errlen)
{
    struct buf a[7] = {{0}};
    for (int i = 0; i < 7; i++)
        arr_init(&a[i]);
    struct src_cache sc = {NULL, NULL};
    size_t cnt = 0;
    for (size_t k = 0; k < c->nst; k++) {
        const struct stream_st *s = &c->st[k];
        if (!s->touched)
            continue;
        char hex[2 * CHAIN_HASH_LEN + 1];
        hex_encode(s->new_hash, CHAIN_HASH_LEN, hex);
        arr_str(&a[0], s->id);
        arr_i64(&a[1], s->new_seq);
        arr_str(&a[2], hex);
        arr_i64(&a[3], s->gaps);
        arr_i64(&a[4], s->breaks);
        arr_i64(&a[5], s->forks);
        arr_str(&a[6], src_json(&sc, s->src));
        cnt++;
    }
    enum pg_write_result pr = PG_OK;
    free(sc.json);
    if (cnt) {
        const char *p[7];
        for (int i = 0; i < 7; i++)
            p[i] = arr_done(&a[i]);
        pr = exec_prep(w, STMT_W_STREAMS_UPSERT, 7, p, PGRES_COMMAND_OK, NULL, err, errlen);
    }
    for (int i = 0; i < 7; i++)
        buf_free(&a[i]);
    return pr;
}

static enum pg_write_result insert_incidents(struct pg_writer *w, struct wctx *c, char *err,
                                             size_t errlen)
{
    /* Rare: one prepared INSERT each. */
    for (size_t i = 0; i < c->ninc; i++) {
        const struct incident *in = &c->inc[i];
        char seq[24];
        snprintf(seq, sizeof(seq), "%" PRId64, in->seq);
        const char *p[] = {in->kind,     c->st[in->sidx].id, seq,
                           in->expected, in->actual,         in->evidence};
        enum pg_write_result pr =
            exec_prep(w, STMT_W_INCIDENT, 6, p, PGRES_COMMAND_OK, NULL, err, errlen);
        if (pr != PG_OK)
            return pr;
        log_warn("integrity: %s stream=%s seq=%s expected=%s actual=%s", in->kind,
                 c->st[in->sidx].id, seq, in->expected, in->actual);
    }
    return PG_OK;
}

enum pg_write_result pg_writer_write(struct pg_writer *w, const struct batch *b,
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
    enum pg_write_result pr = ensure_conn(w, err, errlen);
    if (pr != PG_OK)
        return pr;
    if ((pr = exec_simple(w, "BEGIN", err, errlen)) != PG_OK)
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
        char st[6];
        if (part_ensure(&w->parts, w->conn, g.days, g.m, &created, st, err, errlen) < 0) {
            pr = st[0] ? pg_classify_sqlstate(st)
                       : (PQstatus(w->conn) == CONNECTION_OK ? PG_FATAL : PG_TRANSIENT);
            goto fail;
        }
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
    if ((pr = exec_simple(w, "COMMIT", err, errlen)) != PG_OK) {
        /* A failed COMMIT leaves nothing committed (or, on a lost link, an
         * unknown outcome: the offset CAS makes the retry safe). */
        goto out;
    }
    memset(stats->committed, 1, b->n);
    goto out;

fail:
    if (w->conn && PQstatus(w->conn) == CONNECTION_OK &&
        PQtransactionStatus(w->conn) != PQTRANS_IDLE)
        PQclear(PQexec(w->conn, "ROLLBACK"));
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
