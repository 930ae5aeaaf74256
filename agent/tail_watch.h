/* inotify on the directories of the inputs' globs. Events only say "look
 * again": the periodic rescan stays the source of truth (and covers
 * IN_Q_OVERFLOW, directories created later, filesystems without inotify). */
#ifndef AUDITRAIL_AGENT_TAIL_WATCH_H
#define AUDITRAIL_AGENT_TAIL_WATCH_H

#include <stdbool.h>

#include "agent/agent_config.h"

struct tail_watch;

/* NULL only if inotify is unavailable (then rescans alone are used). */
struct tail_watch *tail_watch_new(void);
void tail_watch_free(struct tail_watch *w); /* NULL-safe */
/* (Re)add watches on every input's directory (idempotent). */
void tail_watch_refresh(struct tail_watch *w, const struct agent_config *cfg);
int tail_watch_fd(const struct tail_watch *w);

struct tail_watch_events {
    bool files_changed; /* created, moved, deleted: rescan */
    bool data;          /* written to */
    bool overflow;      /* events lost: rescan */
};
/* Drain pending events (non-blocking) into ev (flags are OR-ed). */
void tail_watch_drain(struct tail_watch *w, struct tail_watch_events *ev);

#endif
