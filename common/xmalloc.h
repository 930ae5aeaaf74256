/* Allocation that cannot fail: on out-of-memory the process aborts with a
 * message, so callers carry no OOM branches (STYLE.md habit 6). */
#ifndef AUDITRAIL_XMALLOC_H
#define AUDITRAIL_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* printf into a new heap string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
