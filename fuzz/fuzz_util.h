/* Helpers shared by the fuzz targets (header-only, so that every target file
 * stays one self-contained libFuzzer target). */
#ifndef AUDITRAIL_FUZZ_UTIL_H
#define AUDITRAIL_FUZZ_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken invariant is a finding like a sanitizer report: print one
 * recognisable line (scripts/fuzz greps "FUZZ INVARIANT:") and abort so that
 * libFuzzer saves the input. */
__attribute__((format(printf, 1, 2), noreturn)) static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("FUZZ INVARIANT: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__VA_ARGS__);                                                                \
    } while (0)

/* Both NULL, or equal strings. */
static inline bool fuzz_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* A tiny reader over the fuzz input, for targets that take structured input:
 * take bytes from the front, 0 when exhausted. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | fuzz_u8(in);
    return v;
}

/* Up to `max` bytes, length taken from one input byte; *len gets the count.
 * Points into the input (no copy). */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t max, size_t *len)
{
    size_t n = fuzz_u8(in);
    if (n > max)
        n = max;
    if (n > in->n)
        n = in->n;
    const uint8_t *p = in->p;
    in->p += n;
    in->n -= n;
    *len = n;
    return p;
}

/* The rest of the input. */
static inline const uint8_t *fuzz_rest(struct fuzz_in *in, size_t *len)
{
    const uint8_t *p = in->p;
    *len = in->n;
    in->p += in->n;
    in->n = 0;
    return p;
}

/* Heap NUL-terminated copy of n bytes. */
static inline char *fuzz_strndup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Strict UTF-8 check (no overlongs, no surrogates, max U+10FFFF). */
static inline bool fuzz_valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

#endif
