/* Partition maintenance (DESIGN.md §5): at most one aggregator at a time
 * premakes partitions days ahead and applies retention. Mutual exclusion:
 * a Redis lease with a fencing token, the token also written to and checked
 * in auditrail.maintenance_lease inside every maintenance transaction (a
 * stale holder's transaction finds a newer token and does nothing); when
 * Redis is not configured or unreachable, pg_try_advisory_lock instead.
 * Owns its own PostgreSQL connection (never the writer's). Call from one
 * thread (the main loop), every few minutes. */
#ifndef AUDITRAIL_AGGREGATOR_MAINTENANCE_H
#define AUDITRAIL_AGGREGATOR_MAINTENANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/pg_conn.h"
#include "aggregator/redis_store.h"

struct maintenance_conf {
    int premake_days;       /* partitions.premake, default 7 */
    int retention_days;     /* partitions.retention_days, default 2190; 0 = keep forever */
    bool keep_table;        /* partitions.retention_keep_table, default false */
    int64_t recent_write_s; /* a partition written within this is kept (default 420:
                               the default interval, 300 s, and two minutes) */
    uint64_t lease_ttl_ms;  /* Redis lease time, default 300000 */
    const char *holder;     /* this instance's name (e.g. pod name); copied */
    const char *lease_name; /* Redis key of the lease, default
                               "auditrail:lease:maintenance"; copied */
    const char *token_key;  /* its fencing-token counter, default
                               "auditrail:lease:maintenance:token" (one for
                               every lease name: tokens stay comparable with
                               the highest one PostgreSQL holds); copied */
    const struct pg_limits *pg_limits; /* its connection's (NULL: PG_LIMITS_DEFAULT); copied */
};

/* Session advisory lock of the fallback path ("audmain1"). */
#define MAINTENANCE_LOCK_KEY INT64_C(7022344361954536753)

/* Fill the defaults above. holder is NULL here: set it to something unique
 * per instance (pod name, hostname:pid). */
void maintenance_conf_defaults(struct maintenance_conf *c);

struct maintenance_result {
    bool ran;         /* false: another instance holds the lease/lock */
    const char *lock; /* "redis", "advisory" or NULL (static string) */
    int64_t token;    /* fencing token used (Redis path), else 0 */
    int created;      /* partitions created by premake */
    int dropped;      /* partitions dropped (or detached when keep_table) */
    int kept;         /* expired partitions kept: written within recent_write_s */
};

struct maintenance;

/* conninfo: the primary. Does not connect yet. */
struct maintenance *maintenance_new(const char *conninfo, const struct maintenance_conf *conf);
void maintenance_free(struct maintenance *m);

/* One round: take the lease (redis may be NULL: advisory lock only), premake,
 * retention, release. now_us is the wall clock (used only for premake and
 * retention cutoffs). Returns 0 (res filled; res->ran false when another
 * instance holds it), or -1 with err (PostgreSQL unreachable, DDL failed,
 * fencing token superseded mid-run). Reconnects on the next call. */
int maintenance_run_once(struct maintenance *m, struct redis_store *redis, int64_t now_us,
                         struct maintenance_result *res, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
