/* Validation of one consumed Kafka message: size and presence checks here,
 * structure and hash/id verification by envelope_decode. A failure yields a
 * reason class (a bounded metric label and the DLQ header prefix) and the
 * decoder's message. */
#ifndef AUDITRAIL_AGGREGATOR_VALIDATE_H
#define AUDITRAIL_AGGREGATOR_VALIDATE_H

#include <stddef.h>

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

#endif
