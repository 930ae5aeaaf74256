/* Test helpers shared by unit, integration and e2e suites. */
#include "tests/support/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/xmalloc.h"

int test_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr), ran = srunner_ntests_run(sr);
    srunner_free(sr);
    if (ran == 0)
        fprintf(stderr, "no test ran: check CK_RUN_SUITE, CK_RUN_CASE, CK_INCLUDE_TAGS and "
                        "CK_EXCLUDE_TAGS\n");
    return failed == 0 && ran > 0 ? 0 : 1;
}

char *test_tmpdir(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *path = xasprintf("%s/auditrail-%s-XXXXXX", base, prefix);
    if (!mkdtemp(path)) {
        fprintf(stderr, "mkdtemp %s: %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void test_rmtree(const char *path)
{
    if (path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void test_write_file(const char *path, const void *data, size_t len, bool append)
{
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) {
        fprintf(stderr, "open %s: %s\n", path, strerror(errno));
        abort();
    }
    if (io_write_all(fd, data, len) < 0) {
        fprintf(stderr, "write %s: %s\n", path, strerror(errno));
        abort();
    }
    close(fd);
}

uint8_t *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    uint8_t *data = xmalloc(cap + 1);
    for (;;) {
        n += fread(data + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        data = xrealloc(data, cap + 1);
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        free(data);
        return NULL;
    }
    data[n] = '\0';
    *len = n;
    return data;
}

unsigned test_seed(const char *what)
{
    const char *env = getenv("AUDITRAIL_TEST_SEED");
    unsigned seed;
    if (env && *env)
        seed = (unsigned)strtoul(env, NULL, 10);
    else
        seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    fprintf(stderr, "%s: seed %u (AUDITRAIL_TEST_SEED=%u repeats it)\n", what, seed, seed);
    return seed;
}

const char *test_repo_root(void)
{
    static char root[PATH_MAX];
    if (root[0])
        return root;
    const char *env = getenv("AUDITRAIL_ROOT");
    if (env && *env) {
        snprintf(root, sizeof(root), "%s", env);
        return root;
    }
    /* The binary lives in <root>/<build>/tests/<kind>/<name>. */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 6; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            char probe[PATH_MAX + 16];
            snprintf(probe, sizeof(probe), "%s/Makefile", exe);
            if (access(probe, F_OK) == 0) {
                snprintf(root, sizeof(root), "%s", exe);
                return root;
            }
        }
    }
    if (!getcwd(root, sizeof(root)))
        snprintf(root, sizeof(root), ".");
    return root;
}

char *test_bin(const char *name)
{
    const char *dir = getenv("AUDITRAIL_BIN_DIR");
    if (dir && *dir)
        return xasprintf("%s/%s", dir, name);
    return xasprintf("%s/build/bin/%s", test_repo_root(), name);
}

/* Parse KEY=value lines (optionally quoted with ' or ") from the env file. */
static const char *stack_file_lookup(const char *key)
{
    static char value[4096];
    const char *path = getenv("AUDITRAIL_STACK_ENV");
    char buf[PATH_MAX];
    if (!path || !*path) {
        snprintf(buf, sizeof(buf), "%s/.stack/env", test_repo_root());
        path = buf;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[4096];
    const char *found = NULL;
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), f)) {
        char *l = line;
        if (strncmp(l, "export ", 7) == 0)
            l += 7;
        if (strncmp(l, key, klen) != 0 || l[klen] != '=')
            continue;
        char *v = l + klen + 1;
        v[strcspn(v, "\n")] = '\0';
        size_t vlen = strlen(v);
        if (vlen >= 2 && (v[0] == '\'' || v[0] == '"') && v[vlen - 1] == v[0]) {
            v[vlen - 1] = '\0';
            v++;
        }
        snprintf(value, sizeof(value), "%s", v);
        found = value;
    }
    fclose(f);
    return found;
}

/* Values read from the file stay valid for the life of the process, one
 * copy per key, so two calls never overwrite each other's result. */
struct stack_value {
    char *key, *value;
    struct stack_value *next;
};
static struct stack_value *stack_values;

const char *test_stack(const char *key)
{
    const char *v = getenv(key);
    if (v && *v)
        return v;
    for (struct stack_value *sv = stack_values; sv; sv = sv->next) {
        if (strcmp(sv->key, key) == 0)
            return sv->value;
    }
    v = stack_file_lookup(key);
    if (!v || !*v)
        ck_abort_msg("local stack value %s not found: run 'scripts/stack up' (make test does)",
                     key);
    struct stack_value *sv = xmalloc(sizeof(*sv));
    sv->key = xstrdup(key);
    sv->value = xstrdup(v);
    sv->next = stack_values;
    stack_values = sv;
    return sv->value;
}

uint64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool test_wait_until(bool (*cond)(void *ud), void *ud, unsigned timeout_ms)
{
    uint64_t deadline = test_now_ms() + timeout_ms;
    for (;;) {
        if (cond(ud))
            return true;
        if (test_now_ms() >= deadline)
            return cond(ud);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
