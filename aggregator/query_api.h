/* The query API (DESIGN.md §7): /v1/events, /v1/events/export, /v1/streams,
 * /v1/streams/{id}, /v1/incidents, /fhir/AuditEvent and /v1/status, as an
 * asynchronous route of common/httpd. Requests are checked (token, role,
 * parameters, tenant) on the HTTP thread; database work runs on a worker
 * pool through the replica router, and the connection is suspended
 * meanwhile. Thread-safe; see README "Query API" for the contract. */
#ifndef AUDITRAIL_AGGREGATOR_QUERY_API_H
#define AUDITRAIL_AGGREGATOR_QUERY_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/aggr_config.h"
#include "common/httpd.h"

struct metrics;
struct query_api;

/* The ingest side's last commit, for /v1/status (NULL: no consumer here). */
typedef bool (*query_ingest_fn)(void *ud, uint64_t *lsn, int64_t *commit_us);

/* Start the router (health checks), the workers, the caches and the audit
 * log. cfg and m must outlive it. NULL with err set when something cannot
 * start (TLS files, audit log). */
struct query_api *query_api_new(const struct aggr_config *cfg, struct metrics *m, char *err,
                                size_t errlen) __attribute__((warn_unused_result));
void query_api_set_ingest(struct query_api *a, query_ingest_fn fn, void *ud);
/* The httpd async route (ud = the query_api). */
enum httpd_route query_api_route(void *ud, struct httpd_request *req, struct httpd_response *resp);
/* Refuse new requests (503) and wait up to timeout_ms for those in
 * progress to be answered: call before stopping the httpd. */
void query_api_quiesce(struct query_api *a, unsigned timeout_ms);
/* Stop workers and health checks (after the httpd stopped). NULL-safe. */
void query_api_free(struct query_api *a);

/* /v1/status for a process without the API (role consumer): an httpd
 * synchronous handler; ud is a struct query_status. */
struct query_status {
    query_ingest_fn ingest;
    void *ud;
};
bool query_status_route(void *ud, const struct httpd_request *req, struct httpd_response *resp);

/* Metric families of the API (for --metrics-reference). */
void query_api_register_metrics(struct metrics *m);

#endif
