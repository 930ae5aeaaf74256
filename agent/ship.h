/* The agent's outbound half: a record of a stream becomes an envelope
 * (record.c) and a Kafka message (producer.c) under the in-flight budget, and
 * every delivery report goes back to its stream (tail_file_delivered).
 * Main thread only; the producer's own threads never call in here. */
#ifndef AUDITRAIL_AGENT_SHIP_H
#define AUDITRAIL_AGENT_SHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/tail_file.h"

struct ship;

/* The producer for cfg's kafka section, the envelope settings of cfg's agent
 * section; counts into m (which must outlive the ship). Returns NULL with a
 * message in err (bad Kafka property, ...). */
struct ship *ship_new(const struct agent_config *cfg, struct agent_metrics *m, char *err,
                      size_t errlen) __attribute__((warn_unused_result));
/* Frees the producer without waiting (see ship_abandon). NULL-safe. */
void ship_free(struct ship *s);

/* A message above this is produced alone in its stream (TAIL_EMIT_WAIT_ACK):
 * the broker may refuse it as too large, and it is then cut shorter and
 * hashed again, which must not fork a record already chained to it. It is
 * also the smallest message limit ship_fit cuts to: a broker that refuses
 * smaller messages is misconfigured (alerted, not cut). */
#define SHIP_WAIT_ACK_BYTES (128 * 1024)

/* The sink of every tail_file (a tail_emit_fn; ud is the ship): encode r,
 * produce it keyed by its stream with msg as the report's opaque. Returns
 * TAIL_EMIT_WAIT_ACK for a message above SHIP_WAIT_ACK_BYTES,
 * TAIL_EMIT_PAUSE_AFTER once the in-flight budget is used up,
 * TAIL_EMIT_PAUSE_BEFORE when the producer's queue is full, TAIL_EMIT_BACKOFF
 * when the record could not be encoded or produced (logged here). */
enum tail_emit_rc ship_send(void *ud, const struct record_in *r, struct ack_msg *msg);
/* The tail_fit_fn of every tail_file (ud is the ship): how much of r fits
 * in one message under the producer's message.max.bytes and the broker's
 * limit learned from MSG_SIZE_TOO_LARGE (halved per refusal, never below
 * SHIP_WAIT_ACK_BYTES), with room for any file name; on a UTF-8 boundary. */
size_t ship_fit(void *ud, const struct record_in *r);

/* Serve delivery reports (each goes to its stream, see above), errors and
 * statistics; waits up to timeout_ms. */
void ship_poll(struct ship *s, int timeout_ms);
/* Readable when ship_poll has something to serve (for poll(2)). */
int ship_wake_fd(const struct ship *s);
/* Consume the wake-up bytes (call when ship_wake_fd was readable). */
void ship_clear_wake(struct ship *s);

/* Reading pauses while this is true: the in-flight budget is used up or the
 * producer refused a message. */
bool ship_paused(const struct ship *s);
/* Lift the pause once both in-flight amounts are below their limits. Called
 * once per loop turn, before the reading round. */
void ship_update_pause(struct ship *s);

/* How many delivery reports so far advanced a stream's acknowledged prefix:
 * the checkpoint is due when this changed since it was last written. */
uint64_t ship_progress(const struct ship *s);

/* Shutdown: wait up to timeout_ms for outstanding deliveries (less after a
 * fatal error), then stop rewinding streams and purge what is left (it is
 * re-sent after the restart: the checkpoint holds only acknowledged records). */
void ship_drain(struct ship *s, int64_t timeout_ms);
/* From now on a failed delivery only releases its message: no stream is
 * rewound any more (the agent is stopping). */
void ship_stop(struct ship *s);
/* ship_stop, purge every message and serve the failed reports for up to 1 s,
 * so that no report outlives the streams. Call before freeing the streams.
 * NULL-safe. */
void ship_abandon(struct ship *s);

/* true while Kafka refuses the records (authorization, a permanent error,
 * a too-large refusal that cutting cannot fix) and nothing was delivered
 * since; why (may be NULL) gets the error. */
bool ship_refused(const struct ship *s, char *why, size_t len);
/* true after a fatal producer error; msg (may be NULL) describes it. */
bool ship_is_fatal(const struct ship *s, char *msg, size_t len);
/* Monotonic ms a broker was last seen up; 0 = never. */
uint64_t ship_kafka_up_ms(const struct ship *s);
/* Set the in-flight gauges (unacked bytes/records, backpressure_paused) and
 * add the records produced and acknowledged since the last call to their
 * counters (gathered per record, published once per loop turn). */
void ship_update_metrics(struct ship *s);

#endif
