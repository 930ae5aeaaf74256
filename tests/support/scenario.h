/* A whole pipeline for end-to-end tests: a fresh database and topic, N
 * aggregators, one agent, the audit-writer appending and rotating files in
 * five formats, and a webhook receiver for alerts. Faults are applied by the
 * test between scenario_start and scenario_finish. */
#ifndef AUDITRAIL_TEST_SCENARIO_H
#define AUDITRAIL_TEST_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/support/e2e.h"
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
    char *db, *topic, *dlq, *group;
    unsigned agent_port, aggr_port[SCENARIO_MAX_AGGR];
    char *agent_cfg, *aggr_cfg[SCENARIO_MAX_AGGR];
    struct e2e_proc *agent, *aggr[SCENARIO_MAX_AGGR], *writer;
    struct webhook *hook;
};

/* Fill defaults: 1 aggregator, 5 files, 2000 records each, 1000 lines/s,
 * rotate every 1500 records by rename, 24 partitions, Redis on, writer on. */
void scenario_defaults(struct scenario_opts *o);
/* Create everything and start the processes; waits until the aggregators and
 * the agent answer /readyz. */
void scenario_start(struct scenario *s, const char *name, const struct scenario_opts *o);
/* Start an aggregator or agent process again after e2e_kill. */
void scenario_restart_aggr(struct scenario *s, int i);
void scenario_restart_agent(struct scenario *s);
/* Wait for the writer to finish (exit 0), then until PostgreSQL holds every
 * record (timeout_ms), then run the independent checker and assert it is
 * exact. Also asserts that every process is still alive, then stops them
 * with SIGTERM and asserts they exit 0. */
void scenario_finish(struct scenario *s, unsigned timeout_ms);
/* Stop everything, drop the database, remove the temp dir. */
void scenario_release(struct scenario *s);

/* Run scripts/stack with the given arguments; returns its exit status. */
int scenario_stack(const char *args);
/* VmRSS of a process in KiB (0 when gone). */
long scenario_rss_kib(pid_t pid);

#endif
