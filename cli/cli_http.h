/* The CLI's HTTP client (libcurl): where the API is and who we are (URL,
 * bearer token, CA, timeout), GET requests whose bodies go to a buffer or
 * stream to a sink, the routing headers of the answer, and what an answer
 * means as an exit status with its one line on stderr. The token travels
 * only in the Authorization header: never in a URL, a message or a log. */
#ifndef AUDITRAIL_CLI_HTTP_H
#define AUDITRAIL_CLI_HTTP_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

struct cli_opts;

#define CLI_DEFAULT_URL     "http://127.0.0.1:9200" /* the aggregator's default http.listen */
#define CLI_DEFAULT_TIMEOUT 30000L                  /* ms */
#define CLI_TOKEN_MAX       4096                    /* bytes of a token file */

struct cli_conn {
    char *base;  /* the API's URL without a trailing slash */
    char *shown; /* the same for messages: without user info */
    char *auth;  /* "Authorization: Bearer …", or NULL without a token */
    char *cacert;
    long timeout_ms;             /* 0 = none */
    volatile sig_atomic_t *stop; /* set by SIGINT/SIGTERM: transfers end */
};

/* Resolve the connection: --url, else $AUDITRAIL_URL, else CLI_DEFAULT_URL
 * (http:// or https:// only); the token from --token, --token-file,
 * $AUDITRAIL_TOKEN or $AUDITRAIL_TOKEN_FILE (at most one of the options);
 * --cacert; --timeout. 0, or -1 with a message in err that never quotes
 * the token. */
int cli_conn_init(struct cli_conn *c, const struct cli_opts *o, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void cli_conn_release(struct cli_conn *c);

/* Append "name=value" to a query string, percent-encoded, "&" between
 * parameters. A NULL value appends nothing. */
void cli_qs_add(struct buf *qs, const char *name, const char *value);

/* A body's bytes as they arrive: 0 to go on, -1 to stop the transfer. */
typedef int (*cli_sink_fn)(void *ud, const char *p, size_t n);

struct cli_request {
    const char *path;  /* "/v1/events" */
    const char *query; /* the query string, or NULL */
    /* NULL: the body goes to reply.body. Else the body of a 2xx answer goes
     * to sink (constant memory), an error answer's to reply.body. */
    cli_sink_fn sink;
    void (*tick)(void *ud); /* NULL, or called now and then while it runs */
    void *ud;
    bool stream;   /* a long transfer: the timeout bounds silence, not the whole */
    bool no_token; /* /healthz, /metrics: the token is for the query API only */
};

struct cli_reply {
    long status; /* the HTTP status; -1 when no answer came */
    struct buf body;
    /* headers (empty when absent), as sent: escape before showing */
    char served_by[128], lag_ms[24], cache[16], retry_after[16];
    int curl_rc;        /* CURLcode of the transfer */
    char curl_err[256]; /* libcurl's words for it */
    bool sink_stopped;  /* the sink said stop */
    bool interrupted;   /* SIGINT/SIGTERM */
};

/* GET base + path [? query]. Fills r (release it either way); returns 0
 * when an answer came whole, -1 when the transfer failed (r says why). */
int cli_http_get(const struct cli_conn *c, const struct cli_request *rq, struct cli_reply *r);
void cli_reply_release(struct cli_reply *r);
/* The answer's body as JSON (caller decrefs), or NULL when it is not.
 * Numbers jansson cannot hold (an attrs value may be 1e400) make every
 * number a string rather than refusing the whole answer: for display. */
json_t *cli_reply_json(const struct cli_reply *r);

/* The exit status an answer means (enum cli_exit): CLI_OK for a complete
 * 2xx; otherwise one line on stderr (the API's "error" text, its status and
 * code) and CLI_USAGE (400, 405, 413, 414), CLI_AUTH (401, 403),
 * CLI_NOT_FOUND (404), CLI_UNAVAILABLE (no answer, 5xx, cut short, other),
 * CLI_INTERRUPTED. A sink that stopped the transfer has said why itself:
 * CLI_NOT_FOUND, silently. */
int cli_reply_status(const struct cli_conn *c, const struct cli_reply *r);

#endif
