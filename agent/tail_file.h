/* One tailed file: its identity (dev, inode, birth time, fingerprint,
 * generation -> stream id), reading and framing, the hash chain position,
 * the in-flight tracker, and its lifecycle: rotation (drained, then closed
 * once acknowledged), deletion, truncation (new generation), rewind after a
 * failed delivery. Owned and driven by the main thread only. */
#ifndef AUDITRAIL_AGENT_TAIL_FILE_H
#define AUDITRAIL_AGENT_TAIL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "agent/ack_tracker.h"
#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/checkpoint.h"
#include "agent/record.h"

struct tail_file;

/* What the sink did with a record. */
enum tail_emit_rc {
    TAIL_EMIT_OK = 0,       /* produced; keep going */
    TAIL_EMIT_PAUSE_AFTER,  /* produced, but the in-flight limit is reached */
    TAIL_EMIT_PAUSE_BEFORE, /* not produced (queue full): re-read it later */
    TAIL_EMIT_BACKOFF,      /* not produced (cannot encode or produce): retry this file in 1 s */
};

/* The sink: r is valid during the call only; the sink sets msg->bytes (the
 * memory the message holds) and passes msg as the delivery report's opaque.
 * tail_file tracks msg when the record was produced, frees it otherwise. */
typedef enum tail_emit_rc (*tail_emit_fn)(void *ud, const struct record_in *r, struct ack_msg *msg);

/* Settings and services shared by every file; it must outlive the files. */
struct tail_ctx {
    const struct agent_config *cfg;
    struct agent_metrics *m;
    tail_emit_fn emit;
    void *emit_ud;
    uint8_t *buf; /* the one read buffer (agent.read_buffer_bytes) */
    size_t buf_len;
};

/* cfg, m and the sink's ud are borrowed; allocates the read buffer. */
void tail_ctx_init(struct tail_ctx *ctx, const struct agent_config *cfg, struct agent_metrics *m,
                   tail_emit_fn emit, void *emit_ud);
void tail_ctx_release(struct tail_ctx *ctx);

enum tail_state {
    TAIL_KNOWN,   /* closed; identity and acknowledged position known (checkpoint) */
    TAIL_WAITING, /* found, not opened yet (max_open_files) */
    TAIL_OPEN,
};

/* A file found by the scan (not opened) under cfg->inputs[input]; from_end:
 * its reading starts at its end (read_from: end at the very first start). */
struct tail_file *tail_file_new(const struct tail_ctx *ctx, const char *path, size_t input,
                                const struct stat *st, bool from_end);
/* A closed file from the checkpoint. */
struct tail_file *tail_file_from_checkpoint(const struct tail_ctx *ctx,
                                            const struct checkpoint_entry *e);
/* Close (if open), orphan anything in flight, free. NULL-safe. */
void tail_file_free(struct tail_file *tf);

/* Is this the file with that device and inode? */
bool tail_file_is(const struct tail_file *tf, uint64_t dev, uint64_t ino);
enum tail_state tail_file_state(const struct tail_file *tf);
/* The file's current name (the rotated name once known); valid until the
 * next call that changes tf. */
const char *tail_file_path(const struct tail_file *tf);

/* The scan found tf (tail_file_is) at path for cfg->inputs[input]: remember
 * the name; a closed file also takes the input and the size. */
void tail_file_found(struct tail_file *tf, const char *path, size_t input, const struct stat *st);
/* After a restart, for a checkpointed file the globs no longer find: it may
 * have been rotated to a name outside them while the agent was down. Looks
 * for its inode in its directory; true when found (as tail_file_found). */
bool tail_file_find_renamed(struct tail_file *tf);
/* Should the scan open this (found) file? A waiting one always; a closed one
 * when its size changed since it was closed, or, at the initial scan, when
 * it was not finished before the restart. */
bool tail_file_wants_open(const struct tail_file *tf, bool initial);

/* Open a WAITING or KNOWN file at its path and decide where to start:
 * KNOWN: verify dev/inode/fingerprint and offset <= size, then resume
 * (offset, seq, prev) - or start a new stream at 0 (inode reused, truncated);
 * WAITING: from 0, or from its end (tail_file_new's from_end).
 * Returns 0, -1 when the file cannot be opened (it stays as it was). */
int tail_file_open(struct tail_file *tf) __attribute__((warn_unused_result));

/* Open and not backing off (after a failed delivery or read error). */
bool tail_file_readable(const struct tail_file *tf, uint64_t now_ms);
/* Read up to `budget` bytes and hand the records found to the sink. Returns
 * true when the file may have more to read right away (the budget ran out
 * before its end and the sink did not pause). */
bool tail_file_read(struct tail_file *tf, size_t budget, uint64_t now_ms);

/* Periodic checks of an open file: truncation (size < position, or the
 * fingerprint changed), rotation (live_path no longer this inode), deletion
 * (no links). Flushes multiline records after flush_ms of quiet; finishes and
 * closes gone files once drained, quiet for rotate_wait_ms and acknowledged.
 * Returns true when the file was closed. */
bool tail_file_check(struct tail_file *tf, uint64_t now_ms);

/* The delivery report of msg (a message a tail_file handed to its sink):
 * advances its stream's acknowledged prefix, or, when it failed, goes back
 * to that prefix and reads again after a backoff (the same records, ids and
 * hashes) unless may_rewind is false (stopping). The failure is logged here.
 * Frees msg. Returns what happened to the prefix (ACK_NONE for a message
 * whose stream is gone). */
enum ack_result tail_file_delivered(struct ack_msg *msg, bool ok, const char *err, bool may_rewind,
                                    uint64_t now_ms);

/* Fill a checkpoint entry (pointing into tf, valid until tf changes); false
 * for a file not opened yet. A file without a record yet is saved without id
 * (fp_len 0), so that a restart finds it even if it was rotated outside the
 * globs meanwhile. */
bool tail_file_checkpoint(const struct tail_file *tf, struct checkpoint_entry *e);

/* Totals over files, for the gauges. */
struct tail_stats {
    size_t open, waiting, streams;
    uint64_t deleted_bytes;     /* sizes of deleted files held open */
    uint64_t buffered_bytes;    /* framer buffers */
    uint64_t backlog_bytes;     /* open files' bytes past their acknowledged prefix */
    uint64_t oldest_unacked_ms; /* monotonic; 0 = nothing in flight */
};
/* Add tf's share to *s. */
void tail_file_add_stats(const struct tail_file *tf, struct tail_stats *s);

#endif
