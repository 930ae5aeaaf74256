/* UTF-8 well-formedness (RFC 3629) and repair: the one set of rules the
 * envelope encoder, the agent's format parsers and jansson agree on. */
#ifndef AUDITRAIL_UTF8_H
#define AUDITRAIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the well-formed UTF-8 sequence at the start of s[0, n), or
 * 0 when s does not start with one: a stray continuation byte, C0/C1/F5-FF,
 * an overlong form, a surrogate (U+D800-U+DFFF), a code point above
 * U+10FFFF, or a sequence cut short by n. NUL is the well-formed sequence of
 * U+0000 (1). n must be at least 1. */
size_t utf8_seq_len(const uint8_t *s, size_t n);

/* Is s[0, n) well-formed UTF-8? NUL bytes are allowed (U+0000); an empty
 * string is valid. */
bool utf8_valid(const void *s, size_t n);

/* A heap copy (xmalloc: caller frees) of s[0, n) in which every byte that does
 * not belong to a well-formed sequence becomes U+FFFD (EF BF BD), one per
 * byte; NUL bytes are kept. The copy is NUL-terminated after its *outlen
 * bytes (outlen may be NULL). */
char *utf8_sanitize(const void *s, size_t n, size_t *outlen);

/* The same as a C string: NUL bytes become U+FFFD as well, so the result has
 * no NUL before its terminator and strlen gives its length. */
char *utf8_sanitize_str(const void *s, size_t n);

#endif
