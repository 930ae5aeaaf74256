/* The Merkle tree of RFC 6962 (Certificate Transparency) over the log of
 * signed chain heads: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 ||
 * left || right), a tree of n leaves splits at the largest power of two
 * below n; the empty tree's root is SHA-256(""). The tree only grows
 * (append-only), so a signed root covers every head signed so far, and a
 * consistency proof shows that a later tree extends an earlier one.
 *
 * Trees are read through a callback that returns the hash of a perfect
 * subtree (2^level leaves from idx·2^level), which the signer stores as it
 * appends (proof_round.c): roots and proofs then cost O(log n) reads. */
#ifndef AUDITRAIL_AGGREGATOR_MERKLE_H
#define AUDITRAIL_AGGREGATOR_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN  32
#define MERKLE_MAX_PROOF 64 /* hashes in a proof of a tree of < 2^63 leaves */

void merkle_leaf_hash(const void *data, size_t len, uint8_t out[MERKLE_HASH_LEN]);
void merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
                      uint8_t out[MERKLE_HASH_LEN]);

/* The hash of the perfect subtree at (level, idx); 0, or -1 (the caller's
 * failure: the whole computation fails). */
typedef int (*merkle_node_fn)(void *ud, unsigned level, uint64_t idx, uint8_t out[MERKLE_HASH_LEN]);

/* The root of the first n leaves. 0 or -1 (the callback failed). */
int merkle_root(merkle_node_fn get, void *ud, uint64_t n, uint8_t out[MERKLE_HASH_LEN]);
/* The audit path of leaf m in the tree of n leaves (RFC 6962 §2.1.1),
 * m < n: *len hashes, leaf side first. 0 or -1. */
int merkle_inclusion_proof(merkle_node_fn get, void *ud, uint64_t m, uint64_t n,
                           uint8_t proof[][MERKLE_HASH_LEN], size_t *len);
/* The consistency proof of the tree of m leaves in the tree of n
 * (RFC 6962 §2.1.2), 0 < m <= n. 0 or -1. */
int merkle_consistency_proof(merkle_node_fn get, void *ud, uint64_t m, uint64_t n,
                             uint8_t proof[][MERKLE_HASH_LEN], size_t *len);

/* Check an audit path (RFC 9162 §2.1.3.2): leaf hash, its index m < n. */
bool merkle_verify_inclusion(const uint8_t leaf[MERKLE_HASH_LEN], uint64_t m, uint64_t n,
                             const uint8_t proof[][MERKLE_HASH_LEN], size_t len,
                             const uint8_t root[MERKLE_HASH_LEN]);
/* Check a consistency proof (RFC 9162 §2.1.4.2) between the roots of the
 * trees of m and n leaves, 0 < m <= n. */
bool merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[MERKLE_HASH_LEN],
                               const uint8_t root_n[MERKLE_HASH_LEN],
                               const uint8_t proof[][MERKLE_HASH_LEN], size_t len);

/* Appending: the right edge of a tree of `size` leaves — the roots of the
 * perfect subtrees its size decomposes into, largest (leftmost) first. */
struct merkle_frontier {
    uint64_t size;
    unsigned n;
    unsigned level[MERKLE_MAX_PROOF];
    uint8_t hash[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
};

/* The perfect subtrees of a tree of `size` leaves, as (level, idx), largest
 * first; returns their count. */
unsigned merkle_frontier_nodes(uint64_t size, unsigned level[MERKLE_MAX_PROOF],
                               uint64_t idx[MERKLE_MAX_PROOF]);
/* Load the frontier of a tree of `size` leaves through get. 0 or -1. */
int merkle_frontier_load(struct merkle_frontier *f, uint64_t size, merkle_node_fn get, void *ud);
/* Append a leaf hash; every perfect subtree this completes (the leaf
 * itself included, level 0) is handed to emit, to be stored. */
void merkle_frontier_append(struct merkle_frontier *f, const uint8_t leaf[MERKLE_HASH_LEN],
                            void (*emit)(void *ud, unsigned level, uint64_t idx,
                                         const uint8_t hash[MERKLE_HASH_LEN]),
                            void *ud);
/* The root of the frontier's tree. */
void merkle_frontier_root(const struct merkle_frontier *f, uint8_t out[MERKLE_HASH_LEN]);

#endif
