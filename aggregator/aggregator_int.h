/* Internals of the aggregator's consumer loop, shared by its files and by
 * nothing else: aggregator.c (lifecycle, the loop, periodic work),
 * consume.c (messages, per-partition offsets, replay detection,
 * rebalances), flush.c (sealing, submitting, retrying, isolating and
 * abandoning batches) and health.c (readiness, metrics, alerts).
 *
 * Threads: the consumer thread (the caller of aggregator_run) owns all of
 * struct aggregator: the consumer, both batches, Redis, the dedupe caches,
 * the DLQ producer, the breakers and partition maintenance. The writer
 * threads (writer.h) write the in-flight batch, cut into up to
 * writer.connections parts, while the consumer thread builds the next one;
 * the pg_writers are the consumer thread's only while no batch is in flight
 * (writer_busy false).
 * httpd threads read ready_code only. */
#ifndef AUDITRAIL_AGGREGATOR_AGGREGATOR_INT_H
#define AUDITRAIL_AGGREGATOR_AGGREGATOR_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "aggregator/aggregator.h"
#include "aggregator/batch.h"
#include "aggregator/consumer.h"
#include "aggregator/dedupe.h"
#include "aggregator/validate.h"
#include "aggregator/writer.h"
#include "common/backoff.h"
#include "common/breaker.h"

/* Per Kafka partition of our topic. `stored` is what PostgreSQL holds as the
 * partition's next offset (the compare-and-set's expected value; -1: no row);
 * `pos` is the next offset to handle (everything below it is in the batch or
 * committed). A partition is `ready` once its stored offset is loaded. */
struct part_state {
    bool assigned, ready, paused;
    int64_t stored, pos;
    int64_t hwm;          /* highest next offset this process committed (0: none) */
    int64_t replay_until; /* offsets below this are a replay: caches bypassed (0: none) */
    /* Messages in [stale_from, stale_to) were skipped by a seek of ours: one
     * arriving late is stale prefetch. Any other message below pos means the
     * log moved (consume_note_reset). */
    int64_t stale_from, stale_to;
    /* The log no longer holds our position (out of range, or a message
     * below it): paused until the batches no longer hold the partition,
     * then read again from the log start (consume_apply_resets). */
    bool reset_pending, reset_backwards;
    int64_t reset_at;
    struct metric *lag;
};

/* What /readyz says (health.c), as an index into its reasons. */
enum ready_code {
    READY_OK = 0,
    READY_NOT_JOINED,
    READY_PG_BREAKER,
    READY_OFFSETS,
    READY_STOPPING,
};

/* FLUSH_BUSY: the writer was still busy when a bounded wait ended. */
enum flush_result { FLUSH_DONE, FLUSH_RETRY, FLUSH_ABANDONED, FLUSH_FATAL, FLUSH_BUSY };

struct aggregator {
    const struct aggr_config *cfg;
    struct aggr_metrics *m;
    /* The writers' connections (writer.connections); pg is the first, the
     * consumer thread's own while no batch is in flight (offset loads,
     * probes, isolating and shrinking a batch). */
    struct pg_writer *pgs[WRITER_MAX_CONNECTIONS];
    size_t npgs;
    struct pg_writer *pg;
    struct redis_store *redis;
    struct dedupe *dd;
    struct dlq *dlq;
    struct consumer *c;
    struct maintenance *maint;
    struct validate_window window; /* what ingest accepts (validate_accept) */
    struct breaker pg_breaker;
    struct breaker dlq_breaker; /* the DLQ producer */
    struct backoff retry;
    struct writer *wr;
    /* The in-flight batch: submitted to the writer, or waiting for a retry
     * (retrying) after a transient failure. Its offsets are the expected
     * offsets of the batch being built. */
    struct batch inflight;
    bool inflight_active;
    /* The parts the in-flight batch was cut into for the writers
     * (batch_split_parts; its rows are theirs meanwhile); 0: submitted
     * whole. */
    struct batch parts_inflight[WRITER_MAX_CONNECTIONS];
    size_t nparts_inflight;
    /* The in-flight batch was abandoned while the writer still wrote it (a
     * revocation waits only so long): its result, when it comes, is only
     * accounted. */
    bool inflight_orphaned;
    size_t inflight_msgs;
    /* Intake is held (partitions paused, polling goes on so the group keeps
     * us) while the writer is busy and the next batch is due, or an
     * orphaned write still runs. */
    bool held;
    struct batch batch;      /* the batch being built */
    size_t batch_msgs;       /* messages handled into the batch (rows, dups, DLQ) */
    size_t batch_bytes;      /* their value bytes (batch.max_bytes): decoded rows and DLQ
                                copies are held in memory until the batch commits */
    uint64_t batch_start_ms; /* when the first of them arrived */
    bool redis_filtered;     /* the Redis layer ran on this batch already */
    bool batch_replay;       /* the batch holds replayed offsets: no Redis layer */
    uint64_t next_offset_check_ms;
    struct part_state *parts;
    size_t nparts;
    bool retrying; /* a batch (in flight or sealing) waits for a retry; consumption paused */
    uint64_t retry_at_ms;
    bool fatal;
    bool joined;
    uint64_t next_periodic_ms, next_maint_ms;
    struct dedupe_stats last_dd;
    uint64_t last_dlq_failures, last_dlq_cut;
    atomic_int ready_code; /* read by httpd threads */
    bool stall_alerted;    /* AuditrailWriteStalled fired and not yet resolved */
    bool pg_answered;      /* a write or probe succeeded since it fired */
    bool resource_alerted; /* AuditrailWriteResources fired and not yet resolved */
    /* The last commit's WAL position and time (read by httpd threads for
     * /v1/status; flush.c records them). */
    atomic_uint_fast64_t commit_lsn;
    atomic_int_fast64_t commit_us;
    struct alerter *alerter; /* borrowed, may be NULL */
};

/* ---- aggregator.c ---- */

/* A non-retryable error (PostgreSQL schema or privileges, a fatal Kafka
 * client error): nothing more can be stored; the loop stops with an alert
 * (flushed when the alerter is freed). why is logged by the caller. */
void aggregator_fatal_stop(struct aggregator *a, const char *why);

/* ---- consume.c ---- */

/* Partition p's state (grown on first use), or NULL for p < 0. */
struct part_state *consume_part(struct aggregator *a, int32_t p);
/* Where to fetch p from: our position, else the stored offset, else the
 * beginning. */
int64_t consume_start_offset(const struct part_state *ps);
/* The stored offset of p, through the PostgreSQL breaker's bookkeeping
 * (the writer must be idle). 0 with *out, or -1 (logged). */
int consume_load_offset(struct aggregator *a, int32_t p, int64_t *out);
/* consume_load_offset, then look for a replay (asks Kafka for the group's
 * committed offset: only where the stored offset may have moved under us). */
int consume_load_offset_replay(struct aggregator *a, int32_t p, int64_t *out);
/* Handle one polled message (the caller destroys it). */
void consume_message(struct aggregator *a, rd_kafka_message_t *msg);
/* The consumer's rebalance hook (ud: the aggregator). */
void consume_rebalance(void *ud, bool assign, rd_kafka_topic_partition_list_t *parts);
/* Pause or resume the assigned partitions to match the state. */
void consume_sync_pause(struct aggregator *a);
/* Retry loading the stored offsets that could not be loaded at assignment. */
void consume_reload_offsets(struct aggregator *a);
/* Every OFFSET_CHECK_MS: notice offsets moved by a replay on quiet partitions. */
void consume_check_stored_offsets(struct aggregator *a, uint64_t now);
/* Apply the pending offset resets whose partitions no batch holds any more:
 * count, log, alert, and read the partition again from its log start. */
void consume_apply_resets(struct aggregator *a);

/* ---- flush.c ---- */

/* The batch being built holds rows or offsets. */
bool flush_has_content(const struct aggregator *a);
/* How long a rebalance callback waits for the writer before it goes on
 * without it (the group waits for the callback). */
#define FLUSH_REBALANCE_WAIT_MS 5000

/* The batch being built is due (batch_due on its counts). */
bool flush_due(const struct aggregator *a, uint64_t now);
enum flush_result flush_seal_and_submit(struct aggregator *a);
/* Take the in-flight batch's result (the writer is idle now). */
enum flush_result flush_finish(struct aggregator *a, struct writer_result *res);
void flush_retry_now(struct aggregator *a);
/* Wait for the in-flight batch up to deadline_ms (monotonic; 0 = as long as
 * it takes, which the writer's client deadline bounds) and take its
 * result; FLUSH_BUSY when it is still being written. */
enum flush_result flush_drain(struct aggregator *a, uint64_t deadline_ms);
void flush_all_once(struct aggregator *a);
void flush_abandon_all(struct aggregator *a, bool reload);
/* At stop: commit what was handled if PostgreSQL lets us within a short
 * while, else abandon it. */
void flush_at_stop(struct aggregator *a);

/* ---- health.c ---- */

void health_update_ready(struct aggregator *a);
/* The breakers' state-change hook (ud: the aggregator): log and alert. */
void health_on_breaker_change(void *ud, const struct breaker *b, enum breaker_state from,
                              enum breaker_state to);
/* Counters kept by modules without access to the registry. */
void health_sync_counters(struct aggregator *a);
/* While the PostgreSQL breaker is not closed and no batch probes it: ping. */
void health_probe_pg(struct aggregator *a);
/* Gauges: lag per partition, assigned partitions, breaker states; counters. */
void health_publish(struct aggregator *a);
/* A message went to the DLQ for reason vr: count it and alert. */
void health_dlq_sent(struct aggregator *a, enum validate_reason vr, const char *error);

#endif
