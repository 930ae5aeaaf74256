/* Format parsers: dispatch on the input's format, field-map configuration and
 * the helpers every parser family shares (UTF-8 sanitising, failure, time). */
#include "agent/format.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format_int.h"
#include "agent/format_json_int.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

static const char *const kind_names[FORMAT_COUNT] = {
    [FORMAT_JSON] = "json",     [FORMAT_KV] = "kv",     [FORMAT_K8S_AUDIT] = "k8s-audit",
    [FORMAT_AUDITD] = "auditd", [FORMAT_FHIR] = "fhir", [FORMAT_RAW] = "raw",
};

const char *const fmt_default_names[FMT_NFIELDS][5] = {
    [FMT_TENANT] = {"tenant", "tenant_id", "org", NULL},
    [FMT_ACTOR] = {"actor", "user", "user_id", "principal", NULL},
    [FMT_ACTION] = {"action", "event", "verb", NULL},
    [FMT_RESOURCE] = {"resource", "object", "target", NULL},
    [FMT_OUTCOME] = {"outcome", "result", "status", NULL},
};

const char *const fmt_default_time_names[6] = {"ts",         "time",     "timestamp",
                                               "@timestamp", "recorded", NULL};

int format_kind_parse(const char *name, enum format_kind *out)
{
    if (!name)
        return -1;
    for (int k = 0; k < FORMAT_COUNT; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (enum format_kind)k;
            return 0;
        }
    }
    return -1;
}

const char *format_kind_name(enum format_kind k)
{
    if ((int)k < 0 || k >= FORMAT_COUNT)
        return "unknown";
    return kind_names[k];
}

int field_map_from_cfg(const struct cfg_map *m, struct field_map *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!m)
        return 0;
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->keys[i], *v = m->vals[i];
        const char **slot = NULL;
        if (strcmp(k, "time") == 0)
            slot = &out->time;
        else if (strcmp(k, "tenant") == 0)
            slot = &out->tenant;
        else if (strcmp(k, "actor") == 0)
            slot = &out->actor;
        else if (strcmp(k, "action") == 0)
            slot = &out->action;
        else if (strcmp(k, "resource") == 0)
            slot = &out->resource;
        else if (strcmp(k, "outcome") == 0)
            slot = &out->outcome;
        if (!slot) {
            snprintf(err, errlen,
                     "fields.%s: unknown field (expected time, tenant, actor, action, resource, "
                     "outcome)",
                     k);
            goto fail;
        }
        if (!v || !*v) {
            snprintf(err, errlen, "fields.%s: empty path", k);
            goto fail;
        }
        *slot = v;
    }
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    return -1;
}

const char *fmt_map_get(const struct field_map *map, enum fmt_field f)
{
    if (!map)
        return NULL;
    switch (f) {
    case FMT_TENANT:
        return map->tenant;
    case FMT_ACTOR:
        return map->actor;
    case FMT_ACTION:
        return map->action;
    case FMT_RESOURCE:
        return map->resource;
    case FMT_OUTCOME:
        return map->outcome;
    default:
        return NULL;
    }
}

char **fmt_field_slot(struct parsed_record *r, enum fmt_field f)
{
    switch (f) {
    case FMT_TENANT:
        return &r->tenant;
    case FMT_ACTOR:
        return &r->actor;
    case FMT_ACTION:
        return &r->action;
    case FMT_RESOURCE:
        return &r->resource;
    default:
        return &r->outcome;
    }
}

static void free_fields(struct parsed_record *r)
{
    for (int f = 0; f < FMT_NFIELDS; f++) {
        char **slot = fmt_field_slot(r, (enum fmt_field)f);
        free(*slot);
        *slot = NULL;
    }
}

int fmt_fail(struct parsed_record *out, const char *fmt, ...)
{
    free_fields(out);
    out->format = FORMAT_RAW;
    out->have_time = false;
    out->time_us = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->err, sizeof(out->err), fmt, ap);
    va_end(ap);
    return -1;
}

char *fmt_real_dup(double d)
{
    char buf[64];
    if (d == floor(d) && fabs(d) < 1e18)
        snprintf(buf, sizeof(buf), "%.0f", d);
    else
        snprintf(buf, sizeof(buf), "%.15g", d);
    return xstrdup(buf);
}

int fmt_time_from_epoch(double v, int64_t *us)
{
    if (!isfinite(v) || v < 0)
        return -1;
    double scale;
    if (v < 1e11)
        scale = 1e6;
    else if (v < 1e14)
        scale = 1e3;
    else if (v < 1e17)
        scale = 1;
    else if (v < 9e18)
        scale = 1e-3;
    else
        return -1;
    *us = (int64_t)llround(v * scale);
    return 0;
}

int fmt_time_from_text(const char *s, size_t n, int64_t *us)
{
    if (time_parse_rfc3339(s, n, us) == 0)
        return 0;
    /* "SECONDS[.FRACTION]" with at most 11 integer digits (year 5138). */
    size_t i = 0;
    int64_t sec = 0, frac = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i < 11)
        sec = sec * 10 + (s[i++] - '0');
    if (i == 0)
        return -1;
    if (i < n && s[i] == '.') {
        size_t d = 0;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (d < 6) {
                frac = frac * 10 + (s[i] - '0');
                d++;
            }
            i++;
        }
        if (d == 0)
            return -1;
        for (; d < 6; d++)
            frac *= 10;
    }
    if (i != n)
        return -1;
    *us = sec * 1000000 + frac;
    return 0;
}

static bool json_family(enum format_kind kind)
{
    return kind == FORMAT_JSON || kind == FORMAT_K8S_AUDIT || kind == FORMAT_FHIR;
}

void format_prep_init(struct format_prep *p, enum format_kind kind, const struct field_map *map)
{
    p->ready = true;
    p->kind = kind;
    p->map = map;
    /* A plan that does not fit leaves every record to jansson: still right. */
    if (json_family(kind))
        (void)fmt_json_plan_init(p->plan, kind, map);
}

bool format_prep_matches(const struct format_prep *p, enum format_kind kind,
                         const struct field_map *map)
{
    return p->ready && p->kind == kind && p->map == map;
}

int format_parse_prepared(const struct format_prep *p, const uint8_t *rec, size_t len,
                          struct parsed_record *out)
{
    enum format_kind kind = p->kind;
    memset(out, 0, sizeof(*out));
    out->format = kind;
    /* CRLF files: the record keeps its '\r' but parsers never see it. */
    while (len > 0 && rec[len - 1] == '\r')
        len--;
    switch (kind) {
    case FORMAT_JSON:
    case FORMAT_K8S_AUDIT:
    case FORMAT_FHIR: {
        int rc = fmt_json_parse_planned(p->plan, rec, len, out);
        if (rc != FMT_JSON_DECLINED)
            return rc;
        return fmt_json_parse_jansson(kind, p->map, rec, len, out);
    }
    case FORMAT_KV:
        return fmt_parse_kv(p->map, rec, len, out);
    case FORMAT_AUDITD:
        return fmt_parse_auditd(p->map, rec, len, out);
    case FORMAT_RAW:
        return 0;
    default:
        return fmt_fail(out, "unknown format %d", (int)kind);
    }
}

int format_parse(enum format_kind kind, const struct field_map *map, const uint8_t *rec, size_t len,
                 struct parsed_record *out)
{
    struct format_prep p;
    format_prep_init(&p, kind, map);
    return format_parse_prepared(&p, rec, len, out);
}

void parsed_record_release(struct parsed_record *r)
{
    if (!r)
        return;
    free_fields(r);
}
