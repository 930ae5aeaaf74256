/* chain_next (common/hashchain.h) for the hot path: the same formula with a
 * SHA-256 context and a message digest fetched once. OpenSSL 3 fetches the
 * algorithm by name on every EVP_DigestInit_ex(EVP_sha256()) and allocates a
 * context per call: ~20 % of the agent's time per record (bench/agent).
 * tests/unit/test_agent_record.c checks it against chain_next. One thread. */
#ifndef AUDITRAIL_AGENT_CHAIN_HASHER_H
#define AUDITRAIL_AGENT_CHAIN_HASHER_H

#include <stddef.h>
#include <stdint.h>

#include "common/hashchain.h"

struct chain_hasher;

struct chain_hasher *chain_hasher_new(void);    /* aborts if OpenSSL has no SHA-256 */
void chain_hasher_free(struct chain_hasher *h); /* NULL-safe */

/* out = SHA-256(prev || seq as u64 BE || rec[0, len)) */
void chain_hasher_next(struct chain_hasher *h, const uint8_t prev[CHAIN_HASH_LEN], uint64_t seq,
                       const void *rec, size_t len, uint8_t out[CHAIN_HASH_LEN]);

#endif
