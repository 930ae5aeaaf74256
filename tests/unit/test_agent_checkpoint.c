/* Checkpoint file: round trip, rejection of malformed files, atomic
 * replacement (a crash mid-write leaves the old or the new file). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/checkpoint.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static void fill(struct checkpoint *c, size_t n, uint64_t tag)
{
    for (size_t i = 0; i < n; i++) {
        struct checkpoint_entry e;
        memset(&e, 0, sizeof(e));
        char path[64];
        snprintf(path, sizeof(path), "/var/log/audit/app-%zu.log", i);
        e.path = path;
        e.dev = 2049;
        e.ino = 1000 + i;
        e.btime = 1764186645123456789ull;
        for (int k = 0; k < STREAM_FP_LEN; k++)
            e.fp[k] = (uint8_t)(k + i);
        e.fp_len = 37;
        e.generation = i % 3;
        snprintf(e.stream, sizeof(e.stream), "%016llx%016llx", (unsigned long long)tag,
                 (unsigned long long)i);
        e.offset = UINT64_MAX - i; /* above 2^53: must survive JSON */
        e.seq = tag;
        for (int k = 0; k < CHAIN_HASH_LEN; k++)
            e.prev[k] = (uint8_t)(255 - k);
        e.done = i % 2;
        checkpoint_add(c, &e);
    }
}

static void assert_same(const struct checkpoint *a, const struct checkpoint *b)
{
    ck_assert_uint_eq(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct checkpoint_entry *x = &a->v[i], *y = &b->v[i];
        ck_assert_str_eq(x->path, y->path);
        ck_assert_str_eq(x->live_path, y->live_path);
        ck_assert_uint_eq(x->dev, y->dev);
        ck_assert_uint_eq(x->ino, y->ino);
        ck_assert_uint_eq(x->btime, y->btime);
        ck_assert_int_eq(memcmp(x->fp, y->fp, STREAM_FP_LEN), 0);
        ck_assert_uint_eq(x->fp_len, y->fp_len);
        ck_assert_uint_eq(x->generation, y->generation);
        ck_assert_str_eq(x->stream, y->stream);
        ck_assert_uint_eq(x->offset, y->offset);
        ck_assert_uint_eq(x->seq, y->seq);
        ck_assert_int_eq(memcmp(x->prev, y->prev, CHAIN_HASH_LEN), 0);
        ck_assert_int_eq(x->done, y->done);
    }
}

START_TEST(test_round_trip)
{
    char *dir = test_tmpdir("ckpt");
    struct checkpoint a = {0}, b = {0};
    char err[256];
    ck_assert_int_eq(checkpoint_load(&b, dir, err, sizeof(err)), CHECKPOINT_NONE);
    fill(&a, 5, 7);
    ck_assert_int_eq(checkpoint_save(&a, dir, err, sizeof(err)), 0);
    ck_assert_int_eq(checkpoint_load(&b, dir, err, sizeof(err)), 1);
    assert_same(&a, &b);
    char *tmp = xasprintf("%s/checkpoint.json.tmp", dir);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* no temp file left behind */
    free(tmp);
    checkpoint_release(&a);
    checkpoint_release(&b);
    test_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_malformed_rejected)
{
    static const char *bad[] = {
        "",
        "{",
        "[]",
        "{\"version\":2,\"streams\":[]}",
        "{\"version\":1}",
        "{\"version\":1,\"streams\":[{\"path\":\"x\"}]}",
        "{\"version\":1,\"streams\":[{\"path\":\"x\",\"dev\":\"1\",\"ino\":\"2\",\"btime\":\"0\","
        "\"fp\":\"zz\",\"fp_len\":\"1\",\"generation\":\"0\",\"stream\":"
        "\"0123456789abcdef0123456789abcdef\",\"offset\":\"0\",\"seq\":\"0\",\"prev\":\"00\"}]}",
        "{\"version\":1,\"streams\":[{\"path\":\"x\",\"dev\":\"-1\",\"ino\":\"2\",\"btime\":\"0\","
        "\"fp\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"fp_len\":\"1\",\"generation\":\"0\",\"stream\":\"0123456789abcdef0123456789abcdef\","
        "\"offset\":\"0\",\"seq\":\"0\","
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct checkpoint c = {0};
        char err[256] = "";
        ck_assert_msg(checkpoint_from_json(&c, bad[i], err, sizeof(err)) == -1, "accepted #%zu", i);
        ck_assert_msg(err[0] != '\0', "no message for #%zu", i);
        checkpoint_release(&c);
    }
    /* and on disk: a corrupt file without a previous generation is "lost",
     * never a silent first start (read_from: end must not apply) */
    char *dir = test_tmpdir("ckpt");
    char *path = xasprintf("%s/checkpoint.json", dir);
    test_write_file(path, "{\"version\":1,\"str", 17, false);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    struct checkpoint c = {0};
    char err[512];
    ck_assert_int_eq(checkpoint_load(&c, dir, err, sizeof(err)), CHECKPOINT_LOST);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_ptr_nonnull(strstr(err, "corrupt"));
    ck_assert_uint_eq(c.scanned_at_ns,
                      (uint64_t)st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec);
    checkpoint_release(&c);
    free(path);
    test_rmtree(dir);
    free(dir);
}
END_TEST

/* A checkpoint cut short: not JSON. */
#define CORRUPT "{\"version\":1,\"streams\":[{\"pa"

static void corrupt(const char *dir, const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    test_write_file(p, CORRUPT, strlen(CORRUPT), false);
    free(p);
}

static bool exists(const char *dir, const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    bool e = access(p, F_OK) == 0;
    free(p);
    return e;
}

/* Regression (issue 9 item 12): a corrupt checkpoint stopped every start
 * (checkpoint_load returned -1, the agent exited 2, and its restart did the
 * same). The previous generation is kept and used instead; the corrupt file
 * is moved aside; a missing latest falls back the same way. */
START_TEST(test_corrupt_falls_back_to_previous_generation)
{
    char *dir = test_tmpdir("ckpt");
    struct checkpoint a = {0}, b = {0}, c = {0};
    char err[512];
    fill(&a, 2, 1);
    fill(&b, 3, 2);
    a.scanned_at_ns = 111;
    b.scanned_at_ns = 222;
    ck_assert_int_eq(checkpoint_save(&a, dir, err, sizeof(err)), 0);
    ck_assert_int_eq(checkpoint_save(&b, dir, err, sizeof(err)), 0);
    ck_assert_int_eq(checkpoint_load(&c, dir, err, sizeof(err)), CHECKPOINT_LOADED);
    assert_same(&b, &c);
    ck_assert_uint_eq(c.scanned_at_ns, 222);
    checkpoint_release(&c);
    corrupt(dir, "checkpoint.json");
    ck_assert_int_eq(checkpoint_load(&c, dir, err, sizeof(err)), CHECKPOINT_FALLBACK);
    assert_same(&a, &c);
    ck_assert_uint_eq(c.scanned_at_ns, 111);
    ck_assert_ptr_nonnull(strstr(err, "corrupt"));
    ck_assert(exists(dir, "checkpoint.json.corrupt"));
    ck_assert(!exists(dir, "checkpoint.json"));
    checkpoint_release(&c);
    /* the latest missing: the previous one, too */
    ck_assert_int_eq(checkpoint_load(&c, dir, err, sizeof(err)), CHECKPOINT_FALLBACK);
    assert_same(&a, &c);
    ck_assert_ptr_nonnull(strstr(err, "missing"));
    checkpoint_release(&c);
    /* saving goes on; then both corrupt: nothing readable, said so */
    ck_assert_int_eq(checkpoint_save(&b, dir, err, sizeof(err)), 0);
    ck_assert_int_eq(checkpoint_save(&a, dir, err, sizeof(err)), 0);
    corrupt(dir, "checkpoint.json");
    corrupt(dir, "checkpoint.json.1");
    ck_assert_int_eq(checkpoint_load(&c, dir, err, sizeof(err)), CHECKPOINT_LOST);
    ck_assert_uint_eq(c.n, 0);
    checkpoint_release(&a);
    checkpoint_release(&b);
    checkpoint_release(&c);
    test_rmtree(dir);
    free(dir);
}
END_TEST

/* A second agent on the same checkpoint directory is refused, with the
 * holder's pid; the lock goes with the descriptor. */
START_TEST(test_lock_is_exclusive)
{
    char *dir = test_tmpdir("ckpt");
    char err[512];
    int fd = checkpoint_lock(dir, err, sizeof(err));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(checkpoint_lock(dir, err, sizeof(err)), -1);
    char pid[32];
    snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
    ck_assert_msg(strstr(err, pid) && strstr(err, "in use by another auditrail-agent"), "%s", err);
    close(fd);
    fd = checkpoint_lock(dir, err, sizeof(err));
    ck_assert_int_ge(fd, 0);
    close(fd);
    test_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_save_failure_keeps_old)
{
    char *dir = test_tmpdir("ckpt");
    struct checkpoint a = {0}, b = {0}, c = {0};
    char err[256];
    fill(&a, 2, 1);
    fill(&b, 3, 2);
    ck_assert_int_eq(checkpoint_save(&a, dir, err, sizeof(err)), 0);
    char *sub = xasprintf("%s/missing", dir);
    ck_assert_int_eq(checkpoint_save(&b, sub, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "checkpoint"));
    /* a directory standing where the temp file goes makes the write fail */
    char *tmp = xasprintf("%s/checkpoint.json.tmp", dir);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    ck_assert_int_eq(checkpoint_save(&b, dir, err, sizeof(err)), -1);
    ck_assert_int_eq(checkpoint_load(&c, dir, err, sizeof(err)), 1);
    assert_same(&a, &c);
    rmdir(tmp);
    free(tmp);
    free(sub);
    checkpoint_release(&a);
    checkpoint_release(&b);
    checkpoint_release(&c);
    test_rmtree(dir);
    free(dir);
}
END_TEST

/* Wait for one byte on fd; the time it came. */
static uint64_t await_save(int fd)
{
    char c;
    ck_assert_msg(read(fd, &c, 1) == 1, "the saving child ended");
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A child rewrites the checkpoint in a loop (alternating two contents) and is
 * SIGKILLed at arbitrary moments: whatever is on disk is always one of the
 * two complete versions. The child reports each completed save through a
 * pipe: the kill comes only after two saves ran, at a point spread over a
 * whole save (0 %, 10 %, ... 90 % of the time one took), so it lands inside
 * a save however long one takes, never before the first. */
START_TEST(test_crash_never_torn)
{
    char *dir = test_tmpdir("ckpt");
    struct checkpoint a = {0}, b = {0};
    char err[256];
    fill(&a, 200, 1);
    fill(&b, 300, 2);
    ck_assert_int_eq(checkpoint_save(&a, dir, err, sizeof(err)), 0);
    for (int round = 0; round < 20; round++) {
        int saved[2];
        ck_assert_int_eq(pipe(saved), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(saved[0]);
            for (unsigned i = 0;; i++) {
                char e2[256];
                if (checkpoint_save(i % 2 ? &a : &b, dir, e2, sizeof(e2)) < 0 ||
                    write(saved[1], "s", 1) != 1)
                    _exit(1);
            }
        }
        close(saved[1]);
        uint64_t t0 = await_save(saved[0]), t1 = await_save(saved[0]);
        usleep((useconds_t)((t1 - t0) * (uint64_t)(round % 10) / 10));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        close(saved[0]);
        ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        struct checkpoint c = {0};
        ck_assert_int_eq(checkpoint_load(&c, dir, err, sizeof(err)), 1);
        if (c.n == a.n)
            assert_same(&a, &c);
        else
            assert_same(&b, &c);
        checkpoint_release(&c);
    }
    checkpoint_release(&a);
    checkpoint_release(&b);
    test_rmtree(dir);
    free(dir);
}
END_TEST

/* A file opened before its first record is saved without an id. */
START_TEST(test_entry_without_id)
{
    struct checkpoint a = {0}, b = {0};
    struct checkpoint_entry e;
    memset(&e, 0, sizeof(e));
    e.path = "/var/log/new.log";
    e.dev = 1;
    e.ino = 2;
    e.btime = 3;
    e.offset = 0;
    checkpoint_add(&a, &e);
    char *text = checkpoint_to_json(&a);
    char err[256];
    ck_assert_int_eq(checkpoint_from_json(&b, text, err, sizeof(err)), 1);
    assert_same(&a, &b);
    ck_assert_uint_eq(b.v[0].fp_len, 0);
    ck_assert_str_eq(b.v[0].stream, "");
    free(text);
    checkpoint_release(&b);
    /* an id without a fingerprint, or a fingerprint without an id, is corrupt */
    strcpy(a.v[0].stream, "0123456789abcdef0123456789abcdef");
    text = checkpoint_to_json(&a);
    ck_assert_int_eq(checkpoint_from_json(&b, text, err, sizeof(err)), -1);
    free(text);
    checkpoint_release(&b);
    a.v[0].stream[0] = '\0';
    a.v[0].fp_len = 5;
    text = checkpoint_to_json(&a);
    ck_assert_int_eq(checkpoint_from_json(&b, text, err, sizeof(err)), -1);
    free(text);
    checkpoint_release(&b);
    checkpoint_release(&a);
}
END_TEST

/* A file name that is not UTF-8 survives the round trip. */
START_TEST(test_non_utf8_path)
{
    struct checkpoint a = {0}, b = {0};
    struct checkpoint_entry e;
    memset(&e, 0, sizeof(e));
    e.path = "/var/log/caf\xe9-\xff.log";
    e.live_path = "/var/log/plain.log";
    checkpoint_add(&a, &e);
    char *text = checkpoint_to_json(&a);
    char err[256];
    ck_assert_int_eq(checkpoint_from_json(&b, text, err, sizeof(err)), 1);
    assert_same(&a, &b);
    free(text);
    checkpoint_release(&a);
    checkpoint_release(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_malformed_rejected);
    tcase_add_test(tc, test_save_failure_keeps_old);
    tcase_add_test(tc, test_crash_never_torn);
    tcase_add_test(tc, test_entry_without_id);
    tcase_add_test(tc, test_non_utf8_path);
    tcase_add_test(tc, test_corrupt_falls_back_to_previous_generation);
    tcase_add_test(tc, test_lock_is_exclusive);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
