/* The byte layouts that are signed (a contract: README "Proving
 * integrity" shows how to check them with the openssl command line), and
 * the JSON lines that carry them to the proof topic and file.
 *
 *   head  = "auditrail:head:v1" (17 ASCII bytes) || round (u64 BE)
 *           || stream id (16 bytes) || seq (u64 BE) || hash (32 bytes)
 *           || event_time (i64 BE, µs since the Unix epoch)
 *           || signed_at (i64 BE, µs)                          = 97 bytes
 *   round = "auditrail:round:v1" (18 ASCII bytes) || round (u64 BE)
 *           || tree_size (u64 BE) || root (32 bytes)
 *           || signed_at (i64 BE, µs)                          = 74 bytes
 *
 * A head is signed as is (Ed25519) and is also the data of its Merkle leaf
 * (leaf hash = SHA-256(0x00 || head)); a round signs the root of the tree
 * over every head signed so far (tree_size leaves). */
#ifndef AUDITRAIL_AGGREGATOR_PROOF_FORMAT_H
#define AUDITRAIL_AGGREGATOR_PROOF_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/proof_key.h"
#include "common/hashchain.h"

#define PROOF_HEAD_DOMAIN   "auditrail:head:v1"
#define PROOF_ROUND_DOMAIN  "auditrail:round:v1"
#define PROOF_HEAD_MSG_LEN  (17 + 8 + 16 + 8 + CHAIN_HASH_LEN + 8 + 8)
#define PROOF_ROUND_MSG_LEN (18 + 8 + 8 + CHAIN_HASH_LEN + 8)

struct proof_head {
    uint64_t round, leaf_index;
    char stream[CHAIN_STREAM_HEX_LEN + 1]; /* 32 lower-case hex */
    int64_t seq;
    uint8_t hash[CHAIN_HASH_LEN];
    int64_t event_time_us, signed_at_us;
    uint8_t sig[PROOF_SIG_LEN];
};

struct proof_round {
    uint64_t round, tree_size, heads; /* heads: signed in this round */
    int64_t signed_at_us;
    uint8_t root[CHAIN_HASH_LEN];
    uint8_t sig[PROOF_SIG_LEN];
    char key_id[PROOF_KEY_ID_LEN + 1];
};

/* The signed bytes. The stream id must be 32 hex characters. */
void proof_head_message(const struct proof_head *h, uint8_t out[PROOF_HEAD_MSG_LEN]);
void proof_round_message(const struct proof_round *r, uint8_t out[PROOF_ROUND_MSG_LEN]);

/* One JSON object on one line (no newline; heap): the fields, "message"
 * (the signed bytes, hex) and "signature" (hex). */
char *proof_head_json(const struct proof_head *h);
char *proof_round_json(const struct proof_round *r);

enum proof_kind { PROOF_BAD = 0, PROOF_HEAD, PROOF_ROUND };
/* Parse one line; PROOF_BAD with err when it is neither, a field is
 * missing or malformed, or its "message" disagrees with its fields. */
enum proof_kind proof_json_parse(const char *line, size_t len, struct proof_head *h,
                                 struct proof_round *r, char *err, size_t errlen);

#endif
