/* Readiness and liveness rules, Kafka's state machine and the alerts that
 * follow it; a heartbeat proves the main loop turns. */
#include "agent/agent_health.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alert.h"
#include "common/httpd.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define KAFKA_UP_MS 3000 /* statistics arrive every second */

enum ready_state {
    READY_OK = 0,
    READY_STARTING,
    READY_FATAL,
    READY_KAFKA_DOWN,
    READY_ACK_STALLED,
};

struct agent_health {
    struct agent_metrics *m;
    uint64_t unready_ms; /* agent.kafka_unready_ms */
    uint64_t start_ms;
    _Atomic int ready; /* enum ready_state; read by the HTTP threads */
    _Atomic uint64_t heartbeat_ms;
    struct alerter *alerts;
    int alerted;  /* the ready state last alerted on (main thread) */
    bool refused; /* AuditrailKafkaRefused is firing (fired on the change only, as above) */
};

struct agent_health *agent_health_new(const struct agent_config *cfg, struct metrics *reg,
                                      struct agent_metrics *m, char *err, size_t errlen)
{
    struct agent_health *h = xcalloc(1, sizeof(*h));
    h->m = m;
    h->unready_ms = (uint64_t)cfg->file.agent.kafka_unready_ms;
    h->start_ms = time_mono_ms();
    atomic_store(&h->ready, READY_STARTING);
    atomic_store(&h->heartbeat_ms, h->start_ms);
    h->alerted = READY_STARTING;
    struct alerter_conf ac = cfg->file.alerts;
    ac.component = "agent";
    ac.instance = cfg->file.agent.source_name;
    h->alerts = alerter_new(&ac, reg, err, errlen);
    if (!h->alerts) {
        free(h);
        return NULL;
    }
    return h;
}

void agent_health_free(struct agent_health *h)
{
    if (!h)
        return;
    alerter_free(h->alerts);
    free(h);
}

bool agent_live_rule(uint64_t heartbeat_ms, uint64_t now_ms, char *reason, size_t len)
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

bool agent_ready_rule(bool starting, bool fatal, uint64_t heartbeat_ms, uint64_t now_ms,
                      char *reason, size_t len)
{
    if (!agent_live_rule(heartbeat_ms, now_ms, reason, len))
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

bool agent_health_ready(void *ud, char *reason, size_t len)
{
    struct agent_health *h = ud;
    int st = atomic_load(&h->ready);
    return agent_ready_rule(st == READY_STARTING, st == READY_FATAL, atomic_load(&h->heartbeat_ms),
                            time_mono_ms(), reason, len);
}

bool agent_health_routes(void *ud, const struct httpd_request *req, struct httpd_response *resp)
{
    struct agent_health *h = ud;
    if (strcmp(httpd_request_path(req), "/livez") != 0)
        return false;
    char reason[128];
    if (agent_live_rule(atomic_load(&h->heartbeat_ms), time_mono_ms(), reason, sizeof(reason))) {
        resp->body = xstrdup("{\"live\":true}");
    } else {
        resp->status = 503;
        resp->body = xasprintf("{\"live\":false,\"reason\":\"%s\"}", reason);
    }
    resp->body_len = strlen(resp->body);
    return true;
}

/* Alerts follow the ready state: Kafka unreachable fires (and resolves when
 * a broker is back), a fatal producer error fires once before the exit. */
static void alert_on_change(struct agent_health *h, int st)
{
    if (st == h->alerted || st == READY_STARTING)
        return;
    if (h->alerted == READY_KAFKA_DOWN)
        alerter_resolve(h->alerts, "AuditrailKafkaUnavailable", NULL);
    if (st == READY_KAFKA_DOWN)
        alerter_fire(h->alerts, "AuditrailKafkaUnavailable", ALERT_CRITICAL,
                     "no Kafka broker reachable: reading paused, checkpoint frozen",
                     "the log files buffer the records until a broker is back", NULL);
    else if (st == READY_ACK_STALLED)
        alerter_fire(h->alerts, "AuditrailKafkaUnavailable", ALERT_CRITICAL,
                     "records wait for Kafka acknowledgements longer than kafka_unready_ms", NULL,
                     NULL);
    else if (st == READY_FATAL)
        alerter_fire(h->alerts, "AuditrailFatal", ALERT_CRITICAL,
                     "fatal Kafka producer error: the agent exits and restarts from its checkpoint",
                     NULL, NULL);
    h->alerted = st;
}

void agent_health_alert(struct agent_health *h, const char *name, int severity, const char *summary,
                        const char *description)
{
    alerter_fire(h->alerts, name, (enum alert_severity)severity, summary, description, NULL);
}

void agent_health_update(struct agent_health *h, const struct agent_health_in *in, uint64_t now_ms)
{
    uint64_t up = in->kafka_up_ms;
    metric_set(h->m->kafka_up, up && now_ms - up < KAFKA_UP_MS ? 1 : 0);
    int st = READY_OK;
    if (in->fatal)
        st = READY_FATAL;
    else if (now_ms - (up ? up : h->start_ms) > h->unready_ms)
        st = READY_KAFKA_DOWN;
    else if (in->oldest_unacked_ms && now_ms - in->oldest_unacked_ms > h->unready_ms)
        st = READY_ACK_STALLED;
    metric_set(h->m->kafka_fatal, st == READY_FATAL ? 1 : 0);
    atomic_store(&h->ready, st);
    atomic_store(&h->heartbeat_ms, now_ms);
    alert_on_change(h, st);
    if (in->refused && !h->refused)
        alerter_fire(h->alerts, "AuditrailKafkaRefused", ALERT_CRITICAL,
                     "Kafka refuses the agent's records: nothing is shipped until an operator "
                     "fixes it (ACLs, credentials, topic, size limits)",
                     in->refused_why, NULL);
    else if (!in->refused && h->refused)
        alerter_resolve(h->alerts, "AuditrailKafkaRefused", NULL);
    h->refused = in->refused;
}
