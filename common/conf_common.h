/* Config sections shared by the agent and the aggregator: kafka, http, log.
 * Each program embeds these structs in its own config and points its table's
 * CFG_SECTION entries at the tables below. */
#ifndef AUDITRAIL_CONF_COMMON_H
#define AUDITRAIL_CONF_COMMON_H

#include "common/config.h"

struct kafka_conf {
    struct cfg_strlist brokers;
    char *topic;               /* default audit.events */
    char *group;               /* consumer group (aggregator) */
    char *dlq_topic;           /* default audit.events.dlq */
    struct cfg_map properties; /* librdkafka pass-through */
};

struct http_conf {
    char *listen; /* host:port */
};

struct log_conf {
    char *level; /* debug|info|warn|error */
};

extern const struct cfg_key kafka_conf_keys[];
extern const struct cfg_key http_conf_keys[];
extern const struct cfg_key log_conf_keys[];

#endif
