/* The aggregator's health (aggregator_int.h): what /readyz says, the
 * gauges and counters /metrics shows, breaker transitions logged and
 * alerted (all three breakers: PostgreSQL, DLQ, Redis), a stalled write
 * (not ready, alerted), DLQ alerts, and the PostgreSQL probe while its
 * breaker is open. Consumer thread, except aggregator_ready (httpd threads:
 * atomics). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/aggregator_int.h"
#include "aggregator/dlq.h"
#include "aggregator/pg_writer.h"
#include "common/alert.h"
#include "common/log.h"
#include "common/metrics.h"

static const char *const ready_reasons[] = {
    [READY_OK] = "ok",
    [READY_NOT_JOINED] = "not yet assigned by the consumer group",
    [READY_PG_BREAKER] = "PostgreSQL breaker not closed",
    [READY_OFFSETS] = "stored offsets not loaded for every assigned partition",
    [READY_STOPPING] = "stopping",
};

/* A PostgreSQL call (a batch write, a probe, an offset load) has been in
 * flight longer than postgres.write_stall_ms: a frozen or black-holed
 * server acknowledges TCP and says nothing, and only this clock notices.
 * Any thread (pg_writer_busy_ms is an atomic), over every connection. */
static bool write_stalled(const struct aggregator *a, uint64_t *ms)
{
    *ms = writer_busy_ms(a->wr);
    return *ms > (uint64_t)a->cfg->postgres.write_stall_ms;
}

void health_update_ready(struct aggregator *a)
{
    enum ready_code rc = READY_OK;
    if (breaker_state(&a->pg_breaker) != BREAKER_CLOSED) {
        rc = READY_PG_BREAKER;
    } else if (!a->joined) {
        rc = READY_NOT_JOINED;
    } else {
        for (size_t i = 0; i < a->nparts; i++)
            if (a->parts[i].assigned && !a->parts[i].ready)
                rc = READY_OFFSETS;
    }
    atomic_store(&a->ready_code, (int)rc);
    uint64_t ms;
    metric_set(a->m->ready, rc == READY_OK && !write_stalled(a, &ms) ? 1 : 0);
}

bool aggregator_ready(void *ud, char *reason, size_t len)
{
    struct aggregator *a = ud;
    int rc = atomic_load(&a->ready_code);
    uint64_t ms;
    if (rc != READY_STOPPING && write_stalled(a, &ms)) {
        snprintf(reason, len,
                 "PostgreSQL write in flight for %" PRIu64 " ms (over postgres.write_stall_ms)",
                 ms);
        return false;
    }
    if (rc == READY_OK)
        return true;
    snprintf(reason, len, "%s", ready_reasons[rc]);
    return false;
}

/* AuditrailWriteStalled fires once when a write stalls, and resolves once
 * PostgreSQL answers again (a batch committed or a probe succeeded), not
 * when the stalled call merely timed out: the retries that follow would
 * make it flap. /readyz follows the call in flight itself. */
static void publish_stall(struct aggregator *a)
{
    uint64_t ms;
    bool stalled = write_stalled(a, &ms);
    metric_set(a->m->write_inflight, (double)ms / 1000.0);
    if (stalled && !a->stall_alerted) {
        a->stall_alerted = true;
        a->pg_answered = false;
        char desc[160];
        snprintf(desc, sizeof(desc),
                 "a PostgreSQL write has been in flight for %" PRIu64
                 " ms (postgres.write_stall_ms %" PRId64 "); the aggregator is not ready",
                 ms, a->cfg->postgres.write_stall_ms);
        log_warn("%s", desc);
        alerter_fire(a->alerter, "AuditrailWriteStalled", ALERT_CRITICAL,
                     "PostgreSQL does not answer a write: ingestion stalled", desc, NULL);
    } else if (!stalled && a->stall_alerted && a->pg_answered) {
        a->stall_alerted = false;
        log_info("PostgreSQL answers writes again after a stall");
        alerter_resolve(a->alerter, "AuditrailWriteStalled", NULL);
    }
}

/* What an open breaker means, for the log and the alert. */
static const struct {
    const char *name, *effect, *summary;
    enum alert_severity severity;
} breaker_texts[] = {
    {"postgres", "consumption paused, not ready",
     "PostgreSQL primary breaker open: ingestion paused", ALERT_CRITICAL},
    {"dlq", "batches with DLQ copies wait",
     "DLQ producer breaker open: partitions with poison messages wait", ALERT_CRITICAL},
    {"redis", "dedupe falls back to the LRU and PostgreSQL",
     "Redis breaker open: dedupe falls back to the LRU and PostgreSQL", ALERT_WARNING},
};

void health_on_breaker_change(void *ud, const struct breaker *b, enum breaker_state from,
                              enum breaker_state to)
{
    struct aggregator *a = ud;
    if (to != BREAKER_OPEN) {
        log_info("circuit breaker %s: %s -> %s", b->name, breaker_state_name(from),
                 breaker_state_name(to));
        if (to == BREAKER_CLOSED)
            alerter_resolve(a->alerter, "AuditrailBreakerOpen", "breaker", b->name, NULL);
        return;
    }
    size_t i = 0, n = sizeof(breaker_texts) / sizeof(breaker_texts[0]);
    while (i + 1 < n && strcmp(breaker_texts[i].name, b->name) != 0)
        i++;
    log_warn("circuit breaker %s: %s -> open (%s; next probe in %" PRIu64 " ms)", b->name,
             breaker_state_name(from), breaker_texts[i].effect, breaker_wait_ms(b));
    alerter_fire(a->alerter, "AuditrailBreakerOpen", breaker_texts[i].severity,
                 breaker_texts[i].summary, NULL, "breaker", b->name, NULL);
}

/* Counters kept by modules without access to the registry. */
void health_sync_counters(struct aggregator *a)
{
    const struct dedupe_stats *ds = dedupe_stats(a->dd);
    metric_add(a->m->redis_errors, (double)(ds->redis_errors - a->last_dd.redis_errors));
    metric_add(a->m->redis_skipped, (double)(ds->redis_skipped - a->last_dd.redis_skipped));
    a->last_dd = *ds;
    uint64_t df = dlq_failures_total(a->dlq);
    metric_add(a->m->dlq_failures, (double)(df - a->last_dlq_failures));
    a->last_dlq_failures = df;
    uint64_t dc = dlq_cut_total(a->dlq);
    metric_add(a->m->dlq_truncated, (double)(dc - a->last_dlq_cut));
    a->last_dlq_cut = dc;
}

void health_probe_pg(struct aggregator *a)
{
    if (flush_has_content(a) || a->inflight_active ||
        breaker_state(&a->pg_breaker) == BREAKER_CLOSED || !breaker_allow(&a->pg_breaker))
        return;
    char err[256];
    if (pg_writer_ping(a->pg, err, sizeof(err)) == PG_OK) {
        a->pg_answered = true;
        breaker_success(&a->pg_breaker);
    } else
        breaker_failure(&a->pg_breaker);
}

void health_publish(struct aggregator *a)
{
    size_t assigned = 0;
    for (size_t i = 0; i < a->nparts; i++) {
        struct part_state *ps = &a->parts[i];
        assigned += ps->assigned;
        if (!ps->assigned || !ps->lag)
            continue;
        int64_t hw = consumer_high_watermark(a->c, (int32_t)i);
        int64_t at = ps->pos >= 0 ? ps->pos : ps->stored;
        if (hw >= 0 && at >= 0)
            metric_set(ps->lag, (double)(hw > at ? hw - at : 0));
    }
    metric_set(a->m->assigned, (double)assigned);
    publish_stall(a);
    metric_set(a->m->breaker_pg, breaker_state(&a->pg_breaker));
    metric_set(a->m->breaker_dlq, breaker_state(&a->dlq_breaker));
    const struct breaker *rb = dedupe_redis_breaker(a->dd);
    metric_set(a->m->breaker_redis, rb ? breaker_state(rb) : 0);
    health_sync_counters(a);
}

void health_dlq_sent(struct aggregator *a, enum validate_reason vr, const char *error)
{
    metric_inc(a->m->dlq[vr]);
    alerter_fire(a->alerter, "AuditrailDLQWrite", ALERT_WARNING,
                 "messages sent to the dead-letter topic", error, "reason",
                 validate_reason_name(vr), NULL);
}
