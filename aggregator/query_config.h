/* The `query` section of the aggregator's configuration (the read path:
 * DESIGN.md §7): its struct, its key table and the checks across its keys. */
#ifndef AUDITRAIL_AGGREGATOR_QUERY_CONFIG_H
#define AUDITRAIL_AGGREGATOR_QUERY_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

struct aggr_query_conf {
    char *listen;             /* "" = the API is served on http.listen */
    char *tls_cert, *tls_key; /* PEM files; both or neither */
    char *public_url;         /* base of FHIR links; "" = from the Host header */
    bool replica_only;
    int64_t pool_size, timeout_ms, acquire_timeout_ms, workers, queue_max;
    int64_t min_lsn_wait_ms, max_range_days;
    char *cursor_key; /* secret; "" = a random key per process */
    int64_t cache_bytes, cache_ttl_s, cache_ttl_immutable_s, cache_immutable_margin_s;
    int64_t token_cache_s;
    char *audit_log; /* "" = requests are not audited (a warning at start) */
    int64_t max_connections, connection_timeout_s, threads;
    int64_t export_chunk_bytes;
};

extern const struct cfg_key aggr_query_keys[];

/* Checks across the section's keys (cfg_check_fail's -1, or 0). */
int aggr_query_conf_check(struct cfg_check *chk, const struct aggr_query_conf *q);

#endif
