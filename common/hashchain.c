/* The hash chain of DESIGN.md §2 (SHA-256 through OpenSSL's EVP interface)
 * and the hex/UUID spellings that other tools verify byte for byte. */
#include "common/hashchain.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/log.h"

#define GENESIS_PREFIX "auditrail:v1:"

/* SHA-256 over up to three pieces. A digest failure means the crypto library
 * is broken (or FIPS forbids SHA-256, which it does not): there is no useful
 * way to go on, so it aborts like an allocation failure would. */
static void sha256_parts(const void *a, size_t alen, const void *b, size_t blen, const void *c,
                         size_t clen, uint8_t out[CHAIN_HASH_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int outlen = 0;
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        (alen && EVP_DigestUpdate(ctx, a, alen) != 1) ||
        (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
        (clen && EVP_DigestUpdate(ctx, c, clen) != 1) ||
        EVP_DigestFinal_ex(ctx, out, &outlen) != 1 || outlen != CHAIN_HASH_LEN) {
        log_error("hashchain: SHA-256 failed in OpenSSL");
        abort();
    }
    EVP_MD_CTX_free(ctx);
}

void chain_genesis(const char *stream_hex, uint8_t out[CHAIN_HASH_LEN])
{
    sha256_parts(GENESIS_PREFIX, sizeof(GENESIS_PREFIX) - 1, stream_hex, CHAIN_STREAM_HEX_LEN, NULL,
                 0, out);
}

void chain_next(const uint8_t prev[CHAIN_HASH_LEN], uint64_t seq, const void *rec, size_t len,
                uint8_t out[CHAIN_HASH_LEN])
{
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(seq >> (56 - 8 * i));
    sha256_parts(prev, CHAIN_HASH_LEN, be, sizeof(be), rec, len, out);
}

static const char hexdig[] = "0123456789abcdef";

void hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[in[i] >> 4];
        out[2 * i + 1] = hexdig[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void chain_id(const uint8_t hash[CHAIN_HASH_LEN], char out[CHAIN_UUID_LEN + 1])
{
    /* 8-4-4-4-12: dashes after bytes 4, 6, 8 and 10. */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hexdig[hash[i] >> 4];
        *p++ = hexdig[hash[i] & 0x0f];
    }
    *p = '\0';
}
