/* inotify directory watches. */
#include "agent/tail_watch.h"

#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define WATCH_MASK                                                                                 \
    (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |            \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

struct tail_watch {
    int fd;
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

void tail_watch_free(struct tail_watch *w)
{
    if (!w)
        return;
    close(w->fd);
    free(w);
}

void tail_watch_refresh(struct tail_watch *w, const struct agent_config *cfg)
{
    if (!w)
        return;
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        char *copy = xstrdup(cfg->inputs[i].conf->path);
        const char *dir = dirname(copy);
        glob_t g;
        /* The directory part may itself hold wildcards. */
        if (glob(dir, GLOB_ONLYDIR, NULL, &g) == 0) {
            for (size_t k = 0; k < g.gl_pathc; k++)
                (void)inotify_add_watch(w->fd, g.gl_pathv[k], WATCH_MASK);
            globfree(&g);
        }
        free(copy);
    }
}

int tail_watch_fd(const struct tail_watch *w)
{
    return w ? w->fd : -1;
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
            if (e->mask & IN_Q_OVERFLOW)
                ev->overflow = true;
            if (e->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB |
                           IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
                ev->files_changed = true;
            if (e->mask & (IN_MODIFY | IN_CLOSE_WRITE))
                ev->data = true;
            p += sizeof(*e) + e->len;
        }
    }
}
