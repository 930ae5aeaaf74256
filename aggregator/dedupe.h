/* The aggregator's dedupe layers before PostgreSQL (DESIGN.md §4):
 *   batch — the same id twice in the batch being built (hash set);
 *   lru   — ids committed recently by this process (common/lru.h);
 *   redis — ids committed recently by any aggregator (redis_store), behind
 *           its own breaker: when Redis fails the layer is skipped, counted,
 *           and ingestion continues.
 * The per-stream rule and the primary key guard run in the pg_writer.
 * Ids enter the LRU and Redis only after their transaction committed.
 * Owned by the consumer thread. */
#ifndef AUDITRAIL_AGGREGATOR_DEDUPE_H
#define AUDITRAIL_AGGREGATOR_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/batch.h"
#include "common/breaker.h"

struct redis_store;

struct dedupe_stats {
    uint64_t redis_errors;  /* calls that failed (Redis unreachable) */
    uint64_t redis_skipped; /* lookups skipped: error or breaker open */
};

struct dedupe;

/* lru_size >= 1. redis may be NULL (no Redis layer); it stays owned by the
 * caller. bconf configures the Redis breaker (NULL = defaults); on_change
 * (may be NULL) hears its transitions, with change_ud. */
struct dedupe *dedupe_new(size_t lru_size, struct redis_store *redis,
                          const struct breaker_conf *bconf, breaker_change_fn on_change,
                          void *change_ud);
void dedupe_free(struct dedupe *d); /* NULL-safe */

/* Batch layer: true when id is already in the batch being built; otherwise
 * remembers it and returns false. */
bool dedupe_batch_seen(struct dedupe *d, const char *id);
/* Forget the batch layer (batch committed, abandoned or split). */
void dedupe_batch_reset(struct dedupe *d);

/* LRU layer: true when id was committed recently by this process. */
bool dedupe_lru_seen(struct dedupe *d, const char *id);

/* Redis layer for every row of b: drop the rows Redis has seen (their
 * envelopes are released, order is kept; the batch's offsets are untouched
 * so those messages still count as handled). Returns the number of rows
 * dropped, or -1 when the layer was skipped (no Redis, breaker open, or an
 * error: counted in stats). */
long dedupe_redis_filter(struct dedupe *d, struct batch *b);

/* After a commit: mark in the LRU and Redis the ids of rows with
 * committed[i] != 0 (committed may be NULL: none). A Redis failure is
 * counted and otherwise ignored (the LRU and PostgreSQL still guard). */
void dedupe_mark_committed(struct dedupe *d, const struct batch *b, const uint8_t *committed);

const struct dedupe_stats *dedupe_stats(const struct dedupe *d);
/* The Redis breaker (for its state metric); NULL when no Redis. */
const struct breaker *dedupe_redis_breaker(const struct dedupe *d);

#endif
