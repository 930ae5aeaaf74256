/* The contiguous-acknowledged-prefix tracker: out-of-order acks, failures
 * rewind without advancing, orphans are freed by their reports. */
#include <string.h>

#include "agent/ack_tracker.h"
#include "tests/support/testutil.h"

static struct ack_msg *msg(uint64_t seq)
{
    uint8_t h[CHAIN_HASH_LEN];
    memset(h, (int)(seq + 1), sizeof(h));
    return ack_msg_new(seq, 100 * (seq + 1), h, 10, 1000 + seq);
}

/* What a tracker's reports name as their owner (a tail_file in the agent). */
static int owner_token;

static void start(struct ack_tracker *tr)
{
    struct ack_pos p = {.offset = 0, .seq = 0};
    memset(p.prev, 0xee, sizeof(p.prev));
    ack_tracker_init(tr, &p, &owner_token);
}

START_TEST(test_in_order)
{
    struct ack_tracker tr;
    start(&tr);
    struct ack_msg *m[3];
    for (int i = 0; i < 3; i++)
        ack_tracker_push(&tr, m[i] = msg((uint64_t)i));
    ck_assert_uint_eq(ack_tracker_oldest_ms(&tr), 1000);
    void *got;
    ck_assert_int_eq(ack_tracker_delivered(m[0], true, &got), ACK_ADVANCED);
    ck_assert_ptr_eq(got, &owner_token);
    ck_assert_uint_eq(tr.acked.offset, 100);
    ck_assert_uint_eq(tr.acked.seq, 1);
    ck_assert_int_eq(tr.acked.prev[0], 1);
    ck_assert_uint_eq(ack_tracker_oldest_ms(&tr), 1001);
    ck_assert_int_eq(ack_tracker_delivered(m[1], true, NULL), ACK_ADVANCED);
    ck_assert_int_eq(ack_tracker_delivered(m[2], true, NULL), ACK_ADVANCED);
    ck_assert_uint_eq(tr.acked.offset, 300);
    ck_assert_uint_eq(tr.acked.seq, 3);
    ck_assert_uint_eq(tr.n, 0);
    ck_assert_uint_eq(ack_tracker_oldest_ms(&tr), 0);
}
END_TEST

START_TEST(test_out_of_order_waits_for_gap)
{
    struct ack_tracker tr;
    start(&tr);
    struct ack_msg *m[4];
    for (int i = 0; i < 4; i++)
        ack_tracker_push(&tr, m[i] = msg((uint64_t)i));
    ck_assert_int_eq(ack_tracker_delivered(m[2], true, NULL), ACK_NONE);
    ck_assert_int_eq(ack_tracker_delivered(m[1], true, NULL), ACK_NONE);
    ck_assert_uint_eq(tr.acked.seq, 0); /* seq 0 still missing */
    ck_assert_uint_eq(tr.acked.offset, 0);
    ck_assert_int_eq(tr.acked.prev[0], 0xee);
    ck_assert_int_eq(ack_tracker_delivered(m[0], true, NULL), ACK_ADVANCED);
    ck_assert_uint_eq(tr.acked.seq, 3);
    ck_assert_uint_eq(tr.acked.offset, 300);
    ck_assert_int_eq(tr.acked.prev[0], 3);
    ck_assert_int_eq(ack_tracker_delivered(m[3], true, NULL), ACK_ADVANCED);
    ck_assert_uint_eq(tr.acked.seq, 4);
}
END_TEST

START_TEST(test_failure_never_advances)
{
    struct ack_tracker tr;
    start(&tr);
    struct ack_msg *m[5];
    for (int i = 0; i < 5; i++)
        ack_tracker_push(&tr, m[i] = msg((uint64_t)i));
    ck_assert_int_eq(ack_tracker_delivered(m[0], true, NULL), ACK_ADVANCED);
    ck_assert_int_eq(ack_tracker_delivered(m[3], true, NULL), ACK_NONE); /* acked early */
    void *got;
    ck_assert_int_eq(ack_tracker_delivered(m[1], false, &got), ACK_REWIND);
    ck_assert_ptr_eq(got, &owner_token);
    ck_assert_uint_eq(tr.acked.seq, 1); /* the failed one and all after are re-read */
    ck_assert_uint_eq(tr.acked.offset, 100);
    ck_assert_uint_eq(tr.n, 0);
    /* the others are orphans now: their reports (ok or not) change nothing */
    ck_assert_int_eq(ack_tracker_delivered(m[2], true, &got), ACK_NONE);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(ack_tracker_delivered(m[4], false, &got), ACK_NONE);
    ck_assert_ptr_null(got);
    ck_assert_uint_eq(tr.acked.seq, 1);
    /* re-sent records are tracked again from the prefix */
    struct ack_msg *r1 = msg(1), *r2 = msg(2);
    ack_tracker_push(&tr, r1);
    ack_tracker_push(&tr, r2);
    ck_assert_int_eq(ack_tracker_delivered(r2, true, NULL), ACK_NONE);
    ck_assert_int_eq(ack_tracker_delivered(r1, true, NULL), ACK_ADVANCED);
    ck_assert_uint_eq(tr.acked.seq, 3);
    ck_assert_uint_eq(tr.acked.offset, 300);
}
END_TEST

START_TEST(test_orphan_all)
{
    struct ack_tracker tr;
    start(&tr);
    struct ack_msg *a = msg(0), *b = msg(1);
    ack_tracker_push(&tr, a);
    ack_tracker_push(&tr, b);
    ck_assert_int_eq(ack_tracker_delivered(b, true, NULL), ACK_NONE);
    ack_tracker_orphan_all(&tr); /* frees b (already reported), orphans a */
    ck_assert_uint_eq(tr.n, 0);
    ck_assert_ptr_null(tr.head);
    void *got = &owner_token;
    ck_assert_int_eq(ack_tracker_delivered(a, true, &got), ACK_NONE);
    ck_assert_ptr_null(got);
    ck_assert_uint_eq(tr.acked.seq, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_ack_tracker");
    TCase *tc = tcase_create("ack_tracker");
    tcase_add_test(tc, test_in_order);
    tcase_add_test(tc, test_out_of_order_waits_for_gap);
    tcase_add_test(tc, test_failure_never_advances);
    tcase_add_test(tc, test_orphan_all);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
