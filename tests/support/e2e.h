/* End-to-end harness: real processes (spawn, SIGKILL, restart), their HTTP
 * side, and an independent checker that compares what a writer put in log
 * files with what landed in PostgreSQL. The checker uses no product code:
 * it splits the files itself and lets PostgreSQL's own sha256() verify the
 * hash chains, so a bug in the agent's framing or hashing cannot hide. */
#ifndef AUDITRAIL_TEST_E2E_H
#define AUDITRAIL_TEST_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct e2e_proc {
    char *name;
    char **argv; /* NULL-terminated, owned */
    char **env;  /* extra NAME=value entries, NULL-terminated, owned */
    char *log;   /* stdout+stderr appended here */
    pid_t pid;   /* 0 when not running */
    int starts;
};

/* Start argv[0] with extra env (may be NULL), output appended to log.
 * ck_abort on failure to fork/exec. */
struct e2e_proc *e2e_spawn(const char *name, const char *const *argv, const char *const *env,
                           const char *log);
/* Start it again with the same arguments (after a kill). */
void e2e_restart(struct e2e_proc *p);
/* Send sig and reap; returns the wait status (or -1 if not running). */
int e2e_kill(struct e2e_proc *p, int sig);
/* SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the exit code, or
 * 128+signal when killed. */
int e2e_stop(struct e2e_proc *p, unsigned timeout_ms);
/* True while the process runs (reaps it if it exited; *status gets the wait
 * status then). */
bool e2e_alive(struct e2e_proc *p, int *status);
void e2e_proc_free(struct e2e_proc *p); /* stops it first if running */

/* A free TCP port on 127.0.0.1 (bind to 0, read, close). */
unsigned e2e_free_port(void);
/* GET http://127.0.0.1:port/path; returns status (-1 unreachable), body in
 * *body when non-NULL (heap). */
long e2e_http_get(unsigned port, const char *path, char **body);
/* Sum of every sample of metric `name` (exact family name, any labels, or
 * the series given with its labels, e.g. name{layer="lru"}). -1 when the
 * endpoint is unreachable. */
double e2e_metric(unsigned port, const char *name);
bool e2e_wait_ready(unsigned port, unsigned timeout_ms);
/* Wait until e2e_metric(port, name) >= at_least. */
bool e2e_wait_metric(unsigned port, const char *name, double at_least, unsigned timeout_ms);

/* Every record the writer wrote: every regular file under dir, split at '\n',
 * empty lines skipped, a last line without '\n' included, each cut to
 * max_record_bytes (0 = no cut) as the agent cuts long records. Appends to
 * *out, which starts zeroed. */
struct e2e_records {
    uint8_t **rec;
    size_t *len;
    size_t n, cap;
};
void e2e_collect_records(const char *dir, size_t max_record_bytes, struct e2e_records *out);
void e2e_records_release(struct e2e_records *r);

struct e2e_report {
    size_t expected, rows, missing, unexpected, duplicate_rows;
    size_t streams, streams_bad_seq, bad_hash, bad_link, bad_id, bad_genesis;
    char problem[1024]; /* the first few problems, human readable */
};
/* Compare the records with auditrail.events on conninfo and verify every
 * stream's chain with SQL. Returns true when all is exact: every record
 * stored once, byte-identical, seq 0..n-1 per stream, hashes, links, ids and
 * genesis correct. */
bool e2e_check(const char *conninfo, const struct e2e_records *exp, struct e2e_report *r);
/* Row count of auditrail.events (-1 on error). */
long long e2e_row_count(const char *conninfo);
/* Wait until the row count reaches n (returns false on timeout). */
bool e2e_wait_rows(const char *conninfo, long long n, unsigned timeout_ms);

#endif
