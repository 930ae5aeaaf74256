/* A batch: decoded envelopes from one or more Kafka partitions, plus for each
 * partition the offset range it covers, committed together in one PostgreSQL
 * transaction (DESIGN.md §4). Owned by the consumer thread. */
#ifndef AUDITRAIL_AGGREGATOR_BATCH_H
#define AUDITRAIL_AGGREGATOR_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"

struct batch_row {
    struct envelope env; /* owned by the batch */
    int32_t kafka_partition;
    int64_t kafka_offset;
};

/* Offsets for one Kafka partition in this batch. The writer stores
 * next_offset with a compare-and-set against expected_offset (the value
 * stored in PostgreSQL when the consumer last read or wrote it; -1 = no row
 * yet). A batch may advance a partition's offset with no rows at all (every
 * message was a duplicate or went to the DLQ). */
struct batch_offset {
    int32_t partition;
    int64_t expected_offset;
    int64_t next_offset;
};

struct batch {
    char *topic; /* heap */
    struct batch_row *rows;
    size_t n, cap;
    struct batch_offset *offsets;
    size_t noffsets, offcap;
    size_t bytes;      /* sum of line_len, for batch.max_bytes */
    uint64_t first_ms; /* monotonic ms when the first message was added */
};

void batch_init(struct batch *b, const char *topic);
/* Take ownership of *env (it is zeroed). */
void batch_add(struct batch *b, struct envelope *env, int32_t partition, int64_t offset);
/* Record that partition's messages up to next_offset - 1 are in (or were
 * handled for) this batch; expected_offset is set on the first call per
 * partition and kept after. */
void batch_advance(struct batch *b, int32_t partition, int64_t expected_offset,
                   int64_t next_offset);
struct batch_offset *batch_offset_find(struct batch *b, int32_t partition);
/* Free rows and offsets; keep topic and capacity for reuse. */
void batch_clear(struct batch *b);
void batch_release(struct batch *b);

#endif
