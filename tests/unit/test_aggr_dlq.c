/* DLQ header building: the original headers survive (except stale
 * auditrail-* ones), and the error and origin are named. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- fitting a copy into kafka.dlq_max_message_bytes (issue 9 item 2) -- */

#define MAX (64 * 1024)

static size_t copy_size(const struct dlq_fit *f)
{
    return DLQ_FRAMING_BYTES + f->keylen + dlq_headers_size(f->hdrs) + f->len;
}

static void assert_sha_header(const rd_kafka_headers_t *h, const void *value, size_t len)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(value, len, md);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_header(h, DLQ_H_ORIG_SHA256, hex);
    char num[32];
    snprintf(num, sizeof(num), "%zu", len);
    assert_header(h, DLQ_H_ORIG_SIZE, num);
    assert_header(h, DLQ_H_TRUNCATED, "true");
}

START_TEST(fit_small_copy_whole)
{
    rd_kafka_headers_t *h = dlq_headers_build(NULL, "decode", "decode: not JSON", "t", 0, 1);
    char value[1000];
    memset(value, 'v', sizeof(value));
    struct dlq_fit f;
    dlq_fit_copy(MAX, 32, value, sizeof(value), h, &f);
    ck_assert(!f.cut);
    ck_assert_uint_eq(f.len, sizeof(value));
    ck_assert_uint_eq(f.keylen, 32);
    ck_assert_uint_eq(rd_kafka_header_cnt(f.hdrs), 5);
    rd_kafka_headers_destroy(f.hdrs);
    rd_kafka_headers_destroy(h);
}
END_TEST

/* A 2 MB value (issue 9 item 2: dead-lettered whole, it was refused by the
 * producer forever): a prefix that fits, with the original's size and
 * SHA-256; the original headers and the key stay. */
START_TEST(fit_large_value_cut)
{
    size_t len = 2 * 1024 * 1024;
    char *value = malloc(len);
    for (size_t i = 0; i < len; i++)
        value[i] = (char)('a' + i % 26);
    rd_kafka_headers_t *orig = rd_kafka_headers_new(1);
    rd_kafka_header_add(orig, "traceparent", -1, "00-abc-01", -1);
    rd_kafka_headers_t *h = dlq_headers_build(orig, "oversize", "oversize: big", "t", 3, 9);
    struct dlq_fit f;
    dlq_fit_copy(MAX, 32, value, len, h, &f);
    ck_assert(f.cut);
    ck_assert_uint_le(copy_size(&f), MAX);
    ck_assert_uint_gt(f.len, MAX / 2); /* a useful prefix, not a sliver */
    ck_assert_uint_eq(f.keylen, 32);
    assert_sha_header(f.hdrs, value, len);
    assert_header(f.hdrs, "traceparent", "00-abc-01");
    assert_header(f.hdrs, DLQ_H_OFFSET, "9");
    rd_kafka_headers_destroy(f.hdrs);
    /* exactly at the bound: whole; one byte more: cut */
    size_t whole = MAX - DLQ_FRAMING_BYTES - 32 - dlq_headers_size(h);
    dlq_fit_copy(MAX, 32, value, whole, h, &f);
    ck_assert(!f.cut);
    rd_kafka_headers_destroy(f.hdrs);
    dlq_fit_copy(MAX, 32, value, whole + 1, h, &f);
    ck_assert(f.cut);
    ck_assert_uint_le(copy_size(&f), MAX);
    rd_kafka_headers_destroy(f.hdrs);
    rd_kafka_headers_destroy(h);
    rd_kafka_headers_destroy(orig);
    free(value);
}
END_TEST

/* Original headers or a key too big to leave room: dropped / cut, said so,
 * and the copy still fits. */
START_TEST(fit_huge_headers_and_key)
{
    size_t big = MAX;
    char *blob = malloc(big);
    memset(blob, 'h', big);
    rd_kafka_headers_t *orig = rd_kafka_headers_new(2);
    rd_kafka_header_add(orig, "a", -1, blob, (ssize_t)big);
    rd_kafka_header_add(orig, "b", -1, "x", 1);
    rd_kafka_headers_t *h = dlq_headers_build(orig, "decode", "decode: not JSON", "t", 0, 0);
    struct dlq_fit f;
    dlq_fit_copy(MAX, big, "value", 5, h, &f);
    ck_assert(f.cut);
    ck_assert_uint_le(copy_size(&f), MAX);
    assert_header(f.hdrs, DLQ_H_HEADERS_DROPPED, "2");
    char num[32];
    snprintf(num, sizeof(num), "%zu", big);
    assert_header(f.hdrs, DLQ_H_ORIG_KEY_SIZE, num);
    assert_header(f.hdrs, DLQ_H_ERROR, "decode: not JSON");
    ck_assert_uint_eq(f.len, 5);
    assert_sha_header(f.hdrs, "value", 5);
    size_t n;
    ck_assert_ptr_null(hget(f.hdrs, "a", &n));
    rd_kafka_headers_destroy(f.hdrs);
    rd_kafka_headers_destroy(h);
    rd_kafka_headers_destroy(orig);
    free(blob);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggr_dlq");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, headers_without_originals);
    tcase_add_test(tc, headers_keep_originals_drop_stale_ours);
    tcase_add_test(tc, fit_small_copy_whole);
    tcase_add_test(tc, fit_large_value_cut);
    tcase_add_test(tc, fit_huge_headers_and_key);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
