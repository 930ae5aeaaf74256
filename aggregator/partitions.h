/* Daily partitions of auditrail.events (events_pYYYYMMDD, UTC days): day
 * math, a sorted cache of known partition bounds with O(log N) routing,
 * grouping a batch's times by day with a hash map (O(N + M)), creating missing
 * partitions on demand under a transaction-level advisory lock, premaking
 * days ahead and retention. All times are int64 µs since the Unix epoch (UTC).
 * Not thread-safe: one cache per connection owner. */
#ifndef AUDITRAIL_AGGREGATOR_PARTITIONS_H
#define AUDITRAIL_AGGREGATOR_PARTITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aggregator/pg_conn.h"

#define PART_DAY_US   INT64_C(86400000000)
#define PART_NAME_LEN 48 /* "events_p20261126" + NUL, with room for any int year */

/* pg_advisory_xact_lock key serializing partition DDL (creation by writers
 * and premake, detach/drop by retention) across processes. */
#define PART_LOCK_KEY INT64_C(0x6175647472616c31) /* "audtral1" */

/* Start of the UTC day holding us (floor, correct for negative times). */
int64_t part_day_floor(int64_t us);
/* "events_pYYYYMMDD" for the UTC day starting at day_us; a year past 9999
 * has more digits, a negative one an 'm' before them: an identifier for
 * any day. */
void part_day_name(int64_t day_us, char out[PART_NAME_LEN]);
/* Parse a name part_day_name makes (exactly) into the day's start; 0 or -1. */
int part_name_day(const char *name, int64_t *day_us);

struct part_bound {
    int64_t lo, hi; /* [lo, hi) µs */
};

/* Known partitions, sorted by lo, non-overlapping. */
struct part_cache {
    struct part_bound *b;
    size_t n, cap;
    bool stale; /* refresh before next use (set after errors) */
};

void part_cache_init(struct part_cache *c);
void part_cache_release(struct part_cache *c);
/* Index of the partition holding us, or -1. O(log n). */
ssize_t part_cache_find(const struct part_cache *c, int64_t us);
/* Insert [lo, hi) keeping order (no-op when an equal bound exists). */
void part_cache_add(struct part_cache *c, int64_t lo, int64_t hi);
/* Reload from pg_inherits (partitions of auditrail.events). 0 or -1 + err. */
int part_cache_refresh(struct part_cache *c, struct pg_connection *conn, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A batch grouped by UTC day: days[g] holds rows idx[start[g] .. start[g+1]). */
struct part_groups {
    int64_t *days; /* m distinct day starts, in first-seen order */
    size_t *start; /* m + 1 entries */
    size_t *idx;   /* n row indexes */
    size_t m;
};
/* Group n times by UTC day with a hash map; O(n + m). out is overwritten
 * (release it with part_groups_release). */
void part_groups_init(struct part_groups *out, const int64_t *times_us, size_t n);
void part_groups_release(struct part_groups *g);

/* Make sure a partition exists for each of the n days (day starts). Must run
 * inside the caller's transaction: when a day is missing from the cache it
 * takes pg_advisory_xact_lock(PART_LOCK_KEY), and creates the missing ones
 * with CREATE TABLE IF NOT EXISTS … PARTITION OF … (safe against other
 * processes doing the same). *created (may be NULL) gets the number of
 * tables created. Days created are added to the cache only; on error the
 * cache is marked stale (the caller rolls back). PG_OK, or the failure's
 * class with err. */
enum pg_status part_ensure(struct part_cache *c, struct pg_connection *conn, const int64_t *days,
                           size_t n, int *created, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A check run first inside each maintenance transaction (maintenance's
 * fencing-token check): 0 to proceed, -1 + err to abort the transaction. */
typedef int (*part_fence_fn)(struct pg_connection *conn, void *ud, char *err, size_t errlen);

/* Premake: ensure partitions for the UTC days from today(now_us) to
 * today + days inclusive, in one transaction of its own (conn must be idle;
 * fence may be NULL). 0 or -1 + err; *created as above. */
int part_premake(struct part_cache *c, struct pg_connection *conn, int64_t now_us, int days,
                 part_fence_fn fence, void *fence_ud, int *created, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Note, inside the writer's transaction, that rows of the n days (day
 * starts) are being written: the days before today(now_us) get
 * auditrail.partition_writes.last_write = now(), refreshed at most once a
 * minute (a fresh note is only read: writers do not queue on its lock).
 * PG_OK or the failure's class with err. */
enum pg_status part_note_writes(struct pg_connection *conn, const int64_t *days, size_t n,
                                int64_t now_us, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Retention: every partition whose upper bound is <= day_floor(now_us) -
 * retention_days is detached and then dropped, or, with keep_table, detached
 * and renamed to events_pYYYYMMDD_detached and kept — unless it was written
 * within the last recent_s seconds (part_note_writes; checked after DETACH,
 * whose lock waited for its writers): then it is kept, logged, and counted
 * in *kept. One transaction per partition (plain DETACH, not CONCURRENTLY:
 * see partitions.c), with lock_timeout so writers are not stalled; `fence`
 * (may be NULL) is called inside each transaction first and must return 0
 * to proceed (maintenance's fencing-token check). Partitions newer than the
 * cutoff are never touched. *dropped gets the number dropped or detached
 * (dropped, kept may be NULL). 0 or -1 + err. */
int part_retention(struct part_cache *c, struct pg_connection *conn, int64_t now_us,
                   int retention_days, bool keep_table, int64_t recent_s, part_fence_fn fence,
                   void *fence_ud, int *dropped, int *kept, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
