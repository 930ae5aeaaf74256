/* Metrics: exact Prometheus text for a small registry, series identity,
 * type conflicts, and exact sums under concurrent updates. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "tests/support/testutil.h"

START_TEST(exposition_exact)
{
    struct metrics *m = metrics_new();
    struct metric *lines = metrics_counter(m, "auditrail_lines_total", "Lines read.", NULL);
    struct metric *json = metrics_gauge(
        m, "auditrail_queue_depth", "Queue depth\\by \"format\".\nSecond line.", "format=\"json\"");
    struct metric *kv = metrics_gauge(m, "auditrail_queue_depth", "ignored", "format=\"kv\"");
    const double bounds[] = {0.005, 0.1, 1};
    struct metric *lat =
        metrics_histogram(m, "auditrail_flush_seconds", "Flush latency.", "sink=\"pg\"", bounds, 3);
    metric_inc(lines);
    metric_add(lines, 41);
    metric_set(json, 2.5);
    metric_add(kv, -3);
    metric_observe(lat, 0.001);
    metric_observe(lat, 0.005); /* on a bound: counts in that bucket (le) */
    metric_observe(lat, 0.05);
    metric_observe(lat, 3);
    char *text = metrics_render(m);
    const char *want = "# HELP auditrail_lines_total Lines read.\n"
                       "# TYPE auditrail_lines_total counter\n"
                       "auditrail_lines_total 42\n"
                       "# HELP auditrail_queue_depth Queue depth\\\\by \"format\".\\nSecond line.\n"
                       "# TYPE auditrail_queue_depth gauge\n"
                       "auditrail_queue_depth{format=\"json\"} 2.5\n"
                       "auditrail_queue_depth{format=\"kv\"} -3\n"
                       "# HELP auditrail_flush_seconds Flush latency.\n"
                       "# TYPE auditrail_flush_seconds histogram\n"
                       "auditrail_flush_seconds_bucket{sink=\"pg\",le=\"0.005\"} 2\n"
                       "auditrail_flush_seconds_bucket{sink=\"pg\",le=\"0.1\"} 3\n"
                       "auditrail_flush_seconds_bucket{sink=\"pg\",le=\"1\"} 3\n"
                       "auditrail_flush_seconds_bucket{sink=\"pg\",le=\"+Inf\"} 4\n"
                       "auditrail_flush_seconds_sum{sink=\"pg\"} 3.056\n"
                       "auditrail_flush_seconds_count{sink=\"pg\"} 4\n";
    ck_assert_str_eq(text, want);
    free(text);
    ck_assert(fabs(metric_value(lat) - 3.056) < 1e-12);
    ck_assert_uint_eq(metric_count(lat), 4);
    ck_assert(metric_value(lines) == 42);
    metrics_free(m);
}
END_TEST

START_TEST(histogram_without_labels_and_special_values)
{
    struct metrics *m = metrics_new();
    const double bounds[] = {1};
    struct metric *h = metrics_histogram(m, "h", "", NULL, bounds, 1);
    struct metric *g = metrics_gauge(m, "g", "", NULL);
    metric_observe(h, 0.5);
    metric_set(g, INFINITY);
    char *text = metrics_render(m);
    ck_assert_str_eq(text, "# HELP h \n# TYPE h histogram\n"
                           "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n"
                           "# HELP g \n# TYPE g gauge\ng +Inf\n");
    free(text);
    metric_set(g, 0.1);
    text = metrics_render(m);
    ck_assert_ptr_nonnull(strstr(text, "\ng 0.1\n")); /* shortest round-trip form */
    free(text);
    metrics_free(m);
}
END_TEST

START_TEST(empty_registry)
{
    struct metrics *m = metrics_new();
    char *text = metrics_render(m);
    ck_assert_str_eq(text, "");
    free(text);
    metrics_free(m);
    metrics_free(NULL);
}
END_TEST

START_TEST(same_series_twice)
{
    struct metrics *m = metrics_new();
    struct metric *a = metrics_counter(m, "c_total", "help", "x=\"1\"");
    struct metric *b = metrics_counter(m, "c_total", "help", "x=\"1\"");
    struct metric *c = metrics_counter(m, "c_total", "help", "x=\"2\"");
    struct metric *d = metrics_counter(m, "c_total", "help", NULL);
    struct metric *e = metrics_counter(m, "c_total", "help", "");
    ck_assert_ptr_eq(a, b);
    ck_assert_ptr_ne(a, c);
    ck_assert_ptr_eq(d, e); /* NULL and "" both mean no labels */
    metric_inc(a);
    metric_inc(b);
    ck_assert(metric_value(a) == 2);
    ck_assert(metric_value(c) == 0);
    metric_add(a, -5); /* a counter never goes down */
    ck_assert(metric_value(a) == 2);
    char *text = metrics_render(m);
    /* One HELP/TYPE block for the family, series in registration order. */
    ck_assert_str_eq(text, "# HELP c_total help\n# TYPE c_total counter\n"
                           "c_total{x=\"1\"} 2\nc_total{x=\"2\"} 0\nc_total 0\n");
    free(text);
    metrics_free(m);
}
END_TEST

START_TEST(type_conflict_aborts)
{
    struct metrics *m = metrics_new();
    metrics_counter(m, "x_total", "", NULL);
    metrics_gauge(m, "x_total", "", NULL); /* aborts */
}
END_TEST

START_TEST(bad_name_aborts)
{
    struct metrics *m = metrics_new();
    metrics_counter(m, "bad-name", "", NULL);
}
END_TEST

struct worker {
    struct metric *c, *g, *h;
};

#define PER_THREAD 200000

static void *hammer(void *ud)
{
    struct worker *w = ud;
    for (int i = 0; i < PER_THREAD; i++) {
        metric_inc(w->c);
        metric_add(w->g, 0.5);
        metric_observe(w->h, (double)(i % 4));
    }
    return NULL;
}

START_TEST(concurrent_updates_sum_exactly)
{
    struct metrics *m = metrics_new();
    const double bounds[] = {0, 1, 2};
    struct worker w = {
        .c = metrics_counter(m, "n_total", "", NULL),
        .g = metrics_gauge(m, "g", "", NULL),
        .h = metrics_histogram(m, "h", "", NULL, bounds, 3),
    };
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &w), 0);
    for (int i = 0; i < 4; i++) {
        /* Renders race with the updates: they must stay well-formed. */
        char *text = metrics_render(m);
        ck_assert_ptr_nonnull(strstr(text, "h_count"));
        free(text);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert(metric_value(w.c) == 4.0 * PER_THREAD);
    ck_assert(metric_value(w.g) == 2.0 * PER_THREAD);
    ck_assert_uint_eq(metric_count(w.h), 4ULL * PER_THREAD);
    ck_assert(metric_value(w.h) == 4.0 * (PER_THREAD / 4) * (0 + 1 + 2 + 3));
    char *text = metrics_render(m);
    ck_assert_ptr_nonnull(strstr(text, "h_bucket{le=\"0\"} 200000\n"));
    ck_assert_ptr_nonnull(strstr(text, "h_bucket{le=\"1\"} 400000\n"));
    ck_assert_ptr_nonnull(strstr(text, "h_bucket{le=\"2\"} 600000\n"));
    ck_assert_ptr_nonnull(strstr(text, "h_bucket{le=\"+Inf\"} 800000\n"));
    ck_assert_ptr_nonnull(strstr(text, "n_total 800000\n"));
    free(text);
    metrics_free(m);
}
END_TEST

struct registrar {
    struct metrics *m;
    struct metric *got[50];
};

static void *register_many(void *ud)
{
    struct registrar *r = ud;
    for (int i = 0; i < 50; i++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        r->got[i] = metrics_counter(r->m, "reg_total", "", labels);
        metric_inc(r->got[i]);
    }
    return NULL;
}

START_TEST(concurrent_registration)
{
    struct metrics *m = metrics_new();
    struct registrar r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i].m = m;
        ck_assert_int_eq(pthread_create(&t[i], NULL, register_many, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 50; i++) {
        for (int j = 1; j < 4; j++)
            ck_assert_ptr_eq(r[0].got[i], r[j].got[i]);
        ck_assert(metric_value(r[0].got[i]) == 4);
    }
    metrics_free(m);
}
END_TEST

/* A collector runs once per render, before the text is made (so the value it
 * sets is the one rendered), and its state is freed with the registry. */
struct coll_state {
    struct metric *g;
    int calls;
    int *freed;
};

static void coll_fn(void *ud)
{
    struct coll_state *c = ud;
    c->calls++;
    metric_set(c->g, c->calls * 10);
}

static void coll_free(void *ud)
{
    struct coll_state *c = ud;
    (*c->freed)++;
    free(c);
}

START_TEST(collector_runs_per_render_and_is_freed)
{
    int freed = 0;
    struct metrics *m = metrics_new();
    struct coll_state *c = calloc(1, sizeof(*c));
    c->g = metrics_gauge(m, "auditrail_pulled", "Set at scrape time.", NULL);
    c->freed = &freed;
    metrics_add_collector(m, coll_fn, c, coll_free);
    ck_assert_int_eq(c->calls, 0); /* registering does not collect */
    char *t1 = metrics_render(m);
    ck_assert_ptr_nonnull(strstr(t1, "\nauditrail_pulled 10\n"));
    char *t2 = metrics_render(m);
    ck_assert_ptr_nonnull(strstr(t2, "\nauditrail_pulled 20\n"));
    ck_assert_int_eq(c->calls, 2);
    free(t1);
    free(t2);
    ck_assert_int_eq(freed, 0);
    metrics_free(m);
    ck_assert_int_eq(freed, 1);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, exposition_exact);
    tcase_add_test(tc, histogram_without_labels_and_special_values);
    tcase_add_test(tc, empty_registry);
    tcase_add_test(tc, same_series_twice);
    tcase_add_test(tc, concurrent_updates_sum_exactly);
    tcase_add_test(tc, concurrent_registration);
    tcase_add_test(tc, collector_runs_per_render_and_is_freed);
    suite_add_tcase(s, tc);
    TCase *ab = tcase_create("aborts");
    tcase_add_test_raise_signal(ab, type_conflict_aborts, SIGABRT);
    tcase_add_test_raise_signal(ab, bad_name_aborts, SIGABRT);
    suite_add_tcase(s, ab);
    return s;
}

int main(void)
{
    return test_run_suite(metrics_suite());
}
