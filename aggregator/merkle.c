/* RFC 6962 Merkle trees (aggregator/merkle.h): roots and proofs by the
 * RFC's recursive definitions over perfect subtrees read through a
 * callback; verification by RFC 9162's iterative algorithms (independent
 * of the generating code, so that a test of one checks the other). */
#include "aggregator/merkle.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static void sha256(const void *a, size_t al, const void *b, size_t bl, const void *c, size_t cl,
                   uint8_t out[MERKLE_HASH_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, a, al) != 1 || (bl && EVP_DigestUpdate(ctx, b, bl) != 1) ||
        (cl && EVP_DigestUpdate(ctx, c, cl) != 1) || EVP_DigestFinal_ex(ctx, out, &len) != 1)
        abort(); /* OpenSSL without SHA-256: nothing can be proven */
    EVP_MD_CTX_free(ctx);
}

void merkle_leaf_hash(const void *data, size_t len, uint8_t out[MERKLE_HASH_LEN])
{
    static const uint8_t zero = 0x00;
    sha256(&zero, 1, data, len, NULL, 0, out);
}

void merkle_node_hash(const uint8_t l[MERKLE_HASH_LEN], const uint8_t r[MERKLE_HASH_LEN],
                      uint8_t out[MERKLE_HASH_LEN])
{
    static const uint8_t one = 0x01;
    sha256(&one, 1, l, MERKLE_HASH_LEN, r, MERKLE_HASH_LEN, out);
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t split(uint64_t n)
{
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

static unsigned log2_exact(uint64_t n) /* n a power of two */
{
    unsigned l = 0;
    while ((UINT64_C(1) << l) < n)
        l++;
    return l;
}

/* MTH of the leaves [start, start + n); start is aligned as the RFC's
 * recursion from [0, size) makes it. */
static int mth(merkle_node_fn get, void *ud, uint64_t start, uint64_t n,
               uint8_t out[MERKLE_HASH_LEN])
{
    if (n == 0) {
        sha256("", 0, NULL, 0, NULL, 0, out);
        return 0;
    }
    if ((n & (n - 1)) == 0) {
        unsigned level = log2_exact(n);
        return get(ud, level, start >> level, out);
    }
    uint64_t k = split(n);
    uint8_t l[MERKLE_HASH_LEN], r[MERKLE_HASH_LEN];
    if (mth(get, ud, start, k, l) != 0 || mth(get, ud, start + k, n - k, r) != 0)
        return -1;
    merkle_node_hash(l, r, out);
    return 0;
}

int merkle_root(merkle_node_fn get, void *ud, uint64_t n, uint8_t out[MERKLE_HASH_LEN])
{
    return mth(get, ud, 0, n, out);
}

static int push(merkle_node_fn get, void *ud, uint64_t start, uint64_t n,
                uint8_t proof[][MERKLE_HASH_LEN], size_t *len)
{
    if (*len >= MERKLE_MAX_PROOF)
        return -1;
    return mth(get, ud, start, n, proof[(*len)++]);
}

/* PATH(m, D[start:start+n]) */
static int path(merkle_node_fn get, void *ud, uint64_t m, uint64_t start, uint64_t n,
                uint8_t proof[][MERKLE_HASH_LEN], size_t *len)
{
    if (n <= 1)
        return 0;
    uint64_t k = split(n);
    if (m < k)
        return path(get, ud, m, start, k, proof, len) != 0
                   ? -1
                   : push(get, ud, start + k, n - k, proof, len);
    return path(get, ud, m - k, start + k, n - k, proof, len) != 0
               ? -1
               : push(get, ud, start, k, proof, len);
}

int merkle_inclusion_proof(merkle_node_fn get, void *ud, uint64_t m, uint64_t n,
                           uint8_t proof[][MERKLE_HASH_LEN], size_t *len)
{
    *len = 0;
    if (m >= n)
        return -1;
    return path(get, ud, m, 0, n, proof, len);
}

/* SUBPROOF(m, D[start:start+n], b) */
static int subproof(merkle_node_fn get, void *ud, uint64_t m, uint64_t start, uint64_t n, bool b,
                    uint8_t proof[][MERKLE_HASH_LEN], size_t *len)
{
    if (m == n)
        return b ? 0 : push(get, ud, start, n, proof, len);
    uint64_t k = split(n);
    if (m <= k)
        return subproof(get, ud, m, start, k, b, proof, len) != 0
                   ? -1
                   : push(get, ud, start + k, n - k, proof, len);
    return subproof(get, ud, m - k, start + k, n - k, false, proof, len) != 0
               ? -1
               : push(get, ud, start, k, proof, len);
}

int merkle_consistency_proof(merkle_node_fn get, void *ud, uint64_t m, uint64_t n,
                             uint8_t proof[][MERKLE_HASH_LEN], size_t *len)
{
    *len = 0;
    if (m == 0 || m > n)
        return -1;
    return subproof(get, ud, m, 0, n, true, proof, len);
}

bool merkle_verify_inclusion(const uint8_t leaf[MERKLE_HASH_LEN], uint64_t m, uint64_t n,
                             const uint8_t proof[][MERKLE_HASH_LEN], size_t len,
                             const uint8_t root[MERKLE_HASH_LEN])
{
    if (m >= n)
        return false;
    uint64_t fn = m, sn = n - 1;
    uint8_t r[MERKLE_HASH_LEN];
    memcpy(r, leaf, MERKLE_HASH_LEN);
    for (size_t i = 0; i < len; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(proof[i], r, r);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, MERKLE_HASH_LEN) == 0;
}

bool merkle_verify_consistency(uint64_t m, uint64_t n, const uint8_t root_m[MERKLE_HASH_LEN],
                               const uint8_t root_n[MERKLE_HASH_LEN],
                               const uint8_t proof[][MERKLE_HASH_LEN], size_t len)
{
    if (m == 0 || m > n)
        return false;
    if (m == n)
        return len == 0 && memcmp(root_m, root_n, MERKLE_HASH_LEN) == 0;
    if (len == 0)
        return false;
    /* A power-of-two first tree is its own first node: the path starts
     * with root_m. */
    bool pow2 = (m & (m - 1)) == 0;
    size_t i = 0;
    uint8_t fr[MERKLE_HASH_LEN], sr[MERKLE_HASH_LEN];
    memcpy(fr, pow2 ? root_m : proof[0], MERKLE_HASH_LEN);
    memcpy(sr, fr, MERKLE_HASH_LEN);
    if (!pow2)
        i = 1;
    uint64_t fn = m - 1, sn = n - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < len; i++) {
        if (sn == 0)
            return false;
        if ((fn & 1) || fn == sn) {
            merkle_node_hash(proof[i], fr, fr);
            merkle_node_hash(proof[i], sr, sr);
            if (!(fn & 1))
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            merkle_node_hash(sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(fr, root_m, MERKLE_HASH_LEN) == 0 &&
           memcmp(sr, root_n, MERKLE_HASH_LEN) == 0;
}

unsigned merkle_frontier_nodes(uint64_t size, unsigned level[MERKLE_MAX_PROOF],
                               uint64_t idx[MERKLE_MAX_PROOF])
{
    unsigned n = 0;
    uint64_t start = 0;
    for (int l = 63; l >= 0; l--)
        if (size & (UINT64_C(1) << l)) {
            level[n] = (unsigned)l;
            idx[n++] = start >> l;
            start += UINT64_C(1) << l;
        }
    return n;
}

int merkle_frontier_load(struct merkle_frontier *f, uint64_t size, merkle_node_fn get, void *ud)
{
    uint64_t idx[MERKLE_MAX_PROOF];
    memset(f, 0, sizeof(*f));
    f->size = size;
    f->n = merkle_frontier_nodes(size, f->level, idx);
    for (unsigned i = 0; i < f->n; i++)
        if (get(ud, f->level[i], idx[i], f->hash[i]) != 0)
            return -1;
    return 0;
}

void merkle_frontier_append(struct merkle_frontier *f, const uint8_t leaf[MERKLE_HASH_LEN],
                            void (*emit)(void *ud, unsigned level, uint64_t idx,
                                         const uint8_t hash[MERKLE_HASH_LEN]),
                            void *ud)
{
    uint64_t pos = f->size; /* the new leaf's index */
    f->level[f->n] = 0;
    memcpy(f->hash[f->n], leaf, MERKLE_HASH_LEN);
    f->n++;
    if (emit)
        emit(ud, 0, pos, leaf);
    while (f->n >= 2 && f->level[f->n - 1] == f->level[f->n - 2]) {
        unsigned l = f->level[f->n - 1] + 1;
        merkle_node_hash(f->hash[f->n - 2], f->hash[f->n - 1], f->hash[f->n - 2]);
        f->level[f->n - 2] = l;
        f->n--;
        if (emit)
            emit(ud, l, pos >> l, f->hash[f->n - 1]);
    }
    f->size++;
}

void merkle_frontier_root(const struct merkle_frontier *f, uint8_t out[MERKLE_HASH_LEN])
{
    if (f->n == 0) {
        sha256("", 0, NULL, 0, NULL, 0, out);
        return;
    }
    uint8_t acc[MERKLE_HASH_LEN];
    memcpy(acc, f->hash[f->n - 1], MERKLE_HASH_LEN);
    for (unsigned i = f->n - 1; i-- > 0;)
        merkle_node_hash(f->hash[i], acc, acc);
    memcpy(out, acc, MERKLE_HASH_LEN);
}
