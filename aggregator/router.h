/* The read path's replica router (DESIGN.md §7): the primary and the
 * streaming replicas, each with a bounded pool (pg_pool.h), a breaker
 * (common/breaker.h) and a health-check thread of its own (its own
 * connection, every 1-2x postgres.health_interval_ms). A request leases a
 * connection on the least-loaded eligible replica, else the primary (unless
 * replica_only). Eligible: answering, WAL receiver streaming (while the
 * primary answers), replay not paused, lag within max_lag_ms, breaker not
 * open. Lag: 0 when the replica has replayed the primary's last seen
 * position; otherwise the smaller of now - pg_last_xact_replay_timestamp()
 * and the age of the newest primary position it has replayed (so an idle
 * primary never makes a replica look late). Thread-safe. */
#ifndef AUDITRAIL_AGGREGATOR_ROUTER_H
#define AUDITRAIL_AGGREGATOR_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/pg_conn.h"
#include "common/breaker.h"

struct metrics;

struct router_conf {
    const char *primary;         /* libpq conninfo */
    const char *const *replicas; /* nreplicas conninfos */
    size_t nreplicas;
    int64_t max_lag_ms;
    int64_t health_interval_ms;
    bool replica_only;
    unsigned pool_size;
    int64_t statement_timeout_ms;
    unsigned acquire_timeout_ms; /* longest wait for a pooled connection */
    const struct pg_stmt *stmts; /* static: prepared on every read connection */
    size_t nstmts;
    const struct breaker_conf *breaker;
    struct metrics *metrics; /* NULL: none */
};

struct router;
struct router_host;

/* A connection lent for one request (or one retry of it). */
struct router_lease {
    struct router_host *host;
    struct pg_connection *conn;
    bool replica;
    char served_by[96]; /* "primary" or "replica host:port" (X-Auditrail-Served-By) */
    int64_t lag_ms;     /* the host's lag at its last check (0 for the primary) */
    int64_t horizon_us; /* wall clock µs before which this host has every commit */
    uint64_t start_us;
};

enum router_status {
    ROUTER_OK = 0,
    ROUTER_NO_HOST,     /* no eligible host (replica_only, or every host down) */
    ROUTER_BUSY,        /* eligible hosts exist but their pools are full */
    ROUTER_LSN_TIMEOUT, /* no host replayed min_lsn within the wait */
};

/* Start the health threads; returns once every host had its first check
 * (or first_check_ms passed). */
struct router *router_new(const struct router_conf *conf, unsigned first_check_ms);
void router_free(struct router *r); /* NULL-safe; every lease must be released */

/* Lease a connected connection. exclude: a host not to use (the one a
 * retried query failed on; NULL = none). min_lsn 0 = any; else only a host
 * that replayed it (the primary always has), waiting up to min_lsn_wait_ms
 * when only replicas may serve. err says why on failure. */
enum router_status router_acquire(struct router *r, const struct router_host *exclude,
                                  uint64_t min_lsn, unsigned min_lsn_wait_ms,
                                  struct router_lease *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Lease a connection on the primary (when it may serve: up, breaker not
 * open, not replica_only), e.g. to confirm a replica's "no such row" about
 * something just written there. */
enum router_status router_acquire_primary(struct router *r, struct router_lease *out, char *err,
                                          size_t errlen) __attribute__((warn_unused_result));
/* Give the lease back with the outcome of its last statement (feeds the
 * host's breaker and metrics). */
void router_release(struct router *r, struct router_lease *l, enum pg_status st);
/* Should a statement that failed with st on l be retried once on another
 * host? A replica's hot-standby conflict (40001) or lost connection. */
bool router_should_retry(const struct router_lease *l, enum pg_status st);

/* The primary's WAL position at its last check (0 = never seen). */
uint64_t router_primary_lsn(struct router *r);
/* Seconds a client should wait before retrying a 503 (Retry-After). */
unsigned router_retry_after_s(const struct router *r);

/* The per-host metric families, as a primary shows them, without starting
 * anything (--metrics-reference). */
void router_register_metrics(struct metrics *m);

/* For tests and /metrics: one host's state by index (0 = primary). */
struct router_host_state {
    char served_by[96];
    bool up, eligible, paused, receiver_up;
    int64_t lag_ms;
    enum breaker_state breaker;
    unsigned inflight;
};
size_t router_nhosts(const struct router *r);
void router_host_state(struct router *r, size_t i, struct router_host_state *out);

#endif
