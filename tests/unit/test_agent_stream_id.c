/* Stream identity rules (DESIGN.md §2): fingerprint length, id inputs, and
 * the id computed independently of the agent's code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "agent/stream_id.h"
#include "tests/support/testutil.h"

START_TEST(test_fp_length)
{
    const uint8_t *s = (const uint8_t *)"abc\ndef\n";
    ck_assert_uint_eq(stream_fp_length(s, 8, false), 4);
    ck_assert_uint_eq(stream_fp_length((const uint8_t *)"\n\nabc\nx", 7, false), 6);
    ck_assert_uint_eq(stream_fp_length((const uint8_t *)"abc", 3, false), 0); /* not yet */
    ck_assert_uint_eq(stream_fp_length((const uint8_t *)"abc", 3, true), 3);
    ck_assert_uint_eq(stream_fp_length((const uint8_t *)"\n\n", 2, false), 0);
    uint8_t big[STREAM_FP_CAP];
    memset(big, 'x', sizeof(big));
    ck_assert_uint_eq(stream_fp_length(big, sizeof(big), false), STREAM_FP_CAP);
}
END_TEST

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* The documented layout, computed here without the agent's code. */
static void reference_id(const char *name, uint64_t dev, uint64_t ino, uint64_t btime,
                         const uint8_t fp[32], uint64_t fp_len, uint64_t gen, char out[33])
{
    uint8_t buf[512];
    size_t n = 0;
    memcpy(buf, "auditrail:stream:v1", 20); /* with its NUL */
    n = 20;
    memcpy(buf + n, name, strlen(name) + 1);
    n += strlen(name) + 1;
    put_be64(buf + n, dev);
    put_be64(buf + n + 8, ino);
    put_be64(buf + n + 16, btime);
    put_be64(buf + n + 24, fp_len);
    n += 32;
    memcpy(buf + n, fp, 32);
    n += 32;
    put_be64(buf + n, gen);
    n += 8;
    uint8_t md[32];
    SHA256(buf, n, md);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

START_TEST(test_id_layout_and_inputs)
{
    uint8_t fp[32], fp2[32];
    stream_fp_compute((const uint8_t *)"first line\n", 11, fp);
    stream_fp_compute((const uint8_t *)"other line\n", 11, fp2);
    char id[33], ref[33], other[33];
    stream_id_compute("ns/pod/app", 2049, 77, 5, fp, 11, 0, id);
    reference_id("ns/pod/app", 2049, 77, 5, fp, 11, 0, ref);
    ck_assert_str_eq(id, ref);
    ck_assert_uint_eq(strlen(id), 32);
    /* stable */
    stream_id_compute("ns/pod/app", 2049, 77, 5, fp, 11, 0, other);
    ck_assert_str_eq(id, other);
    /* every input changes it */
    stream_id_compute("ns/pod/app2", 2049, 77, 5, fp, 11, 0, other);
    ck_assert_str_ne(id, other);
    stream_id_compute("ns/pod/app", 2050, 77, 5, fp, 11, 0, other);
    ck_assert_str_ne(id, other);
    stream_id_compute("ns/pod/app", 2049, 78, 5, fp, 11, 0, other);
    ck_assert_str_ne(id, other);
    stream_id_compute("ns/pod/app", 2049, 77, 6, fp, 11, 0, other);
    ck_assert_str_ne(id, other);
    stream_id_compute("ns/pod/app", 2049, 77, 5, fp2, 11, 0, other);
    ck_assert_str_ne(id, other);
    stream_id_compute("ns/pod/app", 2049, 77, 5, fp, 11, 1, other);
    ck_assert_str_ne(id, other);
}
END_TEST

START_TEST(test_fp_read_verify_on_file)
{
    char *dir = test_tmpdir("sid");
    char path[512];
    snprintf(path, sizeof(path), "%s/f.log", dir);
    test_write_file(path, "partial", 7, false);
    FILE *f = fopen(path, "r");
    int fd = fileno(f);
    uint8_t fp[32], want[32];
    size_t len = 0;
    ck_assert_int_eq(stream_fp_read(fd, false, fp, &len), 0);
    ck_assert_int_eq(stream_fp_read(fd, true, fp, &len), 1);
    ck_assert_uint_eq(len, 7);
    test_write_file(path, " line\nmore\n", 11, true);
    ck_assert_int_eq(stream_fp_read(fd, false, fp, &len), 1);
    ck_assert_uint_eq(len, 13);
    stream_fp_compute((const uint8_t *)"partial line\n", 13, want);
    ck_assert_int_eq(memcmp(fp, want, 32), 0);
    ck_assert_int_eq(stream_fp_verify(fd, fp, len), 1);
    /* truncate and rewrite with other content of the same length */
    test_write_file(path, "PARTIAL LINE\n", 13, false);
    ck_assert_int_eq(stream_fp_verify(fd, fp, len), 0);
    /* shorter than the fingerprint */
    test_write_file(path, "par", 3, false);
    ck_assert_int_eq(stream_fp_verify(fd, fp, len), 0);
    fclose(f);
    test_rmtree(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_stream_id");
    TCase *tc = tcase_create("stream_id");
    tcase_add_test(tc, test_fp_length);
    tcase_add_test(tc, test_id_layout_and_inputs);
    tcase_add_test(tc, test_fp_read_verify_on_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
