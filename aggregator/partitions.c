/* Daily partitions of auditrail.events: routing cache, grouping, on-demand
 * creation, premake and retention (aggregator/partitions.h).
 *
 * Retention uses plain DETACH PARTITION inside a transaction, not DETACH …
 * CONCURRENTLY: CONCURRENTLY cannot run in a transaction block, and the
 * fencing check of maintenance must be in the same transaction as the DDL so
 * that a stale lease holder cannot act. The price is a short ACCESS
 * EXCLUSIVE lock on auditrail.events (metadata only); lock_timeout bounds how
 * long writers can queue behind it, and a timed-out run is retried later. */
#include "aggregator/partitions.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/pg_sql.h"
#include "common/buf.h"
#include "common/htab.h"
#include "common/log.h"
#include "common/xmalloc.h"

int64_t part_day_floor(int64_t us)
{
    int64_t q = us / PART_DAY_US;
    if (us % PART_DAY_US < 0)
        q--;
    return q * PART_DAY_US;
}

static void day_tm(int64_t day_us, struct tm *tm)
{
    time_t s = (time_t)(part_day_floor(day_us) / 1000000);
    gmtime_r(&s, tm);
}

/* The name's date part: YYYYMMDD for years 0000-9999 (DESIGN.md §5), more
 * year digits after 9999, and an 'm' (minus) before the digits of a
 * negative year: always a plain identifier ([a-z0-9_]), whatever the date
 * (a '-' in "events_p-0011231" was a syntax error, 42601). The acceptance
 * window keeps such days out of the table; the names stay safe anyway. */
void part_day_name(int64_t day_us, char out[PART_NAME_LEN])
{
    struct tm tm;
    day_tm(day_us, &tm);
    long long year = (long long)tm.tm_year + 1900;
    snprintf(out, PART_NAME_LEN, "events_p%s%04lld%02d%02d", year < 0 ? "m" : "",
             year < 0 ? -year : year, tm.tm_mon + 1, tm.tm_mday);
}

int part_name_day(const char *name, int64_t *day_us)
{
    if (strncmp(name, "events_p", 8) != 0)
        return -1;
    const char *p = name + 8;
    bool neg = *p == 'm';
    p += neg;
    size_t nd = strlen(p);
    if (nd < 8 || nd > 12 || strspn(p, "0123456789") != nd)
        return -1;
    long long year = 0;
    for (size_t i = 0; i < nd - 4; i++)
        year = year * 10 + (p[i] - '0');
    struct tm tm = {0};
    tm.tm_year = (int)((neg ? -year : year) - 1900);
    tm.tm_mon = (p[nd - 4] - '0') * 10 + (p[nd - 3] - '0') - 1;
    tm.tm_mday = (p[nd - 2] - '0') * 10 + (p[nd - 1] - '0');
    int mon = tm.tm_mon, mday = tm.tm_mday;
    time_t t = timegm(&tm);
    /* timegm normalizes 20260230 to March 2nd: reject what it changed. */
    if (tm.tm_mon != mon || tm.tm_mday != mday)
        return -1;
    /* One spelling per day: "events_p020261126" or "events_pm0000…" are not
     * names part_day_name makes. */
    char back[PART_NAME_LEN];
    part_day_name((int64_t)t * 1000000, back);
    if (strcmp(back, name) != 0)
        return -1;
    *day_us = (int64_t)t * 1000000;
    return 0;
}

void part_cache_init(struct part_cache *c)
{
    memset(c, 0, sizeof(*c));
    c->stale = true;
}

void part_cache_release(struct part_cache *c)
{
    if (!c)
        return;
    free(c->b);
    memset(c, 0, sizeof(*c));
}

/* First index whose lo > us (upper bound). */
static size_t upper(const struct part_cache *c, int64_t us)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->b[mid].lo <= us)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

ssize_t part_cache_find(const struct part_cache *c, int64_t us)
{
    size_t i = upper(c, us);
    if (i == 0)
        return -1;
    const struct part_bound *b = &c->b[i - 1];
    return us < b->hi ? (ssize_t)(i - 1) : -1;
}

void part_cache_add(struct part_cache *c, int64_t lo, int64_t hi)
{
    size_t i = upper(c, lo);
    if (i > 0 && c->b[i - 1].lo == lo)
        return;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->b = xrealloc(c->b, c->cap * sizeof(*c->b));
    }
    memmove(&c->b[i + 1], &c->b[i], (c->n - i) * sizeof(*c->b));
    c->b[i] = (struct part_bound){lo, hi};
    c->n++;
}

static int cmp_bound(const void *a, const void *b)
{
    const struct part_bound *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* part_cache_refresh, classified. */
static enum pg_status part_cache_load(struct part_cache *c, struct pg_connection *conn, char *err,
                                      size_t errlen)
{
    PGresult *res;
    enum pg_status s = pg_conn_exec(conn, SQL_PART_LIST, 0, NULL, &res, err, errlen);
    if (s != PG_OK)
        return s;
    c->n = 0;
    int nt = PQntuples(res);
    for (int i = 0; i < nt; i++) {
        if (PQgetisnull(res, i, 1) || PQgetisnull(res, i, 2))
            continue;
        int64_t lo = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        int64_t hi = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 64;
            c->b = xrealloc(c->b, c->cap * sizeof(*c->b));
        }
        c->b[c->n++] = (struct part_bound){lo, hi};
    }
    PQclear(res);
    if (c->n > 1)
        qsort(c->b, c->n, sizeof(*c->b), cmp_bound);
    c->stale = false;
    return PG_OK;
}

int part_cache_refresh(struct part_cache *c, struct pg_connection *conn, char *err, size_t errlen)
{
    return part_cache_load(c, conn, err, errlen) == PG_OK ? 0 : -1;
}

void part_groups_init(struct part_groups *g, const int64_t *times_us, size_t n)
{
    memset(g, 0, sizeof(*g));
    struct htab day_group; /* day start -> group index */
    htab_init(&day_group, sizeof(int64_t), n);
    size_t *grp = xmalloc((n ? n : 1) * sizeof(*grp));
    size_t *count = xmalloc((n ? n : 1) * sizeof(*count));
    g->days = xmalloc((n ? n : 1) * sizeof(*g->days));
    for (size_t i = 0; i < n; i++) {
        int64_t d = part_day_floor(times_us[i]);
        bool added;
        size_t *k = htab_put(&day_group, &d, &added);
        if (added) {
            *k = g->m;
            g->days[g->m] = d;
            count[g->m++] = 0;
        }
        grp[i] = *k;
        count[grp[i]]++;
    }
    g->start = xmalloc((g->m + 1) * sizeof(*g->start));
    g->start[0] = 0;
    for (size_t k = 0; k < g->m; k++)
        g->start[k + 1] = g->start[k] + count[k];
    /* Reuse count as the fill cursor of each group. */
    for (size_t k = 0; k < g->m; k++)
        count[k] = g->start[k];
    g->idx = xmalloc((n ? n : 1) * sizeof(*g->idx));
    for (size_t i = 0; i < n; i++)
        g->idx[count[grp[i]]++] = i;
    htab_release(&day_group);
    free(grp);
    free(count);
}

void part_groups_release(struct part_groups *g)
{
    if (!g)
        return;
    free(g->days);
    free(g->start);
    free(g->idx);
    memset(g, 0, sizeof(*g));
}

/* A day's start as a timestamptz literal; years before 1 are written the
 * way PostgreSQL reads them (year 0 is 1 BC). */
static void fmt_bound(int64_t us, char *out, size_t len)
{
    struct tm tm;
    time_t s = (time_t)(part_day_floor(us) / 1000000);
    gmtime_r(&s, &tm);
    long long year = (long long)tm.tm_year + 1900;
    /* The moduli bound the text for the compiler; gmtime_r's fields and the
     * years of int64 microseconds (|year| < 300000) are within them. */
    unsigned y = (unsigned)((year > 0 ? year : 1 - year) % 1000000);
    snprintf(out, len, "%04u-%02u-%02u 00:00:00+00%s", y, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u, year > 0 ? "" : " BC");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

enum pg_status part_ensure(struct part_cache *c, struct pg_connection *conn, const int64_t *days,
                           size_t n, int *created, char *err, size_t errlen)
{
    int made = 0;
    int64_t *missing = NULL;
    size_t nm = 0;
    enum pg_status s = PG_OK;
    if (c->stale && (s = part_cache_load(c, conn, err, errlen)) != PG_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (part_cache_find(c, days[i]) >= 0)
            continue;
        if (!missing)
            missing = xmalloc(n * sizeof(*missing));
        missing[nm++] = part_day_floor(days[i]);
    }
    if (nm == 0)
        goto out;
    /* Sorted creation order: two creators never wait on each other in a
     * different order (they are serialized by the lock anyway). */
    qsort(missing, nm, sizeof(*missing), cmp_i64);
    char key[24];
    snprintf(key, sizeof(key), "%" PRId64, PART_LOCK_KEY);
    const char *kp[] = {key};
    if ((s = pg_conn_exec(conn, SQL_PART_XACT_LOCK, 1, kp, NULL, err, errlen)) != PG_OK)
        goto out;
    /* Another process may have created them while we waited. */
    if ((s = part_cache_load(c, conn, err, errlen)) != PG_OK)
        goto out;
    for (size_t i = 0; i < nm; i++) {
        if ((i > 0 && missing[i] == missing[i - 1]) || part_cache_find(c, missing[i]) >= 0)
            continue;
        char name[PART_NAME_LEN], from[40], to[40], sql[256];
        part_day_name(missing[i], name);
        fmt_bound(missing[i], from, sizeof(from));
        fmt_bound(missing[i] + PART_DAY_US, to, sizeof(to));
        snprintf(sql, sizeof(sql), SQL_PART_CREATE_FMT, name, from, to);
        if ((s = pg_conn_exec(conn, sql, 0, NULL, NULL, err, errlen)) != PG_OK)
            goto out;
        part_cache_add(c, missing[i], missing[i] + PART_DAY_US);
        log_info("partitions: created auditrail.%s", name);
        made++;
    }
out:
    if (s != PG_OK)
        c->stale = true;
    free(missing);
    if (created)
        *created = made;
    return s;
}

enum pg_status part_note_writes(struct pg_connection *conn, const int64_t *days, size_t n,
                                int64_t now_us, char *err, size_t errlen)
{
    int64_t today = part_day_floor(now_us);
    struct buf arr = BUF_INIT;
    pg_array_begin(&arr);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (part_day_floor(days[i]) >= today)
            continue; /* today's and the future's: no retention near them */
        char name[PART_NAME_LEN];
        part_day_name(days[i], name);
        pg_array_str(&arr, name);
        k++;
    }
    enum pg_status s = PG_OK;
    if (k > 0) {
        const char *p[] = {pg_array_end(&arr)};
        s = pg_conn_exec(conn, SQL_PART_NOTE_WRITES, 1, p, NULL, err, errlen);
    }
    buf_release(&arr);
    return s;
}

int part_premake(struct part_cache *c, struct pg_connection *conn, int64_t now_us, int days,
                 part_fence_fn fence, void *fence_ud, int *created, char *err, size_t errlen)
{
    int made = 0, rc = -1;
    if (days < 0)
        days = 0;
    int64_t *d = xmalloc(((size_t)days + 1) * sizeof(*d));
    int64_t today = part_day_floor(now_us);
    for (int i = 0; i <= days; i++)
        d[i] = today + (int64_t)i * PART_DAY_US;
    if (pg_conn_exec(conn, SQL_BEGIN, 0, NULL, NULL, err, errlen) != PG_OK)
        goto out;
    if ((fence && fence(conn, fence_ud, err, errlen) < 0) ||
        part_ensure(c, conn, d, (size_t)days + 1, &made, err, errlen) != PG_OK ||
        pg_conn_commit(conn, err, errlen) != PG_OK) {
        pg_conn_rollback(conn);
        c->stale = true;
        made = 0;
        goto out;
    }
    rc = 0;
out:
    free(d);
    if (created)
        *created = made;
    return rc;
}

/* Was partition `name` written within the last recent_s seconds (noted by
 * part_note_writes)? Runs after DETACH, whose lock waited for every writer
 * of the partition: their notes are committed and visible. 1 (with *ago),
 * 0, or -1 + err. */
static int written_recently(struct pg_connection *conn, const char *name, int64_t recent_s,
                            int64_t *ago, char *err, size_t errlen)
{
    char secs[24];
    snprintf(secs, sizeof(secs), "%" PRId64, recent_s);
    const char *p[] = {name, secs};
    PGresult *res = NULL;
    if (pg_conn_exec(conn, SQL_PART_RECENT_WRITE, 2, p, &res, err, errlen) != PG_OK)
        return -1;
    int found = PQntuples(res) > 0;
    if (found)
        *ago = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return found;
}

/* Detach (and drop, or keep renamed) one partition in a transaction of
 * its own, unless it was written within recent_s seconds (then rolled
 * back: 1). 0, 1, or -1 + err (rolled back). */
static int retire(struct pg_connection *conn, const char *name, bool keep_table, int64_t recent_s,
                  part_fence_fn fence, void *fence_ud, char *err, size_t errlen)
{
    char key[24], detach[256], finish[256];
    snprintf(key, sizeof(key), "%" PRId64, PART_LOCK_KEY);
    const char *kp[] = {key};
    const char *np[] = {name};
    snprintf(detach, sizeof(detach), SQL_PART_DETACH_FMT, name);
    if (keep_table)
        snprintf(finish, sizeof(finish), SQL_PART_KEEP_FMT, name, name);
    else
        snprintf(finish, sizeof(finish), SQL_PART_DROP_FMT, name);
    if (pg_conn_exec(conn, SQL_BEGIN, 0, NULL, NULL, err, errlen) != PG_OK)
        return -1;
    int64_t ago = 0;
    int recent = 0;
    if (pg_conn_exec(conn, SQL_PART_LOCK_TIMEOUT, 0, NULL, NULL, err, errlen) != PG_OK ||
        (fence && fence(conn, fence_ud, err, errlen) < 0) ||
        pg_conn_exec(conn, SQL_PART_XACT_LOCK, 1, kp, NULL, err, errlen) != PG_OK ||
        pg_conn_exec(conn, detach, 0, NULL, NULL, err, errlen) != PG_OK ||
        (recent = written_recently(conn, name, recent_s, &ago, err, errlen)) < 0)
        goto fail;
    if (recent) {
        pg_conn_rollback(conn);
        log_warn("partitions: retention keeps auditrail.%s: written %" PRId64
                 " s ago, within the last maintenance period (a writer whose acceptance window "
                 "differs from this one's: check partitions.retention_days and the clocks)",
                 name, ago);
        return 1;
    }
    if (pg_conn_exec(conn, finish, 0, NULL, NULL, err, errlen) != PG_OK ||
        pg_conn_exec(conn, SQL_PART_FORGET_WRITES, 1, np, NULL, err, errlen) != PG_OK ||
        pg_conn_commit(conn, err, errlen) != PG_OK)
        goto fail;
    log_info("partitions: retention %s auditrail.%s", keep_table ? "detached" : "dropped", name);
    return 0;
fail:
    pg_conn_rollback(conn);
    return -1;
}

int part_retention(struct part_cache *c, struct pg_connection *conn, int64_t now_us,
                   int retention_days, bool keep_table, int64_t recent_s, part_fence_fn fence,
                   void *fence_ud, int *dropped, int *kept, char *err, size_t errlen)
{
    int done = 0, spared = 0, rc = -1;
    PGresult *list = NULL;
    if (retention_days <= 0) { /* keep forever */
        rc = 0;
        goto out;
    }
    int64_t cutoff = part_day_floor(now_us) - (int64_t)retention_days * PART_DAY_US;
    if (pg_conn_exec(conn, SQL_PART_LIST, 0, NULL, &list, err, errlen) != PG_OK)
        goto out;
    for (int i = 0; i < PQntuples(list); i++) {
        if (PQgetisnull(list, i, 1) || PQgetisnull(list, i, 2))
            continue;
        int64_t hi = strtoll(PQgetvalue(list, i, 2), NULL, 10);
        if (hi > cutoff) /* never touch anything newer than the cutoff */
            continue;
        int64_t day;
        const char *rel = PQgetvalue(list, i, 0);
        if (part_name_day(rel, &day) < 0) {
            log_warn("partitions: retention skips %s (not one of ours)", rel);
            continue;
        }
        /* Rebuild the identifier from the parsed date, never from the
         * catalog string. */
        char name[PART_NAME_LEN];
        part_day_name(day, name);
        int r = retire(conn, name, keep_table, recent_s, fence, fence_ud, err, errlen);
        if (r < 0)
            goto out;
        if (r == 1)
            spared++;
        else
            done++;
    }
    rc = 0;
out:
    PQclear(list);
    c->stale = true; /* the set changed (or may have) */
    if (dropped)
        *dropped = done;
    if (kept)
        *kept = spared;
    return rc;
}
