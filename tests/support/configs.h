/* The one writer of each program's test configuration, and the single home
 * of the short Kafka consumer-group timeouts every test aggregator needs
 * (DESIGN.md §9: with librdkafka's defaults a rebalance on kafka-mock
 * stalls for over 30 s). */
#ifndef AUDITRAIL_TEST_CONFIGS_H
#define AUDITRAIL_TEST_CONFIGS_H

struct configs_agent {
    const char *source_name;    /* required */
    const char *checkpoint_dir; /* required */
    const char *brokers, *topic;
    unsigned http_port;
    const char *agent_extra;      /* YAML lines under agent:, indented 2 (may be NULL) */
    const char *inputs;           /* YAML list items, indented 4 */
    const char *kafka_properties; /* lines under kafka.properties:, indented 4 (may be NULL) */
    const char *alerts_url;       /* NULL: no alerts section */
};

struct configs_aggregator {
    const char *brokers, *topic, *group, *dlq_topic;
    const char *postgres;  /* conninfo of the primary */
    const char *redis_url; /* NULL: no redis section */
    unsigned http_port;
    int batch_max_events;         /* 0: the program's default */
    int batch_max_ms;             /* 0: 100 */
    const char *kafka_extra;      /* YAML lines under kafka:, indented 2 (may be NULL) */
    const char *batch_extra;      /* YAML lines under batch:, indented 2 (may be NULL) */
    const char *kafka_properties; /* more lines under kafka.properties:, indented 4 (may be NULL) */
    const char *alerts_url;       /* NULL: no alerts section */
    const char *extra;            /* top-level YAML appended as is (may be NULL) */
};

/* Write the YAML to path (replacing it). Returns a heap copy of path. */
char *configs_write_agent(const char *path, const struct configs_agent *c);
char *configs_write_aggregator(const char *path, const struct configs_aggregator *c);

#endif
