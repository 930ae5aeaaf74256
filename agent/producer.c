/* librdkafka producer wrapper: the agent's producer defaults (the building
 * itself is common/kafka_conf), callbacks, wake-up pipe. */
#include "agent/producer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "common/kafka_conf.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

struct producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int wake[2];
    producer_dr_fn dr;
    void *ud;
    bool fatal;
    char fatal_msg[256];
    uint64_t last_up_ms;
    bool delivered;     /* a report of this poll said delivered */
    size_t max_message; /* message.max.bytes less the overhead */
    int last_send_err;  /* the produce() error logged last, and when */
    uint64_t last_send_log_ms;
};

/* librdkafka's own wire overhead of one message in a v2 record batch is
 * below this; it counts against message.max.bytes. */
#define MESSAGE_OVERHEAD 1024
#define SEND_LOG_MS      10000 /* the same produce() error is logged at most this often */

enum producer_result producer_classify(int rd_err)
{
    switch ((rd_kafka_resp_err_t)rd_err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return PRODUCER_DELIVERED;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return PRODUCER_ERR_TOO_LARGE;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        return PRODUCER_ERR_AUTH;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return PRODUCER_ERR_PERMANENT;
    default:
        return PRODUCER_ERR_TRANSIENT;
    }
}

const char *producer_result_name(enum producer_result r)
{
    static const char *const names[] = {"delivered", "transient", "too_large", "authorization",
                                        "permanent"};
    return (unsigned)r < PRODUCER_RESULTS ? names[r] : "transient";
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct producer *p = opaque;
    enum producer_result res = producer_classify(m->err);
    if (res == PRODUCER_DELIVERED)
        p->delivered = true; /* the clock is read once per poll, not per report */
    char err[256];
    if (res != PRODUCER_DELIVERED)
        snprintf(err, sizeof(err), "%s: %s", rd_kafka_err2name(m->err), rd_kafka_err2str(m->err));
    p->dr(p->ud, m->_private, res, res == PRODUCER_DELIVERED ? NULL : err, m->len + m->key_len);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct producer *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[200];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        snprintf(p->fatal_msg, sizeof(p->fatal_msg), "%s: %s", rd_kafka_err2name(orig), buf);
        p->fatal = true;
        log_error("kafka: FATAL producer error, nothing more can be delivered: %s", p->fatal_msg);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        log_warn("kafka: all brokers are down: %s", reason);
    else
        log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* The statistics tell whether any broker connection is up, which is how
 * /readyz learns that Kafka is reachable again while nothing is in flight. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct producer *p = opaque;
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *brokers = root ? json_object_get(root, "brokers") : NULL;
    const char *name;
    json_t *b;
    json_object_foreach(brokers, name, b)
    {
        json_t *st = json_object_get(b, "state");
        json_t *id = json_object_get(b, "nodeid");
        if (json_is_string(st) && !strcmp(json_string_value(st), "UP") && json_is_integer(id) &&
            json_integer_value(id) >= 0) {
            p->last_up_ms = time_mono_ms();
            break;
        }
    }
    json_decref(root);
    return 0;
}

struct producer *producer_new(const struct kafka_conf *k, const struct producer_opts *o, char *err,
                              size_t errlen)
{
    struct producer *p = xcalloc(1, sizeof(*p));
    rd_kafka_conf_t *c = NULL;
    p->wake[0] = p->wake[1] = -1;
    p->dr = o->dr;
    p->ud = o->ud;
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    /* The queue is sized above the agent's own in-flight limit, so the agent
     * pauses first and QUEUE_FULL stays exceptional. A cut record of
     * max_record_bytes can grow up to 6x when JSON-escaped (control bytes as
     * \u00XX): message.max.bytes (and the topic's max.message.bytes) must
     * allow it. */
    char kb[32], msgs[32], maxmsg[32];
    snprintf(kb, sizeof(kb), "%llu", (unsigned long long)o->max_inflight_bytes / 1024 * 2 + 4096);
    snprintf(msgs, sizeof(msgs), "%llu", (unsigned long long)o->max_inflight_records * 2 + 1000);
    snprintf(maxmsg, sizeof(maxmsg), "%llu", (unsigned long long)o->max_record_bytes * 6 + 65536);
    const struct kafka_prop defaults[] = {
        {"client.id", "auditrail-agent"},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"compression.type", "lz4"},
        {"linger.ms", "10"},
        {"batch.num.messages", "10000"},
        {"batch.size", "1000000"},
        {"statistics.interval.ms", "1000"},
        {"max.in.flight.requests.per.connection", "5"},
        {"queue.buffering.max.kbytes", kb},
        {"queue.buffering.max.messages", msgs},
        {"message.max.bytes", maxmsg},
        {NULL, NULL},
    };
    c = kafka_conf_new(k, KAFKA_PRODUCER, defaults, NULL, err, errlen);
    if (!c)
        goto fail;
    rd_kafka_conf_set_opaque(c, p);
    rd_kafka_conf_set_dr_msg_cb(c, on_dr);
    rd_kafka_conf_set_error_cb(c, on_error);
    rd_kafka_conf_set_stats_cb(c, on_stats);
    char e[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    if (!p->rk) {
        snprintf(err, errlen, "kafka: %s", e);
        goto fail;
    }
    c = NULL; /* owned by rk now */
    char mb[32];
    size_t mbl = sizeof(mb);
    if (rd_kafka_conf_get(rd_kafka_conf(p->rk), "message.max.bytes", mb, &mbl) == RD_KAFKA_CONF_OK)
        p->max_message = (size_t)strtoull(mb, NULL, 10);
    p->max_message = p->max_message > MESSAGE_OVERHEAD ? p->max_message - MESSAGE_OVERHEAD : 1;
    p->rkt = rd_kafka_topic_new(p->rk, k->topic, NULL);
    if (!p->rkt) {
        snprintf(err, errlen, "kafka: topic %s: %s", k->topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(p->rk);
    rd_kafka_queue_io_event_enable(q, p->wake[1], "1", 1);
    rd_kafka_queue_destroy(q);
    return p;
fail:
    if (c)
        rd_kafka_conf_destroy(c);
    producer_free(p);
    return NULL;
}

void producer_free(struct producer *p)
{
    if (!p)
        return;
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    if (p->rk) {
        rd_kafka_queue_t *q = rd_kafka_queue_get_main(p->rk);
        rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy_flags(p->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    if (p->wake[0] >= 0)
        close(p->wake[0]);
    if (p->wake[1] >= 0)
        close(p->wake[1]);
    free(p);
}

enum producer_send_rc producer_send(struct producer *p, const void *key, size_t keylen,
                                    const void *payload, size_t len, void *opaque)
{
    /* Copied: librdkafka allocates the message and its value at once, and
     * the agent encodes every record into one reused buffer. */
    if (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)payload, len,
                         key, keylen, opaque) == 0)
        return PRODUCER_OK;
    rd_kafka_resp_err_t e = rd_kafka_last_error();
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        return PRODUCER_FULL;
    /* Retried every second by the caller: say it when it changes, and now
     * and then while it lasts. */
    uint64_t now = time_mono_ms();
    if ((int)e != p->last_send_err || now - p->last_send_log_ms >= SEND_LOG_MS) {
        log_error("kafka: produce failed: %s: %s", rd_kafka_err2name(e), rd_kafka_err2str(e));
        p->last_send_err = (int)e;
        p->last_send_log_ms = now;
    }
    return PRODUCER_ERROR;
}

size_t producer_max_message(const struct producer *p)
{
    return p->max_message;
}

void producer_poll(struct producer *p, int timeout_ms)
{
    p->delivered = false;
    rd_kafka_poll(p->rk, timeout_ms);
    if (p->delivered)
        p->last_up_ms = time_mono_ms();
}

int producer_wake_fd(const struct producer *p)
{
    return p->wake[0];
}

void producer_clear_wake(struct producer *p)
{
    char buf[256];
    while (read(p->wake[0], buf, sizeof(buf)) > 0)
        ;
}

int producer_outq_len(const struct producer *p)
{
    return rd_kafka_outq_len(p->rk);
}

void producer_purge(struct producer *p)
{
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

bool producer_is_fatal(const struct producer *p, char *msg, size_t len)
{
    if (p->fatal && msg)
        snprintf(msg, len, "%s", p->fatal_msg);
    return p->fatal;
}

uint64_t producer_last_up_ms(const struct producer *p)
{
    return p->last_up_ms;
}
