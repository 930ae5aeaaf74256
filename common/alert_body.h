/* One alert as Alertmanager's POST /api/v2/alerts takes it, built without
 * I/O: the JSON body, and the identity (alertname + labels) that the sender
 * (common/alert.c) deduplicates and resolves by. */
#ifndef AUDITRAIL_ALERT_BODY_H
#define AUDITRAIL_ALERT_BODY_H

#include <stddef.h>
#include <stdint.h>

enum alert_severity { ALERT_INFO = 0, ALERT_WARNING = 1, ALERT_CRITICAL = 2 };

/* "info", "warning", "critical". */
const char *alert_severity_name(enum alert_severity s);

/* What every alert of a program carries. NULL members are omitted. */
struct alert_common {
    char **label_k, **label_v; /* static labels (alerts.labels) */
    size_t n_labels;
    const char *component, *instance, *generator_url;
};

/* One alert. kv holds n_kv label pairs kv[0],kv[1],… (a NULL name is
 * skipped). ends_at_us 0 = firing (no endsAt). */
struct alert_body {
    const char *alertname;
    enum alert_severity sev;
    const char *summary, *description; /* NULL = omitted */
    const char *const *kv;
    size_t n_kv;
    int64_t starts_at_us, ends_at_us;
};

/* The compact JSON body: a one-element array
 *   [{"labels":{<static>,"component","instance",<call labels>,"alertname","severity"},
 *     "annotations":{"summary","description"},"startsAt","endsAt"?,"generatorURL"?}]
 * Later labels win (alertname and severity cannot be overridden); label names
 * outside [a-zA-Z_][a-zA-Z0-9_]* have other characters replaced by '_'
 * (Alertmanager rejects the whole POST for one bad name); bytes that are not
 * valid UTF-8 become '?'. Heap (caller frees); out of memory aborts. */
char *alert_body_json(const struct alert_common *c, const struct alert_body *b);

/* The identity of an alert: alertname and the labels sorted, joined by
 * separator bytes. Two calls with the same labels in any order give the same
 * key. Heap (caller frees). */
char *alert_key(const char *alertname, const char *const *kv, size_t n_kv);

#endif
