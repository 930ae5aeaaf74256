/* HTTP probes of the programs under test (libcurl): ports, status codes,
 * Prometheus text samples. */
#include "tests/support/probe.h"

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

unsigned probe_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    buf_add(ud, ptr, size * nmemb);
    return size * nmemb;
}

long probe_http_get(unsigned port, const char *path, char **body)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    struct buf b = BUF_INIT;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (body)
        *body = status < 0 ? NULL : buf_detach(&b, NULL);
    buf_release(&b);
    return status;
}

/* Sum the samples of series in Prometheus text; false when none matched. */
static bool metric_sum(char *text, const char *series, double *value)
{
    size_t nlen = strlen(series);
    bool with_labels = strchr(series, '{') != NULL, found = false;
    double sum = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || strncmp(line, series, nlen) != 0)
            continue;
        char next = line[nlen];
        if (with_labels ? next != ' ' : (next != ' ' && next != '{'))
            continue;
        char *sp = strrchr(line, ' '), *end;
        double v = strtod(sp + 1, &end);
        ck_assert_msg(end != sp + 1 && *end == '\0', "bad sample in /metrics: %s", line);
        sum += v;
        found = true;
    }
    if (found)
        *value = sum;
    return found;
}

bool probe_metric(unsigned port, const char *series, double *value)
{
    char *text = NULL;
    bool found = false;
    if (probe_http_get(port, "/metrics", &text) == 200)
        found = metric_sum(text, series, value);
    free(text);
    return found;
}

double probe_metric_value(unsigned port, const char *series)
{
    double v = 0;
    ck_assert_msg(probe_metric(port, series, &v), "metric %s is not exposed on port %u", series,
                  port);
    return v;
}

struct metric_arg {
    unsigned port;
    const char *series;
    double lo, hi;
};

static bool metric_in_range(void *ud)
{
    struct metric_arg *m = ud;
    double v;
    return probe_metric(m->port, m->series, &v) && v >= m->lo && v <= m->hi;
}

bool probe_wait_metric_range(unsigned port, const char *series, double lo, double hi,
                             unsigned timeout_ms)
{
    struct metric_arg m = {port, series, lo, hi};
    return test_wait_until(metric_in_range, &m, timeout_ms);
}

bool probe_wait_metric(unsigned port, const char *series, double at_least, unsigned timeout_ms)
{
    return probe_wait_metric_range(port, series, at_least, INFINITY, timeout_ms);
}

struct status_arg {
    unsigned port;
    const char *path;
    long status;
};

static bool status_is(void *ud)
{
    struct status_arg *a = ud;
    return probe_http_get(a->port, a->path, NULL) == a->status;
}

bool probe_wait_status(unsigned port, const char *path, long status, unsigned timeout_ms)
{
    struct status_arg a = {port, path, status};
    return test_wait_until(status_is, &a, timeout_ms);
}

bool probe_wait_ready(unsigned port, unsigned timeout_ms)
{
    return probe_wait_status(port, "/readyz", 200, timeout_ms);
}
