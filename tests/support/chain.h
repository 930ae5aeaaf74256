/* Test records on a hash chain (DESIGN.md §2) and their Kafka envelopes
 * (§3), computed with OpenSSL and jansson only: no product code, so a bug
 * shared by the agent's chain and the aggregator's check cannot cancel out
 * in a test that compares against these values. */
#ifndef AUDITRAIL_TEST_CHAIN_H
#define AUDITRAIL_TEST_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#define TCHAIN_HASH_LEN 32

/* SHA-256("auditrail:v1:" || stream_hex). */
void tchain_genesis(const char *stream_hex, uint8_t out[TCHAIN_HASH_LEN]);
/* SHA-256(prev || seq as uint64 big-endian || record). */
void tchain_hash(const uint8_t prev[TCHAIN_HASH_LEN], uint64_t seq, const void *rec, size_t len,
                 uint8_t out[TCHAIN_HASH_LEN]);
/* The first 16 bytes of hash as a lower-case UUID (36 chars + NUL). */
void tchain_uuid(const uint8_t hash[TCHAIN_HASH_LEN], char out[37]);
/* Lower-case hex of n bytes into out (2n chars + NUL). */
void tchain_hex(const uint8_t *p, size_t n, char *out);

/* One stream's chain state, as the agent keeps it. */
struct tchain {
    char stream[33];
    uint64_t seq;
    uint8_t prev[TCHAIN_HASH_LEN];
};

/* Stream id = hex of the first 16 bytes of SHA-256(name); seq 0; genesis. */
void tchain_init(struct tchain *c, const char *name);

/* One record: what an agent sends, and what PostgreSQL must store. */
struct trec {
    char stream[33];
    uint64_t seq;
    uint8_t prev[TCHAIN_HASH_LEN], hash[TCHAIN_HASH_LEN];
    char id[37];
    uint8_t *line; /* heap, NUL after len bytes */
    size_t len;
    int64_t time_us;
    int index;  /* which stream of a trecs_make set (0 otherwise) */
    char *json; /* the envelope: heap, NUL-terminated */
    size_t json_len;
};

/* The next record of c: line (len bytes) with its hash and id, time and
 * read time time_us, format raw, source {name "test", host "testhost"},
 * offset seq * 100. Advances c. Release with trec_release. */
void tchain_next(struct tchain *c, const void *line, size_t len, int64_t time_us, struct trec *out);
void trec_release(struct trec *r);

/* A set of records. */
struct trecs {
    struct trec *v;
    size_t n, cap;
};

/* Append a record (moved: the set owns its heap members). */
void trecs_push(struct trecs *s, struct trec *r);
/* nstreams streams named "<tag>-<j>", n records each, interleaved (record i
 * of every stream, then i + 1): record i of stream j is
 * {"actor":"u<j>","action":"read","n":<i>} (plus "pad" of pad 'x' bytes
 * when pad > 0) at t0_us + i ms, and has index j. Appends to s. */
void trecs_make(struct trecs *s, const char *tag, int nstreams, int n, int64_t t0_us, size_t pad);
void trecs_release(struct trecs *s);

#endif
