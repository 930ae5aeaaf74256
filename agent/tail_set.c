/* The known files as an ordered array of slots; a slot's `seen` is the scan
 * bookkeeping, the files keep everything else. */
#include "agent/tail_set.h"

#include <stdlib.h>
#include <string.h>

#include "agent/tail_scan.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"

struct slot {
    struct tail_file *tf;
    bool seen; /* found by the current scan */
};

struct tail_set {
    struct tail_ctx ctx; /* shared by the files: its address must not move */
    struct slot *v;
    size_t n, cap;
};

struct tail_set *tail_set_new(const struct agent_config *cfg, struct agent_metrics *m,
                              tail_emit_fn emit, void *emit_ud)
{
    struct tail_set *set = xcalloc(1, sizeof(*set));
    tail_ctx_init(&set->ctx, cfg, m, emit, emit_ud);
    return set;
}

void tail_set_free(struct tail_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        tail_file_free(set->v[i].tf);
    free(set->v);
    tail_ctx_release(&set->ctx);
    free(set);
}

static struct slot *add(struct tail_set *set, struct tail_file *tf)
{
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->v = xrealloc(set->v, set->cap * sizeof(*set->v));
    }
    set->v[set->n] = (struct slot){.tf = tf};
    return &set->v[set->n++];
}

/* Free slot i's file and close the gap (the order is kept). */
static void drop(struct tail_set *set, size_t i)
{
    tail_file_free(set->v[i].tf);
    memmove(&set->v[i], &set->v[i + 1], (set->n - i - 1) * sizeof(*set->v));
    set->n--;
}

void tail_set_load(struct tail_set *set, const struct checkpoint *c)
{
    for (size_t i = 0; i < c->n; i++)
        add(set, tail_file_from_checkpoint(&set->ctx, &c->v[i]));
}

struct scan_state {
    struct tail_set *set;
    bool from_end;
};

static void on_found(void *ud, const char *path, size_t input, const struct stat *st)
{
    struct scan_state *ss = ud;
    struct tail_set *set = ss->set;
    for (size_t i = 0; i < set->n; i++) {
        struct slot *sl = &set->v[i];
        if (!tail_file_is(sl->tf, (uint64_t)st->st_dev, (uint64_t)st->st_ino))
            continue;
        if (sl->seen)
            return; /* matched by an earlier input or another link */
        sl->seen = true;
        tail_file_found(sl->tf, path, input, st);
        return;
    }
    add(set, tail_file_new(&set->ctx, path, input, st, ss->from_end))->seen = true;
}

/* A file the scan did not find: keep it (open: its own checks follow its
 * rotation or deletion; at the initial scan, a checkpointed file found again
 * under another name), or forget it. *forgot: a checkpoint entry goes. */
static bool keep_unseen(struct tail_file *tf, bool initial, bool *forgot)
{
    enum tail_state st = tail_file_state(tf);
    if (st == TAIL_OPEN)
        return true;
    if (st == TAIL_WAITING)
        return false; /* vanished before it was opened */
    struct checkpoint_entry e;
    (void)tail_file_checkpoint(tf, &e); /* always true for a KNOWN file */
    if (initial && !e.done && tail_file_find_renamed(tf))
        return true; /* opened below, drained, closed */
    if (!e.done)
        log_warn("stream %s: %s is gone before its records from offset %llu were acknowledged",
                 e.stream, e.path, (unsigned long long)e.offset);
    *forgot = true;
    return false;
}

unsigned tail_set_rescan(struct tail_set *set, bool initial, bool from_end)
{
    for (size_t i = 0; i < set->n; i++)
        set->v[i].seen = false;
    struct scan_state ss = {set, from_end};
    tail_scan_run(set->ctx.cfg, on_found, &ss);

    bool forgot = false, opened = false;
    size_t open_n = 0;
    for (size_t i = 0; i < set->n; i++)
        open_n += tail_file_state(set->v[i].tf) == TAIL_OPEN;
    size_t max_open = (size_t)set->ctx.cfg->file.agent.max_open_files;
    for (size_t i = 0; i < set->n;) {
        struct slot *sl = &set->v[i];
        if (!sl->seen) {
            if (!keep_unseen(sl->tf, initial, &forgot)) {
                drop(set, i);
                continue;
            }
            sl->seen = true;
        }
        if (open_n < max_open && tail_file_wants_open(sl->tf, initial)) {
            if (tail_file_open(sl->tf) == 0) {
                open_n++;
                opened = true;
            } else if (tail_file_state(sl->tf) == TAIL_WAITING) {
                drop(set, i); /* could not be opened: the next scan tries again */
                continue;
            }
        }
        i++;
    }
    return (opened ? TAIL_SET_OPENED : 0) | (forgot ? TAIL_SET_FORGOT : 0);
}

size_t tail_set_count(const struct tail_set *set)
{
    return set->n;
}

struct tail_file *tail_set_file(const struct tail_set *set, size_t i)
{
    return set->v[i].tf;
}

bool tail_set_check(struct tail_set *set, uint64_t now_ms)
{
    bool closed = false;
    for (size_t i = 0; i < set->n; i++)
        if (tail_file_check(set->v[i].tf, now_ms))
            closed = true;
    return closed;
}

void tail_set_checkpoint(const struct tail_set *set, struct checkpoint *c)
{
    for (size_t i = 0; i < set->n; i++) {
        struct checkpoint_entry e;
        if (tail_file_checkpoint(set->v[i].tf, &e))
            checkpoint_add(c, &e);
    }
}

uint64_t tail_set_update_gauges(const struct tail_set *set, uint64_t now_ms)
{
    struct tail_stats s = {0};
    for (size_t i = 0; i < set->n; i++)
        tail_file_add_stats(set->v[i].tf, &s);
    struct agent_metrics *m = set->ctx.m;
    metric_set(m->open_files, (double)s.open);
    metric_set(m->files_waiting, (double)s.waiting);
    metric_set(m->streams, (double)s.streams);
    metric_set(m->deleted_open_bytes, (double)s.deleted_bytes);
    metric_set(m->buffered_bytes, (double)s.buffered_bytes);
    metric_set(m->backlog_bytes, (double)s.backlog_bytes);
    uint64_t oldest = s.oldest_unacked_ms;
    metric_set(m->oldest_unacked_age, oldest ? (double)(now_ms - oldest) / 1000.0 : 0);
    return oldest;
}
