/* The query API's result cache: an O(1) LRU (common/lru.h) bounded in
 * bytes, each entry with its own TTL (immutable ranges live longer), keyed
 * by the normalized query and the caller's tenant scope. Thread-safe (one
 * mutex: every operation is O(1) plus copying the body). Metrics: hits,
 * misses, evictions, bytes, entries. */
#ifndef AUDITRAIL_AGGREGATOR_QUERY_CACHE_H
#define AUDITRAIL_AGGREGATOR_QUERY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;

/* A cached answer. */
struct qcache_entry {
    char *body; /* heap */
    size_t len;
    unsigned rows;
    const char *content_type; /* static */
    char served_by[96];
    int64_t lag_ms;
};

struct query_cache;

/* max_bytes 0: a cache that stores nothing. */
struct query_cache *query_cache_new(size_t max_bytes, struct metrics *m);
void query_cache_free(struct query_cache *c);
/* true with a copy in *out (body heap: the caller frees). */
bool query_cache_get(struct query_cache *c, const char *key, size_t klen, uint64_t now_ms,
                     struct qcache_entry *out);
/* Store a copy of e for ttl_ms (0 = not stored). */
void query_cache_put(struct query_cache *c, const char *key, size_t klen,
                     const struct qcache_entry *e, uint64_t ttl_ms, uint64_t now_ms);

#endif
