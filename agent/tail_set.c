/* The known files as an ordered array of slots; a slot's `seen` is the scan
 * bookkeeping, the files keep everything else. Beside them: the names
 * refused by the last scan (warned about once) and the identities of files
 * recently finished and forgotten, so that following renames and sweeping
 * never picks such a file up again. */
#include "agent/tail_set.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "agent/tail_scan.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define TOMBSTONES 1024 /* finished files remembered, oldest overwritten */

struct slot {
    struct tail_file *tf;
    bool seen; /* found by the current scan */
};

struct refused {
    char *path;
    bool seen;
};

struct tombstone {
    uint64_t dev, ino, btime;
};

struct tail_set {
    struct tail_ctx ctx; /* shared by the files: its address must not move */
    struct slot *v;
    size_t n, cap;
    struct refused *ref;
    size_t n_ref, cap_ref;
    struct tombstone tomb[TOMBSTONES];
    size_t n_tomb, next_tomb;
    uint64_t last_scan_ns, loaded_scan_ns;
};

struct tail_set *tail_set_new(const struct agent_config *cfg, struct agent_metrics *m,
                              const struct tail_sink *sink)
{
    struct tail_set *set = xcalloc(1, sizeof(*set));
    tail_ctx_init(&set->ctx, cfg, m, sink);
    return set;
}

void tail_set_free(struct tail_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        tail_file_free(set->v[i].tf);
    free(set->v);
    for (size_t i = 0; i < set->n_ref; i++)
        free(set->ref[i].path);
    free(set->ref);
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

/* Free slot i's file, remembering who it was, and close the gap (the order
 * is kept). */
static void drop(struct tail_set *set, size_t i)
{
    struct tombstone *t = &set->tomb[set->next_tomb];
    tail_file_identity(set->v[i].tf, &t->dev, &t->ino, &t->btime);
    set->next_tomb = (set->next_tomb + 1) % TOMBSTONES;
    if (set->n_tomb < TOMBSTONES)
        set->n_tomb++;
    tail_file_free(set->v[i].tf);
    memmove(&set->v[i], &set->v[i + 1], (set->n - i - 1) * sizeof(*set->v));
    set->n--;
}

void tail_set_load(struct tail_set *set, const struct checkpoint *c)
{
    for (size_t i = 0; i < c->n; i++)
        add(set, tail_file_from_checkpoint(&set->ctx, &c->v[i]));
    set->loaded_scan_ns = c->scanned_at_ns;
}

uint64_t tail_set_loaded_scan_ns(const struct tail_set *set)
{
    return set->loaded_scan_ns;
}

uint64_t tail_set_last_scan_ns(const struct tail_set *set)
{
    return set->last_scan_ns;
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

/* A refused name is warned about and counted when it appears, not at every
 * scan while it stays. */
static void on_refused(void *ud, const char *path, size_t input, enum tail_guard_verdict v)
{
    struct tail_set *set = ((struct scan_state *)ud)->set;
    for (size_t i = 0; i < set->n_ref; i++) {
        if (!strcmp(set->ref[i].path, path)) {
            set->ref[i].seen = true;
            return;
        }
    }
    if (set->n_ref == set->cap_ref) {
        set->cap_ref = set->cap_ref ? 2 * set->cap_ref : 8;
        set->ref = xrealloc(set->ref, set->cap_ref * sizeof(*set->ref));
    }
    set->ref[set->n_ref++] = (struct refused){xstrdup(path), true};
    metric_inc(set->ctx.m->files_refused[v]);
    log_warn("not reading %s (input %zu): %s", path, input, tail_guard_explain(v));
}

static void forget_unseen_refusals(struct tail_set *set)
{
    for (size_t i = 0; i < set->n_ref;) {
        if (set->ref[i].seen) {
            set->ref[i++].seen = false;
            continue;
        }
        free(set->ref[i].path);
        set->ref[i] = set->ref[--set->n_ref];
    }
}

/* A file the scan did not find: keep it while open (its own checks follow
 * its rotation or deletion) or while unfinished and its inode is still in
 * its directory (found again under its new name); otherwise forget it.
 * *forgot: a checkpoint entry goes. */
static bool keep_unseen(struct tail_set *set, struct tail_file *tf, bool *forgot)
{
    enum tail_state st = tail_file_state(tf);
    if (st == TAIL_OPEN)
        return true;
    if (tail_file_unfinished(tf)) {
        if (tail_file_find_renamed(tf))
            return true; /* opened below, drained, closed */
        struct checkpoint_entry e;
        (void)tail_file_checkpoint(tf, &e);
        if (e.offset > 0)
            log_error("stream %s: %s is gone (deleted, or moved out of its directory) before the "
                      "agent could read it past offset %llu: if it held more, that is lost",
                      e.stream[0] ? e.stream : "(unnamed)", tail_file_path(tf),
                      (unsigned long long)e.offset);
        else
            log_error("%s is gone (deleted, or moved out of its directory) before the agent "
                      "could read it: its records are lost",
                      tail_file_path(tf));
        metric_inc(set->ctx.m->files_lost);
    }
    *forgot = true;
    return false;
}

unsigned tail_set_rescan(struct tail_set *set, bool from_end)
{
    uint64_t started = (uint64_t)time_now_us() * 1000;
    for (size_t i = 0; i < set->n; i++)
        set->v[i].seen = false;
    struct scan_state ss = {set, from_end};
    struct tail_scan_cb cb = {on_found, on_refused, &ss};
    tail_scan_run(set->ctx.cfg, &cb);
    forget_unseen_refusals(set);

    bool forgot = false, opened = false;
    size_t open_n = 0;
    for (size_t i = 0; i < set->n; i++)
        open_n += tail_file_state(set->v[i].tf) == TAIL_OPEN;
    size_t max_open = (size_t)set->ctx.cfg->file.agent.max_open_files;
    for (size_t i = 0; i < set->n;) {
        struct slot *sl = &set->v[i];
        if (!sl->seen) {
            if (!keep_unseen(set, sl->tf, &forgot)) {
                drop(set, i);
                continue;
            }
            sl->seen = true;
        }
        /* A failed open leaves the file as it was: the next scan finds it
         * again, under its name or by its inode. */
        if (open_n < max_open && tail_file_wants_open(sl->tf) && tail_file_open(sl->tf) == 0) {
            open_n++;
            opened = true;
        }
        i++;
    }
    set->last_scan_ns = started;
    return (opened ? TAIL_SET_OPENED : 0) | (forgot ? TAIL_SET_FORGOT : 0);
}

/* Does the set know this file, or did it finish it recently? */
static bool known(const struct tail_set *set, const struct stat *st, uint64_t btime)
{
    for (size_t i = 0; i < set->n; i++)
        if (tail_file_is(set->v[i].tf, (uint64_t)st->st_dev, (uint64_t)st->st_ino))
            return true;
    for (size_t i = 0; i < set->n_tomb; i++) {
        const struct tombstone *t = &set->tomb[i];
        if (t->dev == (uint64_t)st->st_dev && t->ino == (uint64_t)st->st_ino &&
            (t->btime == 0 || btime == 0 || t->btime == btime))
            return true;
    }
    return false;
}

/* Birth time of path in ns (statx), else its ctime: when it came to be, or
 * at least when it was last renamed. */
static uint64_t born_ns(const char *path, bool follow)
{
    struct statx stx;
    if (statx(AT_FDCWD, path, follow ? 0 : AT_SYMLINK_NOFOLLOW, STATX_BTIME | STATX_CTIME, &stx) <
        0)
        return 0;
    const struct statx_timestamp *t =
        (stx.stx_mask & STATX_BTIME) ? &stx.stx_btime : &stx.stx_ctime;
    return (uint64_t)t->tv_sec * 1000000000ull + t->tv_nsec;
}

static uint64_t btime_ns(const char *path, bool follow)
{
    struct statx stx;
    if (statx(AT_FDCWD, path, follow ? 0 : AT_SYMLINK_NOFOLLOW, STATX_BTIME, &stx) < 0 ||
        !(stx.stx_mask & STATX_BTIME))
        return 0;
    return (uint64_t)stx.stx_btime.tv_sec * 1000000000ull + stx.stx_btime.tv_nsec;
}

/* path holds a file that left the globbed name live_path unseen: add it
 * unless it is known, refused or gone. */
static bool adopt(struct tail_set *set, const char *path, const char *live_path, size_t input,
                  const char *how)
{
    struct stat st;
    bool follow = set->ctx.cfg->file.agent.follow_symlinks;
    if (tail_guard_stat(path, follow, &st) != TAIL_GUARD_OK ||
        known(set, &st, btime_ns(path, follow)))
        return false;
    add(set, tail_file_new_rotated(&set->ctx, path, live_path, input, &st));
    metric_inc(set->ctx.m->files_recovered);
    log_warn("%s left %s before a scan saw it (%s): reading it from its start", path, live_path,
             how);
    return true;
}

/* A name that holds a file which was at a globbed name. */
struct trail {
    char *name, *origin;
    size_t input;
};

static struct trail *trail_find(struct trail *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name))
            return &t[i];
    return NULL;
}

size_t tail_set_follow_moves(struct tail_set *set, const struct tail_move *moves, size_t n)
{
    const struct agent_config *cfg = set->ctx.cfg;
    struct trail *t = n ? xcalloc(n, sizeof(*t)) : NULL;
    size_t nt = 0, added = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tail_move *m = &moves[i];
        int in = tail_scan_match(cfg, m->from);
        struct trail *from = trail_find(t, nt, m->from), *to = trail_find(t, nt, m->to);
        char *origin = NULL;
        size_t input = 0;
        if (in >= 0) {
            origin = xstrdup(m->from);
            input = (size_t)in;
        } else if (from) {
            origin = from->origin;
            input = from->input;
            from->origin = NULL;
        }
        if (from) { /* the name is empty now */
            free(from->name);
            free(from->origin);
            *from = t[--nt];
            to = trail_find(t, nt, m->to);
        }
        if (to) { /* what the target name held was replaced */
            free(to->name);
            free(to->origin);
            *to = t[--nt];
        }
        if (!origin)
            continue;
        if (tail_scan_match(cfg, m->to) >= 0) {
            free(origin); /* still under a glob: the scan sees it */
            continue;
        }
        t[nt++] = (struct trail){xstrdup(m->to), origin, input};
    }
    for (size_t i = 0; i < nt; i++) {
        added += adopt(set, t[i].name, t[i].origin, t[i].input, "renamed while unseen");
        free(t[i].name);
        free(t[i].origin);
    }
    free(t);
    return added;
}

static bool compressed(const char *name)
{
    static const char *const ext[] = {".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        size_t e = strlen(ext[i]);
        if (n > e && !strcmp(name + n - e, ext[i]))
            return true;
    }
    return false;
}

/* The sweep of one left name L (see tail_set_sweep). */
static size_t sweep_name(struct tail_set *set, const char *live, size_t input, uint64_t since_ns)
{
    const struct agent_config *cfg = set->ctx.cfg;
    bool follow = cfg->file.agent.follow_symlinks;
    char *copy = xstrdup(live);
    char *dir = xstrdup(dirname(copy));
    const char *base = strrchr(live, '/') ? strrchr(live, '/') + 1 : live;
    size_t bl = strlen(base), added = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, base, bl) != 0 || de->d_name[bl] == '\0' || compressed(de->d_name))
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        uint64_t born = born_ns(path, follow);
        if (tail_scan_match(cfg, path) < 0 && born + TAIL_SET_SWEEP_SLACK_NS >= since_ns)
            added += adopt(set, path, live, input, "found by the sweep");
        free(path);
    }
    if (d)
        closedir(d);
    free(dir);
    free(copy);
    return added;
}

size_t tail_set_sweep(struct tail_set *set, uint64_t since_ns)
{
    const struct agent_config *cfg = set->ctx.cfg;
    bool follow = cfg->file.agent.follow_symlinks;
    size_t added = 0, n = set->n; /* files added by the sweep are not swept from */
    char **done = xcalloc(n + 1, sizeof(*done));
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tail_file *tf = set->v[i].tf;
        const char *live = tail_file_live_path(tf);
        int in = tail_scan_match(cfg, live);
        bool seen_before = false;
        for (size_t k = 0; k < nd && !seen_before; k++)
            seen_before = !strcmp(done[k], live);
        struct stat st;
        if (in < 0 || seen_before)
            continue;
        int rc = follow ? stat(live, &st) : lstat(live, &st);
        if (rc == 0 && tail_file_is(tf, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
            continue; /* still there: nothing was rotated away from this name */
        done[nd++] = xstrdup(live);
        added += sweep_name(set, live, (size_t)in, since_ns);
    }
    for (size_t k = 0; k < nd; k++)
        free(done[k]);
    free(done);
    return added;
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

void tail_set_drain_mode(struct tail_set *set)
{
    set->ctx.draining = true;
}

bool tail_set_drained(const struct tail_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        if (!tail_file_drained(set->v[i].tf))
            return false;
    return true;
}

uint64_t tail_set_report_unshipped(const struct tail_set *set)
{
    uint64_t total = 0;
    for (size_t i = 0; i < set->n; i++) {
        struct tail_file *tf = set->v[i].tf;
        struct tail_unshipped u;
        tail_file_unshipped(tf, &u);
        if (u.records == 0)
            continue;
        struct checkpoint_entry e;
        (void)tail_file_checkpoint(tf, &e);
        log_warn("%s: %llu record%s (%llu bytes) from offset %llu not shipped%s", e.path,
                 (unsigned long long)u.records, u.records == 1 ? "" : "s",
                 (unsigned long long)u.bytes, (unsigned long long)e.offset,
                 u.partial ? ", the last an unterminated line waiting for its newline" : "");
        total += u.records;
    }
    return total;
}

void tail_set_checkpoint(const struct tail_set *set, struct checkpoint *c)
{
    for (size_t i = 0; i < set->n; i++) {
        struct checkpoint_entry e;
        if (tail_file_checkpoint(set->v[i].tf, &e))
            checkpoint_add(c, &e);
    }
    c->scanned_at_ns = set->last_scan_ns;
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
