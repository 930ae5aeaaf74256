/* The dead-letter queue: messages the aggregator cannot store go to
 * kafka.dlq_topic with their original key, value and headers, plus headers
 * naming the error and the origin. A poison message's offset only counts as
 * handled once its DLQ copy is acknowledged: the loop calls dlq_settle before
 * committing a batch that passes it. Owned by the consumer thread. */
#ifndef AUDITRAIL_AGGREGATOR_DLQ_H
#define AUDITRAIL_AGGREGATOR_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/conf_common.h"

#define DLQ_H_ERROR     "auditrail-error"
#define DLQ_H_REASON    "auditrail-error-class"
#define DLQ_H_TOPIC     "auditrail-topic"
#define DLQ_H_PARTITION "auditrail-partition"
#define DLQ_H_OFFSET    "auditrail-offset"
/* On a copy cut to fit kafka.dlq_max_message_bytes: */
#define DLQ_H_TRUNCATED       "auditrail-truncated"                /* "true" */
#define DLQ_H_ORIG_SIZE       "auditrail-original-size"            /* the value's bytes, decimal */
#define DLQ_H_ORIG_SHA256     "auditrail-original-sha256"          /* of the whole value, hex */
#define DLQ_H_ORIG_KEY_SIZE   "auditrail-original-key-size"        /* only when the key was cut */
#define DLQ_H_HEADERS_DROPPED "auditrail-original-headers-dropped" /* their count, when dropped */

/* Bytes a copy needs beyond its key, value and headers (the record's and its
 * batch's framing) in the size checks below: generous, so that what passes
 * the check passes librdkafka's and the broker's. */
#define DLQ_FRAMING_BYTES 512

/* Headers for a DLQ copy: the original headers (NULL = none) except any
 * auditrail-* ones (a re-DLQ'd message gets fresh origin headers), then
 * auditrail-error (error), auditrail-error-class (reason), auditrail-topic,
 * auditrail-partition and auditrail-offset (decimal). Caller owns the result
 * (rd_kafka_headers_destroy, or hand it to rd_kafka_producev). */
rd_kafka_headers_t *dlq_headers_build(const rd_kafka_headers_t *orig, const char *reason,
                                      const char *error, const char *topic, int32_t partition,
                                      int64_t offset);

/* The bytes headers take in a size check (names, values and per-header
 * framing). */
size_t dlq_headers_size(const rd_kafka_headers_t *h);

/* A DLQ copy as it is produced: the original key, value and headers when
 * they fit in max_bytes (with DLQ_FRAMING_BYTES), otherwise a bounded
 * prefix of the value with DLQ_H_TRUNCATED, DLQ_H_ORIG_SIZE and
 * DLQ_H_ORIG_SHA256 added to the headers — and, only when the headers or
 * the key alone leave no room, the original headers dropped (their count in
 * DLQ_H_HEADERS_DROPPED) and the key cut (DLQ_H_ORIG_KEY_SIZE). keylen and
 * len of the result are prefixes of the inputs (the bytes are not copied);
 * hdrs is new (caller destroys or hands it to rd_kafka_producev). */
struct dlq_fit {
    size_t keylen, len;
    rd_kafka_headers_t *hdrs;
    bool cut;
};
void dlq_fit_copy(size_t max_bytes, size_t keylen, const void *value, size_t len,
                  const rd_kafka_headers_t *hdrs, struct dlq_fit *out);

struct dlq;

/* A producer (acks=all, idempotent) for `topic`, with kafka->brokers and
 * kafka->properties, and message.max.bytes kafka->dlq_max_message_bytes
 * (every copy is fitted to it: dlq_fit_copy). NULL with a message in err
 * when librdkafka refuses the configuration. */
struct dlq *dlq_new(const struct kafka_conf *kafka, const char *topic, char *err, size_t errlen);
/* Flush what is in flight (up to timeout_ms) and free. NULL-safe. */
void dlq_free(struct dlq *d, int timeout_ms);

/* Queue a copy of one message (key/value/headers are copied; value may be
 * NULL). It is pending until the broker acknowledges it. */
void dlq_add(struct dlq *d, const void *key, size_t keylen, const void *value, size_t len,
             const rd_kafka_headers_t *orig_headers, const char *reason, const char *error,
             const char *topic, int32_t partition, int64_t offset);
/* (Re)send every pending message not yet in flight and wait up to timeout_ms
 * for acknowledgements. 0 when every pending message is acknowledged, -1 when
 * some are not (failed ones will be re-sent by the next call). */
int dlq_settle(struct dlq *d, int timeout_ms);
/* Pending messages not yet acknowledged. */
size_t dlq_unacked(const struct dlq *d);
/* Forget every pending message (after the batch that covers them committed,
 * or was abandoned); late delivery reports of forgotten messages are ignored. */
void dlq_reset(struct dlq *d);
/* Messages acknowledged since creation, delivery failures seen, and copies
 * cut to fit (counted once per copy). */
uint64_t dlq_acked_total(const struct dlq *d);
uint64_t dlq_failures_total(const struct dlq *d);
uint64_t dlq_cut_total(const struct dlq *d);
/* True after a fatal error of the (idempotent) DLQ producer: nothing more
 * can be delivered by it; msg receives the reason. */
bool dlq_fatal(struct dlq *d, char *msg, size_t len);

#endif
