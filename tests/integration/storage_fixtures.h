/* Test fixtures for the aggregator storage suites (test_pg_*.c): envelopes
 * built on a real hash chain, a migrated fresh database, small SQL helpers.
 * Header-only (static inline) so each suite stays one file. */
#ifndef AUDITRAIL_TESTS_STORAGE_FIXTURES_H
#define AUDITRAIL_TESTS_STORAGE_FIXTURES_H

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/batch.h"
#include "aggregator/migrate.h"
#include "aggregator/pg_conn.h"
#include "aggregator/pg_writer.h"
#include "common/envelope.h"
#include "common/hashchain.h"
#include "common/xmalloc.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define FX_DAY_US INT64_C(86400000000)
/* 2026-11-26T00:00:00Z */
#define FX_T0 INT64_C(1795651200000000)

/* A stream's chain state as the agent keeps it. */
struct fx_chain {
    char stream[CHAIN_STREAM_HEX_LEN + 1];
    uint64_t seq;
    uint8_t prev[CHAIN_HASH_LEN];
};

static inline void fx_chain_init(struct fx_chain *c, unsigned n)
{
    snprintf(c->stream, sizeof(c->stream), "%032x", n + 0xabc000u);
    c->seq = 0;
    chain_genesis(c->stream, c->prev);
}

/* An envelope for (stream, seq, prev, line) with its correct hash and id. */
static inline void fx_env(struct envelope *e, const char *stream, uint64_t seq,
                          const uint8_t prev[CHAIN_HASH_LEN], const void *line, size_t len,
                          int64_t time_us)
{
    memset(e, 0, sizeof(*e));
    e->v = 1;
    memcpy(e->stream, stream, CHAIN_STREAM_HEX_LEN);
    e->seq = seq;
    e->offset = seq * 100;
    memcpy(e->prev, prev, CHAIN_HASH_LEN);
    chain_next(prev, seq, line, len, e->hash);
    chain_id(e->hash, e->id);
    e->time_us = time_us;
    e->time_source = TIME_SOURCE_PAYLOAD;
    e->read_time_us = time_us + 1000;
    e->source.name = xstrdup("ns/pod/app");
    e->source.host = xstrdup("node-1");
    e->source.path = xstrdup("/var/log/audit/app.log");
    e->format = xstrdup(len && ((const char *)line)[0] == '{' ? "json" : "raw");
    e->fields.tenant = xstrdup("t1");
    e->fields.actor = xasprintf("user%" PRIu64, seq % 3);
    e->fields.action = xstrdup("read");
    e->line = xmemdup(line ? line : "", len ? len : 1);
    e->line_len = len;
}

/* Append the chain's next record to the batch and advance the chain. */
static inline void fx_add(struct batch *b, struct fx_chain *c, const void *line, size_t len,
                          int64_t time_us, int32_t part, int64_t off)
{
    struct envelope e;
    fx_env(&e, c->stream, c->seq, c->prev, line, len, time_us);
    memcpy(c->prev, e.hash, CHAIN_HASH_LEN);
    c->seq++;
    batch_add(b, &e, part, off);
}

static inline void fx_add_str(struct batch *b, struct fx_chain *c, const char *line,
                              int64_t time_us, int32_t part, int64_t off)
{
    fx_add(b, c, line, strlen(line), time_us, part, off);
}

/* Record seq of a fixture chain of nrecs records: the first half on
 * FX_T0's day, the rest on the next, seq seconds into its day's start. */
static inline int64_t fx_rec_time(int seq, int nrecs)
{
    return FX_T0 + (seq < nrecs / 2 ? 0 : FX_DAY_US) + (int64_t)seq * 1000000;
}

/* nstreams chains (fx_chain_init(0, 1, …)) of nrecs records
 * {"actor":"u<s>","n":<i>} at fx_rec_time, written into ci by the
 * pg_writer in two batches (a day each); the last stream of tenant "t2",
 * the others "t1". Their ids to streams[s]; record i's hash, hex, to
 * hashes + (s * nrecs + i) * (2 * CHAIN_HASH_LEN + 1). */
static inline void fx_fill_chains(const char *ci, int nstreams, int nrecs,
                                  char (*streams)[CHAIN_STREAM_HEX_LEN + 1], char *hashes)
{
    char err[512] = "";
    struct pg_writer *w = pg_writer_new(ci, "g1", NULL, err, sizeof(err));
    ck_assert_msg(w != NULL, "pg_writer_new: %s", err);
    struct fx_chain *ch = xcalloc((size_t)nstreams, sizeof(*ch));
    for (int s = 0; s < nstreams; s++) {
        fx_chain_init(&ch[s], (unsigned)s);
        strcpy(streams[s], ch[s].stream);
    }
    for (int half = 0; half < 2; half++) {
        struct batch b;
        batch_init(&b, "audit");
        for (int i = half * nrecs / 2; i < (half + 1) * nrecs / 2; i++)
            for (int s = 0; s < nstreams; s++) {
                char line[96];
                snprintf(line, sizeof(line), "{\"actor\":\"u%d\",\"n\":%d}", s, i);
                fx_add_str(&b, &ch[s], line, fx_rec_time(i, nrecs), 0, (int64_t)b.n);
                struct envelope *e = &b.rows[b.n - 1].env;
                hex_encode(e->hash, CHAIN_HASH_LEN,
                           hashes +
                               ((size_t)s * (size_t)nrecs + (size_t)i) * (2 * CHAIN_HASH_LEN + 1));
                if (s == nstreams - 1) {
                    free(e->fields.tenant);
                    e->fields.tenant = xstrdup("t2");
                }
            }
        struct pg_write_stats st = {0};
        enum pg_status r = pg_writer_write(w, &b, &st, err, sizeof(err));
        ck_assert_msg(r == PG_OK, "write: %s", err);
        ck_assert_uint_eq(st.inserted, (size_t)(nstreams * nrecs / 2));
        pg_write_stats_release(&st);
        batch_release(&b);
    }
    free(ch);
    pg_writer_free(w);
}

/* A fresh database with the embedded migrations applied. Heap conninfo. */
static inline char *fx_fresh_migrated(const char *prefix)
{
    char *ci = test_pg_fresh_db(prefix);
    char err[512];
    struct migrate_report rep;
    if (migrate_run(ci, &rep, err, sizeof(err)) != 0)
        ck_abort_msg("migrate: %s", err);
    return ci;
}

/* An open pg_conn connection to ci (NOTICEs quiet), as the storage code
 * takes them; pg_conn_free it. */
static inline struct pg_connection *fx_conn(const char *ci)
{
    static const char *const session[] = {"SET client_min_messages = warning", NULL};
    static const struct pg_conn_opts opts = {.application_name = "auditrail-test",
                                             .session = session};
    struct pg_connection *c = pg_conn_new(ci, &opts);
    char err[512];
    if (pg_conn_open(c, NULL, err, sizeof(err)) != PG_OK)
        ck_abort_msg("pg_conn_open: %s", err);
    return c;
}

/* First column of the first row as int64 (NULL -> -1). */
static inline int64_t fx_int(PGconn *c, const char *sql)
{
    char *v = test_pg_scalar(c, sql);
    int64_t r = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    return r;
}

#endif
