/* The agent's Kafka producer (librdkafka): idempotent, acks=all, lz4,
 * throughput-tuned, kafka.properties passed through last so they override.
 * Delivery reports and errors are served by producer_poll on the main
 * thread only; producer_wake_fd becomes readable when there is something to
 * serve, so the main loop can sleep in poll(2). */
#ifndef AUDITRAIL_AGENT_PRODUCER_H
#define AUDITRAIL_AGENT_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/conf_common.h"

struct producer;

/* What a delivery report says, for what the agent should do about it. */
enum producer_result {
    PRODUCER_DELIVERED = 0, /* acknowledged by Kafka */
    PRODUCER_ERR_TRANSIENT, /* brokers down, timeouts, leader moves, purged: try again */
    PRODUCER_ERR_TOO_LARGE, /* the broker refused the message's size: cut it to fit */
    PRODUCER_ERR_AUTH,      /* authentication or authorization: an operator must act */
    PRODUCER_ERR_PERMANENT, /* refused for good (topic missing, policy, invalid record) */
};
#define PRODUCER_RESULTS 5

/* The class of a librdkafka error code (rd_kafka_resp_err_t). */
enum producer_result producer_classify(int rd_err);
/* "delivered", "transient", "too_large", "authorization", "permanent". */
const char *producer_result_name(enum producer_result r);

/* Called from producer_poll for every message: `opaque` as given to
 * producer_send, its result, err = librdkafka's name and reason (NULL when
 * delivered), len = the message's key and value bytes. */
typedef void (*producer_dr_fn)(void *ud, void *opaque, enum producer_result res, const char *err,
                               size_t len);

struct producer_opts {
    size_t max_inflight_bytes; /* sizes librdkafka's queue above the agent's own limit */
    size_t max_inflight_records;
    size_t max_record_bytes; /* sizes message.max.bytes for the largest envelope */
    producer_dr_fn dr;
    void *ud;
};

/* Returns NULL with a message in err (bad property, no brokers, ...). */
struct producer *producer_new(const struct kafka_conf *k, const struct producer_opts *o, char *err,
                              size_t errlen) __attribute__((warn_unused_result));
/* Stops without waiting; messages still queued get failed delivery reports
 * only if producer_purge + producer_poll ran before. NULL-safe. */
void producer_free(struct producer *p);

enum producer_send_rc { PRODUCER_OK = 0, PRODUCER_FULL = -1, PRODUCER_ERROR = -2 };
/* Queue a copy of payload for kafka.topic, key as given. On PRODUCER_OK a
 * delivery report will follow; on anything else none follows. */
enum producer_send_rc producer_send(struct producer *p, const void *key, size_t keylen,
                                    const void *payload, size_t len, void *opaque);

/* Serve delivery reports, errors and statistics; waits up to timeout_ms. */
void producer_poll(struct producer *p, int timeout_ms);
int producer_wake_fd(const struct producer *p);
/* Consume pending wake-up bytes (call when the fd was readable). */
void producer_clear_wake(struct producer *p);

/* Messages librdkafka still holds (queued or in flight). */
int producer_outq_len(const struct producer *p);
/* Fail every queued message (delivery reports with an error follow on the
 * next poll), used when shutting down after the timeout. */
void producer_purge(struct producer *p);

/* The largest message (key and value) librdkafka accepts: its effective
 * message.max.bytes (kafka.properties may have set it) less its per-message
 * overhead. */
size_t producer_max_message(const struct producer *p);

/* true after a fatal producer error (idempotence broken); msg describes it. */
bool producer_is_fatal(const struct producer *p, char *msg, size_t len);
/* Monotonic ms when a broker was last seen up (from librdkafka statistics
 * and successful deliveries); 0 = never. */
uint64_t producer_last_up_ms(const struct producer *p);

#endif
