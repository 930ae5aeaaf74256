/* The agent's checkpoint (DESIGN.md §4): per stream the contiguous
 * acknowledged prefix and the identity needed to trust it again, as JSON in
 * <checkpoint_dir>/checkpoint.json, replaced atomically (temp file, fsync,
 * rename, fsync of the directory): a crash leaves the old or the new file,
 * never a torn one. The generation before it stays as checkpoint.json.1, to
 * fall back to when the latest cannot be read (a disk error, a hand edit):
 * older positions only mean records sent again, which the aggregator drops.
 * <checkpoint_dir>/lock is flock()ed by the running agent. */
#ifndef AUDITRAIL_AGENT_CHECKPOINT_H
#define AUDITRAIL_AGENT_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/stream_id.h"
#include "common/hashchain.h"

struct checkpoint_entry {
    char *path;               /* last known name of the file (heap) */
    char *live_path;          /* the name it was found under (heap; NULL = path) */
    uint64_t dev, ino, btime; /* btime: birth time ns (0 = unknown) */
    uint8_t fp[STREAM_FP_LEN];
    uint64_t fp_len; /* 0: no record yet, no id; identity is dev+inode+btime */
    uint64_t generation;
    char stream[2 * STREAM_ID_LEN + 1]; /* "" when fp_len is 0 */
    uint64_t offset;                    /* end of the acknowledged prefix */
    uint64_t seq;                       /* next seq */
    uint8_t prev[CHAIN_HASH_LEN];
    bool done; /* the file was rotated away/deleted and fully acknowledged */
};

struct checkpoint {
    struct checkpoint_entry *v;
    size_t n, cap;
    /* Wall-clock ns at which the scan these entries reflect started: files
     * born after it were never seen (0 = unknown, e.g. an older file). */
    uint64_t scanned_at_ns;
};

/* Append a copy of e (path duplicated). */
void checkpoint_add(struct checkpoint *c, const struct checkpoint_entry *e);
/* Free every entry and reset to empty. */
void checkpoint_release(struct checkpoint *c);

enum checkpoint_loaded {
    CHECKPOINT_NONE = 0,     /* no checkpoint: the very first start */
    CHECKPOINT_LOADED = 1,   /* the latest generation */
    CHECKPOINT_FALLBACK = 2, /* the latest was missing or corrupt (why in err; a corrupt one
                              * is moved to checkpoint.json.corrupt): the previous one */
    CHECKPOINT_LOST = 3,     /* no generation could be read (why in err): c is empty, and
                              * c->scanned_at_ns is when the corrupt file was last written */
};
/* Read the newest readable generation in dir into c (which must be empty).
 * Returns an enum checkpoint_loaded, or -1 when a file cannot be read at all
 * (permissions, I/O error: message in err). */
int checkpoint_load(struct checkpoint *c, const char *dir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Write c atomically to dir/checkpoint.json, keeping the one it replaces as
 * checkpoint.json.1. Returns 0, or -1 with a message in err; the previous
 * file is then untouched. */
int checkpoint_save(const struct checkpoint *c, const char *dir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Take the exclusive lock of dir (flock on dir/lock, which then holds our
 * pid), so that a second agent on the same checkpoint refuses to start.
 * Returns the descriptor to keep open while running (closing it releases
 * the lock), or -1 with a message naming the holder in err. */
int checkpoint_lock(const char *dir, char *err, size_t errlen) __attribute__((warn_unused_result));

/* The JSON text of c (heap, caller frees); exposed for tests. */
char *checkpoint_to_json(const struct checkpoint *c);
/* Parse JSON text; same return as checkpoint_load (never 0). */
int checkpoint_from_json(struct checkpoint *c, const char *text, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
