/* Record -> envelope -> Kafka message under the in-flight budget; delivery
 * reports -> their stream's acknowledged prefix (or its rewind). */
#include "agent/ship.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/producer.h"
#include "agent/record.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define SEND_RETRY_MS 1000 /* a record that could not be produced is retried after this */
/* Room kept below the message limit when fitting a record: its envelope is
 * measured with an empty source.path and a fixed read time, so that a
 * re-read cuts the same way whatever the file is called by then. */
#define FIT_MARGIN (32 * 1024)
/* Each step of the fit aims a little below the proportional length: JSON
 * escaping is uneven, the next measure then lands below the target. */
#define FIT_SCALE_PCT 98

struct ship {
    struct agent_metrics *m;
    struct producer *prod;
    struct record_ctx rctx;
    uint64_t max_bytes, max_records; /* the in-flight budget */
    uint64_t inflight_bytes, inflight_records;
    bool paused;   /* reading waits for the budget (or the producer's queue) */
    bool stopping; /* failed deliveries no longer rewind their stream */
    uint64_t progress;
    size_t producer_max; /* producer_max_message */
    size_t broker_max;   /* learned from MSG_SIZE_TOO_LARGE; SIZE_MAX = not known */
    /* the last refusal (authorization, permanent) not followed by a delivery */
    bool refused;
    char refused_err[256];
    /* Counts since the last ship_update_metrics: one atomic add each per
     * loop turn instead of three per record. */
    uint64_t n_produced, n_acked, n_by_format[FORMAT_COUNT];
};

static size_t msg_limit(const struct ship *s)
{
    return s->producer_max < s->broker_max ? s->producer_max : s->broker_max;
}

/* The broker refused a message of len bytes as too large: it holds less.
 * Halving converges in a few re-sends whatever its max.message.bytes is;
 * below SHIP_WAIT_ACK_BYTES nothing is cut (see ship.h). */
static void learn_too_large(struct ship *s, size_t len, const char *err)
{
    if (len <= SHIP_WAIT_ACK_BYTES) {
        s->refused = true;
        snprintf(s->refused_err, sizeof(s->refused_err),
                 "%s for a message of %zu bytes: the topic's max.message.bytes is below the "
                 "producer's batch size",
                 err, len);
        return;
    }
    size_t limit = len / 2 > SHIP_WAIT_ACK_BYTES ? len / 2 : SHIP_WAIT_ACK_BYTES;
    if (limit >= s->broker_max)
        return;
    s->broker_max = limit;
    metric_set(s->m->message_max_bytes, (double)msg_limit(s));
    log_warn("kafka refused a message of %zu bytes as too large (%s): records are cut to fit "
             "%zu bytes from now on (marked truncated_bytes; raise the topic's max.message.bytes "
             "to ship them whole)",
             len, err, msg_limit(s));
}

/* Delivery report (main thread, from producer_poll): the message's
 * tracker leads to its stream, which advances or rewinds (a refused record
 * is read again, and cut to fit when it was too large). */
static void on_delivery(void *ud, void *opaque, enum producer_result res, const char *err,
                        size_t len)
{
    struct ship *s = ud;
    struct ack_msg *m = opaque;
    bool ok = res == PRODUCER_DELIVERED;
    s->inflight_bytes -= m->bytes;
    s->inflight_records--;
    if (ok) {
        s->n_acked++;
        s->refused = false;
    } else {
        metric_inc(s->m->delivery_errors[res]);
    }
    if (res == PRODUCER_ERR_TOO_LARGE) {
        learn_too_large(s, len, err);
    } else if ((res == PRODUCER_ERR_AUTH || res == PRODUCER_ERR_PERMANENT) && !s->stopping) {
        if (!s->refused || strcmp(s->refused_err, err) != 0)
            log_error("kafka refuses the agent's records (%s, %s): nothing is shipped until "
                      "this is fixed; the files keep the records",
                      producer_result_name(res), err);
        s->refused = true;
        snprintf(s->refused_err, sizeof(s->refused_err), "%s", err);
    }
    /* The clock matters only to a failure (when to read again). */
    if (tail_file_delivered(m, ok, err, !s->stopping, ok ? 0 : time_mono_ms()) == ACK_ADVANCED)
        s->progress++;
}

/* The message value's length for r cut to len bytes, measured the same way
 * whatever the file is called now and whenever it is read. */
static size_t measure(struct ship *s, const struct record_in *r, size_t len)
{
    struct record_in m = *r;
    m.len = len;
    m.truncated = r->truncated + (r->len - len);
    m.path = "";
    m.read_time_us = 0;
    size_t n = 0;
    bool parse_failed;
    return record_encode(&s->rctx, &m, &n, &parse_failed) ? n : SIZE_MAX;
}

size_t ship_fit(void *ud, const struct record_in *r)
{
    struct ship *s = ud;
    size_t limit = msg_limit(s);
    size_t target = limit > 2 * FIT_MARGIN ? limit - FIT_MARGIN : limit / 2;
    /* Cheap for the usual record: even escaped six times over in the line
     * and again in the fields it cannot come near the limit. */
    if (r->len < target / 16)
        return r->len;
    size_t len = r->len;
    for (int i = 0; i < 64 && len > 0; i++) {
        size_t n = measure(s, r, len);
        if (n <= target)
            return len;
        size_t next = (size_t)((double)len * (double)target / (double)n * FIT_SCALE_PCT / 100);
        if (next >= len)
            next = len - 1;
        /* Never end inside a UTF-8 sequence (a torn one makes it line_b64). */
        while (next > 0 && (r->data[next] & 0xC0) == 0x80 && len - next < 4)
            next--;
        len = next;
    }
    return len;
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
    s->producer_max = producer_max_message(s->prod) - CHAIN_STREAM_HEX_LEN;
    s->broker_max = SIZE_MAX;
    metric_set(m->message_max_bytes, (double)msg_limit(s));
    return s;
}

void ship_free(struct ship *s)
{
    if (!s)
        return;
    producer_free(s->prod);
    record_ctx_release(&s->rctx);
    free(s);
}

enum tail_emit_rc ship_send(void *ud, const struct record_in *r, struct ack_msg *msg)
{
    struct ship *s = ud;
    size_t len = 0;
    bool parse_failed = false;
    const char *payload = record_encode(&s->rctx, r, &len, &parse_failed);
    if (!payload) {
        log_error("stream %s: cannot encode record seq %llu", r->stream_hex,
                  (unsigned long long)r->seq);
        return TAIL_EMIT_BACKOFF;
    }
    if (parse_failed)
        metric_inc(s->m->parse_errors[r->kind]);
    /* What the producer's copy holds: the value and the key. */
    msg->bytes = len + CHAIN_STREAM_HEX_LEN;
    enum producer_send_rc rc =
        producer_send(s->prod, r->stream_hex, CHAIN_STREAM_HEX_LEN, payload, len, msg);
    if (rc != PRODUCER_OK) {
        s->paused = true;
        return rc == PRODUCER_ERROR ? TAIL_EMIT_BACKOFF : TAIL_EMIT_PAUSE_BEFORE;
    }
    s->inflight_bytes += msg->bytes;
    s->inflight_records++;
    s->n_produced++;
    s->n_by_format[r->kind]++;
    if (s->inflight_bytes >= s->max_bytes || s->inflight_records >= s->max_records)
        s->paused = true;
    if (len > SHIP_WAIT_ACK_BYTES)
        return TAIL_EMIT_WAIT_ACK;
    return s->paused ? TAIL_EMIT_PAUSE_AFTER : TAIL_EMIT_OK;
}

bool ship_refused(const struct ship *s, char *why, size_t len)
{
    if (s->refused && why)
        snprintf(why, len, "%s", s->refused_err);
    return s->refused;
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
    ship_update_metrics(s);
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
    ship_update_metrics(s);
}

bool ship_is_fatal(const struct ship *s, char *msg, size_t len)
{
    return producer_is_fatal(s->prod, msg, len);
}

uint64_t ship_kafka_up_ms(const struct ship *s)
{
    return producer_last_up_ms(s->prod);
}

void ship_update_metrics(struct ship *s)
{
    if (s->n_produced) {
        metric_add(s->m->records_produced, (double)s->n_produced);
        for (int k = 0; k < FORMAT_COUNT; k++)
            if (s->n_by_format[k])
                metric_add(s->m->produced_by_format[k], (double)s->n_by_format[k]);
    }
    if (s->n_acked)
        metric_add(s->m->records_acked, (double)s->n_acked);
    s->n_produced = s->n_acked = 0;
    memset(s->n_by_format, 0, sizeof(s->n_by_format));
    metric_set(s->m->unacked_bytes, (double)s->inflight_bytes);
    metric_set(s->m->unacked_records, (double)s->inflight_records);
    metric_set(s->m->backpressure_paused, s->paused ? 1 : 0);
}
