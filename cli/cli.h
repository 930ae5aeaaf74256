/* The auditrail CLI's exit statuses and the context every verb runs with:
 * its options and its connection to the query API. */
#ifndef AUDITRAIL_CLI_H
#define AUDITRAIL_CLI_H

#include <signal.h>
#include <stdint.h>

#include "cli/cli_http.h"
#include "cli/cli_opts.h"

/* Exit statuses (README "CLI", --help): a script can tell "nothing there"
 * from "you may not" from "try again later". */
enum cli_exit {
    CLI_OK = 0,
    CLI_NOT_FOUND = 1,   /* no such stream; no events with --fail-empty; --all cut at --max;
                          * health not ready; the output file could not be written */
    CLI_USAGE = 2,       /* bad usage, or a parameter the API refused (400) */
    CLI_AUTH = 3,        /* 401, 403 */
    CLI_UNAVAILABLE = 4, /* unreachable, 5xx (503 included), an answer cut short */
    CLI_INTERRUPTED = 130,
};

struct cli_ctx {
    struct cli_opts *o;
    struct cli_conn conn;
    int64_t now_us; /* what relative times count from: read once per run */
};

/* The verbs: each returns an exit status (enum cli_exit) and has said on
 * stderr, in one line, what went wrong. */
int cli_query(struct cli_ctx *c);
int cli_streams(struct cli_ctx *c);
int cli_incidents(struct cli_ctx *c);
int cli_stream(struct cli_ctx *c);
int cli_export(struct cli_ctx *c);
int cli_health(struct cli_ctx *c);
int cli_metrics(struct cli_ctx *c);

/* Run `auditrail-aggregator --config config ARGS…` (the binary beside this
 * one) in place of this process: the aggregator's one-shot commands
 * (migrate; issue 11's replay, verify, proof). args is NULL-terminated,
 * args[0] the command. Returns only on failure (CLI_USAGE, said why). */
int cli_aggregator_exec(const char *config, const char *const *args);

#endif
