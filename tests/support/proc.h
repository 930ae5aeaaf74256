/* The one launcher for every process a test starts (programs of build/bin,
 * or a function of the test in a child): it dies with the test, its output
 * goes to a log, and every wait status it ever had is kept. */
#ifndef AUDITRAIL_TEST_PROC_H
#define AUDITRAIL_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct proc {
    char *name;
    char *log;  /* stdout+stderr appended here */
    pid_t pid;  /* 0 when not running */
    int starts; /* how many times it was started */
    /* Every wait status reaped, oldest first: an instance that crashed
     * before the test killed it stays visible here. */
    int *status;
    size_t nstatus;
    /* private */
    char **argv, **env;
    void (*fn)(void *ud);
    void *ud;
};

/* A program: argv[0] is its path; env (NULL-terminated NAME=value, may be
 * NULL) is added to the environment. Started at once. ck_abort when fork
 * fails; an exec failure shows as exit status 127 and in the log. */
struct proc *proc_spawn(const char *name, const char *const *argv, const char *const *env,
                        const char *log);
/* test_bin(program) --config config: how every auditrail program starts. */
struct proc *proc_spawn_program(const char *program, const char *config, const char *log);
/* A function of the test run in a child process that exits 0 when fn
 * returns (fn may _exit itself). */
struct proc *proc_fork(const char *name, void (*fn)(void *ud), void *ud, const char *log);

/* Start it again (after it exited or was killed); ck_abort while it runs. */
void proc_restart(struct proc *p);

/* The three calls below reap the process, record its wait status and
 * return it as a shell would: the exit code (0..255), 128+N when signal N
 * ended it, or -1 when it did not end within the timeout (it is SIGKILLed
 * and reaped then, that status recorded too) or was not running. */

/* Send sig and wait for the end. */
int proc_kill(struct proc *p, int sig);
/* Wait up to timeout_ms for it to end by itself. */
int proc_wait(struct proc *p, unsigned timeout_ms);
/* SIGTERM, then wait up to timeout_ms. */
int proc_stop(struct proc *p, unsigned timeout_ms);

/* True while it runs; reaps it (status recorded, *status set when not NULL)
 * when it has ended. */
bool proc_alive(struct proc *p, int *status);

/* "exit 3", "signal 9 (Killed)": a wait status for messages. */
const char *proc_status_str(int status, char *buf, size_t len);

/* SIGKILL it when it runs, then free. NULL-safe. */
void proc_free(struct proc *p);

struct buf;
/* A short-lived command run to its end (e.g. a CLI invocation): the shell
 * command line cmd, stdin from /dev/null, its stdout and stderr apart into
 * out and err (appended, NUL-terminated). Returns the exit status as a
 * shell gives it (128+N after signal N). */
int proc_run_sh(const char *cmd, struct buf *out, struct buf *err);

#endif
