/* Fingerprints and stream ids (DESIGN.md §2): OpenSSL SHA-256 over a fixed,
 * documented byte layout so that the id is stable across restarts. */
#include "agent/stream_id.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/hashchain.h"

size_t stream_fp_length(const uint8_t *head, size_t n, bool final)
{
    size_t i = 0;
    while (i < n && head[i] == '\n')
        i++;
    if (i < n) {
        const uint8_t *nl = memchr(head + i, '\n', n - i);
        if (nl)
            return (size_t)(nl - head) + 1;
    }
    if (n >= STREAM_FP_CAP)
        return STREAM_FP_CAP;
    return final ? n : 0;
}

void stream_fp_compute(const uint8_t *head, size_t len, uint8_t out[STREAM_FP_LEN])
{
    SHA256(head, len, out);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

void stream_id_compute(const char *source_name, uint64_t dev, uint64_t ino, uint64_t btime,
                       const uint8_t fp[STREAM_FP_LEN], uint64_t fp_len, uint64_t generation,
                       char out_hex[2 * STREAM_ID_LEN + 1])
{
    static const char tag[] = "auditrail:stream:v1";
    uint8_t nums[40], md[SHA256_DIGEST_LENGTH];
    put_be64(nums, dev);
    put_be64(nums + 8, ino);
    put_be64(nums + 16, btime);
    put_be64(nums + 24, fp_len);
    put_be64(nums + 32, generation);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, tag, sizeof(tag)); /* includes the NUL separator */
    EVP_DigestUpdate(ctx, source_name, strlen(source_name) + 1);
    EVP_DigestUpdate(ctx, nums, 32);
    EVP_DigestUpdate(ctx, fp, STREAM_FP_LEN);
    EVP_DigestUpdate(ctx, nums + 32, 8);
    EVP_DigestFinal_ex(ctx, md, NULL);
    EVP_MD_CTX_free(ctx);
    hex_encode(md, STREAM_ID_LEN, out_hex);
}

static ssize_t pread_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int stream_fp_read(int fd, bool final, uint8_t fp[STREAM_FP_LEN], size_t *len)
{
    uint8_t head[STREAM_FP_CAP];
    ssize_t n = pread_full(fd, head, sizeof(head));
    if (n < 0)
        return -1;
    size_t l = stream_fp_length(head, (size_t)n, final);
    if (l == 0)
        return 0;
    stream_fp_compute(head, l, fp);
    *len = l;
    return 1;
}

int stream_fp_verify(int fd, const uint8_t fp[STREAM_FP_LEN], size_t len)
{
    uint8_t head[STREAM_FP_CAP], md[STREAM_FP_LEN];
    if (len > sizeof(head))
        return 0;
    ssize_t n = pread_full(fd, head, len);
    if (n < 0)
        return -1;
    if ((size_t)n < len)
        return 0;
    stream_fp_compute(head, len, md);
    return memcmp(md, fp, STREAM_FP_LEN) == 0 ? 1 : 0;
}
