/* The agent: one single-threaded loop over inotify, timers and librdkafka's
 * delivery reports (poll(2) on inotify, librdkafka's wake-up pipe); the HTTP
 * threads only read metrics and atomics. */
#ifndef AUDITRAIL_AGENT_AGENT_H
#define AUDITRAIL_AGENT_AGENT_H

#include <signal.h>

#include "agent/agent_config.h"

struct agent;

/* Create everything (metrics, HTTP server, producer, inotify), read the
 * checkpoint. cfg must outlive the agent. Returns NULL with a message. */
struct agent *agent_new(const struct agent_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Run until *stop becomes non-zero (SIGTERM/SIGINT), then keep reading
 * every file to its end and shipping it for up to drain_timeout_s, wait up
 * to shutdown_timeout_ms for outstanding deliveries, log (and count in
 * records_lost_total) what could not be shipped, and write the checkpoint.
 * Returns the process exit status: 0 after a clean stop, 3 after a fatal
 * producer error (the checkpoint holds only acknowledged records, nothing is
 * lost; a restart creates a new producer). */
int agent_run(struct agent *a, volatile sig_atomic_t *stop);

void agent_free(struct agent *a); /* NULL-safe */

#endif
