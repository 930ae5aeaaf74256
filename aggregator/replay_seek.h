/* Where a replay by time starts in one Kafka partition: the first offset
 * whose message timestamp is at or after a time. Asked of the broker first
 * (offsetsForTimes); when it has no answer — librdkafka's mock cluster never
 * has one, a real broker has none when every message is older — a binary
 * search over message timestamps between the low and high watermarks
 * (fetching one message per probe). The lookups are an interface, so that
 * the search is tested against a stub. */
#ifndef AUDITRAIL_AGGREGATOR_REPLAY_SEEK_H
#define AUDITRAIL_AGGREGATOR_REPLAY_SEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct replay_lookup {
    /* The broker's offsetsForTimes: 0 with *off (-1: no answer), or -1 on
     * an error (err set). */
    int (*offset_for_time)(void *ud, int32_t partition, int64_t ts_ms, int64_t *off, char *err,
                           size_t errlen);
    /* The first message at an offset >= off and < end: 0 with its
     * timestamp (ms; INT64_MIN when it has none) and offset, 1 when there
     * is none, -1 on an error (err set). */
    int (*message_at)(void *ud, int32_t partition, int64_t off, int64_t end, int64_t *ts_ms,
                      int64_t *at, char *err, size_t errlen);
    void *ud;
};

/* The first offset in [lo, hi) whose message has a timestamp >= ts_ms, or
 * hi when there is none (timestamps are taken as non-decreasing: with
 * out-of-order timestamps the search finds one such boundary). *searched
 * tells whether the binary search ran (the broker had no answer). 0, or -1
 * with err. */
int replay_seek_time(const struct replay_lookup *l, int32_t partition, int64_t lo, int64_t hi,
                     int64_t ts_ms, int64_t *off, bool *searched, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
