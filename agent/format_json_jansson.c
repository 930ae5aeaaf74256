/* The JSON-based formats read through a whole jansson document: the
 * reference the fast path (format_json.c) must equal byte for byte, and its
 * fallback for the records it declines (format_json_int.h). Generic json,
 * Kubernetes audit Events and FHIR R4 AuditEvents share one jansson parse and
 * a dotted-path extractor ("agent.0.who.display": numeric components index
 * arrays). Keep this file's behaviour unchanged: tests/unit/test_format_diff.c
 * and the format_* fuzz targets compare the fast path against it. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format_int.h"
#include "agent/format_json_int.h"
#include "common/utf8.h"
#include "common/xmalloc.h"

/* Follow a dotted path from root; NULL when any step is missing. A numeric
 * component indexes an array; on an object it is an ordinary key. */
static json_t *json_path(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, p, n);
        } else if (json_is_array(cur)) {
            size_t idx = 0, i;
            for (i = 0; i < n && p[i] >= '0' && p[i] <= '9' && i < 9; i++)
                idx = idx * 10 + (size_t)(p[i] - '0');
            if (n == 0 || i != n)
                return NULL;
            cur = json_array_get(cur, idx);
        } else {
            return NULL;
        }
        p += n;
        if (*p == '.')
            p++;
    }
    return cur;
}

/* Scalar -> heap string (valid UTF-8); NULL for null, objects and arrays. */
static char *json_scalar_dup(const json_t *v)
{
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return utf8_sanitize_str(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return xstrdup(buf);
    case JSON_REAL:
        return fmt_real_dup(json_real_value(v));
    case JSON_TRUE:
        return xstrdup("true");
    case JSON_FALSE:
        return xstrdup("false");
    default:
        return NULL;
    }
}

/* A field-map path names its value explicitly, so an object or array there
 * is kept as compact JSON text rather than dropped (default names ignore
 * them: they are scalars by convention). */
static char *mapped_dup(json_t *root, const char *path)
{
    json_t *v = json_path(root, path);
    if (!v)
        return NULL;
    if (!json_is_object(v) && !json_is_array(v))
        return json_scalar_dup(v);
    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!txt)
        return NULL;
    char *s = utf8_sanitize_str(txt, strlen(txt));
    free(txt);
    return s;
}

static char *path_dup(json_t *root, const char *path)
{
    json_t *v = json_path(root, path);
    return v ? json_scalar_dup(v) : NULL;
}

/* Time from a JSON value: strings are RFC 3339 (or decimal epoch seconds),
 * numbers are epoch seconds/ms/µs/ns by magnitude. */
static int json_time(const json_t *v, int64_t *us)
{
    if (json_is_string(v))
        return fmt_time_from_text(json_string_value(v), json_string_length(v), us);
    if (json_is_integer(v))
        return fmt_time_from_epoch((double)json_integer_value(v), us);
    if (json_is_real(v))
        return fmt_time_from_epoch(json_real_value(v), us);
    return -1;
}

/* Set out's time from the candidates in `paths`, or from the override path
 * alone. Strict (a format that requires a time, or an override the user
 * configured): the first present value must read as a time, else failure.
 * Lenient (generic json defaults): the first readable candidate wins and an
 * unreadable one is skipped, so an app's "time":"12ms" duration does not
 * turn its records raw. Absent everywhere: failure when `required`, else
 * no time. */
static int take_time(json_t *root, const char *override, const char *const *paths, bool required,
                     struct parsed_record *out)
{
    const char *const one[] = {override, NULL};
    const char *const *cand = override ? one : paths;
    bool strict = required || override;
    for (size_t i = 0; cand[i]; i++) {
        json_t *v = json_path(root, cand[i]);
        if (!v || json_is_null(v))
            continue;
        if (json_time(v, &out->time_us) == 0) {
            out->have_time = true;
            return 0;
        }
        if (strict)
            return fmt_fail(out, "bad timestamp in %s", cand[i]);
    }
    if (required)
        return fmt_fail(out, "no timestamp (%s)", cand[0]);
    return 0;
}

static int parse_generic(json_t *root, const struct field_map *map, struct parsed_record *out)
{
    if (take_time(root, map ? map->time : NULL, fmt_default_time_names, false, out) < 0)
        return -1;
    for (int f = 0; f < FMT_NFIELDS; f++) {
        const char *ov = fmt_map_get(map, (enum fmt_field)f);
        char **slot = fmt_field_slot(out, (enum fmt_field)f);
        if (ov) {
            *slot = mapped_dup(root, ov);
            continue;
        }
        /* Defaults are top-level keys only: a key with a dot in its name is
         * still found here, unlike with a dotted path. */
        for (size_t i = 0; fmt_default_names[f][i] && !*slot; i++) {
            json_t *v = json_object_get(root, fmt_default_names[f][i]);
            if (v)
                *slot = json_scalar_dup(v);
        }
    }
    return 0;
}

/* "resource[.apiGroup]/namespace/name[/subresource]" (kubectl's
 * resource.group spelling; empty namespace kept as "//" for cluster-scoped
 * objects so positions stay fixed); requestURI for non-resource requests. */
static char *k8s_resource(json_t *root)
{
    json_t *ref = json_object_get(root, "objectRef");
    if (!json_is_object(ref))
        return path_dup(root, "requestURI");
    const char *res = json_string_value(json_object_get(ref, "resource"));
    const char *grp = json_string_value(json_object_get(ref, "apiGroup"));
    const char *ns = json_string_value(json_object_get(ref, "namespace"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    const char *sub = json_string_value(json_object_get(ref, "subresource"));
    if (!res)
        return path_dup(root, "requestURI");
    /* jansson strings may hold NUL (JSON_ALLOW_NUL): strlen-based pieces just
     * stop there, and the result is re-validated below. */
    char *s =
        xasprintf("%s%s%s/%s/%s%s%s", res, grp && *grp ? "." : "", grp && *grp ? grp : "",
                  ns ? ns : "", name ? name : "", sub && *sub ? "/" : "", sub && *sub ? sub : "");
    char *clean = utf8_sanitize_str(s, strlen(s));
    free(s);
    return clean;
}

static const char *const k8s_time_paths[] = {"stageTimestamp", "requestReceivedTimestamp", NULL};

static int parse_k8s(json_t *root, const struct field_map *map, struct parsed_record *out)
{
    if (take_time(root, map ? map->time : NULL, k8s_time_paths, true, out) < 0)
        return -1;
    static const char *const defaults[FMT_NFIELDS] = {[FMT_TENANT] = "objectRef.namespace",
                                                      [FMT_ACTOR] = "user.username",
                                                      [FMT_ACTION] = "verb",
                                                      [FMT_RESOURCE] = NULL,
                                                      [FMT_OUTCOME] = "responseStatus.code"};
    for (int f = 0; f < FMT_NFIELDS; f++) {
        const char *ov = fmt_map_get(map, (enum fmt_field)f);
        char **slot = fmt_field_slot(out, (enum fmt_field)f);
        if (ov)
            *slot = mapped_dup(root, ov);
        else if (f == FMT_RESOURCE)
            *slot = k8s_resource(root);
        else
            *slot = path_dup(root, defaults[f]);
    }
    return 0;
}

static const char *const fhir_time_paths[] = {"recorded", NULL};

/* First present path of a NULL-terminated list. */
static char *first_dup(json_t *root, const char *const *paths)
{
    char *s = NULL;
    for (size_t i = 0; paths[i] && !s; i++)
        s = path_dup(root, paths[i]);
    return s;
}

static int parse_fhir(json_t *root, const struct field_map *map, struct parsed_record *out)
{
    const char *rt = json_string_value(json_object_get(root, "resourceType"));
    if (rt && strcmp(rt, "AuditEvent") != 0)
        return fmt_fail(out, "resourceType is not AuditEvent");
    if (take_time(root, map ? map->time : NULL, fhir_time_paths, true, out) < 0)
        return -1;
    static const char *const defaults[FMT_NFIELDS][4] = {
        [FMT_TENANT] = {"source.site", "source.observer.reference", "source.observer.display",
                        NULL},
        [FMT_ACTOR] = {"agent.0.who.identifier.value", "agent.0.who.reference",
                       "agent.0.who.display", NULL},
        [FMT_ACTION] = {"action", "type.code", NULL},
        [FMT_RESOURCE] = {"entity.0.what.reference", "entity.0.what.display", NULL},
        [FMT_OUTCOME] = {"outcome", "outcomeDesc", NULL},
    };
    for (int f = 0; f < FMT_NFIELDS; f++) {
        const char *ov = fmt_map_get(map, (enum fmt_field)f);
        char **slot = fmt_field_slot(out, (enum fmt_field)f);
        *slot = ov ? mapped_dup(root, ov) : first_dup(root, defaults[f]);
    }
    return 0;
}

int fmt_json_parse_jansson(enum format_kind kind, const struct field_map *map, const uint8_t *rec,
                           size_t len, struct parsed_record *out)
{
    json_error_t jerr;
    /* JSON_ALLOW_NUL: "\u0000" in a value must not fail the whole record;
     * jansson itself rejects invalid UTF-8 and bounds nesting depth. */
    json_t *root = json_loadb((const char *)rec, len, JSON_ALLOW_NUL, &jerr);
    /* An integer beyond int64 (a 64-bit unsigned trace id...) must not make
     * the whole record unreadable: retry reading integers as doubles. Rare,
     * so the usual path keeps integers exact. */
    if (!root && strstr(jerr.text, "too big"))
        root = json_loadb((const char *)rec, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!root)
        return fmt_fail(out, "invalid JSON at byte %d: %.100s", jerr.position, jerr.text);
    int rc;
    if (!json_is_object(root)) {
        rc = fmt_fail(out, "JSON record is not an object");
        goto out;
    }
    switch (kind) {
    case FORMAT_K8S_AUDIT:
        rc = parse_k8s(root, map, out);
        break;
    case FORMAT_FHIR:
        rc = parse_fhir(root, map, out);
        break;
    default:
        rc = parse_generic(root, map, out);
        break;
    }
out:
    json_decref(root);
    return rc;
}

char *fmt_json_compact(const uint8_t *text, size_t len)
{
    json_t *v = json_loadb((const char *)text, len, JSON_ALLOW_NUL, NULL);
    if (!v)
        return NULL;
    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!txt)
        return NULL;
    char *s = utf8_sanitize_str(txt, strlen(txt));
    free(txt);
    return s;
}
