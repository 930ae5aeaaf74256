/* inotify on the directories of the inputs' globs. Most events only say
 * "look again" (the periodic rescan stays the source of truth and covers
 * directories created later and filesystems without inotify); renames are
 * reported with both names, so a file renamed away from a globbed name
 * before any scan saw it can still be followed (tail_set_follow_moves). */
#ifndef AUDITRAIL_AGENT_TAIL_WATCH_H
#define AUDITRAIL_AGENT_TAIL_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/agent_config.h"

struct tail_watch;

/* NULL only if inotify is unavailable (then rescans alone are used). */
struct tail_watch *tail_watch_new(void);
void tail_watch_free(struct tail_watch *w); /* NULL-safe */
/* (Re)add watches on every input's directory (idempotent). */
void tail_watch_refresh(struct tail_watch *w, const struct agent_config *cfg);
int tail_watch_fd(const struct tail_watch *w);
/* Are events waiting to be drained? (a poll(2) with no wait; NULL-safe) */
bool tail_watch_pending(const struct tail_watch *w);

/* One rename inside the watched directories, as full paths (heap). */
struct tail_move {
    char *from, *to;
};

struct tail_watch_events {
    bool files_changed;      /* created, moved, deleted: rescan */
    bool data;               /* written to */
    bool overflow;           /* events lost: rescan, and look for what was missed */
    struct tail_move *moves; /* in the order they happened */
    size_t n_moves, cap_moves;
};
/* Drain pending events (non-blocking) into ev (flags are OR-ed, moves
 * appended). A rename whose other half is outside the watched directories
 * is only a files_changed. */
void tail_watch_drain(struct tail_watch *w, struct tail_watch_events *ev);
/* Free the moves and reset ev to empty. */
void tail_watch_events_release(struct tail_watch_events *ev);

#endif
