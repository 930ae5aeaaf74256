/* The hash chain of DESIGN.md §2 (SHA-256 through OpenSSL's EVP interface)
 * and the hex/UUID spellings that other tools verify byte for byte. */
#include "common/hashchain.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/log.h"

#define GENESIS_PREFIX "auditrail:v1:"

/* OpenSSL 3 looks SHA-256 up by name on every EVP_sha256() init and a fresh
 * EVP_MD_CTX costs allocations: together ~20 % of the agent's CPU per
 * record (bench/agent). So the digest is fetched once per process and each
 * thread keeps one context, re-initialised per hash (EVP_DigestInit_ex2 on a
 * context already holding this digest reuses its state instead of
 * reallocating it). The context is freed by the key's destructor when its
 * thread exits, and for the thread that calls exit() (normally the main
 * thread, whose key destructors never run) by an atexit handler. The fetched
 * digest lives as long as the process: other threads may still hash while
 * exit() runs. */
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static pthread_key_t sha_key;
static EVP_MD *sha_md;

static _Noreturn void sha_fail(void)
{
    log_error("hashchain: SHA-256 failed in OpenSSL");
    abort();
}

static void sha_ctx_destroy(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha_at_exit(void)
{
    EVP_MD_CTX *ctx = pthread_getspecific(sha_key);
    if (ctx) {
        (void)pthread_setspecific(sha_key, NULL);
        EVP_MD_CTX_free(ctx);
    }
}

static void sha_init(void)
{
    /* Fetching first initialises libcrypto, which registers its own atexit
     * cleanup; ours, registered after it, therefore runs before it. */
    sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!sha_md || pthread_key_create(&sha_key, sha_ctx_destroy) != 0 || atexit(sha_at_exit) != 0)
        sha_fail();
}

static EVP_MD_CTX *sha_ctx(void)
{
    if (pthread_once(&sha_once, sha_init) != 0)
        sha_fail();
    EVP_MD_CTX *ctx = pthread_getspecific(sha_key);
    if (!ctx) {
        ctx = EVP_MD_CTX_new();
        if (!ctx || pthread_setspecific(sha_key, ctx) != 0)
            sha_fail();
    }
    return ctx;
}

/* SHA-256 over up to three pieces. A digest failure means the crypto library
 * is broken (or FIPS forbids SHA-256, which it does not): there is no useful
 * way to go on, so it aborts like an allocation failure would. */
static void sha256_parts(const void *a, size_t alen, const void *b, size_t blen, const void *c,
                         size_t clen, uint8_t out[CHAIN_HASH_LEN])
{
    EVP_MD_CTX *ctx = sha_ctx();
    unsigned int outlen = 0;
    if (EVP_DigestInit_ex2(ctx, sha_md, NULL) != 1 ||
        (alen && EVP_DigestUpdate(ctx, a, alen) != 1) ||
        (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
        (clen && EVP_DigestUpdate(ctx, c, clen) != 1) ||
        EVP_DigestFinal_ex(ctx, out, &outlen) != 1 || outlen != CHAIN_HASH_LEN)
        sha_fail();
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

int hex_digit_value(int c)
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
        int hi = hex_digit_value((unsigned char)in[2 * i]),
            lo = hex_digit_value((unsigned char)in[2 * i + 1]);
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
