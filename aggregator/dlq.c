/* DLQ producer. Pending messages are kept (with copies of their bytes) until
 * acknowledged, so that a failed delivery is re-sent rather than lost; the
 * loop does not commit a batch past a message whose DLQ copy is unacked. */
#include "aggregator/dlq.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashchain.h"
#include "common/kafka_conf.h"
#include "common/log.h"
#include "common/xmalloc.h"

enum item_state { ITEM_UNSENT = 0, ITEM_IN_FLIGHT, ITEM_ACKED };

/* A broker that refuses a copy as too large makes it shrink (its limit
 * halves) down to this, below which a refusal is not about size. */
#define DLQ_MIN_LIMIT 16384

struct dlq_item {
    void *key;
    size_t keylen;
    void *value; /* NULL for a message without value */
    size_t len;
    rd_kafka_headers_t *hdrs;
    size_t limit; /* this copy's size bound: max_bytes, halved by broker refusals */
    bool cut_counted;
    int32_t partition; /* origin, for the log */
    int64_t offset;
    enum item_state state;
};

struct dlq {
    rd_kafka_t *rk;
    char *topic;
    size_t max_bytes; /* kafka.dlq_max_message_bytes */
    struct dlq_item *items;
    size_t n, cap;
    uint32_t gen; /* bumped by dlq_reset; stale delivery reports are ignored */
    uint64_t acked_total, failures_total, cut_total;
    bool warned_broker_limit;
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

size_t dlq_headers_size(const rd_kafka_headers_t *h)
{
    size_t total = 0;
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0; h && rd_kafka_header_get_all(h, i, &name, &val, &size) == 0; i++)
        total += strlen(name) + size + 16; /* + varints and attributes, generously */
    return total;
}

/* Only our own headers (auditrail-*), plus how many others were dropped. */
static rd_kafka_headers_t *own_headers(const rd_kafka_headers_t *h)
{
    rd_kafka_headers_t *o = rd_kafka_headers_new(8);
    const char *name;
    const void *val;
    size_t size, dropped = 0;
    for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &size) == 0; i++) {
        if (strncmp(name, "auditrail-", 10) == 0)
            rd_kafka_header_add(o, name, -1, val, (ssize_t)size);
        else
            dropped++;
    }
    char num[32];
    snprintf(num, sizeof(num), "%zu", dropped);
    rd_kafka_header_add(o, DLQ_H_HEADERS_DROPPED, -1, num, -1);
    return o;
}

void dlq_fit_copy(size_t max_bytes, size_t keylen, const void *value, size_t len,
                  const rd_kafka_headers_t *hdrs, struct dlq_fit *out)
{
    memset(out, 0, sizeof(*out));
    out->keylen = keylen;
    out->len = len;
    if (DLQ_FRAMING_BYTES + keylen + dlq_headers_size(hdrs) + len <= max_bytes) {
        out->hdrs = hdrs ? rd_kafka_headers_copy(hdrs) : rd_kafka_headers_new(0);
        return;
    }
    out->cut = true;
    /* What was cut can be checked against the original (the source topic
     * still holds it at the origin headers' offset, until its retention). */
    uint8_t md[32];
    unsigned mdlen = 0;
    char hex[65], num[32];
    EVP_Digest(value ? value : "", len, md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, sizeof(md), hex);
    rd_kafka_headers_t *h = hdrs ? rd_kafka_headers_copy(hdrs) : rd_kafka_headers_new(4);
    /* Original headers or key that take half the room go: the value's
     * prefix is what a reader of the DLQ needs. */
    size_t half = max_bytes / 2;
    if (dlq_headers_size(h) > half) {
        rd_kafka_headers_t *o = own_headers(h);
        rd_kafka_headers_destroy(h);
        h = o;
    }
    if (keylen > half) {
        snprintf(num, sizeof(num), "%zu", keylen);
        rd_kafka_header_add(h, DLQ_H_ORIG_KEY_SIZE, -1, num, -1);
        out->keylen = 256;
    }
    rd_kafka_header_add(h, DLQ_H_TRUNCATED, -1, "true", -1);
    snprintf(num, sizeof(num), "%zu", len);
    rd_kafka_header_add(h, DLQ_H_ORIG_SIZE, -1, num, -1);
    rd_kafka_header_add(h, DLQ_H_ORIG_SHA256, -1, hex, 64);
    size_t need = DLQ_FRAMING_BYTES + out->keylen + dlq_headers_size(h);
    size_t room = need < max_bytes ? max_bytes - need : 0;
    out->len = len < room ? len : room;
    out->hdrs = h;
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
        struct dlq_item *it = &d->items[idx];
        it->state = ITEM_UNSENT;
        /* The broker's limit (the topic's max.message.bytes) is below ours:
         * a copy that is refused forever would stop its partition, so it
         * shrinks until it passes. */
        if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && it->limit > DLQ_MIN_LIMIT) {
            it->limit = it->limit / 2 > DLQ_MIN_LIMIT ? it->limit / 2 : DLQ_MIN_LIMIT;
            if (!d->warned_broker_limit)
                log_warn("DLQ topic %s refuses copies as too large: its max.message.bytes is "
                         "below kafka.dlq_max_message_bytes (%zu); refused copies are cut "
                         "further",
                         d->topic, d->max_bytes);
            d->warned_broker_limit = true;
        }
    } else {
        d->items[idx].state = ITEM_ACKED;
        d->acked_total++;
    }
}

struct dlq *dlq_new(const struct kafka_conf *kafka, const char *topic, char *err, size_t errlen)
{
    struct dlq *d = xcalloc(1, sizeof(*d));
    d->max_bytes =
        kafka->dlq_max_message_bytes > 0 ? (size_t)kafka->dlq_max_message_bytes : 5 * 1024 * 1024;
    char maxmsg[24];
    snprintf(maxmsg, sizeof(maxmsg), "%zu", d->max_bytes);
    /* A poison message's offset waits for this acknowledgement: durable
     * (acks=all), no duplicates from retries, and a bounded wait per try;
     * librdkafka's own size limit is ours (every copy is fitted to it). */
    const struct kafka_prop forced[] = {
        {"acks", "all"},
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
        {"client.id", "auditrail-aggregator-dlq"},
        {"message.max.bytes", maxmsg},
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
    it->limit = d->max_bytes;
    it->partition = partition;
    it->offset = offset;
    it->state = ITEM_UNSENT;
}

static void dlq_send(struct dlq *d, size_t idx)
{
    struct dlq_item *it = &d->items[idx];
    struct dlq_fit f;
    dlq_fit_copy(it->limit, it->keylen, it->value, it->len, it->hdrs, &f);
    if (f.cut && !it->cut_counted) {
        it->cut_counted = true;
        d->cut_total++;
        log_warn("DLQ copy of %s[%d]@%" PRId64 " cut from %zu to %zu bytes to fit %zu "
                 "(original size and SHA-256 in its headers)",
                 d->topic, (int)it->partition, it->offset, it->len, f.len, it->limit);
    }
    uint64_t tag = ((uint64_t)d->gen << 32) | (uint64_t)idx;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_KEY(it->key, f.keylen),
        RD_KAFKA_V_VALUE(it->value, f.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(f.hdrs), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag), RD_KAFKA_V_END);
    if (e) {
        /* Not queued (e.g. queue full): headers stay ours; re-sent next settle. */
        rd_kafka_headers_destroy(f.hdrs);
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && it->limit > DLQ_MIN_LIMIT)
            it->limit /= 2; /* our framing estimate was short: never refuse forever */
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

uint64_t dlq_cut_total(const struct dlq *d)
{
    return d->cut_total;
}

bool dlq_fatal(struct dlq *d, char *msg, size_t len)
{
    char buf[256] = "";
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(d->rk, buf, sizeof(buf));
    if (e && msg)
        snprintf(msg, len, "%s: %s", rd_kafka_err2name(e), buf);
    return e != RD_KAFKA_RESP_ERR_NO_ERROR;
}
