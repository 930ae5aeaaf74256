/* Validation of one consumed Kafka message: size and presence checks here,
 * structure and hash/id verification by envelope_decode. A failure yields a
 * reason class (a bounded metric label and the DLQ header prefix) and the
 * decoder's message. */
#ifndef AUDITRAIL_AGGREGATOR_VALIDATE_H
#define AUDITRAIL_AGGREGATOR_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"

enum validate_reason {
    VALIDATE_OK = 0,
    VALIDATE_NULL,      /* no value (tombstone) */
    VALIDATE_OVERSIZE,  /* value larger than batch.max_message_bytes */
    VALIDATE_DECODE,    /* not JSON, or not an object */
    VALIDATE_VERSION,   /* v missing, not an integer, or not 1 */
    VALIDATE_SCHEMA,    /* missing, unknown or malformed fields */
    VALIDATE_TIME,      /* time or read_time not a valid RFC 3339 timestamp */
    VALIDATE_INTEGRITY, /* hash or id does not match the record bytes */
    VALIDATE_STORAGE,   /* PostgreSQL refused the row (data error) */
    VALIDATE_REASON_COUNT
};

/* "null", "oversize", "decode", "version", "schema", "time", "integrity",
 * "storage" ("ok" for VALIDATE_OK). Static strings. */
const char *validate_reason_name(enum validate_reason r);

/* The reason class of an envelope_decode error (VALIDATE_OK for ENVELOPE_OK). */
enum validate_reason validate_classify(enum envelope_err e);

/* Validate one message value (NULL = no value). On VALIDATE_OK *out holds the
 * envelope (caller releases it); otherwise *out is released and err holds
 * "<reason>: <detail>". `out` must be zeroed. */
enum validate_reason validate_message(const void *value, size_t len, size_t max_bytes,
                                      struct envelope *out, char *err, size_t errlen);

/* What ingest accepts beyond a well-formed envelope (DESIGN.md §5): `time`
 * inside [now - max_age_us, now + max_future_us] of the aggregator's clock.
 * The window only decides store or DLQ: an accepted time is stored as given. */
struct validate_window {
    int64_t max_future_us; /* ingest.max_future_s */
    int64_t max_age_us;    /* validate_max_age_us(); 0 = no lower bound */
};

/* The oldest age accepted so that a record stored now is never in a
 * partition the next maintenance run drops: retention keeps days newer than
 * today - retention_days, and the next run starts within one maintenance
 * interval, so the margin is that interval plus one day (the partition
 * holding a time starts up to a day before it). */
int64_t validate_max_age_us(int64_t retention_days, int64_t maintenance_interval_s);

/* The checks of an envelope that validate_message accepted, against its
 * Kafka key and the window: VALIDATE_OK; VALIDATE_SCHEMA ("schema: key does
 * not match stream") when the key is not the envelope's stream id;
 * VALIDATE_TIME when time is outside the window (err names the bound and the
 * time, nothing else of the record). A message without a key is accepted
 * and *keyless set (the caller counts it). */
enum validate_reason validate_accept(const struct envelope *env, const void *key, size_t keylen,
                                     const struct validate_window *w, int64_t now_us, bool *keyless,
                                     char *err, size_t errlen);

#endif
