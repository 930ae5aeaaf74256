/* replay_seek against a stubbed partition: the broker's answer is taken
 * when it has one (no message fetched); without one (librdkafka's mock
 * cluster) the binary search finds the first offset at or after the time,
 * also across offsets that hold no message, equal timestamps, times before
 * the first and after the last message, and an empty partition. */
#include <inttypes.h>

#include "aggregator/replay_seek.h"
#include "tests/support/testutil.h"

#define LO 100
#define HI 164

/* The stub partition: offset LO + i holds a message with ts[i], or none
 * when ts[i] < 0 (a transaction marker, a compacted record). */
struct stub {
    int64_t ts[HI - LO];
    int64_t answer; /* offsetsForTimes' answer; -1: none */
    int direct_calls, fetches;
};

static int offset_for_time(void *ud, int32_t p, int64_t ts_ms, int64_t *off, char *err,
                           size_t errlen)
{
    (void)p, (void)ts_ms, (void)err, (void)errlen;
    struct stub *s = ud;
    s->direct_calls++;
    *off = s->answer;
    return 0;
}

static int message_at(void *ud, int32_t p, int64_t off, int64_t end, int64_t *ts_ms, int64_t *at,
                      char *err, size_t errlen)
{
    (void)p, (void)err, (void)errlen;
    struct stub *s = ud;
    s->fetches++;
    ck_assert_int_ge(off, LO);
    for (int64_t o = off; o < end && o < HI; o++)
        if (s->ts[o - LO] >= 0) {
            *ts_ms = s->ts[o - LO];
            *at = o;
            return 0;
        }
    return 1;
}

/* The expected answer, by a linear scan. */
static int64_t linear(const struct stub *s, int64_t t)
{
    for (int64_t o = LO; o < HI; o++)
        if (s->ts[o - LO] >= 0 && s->ts[o - LO] >= t)
            return o;
    return HI;
}

START_TEST(broker_answer_is_used)
{
    struct stub s = {.answer = 130};
    struct replay_lookup l = {offset_for_time, message_at, &s};
    int64_t off = -1;
    bool searched = true;
    char err[128];
    ck_assert_int_eq(replay_seek_time(&l, 0, LO, HI, 5000, &off, &searched, err, sizeof(err)), 0);
    ck_assert_int_eq(off, 130);
    ck_assert(!searched);
    ck_assert_int_eq(s.direct_calls, 1);
    ck_assert_int_eq(s.fetches, 0);
    /* An answer outside the watermarks is clamped. */
    s.answer = 7;
    ck_assert_int_eq(replay_seek_time(&l, 0, LO, HI, 5000, &off, &searched, err, sizeof(err)), 0);
    ck_assert_int_eq(off, LO);
}
END_TEST

START_TEST(search_without_broker_answer)
{
    struct stub s = {.answer = -1};
    /* Non-decreasing timestamps with runs of equal ones, and holes. */
    int64_t t = 1000;
    for (int i = 0; i < HI - LO; i++) {
        if (i % 7 == 3 || (i >= 40 && i < 47)) {
            s.ts[i] = -1;
            continue;
        }
        t += (i % 5 == 0) ? 0 : 10;
        s.ts[i] = t;
    }
    struct replay_lookup l = {offset_for_time, message_at, &s};
    char err[128];
    for (int64_t q = 900; q <= t + 20; q += 3) {
        int64_t off = -1;
        bool searched = false;
        s.fetches = 0;
        ck_assert_int_eq(replay_seek_time(&l, 0, LO, HI, q, &off, &searched, err, sizeof(err)), 0);
        ck_assert(searched);
        /* Seeking to off must reach exactly the first message at or after q. */
        int64_t want = linear(&s, q), got = off;
        while (got < HI && s.ts[got - LO] < 0)
            got++;
        ck_assert_msg(got == want,
                      "t=%" PRId64 ": seek %" PRId64 " reaches %" PRId64 ", wanted %" PRId64, q,
                      off, got, want);
        ck_assert_int_le(s.fetches, 8); /* log2(64) + 2 */
    }
}
END_TEST

START_TEST(empty_partition)
{
    struct stub s = {.answer = -1};
    for (int i = 0; i < HI - LO; i++)
        s.ts[i] = -1;
    struct replay_lookup l = {offset_for_time, message_at, &s};
    int64_t off = -1;
    bool searched;
    char err[128];
    ck_assert_int_eq(replay_seek_time(&l, 0, LO, HI, 5, &off, &searched, err, sizeof(err)), 0);
    ck_assert_int_ge(off, LO); /* nothing to read from wherever it is */
    ck_assert_int_eq(replay_seek_time(&l, 0, LO, LO, 5, &off, &searched, err, sizeof(err)), 0);
    ck_assert_int_eq(off, LO);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replay_seek");
    TCase *tc = tcase_create("seek");
    tcase_add_test(tc, broker_answer_is_used);
    tcase_add_test(tc, search_without_broker_answer);
    tcase_add_test(tc, empty_partition);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
