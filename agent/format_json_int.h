/* Internals of the JSON-based formats (json, k8s-audit, fhir): the fast path
 * that reads only the mapped values in one pass (no document), and the
 * jansson reference it must equal byte for byte and falls back to.
 * Only agent/format*.c and the tests include it. */
#ifndef AUDITRAIL_AGENT_FORMAT_JSON_INT_H
#define AUDITRAIL_AGENT_FORMAT_JSON_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/format.h"

/* ---- the two implementations */

/* fmt_json_parse_fast's answer for a record it does not decide alone: out is
 * then zeroed (format = kind) and the caller asks fmt_json_parse_jansson. */
#define FMT_JSON_DECLINED 1

/* Fast path. Returns 0 or -1 exactly as fmt_json_parse_jansson would (same
 * fields, time and error text), or FMT_JSON_DECLINED for what it leaves to
 * jansson: anything that is not a well-formed JSON object (jansson writes
 * the error), raw NUL bytes, integers beyond int64, reals that may overflow,
 * nesting deeper than FMT_JSON_MAX_DEPTH, escaped keys longer than 256 bytes,
 * more paths than a query holds. `out` as for format_parse, `rec` without
 * its trailing '\r'. */
int fmt_json_parse_fast(enum format_kind kind, const struct field_map *map, const uint8_t *rec,
                        size_t len, struct parsed_record *out);

/* The fast path in two steps, for many records of one input: prepare the
 * paths of (kind, map) into `plan` (FORMAT_PREP_BYTES of format_prep's
 * storage; false when they do not fit, then every record is declined), then
 * parse with it. */
bool fmt_json_plan_init(void *plan, enum format_kind kind, const struct field_map *map);
int fmt_json_parse_planned(const void *plan, const uint8_t *rec, size_t len,
                           struct parsed_record *out);

/* The jansson implementation: parse the whole document, then look up. */
int fmt_json_parse_jansson(enum format_kind kind, const struct field_map *map, const uint8_t *rec,
                           size_t len, struct parsed_record *out);

/* An object or array (well-formed JSON text, integers within int64) as
 * json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes it, made a C string
 * (utf8_sanitize_str); heap, or NULL. jansson: the rare mapped container. */
char *fmt_json_compact(const uint8_t *text, size_t len);

/* ---- the scanner (format_json_scan.c) */

#define FMT_JSON_MAX_PATHS  64  /* one bit each in a uint64_t */
#define FMT_JSON_MAX_COMPS  128 /* path components over all paths */
#define FMT_JSON_MAX_DEPTH  32  /* deeper documents are declined */
#define FMT_JSON_KEY_FILTER 2   /* depths with a member-name filter */

/* One component of a dotted path, as jansson's lookup reads it: the text
 * names an object member; idx >= 0 when the text is 1-9 decimal digits,
 * the array element it indexes (anything else finds nothing in an array). */
struct fmt_json_comp {
    const char *s;
    uint32_t n;
    int32_t idx;
};

/* The paths one scan looks for. Strings are referenced, not copied. */
struct fmt_json_query {
    unsigned npaths, ncomps;
    uint16_t first[FMT_JSON_MAX_PATHS]; /* index of the path's first component */
    uint8_t ncomp[FMT_JSON_MAX_PATHS];
    uint64_t ends[FMT_JSON_MAX_DEPTH + 1]; /* paths with exactly d components */
    /* paths whose component at depth d hashes (fmt_json_key_hash) to h: most
     * members of a record are looked at by no path, and this says so at once */
    uint64_t by_hash[FMT_JSON_KEY_FILTER][64];
    struct fmt_json_comp comp[FMT_JSON_MAX_COMPS];
};

void fmt_json_query_init(struct fmt_json_query *q);
/* Add a dotted path ("user.username", "agent.0.who", "" for the record
 * itself), split exactly as the jansson lookup splits it. Returns its id
 * (0, 1, ...), or -1 when the query is full or the path too deep. */
int fmt_json_query_add(struct fmt_json_query *q, const char *path);

enum fmt_jv_type {
    FMT_JV_ABSENT = 0,
    FMT_JV_NULL,
    FMT_JV_FALSE,
    FMT_JV_TRUE,
    FMT_JV_INT,
    FMT_JV_REAL,
    FMT_JV_STRING,
    FMT_JV_OBJECT,
    FMT_JV_ARRAY,
};

/* A value found by a scan, pointing into the record: a string's bytes
 * between its quotes (esc: it holds backslash escapes), a number's token,
 * an object's or array's whole text. */
struct fmt_jv {
    enum fmt_jv_type type;
    bool esc;
    const uint8_t *p;
    size_t n;
};

/* Validate rec[0, len) the way jansson's json_loadb(JSON_ALLOW_NUL) does and
 * find the query's paths in one pass: 0 when rec is a JSON object that the
 * fast path may read (vals[i] = the value at path i, ABSENT when missing;
 * for a duplicate key the last value counts, as in jansson), -1 to decline
 * (see FMT_JSON_DECLINED). vals holds q->npaths entries. */
int fmt_json_scan(const struct fmt_json_query *q, const uint8_t *rec, size_t len,
                  struct fmt_jv *vals);

/* Values as the jansson implementation turns them into fields (heap strings,
 * valid UTF-8 without NUL; NULL when there is none): */
/* strings (NUL -> U+FFFD), integers, reals ("403.0" -> "403", else %.15g),
 * true/false; NULL for null, objects, arrays and absent values. */
char *fmt_jv_scalar_dup(const struct fmt_jv *v);
/* fmt_jv_scalar_dup, but objects and arrays become compact JSON text. */
char *fmt_jv_mapped_dup(const struct fmt_jv *v);
/* A time: strings by fmt_time_from_text, numbers by fmt_time_from_epoch.
 * 0, or -1 for anything else or an unreadable value. */
int fmt_jv_time(const struct fmt_jv *v, int64_t *us);
/* A string's value as a C string reads it (cut at its first NUL) written at
 * dst, which has room for v->n bytes (no NUL is added), its length in *n.
 * false (nothing written) when v is not a string. */
bool fmt_jv_cstr(const struct fmt_jv *v, char *dst, size_t *n);
/* Is v a string whose C-string value equals s? */
bool fmt_jv_cstr_is(const struct fmt_jv *v, const char *s);

#endif
