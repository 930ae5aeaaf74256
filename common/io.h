/* Small I/O helpers shared by the programs and tools. */
#ifndef AUDITRAIL_IO_H
#define AUDITRAIL_IO_H

#include <stddef.h>

/* Write all n bytes, retrying short writes and EINTR: a record or a
 * checkpoint is never left half-written by a signal. 0, or -1 with errno. */
int io_write_all(int fd, const void *p, size_t n) __attribute__((warn_unused_result));

#endif
