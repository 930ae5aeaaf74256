/* Test producer and whole-topic reader on librdkafka. */
#include "tests/support/kafka.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/testutil.h"

#define READ_TIMEOUT_MS 60000

static rd_kafka_conf_t *conf_new(const char *brokers)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char err[256];
    ck_assert_msg(rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err)) ==
                      RD_KAFKA_CONF_OK,
                  "%s", err);
    rd_kafka_conf_set(c, "log_level", "3", err, sizeof(err));
    return c;
}

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    ck_assert_msg(rd_kafka_conf_set(c, k, v, err, sizeof(err)) == RD_KAFKA_CONF_OK, "%s: %s", k,
                  err);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    int *failures = opaque;
    if (m->err) {
        fprintf(stderr, "tk_produce: delivery failed: %s\n", rd_kafka_err2str(m->err));
        (*failures)++;
    }
}

rd_kafka_t *tk_producer_new(const char *brokers)
{
    return tk_producer_new_sized(brokers, 0);
}

rd_kafka_t *tk_producer_new_sized(const char *brokers, size_t max_message_bytes)
{
    rd_kafka_conf_t *c = conf_new(brokers);
    if (max_message_bytes) {
        char v[32];
        snprintf(v, sizeof(v), "%zu", max_message_bytes);
        conf_set(c, "message.max.bytes", v);
    }
    conf_set(c, "acks", "all");
    conf_set(c, "enable.idempotence", "true");
    conf_set(c, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, xcalloc(1, sizeof(int))); /* delivery failures */
    char err[256];
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    ck_assert_msg(p != NULL, "producer: %s", err);
    return p;
}

void tk_produce(rd_kafka_t *p, const char *topic, int32_t partition, const void *key, size_t keylen,
                const void *val, size_t len, const rd_kafka_headers_t *headers)
{
    for (;;) {
        rd_kafka_headers_t *h = headers ? rd_kafka_headers_copy(headers) : NULL;
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)val, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (!e)
            return;
        if (h)
            rd_kafka_headers_destroy(h);
        ck_assert_msg(e == RD_KAFKA_RESP_ERR__QUEUE_FULL, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(p, 50);
    }
}

void tk_flush(rd_kafka_t *p)
{
    ck_assert_int_eq(rd_kafka_flush(p, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_msg(*(int *)rd_kafka_opaque(p) == 0, "%d deliveries failed",
                  *(int *)rd_kafka_opaque(p));
}

void tk_producer_free(rd_kafka_t *p)
{
    if (!p)
        return;
    int *failures = rd_kafka_opaque(p);
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
    free(failures);
}

void tk_msgs_release(struct tk_msgs *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].val);
        if (m->v[i].headers)
            rd_kafka_headers_destroy(m->v[i].headers);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}

char *tk_msg_header(const struct tk_msg *m, const char *name)
{
    const void *v;
    size_t n;
    if (!m->headers || rd_kafka_header_get_last(m->headers, name, &v, &n) != 0)
        return NULL;
    return xstrndup(v ? v : "", n);
}

struct tk_reader {
    rd_kafka_t *rk;
    char *topic;
    int nparts;
    int64_t *next; /* per partition: the offset after the last one read */
    int64_t *hw;   /* per partition: the last high watermark queried */
};

static int partition_count(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    ck_assert_int_eq(rd_kafka_metadata(rk, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(md->topic_cnt, 1);
    ck_assert_msg(md->topics[0].err == 0, "topic %s: %s", topic,
                  rd_kafka_err2str(md->topics[0].err));
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    ck_assert_int_gt(n, 0);
    return n;
}

/* A consumer handle on topic, nothing assigned yet. */
static struct tk_reader *reader_open(const char *brokers, const char *topic)
{
    rd_kafka_conf_t *c = conf_new(brokers);
    char group[64];
    snprintf(group, sizeof(group), "tk-reader-%d", (int)getpid()); /* never joined */
    conf_set(c, "group.id", group);
    conf_set(c, "enable.auto.commit", "false");
    conf_set(c, "enable.partition.eof", "true");
    /* A fetch waiting for data holds the broker connection: keep it short so
     * that watermark queries on the same connection answer at once. */
    conf_set(c, "fetch.wait.max.ms", "20");
    char err[256];
    struct tk_reader *r = xcalloc(1, sizeof(*r));
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    ck_assert_msg(r->rk != NULL, "consumer: %s", err);
    rd_kafka_poll_set_consumer(r->rk);
    r->topic = xstrdup(topic);
    r->nparts = partition_count(r->rk, topic);
    r->next = xcalloc((size_t)r->nparts, sizeof(*r->next));
    r->hw = xcalloc((size_t)r->nparts, sizeof(*r->hw));
    return r;
}

struct tk_reader *tk_reader_new(const char *brokers, const char *topic)
{
    struct tk_reader *r = reader_open(brokers, topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts);
    for (int p = 0; p < r->nparts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(r->rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    return r;
}

/* Query every high watermark; true when one moved since the last query.
 * One ListOffsets(latest) for all partitions: per-partition queries take a
 * round trip each. */
static bool query_watermarks(struct tk_reader *r)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts);
    for (int p = 0; p < r->nparts; p++)
        rd_kafka_topic_partition_list_add(l, r->topic, p)->offset = -1; /* latest */
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(r->rk, l, 10000);
    ck_assert_msg(e == 0, "watermarks of %s: %s", r->topic, rd_kafka_err2str(e));
    bool moved = false;
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *t = &l->elems[i];
        ck_assert_msg(t->err == 0 && t->offset >= 0, "watermark of %s [%d]: %s (%lld)", r->topic,
                      (int)t->partition, rd_kafka_err2str(t->err), (long long)t->offset);
        if (t->offset != r->hw[t->partition])
            moved = true;
        r->hw[t->partition] = t->offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return moved;
}

static bool at_watermarks(const struct tk_reader *r)
{
    for (int p = 0; p < r->nparts; p++)
        if (r->next[p] < r->hw[p])
            return false;
    return true;
}

static void copy_message(const rd_kafka_message_t *m, struct tk_msgs *out)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? 2 * out->cap : 1024;
        out->v = xrealloc(out->v, out->cap * sizeof(*out->v));
    }
    struct tk_msg *t = &out->v[out->n++];
    memset(t, 0, sizeof(*t));
    if (m->key) {
        t->key = xmemdup(m->key, m->key_len + 1);
        ((char *)t->key)[m->key_len] = '\0';
        t->keylen = m->key_len;
    }
    if (m->payload) {
        t->val = xmalloc(m->len + 1);
        memcpy(t->val, m->payload, m->len);
        ((char *)t->val)[m->len] = '\0';
        t->len = m->len;
    }
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) == 0 && h)
        t->headers = rd_kafka_headers_copy(h);
    t->partition = m->partition;
    t->offset = m->offset;
}

void tk_reader_read(struct tk_reader *r, struct tk_msgs *out, unsigned timeout_ms)
{
    uint64_t deadline = test_now_ms() + timeout_ms;
    query_watermarks(r);
    for (;;) {
        while (!at_watermarks(r)) {
            ck_assert_msg(test_now_ms() < deadline, "reading %s did not reach its end in %u ms",
                          r->topic, timeout_ms);
            rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 100);
            if (!m)
                continue;
            int32_t p = m->partition;
            bool ours = p >= 0 && p < r->nparts;
            if (!m->err && ours) {
                copy_message(m, out);
                r->next[p] = m->offset + 1;
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && ours) {
                /* The end; also where kafka-mock trimmed everything. */
                if (m->offset > r->next[p])
                    r->next[p] = m->offset;
            } else if (m->err) {
                fprintf(stderr, "tk_reader %s: %s\n", r->topic, rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        if (!query_watermarks(r))
            return;
    }
}

void tk_reader_free(struct tk_reader *r)
{
    if (!r)
        return;
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
    free(r->topic);
    free(r->next);
    free(r->hw);
    free(r);
}

void tk_read_topic(const char *brokers, const char *topic, struct tk_msgs *out)
{
    struct tk_reader *r = tk_reader_new(brokers, topic);
    tk_reader_read(r, out, READ_TIMEOUT_MS);
    tk_reader_free(r);
}

int64_t *tk_watermarks(const char *brokers, const char *topic, int *n)
{
    struct tk_reader *r = reader_open(brokers, topic);
    query_watermarks(r);
    int64_t *hw = xmemdup(r->hw, (size_t)r->nparts * sizeof(*hw));
    *n = r->nparts;
    tk_reader_free(r);
    return hw;
}
