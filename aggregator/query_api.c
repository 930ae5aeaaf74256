/* The query API's core (aggregator/query_api.h): routing, the checks in
 * their order (401 token, 403 role, 400 parameters, 403 tenant), the
 * result cache, handing database work to the workers with the router's
 * retry rule, answers with their headers, metrics, and one audit line per
 * request. Endpoint bodies live in query_events.c, query_export.c,
 * query_streams.c and query_fhir.c. */
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "aggregator/query_audit.h"
#include "aggregator/query_int.h"
#include "aggregator/query_render.h"
#include "aggregator/query_sql.h"
#include "aggregator/workq.h"
#include "common/jsonw.h"
#include "common/lru.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define TOKEN_CACHE_MAX 100000
#define FIRST_CHECK_MS  3000

static const char *const ep_paths[EP_COUNT] = {
    [EP_EVENTS] = "/v1/events",       [EP_EXPORT] = "/v1/events/export",
    [EP_STREAMS] = "/v1/streams",     [EP_STREAM] = "/v1/streams/{id}",
    [EP_INCIDENTS] = "/v1/incidents", [EP_FHIR] = "/fhir/AuditEvent",
    [EP_STATUS] = "/v1/status",       [EP_VERIFY] = "/v1/streams/{id}/verify"};

static const char JSON_CT[] = "application/json";
static const char FHIR_CT[] = "application/fhir+json";

/* Every statement a read connection prepares. */
static const struct pg_stmt read_stmts[] = {
    {STMT_R_LSN_REACHED, SQL_R_LSN_REACHED}, {STMT_Q_EVENTS, SQL_Q_EVENTS},
    {STMT_Q_STREAMS, SQL_Q_STREAMS},         {STMT_Q_STREAM, SQL_Q_STREAM},
    {STMT_Q_INCIDENTS, SQL_Q_INCIDENTS},     {STMT_Q_TOKEN, SQL_Q_TOKEN},
};

/* ---- metrics */
static void metrics_init(struct query_api *a, struct metrics *m)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    char l[128];
    for (int e = 0; e < EP_COUNT; e++) {
        for (int c = 0; c < 5; c++) {
            snprintf(l, sizeof(l), "endpoint=\"%s\",code=\"%dxx\"", ep_paths[e], c + 1);
            if (c == 0)
                continue; /* no 1xx answers */
            a->requests[e][c] =
                metrics_counter(m, "auditrail_aggregator_query_requests_total",
                                "query API requests by endpoint and status class", l);
        }
        snprintf(l, sizeof(l), "endpoint=\"%s\"", ep_paths[e]);
        a->latency[e] = metrics_histogram(
            m, "auditrail_aggregator_query_request_seconds",
            "query API request time, from the request to its answer (an export: to its headers)", l,
            bounds, sizeof(bounds) / sizeof(*bounds));
    }
    a->inflight = metrics_gauge(m, "auditrail_aggregator_query_inflight_requests",
                                "query API requests being answered", NULL);
    a->rejected = metrics_counter(m, "auditrail_aggregator_query_rejected_total",
                                  "requests answered 503 because the worker queue was full", NULL);
    a->audit_errors = metrics_counter(m, "auditrail_aggregator_query_audit_errors_total",
                                      "API audit log lines that could not be written", NULL);
    a->exports = metrics_gauge(m, "auditrail_aggregator_query_exports",
                               "exports streaming now (each holds a read connection)", NULL);
}

void query_api_register_metrics(struct metrics *m)
{
    struct query_api a = {0};
    metrics_init(&a, m);
    query_cache_free(query_cache_new(1, m));
    router_register_metrics(m);
}

static void flight_free(void *v);

/* ---- lifecycle */
struct query_api *query_api_new(const struct aggr_config *cfg, struct metrics *m, char *err,
                                size_t errlen)
{
    const struct aggr_query_conf *qc = &cfg->query;
    struct query_api *a = xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->qc = qc;
    metrics_init(a, m);
    if (qc->audit_log && *qc->audit_log) {
        a->audit = query_audit_open(qc->audit_log, err, errlen);
        if (!a->audit)
            goto fail;
    } else {
        log_warn("query.audit_log is not set: API requests are not audited");
    }
    if (qc->cursor_key && *qc->cursor_key) {
        /* any length in, 32 bytes out */
        unsigned int len = 0;
        EVP_Digest(qc->cursor_key, strlen(qc->cursor_key), a->cursor_key, &len, EVP_sha256(), NULL);
    } else {
        if (getrandom(a->cursor_key, sizeof(a->cursor_key), 0) != (ssize_t)sizeof(a->cursor_key))
            abort();
        log_info("query.cursor_key is not set: cursors are signed with a key of this process "
                 "(they stop working when it restarts, and other replicas refuse them)");
    }
    struct breaker_conf bc;
    aggr_config_breaker(cfg, &bc);
    struct router_conf rc = {.primary = cfg->postgres.primary,
                             .replicas = (const char *const *)cfg->postgres.replicas.v,
                             .nreplicas = cfg->postgres.replicas.n,
                             .max_lag_ms = cfg->postgres.max_replica_lag_ms,
                             .health_interval_ms = cfg->postgres.health_interval_ms,
                             .replica_only = qc->replica_only,
                             .pool_size = (unsigned)qc->pool_size,
                             .statement_timeout_ms = qc->timeout_ms,
                             .acquire_timeout_ms = (unsigned)qc->acquire_timeout_ms,
                             .stmts = read_stmts,
                             .nstmts = sizeof(read_stmts) / sizeof(*read_stmts),
                             .breaker = &bc,
                             .metrics = m};
    a->router = router_new(&rc, FIRST_CHECK_MS);
    a->tokens = token_cache_new((uint64_t)qc->token_cache_s * 1000, TOKEN_CACHE_MAX);
    a->cache = query_cache_new((size_t)qc->cache_bytes, m);
    a->wq = workq_new((unsigned)qc->workers, (size_t)qc->queue_max);
    pthread_mutex_init(&a->flights_mu, NULL);
    for (int i = 0; i < TOKEN_LOCKS; i++)
        pthread_mutex_init(&a->token_locks[i], NULL);
    a->flights = lru_new(1u << 30, 0, flight_free);
    return a;
fail:
    query_api_free(a);
    return NULL;
}

void query_api_set_ingest(struct query_api *a, query_ingest_fn fn, void *ud)
{
    a->ingest = fn;
    a->ingest_ud = ud;
}

void query_api_quiesce(struct query_api *a, unsigned timeout_ms)
{
    if (!a)
        return;
    atomic_store(&a->stopping, true);
    uint64_t until = time_mono_ms() + timeout_ms;
    while (atomic_load(&a->pending) > 0 && time_mono_ms() < until) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&a->pending) > 0)
        log_warn("query API: %d request(s) still in progress at stop", atomic_load(&a->pending));
}

void query_api_free(struct query_api *a)
{
    if (!a)
        return;
    atomic_store(&a->stopping, true);
    workq_free(a->wq); /* runs what is queued: every lease comes back */
    router_free(a->router);
    token_cache_free(a->tokens);
    query_cache_free(a->cache);
    query_audit_close(a->audit);
    if (a->flights) {
        lru_free(a->flights);
        pthread_mutex_destroy(&a->flights_mu);
        for (int i = 0; i < TOKEN_LOCKS; i++)
            pthread_mutex_destroy(&a->token_locks[i]);
    }
    free(a);
}

/* ---- answers */
void qreq_free(struct qreq *q)
{
    if (!q)
        return;
    qparams_release(&q->p);
    buf_release(&q->key);
    buf_release(&q->binding);
    free(q->base_url);
    free(q);
}

void query_error(struct qreq *q, struct httpd_response *resp, int status, const char *code,
                 const char *msg)
{
    struct buf b = BUF_INIT;
    if (q->fhir) {
        const char *fc = status == 401                        ? "login"
                         : status == 403                      ? "forbidden"
                         : status == 404                      ? "not-found"
                         : status == 503                      ? "transient"
                         : status >= 500                      ? "exception"
                         : !strcmp(code, "unknown_parameter") ? "not-supported"
                                                              : "invalid";
        query_fhir_outcome(&b, "error", fc, msg);
    } else {
        BUF_LIT(&b, "{\"error\":");
        jsonw_cstr(&b, msg);
        BUF_LIT(&b, ",\"code\":");
        jsonw_cstr(&b, code);
        buf_addc(&b, '}');
    }
    resp->status = status;
    resp->body = buf_detach(&b, &resp->body_len);
    resp->content_type = q->fhir ? FHIR_CT : JSON_CT;
    snprintf(q->code, sizeof(q->code), "%s", code);
    if (status == 401)
        httpd_response_header(resp, "WWW-Authenticate", "Bearer realm=\"auditrail\"");
    if (status == 503) {
        char s[16];
        snprintf(s, sizeof(s), "%u", router_retry_after_s(q->api->router));
        httpd_response_header(resp, "Retry-After", s);
    }
}

void query_json(struct qreq *q, struct httpd_response *resp, struct buf *body, const char *ctype)
{
    resp->status = 200;
    resp->body = buf_detach(body, &resp->body_len);
    resp->content_type = ctype ? ctype : (q->fhir ? FHIR_CT : JSON_CT);
}

/* The audit line: who asked what, and what came of it. No secret: the
 * token's name, never its value; a cursor is noted, not copied. */
static void audit(struct qreq *q)
{
    struct query_api *a = q->api;
    if (!a->audit)
        return;
    struct buf b = BUF_INIT;
    BUF_LIT(&b, "{\"time\":");
    render_time(&b, time_now_us());
    jsonw_key(&b, "token", false);
    if (q->tok_known && q->tok_state == TOKEN_VALID)
        jsonw_cstr(&b, q->tok.name);
    else
        BUF_LIT(&b, "null");
    jsonw_key(&b, "tenant", false);
    if (q->tok_known && q->tok_state == TOKEN_VALID)
        jsonw_cstr(&b, q->tok.tenant[0] ? q->tok.tenant : "*");
    else
        BUF_LIT(&b, "null");
    jsonw_key(&b, "role", false);
    if (q->tok_known && q->tok_state == TOKEN_VALID)
        jsonw_cstr(&b, token_role_name(q->tok.role));
    else
        BUF_LIT(&b, "null");
    jsonw_key(&b, "endpoint", false);
    jsonw_cstr(&b, ep_paths[q->ep]);
    if (q->ep == EP_STREAM || q->ep == EP_VERIFY) {
        jsonw_key(&b, "stream", false);
        jsonw_cstr(&b, q->stream_id);
    }
    jsonw_key(&b, "filters", false);
    buf_addc(&b, '{');
    bool first = true;
    const struct qparams *p = &q->p;
    const char *names[] = {"tenant",  "actor",  "action", "resource",
                           "outcome", "source", "stream", "kind"};
    const char *vals[] = {p->tenant,  p->actor,  p->action, p->resource,
                          p->outcome, p->source, p->stream, p->kind};
    for (int i = 0; i < 8; i++)
        if (vals[i]) {
            jsonw_key(&b, names[i], first);
            jsonw_cstr(&b, vals[i]);
            first = false;
        }
    if (p->has_from) {
        jsonw_key(&b, "from", first);
        render_time(&b, p->from_us);
        first = false;
    }
    if (p->has_to) {
        jsonw_key(&b, "to", first);
        render_time(&b, p->to_us);
        first = false;
    }
    if (p->limit) {
        jsonw_key(&b, "limit", first);
        jsonw_u64(&b, p->limit);
        first = false;
    }
    if (p->cursor) {
        jsonw_key(&b, "cursor", first);
        BUF_LIT(&b, "true");
    }
    buf_addc(&b, '}');
    jsonw_key(&b, "rows", false);
    jsonw_u64(&b, q->rows);
    jsonw_key(&b, "status", false);
    jsonw_u64(&b, (uint64_t)q->status);
    jsonw_key(&b, "code", false);
    if (q->code[0])
        jsonw_cstr(&b, q->code);
    else
        BUF_LIT(&b, "null");
    jsonw_key(&b, "client", false);
    jsonw_cstr(&b, q->client);
    jsonw_key(&b, "served_by", false);
    if (q->served_by[0])
        jsonw_cstr(&b, q->served_by);
    else
        BUF_LIT(&b, "null");
    jsonw_key(&b, "cache", false);
    BUF_LIT(&b, "null");
    if (q->cache) {
        b.len -= 4;
        jsonw_cstr(&b, q->cache == 1 ? "hit" : "miss");
    }
    jsonw_key(&b, "duration_ms", false);
    buf_addf(&b, "%.3f}", (double)(time_mono_us() - q->t0_us) / 1000.0);
    if (query_audit_write(a->audit, b.p, b.len) != 0)
        metric_inc(a->audit_errors);
    buf_release(&b);
}

void query_finish(struct qreq *q, struct httpd_response *resp, bool async)
{
    struct query_api *a = q->api;
    q->status = resp->status ? resp->status : 200;
    httpd_response_header(resp, "X-Auditrail-Served-By", q->served_by[0] ? q->served_by : "none");
    char lag[24];
    snprintf(lag, sizeof(lag), "%" PRId64, q->served_by[0] ? q->lag_ms : (int64_t)0);
    httpd_response_header(resp, "X-Auditrail-Replica-Lag-Ms", lag);
    if (q->cache)
        httpd_response_header(resp, "X-Auditrail-Cache", q->cache == 1 ? "hit" : "miss");
    httpd_response_header(resp, "Cache-Control", "no-store");
    metric_observe(a->latency[q->ep], (double)(time_mono_us() - q->t0_us) / 1e6);
    if (async) {
        httpd_complete(q->hreq, resp);
        q->hreq = NULL;
        atomic_fetch_sub(&a->pending, 1);
        metric_add(a->inflight, -1);
    }
    if (!q->deferred) {
        int cls = q->status / 100;
        if (cls >= 2 && cls <= 5)
            metric_inc(a->requests[q->ep][cls - 1]);
        audit(q);
        if (async)
            qreq_free(q);
    }
}

void query_done(struct qreq *q)
{
    int cls = q->status / 100;
    if (cls >= 2 && cls <= 5)
        metric_inc(q->api->requests[q->ep][cls - 1]);
    audit(q);
    qreq_free(q);
}

/* ---- running a statement through the router */
static void note_lease(struct qreq *q, const struct router_lease *l)
{
    snprintf(q->served_by, sizeof(q->served_by), "%s", l->served_by);
    q->lag_ms = l->lag_ms;
}

int query_run(struct qreq *q, query_exec_fn fn, struct buf *body, struct router_lease *keep,
              struct httpd_response *resp)
{
    struct query_api *a = q->api;
    const struct router_host *exclude = NULL;
    char err[512];
    for (int attempt = 0; attempt < 2; attempt++) {
        struct router_lease l;
        enum router_status rs =
            router_acquire(a->router, exclude, q->p.min_lsn, (unsigned)a->qc->min_lsn_wait_ms, &l,
                           err, sizeof(err));
        if (rs != ROUTER_OK) {
            const char *code = rs == ROUTER_BUSY          ? "busy"
                               : rs == ROUTER_LSN_TIMEOUT ? "min_lsn_not_replayed"
                                                          : "no_host";
            query_error(q, resp, 503, code, err);
            return -1;
        }
        note_lease(q, &l);
        if (body)
            buf_reset(body);
        enum pg_status st = fn(q, &l, body, err, sizeof(err));
        if (st == PG_OK) {
            if (keep)
                *keep = l;
            else
                router_release(a->router, &l, st);
            return 0;
        }
        bool retry = attempt == 0 && router_should_retry(&l, st);
        const char *sqlstate = pg_conn_sqlstate(l.conn);
        bool timeout = !strcmp(sqlstate, "57014");
        if (!retry)
            log_warn("query API %s on %s: %s", ep_paths[q->ep], l.served_by, err);
        exclude = l.host;
        router_release(a->router, &l, st);
        if (retry)
            continue;
        if (timeout)
            query_error(q, resp, 503, "query_timeout",
                        "the query ran longer than query.timeout_ms: narrow the range or filters");
        else if (st == PG_TRANSIENT)
            query_error(q, resp, 503, "unavailable", "the database is unavailable; retry");
        else if (st == PG_DATA)
            query_error(q, resp, 400, "bad_request", "the database refused a parameter");
        else
            query_error(q, resp, 500, "internal", "the query failed (see the server's log)");
        return -1;
    }
    return -1; /* not reached */
}

enum pg_status query_page(struct router_lease *l, const char *stmt, int np,
                          const char *const *params, unsigned limit, PGresult **res, int *n,
                          bool *more, char *err, size_t errlen)
{
    enum pg_status st = pg_conn_exec_prepared(l->conn, stmt, np, params, res, err, errlen);
    if (st != PG_OK)
        return st;
    *n = PQntuples(*res);
    *more = *n > (int)limit;
    if (*more)
        *n = (int)limit;
    return PG_OK;
}

/* ---- checks */
static bool needs_auditor(enum qep ep)
{
    return ep == EP_EXPORT || ep == EP_STREAMS || ep == EP_STREAM || ep == EP_INCIDENTS ||
           ep == EP_VERIFY;
}

static bool cacheable(const struct qreq *q)
{
    /* verify is always computed afresh: its answer is evidence */
    return q->ep != EP_EXPORT && q->ep != EP_STATUS && q->ep != EP_VERIFY && q->p.min_lsn == 0;
}

static enum qp_kind kind_of(enum qep ep)
{
    return ep == EP_STREAMS     ? QP_STREAMS
           : ep == EP_STREAM    ? QP_STREAM
           : ep == EP_VERIFY    ? QP_STREAM
           : ep == EP_INCIDENTS ? QP_INCIDENTS
                                : QP_EVENTS;
}

/* Everything that does not need the database once the token is known: an
 * error answer (true) or q ready to run (scope, cursor, cache key). */
static bool refuse(struct qreq *q, struct httpd_response *resp)
{
    struct query_api *a = q->api;
    if (q->tok_state != TOKEN_VALID) {
        const char *code = q->tok_state == TOKEN_EXPIRED   ? "token_expired"
                           : q->tok_state == TOKEN_REVOKED ? "token_revoked"
                                                           : "unknown_token";
        query_error(q, resp, 401, code, "the bearer token is unknown, expired or revoked");
        return true;
    }
    if (needs_auditor(q->ep) && q->tok.role == ROLE_READER) {
        query_error(q, resp, 403, "role_forbidden",
                    "this endpoint needs an auditor or admin token");
        return true;
    }
    if (q->perr_set) {
        query_error(q, resp, q->perr.status, q->perr.code, q->perr.msg);
        return true;
    }
    bool admin = q->tok.role == ROLE_ADMIN;
    if (!admin && q->p.tenant && strcmp(q->p.tenant, q->tok.tenant) != 0) {
        query_error(q, resp, 403, "tenant_forbidden", "this token may not read that tenant");
        return true;
    }
    q->scope = admin ? q->p.tenant : q->tok.tenant;
    bool range = q->ep == EP_EVENTS || q->ep == EP_FHIR || q->ep == EP_EXPORT;
    struct qp_error e;
    if (qparams_finish(&q->p, kind_of(q->ep), range, &e) != 0 ||
        ((q->ep == EP_EVENTS || q->ep == EP_FHIR) &&
         qparams_check_span(&q->p, a->qc->max_range_days, &e) != 0)) {
        query_error(q, resp, e.status, e.code, e.msg);
        return true;
    }
    /* The cursor binds the endpoint family, the scope and the filters. */
    const char *family = q->ep == EP_FHIR || q->ep == EP_EVENTS ? "events" : ep_paths[q->ep];
    buf_reset(&q->binding);
    qparams_normalize(&q->p, family, admin ? "*" : q->tok.tenant, &q->binding);
    if (q->ep == EP_STREAM || q->ep == EP_VERIFY)
        buf_adds(&q->binding, q->stream_id);
    if (q->p.cursor) {
        if (qcursor_open(a->cursor_key, q->binding.p, q->p.cursor, q->cur, &q->cur_len) != 0) {
            query_error(q, resp, 400, "bad_cursor",
                        "the cursor is not valid for this query and token (it is opaque: use "
                        "next_cursor as given, with the same filters)");
            return true;
        }
        q->has_cur = true;
    }
    buf_reset(&q->key);
    buf_add(&q->key, q->binding.p, q->binding.len);
    buf_addf(&q->key, "|%s|limit=%u|cursor=%s|%s", ep_paths[q->ep], q->p.limit,
             q->p.cursor ? q->p.cursor : "", q->fhir ? "fhir" : "json");
    if (q->fhir && q->base_url)
        buf_adds(&q->key, q->base_url);
    return false;
}

static bool cache_answer(struct qreq *q, struct httpd_response *resp)
{
    if (!cacheable(q))
        return false;
    struct qcache_entry e;
    if (!query_cache_get(q->api->cache, q->key.p, q->key.len, time_mono_ms(), &e)) {
        q->cache = 2;
        return false;
    }
    q->cache = 1;
    q->rows = e.rows;
    snprintf(q->served_by, sizeof(q->served_by), "%s", e.served_by);
    q->lag_ms = e.lag_ms;
    resp->status = 200;
    resp->body = e.body;
    resp->body_len = e.len;
    resp->content_type = e.content_type;
    return true;
}

/* Keep an answer: long when its range ends before the serving host's
 * replay horizon less the margin (nothing can still arrive in it, short of
 * an agent holding records longer than the margin), short otherwise. */
static void cache_keep(struct qreq *q, const struct httpd_response *resp, int64_t horizon_us)
{
    if (!cacheable(q) || resp->status != 200)
        return;
    const struct aggr_query_conf *qc = q->api->qc;
    bool immutable = (q->ep == EP_EVENTS || q->ep == EP_FHIR) && q->p.has_to && horizon_us > 0 &&
                     q->p.to_us <= horizon_us - qc->cache_immutable_margin_s * INT64_C(1000000);
    uint64_t ttl = (uint64_t)(immutable ? qc->cache_ttl_immutable_s : qc->cache_ttl_s) * 1000;
    struct qcache_entry e = {.body = resp->body,
                             .len = resp->body_len,
                             .rows = q->rows,
                             .content_type = resp->content_type,
                             .lag_ms = q->lag_ms};
    snprintf(e.served_by, sizeof(e.served_by), "%s", q->served_by);
    query_cache_put(q->api->cache, q->key.p, q->key.len, &e, ttl, time_mono_ms());
}

/* ---- single flight: identical cacheable questions asked while the first
 * is being answered wait for its answer instead of each taking a pooled
 * connection (a hot entry expiring under 1000 clients is one query). */
struct flight {
    struct qreq **waiters;
    size_t n, cap;
};

static void flight_free(void *v)
{
    struct flight *f = v;
    free(f->waiters);
    free(f);
}

/* true: q now waits for the leader of its key; false: q leads (or the
 * question is not cacheable). */
static bool flight_join(struct qreq *q)
{
    struct query_api *a = q->api;
    if (!cacheable(q) || q->cache != 2)
        return false;
    bool joined = false;
    pthread_mutex_lock(&a->flights_mu);
    struct flight *f = lru_get(a->flights, q->key.p, q->key.len, 0);
    if (f) {
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 8;
            f->waiters = xrealloc(f->waiters, f->cap * sizeof(*f->waiters));
        }
        f->waiters[f->n++] = q;
        joined = true;
    } else {
        lru_put(a->flights, q->key.p, q->key.len, xcalloc(1, sizeof(struct flight)), 0);
        q->leader = true;
    }
    pthread_mutex_unlock(&a->flights_mu);
    return joined;
}

/* The leader's answer, copied to every waiter. */
static void flight_land(struct qreq *q, const struct httpd_response *resp)
{
    struct query_api *a = q->api;
    if (!q->leader)
        return;
    pthread_mutex_lock(&a->flights_mu);
    struct flight *f = lru_get(a->flights, q->key.p, q->key.len, 0);
    struct flight taken = {0};
    if (f) {
        taken = *f;
        f->waiters = NULL;
        lru_remove(a->flights, q->key.p, q->key.len);
    }
    pthread_mutex_unlock(&a->flights_mu);
    for (size_t i = 0; i < taken.n; i++) {
        struct qreq *w = taken.waiters[i];
        struct httpd_response copy = {.status = resp->status, .content_type = resp->content_type};
        copy.body = resp->body ? xmemdup(resp->body, resp->body_len + 1) : NULL;
        copy.body_len = resp->body_len;
        for (int h = 0; h < resp->nheaders; h++)
            httpd_response_header(&copy, resp->headers[h][0], resp->headers[h][1]);
        w->rows = q->rows;
        snprintf(w->served_by, sizeof(w->served_by), "%s", q->served_by);
        w->lag_ms = q->lag_ms;
        snprintf(w->code, sizeof(w->code), "%s", q->code);
        query_finish(w, &copy, true);
    }
    free(taken.waiters);
}

/* ---- the worker's side */
static enum pg_status exec_token(struct qreq *q, struct router_lease *l, struct buf *body,
                                 char *err, size_t errlen)
{
    (void)body;
    return token_lookup(l->conn, q->hash, &q->tok_state, &q->tok, err, errlen);
}

/* A token a replica does not know may have been created a moment ago on
 * the primary: ask the primary before answering 401 (rare: unknown tokens
 * are cached too). */
static void confirm_on_primary(struct qreq *q)
{
    struct router_lease l;
    char err[256];
    if (router_acquire_primary(q->api->router, &l, err, sizeof(err)) != ROUTER_OK)
        return;
    enum pg_status st = exec_token(q, &l, NULL, err, sizeof(err));
    if (st != PG_OK)
        q->tok_state = TOKEN_UNKNOWN;
    router_release(q->api->router, &l, st);
}

static void job_main(void *ud)
{
    struct qreq *q = ud;
    struct query_api *a = q->api;
    struct httpd_response resp = {.status = 200};
    struct buf body = BUF_INIT;
    if (atomic_load(&a->stopping)) {
        query_error(q, &resp, 503, "stopping", "the server is stopping");
        goto out;
    }
    if (!q->tok_known) {
        /* One lookup per token at a time: 1000 requests of a token not yet
         * cached wait for the first one's answer (a stripe lock by hash). */
        pthread_mutex_t *mu = &a->token_locks[strtoul(q->hash + 56, NULL, 16) % TOKEN_LOCKS];
        pthread_mutex_lock(mu);
        bool refresh = false;
        if (q->refresh || !token_cache_get(a->tokens, q->hash, &q->tok_state, &q->tok, &refresh,
                                           time_mono_ms())) {
            uint64_t min_lsn = q->p.min_lsn;
            q->p.min_lsn = 0; /* a token is looked up anywhere */
            int rc = query_run(q, exec_token, NULL, NULL, &resp);
            q->p.min_lsn = min_lsn;
            if (rc != 0) {
                pthread_mutex_unlock(mu);
                goto out;
            }
            if (q->tok_state == TOKEN_UNKNOWN && strcmp(q->served_by, "primary") != 0)
                confirm_on_primary(q);
            token_cache_put(a->tokens, q->hash, q->tok_state, &q->tok, time_mono_ms());
        }
        pthread_mutex_unlock(mu);
        q->served_by[0] = '\0';
        q->tok_known = true;
        if (refuse(q, &resp) || cache_answer(q, &resp))
            goto out;
        if (flight_join(q)) {
            buf_release(&body);
            return;
        }
    }
    if (q->ep == EP_EXPORT) {
        query_export_start(q); /* answers through the stream; owns q now */
        buf_release(&body);
        return;
    }
    query_exec_fn fn = q->ep == EP_STREAMS     ? query_streams_exec
                       : q->ep == EP_STREAM    ? query_stream_exec
                       : q->ep == EP_INCIDENTS ? query_incidents_exec
                       : q->ep == EP_VERIFY    ? query_verify_exec
                                               : query_events_exec;
    struct router_lease l;
    if (query_run(q, fn, &body, &l, &resp) != 0)
        goto out;
    int64_t horizon = l.horizon_us;
    router_release(a->router, &l, PG_OK);
    if (q->status == 404) {
        query_error(q, &resp, 404, "not_found", "no such stream (for this token)");
        goto out;
    }
    query_json(q, &resp, &body, NULL);
    cache_keep(q, &resp, horizon);
out:
    buf_release(&body);
    flight_land(q, &resp);
    query_finish(q, &resp, true);
}

/* ---- the HTTP thread's side */
static enum qep classify(const char *path, char *id, size_t idlen, bool *ours)
{
    *ours = true;
    for (int e = 0; e < EP_COUNT; e++)
        if (e != EP_STREAM && e != EP_VERIFY && strcmp(path, ep_paths[e]) == 0)
            return (enum qep)e;
    const char *pre = "/v1/streams/", *rest = path + strlen(pre);
    if (strncmp(path, pre, strlen(pre)) == 0) {
        const char *slash = strchr(rest, '/');
        if (!slash) {
            snprintf(id, idlen, "%s", rest);
            return EP_STREAM;
        }
        if (strcmp(slash, "/verify") == 0) {
            snprintf(id, idlen, "%.*s", (int)(slash - rest), rest);
            return EP_VERIFY;
        }
    }
    *ours = strncmp(path, "/v1/", 4) == 0 || strncmp(path, "/fhir/", 6) == 0;
    return EP_COUNT;
}

struct take_ctx {
    struct qreq *q;
};

static bool take_arg(void *ud, const char *name, const char *value)
{
    struct qreq *q = ((struct take_ctx *)ud)->q;
    if (q->perr_set)
        return false;
    int rc;
    if (q->ep == EP_FHIR)
        rc = query_fhir_take(q, name, value);
    else
        rc = qparams_take(&q->p, kind_of(q->ep), name, value, &q->perr);
    if (rc != 0)
        q->perr_set = true;
    return rc == 0;
}

static void status_body(struct query_api *a, query_ingest_fn ingest, void *ud,
                        struct httpd_response *resp)
{
    struct buf b = BUF_INIT;
    uint64_t lsn = 0;
    int64_t at = 0;
    char s[24];
    BUF_LIT(&b, "{\"last_commit_lsn\":");
    if (ingest && ingest(ud, &lsn, &at) && lsn) {
        pg_lsn_format(lsn, s);
        jsonw_cstr(&b, s);
        BUF_LIT(&b, ",\"last_commit_time\":");
        render_time(&b, at);
    } else {
        BUF_LIT(&b, "null,\"last_commit_time\":null");
    }
    BUF_LIT(&b, ",\"primary_lsn\":");
    uint64_t plsn = a ? router_primary_lsn(a->router) : 0;
    if (plsn) {
        pg_lsn_format(plsn, s);
        jsonw_cstr(&b, s);
    } else {
        BUF_LIT(&b, "null");
    }
    buf_addc(&b, '}');
    resp->status = 200;
    resp->body = buf_detach(&b, &resp->body_len);
    resp->content_type = JSON_CT;
    httpd_response_header(resp, "Cache-Control", "no-store");
}

bool query_status_route(void *ud, const struct httpd_request *req, struct httpd_response *resp)
{
    const struct query_status *s = ud;
    if (strcmp(httpd_request_path(req), "/v1/status") != 0)
        return false;
    status_body(NULL, s->ingest, s->ud, resp);
    return true;
}

/* The Bearer token of the request: true with q->hash set. */
static bool bearer(struct qreq *q)
{
    const char *h = httpd_request_header(q->hreq, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    if (!token_well_formed(t))
        return false;
    token_hash_hex(t, q->hash);
    return true;
}

static char *base_url(struct qreq *q)
{
    const struct aggr_query_conf *qc = q->api->qc;
    if (qc->public_url && *qc->public_url)
        return xstrdup(qc->public_url);
    const char *host = httpd_request_header(q->hreq, "Host");
    bool tls = qc->tls_cert && *qc->tls_cert;
    /* a Host header is the client's own word: keep only what a host:port
     * may hold, so a link never carries markup or another URL */
    char h[256] = "localhost";
    if (host && strlen(host) < sizeof(h) &&
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") ==
            strlen(host))
        snprintf(h, sizeof(h), "%s", host);
    return xasprintf("%s://%s", tls ? "https" : "http", h);
}

enum httpd_route query_api_route(void *ud, struct httpd_request *req, struct httpd_response *resp)
{
    struct query_api *a = ud;
    char id[64] = "";
    bool ours;
    enum qep ep = classify(httpd_request_path(req), id, sizeof(id), &ours);
    if (!ours)
        return HTTPD_NOT_MINE;
    if (ep == EP_STATUS) {
        status_body(a, a->ingest, a->ingest_ud, resp);
        return HTTPD_ANSWERED;
    }
    struct qreq *q = xcalloc(1, sizeof(*q));
    q->api = a;
    q->hreq = req;
    q->t0_us = time_mono_us();
    q->ep = ep == EP_COUNT ? EP_EVENTS : ep;
    const char *accept = httpd_request_header(req, "Accept");
    q->fhir = ep == EP_FHIR || (ep == EP_EVENTS && accept && strstr(accept, FHIR_CT));
    httpd_request_client(req, q->client, sizeof(q->client));
    metric_add(a->inflight, 1);
    const char *method = httpd_request_method(req);
    if (ep == EP_COUNT) {
        query_error(q, resp, 404, "not_found", "no such endpoint");
        goto answered;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        query_error(q, resp, 405, "method_not_allowed", "only GET and HEAD are served");
        httpd_response_header(resp, "Allow", "GET, HEAD");
        goto answered;
    }
    if (ep == EP_STREAM || ep == EP_VERIFY) {
        snprintf(q->stream_id, sizeof(q->stream_id), "%s", id);
        if (!qp_stream_id_ok(id)) {
            query_error(q, resp, 404, "not_found", "no such stream (ids are 32 hex characters)");
            goto answered;
        }
    }
    if (atomic_load(&a->stopping)) {
        query_error(q, resp, 503, "stopping", "the server is stopping");
        goto answered;
    }
    if (q->fhir)
        q->base_url = base_url(q);
    /* Parameters first (pure), reported after the token's verdict. */
    if (httpd_request_has_nul(req)) {
        q->perr = (struct qp_error){.status = 400};
        snprintf(q->perr.code, sizeof(q->perr.code), "nul_byte");
        snprintf(q->perr.msg, sizeof(q->perr.msg), "parameters may not contain NUL bytes");
        q->perr_set = true;
    } else {
        struct take_ctx tc = {q};
        httpd_request_args(req, take_arg, &tc);
    }
    if (!bearer(q)) {
        q->tok_known = true;
        q->tok_state = TOKEN_UNKNOWN;
        query_error(q, resp, 401, "unauthorized",
                    "an API token is required: Authorization: Bearer atr_…");
        goto answered;
    }
    q->tok_known =
        token_cache_get(a->tokens, q->hash, &q->tok_state, &q->tok, &q->refresh, time_mono_ms()) &&
        !q->refresh;
    if (q->tok_known && (refuse(q, resp) || cache_answer(q, resp)))
        goto answered;
    atomic_fetch_add(&a->pending, 1);
    if (q->tok_known && flight_join(q))
        return HTTPD_LATER; /* the same question is being answered: share it */
    if (workq_submit(a->wq, job_main, q) != 0) {
        atomic_fetch_sub(&a->pending, 1);
        metric_inc(a->rejected);
        query_error(q, resp, 503, "busy", "too many requests in progress (query.queue_max)");
        goto answered;
    }
    return HTTPD_LATER;
answered:
    query_finish(q, resp, false);
    metric_add(a->inflight, -1);
    qreq_free(q);
    return HTTPD_ANSWERED;
}
