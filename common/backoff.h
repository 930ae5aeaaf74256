/* Exponential backoff with full jitter (AWS architecture blog, 2015):
 * delay = uniform[0, min(max_ms, base_ms * 2^attempt)]. Pure logic; the random
 * source is injectable for tests. */
#ifndef AUDITRAIL_BACKOFF_H
#define AUDITRAIL_BACKOFF_H

#include <stdint.h>

typedef uint64_t (*rand_u64_fn)(void *ud);

/* Default random source: a per-thread xorshift seeded from getrandom(2). */
uint64_t rand_u64_default(void *ud);

struct backoff {
    uint64_t base_ms, max_ms;
    unsigned attempt;
    rand_u64_fn rand;
    void *rand_ud;
};

/* rand NULL = rand_u64_default. */
void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t max_ms, rand_u64_fn rand,
                  void *rand_ud);
/* The ceiling for the current attempt: min(max_ms, base_ms << attempt), no overflow. */
uint64_t backoff_ceiling(const struct backoff *b);
/* Next delay in [0, ceiling], then attempt++. */
uint64_t backoff_next(struct backoff *b);
void backoff_reset(struct backoff *b);

#endif
