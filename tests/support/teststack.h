/* Per-test isolation on the local stack (scripts/stack): fresh PostgreSQL
 * databases, the same database on the replica, unique Kafka topics, and the
 * kafka-mock control socket for fault injection. All functions read the
 * stack's addresses through test_stack() (testutil.h) and fail the current
 * test (ck_abort) when the stack is not usable, unless stated otherwise. */
#ifndef AUDITRAIL_TESTSTACK_H
#define AUDITRAIL_TESTSTACK_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>
#include <sys/types.h>

#include "tests/support/proc.h"

/* Create a new empty database on the primary, named from prefix (lowercased,
 * non [a-z0-9_] characters become '_', cut to 24 chars) + pid + a per-process
 * counter + random hex, so parallel suites never collide. Returns the
 * STACK_PG_PRIMARY conninfo with dbname replaced (heap, caller frees). Drop
 * it with test_pg_drop_db() when the test ends. */
char *test_pg_fresh_db(const char *prefix);

/* The replica's conninfo (STACK_PG_REPLICA) for the database named in
 * primary_conninfo. Heap, caller frees. Data appears there only after
 * replication: await it (test_pg_replica_catch_up). */
char *test_pg_replica_conninfo(const char *primary_conninfo);

/* Drop the database named in conninfo on the primary, terminating its
 * sessions first (DROP ... WITH (FORCE)). NULL-safe; a failure is printed on
 * stderr but does not fail the test (it is cleanup). */
void test_pg_drop_db(const char *conninfo);

/* Connect; ck_abort with libpq's message on failure. Caller PQfinish()es. */
PGconn *test_pg_connect(const char *conninfo);

/* Run sql (one or more statements, no result wanted); ck_abort with the
 * server's message on error. */
void test_pg_exec(PGconn *conn, const char *sql);

/* Run sql and return the first column of the first row as a heap string
 * (caller frees), or NULL when there is no row or the value is NULL.
 * ck_abort on error. */
char *test_pg_scalar(PGconn *conn, const char *sql);

/* Connect to conninfo, run sql, return the first column of the first row as
 * an integer (-1 when NULL or no row). ck_abort on error. */
long long test_pg_int(const char *conninfo, const char *sql);

/* Wait until the replica has replayed everything the primary had written
 * when this was called (pg_current_wal_lsn on the primary vs
 * pg_last_wal_replay_lsn on the replica). Conninfos of any database on each.
 * Returns false on timeout; does not abort. */
bool test_pg_replica_catch_up(const char *primary_conninfo, const char *replica_conninfo,
                              unsigned timeout_ms);

/* Send one command to kafka-mock's control socket (STACK_KAFKA_CONTROL) and
 * copy the reply line into reply (may be NULL). Returns 0 when the reply
 * starts with "ok", -1 otherwise (an "error: ..." reply, or the socket could
 * not be used: reply then holds the reason). Does not abort. Commands: ping,
 * topic create NAME PARTITIONS [REPLICATION], broker down|up ID,
 * brokers down|up, broker rtt ID MS, errors push API_KEY ERR_CODE [COUNT],
 * errors clear API_KEY, leader NAME PARTITION BROKER_ID, topic error NAME
 * ERR_CODE, bootstrap. */
int test_kafka_ctl(const char *command, char *reply, size_t len);

/* Create a unique topic (prefix + pid + counter + random hex) with the given
 * number of partitions on kafka-mock through the control socket. Returns its
 * name (heap, caller frees); ck_abort on failure. Topics are never deleted:
 * the mock is in memory and names never repeat. */
char *test_kafka_topic(const char *prefix, int partitions);

/* A private kafka-mock process, for tests that break Kafka (brokers down,
 * injected errors) without disturbing the shared stack's cluster. */
struct test_kafka_mock {
    struct proc *proc;
    char *dir;        /* temp dir: control socket, bootstrap file, log */
    char *control;    /* control socket path */
    char *bootstraps; /* "127.0.0.1:port,..." for bootstrap.servers */
};

/* Start build/bin/kafka-mock (or $AUDITRAIL_BIN_DIR/kafka-mock) with the
 * given number of brokers and wait until it listens. It dies with the test
 * process (tests/support/proc.h). ck_abort on failure. */
struct test_kafka_mock *test_kafka_mock_start(int brokers);

/* test_kafka_ctl() against this private mock. */
int test_kafka_mock_ctl(const struct test_kafka_mock *m, const char *command, char *reply,
                        size_t len);

/* SIGTERM the mock, wait for it, remove its temp dir and free m. Returns its
 * exit code as proc_stop does (0 = clean exit). NULL-safe (returns 0). */
int test_kafka_mock_stop(struct test_kafka_mock *m);

#endif
