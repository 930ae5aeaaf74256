/* The aggregator's consumer loop. Threads: the consumer thread (the caller
 * of aggregator_run) owns the consumer, both batches, Redis, the dedupe
 * caches, the DLQ producer, the breakers and partition maintenance; the
 * writer thread (writer.h) runs one pg_writer_write at a time for the
 * in-flight batch while the consumer thread builds the next one, and the
 * pg_writer is the consumer thread's only while no batch is in flight.
 * Exactly-once rests on the writer's per-partition offset compare-and-set;
 * everything here keeps the positions it reads from and the offsets it
 * writes consistent with that (see DESIGN.md §4). */
#include "aggregator/aggregator.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/batch.h"
#include "aggregator/consumer.h"
#include "aggregator/dedupe.h"
#include "aggregator/dlq.h"
#include "aggregator/maintenance.h"
#include "aggregator/pg_writer.h"
#include "aggregator/redis_store.h"
#include "aggregator/validate.h"
#include "aggregator/writer.h"
#include "common/alert.h"
#include "common/backoff.h"
#include "common/breaker.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define PERIODIC_MS       1000
#define OFFSET_CHECK_MS   5000 /* quiet partitions look for a replay this often */
#define DLQ_SETTLE_MS     5000
#define SHUTDOWN_FLUSH_MS 5000

/* Per Kafka partition of our topic. `stored` is what PostgreSQL holds as the
 * partition's next offset (the compare-and-set's expected value; -1: no row);
 * `pos` is the next offset to handle (everything below it is in the batch or
 * committed). A partition is `ready` once its stored offset is loaded. */
struct part_state {
    bool assigned, ready, paused;
    int64_t stored, pos;
    int64_t hwm;          /* highest next offset this process committed (0: none) */
    int64_t replay_until; /* offsets below this are a replay: caches bypassed (0: none) */
    struct metric *lag;
};

enum ready_code {
    READY_OK = 0,
    READY_NOT_JOINED,
    READY_PG_BREAKER,
    READY_OFFSETS,
    READY_STOPPING,
};

static const char *const ready_reasons[] = {
    [READY_OK] = "ok",
    [READY_NOT_JOINED] = "not yet assigned by the consumer group",
    [READY_PG_BREAKER] = "PostgreSQL breaker not closed",
    [READY_OFFSETS] = "stored offsets not loaded for every assigned partition",
    [READY_STOPPING] = "stopping",
};

enum flush_result { FLUSH_DONE, FLUSH_RETRY, FLUSH_ABANDONED, FLUSH_FATAL };

struct aggregator {
    const struct aggr_config *cfg;
    struct aggr_metrics *m;
    struct pg_writer *pg;
    struct redis_store *redis;
    struct dedupe *dd;
    struct dlq *dlq;
    struct consumer *c;
    struct maintenance *maint;
    struct breaker pg_breaker;
    struct breaker dlq_breaker; /* the DLQ producer */
    struct backoff retry;
    struct writer *wr;
    /* The in-flight batch: submitted to the writer, or waiting for a retry
     * (retrying) after a transient failure. Its offsets are the expected
     * offsets of the batch being built. */
    struct batch inflight;
    bool inflight_active;
    size_t inflight_msgs;
    struct batch batch;      /* the batch being built */
    size_t batch_msgs;       /* messages handled into the batch (rows, dups, DLQ) */
    uint64_t batch_start_ms; /* when the first of them arrived */
    bool redis_filtered;     /* the Redis layer ran on this batch already */
    bool batch_replay;       /* the batch holds replayed offsets: no Redis layer */
    uint64_t next_offset_check_ms;
    struct part_state *parts;
    size_t nparts;
    bool retrying; /* a batch (in flight or sealing) waits for a retry; consumption paused */
    uint64_t retry_at_ms;
    bool fatal;
    bool joined;
    uint64_t next_periodic_ms, next_maint_ms;
    struct dedupe_stats last_dd;
    uint64_t last_dlq_failures;
    atomic_int ready_code;   /* read by httpd threads */
    struct alerter *alerter; /* borrowed, may be NULL */
};

static struct part_state *part_get(struct aggregator *a, int32_t p)
{
    if (p < 0)
        return NULL;
    if ((size_t)p >= a->nparts) {
        size_t n = (size_t)p + 1;
        a->parts = xrealloc(a->parts, n * sizeof(*a->parts));
        memset(a->parts + a->nparts, 0, (n - a->nparts) * sizeof(*a->parts));
        for (size_t i = a->nparts; i < n; i++)
            a->parts[i].stored = a->parts[i].pos = -1;
        a->nparts = n;
    }
    return &a->parts[p];
}

static bool batch_has_content(const struct aggregator *a)
{
    return a->batch.n > 0 || a->batch.noffsets > 0;
}

static int64_t start_offset(const struct part_state *ps)
{
    if (ps->pos >= 0)
        return ps->pos;
    return ps->stored >= 0 ? ps->stored : RD_KAFKA_OFFSET_BEGINNING;
}

static void reset_batch(struct aggregator *a)
{
    batch_clear(&a->batch);
    dedupe_batch_reset(a->dd);
    dlq_reset(a->dlq);
    a->batch_msgs = 0;
    a->batch_start_ms = 0;
    a->redis_filtered = false;
    a->batch_replay = false;
}

/* A replay (auditrail-aggregator replay, or PostgreSQL restored from a
 * backup) moves the stored offset below what was already consumed: Kafka's
 * committed offset for the group, or what this process committed. Records
 * in that range were stored once and may be gone from PostgreSQL now, so the
 * LRU and Redis, which only know they were committed, must not skip them:
 * until the partition passes the old position PostgreSQL's exact per-stream
 * rule alone decides. */
static void note_replay(struct aggregator *a, int32_t p, int64_t stored)
{
    struct part_state *ps = part_get(a, p);
    if (!ps)
        return;
    int64_t top = consumer_committed(a->c, p);
    if (ps->hwm > top)
        top = ps->hwm;
    int64_t from = stored >= 0 ? stored : 0;
    if (top > from && top > ps->replay_until) {
        ps->replay_until = top;
        log_info("%s[%d]: replaying offsets %" PRId64 "..%" PRId64
                 ": the LRU and Redis dedupe layers are bypassed for them",
                 a->cfg->kafka.topic, (int)p, from, top - 1);
    }
}

/* The stored offset of p through the PostgreSQL breaker's bookkeeping.
 * 0 with *out, or -1 (logged). */
static int load_offset(struct aggregator *a, int32_t p, int64_t *out)
{
    char err[512];
    enum pg_status r = pg_writer_load_offset(a->pg, a->cfg->kafka.topic, p, out, err, sizeof(err));
    if (r == PG_OK) {
        breaker_success(&a->pg_breaker);
        return 0;
    }
    if (r == PG_TRANSIENT)
        breaker_failure(&a->pg_breaker);
    log_warn("loading the stored offset of %s[%d]: %s: %s", a->cfg->kafka.topic, (int)p,
             pg_status_name(r), err);
    return -1;
}

/* load_offset, then look for a replay (asks Kafka for the group's committed
 * offset: only where the stored offset may have moved under us). */
static int load_offset_replay(struct aggregator *a, int32_t p, int64_t *out)
{
    if (load_offset(a, p, out) != 0)
        return -1;
    note_replay(a, p, *out);
    return 0;
}

/* Drop the in-flight batch and the batch being built without committing
 * anything (the writer must be idle): every partition they touched goes back
 * to its stored offset (reloaded from PostgreSQL when another consumer may
 * have moved it), so nothing handled-but-uncommitted is skipped. DLQ copies
 * already sent may be sent again: the DLQ is at-least-once. */
static void abandon_all(struct aggregator *a, bool reload)
{
    size_t n = a->batch.noffsets + a->inflight.noffsets;
    int32_t *ps_list = xmalloc((n ? n : 1) * sizeof(*ps_list));
    size_t k = 0;
    for (size_t i = 0; i < a->inflight.noffsets; i++)
        ps_list[k++] = a->inflight.offsets[i].partition;
    for (size_t i = 0; i < a->batch.noffsets; i++)
        if (!batch_offset_find(&a->inflight, a->batch.offsets[i].partition))
            ps_list[k++] = a->batch.offsets[i].partition;
    reset_batch(a);
    batch_clear(&a->inflight);
    a->inflight_active = false;
    a->retrying = false;
    for (size_t i = 0; i < k; i++) {
        struct part_state *ps = part_get(a, ps_list[i]);
        if (!ps || !ps->assigned)
            continue;
        if (reload) {
            int64_t off;
            if (load_offset_replay(a, ps_list[i], &off) != 0) {
                /* Stays paused until the periodic reload succeeds. */
                ps->ready = false;
                continue;
            }
            ps->stored = off;
        }
        ps->pos = ps->stored;
        if (!ps->paused)
            consumer_seek(a->c, ps_list[i], start_offset(ps));
    }
    free(ps_list);
}

/* After a transaction committed b: metrics, dedupe marks, stored offsets,
 * and the Kafka commit (lag monitoring only; failures do not matter). */
static void commit_effects(struct aggregator *a, const struct batch *b,
                           const struct pg_write_stats *st)
{
    struct aggr_metrics *m = a->m;
    metric_add(m->inserted, (double)st->inserted);
    metric_add(m->duplicates[DUP_STREAM], (double)st->dup_stream);
    metric_add(m->duplicates[DUP_PK], (double)st->dup_pk);
    metric_add(m->incidents[INCIDENT_FORK], (double)st->forks);
    metric_add(m->incidents[INCIDENT_GAP], (double)st->gaps);
    metric_add(m->incidents[INCIDENT_CHAIN_BREAK], (double)st->chain_breaks);
    metric_add(m->partitions_created, (double)st->partitions_created);
    metric_observe(m->batch_size, (double)b->n);
    if (st->forks || st->chain_breaks || st->gaps) {
        /* Each incident was logged by the writer once committed. */
        char desc[160];
        snprintf(desc, sizeof(desc),
                 "%zu forks, %zu chain breaks, %zu gaps; see auditrail.integrity_incidents",
                 st->forks, st->chain_breaks, st->gaps);
        alerter_fire(a->alerter, "AuditrailIntegrityIncident",
                     st->forks || st->chain_breaks ? ALERT_CRITICAL : ALERT_WARNING,
                     "audit hash chain integrity incident", desc, "topic", b->topic, NULL);
    }
    dedupe_mark_committed(a->dd, b, st->committed);

    size_t n = b->noffsets;
    int32_t *parts = xmalloc((n ? n : 1) * sizeof(*parts));
    int64_t *offs = xmalloc((n ? n : 1) * sizeof(*offs));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct part_state *ps = part_get(a, b->offsets[i].partition);
        int64_t next = b->offsets[i].next_offset;
        if (ps) {
            ps->stored = next;
            if (next > ps->hwm)
                ps->hwm = next;
            /* Kafka's committed offset marks how far a replay must bypass
             * the caches: not lowered while one runs. */
            if (next < ps->replay_until)
                continue;
        }
        parts[k] = b->offsets[i].partition;
        offs[k++] = next;
    }
    consumer_commit(a->c, parts, offs, k);
    free(parts);
    free(offs);
}

/* Metrics and breaker bookkeeping of one batch transaction. */
static void account_write(struct aggregator *a, enum pg_status r, uint64_t elapsed_us)
{
    metric_observe(a->m->batch_seconds, (double)elapsed_us / 1e6);
    if ((unsigned)r < PG_STATUS_COUNT)
        metric_inc(a->m->batch_results[r]);
    if (r == PG_TRANSIENT)
        breaker_failure(&a->pg_breaker);
    else
        breaker_success(&a->pg_breaker); /* PostgreSQL answered */
}

/* One synchronous pg_writer_write (writer thread idle). stats zeroed. */
static enum pg_status write_batch(struct aggregator *a, const struct batch *b,
                                  struct pg_write_stats *st, char *err, size_t errlen)
{
    uint64_t t0 = time_mono_us();
    enum pg_status r = pg_writer_write(a->pg, b, st, err, errlen);
    account_write(a, r, time_mono_us() - t0);
    return r;
}

/* Send row idx of b to the DLQ (PostgreSQL refused it) and remove it from b;
 * the batch's offsets still cover it, so its offset commits once the DLQ
 * copy is acknowledged (settled before the next write). The value is the
 * envelope re-encoded: the original bytes are not kept after decoding (the
 * content is the same, verified by hash). */
static void dlq_storage_row(struct aggregator *a, struct batch *b, size_t idx, const char *why)
{
    struct batch_row *r = &b->rows[idx];
    size_t len = 0;
    char *val = envelope_encode(&r->env, &len);
    char error[600];
    snprintf(error, sizeof(error), "storage: %s", why);
    dlq_add(a->dlq, r->env.stream, strlen(r->env.stream), val, len, NULL,
            validate_reason_name(VALIDATE_STORAGE), error, b->topic, r->kafka_partition,
            r->kafka_offset);
    metric_inc(a->m->dlq[VALIDATE_STORAGE]);
    alerter_fire(a->alerter, "AuditrailDLQWrite", ALERT_WARNING,
                 "messages sent to the dead-letter topic", error, "reason",
                 validate_reason_name(VALIDATE_STORAGE), NULL);
    log_warn("row %s (%s[%d]@%" PRId64 ") refused by PostgreSQL, sent to the DLQ: %s", r->env.id,
             b->topic, (int)r->kafka_partition, r->kafka_offset, why);
    free(val);
    uint8_t *drop = xcalloc(b->n, 1);
    drop[idx] = 1;
    batch_remove(b, drop);
    free(drop);
}

/* A non-retryable error (PostgreSQL schema or privileges, a fatal Kafka
 * client error): nothing more can be stored; stop with an alert (flushed
 * when the alerter is freed). */
static void fatal_stop(struct aggregator *a, const char *why)
{
    a->fatal = true;
    alerter_fire(a->alerter, "AuditrailFatal", ALERT_CRITICAL, "fatal error: the aggregator stops",
                 why, NULL);
}

/* Are the DLQ copies of the batch acknowledged? Through the DLQ breaker: while
 * it is open the producer is not hammered and the batch waits. */
static bool dlq_ready(struct aggregator *a)
{
    if (dlq_unacked(a->dlq) == 0)
        return true;
    if (!breaker_allow(&a->dlq_breaker))
        return false;
    if (dlq_settle(a->dlq, DLQ_SETTLE_MS) == 0) {
        breaker_success(&a->dlq_breaker);
        return true;
    }
    breaker_failure(&a->dlq_breaker);
    char why[300];
    if (dlq_fatal(a->dlq, why, sizeof(why))) {
        log_error("DLQ producer: fatal error, nothing more can be sent to %s: %s",
                  a->cfg->kafka.dlq_topic, why);
        fatal_stop(a, why);
    }
    return false;
}

/* PG_DATA: isolate the rows PostgreSQL refuses (the row the writer names,
 * else by bisection), DLQ them, and store the rest. Sub-batches commit on
 * their own, so any other outcome means the caller must abandon what is
 * left and reload offsets. */
static enum pg_status isolate(struct aggregator *a, struct batch *b, ssize_t bad,
                              const char *why_in)
{
    char why[512];
    snprintf(why, sizeof(why), "%s", why_in);
    for (;;) {
        if (b->n == 0) {
            log_error("PostgreSQL data error on a batch without rows: %s", why);
            return PG_TRANSIENT;
        }
        if (b->n == 1 || (bad >= 0 && (size_t)bad < b->n)) {
            dlq_storage_row(a, b, b->n == 1 ? 0 : (size_t)bad, why);
        } else {
            struct batch lo, hi;
            batch_split(b, b->n / 2, &lo, &hi);
            enum pg_status r = isolate(a, &lo, -2, why);
            if (r == PG_OK)
                r = isolate(a, &hi, -2, why);
            batch_release(&lo);
            batch_release(&hi);
            return r;
        }
        /* Write what is left (maybe only offsets) once its DLQ copies are in. */
        if (!dlq_ready(a)) {
            log_warn("DLQ not acknowledged while isolating bad rows; abandoning the batch");
            return PG_TRANSIENT;
        }
        struct pg_write_stats st = {0};
        enum pg_status r = write_batch(a, b, &st, why, sizeof(why));
        if (r == PG_OK) {
            commit_effects(a, b, &st);
            pg_write_stats_release(&st);
            return PG_OK;
        }
        bad = st.bad_row;
        pg_write_stats_release(&st);
        if (r != PG_DATA)
            return r;
    }
}

static void schedule_retry(struct aggregator *a)
{
    uint64_t delay = backoff_next(&a->retry);
    uint64_t bw = breaker_wait_ms(&a->pg_breaker);
    if (bw > delay)
        delay = bw;
    bw = breaker_wait_ms(&a->dlq_breaker);
    if (bw > delay)
        delay = bw;
    a->retrying = true;
    a->retry_at_ms = time_mono_ms() + delay;
}

/* Seal the batch being built and hand it to the writer (nothing may be in
 * flight). RETRY when its DLQ copies are not acknowledged yet or the
 * breaker refuses: the batch stays as it is, consumption pauses. */
static enum flush_result seal_and_submit(struct aggregator *a)
{
    if (!batch_has_content(a))
        return FLUSH_DONE;
    if (!dlq_ready(a)) {
        log_warn("DLQ topic %s has not acknowledged %zu messages; the batch waits",
                 a->cfg->kafka.dlq_topic, dlq_unacked(a->dlq));
        schedule_retry(a);
        return FLUSH_RETRY;
    }
    if (!a->redis_filtered && !a->batch_replay) {
        long dropped = dedupe_redis_filter(a->dd, &a->batch);
        if (dropped > 0)
            metric_add(a->m->duplicates[DUP_REDIS], (double)dropped);
        a->redis_filtered = true;
    }
    if (!breaker_allow(&a->pg_breaker)) {
        schedule_retry(a);
        return FLUSH_RETRY;
    }
    /* Swap: the built batch goes in flight, the (empty) old one is reused.
     * Every DLQ copy it covers is acknowledged, so the DLQ forgets them. */
    struct batch tmp = a->inflight;
    a->inflight = a->batch;
    a->batch = tmp;
    batch_clear(&a->batch);
    a->inflight_msgs = a->batch_msgs;
    a->inflight_active = true;
    a->retrying = false;
    dlq_reset(a->dlq);
    dedupe_batch_reset(a->dd);
    a->batch_msgs = 0;
    a->batch_start_ms = 0;
    a->redis_filtered = false;
    a->batch_replay = false;
    writer_submit(a->wr, &a->inflight);
    return FLUSH_DONE;
}

/* The in-flight batch's result (the writer is idle now). */
static enum flush_result finish_inflight(struct aggregator *a, struct writer_result *res)
{
    account_write(a, res->r, res->elapsed_us);
    ssize_t bad = res->stats.bad_row;
    switch (res->r) {
    case PG_OK:
        log_debug("batch committed: %zu messages, %zu rows, %zu inserted, %.1f ms",
                  a->inflight_msgs, a->inflight.n, res->stats.inserted,
                  (double)res->elapsed_us / 1000);
        commit_effects(a, &a->inflight, &res->stats);
        pg_write_stats_release(&res->stats);
        batch_clear(&a->inflight);
        a->inflight_active = false;
        a->retrying = false;
        backoff_reset(&a->retry);
        return FLUSH_DONE;
    case PG_TRANSIENT:
        pg_write_stats_release(&res->stats);
        log_warn("batch of %zu rows not written (will retry): %s", a->inflight.n, res->err);
        schedule_retry(a);
        return FLUSH_RETRY;
    case PG_CONFLICT:
        pg_write_stats_release(&res->stats);
        log_warn("offset compare-and-set lost (partition moved to another consumer): %s", res->err);
        abandon_all(a, true);
        return FLUSH_ABANDONED;
    case PG_DATA: {
        pg_write_stats_release(&res->stats);
        log_warn("batch refused by PostgreSQL (data error), isolating bad rows: %s", res->err);
        enum pg_status r2 = isolate(a, &a->inflight, bad, res->err);
        if (r2 == PG_OK) {
            batch_clear(&a->inflight);
            a->inflight_active = false;
            a->retrying = false;
            backoff_reset(&a->retry);
            return FLUSH_DONE;
        }
        if (r2 == PG_FATAL) {
            fatal_stop(a, res->err);
            return FLUSH_FATAL;
        }
        abandon_all(a, true);
        return FLUSH_ABANDONED;
    }
    case PG_FATAL:
    default:
        pg_write_stats_release(&res->stats);
        log_error("PostgreSQL refused the batch with a non-retryable error, stopping: %s",
                  res->err);
        fatal_stop(a, res->err);
        return FLUSH_FATAL;
    }
}

/* Retry what waits: the in-flight batch (same rows, same offsets) or the
 * sealing of the built one. */
static void retry_now(struct aggregator *a)
{
    if (!a->inflight_active) {
        seal_and_submit(a);
        return;
    }
    if (!breaker_allow(&a->pg_breaker)) {
        schedule_retry(a);
        return;
    }
    a->retrying = false;
    writer_submit(a->wr, &a->inflight);
}

/* Wait for the in-flight batch, if any, and take its result. The writer is
 * idle afterwards (a transient failure leaves the batch waiting for a
 * retry). */
static enum flush_result drain(struct aggregator *a)
{
    struct writer_result res;
    if (!writer_wait(a->wr, -1, &res))
        return a->inflight_active ? FLUSH_RETRY : FLUSH_DONE;
    return finish_inflight(a, &res);
}

/* Commit everything handled so far, once, synchronously: for a revocation
 * and for shutdown. On failure both batches are abandoned (positions back
 * to the stored offsets). */
static void flush_all_once(struct aggregator *a)
{
    enum flush_result r = drain(a);
    if (r == FLUSH_RETRY && a->inflight_active) {
        retry_now(a);
        r = writer_busy(a->wr) ? drain(a) : FLUSH_RETRY;
    }
    if (r != FLUSH_RETRY && r != FLUSH_FATAL && batch_has_content(a)) {
        r = seal_and_submit(a);
        if (r == FLUSH_DONE && writer_busy(a->wr))
            r = drain(a);
    }
    if (r == FLUSH_RETRY || a->inflight_active || batch_has_content(a)) {
        log_warn("could not commit the current batches; abandoning them (re-read from the "
                 "stored offsets)");
        abandon_all(a, false);
    }
    a->retrying = false;
}

/* Counters kept by modules without access to the registry. */
static void sync_counters(struct aggregator *a)
{
    const struct dedupe_stats *ds = dedupe_stats(a->dd);
    metric_add(a->m->redis_errors, (double)(ds->redis_errors - a->last_dd.redis_errors));
    metric_add(a->m->redis_skipped, (double)(ds->redis_skipped - a->last_dd.redis_skipped));
    a->last_dd = *ds;
    uint64_t df = dlq_failures_total(a->dlq);
    metric_add(a->m->dlq_failures, (double)(df - a->last_dlq_failures));
    a->last_dlq_failures = df;
}

/* Pause every assigned partition while a batch waits for a retry, the
 * PostgreSQL breaker is not closed, or its offset is unknown; resume (from
 * the position we want, not librdkafka's) otherwise. */
static void sync_pause(struct aggregator *a)
{
    bool want = a->retrying || breaker_state(&a->pg_breaker) != BREAKER_CLOSED;
    int paused = 0;
    for (size_t i = 0; i < a->nparts; i++) {
        struct part_state *ps = &a->parts[i];
        if (!ps->assigned)
            continue;
        bool p_want = want || !ps->ready;
        if (p_want && !ps->paused) {
            consumer_pause(a->c, (int32_t)i, true);
            ps->paused = true;
        } else if (!p_want && ps->paused) {
            consumer_seek(a->c, (int32_t)i, start_offset(ps));
            consumer_pause(a->c, (int32_t)i, false);
            ps->paused = false;
        }
        paused += ps->paused;
    }
    metric_set(a->m->paused, paused > 0 ? 1 : 0);
}

static void on_rebalance(void *ud, bool assign, rd_kafka_topic_partition_list_t *parts)
{
    struct aggregator *a = ud;
    const char *topic = a->cfg->kafka.topic;
    metric_inc(a->m->rebalances);
    a->joined = true;
    if (assign) {
        /* The stored offsets are read with the pg_writer: the writer thread
         * must be idle. */
        drain(a);
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            struct part_state *ps = part_get(a, tp->partition);
            if (!ps || strcmp(tp->topic, topic) != 0)
                continue;
            ps->assigned = true;
            ps->paused = false;
            if (!ps->lag)
                ps->lag = aggr_metrics_lag(a->m, tp->partition);
            int64_t off;
            if (load_offset_replay(a, tp->partition, &off) == 0) {
                ps->ready = true;
                ps->stored = ps->pos = off;
                tp->offset = off >= 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
            } else {
                /* Assigned but paused (sync_pause) until the offset loads;
                 * anything fetched meanwhile is dropped. */
                ps->ready = false;
                ps->stored = ps->pos = -1;
                tp->offset = RD_KAFKA_OFFSET_INVALID;
            }
            log_info("assigned %s[%d] from offset %" PRId64 "%s", topic, (int)tp->partition,
                     ps->stored, ps->ready ? "" : " (offset not loaded yet: paused)");
        }
        consumer_assign(a->c, parts);
        sync_pause(a);
        return;
    }

    /* Revocation: commit what we have while we still own the partitions;
     * if that fails, drop it (the next owner starts from the stored
     * offsets). Partitions kept (cooperative protocol) are sought back. */
    flush_all_once(a);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct part_state *ps = part_get(a, tp->partition);
        if (!ps || strcmp(tp->topic, topic) != 0)
            continue;
        ps->assigned = ps->ready = ps->paused = false;
        ps->stored = ps->pos = -1;
        if (ps->lag)
            metric_set(ps->lag, 0);
        log_info("revoked %s[%d]", topic, (int)tp->partition);
    }
    consumer_unassign(a->c, parts);
}

static void handle_message(struct aggregator *a, rd_kafka_message_t *msg)
{
    if (msg->err) {
        /* librdkafka retries what is transient by itself; a fatal error
         * (e.g. the group fenced this member) ends the process. */
        if (msg->err == RD_KAFKA_RESP_ERR__FATAL) {
            log_error("consumer: fatal error: %s", rd_kafka_message_errstr(msg));
            fatal_stop(a, rd_kafka_message_errstr(msg));
        } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            log_warn("consumer: %s", rd_kafka_message_errstr(msg));
        }
        return;
    }
    if (!msg->rkt || strcmp(rd_kafka_topic_name(msg->rkt), a->cfg->kafka.topic) != 0)
        return;
    int32_t p = msg->partition;
    int64_t off = msg->offset;
    struct part_state *ps = part_get(a, p);
    /* Not ours, offset unknown, or paused (it will be fetched again after
     * the seek on resume), or while a batch waits for its retry. */
    if (!ps || !ps->assigned || !ps->ready || ps->paused || a->retrying)
        return;
    if (ps->pos >= 0 && off < ps->pos)
        return; /* before our position: stale prefetch after a seek */
    if (ps->pos >= 0 && off > ps->pos) {
        /* Kafka offsets can skip (transaction markers, retention on the
         * mock); counted so an unexpected skip is visible. */
        metric_inc(a->m->seek_gaps);
        log_debug("%s[%d]: offset %" PRId64 " after expected %" PRId64, a->cfg->kafka.topic, (int)p,
                  off, ps->pos);
    }
    metric_inc(a->m->consumed);
    if (a->batch_msgs == 0)
        a->batch_start_ms = time_mono_ms();
    a->batch_msgs++;

    struct envelope env = {0};
    char err[512];
    enum validate_reason vr = validate_message(
        msg->payload, msg->len, (size_t)a->cfg->batch.max_message_bytes, &env, err, sizeof(err));
    if (vr != VALIDATE_OK) {
        rd_kafka_headers_t *hdrs = NULL;
        if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
            hdrs = NULL;
        dlq_add(a->dlq, msg->key, msg->key_len, msg->payload, msg->len, hdrs,
                validate_reason_name(vr), err, a->cfg->kafka.topic, p, off);
        metric_inc(a->m->dlq[vr]);
        alerter_fire(a->alerter, "AuditrailDLQWrite", ALERT_WARNING,
                     "messages sent to the dead-letter topic", err, "reason",
                     validate_reason_name(vr), NULL);
        log_warn("%s[%d]@%" PRId64 " sent to the DLQ: %s", a->cfg->kafka.topic, (int)p, off, err);
    } else if (dedupe_batch_seen(a->dd, env.id)) {
        metric_inc(a->m->duplicates[DUP_BATCH]);
        envelope_release(&env);
    } else if (off >= ps->replay_until && dedupe_lru_seen(a->dd, env.id)) {
        metric_inc(a->m->duplicates[DUP_LRU]);
        envelope_release(&env);
    } else {
        if (off < ps->replay_until)
            a->batch_replay = true;
        batch_add(&a->batch, &env, p, off);
    }
    /* Handled either way: stored, skipped as a re-send, or in the DLQ. */
    /* The compare-and-set expects what PostgreSQL will hold when this batch
     * is written: the in-flight batch's next offset, or the stored one. */
    if (!batch_offset_find(&a->batch, p)) {
        const struct batch_offset *fo =
            a->inflight_active ? batch_offset_find(&a->inflight, p) : NULL;
        batch_advance(&a->batch, p, fo ? fo->next_offset : ps->stored, off + 1);
    } else {
        batch_advance(&a->batch, p, ps->stored, off + 1); /* expected kept from the first */
    }
    ps->pos = off + 1;
}

static bool building_due(const struct aggregator *a, uint64_t now)
{
    if (!batch_has_content(a))
        return false;
    return batch_due(&a->cfg->batch, a->batch_msgs, a->batch.bytes, a->batch_start_ms, now);
}

static void update_ready(struct aggregator *a)
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
    metric_set(a->m->ready, rc == READY_OK ? 1 : 0);
}

static void run_maintenance(struct aggregator *a)
{
    struct maintenance_result res = {0};
    char err[512];
    if (maintenance_run_once(a->maint, a->redis, time_now_us(), &res, err, sizeof(err)) != 0) {
        log_warn("partition maintenance failed (retried in %" PRId64 " s): %s",
                 a->cfg->partitions.maintenance_interval_s, err);
        return;
    }
    if (!res.ran)
        return;
    metric_add(a->m->partitions_created, res.created);
    metric_add(a->m->partitions_dropped, res.dropped);
    if (res.created || res.dropped)
        log_info("partition maintenance (%s lock): %d created, %d dropped", res.lock, res.created,
                 res.dropped);
}

/* A partition that is not being written notices a replay (its stored offset
 * moved outside this process) here, not only at its next commit, which may
 * never come for a quiet partition. Uses the writer's connection: only while
 * the writer is idle. */
static void check_stored_offsets(struct aggregator *a, uint64_t now)
{
    if (now < a->next_offset_check_ms || writer_busy(a->wr) ||
        breaker_state(&a->pg_breaker) != BREAKER_CLOSED)
        return;
    a->next_offset_check_ms = now + OFFSET_CHECK_MS;
    for (size_t i = 0; i < a->nparts; i++) {
        struct part_state *ps = &a->parts[i];
        int32_t p = (int32_t)i;
        if (!ps->assigned || !ps->ready || ps->paused || batch_offset_find(&a->batch, p) ||
            (a->inflight_active && batch_offset_find(&a->inflight, p)))
            continue;
        int64_t off;
        if (load_offset(a, p, &off) != 0 || off == ps->stored)
            continue;
        note_replay(a, p, off);
        log_info("%s[%d]: the stored offset moved from %" PRId64 " to %" PRId64
                 " outside this process (a replay): seeking there",
                 a->cfg->kafka.topic, (int)p, ps->stored, off);
        ps->stored = ps->pos = off;
        consumer_seek(a->c, p, start_offset(ps));
    }
}

static void periodic(struct aggregator *a, uint64_t now)
{
    if (now < a->next_periodic_ms)
        return;
    a->next_periodic_ms = now + PERIODIC_MS;

    /* Partitions whose stored offset could not be loaded at assignment. */
    for (size_t i = 0; i < a->nparts; i++) {
        struct part_state *ps = &a->parts[i];
        if (!ps->assigned || ps->ready || writer_busy(a->wr) || !breaker_allow(&a->pg_breaker))
            continue;
        int64_t off;
        if (load_offset_replay(a, (int32_t)i, &off) == 0) {
            ps->stored = ps->pos = off;
            ps->ready = true;
            log_info("loaded the stored offset of %s[%zu]: %" PRId64, a->cfg->kafka.topic, i, off);
        }
    }
    check_stored_offsets(a, now);
    /* Probe PostgreSQL while the breaker is not closed and no batch does. */
    if (!batch_has_content(a) && !a->inflight_active &&
        breaker_state(&a->pg_breaker) != BREAKER_CLOSED && breaker_allow(&a->pg_breaker)) {
        char err[256];
        if (pg_writer_ping(a->pg, err, sizeof(err)) == PG_OK)
            breaker_success(&a->pg_breaker);
        else
            breaker_failure(&a->pg_breaker);
    }

    for (size_t i = 0; i < a->nparts; i++) {
        struct part_state *ps = &a->parts[i];
        if (!ps->assigned || !ps->lag)
            continue;
        int64_t hw = consumer_high_watermark(a->c, (int32_t)i);
        int64_t at = ps->pos >= 0 ? ps->pos : ps->stored;
        if (hw >= 0 && at >= 0)
            metric_set(ps->lag, (double)(hw > at ? hw - at : 0));
    }
    size_t assigned = 0;
    for (size_t i = 0; i < a->nparts; i++)
        assigned += a->parts[i].assigned;
    metric_set(a->m->assigned, (double)assigned);
    metric_set(a->m->breaker_pg, breaker_state(&a->pg_breaker));
    metric_set(a->m->breaker_dlq, breaker_state(&a->dlq_breaker));
    const struct breaker *rb = dedupe_redis_breaker(a->dd);
    metric_set(a->m->breaker_redis, rb ? breaker_state(rb) : 0);
    sync_counters(a);

    if (a->maint && now >= a->next_maint_ms) {
        a->next_maint_ms = now + (uint64_t)a->cfg->partitions.maintenance_interval_s * 1000;
        run_maintenance(a);
    }
}

static void on_breaker_change(void *ud, const struct breaker *b, enum breaker_state from,
                              enum breaker_state to)
{
    struct aggregator *a = ud;
    bool pg = strcmp(b->name, "postgres") == 0;
    if (to == BREAKER_OPEN) {
        log_warn("circuit breaker %s: %s -> open (%s; next probe in %" PRIu64 " ms)", b->name,
                 breaker_state_name(from),
                 pg ? "consumption paused, not ready" : "batches with DLQ copies wait",
                 breaker_wait_ms(b));
        alerter_fire(a->alerter, "AuditrailBreakerOpen", ALERT_CRITICAL,
                     pg ? "PostgreSQL primary breaker open: ingestion paused"
                        : "DLQ producer breaker open: partitions with poison messages wait",
                     NULL, "breaker", b->name, NULL);
    } else {
        log_info("circuit breaker %s: %s -> %s", b->name, breaker_state_name(from),
                 breaker_state_name(to));
        if (to == BREAKER_CLOSED)
            alerter_resolve(a->alerter, "AuditrailBreakerOpen", "breaker", b->name, NULL);
    }
}

void aggregator_set_alerter(struct aggregator *a, struct alerter *al)
{
    a->alerter = al;
    dedupe_set_alerter(a->dd, al);
}

struct aggregator *aggregator_new(const struct aggr_config *cfg, struct aggr_metrics *am, char *err,
                                  size_t errlen)
{
    struct aggregator *a = xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->m = am;
    atomic_init(&a->ready_code, READY_NOT_JOINED);
    struct breaker_conf bc;
    aggr_config_breaker(cfg, &bc);
    breaker_init(&a->pg_breaker, "postgres", &bc, NULL, NULL, NULL, NULL, on_breaker_change, a);
    breaker_init(&a->dlq_breaker, "dlq", &bc, NULL, NULL, NULL, NULL, on_breaker_change, a);
    backoff_init(&a->retry, 100, bc.open_max_ms < 5000 ? bc.open_max_ms : 5000, NULL, NULL);
    batch_init(&a->batch, cfg->kafka.topic);
    batch_init(&a->inflight, cfg->kafka.topic);

    a->pg = pg_writer_new(cfg->postgres.primary, cfg->kafka.group, err, errlen);
    if (!a->pg)
        goto fail;
    a->wr = writer_new(a->pg);
    if (cfg->redis.url) {
        a->redis = redis_store_new(cfg->redis.url, (uint64_t)cfg->dedupe.redis_ttl_s,
                                   (unsigned)cfg->redis.timeout_ms, err, errlen);
        if (!a->redis)
            goto fail;
    }
    a->dd = dedupe_new((size_t)cfg->dedupe.lru_size, a->redis, &bc);
    a->dlq = dlq_new(&cfg->kafka, cfg->kafka.dlq_topic, err, errlen);
    if (!a->dlq)
        goto fail;

    struct maintenance_conf mc;
    maintenance_conf_defaults(&mc);
    char holder[300], host[256] = "aggregator";
    gethostname(host, sizeof(host) - 1);
    snprintf(holder, sizeof(holder), "%s:%d", host, (int)getpid());
    mc.premake_days = (int)cfg->partitions.premake;
    mc.retention_days = (int)cfg->partitions.retention_days;
    mc.keep_table = cfg->partitions.retention_keep_table;
    mc.holder = holder;
    a->maint = maintenance_new(cfg->postgres.primary, &mc);

    a->c = consumer_new(&cfg->kafka, on_rebalance, a, err, errlen);
    if (!a->c)
        goto fail;
    return a;
fail:
    aggregator_free(a);
    return NULL;
}

int aggregator_run(struct aggregator *a, const volatile sig_atomic_t *stop)
{
    struct writer_result res;
    while (!*stop && !a->fatal) {
        uint64_t now = time_mono_ms();
        periodic(a, now);
        sync_pause(a);
        update_ready(a);
        if (writer_busy(a->wr) && writer_wait(a->wr, 0, &res)) {
            finish_inflight(a, &res);
            sync_counters(a);
            continue;
        }
        int timeout = 100;
        if (a->retrying) {
            if (now >= a->retry_at_ms) {
                retry_now(a);
                continue;
            }
            if (a->retry_at_ms - now < (uint64_t)timeout)
                timeout = (int)(a->retry_at_ms - now);
        } else if (building_due(a, now)) {
            if (!a->inflight_active) {
                seal_and_submit(a);
                sync_counters(a);
            } else if (writer_wait(a->wr, 100, &res)) {
                /* One batch in flight at a time: wait for it rather than
                 * grow this one past its limits. */
                finish_inflight(a, &res);
                sync_counters(a);
            }
            continue;
        } else if (batch_has_content(a)) {
            uint64_t due = a->batch_start_ms + (uint64_t)a->cfg->batch.max_ms;
            timeout = due > now ? (int)(due - now < 100 ? due - now : 100) : 0;
        }
        if (writer_busy(a->wr) && timeout > 5)
            timeout = 5; /* notice the writer's result promptly when idle */
        rd_kafka_message_t *msg = consumer_poll(a->c, timeout);
        if (msg) {
            handle_message(a, msg);
            rd_kafka_message_destroy(msg);
        }
    }

    /* Stop: commit what was handled if PostgreSQL lets us within a short
     * while, else drop it (its offsets are not stored: the next owner
     * re-reads it). Messages polled meanwhile are not handled. */
    atomic_store(&a->ready_code, READY_STOPPING);
    uint64_t deadline = time_mono_ms() + SHUTDOWN_FLUSH_MS;
    while (!a->fatal && (a->inflight_active || batch_has_content(a)) && time_mono_ms() < deadline) {
        if (writer_busy(a->wr)) {
            if (writer_wait(a->wr, 50, &res))
                finish_inflight(a, &res);
            continue;
        }
        if (a->retrying && time_mono_ms() < a->retry_at_ms) {
            rd_kafka_message_t *msg = consumer_poll(a->c, 50); /* keep the group alive */
            if (msg)
                rd_kafka_message_destroy(msg);
            continue;
        }
        if (a->retrying || a->inflight_active)
            retry_now(a);
        else
            seal_and_submit(a);
    }
    if (writer_busy(a->wr))
        drain(a);
    if (a->inflight_active || batch_has_content(a)) {
        log_warn("stopping with uncommitted batches (%zu + %zu rows): abandoned (they will be "
                 "re-read from the stored offsets)",
                 a->inflight.n, a->batch.n);
        abandon_all(a, false);
    }
    sync_counters(a);
    a->retrying = false;
    consumer_close(a->c); /* leaves the group; the revocation finds nothing to commit */
    a->c = NULL;
    return a->fatal ? 1 : 0;
}

void aggregator_free(struct aggregator *a)
{
    if (!a)
        return;
    if (a->c)
        consumer_close(a->c); /* never ran: nothing handled, nothing to commit */
    writer_free(a->wr);       /* before the pg_writer it borrows */
    dlq_free(a->dlq, 5000);
    dedupe_free(a->dd);
    maintenance_free(a->maint);
    redis_store_free(a->redis);
    pg_writer_free(a->pg);
    batch_release(&a->batch);
    batch_release(&a->inflight);
    free(a->parts);
    free(a);
}

bool aggregator_ready(void *ud, char *reason, size_t len)
{
    struct aggregator *a = ud;
    int rc = atomic_load(&a->ready_code);
    if (rc == READY_OK)
        return true;
    snprintf(reason, len, "%s", ready_reasons[rc]);
    return false;
}
