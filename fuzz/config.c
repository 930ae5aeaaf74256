/* Fuzz the declarative config loader (cfg_load_string) with three tables:
 * a local one that uses every key type (STR, INT with bounds and size
 * suffixes, BOOL, DOUBLE, STRLIST, MAP, SECTION, LIST with a required key,
 * ${VAR} defaults), the agent's real table with its checks
 * (agent_config_load_string) and the aggregator's (aggr_config_load_string).
 * Every input must load or fail with one line naming the problem, and free
 * everything either way (LeakSanitizer is on). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_config.h"
#include "aggregator/aggr_config.h"
#include "common/config.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct fz_deep {
    double ratio;
    char *mode;
};

struct fz_section {
    char *name;
    int64_t size;
    struct fz_deep deep;
};

struct fz_item {
    char *path;
    int64_t n;
    bool on;
    struct cfg_strlist tags;
    struct cfg_map fields;
    struct fz_deep deep;
};

struct fz_conf {
    char *s;
    char *from_env;
    int64_t i;
    int64_t bounded;
    bool b;
    double d;
    struct cfg_strlist list;
    struct cfg_map map;
    struct fz_section sec;
    struct cfg_list items; /* struct fz_item */
};

#define O(t, f) offsetof(struct t, f)

static const struct cfg_key deep_keys[] = {
    {"ratio", CFG_DOUBLE, O(fz_deep, ratio), "0.5", "a double", false, NULL, 0, 0, 0},
    {"mode", CFG_STR, O(fz_deep, mode), "fast", "a string", false, NULL, 0, 0, 0},
    CFG_END,
};

static const struct cfg_key section_keys[] = {
    {"name", CFG_STR, O(fz_section, name), "${FUZZ_NAME:-anon}", "", false, NULL, 0, 0, 0},
    {"size", CFG_INT, O(fz_section, size), "64KiB", "", false, NULL, 0, 0, 1 << 30},
    {"deep", CFG_SECTION, O(fz_section, deep), NULL, "", false, deep_keys, 0, 0, 0},
    CFG_END,
};

static const struct cfg_key item_keys[] = {
    {"path", CFG_STR, O(fz_item, path), NULL, "", true, NULL, 0, 0, 0},
    {"n", CFG_INT, O(fz_item, n), "1", "", false, NULL, 0, -5, 5},
    {"on", CFG_BOOL, O(fz_item, on), "off", "", false, NULL, 0, 0, 0},
    {"tags", CFG_STRLIST, O(fz_item, tags), "a,b", "", false, NULL, 0, 0, 0},
    {"fields", CFG_MAP, O(fz_item, fields), NULL, "", false, NULL, 0, 0, 0},
    {"deep", CFG_SECTION, O(fz_item, deep), NULL, "", false, deep_keys, 0, 0, 0},
    CFG_END,
};

static const struct cfg_key fz_keys[] = {
    {"s", CFG_STR, O(fz_conf, s), "plain", "", false, NULL, 0, 0, 0},
    {"from-env", CFG_STR, O(fz_conf, from_env), "${FUZZ_VAR}-$$-${FUZZ_EMPTY:-dflt}", "", false,
     NULL, 0, 0, 0},
    {"i", CFG_INT, O(fz_conf, i), "1MiB", "", false, NULL, 0, 0, 0},
    {"bounded", CFG_INT, O(fz_conf, bounded), "10", "", false, NULL, 0, 1, 100},
    {"b", CFG_BOOL, O(fz_conf, b), "yes", "", false, NULL, 0, 0, 0},
    {"d", CFG_DOUBLE, O(fz_conf, d), "2.5", "", false, NULL, 0, 0, 0},
    {"list", CFG_STRLIST, O(fz_conf, list), NULL, "", false, NULL, 0, 0, 0},
    {"map", CFG_MAP, O(fz_conf, map), NULL, "", false, NULL, 0, 0, 0},
    {"sec", CFG_SECTION, O(fz_conf, sec), NULL, "", false, section_keys, 0, 0, 0},
    {"items", CFG_LIST, O(fz_conf, items), NULL, "", false, item_keys, sizeof(struct fz_item), 0,
     0},
    CFG_END,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* A fixed environment: variables the inputs can reference, and no
     * AUDITRAIL_* overrides leaking in from the caller. */
    extern char **environ;
    for (;;) {
        char *name = NULL;
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "AUDITRAIL_", 10) == 0) {
                name = strndup(*e, strcspn(*e, "="));
                break;
            }
        if (!name)
            break;
        unsetenv(name);
        free(name);
    }
    setenv("FUZZ_VAR", "value", 1);
    setenv("FUZZ_EMPTY", "", 1);
    setenv("FUZZ_NAME", "from ${env}", 1);
    setenv("HOSTNAME", "fuzz-host", 1);
    return 0;
}

/* A failure is one non-empty line. */
static void check_err(const char *what, const char *err, size_t errlen)
{
    FUZZ_CHECK(memchr(err, '\0', errlen) != NULL, "%s: error not NUL-terminated", what);
    FUZZ_CHECK(err[0] != '\0', "%s: failed without a message", what);
    const char *nl = strrchr(err, '\n');
    FUZZ_CHECK(nl == NULL, "%s: message is not one line: %s", what, err);
}

static void check_strlist(const struct cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        FUZZ_CHECK(l->v[i] != NULL, "strlist item %zu is NULL", i);
}

static void check_map(const struct cfg_map *m)
{
    for (size_t i = 0; i < m->n; i++)
        FUZZ_CHECK(m->keys[i] && m->vals[i], "map entry %zu is NULL", i);
}

static void load_local(const char *yaml)
{
    struct fz_conf c;
    char err[512];
    memset(&c, 0, sizeof c);
    memset(err, 0x55, sizeof err);
    if (cfg_load_string(fz_keys, &c, yaml, "fuzz.yaml", err, sizeof err) != 0) {
        check_err("local", err, sizeof err);
        goto out;
    }
    FUZZ_CHECK(c.bounded >= 1 && c.bounded <= 100, "bounded out of range: %lld",
               (long long)c.bounded);
    FUZZ_CHECK(c.sec.size >= 0 && c.sec.size <= 1 << 30, "sec.size out of range");
    FUZZ_CHECK(c.s && c.from_env && c.sec.name && c.sec.deep.mode, "defaulted string is NULL");
    check_strlist(&c.list);
    check_map(&c.map);
    for (size_t i = 0; i < c.items.n; i++) {
        const struct fz_item *it = (const struct fz_item *)c.items.items + i;
        FUZZ_CHECK(it->path && it->path[0], "required items[%zu].path missing", i);
        FUZZ_CHECK(it->n >= -5 && it->n <= 5, "items[%zu].n out of range", i);
        check_strlist(&it->tags);
        check_map(&it->fields);
    }
out:
    cfg_free(fz_keys, &c);
}

static void load_agent(const char *yaml)
{
    struct agent_config c;
    char err[512];
    memset(&c, 0, sizeof c);
    memset(err, 0x55, sizeof err);
    if (agent_config_load_string(&c, yaml, err, sizeof err) != 0) {
        check_err("agent", err, sizeof err);
        goto out;
    }
    FUZZ_CHECK(c.file.agent.source_name != NULL, "agent loaded without source_name");
    FUZZ_CHECK(c.n_inputs == c.file.agent.inputs.n, "n_inputs %zu != %zu", c.n_inputs,
               c.file.agent.inputs.n);
    for (size_t i = 0; i < c.n_inputs; i++)
        FUZZ_CHECK(c.inputs[i].kind >= 0 && c.inputs[i].kind < FORMAT_COUNT, "bad kind");
out:
    agent_config_release(&c);
}

static void load_aggr(const char *yaml)
{
    struct aggr_config c;
    char err[512];
    memset(&c, 0, sizeof c);
    memset(err, 0x55, sizeof err);
    if (aggr_config_load_string(&c, yaml, err, sizeof err) != 0) {
        check_err("aggregator", err, sizeof err);
        goto out;
    }
    FUZZ_CHECK(c.postgres.primary != NULL, "aggregator loaded without postgres.primary");
    check_strlist(&c.postgres.replicas);
    check_strlist(&c.kafka.brokers);
    check_map(&c.kafka.properties);
out:
    aggr_config_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *yaml = fuzz_strndup(data, size);
    load_local(yaml);
    load_agent(yaml);
    load_aggr(yaml);
    free(yaml);
    return 0;
}
