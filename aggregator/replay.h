/* Replay from Kafka: move the offsets stored in PostgreSQL back so that the
 * aggregators consume a range again. Safe while they run: their next commit
 * finds the stored offset changed (the compare-and-set fails), they reload
 * it and seek; everything already stored is dropped as a re-send by the
 * per-stream rule, so only what is missing is written. Replay reaches as far
 * back as Kafka still retains the topic. */
#ifndef AUDITRAIL_AGGREGATOR_REPLAY_H
#define AUDITRAIL_AGGREGATOR_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* For (group, topic): partition -1 = every partition with a stored offset.
 * offset -1 = from the beginning of what Kafka retains (the stored rows are
 * deleted, which the consumers read as "start from the earliest offset");
 * otherwise the partition's next offset becomes `offset` (inserted when
 * absent; a specific offset needs a specific partition). Returns 0 and the
 * number of partitions changed in *changed, or -1 with a message. */
int replay_set_offsets(const char *conninfo, const char *group, const char *topic,
                       int32_t partition, int64_t offset, size_t *changed, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
