/* JSON of the read path's rows (aggregator/query_render.h), written
 * straight into a buf (common/jsonw.h): a page of 1000 events costs no
 * tree. jsonb columns arrive as valid JSON text and are copied as is. */
#include "aggregator/query_render.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashchain.h"
#include "common/jsonw.h"
#include "common/timeutil.h"
#include "common/utf8.h"
#include "common/xmalloc.h"

enum {
    C_TIME = 0,
    C_ID,
    C_STREAM,
    C_SEQ,
    C_TIME_SOURCE,
    C_READ_TIME,
    C_TENANT,
    C_ACTOR,
    C_ACTION,
    C_RESOURCE,
    C_OUTCOME,
    C_SOURCE,
    C_ATTRS,
    C_RAW,
    C_HASH,
    C_PREV,
    C_FORMAT
};

static const char *val(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

int64_t render_event_time(const PGresult *res, int row)
{
    return strtoll(PQgetvalue(res, row, C_TIME), NULL, 10);
}

const char *render_event_id(const PGresult *res, int row)
{
    return PQgetvalue(res, row, C_ID);
}

void render_time(struct buf *out, int64_t us)
{
    char t[TIME_RFC3339_LEN];
    time_format_us(us, t);
    buf_addc(out, '"');
    buf_adds(out, t);
    buf_addc(out, '"');
}

/* A text column as a JSON string, or null. */
static void str_or_null(struct buf *out, const char *v)
{
    if (v)
        jsonw_cstr(out, v);
    else
        BUF_LIT(out, "null");
}

/* A bytea column's hex text ("\x…") without its prefix. */
static const char *bytea_hex(const PGresult *res, int row, int col)
{
    const char *v = PQgetvalue(res, row, col);
    return v[0] == '\\' && v[1] == 'x' ? v + 2 : v;
}

static void json_hex_str(struct buf *out, const char *hex)
{
    buf_addc(out, '"');
    buf_adds(out, hex);
    buf_addc(out, '"');
}

/* The record's bytes: "line" when valid UTF-8, else "line_b64". */
static void render_line(const PGresult *res, int row, struct buf *out)
{
    const char *hex = bytea_hex(res, row, C_RAW);
    size_t n = strlen(hex) / 2;
    uint8_t *raw = xmalloc(n + 1);
    if (hex_decode(hex, n, raw) != 0)
        n = 0;
    jsonw_key(out, "line", false);
    if (!jsonw_str(out, raw, n)) {
        out->len -= 8; /* take back ,"line": */
        out->p[out->len] = '\0';
        jsonw_key(out, "line_b64", false);
        jsonw_b64(out, raw, n);
    }
    free(raw);
}

void render_event_json(const PGresult *res, int row, struct buf *out)
{
    buf_addc(out, '{');
    jsonw_key(out, "id", true);
    jsonw_cstr(out, PQgetvalue(res, row, C_ID));
    jsonw_key(out, "stream", false);
    jsonw_cstr(out, PQgetvalue(res, row, C_STREAM));
    jsonw_key(out, "seq", false);
    buf_adds(out, PQgetvalue(res, row, C_SEQ));
    jsonw_key(out, "time", false);
    render_time(out, render_event_time(res, row));
    jsonw_key(out, "time_source", false);
    jsonw_cstr(out, PQgetvalue(res, row, C_TIME_SOURCE));
    jsonw_key(out, "read_time", false);
    render_time(out, strtoll(PQgetvalue(res, row, C_READ_TIME), NULL, 10));
    static const char *const fields[] = {"tenant", "actor", "action", "resource", "outcome"};
    for (int f = 0; f < 5; f++) {
        jsonw_key(out, fields[f], false);
        str_or_null(out, val(res, row, C_TENANT + f));
    }
    jsonw_key(out, "source", false);
    buf_adds(out, PQgetvalue(res, row, C_SOURCE));
    jsonw_key(out, "attrs", false);
    const char *attrs = val(res, row, C_ATTRS);
    buf_adds(out, attrs ? attrs : "null");
    render_line(res, row, out);
    jsonw_key(out, "hash", false);
    json_hex_str(out, bytea_hex(res, row, C_HASH));
    jsonw_key(out, "prev", false);
    json_hex_str(out, bytea_hex(res, row, C_PREV));
    buf_addc(out, '}');
}

/* ---- FHIR R4 AuditEvent */

/* FHIR's action code (C, R, U, D, E) for an action text. */
static const char *fhir_action(const char *a)
{
    if (!a)
        return "E";
    if (strlen(a) == 1 && strchr("CRUDE", a[0]))
        return a;
    static const struct {
        const char *word, *code;
    } map[] = {{"create", "C"}, {"insert", "C"}, {"post", "C"},   {"read", "R"},   {"view", "R"},
               {"get", "R"},    {"search", "R"}, {"select", "R"}, {"update", "U"}, {"put", "U"},
               {"patch", "U"},  {"delete", "D"}, {"remove", "D"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++)
        if (strcasecmp(a, map[i].word) == 0)
            return map[i].code;
    return "E";
}

/* FHIR's outcome code (0 success, 4 minor, 8 serious, 12 major failure),
 * or NULL when the text does not say. */
static const char *fhir_outcome(const char *o)
{
    if (!o)
        return NULL;
    if (!strcmp(o, "0") || !strcmp(o, "4") || !strcmp(o, "8") || !strcmp(o, "12"))
        return o;
    static const char *const ok[] = {"success", "ok", "allow", "allowed", "granted", "succeeded"};
    static const char *const bad[] = {"failure", "fail",  "failed",   "deny",
                                      "denied",  "error", "forbidden"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        if (strcasecmp(o, ok[i]) == 0)
            return "0";
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        if (strcasecmp(o, bad[i]) == 0)
            return "8";
    return NULL;
}

/* A Reference: {"reference": "Type/id"} when it looks like one, else an
 * identifier. */
static void fhir_reference(struct buf *out, const char *v)
{
    const char *slash = strchr(v, '/');
    bool ref = slash && slash > v && v[0] >= 'A' && v[0] <= 'Z' && slash[1] &&
               !strchr(slash + 1, '/') && !strchr(v, ' ');
    buf_addc(out, '{');
    if (ref) {
        jsonw_key(out, "reference", true);
        jsonw_cstr(out, v);
    } else {
        jsonw_key(out, "identifier", true);
        BUF_LIT(out, "{\"value\":");
        jsonw_cstr(out, v);
        buf_addc(out, '}');
    }
    buf_addc(out, '}');
}

void render_event_fhir(const PGresult *res, int row, struct buf *out)
{
    const char *format = PQgetvalue(res, row, C_FORMAT), *attrs = val(res, row, C_ATTRS);
    if (!strcmp(format, "fhir") && attrs) {
        buf_adds(out, attrs); /* parsed from a FHIR AuditEvent: itself */
        return;
    }
    const char *action = val(res, row, C_ACTION), *actor = val(res, row, C_ACTOR);
    const char *resource = val(res, row, C_RESOURCE), *outcome = val(res, row, C_OUTCOME);
    BUF_LIT(out, "{\"resourceType\":\"AuditEvent\"");
    jsonw_key(out, "id", false);
    jsonw_cstr(out, PQgetvalue(res, row, C_ID));
    /* type: what kind of event, in auditrail's own code system (the
     * record's action text) */
    BUF_LIT(out, ",\"type\":{\"system\":\"urn:auditrail:action\",\"code\":");
    str_or_null(out, action ? action : "unknown");
    buf_addc(out, '}');
    jsonw_key(out, "action", false);
    jsonw_cstr(out, fhir_action(action));
    jsonw_key(out, "recorded", false);
    render_time(out, render_event_time(res, row));
    const char *oc = fhir_outcome(outcome);
    if (oc) {
        jsonw_key(out, "outcome", false);
        jsonw_cstr(out, oc);
    }
    if (outcome) {
        jsonw_key(out, "outcomeDesc", false);
        jsonw_cstr(out, outcome);
    }
    BUF_LIT(out, ",\"agent\":[{\"requestor\":true,\"who\":");
    if (actor)
        fhir_reference(out, actor);
    else
        BUF_LIT(out, "{\"display\":\"unknown\"}");
    BUF_LIT(out, "}]");
    /* source.observer: the auditrail source (namespace/pod/container) */
    BUF_LIT(out, ",\"source\":{\"observer\":{\"display\":");
    const char *src = PQgetvalue(res, row, C_SOURCE), *name = strstr(src, "\"name\": ");
    if (name) { /* jsonb text: "name": "…" — copy the JSON string as is */
        const char *s = name + 8, *e = s + 1;
        while (*e && *e != '"')
            e += *e == '\\' && e[1] ? 2 : 1;
        if (*s == '"' && *e == '"')
            buf_add(out, s, (size_t)(e - s + 1));
        else
            BUF_LIT(out, "\"auditrail\"");
    } else {
        BUF_LIT(out, "\"auditrail\"");
    }
    buf_addc(out, '}');
    const char *tenant = val(res, row, C_TENANT);
    if (tenant) {
        jsonw_key(out, "site", false);
        jsonw_cstr(out, tenant);
    }
    buf_addc(out, '}');
    if (resource) {
        BUF_LIT(out, ",\"entity\":[{\"what\":");
        fhir_reference(out, resource);
        BUF_LIT(out, "}]");
    }
    buf_addc(out, '}');
}

/* ---- streams and incidents */
void render_stream_json(const PGresult *res, int row, struct buf *out)
{
    buf_addc(out, '{');
    jsonw_key(out, "id", true);
    jsonw_cstr(out, PQgetvalue(res, row, 0));
    jsonw_key(out, "last_seq", false);
    buf_adds(out, PQgetvalue(res, row, 1));
    jsonw_key(out, "last_hash", false);
    json_hex_str(out, PQgetvalue(res, row, 2));
    jsonw_key(out, "first_seen", false);
    render_time(out, strtoll(PQgetvalue(res, row, 3), NULL, 10));
    jsonw_key(out, "last_seen", false);
    render_time(out, strtoll(PQgetvalue(res, row, 4), NULL, 10));
    jsonw_key(out, "source", false);
    const char *src = val(res, row, 5);
    buf_adds(out, src ? src : "null");
    jsonw_key(out, "gaps", false);
    buf_adds(out, PQgetvalue(res, row, 6));
    jsonw_key(out, "chain_breaks", false);
    buf_adds(out, PQgetvalue(res, row, 7));
    jsonw_key(out, "forks", false);
    buf_adds(out, PQgetvalue(res, row, 8));
    if (PQnfields(res) > 9) {
        jsonw_key(out, "rows", false);
        const char *n = val(res, row, 9);
        buf_adds(out, n ? n : "null");
    }
    buf_addc(out, '}');
}

void render_incident_json(const PGresult *res, int row, struct buf *out)
{
    buf_addc(out, '{');
    jsonw_key(out, "id", true);
    buf_adds(out, PQgetvalue(res, row, 0));
    jsonw_key(out, "detected_at", false);
    render_time(out, strtoll(PQgetvalue(res, row, 1), NULL, 10));
    jsonw_key(out, "kind", false);
    jsonw_cstr(out, PQgetvalue(res, row, 2));
    jsonw_key(out, "stream", false);
    jsonw_cstr(out, PQgetvalue(res, row, 3));
    jsonw_key(out, "seq", false);
    buf_adds(out, PQgetvalue(res, row, 4));
    jsonw_key(out, "expected", false);
    str_or_null(out, val(res, row, 5));
    jsonw_key(out, "actual", false);
    str_or_null(out, val(res, row, 6));
    jsonw_key(out, "evidence", false);
    const char *ev = val(res, row, 7);
    buf_adds(out, ev ? ev : "null");
    buf_addc(out, '}');
}
