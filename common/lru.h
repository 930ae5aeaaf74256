/* O(1) LRU map with an optional TTL (per map, or per entry) and an optional
 * byte bound: hash table + doubly linked list.
 * Keys are byte strings (copied). Values are owned by the LRU once put and
 * released with the free function given at creation (may be NULL).
 * Not thread-safe: one owner thread, or the caller locks. */
#ifndef AUDITRAIL_LRU_H
#define AUDITRAIL_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lru;
typedef void (*lru_free_fn)(void *value);

/* capacity >= 1; ttl_ms 0 = entries never expire. */
struct lru *lru_new(size_t capacity, uint64_t ttl_ms, lru_free_fn free_value);
void lru_free(struct lru *l); /* NULL-safe */
/* The value for key, or NULL when absent or older than the TTL at now_ms
 * (an expired entry is removed). A hit becomes most recently used. */
void *lru_get(struct lru *l, const void *key, size_t klen, uint64_t now_ms);
/* True when key is present and not expired (same effects as lru_get). */
bool lru_contains(struct lru *l, const void *key, size_t klen, uint64_t now_ms);
/* Insert or replace (the old value is freed); evicts the least recently used
 * entry when full. The entry's TTL starts at now_ms. */
void lru_put(struct lru *l, const void *key, size_t klen, void *value, uint64_t now_ms);
/* Insert or replace with a size and a TTL of its own (0 = never expires):
 * evicts least recently used entries until both the entry count and the
 * byte bound (lru_set_max_bytes) hold. A value larger than the byte bound
 * is freed at once, not stored. */
void lru_put_sized(struct lru *l, const void *key, size_t klen, void *value, size_t bytes,
                   uint64_t ttl_ms, uint64_t now_ms);
/* Bound the sum of the sizes given to lru_put_sized (0 = no bound; entries
 * put with lru_put count 0 bytes). */
void lru_set_max_bytes(struct lru *l, size_t max_bytes);
/* The sum of the sizes of the entries held. */
size_t lru_bytes(const struct lru *l);
/* Remove key; true if it was there. */
bool lru_remove(struct lru *l, const void *key, size_t klen);
size_t lru_size(const struct lru *l);
/* Entries evicted for capacity since creation (not TTL expiries). */
uint64_t lru_evictions(const struct lru *l);

#endif
