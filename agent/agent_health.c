/* Ready state machine and the alerts that follow it; a heartbeat proves the
 * main loop turns. */
#include "agent/agent_health.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/alert.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define LOOP_STALL_MS 30000 /* /readyz fails when the loop stops turning */
#define KAFKA_UP_MS   3000  /* statistics arrive every second */

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
    int alerted; /* the ready state last alerted on (main thread) */
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

bool agent_health_ready(void *ud, char *reason, size_t len)
{
    struct agent_health *h = ud;
    int st = atomic_load(&h->ready);
    uint64_t hb = atomic_load(&h->heartbeat_ms);
    if (time_mono_ms() - hb > LOOP_STALL_MS) {
        snprintf(reason, len, "main loop stalled");
        return false;
    }
    switch (st) {
    case READY_OK:
        return true;
    case READY_STARTING:
        snprintf(reason, len, "starting");
        return false;
    case READY_FATAL:
        snprintf(reason, len, "fatal Kafka producer error");
        return false;
    case READY_KAFKA_DOWN:
        snprintf(reason, len, "Kafka unreachable");
        return false;
    default:
        snprintf(reason, len, "records not acknowledged by Kafka");
        return false;
    }
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
}
