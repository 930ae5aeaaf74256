/* Exponential backoff with full jitter, and the default random source
 * (a per-thread xorshift64* seeded from getrandom(2)). */
#include "common/backoff.h"

#include <limits.h>
#include <stddef.h>
#include <sys/random.h>
#include <time.h>

/* xorshift64* (Vigna): fast, good enough for jitter; never cryptographic. */
static _Thread_local uint64_t rand_state;

static uint64_t rand_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
        /* No entropy yet (early boot): jitter only needs to differ between
         * processes and threads, so time and a stack address will do. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&ts;
    }
    return s ? s : 0x9e3779b97f4a7c15ULL; /* the state must never be 0 */
}

uint64_t rand_u64_default(void *ud)
{
    (void)ud;
    if (rand_state == 0)
        rand_state = rand_seed();
    uint64_t x = rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rand_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t max_ms, rand_u64_fn rand,
                  void *rand_ud)
{
    b->base_ms = base_ms;
    b->max_ms = max_ms;
    b->attempt = 0;
    b->rand = rand ? rand : rand_u64_default;
    b->rand_ud = rand_ud;
}

uint64_t backoff_ceiling(const struct backoff *b)
{
    if (b->base_ms == 0)
        return 0;
    /* base << attempt overflows once attempt >= 64 or base > UINT64_MAX >> attempt;
     * both mean "past any max", so the cap applies. */
    if (b->attempt >= 64 || b->base_ms > (UINT64_MAX >> b->attempt))
        return b->max_ms;
    uint64_t c = b->base_ms << b->attempt;
    return c < b->max_ms ? c : b->max_ms;
}

uint64_t backoff_next(struct backoff *b)
{
    uint64_t c = backoff_ceiling(b);
    uint64_t r = b->rand(b->rand_ud);
    if (b->attempt < UINT_MAX)
        b->attempt++;
    /* Modulo bias is below c / 2^64: irrelevant for delays in milliseconds. */
    if (c == UINT64_MAX)
        return r;
    return r % (c + 1);
}

void backoff_reset(struct backoff *b)
{
    b->attempt = 0;
}
