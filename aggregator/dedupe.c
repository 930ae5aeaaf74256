/* Dedupe layers before PostgreSQL; see dedupe.h. */
#include "aggregator/dedupe.h"

#include <stdlib.h>
#include <string.h>

#include "aggregator/redis_store.h"
#include "common/hashchain.h"
#include "common/htab.h"
#include "common/log.h"
#include "common/lru.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define ID_LEN CHAIN_UUID_LEN

struct dedupe {
    struct lru *lru;
    struct redis_store *redis;
    struct breaker redis_breaker;
    struct htab batch_ids; /* ids of the batch being built; cleared per batch */
    struct dedupe_stats stats;
};

struct dedupe *dedupe_new(size_t lru_size, struct redis_store *redis,
                          const struct breaker_conf *bconf, breaker_change_fn on_change,
                          void *change_ud)
{
    struct dedupe *d = xcalloc(1, sizeof(*d));
    d->lru = lru_new(lru_size ? lru_size : 1, 0, NULL);
    d->redis = redis;
    struct breaker_conf def;
    if (!bconf) {
        breaker_conf_default(&def);
        bconf = &def;
    }
    breaker_init(&d->redis_breaker, "redis", bconf, NULL, NULL, NULL, NULL, on_change, change_ud);
    htab_init(&d->batch_ids, ID_LEN, 512);
    return d;
}

void dedupe_free(struct dedupe *d)
{
    if (!d)
        return;
    lru_free(d->lru);
    htab_release(&d->batch_ids);
    free(d);
}

bool dedupe_batch_seen(struct dedupe *d, const char *id)
{
    bool added;
    htab_put(&d->batch_ids, id, &added);
    return !added;
}

void dedupe_batch_reset(struct dedupe *d)
{
    htab_clear(&d->batch_ids);
}

bool dedupe_lru_seen(struct dedupe *d, const char *id)
{
    return lru_contains(d->lru, id, ID_LEN, 0);
}

long dedupe_redis_filter(struct dedupe *d, struct batch *b)
{
    if (!d->redis || b->n == 0)
        return -1;
    if (!breaker_allow(&d->redis_breaker)) {
        d->stats.redis_skipped++;
        return -1;
    }
    const char **ids = xmalloc(b->n * sizeof(*ids));
    uint8_t *seen = xcalloc(b->n, 1);
    for (size_t i = 0; i < b->n; i++)
        ids[i] = b->rows[i].env.id;
    long dropped = -1;
    if (redis_store_seen(d->redis, ids, b->n, seen) != 0) {
        breaker_failure(&d->redis_breaker);
        d->stats.redis_errors++;
        d->stats.redis_skipped++;
        goto out;
    }
    breaker_success(&d->redis_breaker);
    dropped = (long)batch_remove(b, seen);
out:
    free(ids);
    free(seen);
    return dropped;
}

void dedupe_mark_committed(struct dedupe *d, const struct batch *b, const uint8_t *committed)
{
    if (!committed || b->n == 0)
        return;
    const char **ids = xmalloc(b->n * sizeof(*ids));
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!committed[i])
            continue;
        lru_put(d->lru, b->rows[i].env.id, ID_LEN, NULL, 0);
        ids[n++] = b->rows[i].env.id;
    }
    if (d->redis && n > 0 && breaker_allow(&d->redis_breaker)) {
        if (redis_store_mark(d->redis, ids, n) == 0) {
            breaker_success(&d->redis_breaker);
        } else {
            breaker_failure(&d->redis_breaker);
            d->stats.redis_errors++;
        }
    }
    free(ids);
}

const struct dedupe_stats *dedupe_stats(const struct dedupe *d)
{
    return &d->stats;
}

const struct breaker *dedupe_redis_breaker(const struct dedupe *d)
{
    return d->redis ? &d->redis_breaker : NULL;
}
