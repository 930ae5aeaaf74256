/* The aggregator's dedupe layers before PostgreSQL: in-batch, LRU (marked
 * only after a commit, only committed rows), and Redis being optional. */
#include <stdlib.h>
#include <string.h>

#include "aggregator/batch.h"
#include "aggregator/dedupe.h"
#include "aggregator/redis_store.h"
#include "common/xmalloc.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/testutil.h"

/* A batch of n chained records of one stream. */
static void make_batch(struct batch *b, const char *stream, size_t n)
{
    struct tenv_stream s;
    tenv_stream_init(&s, stream);
    batch_init(b, "t");
    for (size_t i = 0; i < n; i++) {
        struct envelope e;
        char line[32];
        snprintf(line, sizeof(line), "line %zu", i);
        tenv_next(&s, line, 1764186645000000 + (int64_t)i, &e);
        batch_add(b, &e, 0, (int64_t)i);
        batch_advance(b, 0, -1, (int64_t)i + 1);
    }
}

START_TEST(batch_layer)
{
    struct dedupe *d = dedupe_new(16, NULL, NULL, NULL, NULL);
    const char *a = "00000000-0000-0000-0000-000000000001";
    const char *b = "00000000-0000-0000-0000-000000000002";
    ck_assert(!dedupe_batch_seen(d, a));
    ck_assert(dedupe_batch_seen(d, a));
    ck_assert(!dedupe_batch_seen(d, b));
    dedupe_batch_reset(d);
    ck_assert(!dedupe_batch_seen(d, a)); /* a new batch forgets */
    ck_assert(dedupe_batch_seen(d, a));
    dedupe_free(d);
}
END_TEST

START_TEST(batch_layer_grows)
{
    struct dedupe *d = dedupe_new(16, NULL, NULL, NULL, NULL);
    char id[40];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(id, sizeof(id), "%08d-0000-0000-0000-000000000000", i);
            ck_assert(!dedupe_batch_seen(d, id));
        }
        for (int i = 0; i < 5000; i++) {
            snprintf(id, sizeof(id), "%08d-0000-0000-0000-000000000000", i);
            ck_assert(dedupe_batch_seen(d, id));
        }
        dedupe_batch_reset(d);
    }
    dedupe_free(d);
}
END_TEST

START_TEST(lru_marks_only_committed_rows)
{
    struct dedupe *d = dedupe_new(1000, NULL, NULL, NULL, NULL);
    struct batch b;
    make_batch(&b, "lru", 4);
    for (size_t i = 0; i < b.n; i++)
        ck_assert(!dedupe_lru_seen(d, b.rows[i].env.id));
    /* A failed batch (no stats) marks nothing. */
    dedupe_mark_committed(d, &b, NULL);
    for (size_t i = 0; i < b.n; i++)
        ck_assert(!dedupe_lru_seen(d, b.rows[i].env.id));
    uint8_t committed[4] = {1, 0, 1, 0};
    dedupe_mark_committed(d, &b, committed);
    ck_assert(dedupe_lru_seen(d, b.rows[0].env.id));
    ck_assert(!dedupe_lru_seen(d, b.rows[1].env.id));
    ck_assert(dedupe_lru_seen(d, b.rows[2].env.id));
    ck_assert(!dedupe_lru_seen(d, b.rows[3].env.id));
    batch_release(&b);
    dedupe_free(d);
}
END_TEST

START_TEST(lru_is_bounded)
{
    struct dedupe *d = dedupe_new(2, NULL, NULL, NULL, NULL);
    struct batch b;
    make_batch(&b, "bounded", 3);
    uint8_t all[3] = {1, 1, 1};
    dedupe_mark_committed(d, &b, all);
    ck_assert(!dedupe_lru_seen(d, b.rows[0].env.id)); /* evicted */
    ck_assert(dedupe_lru_seen(d, b.rows[2].env.id));
    batch_release(&b);
    dedupe_free(d);
}
END_TEST

START_TEST(no_redis_layer)
{
    struct dedupe *d = dedupe_new(10, NULL, NULL, NULL, NULL);
    struct batch b;
    make_batch(&b, "noredis", 2);
    ck_assert_int_eq(dedupe_redis_filter(d, &b), -1);
    ck_assert_uint_eq(b.n, 2);
    ck_assert_ptr_null(dedupe_redis_breaker(d));
    batch_release(&b);
    dedupe_free(d);
}
END_TEST

/* Redis down: the layer is skipped and counted, the batch is untouched, and
 * after enough failures the breaker opens and stops calling Redis. */
START_TEST(redis_down_is_skipped)
{
    char err[256];
    int port = th_free_port();
    char *url = xasprintf("redis://127.0.0.1:%d/0", port);
    struct redis_store *r = redis_store_new(url, 60, 100, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    struct breaker_conf bc;
    breaker_conf_default(&bc);
    bc.consecutive_failures = 2;
    bc.open_base_ms = 60000;
    bc.open_max_ms = 60000;
    struct dedupe *d = dedupe_new(10, r, &bc, NULL, NULL);
    struct batch b;
    make_batch(&b, "redisdown", 3);
    ck_assert_int_eq(dedupe_redis_filter(d, &b), -1);
    ck_assert_uint_eq(b.n, 3);
    ck_assert_uint_eq(dedupe_stats(d)->redis_errors, 1);
    ck_assert_uint_eq(dedupe_stats(d)->redis_skipped, 1);
    ck_assert_int_eq(dedupe_redis_filter(d, &b), -1);
    ck_assert_int_eq(breaker_state(dedupe_redis_breaker(d)), BREAKER_OPEN);
    /* Open: skipped without a call. */
    ck_assert_int_eq(dedupe_redis_filter(d, &b), -1);
    ck_assert_uint_eq(dedupe_stats(d)->redis_errors, 2);
    ck_assert_uint_eq(dedupe_stats(d)->redis_skipped, 3);
    /* Marking still fills the LRU. */
    uint8_t all[3] = {1, 1, 1};
    dedupe_mark_committed(d, &b, all);
    ck_assert(dedupe_lru_seen(d, b.rows[1].env.id));
    batch_release(&b);
    dedupe_free(d);
    redis_store_free(r);
    free(url);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggr_dedupe");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, batch_layer);
    tcase_add_test(tc, batch_layer_grows);
    tcase_add_test(tc, lru_marks_only_committed_rows);
    tcase_add_test(tc, lru_is_bounded);
    tcase_add_test(tc, no_redis_layer);
    tcase_add_test(tc, redis_down_is_skipped);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
