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
    CLI_PROBLEMS = 1,    /* verify found problems */
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
int cli_verify(struct cli_ctx *c);

/* Run `auditrail-aggregator --config config ARGS…` in place of this
 * process (execv, no shell): the aggregator's one-shot commands (migrate,
 * replay, proof), their output and exit status the CLI's. args is
 * NULL-terminated, args[0] the command, passed on unchanged. config is
 * required except for `proof keygen`. Returns only on failure, having said
 * why: CLI_USAGE without a config, CLI_UNAVAILABLE when the binary cannot
 * be found or run. */
int cli_aggregator_exec(const char *config, const char *const *args);

/* Where auditrail-aggregator is: in the directory of self (this
 * program's path, may be NULL) when executable there, else the first
 * executable one in the directories of path ($PATH, may be NULL). Heap, or
 * NULL when there is none. */
char *cli_aggregator_path(const char *self, const char *path);

/* The "served by X · replica lag L ms · cache C" of an answer, each part
 * preceded by " · " (escaped), for a verb's summary line. */
void cli_summary_routing(struct buf *s, const struct cli_reply *r);

/* Write b to stdout now and empty it: 0, or -1 having said why (a closed
 * pipe silently: the reader is done). */
int cli_out_flush(struct buf *b);

/* An answer's body as it came, as one line of out (--json). */
void cli_out_body_line(struct buf *out, const struct cli_reply *r);

/* One page of a listing: GET path?qs[&limit=limit][&cursor=*cursor] into
 * *r, its JSON checked to hold an array named array and a next_cursor that
 * is a string or null. CLI_OK with *j (the caller's to decref), *items
 * (borrowed from it) and *cursor replaced by the next page's (NULL after
 * the last); else the exit status, said on stderr. limit 0: the server's. */
int cli_page_get(struct cli_ctx *c, const char *path, const char *qs, unsigned limit,
                 const char *array, char **cursor, struct cli_reply *r, json_t **j, json_t **items);

#endif
