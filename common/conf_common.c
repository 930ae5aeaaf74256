/* Key tables for the config sections the agent and the aggregator share
 * (kafka, http, log); each program points CFG_SECTION entries at them. */
#include "common/conf_common.h"

#include <stddef.h>

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
    {.name = "properties",
     .type = CFG_MAP,
     .offset = offsetof(struct kafka_conf, properties),
     .help = "librdkafka properties passed through as-is (TLS, SASL, tuning), "
             "e.g. security.protocol: SSL"},
    CFG_END,
};

const struct cfg_key http_conf_keys[] = {
    {.name = "listen",
     .type = CFG_STR,
     .offset = offsetof(struct http_conf, listen),
     .def = "127.0.0.1:9100",
     .help = "host:port serving /healthz, /readyz, /metrics (and the query API on the "
             "aggregator)"},
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
