/* The agent's checkpoint (DESIGN.md §4): per stream the contiguous
 * acknowledged prefix and the identity needed to trust it again, as JSON in
 * <checkpoint_dir>/checkpoint.json, replaced atomically (temp file, fsync,
 * rename, fsync of the directory): a crash leaves the old or the new file,
 * never a torn one. */
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
};

/* Append a copy of e (path duplicated). */
void checkpoint_add(struct checkpoint *c, const struct checkpoint_entry *e);
/* Free every entry and reset to empty. */
void checkpoint_release(struct checkpoint *c);

/* Read dir/checkpoint.json into c (which must be empty). Returns 1 when read,
 * 0 when there is none (first start), -1 on a malformed or unreadable file
 * (message in err). */
int checkpoint_load(struct checkpoint *c, const char *dir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Write c atomically to dir/checkpoint.json. Returns 0, or -1 with a message
 * in err; the previous file is then untouched. */
int checkpoint_save(const struct checkpoint *c, const char *dir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The JSON text of c (heap, caller frees); exposed for tests. */
char *checkpoint_to_json(const struct checkpoint *c);
/* Parse JSON text; same return as checkpoint_load (never 0). */
int checkpoint_from_json(struct checkpoint *c, const char *text, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
