/* Envelope building (DESIGN.md §3): parse the record with its input's
 * format, decide `time`, encode the Kafka message value. */
#ifndef AUDITRAIL_AGENT_RECORD_H
#define AUDITRAIL_AGENT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/format.h"
#include "common/envelope.h"
#include "common/hashchain.h"
#include "common/timeutil.h"

/* The formatted whole second of the last timestamp written. */
struct record_time_cache {
    bool valid;
    int64_t sec;
    char text[TIME_RFC3339_LEN];
};

struct record_ctx {
    const char *source_name;
    const char *host, *namespace_, *pod, *container; /* NULL = absent */
    int64_t max_past_us, max_future_us;
    struct record_time_cache tcache; /* main thread only */
};

struct record_in {
    enum format_kind kind;
    const struct field_map *map;
    const char *stream_hex; /* 32 hex */
    const char *path;
    uint64_t seq, offset, truncated;
    const uint8_t *prev, *hash; /* CHAIN_HASH_LEN each */
    const uint8_t *data;
    size_t len;
    int64_t read_time_us;
};

/* Payload time if found and within [now - max_past, now + max_future], else
 * the read time. Returns TIME_SOURCE_* of common/envelope.h. */
int record_decide_time(const struct record_ctx *c, bool have_time, int64_t payload_us,
                       int64_t read_us, int64_t *out_us);

/* The message value (heap, malloc'd: librdkafka may free it) of *len bytes.
 * *parse_failed tells whether the format parser fell back to raw.
 *
 * The JSON is written directly rather than through common/envelope.c's
 * jansson tree: measured by bench/agent, building and dumping the tree cost
 * ~15 us per record (about 60k records/s on one core), ten times the budget.
 * The output is the same JSON value as envelope_encode's (same keys, same
 * strings; tests/unit/test_agent_record.c checks them against each other). */
char *record_encode(struct record_ctx *c, const struct record_in *r, size_t *len,
                    bool *parse_failed);

/* The envelope JSON of e (what envelope_encode gives, written directly).
 * Heap (malloc), *len bytes, NUL-terminated. */
char *record_envelope_json(const struct envelope *e, size_t *len);
/* Same, reusing (and updating) a per-thread cache of formatted seconds. */
char *record_envelope_json_tc(const struct envelope *e, size_t *len, struct record_time_cache *tc);

#endif
