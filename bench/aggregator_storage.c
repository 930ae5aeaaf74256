/* Storage-side benchmark: pg_writer_write() (staging COPY, dedupe, streams,
 * offsets, one transaction per batch) against a raw COPY of the same rows
 * into the same schema (DESIGN.md §10: writer ≥ 0.8 × raw COPY). Each side
 * gets its own fresh, migrated database on the same server, same run.
 *
 *   bench-aggregator-storage ADMIN_CONNINFO [ROWS] [BATCH] [ROUNDS]
 *
 * ADMIN_CONNINFO must be allowed to CREATE DATABASE (e.g. the stack's
 * STACK_PG_PRIMARY). Both sides run ROUNDS times (default 5), alternating
 * which goes first, on new rows each round; prints each round and the
 * medians (a shared machine is noisy: compare medians, not one run). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/batch.h"
#include "aggregator/migrate.h"
#include "aggregator/pg_sql.h"
#include "aggregator/pg_writer.h"
#include "common/hashchain.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define T0      INT64_C(1795651200000000) /* 2026-11-26T00:00:00Z */
#define STREAMS 50

static PGconn *connect_or_die(const char *ci)
{
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(c));
        exit(1);
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static void exec_or_die(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

/* A fresh migrated database named `name`; returns its conninfo (heap). */
static char *fresh_db(PGconn *admin, const char *admin_ci, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    exec_or_die(admin, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    exec_or_die(admin, sql);
    char *ci = xasprintf("%s dbname=%s", admin_ci, name);
    char err[512];
    struct migrate_report rep;
    if (migrate_run(ci, &rep, err, sizeof(err)) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        exit(1);
    }
    return ci;
}

struct chain {
    char stream[33];
    uint64_t seq;
    uint8_t prev[32];
};

static void make_env(struct envelope *e, struct chain *c, uint64_t i)
{
    char line[512];
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"2026-11-26T10:%02d:%02d.%06uZ\",\"tenant\":\"hospital-%u\","
                     "\"actor\":\"dr.user%04u\",\"action\":\"read\",\"resource\":"
                     "\"Patient/%08" PRIu64 "\",\"outcome\":\"success\",\"ip\":\"10.1.%u.%u\","
                     "\"session\":\"%016" PRIx64 "\",\"ua\":\"Mozilla/5.0 (X11; Linux x86_64)\"}",
                     (unsigned)(i / 60 % 60), (unsigned)(i % 60), (unsigned)(i % 1000000),
                     (unsigned)(i % 7), (unsigned)(i % 5000), i * 7919, (unsigned)(i % 250),
                     (unsigned)(i % 200), i * 2654435761u);
    memset(e, 0, sizeof(*e));
    e->v = 1;
    memcpy(e->stream, c->stream, 33);
    e->seq = c->seq;
    e->offset = c->seq * 300;
    memcpy(e->prev, c->prev, 32);
    chain_next(c->prev, c->seq, line, (size_t)n, e->hash);
    chain_id(e->hash, e->id);
    memcpy(c->prev, e->hash, 32);
    c->seq++;
    e->time_us = T0 + (int64_t)i * 1000;
    e->time_source = TIME_SOURCE_PAYLOAD;
    e->read_time_us = e->time_us + 5000;
    e->source.name = xstrdup("icu/ehr-7f9c/app");
    e->source.host = xstrdup("node-3");
    e->source.namespace_ = xstrdup("icu");
    e->source.pod = xstrdup("ehr-7f9c");
    e->source.container = xstrdup("app");
    e->source.path = xstrdup("/var/log/audit/app.log");
    e->format = xstrdup("json");
    e->fields.tenant = xasprintf("hospital-%u", (unsigned)(i % 7));
    e->fields.actor = xasprintf("dr.user%04u", (unsigned)(i % 5000));
    e->fields.action = xstrdup("read");
    e->fields.resource = xasprintf("Patient/%08" PRIu64, i * 7919);
    e->fields.outcome = xstrdup("success");
    e->line = xmemdup(line, (size_t)n);
    e->line_len = (size_t)n;
}

/* COPY text escaping of one value (backslash, tab, newline, CR). */
static void esc(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\\')
            fputs("\\\\", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\r')
            fputs("\\r", f);
        else
            fputc(ch, f);
    }
}

static void hexcol(FILE *f, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    fputs("\\\\x", f);
    for (size_t i = 0; i < n; i++) {
        fputc(hx[p[i] >> 4], f);
        fputc(hx[p[i] & 15], f);
    }
}

/* The same row as COPY text, the way an operator's file would hold it. */
static void text_row(FILE *f, const struct envelope *e)
{
    char t[TIME_RFC3339_LEN], rt[TIME_RFC3339_LEN];
    time_format_us(e->time_us, t);
    time_format_us(e->read_time_us, rt);
    fprintf(f, "%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t", t, e->id, e->stream, e->seq, e->offset);
    hexcol(f, e->hash, 32);
    fputc('\t', f);
    hexcol(f, e->prev, 32);
    fprintf(f, "\t%s\tpayload\t%s\t%s\t%s\t%s\t%s\t%s\t", rt, e->fields.tenant, e->fields.actor,
            e->fields.action, e->fields.resource, e->fields.outcome, e->format);
    fprintf(f, "{\"container\":\"app\",\"host\":\"node-3\",\"name\":\"icu/ehr-7f9c/app\","
               "\"namespace\":\"icu\",\"path\":\"/var/log/audit/app.log\",\"pod\":\"ehr-7f9c\"}\t");
    hexcol(f, e->line, e->line_len);
    fputs("\t0\t", f);
    esc(f, (const char *)e->line, e->line_len);
    fputs("\t\\N\n", f); /* fields_cut: none */
}

/* Raw COPY of rows [0, n) in batches: seconds. */
static double run_copy(PGconn *cc, struct envelope *envs, size_t rows, size_t bsz)
{
    char **chunks = xcalloc(rows / bsz + 2, sizeof(*chunks));
    size_t *clen = xcalloc(rows / bsz + 2, sizeof(*clen));
    size_t nchunks = 0;
    for (size_t i = 0; i < rows; i += bsz) {
        FILE *f = open_memstream(&chunks[nchunks], &clen[nchunks]);
        for (size_t j = i; j < rows && j < i + bsz; j++)
            text_row(f, &envs[j]);
        fclose(f);
        nchunks++;
    }
    /* Only sending and committing is timed: the file already exists. */
    uint64_t t0 = time_mono_us();
    for (size_t k = 0; k < nchunks; k++) {
        exec_or_die(cc, "BEGIN");
        PGresult *r = PQexec(cc, "COPY auditrail.events (" SQL_W_COPY_COLS ") FROM STDIN");
        if (PQresultStatus(r) != PGRES_COPY_IN) {
            fprintf(stderr, "copy: %s", PQresultErrorMessage(r));
            exit(1);
        }
        PQclear(r);
        PQputCopyData(cc, chunks[k], (int)clen[k]);
        PQputCopyEnd(cc, NULL);
        while ((r = PQgetResult(cc))) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                fprintf(stderr, "copy: %s", PQresultErrorMessage(r));
                exit(1);
            }
            PQclear(r);
        }
        exec_or_die(cc, "COMMIT");
    }
    double s = (double)(time_mono_us() - t0) / 1e6;
    for (size_t k = 0; k < nchunks; k++)
        free(chunks[k]);
    free(chunks);
    free(clen);
    return s;
}

/* The writer, from decoded envelopes, as the consumer calls it (it takes
 * the envelopes over): seconds. */
static double run_writer(struct pg_writer *w, struct envelope *envs, size_t rows, size_t bsz,
                         int64_t *expected)
{
    struct batch b;
    batch_init(&b, "audit.events");
    struct pg_write_stats st = {0};
    char err[512];
    size_t stored = 0;
    uint64_t t0 = time_mono_us();
    for (size_t i = 0; i < rows; i += bsz) {
        batch_clear(&b);
        size_t j;
        for (j = i; j < rows && j < i + bsz; j++) {
            struct envelope e = envs[j];
            memset(&envs[j], 0, sizeof(e));
            batch_add(&b, &e, 0, *expected + 1 + (int64_t)(j - i));
        }
        int64_t next = (*expected < 0 ? 0 : *expected) + (int64_t)(j - i);
        batch_advance(&b, 0, *expected, next);
        *expected = next;
        enum pg_status r = pg_writer_write(w, &b, &st, err, sizeof(err));
        if (r != PG_OK) {
            fprintf(stderr, "write: %s: %s\n", pg_status_name(r), err);
            exit(1);
        }
        stored += st.inserted;
    }
    double s = (double)(time_mono_us() - t0) / 1e6;
    if (stored != rows) {
        fprintf(stderr, "writer stored %zu of %zu rows\n", stored, rows);
        exit(1);
    }
    pg_write_stats_release(&st);
    batch_release(&b);
    return s;
}

/* Round r's rows, twice (the writer takes its copy over): new streams each
 * round, so every row is new on both sides. */
static void make_round(struct envelope *envs, struct envelope *copy, size_t rows, int r)
{
    struct envelope *sides[2] = {envs, copy};
    for (int side = 0; side < 2; side++) {
        struct chain ch[STREAMS];
        for (int s = 0; s < STREAMS; s++) {
            snprintf(ch[s].stream, sizeof(ch[s].stream), "%032x",
                     0xbe9c0000u + (unsigned)(r * STREAMS + s));
            ch[s].seq = 0;
            chain_genesis(ch[s].stream, ch[s].prev);
        }
        for (size_t i = 0; i < rows; i++)
            make_env(&sides[side][i], &ch[i % STREAMS], i);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ADMIN_CONNINFO [ROWS] [BATCH] [ROUNDS]\n", argv[0]);
        return 2;
    }
    const char *admin_ci = argv[1];
    size_t rows = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
    size_t bsz = argc > 3 ? strtoull(argv[3], NULL, 10) : 5000;
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    if (rounds < 1 || rounds > 64 || bsz == 0)
        return 2;
    PGconn *admin = connect_or_die(admin_ci);
    char *wci = fresh_db(admin, admin_ci, "bench_aggr_writer");
    char *cci = fresh_db(admin, admin_ci, "bench_aggr_copy");
    PGconn *cc = connect_or_die(cci);
    exec_or_die(cc, "CREATE TABLE auditrail.events_p20261126 PARTITION OF auditrail.events "
                    "FOR VALUES FROM ('2026-11-26 00:00:00+00') TO ('2026-11-27 00:00:00+00')");
    char err[512];
    struct pg_writer *w = pg_writer_new(wci, "bench", NULL, err, sizeof(err));
    if (!w) {
        fprintf(stderr, "writer: %s\n", err);
        return 1;
    }
    double rc[64], rw[64], ratio[64];
    int64_t expected = -1;
    struct envelope *envs = xcalloc(rows, sizeof(*envs));
    struct envelope *copy = xcalloc(rows, sizeof(*copy)); /* the writer's */
    for (int r = 0; r < rounds; r++) {
        make_round(envs, copy, rows, r);
        /* Alternate the order: neither side always runs on a warmer server. */
        if (r % 2 == 0) {
            rc[r] = run_copy(cc, envs, rows, bsz);
            rw[r] = run_writer(w, copy, rows, bsz, &expected);
        } else {
            rw[r] = run_writer(w, copy, rows, bsz, &expected);
            rc[r] = run_copy(cc, envs, rows, bsz);
        }
        for (size_t i = 0; i < rows; i++) {
            envelope_release(&envs[i]);
            envelope_release(&copy[i]);
        }
        ratio[r] = rc[r] / rw[r];
        printf("round %d: raw COPY %.0f rows/s, pg_writer %.0f rows/s, ratio %.2f\n", r,
               (double)rows / rc[r], (double)rows / rw[r], ratio[r]);
        fflush(stdout);
    }
    qsort(rc, (size_t)rounds, sizeof(double), cmp_d);
    qsort(rw, (size_t)rounds, sizeof(double), cmp_d);
    qsort(ratio, (size_t)rounds, sizeof(double), cmp_d);
    printf("rows=%zu batch=%zu rounds=%d (medians)\n", rows, bsz, rounds);
    printf("raw COPY   : %.0f rows/s\n", (double)rows / rc[rounds / 2]);
    printf("pg_writer  : %.0f rows/s\n", (double)rows / rw[rounds / 2]);
    printf("ratio writer/copy = %.2f (median of rounds; budget >= 0.80)\n", ratio[rounds / 2]);

    pg_writer_free(w);
    PQfinish(cc);
    free(envs);
    free(copy);
    exec_or_die(admin, "DROP DATABASE IF EXISTS bench_aggr_writer WITH (FORCE)");
    exec_or_die(admin, "DROP DATABASE IF EXISTS bench_aggr_copy WITH (FORCE)");
    PQfinish(admin);
    free(wci);
    free(cci);
    return 0;
}
