/* bench/aggregator's producer: N valid envelopes (DESIGN.md §3) on `streams`
 * hash chains, realistic JSON audit lines, keyed by stream id, produced to a
 * topic as fast as librdkafka takes them. Built by bench/aggregator.
 *
 *   aggr-produce BROKERS TOPIC N STREAMS PARTITIONS
 *
 * Stream j goes to partition j % PARTITIONS (not by key hash): kafka-mock
 * keeps only ~5 MB per partition, so the load must be even. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <openssl/sha.h>

#include "common/envelope.h"
#include "common/hashchain.h"
#include "common/xmalloc.h"

#define T0_US INT64_C(1795651200000000) /* 2026-11-26T00:00:00Z */

struct chain {
    char stream[33];
    uint64_t seq;
    uint8_t prev[32];
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err) {
        (*(long *)opaque)++;
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: aggr-produce BROKERS TOPIC N STREAMS PARTITIONS\n");
        return 2;
    }
    const char *topic = argv[2];
    uint64_t n = strtoull(argv[3], NULL, 10);
    unsigned ns = (unsigned)strtoul(argv[4], NULL, 10);
    int32_t parts = (int32_t)strtol(argv[5], NULL, 10);
    if (ns == 0 || parts <= 0) {
        fprintf(stderr, "STREAMS and PARTITIONS must be > 0\n");
        return 2;
    }
    long failures = 0;
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", argv[1], err, sizeof(err)) ||
        rd_kafka_conf_set(c, "acks", "all", err, sizeof(err)) ||
        rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err)) ||
        rd_kafka_conf_set(c, "linger.ms", "20", err, sizeof(err)) ||
        rd_kafka_conf_set(c, "queue.buffering.max.messages", "1000000", err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_conf_set_opaque(c, &failures);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct chain *ch = xcalloc(ns, sizeof(*ch));
    for (unsigned j = 0; j < ns; j++) {
        char name[64];
        uint8_t h[SHA256_DIGEST_LENGTH];
        snprintf(name, sizeof(name), "bench-%s-%u", topic, j);
        SHA256((const unsigned char *)name, strlen(name), h);
        hex_encode(h, 16, ch[j].stream);
        chain_genesis(ch[j].stream, ch[j].prev);
    }
    for (uint64_t i = 0; i < n; i++) {
        struct chain *k = &ch[i % ns];
        char line[512];
        int len = snprintf(
            line, sizeof(line),
            "{\"ts\":\"2026-11-26T10:%02u:%02u.%06uZ\",\"tenant\":\"hospital-%u\",\"actor\":"
            "\"dr.user%04u\",\"action\":\"read\",\"resource\":\"Patient/%08" PRIu64
            "\",\"outcome\":\"success\",\"ip\":\"10.1.%u.%u\",\"session\":\"%016" PRIx64 "\"}",
            (unsigned)(i / 60 % 60), (unsigned)(i % 60), (unsigned)(i % 1000000), (unsigned)(i % 7),
            (unsigned)(i % 5000), i * 7919, (unsigned)(i % 250), (unsigned)(i % 200),
            i * 2654435761u);
        struct envelope e = {0};
        e.v = 1;
        memcpy(e.stream, k->stream, sizeof(e.stream));
        e.seq = k->seq++;
        e.offset = e.seq * 256;
        memcpy(e.prev, k->prev, 32);
        e.line = (uint8_t *)line;
        e.line_len = (size_t)len;
        chain_next(e.prev, e.seq, e.line, e.line_len, e.hash);
        chain_id(e.hash, e.id);
        memcpy(k->prev, e.hash, 32);
        e.time_us = T0_US + (int64_t)(i * 1000);
        e.time_source = TIME_SOURCE_PAYLOAD;
        e.read_time_us = e.time_us + 1500;
        char srcname[] = "bench/app", host[] = "node-1", fmt[] = "json";
        e.source.name = srcname;
        e.source.host = host;
        e.format = fmt;
        char tenant[32], actor[32], action[] = "read", outcome[] = "success";
        snprintf(tenant, sizeof(tenant), "hospital-%u", (unsigned)(i % 7));
        snprintf(actor, sizeof(actor), "dr.user%04u", (unsigned)(i % 5000));
        e.fields.tenant = tenant;
        e.fields.actor = actor;
        e.fields.action = action;
        e.fields.outcome = outcome;
        size_t jl;
        char *j = envelope_encode(&e, &jl);
        for (;;) {
            rd_kafka_resp_err_t r = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)(i % ns) % parts),
                RD_KAFKA_V_KEY(k->stream, 32), RD_KAFKA_V_VALUE(j, jl),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
            if (!r)
                break;
            if (r != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "produce: %s\n", rd_kafka_err2str(r));
                return 1;
            }
            rd_kafka_poll(p, 10);
        }
        rd_kafka_poll(p, 0);
    }
    rd_kafka_flush(p, 120000);
    rd_kafka_destroy(p);
    free(ch);
    if (failures) {
        fprintf(stderr, "%ld deliveries failed\n", failures);
        return 1;
    }
    return 0;
}
