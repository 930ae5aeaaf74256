/* Building librdkafka configurations for the aggregator. */
#include "aggregator/kafka_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"

static const char *const consumer_only[] = {
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "auto.offset.reset",
    "isolation.level",
    "group.id",
    "group.instance.id",
    "group.protocol.type",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.commit.interval.ms",
    "fetch.",
    "queued.",
    "enable.partition.eof",
    "check.crcs",
    "coordinator.query.interval.ms",
};

static bool is_consumer_only(const char *name)
{
    for (size_t i = 0; i < sizeof(consumer_only) / sizeof(consumer_only[0]); i++) {
        size_t n = strlen(consumer_only[i]);
        if (consumer_only[i][n - 1] == '.' ? strncmp(name, consumer_only[i], n) == 0
                                           : strcmp(name, consumer_only[i]) == 0)
            return true;
    }
    return false;
}

/* librdkafka's syslog levels onto ours. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum log_level l = level <= 3   ? LOG_ERROR
                       : level <= 4 ? LOG_WARN
                       : level <= 6 ? LOG_INFO
                                    : LOG_DEBUG;
    log_msg(l, "librdkafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                   size_t errlen)
{
    char kerr[256];
    if (rd_kafka_conf_set(conf, name, value, kerr, sizeof(kerr)) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka.properties.%s: %s", name, kerr);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *kafka_conf_build(const struct kafka_conf *k, bool producer, char *err,
                                  size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    size_t total = 1;
    for (size_t i = 0; i < k->brokers.n; i++)
        total += strlen(k->brokers.v[i]) + 1;
    char *brokers = xmalloc(total);
    brokers[0] = '\0';
    for (size_t i = 0; i < k->brokers.n; i++) {
        if (i)
            strcat(brokers, ",");
        strcat(brokers, k->brokers.v[i]);
    }
    int rc = kafka_conf_set(conf, "bootstrap.servers", brokers, err, errlen);
    free(brokers);
    if (rc != 0)
        goto fail;
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    for (size_t i = 0; i < k->properties.n; i++) {
        if (producer && is_consumer_only(k->properties.keys[i]))
            continue;
        if (kafka_conf_set(conf, k->properties.keys[i], k->properties.vals[i], err, errlen) != 0)
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
