/* The CLI's options after its verb: one table of names, each verb naming
 * the ones it takes (a filter a verb cannot honour is a usage error, never
 * silently ignored). "--name value", "--name=value", short -o/-u, "--"
 * ends the options; operands may come anywhere. Pure: no I/O. */
#ifndef AUDITRAIL_CLI_OPTS_H
#define AUDITRAIL_CLI_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One bit per option, for a verb's set. */
enum cli_opt_bit {
    CLI_O_URL = 1u << 0,
    CLI_O_TOKEN = 1u << 1, /* --token and --token-file */
    CLI_O_CACERT = 1u << 2,
    CLI_O_TIMEOUT = 1u << 3,
    CLI_O_TENANT = 1u << 4,
    CLI_O_EVENT_FILTERS = 1u << 5, /* --actor --action --resource --outcome --source */
    CLI_O_STREAM = 1u << 6,
    CLI_O_KIND = 1u << 7,
    CLI_O_RANGE = 1u << 8, /* --from --to */
    CLI_O_PAGES = 1u << 9, /* --limit --cursor --all --max */
    CLI_O_MIN_LSN = 1u << 10,
    CLI_O_JSON = 1u << 11,
    CLI_O_FAIL_EMPTY = 1u << 12,
    CLI_O_COUNTS = 1u << 13,
    CLI_O_OUTPUT = 1u << 14,
    CLI_O_CONFIG = 1u << 15,
};

/* What every verb that talks HTTP takes. */
#define CLI_O_CONN (CLI_O_URL | CLI_O_TOKEN | CLI_O_CACERT | CLI_O_TIMEOUT)

#define CLI_LIMIT_MAX   1000u    /* the API's page bound (README "Query API") */
#define CLI_MAX_DEFAULT 100000ul /* rows --all fetches before it stops */
#define CLI_MAX_MAX     1000000000ul

struct cli_opts {
    /* strings point into argv (or the environment); NULL = not given */
    const char *url, *token, *token_file, *cacert;
    const char *tenant, *actor, *action, *resource, *outcome, *source, *stream, *kind;
    const char *from, *to, *cursor, *min_lsn, *output, *config;
    unsigned limit;    /* 0 = not given */
    unsigned long max; /* 0 = not given (CLI_MAX_DEFAULT) */
    long timeout_ms;   /* -1 = not given; 0 = no limit */
    bool all, json, fail_empty, counts, help;
    int argc; /* the operands after the verb (argv[0] is the first) */
    char **argv;
};

/* Empty options (timeout_ms -1). */
void cli_opts_init(struct cli_opts *o);
/* Free the operand array (the strings belong to argv). */
void cli_opts_release(struct cli_opts *o);

/* Parse argv[0, argc) (the words after the verb) into o, over what o
 * holds already (a later value wins: the options given before the verb
 * are defaults). Only the options in `allowed` (enum cli_opt_bit) are
 * accepted; --help always is. Returns 0, or -1 with a message for people
 * in err. */
int cli_opts_parse(struct cli_opts *o, uint32_t allowed, int argc, char **argv, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* The words after a verb that runs an auditrail-aggregator command with
 * its own options (replay, proof): only --config FILE (--config=FILE, -c
 * FILE) is taken into o->config, before a "--"; every other word, "--"
 * included, becomes an operand in its order, unchanged. 0, or -1 with err
 * (--config without a value). */
int cli_opts_passthrough(struct cli_opts *o, int argc, char **argv, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Check and convert the typed options that may also come before the verb
 * (--timeout): text in *val to o. 0, or -1 with err. */
int cli_opts_timeout(struct cli_opts *o, const char *val, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
