/* aggregator/offset_reset: every way a partition's log can stop holding our
 * position is a named reset, read again from the log start; a position back
 * inside the log is no reset at all. */
#include "aggregator/offset_reset.h"
#include "tests/support/testutil.h"

START_TEST(kinds_and_restart_points)
{
    int64_t restart = -7, skipped = -7;
    /* topic recreated: stored 1000, the new log holds [0, 3) */
    ck_assert_int_eq(offset_reset_classify(1000, 0, 3, false, &restart, &skipped),
                     OFFSET_RESET_LOG_END);
    ck_assert_int_eq(restart, 0);
    ck_assert_int_eq(skipped, 0);
    /* truncated by an unclean election: [0, 950) */
    ck_assert_int_eq(offset_reset_classify(1000, 0, 950, false, &restart, &skipped),
                     OFFSET_RESET_LOG_END);
    ck_assert_int_eq(restart, 0);
    /* retention deleted 500 unread offsets: [1500, 2000) */
    ck_assert_int_eq(offset_reset_classify(1000, 1500, 2000, false, &restart, &skipped),
                     OFFSET_RESET_LOG_START);
    ck_assert_int_eq(restart, 1500);
    ck_assert_int_eq(skipped, 500);
    /* a message below our position without an error */
    ck_assert_int_eq(offset_reset_classify(10, 5, 2000, true, &restart, &skipped),
                     OFFSET_RESET_BACKWARDS);
    ck_assert_int_eq(restart, 5);
    ck_assert_int_eq(skipped, 0);
    /* inside the log again (at the end exactly is inside: the next offset) */
    ck_assert_int_eq(offset_reset_classify(3, 0, 3, false, &restart, &skipped), OFFSET_RESET_NONE);
    ck_assert_int_eq(restart, 3);
    ck_assert_int_eq(offset_reset_classify(0, 0, 3, false, &restart, &skipped), OFFSET_RESET_NONE);
    ck_assert_int_eq(restart, 0);
}
END_TEST

START_TEST(names)
{
    ck_assert_str_eq(offset_reset_kind_name(OFFSET_RESET_LOG_END), "log_end");
    ck_assert_str_eq(offset_reset_kind_name(OFFSET_RESET_LOG_START), "log_start");
    ck_assert_str_eq(offset_reset_kind_name(OFFSET_RESET_BACKWARDS), "backwards");
    ck_assert_str_eq(offset_reset_kind_name(OFFSET_RESET_NONE), "none");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggr_offset_reset");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, kinds_and_restart_points);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
