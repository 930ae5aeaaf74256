/* Checks on what the aggregator stored in PostgreSQL. */
#include "tests/support/store.h"

#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "tests/support/kafka.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

/* Between two looks at the database: often enough, without hammering it. */
#define POLL_MS 100

static void pause_poll(void)
{
    struct timespec ts = {0, POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
}

static long long count_rows(PGconn *c)
{
    long long n = -1;
    PGresult *r = PQexec(c, "SELECT count(*) FROM auditrail.events");
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

long long store_rows(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    long long n = PQstatus(c) == CONNECTION_OK ? count_rows(c) : -1;
    PQfinish(c);
    return n;
}

/* Ask cond(c, ud) every POLL_MS until it is true or timeout_ms passed,
 * connecting again whenever the database went away (fault tests). */
static bool poll_db(const char *conninfo, unsigned timeout_ms, bool (*cond)(PGconn *, void *),
                    void *ud)
{
    uint64_t deadline = test_now_ms() + timeout_ms;
    PGconn *c = NULL;
    bool ok = false;
    for (;;) {
        if (!c || PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = PQconnectdb(conninfo);
        }
        ok = PQstatus(c) == CONNECTION_OK && cond(c, ud);
        if (ok || test_now_ms() >= deadline)
            break;
        pause_poll();
    }
    PQfinish(c);
    return ok;
}

static bool rows_reach(PGconn *c, void *ud)
{
    return count_rows(c) >= *(long long *)ud;
}

bool store_wait_rows(const char *conninfo, long long n, unsigned timeout_ms)
{
    return poll_db(conninfo, timeout_ms, rows_reach, &n);
}

static const char STORED_OFFSETS_SQL[] = "SELECT partition, max(next_offset)"
                                         "  FROM auditrail.kafka_offsets WHERE topic = $1"
                                         " GROUP BY partition";

struct drain {
    const char *brokers, *topic;
    int64_t *hw; /* per partition */
    int n;
};

/* Every partition's stored offset reaches its watermark (partitions never
 * written have a watermark of 0 and may have no row). */
static bool offsets_reach(PGconn *c, const struct drain *d)
{
    const char *params[] = {d->topic};
    PGresult *r = PQexecParams(c, STORED_OFFSETS_SQL, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return false;
    }
    int64_t *stored = xcalloc((size_t)d->n, sizeof(*stored));
    for (int i = 0; i < PQntuples(r); i++) {
        int p = atoi(PQgetvalue(r, i, 0));
        if (p >= 0 && p < d->n)
            stored[p] = atoll(PQgetvalue(r, i, 1));
    }
    PQclear(r);
    bool ok = true;
    for (int p = 0; p < d->n; p++)
        ok = ok && stored[p] >= d->hw[p];
    free(stored);
    return ok;
}

/* Reached, and the topic did not grow meanwhile. */
static bool drained(PGconn *c, void *ud)
{
    struct drain *d = ud;
    if (!offsets_reach(c, d))
        return false;
    int n = 0;
    int64_t *now = tk_watermarks(d->brokers, d->topic, &n);
    bool same = n == d->n && memcmp(now, d->hw, (size_t)n * sizeof(*now)) == 0;
    free(d->hw);
    d->hw = now;
    d->n = n;
    return same;
}

bool store_wait_drained(const char *conninfo, const char *brokers, const char *topic,
                        unsigned timeout_ms)
{
    struct drain d = {brokers, topic, NULL, 0};
    d.hw = tk_watermarks(brokers, topic, &d.n);
    bool ok = poll_db(conninfo, timeout_ms, drained, &d);
    free(d.hw);
    return ok;
}

static int cmp_trec(const void *a, const void *b)
{
    const struct trec *x = *(const struct trec *const *)a, *y = *(const struct trec *const *)b;
    int c = strcmp(x->stream, y->stream);
    if (c)
        return c;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return memcmp(x->hash, y->hash, TCHAIN_HASH_LEN);
}

/* The same order as cmp_trec: byte order of the hex stream id. */
static const char STORED_RECORDS_SQL[] =
    "SELECT stream_id, seq, id::text, encode(hash, 'hex'), encode(prev_hash, 'hex'),"
    "       encode(raw, 'hex'), (extract(epoch FROM event_time) * 1000000)::bigint"
    "  FROM auditrail.events ORDER BY stream_id COLLATE \"C\", seq, hash";

/* Compare one stored row with one expected record; false with why. */
static bool row_matches(PGresult *res, int i, const struct trec *w, char *why, size_t len)
{
    char hash[65], prev[65];
    tchain_hex(w->hash, TCHAIN_HASH_LEN, hash);
    tchain_hex(w->prev, TCHAIN_HASH_LEN, prev);
    char *raw = xmalloc(2 * w->len + 1);
    tchain_hex(w->line, w->len, raw);
    const char *what = NULL;
    if (strcmp(PQgetvalue(res, i, 0), w->stream) != 0 ||
        strtoull(PQgetvalue(res, i, 1), NULL, 10) != w->seq)
        what = "(stream, seq)";
    else if (strcmp(PQgetvalue(res, i, 3), hash) != 0)
        what = "hash";
    else if (strcmp(PQgetvalue(res, i, 2), w->id) != 0)
        what = "id";
    else if (strcmp(PQgetvalue(res, i, 4), prev) != 0)
        what = "prev_hash";
    else if (strcmp(PQgetvalue(res, i, 5), raw) != 0)
        what = "raw";
    else if (strtoll(PQgetvalue(res, i, 6), NULL, 10) != w->time_us)
        what = "event_time";
    free(raw);
    if (what)
        snprintf(why, len, "row %d (stream %s seq %s) differs in %s from record seq %llu of %s", i,
                 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), what, (unsigned long long)w->seq,
                 w->stream);
    return what == NULL;
}

void store_assert_records(const char *conninfo, const struct trecs *want)
{
    const struct trec **w = xcalloc(want->n + 1, sizeof(*w));
    for (size_t i = 0; i < want->n; i++)
        w[i] = &want->v[i];
    qsort(w, want->n, sizeof(*w), cmp_trec);
    PGconn *c = test_pg_connect(conninfo);
    PGresult *res = PQexec(c, STORED_RECORDS_SQL);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    size_t rows = (size_t)PQntuples(res);
    char why[512] = "";
    bool ok = true;
    for (size_t i = 0; i < rows && i < want->n && ok; i++)
        ok = row_matches(res, (int)i, w[i], why, sizeof(why));
    PQclear(res);
    PQfinish(c);
    free(w);
    ck_assert_msg(ok, "%s (%zu rows stored, %zu records expected)", why, rows, want->n);
    ck_assert_msg(rows == want->n, "%zu rows stored, %zu records expected", rows, want->n);
}
