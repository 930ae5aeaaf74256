/* A batch: decoded envelopes from one or more Kafka partitions, plus for each
 * partition the offset range it covers, committed together in one PostgreSQL
 * transaction (DESIGN.md §4); and every rule about batches: when one is due,
 * splitting one, removing rows from one. Owned by the consumer thread (or
 * the writer thread while it writes it: writer.h). */
#ifndef AUDITRAIL_AGGREGATOR_BATCH_H
#define AUDITRAIL_AGGREGATOR_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/aggr_config.h"
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
    size_t bytes; /* sum of line_len (the aggregator flushes on value bytes: batch_due) */
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
void batch_release(struct batch *b); /* NULL-safe */

/* Remove the rows i with drop[i] != 0 (envelopes released, the others keep
 * their order, bytes follows); the offsets are untouched, so the messages
 * of removed rows still count as handled. Returns the number removed. */
size_t batch_remove(struct batch *b, const uint8_t *drop);

/* For isolating rows PostgreSQL refuses: split b at row k into lo (rows
 * [0,k)) and hi (rows [k,n)), both initialized here; rows move (b's become
 * empty envelopes), b keeps its offsets. lo advances each partition it holds
 * rows of to just past its last row there (from b's expected offset); hi
 * continues from there (or from b's expected offset) to b's next offset, so
 * committing lo then hi commits exactly what b would have. */
void batch_split(struct batch *b, size_t k, struct batch *lo, struct batch *hi);
/* Undo batch_split(b, k, lo, hi): the rows move back into b, lo and hi are
 * released. */
void batch_unsplit(struct batch *b, struct batch *lo, struct batch *hi);

/* For parallel writers: how to cut b into at most max batches that can
 * commit independently and concurrently. Each Kafka partition, and each
 * stream, lies wholly in one of them (partitions that share a stream in b go
 * together, so a stream's rows of one batch are never in two concurrent
 * transactions), and rows are balanced over them. Returns how many: 1 when
 * b cannot be cut (one partition, or every partition linked by streams) or
 * max <= 1, and then subs are untouched; otherwise subs[0..k) are
 * initialized here, b's rows move into them (in b's order within each;
 * b's become empty envelopes) and each gets the offsets of its partitions
 * as b has them. */
size_t batch_split_parts(struct batch *b, size_t max, struct batch *subs);
/* Move src's rows and offsets (of partitions dst does not hold) to the end
 * of dst; src is released. */
void batch_merge(struct batch *dst, struct batch *src);

/* The flush rule: a batch with content is due when it holds max_events
 * messages (rows, re-sends and DLQ'd ones alike), max_bytes bytes of their
 * Kafka message values, or its first message is max_ms old (start_ms,
 * now_ms: monotonic). */
bool batch_due(const struct aggr_batch_conf *bc, size_t msgs, size_t bytes, uint64_t start_ms,
               uint64_t now_ms);

#endif
