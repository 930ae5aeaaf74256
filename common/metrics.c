/* Metrics registry and Prometheus text exposition (format 0.0.4).
 * Counters and gauges are doubles stored in an _Atomic uint64_t (updated by
 * CAS), histograms take a per-series mutex; the registry lock guards only
 * registration and rendering's walk over the series list. */
#include "common/metrics.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/xmalloc.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct family {
    char *name, *help;
    enum metric_type type;
    struct metric **series;
    size_t n, cap;
};

struct metric {
    enum metric_type type;
    char *labels;          /* NULL when none */
    _Atomic uint64_t bits; /* counter/gauge: the double's bytes */
    /* histogram */
    pthread_mutex_t mu;
    double *bounds;
    size_t nbounds;
    unsigned long long *counts; /* per bucket, not cumulative; [nbounds] = +Inf */
    double sum;
    unsigned long long count;
};

struct collector {
    metrics_collect_fn fn;
    void *ud;
    void (*free_ud)(void *);
};

struct metrics {
    pthread_mutex_t mu;
    struct family **fams; /* in registration order */
    size_t n, cap;
    struct collector *colls; /* run at the start of every render */
    size_t ncolls;
};

static const char *type_name(enum metric_type t)
{
    switch (t) {
    case METRIC_COUNTER:
        return "counter";
    case METRIC_GAUGE:
        return "gauge";
    case METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

struct metrics *metrics_new(void)
{
    struct metrics *m = xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void series_free(struct metric *s)
{
    if (s->type == METRIC_HISTOGRAM)
        pthread_mutex_destroy(&s->mu);
    free(s->labels);
    free(s->bounds);
    free(s->counts);
    free(s);
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        struct family *f = m->fams[i];
        for (size_t j = 0; j < f->n; j++)
            series_free(f->series[j]);
        free(f->series);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->fams);
    for (size_t i = 0; i < m->ncolls; i++)
        if (m->colls[i].free_ud)
            m->colls[i].free_ud(m->colls[i].ud);
    free(m->colls);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static bool valid_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool same_labels(const char *a, const char *b)
{
    if (!a || !*a)
        return !b || !*b;
    return b && strcmp(a, b) == 0;
}

static struct metric *reg(struct metrics *m, enum metric_type type, const char *name,
                          const char *help, const char *labels, const double *bounds, size_t n)
{
    if (!valid_name(name)) {
        log_error("metrics: invalid metric name '%s'", name ? name : "(null)");
        abort();
    }
    struct metric *s = NULL;
    pthread_mutex_lock(&m->mu);
    struct family *f = NULL;
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->fams[i]->name, name) == 0) {
            f = m->fams[i];
            break;
        }
    }
    if (f && f->type != type) {
        log_error("metrics: %s registered as %s and as %s", name, type_name(f->type),
                  type_name(type));
        abort();
    }
    if (!f) {
        f = xcalloc(1, sizeof(*f));
        f->name = xstrdup(name);
        f->help = xstrdup(help ? help : "");
        f->type = type;
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 16;
            m->fams = xrealloc(m->fams, m->cap * sizeof(*m->fams));
        }
        m->fams[m->n++] = f;
    }
    for (size_t j = 0; j < f->n; j++) {
        if (same_labels(f->series[j]->labels, labels)) {
            s = f->series[j];
            goto out;
        }
    }
    s = xcalloc(1, sizeof(*s));
    s->type = type;
    s->labels = (labels && *labels) ? xstrdup(labels) : NULL;
    atomic_init(&s->bits, 0); /* all-zero bits = 0.0 */
    if (type == METRIC_HISTOGRAM) {
        pthread_mutex_init(&s->mu, NULL);
        s->nbounds = n;
        s->bounds = xmalloc((n ? n : 1) * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && !(bounds[i] > bounds[i - 1])) {
                log_error("metrics: %s bucket bounds are not ascending", name);
                abort();
            }
            s->bounds[i] = bounds[i];
        }
        s->counts = xcalloc(n + 1, sizeof(*s->counts));
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->series = xrealloc(f->series, f->cap * sizeof(*f->series));
    }
    f->series[f->n++] = s;
out:
    pthread_mutex_unlock(&m->mu);
    return s;
}

struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels)
{
    return reg(m, METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels)
{
    return reg(m, METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *bounds, size_t n)
{
    return reg(m, METRIC_HISTOGRAM, name, help, labels, bounds, n);
}

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    uint64_t upd;
    do {
        upd = double_to_bits(bits_to_double(old) + v);
    } while (!atomic_compare_exchange_weak_explicit(p, &old, upd, memory_order_relaxed,
                                                    memory_order_relaxed));
}

void metric_inc(struct metric *s)
{
    metric_add(s, 1.0);
}

void metric_add(struct metric *s, double v)
{
    assert(s->type != METRIC_HISTOGRAM);
    /* A counter only goes up: a negative or NaN add is a caller bug that
     * must not corrupt the series. */
    if (s->type == METRIC_COUNTER && !(v >= 0))
        return;
    atomic_add_double(&s->bits, v);
}

void metric_set(struct metric *s, double v)
{
    assert(s->type == METRIC_GAUGE);
    atomic_store_explicit(&s->bits, double_to_bits(v), memory_order_relaxed);
}

void metric_observe(struct metric *s, double v)
{
    assert(s->type == METRIC_HISTOGRAM);
    size_t i = 0;
    while (i < s->nbounds && v > s->bounds[i])
        i++;
    pthread_mutex_lock(&s->mu);
    s->counts[i]++;
    s->sum += v;
    s->count++;
    pthread_mutex_unlock(&s->mu);
}

double metric_value(const struct metric *s)
{
    if (s->type == METRIC_HISTOGRAM) {
        struct metric *w = (struct metric *)s; /* the lock is not part of the value */
        pthread_mutex_lock(&w->mu);
        double sum = w->sum;
        pthread_mutex_unlock(&w->mu);
        return sum;
    }
    return bits_to_double(atomic_load_explicit(&s->bits, memory_order_relaxed));
}

unsigned long long metric_count(const struct metric *s)
{
    if (s->type != METRIC_HISTOGRAM) {
        double v = metric_value(s);
        return v > 0 ? (unsigned long long)v : 0;
    }
    struct metric *w = (struct metric *)s;
    pthread_mutex_lock(&w->mu);
    unsigned long long c = w->count;
    pthread_mutex_unlock(&w->mu);
    return c;
}

void metrics_add_collector(struct metrics *m, metrics_collect_fn fn, void *ud,
                           void (*free_ud)(void *))
{
    pthread_mutex_lock(&m->mu);
    m->colls = xrealloc(m->colls, (m->ncolls + 1) * sizeof(*m->colls));
    m->colls[m->ncolls++] = (struct collector){fn, ud, free_ud};
    pthread_mutex_unlock(&m->mu);
}

/* ---- rendering */

/* Prometheus floats: shortest text that reads back to the same double,
 * "+Inf", "-Inf", "NaN". */
static void fmt_double(char out[40], double v)
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static void help_escaped(struct buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_adds(b, "\\\\");
        else if (*s == '\n')
            buf_adds(b, "\\n");
        else
            buf_add(b, s, 1);
    }
}

/* name{labels[,extra]} value\n */
static void sample(struct buf *b, const char *name, const char *suffix, const char *labels,
                   const char *extra, const char *value)
{
    buf_adds(b, name);
    buf_adds(b, suffix);
    bool have_labels = labels && *labels;
    if (have_labels || extra) {
        buf_adds(b, "{");
        if (have_labels)
            buf_adds(b, labels);
        if (have_labels && extra)
            buf_adds(b, ",");
        if (extra)
            buf_adds(b, extra);
        buf_adds(b, "}");
    }
    buf_adds(b, " ");
    buf_adds(b, value);
    buf_adds(b, "\n");
}

static void render_histogram(struct buf *b, const char *name, struct metric *s)
{
    size_t nb = s->nbounds;
    unsigned long long *counts = xmalloc((nb + 1) * sizeof(*counts));
    /* Copy under the lock so the buckets, sum and count are one snapshot. */
    pthread_mutex_lock(&s->mu);
    memcpy(counts, s->counts, (nb + 1) * sizeof(*counts));
    double sum = s->sum;
    unsigned long long count = s->count;
    pthread_mutex_unlock(&s->mu);

    char num[40], le[64];
    unsigned long long cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += counts[i];
        if (i < nb) {
            fmt_double(num, s->bounds[i]);
            snprintf(le, sizeof(le), "le=\"%s\"", num);
        } else {
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        }
        snprintf(num, sizeof(num), "%llu", cum);
        sample(b, name, "_bucket", s->labels, le, num);
    }
    fmt_double(num, sum);
    sample(b, name, "_sum", s->labels, NULL, num);
    snprintf(num, sizeof(num), "%llu", count);
    sample(b, name, "_count", s->labels, NULL, num);
    free(counts);
}

char *metrics_render(struct metrics *m)
{
    struct buf b = BUF_INIT;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->ncolls; i++)
        m->colls[i].fn(m->colls[i].ud);
    for (size_t i = 0; i < m->n; i++) {
        struct family *f = m->fams[i];
        buf_adds(&b, "# HELP ");
        buf_adds(&b, f->name);
        buf_adds(&b, " ");
        help_escaped(&b, f->help);
        buf_adds(&b, "\n# TYPE ");
        buf_adds(&b, f->name);
        buf_adds(&b, " ");
        buf_adds(&b, type_name(f->type));
        buf_adds(&b, "\n");
        for (size_t j = 0; j < f->n; j++) {
            struct metric *s = f->series[j];
            if (s->type == METRIC_HISTOGRAM) {
                render_histogram(&b, f->name, s);
            } else {
                char num[40];
                fmt_double(num, metric_value(s));
                sample(&b, f->name, "", s->labels, NULL, num);
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    return buf_detach(&b, NULL);
}
