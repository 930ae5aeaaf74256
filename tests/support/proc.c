/* Test processes: fork with the die-with-parent signal, log redirection,
 * stop/kill/wait, and the record of every wait status. */
#include "tests/support/proc.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/io.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static char **strv_dup(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = xcalloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* In the child: tie it to the test process, send its output to the log. */
static void child_setup(const struct proc *p, pid_t parent)
{
    /* Die with the test process, whatever kills it; the parent may have
     * died between fork and prctl, which getppid tells. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
}

static void start(struct proc *p)
{
    pid_t parent = getpid();
    /* Buffered test output must not be written twice by the child. */
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork %s: %s", p->name, strerror(errno));
    if (pid == 0) {
        child_setup(p, parent);
        if (p->fn) {
            p->fn(p->ud);
            _exit(0);
        }
        for (size_t i = 0; p->env[i]; i++)
            putenv(p->env[i]);
        execv(p->argv[0], p->argv);
        fprintf(stderr, "exec %s: %s\n", p->argv[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    p->starts++;
}

static struct proc *proc_new(const char *name, const char *log)
{
    struct proc *p = xcalloc(1, sizeof(*p));
    p->name = xstrdup(name);
    p->log = xstrdup(log);
    return p;
}

struct proc *proc_spawn(const char *name, const char *const *argv, const char *const *env,
                        const char *log)
{
    struct proc *p = proc_new(name, log);
    p->argv = strv_dup(argv);
    p->env = strv_dup(env);
    start(p);
    return p;
}

struct proc *proc_spawn_program(const char *program, const char *config, const char *log)
{
    char *bin = test_bin(program);
    const char *argv[] = {bin, "--config", config, NULL};
    struct proc *p = proc_spawn(program, argv, NULL, log);
    free(bin);
    return p;
}

struct proc *proc_fork(const char *name, void (*fn)(void *ud), void *ud, const char *log)
{
    struct proc *p = proc_new(name, log);
    p->fn = fn;
    p->ud = ud;
    start(p);
    return p;
}

void proc_restart(struct proc *p)
{
    ck_assert_msg(p->pid == 0, "%s is still running", p->name);
    start(p);
}

static void record(struct proc *p, int st)
{
    p->status = xrealloc(p->status, (p->nstatus + 1) * sizeof(*p->status));
    p->status[p->nstatus++] = st;
    p->pid = 0;
}

static int code_of(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

bool proc_alive(struct proc *p, int *status)
{
    if (p->pid == 0)
        return false;
    int st = 0;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return true;
    ck_assert_msg(r == p->pid, "waitpid %s: %s", p->name, strerror(errno));
    record(p, st);
    if (status)
        *status = st;
    return false;
}

static bool ended(void *ud)
{
    return !proc_alive(ud, NULL);
}

int proc_wait(struct proc *p, unsigned timeout_ms)
{
    if (p->pid == 0)
        return -1;
    if (test_wait_until(ended, p, timeout_ms))
        return code_of(p->status[p->nstatus - 1]);
    proc_kill(p, SIGKILL);
    return -1;
}

int proc_kill(struct proc *p, int sig)
{
    if (p->pid == 0)
        return -1;
    kill(p->pid, sig);
    int st = 0;
    pid_t r;
    while ((r = waitpid(p->pid, &st, 0)) < 0 && errno == EINTR)
        ;
    ck_assert_msg(r == p->pid, "waitpid %s: %s", p->name, strerror(errno));
    record(p, st);
    return code_of(st);
}

int proc_stop(struct proc *p, unsigned timeout_ms)
{
    if (p->pid == 0)
        return -1;
    kill(p->pid, SIGTERM);
    return proc_wait(p, timeout_ms);
}

const char *proc_status_str(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, len, "wait status %#x", (unsigned)st);
    return buf;
}

void proc_free(struct proc *p)
{
    if (!p)
        return;
    if (p->pid)
        proc_kill(p, SIGKILL);
    free(p->name);
    free(p->log);
    free(p->status);
    strv_free(p->argv);
    strv_free(p->env);
    free(p);
}

/* Output into a file, then read: no pipe to drain while it runs. */
static void read_unlink(char *path, struct buf *b)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    ck_assert_msg(io_read_all(fd, (size_t)1 << 30, b) == 0, "%s: %s", path, strerror(errno));
    close(fd);
    unlink(path);
    buf_cstr(b);
}

int proc_run_sh(const char *cmd, struct buf *out, struct buf *err)
{
    char *dir = test_tmpdir("run");
    char *o = xasprintf("%s/stdout", dir), *e = xasprintf("%s/stderr", dir);
    char *line = xasprintf("(%s) >'%s' 2>'%s' </dev/null", cmd, o, e);
    int st = system(line);
    ck_assert_msg(st != -1, "system: %s", strerror(errno));
    read_unlink(o, out);
    read_unlink(e, err);
    test_rmtree(dir);
    free(line);
    free(o);
    free(e);
    free(dir);
    return code_of(st);
}
