/* Declarative configuration: a table of keys (type, default, field offset,
 * help) applied to a YAML file, like Fluent Bit's config_map.
 *
 * Rules (DESIGN.md §8; errors are one line "FILE:LINE: key.path: what"):
 *  - unknown keys, duplicate keys and wrong types are errors that name the key
 *    path and the line ("cfg.yaml:7: kafka.topic: expected a string, got a
 *    mapping"; list items as "agent.inputs[1].format");
 *  - ${VAR} and ${VAR:-default} are expanded in scalar values and defaults
 *    ($$ is a literal $; ":-" also replaces an empty VAR); an unset VAR
 *    without default is an error naming the key and line;
 *  - every scalar or STRLIST key can be overridden by AUDITRAIL_<PATH>: the
 *    key path upper-cased, '.' and '-' turned into '_' (AUDITRAIL_KAFKA_TOPIC,
 *    AUDITRAIL_AGENT_MAX_RECORD_BYTES, AUDITRAIL_KAFKA_BROKERS=a:9092,b:9092);
 *    keys inside CFG_LIST items cannot; the environment wins over the file;
 *    an empty variable counts as unset; errors name the variable;
 *  - defaults are applied to keys absent from both file and environment (a
 *    YAML null, `key:` or `key: ~`, counts as absent); a required key absent
 *    everywhere is an error naming it; a required STR or STRLIST must also
 *    not be empty. MAP and LIST take no default (they stay empty).
 */
#ifndef AUDITRAIL_CONFIG_H
#define AUDITRAIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cfg_type {
    CFG_STR,     /* char *, heap, freed by cfg_free; NULL when absent w/o default */
    CFG_INT,     /* int64_t: a decimal integer, optionally with a byte-size
                    suffix KiB MiB GiB (powers of 1024) */
    CFG_BOOL,    /* bool: true/false/yes/no/on/off */
    CFG_DOUBLE,  /* double */
    CFG_STRLIST, /* struct cfg_strlist: a YAML sequence of scalars or one
                    comma-separated string */
    CFG_MAP,     /* struct cfg_map: free-form mapping of scalar -> scalar */
    CFG_SECTION, /* nested table (sub) for the struct at offset */
    CFG_LIST,    /* struct cfg_list: a sequence of mappings, each read with sub
                    into an element of elem_size bytes */
};

struct cfg_strlist {
    char **v;
    size_t n;
};

struct cfg_map {
    char **keys;
    char **vals;
    size_t n;
};

struct cfg_list {
    void *items; /* n elements of elem_size bytes */
    size_t n;
};

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t offset;
    const char *def; /* default written as in YAML; NULL: none */
    const char *help;
    bool required;
    const struct cfg_key *sub; /* CFG_SECTION, CFG_LIST */
    size_t elem_size;          /* CFG_LIST */
    int64_t min, max;          /* CFG_INT bounds, checked when min < max */
};

#define CFG_END                                                                                    \
    {                                                                                              \
        NULL, CFG_STR, 0, NULL, NULL, false, NULL, 0, 0, 0                                         \
    }

/* Load `path` into `out` (which must be zeroed by the caller) according to
 * `table`. Returns 0, or -1 with a one-line message in err ("FILE:LINE: key
 * path: what is wrong"). On error `out` may be partly filled: call cfg_free. */
int cfg_load_file(const struct cfg_key *table, void *out, const char *path, char *err,
                  size_t errlen) __attribute__((warn_unused_result));
/* Same, from a string; `name` is used in messages in place of a file name. */
int cfg_load_string(const struct cfg_key *table, void *out, const char *yaml, const char *name,
                    char *err, size_t errlen) __attribute__((warn_unused_result));

/* A loaded file, handed to a program's checks so that their errors name the
 * file and line like the loader's own. */
struct cfg_check;
/* Checks a table cannot express: one key against another, a value from a
 * fixed set, a pattern that must compile. Runs after a successful load while
 * the file is still at hand. 0, or the -1 of cfg_check_fail. */
typedef int (*cfg_check_fn)(struct cfg_check *chk, void *ud);
/* cfg_load_file / cfg_load_string, then check(chk, ud) (check may be NULL). */
int cfg_load_file_checked(const struct cfg_key *table, void *out, const char *path,
                          cfg_check_fn check, void *ud, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int cfg_load_string_checked(const struct cfg_key *table, void *out, const char *yaml,
                            const char *name, cfg_check_fn check, void *ud, char *err,
                            size_t errlen) __attribute__((warn_unused_result));
/* Report a problem with the key at `path` ("breaker.min_calls",
 * "agent.inputs[1].format") as the loader does: "FILE:LINE: path: msg" with
 * the key's line (or, when the file does not have the key, the line of the
 * nearest enclosing section it has, else 1), or "AUDITRAIL_X: msg" when that
 * variable set it. Returns -1. Like the loader, never put a string value in
 * msg: it may be a secret. */
int cfg_check_fail(struct cfg_check *chk, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Free everything cfg_load_* allocated in `out`. Safe on a zeroed struct. */
void cfg_free(const struct cfg_key *table, void *out);
/* Print a Markdown reference of the table (key path, type, default, help);
 * common/cfg_reference.c. */
void cfg_print_reference(const struct cfg_key *table, FILE *f);
/* Look up a value in a cfg_map; NULL if absent. */
const char *cfg_map_get(const struct cfg_map *m, const char *key);

#endif
