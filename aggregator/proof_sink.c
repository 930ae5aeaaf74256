/* The proof sinks (aggregator/proof_sink.h): an idempotent Kafka producer
 * (acks=all) and an O_APPEND file. */
#include "aggregator/proof_sink.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/kafka_conf.h"
#include "common/xmalloc.h"

#define FLUSH_MS 30000

struct proof_sink {
    rd_kafka_t *rk; /* NULL: no Kafka sink */
    char *topic;
    char *file; /* NULL: no file sink */
    int failed; /* delivery reports with an error since the last publish */
};

const char *proof_sink_name(enum proof_sink_id s)
{
    return s == PROOF_SINK_KAFKA ? "kafka" : s == PROOF_SINK_FILE ? "file" : "unknown";
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct proof_sink *s = opaque;
    if (m->err)
        s->failed++;
}

struct proof_sink *proof_sink_new(const struct kafka_conf *k, const char *topic, const char *file,
                                  char *err, size_t errlen)
{
    struct proof_sink *s = xcalloc(1, sizeof(*s));
    if (file && *file)
        s->file = xstrdup(file);
    if (!topic || !*topic)
        return s;
    s->topic = xstrdup(topic);
    const struct kafka_prop defaults[] = {{"client.id", "auditrail-proof"},
                                          {"linger.ms", "5"},
                                          {"compression.type", "lz4"},
                                          {NULL, NULL}};
    const struct kafka_prop forced[] = {
        {"acks", "all"}, {"enable.idempotence", "true"}, {NULL, NULL}};
    rd_kafka_conf_t *conf = kafka_conf_new(k, KAFKA_PRODUCER, defaults, forced, err, errlen);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, s);
    char kerr[256];
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "proof sink producer: %s", kerr);
        goto fail;
    }
    return s;
fail:
    proof_sink_free(s);
    return NULL;
}

void proof_sink_free(struct proof_sink *s)
{
    if (!s)
        return;
    if (s->rk) {
        rd_kafka_flush(s->rk, 5000);
        rd_kafka_destroy(s->rk);
    }
    free(s->topic);
    free(s->file);
    free(s);
}

static int produce(struct proof_sink *s, const char *key, const char *val, char *err, size_t errlen)
{
    for (;;) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(s->rk, RD_KAFKA_V_TOPIC(s->topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE((void *)val, strlen(val)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (!e)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(err, errlen, "proof topic %s: %s", s->topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(s->rk, 100);
    }
}

static int publish_kafka(struct proof_sink *s, const struct proof_round *r,
                         const struct proof_head *h, size_t n, char *err, size_t errlen)
{
    s->failed = 0;
    for (size_t i = 0; i < n; i++) {
        char *json = proof_head_json(&h[i]);
        int rc = produce(s, h[i].stream, json, err, errlen);
        free(json);
        if (rc)
            return -1;
    }
    char key[40];
    snprintf(key, sizeof(key), "round:%" PRIu64, r->round);
    char *json = proof_round_json(r);
    int rc = produce(s, key, json, err, errlen);
    free(json);
    if (rc)
        return -1;
    rd_kafka_resp_err_t e = rd_kafka_flush(s->rk, FLUSH_MS);
    if (e || s->failed) {
        snprintf(err, errlen, "proof topic %s: %s", s->topic,
                 e ? rd_kafka_err2str(e) : "deliveries failed");
        return -1;
    }
    return 0;
}

static int publish_file(struct proof_sink *s, const struct proof_round *r,
                        const struct proof_head *h, size_t n, char *err, size_t errlen)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        char *json = proof_head_json(&h[i]);
        buf_adds(&b, json);
        buf_addc(&b, '\n');
        free(json);
    }
    char *json = proof_round_json(r);
    buf_adds(&b, json);
    buf_addc(&b, '\n');
    free(json);
    int rc = -1;
    int fd = open(s->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        goto out;
    size_t done = 0;
    while (done < b.len) {
        ssize_t w = write(fd, b.p + done, b.len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    if (done == b.len && fsync(fd) == 0)
        rc = 0;
    int saved = errno;
    close(fd);
    errno = saved;
out:
    if (rc)
        snprintf(err, errlen, "proof file %s: %s", s->file, strerror(errno));
    buf_release(&b);
    return rc;
}

unsigned proof_sink_publish(struct proof_sink *s, const struct proof_round *r,
                            const struct proof_head *heads, size_t n, char *err, size_t errlen)
{
    unsigned failed = 0;
    char e2[512];
    err[0] = '\0';
    if (s->rk && publish_kafka(s, r, heads, n, e2, sizeof(e2)) != 0) {
        failed |= 1u << PROOF_SINK_KAFKA;
        snprintf(err, errlen, "%s", e2);
    }
    if (s->file && publish_file(s, r, heads, n, e2, sizeof(e2)) != 0) {
        failed |= 1u << PROOF_SINK_FILE;
        if (!err[0])
            snprintf(err, errlen, "%s", e2);
    }
    return failed;
}
