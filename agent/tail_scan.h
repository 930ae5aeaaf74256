/* Discovery: expand every input's glob and report the files found, under
 * the rules of tail_guard (symbolic links only with agent.follow_symlinks
 * and only beneath their directory; regular files; no pseudo-filesystem). */
#ifndef AUDITRAIL_AGENT_TAIL_SCAN_H
#define AUDITRAIL_AGENT_TAIL_SCAN_H

#include <stddef.h>
#include <sys/stat.h>

#include "agent/agent_config.h"
#include "agent/tail_guard.h"

struct tail_scan_cb {
    /* A file that may be tailed: st is the file's (a followed link's target's). */
    void (*found)(void *ud, const char *path, size_t input, const struct stat *st);
    /* A name the rules refuse (one of the TAIL_GUARD_REFUSALS kinds). */
    void (*refused)(void *ud, const char *path, size_t input, enum tail_guard_verdict v);
    void *ud;
};

/* Calls cb->found for each file matching an input, in input order then path
 * order, and cb->refused for each refused name (directories are skipped
 * silently). A file matching several inputs is reported for each; the caller
 * keeps the first. Returns the number of files found. */
size_t tail_scan_run(const struct agent_config *cfg, const struct tail_scan_cb *cb);

/* Index of the first input whose glob matches path (fnmatch), or -1. */
int tail_scan_match(const struct agent_config *cfg, const char *path);

/* Calls fn for every existing directory the inputs' globs look into (the
 * directory part of each glob, itself expanded). */
void tail_scan_dirs(const struct agent_config *cfg, void (*fn)(void *ud, const char *dir),
                    void *ud);

#endif
