/* The hostile suites' fixture (e2e/test_hostile, e2e/test_hostile_pg): a
 * fresh database, topic and DLQ topic, a webhook for alerts, a producer,
 * one chain of normal records sent around the hostile ones, and the checks
 * every case ends with. Each suite writes and starts its aggregators. */
#ifndef AUDITRAIL_TEST_HOSTILE_H
#define AUDITRAIL_TEST_HOSTILE_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/support/chain.h"
#include "tests/support/proc.h"
#include "tests/support/webhook.h"

struct hfx {
    char *db, *topic, *dlq, *dir, *brokers;
    char *cfg, *log;  /* the (first) aggregator's configuration and log */
    unsigned port;    /* its HTTP port */
    unsigned wait_ms; /* how long a condition is awaited */
    struct webhook *hook;
    rd_kafka_t *prod;
    struct proc *aggr;
    struct tchain chain; /* the normal records' stream */
    struct trecs want;   /* every record that must be stored */
    int64_t t_us;        /* the normal records' time: an hour ago */
};

/* Everything but the aggregator: partitions of the topic, the DLQ topic's
 * name prefix, the producer's message.max.bytes (0: librdkafka's). */
void hfx_init(struct hfx *x, const char *name, int partitions, const char *dlq_name,
              size_t producer_max_bytes, unsigned wait_ms);
/* Produce r keyed by its stream (the key's partition) and keep it as a
 * record that must be stored. Not flushed. */
void hfx_send(struct hfx *x, struct trec *r);
/* n normal records on the chain, sent and flushed. */
void hfx_normal(struct hfx *x, int n);
/* Every message of the topic handled: a dead-lettered one only counts once
 * its DLQ copy is acknowledged. */
void hfx_drained(struct hfx *x);
void hfx_assert_alive(struct hfx *x);
double hfx_metric(struct hfx *x, const char *series);
/* The end of every case: everything handled, the records that must be
 * stored exactly once with their chains, no integrity incident, the
 * aggregator alive until a clean stop. The suites add their own checks of
 * what must not leak. */
void hfx_finish(struct hfx *x);
void hfx_release(struct hfx *x);

#endif
