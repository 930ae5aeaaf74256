/* The paged verbs: query (/v1/events), streams (/v1/streams) and incidents
 * (/v1/incidents). One page, or with --all every page by next_cursor up to
 * --max rows; a table (and a summary line on stderr), the API's JSON page
 * as is, or with --all its array's elements as NDJSON, byte for byte. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_json.h"
#include "cli/cli_params.h"
#include "cli/cli_table.h"
#include "cli/cli_text.h"
#include "common/xmalloc.h"

struct list_kind {
    const char *path;  /* the endpoint */
    const char *array; /* the answer's array, and the noun of the summary */
    enum cli_table_kind table;
    bool default_range; /* events: the last 24 hours unless told */
};

static const struct list_kind k_events = {"/v1/events", "events", CLI_TABLE_EVENTS, true};
static const struct list_kind k_streams = {"/v1/streams", "streams", CLI_TABLE_STREAMS, false};
static const struct list_kind k_incidents = {"/v1/incidents", "incidents", CLI_TABLE_INCIDENTS,
                                             false};

/* A page at a time: --all shows progress as it goes. */
int cli_out_flush(struct buf *b)
{
    int rc = 0;
    if (b->len && (fwrite(b->p, 1, b->len, stdout) != b->len || fflush(stdout) != 0)) {
        if (errno != EPIPE)
            fprintf(stderr, "auditrail: standard output: %s\n", strerror(errno));
        rc = -1;
    }
    buf_reset(b);
    return rc;
}

void cli_out_body_line(struct buf *out, const struct cli_reply *r)
{
    buf_add(out, r->body.p, r->body.len);
    if (!r->body.len || r->body.p[r->body.len - 1] != '\n')
        buf_addc(out, '\n');
}

int cli_page_get(struct cli_ctx *c, const char *path, const char *qs, unsigned limit,
                 const char *array, char **cursor, struct cli_reply *r, json_t **j, json_t **items)
{
    struct buf page_qs = BUF_INIT;
    buf_adds(&page_qs, qs);
    if (limit) {
        char l[16];
        snprintf(l, sizeof(l), "%u", limit);
        cli_qs_add(&page_qs, "limit", l);
    }
    cli_qs_add(&page_qs, "cursor", *cursor);
    cli_reply_release(r);
    struct cli_request rq = {.path = path, .query = buf_cstr(&page_qs)};
    cli_http_get(&c->conn, &rq, r);
    buf_release(&page_qs);
    int ex = cli_reply_status(&c->conn, r);
    if (ex != CLI_OK)
        return ex;
    *j = cli_reply_json(r);
    *items = json_object_get(*j, array);
    json_t *next = json_object_get(*j, "next_cursor");
    if (!json_is_array(*items) || (next && !json_is_string(next) && !json_is_null(next))) {
        fprintf(stderr, "auditrail: the answer of %s is not the API's JSON\n", path);
        json_decref(*j);
        *j = *items = NULL;
        return CLI_UNAVAILABLE;
    }
    free(*cursor);
    *cursor = json_is_string(next) ? xstrdup(json_string_value(next)) : NULL;
    return CLI_OK;
}

static void ndjson_line(void *ud, const char *p, size_t n)
{
    buf_add(ud, p, n);
    buf_addc(ud, '\n');
}

/* "N events · served by X · replica lag L ms · cache hit" on stderr. */
void cli_summary_routing(struct buf *s, const struct cli_reply *r)
{
    if (r->served_by[0]) {
        BUF_LIT(s, " \xc2\xb7 served by ");
        cli_text_escape(s, r->served_by, strlen(r->served_by));
    }
    if (r->lag_ms[0]) {
        BUF_LIT(s, " \xc2\xb7 replica lag ");
        cli_text_escape(s, r->lag_ms, strlen(r->lag_ms));
        BUF_LIT(s, " ms");
    }
    if (r->cache[0]) {
        BUF_LIT(s, " \xc2\xb7 cache ");
        cli_text_escape(s, r->cache, strlen(r->cache));
    }
}

static void summary(const char *noun, unsigned long n, const struct cli_reply *r)
{
    struct buf s = BUF_INIT;
    buf_addf(&s, "%lu %s", n, noun);
    cli_summary_routing(&s, r);
    fprintf(stderr, "%s\n", buf_cstr(&s));
    buf_release(&s);
}

static int list_run(struct cli_ctx *c, const struct list_kind *k)
{
    const struct cli_opts *o = c->o;
    char err[256];
    struct buf qs = BUF_INIT, out = BUF_INIT;
    struct cli_reply r = {.status = -1};
    char *cursor = o->cursor ? xstrdup(o->cursor) : NULL;
    unsigned long total = 0, max = o->max ? o->max : CLI_MAX_DEFAULT;
    int ex = CLI_OK;
    if (o->max && !o->all) {
        fprintf(stderr, "auditrail: --max goes with --all\n");
        ex = CLI_USAGE;
        goto out;
    }
    if (cli_params_build(o, c->now_us, k->default_range, &qs, err, sizeof(err)) != 0) {
        fprintf(stderr, "auditrail: %s\n", err);
        ex = CLI_USAGE;
        goto out;
    }
    for (unsigned page = 0;; page++) {
        unsigned limit = o->limit ? o->limit : o->all ? CLI_LIMIT_MAX : 0;
        if (o->all && limit > max - total)
            limit = (unsigned)(max - total);
        json_t *j, *items;
        ex = cli_page_get(c, k->path, buf_cstr(&qs), limit, k->array, &cursor, &r, &j, &items);
        if (ex != CLI_OK)
            goto out;
        size_t n = json_array_size(items);
        if (o->json && o->all) {
            cli_json_each(r.body.p, r.body.len, k->array, ndjson_line, &out);
        } else if (o->json) {
            cli_out_body_line(&out, &r);
        } else {
            if (page == 0)
                cli_table_header(&out, k->table);
            size_t i;
            json_t *it;
            json_array_foreach(items, i, it)
            {
                cli_table_row(&out, k->table, it);
            }
        }
        total += n;
        json_decref(j);
        if (cli_out_flush(&out) != 0) {
            ex = CLI_NOT_FOUND;
            goto out;
        }
        if (!o->all || !cursor)
            break;
        if (total >= max) {
            /* Bounded on purpose: more than --max rows is an export. The
             * cursor lets a script go on from here. */
            struct buf m = BUF_INIT;
            buf_addf(&m, "auditrail: stopped at --max %lu %s; more follow: --cursor ", max,
                     k->array);
            cli_text_escape(&m, cursor, strlen(cursor));
            BUF_LIT(&m, " (or auditrail export)\n");
            fputs(m.p, stderr);
            buf_release(&m);
            ex = CLI_NOT_FOUND;
            break;
        }
        if (c->conn.stop && *c->conn.stop) {
            fprintf(stderr, "auditrail: interrupted\n");
            ex = CLI_INTERRUPTED;
            goto out;
        }
    }
    if (!o->json)
        summary(k->array, total, &r);
    if (ex == CLI_OK && o->fail_empty && total == 0)
        ex = CLI_NOT_FOUND;
out:
    cli_reply_release(&r);
    free(cursor);
    buf_release(&qs);
    buf_release(&out);
    return ex;
}

int cli_query(struct cli_ctx *c)
{
    return list_run(c, &k_events);
}

int cli_streams(struct cli_ctx *c)
{
    return list_run(c, &k_streams);
}

int cli_incidents(struct cli_ctx *c)
{
    return list_run(c, &k_incidents);
}
