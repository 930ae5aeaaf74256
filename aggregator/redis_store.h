/* Redis side of the aggregator: the shared dedupe window (SET key with
 * expiry) and the maintenance lease with a fencing token. Optional: every
 * call fails fast when Redis is down, and callers fall back (LRU + primary
 * key for dedupe, advisory lock for maintenance). hiredis, one connection,
 * short timeouts, reconnect on demand. */
#ifndef AUDITRAIL_AGGREGATOR_REDIS_STORE_H
#define AUDITRAIL_AGGREGATOR_REDIS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct redis_store;

/* url: redis://host:port/db. ttl_s: dedupe window (default 86400).
 * Does not connect yet; returns NULL only for a malformed url (err says why). */
struct redis_store *redis_store_new(const char *url, uint64_t ttl_s, unsigned timeout_ms, char *err,
                                    size_t errlen) __attribute__((warn_unused_result));
void redis_store_free(struct redis_store *r);

/* For each of n ids, seen[i] = 1 when it is in the window. 0, or -1 when
 * Redis is unreachable (seen untouched). */
int redis_store_seen(struct redis_store *r, const char *const *ids, size_t n, uint8_t *seen)
    __attribute__((warn_unused_result));
/* Dedupe keys become "auditrail:dedupe:<ns>:<id>" (ns copied; NULL or ""
 * = none): two deployments sharing one Redis never see each other's ids. */
void redis_store_set_namespace(struct redis_store *r, const char *ns);
/* Mark n ids as seen (after their transaction committed). 0 or -1. */
int redis_store_mark(struct redis_store *r, const char *const *ids, size_t n)
    __attribute__((warn_unused_result));

/* Try to take or renew the lease `name` for `holder` for ttl_ms. On success
 * returns 0 and the fencing token (strictly increasing across holders,
 * INCR-based on token_key; NULL = "<name>:token"); -1 when held by another
 * or Redis is unreachable (*unreachable tells which; an error reply, e.g.
 * from a read-only replica, counts as unreachable). A holder renewing keeps
 * its token. */
int redis_store_lease(struct redis_store *r, const char *name, const char *token_key,
                      const char *holder, uint64_t ttl_ms, int64_t *token, bool *unreachable)
    __attribute__((warn_unused_result));
void redis_store_lease_release(struct redis_store *r, const char *name, const char *holder);

#endif
