/* The signer of chain heads: one cycle publishes the rounds whose sinks
 * have not acknowledged them yet, signs a new round if any stream changed
 * (proof_round.h) and publishes it (proof_sink.h). The service runs cycles
 * every proof.interval_s on a thread of its own (a round of 100 000
 * streams takes seconds: it must not stall the consumer loop), with its
 * own connection, counts them in metrics and alerts when signing or a sink
 * fails; `auditrail-aggregator proof sign` runs one cycle. */
#ifndef AUDITRAIL_AGGREGATOR_PROOF_SERVICE_H
#define AUDITRAIL_AGGREGATOR_PROOF_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/aggr_config.h"
#include "aggregator/proof_round.h"
#include "aggregator/proof_sink.h"

struct metrics;
struct metric;
struct alerter;

struct proof_metrics {
    struct metric *rounds, *heads, *last_round, *round_seconds, *sign_failures;
    struct metric *sink_failures[PROOF_SINK_COUNT];
};

/* Register the signer's series (names in README). */
void proof_metrics_init(struct proof_metrics *pm, struct metrics *reg);

struct proof_signer;

/* The key (cfg->proof.key_file, which must be set), the sinks and a
 * connection to cfg->postgres.primary (opened lazily). NULL with err when
 * the key cannot be loaded or the sink refused its configuration. */
struct proof_signer *proof_signer_new(const struct aggr_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void proof_signer_free(struct proof_signer *s); /* NULL-safe */

struct proof_cycle {
    struct proof_round_result res; /* the round signed now, if any (heads released) */
    size_t republished;            /* earlier rounds published again */
    unsigned sink_failed;          /* bit mask of proof_sink_id */
    char sink_err[512];
};

/* One cycle at now_us. PG_OK also when a sink failed (see c->sink_failed:
 * the round is stored and will be published again next cycle); otherwise
 * signing failed and err says why. */
enum pg_status proof_signer_cycle(struct proof_signer *s, int64_t now_us, struct proof_cycle *c,
                                  char *err, size_t errlen) __attribute__((warn_unused_result));

struct proof_service;

/* Start the thread (cfg->proof.key_file set). pm and al (may be NULL) are
 * borrowed and must outlive it. NULL with err as proof_signer_new. */
struct proof_service *proof_service_start(const struct aggr_config *cfg, struct proof_metrics *pm,
                                          struct alerter *al, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Stop the thread (a round in progress finishes first) and free. NULL-safe. */
void proof_service_stop(struct proof_service *s);

#endif
