/* LRU: recency order, capacity eviction, TTL through the now_ms argument,
 * value ownership, removal, binary keys, and a 1M-entry run. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lru.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static int freed;

static void count_free(void *v)
{
    freed++;
    free(v);
}

static void put_s(struct lru *l, const char *k, int v, uint64_t now)
{
    int *p = xmalloc(sizeof(*p));
    *p = v;
    lru_put(l, k, strlen(k), p, now);
}

static int get_s(struct lru *l, const char *k, uint64_t now)
{
    int *p = lru_get(l, k, strlen(k), now);
    return p ? *p : -1;
}

START_TEST(eviction_order)
{
    freed = 0;
    struct lru *l = lru_new(3, 0, count_free);
    put_s(l, "a", 1, 0);
    put_s(l, "b", 2, 0);
    put_s(l, "c", 3, 0);
    ck_assert_int_eq(get_s(l, "a", 0), 1); /* a becomes most recent: b is now LRU */
    put_s(l, "d", 4, 0);
    ck_assert_uint_eq(lru_size(l), 3);
    ck_assert_uint_eq(lru_evictions(l), 1);
    ck_assert_int_eq(freed, 1);
    ck_assert_int_eq(get_s(l, "b", 0), -1);
    ck_assert(lru_contains(l, "c", 1, 0)); /* c most recent: a is LRU */
    put_s(l, "e", 5, 0);
    ck_assert_int_eq(get_s(l, "a", 0), -1);
    ck_assert_int_eq(get_s(l, "c", 0), 3);
    ck_assert_int_eq(get_s(l, "d", 0), 4);
    ck_assert_int_eq(get_s(l, "e", 0), 5);
    ck_assert_uint_eq(lru_evictions(l), 2);
    lru_free(l);
    ck_assert_int_eq(freed, 5);
}
END_TEST

START_TEST(capacity_one)
{
    struct lru *l = lru_new(1, 0, count_free);
    freed = 0;
    put_s(l, "x", 1, 0);
    put_s(l, "y", 2, 0);
    ck_assert_uint_eq(lru_size(l), 1);
    ck_assert_int_eq(get_s(l, "x", 0), -1);
    ck_assert_int_eq(get_s(l, "y", 0), 2);
    ck_assert_uint_eq(lru_evictions(l), 1);
    lru_free(l);
    ck_assert_int_eq(freed, 2);
}
END_TEST

START_TEST(ttl_expiry)
{
    freed = 0;
    struct lru *l = lru_new(10, 100, count_free);
    put_s(l, "a", 1, 1000);
    put_s(l, "b", 2, 1050);
    ck_assert_int_eq(get_s(l, "a", 1099), 1);  /* age 99 < 100 */
    ck_assert_int_eq(get_s(l, "a", 1100), -1); /* age 100: expired and removed */
    ck_assert_int_eq(freed, 1);
    ck_assert_uint_eq(lru_size(l), 1);
    /* A get does not extend the TTL; a put (replace) restarts it. */
    ck_assert(lru_contains(l, "b", 1, 1149));
    ck_assert(!lru_contains(l, "b", 1, 1150));
    ck_assert_uint_eq(lru_size(l), 0);
    put_s(l, "c", 3, 2000);
    put_s(l, "c", 4, 2090);
    ck_assert_int_eq(get_s(l, "c", 2150), 4);
    ck_assert_int_eq(get_s(l, "c", 2190), -1);
    /* TTL expiries are not capacity evictions. */
    ck_assert_uint_eq(lru_evictions(l), 0);
    lru_free(l);
}
END_TEST

START_TEST(expired_tail_is_not_an_eviction)
{
    struct lru *l = lru_new(2, 10, count_free);
    put_s(l, "a", 1, 0);
    put_s(l, "b", 2, 5);
    put_s(l, "c", 3, 12); /* a expired at 10: it leaves, but not for capacity */
    ck_assert_uint_eq(lru_evictions(l), 0);
    put_s(l, "d", 4, 13); /* b expires at 15: a real eviction */
    ck_assert_uint_eq(lru_evictions(l), 1);
    ck_assert_uint_eq(lru_size(l), 2);
    lru_free(l);
}
END_TEST

START_TEST(no_ttl_never_expires)
{
    struct lru *l = lru_new(4, 0, count_free);
    put_s(l, "a", 1, 0);
    ck_assert_int_eq(get_s(l, "a", UINT64_MAX), 1);
    lru_free(l);
    /* A TTL near the end of the clock does not overflow into "expired". */
    l = lru_new(4, UINT64_MAX - 5, count_free);
    put_s(l, "a", 1, 100);
    ck_assert_int_eq(get_s(l, "a", UINT64_MAX - 1), 1);
    lru_free(l);
}
END_TEST

START_TEST(replace_frees_old_value)
{
    freed = 0;
    struct lru *l = lru_new(4, 0, count_free);
    put_s(l, "k", 1, 0);
    put_s(l, "k", 2, 0);
    ck_assert_int_eq(freed, 1);
    ck_assert_uint_eq(lru_size(l), 1);
    ck_assert_int_eq(get_s(l, "k", 0), 2);
    /* Re-putting the same pointer must not free it. */
    int *same = lru_get(l, "k", 1, 0);
    lru_put(l, "k", 1, same, 0);
    ck_assert_int_eq(freed, 1);
    ck_assert_int_eq(get_s(l, "k", 0), 2);
    /* Replace makes the key most recent. */
    put_s(l, "m", 3, 0);
    put_s(l, "n", 4, 0);
    put_s(l, "o", 5, 0);
    put_s(l, "k", 6, 0);
    put_s(l, "p", 7, 0); /* evicts m, not k */
    ck_assert_int_eq(get_s(l, "m", 0), -1);
    ck_assert_int_eq(get_s(l, "k", 0), 6);
    lru_free(l);
    ck_assert_int_eq(freed, 7);
}
END_TEST

START_TEST(remove_entries)
{
    freed = 0;
    struct lru *l = lru_new(8, 0, count_free);
    put_s(l, "a", 1, 0);
    put_s(l, "b", 2, 0);
    put_s(l, "c", 3, 0);
    ck_assert(lru_remove(l, "b", 1));
    ck_assert_int_eq(freed, 1);
    ck_assert(!lru_remove(l, "b", 1));
    ck_assert(!lru_remove(l, "zz", 2));
    ck_assert_uint_eq(lru_size(l), 2);
    ck_assert_int_eq(get_s(l, "b", 0), -1);
    ck_assert_int_eq(get_s(l, "a", 0), 1);
    ck_assert_int_eq(get_s(l, "c", 0), 3);
    ck_assert(lru_remove(l, "a", 1));
    ck_assert(lru_remove(l, "c", 1));
    ck_assert_uint_eq(lru_size(l), 0);
    put_s(l, "d", 4, 0); /* the list is sane after emptying */
    ck_assert_int_eq(get_s(l, "d", 0), 4);
    lru_free(l);
    ck_assert_int_eq(freed, 4);
}
END_TEST

START_TEST(null_values_and_no_free_fn)
{
    struct lru *l = lru_new(2, 0, NULL);
    static int x = 7;
    lru_put(l, "a", 1, NULL, 0); /* a dedupe set stores no value */
    lru_put(l, "b", 1, &x, 0);
    ck_assert(lru_contains(l, "a", 1, 0));
    ck_assert_ptr_null(lru_get(l, "a", 1, 0));
    ck_assert_ptr_eq(lru_get(l, "b", 1, 0), &x);
    lru_put(l, "c", 1, NULL, 0);
    ck_assert_uint_eq(lru_evictions(l), 1);
    lru_free(l);
    lru_free(NULL);
}
END_TEST

START_TEST(binary_keys_with_nul)
{
    struct lru *l = lru_new(8, 0, NULL);
    static int v1 = 1, v2 = 2, v3 = 3, v4 = 4;
    const unsigned char k1[] = {'a', 0, 'b'};
    const unsigned char k2[] = {'a', 0, 'c'};
    const unsigned char k3[] = {'a'};
    const unsigned char k4[] = {'a', 0};
    lru_put(l, k1, sizeof(k1), &v1, 0);
    lru_put(l, k2, sizeof(k2), &v2, 0);
    lru_put(l, k3, sizeof(k3), &v3, 0);
    lru_put(l, k4, sizeof(k4), &v4, 0);
    lru_put(l, "", 0, &v4, 0); /* the empty key is a key too */
    ck_assert_uint_eq(lru_size(l), 5);
    ck_assert_ptr_eq(lru_get(l, k1, sizeof(k1), 0), &v1);
    ck_assert_ptr_eq(lru_get(l, k2, sizeof(k2), 0), &v2);
    ck_assert_ptr_eq(lru_get(l, k3, sizeof(k3), 0), &v3);
    ck_assert_ptr_eq(lru_get(l, k4, sizeof(k4), 0), &v4);
    ck_assert(lru_contains(l, "", 0, 0));
    ck_assert(lru_remove(l, k4, sizeof(k4)));
    ck_assert_ptr_eq(lru_get(l, k3, sizeof(k3), 0), &v3);
    ck_assert_ptr_null(lru_get(l, k4, sizeof(k4), 0));
    lru_free(l);
}
END_TEST

static void put_sized(struct lru *l, const char *k, int v, size_t bytes, uint64_t ttl, uint64_t now)
{
    int *p = xmalloc(sizeof(*p));
    *p = v;
    lru_put_sized(l, k, strlen(k), p, bytes, ttl, now);
}

/* The byte bound evicts from the least recently used end until the new
 * entry fits; the entry count bound still holds. */
START_TEST(byte_bound_evicts_lru_first)
{
    freed = 0;
    struct lru *l = lru_new(100, 0, count_free);
    lru_set_max_bytes(l, 100);
    put_sized(l, "a", 1, 40, 0, 0);
    put_sized(l, "b", 2, 40, 0, 0);
    ck_assert_int_eq(get_s(l, "a", 0), 1); /* a is now most recent */
    put_sized(l, "c", 3, 40, 0, 0);        /* 120 > 100: b goes */
    ck_assert_uint_eq(lru_size(l), 2);
    ck_assert_uint_eq(lru_bytes(l), 80);
    ck_assert_int_eq(get_s(l, "b", 0), -1);
    ck_assert_int_eq(get_s(l, "a", 0), 1);
    ck_assert_int_eq(get_s(l, "c", 0), 3);
    ck_assert_uint_eq(lru_evictions(l), 1);
    put_sized(l, "d", 4, 100, 0, 0); /* exactly the bound: everything else goes */
    ck_assert_uint_eq(lru_size(l), 1);
    ck_assert_uint_eq(lru_bytes(l), 100);
    ck_assert_uint_eq(lru_evictions(l), 3);
    lru_free(l);
    ck_assert_int_eq(freed, 4);
}
END_TEST

/* A value larger than the whole bound is not stored (and is freed). */
START_TEST(oversized_value_is_not_stored)
{
    freed = 0;
    struct lru *l = lru_new(10, 0, count_free);
    lru_set_max_bytes(l, 50);
    put_sized(l, "a", 1, 10, 0, 0);
    put_sized(l, "big", 2, 51, 0, 0);
    ck_assert_int_eq(freed, 1);
    ck_assert_int_eq(get_s(l, "big", 0), -1);
    ck_assert_int_eq(get_s(l, "a", 0), 1);
    ck_assert_uint_eq(lru_bytes(l), 10);
    lru_free(l);
}
END_TEST

/* Each entry keeps the TTL it was put with; replacing an entry replaces its
 * size and TTL. */
START_TEST(per_entry_ttl_and_replacement)
{
    freed = 0;
    struct lru *l = lru_new(10, 0, count_free);
    lru_set_max_bytes(l, 1000);
    put_sized(l, "short", 1, 10, 100, 0);
    put_sized(l, "long", 2, 20, 10000, 0);
    put_sized(l, "never", 3, 30, 0, 0);
    ck_assert_int_eq(get_s(l, "short", 99), 1);
    ck_assert_int_eq(get_s(l, "short", 100), -1);
    ck_assert_uint_eq(lru_bytes(l), 50);
    ck_assert_int_eq(get_s(l, "long", 9999), 2);
    ck_assert_int_eq(get_s(l, "never", UINT64_MAX - 1), 3);
    put_sized(l, "long", 5, 200, 50, 10000);
    ck_assert_uint_eq(lru_bytes(l), 230);
    ck_assert_int_eq(get_s(l, "long", 10049), 5);
    ck_assert_int_eq(get_s(l, "long", 10050), -1);
    ck_assert_uint_eq(lru_bytes(l), 30);
    ck_assert_uint_eq(lru_evictions(l), 0); /* expiries are not evictions */
    lru_free(l);
    ck_assert_int_eq(freed, 4);
}
END_TEST

/* A dedupe window of 1M ids: 3M distinct 16-byte keys through a 1M LRU with
 * gets, removes and replaces mixed in. Counts and evictions must be exact, and
 * every key still inside the window must be found (the table never loses an
 * entry across growth and backward-shift deletion). Time is not asserted. */
START_TEST(million_entries)
{
    const size_t cap = 1000000, total = 3000000;
    struct lru *l = lru_new(cap, 0, NULL);
    unsigned char key[16];
    memset(key, 0xab, sizeof(key));
    uint64_t removed = 0;
    for (uint64_t i = 0; i < total; i++) {
        memcpy(key, &i, sizeof(i));
        lru_put(l, key, sizeof(key), (void *)(uintptr_t)(i + 1), 0);
        if (i % 1000 == 999) { /* remove one that is still inside the window */
            uint64_t j = i - 10;
            memcpy(key, &j, sizeof(j));
            ck_assert(lru_remove(l, key, sizeof(key)));
            removed++;
        }
    }
    /* The very last operation was a remove. */
    ck_assert_uint_eq(removed, total / 1000);
    ck_assert_uint_eq(lru_size(l), cap - 1);
    ck_assert_uint_eq(lru_evictions(l), total - removed - (cap - 1));
    /* The newest `cap` puts that were not removed are all present, with
     * their values; older keys are gone. */
    size_t found = 0;
    for (uint64_t i = total - cap; i < total; i++) {
        memcpy(key, &i, sizeof(i));
        void *v = lru_get(l, key, sizeof(key), 0);
        bool was_removed = i % 1000 == 989;
        if (was_removed) {
            ck_assert_ptr_null(v);
        } else if (v) {
            ck_assert_uint_eq((uintptr_t)v, i + 1);
            found++;
        }
    }
    /* Removals made room, so the window holds some older keys too. */
    size_t older = 0;
    for (uint64_t i = 0; i < total - cap; i++) {
        memcpy(key, &i, sizeof(i));
        if (lru_contains(l, key, sizeof(key), 0))
            older++;
    }
    ck_assert_uint_eq(found + older, cap - 1);
    ck_assert_uint_eq(found, cap - cap / 1000);
    lru_free(l);
}
END_TEST

static Suite *lru_suite(void)
{
    Suite *s = suite_create("lru");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, eviction_order);
    tcase_add_test(tc, capacity_one);
    tcase_add_test(tc, ttl_expiry);
    tcase_add_test(tc, expired_tail_is_not_an_eviction);
    tcase_add_test(tc, no_ttl_never_expires);
    tcase_add_test(tc, replace_frees_old_value);
    tcase_add_test(tc, remove_entries);
    tcase_add_test(tc, null_values_and_no_free_fn);
    tcase_add_test(tc, binary_keys_with_nul);
    tcase_add_test(tc, byte_bound_evicts_lru_first);
    tcase_add_test(tc, oversized_value_is_not_stored);
    tcase_add_test(tc, per_entry_ttl_and_replacement);
    suite_add_tcase(s, tc);
    TCase *big = tcase_create("big");
    tcase_set_timeout(big, 300);
    tcase_add_test(big, million_entries);
    suite_add_tcase(s, big);
    return s;
}

int main(void)
{
    return test_run_suite(lru_suite());
}
