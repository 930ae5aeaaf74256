/* Shared helpers for the Check suites: run a suite, temp dirs, the local
 * stack's addresses, and waiting on conditions instead of sleeping. */
#ifndef AUDITRAIL_TESTUTIL_H
#define AUDITRAIL_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Run the suite (CK_FORK honoured), print Check's summary, return the exit
 * status for main(): 0 when every test passed, 1 when one failed or when no
 * test ran at all (a stray CK_RUN_CASE or CK_INCLUDE_TAGS selected none). */
int test_run_suite(Suite *s);

/* mkdtemp under $TMPDIR (or /tmp); heap path, caller frees. Aborts on failure. */
char *test_tmpdir(const char *prefix);
/* rm -rf path (NULL-safe). */
void test_rmtree(const char *path);
/* Write/append bytes to a file; abort on failure. */
void test_write_file(const char *path, const void *data, size_t len, bool append);
/* A whole file (heap, NUL after its *len bytes); NULL when it cannot be read. */
uint8_t *test_read_file(const char *path, size_t *len);

/* A seed for a test's randomness: $AUDITRAIL_TEST_SEED when set, else from
 * the clock. Printed on stderr with `what`, so a failure can be replayed. */
unsigned test_seed(const char *what);

/* A value from the local stack (scripts/stack writes .stack/env): looked up in
 * the environment first, then in $AUDITRAIL_STACK_ENV or <repo>/.stack/env.
 * Keys: STACK_PG_PRIMARY, STACK_PG_REPLICA (libpq conninfo), STACK_REDIS_URL,
 * STACK_REDIS_PORT, STACK_KAFKA_BROKERS, STACK_KAFKA_CONTROL, STACK_DIR.
 * Fails the current test (ck_abort) when the stack is not up. The returned
 * string stays valid for the life of the process. */
const char *test_stack(const char *key);

/* Repository root (directory holding Makefile), from $AUDITRAIL_ROOT or the
 * test binary's location. Static storage. */
const char *test_repo_root(void);
/* Path to a built binary, e.g. test_bin("auditrail-agent"); honours
 * $AUDITRAIL_BIN_DIR (the sanitizer run points it at its own build). Heap. */
char *test_bin(const char *name);

/* Poll cond(ud) every few ms until true or timeout_ms elapses; returns the
 * last result. Use this instead of sleeping. */
bool test_wait_until(bool (*cond)(void *ud), void *ud, unsigned timeout_ms);

uint64_t test_now_ms(void);

#endif
