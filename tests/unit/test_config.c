/* Unit tests for the declarative config loader (common/config.c): every type,
 * every error path with its exact message, env overrides, ${VAR}, lists. */
#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_config.h"
#include "common/conf_common.h"
#include "common/config.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

#define ERRLEN 512

/* ---- a test schema shaped like the agent's ------------------------------- */

struct t_fields {
    char *time;
    char *message;
};

struct t_input {
    char *path;
    char *format;
    bool multiline;
    int64_t max_bytes;
    struct t_fields fields;
};

struct t_agent {
    char *source_name;
    char *checkpoint_dir;
    int64_t max_record_bytes;
    bool follow;
    double ratio;
    struct cfg_list inputs;
};

struct t_deep {
    char *mode;
    int64_t depth;
};

struct t_batch {
    int64_t max_events;
    int64_t max_lag;
    struct cfg_strlist tags;
    struct t_deep deep;
};

struct t_conf {
    struct t_agent agent;
    struct kafka_conf kafka;
    struct http_conf http;
    struct log_conf log;
    struct t_batch batch;
};

static const struct cfg_key t_fields_keys[] = {
    {.name = "time", .type = CFG_STR, .offset = offsetof(struct t_fields, time), .def = "time"},
    {.name = "message",
     .type = CFG_STR,
     .offset = offsetof(struct t_fields, message),
     .def = "message"},
    CFG_END,
};

static const struct cfg_key t_input_keys[] = {
    {.name = "path", .type = CFG_STR, .offset = offsetof(struct t_input, path), .required = true},
    {.name = "format", .type = CFG_STR, .offset = offsetof(struct t_input, format), .def = "raw"},
    {.name = "multiline", .type = CFG_BOOL, .offset = offsetof(struct t_input, multiline)},
    {.name = "max_bytes",
     .type = CFG_INT,
     .offset = offsetof(struct t_input, max_bytes),
     .def = "4KiB"},
    {.name = "fields",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_input, fields),
     .sub = t_fields_keys},
    CFG_END,
};

static const struct cfg_key t_agent_keys[] = {
    {.name = "source_name",
     .type = CFG_STR,
     .offset = offsetof(struct t_agent, source_name),
     .def = "${CFGT_HOST:-localhost}/agent",
     .help = "Source name"},
    {.name = "checkpoint_dir",
     .type = CFG_STR,
     .offset = offsetof(struct t_agent, checkpoint_dir),
     .def = "/var/lib/auditrail"},
    {.name = "max_record_bytes",
     .type = CFG_INT,
     .offset = offsetof(struct t_agent, max_record_bytes),
     .def = "1MiB",
     .min = 1024,
     .max = INT64_C(1) << 30,
     .help = "Longest record | cut beyond"},
    {.name = "follow", .type = CFG_BOOL, .offset = offsetof(struct t_agent, follow), .def = "true"},
    {.name = "ratio", .type = CFG_DOUBLE, .offset = offsetof(struct t_agent, ratio), .def = "1.5"},
    {.name = "inputs",
     .type = CFG_LIST,
     .offset = offsetof(struct t_agent, inputs),
     .sub = t_input_keys,
     .elem_size = sizeof(struct t_input),
     .help = "Files to tail"},
    CFG_END,
};

static const struct cfg_key t_deep_keys[] = {
    {.name = "mode", .type = CFG_STR, .offset = offsetof(struct t_deep, mode), .def = "slow"},
    {.name = "depth", .type = CFG_INT, .offset = offsetof(struct t_deep, depth), .def = "3"},
    CFG_END,
};

static const struct cfg_key t_batch_keys[] = {
    {.name = "max_events",
     .type = CFG_INT,
     .offset = offsetof(struct t_batch, max_events),
     .def = "1000",
     .min = 1,
     .max = 100000},
    {.name = "max-lag", .type = CFG_INT, .offset = offsetof(struct t_batch, max_lag), .def = "0"},
    {.name = "tags", .type = CFG_STRLIST, .offset = offsetof(struct t_batch, tags), .def = "x,y"},
    {.name = "deep",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_batch, deep),
     .sub = t_deep_keys},
    CFG_END,
};

static const struct cfg_key t_http_keys[] = HTTP_CONF_KEYS("127.0.0.1:9100");

static const struct cfg_key t_keys[] = {
    {.name = "agent",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_conf, agent),
     .sub = t_agent_keys},
    {.name = "kafka",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_conf, kafka),
     .sub = kafka_conf_keys},
    {.name = "http",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_conf, http),
     .sub = t_http_keys},
    {.name = "log",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_conf, log),
     .sub = log_conf_keys},
    {.name = "batch",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_conf, batch),
     .sub = t_batch_keys},
    CFG_END,
};

/* Every variable a test may set: cleared before and after each test so a
 * stray value from the caller's shell or an earlier test (CK_FORK=no) cannot
 * change an outcome. */
static const char *const t_vars[] = {
    "AUDITRAIL_KAFKA_TOPIC",
    "AUDITRAIL_KAFKA_BROKERS",
    "AUDITRAIL_KAFKA_GROUP",
    "AUDITRAIL_BATCH_MAX_EVENTS",
    "AUDITRAIL_BATCH_MAX_LAG",
    "AUDITRAIL_BATCH_DEEP_MODE",
    "AUDITRAIL_BATCH_TAGS",
    "AUDITRAIL_AGENT_MAX_RECORD_BYTES",
    "AUDITRAIL_AGENT_FOLLOW",
    "AUDITRAIL_AGENT_RATIO",
    "AUDITRAIL_AGENT_SOURCE_NAME",
    "AUDITRAIL_LOG_LEVEL",
    "AUDITRAIL_HTTP_LISTEN",
    "AUDITRAIL_AGENT_INPUTS_PATH",
    "CFGT_HOST",
    "CFGT_POD",
    "CFGT_NS",
    "CFGT_EMPTY",
    "CFGT_BROKERS",
    "CFGT_UNSET",
    "CFGT_SECRET",
    "CFGT_TOPIC",
    "CFGT_FMT",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(t_vars) / sizeof(t_vars[0]); i++)
        unsetenv(t_vars[i]);
}

static struct t_conf conf;
static char err[ERRLEN];

static void setup(void)
{
    clear_env();
    memset(&conf, 0, sizeof(conf));
    memset(err, 0, sizeof(err));
}

static void teardown(void)
{
    cfg_free(t_keys, &conf);
    clear_env();
}

static int load(const char *yaml)
{
    cfg_free(t_keys, &conf);
    return cfg_load_string(t_keys, &conf, yaml, "t.yaml", err, sizeof(err));
}

/* Load must fail with exactly `msg`; conf is freed by teardown (the partly
 * filled struct is what ASan/LSan check). */
#define expect_err(yaml, msg)                                                                      \
    do {                                                                                           \
        ck_assert_int_eq(load(yaml), -1);                                                          \
        ck_assert_str_eq(err, msg);                                                                \
    } while (0)

#define expect_ok(yaml)                                                                            \
    do {                                                                                           \
        int rc_ = load(yaml);                                                                      \
        ck_assert_msg(rc_ == 0, "load failed: %s", err);                                           \
    } while (0)

static char *fixture(const char *name)
{
    return xasprintf("%s/tests/fixtures/config/%s", test_repo_root(), name);
}

#define BROKERS "kafka:\n  brokers: k:9092\n"

/* Regression (fuzz finding config-1): a key with a newline in it must not
 * break the one-line error format. */
START_TEST(test_error_is_one_line_for_control_chars_in_key)
{
    expect_err(BROKERS "\"a\\nb\": 1\n", "t.yaml:3: a?b: unknown key");
}
END_TEST

/* ---- happy path ------------------------------------------------------------ */

START_TEST(test_full_file)
{
    char *path = fixture("full.yaml");
    int rc = cfg_load_file(t_keys, &conf, path, err, sizeof(err));
    free(path);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(conf.agent.source_name, "ns/pod/app");
    ck_assert_str_eq(conf.agent.checkpoint_dir, "/var/lib/auditrail");
    ck_assert_int_eq(conf.agent.max_record_bytes, 64 * 1024);
    ck_assert(conf.agent.follow);
    ck_assert_double_eq(conf.agent.ratio, 0.25);

    ck_assert_uint_eq(conf.agent.inputs.n, 2);
    struct t_input *in = conf.agent.inputs.items;
    ck_assert_str_eq(in[0].path, "/var/log/a/*.log");
    ck_assert_str_eq(in[0].format, "json");
    ck_assert(in[0].multiline);
    ck_assert_int_eq(in[0].max_bytes, 4096);
    ck_assert_str_eq(in[0].fields.time, "ts");
    ck_assert_str_eq(in[0].fields.message, "msg");
    /* the second element gets every default on its own */
    ck_assert_str_eq(in[1].path, "/var/log/b/*.log");
    ck_assert_str_eq(in[1].format, "raw");
    ck_assert(!in[1].multiline);
    ck_assert_int_eq(in[1].max_bytes, 4096);
    ck_assert_str_eq(in[1].fields.time, "time");
    ck_assert_str_eq(in[1].fields.message, "message");

    ck_assert_uint_eq(conf.kafka.brokers.n, 2);
    ck_assert_str_eq(conf.kafka.brokers.v[0], "kafka-0:9092");
    ck_assert_str_eq(conf.kafka.brokers.v[1], "kafka-1:9092");
    ck_assert_str_eq(conf.kafka.topic, "audit.test");
    ck_assert_str_eq(conf.kafka.group, "auditrail-aggregator");
    ck_assert_str_eq(conf.kafka.dlq_topic, "audit.events.dlq");
    ck_assert_uint_eq(conf.kafka.properties.n, 2);
    ck_assert_str_eq(cfg_map_get(&conf.kafka.properties, "security.protocol"), "SSL");
    ck_assert_str_eq(cfg_map_get(&conf.kafka.properties, "linger.ms"), "5");
    ck_assert_ptr_null(cfg_map_get(&conf.kafka.properties, "nope"));
    ck_assert_str_eq(conf.http.listen, "0.0.0.0:9100");
    ck_assert_str_eq(conf.log.level, "info");

    ck_assert_int_eq(conf.batch.max_events, 2000);
    ck_assert_int_eq(conf.batch.max_lag, 1 << 20);
    ck_assert_uint_eq(conf.batch.tags.n, 3);
    ck_assert_str_eq(conf.batch.tags.v[0], "a");
    ck_assert_str_eq(conf.batch.tags.v[1], "b");
    ck_assert_str_eq(conf.batch.tags.v[2], "c");
    ck_assert_str_eq(conf.batch.deep.mode, "fast");
    ck_assert_int_eq(conf.batch.deep.depth, 3);
}
END_TEST

START_TEST(test_defaults_for_absent_sections)
{
    expect_ok(BROKERS);
    ck_assert_str_eq(conf.agent.source_name, "localhost/agent");
    ck_assert_int_eq(conf.agent.max_record_bytes, 1 << 20);
    ck_assert(conf.agent.follow);
    ck_assert_double_eq(conf.agent.ratio, 1.5);
    ck_assert_uint_eq(conf.agent.inputs.n, 0);
    ck_assert_ptr_null(conf.agent.inputs.items);
    ck_assert_str_eq(conf.kafka.topic, "audit.events");
    ck_assert_str_eq(conf.kafka.group, "auditrail-aggregator");
    ck_assert_str_eq(conf.kafka.dlq_topic, "audit.events.dlq");
    ck_assert_uint_eq(conf.kafka.properties.n, 0);
    ck_assert_str_eq(conf.http.listen, "127.0.0.1:9100");
    ck_assert_str_eq(conf.log.level, "info");
    ck_assert_int_eq(conf.batch.max_events, 1000);
    ck_assert_uint_eq(conf.batch.tags.n, 2);
    ck_assert_str_eq(conf.batch.tags.v[1], "y");
    ck_assert_str_eq(conf.batch.deep.mode, "slow");
}
END_TEST

/* A null value (`key:`, `~`) counts as absent: the default applies. */
START_TEST(test_null_value_takes_default)
{
    expect_ok(BROKERS "  topic:\n  group: ~\nhttp:\nagent:\n  inputs:\n");
    ck_assert_str_eq(conf.kafka.topic, "audit.events");
    ck_assert_str_eq(conf.kafka.group, "auditrail-aggregator");
    ck_assert_str_eq(conf.http.listen, "127.0.0.1:9100");
    ck_assert_uint_eq(conf.agent.inputs.n, 0);
    /* quoted, it is a string */
    expect_ok(BROKERS "  topic: \"~\"\n");
    ck_assert_str_eq(conf.kafka.topic, "~");
}
END_TEST

static const struct cfg_key opt_keys[] = {
    {.name = "log", .type = CFG_SECTION, .offset = 0, .sub = log_conf_keys},
    CFG_END,
};

START_TEST(test_empty_document)
{
    struct log_conf lc;
    const char *docs[] = {"", "# nothing\n", "---\n", "~\n"};
    for (size_t i = 0; i < 4; i++) {
        memset(&lc, 0, sizeof(lc));
        int rc = cfg_load_string(opt_keys, &lc, docs[i], "e.yaml", err, sizeof(err));
        ck_assert_msg(rc == 0, "doc %zu: %s", i, err);
        ck_assert_str_eq(lc.level, "info");
        cfg_free(opt_keys, &lc);
        ck_assert_ptr_null(lc.level);
    }
    char *path = fixture("empty.yaml");
    memset(&lc, 0, sizeof(lc));
    int rc = cfg_load_file(opt_keys, &lc, path, err, sizeof(err));
    free(path);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(lc.level, "info");
    cfg_free(opt_keys, &lc);
    /* empty, but the schema has a required key */
    expect_err("", "t.yaml:1: kafka.brokers: missing required key (set it here or in "
                   "AUDITRAIL_KAFKA_BROKERS)");
}
END_TEST

START_TEST(test_aliases)
{
    expect_ok(BROKERS "agent:\n  inputs:\n    - &in {path: /a, format: json}\n    - *in\n");
    ck_assert_uint_eq(conf.agent.inputs.n, 2);
    struct t_input *in = conf.agent.inputs.items;
    ck_assert_str_eq(in[1].path, "/a");
    ck_assert_str_eq(in[1].format, "json");
    ck_assert_ptr_ne(in[0].path, in[1].path); /* copies, not shared */
}
END_TEST

/* ---- types ------------------------------------------------------------------- */

START_TEST(test_int_values)
{
    struct {
        const char *text;
        int64_t want;
    } ok[] = {
        {"2048", 2048},  {"+4096", 4096},   {"0010", 10 * 1024},        {"4KiB", 4096},
        {"4 KiB", 4096}, {"3MiB", 3 << 20}, {"1GiB", INT64_C(1) << 30}, {"\"2KiB\"", 2048},
    };
    char yaml[256];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        /* "0010" is ten, not octal: the range [1024, 1GiB] makes it fail, so
         * read it through a KiB suffix to stay in range */
        const char *suffix = !strcmp(ok[i].text, "0010") ? "KiB" : "";
        snprintf(yaml, sizeof(yaml), BROKERS "agent:\n  max_record_bytes: %s%s\n", ok[i].text,
                 suffix);
        expect_ok(yaml);
        ck_assert_msg(conf.agent.max_record_bytes == ok[i].want, "%s -> %lld", ok[i].text,
                      (long long)conf.agent.max_record_bytes);
    }
    expect_ok(BROKERS "batch:\n  max-lag: -5\n");
    ck_assert_int_eq(conf.batch.max_lag, -5);
}
END_TEST

START_TEST(test_int_bad)
{
    expect_err(BROKERS "batch:\n  max_events: 12KB\n",
               "t.yaml:4: batch.max_events: bad integer \"12KB\"");
    expect_err(BROKERS "batch:\n  max_events: 0x10\n",
               "t.yaml:4: batch.max_events: bad integer \"0x10\"");
    expect_err(BROKERS "batch:\n  max_events: 1.5\n",
               "t.yaml:4: batch.max_events: bad integer \"1.5\"");
    expect_err(BROKERS "batch:\n  max_events: ''\n",
               "t.yaml:4: batch.max_events: bad integer \"\"");
    expect_err(BROKERS "batch:\n  max-lag: 99999999999999999999\n",
               "t.yaml:4: batch.max-lag: bad integer \"99999999999999999999\"");
    /* fits in int64 alone, overflows once multiplied by the suffix */
    expect_err(BROKERS "batch:\n  max-lag: 9000000000000GiB\n",
               "t.yaml:4: batch.max-lag: bad integer \"9000000000000GiB\"");
}
END_TEST

START_TEST(test_int_range)
{
    expect_err(BROKERS "batch:\n  max_events: 0\n",
               "t.yaml:4: batch.max_events: 0 is out of range [1, 100000]");
    expect_err(BROKERS "batch:\n  max_events: 100001\n",
               "t.yaml:4: batch.max_events: 100001 is out of range [1, 100000]");
    expect_err(BROKERS "agent:\n  max_record_bytes: 2GiB\n",
               "t.yaml:4: agent.max_record_bytes: 2147483648 is out of range [1024, 1073741824]");
    expect_ok(BROKERS "batch:\n  max_events: 100000\n");
    ck_assert_int_eq(conf.batch.max_events, 100000);
    expect_ok(BROKERS "batch:\n  max_events: 1\n");
    ck_assert_int_eq(conf.batch.max_events, 1);
}
END_TEST

START_TEST(test_bool_values)
{
    const char *yes[] = {"true", "True", "yes", "YES", "on", "On"};
    const char *no[] = {"false", "FALSE", "no", "No", "off", "OFF"};
    char yaml[256];
    for (size_t i = 0; i < 6; i++) {
        snprintf(yaml, sizeof(yaml), BROKERS "agent:\n  follow: %s\n", no[i]);
        expect_ok(yaml);
        ck_assert_msg(!conf.agent.follow, "%s", no[i]);
        snprintf(yaml, sizeof(yaml), BROKERS "agent:\n  follow: %s\n", yes[i]);
        expect_ok(yaml);
        ck_assert_msg(conf.agent.follow, "%s", yes[i]);
    }
    expect_err(BROKERS "agent:\n  follow: 1\n",
               "t.yaml:4: agent.follow: bad boolean \"1\" (use true/false, yes/no or on/off)");
    expect_err(BROKERS "agent:\n  follow: enabled\n",
               "t.yaml:4: agent.follow: bad boolean \"enabled\" (use true/false, yes/no or "
               "on/off)");
}
END_TEST

START_TEST(test_double_values)
{
    expect_ok(BROKERS "agent:\n  ratio: -2.5e3\n");
    ck_assert_double_eq(conf.agent.ratio, -2500.0);
    expect_ok(BROKERS "agent:\n  ratio: 7\n");
    ck_assert_double_eq(conf.agent.ratio, 7.0);
    expect_err(BROKERS "agent:\n  ratio: fast\n", "t.yaml:4: agent.ratio: bad number \"fast\"");
    expect_err(BROKERS "agent:\n  ratio: 1.5x\n", "t.yaml:4: agent.ratio: bad number \"1.5x\"");
    expect_err(BROKERS "agent:\n  ratio: nan\n", "t.yaml:4: agent.ratio: bad number \"nan\"");
    expect_err(BROKERS "agent:\n  ratio: 1e999\n", "t.yaml:4: agent.ratio: bad number \"1e999\"");
    expect_err(BROKERS "agent:\n  ratio: 0x1p3\n", "t.yaml:4: agent.ratio: bad number \"0x1p3\"");
}
END_TEST

START_TEST(test_string_from_any_scalar)
{
    /* a plain 5 or true is still a string when the key is a string */
    expect_ok(BROKERS "  topic: 5\nlog:\n  level: 'true'\n");
    ck_assert_str_eq(conf.kafka.topic, "5");
    ck_assert_str_eq(conf.log.level, "true");
    expect_ok(BROKERS "  topic: \"\"\n");
    ck_assert_str_eq(conf.kafka.topic, "");
    /* "\0" is valid YAML but would cut a C string short */
    expect_err(BROKERS "  topic: \"a\\0b\"\n", "t.yaml:3: kafka.topic: contains a NUL character");
    expect_err("kafka:\n  brokers: [\"a\\0\"]\n",
               "t.yaml:2: kafka.brokers[0]: contains a NUL character");
    expect_err(BROKERS "  properties: {a: \"\\0\"}\n",
               "t.yaml:3: kafka.properties.a: contains a NUL character");
}
END_TEST

START_TEST(test_strlist_forms)
{
    expect_ok("kafka:\n  brokers: a:1, b:2 ,c:3\n");
    ck_assert_uint_eq(conf.kafka.brokers.n, 3);
    ck_assert_str_eq(conf.kafka.brokers.v[0], "a:1");
    ck_assert_str_eq(conf.kafka.brokers.v[1], "b:2");
    ck_assert_str_eq(conf.kafka.brokers.v[2], "c:3");
    expect_ok("kafka:\n  brokers: [a:1, ' b:2 ']\n");
    ck_assert_uint_eq(conf.kafka.brokers.n, 2);
    ck_assert_str_eq(conf.kafka.brokers.v[1], "b:2");
    /* a sequence item is not split on commas */
    expect_ok("kafka:\n  brokers:\n    - a:1,b:2\n");
    ck_assert_uint_eq(conf.kafka.brokers.n, 1);
    ck_assert_str_eq(conf.kafka.brokers.v[0], "a:1,b:2");
    /* an explicit empty list replaces the default of an optional list */
    expect_ok(BROKERS "batch:\n  tags: []\n");
    ck_assert_uint_eq(conf.batch.tags.n, 0);
    expect_ok(BROKERS "batch:\n  tags: '  '\n");
    ck_assert_uint_eq(conf.batch.tags.n, 0);
}
END_TEST

START_TEST(test_strlist_errors)
{
    expect_err("kafka:\n  brokers: a:1,,b:2\n",
               "t.yaml:2: kafka.brokers: empty item 2 in a comma-separated list");
    expect_err("kafka:\n  brokers: 'a:1, '\n",
               "t.yaml:2: kafka.brokers: empty item 2 in a comma-separated list");
    expect_err("kafka:\n  brokers:\n    - a:1\n    - ' '\n",
               "t.yaml:4: kafka.brokers[1]: empty item");
    expect_err("kafka:\n  brokers:\n    - a:1\n    - {host: b}\n",
               "t.yaml:4: kafka.brokers[1]: expected a string, got a mapping");
    expect_err("kafka:\n  brokers: {a: 1}\n",
               "t.yaml:2: kafka.brokers: expected a list of strings or a comma-separated string, "
               "got a mapping");
    /* required lists must not be empty */
    expect_err("kafka:\n  brokers: []\n", "t.yaml:2: kafka.brokers: must not be empty");
    expect_err("kafka:\n  brokers: ''\n", "t.yaml:2: kafka.brokers: must not be empty");
}
END_TEST

START_TEST(test_map)
{
    expect_ok(BROKERS "  properties:\n    sasl.username: u\n    sasl.password: ${CFGT_SECRET:-pw}\n"
                      "    batch.size: 16384\n");
    ck_assert_uint_eq(conf.kafka.properties.n, 3);
    ck_assert_str_eq(conf.kafka.properties.keys[0], "sasl.username");
    ck_assert_str_eq(cfg_map_get(&conf.kafka.properties, "sasl.username"), "u");
    ck_assert_str_eq(cfg_map_get(&conf.kafka.properties, "sasl.password"), "pw");
    ck_assert_str_eq(cfg_map_get(&conf.kafka.properties, "batch.size"), "16384");
    ck_assert_ptr_null(cfg_map_get(&conf.kafka.properties, "sasl"));
    ck_assert_ptr_null(cfg_map_get(NULL, "x"));

    expect_err(BROKERS "  properties:\n    a: 1\n    b: [1, 2]\n",
               "t.yaml:5: kafka.properties.b: expected a scalar value, got a sequence");
    expect_err(BROKERS "  properties:\n    a: 1\n    a: 2\n",
               "t.yaml:5: kafka.properties.a: duplicate key (first at line 4)");
    expect_err(BROKERS "  properties: [a]\n",
               "t.yaml:3: kafka.properties: expected a mapping, got a sequence");
    expect_err(BROKERS "  properties:\n    [a]: 1\n",
               "t.yaml:4: kafka.properties: mapping keys must be scalars, got a sequence");
}
END_TEST

/* ---- structure errors ----------------------------------------------------- */

START_TEST(test_unknown_key)
{
    expect_err(BROKERS "  topci: x\n",
               "t.yaml:3: kafka.topci: unknown key (did you mean \"topic\"?)");
    expect_err(BROKERS "batch:\n  max_event: 3\n",
               "t.yaml:4: batch.max_event: unknown key (did you mean \"max_events\"?)");
    expect_err(BROKERS "batch:\n  max_lag: 3\n",
               "t.yaml:4: batch.max_lag: unknown key (did you mean \"max-lag\"?)");
    expect_err(BROKERS "zookeeper:\n  x: 1\n", "t.yaml:3: zookeeper: unknown key");
    expect_err(BROKERS "batch:\n  deep:\n    colour: red\n",
               "t.yaml:5: batch.deep.colour: unknown key");
    /* inside a list element, the path carries the index */
    expect_err(BROKERS "agent:\n  inputs:\n    - path: /a\n    - path: /b\n      formt: json\n",
               "t.yaml:7: agent.inputs[1].formt: unknown key (did you mean \"format\"?)");
}
END_TEST

START_TEST(test_wrong_type)
{
    char *path = fixture("wrong_type.yaml");
    int rc = cfg_load_file(t_keys, &conf, path, err, sizeof(err));
    char *want = xasprintf("%s:3: kafka.topic: expected a string, got a sequence", path);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, want);
    free(want);
    free(path);

    expect_err(BROKERS "  topic:\n    name: x\n",
               "t.yaml:4: kafka.topic: expected a string, got a mapping");
    expect_err(BROKERS "batch:\n  max_events: [1]\n",
               "t.yaml:4: batch.max_events: expected an integer, got a sequence");
    expect_err(BROKERS "agent:\n  follow: {a: 1}\n",
               "t.yaml:4: agent.follow: expected a boolean, got a mapping");
    expect_err(BROKERS "agent:\n  ratio: [1]\n",
               "t.yaml:4: agent.ratio: expected a number, got a sequence");
    expect_err(BROKERS "http: 0.0.0.0:80\n", "t.yaml:3: http: expected a mapping, got a scalar");
    expect_err(BROKERS "agent:\n  inputs:\n    path: /a\n",
               "t.yaml:5: agent.inputs: expected a sequence of mappings, got a mapping");
    expect_err(BROKERS "agent:\n  inputs:\n    - path: /a\n    - /b\n",
               "t.yaml:6: agent.inputs[1]: expected a mapping, got a scalar");
    expect_err(BROKERS "agent:\n  inputs:\n    - path: /a\n    -\n",
               "t.yaml:6: agent.inputs[1]: expected a mapping, got nothing");
    expect_err(BROKERS "agent:\n  inputs:\n    - path: /a\n      fields: [a]\n",
               "t.yaml:6: agent.inputs[0].fields: expected a mapping, got a sequence");
}
END_TEST

START_TEST(test_missing_required)
{
    expect_err("kafka:\n  topic: t\n",
               "t.yaml:2: kafka.brokers: missing required key (set it here or in "
               "AUDITRAIL_KAFKA_BROKERS)");
    /* key present with a null value: the line is the key's own */
    expect_err("http: {}\nkafka:\n  topic: t\n  brokers:\n",
               "t.yaml:4: kafka.brokers: missing required key (set it here or in "
               "AUDITRAIL_KAFKA_BROKERS)");
    /* list elements: no env override, the element's line */
    expect_err(BROKERS
               "agent:\n  inputs:\n    - path: /a\n    - format: json\n      multiline: on\n",
               "t.yaml:6: agent.inputs[1].path: missing required key");
    expect_err(BROKERS "agent:\n  inputs:\n    - path: ''\n",
               "t.yaml:5: agent.inputs[0].path: must not be empty");
}
END_TEST

START_TEST(test_duplicate_key)
{
    expect_err(BROKERS "  topic: a\n  topic: b\n",
               "t.yaml:4: kafka.topic: duplicate key (first at line 3)");
    expect_err(BROKERS "http:\n  listen: a\nhttp:\n  listen: b\n",
               "t.yaml:5: http: duplicate key (first at line 3)");
    expect_err(BROKERS "agent:\n  inputs:\n    - path: /a\n      path: /b\n",
               "t.yaml:6: agent.inputs[0].path: duplicate key (first at line 5)");
}
END_TEST

START_TEST(test_yaml_syntax_error)
{
    expect_err(BROKERS "  topic: [a, b\n",
               "t.yaml:4: YAML syntax error: did not find expected ',' or ']' (while parsing a "
               "flow sequence at line 3)");
    expect_err("kafka:\n  brokers: a\n bad: x\n",
               "t.yaml:3: YAML syntax error: did not find expected key (while parsing a block "
               "mapping at line 1)");
    expect_err(BROKERS "  topic: *nope\n", "t.yaml:3: YAML syntax error: found undefined alias");
    char *path = fixture("syntax.yaml");
    int rc = cfg_load_file(t_keys, &conf, path, err, sizeof(err));
    ck_assert_int_eq(rc, -1);
    char *want = xasprintf("%s:4: YAML syntax error:", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    free(want);
    free(path);
    /* invalid UTF-8 is a reader error: located by byte offset */
    expect_err(BROKERS "  topic: \xff\xfe\n",
               "t.yaml:3: YAML syntax error: invalid leading UTF-8 octet");
}
END_TEST

START_TEST(test_root_not_mapping)
{
    expect_err("- a\n- b\n", "t.yaml:1: the document root must be a mapping, got a sequence");
    expect_err("\n\njust text\n", "t.yaml:3: the document root must be a mapping, got a scalar");
}
END_TEST

START_TEST(test_two_documents)
{
    expect_err(BROKERS "---\nhttp:\n  listen: x\n", "t.yaml:3: only one YAML document is allowed");
}
END_TEST

START_TEST(test_file_errors)
{
    char *dir = test_tmpdir("cfg");
    char *missing = xasprintf("%s/nope.yaml", dir);
    ck_assert_int_eq(cfg_load_file(t_keys, &conf, missing, err, sizeof(err)), -1);
    char *want = xasprintf("%s: cannot open: No such file or directory", missing);
    ck_assert_str_eq(err, want);
    free(want);

    ck_assert_int_eq(cfg_load_file(t_keys, &conf, dir, err, sizeof(err)), -1);
    want = xasprintf("%s: cannot read: Is a directory", dir);
    ck_assert_str_eq(err, want);
    free(want);

    /* err may be NULL: the call still fails cleanly */
    ck_assert_int_eq(cfg_load_file(t_keys, &conf, missing, NULL, 0), -1);
    ck_assert_int_eq(cfg_load_string(t_keys, &conf, "- x\n", "n", NULL, 0), -1);
    free(missing);
    test_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_error_truncated_to_buffer)
{
    char small[16];
    ck_assert_int_eq(cfg_load_string(t_keys, &conf, "zzz: 1\n", "t.yaml", small, sizeof(small)),
                     -1);
    ck_assert_str_eq(small, "t.yaml:1: zzz: ");
}
END_TEST

/* ---- ${VAR} ---------------------------------------------------------------- */

START_TEST(test_expand_values)
{
    setenv("CFGT_NS", "prod", 1);
    setenv("CFGT_POD", "web-1", 1);
    setenv("CFGT_EMPTY", "", 1);
    expect_ok(BROKERS "agent:\n  source_name: ${CFGT_NS}/${CFGT_POD}/app\n"
                      "  checkpoint_dir: /x/${CFGT_UNSET:-def}/${CFGT_EMPTY:-e}/${CFGT_EMPTY}.\n");
    ck_assert_str_eq(conf.agent.source_name, "prod/web-1/app");
    ck_assert_str_eq(conf.agent.checkpoint_dir, "/x/def/e/.");
    /* $$ is a literal $; a lone $ is kept; nothing is expanded twice */
    setenv("CFGT_HOST", "$${CFGT_NS}", 1);
    expect_ok(BROKERS "  topic: a$$b$c$${CFGT_NS}-${CFGT_HOST}\n");
    ck_assert_str_eq(conf.kafka.topic, "a$b$c${CFGT_NS}-$${CFGT_NS}");
    /* defaults may nest references */
    expect_ok(BROKERS "  topic: ${CFGT_UNSET:-${CFGT_NS:-x}-t}\n  group: ${CFGT_UNSET:-}\n");
    ck_assert_str_eq(conf.kafka.topic, "prod-t");
    ck_assert_str_eq(conf.kafka.group, "");
    /* numbers, booleans, list items and map values are expanded too */
    setenv("CFGT_BROKERS", "b1:9092, b2:9092", 1);
    expect_ok("kafka:\n  brokers: ${CFGT_BROKERS}\nagent:\n  follow: ${CFGT_UNSET:-off}\n"
              "  max_record_bytes: ${CFGT_UNSET:-2}KiB\n"
              "  inputs:\n    - path: /logs/${CFGT_POD}/*.log\n");
    ck_assert_uint_eq(conf.kafka.brokers.n, 2);
    ck_assert_str_eq(conf.kafka.brokers.v[1], "b2:9092");
    ck_assert(!conf.agent.follow);
    ck_assert_int_eq(conf.agent.max_record_bytes, 2048);
    ck_assert_str_eq(((struct t_input *)conf.agent.inputs.items)[0].path, "/logs/web-1/*.log");
}
END_TEST

START_TEST(test_expand_defaults)
{
    expect_ok(BROKERS);
    ck_assert_str_eq(conf.agent.source_name, "localhost/agent");
    setenv("CFGT_HOST", "node-7", 1);
    expect_ok(BROKERS);
    ck_assert_str_eq(conf.agent.source_name, "node-7/agent");
}
END_TEST

START_TEST(test_expand_errors)
{
    expect_err(BROKERS "  topic: audit.${CFGT_UNSET}\n",
               "t.yaml:3: kafka.topic: environment variable CFGT_UNSET is not set (use "
               "${CFGT_UNSET:-default})");
    expect_err(BROKERS "  topic: audit.${CFGT_NS\n",
               "t.yaml:3: kafka.topic: unterminated \"${\" (write \"$$\" for a literal \"$\")");
    expect_err(BROKERS "  topic: ${CFGT_UNSET:-${X}\n",
               "t.yaml:3: kafka.topic: unterminated \"${\" (write \"$$\" for a literal \"$\")");
    expect_err(BROKERS "  topic: ${}\n", "t.yaml:3: kafka.topic: bad variable reference \"${}\"");
    expect_err(BROKERS "  topic: ${A-B}\n",
               "t.yaml:3: kafka.topic: bad variable reference \"${A-B}\"");
    expect_err(BROKERS "agent:\n  inputs:\n    - path: /a\n    - path: /${CFGT_UNSET}\n",
               "t.yaml:6: agent.inputs[1].path: environment variable CFGT_UNSET is not set (use "
               "${CFGT_UNSET:-default})");
    expect_err(BROKERS "  properties:\n    sasl.password: ${CFGT_SECRET}\n",
               "t.yaml:4: kafka.properties.sasl.password: environment variable CFGT_SECRET is not "
               "set (use ${CFGT_SECRET:-default})");
    expect_err("kafka:\n  brokers:\n    - a\n    - ${CFGT_UNSET}\n",
               "t.yaml:4: kafka.brokers[1]: environment variable CFGT_UNSET is not set (use "
               "${CFGT_UNSET:-default})");
}
END_TEST

static const struct t_def {
    char *s;
} t_def_zero;
static const struct cfg_key bad_default_keys[] = {
    {.name = "s", .type = CFG_STR, .offset = 0, .def = "${CFGT_UNSET}"},
    CFG_END,
};

START_TEST(test_expand_error_in_default)
{
    struct t_def d = t_def_zero;
    ck_assert_int_eq(cfg_load_string(bad_default_keys, &d, "", "d.yaml", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "d.yaml: s: default value: environment variable CFGT_UNSET is not set "
                          "(use ${CFGT_UNSET:-default})");
    cfg_free(bad_default_keys, &d);
}
END_TEST

/* ---- environment overrides ------------------------------------------------ */

START_TEST(test_env_overrides_file_and_default)
{
    setenv("AUDITRAIL_KAFKA_TOPIC", "from-env", 1);
    setenv("AUDITRAIL_KAFKA_GROUP", "g-env", 1);
    setenv("AUDITRAIL_AGENT_MAX_RECORD_BYTES", "8KiB", 1);
    setenv("AUDITRAIL_AGENT_FOLLOW", "off", 1);
    setenv("AUDITRAIL_AGENT_RATIO", "0.5", 1);
    setenv("AUDITRAIL_BATCH_MAX_LAG", "7", 1);     /* '-' in the key becomes '_' */
    setenv("AUDITRAIL_BATCH_DEEP_MODE", "env", 1); /* two sections deep */
    setenv("AUDITRAIL_BATCH_TAGS", "p, q", 1);
    expect_ok(BROKERS "  topic: from-file\nagent:\n  max_record_bytes: 2KiB\n"
                      "batch:\n  max-lag: 1\n  tags: [z]\n  deep:\n    mode: file\n");
    ck_assert_str_eq(conf.kafka.topic, "from-env");
    ck_assert_str_eq(conf.kafka.group, "g-env");
    ck_assert_int_eq(conf.agent.max_record_bytes, 8192);
    ck_assert(!conf.agent.follow);
    ck_assert_double_eq(conf.agent.ratio, 0.5);
    ck_assert_int_eq(conf.batch.max_lag, 7);
    ck_assert_str_eq(conf.batch.deep.mode, "env");
    ck_assert_uint_eq(conf.batch.tags.n, 2);
    ck_assert_str_eq(conf.batch.tags.v[0], "p");
    ck_assert_str_eq(conf.batch.tags.v[1], "q");
}
END_TEST

START_TEST(test_env_supplies_required)
{
    setenv("AUDITRAIL_KAFKA_BROKERS", "e1:9092,e2:9092", 1);
    expect_ok("");
    ck_assert_uint_eq(conf.kafka.brokers.n, 2);
    ck_assert_str_eq(conf.kafka.brokers.v[0], "e1:9092");
    ck_assert_str_eq(conf.kafka.brokers.v[1], "e2:9092");
    /* the env value wins without the file value being read at all */
    expect_ok("kafka:\n  brokers: ${CFGT_UNSET}\n");
    ck_assert_str_eq(conf.kafka.brokers.v[0], "e1:9092");
}
END_TEST

START_TEST(test_env_expanded_and_empty_ignored)
{
    setenv("CFGT_TOPIC", "t1", 1);
    setenv("AUDITRAIL_KAFKA_TOPIC", "audit.${CFGT_TOPIC}", 1);
    setenv("AUDITRAIL_LOG_LEVEL", "", 1);
    expect_ok(BROKERS "log:\n  level: debug\n");
    ck_assert_str_eq(conf.kafka.topic, "audit.t1");
    ck_assert_str_eq(conf.log.level, "debug");
}
END_TEST

START_TEST(test_env_bad_value)
{
    setenv("AUDITRAIL_BATCH_MAX_EVENTS", "x", 1);
    expect_err(BROKERS "batch:\n  max_events: 5\n",
               "AUDITRAIL_BATCH_MAX_EVENTS: bad integer \"x\"");
    setenv("AUDITRAIL_BATCH_MAX_EVENTS", "0", 1);
    expect_err(BROKERS, "AUDITRAIL_BATCH_MAX_EVENTS: 0 is out of range [1, 100000]");
    unsetenv("AUDITRAIL_BATCH_MAX_EVENTS");
    setenv("AUDITRAIL_AGENT_FOLLOW", "maybe", 1);
    expect_err(BROKERS, "AUDITRAIL_AGENT_FOLLOW: bad boolean \"maybe\" (use true/false, yes/no or "
                        "on/off)");
    unsetenv("AUDITRAIL_AGENT_FOLLOW");
    setenv("AUDITRAIL_KAFKA_BROKERS", "a,,b", 1);
    expect_err(BROKERS, "AUDITRAIL_KAFKA_BROKERS: empty item 2 in a comma-separated list");
    setenv("AUDITRAIL_KAFKA_BROKERS", " , ", 1);
    expect_err(BROKERS, "AUDITRAIL_KAFKA_BROKERS: empty item 1 in a comma-separated list");
    unsetenv("AUDITRAIL_KAFKA_BROKERS");
    setenv("AUDITRAIL_KAFKA_TOPIC", "${CFGT_UNSET}", 1);
    expect_err(BROKERS, "AUDITRAIL_KAFKA_TOPIC: environment variable CFGT_UNSET is not set (use "
                        "${CFGT_UNSET:-default})");
}
END_TEST

START_TEST(test_env_not_applied_in_lists)
{
    setenv("AUDITRAIL_AGENT_INPUTS_PATH", "/env", 1);
    expect_ok(BROKERS "agent:\n  inputs:\n    - path: /file\n");
    ck_assert_str_eq(((struct t_input *)conf.agent.inputs.items)[0].path, "/file");
}
END_TEST

/* ---- lists ------------------------------------------------------------------- */

START_TEST(test_list_of_maps)
{
    expect_ok(BROKERS "agent:\n  inputs:\n"
                      "    - path: /a\n      fields:\n        time: t0\n"
                      "    - path: /b\n      format: json\n      max_bytes: 1KiB\n"
                      "    - {path: /c, fields: {message: m2}}\n");
    ck_assert_uint_eq(conf.agent.inputs.n, 3);
    struct t_input *in = conf.agent.inputs.items;
    ck_assert_str_eq(in[0].format, "raw");
    ck_assert_str_eq(in[0].fields.time, "t0");
    ck_assert_str_eq(in[0].fields.message, "message");
    ck_assert_int_eq(in[0].max_bytes, 4096);
    ck_assert_str_eq(in[1].format, "json");
    ck_assert_int_eq(in[1].max_bytes, 1024);
    ck_assert_str_eq(in[1].fields.time, "time");
    ck_assert_str_eq(in[2].path, "/c");
    ck_assert_str_eq(in[2].fields.time, "time");
    ck_assert_str_eq(in[2].fields.message, "m2");
    expect_ok(BROKERS "agent:\n  inputs: []\n");
    ck_assert_uint_eq(conf.agent.inputs.n, 0);
}
END_TEST

START_TEST(test_list_element_errors)
{
    expect_err(BROKERS
               "agent:\n  inputs:\n    - path: /a\n    - path: /b\n      multiline: maybe\n",
               "t.yaml:7: agent.inputs[1].multiline: bad boolean \"maybe\" (use true/false, "
               "yes/no or on/off)");
    expect_err(BROKERS "agent:\n  inputs:\n    - path: /a\n    - path: /b\n      format: [json]\n",
               "t.yaml:7: agent.inputs[1].format: expected a string, got a sequence");
    expect_err(BROKERS "agent:\n  inputs:\n    - path: /a\n      fields:\n        time: [x]\n",
               "t.yaml:7: agent.inputs[0].fields.time: expected a string, got a sequence");
}
END_TEST

/* ---- cfg_free ---------------------------------------------------------------- */

START_TEST(test_free_zeroed_and_twice)
{
    struct t_conf z;
    memset(&z, 0, sizeof(z));
    cfg_free(t_keys, &z);
    cfg_free(NULL, &z);
    cfg_free(t_keys, NULL);
    expect_ok(BROKERS "agent:\n  inputs:\n    - path: /a\n");
    cfg_free(t_keys, &conf);
    ck_assert_ptr_null(conf.kafka.topic);
    ck_assert_ptr_null(conf.kafka.brokers.v);
    ck_assert_uint_eq(conf.agent.inputs.n, 0);
    cfg_free(t_keys, &conf); /* again: a no-op */
}
END_TEST

/* Errors late in the document leave allocations behind that only cfg_free
 * releases; LeakSanitizer fails this test if any remain. */
START_TEST(test_free_after_late_errors)
{
    const char *docs[] = {
        BROKERS "  properties: {a: b}\nagent:\n  inputs:\n    - path: /a\n      fields: {time: t}\n"
                "    - path: /b\n      max_bytes: nope\n",
        BROKERS "batch:\n  tags: [a, b]\n  deep:\n    mode: x\n    depth: big\n",
        BROKERS "  properties:\n    a: ${CFGT_UNSET}\n",
        "kafka:\n  brokers: [a, b, '']\n",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        memset(&conf, 0, sizeof(conf));
        ck_assert_int_eq(cfg_load_string(t_keys, &conf, docs[i], "t.yaml", err, sizeof(err)), -1);
        cfg_free(t_keys, &conf);
    }
}
END_TEST

/* ---- reference ------------------------------------------------------------- */

START_TEST(test_print_reference)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    cfg_print_reference(t_keys, f);
    fclose(f);
    ck_assert_msg(strstr(buf, "| Key | Type | Default | Required | Environment | Description |\n"),
                  "%s", buf);
    ck_assert_msg(strstr(buf, "| `kafka.brokers` | list of strings |  | yes | "
                              "`AUDITRAIL_KAFKA_BROKERS` | Kafka bootstrap servers"),
                  "%s", buf);
    ck_assert_msg(strstr(buf, "| `kafka.topic` | string | `audit.events` | no | "
                              "`AUDITRAIL_KAFKA_TOPIC` |"),
                  "%s", buf);
    ck_assert_msg(strstr(buf, "| `agent.max_record_bytes` | integer [1024, 1073741824] | `1MiB` | "
                              "no | `AUDITRAIL_AGENT_MAX_RECORD_BYTES` | Longest record \\| cut "
                              "beyond |"),
                  "%s", buf);
    ck_assert_msg(strstr(buf, "| `agent.inputs` | list of mappings |  | no |  | Files to tail |"),
                  "%s", buf);
    /* list element keys: no environment variable */
    ck_assert_msg(strstr(buf, "| `agent.inputs[].path` | string |  | yes |  |"), "%s", buf);
    ck_assert_msg(strstr(buf, "| `agent.inputs[].fields.time` | string | `time` | no |  |"), "%s",
                  buf);
    ck_assert_msg(strstr(buf, "| `batch.deep.mode` | string | `slow` | no | "
                              "`AUDITRAIL_BATCH_DEEP_MODE` |"),
                  "%s", buf);
    ck_assert_msg(strstr(buf, "| `http.listen` | string | `127.0.0.1:9100` |"), "%s", buf);
    ck_assert_msg(strstr(buf, "| `log.level` | string | `info` |"), "%s", buf);
    ck_assert_msg(strstr(buf, "| `kafka.properties` | mapping |"), "%s", buf);
    free(buf);
}
END_TEST

/* ---- program checks locate their keys (cfg_check_fail) ------------------- */

/* A check that fails on the path given through ud. */
static int fail_at(struct cfg_check *chk, void *ud)
{
    return cfg_check_fail(chk, ud, "problem %d", 7);
}

static int pass_check(struct cfg_check *chk, void *ud)
{
    (void)chk;
    *(int *)ud += 1;
    return 0;
}

static void expect_check(const char *yaml, const char *path, const char *msg)
{
    cfg_free(t_keys, &conf);
    ck_assert_int_eq(cfg_load_string_checked(t_keys, &conf, yaml, "t.yaml", fail_at, (void *)path,
                                             err, sizeof(err)),
                     -1);
    ck_assert_str_eq(err, msg);
}

START_TEST(test_check_locates_keys)
{
    const char *y = "kafka:\n  brokers: k:9092\n  topic: t\n  properties:\n"
                    "    sasl.password: x\nbatch:\n  max_events: 5\n  deep:\n    mode: m\n"
                    "agent:\n  inputs:\n    - path: /a\n    - path: /b\n      format: kv\n";
    /* The key's own line. */
    expect_check(y, "kafka.topic", "t.yaml:3: kafka.topic: problem 7");
    expect_check(y, "batch.deep.mode", "t.yaml:9: batch.deep.mode: problem 7");
    expect_check(y, "agent.inputs[1].format", "t.yaml:14: agent.inputs[1].format: problem 7");
    /* A map key with dots in it. */
    expect_check(y, "kafka.properties.sasl.password",
                 "t.yaml:5: kafka.properties.sasl.password: problem 7");
    /* Absent from the file (a default): the enclosing section's line... */
    expect_check(y, "batch.max_lag", "t.yaml:7: batch.max_lag: problem 7");
    expect_check(y, "agent.inputs[0].format", "t.yaml:12: agent.inputs[0].format: problem 7");
    /* ...or line 1 when the section is absent too. */
    expect_check(y, "log.level", "t.yaml:1: log.level: problem 7");
    /* Set by the environment: the variable is the location. */
    setenv("AUDITRAIL_KAFKA_TOPIC", "from-env", 1);
    expect_check(y, "kafka.topic", "AUDITRAIL_KAFKA_TOPIC: problem 7");
    /* Not inside list items, where no variable applies. */
    setenv("AUDITRAIL_AGENT_INPUTS_PATH", "/env", 1);
    expect_check(y, "agent.inputs[0].path", "t.yaml:12: agent.inputs[0].path: problem 7");

    /* A check that passes runs once; a failed load runs none. */
    int runs = 0;
    cfg_free(t_keys, &conf);
    ck_assert_int_eq(
        cfg_load_string_checked(t_keys, &conf, y, "t.yaml", pass_check, &runs, err, sizeof(err)),
        0);
    ck_assert_int_eq(runs, 1);
    cfg_free(t_keys, &conf);
    ck_assert_int_eq(cfg_load_string_checked(t_keys, &conf, "kafka: 1\n", "t.yaml", pass_check,
                                             &runs, err, sizeof(err)),
                     -1);
    ck_assert_int_eq(runs, 1);
}
END_TEST

START_TEST(test_check_in_file)
{
    char *dir = test_tmpdir("cfg-check");
    char *path = xasprintf("%s/c.yaml", dir);
    const char *y = "kafka:\n  brokers: k:9092\n\n  topic: t\n";
    test_write_file(path, y, strlen(y), false);
    ck_assert_int_eq(
        cfg_load_file_checked(t_keys, &conf, path, fail_at, "kafka.topic", err, sizeof(err)), -1);
    char *want = xasprintf("%s:4: kafka.topic: problem 7", path);
    ck_assert_str_eq(err, want);
    free(want);
    test_rmtree(dir);
    free(path);
    free(dir);
}
END_TEST

/* The agent's checks (agent/agent_config.c) name file, line and key, and
 * never quote a value. */
static void expect_agent_err(const char *yaml, const char *msg)
{
    struct agent_config ac;
    char aerr[ERRLEN];
    ck_assert_int_eq(agent_config_load_string(&ac, yaml, aerr, sizeof(aerr)), -1);
    agent_config_release(&ac);
    ck_assert_msg(strncmp(aerr, msg, strlen(msg)) == 0, "want '%s...', got '%s'", msg, aerr);
    ck_assert_msg(strstr(aerr, "s3cret") == NULL, "value echoed: %s", aerr);
}

#define AGENT_BASE "kafka:\n  brokers: k:9092\nagent:\n"

START_TEST(test_agent_checks)
{
    expect_agent_err(AGENT_BASE "  read_from: s3cret\n  inputs:\n    - path: /a\n",
                     "<string>:4: agent.read_from: expected beginning or end");
    expect_agent_err(AGENT_BASE "  inputs:\n    - path: /a\n    - path: /b\n      format: s3cret\n",
                     "<string>:7: agent.inputs[1].format: unknown format (expected json, kv, "
                     "k8s-audit, auditd, fhir or raw)");
    expect_agent_err(AGENT_BASE "  inputs:\n    - path: /a\n      multiline:\n"
                                "        start_pattern: \"(s3cret\"\n",
                     "<string>:7: agent.inputs[0].multiline.start_pattern: ");
    expect_agent_err(AGENT_BASE
                     "  inputs:\n    - path: /a\n      fields:\n        colour: s3cret\n",
                     "<string>:7: agent.inputs[0].fields.colour: unknown field");
    expect_agent_err(AGENT_BASE "  inputs:\n    - path: /a\nlog:\n  level: s3cret\n",
                     "<string>:7: log.level: expected debug, info, warn or error");
    struct agent_config ac;
    char aerr[ERRLEN];
    ck_assert_msg(agent_config_load_string(&ac, AGENT_BASE "  inputs:\n    - path: /a\n", aerr,
                                           sizeof(aerr)) == 0,
                  "%s", aerr);
    ck_assert_str_eq(ac.file.http.listen, "127.0.0.1:9100");
    agent_config_release(&ac);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_full_file);
    tcase_add_test(tc, test_error_is_one_line_for_control_chars_in_key);
    tcase_add_test(tc, test_defaults_for_absent_sections);
    tcase_add_test(tc, test_null_value_takes_default);
    tcase_add_test(tc, test_empty_document);
    tcase_add_test(tc, test_aliases);
    tcase_add_test(tc, test_int_values);
    tcase_add_test(tc, test_int_bad);
    tcase_add_test(tc, test_int_range);
    tcase_add_test(tc, test_bool_values);
    tcase_add_test(tc, test_double_values);
    tcase_add_test(tc, test_string_from_any_scalar);
    tcase_add_test(tc, test_strlist_forms);
    tcase_add_test(tc, test_strlist_errors);
    tcase_add_test(tc, test_map);
    tcase_add_test(tc, test_unknown_key);
    tcase_add_test(tc, test_wrong_type);
    tcase_add_test(tc, test_missing_required);
    tcase_add_test(tc, test_duplicate_key);
    tcase_add_test(tc, test_yaml_syntax_error);
    tcase_add_test(tc, test_root_not_mapping);
    tcase_add_test(tc, test_two_documents);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_error_truncated_to_buffer);
    tcase_add_test(tc, test_expand_values);
    tcase_add_test(tc, test_expand_defaults);
    tcase_add_test(tc, test_expand_errors);
    tcase_add_test(tc, test_expand_error_in_default);
    tcase_add_test(tc, test_env_overrides_file_and_default);
    tcase_add_test(tc, test_env_supplies_required);
    tcase_add_test(tc, test_env_expanded_and_empty_ignored);
    tcase_add_test(tc, test_env_bad_value);
    tcase_add_test(tc, test_env_not_applied_in_lists);
    tcase_add_test(tc, test_list_of_maps);
    tcase_add_test(tc, test_list_element_errors);
    tcase_add_test(tc, test_free_zeroed_and_twice);
    tcase_add_test(tc, test_free_after_late_errors);
    tcase_add_test(tc, test_print_reference);
    tcase_add_test(tc, test_check_locates_keys);
    tcase_add_test(tc, test_check_in_file);
    tcase_add_test(tc, test_agent_checks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(config_suite());
}
