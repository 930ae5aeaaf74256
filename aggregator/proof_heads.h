/* Signed heads as verify --against uses them: read from a JSON-lines file
 * (proof.file, or the proof topic dumped) or from the proof topic itself,
 * their signatures checked with the public keys, and per stream the heads
 * verify needs (verify.h: the latest, the first not older than the
 * retention horizon, the last older than it). Memory: three heads per
 * stream, whatever the number of lines. */
#ifndef AUDITRAIL_AGGREGATOR_PROOF_HEADS_H
#define AUDITRAIL_AGGREGATOR_PROOF_HEADS_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/proof_key.h"
#include "aggregator/verify.h"
#include "common/conf_common.h"

struct proof_heads_stats {
    uint64_t lines, heads, rounds; /* read */
    uint64_t bad_lines;            /* neither a head nor a round (not JSON, fields) */
    uint64_t bad_signatures;       /* heads (when they mattered) or rounds failing */
    uint64_t streams;              /* streams with a valid signed head */
    uint64_t last_round, last_tree_size;
};

struct proof_heads;

/* Heads checked with the npubs keys of pubs (borrowed; a signature is
 * valid when one of them verifies it: the keys before and after a rotation);
 * horizon_us as verify_opts. */
struct proof_heads *proof_heads_new(const struct proof_key *const *pubs, size_t npubs,
                                    int64_t horizon_us);
void proof_heads_free(struct proof_heads *h); /* NULL-safe */

/* Read every line of a file. 0, or -1 with err (the file cannot be read). */
int proof_heads_load_file(struct proof_heads *h, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Read every message of the topic (k's brokers and properties), from each
 * partition's low to its high watermark. 0, or -1 with err. */
int proof_heads_load_kafka(struct proof_heads *h, const struct kafka_conf *k, const char *topic,
                           char *err, size_t errlen) __attribute__((warn_unused_result));
/* One line (no newline). */
void proof_heads_add(struct proof_heads *h, const char *line, size_t len);

/* Report the heads whose signature failed (a head's signature is checked
 * when it would be kept: a forged line cannot displace a valid head) as
 * VERIFY_BAD_SIGNATURE through emit (may be NULL); then the view is ready. */
void proof_heads_finish(struct proof_heads *h, verify_emit_fn emit, void *ud);
/* The heads as verify takes them (valid while h lives). */
const struct verify_heads *proof_heads_view(const struct proof_heads *h);
const struct proof_heads_stats *proof_heads_stats(const struct proof_heads *h);

#endif
