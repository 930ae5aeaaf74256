/* The batch writer thread: runs pg_writer_write for one batch at a time off
 * the consumer thread, so that decoding the next batch overlaps PostgreSQL
 * writing this one (DESIGN.md §10's throughput budget). Ownership: between
 * writer_submit and the writer_wait that returns its result, the batch and
 * the pg_writer belong to the writer thread; otherwise both belong to the
 * consumer thread (which may then use the pg_writer directly). */
#ifndef AUDITRAIL_AGGREGATOR_WRITER_H
#define AUDITRAIL_AGGREGATOR_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/batch.h"
#include "aggregator/pg_writer.h"

struct writer;

struct writer_result {
    enum pg_status r;
    struct pg_write_stats stats; /* the caller releases it */
    char err[512];
    uint64_t elapsed_us;
    char commit_lsn[24]; /* the primary's WAL position after a commit ("" = unknown) */
};

/* Start the thread; pg is borrowed. Aborts if the thread cannot start. */
struct writer *writer_new(struct pg_writer *pg);
/* Wait for a job in progress, stop and join the thread. NULL-safe. */
void writer_free(struct writer *w);
/* Hand b to the thread (it must be idle: not busy). */
void writer_submit(struct writer *w, const struct batch *b);
/* A job was submitted and its result not yet taken. */
bool writer_busy(const struct writer *w);
/* Wait up to timeout_ms (-1 = forever) for the job; true with *out filled
 * (the writer is idle again), false on timeout or when nothing is busy. */
bool writer_wait(struct writer *w, int timeout_ms, struct writer_result *out);

#endif
