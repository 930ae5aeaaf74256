/* The agent's readiness and liveness answers, as functions of the state the
 * main loop publishes and a clock the caller passes (tests inject it). */
#ifndef AUDITRAIL_AGENT_HEALTH_H
#define AUDITRAIL_AGENT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The loop turns at least every LOOP_TICK_MS (100 ms); this long without a
 * turn is a stuck loop. */
#define AGENT_LOOP_STALL_MS 30000

/* Readiness: the agent is running and reading. Kafka being down or slow is
 * not a reason (the log file is the buffer, and a sidecar's readiness takes
 * the application out of its Services): it shows in metrics and alerts.
 * Not ready while `starting` (the loop has not turned yet), after a `fatal`
 * producer error (the agent is exiting), or when the loop has not turned
 * for AGENT_LOOP_STALL_MS before now_ms. False fills reason. */
bool agent_health_ready(bool starting, bool fatal, uint64_t heartbeat_ms, uint64_t now_ms,
                        char *reason, size_t len);

/* Liveness: the main loop turned within AGENT_LOOP_STALL_MS before now_ms
 * (heartbeat_ms is the monotonic time of its last turn). False fills reason. */
bool agent_health_live(uint64_t heartbeat_ms, uint64_t now_ms, char *reason, size_t len);

#endif
