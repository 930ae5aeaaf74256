/* The rules on batches (aggregator/batch.h): the flush rule (max_events,
 * max_bytes, max_ms, whichever first), splitting for isolation, cutting
 * by partition for the parallel writers, and removing rows (isolation and
 * the Redis dedupe layer). */
#include "aggregator/batch.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/testutil.h"

static const struct aggr_batch_conf bc = {
    .max_events = 100, .max_bytes = 4096, .max_ms = 200, .max_message_bytes = 1 << 20};

START_TEST(empty_is_never_due)
{
    ck_assert(!batch_due(&bc, 0, 0, 0, 1000000));
}
END_TEST

START_TEST(events_trigger)
{
    ck_assert(!batch_due(&bc, 99, 10, 1000, 1000));
    ck_assert(batch_due(&bc, 100, 10, 1000, 1000));
}
END_TEST

START_TEST(bytes_trigger)
{
    ck_assert(!batch_due(&bc, 1, 4095, 1000, 1000));
    ck_assert(batch_due(&bc, 1, 4096, 1000, 1000));
}
END_TEST

START_TEST(age_trigger)
{
    ck_assert(!batch_due(&bc, 1, 10, 1000, 1199));
    ck_assert(batch_due(&bc, 1, 10, 1000, 1200));
}
END_TEST

START_TEST(offsets_only_batch_is_due_by_age)
{
    /* Every message a re-send or DLQ'd: no bytes, but the offsets must
     * still be committed. */
    ck_assert(batch_due(&bc, 3, 0, 1000, 1200));
}
END_TEST

/* Rows of two partitions interleaved; partition 1 also has trailing
 * messages with no row (DLQ'd or re-sends) up to offset 20. */
START_TEST(split_preserves_offsets)
{
    struct tenv_stream s0, s1;
    tenv_stream_init(&s0, "split0");
    tenv_stream_init(&s1, "split1");
    struct batch b;
    batch_init(&b, "t");
    /* p0: offsets 100..103 (expected 100); p1: offsets 7, 9, 11 (expected 5) */
    int64_t p0 = 100, p1[] = {7, 9, 11};
    for (int i = 0; i < 3; i++) {
        struct envelope e;
        tenv_next(&s0, "a", 1, &e);
        batch_add(&b, &e, 0, p0);
        batch_advance(&b, 0, 100, p0 + 1);
        p0++;
        tenv_next(&s1, "b", 1, &e);
        batch_add(&b, &e, 1, p1[i]);
        batch_advance(&b, 1, 5, p1[i] + 1);
    }
    batch_advance(&b, 1, 5, 20);
    batch_advance(&b, 2, 40, 45); /* a partition with no rows at all */
    ck_assert_uint_eq(b.n, 6);

    struct batch lo, hi;
    batch_split(&b, 3, &lo, &hi); /* rows p0@100, p1@7, p0@101 | p1@9, p0@102, p1@11 */
    ck_assert_uint_eq(lo.n, 3);
    ck_assert_uint_eq(hi.n, 3);
    ck_assert_ptr_nonnull(lo.rows[0].env.line);
    struct batch_offset *o;
    o = batch_offset_find(&lo, 0);
    ck_assert_int_eq(o->expected_offset, 100);
    ck_assert_int_eq(o->next_offset, 102);
    o = batch_offset_find(&lo, 1);
    ck_assert_int_eq(o->expected_offset, 5);
    ck_assert_int_eq(o->next_offset, 8);
    ck_assert_ptr_null(batch_offset_find(&lo, 2));
    o = batch_offset_find(&hi, 0);
    ck_assert_int_eq(o->expected_offset, 102);
    ck_assert_int_eq(o->next_offset, 103);
    o = batch_offset_find(&hi, 1);
    ck_assert_int_eq(o->expected_offset, 8);
    ck_assert_int_eq(o->next_offset, 20);
    o = batch_offset_find(&hi, 2);
    ck_assert_int_eq(o->expected_offset, 40);
    ck_assert_int_eq(o->next_offset, 45);
    /* Rows moved in order. */
    ck_assert_int_eq(lo.rows[2].kafka_offset, 101);
    ck_assert_int_eq(hi.rows[0].kafka_offset, 9);
    ck_assert_int_eq(hi.rows[0].env.seq, 1);
    ck_assert_ptr_null(b.rows[0].env.line);
    /* And back (a part that could not be written): the rows in order. */
    batch_unsplit(&b, &lo, &hi);
    ck_assert_uint_eq(b.n, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_ptr_nonnull(b.rows[i].env.line);
    ck_assert_int_eq(b.rows[2].kafka_offset, 101);
    ck_assert_int_eq(b.rows[3].env.seq, 1);
    ck_assert_int_eq(b.rows[3].kafka_partition, 1);
    ck_assert_int_eq(batch_offset_find(&b, 1)->next_offset, 20);
    batch_release(&b);
}
END_TEST

START_TEST(remove_keeps_order_bytes_and_offsets)
{
    struct tenv_stream s;
    tenv_stream_init(&s, "remove");
    struct batch b;
    batch_init(&b, "t");
    const char *lines[] = {"a", "bb", "ccc", "dddd", "eeeee"};
    for (int i = 0; i < 5; i++) {
        struct envelope e;
        tenv_next(&s, lines[i], 1, &e);
        batch_add(&b, &e, 0, 10 + i);
    }
    batch_advance(&b, 0, 10, 15);
    ck_assert_uint_eq(b.bytes, 15);
    uint8_t drop[] = {1, 0, 1, 0, 0};
    ck_assert_uint_eq(batch_remove(&b, drop), 2);
    ck_assert_uint_eq(b.n, 3);
    ck_assert_uint_eq(b.bytes, 2 + 4 + 5);
    ck_assert_int_eq(b.rows[0].kafka_offset, 11);
    ck_assert_int_eq(b.rows[1].kafka_offset, 13);
    ck_assert_int_eq(b.rows[2].kafka_offset, 14);
    ck_assert_mem_eq(b.rows[2].env.line, "eeeee", 5);
    ck_assert_ptr_null(b.rows[3].env.line); /* moved-from slots are empty */
    ck_assert_ptr_null(b.rows[4].env.line);
    const struct batch_offset *o = batch_offset_find(&b, 0);
    ck_assert_int_eq(o->expected_offset, 10); /* the removed messages stay handled */
    ck_assert_int_eq(o->next_offset, 15);
    uint8_t none[] = {0, 0, 0};
    ck_assert_uint_eq(batch_remove(&b, none), 0);
    uint8_t all[] = {1, 1, 1};
    ck_assert_uint_eq(batch_remove(&b, all), 3);
    ck_assert_uint_eq(b.n, 0);
    ck_assert_uint_eq(b.bytes, 0);
    batch_release(&b);
}
END_TEST

/* n rows of stream st into partition p from offset first (expected first). */
static void add_rows(struct batch *b, struct tenv_stream *st, int32_t p, int64_t first, int n)
{
    for (int i = 0; i < n; i++) {
        struct envelope e;
        tenv_next(st, "row", 1, &e);
        batch_add(b, &e, p, first + i);
        batch_advance(b, p, first, first + i + 1);
    }
}

/* The part of subs[0..k) holding partition p, asserting it is only one. */
static int part_of(const struct batch *subs, size_t k, int32_t p)
{
    int found = -1;
    for (size_t i = 0; i < k; i++) {
        bool has = batch_offset_find((struct batch *)&subs[i], p) != NULL;
        for (size_t r = 0; r < subs[i].n; r++)
            if (subs[i].rows[r].kafka_partition == p)
                ck_assert_msg(has, "part %zu has rows of partition %d but not its offsets", i, p);
        if (has) {
            ck_assert_msg(found < 0, "partition %d in two parts", p);
            found = (int)i;
        }
    }
    ck_assert_msg(found >= 0, "partition %d in no part", p);
    return found;
}

/* Four partitions, one stream each, 10/5/3/2 rows, one partition with
 * offsets only: two parts, every partition in one, rows balanced (largest
 * first onto the lightest), each partition's rows in order, offsets as the
 * batch had them; merged back, the batch is whole again. */
START_TEST(split_parts_by_partition)
{
    struct tenv_stream st[4];
    const char *names[] = {"pa", "pb", "pc", "pd"};
    int counts[] = {10, 5, 3, 2};
    struct batch b;
    batch_init(&b, "t");
    for (int i = 0; i < 4; i++) {
        tenv_stream_init(&st[i], names[i]);
        add_rows(&b, &st[i], i, 100 * i, counts[i]);
    }
    batch_advance(&b, 7, 70, 75); /* no rows: every message a re-send */
    struct batch subs[4];
    ck_assert_uint_eq(batch_split_parts(&b, 2, subs), 2);
    ck_assert_uint_eq(subs[0].n + subs[1].n, 20);
    ck_assert_uint_eq(subs[0].n, 10); /* 10 | 5 + 3 + 2 */
    ck_assert_uint_eq(subs[1].n, 10);
    for (int p = 0; p < 4; p++) {
        int k = part_of(subs, 2, p);
        const struct batch_offset *o = batch_offset_find(&subs[k], p);
        ck_assert_int_eq(o->expected_offset, 100 * p);
        ck_assert_int_eq(o->next_offset, 100 * p + counts[p]);
        int64_t last = -1;
        for (size_t r = 0; r < subs[k].n; r++)
            if (subs[k].rows[r].kafka_partition == p) {
                ck_assert_int_gt(subs[k].rows[r].kafka_offset, last);
                last = subs[k].rows[r].kafka_offset;
            }
        ck_assert_int_eq(last, 100 * p + counts[p] - 1);
    }
    int k7 = part_of(subs, 2, 7);
    ck_assert_int_eq(batch_offset_find(&subs[k7], 7)->next_offset, 75);
    ck_assert_ptr_null(b.rows[0].env.line); /* the rows moved */

    batch_clear(&b);
    batch_merge(&b, &subs[1]);
    batch_merge(&b, &subs[0]);
    ck_assert_uint_eq(b.n, 20);
    ck_assert_uint_eq(b.noffsets, 5);
    for (size_t r = 0; r < b.n; r++)
        ck_assert_ptr_nonnull(b.rows[r].env.line);
    ck_assert_int_eq(batch_offset_find(&b, 3)->next_offset, 302);
    batch_release(&b);
}
END_TEST

/* A stream with rows in two partitions (its key moved, e.g. partitions were
 * added) keeps them in one part: its rows never go to two concurrent
 * transactions. */
START_TEST(split_parts_keeps_a_stream_whole)
{
    struct tenv_stream moved, other;
    tenv_stream_init(&moved, "moved");
    tenv_stream_init(&other, "other");
    struct batch b;
    batch_init(&b, "t");
    add_rows(&b, &moved, 0, 10, 3);
    add_rows(&b, &other, 1, 20, 4);
    add_rows(&b, &moved, 2, 30, 2);
    struct batch subs[4];
    ck_assert_uint_eq(batch_split_parts(&b, 4, subs), 2);
    ck_assert_int_eq(part_of(subs, 2, 0), part_of(subs, 2, 2));
    ck_assert_int_ne(part_of(subs, 2, 0), part_of(subs, 2, 1));
    ck_assert_uint_eq(subs[part_of(subs, 2, 0)].n, 5);
    batch_release(&subs[0]);
    batch_release(&subs[1]);
    batch_release(&b);

    /* Linked all through: no cut, the batch untouched. */
    batch_init(&b, "t");
    add_rows(&b, &moved, 0, 13, 1);
    add_rows(&b, &moved, 1, 24, 1);
    ck_assert_uint_eq(batch_split_parts(&b, 4, subs), 1);
    ck_assert_ptr_nonnull(b.rows[0].env.line);
    /* One connection, or one partition: no cut either. */
    add_rows(&b, &other, 2, 40, 2);
    ck_assert_uint_eq(batch_split_parts(&b, 1, subs), 1);
    ck_assert_uint_eq(b.n, 4);
    batch_release(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggr_batching");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, empty_is_never_due);
    tcase_add_test(tc, events_trigger);
    tcase_add_test(tc, bytes_trigger);
    tcase_add_test(tc, age_trigger);
    tcase_add_test(tc, offsets_only_batch_is_due_by_age);
    tcase_add_test(tc, split_preserves_offsets);
    tcase_add_test(tc, remove_keeps_order_bytes_and_offsets);
    tcase_add_test(tc, split_parts_by_partition);
    tcase_add_test(tc, split_parts_keeps_a_stream_whole);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
