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
    TAIL_EMIT_WAIT_ACK,     /* produced; produce nothing more of this stream until it is
                             * acknowledged (a message the broker might refuse as too
                             * large: if it does, it is cut and hashed again, and no later
                             * record may have been chained to it meanwhile) */
};

/* The sink: r is valid during the call only; the sink sets msg->bytes (the
 * memory the message holds) and passes msg as the delivery report's opaque.
 * tail_file tracks msg when the record was produced, frees it otherwise. */
typedef enum tail_emit_rc (*tail_emit_fn)(void *ud, const struct record_in *r, struct ack_msg *msg);
/* How many of r's r->len bytes fit in one message (<= r->len), asked before
 * the record is hashed: a record is hashed once, at the size it can be
 * shipped. r->hash points to a placeholder. Must depend only on the bytes
 * (and the sink's limits), so that a re-read cuts the same way. */
typedef size_t (*tail_fit_fn)(void *ud, const struct record_in *r);

struct tail_sink {
    tail_emit_fn emit;
    tail_fit_fn fit; /* NULL: records are cut at max_record_bytes only */
    void *ud;
};

/* Settings and services shared by every file; it must outlive the files. */
struct tail_ctx {
    const struct agent_config *cfg;
    struct agent_metrics *m;
    struct tail_sink sink;
    uint8_t *buf; /* the one read buffer (agent.read_buffer_bytes) */
    size_t buf_len;
    bool draining; /* stopping: flush and finish at once, no quiet period */
};

/* cfg, m and the sink's ud are borrowed (sink is copied); allocates the
 * read buffer. */
void tail_ctx_init(struct tail_ctx *ctx, const struct agent_config *cfg, struct agent_metrics *m,
                   const struct tail_sink *sink);
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
/* A file found at path after it had left its globbed name live_path unseen
 * (renamed before any scan saw it): read from its start, and drained and
 * closed like any rotated-away file. */
struct tail_file *tail_file_new_rotated(const struct tail_ctx *ctx, const char *path,
                                        const char *live_path, size_t input, const struct stat *st);
/* A closed file from the checkpoint. */
struct tail_file *tail_file_from_checkpoint(const struct tail_ctx *ctx,
                                            const struct checkpoint_entry *e);
/* Close (if open), orphan anything in flight, free. NULL-safe. */
void tail_file_free(struct tail_file *tf);

/* Is this the file with that device and inode? */
bool tail_file_is(const struct tail_file *tf, uint64_t dev, uint64_t ino);
/* Its device, inode and birth time (ns, 0 = unknown). */
void tail_file_identity(const struct tail_file *tf, uint64_t *dev, uint64_t *ino, uint64_t *btime);
/* Not finished: waiting to be opened, or closed (from the checkpoint) with
 * records that may not all be acknowledged yet. */
bool tail_file_unfinished(const struct tail_file *tf);
enum tail_state tail_file_state(const struct tail_file *tf);
/* The file's current name (the rotated name once known); valid until the
 * next call that changes tf. */
const char *tail_file_path(const struct tail_file *tf);
/* The globbed name it was found under (its current name elsewhere means it
 * was rotated away). */
const char *tail_file_live_path(const struct tail_file *tf);

/* The scan found tf (tail_file_is) at path for cfg->inputs[input]: remember
 * the name; a closed file also takes the input and the size. */
void tail_file_found(struct tail_file *tf, const char *path, size_t input, const struct stat *st);
/* For an unfinished file (tail_file_unfinished) the globs no longer find at
 * its name: it may have been rotated to a name outside them (while the agent
 * was down, or between a scan and the open). Looks for its inode in its
 * directory; true when found (as tail_file_found). */
bool tail_file_find_renamed(struct tail_file *tf);
/* Should the scan open this (found) file? A waiting one always; a closed one
 * when it is unfinished or its size changed since it was closed. */
bool tail_file_wants_open(const struct tail_file *tf);

/* Open a WAITING or KNOWN file at its path (under tail_guard's rules) and
 * decide where to start:
 * KNOWN: verify dev/inode/fingerprint and offset <= size, then resume
 * (offset, seq, prev) - or start a new stream at 0 (inode reused, truncated);
 * WAITING: from 0, or from its end (tail_file_new's from_end).
 * Returns 0, -1 when the file cannot be opened (it stays as it was; a name
 * that now holds another inode counts as not found: the next scan looks for
 * the file by its inode). A refusal or an error is logged once per file. */
int tail_file_open(struct tail_file *tf) __attribute__((warn_unused_result));

/* Open, not backing off (after a failed delivery or read error) and not
 * waiting for a TAIL_EMIT_WAIT_ACK record's acknowledgement. */
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
 * hashes, unless the sink's fit now cuts a record that was refused as too
 * large) unless may_rewind is false (stopping). The failure is logged here.
 * Frees msg. now_ms (the monotonic clock) is read only when !ok. Returns
 * what happened to the prefix (ACK_NONE for a message whose stream is gone). */
enum ack_result tail_file_delivered(struct ack_msg *msg, bool ok, const char *err, bool may_rewind,
                                    uint64_t now_ms);

/* Fill a checkpoint entry (pointing into tf, valid until tf changes). A file
 * without a record yet (or not opened yet: from where it will start) is saved
 * without id (fp_len 0), so that a restart finds it even if it was rotated
 * outside the globs meanwhile. Returns true. */
bool tail_file_checkpoint(const struct tail_file *tf, struct checkpoint_entry *e);

/* Stopping (ctx->draining): has everything that can be shipped been
 * acknowledged? Open: read to its end, nothing held back but an
 * unterminated last line, nothing in flight; closed: nothing past its
 * acknowledged prefix; waiting: only when empty. */
bool tail_file_drained(const struct tail_file *tf);

/* What is past the acknowledged prefix: records (as the framer would cut
 * them, an unterminated last line included) and bytes. Reads the file (it
 * is opened for it when closed); 0 when it cannot be read. */
struct tail_unshipped {
    uint64_t records, bytes;
    bool partial; /* the last of them is an unterminated line */
};
void tail_file_unshipped(const struct tail_file *tf, struct tail_unshipped *u);

/* Totals over files, for the gauges. */
struct tail_stats {
    size_t open, waiting, streams;
    uint64_t deleted_bytes;     /* sizes of deleted files held open */
    uint64_t buffered_bytes;    /* framer buffers */
    uint64_t backlog_bytes;     /* open files' bytes past their acknowledged prefix */
    uint64_t oldest_unacked_ms; /* monotonic, from the first attempt to ship the oldest record
                                 * not acknowledged yet (re-sends do not reset it); 0 = none */
};
/* Add tf's share to *s. */
void tail_file_add_stats(const struct tail_file *tf, struct tail_stats *s);

#endif
