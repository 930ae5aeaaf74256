/* Record -> envelope -> Kafka message under the in-flight budget; delivery
 * reports -> their stream's acknowledged prefix (or its rewind). */
#include "agent/ship.h"

#include <malloc.h>
#include <stdlib.h>

#include "agent/producer.h"
#include "agent/record.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define SEND_RETRY_MS 1000 /* a record that could not be produced is retried after this */

struct ship {
    struct agent_metrics *m;
    struct producer *prod;
    struct record_ctx rctx;
    uint64_t max_bytes, max_records; /* the in-flight budget */
    uint64_t inflight_bytes, inflight_records;
    bool paused;   /* reading waits for the budget (or the producer's queue) */
    bool stopping; /* failed deliveries no longer rewind their stream */
    uint64_t progress;
};

/* Delivery report (main thread, from producer_poll): the message's
 * tracker leads to its stream, which advances or rewinds. */
static void on_delivery(void *ud, void *opaque, bool ok, const char *err)
{
    struct ship *s = ud;
    struct ack_msg *m = opaque;
    s->inflight_bytes -= m->bytes;
    s->inflight_records--;
    metric_inc(ok ? s->m->records_acked : s->m->delivery_errors);
    if (tail_file_delivered(m, ok, err, !s->stopping, time_mono_ms()) == ACK_ADVANCED)
        s->progress++;
}

struct ship *ship_new(const struct agent_config *cfg, struct agent_metrics *m, char *err,
                      size_t errlen)
{
    const struct agent_section *a = &cfg->file.agent;
    struct ship *s = xcalloc(1, sizeof(*s));
    s->m = m;
    s->max_bytes = (uint64_t)a->max_inflight_bytes;
    s->max_records = (uint64_t)a->max_inflight_records;
    s->rctx.source_name = a->source_name;
    s->rctx.host = a->source.host;
    s->rctx.namespace_ = a->source.namespace_;
    s->rctx.pod = a->source.pod;
    s->rctx.container = a->source.container;
    s->rctx.max_past_us = a->max_past_s * 1000000;
    s->rctx.max_future_us = a->max_future_s * 1000000;
    struct producer_opts po = {
        .max_inflight_bytes = (size_t)a->max_inflight_bytes,
        .max_inflight_records = (size_t)a->max_inflight_records,
        .max_record_bytes = (size_t)a->max_record_bytes,
        .dr = on_delivery,
        .ud = s,
    };
    s->prod = producer_new(&cfg->file.kafka, &po, err, errlen);
    if (!s->prod) {
        free(s);
        return NULL;
    }
    return s;
}

void ship_free(struct ship *s)
{
    if (!s)
        return;
    producer_free(s->prod);
    free(s);
}

enum tail_emit_rc ship_send(void *ud, const struct record_in *r, struct ack_msg *msg)
{
    struct ship *s = ud;
    size_t len = 0;
    bool parse_failed = false;
    char *payload = record_encode(&s->rctx, r, &len, &parse_failed);
    if (!payload) {
        log_error("stream %s: cannot encode record seq %llu", r->stream_hex,
                  (unsigned long long)r->seq);
        return TAIL_EMIT_BACKOFF;
    }
    if (parse_failed)
        metric_inc(s->m->parse_errors[r->kind]);
    /* Count what the message holds in memory, not just its length. */
    msg->bytes = malloc_usable_size(payload);
    enum producer_send_rc rc =
        producer_send(s->prod, r->stream_hex, CHAIN_STREAM_HEX_LEN, payload, len, msg);
    if (rc != PRODUCER_OK) {
        free(payload);
        s->paused = true;
        return rc == PRODUCER_ERROR ? TAIL_EMIT_BACKOFF : TAIL_EMIT_PAUSE_BEFORE;
    }
    s->inflight_bytes += msg->bytes;
    s->inflight_records++;
    metric_inc(s->m->records_produced);
    metric_inc(s->m->produced_by_format[r->kind]);
    if (s->inflight_bytes >= s->max_bytes || s->inflight_records >= s->max_records) {
        s->paused = true;
        return TAIL_EMIT_PAUSE_AFTER;
    }
    return TAIL_EMIT_OK;
}

void ship_poll(struct ship *s, int timeout_ms)
{
    producer_poll(s->prod, timeout_ms);
}

int ship_wake_fd(const struct ship *s)
{
    return producer_wake_fd(s->prod);
}

void ship_clear_wake(struct ship *s)
{
    producer_clear_wake(s->prod);
}

bool ship_paused(const struct ship *s)
{
    return s->paused;
}

void ship_update_pause(struct ship *s)
{
    if (s->paused && s->inflight_bytes < s->max_bytes && s->inflight_records < s->max_records)
        s->paused = false;
}

uint64_t ship_progress(const struct ship *s)
{
    return s->progress;
}

void ship_drain(struct ship *s, int64_t timeout_ms)
{
    uint64_t deadline = time_mono_ms() + (uint64_t)timeout_ms;
    log_info("stopping: waiting up to %lld ms for %llu outstanding deliveries",
             (long long)timeout_ms, (unsigned long long)s->inflight_records);
    while (s->inflight_records > 0 && time_mono_ms() < deadline &&
           !producer_is_fatal(s->prod, NULL, 0))
        producer_poll(s->prod, 50);
    s->stopping = true;
    if (s->inflight_records > 0) {
        log_warn("stopping with %llu deliveries outstanding: they will be re-sent after the "
                 "restart",
                 (unsigned long long)s->inflight_records);
        producer_purge(s->prod);
        producer_poll(s->prod, 100);
    }
}

void ship_stop(struct ship *s)
{
    s->stopping = true;
}

void ship_abandon(struct ship *s)
{
    if (!s)
        return;
    /* Remaining messages come back as failed reports that free their
     * trackers' entries; nothing here is acknowledged any more. */
    s->stopping = true;
    producer_purge(s->prod);
    uint64_t until = time_mono_ms() + 1000;
    do
        producer_poll(s->prod, 10);
    while (s->inflight_records > 0 && time_mono_ms() < until);
}

bool ship_is_fatal(const struct ship *s, char *msg, size_t len)
{
    return producer_is_fatal(s->prod, msg, len);
}

uint64_t ship_kafka_up_ms(const struct ship *s)
{
    return producer_last_up_ms(s->prod);
}

void ship_update_gauges(const struct ship *s)
{
    metric_set(s->m->unacked_bytes, (double)s->inflight_bytes);
    metric_set(s->m->unacked_records, (double)s->inflight_records);
    metric_set(s->m->backpressure_paused, s->paused ? 1 : 0);
}
