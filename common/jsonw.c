/* JSON text written into a buf (common/jsonw.h). The string escaping is
 * jansson's, byte for byte (tests/unit/test_envelope.c compares them). */
#include "common/jsonw.h"

#include <assert.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
/* JSONW_PORTABLE (tests/unit/test_jsonw_portable.c) builds the escaping
 * without SSE2, as on targets that lack it. */
#if defined(__SSE2__) && !defined(JSONW_PORTABLE)
#define JSONW_SSE2 1
#include <emmintrin.h>
#endif

#include "common/hashchain.h"
#include "common/utf8.h"

void jsonw_u64(struct buf *b, uint64_t v)
{
    char num[24], *p = num + sizeof(num);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_add(b, p, (size_t)(num + sizeof(num) - p));
}

/* The bytes of w (eight bytes of a string, little-endian) that need
 * attention in a JSON string: < 0x20, '"', '\\' or >= 0x80, as the high bit
 * of each; the lowest flagged byte is exact (the bit tricks only
 * over-report above a real hit). */
static inline uint64_t special_bytes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | w) & highs;
}

/* 0: copied as is; 1: '"' and '\\', written with a backslash before;
 * 2: the rest of special_bytes (control characters, non-ASCII). */
static const uint8_t esc_class[256] = {
    [0 ... 0x1f] = 2,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 2,
};

/* Copy s[i, n) to *o until a byte of class 2 (returned: its index, or n),
 * escaping '"' and '\\' on the way. A record's quotes come every few
 * bytes: sixteen bytes (SSE2; else eight) are classified at once and each
 * quote costs one step over the mask, not a pass over its bytes. Stores
 * run up to 16 bytes past what they keep: at input i at least
 * 2 (n - i) + 1 + JSONW_SLACK bytes are reserved at *o. */
#define JSONW_SLACK 16
#ifdef JSONW_SSE2
static inline void copy16(char *p, const uint8_t *s)
{
    _mm_storeu_si128((__m128i *)(void *)p, _mm_loadu_si128((const __m128i *)(const void *)s));
}
#endif

static inline size_t copy_plain(const uint8_t *s, size_t i, size_t n, char **o)
{
    char *p = *o;
#ifdef JSONW_SSE2
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (n - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* Signed compare: bytes >= 0x80 are negative, below 0x20 as well. */
        unsigned hard = (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(v, space));
        unsigned esc = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)));
        unsigned stop = hard ? (unsigned)__builtin_ctz(hard) : 16;
        esc &= (1u << stop) - 1;
        unsigned j = 0;
        for (;;) {
            unsigned k = esc ? (unsigned)__builtin_ctz(esc) : stop;
            if (i + j + 16 <= n)
                copy16(p, s + i + j);
            else
                memcpy(p, s + i + j, k - j);
            p += k - j;
            if (!esc)
                break;
            *p++ = '\\';
            *p++ = (char)s[i + k];
            j = k + 1;
            esc &= esc - 1;
        }
        i += stop;
        if (stop < 16)
            goto out;
    }
#elif __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        memcpy(p, &w, 8);
        uint64_t m = special_bytes(w);
        if (!m) {
            p += 8;
            i += 8;
            continue;
        }
        unsigned k = (unsigned)__builtin_ctzll(m) / 8;
        p += k;
        i += k;
        uint8_t c = s[i];
        unsigned t = esc_class[c];
        if (t > 1)
            goto out;
        *p = '\\'; /* kept only before '"' and '\\' (t = 1) */
        p += t;
        *p++ = (char)c;
        i++;
    }
#endif
    for (; i < n; i++) {
        uint8_t c = s[i];
        unsigned t = esc_class[c];
        if (t > 1)
            break;
        *p = '\\';
        p += t;
        *p++ = (char)c;
    }
#if defined(JSONW_SSE2) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
out:
#endif
    *o = p;
    return i;
}

/* The short escape jansson (and RFC 8259) uses for c, or 0 for \u00XX. */
static char short_escape(uint8_t c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return 0;
    }
}

/* Escapes as json_dumps does: '"', '\\' and the control
 * characters below 0x20 only ('/' and DEL stay), \b \f \n \r \t short, the
 * rest as \u00XX with upper-case hex. 2n + JSONW_SLACK is reserved up
 * front (two-byte escapes, and copy_plain's wide stores), \u00XX reserves
 * more. */
bool jsonw_str(struct buf *b, const void *str, size_t n)
{
    const uint8_t *s = str;
    static const char hexd[] = "0123456789ABCDEF";
    size_t start = b->len;
    buf_reserve(b, 2 * n + 2 + JSONW_SLACK);
    char *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
    for (;;) {
        i = copy_plain(s, i, n, &o);
        if (i >= n)
            break;
        uint8_t c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_seq_len(s + i, n - i);
            if (!k) {
                b->len = start;
                b->p[start] = '\0';
                return false;
            }
            memcpy(o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        *o++ = '\\';
        char esc = short_escape(c);
        if (esc) {
            *o++ = esc;
        } else {
            /* room for the rest of \u00XX and the worst case after it */
            size_t used = (size_t)(o - b->p);
            b->len = used;
            buf_reserve(b, 5 + 2 * (n - i) + 1 + JSONW_SLACK);
            o = b->p + used;
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hexd[c >> 4];
            *o++ = hexd[c & 15];
        }
        i++;
    }
    *o++ = '"';
    *o = '\0'; /* the buf's NUL after its length (the room reserved holds it) */
    b->len = (size_t)(o - b->p);
    return true;
}

void jsonw_str_lossy(struct buf *b, const void *s, size_t n)
{
    if (jsonw_str(b, s, n))
        return;
    size_t fixed_len;
    char *fixed = utf8_sanitize(s, n, &fixed_len);
    bool ok = jsonw_str(b, fixed, fixed_len);
    assert(ok); /* sanitized text is valid UTF-8 */
    (void)ok;
    free(fixed);
}

void jsonw_cstr(struct buf *b, const char *s)
{
    jsonw_str_lossy(b, s, strlen(s));
}

void jsonw_key(struct buf *b, const char *k, bool first)
{
    if (!first)
        buf_add(b, ",", 1);
    buf_add(b, "\"", 1);
    buf_add(b, k, strlen(k));
    buf_add(b, "\":", 2);
}

void jsonw_hex(struct buf *b, const uint8_t *h, size_t n)
{
    buf_reserve(b, 2 * n + 2);
    b->p[b->len++] = '"';
    hex_encode(h, n, b->p + b->len); /* writes its NUL over the next byte */
    b->len += 2 * n;
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

/* Standard base64 with padding. EVP_EncodeBlock takes an int length: chunks
 * of a multiple of 3 bytes keep the padding at the very end. */
void jsonw_b64(struct buf *b, const uint8_t *in, size_t n)
{
    buf_reserve(b, 4 * ((n + 2) / 3) + 2);
    b->p[b->len++] = '"';
    const size_t chunk = (size_t)3 << 28;
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        b->len += (size_t)EVP_EncodeBlock((unsigned char *)b->p + b->len, in + i, (int)k);
    }
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

void jsonw_i64(struct buf *b, int64_t v)
{
    if (v < 0) {
        buf_addc(b, '-');
        jsonw_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        jsonw_u64(b, (uint64_t)v);
    }
}
