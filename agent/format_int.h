/* Internals shared by the format parsers (agent/format*.c): failure reporting,
 * the default field names and per-family entry points.
 * Not part of the agent's contract; only agent/format*.c include it. */
#ifndef AUDITRAIL_AGENT_FORMAT_INT_H
#define AUDITRAIL_AGENT_FORMAT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/format.h"

/* The five audit fields in a fixed order, so parsers can loop over them. */
enum fmt_field { FMT_TENANT = 0, FMT_ACTOR, FMT_ACTION, FMT_RESOURCE, FMT_OUTCOME, FMT_NFIELDS };

/* Generic key names tried in order for the json and kv formats when the
 * field map has no override (NULL-terminated lists). */
extern const char *const fmt_default_names[FMT_NFIELDS][5];
/* Generic time keys for json, tried in order. */
extern const char *const fmt_default_time_names[6];

/* The override for field f in map (NULL when map is NULL or has none). */
const char *fmt_map_get(const struct field_map *map, enum fmt_field f);
/* Address of field f in a parsed record. */
char **fmt_field_slot(struct parsed_record *r, enum fmt_field f);

/* Mark `out` failed: free any fields, format = FORMAT_RAW, no time, err set.
 * Always returns -1 so parsers can `return fmt_fail(...)`. */
int fmt_fail(struct parsed_record *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse a timestamp value found in a field: RFC 3339 (time_parse_rfc3339),
 * else a decimal epoch "1700000000[.123]" in seconds. 0 or -1. */
int fmt_time_from_text(const char *s, size_t n, int64_t *us);
/* A JSON real as a field: integral values as integers ("403", not "403.0"
 * or "4.03e+02"), the others with %.15g. Heap. */
char *fmt_real_dup(double d);
/* Epoch number of unknown unit -> µs, by magnitude: < 1e11 seconds, < 1e14
 * milliseconds, < 1e17 microseconds, else nanoseconds. Negative, NaN or
 * infinite values -> -1. */
int fmt_time_from_epoch(double v, int64_t *us);

/* One key=value pair found by fmt_kv_next; pointers into the record. */
struct fmt_kv_pair {
    const uint8_t *key, *val;
    size_t klen, vlen;
    char quote; /* 0 (bare value), '"' or '\'': val is inside the quotes, still escaped */
};

/* Find the next key=value pair at or after *pos in s[0..n). Separators are
 * spaces, tabs and 0x1d (auditd's enrichment separator), plus ',' when
 * `comma_sep`. Words without '=' are skipped. Quoted values end at the
 * matching unescaped quote (or the end of input when unterminated).
 * Returns true with *p filled and *pos advanced, false at the end. */
bool fmt_kv_next(const uint8_t *s, size_t n, size_t *pos, bool comma_sep, struct fmt_kv_pair *p);
/* The pair's value as a heap string: backslash escapes of quoted values
 * resolved (\n \t \r, any other \x -> x), then made valid UTF-8. */
char *fmt_kv_value_dup(const struct fmt_kv_pair *p);
/* Does the pair's key equal the NUL-terminated name? */
bool fmt_kv_key_is(const struct fmt_kv_pair *p, const char *name);

/* Family parsers. `rec`/`len` have no trailing '\r'; `out` is zeroed with
 * out->format = kind. Return 0, or fmt_fail(...). */
int fmt_parse_kv(const struct field_map *map, const uint8_t *rec, size_t len,
                 struct parsed_record *out);
int fmt_parse_auditd(const struct field_map *map, const uint8_t *rec, size_t len,
                     struct parsed_record *out);

#endif
