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
#include "tests/support/aggr_harness.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

static char *agent_config(const char *dir, const char *topic, int port)
{
    char *path = xasprintf("%s/agent.yaml", dir);
    char *yaml = xasprintf("agent:\n"
                           "  source_name: e2e/%s\n"
                           "  checkpoint_dir: %s/checkpoints\n"
                           "  read_from: beginning\n"
                           "  inputs:\n"
                           "    - path: %s/logs/*.log\n"
                           "      format: json\n"
                           "kafka:\n"
                           "  brokers: \"%s\"\n"
                           "  topic: %s\n"
                           "http:\n"
                           "  listen: 127.0.0.1:%d\n"
                           "log:\n"
                           "  level: info\n",
                           topic, dir, dir, test_stack("STACK_KAFKA_BROKERS"), topic, port);
    test_write_file(path, yaml, strlen(yaml), false);
    free(yaml);
    return path;
}

static void write_lines(const char *path, int from, int to)
{
    for (int i = from; i < to; i++) {
        char line[256];
        int n = snprintf(line, sizeof(line),
                         "{\"ts\":\"2026-11-26T10:00:%02d.%06dZ\",\"tenant\":\"t1\",\"actor\":"
                         "\"dr.%d\",\"action\":\"read\",\"resource\":\"Patient/%d\",\"outcome\":"
                         "\"success\"}\n",
                         i % 60, i, i % 17, i);
        test_write_file(path, line, (size_t)n, true);
    }
}

START_TEST(agent_to_postgres_exactly_once)
{
    char *db = test_pg_fresh_db("e2e_pipe");
    char *topic = test_kafka_topic("e2e_pipe", 2);
    char *dlq = test_kafka_topic("dlq", 1);
    char *dir = test_tmpdir("e2e_pipe");
    char *logs = xasprintf("%s/logs", dir), *cps = xasprintf("%s/checkpoints", dir);
    ck_assert_int_eq(mkdir(logs, 0755), 0);
    ck_assert_int_eq(mkdir(cps, 0755), 0);
    char *file = xasprintf("%s/app-1.log", logs);
    int aport = th_free_port(), gport = th_free_port();
    char *acfg = agent_config(dir, topic, aport);
    char *gcfg = th_aggr_config(dir, "aggregator.yaml", db, topic, dlq, topic, NULL, gport, NULL);
    char *alog = xasprintf("%s/agent.log", dir), *glog = xasprintf("%s/aggregator.log", dir);
    const int n = 2000;

    write_lines(file, 0, n / 2);
    struct th_aggr *g = th_aggr_start(gcfg, glog, gport);
    struct th_aggr *a = th_proc_start("auditrail-agent", acfg, alog, aport);
    ck_assert_int_eq(th_wait_rows(db, n / 2, 90000), n / 2);

    /* More lines, and the agent dies without a clean shutdown. */
    write_lines(file, n / 2, n);
    ck_assert(th_wait_rows(db, n / 2 + 1, 60000) > n / 2);
    ck_assert_int_eq(th_aggr_stop(a, SIGKILL, 10000), 128 + SIGKILL);
    a = th_proc_start("auditrail-agent", acfg, alog, aport);
    ck_assert_int_eq(th_wait_rows(db, n, 90000), n);

    th_assert_exactly_once(db, n);
    /* Byte for byte: the stored raw record is the line without its \n. */
    PGconn *c = test_pg_connect(db);
    char *bad = test_pg_scalar(
        c, "SELECT count(*) FROM auditrail.events WHERE convert_from(raw, 'UTF8') <> "
           "format('{\"ts\":\"2026-11-26T10:00:%s.%sZ\",\"tenant\":\"t1\",\"actor\":\"dr.%s\","
           "\"action\":\"read\",\"resource\":\"Patient/%s\",\"outcome\":\"success\"}', "
           "lpad((seq % 60)::text, 2, '0'), lpad(seq::text, 6, '0'), seq % 17, seq)");
    ck_assert_str_eq(bad, "0");
    free(bad);
    /* The event time is the agent's (the payload's ts), not the aggregator's clock. */
    char *t = test_pg_scalar(c, "SELECT count(*) FROM auditrail.events WHERE event_time <> "
                                "'2026-11-26T10:00:00Z'::timestamptz + make_interval(secs => "
                                "(seq % 60) + seq / 1e6)");
    ck_assert_str_eq(t, "0");
    free(t);
    PQfinish(c);

    ck_assert_int_eq(th_aggr_stop(a, SIGTERM, 30000), 0);
    ck_assert_int_eq(th_aggr_stop(g, SIGTERM, 30000), 0);
    test_pg_drop_db(db);
    if (!getenv("KEEP_LOGS"))
        test_rmtree(dir);
    free(db);
    free(topic);
    free(dlq);
    free(dir);
    free(logs);
    free(cps);
    free(file);
    free(acfg);
    free(gcfg);
    free(alog);
    free(glog);
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
