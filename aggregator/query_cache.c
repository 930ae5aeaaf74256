/* The result cache (aggregator/query_cache.h). */
#include "aggregator/query_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/lru.h"
#include "common/metrics.h"
#include "common/xmalloc.h"

#define ENTRY_OVERHEAD 160 /* bytes an entry costs beyond key and body */

struct query_cache {
    pthread_mutex_t mu;
    struct lru *lru;
    size_t max_bytes;
    uint64_t evictions_seen;
    struct metric *hits, *misses, *evictions, *bytes, *entries;
};

static void entry_free(void *v)
{
    struct qcache_entry *e = v;
    free(e->body);
    free(e);
}

struct query_cache *query_cache_new(size_t max_bytes, struct metrics *m)
{
    struct query_cache *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    c->lru = lru_new(1u << 30, 0, entry_free);
    lru_set_max_bytes(c->lru, max_bytes ? max_bytes : 1);
#define P "auditrail_aggregator_query_cache_"
    c->hits = metrics_counter(m, P "hits_total", "query API answers served from the cache", NULL);
    c->misses = metrics_counter(m, P "misses_total",
                                "cacheable query API requests not found in the cache", NULL);
    c->evictions = metrics_counter(m, P "evictions_total",
                                   "cache entries evicted to stay within query.cache_bytes", NULL);
    c->bytes = metrics_gauge(m, P "bytes", "bytes held by the query cache", NULL);
    c->entries = metrics_gauge(m, P "entries", "answers held by the query cache", NULL);
#undef P
    return c;
}

void query_cache_free(struct query_cache *c)
{
    if (!c)
        return;
    lru_free(c->lru);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* With c->mu held. */
static void publish(struct query_cache *c)
{
    uint64_t ev = lru_evictions(c->lru);
    metric_add(c->evictions, (double)(ev - c->evictions_seen));
    c->evictions_seen = ev;
    metric_set(c->bytes, (double)lru_bytes(c->lru));
    metric_set(c->entries, (double)lru_size(c->lru));
}

bool query_cache_get(struct query_cache *c, const char *key, size_t klen, uint64_t now_ms,
                     struct qcache_entry *out)
{
    if (!c->max_bytes)
        return false;
    pthread_mutex_lock(&c->mu);
    const struct qcache_entry *e = lru_get(c->lru, key, klen, now_ms);
    if (e) {
        *out = *e;
        out->body = xmemdup(e->body, e->len + 1);
    }
    publish(c);
    pthread_mutex_unlock(&c->mu);
    metric_inc(e ? c->hits : c->misses);
    return e != NULL;
}

void query_cache_put(struct query_cache *c, const char *key, size_t klen,
                     const struct qcache_entry *e, uint64_t ttl_ms, uint64_t now_ms)
{
    if (!c->max_bytes || ttl_ms == 0)
        return;
    struct qcache_entry *copy = xmalloc(sizeof(*copy));
    *copy = *e;
    copy->body = xmemdup(e->body, e->len + 1);
    pthread_mutex_lock(&c->mu);
    lru_put_sized(c->lru, key, klen, copy, e->len + klen + ENTRY_OVERHEAD, ttl_ms, now_ms);
    publish(c);
    pthread_mutex_unlock(&c->mu);
}
