/* The agent's readiness (/readyz) and its alerts, derived once per loop turn
 * from Kafka's reachability, fatal producer errors and the age of the oldest
 * unacknowledged record. agent_health_ready runs on the HTTP server's threads
 * and reads only atomics; everything else runs on the main thread. */
#ifndef AUDITRAIL_AGENT_HEALTH_H
#define AUDITRAIL_AGENT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "common/metrics.h"

struct agent_health;

/* "Starting" until the first update. Creates the alerter of cfg's alerts
 * section (its metrics in reg); m must outlive the health. Returns NULL with
 * a message in err (bad alerts.url, ...). */
struct agent_health *agent_health_new(const struct agent_config *cfg, struct metrics *reg,
                                      struct agent_metrics *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Flushes pending alerts within alerts.timeout_ms. NULL-safe. */
void agent_health_free(struct agent_health *h);

/* The httpd ready callback (ud = the health): false with a reason while
 * starting, after a fatal error, while Kafka is unreachable or a record waits
 * too long for its acknowledgement, or when the loop stopped turning. */
bool agent_health_ready(void *ud, char *reason, size_t len);

struct agent_health_in {
    uint64_t kafka_up_ms;       /* a broker was last seen up (monotonic); 0 = never */
    bool fatal;                 /* fatal producer error */
    uint64_t oldest_unacked_ms; /* monotonic; 0 = nothing in flight */
};
/* Decide the ready state (and its gauges and alerts) now; proves the loop
 * turns. */
void agent_health_update(struct agent_health *h, const struct agent_health_in *in, uint64_t now_ms);

#endif
