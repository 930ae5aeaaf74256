/* SipHash-2-4 (Aumasson & Bernstein), the keyed hash of the in-memory hash
 * tables (common/htab.h, common/lru.c): with a random key per table, keys
 * chosen to collide cannot degrade a table to O(n) probes. */
#ifndef AUDITRAIL_SIPHASH_H
#define AUDITRAIL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of len bytes under the 128-bit key (k0, k1). */
uint64_t siphash24(uint64_t k0, uint64_t k1, const void *in, size_t len);

/* A fresh random key (getrandom; a clock-based fallback when the kernel's
 * pool is not ready yet, which only costs collision resistance). */
void siphash_key(uint64_t key[2]);

#endif
