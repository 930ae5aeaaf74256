/* The file rules of issue 9 item 9: what tail_guard lets the agent read —
 * regular files only, no symbolic link unless followed and staying beneath
 * its directory, nothing on /proc or /sys — and that opening never blocks
 * on a FIFO. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/tail_guard.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

struct dirs {
    char *logs, *outside;
};

static char *in(const char *dir, const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

static void dirs_init(struct dirs *d)
{
    d->logs = test_tmpdir("guard-logs");
    d->outside = test_tmpdir("guard-outside");
}

static void dirs_release(struct dirs *d)
{
    test_rmtree(d->logs);
    test_rmtree(d->outside);
    free(d->logs);
    free(d->outside);
}

static enum tail_guard_verdict verdict(const char *dir, const char *name, bool follow)
{
    char *p = in(dir, name);
    struct stat st;
    enum tail_guard_verdict v = tail_guard_stat(p, follow, &st);
    free(p);
    return v;
}

START_TEST(test_regular_files_and_links)
{
    struct dirs d;
    dirs_init(&d);
    char *app = in(d.logs, "app.log"), *secret = in(d.outside, "token");
    char *sub = in(d.logs, "sub"), *inner = in(d.logs, "sub/inner.log");
    test_write_file(app, "x\n", 2, false);
    test_write_file(secret, "s3cr3t\n", 7, false);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    test_write_file(inner, "y\n", 2, false);
    char *l_out = in(d.logs, "out.log"), *l_in = in(d.logs, "in.log"), *l_up = in(d.logs, "up.log");
    char *l_proc = in(d.logs, "env.log"), *l_loop = in(d.logs, "loop.log");
    ck_assert_int_eq(symlink(secret, l_out), 0);
    ck_assert_int_eq(symlink("sub/inner.log", l_in), 0);
    ck_assert_int_eq(symlink("../x/../../etc/passwd", l_up), 0);
    ck_assert_int_eq(symlink("/proc/self/environ", l_proc), 0);
    ck_assert_int_eq(symlink("loop.log", l_loop), 0);

    ck_assert_int_eq(verdict(d.logs, "app.log", false), TAIL_GUARD_OK);
    ck_assert_int_eq(verdict(d.logs, "app.log", true), TAIL_GUARD_OK);
    ck_assert_int_eq(verdict(d.logs, "missing.log", false), TAIL_GUARD_GONE);
    ck_assert_int_eq(verdict(d.logs, "sub", false), TAIL_GUARD_NOT_REGULAR);
    /* links: never by default */
    ck_assert_int_eq(verdict(d.logs, "out.log", false), TAIL_GUARD_SYMLINK);
    ck_assert_int_eq(verdict(d.logs, "in.log", false), TAIL_GUARD_SYMLINK);
    ck_assert_int_eq(verdict(d.logs, "env.log", false), TAIL_GUARD_SYMLINK);
    /* followed: only beneath the link's directory */
    ck_assert_int_eq(verdict(d.logs, "in.log", true), TAIL_GUARD_OK);
    ck_assert_int_eq(verdict(d.logs, "out.log", true), TAIL_GUARD_ESCAPES);
    ck_assert_int_eq(verdict(d.logs, "up.log", true), TAIL_GUARD_ESCAPES);
    ck_assert_int_eq(verdict(d.logs, "env.log", true), TAIL_GUARD_ESCAPES);
    ck_assert_int_eq(verdict(d.logs, "loop.log", true), TAIL_GUARD_ESCAPES);

    /* the followed link's identity is its target's */
    struct stat st, want;
    ck_assert_int_eq(stat(inner, &want), 0);
    ck_assert_int_eq(tail_guard_stat(l_in, true, &st), TAIL_GUARD_OK);
    ck_assert_uint_eq(st.st_ino, want.st_ino);
    enum tail_guard_verdict v;
    int fd = tail_guard_open(l_in, true, &st, &v);
    ck_assert_int_ge(fd, 0);
    char buf[8];
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 2);
    close(fd);
    ck_assert_int_eq(tail_guard_open(l_out, true, &st, &v), -1);
    ck_assert_int_eq(v, TAIL_GUARD_ESCAPES);
    ck_assert_int_eq(tail_guard_open(l_out, false, &st, &v), -1);
    ck_assert_int_eq(v, TAIL_GUARD_SYMLINK);

    free(app);
    free(secret);
    free(sub);
    free(inner);
    free(l_out);
    free(l_in);
    free(l_up);
    free(l_proc);
    free(l_loop);
    dirs_release(&d);
}
END_TEST

/* FIFOs, sockets and /proc are refused; opening a FIFO with no writer
 * returns at once instead of blocking the agent's loop. */
START_TEST(test_special_files_refused)
{
    struct dirs d;
    dirs_init(&d);
    char *fifo = in(d.logs, "fifo.log"), *sock = in(d.logs, "sock.log");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(verdict(d.logs, "fifo.log", false), TAIL_GUARD_NOT_REGULAR);
    ck_assert_int_eq(verdict(d.logs, "sock.log", false), TAIL_GUARD_NOT_REGULAR);
    struct stat st;
    enum tail_guard_verdict v;
    ck_assert_int_eq(tail_guard_open(fifo, false, &st, &v), -1);
    ck_assert_int_eq(v, TAIL_GUARD_NOT_REGULAR);
    ck_assert_int_eq(tail_guard_stat("/proc/self/environ", false, &st), TAIL_GUARD_PSEUDO_FS);
    ck_assert_int_eq(tail_guard_stat("/proc/self/status", true, &st), TAIL_GUARD_PSEUDO_FS);
    ck_assert_int_eq(tail_guard_open("/proc/self/environ", false, &st, &v), -1);
    ck_assert_int_eq(v, TAIL_GUARD_PSEUDO_FS);
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0)
        ck_assert_int_eq(tail_guard_stat("/sys/kernel/mm/transparent_hugepage/enabled", false, &st),
                         TAIL_GUARD_PSEUDO_FS);
    ck_assert_str_eq(tail_guard_reason(TAIL_GUARD_PSEUDO_FS), "pseudo_fs");
    close(s);
    free(fifo);
    free(sock);
    dirs_release(&d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_tail_guard");
    TCase *tc = tcase_create("tail_guard");
    tcase_add_test(tc, test_regular_files_and_links);
    tcase_add_test(tc, test_special_files_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
