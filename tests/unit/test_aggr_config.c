/* The aggregator's config table: defaults, required keys, cross checks. */
#include <stdlib.h>
#include <string.h>

#include "aggregator/aggr_config.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static const char *minimal = "kafka:\n  brokers: k:9092\npostgres:\n  primary: host=pg\n";

START_TEST(defaults)
{
    struct aggr_config c = {0};
    char err[512];
    ck_assert_msg(aggr_config_load_string(&c, minimal, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(c.kafka.topic, "audit.events");
    ck_assert_str_eq(c.kafka.dlq_topic, "audit.events.dlq");
    ck_assert_str_eq(c.kafka.group, "auditrail-aggregator");
    ck_assert_int_eq(c.batch.max_events, 5000);
    ck_assert_int_eq(c.batch.max_bytes, 16 << 20);
    ck_assert_int_eq(c.batch.max_ms, 50);
    ck_assert_int_eq(c.dedupe.lru_size, 1000000);
    ck_assert_int_eq(c.dedupe.redis_ttl_s, 86400);
    ck_assert_int_eq(c.partitions.premake, 7);
    ck_assert_int_eq(c.partitions.retention_days, 2190);
    ck_assert(!c.partitions.retention_keep_table);
    ck_assert_int_eq(c.partitions.maintenance_interval_s, 300);
    ck_assert_ptr_null(c.redis.url);
    struct breaker_conf bc, def;
    aggr_config_breaker(&c, &bc);
    breaker_conf_default(&def);
    ck_assert_uint_eq(bc.window, def.window);
    ck_assert_uint_eq(bc.min_calls, def.min_calls);
    ck_assert_uint_eq(bc.failure_rate_pct, def.failure_rate_pct);
    ck_assert_uint_eq(bc.consecutive_failures, def.consecutive_failures);
    ck_assert_uint_eq(bc.open_base_ms, def.open_base_ms);
    ck_assert_uint_eq(bc.open_max_ms, def.open_max_ms);
    aggr_config_free(&c);
}
END_TEST

START_TEST(primary_required)
{
    struct aggr_config c = {0};
    char err[512] = "";
    ck_assert_int_eq(aggr_config_load_string(&c, "kafka:\n  brokers: k:9092\n", err, sizeof(err)),
                     -1);
    ck_assert_msg(strstr(err, "postgres.primary") || strstr(err, "primary"), "%s", err);
    aggr_config_free(&c);
}
END_TEST

/* The required keys, then `rest`. */
#define BASE "kafka:\n  brokers: k:9092\npostgres:\n  primary: x\n"

/* Loading BASE + rest fails with a message starting with `want`. */
static void expect_err(const char *rest, const char *want)
{
    struct aggr_config c = {0};
    char err[512] = "", *y = xasprintf(BASE "%s", rest);
    ck_assert_int_eq(aggr_config_load_string(&c, y, err, sizeof(err)), -1);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "want '%s...', got '%s'", want, err);
    ck_assert_msg(strstr(err, "s3cret") == NULL, "value echoed: %s", err);
    aggr_config_free(&c);
    free(y);
}

/* Loading BASE + rest succeeds; the caller frees c. */
static void expect_ok(const char *rest, struct aggr_config *c)
{
    char err[512] = "", *y = xasprintf(BASE "%s", rest);
    memset(c, 0, sizeof(*c));
    ck_assert_msg(aggr_config_load_string(c, y, err, sizeof(err)) == 0, "%s", err);
    free(y);
}

START_TEST(unknown_key_rejected)
{
    expect_err("batch:\n  max_event: 5\n", "config:6: batch.max_event: unknown key");
}
END_TEST

START_TEST(dlq_must_differ)
{
    struct aggr_config c = {0};
    char err[512] = "";
    const char *y =
        "kafka:\n  brokers: k:9092\n  topic: a\n  dlq_topic: a\npostgres:\n  primary: x\n";
    ck_assert_int_eq(aggr_config_load_string(&c, y, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "config:4: kafka.dlq_topic: must differ from kafka.topic");
    aggr_config_free(&c);
}
END_TEST

START_TEST(breaker_cross_check)
{
    expect_err("breaker:\n  window: 4\n  min_calls: 5\n",
               "config:7: breaker.min_calls: must be <= breaker.window");
    /* A default on one side: the line of the key the file has... */
    expect_err("breaker:\n  open_max_ms: 100\n",
               "config:6: breaker.open_base_ms: must be <= breaker.open_max_ms");
    /* ...or the variable that set it. */
    setenv("AUDITRAIL_BREAKER_OPEN_BASE_MS", "200", 1);
    expect_err("breaker:\n  open_max_ms: 100\n",
               "AUDITRAIL_BREAKER_OPEN_BASE_MS: must be <= breaker.open_max_ms");
    unsetenv("AUDITRAIL_BREAKER_OPEN_BASE_MS");
}
END_TEST

START_TEST(sizes_and_lists)
{
    struct aggr_config c = {0};
    char err[512] = "";
    char *y = "kafka:\n  brokers: [a:1, b:2]\npostgres:\n  primary: x\n  replicas: [r1, r2]\n"
              "batch:\n  max_bytes: 1MiB\nredis:\n  url: redis://h:6379/0\n";
    ck_assert_msg(aggr_config_load_string(&c, y, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(c.batch.max_bytes, 1 << 20);
    ck_assert_uint_eq(c.kafka.brokers.n, 2);
    ck_assert_uint_eq(c.postgres.replicas.n, 2);
    ck_assert_str_eq(c.redis.url, "redis://h:6379/0");
    aggr_config_free(&c);
}
END_TEST

/* README's breaker table: either trip may be turned off with 0, not both. */
START_TEST(breaker_trips_can_be_off)
{
    struct aggr_config c;
    struct breaker_conf bc;
    expect_ok("breaker:\n  failure_rate_pct: 0\n", &c);
    aggr_config_breaker(&c, &bc);
    ck_assert_uint_eq(bc.failure_rate_pct, 0);
    ck_assert_uint_eq(bc.consecutive_failures, 3);
    aggr_config_free(&c);
    expect_ok("breaker:\n  consecutive_failures: 0\n", &c);
    aggr_config_breaker(&c, &bc);
    ck_assert_uint_eq(bc.consecutive_failures, 0);
    aggr_config_free(&c);
    expect_err("breaker:\n  consecutive_failures: 0\n  failure_rate_pct: 0\n",
               "config:6: breaker.consecutive_failures: 0 (off) needs ");
}
END_TEST

/* "String values are never echoed": bad values are named, not quoted. */
START_TEST(values_checked_not_echoed)
{
    expect_err("log:\n  level: s3cret\n",
               "config:6: log.level: expected debug, info, warn or error");
    expect_err("alerts:\n  url: ftp://s3cret@am/\n",
               "config:6: alerts.url: expected an http:// or https:// URL");
}
END_TEST

START_TEST(http_default_differs_from_agent)
{
    struct aggr_config c;
    expect_ok("", &c);
    ck_assert_str_eq(c.http.listen, "127.0.0.1:9200");
    aggr_config_free(&c);
}
END_TEST

/* Issue 9 item 8: the alerts section was in the table twice, so the loader
 * read it twice and every configured header and label was sent twice. */
START_TEST(alerts_section_read_once)
{
    struct aggr_config c;
    expect_ok("alerts:\n  url: http://am:9093/api/v2/alerts\n"
              "  headers: {Authorization: Bearer t}\n  labels: {cluster: eu}\n",
              &c);
    ck_assert_uint_eq(c.alerts.headers.n, 1);
    ck_assert_str_eq(c.alerts.headers.keys[0], "Authorization");
    ck_assert_uint_eq(c.alerts.labels.n, 1);
    aggr_config_free(&c);
    size_t sections = 0;
    for (const struct cfg_key *k = aggr_config_keys; k->name; k++)
        sections += strcmp(k->name, "alerts") == 0;
    ck_assert_uint_eq(sections, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggr_config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, primary_required);
    tcase_add_test(tc, unknown_key_rejected);
    tcase_add_test(tc, dlq_must_differ);
    tcase_add_test(tc, breaker_cross_check);
    tcase_add_test(tc, sizes_and_lists);
    tcase_add_test(tc, alerts_section_read_once);
    tcase_add_test(tc, breaker_trips_can_be_off);
    tcase_add_test(tc, values_checked_not_echoed);
    tcase_add_test(tc, http_default_differs_from_agent);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
