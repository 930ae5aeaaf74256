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

/* Run the CLI with args; return its exit status and its stdout (heap). */
static int run_cli(const char *args, char **out)
{
    char *bin = test_bin("auditrail");
    char *cmd = xasprintf("%s %s 2>/dev/null", bin, args);
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
    return test_run_suite(s);
}
