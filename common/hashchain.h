/* The hash chain and ids of DESIGN.md §2 — a contract verified by other tools.
 *   prev(seq 0) = SHA-256("auditrail:v1:" || stream_id_hex)
 *   hash        = SHA-256(prev || seq as uint64 big-endian || record bytes)
 *   id          = hash[0..16) formatted as a UUID 8-4-4-4-12 (lower-case hex) */
#ifndef AUDITRAIL_HASHCHAIN_H
#define AUDITRAIL_HASHCHAIN_H

#include <stddef.h>
#include <stdint.h>

#define CHAIN_HASH_LEN       32
#define CHAIN_STREAM_HEX_LEN 32 /* 16 bytes as hex */
#define CHAIN_UUID_LEN       36

/* Thread-safe. Each calling thread keeps one SHA-256 context (freed when the
 * thread exits, or at exit() for the exiting thread), so hashing allocates
 * nothing per call. Abort if OpenSSL cannot compute SHA-256.
 * stream_hex: 32 lower-case hex characters (not necessarily NUL-terminated). */
void chain_genesis(const char *stream_hex, uint8_t out[CHAIN_HASH_LEN]);
void chain_next(const uint8_t prev[CHAIN_HASH_LEN], uint64_t seq, const void *rec, size_t len,
                uint8_t out[CHAIN_HASH_LEN]);
/* out receives 36 characters and a NUL. */
void chain_id(const uint8_t hash[CHAIN_HASH_LEN], char out[CHAIN_UUID_LEN + 1]);
/* Lower-case hex of n bytes into out (2n characters and a NUL). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2n hex characters (either case) into n bytes; -1 if any is
 * not hex. */
int hex_decode(const char *in, size_t n, uint8_t *out);
/* The value of one hex digit (either case), or -1. */
int hex_digit_value(int c);

#endif
