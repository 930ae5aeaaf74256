/* The set of known files without Kafka (a counting sink): a scan opens new
 * files up to max_open_files and keeps the rest waiting, forgets a waiting
 * file that vanished and a checkpointed one that is gone, finds a
 * checkpointed file renamed outside the globs at the initial scan, and
 * starts files at their end under read_from: end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/checkpoint.h"
#include "agent/tail_set.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

struct fixture {
    char *dir;
    struct agent_config cfg;
    struct metrics *reg;
    struct agent_metrics m;
    struct tail_set *set;
    size_t records;
    struct ack_msg *msgs[64];
};

static enum tail_emit_rc sink(void *ud, const struct record_in *r, struct ack_msg *msg)
{
    struct fixture *f = ud;
    ck_assert_uint_lt(f->records, 64);
    f->msgs[f->records++] = msg;
    msg->bytes = 1;
    return TAIL_EMIT_OK;
}

static void setup(struct fixture *f, int max_open)
{
    memset(f, 0, sizeof(*f));
    f->dir = test_tmpdir("tailset");
    char *yaml = xasprintf("agent:\n  source_name: t/p/c\n  checkpoint_dir: %s\n"
                           "  max_open_files: %d\n  inputs:\n    - path: %s/*.log\n"
                           "kafka:\n  brokers: x:1\n",
                           f->dir, max_open, f->dir);
    char err[256];
    ck_assert_msg(agent_config_load_string(&f->cfg, yaml, err, sizeof(err)) == 0, "%s", err);
    free(yaml);
    f->reg = metrics_new();
    agent_metrics_init(&f->m, f->reg);
    f->set = tail_set_new(&f->cfg, &f->m, sink, f);
}

static void ack_all(struct fixture *f)
{
    for (size_t i = 0; i < f->records; i++)
        if (f->msgs[i]) {
            tail_file_delivered(f->msgs[i], true, NULL, true, time_mono_ms());
            f->msgs[i] = NULL;
        }
}

static void teardown(struct fixture *f)
{
    ack_all(f);
    tail_set_free(f->set);
    metrics_free(f->reg);
    agent_config_release(&f->cfg);
    test_rmtree(f->dir);
    free(f->dir);
}

static char *write_log(const struct fixture *f, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", f->dir, name);
    test_write_file(p, text, strlen(text), false);
    return p;
}

static size_t count_state(const struct tail_set *set, enum tail_state st)
{
    size_t n = 0;
    for (size_t i = 0; i < tail_set_count(set); i++)
        n += tail_file_state(tail_set_file(set, i)) == st;
    return n;
}

/* Read every open file to its end. */
static void read_all(struct fixture *f)
{
    for (size_t i = 0; i < tail_set_count(f->set); i++)
        tail_file_read(tail_set_file(f->set, i), 1 << 20, time_mono_ms());
}

START_TEST(test_open_limit_and_vanished_waiting_file)
{
    struct fixture f;
    setup(&f, 1);
    char *a = write_log(&f, "a.log", "a0\n");
    char *b = write_log(&f, "b.log", "b0\n");
    ck_assert_uint_eq(tail_set_rescan(f.set, true, false), TAIL_SET_OPENED);
    ck_assert_uint_eq(tail_set_count(f.set), 2);
    ck_assert_uint_eq(count_state(f.set, TAIL_OPEN), 1);
    ck_assert_uint_eq(count_state(f.set, TAIL_WAITING), 1);
    tail_set_update_gauges(f.set, time_mono_ms());
    ck_assert_int_eq(metric_value(f.m.open_files), 1);
    ck_assert_int_eq(metric_value(f.m.files_waiting), 1);
    /* a waiting file has no checkpoint entry yet */
    struct checkpoint c = {0};
    tail_set_checkpoint(f.set, &c);
    ck_assert_uint_eq(c.n, 1);
    checkpoint_release(&c);
    /* the waiting one vanishes: dropped, no checkpoint entry to remove */
    const char *waiting = tail_file_state(tail_set_file(f.set, 0)) == TAIL_WAITING ? a : b;
    ck_assert_int_eq(unlink(waiting), 0);
    ck_assert_uint_eq(tail_set_rescan(f.set, false, false), 0);
    ck_assert_uint_eq(tail_set_count(f.set), 1);
    ck_assert_uint_eq(count_state(f.set, TAIL_OPEN), 1);
    /* a rescan finds the open file again without opening anything */
    ck_assert_uint_eq(tail_set_rescan(f.set, false, false), 0);
    ck_assert_uint_eq(tail_set_count(f.set), 1);
    free(a);
    free(b);
    teardown(&f);
}
END_TEST

/* A checkpoint of one file, fully read and acknowledged, then released. */
static void checkpoint_of(struct fixture *f, struct checkpoint *c)
{
    ck_assert_uint_eq(tail_set_rescan(f->set, true, false), TAIL_SET_OPENED);
    read_all(f);
    ack_all(f);
    tail_set_checkpoint(f->set, c);
    ck_assert_uint_eq(c->n, 1);
}

/* The agent restarts from checkpoint c: a new set holding c's files. */
static void restart(struct fixture *f, const struct checkpoint *c)
{
    tail_set_free(f->set);
    f->set = tail_set_new(&f->cfg, &f->m, sink, f);
    tail_set_load(f->set, c);
}

START_TEST(test_gone_checkpointed_file_is_forgotten)
{
    struct fixture f;
    setup(&f, 4);
    char *a = write_log(&f, "a.log", "a0\na1\n");
    struct checkpoint c = {0};
    checkpoint_of(&f, &c);
    restart(&f, &c);
    ck_assert_uint_eq(count_state(f.set, TAIL_KNOWN), 1);
    ck_assert_int_eq(unlink(a), 0);
    ck_assert_uint_eq(tail_set_rescan(f.set, true, false), TAIL_SET_FORGOT);
    ck_assert_uint_eq(tail_set_count(f.set), 0);
    checkpoint_release(&c);
    free(a);
    teardown(&f);
}
END_TEST

START_TEST(test_renamed_outside_the_globs_is_found_at_start)
{
    struct fixture f;
    setup(&f, 4);
    char *a = write_log(&f, "a.log", "a0\na1\n");
    struct checkpoint c = {0};
    checkpoint_of(&f, &c);
    size_t before = f.records;
    /* while the agent is down: rotated to a name the glob does not match,
     * one more line written to it */
    char *rot = xasprintf("%s/a.log.1", f.dir);
    ck_assert_int_eq(rename(a, rot), 0);
    test_write_file(rot, "a2\n", 3, true);
    restart(&f, &c);
    ck_assert_uint_eq(tail_set_rescan(f.set, true, false), TAIL_SET_OPENED);
    ck_assert_uint_eq(tail_set_count(f.set), 1);
    struct tail_file *tf = tail_set_file(f.set, 0);
    ck_assert_int_eq(tail_file_state(tf), TAIL_OPEN);
    ck_assert_str_eq(tail_file_path(tf), rot);
    read_all(&f);
    ck_assert_uint_eq(f.records, before + 1); /* only the new line, from the checkpoint */
    checkpoint_release(&c);
    free(rot);
    free(a);
    teardown(&f);
}
END_TEST

START_TEST(test_from_end_starts_at_the_end)
{
    struct fixture f;
    setup(&f, 4);
    char *a = write_log(&f, "a.log", "old0\nold1\n");
    ck_assert_uint_eq(tail_set_rescan(f.set, true, true), TAIL_SET_OPENED);
    read_all(&f);
    ck_assert_uint_eq(f.records, 0);
    struct checkpoint c = {0};
    tail_set_checkpoint(f.set, &c);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_uint_eq(c.v[0].offset, 10);
    ck_assert_uint_gt(c.v[0].fp_len, 0); /* the position is remembered with an id */
    checkpoint_release(&c);
    test_write_file(a, "new\n", 4, true);
    read_all(&f);
    ck_assert_uint_eq(f.records, 1);
    free(a);
    teardown(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_tail_set");
    TCase *tc = tcase_create("tail_set");
    tcase_add_test(tc, test_open_limit_and_vanished_waiting_file);
    tcase_add_test(tc, test_gone_checkpointed_file_is_forgotten);
    tcase_add_test(tc, test_renamed_outside_the_globs_is_found_at_start);
    tcase_add_test(tc, test_from_end_starts_at_the_end);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
