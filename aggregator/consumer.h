/* The aggregator's Kafka consumer (librdkafka high-level consumer): no
 * automatic commits or offset stores (offsets live in PostgreSQL, DESIGN.md
 * §4), a rebalance hook for the loop, and the eager/cooperative differences
 * hidden behind assign/unassign. Owned by the consumer thread; the rebalance
 * hook runs inside consumer_poll on that thread. */
#ifndef AUDITRAIL_AGGREGATOR_CONSUMER_H
#define AUDITRAIL_AGGREGATOR_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/conf_common.h"

/* Called for an assignment (assign = true) or a revocation. The hook must
 * call consumer_assign / consumer_unassign with (a copy of) parts. */
typedef void (*consumer_rebalance_fn)(void *ud, bool assign,
                                      rd_kafka_topic_partition_list_t *parts);

struct consumer;

/* Create the consumer for kafka->topic in kafka->group and subscribe.
 * Defaults (overridable by kafka.properties): partition.assignment.strategy
 * cooperative-sticky, isolation.level read_committed. Forced:
 * auto.offset.reset error (a position outside the log comes back as an
 * RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET message for consume.c to handle).
 * NULL with err set on a refused configuration. */
struct consumer *consumer_new(const struct kafka_conf *kafka, consumer_rebalance_fn hook, void *ud,
                              char *err, size_t errlen);
/* Close (leave the group: the final revocation goes through the hook) and
 * free, within CONSUMER_CLOSE_MS: leaving the group needs its coordinator;
 * past that the handle is destroyed without it (the group notices at
 * session.timeout.ms; the offsets that matter are in PostgreSQL).
 * NULL-safe. */
void consumer_close(struct consumer *c);
#define CONSUMER_CLOSE_MS 10000

/* Next message or NULL; the caller destroys it (rd_kafka_message_destroy). */
rd_kafka_message_t *consumer_poll(struct consumer *c, int timeout_ms);

/* Apply an assignment (offsets in parts are the start positions) or a
 * revocation, incrementally under the cooperative protocol. 0 or -1. */
int consumer_assign(struct consumer *c, rd_kafka_topic_partition_list_t *parts);
int consumer_unassign(struct consumer *c, rd_kafka_topic_partition_list_t *parts);
bool consumer_cooperative(const struct consumer *c);

/* Pause or resume one partition of the topic. */
void consumer_pause(struct consumer *c, int32_t partition, bool pause);
/* Move a partition's fetch position (offset, or RD_KAFKA_OFFSET_BEGINNING). */
int consumer_seek(struct consumer *c, int32_t partition, int64_t offset);
/* Commit next offsets to Kafka asynchronously (lag monitoring only). */
void consumer_commit(struct consumer *c, const int32_t *partitions, const int64_t *offsets,
                     size_t n);
/* The cached high watermark of a partition, or -1 when unknown. */
int64_t consumer_high_watermark(struct consumer *c, int32_t partition);
/* Ask the partition's leader for its log start (lo) and end (hi), waiting up
 * to timeout_ms: 0, or -1 (logged). */
int consumer_watermarks(struct consumer *c, int32_t partition, int64_t *lo, int64_t *hi,
                        int timeout_ms);
/* Start fetching `partition` again from its offset in `all` (every assigned
 * partition of the topic with its start position: the eager protocol
 * re-assigns them all) after librdkafka stopped it on an out-of-range
 * error. 0 or -1 (logged). */
int consumer_restart(struct consumer *c, rd_kafka_topic_partition_list_t *all, int32_t partition);
/* The group's offset committed to Kafka for partition (asks the group
 * coordinator, up to 5 s); -1 when there is none or it cannot be had. */
int64_t consumer_committed(struct consumer *c, int32_t partition);
const char *consumer_topic(const struct consumer *c);

#endif
