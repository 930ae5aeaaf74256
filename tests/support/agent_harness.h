/* The agent's integration and e2e suites: an agent with its own directory,
 * log dir and topic (on the stack's kafka-mock or a private one), its
 * messages read back whole and verified independently of the agent's code
 * (tests/support/chain.h: OpenSSL and jansson), and compared with the files
 * the test wrote (tests/support/expect.h). */
#ifndef AUDITRAIL_TESTS_AGENT_HARNESS_H
#define AUDITRAIL_TESTS_AGENT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/support/expect.h"
#include "tests/support/proc.h"
#include "tests/support/teststack.h"

struct ah_opts {
    const char *agent_extra;      /* YAML lines under agent:, indented 2 (may be NULL) */
    const char *inputs;           /* the inputs list, a format with one %s: the log dir */
    const char *kafka_properties; /* lines under kafka.properties, indented 4 (may be NULL) */
    int partitions;               /* of the topic; 0 = 4 */
    bool private_mock;            /* a kafka-mock of its own, for Kafka faults */
    const char *topic;            /* ship to this topic of the stack (NULL: a new one) */
    const char *brokers;          /* ship there instead (a topic named after the env) */
    const char *alerts_url;       /* NULL: no alerts section */
};

struct ah_env {
    char *dir;  /* temp dir: config, agent.log, ckpt/ */
    char *logs; /* dir/logs: the files the agent tails */
    char *config, *log, *topic, *brokers;
    unsigned port;                /* the agent's HTTP port */
    struct test_kafka_mock *mock; /* NULL unless private_mock */
    struct proc *agent;           /* NULL until ah_start */
};

void ah_env_init(struct ah_env *e, const char *name, const struct ah_opts *o);
/* Kill the agent if it runs, stop a private mock, remove the temp dir. */
void ah_env_release(struct ah_env *e);
/* logs/name (heap). */
char *ah_path(const struct ah_env *e, const char *name);

/* Start the agent, or start it again after it ended. */
void ah_start(struct ah_env *e);
/* SIGTERM; assert it drained and exited 0. */
void ah_stop(struct ah_env *e);
/* SIGKILL; assert it was still running until then (the status is the kill). */
void ah_kill(struct ah_env *e);
/* Wait until this agent instance acknowledged at least n records. */
void ah_wait_acked(struct ah_env *e, double n);

struct ah_msg {
    char *key, *stream;
    uint64_t seq, offset, truncated;
    char id[37];
    uint8_t hash[32], prev[32];
    uint8_t *line;
    size_t line_len;
    int64_t time_us, read_time_us;
    char *path, *source_name, *format, *time_source;
};

struct ah_msgs {
    struct ah_msg *v;
    size_t n, cap;
    size_t dups; /* exact re-sends dropped by ah_collect */
};
void ah_msgs_release(struct ah_msgs *m);

#define AH_ANY (-1)
/* Counts ah_collect asserts; AH_ANY leaves one unchecked. A zeroed field
 * asserts 0: no re-sends unless the test says otherwise. */
struct ah_want {
    long records; /* distinct records */
    long streams;
    long dups; /* exact re-sends */
};

/* Read the whole topic (the agent has stopped, so nothing more comes),
 * parse every message, verify each one's key, hash, id and genesis and each
 * stream's seq 0..n-1 and links independently, drop exact re-sends (a
 * differing re-send is a fork and fails), sort by stream then seq, and
 * assert the counts of want. */
void ah_collect(const struct ah_env *e, struct ah_want want, struct ah_msgs *out);

/* Wait until the topic holds `distinct` different records (the agent still
 * runs); false on timeout. */
bool ah_wait_distinct(const struct ah_env *e, size_t distinct, unsigned timeout_ms);

/* Assert that the collected streams are exactly the files of x: each
 * stream's records one file's records in order, each file one stream. */
void ah_assert_files(const struct ah_msgs *m, const struct expect *x);

/* The first message of the stream whose records came from path, or NULL. */
const struct ah_msg *ah_first_of(const struct ah_msgs *m, const char *path);

#endif
