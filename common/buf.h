/* One growable byte buffer for every module that builds bytes: COPY data,
 * JSON text, Prometheus exposition, array literals, file contents. The
 * contents are always followed by a NUL that len does not count, so a buffer
 * of text is a C string at any time. Allocation failure aborts (xmalloc).
 * A zeroed struct buf is an empty buffer; buf_release frees it. */
#ifndef AUDITRAIL_BUF_H
#define AUDITRAIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *p; /* NULL until the first append; then NUL-terminated at len */
    size_t len, cap;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Grow so that n more bytes and the terminating NUL fit (out of line). */
void buf_grow(struct buf *b, size_t n);

/* Room for n more bytes (and the NUL): the hot path is one compare. */
static inline void buf_reserve(struct buf *b, size_t n)
{
    if (b->len + n + 1 > b->cap)
        buf_grow(b, n);
}

static inline void buf_add(struct buf *b, const void *d, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void buf_addc(struct buf *b, char c)
{
    buf_reserve(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

static inline void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Append a string literal without strlen. */
#define BUF_LIT(b, s) buf_add((b), (s), sizeof(s) - 1)

void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* The contents as a C string ("" for an empty buffer, never NULL). */
const char *buf_cstr(struct buf *b);
/* Forget the contents, keep the memory. */
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}
/* Hand the contents over (heap, NUL-terminated, caller frees; never NULL);
 * *len receives the length when len is not NULL. The buffer is empty after. */
char *buf_detach(struct buf *b, size_t *len);
/* Free the memory; the buffer is empty (and reusable) after. NULL-safe. */
void buf_release(struct buf *b);

#endif
