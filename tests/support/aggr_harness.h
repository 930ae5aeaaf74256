/* Test helpers for the aggregator suites: valid envelopes on a hash chain,
 * a Kafka producer/consumer for test topics, the auditrail-aggregator binary
 * as a child process with a generated config, and SQL checks. */
#ifndef AUDITRAIL_TESTS_AGGR_HARNESS_H
#define AUDITRAIL_TESTS_AGGR_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>

#include "common/envelope.h"

/* One stream's chain state. */
struct tenv_stream {
    char stream[CHAIN_STREAM_HEX_LEN + 1];
    uint64_t seq;
    uint8_t prev[CHAIN_HASH_LEN];
};

/* Stream id = first 16 bytes of SHA-256(name) in hex; seq 0, genesis prev. */
void tenv_stream_init(struct tenv_stream *s, const char *name);
/* The next record of s: a complete, valid envelope (format raw, source.name
 * "test", time = time_us, read_time = time_us). Advances s. */
void tenv_next(struct tenv_stream *s, const char *line, int64_t time_us, struct envelope *out);
/* envelope_encode of tenv_next in one go; heap JSON, *len set. */
char *tenv_next_json(struct tenv_stream *s, const char *line, int64_t time_us, size_t *len);

/* A producer (acks=all, idempotent) on STACK_KAFKA_BROKERS. */
rd_kafka_t *th_producer_new(void);
/* Produce one message (copied); partition -1 = by key. Aborts the test on a
 * local error. headers (may be NULL) are copied. */
void th_produce(rd_kafka_t *p, const char *topic, int32_t partition, const void *key, size_t keylen,
                const void *val, size_t len, const rd_kafka_headers_t *headers);
/* Flush, asserting every message was delivered. */
void th_producer_flush(rd_kafka_t *p);
/* Flush (briefly), destroy, free. NULL-safe. */
void th_producer_free(rd_kafka_t *p);

/* A consumed message, copied out of librdkafka (whose messages must all be
 * destroyed before their handle is). */
struct th_msg {
    void *key, *val; /* val NULL for a message without value */
    size_t keylen, len;
    rd_kafka_headers_t *headers; /* NULL when none */
    int32_t partition;
    int64_t offset;
};

/* Read every message of topic (all partitions) from the beginning until
 * `want` messages arrived or timeout_ms passed. Returns a heap array (free
 * with th_msgs_free); *n is how many arrived. */
struct th_msg *th_consume_all(const char *topic, size_t want, unsigned timeout_ms, size_t *n);
void th_msgs_free(struct th_msg *m, size_t n);
/* Header value as a NUL-terminated heap string, or NULL. */
char *th_msg_header(const struct th_msg *m, const char *name);

/* An auditrail-aggregator child process. */
struct th_aggr {
    pid_t pid;
    char *log; /* its stderr/stdout */
    int http_port;
};

/* Write a config into dir/name and return its path (heap). extra is
 * appended verbatim (YAML, may be NULL). redis_url NULL = no redis section. */
char *th_aggr_config(const char *dir, const char *name, const char *pg, const char *topic,
                     const char *dlq_topic, const char *group, const char *redis_url, int http_port,
                     const char *extra);
/* Start the binary (test_bin("auditrail-aggregator")) with --config path,
 * output appended to log_path. */
struct th_aggr *th_aggr_start(const char *config_path, const char *log_path, int http_port);
/* Same for another program of build/bin taking --config (e.g.
 * "auditrail-agent"). */
struct th_aggr *th_proc_start(const char *name, const char *config_path, const char *log_path,
                              int http_port);
/* Send sig; wait up to timeout_ms for exit. Returns the exit status
 * (WEXITSTATUS), 128+signal when killed by a signal, or -1 on timeout (then
 * it is SIGKILLed). Frees a. */
int th_aggr_stop(struct th_aggr *a, int sig, unsigned timeout_ms);
/* A free TCP port on 127.0.0.1 (bound and released). */
int th_free_port(void);

/* GET http://127.0.0.1:port/path; heap body (NULL when the connection
 * failed), *status the HTTP status (0 on failure). */
char *th_http_get(int port, const char *path, long *status);
/* The value of one series from /metrics, e.g.
 * "auditrail_aggregator_duplicates_total{layer=\"lru\"}"; -1 when absent. */
double th_metric(int port, const char *series);
/* /readyz answers 200. */
bool th_ready(int port);

/* SQL helpers on conninfo: first column of first row as int64 (-1 on NULL). */
int64_t th_sql_int(const char *conninfo, const char *sql);
/* Rows stored; waits until count(*) from auditrail.events reaches want or
 * timeout; returns the last count. */
int64_t th_wait_rows(const char *conninfo, int64_t want, unsigned timeout_ms);
/* Wait until the offsets stored for topic (all partitions) sum to `want`,
 * i.e. that many messages were handled (stored, skipped or DLQ'd) when the
 * topic's partitions started at offset 0. Returns the last sum. */
int64_t th_wait_offsets(const char *conninfo, const char *topic, int64_t want, unsigned timeout_ms);
/* Assert: count(*) = want, count(distinct id) = count(*), and for every
 * stream, seq runs 0..n-1 without gaps (contiguous). */
void th_assert_exactly_once(const char *conninfo, int64_t want);

#endif
