/* Envelope building (DESIGN.md §3): parse the record with its input's
 * format, decide `time`, encode the Kafka message value. */
#ifndef AUDITRAIL_AGENT_RECORD_H
#define AUDITRAIL_AGENT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/format.h"
#include "common/buf.h"
#include "common/envelope.h"
#include "common/hashchain.h"

struct record_ctx {
    const char *source_name;
    const char *host, *namespace_, *pod, *container; /* NULL = absent */
    int64_t max_past_us, max_future_us;
    struct envelope_time_cache tcache; /* main thread only */
    /* The format and field map of the last record, prepared (main thread
     * only): the agent reads many records of one input in a row. */
    struct format_prep prep;
    struct buf out; /* the last message value, reused (main thread only) */
};

struct record_in {
    enum format_kind kind;
    const struct field_map *map; /* valid and unchanged as long as the record_ctx */
    const char *stream_hex;      /* 32 hex */
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

/* The message value of *len bytes: envelope_encode_tc's bytes with the
 * context's time cache, in the context's buffer (valid until the next call;
 * the producer copies it). *parse_failed tells whether the format parser
 * fell back to raw. NULL only for a caller bug (see envelope_encode). */
const char *record_encode(struct record_ctx *c, const struct record_in *r, size_t *len,
                          bool *parse_failed);

/* Frees the context's buffers (not the strings it points to). */
void record_ctx_release(struct record_ctx *c);

#endif
