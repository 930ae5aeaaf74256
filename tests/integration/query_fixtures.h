/* Fixtures of the read-path suites (test_query_*.c): stack services
 * stopped and started through scripts/stack, waiting on the router's view
 * of a host. Header-only (static inline) so each suite stays one file. */
#ifndef AUDITRAIL_TESTS_QUERY_FIXTURES_H
#define AUDITRAIL_TESTS_QUERY_FIXTURES_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#endif
