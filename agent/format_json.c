/* JSON-based formats: generic json, Kubernetes audit Events and FHIR R4
 * AuditEvents, read without building a document. A plan lists the dotted
 * paths the format preset (and the input's `fields:` overrides) needs, one
 * scan (format_json_scan.c) finds their values, and the rules below turn them
 * into time and fields exactly as format_json_jansson.c does; what the scan
 * declines goes to that jansson implementation. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format_int.h"
#include "agent/format_json_int.h"
#include "common/xmalloc.h"

#define MAX_TIME_PATHS     6
#define MAX_DEFAULT_PATHS  4
#define K8S_OBJREF_MEMBERS 5

/* Where each value of the preset comes from: ids of paths in q. */
struct plan {
    enum format_kind kind;
    bool ok; /* the paths fit in q; else every record is declined */
    struct fmt_json_query q;
    int time[MAX_TIME_PATHS]; /* candidates in order, -1 after the last */
    const char *time_name[MAX_TIME_PATHS];
    bool time_override;
    int mapped[FMT_NFIELDS];                      /* the `fields:` override, or -1 */
    int dflt[FMT_NFIELDS][MAX_DEFAULT_PATHS + 1]; /* default candidates, -1 after the last */
    int objref, objref_member[K8S_OBJREF_MEMBERS], request_uri; /* k8s resource */
    int resource_type;                                          /* fhir */
};

/* objectRef members in the order k8s_resource joins them */
enum { REF_RESOURCE, REF_API_GROUP, REF_NAMESPACE, REF_NAME, REF_SUBRESOURCE };
static const char *const objref_paths[K8S_OBJREF_MEMBERS] = {
    "objectRef.resource", "objectRef.apiGroup", "objectRef.namespace", "objectRef.name",
    "objectRef.subresource"};

static const char *const k8s_time_paths[] = {"stageTimestamp", "requestReceivedTimestamp", NULL};
static const char *const k8s_defaults[FMT_NFIELDS][2] = {
    [FMT_TENANT] = {"objectRef.namespace", NULL},
    [FMT_ACTOR] = {"user.username", NULL},
    [FMT_ACTION] = {"verb", NULL},
    [FMT_RESOURCE] = {NULL}, /* k8s_resource */
    [FMT_OUTCOME] = {"responseStatus.code", NULL},
};

static const char *const fhir_time_paths[] = {"recorded", NULL};
static const char *const fhir_defaults[FMT_NFIELDS][MAX_DEFAULT_PATHS] = {
    [FMT_TENANT] = {"source.site", "source.observer.reference", "source.observer.display", NULL},
    [FMT_ACTOR] = {"agent.0.who.identifier.value", "agent.0.who.reference", "agent.0.who.display",
                   NULL},
    [FMT_ACTION] = {"action", "type.code", NULL},
    [FMT_RESOURCE] = {"entity.0.what.reference", "entity.0.what.display", NULL},
    [FMT_OUTCOME] = {"outcome", "outcomeDesc", NULL},
};

/* Add the NULL-terminated paths to the query, their ids into ids (then -1). */
static bool add_paths(struct plan *pl, const char *const *paths, int *ids, size_t max)
{
    size_t i = 0;
    for (; paths[i]; i++) {
        if (i >= max || (ids[i] = fmt_json_query_add(&pl->q, paths[i])) < 0)
            return false;
    }
    ids[i] = -1;
    return true;
}

/* false when the paths do not fit in a query. */
static bool plan_paths(struct plan *pl, enum format_kind kind, const struct field_map *map)
{
    pl->kind = kind;
    fmt_json_query_init(&pl->q);
    pl->objref = pl->request_uri = pl->resource_type = -1;

    const char *const *time_paths = kind == FORMAT_K8S_AUDIT ? k8s_time_paths
                                    : kind == FORMAT_FHIR    ? fhir_time_paths
                                                             : fmt_default_time_names;
    const char *const one[] = {map ? map->time : NULL, NULL};
    pl->time_override = one[0] != NULL;
    if (pl->time_override)
        time_paths = one;
    if (!add_paths(pl, time_paths, pl->time, MAX_TIME_PATHS - 1))
        return false;
    for (size_t i = 0; time_paths[i]; i++)
        pl->time_name[i] = time_paths[i];

    for (int f = 0; f < FMT_NFIELDS; f++) {
        const char *ov = fmt_map_get(map, (enum fmt_field)f);
        pl->mapped[f] = -1;
        pl->dflt[f][0] = -1;
        if (ov) {
            if ((pl->mapped[f] = fmt_json_query_add(&pl->q, ov)) < 0)
                return false;
            continue;
        }
        const char *const *d = kind == FORMAT_K8S_AUDIT ? k8s_defaults[f]
                               : kind == FORMAT_FHIR    ? fhir_defaults[f]
                                                        : fmt_default_names[f];
        if (!add_paths(pl, d, pl->dflt[f], MAX_DEFAULT_PATHS))
            return false;
    }

    if (kind == FORMAT_K8S_AUDIT && !fmt_map_get(map, FMT_RESOURCE)) {
        pl->objref = fmt_json_query_add(&pl->q, "objectRef");
        pl->request_uri = fmt_json_query_add(&pl->q, "requestURI");
        if (pl->objref < 0 || pl->request_uri < 0)
            return false;
        for (int i = 0; i < K8S_OBJREF_MEMBERS; i++)
            if ((pl->objref_member[i] = fmt_json_query_add(&pl->q, objref_paths[i])) < 0)
                return false;
    }
    if (kind == FORMAT_FHIR && (pl->resource_type = fmt_json_query_add(&pl->q, "resourceType")) < 0)
        return false;
    return true;
}

/* The time from the candidates. Strict (a format that requires a time, or
 * an override the user configured): the first present value must read as a
 * time. Lenient (generic json defaults): the first readable one wins. */
static int take_time(const struct plan *pl, const struct fmt_jv *vals, bool required,
                     struct parsed_record *out)
{
    bool strict = required || pl->time_override;
    for (size_t i = 0; pl->time[i] >= 0; i++) {
        const struct fmt_jv *v = &vals[pl->time[i]];
        if (v->type == FMT_JV_ABSENT || v->type == FMT_JV_NULL)
            continue;
        if (fmt_jv_time(v, &out->time_us) == 0) {
            out->have_time = true;
            return 0;
        }
        if (strict)
            return fmt_fail(out, "bad timestamp in %s", pl->time_name[i]);
    }
    if (required)
        return fmt_fail(out, "no timestamp (%s)", pl->time_name[0]);
    return 0;
}

/* The first default candidate with a scalar value. */
static char *first_scalar(const int *ids, const struct fmt_jv *vals)
{
    char *s = NULL;
    for (size_t i = 0; ids[i] >= 0 && !s; i++)
        s = fmt_jv_scalar_dup(&vals[ids[i]]);
    return s;
}

/* "resource[.apiGroup]/namespace/name[/subresource]", the members read as C
 * strings; requestURI when objectRef or its resource is missing. */
static char *k8s_resource(const struct plan *pl, const struct fmt_jv *vals)
{
    const struct fmt_jv *m[K8S_OBJREF_MEMBERS];
    size_t room = 6;
    for (int i = 0; i < K8S_OBJREF_MEMBERS; i++) {
        m[i] = &vals[pl->objref_member[i]];
        room += m[i]->n;
    }
    if (vals[pl->objref].type != FMT_JV_OBJECT || m[REF_RESOURCE]->type != FMT_JV_STRING)
        return fmt_jv_scalar_dup(&vals[pl->request_uri]);
    char *s = xmalloc(room), *o = s;
    size_t n;
    fmt_jv_cstr(m[REF_RESOURCE], o, &n);
    o += n;
    if (fmt_jv_cstr(m[REF_API_GROUP], o + 1, &n) && n) {
        *o = '.';
        o += 1 + n;
    }
    *o++ = '/';
    if (fmt_jv_cstr(m[REF_NAMESPACE], o, &n))
        o += n;
    *o++ = '/';
    if (fmt_jv_cstr(m[REF_NAME], o, &n))
        o += n;
    if (fmt_jv_cstr(m[REF_SUBRESOURCE], o + 1, &n) && n) {
        *o = '/';
        o += 1 + n;
    }
    *o = '\0';
    return s;
}

static int parse_plan(const struct plan *pl, const uint8_t *rec, size_t len,
                      struct parsed_record *out)
{
    struct fmt_jv vals[FMT_JSON_MAX_PATHS];
    if (fmt_json_scan(&pl->q, rec, len, vals) < 0)
        return FMT_JSON_DECLINED;
    if (pl->kind == FORMAT_FHIR && vals[pl->resource_type].type == FMT_JV_STRING &&
        !fmt_jv_cstr_is(&vals[pl->resource_type], "AuditEvent"))
        return fmt_fail(out, "resourceType is not AuditEvent");
    if (take_time(pl, vals, pl->kind != FORMAT_JSON, out) < 0)
        return -1;
    for (int f = 0; f < FMT_NFIELDS; f++) {
        char **slot = fmt_field_slot(out, (enum fmt_field)f);
        if (pl->mapped[f] >= 0)
            *slot = fmt_jv_mapped_dup(&vals[pl->mapped[f]]);
        else if (pl->objref >= 0 && f == FMT_RESOURCE)
            *slot = k8s_resource(pl, vals);
        else
            *slot = first_scalar(pl->dflt[f], vals);
    }
    return 0;
}

static_assert(sizeof(struct plan) <= FORMAT_PREP_BYTES, "FORMAT_PREP_BYTES too small");
static_assert(_Alignof(struct plan) <= 16, "format_prep.plan alignment too small");

bool fmt_json_plan_init(void *plan, enum format_kind kind, const struct field_map *map)
{
    struct plan *pl = plan;
    pl->ok = plan_paths(pl, kind, map);
    return pl->ok;
}

int fmt_json_parse_planned(const void *plan, const uint8_t *rec, size_t len,
                           struct parsed_record *out)
{
    const struct plan *pl = plan;
    return pl->ok ? parse_plan(pl, rec, len, out) : FMT_JSON_DECLINED;
}

int fmt_json_parse_fast(enum format_kind kind, const struct field_map *map, const uint8_t *rec,
                        size_t len, struct parsed_record *out)
{
    struct format_prep p;
    fmt_json_plan_init(p.plan, kind, map);
    return fmt_json_parse_planned(p.plan, rec, len, out);
}
