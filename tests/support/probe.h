/* What a test asks a running program over HTTP: /readyz, /healthz, and
 * /metrics. A metric that is not exposed is never read as 0: asking for its
 * value fails the test, and waiting for it never succeeds. */
#ifndef AUDITRAIL_TEST_PROBE_H
#define AUDITRAIL_TEST_PROBE_H

#include <stdbool.h>

/* A free TCP port on 127.0.0.1 (bound to 0, read, released). */
unsigned probe_free_port(void);

/* GET http://127.0.0.1:port/path. Returns the HTTP status, or -1 when
 * nothing answered; the body (heap, "" when empty) in *body when body is
 * not NULL, NULL there when nothing answered. */
long probe_http_get(unsigned port, const char *path, char **body);

/* The sum of every sample of `series` in /metrics: a family name matches
 * its samples with any labels, a name with labels (`x{layer="lru"}`) only
 * that series. Returns false when the endpoint does not answer or no
 * sample matches (the metric is not exposed); *value is set only on true. */
bool probe_metric(unsigned port, const char *series, double *value);

/* The value of series; fails the test (ck_abort) when it is not exposed. */
double probe_metric_value(unsigned port, const char *series);

/* Wait until the series is exposed with lo <= value <= hi. */
bool probe_wait_metric_range(unsigned port, const char *series, double lo, double hi,
                             unsigned timeout_ms);
/* Wait until the series is exposed with value >= at_least. */
bool probe_wait_metric(unsigned port, const char *series, double at_least, unsigned timeout_ms);

/* Wait until GET path answers `status` (e.g. /readyz 503). */
bool probe_wait_status(unsigned port, const char *path, long status, unsigned timeout_ms);
/* Wait until /readyz answers 200. */
bool probe_wait_ready(unsigned port, unsigned timeout_ms);

#endif
