/* common/kafka_conf: brokers and kafka.properties reach librdkafka, the
 * program's defaults yield to the properties and its forced settings do not,
 * producers skip consumer-only properties, and a refused property is named
 * without its value. */
#include <string.h>

#include "common/kafka_conf.h"
#include "tests/support/testutil.h"

static char *keys[8], *vals[8];

/* A kafka section with the given brokers and NULL-terminated name/value
 * pairs as kafka.properties (static storage: one per test). */
static struct kafka_conf section(const char *const *props)
{
    static char *brokers[] = {"a:1", "b:2"};
    struct kafka_conf k = {.brokers = {brokers, 2}, .topic = "t", .group = "g"};
    size_t n = 0;
    for (; props && props[2 * n]; n++) {
        keys[n] = (char *)props[2 * n];
        vals[n] = (char *)props[2 * n + 1];
    }
    k.properties.keys = keys;
    k.properties.vals = vals;
    k.properties.n = n;
    return k;
}

/* The value librdkafka holds for name (static buffer). */
static const char *get(rd_kafka_conf_t *c, const char *name)
{
    static char v[512];
    size_t n = sizeof(v);
    ck_assert_int_eq(rd_kafka_conf_get(c, name, v, &n), RD_KAFKA_CONF_OK);
    return v;
}

START_TEST(properties_pass_through)
{
    static const char *const props[] = {
        "linger.ms", "42", "session.timeout.ms", "6000", "client.id", "mine", NULL};
    struct kafka_conf k = section(props);
    static const struct kafka_prop defaults[] = {
        {"client.id", "default-id"}, {"batch.num.messages", "777"}, {NULL, NULL}};
    static const struct kafka_prop forced[] = {
        {"group.id", "forced-group"}, {"linger.ms", "5"}, {NULL, NULL}};
    char err[256] = "";
    rd_kafka_conf_t *c = kafka_conf_new(&k, KAFKA_CONSUMER, defaults, forced, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(get(c, "bootstrap.servers"), "a:1,b:2");
    ck_assert_str_eq(get(c, "session.timeout.ms"), "6000");
    ck_assert_str_eq(get(c, "client.id"), "mine");         /* a property beats a default */
    ck_assert_str_eq(get(c, "batch.num.messages"), "777"); /* an untouched default stays */
    ck_assert_str_eq(get(c, "linger.ms"), "5");            /* a forced setting beats a property */
    ck_assert_str_eq(get(c, "group.id"), "forced-group");
    rd_kafka_conf_destroy(c);
}
END_TEST

START_TEST(producer_skips_consumer_only)
{
    static const char *const props[] = {"session.timeout.ms",
                                        "6000",
                                        "fetch.wait.max.ms",
                                        "7",
                                        "heartbeat.interval.ms",
                                        "700",
                                        "linger.ms",
                                        "42",
                                        NULL};
    struct kafka_conf k = section(props);
    char err[256] = "";
    rd_kafka_conf_t *fresh = rd_kafka_conf_new();
    char want_session[64], want_fetch[64], want_reset[64];
    snprintf(want_session, sizeof(want_session), "%s", get(fresh, "session.timeout.ms"));
    snprintf(want_fetch, sizeof(want_fetch), "%s", get(fresh, "fetch.wait.max.ms"));
    snprintf(want_reset, sizeof(want_reset), "%s", get(fresh, "heartbeat.interval.ms"));
    rd_kafka_conf_destroy(fresh);
    ck_assert_str_ne(want_session, "6000");

    rd_kafka_conf_t *p = kafka_conf_new(&k, KAFKA_PRODUCER, NULL, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_str_eq(get(p, "linger.ms"), "42");
    ck_assert_str_eq(get(p, "session.timeout.ms"), want_session);
    ck_assert_str_eq(get(p, "fetch.wait.max.ms"), want_fetch);
    ck_assert_str_eq(get(p, "heartbeat.interval.ms"), want_reset);
    rd_kafka_conf_destroy(p);

    /* The consumer gets all of them. */
    rd_kafka_conf_t *c = kafka_conf_new(&k, KAFKA_CONSUMER, NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(get(c, "session.timeout.ms"), "6000");
    ck_assert_str_eq(get(c, "fetch.wait.max.ms"), "7");
    ck_assert_str_eq(get(c, "heartbeat.interval.ms"), "700");
    rd_kafka_conf_destroy(c);

    ck_assert(kafka_conf_consumer_only("fetch.min.bytes"));
    ck_assert(kafka_conf_consumer_only("group.id"));
    ck_assert(!kafka_conf_consumer_only("fetch"));
    ck_assert(!kafka_conf_consumer_only("acks"));
    ck_assert(!kafka_conf_consumer_only("sasl.password"));
}
END_TEST

/* A refused property: NULL, the key named, the value (maybe a secret) not. */
static void assert_refused(const char *name, const char *value, const char *secret)
{
    const char *props[] = {"linger.ms", "1", name, value, NULL};
    struct kafka_conf k = section(props);
    char err[512] = "";
    rd_kafka_conf_t *c = kafka_conf_new(&k, KAFKA_CONSUMER, NULL, NULL, err, sizeof(err));
    ck_assert_ptr_null(c);
    char want[200];
    snprintf(want, sizeof(want), "kafka.properties.%s: ", name);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    ck_assert_msg(strstr(err, secret) == NULL, "value echoed: %s", err);
    ck_assert_msg(strchr(err, '\n') == NULL, "not one line: %s", err);
}

START_TEST(refused_property_names_key_not_value)
{
    assert_refused("no.such.property", "hunter2-secret", "hunter2-secret");
    assert_refused("security.protocol", "hunter2-secret", "hunter2-secret");
    assert_refused("linger.ms", "hunter2-secret", "hunter2-secret");
    /* An enum list refused on one of its items: that item is not shown. */
    assert_refused("debug", "broker,hunter2-secret", "hunter2-secret");

    /* The program's own settings are named by property. */
    struct kafka_conf k = section(NULL);
    static const struct kafka_prop bad[] = {{"acks", "hunter2-secret"}, {NULL, NULL}};
    char err[512] = "";
    ck_assert_ptr_null(kafka_conf_new(&k, KAFKA_PRODUCER, NULL, bad, err, sizeof(err)));
    ck_assert_msg(strncmp(err, "kafka property acks: ", 21) == 0, "%s", err);
    ck_assert_msg(strstr(err, "hunter2-secret") == NULL, "%s", err);
}
END_TEST

START_TEST(log_levels)
{
    ck_assert_int_eq(kafka_conf_log_level(0), LOG_ERROR);
    ck_assert_int_eq(kafka_conf_log_level(3), LOG_ERROR);
    ck_assert_int_eq(kafka_conf_log_level(4), LOG_WARN);
    ck_assert_int_eq(kafka_conf_log_level(5), LOG_INFO);
    ck_assert_int_eq(kafka_conf_log_level(6), LOG_INFO);
    ck_assert_int_eq(kafka_conf_log_level(7), LOG_DEBUG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kafka_conf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, properties_pass_through);
    tcase_add_test(tc, producer_skips_consumer_only);
    tcase_add_test(tc, refused_property_names_key_not_value);
    tcase_add_test(tc, log_levels);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
