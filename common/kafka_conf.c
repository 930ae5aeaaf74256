/* Building librdkafka configurations (common/kafka_conf.h): one place for the
 * brokers, the kafka.properties pass-through, secret-safe errors and logs. */
#include "common/kafka_conf.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"

/* Properties only a consumer reads; a trailing '.' matches a prefix. */
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

bool kafka_conf_consumer_only(const char *name)
{
    for (size_t i = 0; i < sizeof(consumer_only) / sizeof(consumer_only[0]); i++) {
        size_t n = strlen(consumer_only[i]);
        if (consumer_only[i][n - 1] == '.' ? strncmp(name, consumer_only[i], n) == 0
                                           : strcmp(name, consumer_only[i]) == 0)
            return true;
    }
    return false;
}

enum log_level kafka_conf_log_level(int level)
{
    return level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *text)
{
    log_msg(kafka_conf_log_level(level), "librdkafka %s: %s: %s", rd_kafka_name(rk), fac, text);
}

/* Replace every occurrence of needle in s by "***", in place (the result is
 * never longer than s when needle has 3 bytes or more; shorter needles are
 * replaced byte by byte with '*'). */
static void redact(char *s, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return;
    for (char *p = strstr(s, needle); p; p = strstr(p, needle)) {
        if (n >= 3) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + n, strlen(p + n) + 1);
            p += 3;
        } else {
            memset(p, '*', n);
            p += n;
        }
    }
}

/* librdkafka quotes a refused value in its message ("Invalid value \"x\"
 * for ..."), or one item of a list value: remove the value and each of its
 * comma-separated items before the message can reach a log. */
static void redact_value(char *msg, const char *value)
{
    redact(msg, value);
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        char item[256];
        if (n && n < sizeof(item)) {
            memcpy(item, p, n);
            item[n] = '\0';
            redact(msg, item);
        }
        if (!comma)
            break;
        p = comma + 1;
    }
}

/* Set one property; `where` names it in the error (a key path). */
static int set_prop(rd_kafka_conf_t *conf, const char *where, const char *name, const char *value,
                    char *err, size_t errlen)
{
    char kerr[512];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, name, value, kerr, sizeof(kerr));
    if (r == RD_KAFKA_CONF_OK)
        return 0;
    if (r == RD_KAFKA_CONF_UNKNOWN) {
        snprintf(err, errlen, "%s: unknown librdkafka property", where);
    } else {
        redact_value(kerr, value);
        size_t n = strlen(kerr);
        while (n && (kerr[n - 1] == '\n' || kerr[n - 1] == ' '))
            kerr[--n] = '\0';
        snprintf(err, errlen, "%s: refused by librdkafka: %s", where, kerr);
    }
    return -1;
}

static int set_list(rd_kafka_conf_t *conf, const struct kafka_prop *l, char *err, size_t errlen)
{
    for (; l && l->name; l++) {
        char where[160];
        snprintf(where, sizeof(where), "kafka property %s", l->name);
        if (set_prop(conf, where, l->name, l->value, err, errlen) < 0)
            return -1;
    }
    return 0;
}

rd_kafka_conf_t *kafka_conf_new(const struct kafka_conf *k, enum kafka_client client,
                                const struct kafka_prop *defaults, const struct kafka_prop *forced,
                                char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct buf brokers = BUF_INIT;
    for (size_t i = 0; i < k->brokers.n; i++) {
        if (i)
            buf_addc(&brokers, ',');
        buf_adds(&brokers, k->brokers.v[i]);
    }
    int rc = set_prop(conf, "kafka.brokers", "bootstrap.servers", buf_cstr(&brokers), err, errlen);
    buf_release(&brokers);
    if (rc < 0 || set_list(conf, defaults, err, errlen) < 0)
        goto fail;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    for (size_t i = 0; i < k->properties.n; i++) {
        const char *name = k->properties.keys[i];
        if (client == KAFKA_PRODUCER && kafka_conf_consumer_only(name))
            continue;
        char where[160];
        snprintf(where, sizeof(where), "kafka.properties.%s", name);
        if (set_prop(conf, where, name, k->properties.vals[i], err, errlen) < 0)
            goto fail;
    }
    if (set_list(conf, forced, err, errlen) < 0)
        goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
