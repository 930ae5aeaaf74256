/* common/htab: insert and find, keys copied, growth, deletion with backward
 * shift (checked against a plain array under random operations), the O(1)
 * clear and its stamp wrap-around, and SipHash-2-4's reference vector. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/htab.h"
#include "common/siphash.h"
#include "tests/support/testutil.h"

START_TEST(put_find_and_values)
{
    struct htab t;
    htab_init(&t, 4, 0);
    bool added = false;
    size_t *v = htab_put(&t, "abcd", &added);
    ck_assert(added);
    ck_assert_uint_eq(*v, 0); /* a new entry starts at 0 */
    *v = 42;
    v = htab_put(&t, "abcd", &added);
    ck_assert(!added);
    ck_assert_uint_eq(*v, 42);
    ck_assert_ptr_null(htab_find(&t, "abce"));
    ck_assert_uint_eq(*htab_find(&t, "abcd"), 42);
    ck_assert_uint_eq(htab_count(&t), 1);
    /* Binary keys: NUL bytes are part of the key. */
    htab_put(&t, "a\0\0b", NULL);
    htab_put(&t, "a\0\0c", NULL);
    ck_assert_uint_eq(htab_count(&t), 3);
    htab_release(&t);
    htab_release(NULL);
}
END_TEST

START_TEST(keys_are_copied)
{
    struct htab t;
    htab_init(&t, 8, 4);
    char key[8] = "key-0001";
    *htab_put(&t, key, NULL) = 1;
    memcpy(key, "key-0002", 8); /* the caller's buffer changes */
    ck_assert_ptr_null(htab_find(&t, key));
    ck_assert_uint_eq(*htab_find(&t, "key-0001"), 1);
    htab_release(&t);
}
END_TEST

START_TEST(grows_and_keeps_everything)
{
    enum { N = 100000 };
    struct htab t;
    htab_init(&t, sizeof(uint64_t), 0); /* starts small: grows many times */
    for (uint64_t i = 0; i < N; i++) {
        uint64_t k = i * 0x9e3779b97f4a7c15ULL;
        bool added;
        *htab_put(&t, &k, &added) = (size_t)i;
        ck_assert(added);
    }
    ck_assert_uint_eq(htab_count(&t), N);
    for (uint64_t i = 0; i < N; i++) {
        uint64_t k = i * 0x9e3779b97f4a7c15ULL;
        size_t *v = htab_find(&t, &k);
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq(*v, i);
    }
    uint64_t absent = 1;
    ck_assert_ptr_null(htab_find(&t, &absent));
    htab_release(&t);
}
END_TEST

/* Random puts and deletes over a small key space, so that probe runs wrap
 * and deletions shift members back; the table must agree with an array. */
START_TEST(delete_matches_reference)
{
    enum { KEYS = 300, OPS = 200000 };
    struct htab t;
    htab_init(&t, sizeof(uint32_t), 0);
    long ref[KEYS];
    for (int i = 0; i < KEYS; i++)
        ref[i] = -1;
    size_t live = 0;
    unsigned seed = 12345;
    for (int op = 0; op < OPS; op++) {
        uint32_t k = (uint32_t)(rand_r(&seed) % KEYS);
        if (rand_r(&seed) % 3 == 0) {
            bool was = htab_del(&t, &k);
            ck_assert_int_eq(was, ref[k] >= 0);
            if (was)
                live--;
            ref[k] = -1;
        } else {
            bool added;
            *htab_put(&t, &k, &added) = (size_t)op;
            ck_assert_int_eq(added, ref[k] < 0);
            if (added)
                live++;
            ref[k] = op;
        }
        if (op % 997 == 0)
            for (uint32_t j = 0; j < KEYS; j++) {
                size_t *v = htab_find(&t, &j);
                if (ref[j] < 0)
                    ck_assert_ptr_null(v);
                else
                    ck_assert_msg(v && *v == (size_t)ref[j], "key %u after op %d", j, op);
            }
    }
    ck_assert_uint_eq(htab_count(&t), live);
    htab_release(&t);
}
END_TEST

START_TEST(clear_forgets_in_place)
{
    struct htab t;
    htab_init(&t, 2, 0);
    for (int round = 0; round < 5; round++) {
        ck_assert_ptr_null(htab_find(&t, "k1"));
        ck_assert_uint_eq(htab_count(&t), 0);
        htab_put(&t, "k1", NULL);
        htab_put(&t, "k2", NULL);
        ck_assert_ptr_nonnull(htab_find(&t, "k2"));
        htab_clear(&t);
    }
    /* The stamp wraps: entries of the generation that had the same stamp
     * must not come back. */
    htab_put(&t, "ww", NULL);
    t.gen = UINT32_MAX; /* white-box: jump to the last stamp */
    htab_put(&t, "zz", NULL);
    htab_clear(&t);
    ck_assert_uint_eq(t.gen, 1);
    ck_assert_ptr_null(htab_find(&t, "zz"));
    ck_assert_ptr_null(htab_find(&t, "ww"));
    htab_put(&t, "ww", NULL);
    ck_assert_uint_eq(htab_count(&t), 1);
    htab_release(&t);
}
END_TEST

/* The 64-byte reference vector of the SipHash paper (key 00..0f, message
 * 00..0e: 15 bytes, so the tail path runs too). */
START_TEST(siphash_reference)
{
    uint8_t in[15];
    for (int i = 0; i < 15; i++)
        in[i] = (uint8_t)i;
    uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;
    ck_assert_uint_eq(siphash24(k0, k1, in, 15), 0xa129ca6149be45e5ULL);
    uint64_t a[2], b[2];
    siphash_key(a);
    siphash_key(b);
    ck_assert(a[0] != b[0] || a[1] != b[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("htab");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, put_find_and_values);
    tcase_add_test(tc, keys_are_copied);
    tcase_add_test(tc, grows_and_keeps_everything);
    tcase_add_test(tc, delete_matches_reference);
    tcase_add_test(tc, clear_forgets_in_place);
    tcase_add_test(tc, siphash_reference);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
