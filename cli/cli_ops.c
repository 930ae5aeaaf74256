/* The operator verbs that are not the query API's: health and metrics of
 * any auditrail program's HTTP side (no token sent). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_text.h"

static void show(const char *what, const struct cli_reply *r)
{
    struct buf line = BUF_INIT;
    buf_addf(&line, "%-7s %ld ", what, r->status);
    size_t n = r->body.len;
    while (n && (r->body.p[n - 1] == '\n' || r->body.p[n - 1] == '\r'))
        n--;
    cli_text_escape(&line, r->body.p ? r->body.p : "", n);
    printf("%s\n", buf_cstr(&line));
    buf_release(&line);
}

int cli_health(struct cli_ctx *c)
{
    struct cli_reply h, r = {.status = -1};
    struct cli_request rq = {.path = "/healthz", .no_token = true};
    int ex = CLI_UNAVAILABLE;
    cli_http_get(&c->conn, &rq, &h);
    if (h.status < 0) {
        ex = cli_reply_status(&c->conn, &h);
        goto out;
    }
    rq.path = "/readyz";
    cli_http_get(&c->conn, &rq, &r);
    if (r.status < 0) {
        ex = cli_reply_status(&c->conn, &r);
        goto out;
    }
    show("healthz", &h);
    show("readyz", &r);
    ex = h.status == 200 && r.status == 200 ? CLI_OK : CLI_NOT_FOUND;
out:
    cli_reply_release(&h);
    cli_reply_release(&r);
    return ex;
}

int cli_metrics(struct cli_ctx *c)
{
    const char *prefix = c->o->argc > 0 ? c->o->argv[0] : NULL;
    struct cli_reply r;
    struct cli_request rq = {.path = "/metrics", .no_token = true};
    cli_http_get(&c->conn, &rq, &r);
    int ex = cli_reply_status(&c->conn, &r);
    if (ex == CLI_OK) {
        size_t plen = prefix ? strlen(prefix) : 0;
        char *text = r.body.p ? r.body.p : "";
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
            if (!prefix || strncmp(line, prefix, plen) == 0)
                puts(line);
    }
    cli_reply_release(&r);
    return ex;
}
