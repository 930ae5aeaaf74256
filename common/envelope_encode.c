/* The agent's envelope encoder (DESIGN.md §3): compact JSON written directly
 * on the hot path, byte for byte what jansson's json_dumps would give. */
#include "common/envelope.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/envelope_int.h"
#include "common/timeutil.h"
#include "common/utf8.h"
#include "common/xmalloc.h"

/* The JSON is written directly rather than built as a jansson tree and
 * dumped: measured by bench/agent, the tree cost ~15 us per record, ten times
 * the agent's budget. The bytes are exactly what json_dumps(JSON_COMPACT)
 * gives for the same values (tests/unit/test_envelope.c compares them). */

static void jb_u64(struct buf *b, uint64_t v)
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
 * bytes: words without a special byte are copied whole, the others byte by
 * byte without a branch per quote. Room: at input i at least 2 (n - i) + 1
 * bytes are reserved at *o. */
static inline size_t jb_copy_plain(const uint8_t *s, size_t i, size_t n, char **o)
{
    char *p = *o;
    while (i < n) {
        size_t stop = n - i >= 8 ? i + 8 : n;
        if (stop - i == 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!special_bytes(w)) {
                memcpy(p, &w, 8);
                p += 8;
                i += 8;
                continue;
            }
        }
        for (; i < stop; i++) {
            uint8_t c = s[i];
            unsigned t = esc_class[c];
            if (t > 1)
                goto out;
            *p = '\\';
            p += t;
            *p++ = (char)c;
        }
    }
out:
    *o = p;
    return i;
}

/* Append s[0, n) as a JSON string if it is valid UTF-8 (true), else leave b
 * as it was (false). Escapes as json_dumps does: '"', '\\' and the control
 * characters below 0x20 only ('/' and DEL stay), \b \f \n \r \t short, the
 * rest as \u00XX with upper-case hex. 2n is reserved up front (two-byte
 * escapes), \u00XX reserves more. */
static bool jb_str_utf8(struct buf *b, const uint8_t *s, size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t start = b->len;
    buf_reserve(b, 2 * n + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
    for (;;) {
        i = jb_copy_plain(s, i, n, &o);
        if (i >= n)
            break;
        uint8_t c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_seq_len(s + i, n - i);
            if (!k) {
                b->len = start;
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
            buf_reserve(b, 5 + 2 * (n - i) + 1);
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
    b->len = (size_t)(o - b->p);
    return true;
}

/* A metadata value (source, fields, format, id, stream). These are
 * descriptive only: the record bytes travel exactly in line/line_b64, so an
 * invalid byte here (e.g. a non-UTF-8 file name) becomes U+FFFD rather than
 * making the record unsendable. */
static void jb_meta(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    if (jb_str_utf8(b, (const uint8_t *)s, n))
        return;
    size_t fixed_len;
    char *fixed = utf8_sanitize(s, n, &fixed_len);
    bool ok = jb_str_utf8(b, (const uint8_t *)fixed, fixed_len);
    assert(ok); /* sanitized text is valid UTF-8 */
    (void)ok;
    free(fixed);
}

static void jb_key(struct buf *b, const char *k, bool first)
{
    if (!first)
        buf_add(b, ",", 1);
    buf_add(b, "\"", 1);
    buf_add(b, k, strlen(k));
    buf_add(b, "\":", 2);
}

static void jb_hex(struct buf *b, const uint8_t *h, size_t n)
{
    char hex[2 * CHAIN_HASH_LEN + 3];
    assert(n <= CHAIN_HASH_LEN);
    hex[0] = '"';
    hex_encode(h, n, hex + 1);
    hex[2 * n + 1] = '"';
    buf_add(b, hex, 2 * n + 2);
}

/* Standard base64 with padding. EVP_EncodeBlock takes an int length: chunks
 * of a multiple of 3 bytes keep the padding at the very end. */
static void jb_b64(struct buf *b, const uint8_t *in, size_t n)
{
    buf_reserve(b, 4 * ((n + 2) / 3) + 2);
    b->p[b->len++] = '"';
    const size_t chunk = (size_t)3 << 28;
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        b->len += (size_t)EVP_EncodeBlock((unsigned char *)b->p + b->len, in + i, (int)k);
    }
    b->p[b->len++] = '"';
}

/* Last time the cache may format: time_format_us clamps beyond it, and a
 * clamped second must not be given another fraction. */
#define TIME_CACHE_MAX_US (253402300800LL * 1000000 - 1) /* 9999-12-31T23:59:59.999999Z */

/* A timestamp as time_format_us writes it. With a cache, the
 * "YYYY-MM-DDTHH:MM:SS" part is formatted once per second (gmtime_r is
 * measurable per record); only the fraction is written each time. */
static void jb_time(struct buf *b, int64_t us, struct envelope_time_cache *tc)
{
    char ts[TIME_RFC3339_LEN + 1];
    ts[0] = '"';
    if (!tc || us < 0 || us > TIME_CACHE_MAX_US) {
        time_format_us(us, ts + 1);
    } else {
        int64_t sec = us / 1000000;
        if (!tc->valid || tc->sec != sec) {
            time_format_us(sec * 1000000, tc->text);
            tc->sec = sec;
            tc->valid = true;
        }
        int frac = (int)(us % 1000000);
        memcpy(ts + 1, tc->text, 20); /* "YYYY-MM-DDTHH:MM:SS." */
        for (int i = 26; i >= 21; i--, frac /= 10)
            ts[i] = (char)('0' + frac % 10);
        ts[27] = 'Z';
    }
    ts[TIME_RFC3339_LEN] = '"'; /* over the NUL */
    buf_add(b, ts, TIME_RFC3339_LEN + 1);
}

char *envelope_encode(const struct envelope *e, size_t *len)
{
    return envelope_encode_tc(e, len, NULL);
}

char *envelope_encode_tc(const struct envelope *e, size_t *len, struct envelope_time_cache *tc)
{
    if (e->seq > ENVELOPE_MAX_INT || e->offset > ENVELOPE_MAX_INT ||
        e->truncated_bytes > ENVELOPE_MAX_INT || !e->source.name || !e->format)
        return NULL;

    struct buf b = BUF_INIT;
    /* Metadata rarely needs more than 900 bytes; the line at most doubles
     * unless it holds \u00XX escapes (jb_str_utf8 grows then). */
    buf_reserve(&b, 900 + 2 * e->line_len);
    BUF_LIT(&b, "{\"v\":1,\"id\":");
    jb_meta(&b, e->id);
    BUF_LIT(&b, ",\"stream\":");
    jb_meta(&b, e->stream);
    BUF_LIT(&b, ",\"seq\":");
    jb_u64(&b, e->seq);
    BUF_LIT(&b, ",\"offset\":");
    jb_u64(&b, e->offset);
    BUF_LIT(&b, ",\"hash\":");
    jb_hex(&b, e->hash, CHAIN_HASH_LEN);
    BUF_LIT(&b, ",\"prev\":");
    jb_hex(&b, e->prev, CHAIN_HASH_LEN);
    BUF_LIT(&b, ",\"time\":");
    jb_time(&b, e->time_us, tc);
    if (e->time_source == TIME_SOURCE_PAYLOAD)
        BUF_LIT(&b, ",\"time_source\":\"payload\"");
    else
        BUF_LIT(&b, ",\"time_source\":\"read\"");
    BUF_LIT(&b, ",\"read_time\":");
    jb_time(&b, e->read_time_us, tc);

    BUF_LIT(&b, ",\"source\":{");
    bool first = true;
    for (size_t i = 0; i < ENVELOPE_SOURCE_KEYS; i++) {
        const char *v = *envelope_source_slot((struct envelope_source *)&e->source, i);
        if (!v)
            continue;
        jb_key(&b, envelope_source_keys[i], first);
        jb_meta(&b, v);
        first = false;
    }
    BUF_LIT(&b, "},\"format\":");
    jb_meta(&b, e->format);
    BUF_LIT(&b, ",\"fields\":{");
    for (size_t i = 0; i < ENVELOPE_FIELD_KEYS; i++) {
        const char *v = *envelope_field_slot((struct envelope_fields *)&e->fields, i);
        jb_key(&b, envelope_field_keys[i], i == 0);
        if (v)
            jb_meta(&b, v);
        else
            BUF_LIT(&b, "null");
    }
    BUF_LIT(&b, "}");

    /* NUL bytes are valid UTF-8 and written as \u0000. */
    const uint8_t *line = e->line ? e->line : (const uint8_t *)"";
    BUF_LIT(&b, ",\"line\":");
    if (!jb_str_utf8(&b, line, e->line_len)) {
        b.len -= sizeof(",\"line\":") - 1;
        BUF_LIT(&b, ",\"line_b64\":");
        jb_b64(&b, line, e->line_len);
    }
    if (e->truncated_bytes) {
        BUF_LIT(&b, ",\"truncated_bytes\":");
        jb_u64(&b, e->truncated_bytes);
    }
    BUF_LIT(&b, "}");
    b.p[b.len] = '\0';
    if (len)
        *len = b.len;
    /* Give back the worst-case reservation's slack: the agent's in-flight
     * budget counts the allocation (malloc_usable_size), so slack would
     * shrink its window of messages in flight. */
    if (b.cap > b.len + 64)
        b.p = xrealloc(b.p, b.len + 1);
    return b.p;
}
