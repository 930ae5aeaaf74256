/* Small I/O helpers shared by the programs and tools. */
#include "common/io.h"

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/buf.h"

int io_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int io_read_all(int fd, size_t max, struct buf *out)
{
    size_t start = out->len;
    for (;;) {
        buf_reserve(out, 8192);
        ssize_t r = read(fd, out->p + out->len, out->cap - out->len - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            return 0;
        out->len += (size_t)r;
        out->p[out->len] = '\0';
        if (out->len - start > max) {
            errno = EFBIG;
            return -1;
        }
    }
}
