/* The replica router (aggregator/router.h): per host a pool, a breaker
 * under a mutex, atomics the health thread publishes, and a ring of the
 * primary's recent positions that turns a replica's replay LSN into an
 * age. Threads: one health thread per host; router_acquire/release run on
 * the API's workers. */
#include "aggregator/router.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/pg_pool.h"
#include "aggregator/query_sql.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define SAMPLES         32 /* primary positions kept: ~32-64 health intervals */
#define LAG_UNKNOWN     INT64_MAX
#define LSN_POLL_MS     5
#define RETRY_AFTER_MIN 1
#define HEALTH_FAILURES 2 /* failed checks in a row that take a host out */

struct router_host {
    struct router *r;
    size_t index;
    bool primary;
    char *conninfo;
    char served_by[96], label[80];
    struct pg_pool *pool;
    pthread_mutex_t mu; /* the breaker */
    struct breaker breaker;
    struct pg_connection *health;
    pthread_t thread;
    bool started;
    /* Published by the health thread. */
    atomic_bool up, eligible, paused, receiver_up, checked;
    atomic_int_fast64_t lag_ms, horizon_us;
    atomic_uint_fast64_t lsn; /* replay (standby) or current (primary) position */
    atomic_uint inflight;
    unsigned failed_checks; /* in a row (health thread) */
    struct metric *m_eligible, *m_lag, *m_breaker, *m_inflight;
    struct metric *m_queries[PG_STATUS_COUNT];
};

struct sample {
    uint64_t lsn, mono_ms;
};

struct router {
    struct router_conf conf;
    struct breaker_conf bconf;
    struct router_host **hosts; /* [0] = primary */
    size_t nhosts;
    pthread_mutex_t mu; /* samples, stop */
    pthread_cond_t wake;
    bool stop;
    struct sample samples[SAMPLES];
    size_t nsamples, next_sample;
    atomic_bool primary_up;
    atomic_uint_fast64_t primary_lsn;
    struct metrics *own_metrics; /* when the caller gave none */
};

static const char *const health_session[] = {SQL_R_HEALTH_TIMEOUT, NULL};
static const struct pg_conn_opts health_opts = {
    .application_name = "auditrail-router-health",
    .session = health_session,
};

/* ---- host identity */
/* "host:port" of a conninfo without connecting (libpq's defaults when it
 * names none). */
static void conninfo_label(const char *conninfo, char *out, size_t len)
{
    const char *host = NULL, *hostaddr = NULL, *port = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (!strcmp(o->keyword, "host"))
            host = o->val;
        else if (!strcmp(o->keyword, "hostaddr"))
            hostaddr = o->val;
        else if (!strcmp(o->keyword, "port"))
            port = o->val;
    }
    snprintf(out, len, "%s:%s",
             host       ? host
             : hostaddr ? hostaddr
                        : "localhost",
             port ? port : "5432");
    PQconninfoFree(opts);
}

/* ---- breaker (under the host's mutex) */
static void on_breaker_change(void *ud, const struct breaker *b, enum breaker_state from,
                              enum breaker_state to)
{
    struct router_host *h = ud;
    if (to == BREAKER_OPEN)
        log_warn("read path: %s breaker %s -> open (reads go elsewhere; next probe in %" PRIu64
                 " ms)",
                 h->served_by, breaker_state_name(from), breaker_wait_ms(b));
    else
        log_info("read path: %s breaker %s -> %s", h->served_by, breaker_state_name(from),
                 breaker_state_name(to));
    metric_set(h->m_breaker, to);
}

static void breaker_report(struct router_host *h, bool ok)
{
    pthread_mutex_lock(&h->mu);
    if (ok)
        breaker_success(&h->breaker);
    else
        breaker_failure(&h->breaker);
    pthread_mutex_unlock(&h->mu);
}

/* Not open (or open with its wait over: the next allow probes). */
static bool breaker_passable(struct router_host *h)
{
    pthread_mutex_lock(&h->mu);
    enum breaker_state s = breaker_state(&h->breaker);
    bool ok = s == BREAKER_CLOSED || (s == BREAKER_OPEN && breaker_wait_ms(&h->breaker) == 0) ||
              (s == BREAKER_HALF_OPEN && !h->breaker.probe_out);
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static bool breaker_take(struct router_host *h)
{
    pthread_mutex_lock(&h->mu);
    bool ok = breaker_allow(&h->breaker);
    pthread_mutex_unlock(&h->mu);
    return ok;
}

/* ---- health */
static void record_primary_sample(struct router *r, uint64_t lsn, uint64_t now_ms)
{
    pthread_mutex_lock(&r->mu);
    size_t last = (r->next_sample + SAMPLES - 1) % SAMPLES;
    if (r->nsamples == 0 || r->samples[last].lsn != lsn) {
        r->samples[r->next_sample] = (struct sample){lsn, now_ms};
        r->next_sample = (r->next_sample + 1) % SAMPLES;
        if (r->nsamples < SAMPLES)
            r->nsamples++;
    }
    pthread_mutex_unlock(&r->mu);
}

/* Lag of a replica at replay position `replay` (see router.h), given its
 * own time lag (-1: no transaction replayed yet) and what it received. */
static int64_t replica_lag(struct router *r, uint64_t replay, uint64_t received,
                           int64_t xact_lag_ms, uint64_t now_ms)
{
    uint64_t plsn = atomic_load(&r->primary_lsn);
    if (plsn && replay >= plsn)
        return 0;
    if (!atomic_load(&r->primary_up) && replay >= received)
        return 0; /* nothing more can come: it has everything it was sent */
    int64_t by_position = LAG_UNKNOWN;
    pthread_mutex_lock(&r->mu);
    /* Newest primary position the replica has replayed: the replica is at
     * most as old as that sample. Samples only grow in LSN. */
    for (size_t k = 0; k < r->nsamples; k++) {
        const struct sample *s = &r->samples[(r->next_sample + SAMPLES - 1 - k) % SAMPLES];
        if (s->lsn <= replay) {
            by_position = (int64_t)(now_ms - s->mono_ms);
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    int64_t lag = by_position;
    if (xact_lag_ms >= 0 && xact_lag_ms < lag)
        lag = xact_lag_ms;
    return lag;
}

static void publish(struct router_host *h, bool up, bool eligible, int64_t lag_ms)
{
    atomic_store(&h->up, up);
    atomic_store(&h->eligible, eligible);
    atomic_store(&h->lag_ms, lag_ms);
    atomic_store(&h->checked, true);
    metric_set(h->m_eligible, eligible ? 1 : 0);
    metric_set(h->m_lag, lag_ms == LAG_UNKNOWN ? -1 : (double)lag_ms);
}

static void health_failed(struct router_host *h, const char *err)
{
    struct router *r = h->r;
    /* One slow or lost check on a busy server is not an outage: a host
     * that answered before is taken out at the second failure in a row
     * (its breaker and pooled connections see the first). */
    breaker_report(h, false);
    if (++h->failed_checks < HEALTH_FAILURES && atomic_load(&h->checked) && atomic_load(&h->up))
        return;
    if (atomic_load(&h->up) || !atomic_load(&h->checked))
        log_warn("read path: %s does not answer its health check: %s", h->served_by, err);
    if (h->primary)
        atomic_store(&r->primary_up, false);
    publish(h, false, false, LAG_UNKNOWN);
    pg_pool_close_idle(h->pool);
}

static void health_check(struct router_host *h)
{
    struct router *r = h->r;
    char err[512];
    PGresult *res = NULL;
    if (pg_conn_open(h->health, NULL, err, sizeof(err)) != PG_OK ||
        pg_conn_exec(h->health, SQL_R_HEALTH, 0, NULL, &res, err, sizeof(err)) != PG_OK) {
        health_failed(h, err);
        return;
    }
    uint64_t now_ms = time_mono_ms();
    int64_t now_us = time_now_us();
    bool recovery = PQgetvalue(res, 0, 0)[0] == 't';
    uint64_t pos = 0, received = 0;
    (void)pg_lsn_parse(PQgetvalue(res, 0, 1), &pos);
    (void)pg_lsn_parse(PQgetvalue(res, 0, 2), &received);
    bool paused = PQgetvalue(res, 0, 3)[0] == 't';
    bool receiver = PQgetvalue(res, 0, 4)[0] == 't';
    int64_t xact_lag = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    PQclear(res);
    h->failed_checks = 0;
    atomic_store(&h->lsn, pos);
    atomic_store(&h->paused, paused);
    atomic_store(&h->receiver_up, receiver);
    bool was_up = atomic_load(&h->up);
    if (h->primary) {
        record_primary_sample(r, pos, now_ms);
        atomic_store(&r->primary_lsn, pos);
        atomic_store(&r->primary_up, true);
        atomic_store(&h->horizon_us, now_us);
        publish(h, true, true, 0);
    } else {
        int64_t lag = replica_lag(r, pos, received, xact_lag, now_ms);
        /* A replica cut off from a primary that answers is stale however
         * small its last lag: refuse it. With the primary down it keeps
         * serving what it has. */
        bool cut_off = recovery && !receiver && atomic_load(&r->primary_up);
        bool eligible = !paused && !cut_off && lag <= r->conf.max_lag_ms;
        atomic_store(&h->horizon_us, lag == LAG_UNKNOWN ? 0 : now_us - lag * 1000);
        if (eligible != atomic_load(&h->eligible) || !was_up)
            log_info("read path: %s %s (lag %s%" PRId64 " ms%s%s)", h->served_by,
                     eligible ? "eligible" : "not eligible", lag == LAG_UNKNOWN ? "unknown, " : "",
                     lag == LAG_UNKNOWN ? (int64_t)-1 : lag, paused ? ", replay paused" : "",
                     cut_off ? ", WAL receiver down" : "");
        publish(h, true, eligible, lag);
    }
    if (!was_up && atomic_load(&h->checked))
        log_info("read path: %s answers", h->served_by);
    /* A host that answers is a success for its breaker: this is also what
     * closes it after an outage (the health check is its probe). */
    pthread_mutex_lock(&h->mu);
    if (breaker_state(&h->breaker) != BREAKER_CLOSED)
        (void)breaker_allow(&h->breaker);
    breaker_success(&h->breaker);
    pthread_mutex_unlock(&h->mu);
}

static void *health_main(void *ud)
{
    struct router_host *h = ud;
    struct router *r = h->r;
    uint64_t interval = (uint64_t)r->conf.health_interval_ms;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        health_check(h);
        pthread_cond_broadcast(&r->wake); /* router_new waits for first checks */
        /* Between 1x and 2x the interval, like GitLab's load balancer: the
         * hosts' checks do not fall in step. */
        uint64_t wait = interval + rand_u64_default(NULL) % (interval + 1);
        struct timespec until;
        time_deadline(&until, CLOCK_REALTIME, wait);
        pthread_mutex_lock(&r->mu);
        while (!r->stop && pthread_cond_timedwait(&r->wake, &r->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- lifecycle */
static void host_metrics(struct router_host *h, struct metrics *m)
{
    char l[192];
    snprintf(l, sizeof(l), "role=\"%s\",host=\"%s\"", h->primary ? "primary" : "replica", h->label);
    h->m_eligible = metrics_gauge(m, "auditrail_aggregator_query_host_eligible",
                                  "1 when the host may serve reads (answering, lag within the "
                                  "bound, breaker not open)",
                                  l);
    h->m_lag = metrics_gauge(m, "auditrail_aggregator_query_host_lag_ms",
                             "replay lag of the host at its last check (-1 = unknown)", l);
    h->m_breaker = metrics_gauge(m, "auditrail_aggregator_query_host_breaker_state",
                                 "read-path breaker of the host: 0 closed, 1 open, 2 half-open", l);
    h->m_inflight = metrics_gauge(m, "auditrail_aggregator_query_host_inflight",
                                  "queries running on the host", l);
    for (int i = 0; i < PG_STATUS_COUNT; i++) {
        if (i == PG_CONFLICT)
            continue;
        char l2[256];
        snprintf(l2, sizeof(l2), "%s,result=\"%s\"", l, pg_status_name((enum pg_status)i));
        h->m_queries[i] = metrics_counter(m, "auditrail_aggregator_query_host_queries_total",
                                          "read queries by host and result", l2);
    }
}

void router_register_metrics(struct metrics *m)
{
    struct router_host h = {.primary = true};
    snprintf(h.label, sizeof(h.label), "primary:5432");
    host_metrics(&h, m);
}

static struct router_host *host_new(struct router *r, size_t index, const char *conninfo)
{
    struct router_host *h = xcalloc(1, sizeof(*h));
    h->r = r;
    h->index = index;
    h->primary = index == 0;
    h->conninfo = xstrdup(conninfo);
    conninfo_label(conninfo, h->label, sizeof(h->label));
    if (h->primary)
        snprintf(h->served_by, sizeof(h->served_by), "primary");
    else
        snprintf(h->served_by, sizeof(h->served_by), "replica %s", h->label);
    pthread_mutex_init(&h->mu, NULL);
    host_metrics(h, r->conf.metrics);
    char name[40];
    snprintf(name, sizeof(name), "read-%s", h->primary ? "primary" : "replica");
    breaker_init(&h->breaker, name, &r->bconf, NULL, NULL, NULL, NULL, on_breaker_change, h);
    struct pg_pool_conf pc = {.conninfo = conninfo,
                              .application_name = "auditrail-query",
                              .size = r->conf.pool_size,
                              .statement_timeout_ms = r->conf.statement_timeout_ms,
                              .stmts = r->conf.stmts,
                              .nstmts = r->conf.nstmts};
    h->pool = pg_pool_new(&pc);
    h->health = pg_conn_new(conninfo, &health_opts);
    atomic_init(&h->lag_ms, LAG_UNKNOWN);
    return h;
}

struct router *router_new(const struct router_conf *conf, unsigned first_check_ms)
{
    struct router *r = xcalloc(1, sizeof(*r));
    r->conf = *conf;
    if (conf->breaker)
        r->bconf = *conf->breaker;
    else
        breaker_conf_default(&r->bconf);
    if (r->conf.health_interval_ms <= 0)
        r->conf.health_interval_ms = 1000;
    if (!r->conf.metrics)
        r->conf.metrics = r->own_metrics = metrics_new();
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->wake, NULL);
    r->nhosts = 1 + conf->nreplicas;
    r->hosts = xcalloc(r->nhosts, sizeof(*r->hosts));
    r->hosts[0] = host_new(r, 0, conf->primary);
    for (size_t i = 0; i < conf->nreplicas; i++)
        r->hosts[i + 1] = host_new(r, i + 1, conf->replicas[i]);
    for (size_t i = 0; i < r->nhosts; i++)
        r->hosts[i]->started =
            pthread_create(&r->hosts[i]->thread, NULL, health_main, r->hosts[i]) == 0;
    /* Serve from the first request on: wait (bounded) for every first check. */
    uint64_t deadline = time_mono_ms() + first_check_ms;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < r->nhosts; i++)
            all &= atomic_load(&r->hosts[i]->checked);
        uint64_t now = time_mono_ms();
        if (all || now >= deadline)
            break;
        struct timespec until;
        time_deadline(&until, CLOCK_REALTIME, 20);
        pthread_cond_timedwait(&r->wake, &r->mu, &until);
    }
    pthread_mutex_unlock(&r->mu);
    return r;
}

void router_free(struct router *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < r->nhosts; i++) {
        struct router_host *h = r->hosts[i];
        if (h->started)
            pthread_join(h->thread, NULL);
        pg_conn_free(h->health);
        pg_pool_free(h->pool);
        pthread_mutex_destroy(&h->mu);
        free(h->conninfo);
        free(h);
    }
    free(r->hosts);
    metrics_free(r->own_metrics);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- leasing */
static bool usable(struct router *r, struct router_host *h, const struct router_host *exclude,
                   const bool *tried)
{
    if (h == exclude || tried[h->index] || !breaker_passable(h))
        return false;
    if (h->primary)
        return !r->conf.replica_only && atomic_load(&h->up);
    return atomic_load(&h->eligible);
}

/* The next host to try: the least-loaded usable replica (those known to
 * have replayed min_lsn first, when asked), else the primary. NULL: none. */
static struct router_host *pick(struct router *r, const struct router_host *exclude,
                                const bool *tried, uint64_t min_lsn)
{
    struct router_host *best = NULL;
    unsigned best_load = UINT32_MAX;
    for (size_t i = 1; i < r->nhosts; i++) {
        struct router_host *h = r->hosts[i];
        if (!usable(r, h, exclude, tried))
            continue;
        /* Known to have replayed min_lsn first; the others are asked live. */
        unsigned load = atomic_load(&h->inflight);
        if (min_lsn && atomic_load(&h->lsn) < min_lsn)
            load += UINT32_MAX / 2;
        if (load < best_load) {
            best = h;
            best_load = load;
        }
    }
    if (!best && usable(r, r->hosts[0], exclude, tried))
        best = r->hosts[0];
    return best;
}

static void fill_lease(struct router_host *h, struct pg_connection *c, struct router_lease *out)
{
    out->host = h;
    out->conn = c;
    out->replica = !h->primary;
    snprintf(out->served_by, sizeof(out->served_by), "%s", h->served_by);
    out->lag_ms = h->primary ? 0 : atomic_load(&h->lag_ms);
    out->horizon_us = atomic_load(&h->horizon_us);
    out->start_us = time_mono_us();
    atomic_fetch_add(&h->inflight, 1);
    metric_set(h->m_inflight, atomic_load(&h->inflight));
}

/* Take a pooled, connected connection on h: 1 ok, 0 pool full, -1 the host
 * failed (breaker told). */
static int take(struct router *r, struct router_host *h, struct pg_connection **out, char *err,
                size_t errlen)
{
    struct pg_connection *c = pg_pool_acquire(h->pool, (unsigned)r->conf.acquire_timeout_ms);
    if (!c)
        return 0;
    if (!breaker_take(h)) {
        pg_pool_release(h->pool, c, false);
        return -1;
    }
    char e2[512];
    if (pg_conn_open(c, NULL, e2, sizeof(e2)) != PG_OK) {
        snprintf(err, errlen, "%s: %s", h->served_by, e2);
        breaker_report(h, false);
        metric_inc(h->m_queries[PG_TRANSIENT]);
        pg_pool_release(h->pool, c, true);
        return -1;
    }
    *out = c;
    return 1;
}

/* Poll the leased replica until it has replayed min_lsn or the deadline
 * passes: true when it has. */
static bool wait_lsn(struct router_lease *l, uint64_t min_lsn, uint64_t deadline_ms)
{
    char lsn[24], err[256];
    pg_lsn_format(min_lsn, lsn);
    const char *params[] = {lsn};
    for (;;) {
        PGresult *res = NULL;
        if (pg_conn_exec_prepared(l->conn, STMT_R_LSN_REACHED, 1, params, &res, err, sizeof(err)) !=
            PG_OK)
            return false;
        bool reached = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (reached)
            return true;
        if (time_mono_ms() >= deadline_ms)
            return false;
        struct timespec ts = {0, LSN_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

enum router_status router_acquire(struct router *r, const struct router_host *exclude,
                                  uint64_t min_lsn, unsigned min_lsn_wait_ms,
                                  struct router_lease *out, char *err, size_t errlen)
{
    bool *tried = xcalloc(r->nhosts, sizeof(*tried));
    bool busy = false;
    enum router_status st = ROUTER_NO_HOST;
    snprintf(err, errlen, "no PostgreSQL host may serve reads now");
    uint64_t deadline = time_mono_ms() + min_lsn_wait_ms;
    /* Two passes for min_lsn: hosts known to have replayed it (and the
     * primary), then replicas that may catch up within the wait. */
    for (int pass = 0; pass < (min_lsn ? 2 : 1); pass++) {
        memset(tried, 0, r->nhosts * sizeof(*tried));
        struct router_host *h;
        while ((h = pick(r, exclude, tried, min_lsn)) != NULL) {
            tried[h->index] = true;
            if (pass == 1 && h->primary)
                continue;
            struct pg_connection *c = NULL;
            int got = take(r, h, &c, err, errlen);
            if (got == 0)
                busy = true;
            if (got <= 0)
                continue;
            fill_lease(h, c, out);
            if (!min_lsn || h->primary)
                goto ok;
            uint64_t until = pass == 0 ? 0 : deadline;
            if (wait_lsn(out, min_lsn, until))
                goto ok;
            router_release(r, out, pg_conn_ok(c) ? PG_OK : PG_TRANSIENT);
            if (pass == 1)
                st = ROUTER_LSN_TIMEOUT;
        }
    }
    if (st == ROUTER_LSN_TIMEOUT)
        snprintf(err, errlen, "no host replayed min_lsn within %u ms", min_lsn_wait_ms);
    else if (busy) {
        st = ROUTER_BUSY;
        snprintf(err, errlen, "every eligible host's connection pool is in use");
    }
    free(tried);
    memset(out, 0, sizeof(*out));
    return st;
ok:
    free(tried);
    return ROUTER_OK;
}

enum router_status router_acquire_primary(struct router *r, struct router_lease *out, char *err,
                                          size_t errlen)
{
    struct router_host *h = r->hosts[0];
    bool *tried = xcalloc(r->nhosts, sizeof(*tried));
    bool ok = usable(r, h, NULL, tried);
    free(tried);
    struct pg_connection *c = NULL;
    int got = ok ? take(r, h, &c, err, errlen) : -1;
    if (got <= 0) {
        if (!ok)
            snprintf(err, errlen, "the primary may not serve reads now");
        memset(out, 0, sizeof(*out));
        return got == 0 ? ROUTER_BUSY : ROUTER_NO_HOST;
    }
    fill_lease(h, c, out);
    return ROUTER_OK;
}

void router_release(struct router *r, struct router_lease *l, enum pg_status st)
{
    (void)r;
    struct router_host *h = l->host;
    if (!h)
        return;
    /* A host that answered (even with an error about the query) is up. */
    bool host_ok = st != PG_TRANSIENT || pg_conn_ok(l->conn);
    if (st == PG_TRANSIENT && !strcmp(pg_conn_sqlstate(l->conn), "40001"))
        host_ok = false; /* conflicts with recovery: let a storm of them move reads away */
    breaker_report(h, host_ok);
    metric_inc(h->m_queries[st == PG_CONFLICT ? PG_TRANSIENT : st]);
    pg_pool_release(h->pool, l->conn, st != PG_OK && !pg_conn_ok(l->conn));
    atomic_fetch_sub(&h->inflight, 1);
    metric_set(h->m_inflight, atomic_load(&h->inflight));
    memset(l, 0, sizeof(*l));
}

bool router_should_retry(const struct router_lease *l, enum pg_status st)
{
    if (!l->replica || st != PG_TRANSIENT)
        return false;
    return !pg_conn_ok(l->conn) || !strcmp(pg_conn_sqlstate(l->conn), "40001");
}

uint64_t router_primary_lsn(struct router *r)
{
    return atomic_load(&r->primary_lsn);
}

unsigned router_retry_after_s(const struct router *r)
{
    uint64_t s = (uint64_t)r->conf.health_interval_ms * 2 / 1000;
    return s < RETRY_AFTER_MIN ? RETRY_AFTER_MIN : (unsigned)s;
}

size_t router_nhosts(const struct router *r)
{
    return r->nhosts;
}

void router_host_state(struct router *r, size_t i, struct router_host_state *out)
{
    struct router_host *h = r->hosts[i];
    snprintf(out->served_by, sizeof(out->served_by), "%s", h->served_by);
    out->up = atomic_load(&h->up);
    out->eligible = atomic_load(&h->eligible);
    out->paused = atomic_load(&h->paused);
    out->receiver_up = atomic_load(&h->receiver_up);
    out->lag_ms = atomic_load(&h->lag_ms);
    out->inflight = atomic_load(&h->inflight);
    pthread_mutex_lock(&h->mu);
    out->breaker = breaker_state(&h->breaker);
    pthread_mutex_unlock(&h->mu);
}
