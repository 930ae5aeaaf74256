/* Registration of the agent's series; names are documented in README. */
#include "agent/agent_metrics.h"

#include <stdio.h>

#define P "auditrail_agent_"

void agent_metrics_init(struct agent_metrics *am, struct metrics *m)
{
    am->records_read =
        metrics_counter(m, P "records_read_total", "Records framed from files", NULL);
    am->bytes_read = metrics_counter(m, P "bytes_read_total", "Bytes read from files", NULL);
    am->records_produced = metrics_counter(m, P "records_produced_total",
                                           "Records handed to the Kafka producer", NULL);
    am->records_acked =
        metrics_counter(m, P "records_acked_total", "Records acknowledged by Kafka", NULL);
    am->delivery_errors = metrics_counter(m, P "delivery_errors_total",
                                          "Failed deliveries (the stream is re-read)", NULL);
    am->records_rewound = metrics_counter(
        m, P "rewinds_total", "Streams rewound to their checkpoint after a failed delivery", NULL);
    am->records_lost = metrics_counter(
        m, P "records_lost_total",
        "Records whose delivery failed after their file was truncated (cannot be re-read)", NULL);
    for (int k = 0; k < FORMAT_COUNT; k++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "format=\"%s\"", format_kind_name((enum format_kind)k));
        am->parse_errors[k] =
            metrics_counter(m, P "parse_errors_total",
                            "Records the format parser could not read (shipped raw)", labels);
        am->produced_by_format[k] =
            metrics_counter(m, P "records_produced_by_format_total",
                            "Records handed to the Kafka producer, by input format", labels);
    }
    am->records_truncated =
        metrics_counter(m, P "records_truncated_total", "Records cut to max_record_bytes", NULL);
    am->truncated_bytes =
        metrics_counter(m, P "truncated_bytes_total", "Bytes cut off long records", NULL);
    am->file_truncations = metrics_counter(
        m, P "file_truncations_total", "Files truncated in place (copytruncate): new stream", NULL);
    am->rotations =
        metrics_counter(m, P "rotations_total", "Files rotated away (renamed or replaced)", NULL);
    am->inode_reuses = metrics_counter(m, P "inode_reuses_total",
                                       "Known inodes found holding a different file", NULL);
    am->files_deleted =
        metrics_counter(m, P "files_deleted_total", "Files deleted while open", NULL);
    am->open_files = metrics_gauge(m, P "open_files", "Files open now", NULL);
    am->open_files_max = metrics_gauge(m, P "open_files_max", "agent.max_open_files", NULL);
    am->files_waiting = metrics_gauge(m, P "files_waiting",
                                      "Files found but not opened because of max_open_files", NULL);
    am->streams =
        metrics_gauge(m, P "streams", "Streams tracked (open or in the checkpoint)", NULL);
    am->backpressure_paused = metrics_gauge(
        m, P "backpressure_paused", "1 while reading is paused by the in-flight limit", NULL);
    am->unacked_bytes =
        metrics_gauge(m, P "unacked_bytes", "Produced message bytes not yet acknowledged", NULL);
    am->unacked_records =
        metrics_gauge(m, P "unacked_records", "Produced records not yet acknowledged", NULL);
    am->oldest_unacked_age = metrics_gauge(m, P "oldest_unacked_age_seconds",
                                           "Age of the oldest unacknowledged record", NULL);
    am->deleted_open_bytes = metrics_gauge(
        m, P "deleted_open_bytes", "Size of deleted files still held open to drain them", NULL);
    am->backlog_bytes = metrics_gauge(
        m, P "backlog_bytes",
        "Bytes of the open files not yet acknowledged by Kafka (unread or in flight)", NULL);
    am->checkpoint_writes =
        metrics_counter(m, P "checkpoint_writes_total", "Checkpoint files written", NULL);
    am->checkpoint_errors =
        metrics_counter(m, P "checkpoint_errors_total", "Checkpoint writes that failed", NULL);
    am->rescans = metrics_counter(m, P "rescans_total", "Glob rescans", NULL);
    am->inotify_overflows =
        metrics_counter(m, P "inotify_overflows_total", "inotify queue overflows", NULL);
    am->kafka_fatal = metrics_gauge(m, P "kafka_fatal", "1 after a fatal producer error", NULL);
    am->kafka_up = metrics_gauge(m, P "kafka_up", "1 while a Kafka broker is reachable", NULL);
    am->buffered_bytes = metrics_gauge(m, P "framer_buffered_bytes",
                                       "Bytes held in line/record buffers of open files", NULL);
}
