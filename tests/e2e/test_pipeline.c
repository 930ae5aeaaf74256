/* End to end on the local stack: lines written to a log file go through
 * auditrail-agent, Kafka and auditrail-aggregator into PostgreSQL byte for
 * byte, exactly once — also when the agent is SIGKILLed and restarted
 * (it re-sends from its checkpoint; the aggregator drops the re-sends). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/xmalloc.h"
#include "tests/support/agent_harness.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/chain.h"
#include "tests/support/store.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define T0_US INT64_C(1795687200000000) /* 2026-11-26T10:00:00Z */

/* Line i without its newline; its ts is T0 + (i % 60) s + i µs. */
static int format_line(char *line, size_t len, int i)
{
    return snprintf(line, len,
                    "{\"ts\":\"2026-11-26T10:00:%02d.%06dZ\",\"tenant\":\"t1\",\"actor\":"
                    "\"dr.%d\",\"action\":\"read\",\"resource\":\"Patient/%d\",\"outcome\":"
                    "\"success\"}",
                    i % 60, i, i % 17, i);
}

static void write_lines(const char *path, int from, int to)
{
    for (int i = from; i < to; i++) {
        char line[256];
        int n = format_line(line, sizeof(line) - 1, i);
        line[n++] = '\n';
        test_write_file(path, line, (size_t)n, true);
    }
}

/* The lines of the file, as chain.h records of the agent's stream: the
 * stream id is the agent's (read from the stored rows), everything else is
 * computed here; times are the payload's "ts". */
static void expected_records(const char *stream, int n, struct trecs *out)
{
    struct tchain c = {.seq = 0};
    snprintf(c.stream, sizeof(c.stream), "%s", stream);
    tchain_genesis(c.stream, c.prev);
    for (int i = 0; i < n; i++) {
        char line[256];
        int len = format_line(line, sizeof(line), i);
        struct trec r;
        tchain_next(&c, line, (size_t)len, T0_US + (int64_t)(i % 60) * 1000000 + i, &r);
        trecs_push(out, &r);
    }
}

START_TEST(agent_to_postgres_exactly_once)
{
    struct th_env e;
    th_env_init(&e, "e2e_pipe", 2);
    struct ah_env a;
    ah_env_init(&a, "e2e_pipe",
                &(struct ah_opts){.agent_extra = "  read_from: beginning\n",
                                  .inputs = "    - path: %s/*.log\n      format: json\n",
                                  .topic = e.topic});
    char *file = ah_path(&a, "app-1.log");
    const int n = 2000;

    write_lines(file, 0, n / 2);
    th_aggr_start(&e, 0);
    ah_start(&a);
    ck_assert(store_wait_rows(e.db, n / 2, 90000));

    /* More lines, and the agent dies without a clean shutdown. */
    write_lines(file, n / 2, n);
    ck_assert(store_wait_rows(e.db, n / 2 + 1, 60000));
    ah_kill(&a);
    ah_start(&a);
    ck_assert(store_wait_rows(e.db, n, 90000));
    /* It re-sent from its checkpoint: let every re-send reach the store. */
    ah_stop(&a);
    th_assert_drained(&e, 60000);

    /* Byte for byte, chained and timed as computed here from the lines. */
    PGconn *c = test_pg_connect(e.db);
    char *stream = test_pg_scalar(c, "SELECT min(stream_id) FROM auditrail.events");
    PQfinish(c);
    ck_assert_ptr_nonnull(stream);
    struct trecs want = {0};
    expected_records(stream, n, &want);
    store_assert_records(e.db, &want);

    th_aggr_stop(&e, 0);
    trecs_release(&want);
    free(stream);
    free(file);
    ah_env_release(&a);
    th_env_release(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline_e2e");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, agent_to_postgres_exactly_once);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
