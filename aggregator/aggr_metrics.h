/* The aggregator's metric series, registered once at start; the loop updates
 * them, /metrics renders them from libmicrohttpd's threads (metrics are
 * atomic). Labels are fixed sets (layer, reason, kind, result, breaker) plus
 * partition for the lag gauge, bounded by the topic's partition count. */
#ifndef AUDITRAIL_AGGREGATOR_AGGR_METRICS_H
#define AUDITRAIL_AGGREGATOR_AGGR_METRICS_H

#include <stdint.h>

#include "aggregator/offset_reset.h"
#include "aggregator/pg_writer.h"
#include "aggregator/validate.h"

struct metrics;
struct metric;

enum dup_layer { DUP_BATCH = 0, DUP_LRU, DUP_REDIS, DUP_STREAM, DUP_PK, DUP_LAYER_COUNT };
enum incident_kind { INCIDENT_FORK = 0, INCIDENT_GAP, INCIDENT_CHAIN_BREAK, INCIDENT_KIND_COUNT };

struct aggr_metrics {
    struct metrics *reg; /* not owned */
    struct metric *consumed, *inserted, *rebalances, *seek_gaps, *keyless;
    struct metric *duplicates[DUP_LAYER_COUNT];
    struct metric *dlq[VALIDATE_REASON_COUNT]; /* [VALIDATE_OK] unused */
    struct metric *dlq_failures, *dlq_truncated;
    struct metric *offset_resets[OFFSET_RESET_KIND_COUNT], *offsets_skipped;
    struct metric *batch_size, *batch_seconds, *batch_cuts;
    struct metric *batch_results[PG_STATUS_COUNT];
    struct metric *partitions_created, *partitions_dropped, *partitions_kept;
    struct metric *incidents[INCIDENT_KIND_COUNT];
    struct metric *breaker_pg, *breaker_redis, *breaker_dlq;
    struct metric *redis_errors, *redis_skipped;
    struct metric *assigned, *paused, *ready;
    struct metric *write_inflight, *fields_cut;
};

void aggr_metrics_init(struct aggr_metrics *am, struct metrics *reg);
/* The lag gauge of one partition (registered on first use). */
struct metric *aggr_metrics_lag(struct aggr_metrics *am, int32_t partition);

#endif
