/* Round trip of tools/audit-writer through the format parsers: every record
 * the writer produces parses in its format, carries a unique token, and the
 * manifest matches what is on disk after rotation; SIGTERM never leaves half
 * a line. Needs build/bin/audit-writer (or $AUDITRAIL_BIN_DIR). */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/format.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

extern char **environ;

static pid_t spawn_writer(char **args)
{
    char *bin = test_bin("audit-writer");
    char *argv[32] = {bin};
    int i = 0;
    for (; args[i]; i++)
        argv[i + 1] = args[i];
    argv[i + 1] = NULL;
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, bin, NULL, NULL, argv, environ), 0);
    free(bin);
    return pid;
}

static int run_writer(char **args)
{
    int st;
    pid_t pid = spawn_writer(args);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The unique token: "n":N in JSON formats, " n=N" in kv/auditd. */
static long token_of(const char *line)
{
    const char *p = strstr(line, "\"n\":");
    if (p)
        return strtol(p + 4, NULL, 10);
    p = strstr(line, " n=");
    return p ? strtol(p + 3, NULL, 10) : -1;
}

struct check {
    unsigned char *seen; /* seen[n] counts */
    long max_n;
    size_t lines, no_time;
};

/* Parse every line of path as `fmt`; returns the number of lines. */
static size_t check_file(const char *path, const char *fmt, struct check *c)
{
    enum format_kind k;
    ck_assert_int_eq(format_kind_parse(fmt, &k), 0);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f, "open %s", path);
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        ck_assert_msg(line[len - 1] == '\n', "half a line in %s", path);
        line[--len] = '\0';
        struct parsed_record r;
        int rc = format_parse(k, NULL, (const uint8_t *)line, (size_t)len, &r);
        ck_assert_msg(rc == 0, "%s: %s: %s", fmt, r.err, line);
        ck_assert_ptr_nonnull(r.action);
        if (k != FORMAT_AUDITD) /* PATH/PROCTITLE records have no actor */
            ck_assert_ptr_nonnull(r.actor);
        if (k != FORMAT_JSON)
            ck_assert(r.have_time);
        else if (!r.have_time)
            c->no_time++;
        parsed_record_release(&r);
        long t = token_of(line);
        ck_assert_msg(t >= 1 && t <= c->max_n, "token %ld in %s", t, line);
        c->seen[t]++;
        n++;
    }
    free(line);
    fclose(f);
    c->lines += n;
    return n;
}

/* Check the manifest against the files and every record against its parser. */
static void check_manifest(const char *manifest, struct check *c, size_t want_entries)
{
    FILE *m = fopen(manifest, "r");
    ck_assert_msg(m, "open %s", manifest);
    char path[1024], fmt[32];
    unsigned long long recs, bytes, total = 0;
    size_t entries = 0;
    char hdr[256];
    ck_assert_ptr_nonnull(fgets(hdr, sizeof(hdr), m));
    while (fscanf(m, "%1023s %31s %llu %llu", path, fmt, &recs, &bytes) == 4) {
        if (strcmp(path, "total") == 0) {
            total = recs;
            break;
        }
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq((unsigned long long)st.st_size, bytes);
        ck_assert_uint_eq(check_file(path, fmt, c), recs);
        entries++;
    }
    fclose(m);
    ck_assert_uint_eq(entries, want_entries);
    ck_assert_uint_eq(total, c->lines);
    for (long i = 1; i <= c->max_n; i++)
        ck_assert_msg(c->seen[i] == 1, "token %ld seen %d times", i, c->seen[i]);
}

static void run_style(const char *style, const char *ratio)
{
    char *dir = test_tmpdir("writer");
    char *man = xasprintf("%s/manifest.tsv", dir);
    char *args[] = {"--dir",
                    dir,
                    "--files",
                    "5",
                    "--format",
                    "mixed",
                    "--count",
                    "200",
                    "--rotate-every",
                    "64",
                    "--rotate-style",
                    (char *)style,
                    "--seed",
                    "7",
                    "--line-bytes",
                    "300",
                    "--no-timestamp-ratio",
                    (char *)ratio,
                    "--manifest",
                    man,
                    NULL};
    ck_assert_int_eq(run_writer(args), 0);
    struct check c = {.max_n = 1000};
    c.seen = xcalloc(1001, 1);
    /* 200 records in generations of 64: 64, 64, 64, 8 -> 4 per file */
    check_manifest(man, &c, 20);
    ck_assert_uint_eq(c.lines, 1000);
    if (strcmp(ratio, "0") != 0)
        ck_assert_uint_gt(c.no_time, 0);
    else
        ck_assert_uint_eq(c.no_time, 0);
    free(c.seen);
    free(man);
    test_rmtree(dir);
    free(dir);
}

START_TEST(rename_round_trip)
{
    run_style("rename", "0.3");
}
END_TEST

START_TEST(rename_nomatch_round_trip)
{
    run_style("rename-nomatch", "0");
    /* names: x.log-000001.old ... are outside *.log */
}
END_TEST

START_TEST(copytruncate_round_trip)
{
    run_style("copytruncate", "0");
}
END_TEST

START_TEST(bad_options_rejected)
{
    char *a1[] = {"--format", "json", NULL}; /* no --dir */
    ck_assert_int_eq(run_writer(a1), 2);
    char *a2[] = {"--dir", "/tmp", "--format", "xml", NULL};
    ck_assert_int_eq(run_writer(a2), 2);
    char *a3[] = {"--dir", "/tmp", "--rotate-style", "shred", NULL};
    ck_assert_int_eq(run_writer(a3), 2);
    char *a4[] = {"--dir", "/tmp", "--count", "-1", NULL};
    ck_assert_int_eq(run_writer(a4), 2);
}
END_TEST

/* Parsed fields of every line of a json file, time excluded, joined. */
static char *fields_of(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *line = NULL, *acc = xstrdup("");
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        struct parsed_record r;
        ck_assert_int_eq(format_parse(FORMAT_JSON, NULL, (uint8_t *)line, (size_t)len - 1, &r), 0);
        char *next = xasprintf("%s%s|%s|%s|%s|%s|%ld\n", acc, r.tenant, r.actor, r.action,
                               r.resource, r.outcome, token_of(line));
        free(acc);
        acc = next;
        parsed_record_release(&r);
    }
    free(line);
    fclose(f);
    return acc;
}

START_TEST(same_seed_same_content)
{
    char *d1 = test_tmpdir("writer-s1"), *d2 = test_tmpdir("writer-s2"),
         *d3 = test_tmpdir("writer-s3");
    char *a1[] = {"--dir", d1, "--count", "50", "--seed", "3", NULL};
    char *a2[] = {"--dir", d2, "--count", "50", "--seed", "3", NULL};
    char *a3[] = {"--dir", d3, "--count", "50", "--seed", "4", NULL};
    ck_assert_int_eq(run_writer(a1), 0);
    ck_assert_int_eq(run_writer(a2), 0);
    ck_assert_int_eq(run_writer(a3), 0);
    char *p1 = xasprintf("%s/app-0.log", d1), *p2 = xasprintf("%s/app-0.log", d2),
         *p3 = xasprintf("%s/app-0.log", d3);
    char *f1 = fields_of(p1), *f2 = fields_of(p2), *f3 = fields_of(p3);
    ck_assert_str_eq(f1, f2);
    ck_assert_str_ne(f1, f3);
    free(f1), free(f2), free(f3), free(p1), free(p2), free(p3);
    test_rmtree(d1), test_rmtree(d2), test_rmtree(d3);
    free(d1), free(d2), free(d3);
}
END_TEST

static bool has_lines(void *ud)
{
    struct stat st;
    return stat((const char *)ud, &st) == 0 && st.st_size > 4096;
}

START_TEST(sigterm_finishes_the_line)
{
    char *dir = test_tmpdir("writer-term");
    char *man = xasprintf("%s/manifest.tsv", dir);
    char *log = xasprintf("%s/app-0.log", dir);
    char *args[] = {"--dir",        dir,    "--format",   "kv", "--rate", "20000",
                    "--line-bytes", "2000", "--manifest", man,  NULL};
    pid_t pid = spawn_writer(args);
    ck_assert(test_wait_until(has_lines, log, 10000));
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    /* check_file asserts every line ends with '\n' and parses */
    FILE *m = fopen(man, "r");
    ck_assert_ptr_nonnull(m);
    char buf[4096];
    unsigned long long recs = 0;
    while (fgets(buf, sizeof(buf), m))
        if (strncmp(buf, "total\t", 6) == 0)
            recs = strtoull(buf + 8, NULL, 10);
    fclose(m);
    ck_assert_uint_gt(recs, 0);
    struct check c = {.max_n = (long)recs};
    c.seen = xcalloc(recs + 1, 1);
    ck_assert_uint_eq(check_file(log, "kv", &c), recs);
    free(c.seen);
    free(log);
    free(man);
    test_rmtree(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("format_writer");
    TCase *tc = tcase_create("writer");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rename_round_trip);
    tcase_add_test(tc, rename_nomatch_round_trip);
    tcase_add_test(tc, copytruncate_round_trip);
    tcase_add_test(tc, bad_options_rejected);
    tcase_add_test(tc, same_seed_same_content);
    tcase_add_test(tc, sigterm_finishes_the_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
