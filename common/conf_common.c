/* Key tables and checks for the config sections the agent and the aggregator
 * share (kafka, log); each program points CFG_SECTION entries at them. */
#include "common/conf_common.h"

#include <stddef.h>

#include "common/log.h"

const struct cfg_key kafka_conf_keys[] = {
    {.name = "brokers",
     .type = CFG_STRLIST,
     .offset = offsetof(struct kafka_conf, brokers),
     .required = true,
     .help = "Kafka bootstrap servers, host:port; a list or one comma-separated string"},
    {.name = "topic",
     .type = CFG_STR,
     .offset = offsetof(struct kafka_conf, topic),
     .def = "audit.events",
     .help = "Topic the agents produce audit events to and the aggregator consumes"},
    {.name = "group",
     .type = CFG_STR,
     .offset = offsetof(struct kafka_conf, group),
     .def = "auditrail-aggregator",
     .help = "Consumer group of the aggregator"},
    {.name = "dlq_topic",
     .type = CFG_STR,
     .offset = offsetof(struct kafka_conf, dlq_topic),
     .def = "audit.events.dlq",
     .help = "Dead-letter topic for events that cannot be decoded or stored"},
    {.name = "dlq_max_message_bytes",
     .type = CFG_INT,
     .offset = offsetof(struct kafka_conf, dlq_max_message_bytes),
     .def = "5MiB",
     .min = 65536,
     .max = 1000000000,
     .help = "Largest DLQ copy (key, value and headers; the DLQ producer's message.max.bytes): "
             "a larger one is cut to a prefix with its original size and SHA-256 in headers. "
             "The DLQ topic's max.message.bytes must allow it"},
    {.name = "properties",
     .type = CFG_MAP,
     .offset = offsetof(struct kafka_conf, properties),
     .help = "librdkafka properties passed through as-is (TLS, SASL, tuning), "
             "e.g. security.protocol: SSL"},
    CFG_END,
};

const struct cfg_key log_conf_keys[] = {
    {.name = "level",
     .type = CFG_STR,
     .offset = offsetof(struct log_conf, level),
     .def = "info",
     .help = "Minimum log level: debug, info, warn or error"},
    CFG_END,
};

int log_conf_check(struct cfg_check *chk, const struct log_conf *log)
{
    enum log_level lvl;
    if (log->level && log_level_parse(log->level, &lvl) < 0)
        return cfg_check_fail(chk, "log.level", "expected debug, info, warn or error");
    return 0;
}
