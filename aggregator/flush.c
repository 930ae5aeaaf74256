/* The aggregator's batches after intake (aggregator_int.h): seal the batch
 * being built and hand it to the writer thread, take its result, retry
 * transient failures with backoff, isolate rows PostgreSQL refuses (to the
 * DLQ), abandon batches whose offsets went elsewhere, and apply a commit's
 * effects (metrics, dedupe marks, stored offsets, Kafka's commit).
 * Consumer thread only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator_int.h"
#include "aggregator/dlq.h"
#include "aggregator/pg_writer.h"
#include "common/alert.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define DLQ_SETTLE_MS     5000
#define SHUTDOWN_FLUSH_MS 5000

bool flush_has_content(const struct aggregator *a)
{
    return a->batch.n > 0 || a->batch.noffsets > 0;
}

bool flush_due(const struct aggregator *a, uint64_t now)
{
    if (!flush_has_content(a))
        return false;
    return batch_due(&a->cfg->batch, a->batch_msgs, a->batch_bytes, a->batch_start_ms, now);
}

/* Start a new batch being built: empty, and the layers that track it (the
 * dedupe batch set, the DLQ's unacknowledged copies) forget it. */
static void reset_batch(struct aggregator *a)
{
    batch_clear(&a->batch);
    dedupe_batch_reset(a->dd);
    dlq_reset(a->dlq);
    a->batch_msgs = 0;
    a->batch_bytes = 0;
    a->batch_start_ms = 0;
    a->redis_filtered = false;
    a->batch_replay = false;
}

/* Drop the in-flight batch and the batch being built without committing
 * anything: every partition they touched goes back to its stored offset
 * (reloaded from PostgreSQL when another consumer may have moved it), so
 * nothing handled-but-uncommitted is skipped. DLQ copies already sent may
 * be sent again: the DLQ is at-least-once. If the writer is still writing
 * the in-flight batch, that batch stays its own until the result comes
 * (orphaned: then only accounted) and intake stays held meanwhile; its
 * commit, if it happens, is safe: the offsets' compare-and-set makes any
 * later batch of ours over the same offsets fail or find re-sends. */
void flush_abandon_all(struct aggregator *a, bool reload)
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
    if (writer_busy(a->wr)) {
        a->inflight_orphaned = true;
        a->held = true;
    } else {
        batch_clear(&a->inflight);
        a->inflight_active = false;
    }
    a->retrying = false;
    for (size_t i = 0; i < k; i++) {
        struct part_state *ps = consume_part(a, ps_list[i]);
        if (!ps || !ps->assigned)
            continue;
        if (reload && !writer_busy(a->wr)) {
            int64_t off;
            if (consume_load_offset_replay(a, ps_list[i], &off) != 0) {
                /* Stays paused until the periodic reload succeeds. */
                ps->ready = false;
                continue;
            }
            ps->stored = off;
        }
        ps->pos = ps->stored;
        if (!ps->paused)
            consumer_seek(a->c, ps_list[i], consume_start_offset(ps));
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
    metric_add(m->fields_cut, (double)st->fields_cut);
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
        struct part_state *ps = consume_part(a, b->offsets[i].partition);
        int64_t next = b->offsets[i].next_offset;
        if (ps) {
            ps->stored = next;
            if (next > ps->hwm)
                ps->hwm = next;
            if (!ps->assigned)
                continue; /* an orphaned write's: the partition went elsewhere */
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
    if (pg_status_retryable(r))
        breaker_failure(&a->pg_breaker);
    else
        breaker_success(&a->pg_breaker); /* PostgreSQL answered */
    if (r == PG_OK)
        a->pg_answered = true;
}

/* A commit's WAL position ("X/Y", "" = unknown), for /v1/status. */
static void note_commit(struct aggregator *a, const char *lsn_text)
{
    uint64_t lsn;
    if (!lsn_text[0] || pg_lsn_parse(lsn_text, &lsn) != 0)
        return;
    atomic_store(&a->commit_lsn, lsn);
    atomic_store(&a->commit_us, time_now_us());
}

/* One synchronous pg_writer_write (writer thread idle). stats zeroed. */
static enum pg_status write_batch(struct aggregator *a, const struct batch *b,
                                  struct pg_write_stats *st, char *err, size_t errlen)
{
    uint64_t t0 = time_mono_us();
    enum pg_status r = pg_writer_write(a->pg, b, st, err, errlen);
    account_write(a, r, time_mono_us() - t0);
    char lsn[24] = "", e2[256];
    if (r == PG_OK && pg_writer_wal_lsn(a->pg, lsn, sizeof(lsn), e2, sizeof(e2)) == PG_OK)
        note_commit(a, lsn);
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
    health_dlq_sent(a, VALIDATE_STORAGE, error);
    log_warn("row %s (%s[%d]@%" PRId64 ") refused by PostgreSQL, sent to the DLQ: %s", r->env.id,
             b->topic, (int)r->kafka_partition, r->kafka_offset, why);
    free(val);
    uint8_t *drop = xcalloc(b->n, 1);
    drop[idx] = 1;
    batch_remove(b, drop);
    free(drop);
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
        aggregator_fatal_stop(a, why);
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

/* PG_RESOURCE: the server lacks something (lock table, memory, disk) for
 * this batch. Write it in ever smaller prefixes, each committed on its own;
 * never to the DLQ (the data is not at fault). b keeps what is not
 * committed yet. PG_OK when all of it is committed; PG_RESOURCE when even
 * a single row fails (b holds it and what follows: retried later as a
 * whole); otherwise the failure of a part (the caller abandons). */
static enum pg_status shrink(struct aggregator *a, struct batch *b, char *why, size_t whylen)
{
    size_t k = b->n > 1 ? b->n / 2 : 1;
    for (;;) {
        struct pg_write_stats st = {0};
        if (k >= b->n) {
            enum pg_status r = write_batch(a, b, &st, why, whylen);
            if (r == PG_OK) {
                commit_effects(a, b, &st);
                batch_clear(b);
            } else if (r == PG_DATA) {
                r = isolate(a, b, st.bad_row, why);
                if (r == PG_OK)
                    batch_clear(b);
            }
            pg_write_stats_release(&st);
            return r;
        }
        struct batch lo, hi;
        batch_split(b, k, &lo, &hi);
        enum pg_status r = write_batch(a, &lo, &st, why, whylen);
        if (r == PG_DATA)
            r = isolate(a, &lo, st.bad_row, why);
        else if (r == PG_OK)
            commit_effects(a, &lo, &st);
        pg_write_stats_release(&st);
        if (r == PG_OK) {
            batch_release(&lo);
            batch_release(b);
            *b = hi; /* the rest, its offsets continuing from lo's */
            continue;
        }
        batch_unsplit(b, &lo, &hi);
        if (r != PG_RESOURCE || k == 1)
            return r;
        k /= 2;
    }
}

/* Hand the in-flight batch to the writers: cut into parts that commit
 * concurrently (batch_split_parts) when there are several connections and
 * the batch can be cut, else whole. */
static void submit_inflight(struct aggregator *a)
{
    const struct batch *parts[WRITER_MAX_CONNECTIONS];
    size_t k = batch_split_parts(&a->inflight, writer_connections(a->wr), a->parts_inflight);
    a->nparts_inflight = k > 1 ? k : 0;
    if (k > 1)
        metric_inc(a->m->batch_cuts);
    for (size_t i = 0; i < k; i++)
        parts[i] = k > 1 ? &a->parts_inflight[i] : &a->inflight;
    writer_submit(a->wr, parts, k);
}

/* A part (or the whole) of the in-flight batch committed: its effects; and
 * when the write was abandoned meanwhile (intake held since), a partition
 * still ours goes on from the new stored offset (consume_sync_pause seeks
 * when it resumes). */
static void part_committed(struct aggregator *a, const struct batch *b, struct writer_part *p)
{
    commit_effects(a, b, &p->stats);
    note_commit(a, p->commit_lsn);
    if (!a->inflight_orphaned)
        return;
    for (size_t i = 0; i < b->noffsets; i++) {
        struct part_state *ps = consume_part(a, b->offsets[i].partition);
        if (ps && ps->assigned && ps->ready && ps->pos < ps->stored)
            ps->pos = ps->stored;
    }
}

/* Which failure decides what happens to the parts that did not commit,
 * merged back into one batch: a stop first, then a lost compare-and-set
 * (abandon all), a transient failure (retry all), lack of resources
 * (shrink), a data error (isolate). */
static int failure_rank(enum pg_status r)
{
    switch (r) {
    case PG_OK:
        return 0;
    case PG_DATA:
        return 1;
    case PG_RESOURCE:
        return 2;
    case PG_TRANSIENT:
        return 3;
    case PG_CONFLICT:
        return 4;
    default:
        return 5; /* PG_FATAL */
    }
}

/* Take the writers' result for the in-flight batch: every transaction is
 * accounted, every committed part's effects applied; what did not commit
 * is the in-flight batch again (its parts merged back, in part order) and
 * *out its one outcome (PG_OK: nothing left; else the deciding failure,
 * its error, and bad_row as an index into the merged batch; stats to be
 * released by the caller). */
static void join_parts(struct aggregator *a, struct writer_result *res, struct writer_part *out)
{
    bool cut = a->nparts_inflight > 0;
    size_t n = cut ? a->nparts_inflight : 1;
    memset(out, 0, sizeof(*out));
    out->r = PG_OK;
    out->stats.bad_row = -1;
    if (cut)
        batch_clear(&a->inflight); /* its rows are the parts' */
    for (size_t i = 0; i < n && i < res->n; i++) {
        struct writer_part *p = &res->part[i];
        struct batch *b = cut ? &a->parts_inflight[i] : &a->inflight;
        account_write(a, p->r, p->elapsed_us);
        if (p->elapsed_us > out->elapsed_us)
            out->elapsed_us = p->elapsed_us;
        if (p->r == PG_OK) {
            part_committed(a, b, p);
            pg_write_stats_release(&p->stats);
            if (cut)
                batch_release(b);
            else
                batch_clear(b);
            continue;
        }
        size_t base = a->inflight.n;
        bool decides = failure_rank(p->r) > failure_rank(out->r);
        if (decides) {
            pg_write_stats_release(&out->stats);
            out->r = p->r;
            memcpy(out->err, p->err, sizeof(out->err));
        }
        if (!cut) {
            out->stats = p->stats; /* whole: bad_row indexes a->inflight already */
            continue;
        }
        if (decides)
            out->stats.bad_row = p->stats.bad_row >= 0 ? (ssize_t)base + p->stats.bad_row : -1;
        pg_write_stats_release(&p->stats);
        batch_merge(&a->inflight, b);
    }
    a->nparts_inflight = 0;
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
enum flush_result flush_seal_and_submit(struct aggregator *a)
{
    if (!flush_has_content(a))
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
    a->inflight_msgs = a->batch_msgs;
    a->inflight_active = true;
    a->retrying = false;
    reset_batch(a);
    submit_inflight(a);
    return FLUSH_DONE;
}

/* The result of a write that was abandoned while it ran (what committed
 * of it was applied by join_parts): the rest is dropped. */
static enum flush_result finish_orphan(struct aggregator *a, struct writer_part *res)
{
    a->inflight_orphaned = false;
    if (res->r == PG_OK)
        log_info("an abandoned batch write committed after all");
    else
        log_info("an abandoned batch write ended without committing (all or part): %s", res->err);
    pg_write_stats_release(&res->stats);
    batch_clear(&a->inflight);
    a->inflight_active = false;
    if (res->r == PG_FATAL) {
        log_error("PostgreSQL refused a batch with a non-retryable error, stopping: %s", res->err);
        aggregator_fatal_stop(a, res->err);
        return FLUSH_FATAL;
    }
    return FLUSH_ABANDONED;
}

/* The in-flight batch is settled (committed, or handled row by row): the
 * next one may go, without a backoff. */
static enum flush_result inflight_done(struct aggregator *a)
{
    batch_clear(&a->inflight);
    a->inflight_active = false;
    a->retrying = false;
    backoff_reset(&a->retry);
    return FLUSH_DONE;
}

/* A write committed: a resources alert, if any, is over. */
static void resources_ok(struct aggregator *a)
{
    if (!a->resource_alerted)
        return;
    a->resource_alerted = false;
    log_info("PostgreSQL stores batches again after lacking resources");
    alerter_resolve(a->alerter, "AuditrailWriteResources", NULL);
}

/* PG_RESOURCE: shrink; what even one row cannot get waits for a retry. */
static enum flush_result finish_resource(struct aggregator *a, struct writer_part *res)
{
    log_warn("batch of %zu rows refused for lack of server resources; writing it in smaller "
             "parts: %s",
             a->inflight.n, res->err);
    char why[512];
    snprintf(why, sizeof(why), "%s", res->err);
    enum pg_status r = shrink(a, &a->inflight, why, sizeof(why));
    switch (r) {
    case PG_OK:
        resources_ok(a);
        return inflight_done(a);
    case PG_RESOURCE:
        log_warn("even a single record cannot be stored for lack of server resources; %zu rows "
                 "wait for a retry: %s",
                 a->inflight.n, why);
        if (!a->resource_alerted) {
            a->resource_alerted = true;
            alerter_fire(a->alerter, "AuditrailWriteResources", ALERT_CRITICAL,
                         "PostgreSQL lacks resources to store records (retrying)", why, NULL);
        }
        schedule_retry(a);
        return FLUSH_RETRY;
    case PG_FATAL:
        log_error("PostgreSQL refused a batch with a non-retryable error, stopping: %s", why);
        aggregator_fatal_stop(a, why);
        return FLUSH_FATAL;
    default:
        log_warn("writing a batch in parts failed (%s); re-reading from the stored offsets: %s",
                 pg_status_name(r), why);
        flush_abandon_all(a, true);
        return FLUSH_ABANDONED;
    }
}

/* The in-flight batch's result (the writer is idle now). */
enum flush_result flush_finish(struct aggregator *a, struct writer_result *wres)
{
    size_t rows = a->inflight.n, parts = a->nparts_inflight ? a->nparts_inflight : 1;
    struct writer_part one, *res = &one;
    join_parts(a, wres, res);
    if (a->inflight_orphaned)
        return finish_orphan(a, res);
    ssize_t bad = res->stats.bad_row;
    switch (res->r) {
    case PG_OK:
        resources_ok(a);
        log_debug("batch committed: %zu messages, %zu rows in %zu transactions, %.1f ms",
                  a->inflight_msgs, rows, parts, (double)res->elapsed_us / 1000);
        return inflight_done(a);
    case PG_RESOURCE:
        pg_write_stats_release(&res->stats);
        return finish_resource(a, res);
    case PG_TRANSIENT:
        pg_write_stats_release(&res->stats);
        log_warn("batch of %zu rows not written (will retry): %s", a->inflight.n, res->err);
        schedule_retry(a);
        return FLUSH_RETRY;
    case PG_CONFLICT:
        pg_write_stats_release(&res->stats);
        log_warn("offset compare-and-set lost (partition moved to another consumer): %s", res->err);
        flush_abandon_all(a, true);
        return FLUSH_ABANDONED;
    case PG_DATA: {
        pg_write_stats_release(&res->stats);
        log_warn("batch refused by PostgreSQL (data error), isolating bad rows: %s", res->err);
        enum pg_status r2 = isolate(a, &a->inflight, bad, res->err);
        if (r2 == PG_OK) {
            return inflight_done(a);
        }
        if (r2 == PG_FATAL) {
            aggregator_fatal_stop(a, res->err);
            return FLUSH_FATAL;
        }
        flush_abandon_all(a, true);
        return FLUSH_ABANDONED;
    }
    case PG_FATAL:
    default:
        pg_write_stats_release(&res->stats);
        log_error("PostgreSQL refused the batch with a non-retryable error, stopping: %s",
                  res->err);
        aggregator_fatal_stop(a, res->err);
        return FLUSH_FATAL;
    }
}

/* Retry what waits: the in-flight batch (same rows, same offsets) or the
 * sealing of the built one. */
void flush_retry_now(struct aggregator *a)
{
    if (!a->inflight_active) {
        flush_seal_and_submit(a);
        return;
    }
    if (!breaker_allow(&a->pg_breaker)) {
        schedule_retry(a);
        return;
    }
    a->retrying = false;
    submit_inflight(a);
}

enum flush_result flush_drain(struct aggregator *a, uint64_t deadline_ms)
{
    struct writer_result res;
    if (!writer_busy(a->wr))
        return a->inflight_active ? FLUSH_RETRY : FLUSH_DONE;
    int wait = -1;
    if (deadline_ms) {
        uint64_t now = time_mono_ms();
        wait = deadline_ms > now ? (int)(deadline_ms - now) : 0;
    }
    if (!writer_wait(a->wr, wait, &res))
        return FLUSH_BUSY;
    return flush_finish(a, &res);
}

/* Commit everything handled so far, once, synchronously, within
 * FLUSH_REBALANCE_WAIT_MS: for a revocation (the group waits for us). On
 * failure, or when the writer is still busy at the deadline, both batches
 * are abandoned (positions back to the stored offsets; a write still in
 * progress is left to finish on its own: flush_abandon_all). */
void flush_all_once(struct aggregator *a)
{
    uint64_t deadline = time_mono_ms() + FLUSH_REBALANCE_WAIT_MS;
    enum flush_result r = flush_drain(a, deadline);
    if (r == FLUSH_RETRY && a->inflight_active) {
        flush_retry_now(a);
        r = writer_busy(a->wr) ? flush_drain(a, deadline) : FLUSH_RETRY;
    }
    if (r != FLUSH_RETRY && r != FLUSH_FATAL && r != FLUSH_BUSY && flush_has_content(a)) {
        r = flush_seal_and_submit(a);
        if (r == FLUSH_DONE && writer_busy(a->wr))
            r = flush_drain(a, deadline);
    }
    if (r == FLUSH_BUSY)
        log_warn("a batch write is still in flight after %d ms; the rebalance goes on without "
                 "it (abandoned: its result will only be accounted)",
                 FLUSH_REBALANCE_WAIT_MS);
    if (r == FLUSH_RETRY || r == FLUSH_BUSY || a->inflight_active || flush_has_content(a)) {
        if (r != FLUSH_BUSY)
            log_warn("could not commit the current batches; abandoning them (re-read from the "
                     "stored offsets)");
        flush_abandon_all(a, false);
    }
    a->retrying = false;
}

void flush_at_stop(struct aggregator *a)
{
    struct writer_result res;
    uint64_t deadline = time_mono_ms() + SHUTDOWN_FLUSH_MS;
    while (!a->fatal && (a->inflight_active || flush_has_content(a)) && time_mono_ms() < deadline) {
        if (writer_busy(a->wr)) {
            if (writer_wait(a->wr, 50, &res))
                flush_finish(a, &res);
            continue;
        }
        if (a->retrying && time_mono_ms() < a->retry_at_ms) {
            rd_kafka_message_t *msg = consumer_poll(a->c, 50); /* keep the group alive */
            if (msg)
                rd_kafka_message_destroy(msg);
            continue;
        }
        if (a->retrying || a->inflight_active)
            flush_retry_now(a);
        else
            flush_seal_and_submit(a);
    }
    if (writer_busy(a->wr))
        flush_drain(a, 0);
    if (a->inflight_active || flush_has_content(a)) {
        log_warn("stopping with uncommitted batches (%zu + %zu rows): abandoned (they will be "
                 "re-read from the stored offsets)",
                 a->inflight.n, a->batch.n);
        flush_abandon_all(a, false);
    }
    health_sync_counters(a);
    a->retrying = false;
}
