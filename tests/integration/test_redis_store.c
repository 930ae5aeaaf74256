/* redis_store against the stack's Redis: dedupe window, lease and fencing
 * tokens, and failing fast (by return value) when Redis is unreachable. Keys
 * are unique per run: the Redis is shared with other suites. */
#include <arpa/inet.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aggregator/redis_store.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static struct redis_store *store(uint64_t ttl_s)
{
    char err[256] = "";
    struct redis_store *r =
        redis_store_new(test_stack("STACK_REDIS_URL"), ttl_s, 500, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

static char *uniq(const char *what)
{
    static unsigned n;
    return xasprintf("test:%s:%d:%u:%llu", what, (int)getpid(), n++,
                     (unsigned long long)test_now_ms());
}

/* A port nothing listens on: bind an ephemeral port, then close it. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t l = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

START_TEST(seen_and_mark)
{
    struct redis_store *r = store(120);
    char *ids[3] = {uniq("a"), uniq("b"), uniq("c")};
    uint8_t seen[3] = {7, 7, 7};
    ck_assert_int_eq(redis_store_seen(r, (const char *const *)ids, 3, seen), 0);
    ck_assert_int_eq(seen[0] + seen[1] + seen[2], 0);
    ck_assert_int_eq(redis_store_mark(r, (const char *const *)ids, 2), 0);
    ck_assert_int_eq(redis_store_seen(r, (const char *const *)ids, 3, seen), 0);
    ck_assert_int_eq(seen[0], 1);
    ck_assert_int_eq(seen[1], 1);
    ck_assert_int_eq(seen[2], 0);
    ck_assert_int_eq(redis_store_seen(r, NULL, 0, seen), 0);

    /* The key carries the window as its expiry. */
    redisContext *c = redisConnect("127.0.0.1", atoi(test_stack("STACK_REDIS_PORT")));
    ck_assert(c && !c->err);
    redisReply *x = redisCommand(c, "TTL auditrail:dedupe:%s", ids[0]);
    ck_assert_int_eq(x->type, REDIS_REPLY_INTEGER);
    ck_assert_int_gt(x->integer, 0);
    ck_assert_int_le(x->integer, 120);
    freeReplyObject(x);
    redisFree(c);

    /* A large batch in one call. */
    enum { N = 3000 };
    char **many = xmalloc(N * sizeof(*many));
    uint8_t *ms = xcalloc(N, 1);
    for (int i = 0; i < N; i++)
        many[i] = uniq("m");
    ck_assert_int_eq(redis_store_mark(r, (const char *const *)many, N / 2), 0);
    ck_assert_int_eq(redis_store_seen(r, (const char *const *)many, N, ms), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(ms[i], i < N / 2);
    for (int i = 0; i < N; i++)
        free(many[i]);
    free(many);
    free(ms);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
    redis_store_free(r);
}
END_TEST

static bool lease_free(void *ud)
{
    void **a = ud;
    int64_t t = 0;
    bool unreachable;
    if (redis_store_lease(a[0], a[1], NULL, "b", 60000, &t, &unreachable) == 0) {
        *(int64_t *)a[2] = t;
        return true;
    }
    return false;
}

START_TEST(lease_and_fencing_tokens)
{
    struct redis_store *r = store(60);
    char *name = uniq("lease");
    int64_t t1 = 0, t1b = 0, t2 = 0, tx = 0;
    bool unreachable = true;
    ck_assert_int_eq(redis_store_lease(r, name, NULL, "a", 60000, &t1, &unreachable), 0);
    ck_assert(!unreachable);
    ck_assert_int_gt(t1, 0);
    /* Renewal by the holder keeps its token. */
    ck_assert_int_eq(redis_store_lease(r, name, NULL, "a", 60000, &t1b, &unreachable), 0);
    ck_assert_int_eq(t1b, t1);
    /* Someone else is refused, and it is not an outage. */
    ck_assert_int_eq(redis_store_lease(r, name, NULL, "b", 60000, &tx, &unreachable), -1);
    ck_assert(!unreachable);
    /* Release by a non-holder does nothing; by the holder frees it. */
    redis_store_lease_release(r, name, "b");
    ck_assert_int_eq(redis_store_lease(r, name, NULL, "b", 60000, &tx, &unreachable), -1);
    redis_store_lease_release(r, name, "a");
    ck_assert_int_eq(redis_store_lease(r, name, NULL, "b", 60000, &t2, &unreachable), 0);
    ck_assert_int_gt(t2, t1); /* strictly increasing across holders */
    ck_assert_int_eq(redis_store_lease(r, name, NULL, "a", 60000, &tx, &unreachable), -1);
    redis_store_lease_release(r, name, "b");

    /* Expiry: a short lease lapses and the next holder gets a newer token. */
    int64_t t3 = 0, t4 = 0;
    ck_assert_int_eq(redis_store_lease(r, name, NULL, "a", 100, &t3, &unreachable), 0);
    ck_assert_int_gt(t3, t2);
    void *args[] = {r, name, &t4};
    ck_assert(test_wait_until(lease_free, args, 5000));
    ck_assert_int_gt(t4, t3);
    redis_store_lease_release(r, name, "b");
    free(name);
    redis_store_free(r);
}
END_TEST

START_TEST(unreachable_fails_fast)
{
    char url[64], err[256] = "";
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", closed_port());
    struct redis_store *r = redis_store_new(url, 60, 1000, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err); /* does not connect yet */
    const char *ids[] = {"x", "y"};
    uint8_t seen[2] = {9, 9};
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(redis_store_seen(r, ids, 2, seen), -1);
        ck_assert_int_eq(seen[0], 9); /* untouched */
        ck_assert_int_eq(seen[1], 9);
        ck_assert_int_eq(redis_store_mark(r, ids, 2), -1);
        int64_t t = 42;
        bool unreachable = false;
        ck_assert_int_eq(redis_store_lease(r, "l", NULL, "h", 1000, &t, &unreachable), -1);
        ck_assert(unreachable);
        ck_assert_int_eq(t, 42);
        redis_store_lease_release(r, "l", "h");
    }
    redis_store_free(r);
}
END_TEST

START_TEST(url_parsing)
{
    char err[256];
    const char *bad[] = {
        "http://127.0.0.1:6379", "redis://",     "redis://h:99999",      "redis://h:12/x",
        "redis://h:port",        "redis://:7/0", "rediss://:s3cret@h:7", "redis://u:s3cret@h:port"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(redis_store_new(bad[i], 1, 1, err, sizeof(err)) == NULL, "%s accepted",
                      bad[i]);
        ck_assert(err[0] != '\0');
        /* the error names the URL without its password (issue 9 item 13) */
        ck_assert_msg(strstr(err, "s3cret") == NULL, "%s", err);
    }
    ck_assert_ptr_null(redis_store_new(NULL, 1, 1, err, sizeof(err)));
    const char *good[] = {"redis://localhost", "redis://h:1/2", "redis://:pw@h:7/1",
                          "redis://user:pw@h"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct redis_store *r = redis_store_new(good[i], 1, 1, err, sizeof(err));
        ck_assert_msg(r != NULL, "%s: %s", good[i], err);
        redis_store_free(r);
    }
    redis_store_free(NULL);

    /* A database number is selected on connect. */
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%s/3", test_stack("STACK_REDIS_PORT"));
    struct redis_store *r = redis_store_new(url, 60, 500, err, sizeof(err));
    char *id = uniq("db3");
    const char *ids[] = {id};
    ck_assert_int_eq(redis_store_mark(r, ids, 1), 0);
    redisContext *c = redisConnect("127.0.0.1", atoi(test_stack("STACK_REDIS_PORT")));
    redisReply *x = redisCommand(c, "SELECT 3");
    freeReplyObject(x);
    x = redisCommand(c, "EXISTS auditrail:dedupe:%s", id);
    ck_assert_int_eq(x->integer, 1);
    freeReplyObject(x);
    x = redisCommand(c, "SELECT 0");
    freeReplyObject(x);
    x = redisCommand(c, "EXISTS auditrail:dedupe:%s", id);
    ck_assert_int_eq(x->integer, 0);
    freeReplyObject(x);
    redisFree(c);
    free(id);
    redis_store_free(r);
}
END_TEST

/* Issue 9 item 8: two deployments sharing one Redis (each its own
 * namespace) never see each other's committed ids; the key says whose it
 * is. On the old code every deployment shared auditrail:dedupe:<id>. */
START_TEST(namespaces_isolate_deployments)
{
    struct redis_store *a = store(120), *b = store(120), *plain = store(120);
    char *ns_a = uniq("nsa"), *ns_b = uniq("nsb");
    redis_store_set_namespace(a, ns_a);
    redis_store_set_namespace(b, ns_b);
    char *ids[2] = {uniq("x"), uniq("y")};
    uint8_t seen[2] = {7, 7};
    ck_assert_int_eq(redis_store_mark(a, (const char *const *)ids, 2), 0);
    ck_assert_int_eq(redis_store_seen(a, (const char *const *)ids, 2, seen), 0);
    ck_assert_int_eq(seen[0] + seen[1], 2);
    ck_assert_int_eq(redis_store_seen(b, (const char *const *)ids, 2, seen), 0);
    ck_assert_int_eq(seen[0] + seen[1], 0);
    ck_assert_int_eq(redis_store_seen(plain, (const char *const *)ids, 2, seen), 0);
    ck_assert_int_eq(seen[0] + seen[1], 0);
    redisContext *c = redisConnect("127.0.0.1", atoi(test_stack("STACK_REDIS_PORT")));
    ck_assert(c && !c->err);
    redisReply *x = redisCommand(c, "EXISTS auditrail:dedupe:%s:%s", ns_a, ids[0]);
    ck_assert_int_eq(x->integer, 1);
    freeReplyObject(x);
    redisFree(c);
    redis_store_free(a);
    redis_store_free(b);
    redis_store_free(plain);
    free(ns_a);
    free(ns_b);
    free(ids[0]);
    free(ids[1]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("redis_store");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, seen_and_mark);
    tcase_add_test(tc, lease_and_fencing_tokens);
    tcase_add_test(tc, unreachable_fails_fast);
    tcase_add_test(tc, url_parsing);
    tcase_add_test(tc, namespaces_isolate_deployments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
