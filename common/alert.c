/* The alert sender: dedupe and enqueue on the caller's thread, POST with
 * libcurl behind a circuit breaker and retries on one worker thread. The
 * body is common/alert_body.c's. */
#include "common/alert.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/backoff.h"
#include "common/redact.h"
#include "common/log.h"
#include "common/lru.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define ALERT_DEF_TIMEOUT_MS      2000
#define ALERT_DEF_MIN_INTERVAL_MS 60000
#define ALERT_DEF_QUEUE_MAX       256
#define ALERT_DEF_RETRIES         3
#define ALERT_DEF_RETRY_BACKOFF   200
/* Keys remembered for dedupe and resolve; label values are chosen by the
 * code, so this bounds memory without forgetting live alerts in practice. */
#define ALERT_KEYS_MAX 4096

const struct cfg_key alerts_conf_keys[] = {
    {.name = "url",
     .type = CFG_STR,
     .offset = offsetof(struct alerter_conf, url),
     .help = "Alertmanager-compatible webhook, e.g. http://alertmanager:9093/api/v2/alerts; "
             "empty = alerts disabled"},
    {.name = "timeout_ms",
     .type = CFG_INT,
     .offset = offsetof(struct alerter_conf, timeout_ms),
     .def = "2000",
     .min = 1,
     .max = 600000,
     .help = "Timeout of one POST, and how long shutdown waits to flush pending alerts"},
    {.name = "min_interval_ms",
     .type = CFG_INT,
     .offset = offsetof(struct alerter_conf, min_interval_ms),
     .def = "60000",
     .min = 1,
     .max = INT64_C(86400000),
     .help = "The same firing alert (alertname + labels) is sent at most once per interval"},
    {.name = "queue_max",
     .type = CFG_INT,
     .offset = offsetof(struct alerter_conf, queue_max),
     .def = "256",
     .min = 1,
     .max = 1000000,
     .help = "Pending alerts kept while the receiver is slow; when full the oldest is dropped"},
    {.name = "retries",
     .type = CFG_INT,
     .offset = offsetof(struct alerter_conf, retries),
     .def = "3",
     .min = 0,
     .max = 100,
     .help = "Extra attempts after a failed POST (transport error, 5xx, 408, 429)"},
    {.name = "retry_backoff_ms",
     .type = CFG_INT,
     .offset = offsetof(struct alerter_conf, retry_backoff_ms),
     .def = "200",
     .min = 1,
     .max = 600000,
     .help = "Ceiling of the first retry delay; doubles per attempt, full jitter"},
    {.name = "generator_url",
     .type = CFG_STR,
     .offset = offsetof(struct alerter_conf, generator_url),
     .help = "generatorURL of every alert (e.g. a dashboard link); empty = omitted"},
    {.name = "labels",
     .type = CFG_MAP,
     .offset = offsetof(struct alerter_conf, labels),
     .help = "Static labels added to every alert, e.g. cluster: prod-eu"},
    {.name = "headers",
     .type = CFG_MAP,
     .offset = offsetof(struct alerter_conf, headers),
     .help = "Extra HTTP headers of the POST, e.g. Authorization: Bearer ${ALERT_TOKEN}"},
    CFG_END,
};

struct alert_item {
    struct alert_item *next;
    char *body;
    char *alertname; /* for logs */
};

/* What the alerter remembers per key (alertname + call labels). */
struct key_state {
    bool firing;
    enum alert_severity sev;
    uint64_t last_sent_ms; /* monotonic */
    int64_t starts_at_us;
    char *summary, *description;
};

enum post_result { POST_OK, POST_RETRY, POST_PERMANENT };

struct alerter {
    bool enabled;
    /* immutable after alerter_new */
    char *url, *generator_url, *component, *instance;
    char *log_url; /* url with its secrets masked (common/redact.h): for logs */
    uint64_t timeout_ms, min_interval_ms, retry_backoff_ms;
    size_t queue_max;
    unsigned retries;
    char **label_k, **label_v;
    size_t n_labels;
    struct metrics *own_metrics;
    struct metric *m_sent, *m_failed, *m_drop_full, *m_drop_breaker, *m_drop_dedup,
        *m_drop_shutdown, *m_breaker_state;

    /* guarded by mu: queue, key table, in_flight, stopping */
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; work arrived or stop requested */
    struct alert_item *head, *tail;
    size_t queued, in_flight;
    struct lru *keys;
    bool stopping;
    uint64_t deadline_ms; /* flush deadline once stopping (monotonic) */

    /* owned by the worker thread after start */
    pthread_t thread;
    bool thread_started;
    CURL *curl;
    struct curl_slist *headers;
    struct breaker breaker;
};

static void key_state_free(void *p)
{
    struct key_state *st = p;
    if (!st)
        return;
    free(st->summary);
    free(st->description);
    free(st);
}

static void item_free(struct alert_item *it)
{
    if (!it)
        return;
    free(it->body);
    free(it->alertname);
    free(it);
}

static void metric_inc_safe(struct metric *m)
{
    if (m)
        metric_inc(m);
}

/* ---- deciding and queueing ---- */

static char *body_build(const struct alerter *a, const char *alertname, const struct key_state *st,
                        const char *const *kv, size_t n, bool resolved)
{
    struct alert_common c = {a->label_k,   a->label_v,  a->n_labels,
                             a->component, a->instance, a->generator_url};
    struct alert_body b = {alertname, st->sev, st->summary,      st->description,
                           kv,        n,       st->starts_at_us, 0};
    if (resolved) {
        int64_t now = time_now_us();
        b.ends_at_us = now > st->starts_at_us ? now : st->starts_at_us;
    }
    return alert_body_json(&c, &b);
}

/* Caller holds mu. Drops the oldest when full: the newest alert says the
 * most about the present. */
static void enqueue_locked(struct alerter *a, char *body, const char *alertname)
{
    if (a->queued >= a->queue_max) {
        struct alert_item *old = a->head;
        a->head = old->next;
        if (!a->head)
            a->tail = NULL;
        a->queued--;
        log_warn("alert queue full (%zu): dropped %s", a->queue_max, old->alertname);
        metric_inc_safe(a->m_drop_full);
        item_free(old);
    }
    struct alert_item *it = xcalloc(1, sizeof(*it));
    it->body = body;
    it->alertname = xstrdup(alertname);
    if (a->tail)
        a->tail->next = it;
    else
        a->head = it;
    a->tail = it;
    a->queued++;
    pthread_cond_signal(&a->cond);
}

void alerter_fire_kv(struct alerter *a, const char *alertname, enum alert_severity sev,
                     const char *summary, const char *description, const char *const *kv,
                     size_t n_labels)
{
    if (!a || !a->enabled || !alertname)
        return;
    char *key = alert_key(alertname, kv, n_labels);
    pthread_mutex_lock(&a->mu);
    uint64_t now = time_mono_ms();
    struct key_state *st = lru_get(a->keys, key, strlen(key), now);
    if (st && st->firing && now - st->last_sent_ms < a->min_interval_ms) {
        metric_inc_safe(a->m_drop_dedup);
        goto out;
    }
    if (!st) {
        st = xcalloc(1, sizeof(*st));
        lru_put(a->keys, key, strlen(key), st, now);
    }
    if (!st->firing)
        st->starts_at_us = time_now_us();
    st->firing = true;
    st->sev = sev;
    st->last_sent_ms = now;
    free(st->summary);
    free(st->description);
    st->summary = summary ? xstrdup(summary) : NULL;
    st->description = description ? xstrdup(description) : NULL;
    /* Built under the lock so that a fire and a resolve of one key from two
     * threads reach the queue in the order they were decided. */
    enqueue_locked(a, body_build(a, alertname, st, kv, n_labels, false), alertname);
out:
    pthread_mutex_unlock(&a->mu);
    free(key);
}

void alerter_resolve_kv(struct alerter *a, const char *alertname, const char *const *kv,
                        size_t n_labels)
{
    if (!a || !a->enabled || !alertname)
        return;
    char *key = alert_key(alertname, kv, n_labels);
    pthread_mutex_lock(&a->mu);
    uint64_t now = time_mono_ms();
    struct key_state *st = lru_get(a->keys, key, strlen(key), now);
    if (!st || !st->firing) {
        /* Nothing this process fired is open under this key. */
        metric_inc_safe(a->m_drop_dedup);
        goto out;
    }
    st->firing = false;
    st->last_sent_ms = now;
    enqueue_locked(a, body_build(a, alertname, st, kv, n_labels, true), alertname);
out:
    pthread_mutex_unlock(&a->mu);
    free(key);
}

/* Collect NULL-terminated key/value varargs into an array. Heap; *n pairs. */
static const char **kv_from_va(va_list ap, size_t *n)
{
    size_t cap = 8, len = 0;
    const char **kv = xmalloc(cap * sizeof(*kv));
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (len + 2 > cap) {
            cap *= 2;
            kv = xrealloc(kv, cap * sizeof(*kv));
        }
        kv[len++] = k;
        kv[len++] = v ? v : "";
        if (!v)
            break; /* odd count: the key gets an empty value */
    }
    *n = len / 2;
    return kv;
}

void alerter_fire(struct alerter *a, const char *alertname, enum alert_severity sev,
                  const char *summary, const char *description, ...)
{
    if (!a || !a->enabled)
        return;
    va_list ap;
    va_start(ap, description);
    size_t n;
    const char **kv = kv_from_va(ap, &n);
    va_end(ap);
    alerter_fire_kv(a, alertname, sev, summary, description, kv, n);
    free(kv);
}

void alerter_resolve(struct alerter *a, const char *alertname, ...)
{
    if (!a || !a->enabled)
        return;
    va_list ap;
    va_start(ap, alertname);
    size_t n;
    const char **kv = kv_from_va(ap, &n);
    va_end(ap);
    alerter_resolve_kv(a, alertname, kv, n);
    free(kv);
}

void alerter_stats(struct alerter *a, struct alerter_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!a || !a->enabled)
        return;
    pthread_mutex_lock(&a->mu);
    out->queued = a->queued;
    out->in_flight = a->in_flight;
    pthread_mutex_unlock(&a->mu);
}

/* ---- worker thread ---- */

static size_t discard_body(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* The time one POST may take: timeout_ms, cut to what is left of the flush
 * budget once alerter_free has begun; 0 when none is left. */
static uint64_t post_budget_ms(struct alerter *a)
{
    uint64_t t = a->timeout_ms;
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        uint64_t now = time_mono_ms();
        uint64_t left = a->deadline_ms > now ? a->deadline_ms - now : 0;
        if (left < t)
            t = left;
    }
    pthread_mutex_unlock(&a->mu);
    return t;
}

static enum post_result post(struct alerter *a, const struct alert_item *it, uint64_t budget_ms)
{
    curl_easy_setopt(a->curl, CURLOPT_TIMEOUT_MS, (long)budget_ms);
    curl_easy_setopt(a->curl, CURLOPT_POSTFIELDS, it->body);
    curl_easy_setopt(a->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(it->body));
    CURLcode rc = curl_easy_perform(a->curl);
    if (rc != CURLE_OK) {
        log_warn("alert %s: POST %s: %s", it->alertname, a->log_url, curl_easy_strerror(rc));
        return POST_RETRY;
    }
    long status = 0;
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300)
        return POST_OK;
    if (status >= 400 && status < 500 && status != 408 && status != 429) {
        log_error("alert %s: POST %s: HTTP %ld, not retried (payload rejected)", it->alertname,
                  a->log_url, status);
        return POST_PERMANENT;
    }
    log_warn("alert %s: POST %s: HTTP %ld", it->alertname, a->log_url, status);
    return POST_RETRY;
}

/* Sleep delay_ms on the condition variable; false when shutdown's flush
 * budget ran out first. */
static bool wait_ms(struct alerter *a, uint64_t delay_ms)
{
    bool ok = true;
    pthread_mutex_lock(&a->mu);
    uint64_t until = time_mono_ms() + delay_ms;
    for (;;) {
        uint64_t now = time_mono_ms();
        uint64_t t = until;
        if (a->stopping) {
            if (now >= a->deadline_ms) {
                ok = false;
                break;
            }
            if (a->deadline_ms < t)
                t = a->deadline_ms;
        }
        if (now >= until)
            break;
        struct timespec ts = {.tv_sec = (time_t)(t / 1000), .tv_nsec = (long)(t % 1000) * 1000000};
        pthread_cond_timedwait(&a->cond, &a->mu, &ts);
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

static void deliver(struct alerter *a, const struct alert_item *it)
{
    struct backoff bo;
    backoff_init(&bo, a->retry_backoff_ms, a->retry_backoff_ms * 32, NULL, NULL);
    bool attempted = false;
    for (unsigned attempt = 0; attempt <= a->retries; attempt++) {
        if (attempt > 0 && !wait_ms(a, backoff_next(&bo)))
            break;
        uint64_t budget = post_budget_ms(a);
        if (budget == 0)
            break;
        if (!breaker_allow(&a->breaker)) {
            if (attempted)
                break; /* it failed and the breaker opened: give up now */
            log_debug("alert %s dropped: breaker open", it->alertname);
            metric_inc_safe(a->m_drop_breaker);
            return;
        }
        attempted = true;
        switch (post(a, it, budget)) {
        case POST_OK:
            breaker_success(&a->breaker);
            metric_inc_safe(a->m_sent);
            return;
        case POST_PERMANENT:
            /* the receiver is up and answering: not a breaker failure */
            breaker_success(&a->breaker);
            metric_inc_safe(a->m_failed);
            return;
        case POST_RETRY:
            breaker_failure(&a->breaker);
            break;
        }
    }
    if (!attempted) {
        /* shutdown's budget ran out before the first try */
        metric_inc_safe(a->m_drop_shutdown);
        return;
    }
    log_warn("alert %s not delivered: gave up after failed POSTs", it->alertname);
    metric_inc_safe(a->m_failed);
}

static void *worker_main(void *ud)
{
    struct alerter *a = ud;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->head && !a->stopping)
            pthread_cond_wait(&a->cond, &a->mu);
        if (!a->head)
            break;
        if (a->stopping && time_mono_ms() >= a->deadline_ms)
            break;
        struct alert_item *it = a->head;
        a->head = it->next;
        if (!a->head)
            a->tail = NULL;
        a->queued--;
        a->in_flight = 1;
        pthread_mutex_unlock(&a->mu);
        deliver(a, it);
        item_free(it);
        pthread_mutex_lock(&a->mu);
        a->in_flight = 0;
    }
    /* Out of flush budget: what is left is dropped, and counted. */
    while (a->head) {
        struct alert_item *it = a->head;
        a->head = it->next;
        a->queued--;
        metric_inc_safe(a->m_drop_shutdown);
        item_free(it);
    }
    a->tail = NULL;
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void on_breaker_change(void *ud, const struct breaker *b, enum breaker_state from,
                              enum breaker_state to)
{
    struct alerter *a = ud;
    metric_set(a->m_breaker_state, (double)to);
    if (to == BREAKER_OPEN)
        log_warn("alert webhook breaker %s -> open: alerts are dropped for %llu ms",
                 breaker_state_name(from), (unsigned long long)breaker_wait_ms(b));
    else
        log_info("alert webhook breaker %s -> %s", breaker_state_name(from),
                 breaker_state_name(to));
}

/* ---- lifecycle ---- */

static void register_metrics(struct alerter *a, struct metrics *m)
{
    a->m_sent = metrics_counter(m, "auditrail_alerts_sent_total",
                                "Alerts accepted by the webhook (2xx)", NULL);
    a->m_failed = metrics_counter(
        m, "auditrail_alerts_failed_total",
        "Alerts given up after failed POSTs (retries spent or payload rejected)", NULL);
    const char *dh = "Alerts not sent: queue full (oldest dropped), webhook breaker open, "
                     "deduplicated within min_interval_ms, or pending at shutdown";
    const char *dn = "auditrail_alerts_dropped_total";
    a->m_drop_full = metrics_counter(m, dn, dh, "reason=\"queue_full\"");
    a->m_drop_breaker = metrics_counter(m, dn, dh, "reason=\"breaker_open\"");
    a->m_drop_dedup = metrics_counter(m, dn, dh, "reason=\"deduplicated\"");
    a->m_drop_shutdown = metrics_counter(m, dn, dh, "reason=\"shutdown\"");
    a->m_breaker_state =
        metrics_gauge(m, "auditrail_alert_breaker_state",
                      "Alert webhook breaker: 0 closed, 1 open, 2 half-open", NULL);
    metric_set(a->m_breaker_state, 0);
}

static bool url_ok(const char *u)
{
    return strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
}

int alerter_conf_check(struct cfg_check *chk, const struct alerter_conf *c)
{
    if (c->url && c->url[0] && !url_ok(c->url))
        return cfg_check_fail(chk, "alerts.url", "expected an http:// or https:// URL");
    return 0;
}

/* The worker's curl handle: URL, headers (ours, then alerts.headers; a
 * Content-Type there replaces ours), timeouts. -1 when curl cannot start. */
static int curl_setup(struct alerter *a, const struct cfg_map *headers)
{
    curl_global_init(CURL_GLOBAL_DEFAULT); /* refcounted; thread-safe in libcurl >= 7.84 */
    a->curl = curl_easy_init();
    if (!a->curl)
        return -1;
    bool own_ct = false;
    for (size_t i = 0; i < headers->n; i++)
        own_ct |= strcasecmp(headers->keys[i], "Content-Type") == 0;
    if (!own_ct)
        a->headers = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; i < headers->n; i++) {
        char *h = xasprintf("%s: %s", headers->keys[i], headers->vals[i] ? headers->vals[i] : "");
        a->headers = curl_slist_append(a->headers, h);
        free(h);
    }
    CURL *c = a->curl;
    curl_easy_setopt(c, CURLOPT_URL, a->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, a->headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)a->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)a->timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "auditrail-alerter");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    return 0;
}

struct alerter *alerter_new(const struct alerter_conf *conf, struct metrics *m, char *err,
                            size_t errlen)
{
    struct alerter *a = xcalloc(1, sizeof(*a));
    if (!conf->url || !conf->url[0])
        return a; /* disabled: every call is a no-op */
    if (!url_ok(conf->url)) {
        snprintf(err, errlen, "alerts.url: expected an http:// or https:// URL");
        free(a);
        return NULL;
    }
    a->enabled = true;
    a->url = xstrdup(conf->url);
    a->log_url = redact_url_dup(conf->url);
    a->generator_url =
        conf->generator_url && conf->generator_url[0] ? xstrdup(conf->generator_url) : NULL;
    a->component = conf->component ? xstrdup(conf->component) : NULL;
    a->instance = conf->instance ? xstrdup(conf->instance) : NULL;
    a->timeout_ms = conf->timeout_ms > 0 ? (uint64_t)conf->timeout_ms : ALERT_DEF_TIMEOUT_MS;
    a->min_interval_ms =
        conf->min_interval_ms > 0 ? (uint64_t)conf->min_interval_ms : ALERT_DEF_MIN_INTERVAL_MS;
    a->queue_max = conf->queue_max > 0 ? (size_t)conf->queue_max : ALERT_DEF_QUEUE_MAX;
    a->retries = conf->retries >= 0 ? (unsigned)conf->retries : ALERT_DEF_RETRIES;
    a->retry_backoff_ms =
        conf->retry_backoff_ms > 0 ? (uint64_t)conf->retry_backoff_ms : ALERT_DEF_RETRY_BACKOFF;
    a->n_labels = conf->labels.n;
    if (a->n_labels) {
        a->label_k = xcalloc(a->n_labels, sizeof(char *));
        a->label_v = xcalloc(a->n_labels, sizeof(char *));
        for (size_t i = 0; i < a->n_labels; i++) {
            a->label_k[i] = xstrdup(conf->labels.keys[i]);
            a->label_v[i] = xstrdup(conf->labels.vals[i] ? conf->labels.vals[i] : "");
        }
    }
    if (!m)
        m = a->own_metrics = metrics_new();
    register_metrics(a, m);
    a->keys = lru_new(ALERT_KEYS_MAX, 0, key_state_free);

    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);

    struct breaker_conf bc;
    if (conf->breaker)
        bc = *conf->breaker;
    else
        breaker_conf_default(&bc);
    breaker_init(&a->breaker, "alert_webhook", &bc, NULL, NULL, NULL, NULL, on_breaker_change, a);

    if (curl_setup(a, &conf->headers) < 0) {
        snprintf(err, errlen, "alerts: curl_easy_init failed");
        goto fail;
    }
    int rc = pthread_create(&a->thread, NULL, worker_main, a);
    if (rc != 0) {
        snprintf(err, errlen, "alerts: cannot start thread: %s", strerror(rc));
        goto fail;
    }
    a->thread_started = true;
    return a;
fail:
    alerter_free(a);
    return NULL;
}

void alerter_free(struct alerter *a)
{
    if (!a)
        return;
    if (a->enabled) {
        pthread_mutex_lock(&a->mu);
        a->stopping = true;
        a->deadline_ms = time_mono_ms() + a->timeout_ms;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->mu);
        /* The worker stops at the deadline: a POST started after stop gets
         * only the budget left, a POST already running ends within its own
         * timeout_ms, a retry wait ends at the deadline (wait_ms). */
        if (a->thread_started)
            pthread_join(a->thread, NULL);
        /* Never started: nothing dequeued, count what is left. */
        while (a->head) {
            struct alert_item *it = a->head;
            a->head = it->next;
            metric_inc_safe(a->m_drop_shutdown);
            item_free(it);
        }
        if (a->curl)
            curl_easy_cleanup(a->curl);
        curl_slist_free_all(a->headers);
        curl_global_cleanup();
        lru_free(a->keys);
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->mu);
    }
    for (size_t i = 0; i < a->n_labels; i++) {
        free(a->label_k[i]);
        free(a->label_v[i]);
    }
    free(a->label_k);
    free(a->label_v);
    free(a->url);
    free(a->log_url);
    free(a->generator_url);
    free(a->component);
    free(a->instance);
    metrics_free(a->own_metrics);
    free(a);
}
