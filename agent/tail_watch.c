/* inotify directory watches: a table of watch descriptors to directory
 * names, and IN_MOVED_FROM / IN_MOVED_TO paired by their cookie. */
#include "agent/tail_watch.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "agent/tail_scan.h"
#include "common/log.h"
#include "common/xmalloc.h"

#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |            \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

struct watched_dir {
    int wd;
    char *path;
};

/* The first half of a rename, waiting for its IN_MOVED_TO. */
struct pending_from {
    uint32_t cookie;
    char *path;
    int drains; /* drains it has waited through */
};

struct tail_watch {
    int fd;
    struct watched_dir *dirs;
    size_t n_dirs, cap_dirs;
    struct pending_from *from;
    size_t n_from, cap_from;
};

struct tail_watch *tail_watch_new(void)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        log_warn("inotify unavailable (%s): relying on rescans", strerror(errno));
        return NULL;
    }
    struct tail_watch *w = xcalloc(1, sizeof(*w));
    w->fd = fd;
    return w;
}

static void clear_from(struct tail_watch *w)
{
    for (size_t i = 0; i < w->n_from; i++)
        free(w->from[i].path);
    w->n_from = 0;
}

void tail_watch_free(struct tail_watch *w)
{
    if (!w)
        return;
    close(w->fd);
    for (size_t i = 0; i < w->n_dirs; i++)
        free(w->dirs[i].path);
    free(w->dirs);
    clear_from(w);
    free(w->from);
    free(w);
}

static struct watched_dir *find_wd(struct tail_watch *w, int wd)
{
    for (size_t i = 0; i < w->n_dirs; i++)
        if (w->dirs[i].wd == wd)
            return &w->dirs[i];
    return NULL;
}

/* inotify gives the same wd for the same directory again: remember each
 * once, under the name it was last added with. */
static void remember_dir(struct tail_watch *w, int wd, const char *path)
{
    struct watched_dir *d = find_wd(w, wd);
    if (d) {
        if (strcmp(d->path, path) != 0) {
            free(d->path);
            d->path = xstrdup(path);
        }
        return;
    }
    if (w->n_dirs == w->cap_dirs) {
        w->cap_dirs = w->cap_dirs ? 2 * w->cap_dirs : 8;
        w->dirs = xrealloc(w->dirs, w->cap_dirs * sizeof(*w->dirs));
    }
    w->dirs[w->n_dirs++] = (struct watched_dir){wd, xstrdup(path)};
}

static void forget_dir(struct tail_watch *w, int wd)
{
    for (size_t i = 0; i < w->n_dirs; i++) {
        if (w->dirs[i].wd != wd)
            continue;
        free(w->dirs[i].path);
        w->dirs[i] = w->dirs[--w->n_dirs];
        return;
    }
}

static void watch_dir(void *ud, const char *dir)
{
    struct tail_watch *w = ud;
    int wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
    if (wd >= 0)
        remember_dir(w, wd, dir);
}

void tail_watch_refresh(struct tail_watch *w, const struct agent_config *cfg)
{
    if (w)
        tail_scan_dirs(cfg, watch_dir, w);
}

int tail_watch_fd(const struct tail_watch *w)
{
    return w ? w->fd : -1;
}

bool tail_watch_pending(const struct tail_watch *w)
{
    if (!w)
        return false;
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

static void add_move(struct tail_watch_events *ev, char *from, char *to)
{
    if (ev->n_moves == ev->cap_moves) {
        ev->cap_moves = ev->cap_moves ? 2 * ev->cap_moves : 8;
        ev->moves = xrealloc(ev->moves, ev->cap_moves * sizeof(*ev->moves));
    }
    ev->moves[ev->n_moves++] = (struct tail_move){from, to};
}

/* A rename's two halves carry one cookie and are queued one after the
 * other (they may straddle two reads). */
static void on_move(struct tail_watch *w, const struct inotify_event *e, const char *dir,
                    struct tail_watch_events *ev)
{
    char *path = xasprintf("%s/%s", dir, e->name);
    if (e->mask & IN_MOVED_FROM) {
        if (w->n_from == w->cap_from) {
            w->cap_from = w->cap_from ? 2 * w->cap_from : 8;
            w->from = xrealloc(w->from, w->cap_from * sizeof(*w->from));
        }
        w->from[w->n_from++] = (struct pending_from){e->cookie, path, 0};
        return;
    }
    for (size_t i = 0; i < w->n_from; i++) {
        if (w->from[i].cookie != e->cookie)
            continue;
        add_move(ev, w->from[i].path, path);
        w->from[i] = w->from[--w->n_from];
        return;
    }
    free(path); /* moved in from outside: a new file, the rescan finds it */
}

static void on_event(struct tail_watch *w, const struct inotify_event *e,
                     struct tail_watch_events *ev)
{
    if (e->mask & IN_Q_OVERFLOW)
        ev->overflow = true;
    if (e->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB |
                   IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
        ev->files_changed = true;
    if (e->mask & (IN_MODIFY | IN_CLOSE_WRITE))
        ev->data = true;
    if (e->mask & IN_IGNORED) {
        forget_dir(w, e->wd);
        return;
    }
    const struct watched_dir *d = find_wd(w, e->wd);
    if (d && e->len > 0 && (e->mask & (IN_MOVED_FROM | IN_MOVED_TO)))
        on_move(w, e, d->path, ev);
}

void tail_watch_drain(struct tail_watch *w, struct tail_watch_events *ev)
{
    if (!w)
        return;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            on_event(w, e, ev);
            p += sizeof(*e) + e->len;
        }
    }
    /* The kernel queues the two halves one after the other, but a drain can
     * fall between them: a first half waits for one more drain, then it was
     * a move out of the watched directories (nothing to follow). */
    for (size_t i = 0; i < w->n_from;) {
        if (++w->from[i].drains < 2) {
            i++;
            continue;
        }
        free(w->from[i].path);
        w->from[i] = w->from[--w->n_from];
    }
}

void tail_watch_events_release(struct tail_watch_events *ev)
{
    for (size_t i = 0; i < ev->n_moves; i++) {
        free(ev->moves[i].from);
        free(ev->moves[i].to);
    }
    free(ev->moves);
    memset(ev, 0, sizeof(*ev));
}
