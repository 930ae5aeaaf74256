/* The skeleton the three programs (auditrail-agent, auditrail-aggregator,
 * auditrail) share: options --config, --check-config, --config-reference,
 * --metrics-reference, --version, --help and a program's own; loading its
 * configuration with one error line; SIGTERM/SIGINT/SIGPIPE. Exit statuses:
 * 0 done, 2 bad usage or configuration (the programs add their own). */
#ifndef AUDITRAIL_PROG_H
#define AUDITRAIL_PROG_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/config.h"

struct metrics;

#define PROG_EXIT_USAGE 2 /* bad usage or configuration */

/* A program's own option with an argument, e.g. --role ROLE. */
struct prog_option {
    const char *name;   /* long name without "--"; NULL ends a list */
    char short_name;    /* e.g. 'u' for -u; 0 = none */
    const char **value; /* receives the argument */
};

/* How a program loads its config file (common/config.h underneath). */
typedef int (*prog_load_fn)(void *cfg, const char *path, char *err, size_t errlen);

struct prog {
    const char *name;                  /* "auditrail-agent": --version, messages */
    const char *usage;                 /* the synopsis lines, each starting with the name */
    const struct prog_option *options; /* NULL or a list ending with {NULL} */
    /* The configuration: keys for --config-reference, load for
     * prog_load_config. NULL keys: the program has none of its own (the CLI
     * only passes --config on); --check-config and --config-reference are
     * then usage errors. */
    const struct cfg_key *config_keys;
    prog_load_fn load;
    /* Registers the program's metric families in m, for
     * --metrics-reference (printed as /metrics shows them at start); NULL
     * when it has none. */
    void (*register_metrics)(struct metrics *m);
    /* NULL, or subcommands that read their own options (NULL-terminated,
     * e.g. "token"): options parsing stops at the first of these, and it
     * and everything after it become the operands. */
    const char *const *own_option_commands;
};

struct prog_args {
    const char *config; /* --config FILE, or NULL */
    bool check_config;
    int argc; /* the operands (subcommand and its arguments) */
    char **argv;
};

/* Parse argv; options and operands may come in any order ("--" ends the
 * options). Returns -1 when the program goes on, otherwise its exit status:
 * 0 after --help, --version or a reference (printed on stdout),
 * PROG_EXIT_USAGE after a bad option (the usage on stderr). */
int prog_parse(const struct prog *p, int argc, char **argv, struct prog_args *a);

/* "usage: " and the program's usage lines. */
void prog_usage(const struct prog *p, FILE *f);
/* A usage error: "NAME: what" and the usage on stderr; PROG_EXIT_USAGE. */
int prog_usage_error(const struct prog *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Load a->config into cfg (zeroed by the caller; release it either way).
 * Returns -1 when the program goes on; 0 after --check-config on a valid
 * file ("FILE: configuration ok" on stdout); PROG_EXIT_USAGE when --config
 * is missing or the file is invalid (the loader's one line, after "NAME: ",
 * on stderr). */
int prog_load_config(const struct prog *p, const struct prog_args *a, void *cfg);

/* SIGTERM and SIGINT set the returned flag (without SA_RESTART, so that a
 * blocking poll or sleep returns at once); SIGPIPE is ignored (a closed
 * socket is an error code, not a death). The flag is the one piece of
 * global state (STYLE.md habit 9). */
volatile sig_atomic_t *prog_signals(void);

/* The version of auditrail (the VERSION file). */
const char *prog_version(void);

#endif
