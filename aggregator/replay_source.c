/* The replay's Kafka consumer (aggregator/replay_source.h). */
#include "aggregator/replay_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kafka_conf.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define META_TIMEOUT_MS  10000
#define PROBE_TIMEOUT_MS 10000

struct replay_source {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    char *topic;
    int32_t part; /* the partition started (-1: none) */
    int64_t from; /* and its start: older messages are stale prefetch */
};

struct replay_source *replay_source_new(const struct kafka_conf *k, char *err, size_t errlen)
{
    const struct kafka_prop defaults[] = {
        {"isolation.level", "read_committed"},
        {"client.id", "auditrail-replay"},
        /* A fetch waiting at the end of a partition delays the next
         * position asked (each probe of the search re-assigns): keep the
         * broker's wait short. */
        {"fetch.wait.max.ms", "10"},
        {NULL, NULL},
    };
    /* librdkafka wants a group.id to assign partitions: one of its own,
     * never the live group's. It never subscribes (no group is joined) and
     * never commits. */
    char group[96];
    snprintf(group, sizeof(group), "auditrail-replay-%d-%lld", (int)getpid(),
             (long long)time_now_us());
    const struct kafka_prop forced[] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {NULL, NULL},
    };
    rd_kafka_conf_t *conf = kafka_conf_new(k, KAFKA_CONSUMER, defaults, forced, err, errlen);
    if (!conf)
        return NULL;
    char kerr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "Kafka consumer: %s", kerr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    struct replay_source *s = xcalloc(1, sizeof(*s));
    s->rk = rk;
    s->topic = xstrdup(k->topic);
    s->rkt = rd_kafka_topic_new(rk, s->topic, NULL);
    s->part = -1;
    return s;
}

void replay_source_free(struct replay_source *s)
{
    if (!s)
        return;
    rd_kafka_assign(s->rk, NULL);
    rd_kafka_topic_destroy(s->rkt);
    rd_kafka_consumer_close(s->rk);
    rd_kafka_destroy(s->rk);
    free(s->topic);
    free(s);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int replay_source_partitions(struct replay_source *s, int32_t **ids, size_t *n, char *err,
                             size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 0, s->rkt, &md, META_TIMEOUT_MS);
    if (e) {
        snprintf(err, errlen, "metadata of %s: %s", s->topic, rd_kafka_err2str(e));
        return -1;
    }
    int rc = -1;
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        snprintf(err, errlen, "topic %s: %s", s->topic,
                 md->topic_cnt == 1 && md->topics[0].err ? rd_kafka_err2str(md->topics[0].err)
                                                         : "no partitions");
        goto out;
    }
    *n = (size_t)md->topics[0].partition_cnt;
    *ids = xmalloc(*n * sizeof(**ids));
    for (size_t i = 0; i < *n; i++)
        (*ids)[i] = md->topics[0].partitions[i].id;
    qsort(*ids, *n, sizeof(**ids), cmp_i32);
    rc = 0;
out:
    rd_kafka_metadata_destroy(md);
    return rc;
}

int replay_source_watermarks(struct replay_source *s, int32_t p, int64_t *lo, int64_t *hi,
                             char *err, size_t errlen)
{
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(s->rk, s->topic, p, lo, hi, META_TIMEOUT_MS);
    if (e) {
        snprintf(err, errlen, "watermarks of %s[%d]: %s", s->topic, (int)p, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

static int offset_for_time(void *ud, int32_t p, int64_t ts_ms, int64_t *off, char *err,
                           size_t errlen)
{
    struct replay_source *s = ud;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, s->topic, p)->offset = ts_ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(s->rk, l, META_TIMEOUT_MS);
    int rc = 0;
    if (e) {
        snprintf(err, errlen, "offsets for times of %s[%d]: %s", s->topic, (int)p,
                 rd_kafka_err2str(e));
        rc = -1;
    } else {
        /* A partition-level error or no offset: no answer (the caller
         * searches itself). */
        *off = l->elems[0].err ? -1 : l->elems[0].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

int replay_source_start(struct replay_source *s, int32_t p, int64_t off, char *err, size_t errlen)
{
    rd_kafka_assign(s->rk, NULL);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, s->topic, p)->offset = off;
    rd_kafka_resp_err_t e = rd_kafka_assign(s->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        snprintf(err, errlen, "assign %s[%d]@%lld: %s", s->topic, (int)p, (long long)off,
                 rd_kafka_err2str(e));
        s->part = -1;
        return -1;
    }
    s->part = p;
    s->from = off;
    return 0;
}

rd_kafka_message_t *replay_source_poll(struct replay_source *s, int timeout_ms)
{
    uint64_t deadline = time_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        uint64_t now = time_mono_ms();
        int left = now < deadline ? (int)(deadline - now) : 0;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, left);
        if (!m)
            return NULL;
        bool ours =
            m->rkt && m->partition == s->part && strcmp(rd_kafka_topic_name(m->rkt), s->topic) == 0;
        if (!m->err && (!ours || m->offset < s->from)) {
            rd_kafka_message_destroy(m); /* stale: before the position asked */
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && !ours) {
            rd_kafka_message_destroy(m);
            continue;
        }
        return m;
    }
}

/* One probe of the search: the first message at or after off. */
static int message_at(void *ud, int32_t p, int64_t off, int64_t end, int64_t *ts_ms, int64_t *at,
                      char *err, size_t errlen)
{
    struct replay_source *s = ud;
    if (replay_source_start(s, p, off, err, errlen) != 0)
        return -1;
    rd_kafka_message_t *m = replay_source_poll(s, PROBE_TIMEOUT_MS);
    if (!m) {
        snprintf(err, errlen, "%s[%d]: no message or end of partition at offset %lld within %d s",
                 s->topic, (int)p, (long long)off, PROBE_TIMEOUT_MS / 1000);
        return -1;
    }
    int rc = 1;
    if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        snprintf(err, errlen, "%s[%d]@%lld: %s", s->topic, (int)p, (long long)off,
                 rd_kafka_message_errstr(m));
        rc = -1;
    } else if (!m->err && m->offset < end) {
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        *ts_ms = tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? INT64_MIN : ts;
        *at = m->offset;
        rc = 0;
    }
    rd_kafka_message_destroy(m);
    return rc;
}

void replay_source_lookup(struct replay_source *s, struct replay_lookup *out)
{
    out->offset_for_time = offset_for_time;
    out->message_at = message_at;
    out->ud = s;
}
