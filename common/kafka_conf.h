/* librdkafka configurations built from the `kafka:` section, for the agent's
 * producer, the aggregator's consumer and its DLQ producer; librdkafka's own
 * log lines are routed into common/log with their levels mapped onto ours. */
#ifndef AUDITRAIL_KAFKA_CONF_H
#define AUDITRAIL_KAFKA_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "common/conf_common.h"
#include "common/log.h"

enum kafka_client { KAFKA_PRODUCER, KAFKA_CONSUMER };

/* One librdkafka property; lists of them end with {NULL, NULL}. */
struct kafka_prop {
    const char *name, *value;
};

/* A new configuration, set in this order (a later setting wins):
 * bootstrap.servers (k->brokers joined by ','), the log callback,
 * `defaults` (the program's choices, which kafka.properties may override),
 * every kafka.properties entry — for a producer without the consumer-only
 * ones (group, fetch, offset and rebalance settings), about which librdkafka
 * would warn once per property —, then `forced` (what the program relies on:
 * group.id, acks=all for the DLQ...). Either list may be NULL.
 * NULL with err set when librdkafka refuses a property: the message names the
 * property ("kafka.properties.NAME: ...") but never its value, which may be a
 * secret (SASL password, key). The caller owns the result (rd_kafka_new takes
 * it over; otherwise rd_kafka_conf_destroy). */
rd_kafka_conf_t *kafka_conf_new(const struct kafka_conf *k, enum kafka_client client,
                                const struct kafka_prop *defaults, const struct kafka_prop *forced,
                                char *err, size_t errlen) __attribute__((warn_unused_result));

/* True for a property that only a consumer reads. */
bool kafka_conf_consumer_only(const char *name);

/* librdkafka's syslog level (0 emergency .. 7 debug) as ours: 0-3 error,
 * 4 warn, 5-6 info, 7 debug. */
enum log_level kafka_conf_log_level(int syslog_level);

#endif
