/* The files the agent knows, in discovery order: merging each scan into
 * them (new, renamed, vanished files; the max_open_files limit), following
 * files that left a globbed name before any scan saw them, their periodic
 * checks, the checkpoint's entries and the file gauges. Owns the files and
 * the tail_ctx they share. Main thread only. */
#ifndef AUDITRAIL_AGENT_TAIL_SET_H
#define AUDITRAIL_AGENT_TAIL_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/checkpoint.h"
#include "agent/tail_file.h"
#include "agent/tail_watch.h"

struct tail_set;

/* Empty; cfg, m and the sink's ud are borrowed and must outlive the set
 * (sink is copied). */
struct tail_set *tail_set_new(const struct agent_config *cfg, struct agent_metrics *m,
                              const struct tail_sink *sink);
/* Frees every file (orphaning what is in flight). NULL-safe. */
void tail_set_free(struct tail_set *set);

/* Add the checkpoint's files, closed (TAIL_KNOWN), and remember when the
 * scan it reflects ran (checkpoint.scanned_at_ns, for tail_set_sweep). */
void tail_set_load(struct tail_set *set, const struct checkpoint *c);
/* The scanned_at_ns of the loaded checkpoint (0 = none or unknown). */
uint64_t tail_set_loaded_scan_ns(const struct tail_set *set);
/* Wall-clock ns at which the latest complete scan started (0 = none yet). */
uint64_t tail_set_last_scan_ns(const struct tail_set *set);

/* What a rescan changed (flags). */
enum tail_set_change {
    TAIL_SET_OPENED = 1, /* files were opened: worth a checkpoint at once */
    TAIL_SET_FORGOT = 2, /* closed files are gone: their checkpoint entries go */
};
/* Run the globs (tail_scan) and merge: new files join (at their end when
 * from_end), refused names are warned about once and counted; a file not
 * found under its name is kept while open, looked for by its inode in its
 * directory while unfinished (waiting, or checkpointed and not done: given
 * up, logged and counted only when its inode is gone), and forgotten once
 * done. Then files are opened up to max_open_files. Returns enum
 * tail_set_change flags. */
unsigned tail_set_rescan(struct tail_set *set, bool from_end);

/* inotify's renames, in order: a file renamed away from a globbed name
 * (directly, or through further renames) whose inode the set does not know
 * is added at its final name, to be read from its start like any rotated
 * file. Returns how many files were added. */
size_t tail_set_follow_moves(struct tail_set *set, const struct tail_move *moves, size_t n);

/* File times come from the kernel's coarse clock (and a network
 * filesystem's own): a file born this long before a scan started may still
 * have been missed by it. */
#define TAIL_SET_SWEEP_SLACK_NS 1000000000ull

/* After events may have been missed (inotify overflow, or a restart):
 * for every known file whose globbed name L no longer holds it, the files
 * of L's directory whose names extend L (L.1, L-20260101, ...; not
 * compressed ones: .gz .bz2 .xz .zst .lz4 .zip .Z), with an inode the set
 * does not know and born (statx birth time, else ctime) at or after
 * since_ns - TAIL_SET_SWEEP_SLACK_NS, are added as unseen rotated
 * generations. since_ns is the start of the last scan that saw the
 * directory. A name still holding its known file (copytruncate) is not
 * swept: its copies are not new records. Returns how many were added. */
size_t tail_set_sweep(struct tail_set *set, uint64_t since_ns);

/* The files in order, for the reading rounds; i < tail_set_count. */
size_t tail_set_count(const struct tail_set *set);
struct tail_file *tail_set_file(const struct tail_set *set, size_t i);

/* tail_file_check on every file; true when one was closed (a slot is free). */
bool tail_set_check(struct tail_set *set, uint64_t now_ms);

/* Stopping: from now on multiline records are flushed and rotated-away or
 * deleted files finished as soon as they are read to their end. */
void tail_set_drain_mode(struct tail_set *set);
/* Has every file shipped (and had acknowledged) all it can? */
bool tail_set_drained(const struct tail_set *set);
/* What could not be shipped: logs each file with records left (and an
 * unterminated last line) and returns the total number of records. */
uint64_t tail_set_report_unshipped(const struct tail_set *set);

/* Append every file's entry to c (entries are copied) and the time of the
 * latest scan (scanned_at_ns). */
void tail_set_checkpoint(const struct tail_set *set, struct checkpoint *c);

/* Set the file gauges; returns the monotonic ms of the oldest unacknowledged
 * record (0 = none). */
uint64_t tail_set_update_gauges(const struct tail_set *set, uint64_t now_ms);

#endif
