/* The agent's readiness and liveness rules (agent_health.h): pure functions
 * of the loop's published state and the caller's clock. */
#include "agent/agent_health.h"

#include <stdio.h>

bool agent_health_live(uint64_t heartbeat_ms, uint64_t now_ms, char *reason, size_t len)
{
    /* now_ms is read after heartbeat_ms on the same monotonic clock, but a
     * caller may hold an older now: never underflow */
    if (now_ms > heartbeat_ms && now_ms - heartbeat_ms > AGENT_LOOP_STALL_MS) {
        snprintf(reason, len, "main loop stalled for %llu ms",
                 (unsigned long long)(now_ms - heartbeat_ms));
        return false;
    }
    return true;
}

bool agent_health_ready(bool starting, bool fatal, uint64_t heartbeat_ms, uint64_t now_ms,
                        char *reason, size_t len)
{
    if (!agent_health_live(heartbeat_ms, now_ms, reason, len))
        return false;
    if (fatal) {
        snprintf(reason, len, "fatal Kafka producer error");
        return false;
    }
    if (starting) {
        snprintf(reason, len, "starting");
        return false;
    }
    return true; /* Kafka down or slow included: reading, the file buffers */
}
