/* The batch writers: threads that run pg_writer_write off the consumer
 * thread, so that decoding the next batch overlaps PostgreSQL writing this
 * one, on writer.connections connections at once (DESIGN.md §10's
 * throughput budget). One job at a time: a batch cut into at most that many
 * parts (batch_split_parts: each Kafka partition and each stream in one
 * part), part i written on connection i in its own transaction, all parts
 * finished before the job's result is taken — so a partition's batches
 * still commit in order, one writer at a time, and the offset
 * compare-and-set is unchanged. Ownership: between writer_submit and the
 * writer_wait that returns its result, the parts and every pg_writer belong
 * to the writer threads; otherwise to the consumer thread (which may then
 * use the pg_writers directly). */
#ifndef AUDITRAIL_AGGREGATOR_WRITER_H
#define AUDITRAIL_AGGREGATOR_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/batch.h"
#include "aggregator/pg_writer.h"

/* writer.connections at most. */
#define WRITER_MAX_CONNECTIONS 16

struct writer;

/* The outcome of one part's transaction. */
struct writer_part {
    enum pg_status r;
    struct pg_write_stats stats; /* the caller releases it */
    char err[512];
    uint64_t elapsed_us;
    char commit_lsn[24]; /* the primary's WAL position after a commit ("" = unknown) */
};

struct writer_result {
    size_t n; /* parts of the job, as submitted */
    struct writer_part part[WRITER_MAX_CONNECTIONS];
};

/* Start one thread per pg_writer (n in 1..WRITER_MAX_CONNECTIONS); the
 * pg_writers are borrowed. Aborts if a thread cannot start. */
struct writer *writer_new(struct pg_writer *const *pgs, size_t n);
/* Wait for a job in progress, stop and join the threads. NULL-safe. */
void writer_free(struct writer *w);
/* How many connections (the most parts a job may have). */
size_t writer_connections(const struct writer *w);
/* Hand parts[0..n) to the threads, part i to connection i (it must be idle:
 * not busy; 1 <= n <= writer_connections). */
void writer_submit(struct writer *w, const struct batch *const *parts, size_t n);
/* A job was submitted and its result not yet taken. */
bool writer_busy(const struct writer *w);
/* Wait up to timeout_ms (-1 = forever) for every part of the job; true with
 * *out filled (the writer is idle again), false on timeout or when nothing
 * is busy. */
bool writer_wait(struct writer *w, int timeout_ms, struct writer_result *out);
/* The longest PostgreSQL call in flight on any connection, ms (0: none).
 * Any thread. */
uint64_t writer_busy_ms(const struct writer *w);

#endif
