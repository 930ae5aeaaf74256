/* Stream identity (DESIGN.md §2): a fingerprint of a file's first bytes and
 * the 16-byte stream id derived from source_name, device, inode, fingerprint
 * and truncation generation. The fingerprint is always used together with
 * device + inode, never alone (LESSONS.md: vector #5833). */
#ifndef AUDITRAIL_AGENT_STREAM_ID_H
#define AUDITRAIL_AGENT_STREAM_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STREAM_FP_CAP 1024 /* at most this many leading bytes are fingerprinted */
#define STREAM_FP_LEN 32   /* SHA-256 */
#define STREAM_ID_LEN 16

/* How many leading bytes of a file make its fingerprint, given its first
 * `n` bytes (n <= STREAM_FP_CAP) and whether the file is final (no more bytes
 * will come): up to and including the first '\n' that ends a non-empty line,
 * else STREAM_FP_CAP bytes once that many exist, else (final) all n bytes.
 * Returns 0 while it cannot be known yet. Deterministic on the bytes alone,
 * so a restart computes the same length. */
size_t stream_fp_length(const uint8_t *head, size_t n, bool final);

/* SHA-256 of head[0, len). */
void stream_fp_compute(const uint8_t *head, size_t len, uint8_t out[STREAM_FP_LEN]);

/* id = SHA-256("auditrail:stream:v1\0" || source_name || '\0' || dev (u64 BE)
 *      || ino (u64 BE) || btime (u64 BE) || fp_len (u64 BE) || fp
 *      || generation (u64 BE))[0, 16)
 * as 32 lower-case hex characters and a NUL. btime is the file's birth time
 * in ns (statx) or 0 where the filesystem has none: it separates a reused
 * inode from the old file even when their first lines are equal. */
void stream_id_compute(const char *source_name, uint64_t dev, uint64_t ino, uint64_t btime,
                       const uint8_t fp[STREAM_FP_LEN], uint64_t fp_len, uint64_t generation,
                       char out_hex[2 * STREAM_ID_LEN + 1]);

/* Read the fingerprint of the open file fd (pread, position untouched).
 * Returns 1 and fills fp/len when known, 0 when not yet (too few bytes), -1
 * on a read error (errno set). */
int stream_fp_read(int fd, bool final, uint8_t fp[STREAM_FP_LEN], size_t *len);

/* Does the file fd still start with the fingerprinted bytes? 1 yes, 0 no, -1
 * read error. */
int stream_fp_verify(int fd, const uint8_t fp[STREAM_FP_LEN], size_t len);

#endif
