/* librdkafka consumer wrapper for the aggregator. */
#include "aggregator/consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka_conf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

struct consumer {
    rd_kafka_t *rk;
    char *topic;
    consumer_rebalance_fn hook;
    void *ud;
};

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer *c = opaque;
    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        c->hook(c->ud, true, parts);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        c->hook(c->ud, false, parts);
        break;
    default:
        log_error("rebalance error: %s", rd_kafka_err2str(err));
        c->hook(c->ud, false, parts);
        break;
    }
}

struct consumer *consumer_new(const struct kafka_conf *kafka, consumer_rebalance_fn hook, void *ud,
                              char *err, size_t errlen)
{
    struct consumer *c = xcalloc(1, sizeof(*c));
    /* Offsets are stored in PostgreSQL with the rows; Kafka's copy is for
     * lag monitoring and is committed explicitly after each transaction. */
    const struct kafka_prop defaults[] = {
        {"isolation.level", "read_committed"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"client.id", "auditrail-aggregator"},
        /* librdkafka's 500 ms is how long a fetch that finds nothing new
         * may wait: kafka-mock always waits that long, and it was most of
         * the 600 ms a line took to become a row at 10k lines/s
         * (bench/latency). A broker answers as soon as data arrives, so the
         * only cost is an idle consumer's empty fetches (<= 100/s a broker). */
        {"fetch.wait.max.ms", "10"},
        {NULL, NULL},
    };
    /* A fetch position outside the log (topic recreated, truncated, log
     * start moved past it) is reported to us, never reset silently by
     * librdkafka: consume.c handles it explicitly (issue 9 item 3). */
    const struct kafka_prop forced[] = {
        {"auto.offset.reset", "error"},
        {"group.id", kafka->group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {NULL, NULL},
    };
    rd_kafka_conf_t *conf = kafka_conf_new(kafka, KAFKA_CONSUMER, defaults, forced, err, errlen);
    if (!conf)
        goto fail;
    c->hook = hook;
    c->ud = ud;
    c->topic = xstrdup(kafka->topic);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    char kerr[256];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "Kafka consumer: %s", kerr);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, c->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        snprintf(err, errlen, "subscribe %s: %s", c->topic, rd_kafka_err2str(e));
        rd_kafka_destroy(c->rk);
        goto fail;
    }
    return c;
fail:
    free(c->topic);
    free(c);
    return NULL;
}

void consumer_close(struct consumer *c)
{
    if (!c)
        return;
    /* The asynchronous close on a queue of ours, with a deadline: the
     * synchronous one waits for the group coordinator, and with every broker
     * gone it waited forever. The final revocation comes back as an event
     * (the event API does not call rebalance_cb) and goes to the hook. */
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->rk, q);
    bool closed = false;
    if (e) {
        log_warn("consumer close: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else {
        uint64_t deadline = time_mono_ms() + CONSUMER_CLOSE_MS;
        while (!(closed = rd_kafka_consumer_closed(c->rk)) && time_mono_ms() < deadline) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
            if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                rebalance_cb(c->rk, rd_kafka_event_error(ev),
                             rd_kafka_event_topic_partition_list(ev), c);
            rd_kafka_event_destroy(ev); /* NULL-safe */
        }
        if (!closed)
            log_warn("leaving the consumer group did not finish within %d ms (brokers "
                     "unreachable?): closing without it; the group reassigns our partitions "
                     "after session.timeout.ms, and the offsets are in PostgreSQL",
                     CONSUMER_CLOSE_MS);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy_flags(c->rk, closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    free(c->topic);
    free(c);
}

rd_kafka_message_t *consumer_poll(struct consumer *c, int timeout_ms)
{
    return rd_kafka_consumer_poll(c->rk, timeout_ms);
}

bool consumer_cooperative(const struct consumer *c)
{
    const char *p = rd_kafka_rebalance_protocol(c->rk);
    return p && strcmp(p, "COOPERATIVE") == 0;
}

int consumer_assign(struct consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    if (consumer_cooperative(c)) {
        rd_kafka_error_t *e = rd_kafka_incremental_assign(c->rk, parts);
        if (e) {
            log_error("incremental assign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            return -1;
        }
        return 0;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, parts);
    if (e) {
        log_error("assign: %s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int consumer_unassign(struct consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    if (consumer_cooperative(c)) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(c->rk, parts);
        if (e) {
            log_error("incremental unassign: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            return -1;
        }
        return 0;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, NULL);
    if (e) {
        log_error("unassign: %s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

void consumer_pause(struct consumer *c, int32_t partition, bool pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->topic, partition);
    rd_kafka_resp_err_t e =
        pause ? rd_kafka_pause_partitions(c->rk, l) : rd_kafka_resume_partitions(c->rk, l);
    if (e)
        log_warn("%s partition %d: %s", pause ? "pause" : "resume", (int)partition,
                 rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

int consumer_seek(struct consumer *c, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->topic, partition)->offset = offset;
    int rc = 0;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(c->rk, l, 5000);
    if (e) {
        log_warn("seek partition %d to %lld: %s", (int)partition, (long long)offset,
                 rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rc = -1;
    } else if (l->elems[0].err) {
        log_warn("seek partition %d to %lld: %s", (int)partition, (long long)offset,
                 rd_kafka_err2str(l->elems[0].err));
        rc = -1;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

void consumer_commit(struct consumer *c, const int32_t *partitions, const int64_t *offsets,
                     size_t n)
{
    if (n == 0)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, c->topic, partitions[i])->offset = offsets[i];
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, l, 1);
    if (e)
        log_debug("Kafka offset commit: %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

int64_t consumer_high_watermark(struct consumer *c, int32_t partition)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(c->rk, c->topic, partition, &lo, &hi) != 0)
        return -1;
    return hi;
}

int consumer_watermarks(struct consumer *c, int32_t partition, int64_t *lo, int64_t *hi,
                        int timeout_ms)
{
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(c->rk, c->topic, partition, lo, hi, timeout_ms);
    if (e) {
        log_warn("watermarks of %s[%d]: %s", c->topic, (int)partition, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int consumer_restart(struct consumer *c, rd_kafka_topic_partition_list_t *all, int32_t partition)
{
    /* After an out-of-range error librdkafka stops fetching the partition
     * and a seek does not start it again (librdkafka 2.0): it is assigned
     * anew at its position. */
    if (!consumer_cooperative(c))
        return consumer_assign(c, all);
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    for (int i = 0; i < all->cnt; i++)
        if (all->elems[i].partition == partition)
            rd_kafka_topic_partition_list_add(one, c->topic, partition)->offset =
                all->elems[i].offset;
    int rc =
        one->cnt == 1 && consumer_unassign(c, one) == 0 && consumer_assign(c, one) == 0 ? 0 : -1;
    rd_kafka_topic_partition_list_destroy(one);
    return rc;
}

int64_t consumer_committed(struct consumer *c, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->topic, partition);
    int64_t off = -1;
    if (rd_kafka_committed(c->rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && !l->elems[0].err &&
        l->elems[0].offset >= 0)
        off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return off;
}

const char *consumer_topic(const struct consumer *c)
{
    return c->topic;
}
