/* alerter: against a real local HTTP receiver (libmicrohttpd on 127.0.0.1,
 * port 0) that records every POST and can answer an error status or hold
 * requests at a gate: payload format, dedupe, resolve, breaker, retries,
 * queue overflow, shutdown, config section. */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alert.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

#define WAIT_MS    20000
#define MAX_BODIES 1024

/* ---- the receiver ---------------------------------------------------- */

struct receiver {
    struct MHD_Daemon *d;
    unsigned port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int status;    /* answered once fail_next is spent */
    int fail_next; /* answer the next N requests with fail_status */
    int fail_status;
    bool gate_closed; /* hold requests until opened */
    size_t started;   /* requests whose body arrived */
    json_t *bodies[MAX_BODIES];
    char *content_type[MAX_BODIES];
    char *authorization[MAX_BODIES];
    size_t n;
};

struct upload {
    char *buf;
    size_t len;
};

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *u = *con_cls;
    if (u) {
        free(u->buf);
        free(u);
        *con_cls = NULL;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct receiver *r = cls;
    struct upload *u = *con_cls;
    if (!u) {
        *con_cls = xcalloc(1, sizeof(struct upload));
        return MHD_YES;
    }
    if (*upload_data_size) {
        u->buf = xrealloc(u->buf, u->len + *upload_data_size + 1);
        memcpy(u->buf + u->len, upload_data, *upload_data_size);
        u->len += *upload_data_size;
        u->buf[u->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    pthread_mutex_lock(&r->mu);
    r->started++;
    while (r->gate_closed)
        pthread_cond_wait(&r->cv, &r->mu);
    int status = r->status;
    if (r->fail_next > 0) {
        r->fail_next--;
        status = r->fail_status;
    }
    if (r->n < MAX_BODIES && strcmp(method, "POST") == 0) {
        json_error_t jerr;
        r->bodies[r->n] = u->buf ? json_loadb(u->buf, u->len, 0, &jerr) : NULL;
        r->content_type[r->n] = xstrdup(ct ? ct : "");
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        r->authorization[r->n] = auth ? xstrdup(auth) : NULL;
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static struct receiver *receiver_start(void)
{
    struct receiver *r = xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->status = 200;
    r->fail_status = 503;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                            NULL, NULL, on_request, r, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    ck_assert_ptr_nonnull(r->d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(info);
    r->port = info->port;
    ck_assert_uint_ne(r->port, 0);
    return r;
}

static void receiver_set(struct receiver *r, int status, int fail_next, bool gate_closed)
{
    pthread_mutex_lock(&r->mu);
    r->status = status;
    r->fail_next = fail_next;
    r->gate_closed = gate_closed;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void receiver_stop(struct receiver *r)
{
    receiver_set(r, r->status, 0, false);
    MHD_stop_daemon(r->d);
    for (size_t i = 0; i < r->n; i++) {
        json_decref(r->bodies[i]);
        free(r->content_type[i]);
        free(r->authorization[i]);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static size_t receiver_count(struct receiver *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static size_t receiver_started(struct receiver *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->started;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* The single alert object of body i (each POST carries one). */
static json_t *receiver_alert(struct receiver *r, size_t i)
{
    pthread_mutex_lock(&r->mu);
    ck_assert_uint_lt(i, r->n);
    json_t *b = r->bodies[i];
    pthread_mutex_unlock(&r->mu);
    ck_assert_msg(json_is_array(b), "body %zu is not a JSON array", i);
    ck_assert_uint_eq(json_array_size(b), 1);
    return json_array_get(b, 0);
}

static const char *label(json_t *alert, const char *name)
{
    return json_string_value(json_object_get(json_object_get(alert, "labels"), name));
}

static const char *field(json_t *alert, const char *name)
{
    return json_string_value(json_object_get(alert, name));
}

struct count_wait {
    struct receiver *r;
    size_t n;
};

static bool has_count(void *ud)
{
    struct count_wait *w = ud;
    return receiver_count(w->r) >= w->n;
}

static void wait_count(struct receiver *r, size_t n)
{
    struct count_wait w = {r, n};
    ck_assert_msg(test_wait_until(has_count, &w, WAIT_MS), "receiver got %zu of %zu",
                  receiver_count(r), n);
}

static bool has_started(void *ud)
{
    struct count_wait *w = ud;
    return receiver_started(w->r) >= w->n;
}

/* ---- metrics ---------------------------------------------------------- */

static double counter(struct metrics *m, const char *name, const char *labels)
{
    return metric_value(metrics_counter(m, name, "", labels));
}

static double sent(struct metrics *m)
{
    return counter(m, "auditrail_alerts_sent_total", NULL);
}

static double failed(struct metrics *m)
{
    return counter(m, "auditrail_alerts_failed_total", NULL);
}

static double dropped(struct metrics *m, const char *reason)
{
    char l[64];
    snprintf(l, sizeof(l), "reason=\"%s\"", reason);
    return counter(m, "auditrail_alerts_dropped_total", l);
}

static double breaker_gauge(struct metrics *m)
{
    return metric_value(metrics_gauge(m, "auditrail_alert_breaker_state", "", NULL));
}

struct metric_wait {
    struct metrics *m;
    double sent, failed, drop_breaker;
};

static bool metrics_reached(void *ud)
{
    struct metric_wait *w = ud;
    return sent(w->m) >= w->sent && failed(w->m) >= w->failed &&
           dropped(w->m, "breaker_open") >= w->drop_breaker;
}

static void wait_metrics(struct metrics *m, double s, double f, double db)
{
    struct metric_wait w = {m, s, f, db};
    ck_assert_msg(test_wait_until(metrics_reached, &w, WAIT_MS),
                  "sent %g/%g failed %g/%g dropped(breaker) %g/%g", sent(m), s, failed(m), f,
                  dropped(m, "breaker_open"), db);
}

struct idle_wait {
    struct alerter *a;
};

static bool is_idle(void *ud)
{
    struct alerter_stats st;
    alerter_stats(ud, &st);
    return st.queued == 0 && st.in_flight == 0;
}

/* ---- helpers ---------------------------------------------------------- */

struct fixture {
    struct receiver *r;
    struct metrics *m;
    struct alerter *a;
    char url[128];
    struct breaker_conf bc;
    struct alerter_conf conf;
};

static void fixture_conf(struct fixture *f)
{
    f->r = receiver_start();
    f->m = metrics_new();
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/api/v2/alerts", f->r->port);
    memset(&f->conf, 0, sizeof(f->conf));
    f->conf.url = f->url;
    f->conf.timeout_ms = 10000;
    f->conf.retries = 0;
    f->conf.retry_backoff_ms = 5;
    f->conf.component = "aggregator";
    f->conf.instance = "pod-7";
    breaker_conf_default(&f->bc);
    f->conf.breaker = &f->bc;
}

static void fixture_start(struct fixture *f)
{
    char err[256] = "";
    f->a = alerter_new(&f->conf, f->m, err, sizeof(err));
    ck_assert_msg(f->a != NULL, "alerter_new: %s", err);
}

static void fixture_stop(struct fixture *f)
{
    alerter_free(f->a);
    receiver_stop(f->r);
    metrics_free(f->m);
}

static int64_t parse_ts(const char *s)
{
    ck_assert_ptr_nonnull(s);
    int64_t us;
    ck_assert_int_eq(time_parse_rfc3339(s, strlen(s), &us), 0);
    ck_assert_msg(s[strlen(s) - 1] == 'Z', "not UTC: %s", s);
    return us;
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(test_payload_format)
{
    struct fixture f;
    fixture_conf(&f);
    char *lk[] = {"cluster", "team"}, *lv[] = {"prod-eu", "sre"};
    f.conf.labels = (struct cfg_map){lk, lv, 2};
    f.conf.generator_url = "http://auditrail.example/dash";
    fixture_start(&f);

    int64_t before = time_now_us();
    alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "3 events sent to the DLQ",
                 "partition 3: not JSON", "partition", "3", "bad-name", "x", "alertname", "Hijack",
                 "severity", "none", NULL);
    wait_count(f.r, 1);
    int64_t after = time_now_us();
    json_t *al = receiver_alert(f.r, 0);

    json_t *labels = json_object_get(al, "labels");
    ck_assert_uint_eq(json_object_size(labels), 8);
    ck_assert_str_eq(label(al, "alertname"), "AuditrailDLQWrite");
    ck_assert_str_eq(label(al, "severity"), "warning");
    ck_assert_str_eq(label(al, "component"), "aggregator");
    ck_assert_str_eq(label(al, "instance"), "pod-7");
    ck_assert_str_eq(label(al, "cluster"), "prod-eu");
    ck_assert_str_eq(label(al, "team"), "sre");
    ck_assert_str_eq(label(al, "partition"), "3");
    ck_assert_str_eq(label(al, "bad_name"), "x");

    json_t *ann = json_object_get(al, "annotations");
    ck_assert_uint_eq(json_object_size(ann), 2);
    ck_assert_str_eq(json_string_value(json_object_get(ann, "summary")),
                     "3 events sent to the DLQ");
    ck_assert_str_eq(json_string_value(json_object_get(ann, "description")),
                     "partition 3: not JSON");

    int64_t starts = parse_ts(field(al, "startsAt"));
    ck_assert_int_ge(starts, before);
    ck_assert_int_le(starts, after);
    ck_assert_ptr_null(json_object_get(al, "endsAt")); /* firing */
    ck_assert_str_eq(field(al, "generatorURL"), "http://auditrail.example/dash");
    ck_assert_uint_eq(json_object_size(al), 4);
    ck_assert_str_eq(f.r->content_type[0], "application/json");

    wait_metrics(f.m, 1, 0, 0);
    ck_assert(test_wait_until(is_idle, f.a, WAIT_MS));
    ck_assert_double_eq(failed(f.m), 0);
    ck_assert_double_eq(breaker_gauge(f.m), 0);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_optional_fields_omitted)
{
    struct fixture f;
    fixture_conf(&f);
    f.conf.component = NULL;
    f.conf.instance = NULL;
    fixture_start(&f);
    alerter_fire(f.a, "AuditrailFatal", ALERT_CRITICAL, "boom", NULL, NULL);
    wait_count(f.r, 1);
    json_t *al = receiver_alert(f.r, 0);
    ck_assert_uint_eq(json_object_size(json_object_get(al, "labels")), 2);
    ck_assert_str_eq(label(al, "severity"), "critical");
    json_t *ann = json_object_get(al, "annotations");
    ck_assert_uint_eq(json_object_size(ann), 1);
    ck_assert_ptr_null(json_object_get(al, "generatorURL"));
    fixture_stop(&f);
}
END_TEST

START_TEST(test_invalid_utf8_still_sent)
{
    /* jansson refuses invalid UTF-8; the alert must still go out */
    struct fixture f;
    fixture_conf(&f);
    fixture_start(&f);
    alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "bad \xff byte", NULL, "path",
                 "/var/log/\xc3(x", NULL);
    wait_count(f.r, 1);
    json_t *al = receiver_alert(f.r, 0);
    ck_assert_str_eq(label(al, "path"), "/var/log/?(x");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(al, "annotations"), "summary")),
        "bad ? byte");
    fixture_stop(&f);
}
END_TEST

START_TEST(test_dedupe_within_window_and_by_key)
{
    struct fixture f;
    fixture_conf(&f);
    f.conf.min_interval_ms = 600000; /* nothing expires during the test */
    fixture_start(&f);
    for (int i = 0; i < 3; i++)
        alerter_fire(f.a, "AuditrailBreakerOpen", ALERT_CRITICAL, "pg down", NULL, "breaker",
                     "postgres_primary", NULL);
    /* label order does not make another key */
    alerter_fire(f.a, "AuditrailKafkaUnavailable", ALERT_CRITICAL, "k", NULL, "a", "1", "b", "2",
                 NULL);
    alerter_fire(f.a, "AuditrailKafkaUnavailable", ALERT_CRITICAL, "k", NULL, "b", "2", "a", "1",
                 NULL);
    ck_assert_double_eq(dropped(f.m, "deduplicated"), 3);
    /* another label value or another alertname is another key: not limited */
    alerter_fire(f.a, "AuditrailBreakerOpen", ALERT_CRITICAL, "redis down", NULL, "breaker",
                 "redis", NULL);
    alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "dlq", NULL, "breaker", "redis", NULL);
    ck_assert_double_eq(dropped(f.m, "deduplicated"), 3);
    wait_metrics(f.m, 4, 0, 0);
    ck_assert(test_wait_until(is_idle, f.a, WAIT_MS));
    ck_assert_uint_eq(receiver_count(f.r), 4);
    ck_assert_str_eq(label(receiver_alert(f.r, 0), "breaker"), "postgres_primary");
    ck_assert_str_eq(label(receiver_alert(f.r, 1), "alertname"), "AuditrailKafkaUnavailable");
    ck_assert_str_eq(label(receiver_alert(f.r, 2), "breaker"), "redis");
    ck_assert_str_eq(label(receiver_alert(f.r, 3), "alertname"), "AuditrailDLQWrite");
    ck_assert_double_eq(sent(f.m), 4);
    fixture_stop(&f);
}
END_TEST

struct refire {
    struct fixture *f;
    unsigned fired; /* refires, the one that went out included */
};

static bool refire_until_sent_twice(void *ud)
{
    struct refire *rf = ud;
    alerter_fire(rf->f->a, "AuditrailDLQWrite", ALERT_WARNING, "again", NULL, "partition", "1",
                 NULL);
    rf->fired++;
    return receiver_count(rf->f->r) >= 2;
}

START_TEST(test_window_expiry_resends_same_alert)
{
    enum { INTERVAL_MS = 500 };
    struct fixture f;
    fixture_conf(&f);
    f.conf.min_interval_ms = INTERVAL_MS;
    fixture_start(&f);
    uint64_t t0 = test_now_ms();
    alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "first", NULL, "partition", "1", NULL);
    wait_count(f.r, 1);
    /* fire repeatedly: deduplicated until the window has passed, then sent */
    struct refire rf = {&f, 0};
    ck_assert(test_wait_until(refire_until_sent_twice, &rf, WAIT_MS));
    uint64_t elapsed = test_now_ms() - t0;
    ck_assert(test_wait_until(is_idle, f.a, WAIT_MS));
    ck_assert_uint_eq(receiver_count(f.r), 2);
    /* the second copy went out only once the window had passed, and every
     * refire before it was deduplicated (the wait polls every few ms, so a
     * 500 ms window sees many) */
    ck_assert_msg(elapsed >= INTERVAL_MS, "second alert after %llu ms",
                  (unsigned long long)elapsed);
    ck_assert_uint_ge(rf.fired, 2);
    ck_assert_double_eq(dropped(f.m, "deduplicated"), (double)(rf.fired - 1));
    json_t *a0 = receiver_alert(f.r, 0), *a1 = receiver_alert(f.r, 1);
    /* still the same firing alert: same startsAt, new annotations */
    ck_assert_str_eq(field(a0, "startsAt"), field(a1, "startsAt"));
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(a1, "annotations"), "summary")), "again");
    fixture_stop(&f);
}
END_TEST

START_TEST(test_resolve_always_sent)
{
    struct fixture f;
    fixture_conf(&f);
    f.conf.min_interval_ms = 600000;
    fixture_start(&f);
    /* resolving what never fired sends nothing */
    alerter_resolve(f.a, "AuditrailBreakerOpen", "breaker", "postgres_primary", NULL);
    ck_assert_double_eq(dropped(f.m, "deduplicated"), 1);

    alerter_fire(f.a, "AuditrailBreakerOpen", ALERT_CRITICAL, "pg down", "details", "breaker",
                 "postgres_primary", NULL);
    /* within the window, but a state change: goes out */
    alerter_resolve(f.a, "AuditrailBreakerOpen", "breaker", "postgres_primary", NULL);
    /* resolved twice: the second is a duplicate */
    alerter_resolve(f.a, "AuditrailBreakerOpen", "breaker", "postgres_primary", NULL);
    ck_assert_double_eq(dropped(f.m, "deduplicated"), 2);
    /* firing again after the resolve is a state change too */
    alerter_fire(f.a, "AuditrailBreakerOpen", ALERT_CRITICAL, "pg down again", NULL, "breaker",
                 "postgres_primary", NULL);
    wait_count(f.r, 3);
    ck_assert(test_wait_until(is_idle, f.a, WAIT_MS));
    ck_assert_uint_eq(receiver_count(f.r), 3);

    json_t *fire = receiver_alert(f.r, 0), *res = receiver_alert(f.r, 1),
           *again = receiver_alert(f.r, 2);
    ck_assert_ptr_null(json_object_get(fire, "endsAt"));
    /* the resolve carries the same label set (incl. severity) so that
     * Alertmanager matches it, the same startsAt, and endsAt */
    ck_assert(json_equal(json_object_get(fire, "labels"), json_object_get(res, "labels")));
    ck_assert(
        json_equal(json_object_get(fire, "annotations"), json_object_get(res, "annotations")));
    ck_assert_str_eq(field(fire, "startsAt"), field(res, "startsAt"));
    int64_t starts = parse_ts(field(res, "startsAt"));
    int64_t ends = parse_ts(field(res, "endsAt"));
    ck_assert_int_ge(ends, starts);
    ck_assert_ptr_null(json_object_get(again, "endsAt"));
    ck_assert_int_ge(parse_ts(field(again, "startsAt")), ends);
    ck_assert_double_eq(sent(f.m), 3);
    fixture_stop(&f);
}
END_TEST

static bool port_closed(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
              getsockname(fd, (struct sockaddr *)&sa, &len) == 0;
    *port = ntohs(sa.sin_port);
    close(fd); /* bound, never listened: connections are refused */
    return ok;
}

START_TEST(test_receiver_down_breaker_opens)
{
    unsigned port;
    ck_assert(port_closed(&port));
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/v2/alerts", port);
    struct metrics *m = metrics_new();
    struct breaker_conf bc;
    breaker_conf_default(&bc);
    bc.consecutive_failures = 3;
    bc.open_base_ms = 600000; /* stays open for the whole test */
    bc.open_max_ms = 600000;
    struct alerter_conf conf = {.url = url, .retries = 0, .breaker = &bc, .timeout_ms = 5000};
    char err[256];
    struct alerter *a = alerter_new(&conf, m, err, sizeof(err));
    ck_assert_ptr_nonnull(a);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "%d", i);
        alerter_fire(a, "AuditrailIntegrityIncident", ALERT_CRITICAL, "fork", NULL, "stream", name,
                     NULL);
    }
    /* all ten were accepted: every one is queued, in flight or accounted */
    struct alerter_stats st;
    alerter_stats(a, &st);
    ck_assert_uint_eq(
        st.queued + st.in_flight + (size_t)failed(m) + (size_t)dropped(m, "breaker_open"), 10);
    /* three consecutive failures trip it; the other seven are not attempted */
    wait_metrics(m, 0, 3, 7);
    ck_assert(test_wait_until(is_idle, a, WAIT_MS));
    ck_assert_double_eq(failed(m), 3);
    ck_assert_double_eq(dropped(m, "breaker_open"), 7);
    ck_assert_double_eq(sent(m), 0);
    ck_assert_double_eq(breaker_gauge(m), 1);
    alerter_free(a);
    metrics_free(m);
}
END_TEST

struct probe_wait {
    struct fixture *f;
    int i;
};

static bool fire_until_sent(void *ud)
{
    struct probe_wait *w = ud;
    char v[32];
    snprintf(v, sizeof(v), "%d", w->i++);
    alerter_fire(w->f->a, "AuditrailDLQWrite", ALERT_WARNING, "dlq", NULL, "n", v, NULL);
    return sent(w->f->m) >= 1;
}

START_TEST(test_breaker_recovers_after_probe)
{
    struct fixture f;
    fixture_conf(&f);
    f.bc.consecutive_failures = 2;
    f.bc.open_base_ms = 50;
    f.bc.open_max_ms = 100;
    receiver_set(f.r, 503, 0, false);
    fixture_start(&f);
    alerter_fire(f.a, "AuditrailFatal", ALERT_CRITICAL, "a", NULL, "k", "1", NULL);
    alerter_fire(f.a, "AuditrailFatal", ALERT_CRITICAL, "b", NULL, "k", "2", NULL);
    wait_metrics(f.m, 0, 2, 0);
    ck_assert_double_eq(breaker_gauge(f.m), 1);
    ck_assert_double_eq(sent(f.m), 0);

    /* the receiver is back: the first alert after the open wait is the probe */
    receiver_set(f.r, 200, 0, false);
    struct probe_wait w = {&f, 0};
    ck_assert(test_wait_until(fire_until_sent, &w, WAIT_MS));
    ck_assert(test_wait_until(is_idle, f.a, WAIT_MS));
    ck_assert_double_eq(breaker_gauge(f.m), 0);
    double before = sent(f.m);
    alerter_fire(f.a, "AuditrailFatal", ALERT_CRITICAL, "c", NULL, "k", "3", NULL);
    wait_metrics(f.m, before + 1, 2, 0);
    /* while it was open, alerts were dropped and counted, not sent */
    ck_assert_double_eq(sent(f.m) + failed(f.m) + dropped(f.m, "breaker_open"), 2 + w.i + 1);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_retry_then_success)
{
    struct fixture f;
    fixture_conf(&f);
    f.conf.retries = 3;
    f.bc.consecutive_failures = 10;
    f.bc.failure_rate_pct = 0;
    fixture_start(&f);
    receiver_set(f.r, 200, 2, false); /* 503, 503, then 200 */
    alerter_fire(f.a, "AuditrailKafkaUnavailable", ALERT_CRITICAL, "k", NULL, NULL);
    wait_metrics(f.m, 1, 0, 0);
    ck_assert_uint_eq(receiver_count(f.r), 3);
    ck_assert(json_equal(receiver_alert(f.r, 0), receiver_alert(f.r, 2)));
    ck_assert_double_eq(failed(f.m), 0);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_retries_exhausted_counted_failed)
{
    struct fixture f;
    fixture_conf(&f);
    f.conf.retries = 2;
    f.bc.consecutive_failures = 10;
    f.bc.failure_rate_pct = 0;
    fixture_start(&f);
    receiver_set(f.r, 500, 0, false);
    alerter_fire(f.a, "AuditrailKafkaUnavailable", ALERT_CRITICAL, "k", NULL, NULL);
    wait_metrics(f.m, 0, 1, 0);
    ck_assert(test_wait_until(is_idle, f.a, WAIT_MS));
    ck_assert_uint_eq(receiver_count(f.r), 3); /* 1 + 2 retries */
    ck_assert_double_eq(sent(f.m), 0);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_client_error_not_retried)
{
    struct fixture f;
    fixture_conf(&f);
    f.conf.retries = 3;
    f.bc.consecutive_failures = 1; /* one breaker failure would open it */
    fixture_start(&f);
    receiver_set(f.r, 400, 0, false);
    alerter_fire(f.a, "AuditrailFatal", ALERT_CRITICAL, "x", NULL, NULL);
    wait_metrics(f.m, 0, 1, 0);
    ck_assert(test_wait_until(is_idle, f.a, WAIT_MS));
    ck_assert_uint_eq(receiver_count(f.r), 1);
    ck_assert_double_eq(breaker_gauge(f.m), 0);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_queue_full_drops_oldest_without_blocking)
{
    struct fixture f;
    fixture_conf(&f);
    f.conf.queue_max = 2;
    fixture_start(&f);
    receiver_set(f.r, 200, 0, true); /* the receiver holds every request */
    alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "s", NULL, "n", "A", NULL);
    struct count_wait cw = {f.r, 1};
    ck_assert(test_wait_until(has_started, &cw, WAIT_MS));
    /* the POST of A hangs; these calls return anyway */
    alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "s", NULL, "n", "B", NULL);
    alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "s", NULL, "n", "C", NULL);
    alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "s", NULL, "n", "D", NULL);
    struct alerter_stats st;
    alerter_stats(f.a, &st);
    ck_assert_uint_eq(st.in_flight, 1);
    ck_assert_uint_eq(st.queued, 2);
    ck_assert_double_eq(dropped(f.m, "queue_full"), 1);
    ck_assert_double_eq(sent(f.m), 0);

    receiver_set(f.r, 200, 0, false);
    wait_metrics(f.m, 3, 0, 0);
    ck_assert(test_wait_until(is_idle, f.a, WAIT_MS));
    ck_assert_uint_eq(receiver_count(f.r), 3);
    ck_assert_str_eq(label(receiver_alert(f.r, 0), "n"), "A");
    ck_assert_str_eq(label(receiver_alert(f.r, 1), "n"), "C"); /* B, the oldest, dropped */
    ck_assert_str_eq(label(receiver_alert(f.r, 2), "n"), "D");
    fixture_stop(&f);
}
END_TEST

START_TEST(test_free_flushes_pending)
{
    struct fixture f;
    fixture_conf(&f);
    fixture_start(&f);
    char v[16];
    for (int i = 0; i < 5; i++) {
        snprintf(v, sizeof(v), "%d", i);
        alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "s", NULL, "n", v, NULL);
    }
    alerter_free(f.a); /* flushes within timeout_ms (10 s here) */
    f.a = NULL;
    ck_assert_double_eq(sent(f.m), 5);
    ck_assert_uint_eq(receiver_count(f.r), 5);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_free_with_stuck_receiver)
{
    struct fixture f;
    fixture_conf(&f);
    f.conf.timeout_ms = 300; /* flush budget and POST timeout */
    fixture_start(&f);
    receiver_set(f.r, 200, 0, true);
    alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "s", NULL, "n", "0", NULL);
    struct count_wait cw = {f.r, 1};
    ck_assert(test_wait_until(has_started, &cw, WAIT_MS));
    char v[16];
    for (int i = 1; i < 6; i++) {
        snprintf(v, sizeof(v), "%d", i);
        alerter_fire(f.a, "AuditrailDLQWrite", ALERT_WARNING, "s", NULL, "n", v, NULL);
    }
    /* returns although the receiver never answers; leaks nothing (ASan) */
    alerter_free(f.a);
    f.a = NULL;
    ck_assert_double_eq(sent(f.m), 0);
    /* every alert is accounted for exactly once */
    ck_assert_double_eq(failed(f.m) + dropped(f.m, "shutdown") + dropped(f.m, "breaker_open"), 6);
    ck_assert_double_ge(dropped(f.m, "shutdown"), 1);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_disabled_is_noop)
{
    struct metrics *m = metrics_new();
    char err[256] = "";
    struct alerter_conf conf = {.url = NULL};
    struct alerter *a = alerter_new(&conf, m, err, sizeof(err));
    ck_assert_ptr_nonnull(a);
    alerter_fire(a, "AuditrailFatal", ALERT_CRITICAL, "x", NULL, "k", "v", NULL);
    alerter_resolve(a, "AuditrailFatal", "k", "v", NULL);
    struct alerter_stats st;
    alerter_stats(a, &st);
    ck_assert_uint_eq(st.queued + st.in_flight, 0);
    char *text = metrics_render(m);
    ck_assert_ptr_null(strstr(text, "auditrail_alert"));
    free(text);
    alerter_free(a);

    conf.url = "";
    a = alerter_new(&conf, m, err, sizeof(err));
    ck_assert_ptr_nonnull(a);
    alerter_fire(a, "AuditrailFatal", ALERT_CRITICAL, "x", NULL, NULL);
    alerter_free(a);

    /* a NULL alerter is a no-op too */
    alerter_fire(NULL, "AuditrailFatal", ALERT_CRITICAL, "x", NULL, NULL);
    alerter_resolve(NULL, "AuditrailFatal", NULL);
    alerter_free(NULL);
    metrics_free(m);
}
END_TEST

START_TEST(test_bad_url_rejected)
{
    char err[256] = "";
    struct alerter_conf conf = {.url = "ftp://alerts.example/"};
    ck_assert_ptr_null(alerter_new(&conf, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "alerts.url"));
    /* Not echoed: a URL can carry a token. */
    ck_assert_ptr_null(strstr(err, "alerts.example"));
}
END_TEST

/* ---- the body alone (common/alert_body.c), no receiver ---------------- */

START_TEST(test_body_bytes)
{
    char *lk[] = {"cluster"}, *lv[] = {"eu"};
    struct alert_common c = {lk, lv, 1, "aggregator", "pod-1", "http://dash"};
    const char *kv[] = {"breaker", "postgres", "2bad-name", "x", "severity", "none"};
    struct alert_body b = {"AuditrailBreakerOpen",
                           ALERT_CRITICAL,
                           "PostgreSQL unreachable",
                           NULL,
                           kv,
                           3,
                           1764189067123456,
                           0};
    char *js = alert_body_json(&c, &b);
    ck_assert_str_eq(js, "[{\"labels\":{\"cluster\":\"eu\",\"component\":\"aggregator\","
                         "\"instance\":\"pod-1\",\"breaker\":\"postgres\",\"_2bad_name\":\"x\","
                         "\"severity\":\"critical\",\"alertname\":\"AuditrailBreakerOpen\"},"
                         "\"annotations\":{\"summary\":\"PostgreSQL unreachable\"},"
                         "\"startsAt\":\"2025-11-26T20:31:07.123456Z\","
                         "\"generatorURL\":\"http://dash\"}]");
    free(js);
    /* Resolved: endsAt; nothing optional. */
    struct alert_common none = {0};
    b.kv = NULL;
    b.n_kv = 0;
    b.summary = NULL;
    b.sev = ALERT_WARNING;
    b.ends_at_us = 1764189068000000;
    js = alert_body_json(&none, &b);
    ck_assert_str_eq(js, "[{\"labels\":{\"alertname\":\"AuditrailBreakerOpen\",\"severity\":"
                         "\"warning\"},\"annotations\":{},"
                         "\"startsAt\":\"2025-11-26T20:31:07.123456Z\","
                         "\"endsAt\":\"2025-11-26T20:31:08.000000Z\"}]");
    free(js);
}
END_TEST

START_TEST(test_alert_key)
{
    const char *kv1[] = {"b", "2", "a", "1"}, *kv2[] = {"a", "1", "b", "2"};
    const char *kv3[] = {"a", "1", "b", "3"};
    char *k1 = alert_key("X", kv1, 2), *k2 = alert_key("X", kv2, 2), *k3 = alert_key("X", kv3, 2);
    char *k4 = alert_key("Y", kv2, 2), *k5 = alert_key("X", NULL, 0);
    ck_assert_str_eq(k1, k2); /* label order does not matter */
    ck_assert_str_ne(k1, k3);
    ck_assert_str_ne(k1, k4);
    ck_assert_str_eq(k5, "X");
    free(k1);
    free(k2);
    free(k3);
    free(k4);
    free(k5);
    ck_assert_str_eq(alert_severity_name(ALERT_INFO), "info");
    ck_assert_str_eq(alert_severity_name(ALERT_CRITICAL), "critical");
}
END_TEST

START_TEST(test_private_metrics_registry)
{
    struct fixture f;
    fixture_conf(&f);
    char err[256];
    struct alerter *a = alerter_new(&f.conf, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(a);
    alerter_fire(a, "AuditrailFatal", ALERT_CRITICAL, "x", NULL, NULL);
    wait_count(f.r, 1);
    alerter_free(a);
    f.a = NULL;
    fixture_stop(&f);
}
END_TEST

START_TEST(test_headers_sent)
{
    /* conf.headers reach the request; a Content-Type there replaces ours */
    struct fixture f;
    fixture_conf(&f);
    char *hk[] = {"Authorization", "content-type"},
         *hv[] = {"Bearer s3cret", "application/json; charset=utf-8"};
    f.conf.headers = (struct cfg_map){hk, hv, 2};
    fixture_start(&f);
    alerter_fire(f.a, "AuditrailFatal", ALERT_CRITICAL, "x", NULL, NULL);
    wait_count(f.r, 1);
    ck_assert_str_eq(f.r->content_type[0], "application/json; charset=utf-8");
    ck_assert_str_eq(f.r->authorization[0], "Bearer s3cret");
    fixture_stop(&f);
}
END_TEST

#define THREADS    4
#define PER_THREAD 40

struct thr {
    struct alerter *a;
    int id;
};

static void *fire_many(void *ud)
{
    struct thr *t = ud;
    char v[32];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(v, sizeof(v), "%d-%d", t->id, i);
        alerter_fire(t->a, "AuditrailDLQWrite", ALERT_WARNING, "s", NULL, "n", v, NULL);
        /* and a duplicate of one key shared by every thread */
        alerter_fire(t->a, "AuditrailFatal", ALERT_CRITICAL, "s", NULL, NULL);
    }
    return NULL;
}

START_TEST(test_concurrent_fire)
{
    struct fixture f;
    fixture_conf(&f);
    f.conf.queue_max = THREADS * PER_THREAD + 1;
    f.conf.min_interval_ms = 600000;
    fixture_start(&f);
    pthread_t th[THREADS];
    struct thr t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = (struct thr){f.a, i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, fire_many, &t[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    wait_metrics(f.m, THREADS * PER_THREAD + 1, 0, 0);
    ck_assert(test_wait_until(is_idle, f.a, WAIT_MS));
    ck_assert_double_eq(sent(f.m), THREADS * PER_THREAD + 1);
    ck_assert_double_eq(dropped(f.m, "deduplicated"), THREADS * PER_THREAD - 1);
    ck_assert_uint_eq(receiver_count(f.r), THREADS * PER_THREAD + 1);
    fixture_stop(&f);
}
END_TEST

/* ---- config section ---------------------------------------------------- */

struct t_conf {
    struct alerter_conf alerts;
};

static const struct cfg_key t_keys[] = {
    {.name = "alerts",
     .type = CFG_SECTION,
     .offset = offsetof(struct t_conf, alerts),
     .sub = alerts_conf_keys},
    CFG_END,
};

START_TEST(test_config_defaults)
{
    struct t_conf c = {0};
    char err[256];
    ck_assert_int_eq(cfg_load_string(t_keys, &c, "alerts: {}\n", "t.yaml", err, sizeof(err)), 0);
    ck_assert_ptr_null(c.alerts.url);
    ck_assert_int_eq(c.alerts.timeout_ms, 2000);
    ck_assert_int_eq(c.alerts.min_interval_ms, 60000);
    ck_assert_int_eq(c.alerts.queue_max, 256);
    ck_assert_int_eq(c.alerts.retries, 3);
    ck_assert_int_eq(c.alerts.retry_backoff_ms, 200);
    ck_assert_uint_eq(c.alerts.labels.n, 0);
    cfg_free(t_keys, &c);
}
END_TEST

START_TEST(test_config_values)
{
    struct t_conf c = {0};
    char err[256];
    const char *y = "alerts:\n"
                    "  url: http://am:9093/api/v2/alerts\n"
                    "  timeout_ms: 500\n"
                    "  min_interval_ms: 1000\n"
                    "  queue_max: 8\n"
                    "  retries: 0\n"
                    "  labels:\n"
                    "    cluster: prod\n"
                    "  headers:\n"
                    "    Authorization: Bearer t\n";
    ck_assert_msg(cfg_load_string(t_keys, &c, y, "t.yaml", err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(c.alerts.url, "http://am:9093/api/v2/alerts");
    ck_assert_int_eq(c.alerts.timeout_ms, 500);
    ck_assert_int_eq(c.alerts.min_interval_ms, 1000);
    ck_assert_int_eq(c.alerts.queue_max, 8);
    ck_assert_int_eq(c.alerts.retries, 0);
    ck_assert_str_eq(cfg_map_get(&c.alerts.labels, "cluster"), "prod");
    ck_assert_str_eq(cfg_map_get(&c.alerts.headers, "Authorization"), "Bearer t");
    cfg_free(t_keys, &c);

    struct t_conf bad = {0};
    ck_assert_int_eq(
        cfg_load_string(t_keys, &bad, "alerts:\n  urll: x\n", "t.yaml", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "alerts.urll"));
    cfg_free(t_keys, &bad);
    struct t_conf bad2 = {0};
    ck_assert_int_eq(
        cfg_load_string(t_keys, &bad2, "alerts:\n  queue_max: 0\n", "t.yaml", err, sizeof(err)),
        -1);
    cfg_free(t_keys, &bad2);
}
END_TEST

static Suite *alert_suite(void)
{
    Suite *s = suite_create("alert");
    TCase *tc = tcase_create("webhook");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_payload_format);
    tcase_add_test(tc, test_optional_fields_omitted);
    tcase_add_test(tc, test_invalid_utf8_still_sent);
    tcase_add_test(tc, test_dedupe_within_window_and_by_key);
    tcase_add_test(tc, test_window_expiry_resends_same_alert);
    tcase_add_test(tc, test_resolve_always_sent);
    tcase_add_test(tc, test_receiver_down_breaker_opens);
    tcase_add_test(tc, test_breaker_recovers_after_probe);
    tcase_add_test(tc, test_retry_then_success);
    tcase_add_test(tc, test_retries_exhausted_counted_failed);
    tcase_add_test(tc, test_client_error_not_retried);
    tcase_add_test(tc, test_queue_full_drops_oldest_without_blocking);
    tcase_add_test(tc, test_free_flushes_pending);
    tcase_add_test(tc, test_free_with_stuck_receiver);
    tcase_add_test(tc, test_disabled_is_noop);
    tcase_add_test(tc, test_bad_url_rejected);
    tcase_add_test(tc, test_body_bytes);
    tcase_add_test(tc, test_alert_key);
    tcase_add_test(tc, test_private_metrics_registry);
    tcase_add_test(tc, test_headers_sent);
    tcase_add_test(tc, test_concurrent_fire);
    suite_add_tcase(s, tc);
    TCase *cf = tcase_create("config");
    tcase_add_test(cf, test_config_defaults);
    tcase_add_test(cf, test_config_values);
    suite_add_tcase(s, cf);
    return s;
}

int main(void)
{
    return test_run_suite(alert_suite());
}
