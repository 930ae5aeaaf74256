/* inotify as tail_watch reports it: renames inside the watched directories
 * as (from, to) pairs in order, with full paths; a rename out of them is only
 * a change; events only for the inputs' directories. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_config.h"
#include "agent/tail_watch.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

START_TEST(test_renames_reported_in_order)
{
    char *dir = test_tmpdir("watch"), *away = test_tmpdir("watch-away");
    char *yaml = xasprintf("agent:\n  checkpoint_dir: %s\n  inputs:\n    - path: %s/*.log\n"
                           "kafka:\n  brokers: x:1\n",
                           dir, dir);
    struct agent_config cfg = {0};
    char err[256];
    ck_assert_msg(agent_config_load_string(&cfg, yaml, err, sizeof(err)) == 0, "%s", err);
    struct tail_watch *w = tail_watch_new();
    ck_assert_ptr_nonnull(w);
    tail_watch_refresh(w, &cfg);
    tail_watch_refresh(w, &cfg); /* idempotent */
    char *a = xasprintf("%s/a.log", dir), *a1 = xasprintf("%s/a.log.1", dir);
    char *a2 = xasprintf("%s/a.log.2", dir), *out = xasprintf("%s/gone", away);
    test_write_file(a, "x\n", 2, false);
    ck_assert_int_eq(rename(a, a1), 0);
    ck_assert_int_eq(rename(a1, a2), 0);
    test_write_file(a, "y\n", 2, false);
    ck_assert_int_eq(rename(a, out), 0);
    ck_assert(tail_watch_pending(w));
    struct tail_watch_events ev = {0};
    tail_watch_drain(w, &ev);
    ck_assert(ev.files_changed);
    ck_assert(ev.data);
    ck_assert(!ev.overflow);
    ck_assert_uint_eq(ev.n_moves, 2);
    ck_assert_str_eq(ev.moves[0].from, a);
    ck_assert_str_eq(ev.moves[0].to, a1);
    ck_assert_str_eq(ev.moves[1].from, a1);
    ck_assert_str_eq(ev.moves[1].to, a2);
    ck_assert(!tail_watch_pending(w));
    tail_watch_events_release(&ev);
    ck_assert_uint_eq(ev.n_moves, 0);
    /* the move out of the directory never pairs up */
    tail_watch_drain(w, &ev);
    tail_watch_drain(w, &ev);
    ck_assert_uint_eq(ev.n_moves, 0);
    tail_watch_events_release(&ev);
    tail_watch_free(w);
    agent_config_release(&cfg);
    free(a);
    free(a1);
    free(a2);
    free(out);
    free(yaml);
    test_rmtree(dir);
    test_rmtree(away);
    free(dir);
    free(away);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_tail_watch");
    TCase *tc = tcase_create("tail_watch");
    tcase_add_test(tc, test_renames_reported_in_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
