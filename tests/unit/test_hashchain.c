/* The hash chain against an independent SHA-256: the test writes the exact
 * bytes the contract describes to a file and asks sha256sum(1) for the hash,
 * so no expected value is ever taken from the code under test. Threads
 * hashing at once agree with one thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashchain.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static const char STREAM[] = "0123456789abcdef0123456789abcdef";

/* sha256sum of data, as 64 lower-case hex characters. */
static void sha256sum_hex(const void *data, size_t len, char out[65])
{
    char *dir = test_tmpdir("hashchain");
    char *path = xasprintf("%s/bytes", dir);
    test_write_file(path, data, len, false);
    char *cmd = xasprintf("sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(out, 65, p));
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_uint_eq(strlen(out), 64);
    free(cmd);
    free(path);
    test_rmtree(dir);
    free(dir);
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* prev || seq big-endian (built here byte by byte) || rec */
static void expected_next(const char prev_hex[65], uint64_t seq, const void *rec, size_t len,
                          char out[65])
{
    uint8_t *buf = xmalloc(32 + 8 + len + 1);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(prev_hex + 2 * i, "%2x", &v), 1);
        buf[i] = (uint8_t)v;
    }
    uint64_t s = seq;
    for (int i = 7; i >= 0; i--) {
        buf[32 + i] = (uint8_t)(s & 0xff);
        s >>= 8;
    }
    if (len)
        memcpy(buf + 40, rec, len);
    sha256sum_hex(buf, 40 + len, out);
    free(buf);
}

START_TEST(genesis_matches_sha256sum)
{
    char expect[65], got[65];
    char input[64];
    snprintf(input, sizeof(input), "auditrail:v1:%s", STREAM);
    sha256sum_hex(input, strlen(input), expect);
    uint8_t h[CHAIN_HASH_LEN];
    chain_genesis(STREAM, h);
    to_hex(h, 32, got);
    ck_assert_str_eq(got, expect);
}
END_TEST

START_TEST(genesis_reads_exactly_32_chars)
{
    /* Not NUL-terminated input: trailing bytes must not be hashed. */
    char buf[40];
    memcpy(buf, STREAM, 32);
    memcpy(buf + 32, "XXXXXXXX", 8);
    uint8_t a[32], b[32];
    chain_genesis(buf, a);
    chain_genesis(STREAM, b);
    ck_assert_mem_eq(a, b, 32);
}
END_TEST

static void check_next(const uint8_t prev[32], uint64_t seq, const void *rec, size_t len)
{
    char prev_hex[65], expect[65], got[65];
    to_hex(prev, 32, prev_hex);
    expected_next(prev_hex, seq, rec, len, expect);
    uint8_t h[32];
    chain_next(prev, seq, rec, len, h);
    to_hex(h, 32, got);
    ck_assert_str_eq(got, expect);
}

START_TEST(next_plain_record)
{
    uint8_t prev[32];
    chain_genesis(STREAM, prev);
    const char rec[] = "{\"actor\":\"dr.house\",\"action\":\"read\"}";
    check_next(prev, 0, rec, strlen(rec));
}
END_TEST

START_TEST(next_seq_above_2_32)
{
    uint8_t prev[32];
    memset(prev, 0xa5, sizeof(prev));
    check_next(prev, 0x0000000100000002ULL, "x", 1);
    check_next(prev, 0x0102030405060708ULL, "x", 1);
    check_next(prev, UINT64_MAX, "x", 1);
}
END_TEST

START_TEST(next_empty_record)
{
    uint8_t prev[32];
    chain_genesis(STREAM, prev);
    check_next(prev, 7, NULL, 0);
    check_next(prev, 7, "", 0);
}
END_TEST

START_TEST(next_nul_and_ff_bytes)
{
    uint8_t prev[32] = {0};
    const uint8_t rec[] = {0x00, 'a', 0xff, 0x00, 0xfe, '\r', 0xff};
    check_next(prev, 3, rec, sizeof(rec));
    /* A NUL in the middle is part of the record: cutting there differs. */
    uint8_t full[32], cut[32];
    chain_next(prev, 3, rec, sizeof(rec), full);
    chain_next(prev, 3, rec, 1, cut);
    ck_assert_mem_ne(full, cut, 32);
}
END_TEST

START_TEST(three_record_chain)
{
    const char *recs[] = {"first line", "second\r", "third \xff line"};
    char prev_hex[65], expect[65];
    char genesis_in[64];
    snprintf(genesis_in, sizeof(genesis_in), "auditrail:v1:%s", STREAM);
    sha256sum_hex(genesis_in, strlen(genesis_in), prev_hex);

    uint8_t prev[32];
    chain_genesis(STREAM, prev);
    for (uint64_t seq = 0; seq < 3; seq++) {
        expected_next(prev_hex, seq, recs[seq], strlen(recs[seq]), expect);
        uint8_t h[32];
        char got[65];
        chain_next(prev, seq, recs[seq], strlen(recs[seq]), h);
        to_hex(h, 32, got);
        ck_assert_str_eq(got, expect);
        memcpy(prev, h, 32);
        memcpy(prev_hex, expect, 65);
    }
}
END_TEST

START_TEST(id_is_uuid_of_first_16_bytes)
{
    uint8_t h[32];
    for (int i = 0; i < 32; i++)
        h[i] = (uint8_t)(0xf0 + i * 7);
    char hex[65];
    to_hex(h, 32, hex);
    char expect[37];
    snprintf(expect, sizeof(expect), "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
    char id[CHAIN_UUID_LEN + 1];
    memset(id, 'X', sizeof(id));
    chain_id(h, id);
    ck_assert_str_eq(id, expect);
    ck_assert_uint_eq(strlen(id), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            ck_assert_int_eq(id[i], '-');
        else
            ck_assert_ptr_nonnull(strchr("0123456789abcdef", id[i]));
    }
}
END_TEST

START_TEST(hex_round_trip_and_errors)
{
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xff, 0x7f};
    char hex[11];
    hex_encode(in, sizeof(in), hex);
    ck_assert_str_eq(hex, "0001abff7f");
    uint8_t out[5];
    ck_assert_int_eq(hex_decode("0001ABff7F", 5, out), 0);
    ck_assert_mem_eq(out, in, 5);
    ck_assert_int_eq(hex_decode("0001abff7g", 5, out), -1);
    ck_assert_int_eq(hex_decode(" 001abff7f", 5, out), -1);
    ck_assert_int_eq(hex_decode("", 0, out), 0);
}
END_TEST

/* ------------------------------------------------------------ threads */

#define MT_THREADS 4
#define MT_CHAINS  8
#define MT_RECS    300

/* Chain c's records: lengths 0..299 bytes (one to several SHA-256 blocks),
 * contents depending on chain and seq. */
static size_t mt_record(int c, uint64_t seq, uint8_t *buf)
{
    size_t len = (size_t)((seq * 37 + (uint64_t)c * 11) % MT_RECS);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 131 + seq * 7 + (uint64_t)c);
    return len;
}

/* The last hash of chain c (its stream id derived from c). */
static void mt_chain(int c, uint8_t out[CHAIN_HASH_LEN])
{
    char stream[CHAIN_STREAM_HEX_LEN + 1];
    snprintf(stream, sizeof(stream), "%032x", (unsigned)c * 0x01020304u);
    uint8_t prev[CHAIN_HASH_LEN], rec[MT_RECS];
    chain_genesis(stream, prev);
    for (uint64_t seq = 0; seq < MT_RECS; seq++) {
        size_t len = mt_record(c, seq, rec);
        chain_next(prev, seq, rec, len, prev);
    }
    memcpy(out, prev, CHAIN_HASH_LEN);
}

struct mt_job {
    int first; /* each thread starts at another chain so they overlap */
    uint8_t got[MT_CHAINS][CHAIN_HASH_LEN];
};

static void *mt_worker(void *arg)
{
    struct mt_job *j = arg;
    for (int k = 0; k < MT_CHAINS; k++) {
        int c = (j->first + k) % MT_CHAINS;
        mt_chain(c, j->got[c]);
    }
    return NULL;
}

START_TEST(threads_match_single_thread)
{
    uint8_t want[MT_CHAINS][CHAIN_HASH_LEN];
    for (int c = 0; c < MT_CHAINS; c++)
        mt_chain(c, want[c]);
    /* One link of the single-threaded result against sha256sum, so the
     * reference itself is not taken on trust. */
    {
        uint8_t prev[CHAIN_HASH_LEN], rec[MT_RECS];
        memset(prev, 0x5a, sizeof(prev));
        size_t len = mt_record(3, 250, rec);
        check_next(prev, 250, rec, len);
    }
    /* Several rounds of fresh threads: each thread's context is created on
     * first use and freed when it exits (LeakSanitizer would see a leak). */
    for (int round = 0; round < 3; round++) {
        pthread_t t[MT_THREADS];
        struct mt_job *jobs = xcalloc(MT_THREADS, sizeof(*jobs));
        for (int i = 0; i < MT_THREADS; i++) {
            jobs[i].first = i * 2 + round;
            ck_assert_int_eq(pthread_create(&t[i], NULL, mt_worker, &jobs[i]), 0);
        }
        for (int i = 0; i < MT_THREADS; i++)
            ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        for (int i = 0; i < MT_THREADS; i++)
            for (int c = 0; c < MT_CHAINS; c++)
                ck_assert_msg(memcmp(jobs[i].got[c], want[c], CHAIN_HASH_LEN) == 0,
                              "round %d thread %d chain %d differs", round, i, c);
        free(jobs);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hashchain");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, genesis_matches_sha256sum);
    tcase_add_test(tc, genesis_reads_exactly_32_chars);
    tcase_add_test(tc, next_plain_record);
    tcase_add_test(tc, next_seq_above_2_32);
    tcase_add_test(tc, next_empty_record);
    tcase_add_test(tc, next_nul_and_ff_bytes);
    tcase_add_test(tc, three_record_chain);
    tcase_add_test(tc, id_is_uuid_of_first_16_bytes);
    tcase_add_test(tc, hex_round_trip_and_errors);
    tcase_add_test(tc, threads_match_single_thread);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
