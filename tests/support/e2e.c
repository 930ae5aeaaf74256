/* End-to-end checker: files against auditrail.events, with SQL doing the
 * hashing and the parsing. */
#include "tests/support/e2e.h"

#include <check.h>
#include <libpq-fe.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

struct blob {
    const uint8_t *p;
    size_t len;
};

static int blob_cmp(const void *a, const void *b)
{
    const struct blob *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static void problem(struct e2e_report *r, const char *fmt, ...)
{
    size_t used = strlen(r->problem);
    if (used > sizeof(r->problem) - 64)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problem + used, sizeof(r->problem) - used, fmt, ap);
    va_end(ap);
    used = strlen(r->problem);
    if (used < sizeof(r->problem) - 2)
        strcat(r->problem, "; ");
}

/* Column col of the first row as a count. */
static size_t cell(PGresult *res, int col)
{
    return (size_t)atoll(PQgetvalue(res, 0, col));
}

static PGresult *must_query(PGconn *c, const char *sql, int nparams, const char *const *params,
                            int binary)
{
    PGresult *res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, binary);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    return res;
}

/* 1. Every record exactly once, byte-identical, as multisets: sort, walk. */
static void compare_multisets(const struct expect *exp, struct blob *got, size_t nrows,
                              struct e2e_report *r)
{
    struct blob *want = xcalloc(exp->n + 1, sizeof(*want));
    for (size_t i = 0; i < exp->n; i++)
        want[i] = (struct blob){exp->rec[i], exp->len[i]};
    qsort(got, nrows, sizeof(*got), blob_cmp);
    qsort(want, exp->n, sizeof(*want), blob_cmp);
    size_t i = 0, j = 0;
    char pv[64];
    while (i < exp->n || j < nrows) {
        int cmp = i >= exp->n ? 1 : j >= nrows ? -1 : blob_cmp(&want[i], &got[j]);
        if (cmp == 0) {
            /* Count the copies of the same bytes on both sides. */
            size_t k = j + 1, w = i + 1;
            while (k < nrows && blob_cmp(&got[k], &got[j]) == 0)
                k++;
            while (w < exp->n && blob_cmp(&want[w], &want[i]) == 0)
                w++;
            if (k - j > w - i) {
                r->duplicate_rows += (k - j) - (w - i);
                problem(r, "stored %zu times: \"%s\"", k - j,
                        expect_preview(got[j].p, got[j].len, pv));
            } else if (k - j < w - i) {
                r->missing += (w - i) - (k - j);
            }
            i = w;
            j = k;
        } else if (cmp < 0) {
            r->missing++;
            problem(r, "missing: \"%s\" (%zu bytes)", expect_preview(want[i].p, want[i].len, pv),
                    want[i].len);
            i++;
        } else {
            r->unexpected++;
            problem(r, "not written by the writer: \"%s\" (%zu bytes)",
                    expect_preview(got[j].p, got[j].len, pv), got[j].len);
            j++;
        }
    }
    free(want);
}

/* A file's name without its directory and rotation suffix (x.log.3,
 * x.log-000003.old): the file a source path and a file on disk share. */
static char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *b = xstrdup(slash ? slash + 1 : path);
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "(\\.[0-9]+|-[0-9]{6}\\.old)$", REG_EXTENDED), 0);
    regmatch_t m;
    if (regexec(&re, b, 1, &m, 0) == 0)
        b[m.rm_so] = '\0';
    regfree(&re);
    return b;
}

/* The rows in stream, seq order (binary: raw as bytes). */
static const char ROWS_SQL[] = "SELECT stream_id, raw, coalesce(source->>'path', ''),"
                               "       coalesce(source->>'name', '')"
                               "  FROM auditrail.events ORDER BY stream_id COLLATE \"C\", seq";

/* 2. Streams are files: same records in the same order, source naming it. */
static void compare_streams(const struct expect *exp, PGresult *res, const struct e2e_check_opts *o,
                            struct e2e_report *r)
{
    size_t n = (size_t)PQntuples(res);
    struct expect_got *got = xcalloc(n + 1, sizeof(*got));
    for (size_t i = 0; i < n; i++)
        got[i] = (struct expect_got){PQgetvalue(res, (int)i, 0),
                                     (const uint8_t *)PQgetvalue(res, (int)i, 1),
                                     (size_t)PQgetlength(res, (int)i, 1)};
    int *match = xcalloc(n + 1, sizeof(*match));
    char why[1024];
    r->streams_not_files = expect_match(exp, got, n, match, why, sizeof(why));
    if (r->streams_not_files)
        problem(r, "streams are not files: %s", why);
    for (size_t i = 0; i < n; i++) {
        const char *path = PQgetvalue(res, (int)i, 2), *name = PQgetvalue(res, (int)i, 3);
        bool bad = o && o->source_name && strcmp(name, o->source_name) != 0;
        if (match[i] >= 0 && !bad) {
            char *a = base_name(path), *b = base_name(exp->file[match[i]].name);
            bad = strcmp(a, b) != 0;
            free(a);
            free(b);
        }
        if (bad && r->bad_source++ == 0)
            problem(r, "stream %s: source %s %s, records of %s", got[i].stream, name, path,
                    match[i] >= 0 ? exp->file[match[i]].name : "no file");
    }
    free(match);
    free(got);
}

static const char SEQ_SQL[] = "SELECT stream_id, count(*), count(DISTINCT seq), min(seq), max(seq)"
                              "  FROM auditrail.events GROUP BY stream_id";

/* 3. Per stream: seq 0..n-1, each once. */
static void check_seq(PGconn *c, struct e2e_report *r)
{
    PGresult *res = must_query(c, SEQ_SQL, 0, NULL, 0);
    r->streams = (size_t)PQntuples(res);
    for (int k = 0; k < PQntuples(res); k++) {
        long long cnt = atoll(PQgetvalue(res, k, 1)), distinct = atoll(PQgetvalue(res, k, 2));
        long long mn = atoll(PQgetvalue(res, k, 3)), mx = atoll(PQgetvalue(res, k, 4));
        if (cnt != distinct || mn != 0 || mx != cnt - 1) {
            r->streams_bad_seq++;
            problem(r, "stream %s: %lld rows, %lld distinct seq, min %lld, max %lld",
                    PQgetvalue(res, k, 0), cnt, distinct, mn, mx);
        }
    }
    PQclear(res);
}

static const char CHAIN_SQL[] =
    "WITH e AS (SELECT stream_id, seq, id, hash, prev_hash, raw,"
    "                  lag(hash) OVER w AS prior_hash, lag(seq) OVER w AS prior_seq"
    "             FROM auditrail.events WINDOW w AS (PARTITION BY stream_id ORDER BY seq))"
    " SELECT count(*) FILTER (WHERE hash IS DISTINCT FROM sha256(prev_hash || int8send(seq) || "
    "raw)),"
    "        count(*) FILTER (WHERE prior_hash IS NOT NULL AND prior_seq = seq - 1"
    "                           AND prev_hash IS DISTINCT FROM prior_hash),"
    "        count(*) FILTER (WHERE replace(id::text, '-', '')"
    "                           IS DISTINCT FROM encode(substring(hash from 1 for 16), 'hex')),"
    "        count(*) FILTER (WHERE seq = 0 AND prev_hash IS DISTINCT FROM"
    "                           sha256(convert_to('auditrail:v1:' || stream_id, 'UTF8')))"
    "   FROM e";

/* 4. Hashes, links, ids and genesis, computed by PostgreSQL. */
static void check_chains(PGconn *c, struct e2e_report *r)
{
    PGresult *res = must_query(c, CHAIN_SQL, 0, NULL, 0);
    r->bad_hash = cell(res, 0);
    r->bad_link = cell(res, 1);
    r->bad_id = cell(res, 2);
    r->bad_genesis = cell(res, 3);
    PQclear(res);
    if (r->bad_hash || r->bad_link || r->bad_id || r->bad_genesis)
        problem(r, "chain: %zu bad hashes, %zu bad links, %zu bad ids, %zu bad genesis",
                r->bad_hash, r->bad_link, r->bad_id, r->bad_genesis);
}

/* The audit-writer's json records, parsed by PostgreSQL. */
static const char JSON_COLUMNS_SQL[] =
    "WITH j AS (SELECT e.*, convert_from(raw, 'UTF8')::jsonb AS doc FROM auditrail.events e"
    "            WHERE source->>'path' ~ '/json-[0-9]+\\.log(\\.[0-9]+)?$'),"
    "     b AS (SELECT j.*, (format IS DISTINCT FROM 'json'"
    "           OR tenant IS DISTINCT FROM doc->>'tenant' OR actor IS DISTINCT FROM doc->>'actor'"
    "           OR action IS DISTINCT FROM doc->>'action'"
    "           OR resource IS DISTINCT FROM doc->>'resource'"
    "           OR outcome IS DISTINCT FROM doc->>'outcome'"
    "           OR CASE WHEN doc ? 'ts'"
    "                   THEN event_time IS DISTINCT FROM (doc->>'ts')::timestamptz"
    "                        OR time_source IS DISTINCT FROM 'payload'"
    "                   ELSE event_time IS DISTINCT FROM read_time"
    "                        OR time_source IS DISTINCT FROM 'read' END) AS bad FROM j)"
    " SELECT count(*), count(*) FILTER (WHERE bad),"
    "        min(format('%s: format %s, actor %s, event_time %s (%s)', convert_from(raw, 'UTF8'),"
    "                   format, actor, event_time, time_source)) FILTER (WHERE bad)"
    "   FROM b";

/* 5. Parsed columns of the json records. */
static void check_json_columns(PGconn *c, struct e2e_report *r)
{
    PGresult *res = must_query(c, JSON_COLUMNS_SQL, 0, NULL, 0);
    r->json_rows = cell(res, 0);
    r->bad_columns = cell(res, 1);
    if (r->json_rows == 0)
        problem(r, "no rows of json-N.log files to check the columns of");
    if (r->bad_columns)
        problem(r, "%zu of %zu json rows with wrong columns, e.g. %.200s", r->bad_columns,
                r->json_rows, PQgetvalue(res, 0, 2));
    PQclear(res);
}

bool e2e_check(const char *conninfo, const struct expect *exp, const struct e2e_check_opts *o,
               struct e2e_report *r)
{
    memset(r, 0, sizeof(*r));
    r->expected = exp->n;
    PGconn *c = PQconnectdb(conninfo);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));

    PGresult *res = must_query(c, ROWS_SQL, 0, NULL, 1);
    r->rows = (size_t)PQntuples(res);
    compare_streams(exp, res, o, r);
    struct blob *got = xcalloc(r->rows + 1, sizeof(*got));
    for (size_t i = 0; i < r->rows; i++)
        got[i] = (struct blob){(const uint8_t *)PQgetvalue(res, (int)i, 1),
                               (size_t)PQgetlength(res, (int)i, 1)};
    compare_multisets(exp, got, r->rows, r);
    free(got);
    PQclear(res);
    check_seq(c, r);
    check_chains(c, r);
    if (o && o->json_columns)
        check_json_columns(c, r);
    PQfinish(c);
    return r->missing == 0 && r->unexpected == 0 && r->duplicate_rows == 0 &&
           r->streams_bad_seq == 0 && r->bad_hash == 0 && r->bad_link == 0 && r->bad_id == 0 &&
           r->bad_genesis == 0 && r->rows == r->expected && r->streams_not_files == 0 &&
           r->bad_source == 0 && r->bad_columns == 0 && (!o || !o->json_columns || r->json_rows);
}
