/* The aggregator suites: a fresh database, topic and DLQ topic with up to
 * two auditrail-aggregator processes (th_), and product envelopes for the
 * unit suites (tenv_), both built on tests/support/chain.h. */
#ifndef AUDITRAIL_TESTS_AGGR_HARNESS_H
#define AUDITRAIL_TESTS_AGGR_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/envelope.h"
#include "tests/support/chain.h"
#include "tests/support/proc.h"

/* One stream's chain state. */
struct tenv_stream {
    char stream[CHAIN_STREAM_HEX_LEN + 1];
    uint64_t seq;
    uint8_t prev[CHAIN_HASH_LEN];
};

/* Stream id = first 16 bytes of SHA-256(name) in hex; seq 0, genesis prev. */
void tenv_stream_init(struct tenv_stream *s, const char *name);
/* The next record of s as a product envelope (format raw, source.name
 * "test", time = read time = time_us), hash and id computed by chain.h,
 * not by the product. Advances s. */
void tenv_next(struct tenv_stream *s, const char *line, int64_t time_us, struct envelope *out);
/* The same record's envelope JSON, built by chain.h (jansson); heap, *len. */
char *tenv_next_json(struct tenv_stream *s, const char *line, int64_t time_us, size_t *len);

/* NEEDSWORK: kept for tests/unit/test_aggr_dedupe.c; use probe_free_port. */
int th_free_port(void);

#define TH_MAX_AGGR 2

struct th_aggr {
    char *config, *log;
    unsigned port;
    struct proc *proc; /* NULL until started */
};

struct th_env {
    char *db, *topic, *dlq, *dir, *brokers;
    rd_kafka_t *prod; /* the test's producer */
    struct th_aggr aggr[TH_MAX_AGGR];
};

/* A fresh database, a topic of `partitions` and a DLQ topic on the stack,
 * a temp dir, a producer, and aggregator 0's config (no Redis, no alerts).
 * The consumer group is named after the topic. */
void th_env_init(struct th_env *e, const char *name, int partitions);
/* (Re)write aggregator i's config; redis_url and alerts_url may be NULL. */
void th_aggr_config(struct th_env *e, int i, const char *redis_url, const char *alerts_url);
/* Start aggregator i, or start it again after it ended. */
void th_aggr_start(struct th_env *e, int i);
/* SIGTERM; assert it exited 0. */
void th_aggr_stop(struct th_env *e, int i);
/* SIGKILL; assert it was running until then. */
void th_aggr_kill(struct th_env *e, int i);
/* Kill what runs, drop the database, remove the temp dir (kept with
 * AUDITRAIL_KEEP_TMP). */
void th_env_release(struct th_env *e);

/* Produce records [from, to) of r and wait for their delivery: record k to
 * partition r->v[k].index % nparts, or by key (the stream) when nparts is 0. */
void th_produce(struct th_env *e, const struct trecs *r, size_t from, size_t to, int nparts);
/* store_wait_drained on the env's database and topic, asserted. */
void th_assert_drained(struct th_env *e, unsigned timeout_ms);

#endif
