/* Fixtures of the read-path suites (test_query_*.c): stack services
 * stopped and started through scripts/stack, waiting on the router's view
 * of a host, HTTP requests with a token and response headers, tokens made
 * with the aggregator's token command. Header-only (static inline). */
#ifndef AUDITRAIL_TESTS_QUERY_FIXTURES_H
#define AUDITRAIL_TESTS_QUERY_FIXTURES_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregator/router.h"
#include "common/xmalloc.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

/* scripts/stack VERB SVC (stop, start, kill): the service's state changes
 * for every suite on this stack — the suites that call it run alone. */
static inline void qfx_stack(const char *verb, const char *svc)
{
    char *cmd = xasprintf("'%s/scripts/stack' %s %s >/dev/null 2>&1", test_repo_root(), verb, svc);
    int rc = system(cmd);
    free(cmd);
    ck_assert_msg(rc == 0, "scripts/stack %s %s failed (%d)", verb, svc, rc);
}

/* The replica's view of the stack is superuser SQL on the replica. */
static inline void qfx_replica_sql(const char *replica_ci, const char *sql)
{
    PGconn *c = test_pg_connect(replica_ci);
    test_pg_exec(c, sql);
    PQfinish(c);
}

/* Whatever a case did to the shared stack, undone: both PostgreSQL servers
 * running and the replica's replay resumed, so that a case failing half-way
 * leaves the next suites neither a stopped nor a paused replica. */
static inline void qfx_stack_restore(const char *replica_ci)
{
    qfx_stack("start", "pg-primary");
    qfx_stack("start", "pg-replica");
    qfx_replica_sql(replica_ci, "SELECT pg_wal_replay_resume()");
}

struct qfx_host_wait {
    struct router *r;
    size_t host;
    int want_eligible; /* -1 = any */
    int want_breaker;  /* -1 = any */
    int want_up;       /* -1 = any */
};

static inline bool qfx_host_is(void *ud)
{
    struct qfx_host_wait *w = ud;
    struct router_host_state s;
    router_host_state(w->r, w->host, &s);
    return (w->want_eligible < 0 || s.eligible == (bool)w->want_eligible) &&
           (w->want_breaker < 0 || (int)s.breaker == w->want_breaker) &&
           (w->want_up < 0 || s.up == (bool)w->want_up);
}

/* Wait until host i of r matches (each -1 = any). */
static inline bool qfx_wait_host(struct router *r, size_t i, int eligible, int breaker, int up,
                                 unsigned timeout_ms)
{
    struct qfx_host_wait w = {r, i, eligible, breaker, up};
    return test_wait_until(qfx_host_is, &w, timeout_ms);
}

/* ---- HTTP with a bearer token and headers (libcurl; tests/support/probe.h
 * has none of these) */
#include <curl/curl.h>

#include "common/buf.h"

struct qfx_reply {
    long status;
    struct buf body, headers;
};

static inline size_t qfx_sink(char *p, size_t size, size_t n, void *ud)
{
    buf_add(ud, p, size * n);
    return size * n;
}

/* GET http://127.0.0.1:port + path with an optional bearer token and an
 * optional extra header. status -1 when nothing answered. */
static inline struct qfx_reply qfx_get(unsigned port, const char *path, const char *token,
                                       const char *header)
{
    struct qfx_reply r = {.status = -1};
    char *url = xasprintf("http://127.0.0.1:%u%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
    if (auth)
        hl = curl_slist_append(hl, auth);
    if (header)
        hl = curl_slist_append(hl, header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, qfx_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, qfx_sink);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    free(auth);
    free(url);
    buf_cstr(&r.body);
    buf_cstr(&r.headers);
    return r;
}

static inline void qfx_reply_free(struct qfx_reply *r)
{
    buf_release(&r->body);
    buf_release(&r->headers);
}

/* A response header's value (heap), or NULL. */
static inline char *qfx_header(const struct qfx_reply *r, const char *name)
{
    size_t nl = strlen(name);
    for (const char *l = r->headers.p; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            char *out = xmalloc(vl + 1);
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Run `auditrail-aggregator --config cfg token ARGS…` and return the last
 * line of its standard output (the secret, for create). */
static inline char *qfx_token(const char *cfg, const char *args)
{
    char *bin = test_bin("auditrail-aggregator");
    char *cmd = xasprintf("'%s' --config '%s' token %s 2>/dev/null", bin, cfg, args);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    char line[512], last[512] = "";
    while (fgets(line, sizeof(line), f))
        snprintf(last, sizeof(last), "%s", line);
    int rc = pclose(f);
    ck_assert_msg(rc == 0, "%s: exit %d", cmd, rc);
    last[strcspn(last, "\n")] = '\0';
    free(cmd);
    free(bin);
    return xstrdup(last);
}

#endif
