/* httpd: built-in routes, the application handler, errors at start, and
 * concurrency, all over real HTTP with libcurl as the client. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/httpd.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

struct reply {
    long status;
    char *body;
    size_t len;
    char *headers;
    size_t hlen;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    char **buf = ((char **)ud);
    size_t *len = (size_t *)((char **)ud + 1);
    *buf = xrealloc(*buf, *len + size * n + 1);
    memcpy(*buf + *len, p, size * n);
    *len += size * n;
    (*buf)[*len] = '\0';
    return size * n;
}

struct sink {
    char *buf;
    size_t len;
};

static void reply_free(struct reply *r)
{
    free(r->body);
    free(r->headers);
}

/* method NULL = GET; extra_header may be NULL. */
static struct reply fetch(unsigned port, const char *method, const char *path,
                          const char *extra_header)
{
    struct reply r = {0};
    struct sink body = {0}, hdr = {0};
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hdr);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (method && strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (method && strcmp(method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "some=body&x=1");
    else if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hl = NULL;
    if (extra_header) {
        hl = curl_slist_append(hl, extra_header);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    }
    CURLcode rc = curl_easy_perform(c);
    ck_assert_msg(rc == CURLE_OK, "curl %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    r.body = body.buf ? body.buf : xstrdup("");
    r.len = body.len;
    r.headers = hdr.buf ? hdr.buf : xstrdup("");
    r.hlen = hdr.len;
    return r;
}

static bool has_header(const struct reply *r, const char *line)
{
    /* Header lines are "Name: value\r\n"; compare case-insensitively. */
    return strcasestr(r->headers, line) != NULL;
}

struct app {
    atomic_bool ready;
    atomic_int calls;
};

static bool app_ready(void *ud, char *reason, size_t len)
{
    struct app *a = ud;
    if (atomic_load(&a->ready))
        return true;
    snprintf(reason, len, "postgres \"primary\" breaker open");
    return false;
}

static bool app_handler(void *ud, const struct httpd_request *req, struct httpd_response *resp)
{
    struct app *a = ud;
    atomic_fetch_add(&a->calls, 1);
    const char *path = httpd_request_path(req);
    if (strcmp(path, "/v1/echo") == 0) {
        const char *actor = httpd_request_arg(req, "actor");
        const char *missing = httpd_request_arg(req, "nope");
        const char *auth = httpd_request_header(req, "authorization");
        resp->status = 201;
        resp->body = xasprintf("%s|%s|%s|%s", httpd_request_method(req), actor ? actor : "-",
                               missing ? missing : "-", auth ? auth : "-");
        resp->body_len = strlen(resp->body);
        resp->content_type = "text/plain";
        httpd_response_header(resp, "X-Auditrail-Cache", "miss");
        httpd_response_header(resp, "X-Auditrail-Served-By", "replica-0");
        return true;
    }
    if (strcmp(path, "/v1/empty") == 0) {
        resp->status = 204;
        return true;
    }
    if (strcmp(path, "/v1/declined") == 0) {
        /* Fills a response, then declines: the server must free it and 404. */
        resp->body = xstrdup("leak me not");
        resp->body_len = strlen(resp->body);
        httpd_response_header(resp, "X-Dropped", "1");
        return false;
    }
    return false;
}

static struct httpd *start(struct app *a, struct metrics *m)
{
    char err[256] = "";
    struct httpd_conf conf = {.listen = "127.0.0.1:0",
                              .metrics = m,
                              .ready = app_ready,
                              .ready_ud = a,
                              .handler = app_handler,
                              .handler_ud = a,
                              .threads = 2};
    struct httpd *h = httpd_start(&conf, err, sizeof(err));
    ck_assert_msg(h != NULL, "httpd_start: %s", err);
    ck_assert_uint_gt(httpd_port(h), 0);
    return h;
}

START_TEST(healthz)
{
    struct app a = {.ready = true};
    struct httpd *h = start(&a, NULL);
    struct reply r = fetch(httpd_port(h), NULL, "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    ck_assert(has_header(&r, "Content-Type: application/json\r\n"));
    reply_free(&r);
    r = fetch(httpd_port(h), "HEAD", "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, 0);
    reply_free(&r);
    ck_assert_int_eq(atomic_load(&a.calls), 0); /* built-ins never reach the app */
    httpd_stop(h);
}
END_TEST

START_TEST(readyz_both_states)
{
    struct app a = {.ready = true};
    struct httpd *h = start(&a, NULL);
    struct reply r = fetch(httpd_port(h), NULL, "/readyz", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"ready\":true}");
    reply_free(&r);
    atomic_store(&a.ready, false);
    r = fetch(httpd_port(h), NULL, "/readyz", NULL);
    ck_assert_int_eq(r.status, 503);
    /* The reason is JSON-escaped. */
    ck_assert_str_eq(r.body,
                     "{\"ready\":false,\"reason\":\"postgres \\\"primary\\\" breaker open\"}");
    ck_assert(has_header(&r, "Content-Type: application/json\r\n"));
    reply_free(&r);
    atomic_store(&a.ready, true);
    r = fetch(httpd_port(h), NULL, "/readyz", NULL);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    httpd_stop(h);

    /* No ready callback: always ready. */
    char err[256];
    struct httpd_conf conf = {.listen = "127.0.0.1:0"};
    h = httpd_start(&conf, err, sizeof(err));
    ck_assert_ptr_nonnull(h);
    r = fetch(httpd_port(h), NULL, "/readyz", NULL);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    r = fetch(httpd_port(h), NULL, "/v1/echo", NULL); /* no handler: 404 */
    ck_assert_int_eq(r.status, 404);
    reply_free(&r);
    httpd_stop(h);
}
END_TEST

START_TEST(metrics_route)
{
    struct app a = {.ready = true};
    struct metrics *m = metrics_new();
    struct metric *c = metrics_counter(m, "auditrail_test_total", "A test counter.", "k=\"v\"");
    metric_add(c, 7);
    struct httpd *h = start(&a, m);
    struct reply r = fetch(httpd_port(h), NULL, "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(has_header(&r, "Content-Type: text/plain; version=0.0.4"));
    char *want = metrics_render(m);
    ck_assert_str_eq(r.body, want);
    ck_assert_ptr_nonnull(strstr(r.body, "auditrail_test_total{k=\"v\"} 7\n"));
    free(want);
    reply_free(&r);
    metric_inc(c);
    r = fetch(httpd_port(h), NULL, "/metrics", NULL);
    ck_assert_ptr_nonnull(strstr(r.body, "auditrail_test_total{k=\"v\"} 8\n"));
    reply_free(&r);
    httpd_stop(h);
    metrics_free(m);
}
END_TEST

START_TEST(app_handler_args_headers_status)
{
    struct app a = {.ready = true};
    struct httpd *h = start(&a, NULL);
    struct reply r =
        fetch(httpd_port(h), NULL, "/v1/echo?actor=dr%20house&x=1", "Authorization: Bearer t0k");
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(r.body, "GET|dr house|-|Bearer t0k");
    ck_assert(has_header(&r, "Content-Type: text/plain\r\n"));
    ck_assert(has_header(&r, "X-Auditrail-Cache: miss\r\n"));
    ck_assert(has_header(&r, "X-Auditrail-Served-By: replica-0\r\n"));
    reply_free(&r);
    /* The application sees other methods (and any body is drained). */
    r = fetch(httpd_port(h), "POST", "/v1/echo", NULL);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(r.body, "POST|-|-|-");
    reply_free(&r);
    r = fetch(httpd_port(h), NULL, "/v1/empty", NULL);
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.len, 0);
    reply_free(&r);
    httpd_stop(h);
}
END_TEST

START_TEST(not_found)
{
    struct app a = {.ready = true};
    struct httpd *h = start(&a, NULL);
    struct reply r = fetch(httpd_port(h), NULL, "/nope", NULL);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.body, "{\"error\":\"not found\"}");
    ck_assert(has_header(&r, "Content-Type: application/json\r\n"));
    reply_free(&r);
    r = fetch(httpd_port(h), NULL, "/v1/declined", NULL);
    ck_assert_int_eq(r.status, 404);
    ck_assert(!has_header(&r, "X-Dropped"));
    reply_free(&r);
    ck_assert_int_eq(atomic_load(&a.calls), 2);
    httpd_stop(h);
}
END_TEST

START_TEST(method_not_allowed)
{
    struct app a = {.ready = true};
    struct metrics *m = metrics_new();
    struct httpd *h = start(&a, m);
    const char *paths[] = {"/healthz", "/readyz", "/metrics"};
    const char *methods[] = {"POST", "DELETE", "PUT"};
    for (int i = 0; i < 3; i++) {
        struct reply r = fetch(httpd_port(h), methods[i], paths[i], NULL);
        ck_assert_int_eq(r.status, 405);
        ck_assert_str_eq(r.body, "{\"error\":\"method not allowed\"}");
        ck_assert(has_header(&r, "Allow: GET, HEAD\r\n"));
        reply_free(&r);
    }
    ck_assert_int_eq(atomic_load(&a.calls), 0);
    httpd_stop(h);
    metrics_free(m);
}
END_TEST

START_TEST(ipv6_listen)
{
    char err[256] = "";
    struct httpd_conf conf = {.listen = "[::1]:0"};
    struct httpd *h = httpd_start(&conf, err, sizeof(err));
    ck_assert_msg(h != NULL, "httpd_start [::1]:0: %s", err);
    char url[64];
    snprintf(url, sizeof(url), "http://[::1]:%u/healthz", httpd_port(h));
    CURL *c = curl_easy_init();
    struct sink body = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    ck_assert_int_eq(status, 200);
    curl_easy_cleanup(c);
    free(body.buf);
    httpd_stop(h);
}
END_TEST

START_TEST(bad_listen_addresses)
{
    const char *bad[] = {"",
                         "127.0.0.1",
                         "127.0.0.1:",
                         "127.0.0.1:http",
                         "127.0.0.1:65536",
                         "127.0.0.1:-1",
                         "999.1.1.1:80",
                         "[::1:80",
                         "::1:80",
                         "[::1]80",
                         "1.2.3.4:80" /* not ours */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        struct httpd_conf conf = {.listen = bad[i]};
        struct httpd *h = httpd_start(&conf, err, sizeof(err));
        ck_assert_msg(h == NULL, "'%s' was accepted", bad[i]);
        ck_assert_msg(err[0] != '\0', "'%s': no error message", bad[i]);
    }
    char err[256] = "";
    struct httpd_conf conf = {.listen = "127.0.0.1:99999"};
    ck_assert_ptr_null(httpd_start(&conf, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "port"));
    httpd_stop(NULL);
}
END_TEST

START_TEST(port_in_use)
{
    struct app a = {.ready = true};
    struct httpd *h = start(&a, NULL);
    char listen[64], err[256] = "";
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", httpd_port(h));
    struct httpd_conf conf = {.listen = listen};
    ck_assert_ptr_null(httpd_start(&conf, err, sizeof(err)));
    ck_assert_msg(strstr(err, "in use") != NULL, "err: %s", err);
    /* The first server is unharmed. */
    struct reply r = fetch(httpd_port(h), NULL, "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    httpd_stop(h);
    /* And after a clean stop the port can be taken again. */
    err[0] = '\0';
    h = httpd_start(&conf, err, sizeof(err));
    ck_assert_msg(h != NULL, "restart on %s: %s", listen, err);
    httpd_stop(h);
}
END_TEST

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Start/stop cycles (and failed starts) leave no descriptor or thread behind. */
START_TEST(stop_releases_everything)
{
    struct app a = {.ready = true};
    struct httpd *warm = start(&a, NULL); /* first use loads libraries, opens files */
    httpd_stop(warm);
    int before = count_fds();
    for (int i = 0; i < 20; i++) {
        struct httpd *h = start(&a, NULL);
        struct reply r = fetch(httpd_port(h), NULL, "/healthz", NULL);
        ck_assert_int_eq(r.status, 200);
        reply_free(&r);
        char listen[64], err[256];
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", httpd_port(h));
        struct httpd_conf conf = {.listen = listen};
        ck_assert_ptr_null(httpd_start(&conf, err, sizeof(err)));
        httpd_stop(h);
    }
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

#ifndef NCONC
#define NCONC 200
#endif

START_TEST(concurrent_requests)
{
    struct app a = {.ready = true};
    struct httpd *h = start(&a, NULL);
    CURLM *multi = curl_multi_init();
    /* No connection reuse: NCONC separate connections open at once. */
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    CURL *easy[NCONC];
    struct sink bodies[NCONC];
    char url[NCONC][128];
    for (int i = 0; i < NCONC; i++) {
        bodies[i] = (struct sink){0};
        snprintf(url[i], sizeof(url[i]), "http://127.0.0.1:%u/v1/echo?actor=%d", httpd_port(h), i);
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url[i]);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &bodies[i]);
        curl_easy_setopt(easy[i], CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT, 60L);
        curl_multi_add_handle(multi, easy[i]);
    }
    int running = 1;
    while (running) {
        ck_assert_int_eq(curl_multi_perform(multi, &running), CURLM_OK);
        if (running)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    int ok = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg == CURLMSG_DONE && msg->data.result == CURLE_OK) {
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (status == 201)
                ok++;
        }
    }
    for (int i = 0; i < NCONC; i++) {
        char want[64];
        snprintf(want, sizeof(want), "GET|%d|-|-", i);
        ck_assert_ptr_nonnull(bodies[i].buf);
        ck_assert_str_eq(bodies[i].buf, want);
        free(bodies[i].buf);
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_multi_cleanup(multi);
    ck_assert_int_eq(ok, NCONC);
    ck_assert_int_eq(atomic_load(&a.calls), NCONC);
    httpd_stop(h);
}
END_TEST

static void global_setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void global_teardown(void)
{
    curl_global_cleanup();
}

/* ---- asynchronous answers and streamed bodies */
#include <pthread.h>

struct later {
    struct httpd_request *req;
    struct httpd_stream *stream;
    int chunks; /* streamed chunks to write */
    atomic_int drains, gone;
};

static void *complete_later(void *ud)
{
    struct later *l = ud;
    struct timespec ts = {
        0, 50 * 1000000L}; /* the HTTP thread has returned by now or not: both are fine */
    nanosleep(&ts, NULL);
    struct httpd_response resp = {.status = 202};
    resp.body = xstrdup("{\"later\":true}");
    resp.body_len = strlen(resp.body);
    httpd_response_header(&resp, "X-Auditrail-Served-By", "primary");
    httpd_complete(l->req, &resp);
    return NULL;
}

static void on_drain(void *ud, bool gone)
{
    struct later *l = ud;
    if (gone) {
        atomic_fetch_add(&l->gone, 1);
        return;
    }
    atomic_fetch_add(&l->drains, 1);
}

/* The producer writes chunk after chunk from its own thread, each once the
 * previous one is (nearly) sent, then closes. */
static void *produce(void *ud)
{
    struct later *l = ud;
    struct httpd_response resp = {.status = 200, .content_type = "application/x-ndjson"};
    resp.stream = l->stream;
    char line[64];
    snprintf(line, sizeof(line), "{\"chunk\":0}\n");
    ck_assert_int_eq(httpd_stream_write(l->stream, line, strlen(line)), 0);
    httpd_complete(l->req, &resp);
    for (int i = 1; i < l->chunks; i++) {
        while (httpd_stream_pending(l->stream) > 0) {
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
        }
        snprintf(line, sizeof(line), "{\"chunk\":%d}\n", i);
        ck_assert_int_eq(httpd_stream_write(l->stream, line, strlen(line)), 0);
    }
    httpd_stream_close(l->stream, true);
    httpd_stream_release(l->stream);
    return NULL;
}

static pthread_t worker;

static enum httpd_route async_routes(void *ud, struct httpd_request *req,
                                     struct httpd_response *resp)
{
    struct later *l = ud;
    const char *path = httpd_request_path(req);
    if (strcmp(path, "/v1/now") == 0) {
        char client[64];
        httpd_request_client(req, client, sizeof(client));
        resp->status = 200;
        resp->body = xasprintf("%s nul=%d", client, httpd_request_has_nul(req));
        resp->body_len = strlen(resp->body);
        return HTTPD_ANSWERED;
    }
    if (strcmp(path, "/v1/later") == 0) {
        l->req = req;
        ck_assert_int_eq(pthread_create(&worker, NULL, complete_later, l), 0);
        return HTTPD_LATER;
    }
    if (strcmp(path, "/v1/stream") == 0) {
        l->req = req;
        l->stream = httpd_stream_new(0, on_drain, l);
        ck_assert_int_eq(pthread_create(&worker, NULL, produce, l), 0);
        return HTTPD_LATER;
    }
    return HTTPD_NOT_MINE;
}

static struct httpd *start_async(struct later *l, struct app *a)
{
    char err[256] = "";
    struct httpd_conf conf = {.listen = "127.0.0.1:0",
                              .async = async_routes,
                              .async_ud = l,
                              .handler = app_handler,
                              .handler_ud = a,
                              .threads = 2,
                              .max_url = 200};
    struct httpd *h = httpd_start(&conf, err, sizeof(err));
    ck_assert_msg(h != NULL, "httpd_start: %s", err);
    return h;
}

START_TEST(async_answers_now_later_and_falls_through)
{
    struct later l = {0};
    struct app a = {.ready = true};
    struct httpd *h = start_async(&l, &a);
    struct reply r = fetch(httpd_port(h), NULL, "/v1/now?actor=a%00b", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "127.0.0.1 nul=1");
    reply_free(&r);
    r = fetch(httpd_port(h), NULL, "/v1/later", NULL);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(r.body, "{\"later\":true}");
    ck_assert(has_header(&r, "X-Auditrail-Served-By: primary\r\n"));
    reply_free(&r);
    pthread_join(worker, NULL);
    /* not an async route: the synchronous handler, then 404 */
    r = fetch(httpd_port(h), NULL, "/v1/echo?actor=x", NULL);
    ck_assert_int_eq(r.status, 201);
    reply_free(&r);
    r = fetch(httpd_port(h), NULL, "/v1/nothing", NULL);
    ck_assert_int_eq(r.status, 404);
    reply_free(&r);
    httpd_stop(h);
}
END_TEST

START_TEST(streamed_body_in_chunks)
{
    struct later l = {.chunks = 50};
    struct app a = {.ready = true};
    struct httpd *h = start_async(&l, &a);
    struct reply r = fetch(httpd_port(h), NULL, "/v1/stream", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(has_header(&r, "Transfer-Encoding: chunked\r\n"));
    char want[64];
    int lines = 0;
    for (char *p = r.body; *p; p = strchr(p, '\n') + 1, lines++) {
        snprintf(want, sizeof(want), "{\"chunk\":%d}\n", lines);
        ck_assert_msg(strncmp(p, want, strlen(want)) == 0, "line %d: %s", lines, p);
    }
    ck_assert_int_eq(lines, 50);
    reply_free(&r);
    pthread_join(worker, NULL);
    ck_assert_int_ge(atomic_load(&l.drains), 1);
    httpd_stop(h);
    ck_assert_int_eq(atomic_load(&l.gone), 1); /* told once, when the response ended */
}
END_TEST

/* Oversized requests: a long target (414) and a body (413) are refused
 * before any route sees them. */
START_TEST(oversized_requests)
{
    struct later l = {0};
    struct app a = {.ready = true};
    struct httpd *h = start_async(&l, &a);
    char path[400];
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    struct reply r = fetch(httpd_port(h), NULL, path, NULL);
    ck_assert_int_eq(r.status, 414);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"uri_too_long\""));
    reply_free(&r);
    r = fetch(httpd_port(h), "POST", "/v1/now", NULL);
    ck_assert_int_eq(r.status, 413);
    reply_free(&r);
    ck_assert_int_eq(atomic_load(&a.calls), 0);
    httpd_stop(h);
}
END_TEST

static Suite *httpd_suite(void)
{
    Suite *s = suite_create("httpd");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, global_setup, global_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, healthz);
    tcase_add_test(tc, async_answers_now_later_and_falls_through);
    tcase_add_test(tc, streamed_body_in_chunks);
    tcase_add_test(tc, oversized_requests);
    tcase_add_test(tc, readyz_both_states);
    tcase_add_test(tc, metrics_route);
    tcase_add_test(tc, app_handler_args_headers_status);
    tcase_add_test(tc, not_found);
    tcase_add_test(tc, method_not_allowed);
    tcase_add_test(tc, ipv6_listen);
    tcase_add_test(tc, bad_listen_addresses);
    tcase_add_test(tc, port_in_use);
    tcase_add_test(tc, concurrent_requests);
    tcase_add_test(tc, stop_releases_everything);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(httpd_suite());
}
