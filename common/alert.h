/* Alertmanager-compatible webhook sender (DESIGN.md §6): fire and resolve
 * alerts without ever blocking the pipeline. Best effort by design. The
 * body of each alert is built by common/alert_body.h.
 *
 * Calls only take a lock, decide (dedupe) and enqueue; one background thread
 * owns the curl handle and the circuit breaker and POSTs each alert as a
 * one-element JSON array in the format of Alertmanager's POST /api/v2/alerts:
 *   [{"labels":{"alertname":…,"severity":…,"component":…,"instance":…,…},
 *     "annotations":{"summary":…,"description":…},
 *     "startsAt":"…Z","endsAt":"…Z" (resolved only),"generatorURL":…}]
 *
 * Dedupe, per key = alertname + the call's labels (not severity):
 *  - fire: sent unless the key is firing and was sent less than
 *    min_interval_ms ago (then counted as deduplicated). startsAt stays the
 *    time the key started firing, so re-sends are the same alert.
 *  - resolve: sent when the key is firing (a state change always goes out),
 *    with the severity it fired with (Alertmanager matches on every label)
 *    and endsAt = now; otherwise (already resolved, or never fired by this
 *    process) counted as deduplicated.
 * Delivery: bounded queue (full: the oldest is dropped), a breaker around the
 * webhook (open: alerts are dropped until a probe succeeds), a failed POST
 * (transport error, 5xx, 408, 429) retried with backoff; another 4xx is not
 * retried (the payload will not get better) and does not count against the
 * breaker (the receiver answered).
 * Every alert that entered the queue ends as exactly one of sent, failed,
 * dropped{queue_full|breaker_open|shutdown}. */
#ifndef AUDITRAIL_ALERT_H
#define AUDITRAIL_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "common/alert_body.h"
#include "common/breaker.h"
#include "common/config.h"

struct metrics;
struct alerter;

/* The `alerts:` config section (alerts_conf_keys fills the first block) plus
 * what the program sets before alerter_new. Numeric fields <= 0 take the
 * default. cfg_free(alerts_conf_keys, conf) frees the config-owned fields. */
struct alerter_conf {
    /* from the config section */
    char *url;                /* webhook; NULL or "" = alerts disabled */
    int64_t timeout_ms;       /* per POST, and the flush budget at free; 2000 */
    int64_t min_interval_ms;  /* dedupe window per key; 60000 */
    int64_t queue_max;        /* pending alerts; 256 */
    int64_t retries;          /* extra attempts after a failed POST; 3 */
    int64_t retry_backoff_ms; /* first retry delay ceiling (doubles, jittered); 200 */
    char *generator_url;      /* "generatorURL"; NULL = omitted */
    struct cfg_map labels;    /* static labels added to every alert */
    struct cfg_map headers;   /* extra HTTP headers, e.g. Authorization */
    /* set by the program (not owned, must outlive the alerter) */
    const char *component;              /* "agent" / "aggregator"; NULL = omitted */
    const char *instance;               /* host or pod name; NULL = omitted */
    const struct breaker_conf *breaker; /* NULL = breaker_conf_default */
};

extern const struct cfg_key alerts_conf_keys[];
/* The alerts section's own check (url is http or https), for a program's
 * config check: 0, or cfg_check_fail's -1. */
int alerter_conf_check(struct cfg_check *chk, const struct alerter_conf *c);

/* Create the alerter and start its thread (none when disabled). Registers
 * its metrics in m (m NULL: a private registry). Returns NULL with a message
 * in err when url is not http(s) or a resource cannot be had. conf is copied
 * (strings and maps too). */
struct alerter *alerter_new(const struct alerter_conf *conf, struct metrics *m, char *err,
                            size_t errlen) __attribute__((warn_unused_result));
/* Flush what can be sent within timeout_ms, then stop the thread; what is
 * still queued is counted as dropped{reason="shutdown"}. NULL-safe. */
void alerter_free(struct alerter *a);

/* Fire an alert. description may be NULL. labels: n_labels key/value pairs
 * kv[0],kv[1],…; a label name that is not [a-zA-Z_][a-zA-Z0-9_]* has its
 * other characters replaced by '_'. alertname and severity cannot be
 * overridden by labels. Any thread; never blocks on the network. No-op on
 * a NULL or disabled alerter. */
void alerter_fire_kv(struct alerter *a, const char *alertname, enum alert_severity sev,
                     const char *summary, const char *description, const char *const *kv,
                     size_t n_labels);
/* Resolve alertname+labels (see the dedupe rules above). */
void alerter_resolve_kv(struct alerter *a, const char *alertname, const char *const *kv,
                        size_t n_labels);

/* Variadic forms: label key/value strings, terminated by NULL:
 *   alerter_fire(a, "AuditrailBreakerOpen", ALERT_CRITICAL, "…", NULL,
 *                "breaker", "postgres_primary", NULL); */
void alerter_fire(struct alerter *a, const char *alertname, enum alert_severity sev,
                  const char *summary, const char *description, ...) __attribute__((sentinel));
void alerter_resolve(struct alerter *a, const char *alertname, ...) __attribute__((sentinel));

struct alerter_stats {
    size_t queued;    /* waiting in the queue */
    size_t in_flight; /* taken by the thread, being sent or retried (0 or 1) */
};
/* Snapshot of the queue (zeros for a NULL or disabled alerter). */
void alerter_stats(struct alerter *a, struct alerter_stats *out);

#endif
