/* librdkafka configuration shared by the aggregator's consumer and its DLQ
 * producer: brokers, the kafka.properties pass-through, and librdkafka's log
 * routed into common/log. */
#ifndef AUDITRAIL_AGGREGATOR_KAFKA_UTIL_H
#define AUDITRAIL_AGGREGATOR_KAFKA_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "common/conf_common.h"

/* A new rd_kafka_conf_t with bootstrap.servers and every kafka.properties
 * entry. For a producer, consumer-only properties are skipped (librdkafka
 * would warn about each). NULL with err set when a property is refused
 * ("kafka.properties.X: ..."). The caller owns the result. */
rd_kafka_conf_t *kafka_conf_build(const struct kafka_conf *k, bool producer, char *err,
                                  size_t errlen);
/* Set one property; -1 with err set when refused. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                   size_t errlen);

#endif
