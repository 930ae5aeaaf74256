/* A bounded pool of read connections to one PostgreSQL host (the query
 * API's, one pool per host of the router). Connections are pg_conn's, made
 * lazily, with the read path's session (statement_timeout, UTC, custom
 * plans, read-only) and prepared statements. Acquiring never waits longer
 * than the caller says: a full pool is an answer ("busy"), not a queue.
 * Thread-safe. */
#ifndef AUDITRAIL_AGGREGATOR_PG_POOL_H
#define AUDITRAIL_AGGREGATOR_PG_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/pg_conn.h"

struct pg_pool_conf {
    const char *conninfo;         /* copied */
    const char *application_name; /* static */
    unsigned size;                /* >= 1 */
    int64_t statement_timeout_ms;
    const struct pg_stmt *stmts; /* static; prepared on every connection */
    size_t nstmts;
};

struct pg_pool;

struct pg_pool *pg_pool_new(const struct pg_pool_conf *conf);
void pg_pool_free(struct pg_pool *p); /* NULL-safe; every connection must be back */

/* A connection of the pool (not yet connected: pg_conn_open it), or NULL
 * when all are in use for longer than wait_ms. */
struct pg_connection *pg_pool_acquire(struct pg_pool *p, unsigned wait_ms);
/* Give c back. broken: drop its link (the next user reconnects), e.g. after
 * a failure that may have left it in an unknown state. */
void pg_pool_release(struct pg_pool *p, struct pg_connection *c, bool broken);
/* Connections lent out now. */
unsigned pg_pool_in_use(struct pg_pool *p);
/* Disconnect the idle connections (their host went away: do not let the
 * next request find a dead socket). */
void pg_pool_close_idle(struct pg_pool *p);

#endif
