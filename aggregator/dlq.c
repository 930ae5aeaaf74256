/* DLQ producer. Pending messages are kept (with copies of their bytes) until
 * acknowledged, so that a failed delivery is re-sent rather than lost; the
 * loop does not commit a batch past a message whose DLQ copy is unacked. */
#include "aggregator/dlq.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka_conf.h"
#include "common/log.h"
#include "common/xmalloc.h"

enum item_state { ITEM_UNSENT = 0, ITEM_IN_FLIGHT, ITEM_ACKED };

struct dlq_item {
    void *key;
    size_t keylen;
    void *value; /* NULL for a message without value */
    size_t len;
    rd_kafka_headers_t *hdrs;
    enum item_state state;
};

struct dlq {
    rd_kafka_t *rk;
    char *topic;
    struct dlq_item *items;
    size_t n, cap;
    uint32_t gen; /* bumped by dlq_reset; stale delivery reports are ignored */
    uint64_t acked_total, failures_total;
};

rd_kafka_headers_t *dlq_headers_build(const rd_kafka_headers_t *orig, const char *reason,
                                      const char *error, const char *topic, int32_t partition,
                                      int64_t offset)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    if (orig) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(orig, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            if (strncmp(name, "auditrail-", 10) == 0)
                continue;
            rd_kafka_header_add(h, name, -1, val, (ssize_t)size);
        }
    }
    char num[32];
    rd_kafka_header_add(h, DLQ_H_ERROR, -1, error, -1);
    rd_kafka_header_add(h, DLQ_H_REASON, -1, reason, -1);
    rd_kafka_header_add(h, DLQ_H_TOPIC, -1, topic, -1);
    snprintf(num, sizeof(num), "%" PRId32, partition);
    rd_kafka_header_add(h, DLQ_H_PARTITION, -1, num, -1);
    snprintf(num, sizeof(num), "%" PRId64, offset);
    rd_kafka_header_add(h, DLQ_H_OFFSET, -1, num, -1);
    return h;
}

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct dlq *d = opaque;
    uint64_t tag = (uint64_t)(uintptr_t)m->_private;
    uint32_t gen = (uint32_t)(tag >> 32);
    size_t idx = (size_t)(tag & 0xffffffffu);
    if (m->err) {
        d->failures_total++;
        log_warn("DLQ delivery to %s failed: %s", d->topic, rd_kafka_err2str(m->err));
    }
    if (gen != d->gen || idx >= d->n)
        return;
    if (m->err) {
        d->items[idx].state = ITEM_UNSENT;
    } else {
        d->items[idx].state = ITEM_ACKED;
        d->acked_total++;
    }
}

struct dlq *dlq_new(const struct kafka_conf *kafka, const char *topic, char *err, size_t errlen)
{
    struct dlq *d = xcalloc(1, sizeof(*d));
    /* A poison message's offset waits for this acknowledgement: durable
     * (acks=all), no duplicates from retries, and a bounded wait per try. */
    static const struct kafka_prop forced[] = {
        {"acks", "all"},    {"enable.idempotence", "true"},
        {"linger.ms", "5"}, {"client.id", "auditrail-aggregator-dlq"},
        {NULL, NULL},
    };
    rd_kafka_conf_t *conf = kafka_conf_new(kafka, KAFKA_PRODUCER, NULL, forced, err, errlen);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, dlq_dr_cb);
    rd_kafka_conf_set_opaque(conf, d);
    char kerr[256];
    d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!d->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "DLQ producer: %s", kerr);
        goto fail;
    }
    d->topic = xstrdup(topic);
    return d;
fail:
    free(d);
    return NULL;
}

static void item_release(struct dlq_item *it)
{
    free(it->key);
    free(it->value);
    if (it->hdrs)
        rd_kafka_headers_destroy(it->hdrs);
    memset(it, 0, sizeof(*it));
}

void dlq_reset(struct dlq *d)
{
    for (size_t i = 0; i < d->n; i++)
        item_release(&d->items[i]);
    d->n = 0;
    d->gen++;
}

void dlq_free(struct dlq *d, int timeout_ms)
{
    if (!d)
        return;
    if (d->rk) {
        rd_kafka_flush(d->rk, timeout_ms);
        rd_kafka_destroy(d->rk);
    }
    dlq_reset(d);
    free(d->items);
    free(d->topic);
    free(d);
}

void dlq_add(struct dlq *d, const void *key, size_t keylen, const void *value, size_t len,
             const rd_kafka_headers_t *orig_headers, const char *reason, const char *error,
             const char *topic, int32_t partition, int64_t offset)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->items = xrealloc(d->items, d->cap * sizeof(*d->items));
    }
    struct dlq_item *it = &d->items[d->n++];
    memset(it, 0, sizeof(*it));
    if (key) {
        it->key = xmemdup(key, keylen ? keylen : 1);
        it->keylen = keylen;
    }
    if (value) {
        it->value = xmemdup(value, len ? len : 1);
        it->len = len;
    }
    it->hdrs = dlq_headers_build(orig_headers, reason, error, topic, partition, offset);
    it->state = ITEM_UNSENT;
}

static void dlq_send(struct dlq *d, size_t idx)
{
    struct dlq_item *it = &d->items[idx];
    rd_kafka_headers_t *h = rd_kafka_headers_copy(it->hdrs);
    uint64_t tag = ((uint64_t)d->gen << 32) | (uint64_t)idx;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_KEY(it->key, it->keylen),
        RD_KAFKA_V_VALUE(it->value, it->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag), RD_KAFKA_V_END);
    if (e) {
        /* Not queued (e.g. queue full): headers stay ours; re-sent next settle. */
        rd_kafka_headers_destroy(h);
        log_warn("DLQ produce to %s refused: %s", d->topic, rd_kafka_err2str(e));
        return;
    }
    it->state = ITEM_IN_FLIGHT;
}

size_t dlq_unacked(const struct dlq *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += d->items[i].state != ITEM_ACKED;
    return n;
}

int dlq_settle(struct dlq *d, int timeout_ms)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->items[i].state == ITEM_UNSENT)
            dlq_send(d, i);
    if (dlq_unacked(d) == 0) {
        rd_kafka_poll(d->rk, 0);
        return 0;
    }
    rd_kafka_flush(d->rk, timeout_ms);
    return dlq_unacked(d) == 0 ? 0 : -1;
}

uint64_t dlq_acked_total(const struct dlq *d)
{
    return d->acked_total;
}

uint64_t dlq_failures_total(const struct dlq *d)
{
    return d->failures_total;
}

bool dlq_fatal(struct dlq *d, char *msg, size_t len)
{
    char buf[256] = "";
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(d->rk, buf, sizeof(buf));
    if (e && msg)
        snprintf(msg, len, "%s: %s", rd_kafka_err2name(e), buf);
    return e != RD_KAFKA_RESP_ERR_NO_ERROR;
}
