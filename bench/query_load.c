/* bench/query's helper: `gen N DAYS FROM_DAY` writes N events as COPY text
 * rows spread over DAYS days (the load), and `measure` times the one-day
 * one-actor query through the API against the same SQL through libpq on
 * the replica, the cached answers, and a Zipf workload's hit ratio.
 * Prints figures and ratios; not a test. */
#include <curl/curl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/pg_pool.h"
#include "aggregator/query_sql.h"
#include "common/buf.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define ACTORS 1000
#define DAY_US INT64_C(86400000000)

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int gen(long n, int days, int64_t t0)
{
    static const char *const actions[] = {"read", "update", "create", "delete", "search"};
    for (long i = 0; i < n; i++) {
        int64_t t = t0 + (int64_t)(next_rand() % (uint64_t)(days * DAY_US));
        char ts[TIME_RFC3339_LEN];
        time_format_us(t, ts);
        unsigned actor = (unsigned)(next_rand() % ACTORS), tenant = actor % 10;
        const char *action = actions[next_rand() % 5];
        unsigned res = (unsigned)(next_rand() % 100000);
        char raw[200];
        int rl = snprintf(raw, sizeof(raw),
                          "{\"ts\":\"%s\",\"tenant\":\"t%u\",\"user\":\"user%u\",\"action\":\"%s\","
                          "\"resource\":\"Patient/%u\",\"outcome\":\"success\"}",
                          ts, tenant, actor, action, res);
        /* COPY text: event_time id stream_id seq file_offset hash prev_hash
         * read_time time_source tenant actor action resource outcome format
         * source raw (bytea hex) */
        printf("%s\t%08lx-0000-4000-8000-%012lx\t%032lx\t%ld\t%ld\t\\\\x%064lx\t\\\\x%064lx\t%s\t"
               "payload\tt%u\tuser%u\t%s\tPatient/%u\tsuccess\tjson\t{\"name\": \"bench/app\"}\t"
               "\\\\x",
               ts, (unsigned long)(i >> 20), (unsigned long)i, (unsigned long)(i % 64), i, i * 200,
               (unsigned long)i, (unsigned long)(i ? i - 1 : 0), ts, tenant, actor, action, res);
        for (int k = 0; k < rl; k++)
            printf("%02x", (unsigned char)raw[k]);
        putchar('\n');
    }
    return 0;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    buf_add(ud, p, s * n);
    return s * n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t i = (size_t)ceil(p * (double)n) - 1;
    return (double)v[i < n ? i : n - 1] / 1000.0; /* ms */
}

struct api {
    CURL *c;
    struct curl_slist *hl;
    struct buf body;
    const char *base;
};

/* GET the query; 1 when answered 200, the cache header in *hit. */
static int api_get(struct api *a, const char *query, bool *hit)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/events?%s", a->base, query);
    buf_reset(&a->body);
    curl_easy_setopt(a->c, CURLOPT_URL, url);
    if (curl_easy_perform(a->c) != CURLE_OK)
        return 0;
    long st = 0;
    curl_easy_getinfo(a->c, CURLINFO_RESPONSE_CODE, &st);
    struct curl_header *h = NULL;
    *hit = curl_easy_header(a->c, "X-Auditrail-Cache", 0, CURLH_HEADER, -1, &h) == CURLHE_OK &&
           !strcmp(h->value, "hit");
    return st == 200;
}

static void day_query(int day, unsigned actor, int64_t t0, char *q, size_t len, char from[40],
                      char to[40])
{
    time_format_us(t0 + day * DAY_US, from);
    time_format_us(t0 + (day + 1) * DAY_US, to);
    snprintf(q, len, "from=%s&to=%s&actor=user%u&limit=100", from, to, actor);
}

static int measure(const char *replica, const char *base, const char *token, int days, int64_t t0,
                   int samples, int zipf_requests)
{
    /* libpq directly: the same prepared statement, same session settings */
    static const struct pg_stmt stmts[] = {{STMT_Q_EVENTS, SQL_Q_EVENTS}};
    struct pg_pool_conf pc = {.conninfo = replica,
                              .application_name = "bench-query",
                              .size = 1,
                              .statement_timeout_ms = 60000,
                              .stmts = stmts,
                              .nstmts = 1};
    struct pg_pool *pool = pg_pool_new(&pc);
    struct pg_connection *conn = pg_pool_acquire(pool, 0);
    char err[512];
    if (pg_conn_open(conn, NULL, err, sizeof(err)) != PG_OK) {
        fprintf(stderr, "bench-query: %s\n", err);
        return 1;
    }
    struct api a = {.c = curl_easy_init(), .base = base};
    char *auth = xasprintf("Authorization: Bearer %s", token);
    a.hl = curl_slist_append(NULL, auth);
    curl_easy_setopt(a.c, CURLOPT_HTTPHEADER, a.hl);
    curl_easy_setopt(a.c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(a.c, CURLOPT_WRITEDATA, &a.body);
    curl_easy_setopt(a.c, CURLOPT_TCP_NODELAY, 1L);
    uint64_t *lat_pq = xcalloc((size_t)samples, sizeof(uint64_t));
    uint64_t *lat_api = xcalloc((size_t)samples, sizeof(uint64_t));
    uint64_t *lat_hit = xcalloc((size_t)samples, sizeof(uint64_t));
    int errors = 0;
    for (int i = 0; i < samples; i++) {
        int day = i % days;
        unsigned actor = (unsigned)((i * 7919) % ACTORS);
        char q[256], from[40], to[40], lim[] = "101";
        day_query(day, actor, t0, q, sizeof(q), from, to);
        char actor_s[32];
        snprintf(actor_s, sizeof(actor_s), "user%u", actor);
        const char *params[12] = {from, to,   NULL, actor_s, NULL, NULL,
                                  NULL, NULL, NULL, NULL,    NULL, lim};
        bool hit;
        /* alternate which goes first: neither always finds warmer pages */
        for (int k = 0; k < 2; k++) {
            if ((k == 0) == (i % 2 == 0)) {
                uint64_t t = time_mono_us();
                PGresult *res = NULL;
                if (pg_conn_exec_prepared(conn, STMT_Q_EVENTS, 12, params, &res, err,
                                          sizeof(err)) != PG_OK)
                    errors++;
                /* the client reads every value, as the API renders them */
                for (int r = 0; res && r < PQntuples(res); r++)
                    for (int c = 0; c < PQnfields(res); c++)
                        (void)PQgetvalue(res, r, c);
                PQclear(res);
                lat_pq[i] = time_mono_us() - t;
            } else {
                uint64_t t = time_mono_us();
                if (!api_get(&a, q, &hit) || hit)
                    errors++;
                lat_api[i] = time_mono_us() - t;
            }
        }
        uint64_t t = time_mono_us();
        if (!api_get(&a, q, &hit) || !hit)
            errors++;
        lat_hit[i] = time_mono_us() - t;
    }
    double pq50 = pct(lat_pq, (size_t)samples, 0.5), pq99 = pct(lat_pq, (size_t)samples, 0.99);
    double api50 = pct(lat_api, (size_t)samples, 0.5), api99 = pct(lat_api, (size_t)samples, 0.99);
    double hit50 = pct(lat_hit, (size_t)samples, 0.5), hit99 = pct(lat_hit, (size_t)samples, 0.99);
    printf("one-day one-actor query, %d samples (limit 100)\n", samples);
    printf("  libpq direct on the replica  p50 %.3f ms  p99 %.3f ms\n", pq50, pq99);
    printf("  API (cache miss)             p50 %.3f ms  p99 %.3f ms\n", api50, api99);
    printf("  API overhead ratio           p50 %.2fx  p99 %.2fx  (budget p99 <= 1.3x)\n",
           api50 / pq50, api99 / pq99);
    printf("  API (cache hit)              p50 %.3f ms  p99 %.3f ms  (budget p99 <= 1 ms)\n", hit50,
           hit99);
    /* Zipf over 1000 distinct questions (s = 1.1): the cache's hit ratio */
    int distinct = 1000;
    double *cdf = xcalloc((size_t)distinct, sizeof(double)), sum = 0;
    for (int k = 0; k < distinct; k++)
        cdf[k] = (sum += 1.0 / pow(k + 1, 1.1));
    int hits = 0;
    for (int r = 0; r < zipf_requests; r++) {
        double u = (double)(next_rand() % 1000000000) / 1e9 * sum;
        int k = 0;
        while (k < distinct - 1 && cdf[k] < u)
            k++;
        char q[256], from[40], to[40];
        day_query(k % days, (unsigned)(k * 31 + 500) % ACTORS, t0, q, sizeof(q), from, to);
        bool hit;
        if (!api_get(&a, q, &hit))
            errors++;
        hits += hit;
    }
    printf("Zipf workload (s=1.1, %d distinct, %d requests): hit ratio %.1f%%  (budget >= 90%%)\n",
           distinct, zipf_requests, 100.0 * hits / zipf_requests);
    printf("errors: %d\n", errors);
    free(cdf);
    free(lat_pq);
    free(lat_api);
    free(lat_hit);
    curl_slist_free_all(a.hl);
    curl_easy_cleanup(a.c);
    buf_release(&a.body);
    free(auth);
    pg_pool_release(pool, conn, false);
    pg_pool_free(pool);
    return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "gen"))
        return gen(atol(argv[2]), atoi(argv[3]), strtoll(argv[4], NULL, 10));
    if (argc == 9 && !strcmp(argv[1], "measure")) {
        curl_global_init(CURL_GLOBAL_ALL);
        return measure(argv[2], argv[3], argv[4], atoi(argv[5]), strtoll(argv[6], NULL, 10),
                       atoi(argv[7]), atoi(argv[8]));
    }
    fprintf(stderr, "usage: bench-query gen N DAYS T0_US | measure REPLICA_CONNINFO BASE_URL "
                    "TOKEN DAYS T0_US SAMPLES ZIPF_REQUESTS\n");
    return 2;
}
