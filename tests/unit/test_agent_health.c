/* The agent's readiness and liveness rules under an injected clock: a stuck
 * loop fails liveness (and readiness), Kafka's state never fails readiness. */
#include <check.h>
#include <string.h>

#include "agent/agent_health.h"
#include "tests/support/testutil.h"

START_TEST(live_while_the_loop_turns)
{
    char reason[128] = "";
    uint64_t hb = 1000000;
    ck_assert(agent_live_rule(hb, hb, reason, sizeof(reason)));
    ck_assert(agent_live_rule(hb, hb + AGENT_LOOP_STALL_MS, reason, sizeof(reason)));
    ck_assert_str_eq(reason, ""); /* untouched when live */
    /* a clock read before the heartbeat was stored is not a stall */
    ck_assert(agent_live_rule(hb, hb - 5, reason, sizeof(reason)));
}
END_TEST

START_TEST(stalled_loop_fails_liveness)
{
    char reason[128] = "";
    uint64_t hb = 1000000;
    ck_assert(!agent_live_rule(hb, hb + AGENT_LOOP_STALL_MS + 1, reason, sizeof(reason)));
    ck_assert_str_eq(reason, "main loop stalled for 30001 ms");
    /* a heartbeat from the loop makes it live again */
    hb += AGENT_LOOP_STALL_MS + 1;
    ck_assert(agent_live_rule(hb, hb + 100, reason, sizeof(reason)));
}
END_TEST

START_TEST(stalled_loop_fails_readiness)
{
    char reason[128] = "";
    ck_assert(!agent_ready_rule(false, false, 0, AGENT_LOOP_STALL_MS + 7, reason, sizeof(reason)));
    ck_assert_str_eq(reason, "main loop stalled for 30007 ms");
}
END_TEST

START_TEST(ready_whatever_kafka_does)
{
    /* the caller passes starting/fatal only: Kafka down, acknowledgements
     * stalled and backpressure are all "running and reading" */
    char reason[128] = "";
    ck_assert(agent_ready_rule(false, false, 500, 600, reason, sizeof(reason)));
    ck_assert_str_eq(reason, "");
}
END_TEST

START_TEST(not_ready_while_starting_or_after_fatal)
{
    char reason[128];
    ck_assert(!agent_ready_rule(true, false, 500, 600, reason, sizeof(reason)));
    ck_assert_str_eq(reason, "starting");
    ck_assert(!agent_ready_rule(false, true, 500, 600, reason, sizeof(reason)));
    ck_assert_str_eq(reason, "fatal Kafka producer error");
    /* a truncated reason stays a C string */
    char small[6];
    ck_assert(!agent_ready_rule(false, true, 500, 600, small, sizeof(small)));
    ck_assert_str_eq(small, "fatal");
}
END_TEST

static Suite *agent_health_suite(void)
{
    Suite *s = suite_create("agent_health");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, live_while_the_loop_turns);
    tcase_add_test(tc, stalled_loop_fails_liveness);
    tcase_add_test(tc, stalled_loop_fails_readiness);
    tcase_add_test(tc, ready_whatever_kafka_does);
    tcase_add_test(tc, not_ready_while_starting_or_after_fatal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(agent_health_suite());
}
