/* Which files the agent may read (issue 9 item 9): regular files only (no
 * FIFO, socket, device or directory), nothing on a kernel pseudo-filesystem
 * (/proc, /sys, cgroup, debugfs, ...), and no symbolic link — or, with
 * agent.follow_symlinks, only a link whose target stays beneath the link's
 * own directory. Otherwise an application sharing the log directory could
 * make the agent ship /proc/self/environ or a service-account token. */
#ifndef AUDITRAIL_AGENT_TAIL_GUARD_H
#define AUDITRAIL_AGENT_TAIL_GUARD_H

#include <stdbool.h>
#include <sys/stat.h>

enum tail_guard_verdict {
    TAIL_GUARD_OK = 0,
    TAIL_GUARD_SYMLINK,     /* a symbolic link, and links are not followed */
    TAIL_GUARD_ESCAPES,     /* a link whose target leaves its directory (or loops) */
    TAIL_GUARD_NOT_REGULAR, /* FIFO, socket, device, directory */
    TAIL_GUARD_PSEUDO_FS,   /* on procfs, sysfs, cgroupfs, debugfs, ... */
    TAIL_GUARD_GONE,        /* no such file (any more) */
    TAIL_GUARD_ERROR,       /* another error (errno is kept) */
};
#define TAIL_GUARD_REFUSALS 4 /* SYMLINK .. PSEUDO_FS: the refused kinds */

/* "symlink", "escapes", "not_regular", "pseudo_fs", "gone", "error": the
 * metric label and the word in logs. */
const char *tail_guard_reason(enum tail_guard_verdict v);
/* A sentence for the refusal log line. */
const char *tail_guard_explain(enum tail_guard_verdict v);

/* Check path under the rules without opening the file for reading (an
 * O_PATH descriptor: no side effect even on a device). On TAIL_GUARD_OK *st
 * is the file's (for a followed link, its target's). */
enum tail_guard_verdict tail_guard_stat(const char *path, bool follow, struct stat *st);

/* Open path read-only under the same rules, the check and the open on one
 * inode (no race with a rename or a swap). Returns the descriptor with *st
 * filled, or -1 with *v set (errno kept for TAIL_GUARD_ERROR). */
int tail_guard_open(const char *path, bool follow, struct stat *st, enum tail_guard_verdict *v);

#endif
