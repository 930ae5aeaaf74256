/* Delivery errors and message sizes (issue 9 item 10): librdkafka's errors
 * are classified (too large, authorization, permanent, transient), and
 * ship_fit cuts a record so that its envelope fits the producer's
 * message.max.bytes, on a UTF-8 boundary, the same way whatever the file is
 * called. */
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/producer.h"
#include "agent/record.h"
#include "agent/ship.h"
#include "common/hashchain.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

START_TEST(test_classify)
{
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR_NO_ERROR), PRODUCER_DELIVERED);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE),
                     PRODUCER_ERR_TOO_LARGE);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE),
                     PRODUCER_ERR_TOO_LARGE);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
                     PRODUCER_ERR_AUTH);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED),
                     PRODUCER_ERR_AUTH);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR__AUTHENTICATION), PRODUCER_ERR_AUTH);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR_POLICY_VIOLATION), PRODUCER_ERR_PERMANENT);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC), PRODUCER_ERR_PERMANENT);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), PRODUCER_ERR_TRANSIENT);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR__TRANSPORT), PRODUCER_ERR_TRANSIENT);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION),
                     PRODUCER_ERR_TRANSIENT);
    ck_assert_int_eq(producer_classify(RD_KAFKA_RESP_ERR__PURGE_QUEUE), PRODUCER_ERR_TRANSIENT);
    ck_assert_str_eq(producer_result_name(PRODUCER_ERR_AUTH), "authorization");
}
END_TEST

struct fixture {
    struct agent_config cfg;
    struct metrics *reg;
    struct agent_metrics m;
    struct ship *ship;
    struct record_ctx rctx;
};

static void setup(struct fixture *f, const char *max_message)
{
    memset(f, 0, sizeof(*f));
    char *yaml = xasprintf("agent:\n  source_name: t/p/c\n  checkpoint_dir: /nonexistent\n"
                           "  inputs:\n    - path: /nonexistent/*.log\n      format: json\n"
                           "kafka:\n  brokers: 127.0.0.1:1\n  properties:\n"
                           "    message.max.bytes: %s\n",
                           max_message);
    char err[256];
    ck_assert_msg(agent_config_load_string(&f->cfg, yaml, err, sizeof(err)) == 0, "%s", err);
    free(yaml);
    f->reg = metrics_new();
    agent_metrics_init(&f->m, f->reg);
    f->ship = ship_new(&f->cfg, &f->m, err, sizeof(err));
    ck_assert_msg(f->ship != NULL, "%s", err);
    f->rctx.source_name = "t/p/c";
}

static void teardown(struct fixture *f)
{
    ship_free(f->ship);
    record_ctx_release(&f->rctx);
    metrics_free(f->reg);
    agent_config_release(&f->cfg);
}

static struct record_in rec(struct fixture *f, const uint8_t *data, size_t len, const char *path)
{
    static uint8_t h[CHAIN_HASH_LEN];
    return (struct record_in){.kind = FORMAT_JSON,
                              .map = &f->cfg.inputs[0].map,
                              .stream_hex = "0123456789abcdef0123456789abcdef",
                              .path = path,
                              .prev = h,
                              .hash = h,
                              .data = data,
                              .len = len,
                              .read_time_us = 1764186645123456};
}

static size_t envelope_len(struct fixture *f, const struct record_in *r)
{
    size_t n;
    bool failed;
    ck_assert_ptr_nonnull(record_encode(&f->rctx, r, &n, &failed));
    return n;
}

/* Quotes and control bytes escape to 2 and 6 bytes each: the cut keeps what
 * fits, not max_record_bytes; a short record is left alone. */
START_TEST(test_fit_cuts_escaped_records_under_the_limit)
{
    struct fixture f;
    setup(&f, "300000");
    size_t limit = 300000 - 1024 - CHAIN_STREAM_HEX_LEN;
    size_t len = 400000;
    uint8_t *line = xmalloc(len);
    memcpy(line, "{\"actor\":\"", 10);
    for (size_t i = 10; i < len; i++)
        line[i] = i % 3 == 0 ? '"' : i % 3 == 1 ? 0x01 : 'x';
    struct record_in r = rec(&f, (const uint8_t *)"{\"actor\":\"ann\"}", 15, "/a.log");
    ck_assert_uint_eq(ship_fit(f.ship, &r), 15);
    r = rec(&f, line, len, "/var/log/audit/app.log");
    size_t keep = ship_fit(f.ship, &r);
    ck_assert_uint_lt(keep, len);
    ck_assert_uint_gt(keep, limit / 6 / 2); /* not needlessly short */
    struct record_in cut = r;
    cut.len = keep;
    cut.truncated = len - keep;
    ck_assert_uint_le(envelope_len(&f, &cut), limit);
    /* another name, another read time: the same cut */
    struct record_in other = rec(&f, line, len, "/var/log/audit/app.log.1");
    other.read_time_us += 86400LL * 1000000 * 400;
    ck_assert_uint_eq(ship_fit(f.ship, &other), keep);
    free(line);
    teardown(&f);
}
END_TEST

/* A record of multi-byte characters is cut between two of them. */
START_TEST(test_fit_cuts_on_a_utf8_boundary)
{
    struct fixture f;
    setup(&f, "200000");
    size_t len = 3 * 100000;
    uint8_t *line = xmalloc(len);
    for (size_t i = 0; i < len; i += 3)
        memcpy(line + i, "\xe2\x82\xac", 3); /* € */
    struct record_in r = rec(&f, line, len, "/a.log");
    size_t keep = ship_fit(f.ship, &r);
    ck_assert_uint_lt(keep, len);
    ck_assert_uint_eq(keep % 3, 0);
    free(line);
    teardown(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_fit");
    TCase *tc = tcase_create("fit");
    tcase_add_test(tc, test_classify);
    tcase_add_test(tc, test_fit_cuts_escaped_records_under_the_limit);
    tcase_add_test(tc, test_fit_cuts_on_a_utf8_boundary);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
