/* Discovery: expand every input's glob and report the regular files found
 * (symlinks followed, as Kubernetes' /var/log/containers uses them). */
#ifndef AUDITRAIL_AGENT_TAIL_SCAN_H
#define AUDITRAIL_AGENT_TAIL_SCAN_H

#include <stddef.h>
#include <sys/stat.h>

#include "agent/agent_config.h"

typedef void (*tail_scan_fn)(void *ud, const char *path, size_t input, const struct stat *st);

/* Calls found() for each regular file matching an input, in input order then
 * path order. A file matching several inputs is reported for each; the
 * caller keeps the first. Returns the number of files reported. */
size_t tail_scan_run(const struct agent_config *cfg, tail_scan_fn found, void *ud);

/* Index of the first input whose glob matches path (fnmatch), or -1. */
int tail_scan_match(const struct agent_config *cfg, const char *path);

#endif
