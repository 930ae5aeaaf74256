/* A reusable SHA-256 context for the hash chain. */
#include "agent/chain_hasher.h"

#include <stdlib.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "common/xmalloc.h"

struct chain_hasher {
    EVP_MD *md;
    EVP_MD_CTX *ctx;
};

static void fail(void)
{
    log_error("chain_hasher: SHA-256 failed in OpenSSL");
    abort();
}

struct chain_hasher *chain_hasher_new(void)
{
    struct chain_hasher *h = xcalloc(1, sizeof(*h));
    h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    h->ctx = EVP_MD_CTX_new();
    if (!h->md || !h->ctx)
        fail();
    return h;
}

void chain_hasher_free(struct chain_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
    free(h);
}

void chain_hasher_next(struct chain_hasher *h, const uint8_t prev[CHAIN_HASH_LEN], uint64_t seq,
                       const void *rec, size_t len, uint8_t out[CHAIN_HASH_LEN])
{
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(seq >> (56 - 8 * i));
    unsigned int outlen = 0;
    if (EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1 ||
        EVP_DigestUpdate(h->ctx, prev, CHAIN_HASH_LEN) != 1 ||
        EVP_DigestUpdate(h->ctx, be, sizeof(be)) != 1 ||
        (len && EVP_DigestUpdate(h->ctx, rec, len) != 1) ||
        EVP_DigestFinal_ex(h->ctx, out, &outlen) != 1 || outlen != CHAIN_HASH_LEN)
        fail();
}
