/* What to do when a Kafka partition's log no longer holds our position
 * (topic recreated, truncated by an unclean leader election, log start moved
 * past it by retention): which kind of reset it is and where to read from.
 * Pure: consume.c asks the broker for the watermarks and acts. */
#ifndef AUDITRAIL_AGGREGATOR_OFFSET_RESET_H
#define AUDITRAIL_AGGREGATOR_OFFSET_RESET_H

#include <stdbool.h>
#include <stdint.h>

enum offset_reset_kind {
    OFFSET_RESET_LOG_END = 0, /* our position is past the log end: recreated or truncated */
    OFFSET_RESET_LOG_START,   /* the log starts past our position: messages deleted unread */
    OFFSET_RESET_BACKWARDS,   /* a message below our position that no seek of ours explains */
    OFFSET_RESET_KIND_COUNT,
    OFFSET_RESET_NONE = OFFSET_RESET_KIND_COUNT /* the position is inside the log again */
};

/* "log_end", "log_start", "backwards" (metric labels), "none". */
const char *offset_reset_kind_name(enum offset_reset_kind k);

/* Classify a position `at` that failed (out of range), or a message seen at
 * `at` below our position (backwards), against the log's watermarks [lo, hi).
 * *restart receives where to read from: the log start for every reset — the
 * per-stream exact rule drops what was stored already, and nothing in a
 * recreated or failed-over log can be known to be stored; `at` itself when
 * it is inside the log (OFFSET_RESET_NONE). *skipped receives the offsets
 * the log lost before they were read (lo - at for LOG_START, else 0). */
enum offset_reset_kind offset_reset_classify(int64_t at, int64_t lo, int64_t hi, bool backwards,
                                             int64_t *restart, int64_t *skipped);

#endif
