/* aggregator/merkle against vectors: the roots of Certificate Transparency's
 * test suite (written out here), and the roots, inclusion and consistency
 * proofs of tests/fixtures/merkle/gen.py (a Python reference over hashlib)
 * for every tree of up to 17 leaves; the verifiers accept them and refuse
 * every altered proof, root, index or size; the frontier appends leaf by
 * leaf, emits exactly the perfect subtrees, and reloads from them. The
 * perfect subtrees are computed here with OpenSSL's SHA256() directly. */
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/merkle.h"
#include "tests/fixtures/merkle/vectors.h"
#include "tests/support/testutil.h"

static uint8_t leaf_data[MV_LEAVES][32];
static size_t leaf_len[MV_LEAVES];

static void unhex(const char *h, uint8_t *out, size_t *len)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    if (len)
        *len = n;
}

static void setup(void)
{
    for (int i = 0; i < MV_LEAVES; i++)
        unhex(mv_leaves[i], leaf_data[i], &leaf_len[i]);
}

/* The perfect subtree (level, idx) of the vector leaves, by definition. */
static void subtree(unsigned level, uint64_t idx, uint8_t out[32])
{
    if (level == 0) {
        uint8_t buf[33];
        buf[0] = 0;
        memcpy(buf + 1, leaf_data[idx], leaf_len[idx]);
        SHA256(buf, 1 + leaf_len[idx], out);
        return;
    }
    uint8_t buf[65];
    buf[0] = 1;
    subtree(level - 1, 2 * idx, buf + 1);
    subtree(level - 1, 2 * idx + 1, buf + 33);
    SHA256(buf, 65, out);
}

static int calls;
static int get_node(void *ud, unsigned level, uint64_t idx, uint8_t out[32])
{
    (void)ud;
    calls++;
    ck_assert_uint_lt((idx + 1) << level, MV_LEAVES + 1);
    subtree(level, idx, out);
    return 0;
}

static void assert_hash(const uint8_t *h, const char *want)
{
    uint8_t w[32];
    unhex(want, w, NULL);
    ck_assert_msg(memcmp(h, w, 32) == 0, "hash differs from %s", want);
}

START_TEST(certificate_transparency_roots)
{
    /* certificate-transparency/cpp/merkletree/merkle_tree_test.cc */
    static const char *const ct[] = {
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    };
    uint8_t r[32];
    ck_assert_int_eq(merkle_root(get_node, NULL, 0, r), 0);
    assert_hash(r, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    for (int n = 1; n <= 8; n++) {
        ck_assert_int_eq(merkle_root(get_node, NULL, (uint64_t)n, r), 0);
        assert_hash(r, ct[n - 1]);
    }
    uint8_t l[32];
    merkle_leaf_hash(leaf_data[0], leaf_len[0], l);
    assert_hash(l, ct[0]);
}
END_TEST

START_TEST(roots_of_every_size)
{
    uint8_t r[32];
    for (int n = 0; n <= MV_LEAVES; n++) {
        calls = 0;
        ck_assert_int_eq(merkle_root(get_node, NULL, (uint64_t)n, r), 0);
        assert_hash(r, mv_roots[n]);
        ck_assert_int_le(calls, 5); /* one stored subtree per bit of n */
    }
}
END_TEST

static void proof_bytes(const struct mv_proof *p, uint8_t out[][32])
{
    for (int i = 0; i < p->len; i++)
        unhex(p->h[i], out[i], NULL);
}

START_TEST(inclusion_proofs)
{
    for (size_t t = 0; t < sizeof(mv_inclusion) / sizeof(mv_inclusion[0]); t++) {
        const struct mv_proof *v = &mv_inclusion[t];
        uint8_t got[MERKLE_MAX_PROOF][32], want[8][32], root[32], leaf[32];
        size_t len = 99;
        ck_assert_int_eq(
            merkle_inclusion_proof(get_node, NULL, (uint64_t)v->m, (uint64_t)v->n, got, &len), 0);
        ck_assert_int_eq(len, v->len);
        proof_bytes(v, want);
        for (int i = 0; i < v->len; i++)
            ck_assert_msg(memcmp(got[i], want[i], 32) == 0, "leaf %d of %d: hash %d", v->m, v->n,
                          i);
        unhex(mv_roots[v->n], root, NULL);
        subtree(0, (uint64_t)v->m, leaf);
        ck_assert(merkle_verify_inclusion(leaf, (uint64_t)v->m, (uint64_t)v->n, want, len, root));
        /* Refused: another leaf, index, root (the next size's too), a hash
         * altered or cut. (The same path with the same root may verify for
         * another size: the size is bound by the signed root.) */
        leaf[3] ^= 1;
        ck_assert(!merkle_verify_inclusion(leaf, (uint64_t)v->m, (uint64_t)v->n, want, len, root));
        leaf[3] ^= 1;
        if (v->n < MV_LEAVES) { /* the next tree's root */
            uint8_t next[32];
            unhex(mv_roots[v->n + 1], next, NULL);
            ck_assert(!merkle_verify_inclusion(leaf, (uint64_t)v->m, (uint64_t)v->n + 1, want, len,
                                               next));
        }
        if (v->n > 1)
            ck_assert(!merkle_verify_inclusion(leaf, (uint64_t)(v->m ^ 1) % (uint64_t)v->n,
                                               (uint64_t)v->n, want, len, root) ||
                      (v->m ^ 1) % v->n == v->m);
        root[0] ^= 1;
        ck_assert(!merkle_verify_inclusion(leaf, (uint64_t)v->m, (uint64_t)v->n, want, len, root));
        root[0] ^= 1;
        if (len) {
            want[len - 1][31] ^= 1;
            ck_assert(
                !merkle_verify_inclusion(leaf, (uint64_t)v->m, (uint64_t)v->n, want, len, root));
            want[len - 1][31] ^= 1;
            ck_assert(!merkle_verify_inclusion(leaf, (uint64_t)v->m, (uint64_t)v->n, want, len - 1,
                                               root));
        }
    }
    size_t len;
    uint8_t p[MERKLE_MAX_PROOF][32];
    ck_assert_int_eq(merkle_inclusion_proof(get_node, NULL, 5, 5, p, &len), -1);
}
END_TEST

START_TEST(consistency_proofs)
{
    for (size_t t = 0; t < sizeof(mv_consistency) / sizeof(mv_consistency[0]); t++) {
        const struct mv_proof *v = &mv_consistency[t];
        uint8_t got[MERKLE_MAX_PROOF][32], want[8][32], rm[32], rn[32];
        size_t len = 99;
        ck_assert_int_eq(
            merkle_consistency_proof(get_node, NULL, (uint64_t)v->m, (uint64_t)v->n, got, &len), 0);
        ck_assert_int_eq(len, v->len);
        proof_bytes(v, want);
        for (int i = 0; i < v->len; i++)
            ck_assert_msg(memcmp(got[i], want[i], 32) == 0, "%d in %d: hash %d", v->m, v->n, i);
        unhex(mv_roots[v->m], rm, NULL);
        unhex(mv_roots[v->n], rn, NULL);
        ck_assert_msg(merkle_verify_consistency((uint64_t)v->m, (uint64_t)v->n, rm, rn, want, len),
                      "%d in %d refused", v->m, v->n);
        /* Refused: an altered root (either), hash, a cut proof, other sizes. */
        rm[0] ^= 1;
        ck_assert(!merkle_verify_consistency((uint64_t)v->m, (uint64_t)v->n, rm, rn, want, len));
        rm[0] ^= 1;
        rn[9] ^= 1;
        ck_assert(!merkle_verify_consistency((uint64_t)v->m, (uint64_t)v->n, rm, rn, want, len));
        rn[9] ^= 1;
        if (len) {
            want[0][0] ^= 1;
            ck_assert(
                !merkle_verify_consistency((uint64_t)v->m, (uint64_t)v->n, rm, rn, want, len));
            want[0][0] ^= 1;
            ck_assert(
                !merkle_verify_consistency((uint64_t)v->m, (uint64_t)v->n, rm, rn, want, len - 1));
        }
        if (v->m < v->n && v->n < MV_LEAVES) { /* the next tree's root */
            uint8_t next[32];
            unhex(mv_roots[v->n + 1], next, NULL);
            ck_assert(!merkle_verify_consistency((uint64_t)v->m, (uint64_t)v->n + 1, rm, next, want,
                                                 len));
        }
    }
}
END_TEST

/* The frontier: what it emits, stored in a table, serves as the node store. */
static uint8_t store[6][MV_LEAVES][32];
static bool stored[6][MV_LEAVES];

static void emit(void *ud, unsigned level, uint64_t idx, const uint8_t h[32])
{
    (void)ud;
    uint8_t want[32];
    subtree(level, idx, want);
    ck_assert_msg(memcmp(h, want, 32) == 0, "emitted (%u, %llu) is wrong", level,
                  (unsigned long long)idx);
    ck_assert(!stored[level][idx]);
    memcpy(store[level][idx], h, 32);
    stored[level][idx] = true;
}

static int get_stored(void *ud, unsigned level, uint64_t idx, uint8_t out[32])
{
    (void)ud;
    if (!stored[level][idx])
        return -1;
    memcpy(out, store[level][idx], 32);
    return 0;
}

START_TEST(frontier_appends_and_reloads)
{
    memset(stored, 0, sizeof(stored));
    struct merkle_frontier f;
    ck_assert_int_eq(merkle_frontier_load(&f, 0, get_stored, NULL), 0);
    uint8_t r[32];
    merkle_frontier_root(&f, r);
    assert_hash(r, mv_roots[0]);
    for (int n = 0; n < MV_LEAVES; n++) {
        uint8_t leaf[32];
        merkle_leaf_hash(leaf_data[n], leaf_len[n], leaf);
        merkle_frontier_append(&f, leaf, emit, NULL);
        ck_assert_uint_eq(f.size, (uint64_t)n + 1);
        merkle_frontier_root(&f, r);
        assert_hash(r, mv_roots[n + 1]);
        /* Reloaded from the store alone: the same root, and the root and
         * proofs computed from stored nodes. */
        struct merkle_frontier g;
        ck_assert_int_eq(merkle_frontier_load(&g, (uint64_t)n + 1, get_stored, NULL), 0);
        merkle_frontier_root(&g, r);
        assert_hash(r, mv_roots[n + 1]);
        ck_assert_int_eq(merkle_root(get_stored, NULL, (uint64_t)n + 1, r), 0);
        assert_hash(r, mv_roots[n + 1]);
        f = g; /* continue from the reloaded one */
    }
    int nodes = 0;
    for (int l = 0; l < 6; l++)
        for (int i = 0; i < MV_LEAVES; i++)
            nodes += stored[l][i];
    ck_assert_int_eq(nodes, 17 + 8 + 4 + 2 + 1); /* every perfect subtree once */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("merkle");
    TCase *tc = tcase_create("rfc6962");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, certificate_transparency_roots);
    tcase_add_test(tc, roots_of_every_size);
    tcase_add_test(tc, inclusion_proofs);
    tcase_add_test(tc, consistency_proofs);
    tcase_add_test(tc, frontier_appends_and_reloads);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
