/* One signing round (DESIGN.md §5, README "Proving integrity"), in one
 * transaction under an advisory lock so that only one aggregator signs it:
 * the head of every stream that changed since the last round — (stream,
 * seq, hash, event_time) of its last stored record — is signed with the
 * Ed25519 key, appended to the Merkle tree over every head signed so far,
 * and the tree's new root is signed; heads, round, tree nodes and each
 * stream's latest head are stored. Publishing them to the sinks is the
 * caller's next step (proof_sink.h). */
#ifndef AUDITRAIL_AGGREGATOR_PROOF_ROUND_H
#define AUDITRAIL_AGGREGATOR_PROOF_ROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/pg_conn.h"
#include "aggregator/proof_format.h"
#include "aggregator/proof_key.h"

struct proof_round_result {
    bool signed_round; /* a round was signed and stored (below) */
    bool locked_out;   /* another aggregator is signing: nothing done */
    struct proof_round round;
    struct proof_head *heads; /* heap (proof_round_result_release) */
    size_t nheads;
    size_t skipped; /* changed streams whose last record is not stored: not signed */
    uint64_t read_us, sign_us, store_us; /* where the time went */
};

/* Sign a round at now_us on c (idle). Nothing changed or locked out: PG_OK
 * without a round. A failure leaves nothing stored (err says why). */
enum pg_status proof_round_sign(struct pg_connection *c, const struct proof_key *k, int64_t now_us,
                                struct proof_round_result *res, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void proof_round_result_release(struct proof_round_result *res);

#endif
