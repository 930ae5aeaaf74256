/* The aggregator's config table (STYLE.md habit 7): every key with its type,
 * default and help, so --check-config and the README reference agree. */
#include "aggregator/aggr_config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define K(name, type, st, field, def, help)                                                        \
    {                                                                                              \
        name, type, offsetof(st, field), def, help, false, NULL, 0, 0, 0                           \
    }
#define KI(name, st, field, def, lo, hi, help)                                                     \
    {                                                                                              \
        name, CFG_INT, offsetof(st, field), def, help, false, NULL, 0, lo, hi                      \
    }

static const struct cfg_key pg_keys[] = {
    {"primary", CFG_STR, offsetof(struct aggr_pg_conf, primary), NULL,
     "libpq connection string of the primary (writes, migrations, maintenance)", true, NULL, 0, 0,
     0},
    K("replicas", CFG_STRLIST, struct aggr_pg_conf, replicas, NULL,
      "libpq connection strings of streaming replicas (reads)"),
    KI("max_replica_lag_ms", struct aggr_pg_conf, max_replica_lag_ms, "5000", 0, INT32_MAX,
       "a replica lagging more than this serves no reads"),
    KI("statement_timeout_ms", struct aggr_pg_conf, statement_timeout_ms, "30000", 0, INT32_MAX,
       "statement_timeout of the writer's and maintenance's sessions; 0 = the server's"),
    KI("lock_timeout_ms", struct aggr_pg_conf, lock_timeout_ms, "10000", 0, INT32_MAX,
       "lock_timeout of the writer's and maintenance's sessions (a lock wait fails and is "
       "retried); 0 = the server's"),
    KI("client_timeout_ms", struct aggr_pg_conf, client_timeout_ms, "40000", 0, INT32_MAX,
       "client-side deadline of every statement: a server silent this long (frozen, "
       "black-holed) gets a cancel and the connection is dropped and retried; 0 = none"),
    KI("tcp_user_timeout_ms", struct aggr_pg_conf, tcp_user_timeout_ms, "15000", 0, INT32_MAX,
       "libpq tcp_user_timeout: data unacknowledged this long drops the connection; 0 = the "
       "kernel's (the conninfo may override it and keepalives_*)"),
    KI("write_stall_ms", struct aggr_pg_conf, write_stall_ms, "20000", 100, INT32_MAX,
       "a batch write in flight longer than this makes /readyz fail and fires "
       "AuditrailWriteStalled"),
    KI("health_interval_ms", struct aggr_pg_conf, health_interval_ms, "1000", 50, 600000,
       "the read path checks each host's health and lag every 1-2x this (jitter)"),
    CFG_END,
};

static const struct cfg_key redis_keys[] = {
    K("url", CFG_STR, struct aggr_redis_conf, url, NULL,
      "redis://host:port/db of the shared dedupe window and maintenance lease; absent = no "
      "Redis"),
    KI("timeout_ms", struct aggr_redis_conf, timeout_ms, "200", 1, 60000,
       "connect and command timeout"),
    CFG_END,
};

static const struct cfg_key batch_keys[] = {
    KI("max_events", struct aggr_batch_conf, max_events, "5000", 1, 1000000,
       "flush a batch at this many messages"),
    KI("max_bytes", struct aggr_batch_conf, max_bytes, "16MiB", 1024, INT32_MAX,
       "flush a batch at this many bytes of Kafka message values (whole envelopes)"),
    KI("max_ms", struct aggr_batch_conf, max_ms, "50", 1, 600000,
       "flush a batch this long after its first message"),
    KI("max_message_bytes", struct aggr_batch_conf, max_message_bytes, "4MiB", 1024, INT32_MAX,
       "a larger Kafka message value goes to the DLQ (reason oversize)"),
    CFG_END,
};

static const struct cfg_key writer_keys[] = {
    KI("connections", struct aggr_writer_conf, connections, "2", 1, 16,
       "PostgreSQL connections that write at once: a due batch is cut by Kafka partition (a "
       "stream never in two parts) into up to this many transactions, committed concurrently; "
       "a partition's batches still commit in order"),
    CFG_END,
};

static const struct cfg_key ingest_keys[] = {
    KI("max_future_s", struct aggr_ingest_conf, max_future_s, "86400", 0, 315360000,
       "a record whose time is later than now plus this goes to the DLQ (class time); the "
       "lower bound is the retention horizon"),
    CFG_END,
};

static const struct cfg_key dedupe_keys[] = {
    KI("lru_size", struct aggr_dedupe_conf, lru_size, "1000000", 1, 100000000,
       "ids kept in the in-process window of committed records"),
    KI("redis_ttl_s", struct aggr_dedupe_conf, redis_ttl_s, "86400", 1, 31 * 86400,
       "how long Redis remembers a committed id"),
    CFG_END,
};

static const struct cfg_key partitions_keys[] = {
    KI("premake", struct aggr_partitions_conf, premake, "7", 0, 366,
       "daily partitions created ahead of today"),
    KI("retention_days", struct aggr_partitions_conf, retention_days, "2190", 1, 36500,
       "partitions older than this are detached and dropped (2190 = HIPAA's six years)"),
    K("retention_keep_table", CFG_BOOL, struct aggr_partitions_conf, retention_keep_table, "false",
      "detach expired partitions but keep their tables (archive them yourself)"),
    KI("maintenance_interval_s", struct aggr_partitions_conf, maintenance_interval_s, "300", 1,
       86400, "how often partition maintenance runs"),
    KI("max_days_per_batch", struct aggr_partitions_conf, max_days_per_batch, "8", 1, 1000,
       "a batch whose rows fall on more UTC days is written in several transactions of at most "
       "this many days: bounds the partitions one transaction creates and locks"),
    CFG_END,
};

static const struct cfg_key breaker_keys[] = {
    KI("window", struct aggr_breaker_conf, window, "20", 1, 1024,
       "calls in the sliding failure-rate window"),
    KI("min_calls", struct aggr_breaker_conf, min_calls, "5", 1, 1024,
       "calls in the window before the rate can trip"),
    KI("failure_rate_pct", struct aggr_breaker_conf, failure_rate_pct, "50", 0, 100,
       "failure rate (percent of the window) that opens the breaker; 0 = off"),
    KI("consecutive_failures", struct aggr_breaker_conf, consecutive_failures, "3", 0, 1024,
       "failures in a row that open the breaker; 0 = off"),
    KI("open_base_ms", struct aggr_breaker_conf, open_base_ms, "500", 1, 3600000,
       "first open wait (full jitter, doubling per trip)"),
    KI("open_max_ms", struct aggr_breaker_conf, open_max_ms, "30000", 1, 3600000,
       "longest open wait"),
    CFG_END,
};

static const struct cfg_key proof_keys[] = {
    K("key_file", CFG_STR, struct aggr_proof_conf, key_file, NULL,
      "PEM file of the Ed25519 private key that signs chain heads (auditrail-aggregator proof "
      "keygen FILE makes one); absent = no signing"),
    KI("interval_s", struct aggr_proof_conf, interval_s, "60", 1, 86400,
       "how often the heads of the streams that changed are signed"),
    K("topic", CFG_STR, struct aggr_proof_conf, topic, "audit.proof",
      "Kafka topic the signed heads and rounds are published to (compact it); empty = none"),
    K("file", CFG_STR, struct aggr_proof_conf, file, NULL,
      "file the signed heads and rounds are appended to as JSON lines (optional)"),
    CFG_END,
};

static const struct cfg_key http_keys[] = HTTP_CONF_KEYS("127.0.0.1:9200");

#define SEC(name, field, sub, help)                                                                \
    {                                                                                              \
        name, CFG_SECTION, offsetof(struct aggr_config, field), NULL, help, false, sub, 0, 0, 0    \
    }

const struct cfg_key aggr_config_keys[] = {
    SEC("kafka", kafka, kafka_conf_keys, "Kafka brokers, topic, group, DLQ topic, properties"),
    SEC("http", http, http_keys, "health, readiness and metrics listener"),
    SEC("log", log, log_conf_keys, "logging"),
    SEC("postgres", postgres, pg_keys, "PostgreSQL"),
    SEC("redis", redis, redis_keys, "Redis (optional)"),
    SEC("batch", batch, batch_keys, "batching"),
    SEC("writer", writer, writer_keys, "the batch writers"),
    SEC("ingest", ingest, ingest_keys, "what ingest accepts: the time window"),
    SEC("dedupe", dedupe, dedupe_keys, "dedupe windows"),
    SEC("partitions", partitions, partitions_keys, "daily partitions and retention"),
    SEC("breaker", breaker, breaker_keys, "circuit breakers (PostgreSQL primary, Redis)"),
    SEC("alerts", alerts, alerts_conf_keys,
        "Alertmanager-compatible webhook: breaker opens, DLQ writes, integrity incidents"),
    SEC("proof", proof, proof_keys, "signed chain heads (role all or consumer)"),
    SEC("query", query, aggr_query_keys, "the query API (read path, --role query or all)"),
    CFG_END,
};

/* Checks across keys; brokers and postgres.primary are required by the
 * table. Values are never quoted: they may be secrets. */
static int aggr_config_check(struct cfg_check *chk, void *ud)
{
    struct aggr_config *c = ud;
    if (log_conf_check(chk, &c->log) < 0 || alerter_conf_check(chk, &c->alerts) < 0 ||
        aggr_query_conf_check(chk, &c->query) < 0)
        return -1;
    if (!c->kafka.topic || !*c->kafka.topic)
        return cfg_check_fail(chk, "kafka.topic", "must not be empty");
    if (!c->kafka.dlq_topic || !*c->kafka.dlq_topic)
        return cfg_check_fail(chk, "kafka.dlq_topic", "must not be empty");
    if (strcmp(c->kafka.topic, c->kafka.dlq_topic) == 0)
        return cfg_check_fail(chk, "kafka.dlq_topic", "must differ from kafka.topic");
    if (!c->kafka.group || !*c->kafka.group)
        return cfg_check_fail(chk, "kafka.group", "must not be empty for the aggregator");
    if (c->proof.topic && *c->proof.topic &&
        (strcmp(c->proof.topic, c->kafka.topic) == 0 ||
         strcmp(c->proof.topic, c->kafka.dlq_topic) == 0))
        return cfg_check_fail(chk, "proof.topic",
                              "must differ from kafka.topic and kafka.dlq_topic");
    if (c->breaker.min_calls > c->breaker.window)
        return cfg_check_fail(chk, "breaker.min_calls", "must be <= breaker.window");
    if (c->postgres.client_timeout_ms > 0 &&
        c->postgres.client_timeout_ms <= c->postgres.statement_timeout_ms)
        return cfg_check_fail(chk, "postgres.client_timeout_ms",
                              "must be above postgres.statement_timeout_ms (the server's own "
                              "limit ends a slow statement cleanly first), or 0");
    if (c->breaker.open_base_ms > c->breaker.open_max_ms)
        return cfg_check_fail(chk, "breaker.open_base_ms", "must be <= breaker.open_max_ms");
    /* Each trip can be turned off, not both: a breaker that never opens
     * never pauses the partitions nor makes /readyz fail. */
    if (c->breaker.failure_rate_pct == 0 && c->breaker.consecutive_failures == 0)
        return cfg_check_fail(chk, "breaker.consecutive_failures",
                              "0 (off) needs breaker.failure_rate_pct above 0: the breakers "
                              "could never open");
    return 0;
}

int aggr_config_load_file(struct aggr_config *c, const char *path, char *err, size_t errlen)
{
    return cfg_load_file_checked(aggr_config_keys, c, path, aggr_config_check, c, err, errlen);
}

int aggr_config_load_string(struct aggr_config *c, const char *yaml, char *err, size_t errlen)
{
    return cfg_load_string_checked(aggr_config_keys, c, yaml, "config", aggr_config_check, c, err,
                                   errlen);
}

void aggr_config_free(struct aggr_config *c)
{
    cfg_free(aggr_config_keys, c);
}

void aggr_config_pg_limits(const struct aggr_config *c, struct pg_limits *out)
{
    *out = (struct pg_limits)PG_LIMITS_DEFAULT;
    out->statement_timeout_ms = (int)c->postgres.statement_timeout_ms;
    out->lock_timeout_ms = (int)c->postgres.lock_timeout_ms;
    out->client_timeout_ms = (int)c->postgres.client_timeout_ms;
    out->tcp_user_timeout_ms = (int)c->postgres.tcp_user_timeout_ms;
}

void aggr_config_breaker(const struct aggr_config *c, struct breaker_conf *out)
{
    breaker_conf_default(out);
    out->window = (unsigned)c->breaker.window;
    out->min_calls = (unsigned)c->breaker.min_calls;
    out->failure_rate_pct = (unsigned)c->breaker.failure_rate_pct;
    out->consecutive_failures = (unsigned)c->breaker.consecutive_failures;
    out->open_base_ms = (uint64_t)c->breaker.open_base_ms;
    out->open_max_ms = (uint64_t)c->breaker.open_max_ms;
}
