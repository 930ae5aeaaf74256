/* Realistic healthcare audit records for the audit-writer tool: one
 * generator per format, deterministic for a given seed and sequence. */
#ifndef AUDITRAIL_AUDIT_WRITER_GEN_H
#define AUDITRAIL_AUDIT_WRITER_GEN_H

#include <stddef.h>
#include <stdint.h>

enum gen_format { GEN_JSON = 0, GEN_KV, GEN_K8S, GEN_AUDITD, GEN_FHIR, GEN_NFORMATS };

/* "json", "kv", "k8s-audit", "auditd", "fhir" -> format; -1 if unknown. */
int gen_format_parse(const char *name, enum gen_format *out);
const char *gen_format_name(enum gen_format f);

/* xorshift64* state; never zero. */
struct gen_rng {
    uint64_t s;
};
void gen_rng_seed(struct gen_rng *r, uint64_t seed);
uint64_t gen_rng_next(struct gen_rng *r);

struct buf; /* common/buf.h */

struct gen_opts {
    double no_ts_ratio; /* json only: share of records without any time key */
    size_t line_bytes;  /* pad records to about this many bytes; 0 = natural size */
};

/* Replace b's content with one record of format f ending in '\n'. `n` is the
 * record's unique token (written as "n":N or n=N); `now_us` its event time. */
void gen_record(enum gen_format f, struct gen_rng *r, uint64_t n, int64_t now_us,
                const struct gen_opts *o, struct buf *b);

#endif
