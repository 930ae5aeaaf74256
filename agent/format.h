/* Format parsers: pull the event time and the five audit fields out of one
 * record. A parser never fails the record: on error the record ships as raw
 * and the error is counted (issue 3). Safe on any byte sequence. */
#ifndef AUDITRAIL_AGENT_FORMAT_H
#define AUDITRAIL_AGENT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

enum format_kind {
    FORMAT_JSON = 0,
    FORMAT_KV,
    FORMAT_K8S_AUDIT,
    FORMAT_AUDITD,
    FORMAT_FHIR,
    FORMAT_RAW,
    FORMAT_COUNT
};

/* "json", "kv", "k8s-audit", "auditd", "fhir", "raw" -> kind; -1 if unknown. */
int format_kind_parse(const char *name, enum format_kind *out);
const char *format_kind_name(enum format_kind k);

/* Per-input overrides of where a field comes from (config `fields:` map of
 * the input): keys time, tenant, actor, action, resource, outcome; values
 * are dotted JSON paths ("user.username", "agent.0.who.display") for the
 * JSON-based formats and key names for kv/auditd. NULL/absent = the format's
 * default. */
struct field_map {
    const char *time, *tenant, *actor, *action, *resource, *outcome;
};
/* Build a field_map from a config map; unknown keys -> -1 with a message
 * naming the key. Strings point into `m` (no copies). */
int field_map_from_cfg(const struct cfg_map *m, struct field_map *out, char *err, size_t errlen);

struct parsed_record {
    enum format_kind format; /* the input's format, or FORMAT_RAW after an error */
    bool have_time;
    int64_t time_us;                                    /* event time from the payload, UTC µs */
    char *tenant, *actor, *action, *resource, *outcome; /* heap or NULL */
    char err[160];                                      /* why parsing failed (empty on success) */
};

/* Parse `len` bytes (no trailing '\n'; may contain '\r', NUL, invalid UTF-8).
 * Returns 0 on success; -1 when the record could not be read as `kind`:
 * then out->format = FORMAT_RAW, no fields, no time, out->err says why.
 * FORMAT_RAW itself always succeeds with no fields. `out` need not be
 * initialised; release it with parsed_record_release. */
int format_parse(enum format_kind kind, const struct field_map *map, const uint8_t *rec, size_t len,
                 struct parsed_record *out);
void parsed_record_release(struct parsed_record *r);

/* A format and field map prepared once for many records: what format_parse
 * works out on every call (for the JSON formats, the paths to look for).
 * Holds no heap memory, so it can live in any context without a release;
 * it refers to the map and its strings, which must outlive it and not
 * change. Zero-initialised: prepared for nothing (format_prep_matches is
 * false). */
#define FORMAT_PREP_BYTES 4096
struct format_prep {
    bool ready;
    enum format_kind kind;
    const struct field_map *map;
    _Alignas(16) unsigned char plan[FORMAT_PREP_BYTES];
};
void format_prep_init(struct format_prep *p, enum format_kind kind, const struct field_map *map);
/* Was p prepared for exactly this kind and map (the same pointer)? */
bool format_prep_matches(const struct format_prep *p, enum format_kind kind,
                         const struct field_map *map);
/* format_parse(p->kind, p->map, ...), with the same results. */
int format_parse_prepared(const struct format_prep *p, const uint8_t *rec, size_t len,
                          struct parsed_record *out);

#endif
