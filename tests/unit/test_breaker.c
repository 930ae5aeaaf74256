/* Circuit breaker: every transition of the state machine, driven by a fake
 * clock and a fake random source so each wait is known exactly. */
#include <check.h>
#include <stdint.h>

#include "common/breaker.h"
#include "tests/support/testutil.h"

struct fake {
    uint64_t now;
    uint64_t rnd;
    int changes;
    enum breaker_state from[16], to[16];
};

static uint64_t fake_clock(void *ud)
{
    return ((struct fake *)ud)->now;
}

static uint64_t fake_rand(void *ud)
{
    return ((struct fake *)ud)->rnd;
}

static void on_change(void *ud, const struct breaker *b, enum breaker_state from,
                      enum breaker_state to)
{
    struct fake *f = ud;
    ck_assert_int_eq(breaker_state(b), to); /* called after the change */
    if (f->changes < 16) {
        f->from[f->changes] = from;
        f->to[f->changes] = to;
    }
    f->changes++;
}

/* window 10, min_calls 4, rate % (0 = off), `consecutive` in a row (0 = off),
 * open 100..1000 ms. */
static void setup(struct breaker *b, struct fake *f, unsigned consecutive, unsigned rate)
{
    struct breaker_conf c;
    breaker_conf_default(&c);
    c.window = 10;
    c.min_calls = 4;
    c.failure_rate_pct = rate;
    c.consecutive_failures = consecutive;
    c.open_base_ms = 100;
    c.open_max_ms = 1000;
    *f = (struct fake){.now = 1000, .rnd = UINT64_MAX};
    breaker_init(b, "test", &c, fake_clock, f, fake_rand, f, on_change, f);
}

static void fail_n(struct breaker *b, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert(breaker_allow(b));
        breaker_failure(b);
    }
}

static void ok_n(struct breaker *b, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert(breaker_allow(b));
        breaker_success(b);
    }
}

START_TEST(defaults)
{
    struct breaker_conf c;
    breaker_conf_default(&c);
    ck_assert_uint_eq(c.window, 20);
    ck_assert_uint_eq(c.min_calls, 5);
    ck_assert_uint_eq(c.failure_rate_pct, 50);
    ck_assert_uint_eq(c.consecutive_failures, 3);
    ck_assert_uint_eq(c.open_base_ms, 500);
    ck_assert_uint_eq(c.open_max_ms, 30000);
    struct breaker b;
    breaker_init(&b, "real-clock", NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(breaker_state(&b), BREAKER_CLOSED);
    ck_assert_str_eq(b.name, "real-clock");
    ck_assert(breaker_allow(&b));
    ck_assert_uint_eq(breaker_wait_ms(&b), 0);
    ck_assert_str_eq(breaker_state_name(BREAKER_CLOSED), "closed");
    ck_assert_str_eq(breaker_state_name(BREAKER_OPEN), "open");
    ck_assert_str_eq(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
}
END_TEST

START_TEST(trips_on_consecutive_failures)
{
    struct breaker b;
    struct fake f;
    setup(&b, &f, 3, 0); /* rate trip off: only runs of failures count */
    fail_n(&b, 2);
    ck_assert_int_eq(breaker_state(&b), BREAKER_CLOSED);
    ok_n(&b, 1); /* a success breaks the run */
    fail_n(&b, 2);
    ck_assert_int_eq(breaker_state(&b), BREAKER_CLOSED);
    ck_assert_int_eq(f.changes, 0);
    fail_n(&b, 1);
    ck_assert_int_eq(breaker_state(&b), BREAKER_OPEN);
    ck_assert_int_eq(f.changes, 1);
    ck_assert_int_eq(f.from[0], BREAKER_CLOSED);
    ck_assert_int_eq(f.to[0], BREAKER_OPEN);
    ck_assert_uint_eq(b.trips, 1);
    ck_assert(!breaker_allow(&b));
}
END_TEST

START_TEST(trips_on_rate_only_after_min_calls)
{
    struct breaker b;
    struct fake f;
    setup(&b, &f, 0, 50); /* consecutive trip disabled: only the rate counts */
    /* F S F: 2/3 = 67 % but only 3 calls < min_calls 4. */
    fail_n(&b, 1);
    ok_n(&b, 1);
    fail_n(&b, 1);
    ck_assert_int_eq(breaker_state(&b), BREAKER_CLOSED);
    ok_n(&b, 1); /* 4 calls, 50 % — but a success never trips */
    ck_assert_int_eq(breaker_state(&b), BREAKER_CLOSED);
    ok_n(&b, 1);   /* 2/5 = 40 % */
    fail_n(&b, 1); /* 3/6 = 50 % >= 50 %: trips */
    ck_assert_int_eq(breaker_state(&b), BREAKER_OPEN);
    ck_assert_int_eq(f.changes, 1);
}
END_TEST

START_TEST(rate_below_threshold_stays_closed)
{
    struct breaker b;
    struct fake f;
    setup(&b, &f, 0, 50);
    for (int i = 0; i < 50; i++) {
        ok_n(&b, 2);
        fail_n(&b, 1); /* 33 % */
    }
    ck_assert_int_eq(breaker_state(&b), BREAKER_CLOSED);
    ck_assert_uint_eq(b.ring_count, 10);
}
END_TEST

START_TEST(window_forgets_old_failures)
{
    struct breaker b;
    struct fake f;
    setup(&b, &f, 0, 50);
    /* F S F S then 6 successes: 2 failures in the window of 10. */
    fail_n(&b, 1);
    ok_n(&b, 1);
    fail_n(&b, 1);
    ok_n(&b, 1);
    ok_n(&b, 6);
    ck_assert_uint_eq(b.ring_failures, 2);
    /* 10 more successes push every failure out of the window. */
    ok_n(&b, 10);
    ck_assert_uint_eq(b.ring_failures, 0);
    ck_assert_uint_eq(b.ring_count, 10);
    /* The rate is over the last 10 calls only: 4 failures = 40 % stays
     * closed and the 5th makes 50 % and trips (counted over all 25 calls it
     * would be 7/25 = 28 %, no trip). */
    fail_n(&b, 4);
    ck_assert_int_eq(breaker_state(&b), BREAKER_CLOSED);
    fail_n(&b, 1);
    ck_assert_int_eq(breaker_state(&b), BREAKER_OPEN);
}
END_TEST

START_TEST(open_refuses_until_wait_passes)
{
    struct breaker b;
    struct fake f;
    setup(&b, &f, 3, 50);
    f.rnd = UINT64_MAX; /* UINT64_MAX % 51 = 0 → wait = floor 50 */
    fail_n(&b, 3);
    ck_assert_int_eq(breaker_state(&b), BREAKER_OPEN);
    ck_assert_uint_eq(breaker_wait_ms(&b), 50 + UINT64_MAX % 51);
    uint64_t wait = breaker_wait_ms(&b);
    ck_assert_uint_ge(wait, 50);
    ck_assert_uint_le(wait, 100);
    f.now += wait - 1;
    ck_assert(!breaker_allow(&b));
    ck_assert_uint_eq(breaker_wait_ms(&b), 1);
    /* Late outcomes of calls admitted before the trip change nothing. */
    breaker_success(&b);
    breaker_failure(&b);
    ck_assert_int_eq(breaker_state(&b), BREAKER_OPEN);
    ck_assert_int_eq(f.changes, 1);
    f.now += 1;
    ck_assert_uint_eq(breaker_wait_ms(&b), 0);
    ck_assert(breaker_allow(&b)); /* the probe */
    ck_assert_int_eq(breaker_state(&b), BREAKER_HALF_OPEN);
    ck_assert_int_eq(f.changes, 2);
    ck_assert_int_eq(f.from[1], BREAKER_OPEN);
    ck_assert_int_eq(f.to[1], BREAKER_HALF_OPEN);
}
END_TEST

START_TEST(exactly_one_probe)
{
    struct breaker b;
    struct fake f;
    setup(&b, &f, 3, 50);
    fail_n(&b, 3);
    f.now += 1000;
    ck_assert(breaker_allow(&b));
    for (int i = 0; i < 100; i++)
        ck_assert(!breaker_allow(&b));
    f.now += 100000;
    ck_assert(!breaker_allow(&b)); /* still out: time alone does not admit another */
    ck_assert_int_eq(breaker_state(&b), BREAKER_HALF_OPEN);
    ck_assert_int_eq(f.changes, 2);
}
END_TEST

START_TEST(probe_success_closes_and_resets)
{
    struct breaker b;
    struct fake f;
    setup(&b, &f, 3, 50);
    fail_n(&b, 3);
    /* Second trip in a row first, so the reset is visible. */
    f.now += 1000;
    ck_assert(breaker_allow(&b));
    breaker_failure(&b);
    ck_assert_uint_eq(b.open_backoff.attempt, 2);
    f.now += 1000;
    ck_assert(breaker_allow(&b));
    breaker_success(&b);
    ck_assert_int_eq(breaker_state(&b), BREAKER_CLOSED);
    ck_assert_int_eq(f.changes, 5);
    ck_assert_int_eq(f.from[4], BREAKER_HALF_OPEN);
    ck_assert_int_eq(f.to[4], BREAKER_CLOSED);
    ck_assert_uint_eq(b.ring_count, 0);
    ck_assert_uint_eq(b.consecutive, 0);
    ck_assert_uint_eq(b.open_backoff.attempt, 0);
    ck_assert_uint_eq(b.trips, 2); /* lifetime total stays */
    ok_n(&b, 5);
    /* Fresh window: 2 failures do not trip, the 3rd in a row does, and the
     * wait starts again from the base ceiling (100). */
    fail_n(&b, 2);
    ck_assert_int_eq(breaker_state(&b), BREAKER_CLOSED);
    f.rnd = 50; /* 50 % 51 = 50 → 50 + 50 = 100 = the first ceiling */
    fail_n(&b, 1);
    ck_assert_int_eq(breaker_state(&b), BREAKER_OPEN);
    ck_assert_uint_eq(breaker_wait_ms(&b), 100);
}
END_TEST

START_TEST(probe_failure_reopens_longer)
{
    struct breaker b;
    struct fake f;
    setup(&b, &f, 3, 50);
    /* rnd = span gives the ceiling exactly: floor 50 + (rnd % (c - 50 + 1)). */
    uint64_t ceilings[] = {100, 200, 400, 800, 1000, 1000};
    f.rnd = 50;
    fail_n(&b, 3);
    ck_assert_uint_eq(breaker_wait_ms(&b), ceilings[0]);
    for (int i = 1; i < 6; i++) {
        f.now += breaker_wait_ms(&b);
        ck_assert(breaker_allow(&b));
        ck_assert_int_eq(breaker_state(&b), BREAKER_HALF_OPEN);
        f.rnd = ceilings[i] - 50;
        breaker_failure(&b);
        ck_assert_int_eq(breaker_state(&b), BREAKER_OPEN);
        ck_assert_uint_eq(breaker_wait_ms(&b), ceilings[i]);
        ck_assert(!breaker_allow(&b));
    }
    /* 1 trip + 5 × (open→half, half→open) */
    ck_assert_int_eq(f.changes, 11);
    ck_assert_int_eq(f.from[2], BREAKER_HALF_OPEN);
    ck_assert_int_eq(f.to[2], BREAKER_OPEN);
    ck_assert_uint_eq(b.trips, 6);
}
END_TEST

START_TEST(wait_bounds_over_many_draws)
{
    struct breaker_conf c;
    breaker_conf_default(&c);
    struct breaker b;
    uint64_t now = 0;
    /* Real random source, fake clock: every wait in [base/2, ceiling]. */
    breaker_init(&b, "x", &c, fake_clock, &now, NULL, NULL, NULL, NULL);
    for (int round = 0; round < 500; round++) {
        uint64_t ceiling = backoff_ceiling(&b.open_backoff);
        if (breaker_state(&b) == BREAKER_CLOSED) {
            for (unsigned i = 0; i < c.consecutive_failures; i++)
                breaker_failure(&b);
        } else {
            ck_assert(breaker_allow(&b));
            breaker_failure(&b);
        }
        uint64_t w = breaker_wait_ms(&b);
        ck_assert_uint_ge(w, 250);
        ck_assert_uint_le(w, ceiling);
        now += w;
    }
}
END_TEST

START_TEST(tiny_base_never_zero)
{
    struct breaker_conf c;
    breaker_conf_default(&c);
    c.open_base_ms = 1;
    struct fake f = {.now = 5, .rnd = 0};
    struct breaker b;
    breaker_init(&b, "x", &c, fake_clock, &f, fake_rand, &f, NULL, NULL);
    fail_n(&b, 3);
    ck_assert_uint_eq(breaker_wait_ms(&b), 1);
    ck_assert(!breaker_allow(&b));
}
END_TEST

static Suite *breaker_suite(void)
{
    Suite *s = suite_create("breaker");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, trips_on_consecutive_failures);
    tcase_add_test(tc, trips_on_rate_only_after_min_calls);
    tcase_add_test(tc, rate_below_threshold_stays_closed);
    tcase_add_test(tc, window_forgets_old_failures);
    tcase_add_test(tc, open_refuses_until_wait_passes);
    tcase_add_test(tc, exactly_one_probe);
    tcase_add_test(tc, probe_success_closes_and_resets);
    tcase_add_test(tc, probe_failure_reopens_longer);
    tcase_add_test(tc, wait_bounds_over_many_draws);
    tcase_add_test(tc, tiny_base_never_zero);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(breaker_suite());
}
