/* Small I/O helpers shared by the programs and tools. */
#ifndef AUDITRAIL_IO_H
#define AUDITRAIL_IO_H

#include <stddef.h>

struct buf;

/* Write all n bytes, retrying short writes and EINTR: a record or a
 * checkpoint is never left half-written by a signal. 0, or -1 with errno. */
int io_write_all(int fd, const void *p, size_t n) __attribute__((warn_unused_result));

/* Read fd to its end, appending to out (common/buf.h), retrying EINTR. More
 * than max bytes is an error (EFBIG): a wrong path (a log, a device) is not
 * slurped whole. 0, or -1 with errno; out keeps what was read. */
int io_read_all(int fd, size_t max, struct buf *out) __attribute__((warn_unused_result));

#endif
