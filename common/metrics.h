/* Metrics registry with Prometheus text exposition (format 0.0.4).
 * Series are registered up front and updated lock-free from any thread
 * (counters and gauges are atomics; histograms take a short lock).
 * Label sets are fixed strings chosen by the code, never file names, so
 * cardinality stays bounded (LESSONS.md: vector #15426). */
#ifndef AUDITRAIL_METRICS_H
#define AUDITRAIL_METRICS_H

#include <stddef.h>

struct metrics;
struct metric;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m); /* NULL-safe; frees every series */

/* Register a series. `labels` is NULL or the inside of the braces, e.g.
 * "format=\"json\"". Registering the same name+labels twice returns the same
 * series; the same name with another type aborts (a programming error).
 * Series of one name share one HELP/TYPE block. The registry owns them. */
struct metric *metrics_counter(struct metrics *m, const char *name, const char *help,
                               const char *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name, const char *help,
                             const char *labels);
/* `bounds`: n ascending upper bounds (copied); +Inf is implicit. */
struct metric *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const char *labels, const double *bounds, size_t n);

void metric_inc(struct metric *s);                       /* counter/gauge += 1 */
void metric_add(struct metric *s, double v);             /* counter (v >= 0) or gauge */
void metric_set(struct metric *s, double v);             /* gauge */
void metric_observe(struct metric *s, double v);         /* histogram */
double metric_value(const struct metric *s);             /* counter/gauge; histogram: sum */
unsigned long long metric_count(const struct metric *s); /* histogram: count */

/* A collector sets series whose values are read rather than pushed (e.g.
 * /proc/self): metrics_render calls every collector, in registration order,
 * before it renders, with the registry locked (so collectors never run
 * concurrently; a collector must not register series). The registry owns ud
 * and calls free_ud(ud) (if not NULL) in metrics_free. */
typedef void (*metrics_collect_fn)(void *ud);
void metrics_add_collector(struct metrics *m, metrics_collect_fn fn, void *ud,
                           void (*free_ud)(void *));

/* The whole registry as Prometheus text; heap string, caller frees. */
char *metrics_render(struct metrics *m);

#endif
