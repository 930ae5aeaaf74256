/* FHIR R4 on the query API: /fhir/AuditEvent search parameters mapped onto
 * the events query (date=ge…&date=lt… → from/to, agent → actor, entity →
 * resource, action, outcome, _count → limit, _cursor, and auditrail's
 * tenant), OperationOutcome errors, and the Bundle's self/next links. The
 * Bundle itself is written by query_events.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/query_int.h"
#include "aggregator/query_render.h"
#include "common/jsonw.h"
#include "common/timeutil.h"

static int refuse(struct qreq *q, const char *code, const char *msg)
{
    q->perr.status = 400;
    snprintf(q->perr.code, sizeof(q->perr.code), "%s", code);
    snprintf(q->perr.msg, sizeof(q->perr.msg), "%s", msg);
    return -1;
}

/* A FHIR date or dateTime: YYYY-MM-DD (midnight UTC; *day set) or a full
 * RFC 3339 instant. */
static int fhir_time(const char *s, int64_t *us, bool *day)
{
    *day = false;
    if (strlen(s) == 10) {
        char full[32];
        snprintf(full, sizeof(full), "%sT00:00:00Z", s);
        *day = true;
        return time_parse_rfc3339(full, strlen(full), us);
    }
    return time_parse_rfc3339(s, strlen(s), us);
}

static int take_date(struct qreq *q, const char *v)
{
    if (strlen(v) < 3)
        return refuse(q, "bad_time", "date needs a prefix and a value, e.g. date=ge2026-11-26");
    char prefix[3] = {v[0], v[1], '\0'};
    int64_t us;
    bool day;
    if (fhir_time(v + 2, &us, &day) != 0)
        return refuse(q, "bad_time", "date must be YYYY-MM-DD or an RFC 3339 instant");
    int64_t next = day ? us + INT64_C(86400000000) : us + 1; /* the first instant after v */
    struct qparams *p = &q->p;
    if (!strcmp(prefix, "ge") || !strcmp(prefix, "gt")) {
        if (p->has_from)
            return refuse(q, "duplicate_parameter", "date=ge/gt given twice");
        p->has_from = true;
        p->from_us = !strcmp(prefix, "ge") ? us : next;
    } else if (!strcmp(prefix, "lt") || !strcmp(prefix, "le")) {
        if (p->has_to)
            return refuse(q, "duplicate_parameter", "date=lt/le given twice");
        p->has_to = true;
        p->to_us = !strcmp(prefix, "lt") ? us : next;
    } else {
        return refuse(q, "unknown_parameter",
                      "date takes the prefixes ge, gt, lt and le (a bounded range)");
    }
    return 0;
}

int query_fhir_take(struct qreq *q, const char *name, const char *value)
{
    static const struct {
        const char *fhir, *ours;
    } map[] = {{"agent", "actor"},     {"entity", "resource"}, {"action", "action"},
               {"outcome", "outcome"}, {"_count", "limit"},    {"_cursor", "cursor"},
               {"tenant", "tenant"}};
    if (!value || !*value)
        return refuse(q, "empty_parameter", "a search parameter has no value");
    if (!strcmp(name, "date"))
        return take_date(q, value);
    for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++) {
        if (strcmp(name, map[i].fhir) != 0)
            continue;
        char clamped[8];
        if (!strcmp(name, "_count")) {
            /* a maximum: a server may return fewer, never more */
            char *end;
            long n = strtol(value, &end, 10);
            if (!*end && n > QP_LIMIT_MAX)
                value = (snprintf(clamped, sizeof(clamped), "%d", QP_LIMIT_MAX), clamped);
        }
        return qparams_take(&q->p, QP_EVENTS, map[i].ours, value, &q->perr);
    }
    return refuse(q, "unknown_parameter",
                  "unsupported search parameter (supported: date, agent, entity, action, "
                  "outcome, _count, tenant)");
}

void query_fhir_outcome(struct buf *out, const char *severity, const char *code, const char *msg)
{
    BUF_LIT(out, "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":");
    jsonw_cstr(out, severity);
    BUF_LIT(out, ",\"code\":");
    jsonw_cstr(out, code);
    BUF_LIT(out, ",\"diagnostics\":");
    jsonw_cstr(out, msg);
    BUF_LIT(out, "}]}");
}

/* Percent-encode everything but RFC 3986's unreserved characters. */
static void url_value(struct buf *out, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("-._~", *c)) {
            buf_addc(out, (char)*c);
        } else {
            buf_addc(out, '%');
            buf_addc(out, hex[*c >> 4]);
            buf_addc(out, hex[*c & 15]);
        }
    }
}

static void arg(struct buf *out, bool *first, const char *name, const char *prefix, const char *v)
{
    if (!v)
        return;
    buf_addc(out, *first ? '?' : '&');
    *first = false;
    buf_adds(out, name);
    buf_addc(out, '=');
    if (prefix)
        buf_adds(out, prefix);
    url_value(out, v);
}

void query_fhir_link(const struct qreq *q, const char *cursor, struct buf *out)
{
    const struct qparams *p = &q->p;
    bool fhir_path = q->ep == EP_FHIR, first = true;
    char from[TIME_RFC3339_LEN], to[TIME_RFC3339_LEN], lim[16];
    time_format_us(p->from_us, from);
    time_format_us(p->to_us, to);
    snprintf(lim, sizeof(lim), "%u", p->limit);
    buf_adds(out, q->base_url ? q->base_url : "");
    buf_adds(out, fhir_path ? "/fhir/AuditEvent" : "/v1/events");
    if (fhir_path) {
        arg(out, &first, "date", "ge", from);
        arg(out, &first, "date", "lt", to);
        arg(out, &first, "agent", NULL, p->actor);
        arg(out, &first, "entity", NULL, p->resource);
        arg(out, &first, "action", NULL, p->action);
        arg(out, &first, "outcome", NULL, p->outcome);
        arg(out, &first, "tenant", NULL, p->tenant);
        arg(out, &first, "_count", NULL, lim);
        arg(out, &first, "_cursor", NULL, cursor);
        return;
    }
    arg(out, &first, "from", NULL, from);
    arg(out, &first, "to", NULL, to);
    arg(out, &first, "tenant", NULL, p->tenant);
    arg(out, &first, "actor", NULL, p->actor);
    arg(out, &first, "action", NULL, p->action);
    arg(out, &first, "resource", NULL, p->resource);
    arg(out, &first, "outcome", NULL, p->outcome);
    arg(out, &first, "source", NULL, p->source);
    arg(out, &first, "stream", NULL, p->stream);
    arg(out, &first, "limit", NULL, lim);
    arg(out, &first, "cursor", NULL, cursor);
}
