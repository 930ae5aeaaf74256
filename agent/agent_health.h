/* The agent's readiness (/readyz), liveness (/livez) and alerts. Readiness
 * means "running and reading": Kafka being down or slow never fails it (the
 * log file is the buffer, and a sidecar's readiness takes the application
 * out of its Services); Kafka's state drives metrics and alerts, derived once
 * per loop turn. agent_health_ready and agent_health_routes run on the HTTP
 * server's threads and read only atomics; everything else runs on the main
 * thread. */
#ifndef AUDITRAIL_AGENT_HEALTH_H
#define AUDITRAIL_AGENT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "common/metrics.h"

struct agent_health;
struct httpd_request;
struct httpd_response;

/* The loop turns at least every 100 ms; this long without a turn is a stuck
 * loop. */
#define AGENT_LOOP_STALL_MS 30000

/* The rules, as pure functions of the loop's published state and a clock
 * the caller passes (tests inject it). Liveness: the main loop turned within
 * AGENT_LOOP_STALL_MS before now_ms (heartbeat_ms: the monotonic time of its
 * last turn). Readiness: live, not `starting` (no turn yet) and no `fatal`
 * producer error (the agent is exiting). False fills reason. */
bool agent_live_rule(uint64_t heartbeat_ms, uint64_t now_ms, char *reason, size_t len);
bool agent_ready_rule(bool starting, bool fatal, uint64_t heartbeat_ms, uint64_t now_ms,
                      char *reason, size_t len);

/* "Starting" until the first update. Creates the alerter of cfg's alerts
 * section (its metrics in reg); m must outlive the health. Returns NULL with
 * a message in err (bad alerts.url, ...). */
struct agent_health *agent_health_new(const struct agent_config *cfg, struct metrics *reg,
                                      struct agent_metrics *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Flushes pending alerts within alerts.timeout_ms. NULL-safe. */
void agent_health_free(struct agent_health *h);

/* The httpd ready callback (ud = the health): agent_ready_rule now. */
bool agent_health_ready(void *ud, char *reason, size_t len);
/* The httpd application routes (ud = the health): GET /livez answers 200
 * {"live":true} or 503 with the reason (agent_live_rule now). */
bool agent_health_routes(void *ud, const struct httpd_request *req, struct httpd_response *resp);

struct agent_health_in {
    uint64_t kafka_up_ms;       /* a broker was last seen up (monotonic); 0 = never */
    bool fatal;                 /* fatal producer error */
    uint64_t oldest_unacked_ms; /* monotonic, from the first attempt; 0 = nothing in flight */
    bool refused;               /* Kafka refuses the records (authorization, permanent) */
    char refused_why[256];      /* its error, when refused */
};
/* Fire a one-off alert (name, severity as common/alert.h; description may be
 * NULL): a corrupt checkpoint, records given up. Main thread. */
void agent_health_alert(struct agent_health *h, const char *name, int severity, const char *summary,
                        const char *description);

/* Decide Kafka's state (its gauges and alerts) now; proves the loop turns.
 * A refusal fires AuditrailKafkaRefused (resolved by the next delivery). */
void agent_health_update(struct agent_health *h, const struct agent_health_in *in, uint64_t now_ms);

#endif
