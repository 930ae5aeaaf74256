/* The signed chain heads without a server: the byte layouts (written out
 * here byte by byte), JSON lines that round-trip and refuse what is
 * malformed or inconsistent, Ed25519 keys (generate into a new 0600 file
 * only, load, sign, verify, refuse another key or an altered message), and
 * which heads verify --against keeps per stream (latest, first not older
 * than the horizon, last older), a forged line never displacing a valid
 * head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aggregator/proof_format.h"
#include "aggregator/proof_heads.h"
#include "aggregator/proof_key.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

#define STREAM "00112233445566778899aabbccddeeff"

static char *dir, *keyf;
static struct proof_key *k;

static void setup(void)
{
    dir = test_tmpdir("proof_format");
    keyf = xasprintf("%s/key.pem", dir);
    char err[256];
    ck_assert_msg(proof_key_generate(keyf, err, sizeof(err)) == 0, "%s", err);
    k = proof_key_load(keyf, false, err, sizeof(err));
    ck_assert_msg(k != NULL, "%s", err);
}

static void teardown(void)
{
    proof_key_free(k);
    test_rmtree(dir);
    free(dir);
    free(keyf);
}

static struct proof_head head(uint64_t round, int64_t seq, int64_t t)
{
    struct proof_head h = {.round = round,
                           .leaf_index = round * 10,
                           .seq = seq,
                           .event_time_us = t,
                           .signed_at_us = t + 5};
    strcpy(h.stream, STREAM);
    for (int i = 0; i < 32; i++)
        h.hash[i] = (uint8_t)(seq + i);
    uint8_t msg[PROOF_HEAD_MSG_LEN];
    proof_head_message(&h, msg);
    ck_assert_int_eq(proof_key_sign(k, msg, sizeof(msg), h.sig), 0);
    return h;
}

START_TEST(layouts_byte_by_byte)
{
    struct proof_head h = {.round = 0x0102030405060708ULL,
                           .seq = 0x1112131415161718LL,
                           .event_time_us = -2,
                           .signed_at_us = 0x2122232425262728LL};
    strcpy(h.stream, STREAM);
    memset(h.hash, 0xAB, 32);
    uint8_t m[PROOF_HEAD_MSG_LEN];
    proof_head_message(&h, m);
    ck_assert_int_eq(PROOF_HEAD_MSG_LEN, 97);
    ck_assert(memcmp(m, "auditrail:head:v1", 17) == 0);
    static const uint8_t round[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ck_assert(memcmp(m + 17, round, 8) == 0);
    static const uint8_t sid[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                    0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    ck_assert(memcmp(m + 25, sid, 16) == 0);
    static const uint8_t seq[8] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
    ck_assert(memcmp(m + 41, seq, 8) == 0);
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(m[49 + i], 0xAB);
    for (int i = 0; i < 7; i++) /* -2 as two's complement */
        ck_assert_int_eq(m[81 + i], 0xFF);
    ck_assert_int_eq(m[88], 0xFE);
    ck_assert_int_eq(m[89], 0x21);
    ck_assert_int_eq(m[96], 0x28);

    struct proof_round r = {.round = 7, .tree_size = 0x0A0B, .signed_at_us = 1};
    memset(r.root, 0xCD, 32);
    uint8_t rm[PROOF_ROUND_MSG_LEN];
    proof_round_message(&r, rm);
    ck_assert_int_eq(PROOF_ROUND_MSG_LEN, 74);
    ck_assert(memcmp(rm, "auditrail:round:v1", 18) == 0);
    ck_assert_int_eq(rm[25], 7);
    ck_assert_int_eq(rm[32], 0x0A);
    ck_assert_int_eq(rm[33], 0x0B);
    ck_assert_int_eq(rm[34], 0xCD);
    ck_assert_int_eq(rm[65], 0xCD);
    ck_assert_int_eq(rm[73], 1);
}
END_TEST

START_TEST(json_lines_round_trip)
{
    struct proof_head h = head(3, 41, 1795651200000000), h2;
    struct proof_round r = {.round = 3, .tree_size = 9, .heads = 2, .signed_at_us = 5}, r2;
    memset(r.root, 7, 32);
    memset(r.sig, 9, 64);
    proof_key_id(k, r.key_id);
    char err[128];
    char *j = proof_head_json(&h);
    ck_assert_ptr_nonnull(strstr(j, "\"event_time\":\"2026-11-26T00:00:00.000000Z\""));
    ck_assert_int_eq(proof_json_parse(j, strlen(j), &h2, &r2, err, sizeof(err)), PROOF_HEAD);
    ck_assert(memcmp(&h, &h2, sizeof(h)) == 0);
    free(j);
    j = proof_round_json(&r);
    ck_assert_int_eq(proof_json_parse(j, strlen(j), &h2, &r2, err, sizeof(err)), PROOF_ROUND);
    ck_assert(memcmp(&r, &r2, sizeof(r)) == 0);
    free(j);

    /* Refused: not JSON, another type, a field missing or malformed, a
     * message that disagrees with the fields, duplicate keys. */
    const char *bad[] = {
        "nope",
        "{\"type\":\"tail\"}",
        "{\"type\":\"head\",\"round\":1,\"leaf\":0,\"stream\":\"" STREAM "\",\"seq\":1}",
        "{\"type\":\"head\",\"round\":1,\"leaf\":0,\"stream\":\"xyz\",\"seq\":1,\"hash\":\"00\"}",
        "{\"type\":\"round\",\"round\":0,\"tree_size\":1}",
        "{\"type\":\"round\",\"type\":\"round\"}",
        NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(proof_json_parse(bad[i], strlen(bad[i]), &h2, &r2, err, sizeof(err)) ==
                          PROOF_BAD,
                      "accepted %s", bad[i]);
    j = proof_head_json(&h);
    char *seq = strstr(j, "\"seq\":41");
    ck_assert_ptr_nonnull(seq);
    seq[7] = '2'; /* seq 42: no longer the message */
    ck_assert_int_eq(proof_json_parse(j, strlen(j), &h2, &r2, err, sizeof(err)), PROOF_BAD);
    ck_assert_ptr_nonnull(strstr(err, "message"));
    free(j);
}
END_TEST

START_TEST(keys)
{
    char err[256];
    struct stat sb;
    ck_assert_int_eq(stat(keyf, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert_int_eq(proof_key_generate(keyf, err, sizeof(err)), -1); /* never overwritten */

    uint8_t sig[64];
    const char msg[] = "auditrail";
    ck_assert_int_eq(proof_key_sign(k, msg, sizeof(msg), sig), 0);
    ck_assert(proof_key_verify(k, msg, sizeof(msg), sig));
    ck_assert(!proof_key_verify(k, msg, sizeof(msg) - 1, sig));
    sig[10] ^= 1;
    ck_assert(!proof_key_verify(k, msg, sizeof(msg), sig));
    sig[10] ^= 1;

    /* The public half, as PEM, loads as a public key that verifies but
     * cannot sign; its id is the private key's. */
    char *pem = proof_key_public_pem(k), *pubf = xasprintf("%s/pub.pem", dir);
    test_write_file(pubf, pem, strlen(pem), false);
    struct proof_key *pub = proof_key_load(pubf, true, err, sizeof(err));
    ck_assert_msg(pub != NULL, "%s", err);
    ck_assert(proof_key_verify(pub, msg, sizeof(msg), sig));
    uint8_t s2[64];
    ck_assert_int_eq(proof_key_sign(pub, msg, sizeof(msg), s2), -1);
    char id1[65], id2[65];
    proof_key_id(k, id1);
    proof_key_id(pub, id2);
    ck_assert_str_eq(id1, id2);
    ck_assert_uint_eq(strlen(id1), 64);
    proof_key_free(pub);
    ck_assert_ptr_null(proof_key_load(pubf, false, err, sizeof(err))); /* not a private key */

    /* Another key does not verify; not a key at all is refused. */
    char *other = xasprintf("%s/other.pem", dir);
    ck_assert_int_eq(proof_key_generate(other, err, sizeof(err)), 0);
    struct proof_key *o = proof_key_load(other, false, err, sizeof(err));
    ck_assert(!proof_key_verify(o, msg, sizeof(msg), sig));
    proof_key_free(o);
    test_write_file(other, "garbage\n", 8, false);
    ck_assert_ptr_null(proof_key_load(other, false, err, sizeof(err)));
    free(other);
    free(pem);
    free(pubf);
}
END_TEST

static void add(struct proof_heads *hs, const struct proof_head *h)
{
    char *j = proof_head_json(h);
    proof_heads_add(hs, j, strlen(j));
    free(j);
}

START_TEST(heads_kept_per_stream)
{
    const int64_t horizon = 1000;
    struct proof_heads *hs = proof_heads_new((const struct proof_key *const[]){k}, 1, horizon);
    struct proof_head a = head(1, 5, 100), b = head(2, 9, 500), c = head(3, 20, 2000),
                      d = head(4, 30, 3000);
    add(hs, &b);
    add(hs, &d);
    add(hs, &a);
    add(hs, &c);
    add(hs, &c); /* published twice */
    /* A forged later head: its signature is someone else's. */
    struct proof_head f = head(5, 99, 4000);
    f.sig[0] ^= 1;
    add(hs, &f);
    proof_heads_add(hs, "not json", 8);
    proof_heads_finish(hs, NULL, NULL);
    const struct proof_heads_stats *st = proof_heads_stats(hs);
    ck_assert_uint_eq(st->lines, 7);
    ck_assert_uint_eq(st->heads, 6);
    ck_assert_uint_eq(st->bad_lines, 1);
    ck_assert_uint_eq(st->bad_signatures, 1);
    ck_assert_uint_eq(st->streams, 1);
    const struct verify_heads *v = proof_heads_view(hs);
    const struct verify_stream_heads *sh = v->lookup(v->ud, STREAM);
    ck_assert_ptr_nonnull(sh);
    ck_assert(sh->latest.set && sh->latest.seq == 30); /* not the forged 99 */
    ck_assert(sh->first_recent.set && sh->first_recent.seq == 20);
    ck_assert(sh->cut_anchor.set && sh->cut_anchor.seq == 9);
    ck_assert(memcmp(sh->latest.hash, d.hash, 32) == 0);
    ck_assert_ptr_null(v->lookup(v->ud, "ffffffffffffffffffffffffffffffff"));
    const char *const *ids;
    ck_assert_uint_eq(v->streams(v->ud, &ids), 1);
    ck_assert_str_eq(ids[0], STREAM);
    proof_heads_free(hs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proof_format");
    TCase *tc = tcase_create("format");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, layouts_byte_by_byte);
    tcase_add_test(tc, json_lines_round_trip);
    tcase_add_test(tc, keys);
    tcase_add_test(tc, heads_kept_per_stream);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
