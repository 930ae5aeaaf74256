/* The tests' own Kafka clients (librdkafka): a producer that fails the
 * test on any lost delivery, and a reader that takes every partition of a
 * topic from its beginning up to its high watermark, so that a test asserts
 * on everything the topic holds, late duplicates included. */
#ifndef AUDITRAIL_TEST_KAFKA_H
#define AUDITRAIL_TEST_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* acks=all, idempotent. ck_abort when librdkafka refuses. */
rd_kafka_t *tk_producer_new(const char *brokers);
/* The same, for messages up to max_message_bytes (librdkafka's
 * message.max.bytes; its default is 1000000). */
rd_kafka_t *tk_producer_new_sized(const char *brokers, size_t max_message_bytes);
/* Produce one message (copied); partition -1 = by key. headers (may be
 * NULL) are copied. Waits while the local queue is full. */
void tk_produce(rd_kafka_t *p, const char *topic, int32_t partition, const void *key, size_t keylen,
                const void *val, size_t len, const rd_kafka_headers_t *headers);
/* Wait for every delivery; fail the test if any failed. */
void tk_flush(rd_kafka_t *p);
/* Flush briefly, destroy. NULL-safe. */
void tk_producer_free(rd_kafka_t *p);

/* A consumed message, copied out of librdkafka. */
struct tk_msg {
    void *key, *val; /* NUL after their bytes; val NULL for a message without value */
    size_t keylen, len;
    rd_kafka_headers_t *headers; /* NULL when none */
    int32_t partition;
    int64_t offset;
};

struct tk_msgs {
    struct tk_msg *v;
    size_t n, cap;
};
void tk_msgs_release(struct tk_msgs *m);
/* Header value as a heap string, or NULL when absent. */
char *tk_msg_header(const struct tk_msg *m, const char *name);

/* A reader of every partition of one topic, from the beginning, without a
 * consumer group. */
struct tk_reader;
struct tk_reader *tk_reader_new(const char *brokers, const char *topic);
/* Append to out every message up to the high watermarks of the topic's
 * partitions, read again after reaching them until they stand still: when
 * nothing produces any more, the topic has been read whole. ck_abort when
 * that takes longer than timeout_ms. Later calls append what came since. */
void tk_reader_read(struct tk_reader *r, struct tk_msgs *out, unsigned timeout_ms);
void tk_reader_free(struct tk_reader *r);
/* The whole topic in one call (a reader read once). */
void tk_read_topic(const char *brokers, const char *topic, struct tk_msgs *out);

/* The high watermark of each partition (heap array, *n partitions). */
int64_t *tk_watermarks(const char *brokers, const char *topic, int *n);

#endif
