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
                                  size_t errlen) __attribute__((warn_unused_result));
struct alerter;
/* Send alerts (breaker opens, DLQ writes, integrity incidents) through al
 * (borrowed, may be NULL). Call before aggregator_run. */
void aggregator_set_alerter(struct aggregator *a, struct alerter *al);

/* Run until *stop becomes non-zero (then finish or abandon the batch, close
 * the consumer: the group sees us leave) or a fatal error. Returns 0 after a
 * clean stop, 1 after a fatal error (logged). */
int aggregator_run(struct aggregator *a, const volatile sig_atomic_t *stop);
void aggregator_free(struct aggregator *a); /* NULL-safe */

/* httpd ready callback (any thread): ready when the group assigned us
 * partitions whose offsets are loaded (or none at all), and the PostgreSQL
 * breaker is closed. */
bool aggregator_ready(void *ud, char *reason, size_t len);

/* Any thread: the last commit's WAL position and time (false before the
 * first). The query API's /v1/status shows it (query_ingest_fn). */
bool aggregator_last_commit(void *ud, uint64_t *lsn, int64_t *commit_us);

#endif
