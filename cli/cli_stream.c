/* auditrail stream ID: one stream's head, counts and latest incidents
 * (GET /v1/streams/{id}); exit 1 when the token cannot see such a stream. */
#include <jansson.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/cli_params.h"
#include "cli/cli_table.h"

int cli_stream(struct cli_ctx *c)
{
    const struct cli_opts *o = c->o;
    char sid[33], err[256];
    struct buf qs = BUF_INIT, out = BUF_INIT;
    struct cli_reply r = {.status = -1};
    int ex;
    if (!cli_stream_id(o->argv[0], sid)) {
        fprintf(stderr, "auditrail: stream: the id is 32 hex characters\n");
        ex = CLI_USAGE;
        goto out;
    }
    if (cli_params_build(o, c->now_us, false, &qs, err, sizeof(err)) != 0) {
        fprintf(stderr, "auditrail: %s\n", err);
        ex = CLI_USAGE;
        goto out;
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/streams/%s", sid);
    struct cli_request rq = {.path = path, .query = buf_cstr(&qs)};
    cli_http_get(&c->conn, &rq, &r);
    ex = cli_reply_status(&c->conn, &r);
    if (ex != CLI_OK)
        goto out;
    if (o->json) {
        cli_out_body_line(&out, &r);
    } else {
        json_t *j = cli_reply_json(&r);
        if (!json_is_object(j)) {
            fprintf(stderr, "auditrail: the answer of /v1/streams/{id} is not the API's JSON\n");
            json_decref(j);
            ex = CLI_UNAVAILABLE;
            goto out;
        }
        cli_table_stream(&out, j);
        json_decref(j);
    }
    if (fwrite(out.p, 1, out.len, stdout) != out.len || fflush(stdout) != 0)
        ex = CLI_NOT_FOUND;
out:
    cli_reply_release(&r);
    buf_release(&qs);
    buf_release(&out);
    return ex;
}
