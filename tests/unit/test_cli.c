/* The operator CLI against a real in-process HTTP server (common/httpd). */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/httpd.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static atomic_bool ready_flag;

static bool ready_cb(void *ud, char *reason, size_t len)
{
    (void)ud;
    if (!atomic_load(&ready_flag)) {
        snprintf(reason, len, "postgres breaker open");
        return false;
    }
    return true;
}

/* Run program `prog` with args; its exit status, stdout (and stderr when
 * with_err) in *out (heap). */
static int run_prog(const char *prog, const char *args, bool with_err, char **out)
{
    char *bin = test_bin(prog);
    char *cmd = xasprintf("%s %s %s", bin, args, with_err ? "2>&1" : "2>/dev/null");
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    free(cmd);
    free(bin);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_cli(const char *args, char **out)
{
    return run_prog("auditrail", args, false, out);
}

static struct httpd *srv;
static struct metrics *reg;
static char url[64];

static void setup(void)
{
    reg = metrics_new();
    metric_add(metrics_counter(reg, "auditrail_test_records_total", "records", NULL), 7);
    metric_set(metrics_gauge(reg, "auditrail_other_gauge", "g", NULL), 3);
    struct httpd_conf c = {.listen = "127.0.0.1:0", .metrics = reg, .ready = ready_cb};
    char err[256];
    srv = httpd_start(&c, err, sizeof(err));
    ck_assert_msg(srv != NULL, "%s", err);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", httpd_port(srv));
    atomic_store(&ready_flag, true);
}

static void teardown(void)
{
    httpd_stop(srv);
    metrics_free(reg);
}

START_TEST(health_ready_and_not_ready)
{
    char *out;
    char *args = xasprintf("--url %s health", url);
    ck_assert_int_eq(run_cli(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "readyz  200"));
    free(out);
    atomic_store(&ready_flag, false);
    ck_assert_int_eq(run_cli(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "readyz  503"));
    ck_assert_ptr_nonnull(strstr(out, "postgres breaker open"));
    free(out);
    free(args);
}
END_TEST

START_TEST(health_unreachable_exits_2)
{
    char *out;
    /* Port 1 on loopback: nothing listens there. */
    ck_assert_int_eq(run_cli("--url http://127.0.0.1:1 health", &out), 2);
    free(out);
}
END_TEST

START_TEST(metrics_filtered_by_prefix)
{
    char *out;
    char *args = xasprintf("--url %s metrics auditrail_test", url);
    ck_assert_int_eq(run_cli(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "auditrail_test_records_total 7"));
    ck_assert_ptr_null(strstr(out, "auditrail_other_gauge"));
    free(out);
    free(args);
}
END_TEST

START_TEST(unknown_command_and_missing_config)
{
    char *out;
    ck_assert_int_eq(run_cli("frobnicate", &out), 2);
    free(out);
    ck_assert_int_eq(run_cli("migrate", &out), 2);
    free(out);
}
END_TEST

/* ---- the skeleton the three programs share (common/prog.c) ---- */

static const char *const programs[] = {"auditrail", "auditrail-agent", "auditrail-aggregator"};

static char *version_file(void)
{
    char *path = xasprintf("%s/VERSION", test_repo_root());
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char v[64] = "";
    ck_assert_ptr_nonnull(fgets(v, sizeof(v), f));
    fclose(f);
    free(path);
    v[strcspn(v, "\n")] = '\0';
    ck_assert_uint_gt(strlen(v), 0);
    return xstrdup(v);
}

START_TEST(version_help_and_bad_options)
{
    char *v = version_file(), *out;
    for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
        char *want = xasprintf("%s %s\n", programs[i], v);
        ck_assert_int_eq(run_prog(programs[i], "--version", false, &out), 0);
        ck_assert_str_eq(out, want);
        free(out);
        free(want);
        ck_assert_int_eq(run_prog(programs[i], "--help", false, &out), 0);
        ck_assert_msg(strncmp(out, "usage: ", 7) == 0, "%s", out);
        free(out);
        ck_assert_int_eq(run_prog(programs[i], "--no-such-option", false, &out), 2);
        free(out);
    }
    free(v);
    /* The CLI has no configuration of its own to check. */
    ck_assert_int_eq(run_cli("--check-config", &out), 2);
    free(out);
}
END_TEST

/* README: --check-config exits 0 on a valid file, 2 with one error line
 * "PROGRAM: FILE:LINE: key: what" on an invalid one. */
START_TEST(check_config_contract)
{
    char *dir = test_tmpdir("cli-check");
    char *agent = xasprintf("%s/agent.yaml", dir), *aggr = xasprintf("%s/aggregator.yaml", dir);
    const char *agent_ok = "agent:\n  inputs:\n    - path: /tmp/*.log\nkafka:\n  brokers: k:1\n";
    const char *aggr_bad = "kafka:\n  brokers: k:1\npostgres:\n  primary: x\nbreaker:\n"
                           "  window: 4\n  min_calls: 5\n";
    test_write_file(agent, agent_ok, strlen(agent_ok), false);
    test_write_file(aggr, aggr_bad, strlen(aggr_bad), false);
    char *out, *args = xasprintf("--config %s --check-config", agent);
    ck_assert_int_eq(run_prog("auditrail-agent", args, true, &out), 0);
    char *want = xasprintf("%s: configuration ok\n", agent);
    ck_assert_str_eq(out, want);
    free(want);
    free(out);
    free(args);
    args = xasprintf("--check-config --config %s", aggr);
    ck_assert_int_eq(run_prog("auditrail-aggregator", args, true, &out), 2);
    want = xasprintf("auditrail-aggregator: %s:7: breaker.min_calls: must be <= breaker.window\n",
                     aggr);
    ck_assert_str_eq(out, want);
    free(want);
    free(out);
    free(args);
    /* Without --config: a usage error. */
    ck_assert_int_eq(run_prog("auditrail-agent", "--check-config", false, &out), 2);
    free(out);
    ck_assert_int_eq(run_prog("auditrail-aggregator", "migrate", false, &out), 2);
    free(out);
    /* Subcommand arguments are checked before anything runs. */
    args = xasprintf("--config %s replay 1 x", aggr);
    ck_assert_int_eq(run_prog("auditrail-aggregator", args, false, &out), 2);
    free(out);
    free(args);
    args = xasprintf("--config %s --role reader", aggr);
    ck_assert_int_eq(run_prog("auditrail-aggregator", args, false, &out), 2);
    free(out);
    free(args);
    test_rmtree(dir);
    free(agent);
    free(aggr);
    free(dir);
}
END_TEST

START_TEST(metrics_reference_lists_families)
{
    char *out;
    ck_assert_int_eq(run_prog("auditrail-agent", "--metrics-reference", false, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "# TYPE auditrail_agent_records_lost_total counter"));
    free(out);
    ck_assert_int_eq(run_prog("auditrail-aggregator", "--metrics-reference", false, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "# TYPE auditrail_aggregator_consumer_lag gauge"));
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, health_ready_and_not_ready);
    tcase_add_test(tc, health_unreachable_exits_2);
    tcase_add_test(tc, metrics_filtered_by_prefix);
    tcase_add_test(tc, unknown_command_and_missing_config);
    suite_add_tcase(s, tc);
    TCase *pt = tcase_create("programs");
    tcase_add_test(pt, version_help_and_bad_options);
    tcase_add_test(pt, check_config_contract);
    tcase_add_test(pt, metrics_reference_lists_families);
    suite_add_tcase(s, pt);
    return test_run_suite(s);
}
