/* A whole pipeline for end-to-end tests: a fresh database and topic, N
 * aggregators, one agent, the audit-writer appending and rotating files in
 * five formats, and a webhook receiver for alerts. Faults are applied by the
 * test between scenario_start and scenario_finish. */
#ifndef AUDITRAIL_TEST_SCENARIO_H
#define AUDITRAIL_TEST_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/support/proc.h"
#include "tests/support/webhook.h"

#define SCENARIO_MAX_AGGR 2

struct scenario_opts {
    int aggregators;          /* 1 or 2 */
    int files;                /* writer --files (mixed formats) */
    int count;                /* records per file */
    int rate;                 /* writer lines/s in total */
    int rotate_every;         /* 0 = no rotation */
    const char *rotate_style; /* rename | rename-nomatch | copytruncate */
    int partitions;           /* topic partitions */
    bool redis;               /* give the aggregators the stack's Redis */
    bool start_writer;        /* false: the test writes files itself */
    const char *agent_extra;  /* YAML lines appended under agent: (indented 2) */
    const char *aggr_extra;   /* YAML top-level sections appended */
};

struct scenario {
    struct scenario_opts o;
    char *tmp, *logdir, *ckdir, *extra_expected_dir;
    char *db, *topic, *dlq, *group, *brokers, *source_name;
    unsigned agent_port, aggr_port[SCENARIO_MAX_AGGR];
    char *agent_cfg, *aggr_cfg[SCENARIO_MAX_AGGR];
    struct proc *agent, *aggr[SCENARIO_MAX_AGGR], *writer;
    struct webhook *hook;
};

/* Fill defaults: 1 aggregator, 5 files, 2000 records each, 1000 lines/s,
 * rotate every 1500 records by rename, 24 partitions, Redis on, writer on. */
void scenario_defaults(struct scenario_opts *o);
/* Create everything and start the processes; waits until the aggregators and
 * the agent answer /readyz. */
void scenario_start(struct scenario *s, const char *name, const struct scenario_opts *o);
/* SIGKILL a process of the scenario and start it again, asserting that it
 * was still running until the kill: an instance that had crashed (or hit a
 * sanitizer report) before fails the test. */
void scenario_kill_restart(struct proc *p);
/* Wait for the writer to finish (exit 0) and PostgreSQL to hold as many
 * rows as records were written; assert every process still runs; stop the
 * agent (SIGTERM, exit 0: it drained); wait until the aggregators handled
 * every message of the topic (store_wait_drained), so that late re-sends
 * have landed; run the independent checker (e2e.h; with the json columns
 * when the writer ran) and assert it is exact; stop the aggregators
 * (SIGTERM, exit 0: under the sanitizers a leak or report fails here). */
void scenario_finish(struct scenario *s, unsigned timeout_ms);
/* Stop everything, drop the database, remove the temp dir. */
void scenario_release(struct scenario *s);

/* Run scripts/stack with the given arguments; returns its exit status. */
int scenario_stack(const char *args);
/* VmRSS of a process in KiB (0 when gone). */
long scenario_rss_kib(pid_t pid);

#endif
