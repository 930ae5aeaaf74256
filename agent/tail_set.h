/* The files the agent knows, in discovery order: merging each scan into
 * them (new, renamed, vanished files; the max_open_files limit), their
 * periodic checks, the checkpoint's entries and the file gauges. Owns the
 * files and the tail_ctx they share. Main thread only. */
#ifndef AUDITRAIL_AGENT_TAIL_SET_H
#define AUDITRAIL_AGENT_TAIL_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/checkpoint.h"
#include "agent/tail_file.h"

struct tail_set;

/* Empty; cfg, m and the sink's ud are borrowed and must outlive the set. */
struct tail_set *tail_set_new(const struct agent_config *cfg, struct agent_metrics *m,
                              tail_emit_fn emit, void *emit_ud);
/* Frees every file (orphaning what is in flight). NULL-safe. */
void tail_set_free(struct tail_set *set);

/* Add the checkpoint's files, closed (TAIL_KNOWN). */
void tail_set_load(struct tail_set *set, const struct checkpoint *c);

/* What a rescan changed (flags). */
enum tail_set_change {
    TAIL_SET_OPENED = 1, /* files were opened: worth a checkpoint at once */
    TAIL_SET_FORGOT = 2, /* closed files are gone: their checkpoint entries go */
};
/* Run the globs (tail_scan) and merge: new files join (at their end when
 * from_end), files not found are forgotten unless open (at the initial scan
 * a checkpointed file is first looked for under another name), then files
 * are opened up to max_open_files. Returns enum tail_set_change flags. */
unsigned tail_set_rescan(struct tail_set *set, bool initial, bool from_end);

/* The files in order, for the reading rounds; i < tail_set_count. */
size_t tail_set_count(const struct tail_set *set);
struct tail_file *tail_set_file(const struct tail_set *set, size_t i);

/* tail_file_check on every file; true when one was closed (a slot is free). */
bool tail_set_check(struct tail_set *set, uint64_t now_ms);

/* Append every file's entry to c (entries are copied). */
void tail_set_checkpoint(const struct tail_set *set, struct checkpoint *c);

/* Set the file gauges; returns the monotonic ms of the oldest unacknowledged
 * record (0 = none). */
uint64_t tail_set_update_gauges(const struct tail_set *set, uint64_t now_ms);

#endif
