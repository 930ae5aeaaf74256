/* Where signed heads go besides PostgreSQL — sinks a database
 * administrator does not control: the Kafka topic proof.topic (each head
 * keyed by its stream id, so that the topic can be compacted to the latest
 * head per stream; each round keyed "round:N") and, optionally, an
 * append-only file of JSON lines (proof.file). Publishing waits for Kafka's
 * acknowledgements and fsyncs the file. One thread. */
#ifndef AUDITRAIL_AGGREGATOR_PROOF_SINK_H
#define AUDITRAIL_AGGREGATOR_PROOF_SINK_H

#include <stddef.h>

#include "aggregator/proof_format.h"
#include "common/conf_common.h"

enum proof_sink_id { PROOF_SINK_KAFKA = 0, PROOF_SINK_FILE, PROOF_SINK_COUNT };

/* "kafka", "file" (metric labels). */
const char *proof_sink_name(enum proof_sink_id s);

struct proof_sink;

/* topic NULL or empty: no Kafka sink; file NULL or empty: no file. NULL
 * with err when librdkafka refuses the configuration. */
struct proof_sink *proof_sink_new(const struct kafka_conf *k, const char *topic, const char *file,
                                  char *err, size_t errlen) __attribute__((warn_unused_result));
void proof_sink_free(struct proof_sink *s); /* NULL-safe */

/* Publish a round's heads, then the round itself, to every sink. Returns
 * a bit mask of the sinks that failed (1 << enum proof_sink_id; 0: all
 * acknowledged), err naming the first failure. */
unsigned proof_sink_publish(struct proof_sink *s, const struct proof_round *r,
                            const struct proof_head *heads, size_t n, char *err, size_t errlen);

#endif
