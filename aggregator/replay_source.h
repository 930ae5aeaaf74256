/* The Kafka side of an active replay: a consumer of its own that never
 * joins a group (partitions are assigned explicitly, nothing is committed),
 * the topic's partitions and watermarks, and the lookups replay_seek needs
 * (offsetsForTimes, one message at an offset). One thread. */
#ifndef AUDITRAIL_AGGREGATOR_REPLAY_SOURCE_H
#define AUDITRAIL_AGGREGATOR_REPLAY_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "aggregator/replay_seek.h"
#include "common/conf_common.h"

struct replay_source;

/* A consumer of k->topic on k->brokers with k->properties (no group.id:
 * it cannot join or commit for a group). NULL with err on a refused
 * configuration. */
struct replay_source *replay_source_new(const struct kafka_conf *k, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void replay_source_free(struct replay_source *s); /* NULL-safe */

/* The topic's partition ids, ascending (heap, caller frees). 0 or -1 with
 * err (the topic does not exist, or no broker answered). */
int replay_source_partitions(struct replay_source *s, int32_t **ids, size_t *n, char *err,
                             size_t errlen) __attribute__((warn_unused_result));
/* The low and high watermarks of a partition, asked of the broker. */
int replay_source_watermarks(struct replay_source *s, int32_t p, int64_t *lo, int64_t *hi,
                             char *err, size_t errlen) __attribute__((warn_unused_result));
/* The lookups of replay_seek on this consumer (valid while s lives). */
void replay_source_lookup(struct replay_source *s, struct replay_lookup *out);

/* Read partition p from offset off (only p is assigned). 0 or -1 with err. */
int replay_source_start(struct replay_source *s, int32_t p, int64_t off, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The next message (or event: check msg->err; RD_KAFKA_RESP_ERR__PARTITION_EOF
 * at the end of what the partition holds) of the partition started, or
 * NULL after timeout_ms. The caller destroys it. Messages of an earlier
 * position are dropped here. */
rd_kafka_message_t *replay_source_poll(struct replay_source *s, int timeout_ms);

#endif
