/* Writing JSON text straight into a buf (common/buf.h): strings escaped
 * byte for byte as jansson's json_dumps(JSON_COMPACT) escapes them, numbers,
 * hex and base64 strings. For hot paths (the agent's envelope, the query
 * API's rows) where building a jansson tree costs more than the work. */
#ifndef AUDITRAIL_JSONW_H
#define AUDITRAIL_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Append s[0, n) as a JSON string if it is valid UTF-8 (true), else leave b
 * as it was (false). */
bool jsonw_str(struct buf *b, const void *s, size_t n);
/* Append s[0, n) as a JSON string; bytes that are not valid UTF-8 become
 * U+FFFD (for descriptive values, never for bytes that must travel exactly). */
void jsonw_str_lossy(struct buf *b, const void *s, size_t n);
/* jsonw_str_lossy of a C string. */
void jsonw_cstr(struct buf *b, const char *s);
/* An object key and its colon, preceded by a comma unless first. k is a
 * literal key that needs no escaping. */
void jsonw_key(struct buf *b, const char *k, bool first);
void jsonw_u64(struct buf *b, uint64_t v);
void jsonw_i64(struct buf *b, int64_t v);
/* n bytes as a string of 2n lower-case hex characters. */
void jsonw_hex(struct buf *b, const uint8_t *h, size_t n);
/* n bytes as a string of standard base64 with padding. */
void jsonw_b64(struct buf *b, const uint8_t *in, size_t n);

#endif
