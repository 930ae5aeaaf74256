/* The aggregator's intake (aggregator_int.h): each message is validated,
 * deduplicated and added to the batch being built (or sent to the DLQ); per
 * Kafka partition, the stored offset and our position; replay detection;
 * assignment and revocation. Consumer thread only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggregator_int.h"
#include "aggregator/dlq.h"
#include "aggregator/offset_reset.h"
#include "aggregator/pg_writer.h"
#include "common/alert.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define OFFSET_CHECK_MS      5000 /* quiet partitions look for a replay this often */
#define WATERMARK_TIMEOUT_MS 5000

struct part_state *consume_part(struct aggregator *a, int32_t p)
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

int64_t consume_start_offset(const struct part_state *ps)
{
    if (ps->pos >= 0)
        return ps->pos;
    return ps->stored >= 0 ? ps->stored : RD_KAFKA_OFFSET_BEGINNING;
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
    struct part_state *ps = consume_part(a, p);
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
int consume_load_offset(struct aggregator *a, int32_t p, int64_t *out)
{
    char err[512];
    enum pg_status r = pg_writer_load_offset(a->pg, a->cfg->kafka.topic, p, out, err, sizeof(err));
    if (r == PG_OK) {
        breaker_success(&a->pg_breaker);
        return 0;
    }
    if (pg_status_retryable(r))
        breaker_failure(&a->pg_breaker);
    log_warn("loading the stored offset of %s[%d]: %s: %s", a->cfg->kafka.topic, (int)p,
             pg_status_name(r), err);
    return -1;
}

/* consume_load_offset, then look for a replay (asks Kafka for the group's committed
 * offset: only where the stored offset may have moved under us). */
int consume_load_offset_replay(struct aggregator *a, int32_t p, int64_t *out)
{
    if (consume_load_offset(a, p, out) != 0)
        return -1;
    note_replay(a, p, *out);
    return 0;
}

/* Pause every assigned partition while a batch waits for a retry, intake
 * is held (a write in flight and the next batch due), the PostgreSQL
 * breaker is not closed, or its offset is unknown; resume (from the
 * position we want, not librdkafka's) otherwise. */
void consume_sync_pause(struct aggregator *a)
{
    bool want = a->retrying || a->held || breaker_state(&a->pg_breaker) != BREAKER_CLOSED;
    int paused = 0;
    for (size_t i = 0; i < a->nparts; i++) {
        struct part_state *ps = &a->parts[i];
        if (!ps->assigned)
            continue;
        bool p_want = want || !ps->ready || ps->reset_pending;
        if (p_want && !ps->paused) {
            consumer_pause(a->c, (int32_t)i, true);
            ps->paused = true;
        } else if (!p_want && ps->paused) {
            consumer_seek(a->c, (int32_t)i, consume_start_offset(ps));
            consumer_pause(a->c, (int32_t)i, false);
            ps->paused = false;
        }
        paused += ps->paused;
    }
    metric_set(a->m->paused, paused > 0 ? 1 : 0);
}

/* Partition tp was assigned to us: load its stored offset (the start
 * position handed to librdkafka through tp->offset). */
static void assign_one(struct aggregator *a, struct part_state *ps, rd_kafka_topic_partition_t *tp)
{
    ps->assigned = true;
    ps->paused = false;
    if (!ps->lag)
        ps->lag = aggr_metrics_lag(a->m, tp->partition);
    int64_t off;
    ps->reset_pending = false;
    if (!writer_busy(a->wr) && consume_load_offset_replay(a, tp->partition, &off) == 0) {
        ps->ready = true;
        ps->stored = ps->pos = off;
        /* Anything below the position now is from before this assignment. */
        ps->stale_from = 0;
        ps->stale_to = off > 0 ? off : 0;
        tp->offset = off >= 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
    } else {
        /* Assigned but paused (consume_sync_pause) until the offset loads;
         * anything fetched meanwhile is dropped. */
        ps->ready = false;
        ps->stored = ps->pos = -1;
        tp->offset = RD_KAFKA_OFFSET_INVALID;
    }
    log_info("assigned %s[%d] from offset %" PRId64 "%s", tp->topic, (int)tp->partition, ps->stored,
             ps->ready ? "" : " (offset not loaded yet: paused)");
}

static void revoke_one(struct part_state *ps, const rd_kafka_topic_partition_t *tp)
{
    ps->assigned = ps->ready = ps->paused = ps->reset_pending = false;
    ps->stored = ps->pos = -1;
    if (ps->lag)
        metric_set(ps->lag, 0);
    log_info("revoked %s[%d]", tp->topic, (int)tp->partition);
}

void consume_rebalance(void *ud, bool assign, rd_kafka_topic_partition_list_t *parts)
{
    struct aggregator *a = ud;
    metric_inc(a->m->rebalances);
    a->joined = true;
    if (assign) {
        /* The stored offsets are read with the pg_writer: the writer thread
         * must be idle (if it is not by then, the partitions wait paused
         * for consume_reload_offsets). */
        (void)flush_drain(a, time_mono_ms() + FLUSH_REBALANCE_WAIT_MS);
    } else {
        /* Revocation: commit what we have while we still own the
         * partitions; if that fails, drop it (the next owner starts from
         * the stored offsets). Partitions kept (cooperative protocol) are
         * sought back. */
        flush_all_once(a);
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct part_state *ps = consume_part(a, tp->partition);
        if (!ps || strcmp(tp->topic, a->cfg->kafka.topic) != 0)
            continue;
        if (assign)
            assign_one(a, ps, tp);
        else
            revoke_one(ps, tp);
    }
    if (assign) {
        consumer_assign(a->c, parts);
        consume_sync_pause(a);
    } else {
        consumer_unassign(a->c, parts);
    }
}

/* The log of partition p no longer holds our position: at is the offset
 * whose fetch failed, or a message's below our position (backwards). The
 * partition pauses until no batch holds it (what was read before the reset
 * is committed first: the log may not have it any more), then restarts. */
static void note_reset(struct aggregator *a, int32_t p, int64_t at, bool backwards)
{
    struct part_state *ps = consume_part(a, p);
    if (!ps || !ps->assigned || ps->reset_pending)
        return;
    ps->reset_pending = true;
    ps->reset_backwards = backwards;
    ps->reset_at = at;
    consume_sync_pause(a);
    consume_apply_resets(a);
}

static bool held_by_batches(struct aggregator *a, int32_t p)
{
    return batch_offset_find(&a->batch, p) ||
           (a->inflight_active && batch_offset_find(&a->inflight, p));
}

/* Restart partition p from ps->pos: every assigned partition with its start
 * position, for the eager protocol's full re-assignment. */
static int restart_partition(struct aggregator *a, int32_t p)
{
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new((int)a->nparts);
    for (size_t i = 0; i < a->nparts; i++)
        if (a->parts[i].assigned)
            rd_kafka_topic_partition_list_add(all, a->cfg->kafka.topic, (int32_t)i)->offset =
                consume_start_offset(&a->parts[i]);
    bool eager = !consumer_cooperative(a->c);
    int rc = consumer_restart(a->c, all, p);
    rd_kafka_topic_partition_list_destroy(all);
    if (rc != 0)
        return -1;
    /* Resumed (librdkafka keeps an application pause across assignments);
     * consume_sync_pause pauses again what must be. */
    for (size_t i = 0; i < a->nparts; i++)
        if (a->parts[i].assigned && (eager || i == (size_t)p)) {
            consumer_pause(a->c, (int32_t)i, false);
            a->parts[i].paused = false;
        }
    return 0;
}

static void apply_reset(struct aggregator *a, int32_t p, struct part_state *ps)
{
    int64_t lo, hi, restart, skipped;
    if (consumer_watermarks(a->c, p, &lo, &hi, WATERMARK_TIMEOUT_MS) != 0)
        return; /* stays pending: retried by the periodic work */
    enum offset_reset_kind k =
        offset_reset_classify(ps->reset_at, lo, hi, ps->reset_backwards, &restart, &skipped);
    const char *topic = a->cfg->kafka.topic;
    char desc[400];
    if (k == OFFSET_RESET_NONE) {
        snprintf(desc, sizeof(desc),
                 "offset %" PRId64 " is inside the log [%" PRId64 ", %" PRId64 ") again",
                 ps->reset_at, lo, hi);
    } else if (k == OFFSET_RESET_LOG_START) {
        snprintf(desc, sizeof(desc),
                 "%s[%d]: the log starts at %" PRId64 ", past our position %" PRId64 ": %" PRId64
                 " offsets were deleted before they were read; reading from %" PRId64,
                 topic, (int)p, lo, ps->reset_at, skipped, restart);
    } else {
        snprintf(desc, sizeof(desc),
                 "%s[%d]: %s %" PRId64 " %s (log [%" PRId64 ", %" PRId64
                 ")): the topic was recreated, truncated or failed over; reading it again from "
                 "%" PRId64 " (re-sends are dropped by the per-stream rule)",
                 topic, (int)p, k == OFFSET_RESET_BACKWARDS ? "a message at" : "our position",
                 ps->reset_at,
                 k == OFFSET_RESET_BACKWARDS ? "arrived below our position" : "is past the log end",
                 lo, hi, restart);
    }
    int64_t old_pos = ps->pos;
    ps->pos = restart;
    ps->replay_until = 0;
    ps->hwm = 0;
    ps->stale_from = ps->stale_to = 0;
    if (restart_partition(a, p) != 0)
        return; /* stays pending */
    ps->reset_pending = false;
    if (k == OFFSET_RESET_NONE) {
        log_info("%s[%d]: %s; restarted there", topic, (int)p, desc);
        return;
    }
    metric_inc(a->m->offset_resets[k]);
    metric_add(a->m->offsets_skipped, (double)skipped);
    log_warn("offset reset (%s, position was %" PRId64 "): %s", offset_reset_kind_name(k), old_pos,
             desc);
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)p);
    alerter_fire(a->alerter, "AuditrailOffsetReset",
                 k == OFFSET_RESET_LOG_START ? ALERT_CRITICAL : ALERT_WARNING,
                 "a Kafka partition's offsets moved under the aggregator", desc, "kind",
                 offset_reset_kind_name(k), "partition", part, NULL);
}

void consume_apply_resets(struct aggregator *a)
{
    for (size_t i = 0; i < a->nparts; i++) {
        struct part_state *ps = &a->parts[i];
        if (ps->reset_pending && ps->assigned && ps->ready && !held_by_batches(a, (int32_t)i))
            apply_reset(a, (int32_t)i, ps);
    }
}

/* A message librdkafka reports as an error: it retries what is transient
 * by itself; a fatal error (e.g. the group fenced this member) ends the
 * process. */
static void message_error(struct aggregator *a, const rd_kafka_message_t *msg)
{
    if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && msg->rkt &&
        strcmp(rd_kafka_topic_name(msg->rkt), a->cfg->kafka.topic) == 0) {
        /* librdkafka stopped fetching the partition (auto.offset.reset is
         * error): the log no longer holds msg->offset. */
        note_reset(a, msg->partition, msg->offset, false);
        return;
    }
    if (msg->err == RD_KAFKA_RESP_ERR__FATAL) {
        log_error("consumer: fatal error: %s", rd_kafka_message_errstr(msg));
        aggregator_fatal_stop(a, rd_kafka_message_errstr(msg));
    } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        log_warn("consumer: %s", rd_kafka_message_errstr(msg));
    }
}

/* Validate message off of p and add it to the batch, skip it as a re-send
 * (batch and LRU layers), or send it to the DLQ. */
static void ingest(struct aggregator *a, struct part_state *ps, rd_kafka_message_t *msg, int32_t p,
                   int64_t off)
{
    struct envelope env = {0};
    char err[512];
    enum validate_reason vr = validate_message(
        msg->payload, msg->len, (size_t)a->cfg->batch.max_message_bytes, &env, err, sizeof(err));
    if (vr == VALIDATE_OK) {
        bool keyless = false;
        vr = validate_accept(&env, msg->key, msg->key_len, &a->window, time_now_us(), &keyless, err,
                             sizeof(err));
        if (keyless)
            metric_inc(a->m->keyless);
        if (vr != VALIDATE_OK)
            envelope_release(&env);
    }
    if (vr != VALIDATE_OK) {
        rd_kafka_headers_t *hdrs = NULL;
        if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
            hdrs = NULL;
        dlq_add(a->dlq, msg->key, msg->key_len, msg->payload, msg->len, hdrs,
                validate_reason_name(vr), err, a->cfg->kafka.topic, p, off);
        health_dlq_sent(a, vr, err);
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
}

void consume_message(struct aggregator *a, rd_kafka_message_t *msg)
{
    if (msg->err) {
        message_error(a, msg);
        return;
    }
    if (!msg->rkt || strcmp(rd_kafka_topic_name(msg->rkt), a->cfg->kafka.topic) != 0)
        return;
    int32_t p = msg->partition;
    int64_t off = msg->offset;
    struct part_state *ps = consume_part(a, p);
    /* Not ours, offset unknown, or paused (it will be fetched again after
     * the seek on resume), or while a batch waits for its retry. */
    if (!ps || !ps->assigned || !ps->ready || ps->paused || ps->reset_pending || a->retrying)
        return;
    if (ps->pos >= 0 && off < ps->pos) {
        if (off >= ps->stale_from && off < ps->stale_to)
            return; /* fetched before a seek (or assignment) of ours past it */
        /* Nothing of ours explains it: the log moved under us. Never
         * dropped: the partition is read again from its log start. */
        note_reset(a, p, off, true);
        return;
    }
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
    a->batch_bytes += msg->len; /* the whole value, not only the line it carries */
    ingest(a, ps, msg, p, off);
    /* Handled either way: stored, skipped as a re-send, or in the DLQ. The
     * compare-and-set expects what PostgreSQL will hold when this batch is
     * written: the in-flight batch's next offset, or the stored one. */
    if (!batch_offset_find(&a->batch, p)) {
        const struct batch_offset *fo =
            a->inflight_active ? batch_offset_find(&a->inflight, p) : NULL;
        batch_advance(&a->batch, p, fo ? fo->next_offset : ps->stored, off + 1);
    } else {
        batch_advance(&a->batch, p, ps->stored, off + 1); /* expected kept from the first */
    }
    ps->pos = off + 1;
}

/* A partition that is not being written notices a replay (its stored offset
 * moved outside this process) here, not only at its next commit, which may
 * never come for a quiet partition. Uses the writer's connection: only while
 * the writer is idle. */
void consume_check_stored_offsets(struct aggregator *a, uint64_t now)
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
        if (consume_load_offset(a, p, &off) != 0 || off == ps->stored)
            continue;
        note_replay(a, p, off);
        log_info("%s[%d]: the stored offset moved from %" PRId64 " to %" PRId64
                 " outside this process (a replay): seeking there",
                 a->cfg->kafka.topic, (int)p, ps->stored, off);
        if (off > ps->pos) {
            ps->stale_from = ps->pos;
            ps->stale_to = off;
        }
        ps->stored = ps->pos = off;
        consumer_seek(a->c, p, consume_start_offset(ps));
    }
}

void consume_reload_offsets(struct aggregator *a)
{
    for (size_t i = 0; i < a->nparts; i++) {
        struct part_state *ps = &a->parts[i];
        if (!ps->assigned || ps->ready || writer_busy(a->wr) || !breaker_allow(&a->pg_breaker))
            continue;
        int64_t off;
        if (consume_load_offset_replay(a, (int32_t)i, &off) == 0) {
            ps->stored = ps->pos = off;
            ps->ready = true;
            log_info("loaded the stored offset of %s[%zu]: %" PRId64, a->cfg->kafka.topic, i, off);
        }
    }
}
