/* Backoff: ceilings double and cap, draws stay within [0, ceiling], the
 * random source is injectable, and huge attempt counts do not overflow. */
#include <check.h>
#include <stdint.h>

#include "common/backoff.h"
#include "tests/support/testutil.h"

static uint64_t fake_rand(void *ud)
{
    return *(uint64_t *)ud;
}

static uint64_t counting_rand(void *ud)
{
    uint64_t *n = ud;
    return (*n)++;
}

START_TEST(ceiling_doubles_and_caps)
{
    struct backoff b;
    backoff_init(&b, 100, 1000, NULL, NULL);
    uint64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_uint_eq(b.attempt, i);
        ck_assert_uint_eq(backoff_ceiling(&b), want[i]);
        backoff_next(&b);
    }
    backoff_reset(&b);
    ck_assert_uint_eq(b.attempt, 0);
    ck_assert_uint_eq(backoff_ceiling(&b), 100);
}
END_TEST

START_TEST(draws_within_ceiling)
{
    struct backoff b;
    backoff_init(&b, 7, 5000, NULL, NULL);
    uint64_t max_seen[16] = {0};
    for (int round = 0; round < 2000; round++) {
        backoff_reset(&b);
        for (unsigned a = 0; a < 16; a++) {
            uint64_t c = backoff_ceiling(&b);
            uint64_t d = backoff_next(&b);
            ck_assert_uint_le(d, c);
            if (d > max_seen[a])
                max_seen[a] = d;
        }
    }
    /* The jitter really spans the range: with 2000 draws the top half of
     * [0, ceiling] is reached at every attempt (probability of failing ~2^-2000). */
    struct backoff probe;
    backoff_init(&probe, 7, 5000, NULL, NULL);
    for (unsigned a = 0; a < 16; a++) {
        ck_assert_uint_ge(max_seen[a] * 2, backoff_ceiling(&probe));
        probe.attempt++;
    }
}
END_TEST

START_TEST(deterministic_with_fake_rand)
{
    uint64_t r = 1234567;
    struct backoff b;
    backoff_init(&b, 100, 10000, fake_rand, &r);
    ck_assert_uint_eq(backoff_next(&b), 1234567 % 101);
    ck_assert_uint_eq(backoff_next(&b), 1234567 % 201);
    ck_assert_uint_eq(backoff_next(&b), 1234567 % 401);
    r = 400;
    ck_assert_uint_eq(backoff_next(&b), 400); /* ceiling 800: the top value is reachable */
    r = UINT64_MAX;
    backoff_reset(&b);
    ck_assert_uint_eq(backoff_next(&b), UINT64_MAX % 101);

    uint64_t n = 0;
    struct backoff c;
    backoff_init(&c, 1, 1, counting_rand, &n);
    ck_assert_uint_eq(backoff_next(&c), 0);
    ck_assert_uint_eq(backoff_next(&c), 1);
    ck_assert_uint_eq(backoff_next(&c), 0);
}
END_TEST

START_TEST(no_overflow_at_large_attempts)
{
    uint64_t r = UINT64_MAX - 1;
    struct backoff b;
    backoff_init(&b, 500, 30000, fake_rand, &r);
    b.attempt = 200;
    ck_assert_uint_eq(backoff_ceiling(&b), 30000);
    ck_assert_uint_le(backoff_next(&b), 30000);
    for (unsigned a = 55; a < 70; a++) {
        b.attempt = a;
        ck_assert_uint_eq(backoff_ceiling(&b), 30000);
    }
    /* A base that overflows on the first shift. */
    backoff_init(&b, UINT64_MAX / 2 + 1, UINT64_MAX, fake_rand, &r);
    b.attempt = 1;
    ck_assert_uint_eq(backoff_ceiling(&b), UINT64_MAX);
    ck_assert_uint_eq(backoff_next(&b), UINT64_MAX - 1);
    /* attempt saturates instead of wrapping to 0. */
    b.attempt = UINT32_MAX;
    backoff_next(&b);
    ck_assert_uint_eq(b.attempt, UINT32_MAX);
    /* base 0 means no delay. */
    backoff_init(&b, 0, 1000, fake_rand, &r);
    ck_assert_uint_eq(backoff_next(&b), 0);
}
END_TEST

START_TEST(default_rand_varies)
{
    uint64_t a = rand_u64_default(NULL), b = rand_u64_default(NULL), c = rand_u64_default(NULL);
    ck_assert(a != b || b != c);
}
END_TEST

static Suite *backoff_suite(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, ceiling_doubles_and_caps);
    tcase_add_test(tc, draws_within_ceiling);
    tcase_add_test(tc, deterministic_with_fake_rand);
    tcase_add_test(tc, no_overflow_at_large_attempts);
    tcase_add_test(tc, default_rand_varies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(backoff_suite());
}
