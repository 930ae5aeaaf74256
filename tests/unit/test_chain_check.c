/* chain_check without a server: re-sends (against stored rows and within the
 * batch), forks (against stored rows and within the batch), gaps, late gap
 * fills, chain breaks against each kind of predecessor (genesis, last_hash,
 * a stored row, the batch's own row), the lookups it asks for, and several
 * streams interleaved in one batch. The expected hashes are taken from the
 * envelopes the test built, never from the code under test. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/chain_check.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/testutil.h"

#define T0 INT64_C(1795651200000000) /* 2026-11-26T00:00:00Z */

static struct batch b;

static void setup(void)
{
    batch_init(&b, "audit");
}

static void teardown(void)
{
    batch_release(&b);
}

/* Append s's next record (line) at Kafka partition 0, offset = batch index;
 * returns its row index. */
static size_t add(struct tenv_stream *s, const char *line)
{
    struct envelope e;
    tenv_next(s, line, T0, &e);
    batch_add(&b, &e, 0, (int64_t)b.n);
    return b.n - 1;
}

static const uint8_t *hash_of(size_t row)
{
    return b.rows[row].env.hash;
}

static void hex(const uint8_t *h, char out[2 * CHAIN_HASH_LEN + 1])
{
    hex_encode(h, CHAIN_HASH_LEN, out);
}

/* The state as PostgreSQL would hold it after a stream's rows up to s->seq - 1. */
static void set_state(struct chain_check *cc, const struct tenv_stream *s)
{
    ssize_t k = chain_check_find(cc, s->stream);
    ck_assert_int_ge(k, 0);
    chain_check_set_state(cc, (size_t)k, (int64_t)s->seq - 1, s->prev);
}

static size_t stream_ix(struct chain_check *cc, const struct tenv_stream *s)
{
    ssize_t k = chain_check_find(cc, s->stream);
    ck_assert_int_ge(k, 0);
    return (size_t)k;
}

/* The single incident of kind, asserted to exist once. */
static const struct chain_incident *only(struct chain_check *cc, const char *kind)
{
    const struct chain_incident *inc, *found = NULL;
    size_t n = chain_check_incidents(cc, &inc);
    for (size_t i = 0; i < n; i++)
        if (strcmp(inc[i].kind, kind) == 0) {
            ck_assert_msg(!found, "two %s incidents", kind);
            found = &inc[i];
        }
    ck_assert_msg(found, "no %s incident", kind);
    return found;
}

static size_t nincidents(struct chain_check *cc)
{
    const struct chain_incident *inc;
    return chain_check_incidents(cc, &inc);
}

static const char *evidence_str(const struct chain_incident *in, const char *key, char *buf,
                                size_t len)
{
    json_t *j = json_loads(in->evidence, 0, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *v = json_object_get(j, key);
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, len, "(missing)");
    json_decref(j);
    return buf;
}

START_TEST(new_stream_is_stored_without_lookups)
{
    struct tenv_stream s;
    tenv_stream_init(&s, "new");
    for (int i = 0; i < 3; i++)
        add(&s, "line");
    struct chain_check *cc = chain_check_new(&b);
    ck_assert_uint_eq(chain_check_nstreams(cc), 1);
    const struct chain_lookup *l;
    ck_assert_uint_eq(chain_check_lookups(cc, &l), 0); /* nothing stored to compare with */
    chain_check_run(cc);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(chain_check_status(cc)[i], CHAIN_ROW_STORE);
    ck_assert_uint_eq(nincidents(cc), 0);
    const struct chain_stream *st = chain_check_stream(cc, 0);
    ck_assert(st->touched);
    ck_assert(!st->exists);
    ck_assert_int_eq(st->new_seq, 2);
    ck_assert_mem_eq(st->new_hash, hash_of(2), CHAIN_HASH_LEN);
    ck_assert_ptr_eq(st->src, &b.rows[0].env.source);
    ck_assert_int_eq(st->gaps + st->breaks + st->forks, 0);
    chain_check_free(cc);
}
END_TEST

START_TEST(resend_of_stored_rows_is_dropped)
{
    struct tenv_stream s, again;
    tenv_stream_init(&s, "resend");
    again = s;
    uint8_t h[3][CHAIN_HASH_LEN];
    for (int i = 0; i < 3; i++) { /* seq 0..2 are stored; s is then the state */
        struct envelope e;
        tenv_next(&s, "stored", T0, &e);
        memcpy(h[i], e.hash, CHAIN_HASH_LEN);
        envelope_release(&e);
    }
    struct envelope skip; /* seq 0 is not re-sent */
    tenv_next(&again, "stored", T0, &skip);
    envelope_release(&skip);
    size_t r1 = add(&again, "stored");
    size_t r2 = add(&again, "stored");
    size_t r3 = add(&again, "new");
    struct chain_check *cc = chain_check_new(&b);
    set_state(cc, &s);
    const struct chain_lookup *l;
    size_t nl = chain_check_lookups(cc, &l);
    /* seq 1 and 2: their own stored hashes and their predecessors; seq 3
     * needs nothing (its predecessor is last_hash). */
    ck_assert_uint_eq(nl, 4);
    int own = 0, pred = 0;
    for (size_t i = 0; i < nl; i++) {
        ck_assert_int_le(l[i].seq, 2);
        own += !l[i].pred;
        pred += l[i].pred;
        ck_assert_int_eq((int64_t)b.rows[l[i].row].env.seq, l[i].seq + (l[i].pred ? 1 : 0));
    }
    ck_assert_int_eq(own, 2);
    ck_assert_int_eq(pred, 2);
    size_t k = stream_ix(cc, &again);
    for (int i = 0; i < 3; i++)
        chain_check_add_stored(cc, k, i, h[i]);
    for (size_t i = 0; i < nl; i++)
        ck_assert(chain_check_resolved(cc, &l[i]));
    chain_check_run(cc);
    ck_assert_int_eq(chain_check_status(cc)[r1], CHAIN_ROW_RESEND);
    ck_assert_int_eq(chain_check_status(cc)[r2], CHAIN_ROW_RESEND);
    ck_assert_int_eq(chain_check_status(cc)[r3], CHAIN_ROW_STORE);
    ck_assert_uint_eq(chain_check_stats(cc)->resends, 2);
    ck_assert_uint_eq(nincidents(cc), 0);
    const struct chain_stream *st = chain_check_stream(cc, k);
    ck_assert_int_eq(st->new_seq, 3);
    ck_assert_mem_eq(st->new_hash, hash_of(r3), CHAIN_HASH_LEN);
    ck_assert_ptr_eq(st->src, &b.rows[r3].env.source);
    chain_check_free(cc);
}
END_TEST

START_TEST(resend_within_batch_is_dropped)
{
    struct tenv_stream s, twin;
    tenv_stream_init(&s, "twice");
    twin = s;
    size_t a = add(&s, "same");
    size_t c = add(&twin, "same"); /* the same record again (a re-send) */
    struct chain_check *cc = chain_check_new(&b);
    chain_check_run(cc);
    ck_assert_int_eq(chain_check_status(cc)[a], CHAIN_ROW_STORE);
    ck_assert_int_eq(chain_check_status(cc)[c], CHAIN_ROW_RESEND);
    ck_assert_uint_eq(chain_check_stats(cc)->resends, 1);
    ck_assert_uint_eq(chain_check_stats(cc)->forks, 0);
    ck_assert_uint_eq(nincidents(cc), 0);
    chain_check_free(cc);
}
END_TEST

START_TEST(fork_against_stored_row)
{
    struct tenv_stream s, at1;
    tenv_stream_init(&s, "fork-stored");
    uint8_t h[3][CHAIN_HASH_LEN];
    for (int i = 0; i < 3; i++) {
        if (i == 1)
            at1 = s;
        struct envelope e;
        tenv_next(&s, "original", T0, &e);
        memcpy(h[i], e.hash, CHAIN_HASH_LEN);
        envelope_release(&e);
    }
    size_t r = add(&at1, "rewritten"); /* another record 1, prev = stored hash of 0 */
    struct chain_check *cc = chain_check_new(&b);
    set_state(cc, &s);
    size_t k = stream_ix(cc, &s);
    const struct chain_lookup *l;
    size_t nl = chain_check_lookups(cc, &l);
    ck_assert_uint_eq(nl, 2); /* seq 1 itself, seq 0 as its predecessor */
    /* Seq 1's stored row is another record: not settled (an older fork
     * could be elsewhere); nothing is known of seq 0 yet. */
    chain_check_add_stored(cc, k, 1, h[1]);
    for (size_t i = 0; i < nl; i++)
        ck_assert(!chain_check_resolved(cc, &l[i]));
    /* Seq 0 holds the row's prev: the predecessor pair is settled. */
    chain_check_add_stored(cc, k, 0, h[0]);
    for (size_t i = 0; i < nl; i++)
        ck_assert_int_eq(chain_check_resolved(cc, &l[i]), l[i].pred);
    chain_check_run(cc);
    ck_assert_int_eq(chain_check_status(cc)[r], CHAIN_ROW_STORE);
    const struct chain_incident *in = only(cc, "fork");
    char want[2 * CHAIN_HASH_LEN + 1], buf[64];
    hex(h[1], want);
    ck_assert_str_eq(in->expected, want);
    hex(hash_of(r), want);
    ck_assert_str_eq(in->actual, want);
    ck_assert_int_eq(in->seq, 1);
    ck_assert_uint_eq(in->stream, k);
    ck_assert_str_eq(evidence_str(in, "other", buf, sizeof(buf)), "stored");
    ck_assert_str_eq(evidence_str(in, "id", buf, sizeof(buf)), b.rows[r].env.id);
    ck_assert_str_eq(evidence_str(in, "topic", buf, sizeof(buf)), "audit");
    ck_assert_str_eq(evidence_str(in, "kafka_offset", buf, sizeof(buf)), "0");
    ck_assert_uint_eq(chain_check_stats(cc)->chain_breaks, 0); /* prev is the stored seq 0 */
    const struct chain_stream *st = chain_check_stream(cc, k);
    ck_assert_int_eq(st->forks, 1);
    ck_assert(st->touched);
    ck_assert_int_eq(st->new_seq, 2); /* below the head: the head stays */
    ck_assert_mem_eq(st->new_hash, h[2], CHAIN_HASH_LEN);
    chain_check_free(cc);
}
END_TEST

START_TEST(fork_within_batch)
{
    struct tenv_stream s, other;
    tenv_stream_init(&s, "fork-batch");
    other = s;
    size_t a = add(&s, "first");
    size_t c = add(&other, "second"); /* same seq 0, another record */
    struct chain_check *cc = chain_check_new(&b);
    chain_check_run(cc);
    ck_assert_int_eq(chain_check_status(cc)[a], CHAIN_ROW_STORE);
    ck_assert_int_eq(chain_check_status(cc)[c], CHAIN_ROW_STORE);
    const struct chain_incident *in = only(cc, "fork");
    char want[2 * CHAIN_HASH_LEN + 1], buf[64];
    hex(hash_of(a), want);
    ck_assert_str_eq(in->expected, want);
    hex(hash_of(c), want);
    ck_assert_str_eq(in->actual, want);
    ck_assert_str_eq(evidence_str(in, "other", buf, sizeof(buf)), "batch");
    /* The head follows the first record at the new seq. */
    ck_assert_mem_eq(chain_check_stream(cc, 0)->new_hash, hash_of(a), CHAIN_HASH_LEN);
    ck_assert_uint_eq(chain_check_stats(cc)->chain_breaks, 0);
    chain_check_free(cc);
}
END_TEST

START_TEST(gap_is_recorded)
{
    struct tenv_stream s;
    tenv_stream_init(&s, "gap");
    add(&s, "r0");
    add(&s, "r1");
    struct envelope skip;
    for (int i = 2; i <= 4; i++) { /* 2..4 never arrive */
        tenv_next(&s, "lost", T0, &skip);
        envelope_release(&skip);
    }
    size_t r5 = add(&s, "r5");
    size_t r6 = add(&s, "r6");
    struct chain_check *cc = chain_check_new(&b);
    chain_check_run(cc);
    const struct chain_incident *in = only(cc, "gap");
    char buf[64];
    ck_assert_str_eq(in->expected, "2");
    ck_assert_str_eq(in->actual, "5");
    ck_assert_int_eq(in->seq, 5);
    ck_assert_str_eq(evidence_str(in, "missing_from", buf, sizeof(buf)), "2");
    ck_assert_str_eq(evidence_str(in, "missing_to", buf, sizeof(buf)), "4");
    ck_assert_str_eq(evidence_str(in, "id", buf, sizeof(buf)), b.rows[r5].env.id);
    /* Seq 4 is unknown: no chain check for 5, so no break. */
    ck_assert_uint_eq(chain_check_stats(cc)->chain_breaks, 0);
    ck_assert_uint_eq(nincidents(cc), 1);
    const struct chain_stream *st = chain_check_stream(cc, 0);
    ck_assert_int_eq(st->gaps, 1);
    ck_assert_int_eq(st->new_seq, 6);
    ck_assert_mem_eq(st->new_hash, hash_of(r6), CHAIN_HASH_LEN);
    chain_check_free(cc);

    /* A stream first seen at seq 3 has a gap from 0. */
    batch_clear(&b);
    struct tenv_stream late;
    tenv_stream_init(&late, "late start");
    late.seq = 3;
    add(&late, "r3");
    cc = chain_check_new(&b);
    chain_check_run(cc);
    in = only(cc, "gap");
    ck_assert_str_eq(in->expected, "0");
    ck_assert_str_eq(in->actual, "3");
    ck_assert_uint_eq(chain_check_stats(cc)->chain_breaks, 0);
    chain_check_free(cc);
}
END_TEST

START_TEST(late_gap_fill_is_stored_quietly)
{
    struct tenv_stream s;
    tenv_stream_init(&s, "fill");
    struct envelope e[7];
    for (int i = 0; i < 7; i++)
        tenv_next(&s, "rec", T0, &e[i]);
    /* 0, 1, 5, 6 are stored (the gap was recorded then); 2..4 arrive now. */
    for (int i = 2; i <= 4; i++)
        batch_add(&b, &e[i], 0, i);
    struct chain_check *cc = chain_check_new(&b);
    set_state(cc, &s); /* last_seq 6 */
    size_t k = stream_ix(cc, &s);
    const struct chain_lookup *l;
    size_t nl = chain_check_lookups(cc, &l);
    ck_assert_uint_eq(nl, 6); /* 2, 3, 4 themselves; 1, 2, 3 as predecessors */
    int stored[] = {0, 1, 5, 6};
    for (int i = 0; i < 4; i++)
        chain_check_add_stored(cc, k, stored[i], e[stored[i]].hash);
    for (size_t i = 0; i < nl; i++) /* only seq 1 (the predecessor of 2) is stored */
        ck_assert_int_eq(chain_check_resolved(cc, &l[i]), l[i].pred && l[i].seq == 1);
    chain_check_run(cc);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(chain_check_status(cc)[i], CHAIN_ROW_STORE);
    ck_assert_uint_eq(nincidents(cc), 0);
    const struct chain_stream *st = chain_check_stream(cc, k);
    ck_assert(st->touched);
    ck_assert_int_eq(st->new_seq, 6); /* the head does not move back */
    ck_assert_mem_eq(st->new_hash, e[6].hash, CHAIN_HASH_LEN);
    chain_check_free(cc);
    for (int i = 0; i < 7; i++)
        envelope_release(&e[i]);
}
END_TEST

/* A break, checked for its expected hash and where that came from. */
static void assert_break(struct chain_check *cc, const uint8_t *expected, const uint8_t *actual,
                         const char *from)
{
    const struct chain_incident *in = only(cc, "chain_break");
    char want[2 * CHAIN_HASH_LEN + 1], buf[64];
    hex(expected, want);
    ck_assert_str_eq(in->expected, want);
    hex(actual, want);
    ck_assert_str_eq(in->actual, want);
    ck_assert_str_eq(evidence_str(in, "expected_from", buf, sizeof(buf)), from);
    ck_assert_uint_eq(chain_check_stats(cc)->chain_breaks, 1);
}

START_TEST(chain_break_against_genesis)
{
    struct tenv_stream s;
    tenv_stream_init(&s, "bad genesis");
    uint8_t genesis[CHAIN_HASH_LEN];
    memcpy(genesis, s.prev, CHAIN_HASH_LEN);
    memset(s.prev, 0x11, CHAIN_HASH_LEN);
    size_t r = add(&s, "r0");
    struct chain_check *cc = chain_check_new(&b);
    chain_check_run(cc);
    assert_break(cc, genesis, b.rows[r].env.prev, "genesis");
    ck_assert_int_eq(chain_check_status(cc)[r], CHAIN_ROW_STORE); /* kept, recorded */
    ck_assert_int_eq(chain_check_stream(cc, 0)->breaks, 1);
    chain_check_free(cc);
}
END_TEST

START_TEST(chain_break_against_last_hash)
{
    struct tenv_stream s;
    tenv_stream_init(&s, "bad continuation");
    for (int i = 0; i < 3; i++) {
        struct envelope e;
        tenv_next(&s, "stored", T0, &e);
        envelope_release(&e);
    }
    struct tenv_stream state = s;
    memset(s.prev, 0x33, CHAIN_HASH_LEN);
    size_t r = add(&s, "r3");
    struct chain_check *cc = chain_check_new(&b);
    set_state(cc, &state);
    const struct chain_lookup *l;
    ck_assert_uint_eq(chain_check_lookups(cc, &l), 0);
    chain_check_run(cc);
    assert_break(cc, state.prev, b.rows[r].env.prev, "last_hash");
    chain_check_free(cc);
}
END_TEST

START_TEST(chain_break_against_stored_row)
{
    struct tenv_stream s;
    tenv_stream_init(&s, "bad fill");
    struct envelope e[6];
    for (int i = 0; i < 6; i++)
        tenv_next(&s, "rec", T0, &e[i]);
    /* Seq 2 arrives late with a prev that is not the stored seq 1. */
    struct tenv_stream bad = {.seq = 2};
    memcpy(bad.stream, s.stream, sizeof(bad.stream));
    memset(bad.prev, 0x44, CHAIN_HASH_LEN);
    size_t r = add(&bad, "other 2");
    struct chain_check *cc = chain_check_new(&b);
    set_state(cc, &s); /* last_seq 5 */
    size_t k = stream_ix(cc, &s);
    chain_check_add_stored(cc, k, 1, e[1].hash);
    chain_check_add_stored(cc, k, 2, e[2].hash);
    chain_check_run(cc);
    assert_break(cc, e[1].hash, b.rows[r].env.prev, "stored");
    only(cc, "fork"); /* another record 2 than the stored one, too */
    chain_check_free(cc);
    for (int i = 0; i < 6; i++)
        envelope_release(&e[i]);
}
END_TEST

START_TEST(chain_break_against_batch_predecessor)
{
    struct tenv_stream s;
    tenv_stream_init(&s, "bad in batch");
    size_t r0 = add(&s, "c0");
    memset(s.prev, 0x22, CHAIN_HASH_LEN);
    size_t r1 = add(&s, "c1");
    struct chain_check *cc = chain_check_new(&b);
    chain_check_run(cc);
    assert_break(cc, hash_of(r0), b.rows[r1].env.prev, "batch");
    chain_check_free(cc);
}
END_TEST

START_TEST(interleaved_streams)
{
    struct tenv_stream a, c, d;
    tenv_stream_init(&a, "stream a");
    tenv_stream_init(&c, "stream c");
    tenv_stream_init(&d, "stream d");
    /* c goes first in the batch; d skips seq 1; a has a record twice. */
    size_t c0 = add(&c, "c0");
    size_t a0 = add(&a, "a0");
    struct tenv_stream a_again = a;
    size_t d0 = add(&d, "d0");
    size_t a1 = add(&a, "a1");
    size_t c1 = add(&c, "c1");
    struct envelope skip;
    tenv_next(&d, "lost", T0, &skip);
    envelope_release(&skip);
    size_t d2 = add(&d, "d2");
    size_t a1b = add(&a_again, "a1"); /* a re-send of a1 */
    size_t c2 = add(&c, "c2");
    struct chain_check *cc = chain_check_new(&b);
    ck_assert_uint_eq(chain_check_nstreams(cc), 3);
    ck_assert_int_eq(chain_check_find(cc, c.stream), 0); /* order of first appearance */
    ck_assert_int_eq(chain_check_find(cc, a.stream), 1);
    ck_assert_int_eq(chain_check_find(cc, d.stream), 2);
    ck_assert_int_eq(chain_check_find(cc, "00000000000000000000000000000000"), -1);
    ck_assert_int_eq(chain_check_find(cc, "short"), -1);
    chain_check_run(cc);
    const uint8_t *st = chain_check_status(cc);
    size_t stored[] = {c0, a0, d0, a1, c1, d2, c2};
    for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++)
        ck_assert_int_eq(st[stored[i]], CHAIN_ROW_STORE);
    ck_assert_int_eq(st[a1b], CHAIN_ROW_RESEND);
    const struct chain_stats *cs = chain_check_stats(cc);
    ck_assert_uint_eq(cs->resends, 1);
    ck_assert_uint_eq(cs->gaps, 1);
    ck_assert_uint_eq(cs->forks + cs->chain_breaks, 0);
    const struct chain_incident *in = only(cc, "gap");
    ck_assert_uint_eq(in->stream, 2);
    ck_assert_int_eq(in->seq, 2);
    const struct chain_stream *sc = chain_check_stream(cc, 0), *sa = chain_check_stream(cc, 1),
                              *sd = chain_check_stream(cc, 2);
    ck_assert_int_eq(sc->new_seq, 2);
    ck_assert_mem_eq(sc->new_hash, hash_of(c2), CHAIN_HASH_LEN);
    ck_assert_int_eq(sa->new_seq, 1);
    ck_assert_mem_eq(sa->new_hash, hash_of(a1), CHAIN_HASH_LEN);
    ck_assert_int_eq(sd->new_seq, 2);
    ck_assert_int_eq(sd->gaps, 1);
    ck_assert_int_eq(sa->gaps + sc->gaps, 0);
    chain_check_free(cc);
}
END_TEST

START_TEST(empty_batch)
{
    struct chain_check *cc = chain_check_new(&b);
    const struct chain_lookup *l;
    ck_assert_uint_eq(chain_check_lookups(cc, &l), 0);
    chain_check_run(cc);
    ck_assert_uint_eq(chain_check_nstreams(cc), 0);
    ck_assert_uint_eq(nincidents(cc), 0);
    chain_check_free(cc);
    chain_check_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chain_check");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, new_stream_is_stored_without_lookups);
    tcase_add_test(tc, resend_of_stored_rows_is_dropped);
    tcase_add_test(tc, resend_within_batch_is_dropped);
    tcase_add_test(tc, fork_against_stored_row);
    tcase_add_test(tc, fork_within_batch);
    tcase_add_test(tc, gap_is_recorded);
    tcase_add_test(tc, late_gap_fill_is_stored_quietly);
    tcase_add_test(tc, chain_break_against_genesis);
    tcase_add_test(tc, chain_break_against_last_hash);
    tcase_add_test(tc, chain_break_against_stored_row);
    tcase_add_test(tc, chain_break_against_batch_predecessor);
    tcase_add_test(tc, interleaved_streams);
    tcase_add_test(tc, empty_batch);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
