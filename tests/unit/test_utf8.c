/* common/utf8: the RFC 3629 rules one sequence at a time (valid 1-4 byte
 * forms at their boundaries; overlongs, surrogates, > U+10FFFF, stray and
 * truncated sequences refused), whole-string validity, and the U+FFFD repair
 * with and without NUL. Expected values are written out by hand, and the
 * validity rules are cross-checked with jansson's own UTF-8 check. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/utf8.h"
#include "tests/support/testutil.h"

#define FFFD "\xef\xbf\xbd"

static size_t seq_len(const char *s, size_t n)
{
    return utf8_seq_len((const uint8_t *)s, n);
}

START_TEST(valid_sequences_each_length)
{
    /* The first and last code point of each length, and a few inside. */
    ck_assert_uint_eq(seq_len("\x00", 1), 1); /* U+0000 */
    ck_assert_uint_eq(seq_len("A", 1), 1);
    ck_assert_uint_eq(seq_len("\x7f", 1), 1);             /* U+007F */
    ck_assert_uint_eq(seq_len("\xc2\x80", 2), 2);         /* U+0080 */
    ck_assert_uint_eq(seq_len("\xc3\xa9", 2), 2);         /* é */
    ck_assert_uint_eq(seq_len("\xdf\xbf", 2), 2);         /* U+07FF */
    ck_assert_uint_eq(seq_len("\xe0\xa0\x80", 3), 3);     /* U+0800 */
    ck_assert_uint_eq(seq_len("\xe2\x82\xac", 3), 3);     /* € */
    ck_assert_uint_eq(seq_len("\xed\x9f\xbf", 3), 3);     /* U+D7FF */
    ck_assert_uint_eq(seq_len("\xee\x80\x80", 3), 3);     /* U+E000 */
    ck_assert_uint_eq(seq_len("\xef\xbf\xbd", 3), 3);     /* U+FFFD */
    ck_assert_uint_eq(seq_len("\xef\xbf\xbf", 3), 3);     /* U+FFFF */
    ck_assert_uint_eq(seq_len("\xf0\x90\x80\x80", 4), 4); /* U+10000 */
    ck_assert_uint_eq(seq_len("\xf0\x9f\x98\x80", 4), 4); /* 😀 */
    ck_assert_uint_eq(seq_len("\xf4\x8f\xbf\xbf", 4), 4); /* U+10FFFF */
    /* Only the first sequence counts; what follows does not matter. */
    ck_assert_uint_eq(seq_len("\xc3\xa9\xff", 3), 2);
    ck_assert_uint_eq(seq_len("a\xff", 2), 1);
}
END_TEST

START_TEST(overlongs_refused)
{
    ck_assert_uint_eq(seq_len("\xc0\x80", 2), 0);             /* NUL in 2 bytes */
    ck_assert_uint_eq(seq_len("\xc0\xaf", 2), 0);             /* '/' in 2 bytes */
    ck_assert_uint_eq(seq_len("\xc1\xbf", 2), 0);             /* U+007F in 2 bytes */
    ck_assert_uint_eq(seq_len("\xe0\x80\x80", 3), 0);         /* NUL in 3 bytes */
    ck_assert_uint_eq(seq_len("\xe0\x9f\xbf", 3), 0);         /* U+07FF in 3 bytes */
    ck_assert_uint_eq(seq_len("\xf0\x80\x80\x80", 4), 0);     /* NUL in 4 bytes */
    ck_assert_uint_eq(seq_len("\xf0\x8f\xbf\xbf", 4), 0);     /* U+FFFF in 4 bytes */
    ck_assert_uint_eq(seq_len("\xf8\x88\x80\x80\x80", 5), 0); /* 5-byte form */
    ck_assert_uint_eq(seq_len("\xfc\x84\x80\x80\x80\x80", 6), 0);
}
END_TEST

START_TEST(surrogates_refused)
{
    ck_assert_uint_eq(seq_len("\xed\xa0\x80", 3), 0); /* U+D800 */
    ck_assert_uint_eq(seq_len("\xed\xaf\xbf", 3), 0); /* U+DBFF */
    ck_assert_uint_eq(seq_len("\xed\xb0\x80", 3), 0); /* U+DC00 */
    ck_assert_uint_eq(seq_len("\xed\xbf\xbf", 3), 0); /* U+DFFF */
    /* A CESU-8 pair (two encoded surrogates) is not UTF-8 either. */
    ck_assert(!utf8_valid("\xed\xa0\xbd\xed\xb8\x80", 6));
}
END_TEST

START_TEST(above_10ffff_refused)
{
    ck_assert_uint_eq(seq_len("\xf4\x90\x80\x80", 4), 0); /* U+110000 */
    ck_assert_uint_eq(seq_len("\xf4\xbf\xbf\xbf", 4), 0);
    ck_assert_uint_eq(seq_len("\xf5\x80\x80\x80", 4), 0);
    ck_assert_uint_eq(seq_len("\xf7\xbf\xbf\xbf", 4), 0); /* U+1FFFFF */
    ck_assert_uint_eq(seq_len("\xfe", 1), 0);
    ck_assert_uint_eq(seq_len("\xff", 1), 0);
}
END_TEST

START_TEST(stray_and_truncated_refused)
{
    ck_assert_uint_eq(seq_len("\x80", 1), 0); /* continuation without a lead */
    ck_assert_uint_eq(seq_len("\xbf", 1), 0);
    /* Cut short by n, although the bytes are there in memory. */
    ck_assert_uint_eq(seq_len("\xc3\xa9", 1), 0);
    ck_assert_uint_eq(seq_len("\xe2\x82\xac", 2), 0);
    ck_assert_uint_eq(seq_len("\xe2\x82\xac", 1), 0);
    ck_assert_uint_eq(seq_len("\xf0\x9f\x98\x80", 3), 0);
    ck_assert_uint_eq(seq_len("\xf0\x9f\x98\x80", 1), 0);
    /* A lead followed by a non-continuation byte. */
    ck_assert_uint_eq(seq_len("\xc3(", 2), 0);
    ck_assert_uint_eq(seq_len("\xe2\x28\xa1", 3), 0);
    ck_assert_uint_eq(seq_len("\xe2\x82\x28", 3), 0);
    ck_assert_uint_eq(seq_len("\xf0\x9f\x98(", 4), 0);
    ck_assert_uint_eq(seq_len("\xf0\x9f\xc3\xa9", 4), 0);
}
END_TEST

START_TEST(valid_whole_strings)
{
    ck_assert(utf8_valid("", 0));
    ck_assert(utf8_valid(NULL, 0));
    ck_assert(utf8_valid("plain ascii", 11));
    ck_assert(utf8_valid("a\0b", 3)); /* NUL is U+0000 */
    ck_assert(utf8_valid("M\xc3\xbcller \xe2\x82\xac \xf0\x9f\x98\x80", 16));
    ck_assert(!utf8_valid("caf\xe9", 4));
    ck_assert(!utf8_valid("ok\xe2\x82", 4)); /* truncated at the end */
    ck_assert(utf8_valid("ok\xe2\x82\xac", 5));
    ck_assert(!utf8_valid("\xed\xa0\x80", 3));
    /* n is respected: the bad byte past n is not looked at. */
    ck_assert(utf8_valid("abc\xff", 3));
}
END_TEST

/* Every pair of leading bytes, with a third byte at each boundary, agrees
 * with jansson's UTF-8 check (the envelope's "line" vs "line_b64" choice
 * must match what jansson accepts). */
START_TEST(agrees_with_jansson)
{
    static const uint8_t thirds[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
                                     0x9f, 0xa0, 0xbf, 0xc0, 0xe2, 0xff};
    uint8_t b[3];
    unsigned mismatches = 0;
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned c = 0; c < 256; c++) {
            for (size_t d = 0; d < sizeof(thirds); d++) {
                b[0] = (uint8_t)a;
                b[1] = (uint8_t)c;
                b[2] = thirds[d];
                json_t *j = json_stringn((const char *)b, 3);
                bool theirs = j != NULL;
                json_decref(j);
                if (theirs != utf8_valid(b, 3))
                    mismatches++;
            }
        }
    }
    ck_assert_uint_eq(mismatches, 0);
    /* 4-byte sequences: every lead, the boundary second bytes. */
    static const uint8_t seconds[] = {0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0};
    for (unsigned a = 0xe0; a < 0x100; a++) {
        for (size_t i = 0; i < sizeof(seconds); i++) {
            uint8_t q[4] = {(uint8_t)a, seconds[i], 0x80, 0xbf};
            json_t *j = json_stringn((const char *)q, 4);
            ck_assert_msg((j != NULL) == utf8_valid(q, 4), "%02x %02x", a, seconds[i]);
            json_decref(j);
        }
    }
}
END_TEST

static void check_sanitize(const char *in, size_t n, const char *want, size_t want_len)
{
    size_t len = 12345;
    char *got = utf8_sanitize(in, n, &len);
    ck_assert_uint_eq(len, want_len);
    ck_assert_mem_eq(got, want, want_len);
    ck_assert_int_eq(got[len], '\0');
    ck_assert(utf8_valid(got, len));
    free(got);
}

START_TEST(sanitize_replaces_each_bad_byte)
{
    check_sanitize("", 0, "", 0);
    check_sanitize("clean \xc3\xa9", 8, "clean \xc3\xa9", 8);
    check_sanitize("caf\xe9.log", 8, "caf" FFFD ".log", 10);
    check_sanitize("\xff\xfe", 2, FFFD FFFD, 6);
    /* Overlong, surrogate, > U+10FFFF: one U+FFFD per byte. */
    check_sanitize("\xc0\x80", 2, FFFD FFFD, 6);
    check_sanitize("\xed\xa0\x80", 3, FFFD FFFD FFFD, 9);
    check_sanitize("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD, 12);
    /* Truncated at the end, then a good sequence right after a bad lead. */
    check_sanitize("ok\xe2\x82", 4, "ok" FFFD FFFD, 8);
    check_sanitize("\xe2\xc3\xa9", 3, FFFD "\xc3\xa9", 5);
    /* NUL is kept by utf8_sanitize. */
    check_sanitize("a\0\xff", 3, "a\0" FFFD, 5);
    size_t len;
    char *p = utf8_sanitize("x", 1, NULL); /* outlen optional */
    ck_assert_str_eq(p, "x");
    free(p);
    p = utf8_sanitize(NULL, 0, &len);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(p, "");
    free(p);
}
END_TEST

START_TEST(sanitize_str_replaces_nul_too)
{
    char *p = utf8_sanitize_str("a\0b\xff\0", 5);
    ck_assert_str_eq(p, "a" FFFD "b" FFFD FFFD);
    free(p);
    p = utf8_sanitize_str("\0", 1);
    ck_assert_str_eq(p, FFFD);
    free(p);
    p = utf8_sanitize_str("plain", 5);
    ck_assert_str_eq(p, "plain");
    free(p);
    p = utf8_sanitize_str("M\xc3\xbcller", 7);
    ck_assert_str_eq(p, "M\xc3\xbcller");
    free(p);
    /* n bounds the input: no read past it, terminator added. */
    p = utf8_sanitize_str("abcdef", 3);
    ck_assert_str_eq(p, "abc");
    free(p);
    p = utf8_sanitize_str(NULL, 0);
    ck_assert_str_eq(p, "");
    free(p);
}
END_TEST

/* Random byte strings: the repaired copy is valid, as long as the input plus
 * two bytes per replacement, and equal to the input when it was valid. */
START_TEST(sanitize_random)
{
    uint64_t x = 99;
    uint8_t in[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % 64);
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            uint8_t r = (uint8_t)(x >> 56);
            in[i] = round % 2 ? r : (uint8_t)(r % 4 == 0 ? 0xc3 : r % 4 == 1 ? 0xa9 : r);
        }
        size_t len;
        char *out = utf8_sanitize(in, n, &len);
        ck_assert(utf8_valid(out, len));
        ck_assert_uint_ge(len, n);
        ck_assert_uint_eq((len - n) % 2, 0);
        if (utf8_valid(in, n))
            ck_assert(len == n && memcmp(out, in, n) == 0);
        else
            ck_assert_uint_gt(len, n);
        free(out);
        char *s = utf8_sanitize_str(in, n);
        ck_assert(utf8_valid(s, strlen(s)));
        size_t nuls = 0;
        for (size_t i = 0; i < n; i++)
            nuls += in[i] == 0;
        ck_assert_uint_eq(strlen(s), len + 2 * nuls); /* each NUL became 3 bytes */
        free(s);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("utf8");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, valid_sequences_each_length);
    tcase_add_test(tc, overlongs_refused);
    tcase_add_test(tc, surrogates_refused);
    tcase_add_test(tc, above_10ffff_refused);
    tcase_add_test(tc, stray_and_truncated_refused);
    tcase_add_test(tc, valid_whole_strings);
    tcase_add_test(tc, agrees_with_jansson);
    tcase_add_test(tc, sanitize_replaces_each_bad_byte);
    tcase_add_test(tc, sanitize_str_replaces_nul_too);
    tcase_add_test(tc, sanitize_random);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
