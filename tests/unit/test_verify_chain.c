/* verify_chain without a server: an intact chain verifies; each kind of
 * tampering (raw, hash, prev, a deleted, forked or reordered record, a bad
 * genesis) is reported once, where it happened, with the stored and the
 * computed hash; the stream's state row, the neighbours of a time range,
 * retention cuts and signed heads are compared at its end. The chain is
 * built here with OpenSSL's SHA256() directly, not with the code under test. */
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/verify_chain.h"
#include "tests/support/testutil.h"

#define N      8
#define STREAM "0123456789abcdef0123456789abcdef"
#define T0     INT64_C(1795651200000000) /* 2026-11-26T00:00:00Z */

struct rec {
    int64_t seq;
    uint8_t hash[32], prev[32], id[16];
    char raw[32];
    int64_t t;
};

static struct rec recs[N];

static void sha_link(const uint8_t prev[32], int64_t seq, const char *raw, uint8_t out[32])
{
    uint8_t buf[32 + 8 + 32];
    memcpy(buf, prev, 32);
    for (int i = 0; i < 8; i++)
        buf[32 + i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
    size_t n = strlen(raw);
    memcpy(buf + 40, raw, n);
    SHA256(buf, 40 + n, out);
}

/* recs[0..N): a valid chain of STREAM. */
static void build(void)
{
    uint8_t prev[32];
    const char *g = "auditrail:v1:" STREAM;
    SHA256((const uint8_t *)g, strlen(g), prev);
    for (int i = 0; i < N; i++) {
        struct rec *r = &recs[i];
        r->seq = i;
        snprintf(r->raw, sizeof(r->raw), "record %d", i);
        memcpy(r->prev, prev, 32);
        sha_link(r->prev, i, r->raw, r->hash);
        memcpy(r->id, r->hash, 16);
        r->t = T0 + i * INT64_C(1000000);
        memcpy(prev, r->hash, 32);
    }
}

/* Findings collected from the callback. */
#define MAXF 32
static struct verify_finding found[MAXF];
static size_t nfound;

static void collect(void *ud, const struct verify_finding *f)
{
    (void)ud;
    ck_assert_uint_lt(nfound, MAXF);
    found[nfound] = *f;
    found[nfound].stream = NULL; /* valid during the callback only */
    nfound++;
}

static struct vchain vc;

static void setup(void)
{
    build();
    nfound = 0;
}

static void begin(const struct verify_stream_heads *h)
{
    vchain_begin(&vc, STREAM, strlen(STREAM), h, collect, NULL, 100);
}

static void feed(const struct rec *r)
{
    struct vrow row = {.seq = r->seq,
                       .hash = r->hash,
                       .prev = r->prev,
                       .id = r->id,
                       .raw = r->raw,
                       .raw_len = strlen(r->raw),
                       .event_time_us = r->t};
    vchain_row(&vc, &row);
}

static void feed_range(int from, int to) /* recs[from..to) */
{
    for (int i = from; i < to; i++)
        feed(&recs[i]);
}

/* The expectation of a full verify whose state row says recs[last]. */
static struct vchain_expect full_state(int last)
{
    struct vchain_expect e = {.full = true,
                              .have_state = true,
                              .last_seq = last,
                              .prev_state = -1,
                              .next_state = -1,
                              .from_us = INT64_MIN,
                              .to_us = INT64_MAX,
                              .horizon_us = INT64_MIN};
    memcpy(e.last_hash, recs[last].hash, 32);
    return e;
}

static void hexs(const uint8_t *h, size_t n, char *out)
{
    static const char *d = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[h[i] >> 4];
        out[2 * i + 1] = d[h[i] & 15];
    }
    out[2 * n] = '\0';
}

/* The only finding, of this kind at seq..seq_end. */
static const struct verify_finding *only(enum verify_kind k, int64_t seq, int64_t seq_end)
{
    ck_assert_msg(nfound == 1, "%zu findings, wanted one %s", nfound, verify_kind_name(k));
    ck_assert_str_eq(verify_kind_name(found[0].kind), verify_kind_name(k));
    ck_assert_int_eq(found[0].seq, seq);
    ck_assert_int_eq(found[0].seq_end, seq_end);
    return &found[0];
}

static void assert_hex(const char *got, const uint8_t *want, size_t n)
{
    char w[65];
    hexs(want, n, w);
    ck_assert_str_eq(got, w);
}

START_TEST(intact_chain_has_no_findings)
{
    begin(NULL);
    feed_range(0, N);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 0);
    ck_assert_uint_eq(vc.problems, 0);
    ck_assert_uint_eq(vc.nrows, N);
}
END_TEST

START_TEST(tampered_raw_is_one_hash_mismatch)
{
    recs[3].raw[0] = 'R';
    begin(NULL);
    feed_range(0, N);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    const struct verify_finding *f = only(VERIFY_HASH_MISMATCH, 3, 3);
    assert_hex(f->stored, recs[3].hash, 32);
    uint8_t want[32];
    sha_link(recs[3].prev, 3, recs[3].raw, want); /* what the tampered row hashes to */
    assert_hex(f->computed, want, 32);
    ck_assert_int_eq(f->event_time_us, recs[3].t);
}
END_TEST

START_TEST(tampered_hash_breaks_the_next_link)
{
    uint8_t orig[32];
    memcpy(orig, recs[3].hash, 32);
    recs[3].hash[5] ^= 1;
    begin(NULL);
    feed_range(0, N);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 3);
    ck_assert_int_eq(found[0].kind, VERIFY_HASH_MISMATCH);
    ck_assert_int_eq(found[0].seq, 3);
    assert_hex(found[0].stored, recs[3].hash, 32);
    assert_hex(found[0].computed, orig, 32);
    ck_assert_int_eq(found[1].kind, VERIFY_ID_MISMATCH); /* byte 5 is inside the id */
    ck_assert_int_eq(found[2].kind, VERIFY_BROKEN_LINK);
    ck_assert_int_eq(found[2].seq, 4);
    assert_hex(found[2].stored, recs[4].prev, 32);
    assert_hex(found[2].computed, recs[3].hash, 32);
}
END_TEST

START_TEST(tampered_prev_is_a_mismatch_and_a_broken_link)
{
    recs[5].prev[0] ^= 0x80;
    begin(NULL);
    feed_range(0, N);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 2);
    ck_assert_int_eq(found[0].kind, VERIFY_HASH_MISMATCH);
    ck_assert_int_eq(found[0].seq, 5);
    ck_assert_int_eq(found[1].kind, VERIFY_BROKEN_LINK);
    ck_assert_int_eq(found[1].seq, 5);
    assert_hex(found[1].stored, recs[5].prev, 32);
    assert_hex(found[1].computed, recs[4].hash, 32);
}
END_TEST

START_TEST(deleted_records_are_a_gap)
{
    begin(NULL);
    feed_range(0, 2);
    feed_range(5, N); /* 2, 3, 4 deleted */
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    only(VERIFY_GAP, 2, 4);
}
END_TEST

START_TEST(inserted_record_is_a_fork)
{
    struct rec extra = recs[4];
    strcpy(extra.raw, "injected");
    sha_link(extra.prev, 4, extra.raw, extra.hash);
    memcpy(extra.id, extra.hash, 16);
    /* Ordered by (seq, hash) as the cursor reads them. */
    bool extra_first = memcmp(extra.hash, recs[4].hash, 32) < 0;
    begin(NULL);
    feed_range(0, 4);
    feed(extra_first ? &extra : &recs[4]);
    feed(extra_first ? &recs[4] : &extra);
    feed_range(5, N);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    const struct verify_finding *f = only(VERIFY_FORK, 4, 4);
    assert_hex(f->stored, extra_first ? recs[4].hash : extra.hash, 32);
    /* The next record links to the genuine one: no broken link. */
}
END_TEST

START_TEST(reordered_records_break_their_hashes)
{
    /* Swap the seq of records 2 and 3 (a DBA reordering two rows). */
    struct rec a = recs[2], b2 = recs[3];
    a.seq = 3;
    b2.seq = 2;
    begin(NULL);
    feed_range(0, 2);
    feed(&b2);
    feed(&a);
    feed_range(4, N);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    ck_assert_uint_ge(nfound, 2);
    ck_assert_uint_eq(vc.by_kind[VERIFY_HASH_MISMATCH], 2);
    ck_assert_uint_ge(vc.by_kind[VERIFY_BROKEN_LINK], 1);
}
END_TEST

START_TEST(bad_genesis_and_bad_stream)
{
    recs[0].prev[31] ^= 1;
    sha_link(recs[0].prev, 0, recs[0].raw, recs[0].hash); /* self-consistent row */
    memcpy(recs[0].id, recs[0].hash, 16);
    memcpy(recs[1].prev, recs[0].hash, 32);
    sha_link(recs[1].prev, 1, recs[1].raw, recs[1].hash);
    memcpy(recs[1].id, recs[1].hash, 16);
    begin(NULL);
    feed_range(0, 2);
    struct vchain_expect e = full_state(1);
    vchain_end(&vc, &e);
    only(VERIFY_BAD_GENESIS, 0, 0);

    nfound = 0;
    vchain_begin(&vc, "NOT-HEX", 7, NULL, collect, NULL, 100);
    ck_assert_uint_eq(nfound, 1);
    ck_assert_int_eq(found[0].kind, VERIFY_BAD_STREAM);
}
END_TEST

START_TEST(state_row_is_compared)
{
    /* The last two records deleted: the state row still says N-1. */
    begin(NULL);
    feed_range(0, N - 2);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    const struct verify_finding *f = only(VERIFY_TAIL_MISSING, N - 2, N - 1);
    assert_hex(f->computed, recs[N - 1].hash, 32);

    /* A record appended beyond the state row. */
    nfound = 0;
    begin(NULL);
    feed_range(0, N);
    e = full_state(N - 2);
    vchain_end(&vc, &e);
    only(VERIFY_HEAD_MISMATCH, N - 1, N - 1);

    /* The state row's hash altered. */
    nfound = 0;
    begin(NULL);
    feed_range(0, N);
    e = full_state(N - 1);
    e.last_hash[0] ^= 1;
    vchain_end(&vc, &e);
    only(VERIFY_HEAD_MISMATCH, N - 1, N - 1);

    /* Records without a state row. */
    nfound = 0;
    begin(NULL);
    feed_range(0, N);
    e = full_state(N - 1);
    e.have_state = false;
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 1);
    ck_assert_int_eq(found[0].kind, VERIFY_HEAD_MISMATCH);

    /* No record at all. */
    nfound = 0;
    begin(NULL);
    e = full_state(N - 1);
    vchain_end(&vc, &e);
    only(VERIFY_TAIL_MISSING, 0, N - 1);
}
END_TEST

START_TEST(missing_start_is_a_gap_unless_cut_by_retention)
{
    begin(NULL);
    feed_range(3, N);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    only(VERIFY_GAP, 0, 2);

    /* The stream began before the horizon: a note. */
    nfound = 0;
    begin(NULL);
    feed_range(3, N);
    e.began_before_horizon = true;
    vchain_end(&vc, &e);
    only(VERIFY_RETENTION_CUT, 0, 2);
    ck_assert_uint_eq(vc.problems, 0);
    ck_assert_uint_eq(vc.notes, 1);
}
END_TEST

static struct verify_head head_of(int i)
{
    struct verify_head h = {.set = true, .seq = recs[i].seq, .event_time_us = recs[i].t};
    memcpy(h.hash, recs[i].hash, 32);
    return h;
}

START_TEST(signed_heads)
{
    struct verify_stream_heads h = {.latest = head_of(6), .first_recent = head_of(2)};
    begin(&h);
    feed_range(0, N);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 0);

    /* The tail rewritten from seq 4 with recomputed hashes, the state row
     * too: only the signed head tells. */
    for (int i = 4; i < N; i++) {
        if (i > 4)
            memcpy(recs[i].prev, recs[i - 1].hash, 32);
        snprintf(recs[i].raw, sizeof(recs[i].raw), "forged %d", i);
        sha_link(recs[i].prev, i, recs[i].raw, recs[i].hash);
        memcpy(recs[i].id, recs[i].hash, 16);
    }
    nfound = 0;
    begin(&h);
    feed_range(0, N);
    e = full_state(N - 1);
    vchain_end(&vc, &e);
    const struct verify_finding *f = only(VERIFY_SIGNED_MISMATCH, 6, 6);
    assert_hex(f->stored, recs[6].hash, 32);
    assert_hex(f->computed, h.latest.hash, 32);

    /* A deleted tail (state row adjusted): the signed head is missing. */
    build();
    nfound = 0;
    begin(&h);
    feed_range(0, 5);
    e = full_state(4);
    vchain_end(&vc, &e);
    only(VERIFY_SIGNED_MISSING, 6, 6);

    /* ...unless it is older than the retention horizon. */
    nfound = 0;
    begin(&h);
    feed_range(0, 5);
    e.horizon_us = recs[7].t;
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 0);
}
END_TEST

START_TEST(retention_cut_anchored_by_signed_head)
{
    /* Records 0..2 dropped; a head signed at seq 2 anchors the cut. */
    struct verify_stream_heads h = {.latest = head_of(7), .cut_anchor = head_of(2)};
    begin(&h);
    feed_range(3, N);
    struct vchain_expect e = full_state(N - 1);
    e.horizon_us = recs[3].t; /* seq 0..2 are older than the horizon */
    vchain_end(&vc, &e);
    const struct verify_finding *f = only(VERIFY_RETENTION_CUT, 0, 2);
    assert_hex(f->computed, recs[2].hash, 32);

    /* The first kept record's prev rewritten: the anchor disagrees. */
    nfound = 0;
    struct verify_stream_heads h2 = {.cut_anchor = head_of(2)};
    recs[3].prev[0] ^= 1;
    sha_link(recs[3].prev, 3, recs[3].raw, recs[3].hash);
    memcpy(recs[3].id, recs[3].hash, 16);
    begin(&h2);
    feed(&recs[3]);
    e = full_state(3);
    e.horizon_us = recs[3].t;
    vchain_end(&vc, &e);
    only(VERIFY_BROKEN_LINK, 3, 3);

    /* Without the anchor, the latest head reached from the cut proves it. */
    build();
    nfound = 0;
    struct verify_stream_heads h3 = {.latest = head_of(7)};
    begin(&h3);
    feed_range(3, N);
    e = full_state(N - 1);
    vchain_end(&vc, &e);
    only(VERIFY_RETENTION_CUT, 0, 2);
}
END_TEST

START_TEST(time_range_checks_its_neighbours)
{
    struct vchain_expect e = full_state(N - 1);
    e.full = false;
    begin(NULL);
    feed_range(2, 5);
    ck_assert_int_eq(vchain_need_prev(&vc, &e), 1);
    ck_assert_int_eq(vchain_need_next(&vc, &e), 5);
    e.prev_state = 1;
    memcpy(e.prev_hash, recs[1].hash, 32);
    e.next_state = 1;
    memcpy(e.next_prev, recs[5].prev, 32);
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 0);

    /* The record before was altered; the one after is gone. */
    nfound = 0;
    begin(NULL);
    feed_range(2, 5);
    e.prev_hash[0] ^= 1;
    e.next_state = 0;
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 2);
    ck_assert_int_eq(found[0].kind, VERIFY_BROKEN_LINK);
    ck_assert_int_eq(found[0].seq, 2);
    ck_assert_int_eq(found[1].kind, VERIFY_GAP);
    ck_assert_int_eq(found[1].seq, 5);
}
END_TEST

START_TEST(findings_beyond_the_cap_are_counted)
{
    for (int i = 0; i < N; i++)
        recs[i].raw[0] = 'X';
    vchain_begin(&vc, STREAM, strlen(STREAM), NULL, collect, NULL, 3);
    feed_range(0, N);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 3);
    ck_assert_uint_eq(vc.by_kind[VERIFY_HASH_MISMATCH], N);
    ck_assert_uint_eq(vc.problems, N);
}
END_TEST

/* Scan mode: a run of recs[a..b). */
static struct vrun run_of(int a, int b)
{
    struct vrun r = {
        .first_seq = a, .last_seq = b - 1, .first_time_us = recs[a].t, .rows = (uint64_t)(b - a)};
    memcpy(r.first_prev, recs[a].prev, 32);
    memcpy(r.last_hash, recs[b - 1].hash, 32);
    return r;
}

START_TEST(scan_mode_runs)
{
    /* Runs found in any order join into one chain. */
    begin(NULL);
    struct vrun a = run_of(4, 8), b = run_of(0, 2), c = run_of(2, 4);
    vchain_add_run(&vc, &a);
    vchain_add_run(&vc, &b);
    ck_assert_uint_eq(vc.nruns, 2);
    vchain_add_run(&vc, &c);
    ck_assert_uint_eq(vc.nruns, 1);
    vchain_close_runs(&vc);
    struct vchain_expect e = full_state(N - 1);
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 0);
    ck_assert_uint_eq(vc.nrows, N);
    vchain_release(&vc);

    /* Where two runs meet with the wrong prev: a broken link there; a run
     * missing between others: a gap at close. */
    nfound = 0;
    begin(NULL);
    struct vrun x = run_of(0, 3), y = run_of(3, 5), z = run_of(6, 8);
    y.first_prev[0] ^= 1;
    vchain_add_run(&vc, &z);
    vchain_add_run(&vc, &x);
    vchain_add_run(&vc, &y);
    vchain_close_runs(&vc);
    e = full_state(N - 1);
    vchain_end(&vc, &e);
    ck_assert_uint_eq(nfound, 2);
    ck_assert_int_eq(found[0].kind, VERIFY_BROKEN_LINK);
    ck_assert_int_eq(found[0].seq, 3);
    assert_hex(found[0].computed, recs[2].hash, 32);
    ck_assert_int_eq(found[1].kind, VERIFY_GAP);
    ck_assert_int_eq(found[1].seq, 5);
    ck_assert_int_eq(found[1].seq_end, 5);
    vchain_release(&vc);

    /* Overlapping runs are remembered for the fork lookup. */
    nfound = 0;
    begin(NULL);
    struct vrun p = run_of(0, N), q = run_of(4, 5);
    vchain_add_run(&vc, &p);
    vchain_add_run(&vc, &q);
    ck_assert_uint_eq(vc.nruns, 1);
    ck_assert_uint_eq(vc.novl, 1);
    ck_assert_int_eq(vc.ovl[0].lo, 4);
    ck_assert_int_eq(vc.ovl[0].hi, 4);
    uint8_t other[32] = {1};
    vchain_fork(&vc, 4, recs[4].hash, other);
    ck_assert_uint_eq(nfound, 1);
    ck_assert_int_eq(found[0].kind, VERIFY_FORK);
    vchain_release(&vc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("verify_chain");
    TCase *tc = tcase_create("chain");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, intact_chain_has_no_findings);
    tcase_add_test(tc, tampered_raw_is_one_hash_mismatch);
    tcase_add_test(tc, tampered_hash_breaks_the_next_link);
    tcase_add_test(tc, tampered_prev_is_a_mismatch_and_a_broken_link);
    tcase_add_test(tc, deleted_records_are_a_gap);
    tcase_add_test(tc, inserted_record_is_a_fork);
    tcase_add_test(tc, reordered_records_break_their_hashes);
    tcase_add_test(tc, bad_genesis_and_bad_stream);
    tcase_add_test(tc, state_row_is_compared);
    tcase_add_test(tc, missing_start_is_a_gap_unless_cut_by_retention);
    tcase_add_test(tc, signed_heads);
    tcase_add_test(tc, retention_cut_anchored_by_signed_head);
    tcase_add_test(tc, time_range_checks_its_neighbours);
    tcase_add_test(tc, findings_beyond_the_cap_are_counted);
    tcase_add_test(tc, scan_mode_runs);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
