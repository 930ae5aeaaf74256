/* The aggregator's consumer loop (DESIGN.md §4–6): consume ▸ validate ▸
 * dedupe ▸ batch ▸ one PostgreSQL transaction per batch (rows + offsets) ▸
 * mark dedupe caches ▸ commit offsets to Kafka for lag monitoring. Poison
 * messages go to the DLQ; PostgreSQL faults go through a breaker that pauses
 * consumption. Threads: everything here runs on the caller's thread except
 * aggregator_ready, which libmicrohttpd's threads call (it reads atomics). */
#ifndef AUDITRAIL_AGGREGATOR_AGGREGATOR_H
#define AUDITRAIL_AGGREGATOR_AGGREGATOR_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/aggr_config.h"
#include "aggregator/aggr_metrics.h"

struct aggregator;

/* Connect to PostgreSQL (writer), Redis (if configured; lazily), create the
 * DLQ producer and the consumer (subscribed). Migrations are the caller's
 * job. NULL with err set when a dependency cannot be configured or
 * PostgreSQL is unreachable at start. cfg and am must outlive it. */
struct aggregator *aggregator_new(const struct aggr_config *cfg, struct aggr_metrics *am, char *err,
                                  size_t errlen);
struct alerter;
/* Send alerts (breaker opens, DLQ writes, integrity incidents) through al
 * (borrowed, may be NULL). Call before aggregator_run. */
void aggregator_set_alerter(struct aggregator *a, struct alerter *al);

/* Run until *stop becomes non-zero (then finish or abandon the batch, close
 * the consumer: the group sees us leave) or a fatal error. Returns 0 after a
 * clean stop, 1 after a fatal error (logged). */
int aggregator_run(struct aggregator *a, const volatile sig_atomic_t *stop);
void aggregator_free(struct aggregator *a); /* NULL-safe */

/* The flush rule: a batch with content is due when it holds max_events
 * messages (rows, re-sends and DLQ'd ones alike), max_bytes record bytes, or
 * its first message is max_ms old. */
bool aggregator_batch_due(const struct aggr_batch_conf *bc, size_t msgs, size_t bytes,
                          uint64_t start_ms, uint64_t now_ms);

struct batch;
/* For isolating rows PostgreSQL refuses: split b at row k into lo (rows
 * [0,k)) and hi (rows [k,n)), both initialized here; rows move (b's become
 * empty envelopes), b keeps its offsets. lo advances each partition it holds
 * rows of to just past its last row there (from b's expected offset); hi
 * continues from there (or from b's expected offset) to b's next offset, so
 * committing lo then hi commits exactly what b would have. */
void aggregator_batch_split(struct batch *b, size_t k, struct batch *lo, struct batch *hi);

/* httpd ready callback (any thread): ready when the group assigned us
 * partitions whose offsets are loaded (or none at all), and the PostgreSQL
 * breaker is closed. */
bool aggregator_ready(void *ud, char *reason, size_t len);

#endif
