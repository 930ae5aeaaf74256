/* auditrail: the operator CLI. A libcurl client of the query API (query,
 * export, streams, stream, incidents, verify) and of every program's HTTP
 * side (health, metrics), and a front door to the aggregator's one-shot
 * commands (migrate, replay, proof). One table of verbs; each names the
 * options it takes. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/prog.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define EVENT_FILTERS                                                                              \
    (CLI_O_CONN | CLI_O_TENANT | CLI_O_EVENT_FILTERS | CLI_O_STREAM | CLI_O_RANGE | CLI_O_MIN_LSN)

struct verb {
    const char *name;
    uint32_t opts;          /* enum cli_opt_bit */
    int min_args, max_args; /* operands after the verb */
    int (*run)(struct cli_ctx *c);
    const char *aggregator; /* instead of run: this auditrail-aggregator command */
    bool pass_args;         /* its arguments passed on unchanged (but --config) */
};

static const struct verb verbs[] = {
    {"query", EVENT_FILTERS | CLI_O_PAGES | CLI_O_JSON | CLI_O_FAIL_EMPTY, 0, 0, cli_query, NULL,
     false},
    {"export", EVENT_FILTERS | CLI_O_OUTPUT, 0, 0, cli_export, NULL, false},
    {"streams",
     CLI_O_CONN | CLI_O_TENANT | CLI_O_RANGE | CLI_O_COUNTS | CLI_O_PAGES | CLI_O_MIN_LSN |
         CLI_O_JSON,
     0, 0, cli_streams, NULL, false},
    {"stream", CLI_O_CONN | CLI_O_TENANT | CLI_O_RANGE | CLI_O_MIN_LSN | CLI_O_JSON, 1, 1,
     cli_stream, NULL, false},
    {"incidents",
     CLI_O_CONN | CLI_O_TENANT | CLI_O_RANGE | CLI_O_KIND | CLI_O_STREAM | CLI_O_PAGES |
         CLI_O_MIN_LSN | CLI_O_JSON,
     0, 0, cli_incidents, NULL, false},
    {"health", CLI_O_CONN, 0, 0, cli_health, NULL, false},
    {"metrics", CLI_O_CONN, 0, 1, cli_metrics, NULL, false},
    {"verify", CLI_O_CONN | CLI_O_TENANT | CLI_O_STREAM | CLI_O_RANGE | CLI_O_MIN_LSN | CLI_O_JSON,
     0, 0, cli_verify, NULL, false},
    {"migrate", CLI_O_CONFIG, 0, 0, NULL, "migrate", false},
    /* Kafka and PostgreSQL credentials are the aggregator's, not the CLI's:
     * these run auditrail-aggregator --config FILE with what follows. */
    {"replay", CLI_O_CONFIG, 0, 0, NULL, "replay", true},
    {"proof", CLI_O_CONFIG, 0, 0, NULL, "proof", true},
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static const char USAGE[] =
    "auditrail [OPTIONS] COMMAND [ARGS]\n"
    "The query API's client, and the auditrail programs' health and metrics.\n"
    "\n"
    "commands:\n"
    "  query [FILTERS] [--from T] [--to T] [--limit N] [--cursor C] [--all [--max N]]\n"
    "        [--min-lsn LSN] [--json] [--fail-empty]\n"
    "      events in (time, id) order as a table, then a summary line on stderr;\n"
    "      --json: the API's page as is; --all: every page (NDJSON with --json), at most\n"
    "      --max rows (default 100000); the range defaults to the last 24 hours\n"
    "  export [FILTERS] [--from T] [--to T] [--min-lsn LSN] [-o FILE]\n"
    "      every event as NDJSON (auditor, admin) to stdout or FILE (written as\n"
    "      FILE.part, renamed when complete); progress on stderr when a terminal\n"
    "  streams [--tenant T] [--from T] [--to T] [--counts] [--limit N] [--cursor C]\n"
    "        [--all [--max N]] [--min-lsn LSN] [--json]\n"
    "  stream ID [--tenant T] [--from T] [--to T] [--min-lsn LSN] [--json]\n"
    "      one stream's head, counts and latest incidents\n"
    "  incidents [--from T] [--to T] [--kind gap|chain_break|fork] [--stream ID]\n"
    "        [--tenant T] [--limit N] [--cursor C] [--all [--max N]] [--min-lsn LSN] [--json]\n"
    "  health                 GET /healthz and /readyz of any auditrail program\n"
    "  metrics [PREFIX]       its /metrics, only the lines starting with PREFIX\n"
    "  verify [--stream ID] [--tenant T] [--from T] [--to T] [--min-lsn LSN] [--json]\n"
    "      recompute the hash chain of one stream, or of every stream of the range\n"
    "      (GET /v1/streams/{id}/verify; auditor, admin): findings with their evidence,\n"
    "      then a summary line on stderr; exit 0 intact, 1 problems found\n"
    "  migrate --config FILE  apply PostgreSQL migrations (runs auditrail-aggregator)\n"
    "  replay --config FILE ARGS   auditrail-aggregator --config FILE replay ARGS\n"
    "  proof --config FILE ARGS    auditrail-aggregator --config FILE proof ARGS (pubkey,\n"
    "      sign, inclusion, consistency; keygen FILE needs no --config); these two pass\n"
    "      ARGS on unchanged and exit with the aggregator's status; --config may also\n"
    "      come from $AUDITRAIL_CONFIG\n"
    "\n"
    "FILTERS: --tenant T --actor A --action A --resource R --outcome O --source NAME\n"
    "         --stream ID (32 hex)\n"
    "T (--from inclusive, --to exclusive): RFC 3339 (2026-11-26T19:50:45Z), a date\n"
    "  (2026-11-26: midnight UTC), now, or relative to now: -30m, -24h, -7d (s m h d w)\n"
    "\n"
    "options, before or after the command:\n"
    "  -u, --url URL      the API; default " CLI_DEFAULT_URL " (the aggregator's\n"
    "                     http.listen), or $AUDITRAIL_URL\n"
    "  --token-file FILE  the bearer token, read from FILE (or $AUDITRAIL_TOKEN_FILE)\n"
    "  --token TOKEN      the token itself (or $AUDITRAIL_TOKEN); a command line is\n"
    "                     visible in ps: prefer a file\n"
    "  --cacert FILE      CA certificates for an https:// URL\n"
    "  --timeout SECONDS  per request (default 30; export: the longest silence); 0 = none\n"
    "  -h, --help, --version\n"
    "\n"
    "exit status:\n"
    "  0  ok\n"
    "  1  not found (stream ID), no events with --fail-empty, --all stopped at --max,\n"
    "     not ready (health), the output could not be written, or verify found problems\n"
    "  2  usage, or a parameter the API refused (400)\n"
    "  3  authentication or permission (401, 403)\n"
    "  4  unavailable: unreachable, 5xx (503 included), an answer cut short, or no\n"
    "     auditrail-aggregator to run\n"
    "  130 interrupted";

static const struct verb *verb_find(const char *name)
{
    for (size_t i = 0; i < NVERBS; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

/* A word may be repeated in a message; anything else (a token pasted in
 * the wrong place) is not. */
static const char *quotable(const char *s)
{
    size_t n = strlen(s);
    return n && n <= 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz-") == n ? s : "(not a word)";
}

static int usage_line(const char *verb, const char *what)
{
    fprintf(stderr, "auditrail%s%s: %s (auditrail --help shows the usage)\n", verb ? " " : "",
            verb ? verb : "", what);
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *token = NULL, *token_file = NULL, *cacert = NULL, *timeout = NULL;
    const struct prog_option options[] = {
        {"url", 'u', &url},     {"token", 0, &token},     {"token-file", 0, &token_file},
        {"cacert", 0, &cacert}, {"timeout", 0, &timeout}, {NULL, 0, NULL},
    };
    const char *names[NVERBS + 1];
    for (size_t i = 0; i < NVERBS; i++)
        names[i] = verbs[i].name;
    names[NVERBS] = NULL;
    const struct prog p = {
        .name = "auditrail",
        .usage = USAGE,
        .options = options,
        .own_option_commands = names, /* the options after a verb are the verb's */
    };
    struct prog_args args;
    int rc = prog_parse(&p, argc, argv, &args);
    if (rc >= 0)
        return rc;
    if (args.argc == 0)
        return prog_usage_error(&p, "a command is required");
    const struct verb *v = verb_find(args.argv[0]);
    if (!v)
        return prog_usage_error(&p, "unknown command '%s'", quotable(args.argv[0]));

    char err[256];
    struct cli_opts o;
    cli_opts_init(&o);
    o.url = url;
    o.token = token;
    o.token_file = token_file;
    o.cacert = cacert;
    o.config = args.config;
    if (timeout && cli_opts_timeout(&o, timeout, err, sizeof(err)) != 0)
        return usage_line(NULL, err);
    if (v->pass_args
            ? cli_opts_passthrough(&o, args.argc - 1, args.argv + 1, err, sizeof(err))
            : cli_opts_parse(&o, v->opts, args.argc - 1, args.argv + 1, err, sizeof(err))) {
        cli_opts_release(&o);
        return usage_line(v->name, err);
    }
    if (o.help) {
        cli_opts_release(&o);
        prog_usage(&p, stdout);
        return CLI_OK;
    }
    if (!v->pass_args && (o.argc < v->min_args || o.argc > v->max_args)) {
        cli_opts_release(&o);
        return usage_line(v->name, v->max_args == 0   ? "takes no arguments"
                                   : v->min_args == 1 ? "takes one argument"
                                                      : "takes at most one argument");
    }
    if (v->aggregator) {
        const char *config = o.config ? o.config : getenv("AUDITRAIL_CONFIG");
        const char **cmd = xcalloc((size_t)o.argc + 2, sizeof(char *));
        cmd[0] = v->aggregator;
        for (int i = 0; i < o.argc; i++)
            cmd[i + 1] = o.argv[i];
        rc = cli_aggregator_exec(config && *config ? config : NULL, cmd);
        free(cmd);
        cli_opts_release(&o);
        return rc;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct cli_ctx c = {.o = &o, .now_us = time_now_us()};
    if (cli_conn_init(&c.conn, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "auditrail %s: %s\n", v->name, err);
        rc = CLI_USAGE;
    } else {
        c.conn.stop = prog_signals(); /* an export removes its .part when interrupted */
        rc = v->run(&c);
    }
    cli_conn_release(&c.conn);
    cli_opts_release(&o);
    curl_global_cleanup();
    return rc;
}
