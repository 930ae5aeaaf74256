/* The aggregator's configuration: one struct filled from YAML by the
 * declarative table aggr_config_keys (common/config.h), plus checks that a
 * table cannot express (e.g. a breaker window within its bounds). */
#ifndef AUDITRAIL_AGGREGATOR_AGGR_CONFIG_H
#define AUDITRAIL_AGGREGATOR_AGGR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/pg_conn.h"
#include "common/alert.h"
#include "common/breaker.h"
#include "common/conf_common.h"
#include "common/config.h"
#include "aggregator/query_config.h"

struct aggr_pg_conf {
    char *primary;               /* libpq conninfo, required */
    struct cfg_strlist replicas; /* libpq conninfos for reads */
    int64_t max_replica_lag_ms;
    /* Limits of the writer's and maintenance's connections (pg_limits). */
    int64_t statement_timeout_ms, lock_timeout_ms, client_timeout_ms, tcp_user_timeout_ms;
    int64_t write_stall_ms;     /* a write in flight longer: not ready, AuditrailWriteStalled */
    int64_t health_interval_ms; /* read path: each host checked every 1-2x this */
};

struct aggr_redis_conf {
    char *url; /* NULL: no Redis */
    int64_t timeout_ms;
};

struct aggr_batch_conf {
    int64_t max_events;
    int64_t max_bytes;
    int64_t max_ms;
    int64_t max_message_bytes; /* a larger Kafka message goes to the DLQ */
};

struct aggr_writer_conf {
    int64_t connections; /* PostgreSQL connections writing batch parts at once */
};

struct aggr_ingest_conf {
    int64_t max_future_s; /* time later than now + this goes to the DLQ (class time) */
};

struct aggr_dedupe_conf {
    int64_t lru_size;
    int64_t redis_ttl_s;
};

struct aggr_partitions_conf {
    int64_t premake;
    int64_t retention_days;
    bool retention_keep_table;
    int64_t maintenance_interval_s;
    int64_t max_days_per_batch; /* days one transaction writes at most (pg_writer_opts) */
};

struct aggr_breaker_conf {
    int64_t window, min_calls, failure_rate_pct, consecutive_failures;
    int64_t open_base_ms, open_max_ms;
};

struct aggr_proof_conf {
    char *key_file; /* NULL: no signing */
    int64_t interval_s;
    char *topic; /* "" : no Kafka sink */
    char *file;  /* NULL: no file sink */
};

struct aggr_config {
    struct kafka_conf kafka;
    struct http_conf http;
    struct log_conf log;
    struct aggr_pg_conf postgres;
    struct aggr_redis_conf redis;
    struct aggr_batch_conf batch;
    struct aggr_writer_conf writer;
    struct aggr_ingest_conf ingest;
    struct aggr_dedupe_conf dedupe;
    struct aggr_partitions_conf partitions;
    struct aggr_breaker_conf breaker;
    struct alerter_conf alerts;
    struct aggr_proof_conf proof;
    struct aggr_query_conf query;
};

extern const struct cfg_key aggr_config_keys[];

/* Load and check a config file into *c (zeroed by the caller). 0, or -1 with
 * a one-line message in err; call aggr_config_free either way. */
int aggr_config_load_file(struct aggr_config *c, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Same from a YAML string (tests). */
int aggr_config_load_string(struct aggr_config *c, const char *yaml, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void aggr_config_free(struct aggr_config *c);
/* The breaker section as a breaker_conf. */
void aggr_config_breaker(const struct aggr_config *c, struct breaker_conf *out);
/* The postgres section's limits of a connection. */
void aggr_config_pg_limits(const struct aggr_config *c, struct pg_limits *out);

#endif
