/* DLQ header building: the original headers survive (except stale
 * auditrail-* ones), and the error and origin are named. */
#include <string.h>

#include "aggregator/dlq.h"
#include "tests/support/testutil.h"

static const char *hget(const rd_kafka_headers_t *h, const char *name, size_t *n)
{
    const void *v = NULL;
    size_t size = 0;
    if (rd_kafka_header_get_last(h, name, &v, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    *n = size;
    return v;
}

static void assert_header(const rd_kafka_headers_t *h, const char *name, const char *want)
{
    size_t n = 0;
    const char *v = hget(h, name, &n);
    ck_assert_msg(v != NULL, "header %s missing", name);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert(memcmp(v, want, n) == 0);
}

START_TEST(headers_without_originals)
{
    rd_kafka_headers_t *h = dlq_headers_build(NULL, "schema", "schema: missing field: seq",
                                              "audit.events", 7, 123456789012LL);
    ck_assert_uint_eq(rd_kafka_header_cnt(h), 5);
    assert_header(h, DLQ_H_ERROR, "schema: missing field: seq");
    assert_header(h, DLQ_H_REASON, "schema");
    assert_header(h, DLQ_H_TOPIC, "audit.events");
    assert_header(h, DLQ_H_PARTITION, "7");
    assert_header(h, DLQ_H_OFFSET, "123456789012");
    rd_kafka_headers_destroy(h);
}
END_TEST

START_TEST(headers_keep_originals_drop_stale_ours)
{
    rd_kafka_headers_t *orig = rd_kafka_headers_new(4);
    rd_kafka_header_add(orig, "traceparent", -1, "00-abc-01", -1);
    rd_kafka_header_add(orig, "bin", -1, "\0\1\2", 3);
    rd_kafka_header_add(orig, "auditrail-error", -1, "old error", -1);
    rd_kafka_header_add(orig, "auditrail-offset", -1, "1", -1);
    rd_kafka_headers_t *h = dlq_headers_build(orig, "decode", "decode: not JSON", "t", 0, 0);
    ck_assert_uint_eq(rd_kafka_header_cnt(h), 2 + 5);
    assert_header(h, "traceparent", "00-abc-01");
    size_t n;
    const char *v = hget(h, "bin", &n);
    ck_assert_uint_eq(n, 3);
    ck_assert(memcmp(v, "\0\1\2", 3) == 0);
    assert_header(h, DLQ_H_ERROR, "decode: not JSON");
    assert_header(h, DLQ_H_OFFSET, "0");
    /* Exactly one auditrail-error: the stale one is gone. */
    const void *val;
    size_t size;
    ck_assert_int_eq(rd_kafka_header_get(h, 1, DLQ_H_ERROR, &val, &size), RD_KAFKA_RESP_ERR__NOENT);
    rd_kafka_headers_destroy(h);
    rd_kafka_headers_destroy(orig);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggr_dlq");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, headers_without_originals);
    tcase_add_test(tc, headers_keep_originals_drop_stale_ours);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
