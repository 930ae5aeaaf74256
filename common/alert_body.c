/* Alertmanager alert bodies and alert identities (common/alert_body.h):
 * jansson builds the JSON, so escaping is jansson's. */
#include "common/alert_body.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"

const char *alert_severity_name(enum alert_severity s)
{
    switch (s) {
    case ALERT_INFO:
        return "info";
    case ALERT_WARNING:
        return "warning";
    case ALERT_CRITICAL:
        return "critical";
    }
    return "warning";
}

/* Alertmanager rejects the whole POST for one bad label name, so names are
 * made valid here rather than losing the alert. Heap. */
static char *label_name_sanitize(const char *s)
{
    size_t n = strlen(s);
    char *out = xmalloc(n + 2);
    size_t j = 0;
    if (n == 0 || isdigit((unsigned char)s[0]))
        out[j++] = '_';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (isalnum(c) && c < 128) || c == '_' ? (char)c : '_';
    }
    out[j] = '\0';
    return out;
}

/* A JSON string; bytes that are not valid UTF-8 become '?' (jansson refuses
 * them, and an alert is worth more than the exact bytes of a label). */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j)
        return j;
    char *copy = xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static void obj_set_label(json_t *obj, const char *k, const char *v)
{
    char *name = label_name_sanitize(k);
    json_object_set_new(obj, name, jstr(v));
    free(name);
}

static json_t *timestamp(int64_t us)
{
    char ts[TIME_RFC3339_LEN];
    time_format_us(us, ts);
    return json_string(ts);
}

char *alert_body_json(const struct alert_common *c, const struct alert_body *b)
{
    json_t *labels = json_object();
    for (size_t i = 0; i < c->n_labels; i++)
        obj_set_label(labels, c->label_k[i], c->label_v[i]);
    if (c->component)
        json_object_set_new(labels, "component", jstr(c->component));
    if (c->instance)
        json_object_set_new(labels, "instance", jstr(c->instance));
    for (size_t i = 0; i < b->n_kv; i++)
        if (b->kv[2 * i])
            obj_set_label(labels, b->kv[2 * i], b->kv[2 * i + 1]);
    json_object_set_new(labels, "alertname", jstr(b->alertname));
    json_object_set_new(labels, "severity", jstr(alert_severity_name(b->sev)));

    json_t *ann = json_object();
    if (b->summary)
        json_object_set_new(ann, "summary", jstr(b->summary));
    if (b->description)
        json_object_set_new(ann, "description", jstr(b->description));

    json_t *alert = json_object();
    json_object_set_new(alert, "labels", labels);
    json_object_set_new(alert, "annotations", ann);
    json_object_set_new(alert, "startsAt", timestamp(b->starts_at_us));
    if (b->ends_at_us)
        json_object_set_new(alert, "endsAt", timestamp(b->ends_at_us));
    if (c->generator_url)
        json_object_set_new(alert, "generatorURL", jstr(c->generator_url));
    json_t *arr = json_array();
    json_array_append_new(arr, alert);
    char *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!out) {
        /* only on allocation failure; match the xmalloc policy */
        fprintf(stderr, "alert: out of memory\n");
        abort();
    }
    return out;
}

struct kv_pair {
    const char *k, *v;
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv_pair *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

char *alert_key(const char *alertname, const char *const *kv, size_t n)
{
    struct kv_pair *p = n ? xcalloc(n, sizeof(*p)) : NULL;
    size_t len = strlen(alertname) + 1;
    for (size_t i = 0; i < n; i++) {
        p[i].k = kv[2 * i] ? kv[2 * i] : "";
        p[i].v = kv[2 * i + 1] ? kv[2 * i + 1] : "";
        len += strlen(p[i].k) + strlen(p[i].v) + 2;
    }
    if (n > 1)
        qsort(p, n, sizeof(*p), kv_cmp);
    char *key = xmalloc(len);
    char *w = stpcpy(key, alertname);
    /* Unit and record separators: not found in label text in practice. */
    for (size_t i = 0; i < n; i++) {
        *w++ = '\x1f';
        w = stpcpy(w, p[i].k);
        *w++ = '\x1e';
        w = stpcpy(w, p[i].v);
    }
    *w = '\0';
    free(p);
    return key;
}
