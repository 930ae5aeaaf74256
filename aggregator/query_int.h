/* Inside the query API: the state shared by query_api.c (routing, auth,
 * answers, audit, metrics) and the endpoint files (query_events.c,
 * query_export.c, query_streams.c, query_fhir.c, query_verify.c). */
#ifndef AUDITRAIL_AGGREGATOR_QUERY_INT_H
#define AUDITRAIL_AGGREGATOR_QUERY_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "aggregator/query_api.h"
#include "aggregator/query_cache.h"
#include "aggregator/query_params.h"
#include "aggregator/router.h"
#include "aggregator/tokens.h"
#include "common/buf.h"

#define TOKEN_LOCKS 64

enum qep {
    EP_EVENTS,
    EP_EXPORT,
    EP_STREAMS,
    EP_STREAM,
    EP_INCIDENTS,
    EP_FHIR,
    EP_STATUS,
    EP_VERIFY,
    EP_COUNT
};

struct query_api {
    const struct aggr_config *cfg;
    const struct aggr_query_conf *qc;
    struct router *router;
    struct workq *wq;
    struct token_cache *tokens;
    struct query_cache *cache;
    struct query_audit *audit;
    uint8_t cursor_key[QP_KEY_LEN];
    atomic_bool stopping;
    atomic_int pending; /* requests handed to workers, not yet answered */
    query_ingest_fn ingest;
    void *ingest_ud;
    struct metric *requests[EP_COUNT][5]; /* by status class 1xx..5xx - 1 */
    struct metric *latency[EP_COUNT];
    struct metric *inflight, *rejected, *audit_errors, *exports;
    pthread_mutex_t flights_mu; /* questions being answered, by cache key */
    struct lru *flights;
    pthread_mutex_t token_locks[TOKEN_LOCKS]; /* one lookup per token at a time */
};

/* One request, from the HTTP thread to its answer. */
struct qreq {
    struct query_api *api;
    struct httpd_request *hreq;
    enum qep ep;
    bool fhir;          /* answer as FHIR (Bundle / OperationOutcome) */
    char stream_id[64]; /* /v1/streams/{id}, /v1/streams/{id}/verify */
    char hash[TOKEN_HASH_HEX];
    bool has_token, tok_known;
    bool refresh; /* the cached lookup is due: this request refreshes it */
    enum token_state tok_state;
    struct token_info tok;
    const char *scope; /* tenant the SQL is restricted to; NULL = every tenant */
    struct qparams p;
    struct qp_error perr; /* a parameter refused (checked after auth) */
    bool perr_set;
    char *base_url; /* FHIR links */
    char client[64];
    uint64_t t0_us;
    uint8_t cur[QP_CURSOR_MAX]; /* the cursor's keyset position */
    size_t cur_len;
    bool has_cur;
    struct buf key;     /* cache key (normalized query, scope, format) */
    struct buf binding; /* what cursors are bound to */
    /* outcome, for headers, audit and metrics */
    int status;
    unsigned rows;
    char served_by[96];
    int64_t lag_ms;
    int cache; /* 0 not cacheable, 1 hit, 2 miss */
    char code[32];
    bool deferred; /* an export: metrics and audit when it ends (query_done) */
    bool leader;   /* answers for the others asking the same (single flight) */
};

/* Run fn on a leased connection with the router's retry rule (once more on
 * another host after a replica's conflict or lost connection). On success
 * the lease is released unless keep is not NULL (then it is the caller's,
 * in *keep). 0, or -1 after the answer (503/500) was put in resp. */
typedef enum pg_status (*query_exec_fn)(struct qreq *q, struct router_lease *l, struct buf *body,
                                        char *err, size_t errlen);
int query_run(struct qreq *q, query_exec_fn fn, struct buf *body, struct router_lease *keep,
              struct httpd_response *resp);

/* Run a prepared page query asked for limit + 1 rows: *res, the rows to
 * show in *n and whether more follow. */
enum pg_status query_page(struct router_lease *l, const char *stmt, int np,
                          const char *const *params, unsigned limit, PGresult **res, int *n,
                          bool *more, char *err, size_t errlen);

/* Answers. */
void query_error(struct qreq *q, struct httpd_response *resp, int status, const char *code,
                 const char *msg);
void query_json(struct qreq *q, struct httpd_response *resp, struct buf *body, const char *ctype);
/* Common headers, metrics and the audit line; then httpd_complete (async)
 * or leave resp for the caller (sync). */
void query_finish(struct qreq *q, struct httpd_response *resp, bool async);
/* A deferred request's end: metrics, audit line, free. */
void query_done(struct qreq *q);
void qreq_free(struct qreq *q);

/* Endpoints. */
enum pg_status query_events_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                 char *err, size_t errlen);
/* events SQL parameters for q (values in vals[], texts valid while q and
 * vals live). limit < 0 = no limit. */
void query_events_params(const struct qreq *q, long limit, char vals[5][PG_TIME_TEXT_LEN],
                         const char *params[12]);
enum pg_status query_streams_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                  char *err, size_t errlen);
enum pg_status query_stream_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                 char *err, size_t errlen);
enum pg_status query_incidents_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                    char *err, size_t errlen);
/* GET /v1/streams/{id}/verify (query_verify.c). */
enum pg_status query_verify_exec(struct qreq *q, struct router_lease *l, struct buf *body,
                                 char *err, size_t errlen);
/* Start an export on a worker (the request is answered by the stream). */
void query_export_start(struct qreq *q);
/* FHIR search parameters (date=ge…&date=lt…, agent, entity, action,
 * outcome, _count, _cursor, tenant). 0, or -1 with q->perr set. */
int query_fhir_take(struct qreq *q, const char *name, const char *value);
void query_fhir_outcome(struct buf *out, const char *severity, const char *code, const char *msg);
/* A URL of the same search at another position (cursor NULL = self). */
void query_fhir_link(const struct qreq *q, const char *cursor, struct buf *out);

#endif
