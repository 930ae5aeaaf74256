/* The Kafka envelope of DESIGN.md §3 (schemas/audit-event.v1.schema.json):
 * the value type, its encoder for the agent (envelope_encode.c) and its
 * decoder + validator for the aggregator (envelope_decode.c). */
#ifndef AUDITRAIL_ENVELOPE_H
#define AUDITRAIL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hashchain.h"
#include "common/timeutil.h"

enum time_source { TIME_SOURCE_PAYLOAD = 0, TIME_SOURCE_READ = 1 };

struct envelope_source {
    char *name, *host, *namespace_, *pod, *container, *path; /* NULL = absent */
};

struct envelope_fields {
    char *tenant, *actor, *action, *resource, *outcome; /* NULL = absent (JSON null) */
};

struct envelope {
    int v; /* 1 */
    char id[CHAIN_UUID_LEN + 1];
    char stream[CHAIN_STREAM_HEX_LEN + 1];
    uint64_t seq;
    uint64_t offset; /* byte offset of the record's first byte in its file */
    uint8_t hash[CHAIN_HASH_LEN];
    uint8_t prev[CHAIN_HASH_LEN];
    int64_t time_us; /* the event time the agent decided */
    enum time_source time_source;
    int64_t read_time_us;
    struct envelope_source source;
    char *format; /* json|kv|k8s-audit|auditd|fhir|raw */
    struct envelope_fields fields;
    uint8_t *line; /* exact record bytes (may contain NUL, may be invalid UTF-8) */
    size_t line_len;
    uint64_t truncated_bytes; /* bytes cut off by max_record_bytes; 0 = not cut */
};

/* Largest seq / offset / truncated_bytes on the wire: 2^53 - 1, so that any
 * JSON reader (doubles included) reads the exact value. */
#define ENVELOPE_MAX_INT 9007199254740991ULL

/* Serialize to compact JSON. "line" holds the record as a JSON string when it
 * is valid UTF-8 (NUL escaped as \u0000), else "line_b64" holds its base64.
 * Keys come in the order of DESIGN.md §3; absent source members are omitted,
 * absent fields are null; "truncated_bytes" only when non-zero. Invalid UTF-8
 * in source/fields/format strings becomes U+FFFD (the record itself is always
 * byte-exact). Strings are escaped as jansson's json_dumps(JSON_COMPACT) does
 * (\b \f \n \r \t \" \\ short, other controls as \u00XX upper-case; '/',
 * DEL and non-ASCII as is), so the bytes equal json_dumps of the same values.
 * Returns a heap buffer (malloc: caller frees) of *len bytes (len may be
 * NULL), NUL-terminated; NULL only for a caller bug (source.name or format
 * NULL, or an integer above ENVELOPE_MAX_INT). Out of memory aborts (xmalloc). */
char *envelope_encode(const struct envelope *e, size_t *len);

/* The whole second envelope_encode_tc formatted last for each of the two
 * timestamps (time, read_time: a record's payload time and its read time
 * are usually in different seconds): the date part costs more per record
 * than the fraction. Zero-initialise; one per thread (written without a
 * lock). */
struct envelope_time_cache {
    struct {
        bool valid;
        int64_t sec;
        char text[TIME_RFC3339_LEN];
    } slot[2];
};

/* envelope_encode, byte for byte, reusing and updating tc (NULL = none). */
char *envelope_encode_tc(const struct envelope *e, size_t *len, struct envelope_time_cache *tc);

struct buf;
/* The same bytes written over *b (its length set to theirs; its memory
 * kept for the next call: the agent encodes every record into one buffer
 * and librdkafka copies the message). False, b empty, for the caller bugs
 * envelope_encode answers NULL to. */
bool envelope_encode_buf(const struct envelope *e, struct buf *b, struct envelope_time_cache *tc);

/* Why a message value is not a valid v1 envelope. The text of each is
 * envelope_strerror; where it needs more, envelope_decode also gives a
 * detail (the field, the version, the parser's message). */
enum envelope_err {
    ENVELOPE_OK = 0,
    ENVELOPE_ERR_NOT_JSON,            /* "not JSON"; detail: the parser's message */
    ENVELOPE_ERR_NOT_OBJECT,          /* "not an object" */
    ENVELOPE_ERR_NO_VERSION,          /* "missing field: v" */
    ENVELOPE_ERR_BAD_VERSION,         /* "bad field: v" (not an integer) */
    ENVELOPE_ERR_UNSUPPORTED_VERSION, /* "unsupported version"; detail: N */
    ENVELOPE_ERR_MISSING_FIELD,       /* "missing field"; detail: the field */
    ENVELOPE_ERR_BAD_FIELD,           /* "bad field"; detail: the field */
    ENVELOPE_ERR_BAD_TIME,            /* "bad field"; detail: time or read_time */
    ENVELOPE_ERR_UNKNOWN_FIELD,       /* "unknown field"; detail: the field */
    ENVELOPE_ERR_LINE_TWICE,          /* "both line and line_b64" */
    ENVELOPE_ERR_HASH_MISMATCH,       /* "hash mismatch" */
    ENVELOPE_ERR_ID_MISMATCH,         /* "id mismatch" */
    ENVELOPE_ERR_COUNT
};

/* The text of e (static; "unknown error" outside the enum). */
const char *envelope_strerror(enum envelope_err e);
/* The whole reason into buf: "<strerror>: <detail>", or the text alone when
 * detail is NULL or empty ("missing field: seq", "hash mismatch"). */
void envelope_error_text(enum envelope_err e, const char *detail, char *buf, size_t len);

/* Parse and validate one message value. Checks: JSON object, v == 1, every
 * required field present with the right type (id, stream, seq, offset, hash,
 * prev, time, read_time, time_source, source.name, format, line|line_b64),
 * formats (uuid, 32/64 hex, RFC 3339 times), and that hash and id match the
 * record bytes (DESIGN.md §2). Also refused: unknown keys (top level, source,
 * fields), duplicate keys, integers above ENVELOPE_MAX_INT, NUL inside
 * source/fields strings. Returns ENVELOPE_OK (0) or the first problem, with
 * its detail in `detail` (printable ASCII, "" when there is none; field names
 * as "source.name", "fields.actor", "line or line_b64"; detail may be NULL).
 * `out` must be zeroed; on error it may be partly filled: call
 * envelope_release. On success out->line is never NULL and has a NUL after
 * its line_len bytes (convenience only). */
enum envelope_err envelope_decode(const char *buf, size_t len, struct envelope *out, char *detail,
                                  size_t detaillen) __attribute__((warn_unused_result));

/* Recompute hash from prev/seq/line and id from hash: ENVELOPE_OK,
 * ENVELOPE_ERR_HASH_MISMATCH or ENVELOPE_ERR_ID_MISMATCH. */
enum envelope_err envelope_verify(const struct envelope *e);

/* Free the heap members of e (strings, line) and zero it. NULL-safe. */
void envelope_release(struct envelope *e);

#endif
