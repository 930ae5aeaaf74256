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
    for (int r = 1; r < PRODUCER_RESULTS; r++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "class=\"%s\"",
                 producer_result_name((enum producer_result)r));
        am->delivery_errors[r] = metrics_counter(
            m, P "delivery_errors_total",
            "Failed deliveries (the stream is re-read), by class: transient, too_large (cut to "
            "fit), authorization and permanent (alerted)",
            labels);
    }
    am->message_max_bytes = metrics_gauge(
        m, P "message_max_bytes",
        "Largest message the agent produces: the producer's message.max.bytes, or less once "
        "the broker refused a message as too large (records are cut to fit)",
        NULL);
    am->records_rewound = metrics_counter(
        m, P "rewinds_total", "Streams rewound to their checkpoint after a failed delivery", NULL);
    am->records_lost = metrics_counter(
        m, P "records_lost_total",
        "Records given up: failed delivery after their file was truncated (they cannot be read "
        "again), or not shipped when the agent stopped (drain_timeout_s)",
        NULL);
    am->files_lost = metrics_counter(
        m, P "files_lost_total",
        "Files given up while not open: gone (deleted, moved out of their directory) or "
        "replaced before the agent could read past its checkpoint; whatever they held beyond "
        "it cannot be counted",
        NULL);
    am->files_recovered = metrics_counter(
        m, P "files_recovered_total",
        "Files found only after they had left a globbed name unseen (renamed before a scan, "
        "or by the sweep after an inotify overflow or a restart) and read from there",
        NULL);
    for (int v = 1; v <= TAIL_GUARD_REFUSALS; v++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "reason=\"%s\"",
                 tail_guard_reason((enum tail_guard_verdict)v));
        am->files_refused[v] = metrics_counter(
            m, P "files_refused_total",
            "Names matching an input that are not read: symbolic links (agent.follow_symlinks), "
            "links leaving their directory, FIFOs, sockets, devices, files on /proc or /sys",
            labels);
    }
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
    am->checkpoint_fallbacks = metrics_counter(
        m, P "checkpoint_fallbacks_total",
        "Starts whose latest checkpoint could not be read: the previous generation was used, or "
        "none (records are sent again from older positions)",
        NULL);
    am->rescans = metrics_counter(m, P "rescans_total", "Glob rescans", NULL);
    am->inotify_overflows =
        metrics_counter(m, P "inotify_overflows_total", "inotify queue overflows", NULL);
    am->kafka_fatal = metrics_gauge(m, P "kafka_fatal", "1 after a fatal producer error", NULL);
    am->kafka_up = metrics_gauge(m, P "kafka_up", "1 while a Kafka broker is reachable", NULL);
    am->buffered_bytes = metrics_gauge(m, P "framer_buffered_bytes",
                                       "Bytes held in line/record buffers of open files", NULL);
}
