/* One tailed file: its identity (dev, inode, birth time, fingerprint,
 * generation -> stream id), reading and framing, the hash chain position,
 * the in-flight tracker, and its lifecycle: rotation (drained, then closed
 * once acknowledged), deletion, truncation (new generation), rewind after a
 * failed delivery. Owned and driven by the main loop only. */
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
#include "agent/framer.h"
#include "agent/stream_id.h"
#include "common/hashchain.h"

struct tail_file;

/* What the sink did with a record. */
enum tail_emit_rc {
    TAIL_EMIT_OK = 0,      /* produced; keep going */
    TAIL_EMIT_PAUSE_AFTER, /* produced, but the in-flight limit is reached */
    TAIL_EMIT_PAUSE_BEFORE /* not produced (queue full): re-read it later */
};

struct tail_record {
    const struct framer_record *fr;
    uint64_t seq;
    const uint8_t *prev, *hash;
    struct ack_msg *msg;  /* the sink sets msg->bytes; tail_file pushes it when produced */
    int64_t read_time_us; /* when its bytes were read (one clock reading per read) */
};

typedef enum tail_emit_rc (*tail_emit_fn)(void *ud, struct tail_file *tf,
                                          const struct tail_record *r);

/* Settings and services shared by every file (owned by the agent). */
struct tail_ctx {
    const struct agent_config *cfg;
    const char *source_name;
    struct agent_metrics *m;
    tail_emit_fn emit;
    void *emit_ud;
    uint8_t *buf; /* the one read buffer */
    size_t buf_len;
};

enum tail_state {
    TAIL_KNOWN,   /* closed; identity and acknowledged position known (checkpoint) */
    TAIL_WAITING, /* found, not opened yet (max_open_files) */
    TAIL_OPEN,
};

struct tail_file {
    struct tail_file *next;
    enum tail_state state;
    char *path;      /* current name (the rotated name once known) */
    char *live_path; /* the name it was found under; elsewhere = rotated away */
    size_t input;    /* index into cfg->inputs */
    int fd;
    uint64_t dev, ino, btime;
    uint64_t size;        /* last fstat */
    uint64_t closed_size; /* KNOWN: size when it was closed; reopened only if it changes */
    bool seen;            /* found by the current scan */
    bool start_at_end;    /* read_from: end applies (found at the very first start) */

    /* identity */
    uint64_t generation;
    bool have_id;
    uint8_t fp[STREAM_FP_LEN];
    uint64_t fp_len;
    char stream[2 * STREAM_ID_LEN + 1];

    /* chain position of the next record to produce */
    uint64_t next_seq;
    uint8_t prev[CHAIN_HASH_LEN];
    struct ack_tracker tr; /* tr.acked = the checkpoint */
    bool done;             /* finished and fully acknowledged (checkpoint flag) */

    struct framer *fr;
    bool gone;     /* rotated away or deleted: drain, finish, close */
    bool deleted;  /* link count 0 */
    bool at_eof;   /* the last read returned 0 bytes */
    bool finished; /* framer_finish ran (final unterminated line emitted) */
    uint64_t last_data_ms;
    uint64_t resume_ms; /* no reading before this (backoff after a failed delivery) */
    unsigned failures;  /* consecutive failed deliveries, for the backoff */
};

/* A file found by the scan (not opened). */
struct tail_file *tail_file_new(const char *path, size_t input, const struct stat *st,
                                uint64_t btime);
/* A closed file from the checkpoint. */
struct tail_file *tail_file_from_checkpoint(const struct checkpoint_entry *e);
/* Close (if open), orphan anything in flight, free. NULL-safe. */
void tail_file_free(struct tail_file *tf);

/* Open a WAITING or KNOWN file at its path and decide where to start:
 * KNOWN: verify dev/inode/fingerprint and offset <= size, then resume
 * (offset, seq, prev) - or start a new stream at 0 (inode reused, truncated);
 * WAITING: from `start_offset` (0, or the size under read_from: end).
 * Returns 0, -1 when the file cannot be opened (it stays as it was). */
int tail_file_open(struct tail_file *tf, const struct tail_ctx *ctx, bool from_end);

/* Read up to `budget` bytes and emit the records found. Returns 1 when the
 * sink paused (in-flight limit), 0 otherwise. */
int tail_file_read(struct tail_file *tf, const struct tail_ctx *ctx, size_t budget,
                   uint64_t now_ms);

/* Periodic checks of an open file: truncation (size < position, or the
 * fingerprint changed), rotation (live_path no longer this inode), deletion
 * (no links). Flushes multiline records after flush_ms of quiet; finishes and
 * closes gone files once drained, quiet for rotate_wait_ms and acknowledged.
 * Returns 1 when the file was closed. */
int tail_file_check(struct tail_file *tf, const struct tail_ctx *ctx, uint64_t now_ms);

/* A delivery of this stream failed: go back to the acknowledged prefix and
 * read again (the same records, ids and hashes), after a backoff. */
void tail_file_rewind(struct tail_file *tf, const struct tail_ctx *ctx, uint64_t now_ms);
/* A delivery succeeded: reset the failure backoff. */
void tail_file_delivered(struct tail_file *tf);

/* Fill a checkpoint entry (pointing into tf); false for a file not opened
 * yet. A file without a record yet is saved without id (fp_len 0), so that a
 * restart finds it even if it was rotated outside the globs meanwhile. */
bool tail_file_checkpoint(const struct tail_file *tf, struct checkpoint_entry *e);

/* Birth time of the file (statx), ns; 0 when the filesystem has none. */
uint64_t tail_file_btime(int dirfd, const char *path, int fd);

#endif
