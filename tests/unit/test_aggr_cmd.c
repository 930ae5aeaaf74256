/* The aggregator subcommands' argument helpers (aggregator/cmd.h): time
 * arguments, absolute and relative. */
#include "aggregator/cmd.h"
#include "tests/support/testutil.h"

#define NOW INT64_C(1795651200000000) /* 2026-11-26T00:00:00Z */

START_TEST(time_arguments)
{
    int64_t t = 0;
    ck_assert_int_eq(cmd_parse_time("2026-11-26T01:00:00Z", NOW, &t), 0);
    ck_assert_int_eq(t, NOW + INT64_C(3600000000));
    ck_assert_int_eq(cmd_parse_time("2026-11-26T01:00:00.5+01:00", NOW, &t), 0);
    ck_assert_int_eq(t, NOW + INT64_C(500000));
    ck_assert_int_eq(cmd_parse_time("-24h", NOW, &t), 0);
    ck_assert_int_eq(t, NOW - INT64_C(86400000000));
    ck_assert_int_eq(cmd_parse_time("-90m", NOW, &t), 0);
    ck_assert_int_eq(t, NOW - INT64_C(5400000000));
    ck_assert_int_eq(cmd_parse_time("-7d", NOW, &t), 0);
    ck_assert_int_eq(t, NOW - 7 * INT64_C(86400000000));
    ck_assert_int_eq(cmd_parse_time("-30s", NOW, &t), 0);
    ck_assert_int_eq(t, NOW - INT64_C(30000000));
    ck_assert_int_eq(cmd_parse_time("now", NOW, &t), 0);
    ck_assert_int_eq(t, NOW);
    const char *bad[] = {"",
                         "-",
                         "-h",
                         "-24",
                         "-24x",
                         "-24hh",
                         "+24h",
                         "yesterday",
                         "-99999999999999999999d",
                         "2026-13-01T00:00:00Z",
                         NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(cmd_parse_time(bad[i], NOW, &t) == -1, "accepted \"%s\"", bad[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggr_cmd");
    TCase *tc = tcase_create("cmd");
    tcase_add_test(tc, time_arguments);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
