/* UTF-8 checks and U+FFFD repair (common/utf8.h). Written for the hot path:
 * the usual input is ASCII or already valid, which costs one scan and at most
 * one copy. */
#include "common/utf8.h"

#include <string.h>

#include "common/xmalloc.h"

#define REPLACEMENT     "\xef\xbf\xbd" /* U+FFFD */
#define REPLACEMENT_LEN 3

size_t utf8_seq_len(const uint8_t *s, size_t n)
{
    unsigned c = s[0], cp;
    size_t need;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0; /* continuation byte, C0/C1 (always overlong) or F5-FF */
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* E0 and F0 can still spell overlong forms; ED can spell surrogates; F4
     * can go past U+10FFFF. */
    if (need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (need == 4 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return need;
}

/* Length of the sequence at s[i] that may be copied as is (0: replace one
 * byte). NUL counts as bad when nul_bad. */
static inline size_t good_len(const uint8_t *s, size_t i, size_t n, bool nul_bad)
{
    uint8_t c = s[i];
    if (c >= 0x80)
        return utf8_seq_len(s + i, n - i);
    return c == 0 && nul_bad ? 0 : 1;
}

/* Number of bytes to replace in s[0, n). */
static size_t count_bad(const uint8_t *s, size_t n, bool nul_bad)
{
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        size_t k = good_len(s, i, n, nul_bad);
        if (k == 0) {
            bad++;
            k = 1;
        }
        i += k;
    }
    return bad;
}

bool utf8_valid(const void *s, size_t n)
{
    const uint8_t *p = s;
    for (size_t i = 0; i < n;) {
        size_t k = good_len(p, i, n, false);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

static char *sanitize(const uint8_t *s, size_t n, bool nul_bad, size_t *outlen)
{
    size_t bad = count_bad(s, n, nul_bad);
    /* Each replaced byte grows by two; exact size, so no slack to trim. */
    char *out = xmalloc(n + 2 * bad + 1);
    size_t o = 0;
    if (bad == 0) {
        if (n)
            memcpy(out, s, n);
        o = n;
        goto out;
    }
    for (size_t i = 0; i < n;) {
        size_t k = good_len(s, i, n, nul_bad);
        if (k == 0) {
            memcpy(out + o, REPLACEMENT, REPLACEMENT_LEN);
            o += REPLACEMENT_LEN;
            i++;
            continue;
        }
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
    }
out:
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

char *utf8_sanitize(const void *s, size_t n, size_t *outlen)
{
    return sanitize(s, n, false, outlen);
}

char *utf8_sanitize_str(const void *s, size_t n)
{
    return sanitize(s, n, true, NULL);
}
