/* The agent's metric series (registered once; no per-file labels). */
#ifndef AUDITRAIL_AGENT_METRICS_H
#define AUDITRAIL_AGENT_METRICS_H

#include "agent/format.h"
#include "agent/producer.h"
#include "agent/tail_guard.h"
#include "common/metrics.h"

struct agent_metrics {
    struct metric *records_read, *bytes_read, *records_produced, *records_acked;
    struct metric *delivery_errors[PRODUCER_RESULTS]; /* by class, [0] unused */
    struct metric *records_rewound, *records_lost, *message_max_bytes;
    struct metric *parse_errors[FORMAT_COUNT];
    struct metric *produced_by_format[FORMAT_COUNT]; /* records_produced_total by input format */
    struct metric *records_truncated, *truncated_bytes;
    struct metric *file_truncations, *rotations, *inode_reuses, *files_deleted;
    struct metric *open_files, *open_files_max, *files_waiting, *streams;
    struct metric *backpressure_paused, *unacked_bytes, *unacked_records, *oldest_unacked_age;
    struct metric *deleted_open_bytes, *backlog_bytes;
    struct metric *checkpoint_writes, *checkpoint_errors, *checkpoint_fallbacks;
    struct metric *rescans, *inotify_overflows, *kafka_fatal, *kafka_up;
    struct metric *buffered_bytes;
    struct metric *files_refused[TAIL_GUARD_REFUSALS + 1]; /* by verdict, [0] unused */
    struct metric *files_recovered, *files_lost;
};

void agent_metrics_init(struct agent_metrics *am, struct metrics *m);

#endif
