/* Line framing of DESIGN.md §2: turns a file's bytes into records, byte-exact,
 * with bounded memory (long lines are cut, their rest skipped unbuffered) and
 * optional multiline joining on a POSIX ERE start pattern.
 *
 * A record is always a contiguous slice of the file, file[offset, end) minus
 * its final '\n': `len` bytes are kept (at most max_record_bytes) and
 * `truncated` more were cut. Empty lines are not records; inside a multiline
 * record they are kept, after its last line they are not. */
#ifndef AUDITRAIL_AGENT_FRAMER_H
#define AUDITRAIL_AGENT_FRAMER_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct framer_record {
    const uint8_t *data; /* valid only during the callback */
    size_t len;          /* bytes kept */
    uint64_t truncated;  /* bytes cut off after `len` */
    uint64_t offset;     /* file offset of the first byte */
    uint64_t end;        /* file offset just past the record (and its '\n', if any) */
};

/* Return 0 to continue, non-zero to stop framer_feed right after this record
 * (the caller must then framer_reset to the position it wants to resume at). */
typedef int (*framer_emit_fn)(void *ud, const struct framer_record *r);

struct framer;

/* max_record: bytes kept per record (>= 1). start: a compiled ERE (REG_EXTENDED
 * | REG_NOSUB), owned by the caller and outliving the framer, or NULL for one
 * record per line. */
struct framer *framer_new(size_t max_record, const regex_t *start);
void framer_free(struct framer *f); /* NULL-safe */

/* Forget every buffered byte; the next byte fed is at file offset `offset`. */
void framer_reset(struct framer *f, uint64_t offset);

/* Feed the next `len` bytes of the file. Emits every record that is complete
 * (multiline: a record is complete when the next start line arrives).
 * Returns 0, or the emit callback's non-zero value when it asked to stop. */
int framer_feed(struct framer *f, const uint8_t *buf, size_t len, framer_emit_fn emit, void *ud);

/* Multiline: emit the joined record held back waiting for the next start
 * line (a flush after multiline.flush_ms of quiet). No-op without one. */
int framer_flush(struct framer *f, framer_emit_fn emit, void *ud);

/* End of file for good (rotated away or deleted and read to its end): the
 * final line without '\n' becomes a record, then everything is flushed. */
int framer_finish(struct framer *f, framer_emit_fn emit, void *ud);

/* Is anything buffered (a partial line or a held multiline record)? */
bool framer_pending(const struct framer *f);
/* Is a complete multiline record held back (framer_flush would emit it)? */
bool framer_holds_record(const struct framer *f);
/* Offset of the next byte expected by framer_feed. */
uint64_t framer_position(const struct framer *f);
/* File offset where the first buffered byte starts, i.e. where re-reading must
 * resume to reproduce what is buffered (== position when nothing is). */
uint64_t framer_resume_offset(const struct framer *f);
/* Bytes currently held in buffers (memory accounting). */
size_t framer_buffered_bytes(const struct framer *f);

#endif
