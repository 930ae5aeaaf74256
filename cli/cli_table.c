/* Tables of the list verbs (cli/cli_table.h): one column list per kind;
 * a key "a:b" shows two values joined by ':' (stream:seq), "a.b" a member
 * of an object (source.name). */
#include "cli/cli_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_text.h"

struct col {
    const char *title;
    const char *key;
    size_t width; /* columns; the last column is cut at width (0: never) but not padded */
};

static const struct col event_cols[] = {
    {"TIME", "time", 27},
    {"TENANT", "tenant", 14},
    {"ACTOR", "actor", 20},
    {"ACTION", "action", 16},
    {"RESOURCE", "resource", 24},
    {"OUTCOME", "outcome", 9},
    {"STREAM:SEQ", "stream:seq", 0},
};

static const struct col stream_cols[] = {
    {"STREAM", "id", 32}, {"LAST_SEQ", "last_seq", 10},  {"LAST_SEEN", "last_seen", 27},
    {"GAPS", "gaps", 5},  {"BREAKS", "chain_breaks", 6}, {"FORKS", "forks", 5},
    {"ROWS", "rows", 10}, {"SOURCE", "source.name", 48},
};

static const struct col incident_cols[] = {
    {"DETECTED_AT", "detected_at", 27}, {"KIND", "kind", 11},     {"STREAM:SEQ", "stream:seq", 44},
    {"EXPECTED", "expected", 16},       {"ACTUAL", "actual", 16}, {"EVIDENCE", "evidence", 48},
};

/* The evidence in full: a hash is 64 hex characters. */
static const struct col finding_cols[] = {
    {"KIND", "kind", 20},       {"STREAM:SEQ", "stream:seq", 44},
    {"SEQ_END", "seq_end", 10}, {"EVENT_TIME", "event_time", 27},
    {"STORED", "stored", 64},   {"COMPUTED", "computed", 64},
    {"DETAIL", "detail", 80},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct col *cols_of(enum cli_table_kind k, size_t *n)
{
    switch (k) {
    case CLI_TABLE_STREAMS:
        *n = N(stream_cols);
        return stream_cols;
    case CLI_TABLE_INCIDENTS:
        *n = N(incident_cols);
        return incident_cols;
    case CLI_TABLE_FINDINGS:
        *n = N(finding_cols);
        return finding_cols;
    case CLI_TABLE_EVENTS:
        break;
    }
    *n = N(event_cols);
    return event_cols;
}

/* A value's text: strings as they are, null or missing "-", other JSON
 * compact. Appended unescaped to raw (the caller escapes). */
static void value_text(struct buf *raw, json_t *v)
{
    if (!v || json_is_null(v)) {
        buf_addc(raw, '-');
    } else if (json_is_string(v)) {
        buf_add(raw, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        buf_addf(raw, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (s)
            buf_adds(raw, s);
        free(s);
    }
}

static json_t *member(json_t *item, const char *key, size_t n)
{
    char k[64];
    snprintf(k, sizeof(k), "%.*s", (int)n, key);
    const char *dot = strchr(k, '.');
    if (!dot)
        return json_object_get(item, k);
    k[dot - k] = '\0';
    return json_object_get(json_object_get(item, k), dot + 1);
}

static void cell(struct buf *out, json_t *item, const struct col *c, bool last)
{
    struct buf raw = BUF_INIT;
    const char *colon = strchr(c->key, ':');
    if (colon) {
        value_text(&raw, member(item, c->key, (size_t)(colon - c->key)));
        buf_addc(&raw, ':');
        value_text(&raw, member(item, colon + 1, strlen(colon + 1)));
    } else {
        value_text(&raw, member(item, c->key, strlen(c->key)));
    }
    cli_text_cell(out, raw.p, raw.len, c->width, !last);
    buf_release(&raw);
}

void cli_table_header(struct buf *out, enum cli_table_kind k)
{
    size_t n;
    const struct col *cols = cols_of(k, &n);
    for (size_t i = 0; i < n; i++) {
        if (i)
            BUF_LIT(out, "  ");
        cli_text_cell(out, cols[i].title, strlen(cols[i].title), cols[i].width, i + 1 < n);
    }
    buf_addc(out, '\n');
}

void cli_table_row(struct buf *out, enum cli_table_kind k, json_t *item)
{
    size_t n;
    const struct col *cols = cols_of(k, &n);
    for (size_t i = 0; i < n; i++) {
        if (i)
            BUF_LIT(out, "  ");
        cell(out, item, &cols[i], i + 1 == n);
    }
    buf_addc(out, '\n');
}

static void field(struct buf *out, const char *label, json_t *v)
{
    struct buf raw = BUF_INIT;
    value_text(&raw, v);
    cli_text_cell(out, label, strlen(label), 14, true);
    cli_text_escape(out, raw.p, raw.len);
    buf_addc(out, '\n');
    buf_release(&raw);
}

void cli_table_stream(struct buf *out, json_t *s)
{
    static const struct {
        const char *label, *key;
    } fields[] = {
        {"stream", "id"},           {"last seq", "last_seq"},
        {"last hash", "last_hash"}, {"first seen", "first_seen"},
        {"last seen", "last_seen"}, {"rows", "rows"},
        {"gaps", "gaps"},           {"chain breaks", "chain_breaks"},
        {"forks", "forks"},
    };
    for (size_t i = 0; i < N(fields); i++) {
        field(out, fields[i].label, json_object_get(s, fields[i].key));
        if (i == 0) { /* the source's identity right under the id */
            json_t *src = json_object_get(s, "source");
            const char *k;
            json_t *v;
            if (json_is_object(src)) {
                json_object_foreach(src, k, v)
                {
                    char label[64];
                    snprintf(label, sizeof(label), "source.%s", k);
                    field(out, label, v);
                }
            } else {
                field(out, "source", src);
            }
        }
    }
    json_t *inc = json_object_get(s, "incidents");
    size_t n = json_array_size(inc);
    buf_addf(out, "\n%zu incident%s%s\n", n, n == 1 ? "" : "s", n ? ":" : "");
    if (!n)
        return;
    cli_table_header(out, CLI_TABLE_INCIDENTS);
    size_t i;
    json_t *it;
    json_array_foreach(inc, i, it)
    {
        cli_table_row(out, CLI_TABLE_INCIDENTS, it);
    }
}
