/* Reading the signed chain heads back from PostgreSQL (auditrail.chain_*):
 * a round and its heads (to publish them again, or to prove), the rounds
 * not yet published, and the tree's stored subtrees as a merkle_node_fn.
 * On a borrowed, idle connection; nothing here logs. */
#ifndef AUDITRAIL_AGGREGATOR_PROOF_STORE_H
#define AUDITRAIL_AGGREGATOR_PROOF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/merkle.h"
#include "aggregator/pg_conn.h"
#include "aggregator/proof_format.h"

/* Round `round` into *r: PG_OK with *found. */
enum pg_status proof_store_round(struct pg_connection *c, uint64_t round, struct proof_round *r,
                                 bool *found, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The latest round (*found false: none yet). */
enum pg_status proof_store_last_round(struct pg_connection *c, struct proof_round *r, bool *found,
                                      char *err, size_t errlen) __attribute__((warn_unused_result));
/* The heads of a round, by leaf (heap array, caller frees). */
enum pg_status proof_store_heads(struct pg_connection *c, uint64_t round, struct proof_head **h,
                                 size_t *n, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The rounds whose sinks have not all acknowledged them, oldest first
 * (heap, caller frees). */
enum pg_status proof_store_unpublished(struct pg_connection *c, uint64_t **rounds, size_t *n,
                                       char *err, size_t errlen)
    __attribute__((warn_unused_result));
enum pg_status proof_store_mark_published(struct pg_connection *c, uint64_t round, char *err,
                                          size_t errlen) __attribute__((warn_unused_result));
/* The leaf and round of the latest head of stream at or below seq (*found). */
enum pg_status proof_store_head_at(struct pg_connection *c, const char *stream, int64_t seq,
                                   uint64_t *leaf, uint64_t *round, bool *found, char *err,
                                   size_t errlen) __attribute__((warn_unused_result));

/* A merkle_node_fn over auditrail.chain_tree: ud is a proof_tree_reader,
 * whose status and err say why a read failed. */
struct proof_tree_reader {
    struct pg_connection *c;
    enum pg_status st;
    char err[256];
};
int proof_store_node(void *ud, unsigned level, uint64_t idx, uint8_t out[MERKLE_HASH_LEN]);

#endif
