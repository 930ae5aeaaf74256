/* auditrail verify: GET /v1/streams/{id}/verify for one stream (--stream),
 * or for every stream that GET /v1/streams lists for --tenant/--from/--to
 * (every page), one after the other; the findings as a table and one
 * summary line on stderr, or with --json each answer as it came, one line
 * per stream. Exit 0 intact, 1 problems, else the first failed request's. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_params.h"
#include "cli/cli_table.h"
#include "common/xmalloc.h"

struct verify_run {
    struct cli_ctx *c;
    const char *qs; /* the verify request's filters */
    struct buf out;
    struct cli_reply r; /* the last answer: its routing headers */
    bool header, problems;
    unsigned long streams, records, problem_count, notes;
    double seconds;
};

static json_int_t int_of(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* Verify stream sid (32 lower-case hex): its findings to v->out, counts
 * added. An exit status: CLI_OK whatever the findings (v->problems says). */
static int verify_one(struct verify_run *v, const char *sid)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/streams/%s/verify", sid);
    struct cli_request rq = {.path = path, .query = v->qs};
    cli_reply_release(&v->r);
    cli_http_get(&v->c->conn, &rq, &v->r);
    int ex = cli_reply_status(&v->c->conn, &v->r);
    if (ex != CLI_OK)
        return ex;
    json_t *j = cli_reply_json(&v->r);
    json_t *findings = json_object_get(j, "findings"), *sum = json_object_get(j, "summary");
    const char *status = json_string_value(json_object_get(sum, "status"));
    if (!json_is_array(findings) || !status ||
        (strcmp(status, "intact") != 0 && strcmp(status, "problems") != 0)) {
        fprintf(stderr, "auditrail: the answer of /v1/streams/{id}/verify is not the API's JSON\n");
        json_decref(j);
        return CLI_UNAVAILABLE;
    }
    if (v->c->o->json) {
        cli_out_body_line(&v->out, &v->r);
    } else {
        size_t i;
        json_t *f;
        json_array_foreach(findings, i, f)
        {
            if (!v->header)
                cli_table_header(&v->out, CLI_TABLE_FINDINGS);
            v->header = true;
            cli_table_row(&v->out, CLI_TABLE_FINDINGS, f);
        }
    }
    v->problems |= strcmp(status, "problems") == 0;
    v->streams += (unsigned long)int_of(sum, "streams");
    v->records += (unsigned long)int_of(sum, "records");
    v->problem_count += (unsigned long)int_of(sum, "problems");
    v->notes += (unsigned long)int_of(sum, "notes");
    v->seconds += json_number_value(json_object_get(sum, "seconds"));
    json_decref(j);
    return cli_out_flush(&v->out) == 0 ? CLI_OK : CLI_NOT_FOUND;
}

/* Every stream GET /v1/streams lists with the same filters, page by page. */
static int verify_listed(struct verify_run *v)
{
    struct cli_reply r = {.status = -1};
    char *cursor = NULL;
    int ex;
    do {
        json_t *j, *items;
        ex = cli_page_get(v->c, "/v1/streams", v->qs, CLI_LIMIT_MAX, "streams", &cursor, &r, &j,
                          &items);
        if (ex != CLI_OK)
            break;
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            char sid[33];
            const char *id = json_string_value(json_object_get(it, "id"));
            if (!id || !cli_stream_id(id, sid)) {
                fprintf(stderr, "auditrail: /v1/streams listed a stream without an id\n");
                ex = CLI_UNAVAILABLE;
            } else if (v->c->conn.stop && *v->c->conn.stop) {
                fprintf(stderr, "auditrail: interrupted\n");
                ex = CLI_INTERRUPTED;
            } else {
                ex = verify_one(v, sid);
            }
            if (ex != CLI_OK)
                break;
        }
        json_decref(j);
    } while (ex == CLI_OK && cursor);
    free(cursor);
    cli_reply_release(&r);
    return ex;
}

int cli_verify(struct cli_ctx *c)
{
    char err[256], sid[33];
    /* the stream goes in the path, not among the filters */
    struct cli_opts filters = *c->o;
    filters.stream = NULL;
    struct buf qs = BUF_INIT;
    struct verify_run v = {.c = c, .out = BUF_INIT, .r = {.status = -1}};
    int ex;
    if (c->o->stream && !cli_stream_id(c->o->stream, sid)) {
        fprintf(stderr, "auditrail: --stream takes a stream id: 32 hex characters\n");
        ex = CLI_USAGE;
        goto out;
    }
    if (cli_params_build(&filters, c->now_us, false, &qs, err, sizeof(err)) != 0) {
        fprintf(stderr, "auditrail: %s\n", err);
        ex = CLI_USAGE;
        goto out;
    }
    v.qs = buf_cstr(&qs);
    ex = c->o->stream ? verify_one(&v, sid) : verify_listed(&v);
    if (ex != CLI_OK)
        goto out;
    if (!c->o->json) {
        struct buf s = BUF_INIT;
        buf_addf(&s,
                 "%s \xc2\xb7 %lu stream%s \xc2\xb7 %lu records \xc2\xb7 %lu problems \xc2\xb7 "
                 "%lu notes \xc2\xb7 %.3f s",
                 v.problems ? "problems" : "intact", v.streams, v.streams == 1 ? "" : "s",
                 v.records, v.problem_count, v.notes, v.seconds);
        cli_summary_routing(&s, &v.r);
        fprintf(stderr, "%s\n", buf_cstr(&s));
        buf_release(&s);
    }
    ex = v.problems ? CLI_PROBLEMS : CLI_OK;
out:
    cli_reply_release(&v.r);
    buf_release(&v.out);
    buf_release(&qs);
    return ex;
}
