/* Registration of the aggregator's metrics (names in one place). */
#include "aggregator/aggr_metrics.h"

#include <stdio.h>

#include "aggregator/pg_writer.h"
#include "common/metrics.h"

#define P "auditrail_aggregator_"

static const char *const layer_names[DUP_LAYER_COUNT] = {"batch", "lru", "redis", "stream", "pk"};
static const char *const kind_names[INCIDENT_KIND_COUNT] = {"fork", "gap", "chain_break"};

/* The batch transactions': sizes, times, cuts and results. */
static void batch_metrics_init(struct aggr_metrics *am, struct metrics *reg)
{
    char l[96];
    static const double size_bounds[] = {1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 50000};
    static const double sec_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   5};
    am->batch_size =
        metrics_histogram(reg, P "batch_rows",
                          "rows per committed batch transaction (a batch cut for "
                          "the writers commits in several)",
                          NULL, size_bounds, sizeof(size_bounds) / sizeof(*size_bounds));
    am->batch_seconds =
        metrics_histogram(reg, P "batch_write_seconds", "PostgreSQL time per batch transaction",
                          NULL, sec_bounds, sizeof(sec_bounds) / sizeof(*sec_bounds));
    am->batch_cuts = metrics_counter(
        reg, P "batch_cuts_total",
        "batches cut by partition into concurrent transactions (writer.connections > 1)", NULL);
    for (int i = 0; i < PG_STATUS_COUNT; i++) {
        snprintf(l, sizeof(l), "result=\"%s\"", pg_status_name((enum pg_status)i));
        am->batch_results[i] =
            metrics_counter(reg, P "batch_writes_total", "batch transactions by result", l);
    }
}

void aggr_metrics_init(struct aggr_metrics *am, struct metrics *reg)
{
    char l[96];
    am->reg = reg;
    am->consumed = metrics_counter(reg, P "consumed_total", "Kafka messages consumed", NULL);
    am->inserted = metrics_counter(reg, P "inserted_total", "rows newly stored", NULL);
    am->rebalances =
        metrics_counter(reg, P "rebalances_total", "partition assignments and revocations", NULL);
    am->seek_gaps = metrics_counter(reg, P "offset_gaps_total",
                                    "messages whose offset skipped past the expected one", NULL);
    am->keyless = metrics_counter(reg, P "messages_without_key_total",
                                  "messages without a Kafka key (accepted; the agent always sets "
                                  "the stream id)",
                                  NULL);
    for (int i = 0; i < DUP_LAYER_COUNT; i++) {
        snprintf(l, sizeof(l), "layer=\"%s\"", layer_names[i]);
        am->duplicates[i] = metrics_counter(reg, P "duplicates_total",
                                            "re-sent records dropped, by dedupe layer", l);
    }
    for (int i = 1; i < VALIDATE_REASON_COUNT; i++) {
        snprintf(l, sizeof(l), "reason=\"%s\"", validate_reason_name((enum validate_reason)i));
        am->dlq[i] = metrics_counter(reg, P "dlq_messages_total",
                                     "messages sent to the DLQ topic, by reason class", l);
    }
    am->dlq_failures = metrics_counter(reg, P "dlq_delivery_failures_total",
                                       "DLQ deliveries that failed (retried)", NULL);
    am->dlq_truncated = metrics_counter(reg, P "dlq_truncated_total",
                                        "DLQ copies cut to a prefix to fit "
                                        "kafka.dlq_max_message_bytes (or the DLQ topic's limit)",
                                        NULL);
    for (int i = 0; i < OFFSET_RESET_KIND_COUNT; i++) {
        snprintf(l, sizeof(l), "kind=\"%s\"", offset_reset_kind_name((enum offset_reset_kind)i));
        am->offset_resets[i] =
            metrics_counter(reg, P "offset_resets_total",
                            "Kafka partitions whose log no longer held the position (read again "
                            "from the log start), by kind",
                            l);
    }
    am->offsets_skipped = metrics_counter(
        reg, P "offsets_skipped_total",
        "offsets a partition's log deleted before they were read (offset reset log_start)", NULL);
    batch_metrics_init(am, reg);
    am->partitions_created =
        metrics_counter(reg, P "partitions_created_total", "daily event partitions created", NULL);
    am->partitions_dropped = metrics_counter(reg, P "partitions_dropped_total",
                                             "daily event partitions dropped by retention", NULL);
    am->partitions_kept = metrics_counter(
        reg, P "retention_kept_total",
        "expired partitions retention kept because they were written within the last "
        "maintenance period",
        NULL);
    for (int i = 0; i < INCIDENT_KIND_COUNT; i++) {
        snprintf(l, sizeof(l), "kind=\"%s\"", kind_names[i]);
        am->incidents[i] = metrics_counter(reg, P "integrity_incidents_total",
                                           "integrity incidents recorded, by kind", l);
    }
    am->breaker_pg = metrics_gauge(reg, P "breaker_state",
                                   "circuit breaker state: 0 closed, 1 open, 2 half-open",
                                   "breaker=\"postgres\"");
    am->breaker_redis =
        metrics_gauge(reg, P "breaker_state",
                      "circuit breaker state: 0 closed, 1 open, 2 half-open", "breaker=\"redis\"");
    am->breaker_dlq =
        metrics_gauge(reg, P "breaker_state",
                      "circuit breaker state: 0 closed, 1 open, 2 half-open", "breaker=\"dlq\"");
    am->redis_errors =
        metrics_counter(reg, P "redis_errors_total", "Redis calls that failed", NULL);
    am->redis_skipped = metrics_counter(
        reg, P "redis_dedupe_skipped_total",
        "batches whose Redis dedupe lookup was skipped (Redis down or breaker open)", NULL);
    am->assigned = metrics_gauge(reg, P "assigned_partitions",
                                 "Kafka partitions assigned to this process", NULL);
    am->paused = metrics_gauge(reg, P "paused",
                               "1 while consumption is paused (breaker open or "
                               "retrying a batch)",
                               NULL);
    am->ready = metrics_gauge(reg, P "ready", "1 when /readyz reports ready", NULL);
    am->write_inflight =
        metrics_gauge(reg, P "write_inflight_seconds",
                      "how long the PostgreSQL call in progress has run (0: none); above "
                      "postgres.write_stall_ms the process is not ready",
                      NULL);
    am->fields_cut = metrics_counter(
        reg, P "fields_cut_total",
        "rows stored with an indexed field (tenant, actor, action, resource, outcome) cut to "
        "512 bytes; the whole value stays in raw",
        NULL);
}

struct metric *aggr_metrics_lag(struct aggr_metrics *am, int32_t partition)
{
    char l[48];
    snprintf(l, sizeof(l), "partition=\"%d\"", (int)partition);
    return metrics_gauge(am->reg, P "consumer_lag",
                         "messages behind the partition's high watermark", l);
}
