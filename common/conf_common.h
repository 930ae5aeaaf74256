/* Config sections shared by the agent and the aggregator: kafka, http, log.
 * Each program embeds these structs in its own config and points its table's
 * CFG_SECTION entries at the tables below (http: its own, HTTP_CONF_KEYS). */
#ifndef AUDITRAIL_CONF_COMMON_H
#define AUDITRAIL_CONF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

struct kafka_conf {
    struct cfg_strlist brokers;
    char *topic;                   /* default audit.events */
    char *group;                   /* consumer group (aggregator) */
    char *dlq_topic;               /* default audit.events.dlq */
    int64_t dlq_max_message_bytes; /* the DLQ producer's message.max.bytes (aggregator) */
    struct cfg_map properties;     /* librdkafka pass-through */
};

struct http_conf {
    char *listen; /* host:port */
};

struct log_conf {
    char *level; /* debug|info|warn|error */
};

extern const struct cfg_key kafka_conf_keys[];
extern const struct cfg_key log_conf_keys[];

/* The http section's keys with the program's default listen address: the
 * agent and the aggregator default to different ports, so that both can run
 * on one host (make run) and the CLI's default reaches the aggregator:
 *   static const struct cfg_key http_keys[] = HTTP_CONF_KEYS("127.0.0.1:9100"); */
#define HTTP_CONF_KEYS(default_listen)                                                             \
    {                                                                                              \
        {.name = "listen",                                                                         \
         .type = CFG_STR,                                                                          \
         .offset = offsetof(struct http_conf, listen),                                             \
         .def = default_listen,                                                                    \
         .help = "host:port serving /healthz, /readyz, /metrics (and the query API on the "        \
                 "aggregator)"},                                                                   \
            CFG_END,                                                                               \
    }

/* log.level is one of debug, info, warn, error: 0, or cfg_check_fail's -1. */
int log_conf_check(struct cfg_check *chk, const struct log_conf *log);

#endif
