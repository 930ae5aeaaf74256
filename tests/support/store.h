/* What the aggregator stored: row counts, draining a topic to quiescence,
 * and the exact comparison of auditrail.events with records computed
 * independently (tests/support/chain.h). */
#ifndef AUDITRAIL_TEST_STORE_H
#define AUDITRAIL_TEST_STORE_H

#include <stdbool.h>

#include "tests/support/chain.h"

/* count(*) of auditrail.events; -1 when the database cannot be asked. */
long long store_rows(const char *conninfo);
/* Wait until store_rows reaches n. */
bool store_wait_rows(const char *conninfo, long long n, unsigned timeout_ms);

/* Wait until the offsets stored in auditrail.kafka_offsets for topic reach
 * the high watermark of every partition (asked again once reached, until
 * they stand still): every message the topic holds has been handled
 * (stored, dropped as a re-send or dead-lettered), and as rows and offsets
 * commit together, no row for them can come later. Call it once whatever
 * produces to topic has stopped; then "no duplicate" and "no loss" can be
 * asserted. */
bool store_wait_drained(const char *conninfo, const char *brokers, const char *topic,
                        unsigned timeout_ms);

/* Assert that auditrail.events holds exactly the records of want, each
 * once: the same (stream, seq) pairs, and for each its id, hash, prev_hash,
 * raw bytes and event_time. Fails with the first difference. */
void store_assert_records(const char *conninfo, const struct trecs *want);

#endif
