/* The Kafka envelope of DESIGN.md §3: a direct JSON writer for the agent's
 * hot path, jansson for parsing, OpenSSL for base64 and SHA-256; this file
 * holds the field rules both sides agree on. */
#include "common/envelope.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/timeutil.h"
#include "common/utf8.h"
#include "common/xmalloc.h"

#define FORMAT_MAX_LEN 32

static const char *const source_keys[] = {"name", "host", "namespace", "pod", "container", "path"};
static const char *const field_keys[] = {"tenant", "actor", "action", "resource", "outcome"};
static const char *const top_keys[] = {"v",           "id",        "stream",   "seq",
                                       "offset",      "hash",      "prev",     "time",
                                       "time_source", "read_time", "source",   "format",
                                       "fields",      "line",      "line_b64", "truncated_bytes"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char **source_slot(struct envelope_source *s, size_t i)
{
    char **slots[] = {&s->name, &s->host, &s->namespace_, &s->pod, &s->container, &s->path};
    return slots[i];
}

static char *const *source_slot_c(const struct envelope_source *s, size_t i)
{
    return source_slot((struct envelope_source *)s, i);
}

static char **field_slot(struct envelope_fields *f, size_t i)
{
    char **slots[] = {&f->tenant, &f->actor, &f->action, &f->resource, &f->outcome};
    return slots[i];
}

static char *const *field_slot_c(const struct envelope_fields *f, size_t i)
{
    return field_slot((struct envelope_fields *)f, i);
}

/* ---------------------------------------------------------------- encode */

/* The JSON is written directly rather than built as a jansson tree and
 * dumped: measured by bench/agent, the tree cost ~15 us per record, ten times
 * the agent's budget. The bytes are exactly what json_dumps(JSON_COMPACT)
 * gives for the same values (tests/unit/test_envelope.c compares them). */

struct jbuf {
    char *p;
    size_t len, cap;
};

static void jb_grow(struct jbuf *b, size_t n);

/* Room for n more bytes and a terminating NUL. */
static inline __attribute__((always_inline)) void jb_reserve(struct jbuf *b, size_t n)
{
    if (b->len + n + 1 > b->cap)
        jb_grow(b, n);
}

static void jb_grow(struct jbuf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static inline __attribute__((always_inline)) void jb_put(struct jbuf *b, const void *p, size_t n)
{
    jb_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

#define JB_LIT(b, s) jb_put((b), (s), sizeof(s) - 1)

static void jb_u64(struct jbuf *b, uint64_t v)
{
    char num[24], *p = num + sizeof(num);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jb_put(b, p, (size_t)(num + sizeof(num) - p));
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
static bool jb_str_utf8(struct jbuf *b, const uint8_t *s, size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t start = b->len;
    jb_reserve(b, 2 * n + 2);
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
            jb_reserve(b, 5 + 2 * (n - i) + 1);
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
static void jb_meta(struct jbuf *b, const char *s)
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

static void jb_key(struct jbuf *b, const char *k, bool first)
{
    if (!first)
        jb_put(b, ",", 1);
    jb_put(b, "\"", 1);
    jb_put(b, k, strlen(k));
    jb_put(b, "\":", 2);
}

static void jb_hex(struct jbuf *b, const uint8_t *h, size_t n)
{
    char hex[2 * CHAIN_HASH_LEN + 3];
    assert(n <= CHAIN_HASH_LEN);
    hex[0] = '"';
    hex_encode(h, n, hex + 1);
    hex[2 * n + 1] = '"';
    jb_put(b, hex, 2 * n + 2);
}

/* Standard base64 with padding. EVP_EncodeBlock takes an int length: chunks
 * of a multiple of 3 bytes keep the padding at the very end. */
static void jb_b64(struct jbuf *b, const uint8_t *in, size_t n)
{
    jb_reserve(b, 4 * ((n + 2) / 3) + 2);
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
static void jb_time(struct jbuf *b, int64_t us, struct envelope_time_cache *tc)
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
    jb_put(b, ts, TIME_RFC3339_LEN + 1);
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

    struct jbuf b = {0};
    /* Metadata rarely needs more than 900 bytes; the line at most doubles
     * unless it holds \u00XX escapes (jb_str_utf8 grows then). */
    jb_reserve(&b, 900 + 2 * e->line_len);
    JB_LIT(&b, "{\"v\":1,\"id\":");
    jb_meta(&b, e->id);
    JB_LIT(&b, ",\"stream\":");
    jb_meta(&b, e->stream);
    JB_LIT(&b, ",\"seq\":");
    jb_u64(&b, e->seq);
    JB_LIT(&b, ",\"offset\":");
    jb_u64(&b, e->offset);
    JB_LIT(&b, ",\"hash\":");
    jb_hex(&b, e->hash, CHAIN_HASH_LEN);
    JB_LIT(&b, ",\"prev\":");
    jb_hex(&b, e->prev, CHAIN_HASH_LEN);
    JB_LIT(&b, ",\"time\":");
    jb_time(&b, e->time_us, tc);
    if (e->time_source == TIME_SOURCE_PAYLOAD)
        JB_LIT(&b, ",\"time_source\":\"payload\"");
    else
        JB_LIT(&b, ",\"time_source\":\"read\"");
    JB_LIT(&b, ",\"read_time\":");
    jb_time(&b, e->read_time_us, tc);

    JB_LIT(&b, ",\"source\":{");
    bool first = true;
    for (size_t i = 0; i < NELEM(source_keys); i++) {
        const char *v = *source_slot_c(&e->source, i);
        if (!v)
            continue;
        jb_key(&b, source_keys[i], first);
        jb_meta(&b, v);
        first = false;
    }
    JB_LIT(&b, "},\"format\":");
    jb_meta(&b, e->format);
    JB_LIT(&b, ",\"fields\":{");
    for (size_t i = 0; i < NELEM(field_keys); i++) {
        const char *v = *field_slot_c(&e->fields, i);
        jb_key(&b, field_keys[i], i == 0);
        if (v)
            jb_meta(&b, v);
        else
            JB_LIT(&b, "null");
    }
    JB_LIT(&b, "}");

    /* NUL bytes are valid UTF-8 and written as \u0000. */
    const uint8_t *line = e->line ? e->line : (const uint8_t *)"";
    JB_LIT(&b, ",\"line\":");
    if (!jb_str_utf8(&b, line, e->line_len)) {
        b.len -= sizeof(",\"line\":") - 1;
        JB_LIT(&b, ",\"line_b64\":");
        jb_b64(&b, line, e->line_len);
    }
    if (e->truncated_bytes) {
        JB_LIT(&b, ",\"truncated_bytes\":");
        jb_u64(&b, e->truncated_bytes);
    }
    JB_LIT(&b, "}");
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

/* ---------------------------------------------------------------- decode */

struct decoder {
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct decoder *d, const char *fmt, ...)
{
    if (d->err && d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Untrusted text (a key, jansson's message quoting the input) goes into a
 * reason that ends up in logs and DLQ headers: keep it short, printable
 * ASCII. */
static void printable(char *dst, size_t dstlen, const char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[o] = '\0';
}

static bool in_list(const char *key, size_t keylen, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == keylen && memcmp(list[i], key, keylen) == 0)
            return true;
    return false;
}

/* Every key must be known: an unknown key means the producer does not speak
 * v1, and silently dropping its data would lose audit content. */
static int check_keys(struct decoder *d, json_t *obj, const char *prefix, const char *const *list,
                      size_t n)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t keylen = json_object_iter_key_len(it);
        if (!in_list(key, keylen, list, n)) {
            char safe[64];
            printable(safe, sizeof(safe), key, keylen);
            return fail(d, "unknown field: %s%s", prefix, safe);
        }
    }
    return 0;
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool is_uuid(const char *s, size_t n)
{
    if (n != CHAIN_UUID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_lower_hex(s + i, 1))
            return false;
    }
    return true;
}

/* A required string member: its value and length, or a reason. */
static int get_string(struct decoder *d, json_t *obj, const char *key, const char *name,
                      const char **s, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return fail(d, "missing field: %s", name);
    if (!json_is_string(v))
        return fail(d, "bad field: %s", name);
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 0;
}

static int get_uint(struct decoder *d, json_t *obj, const char *key, bool required, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return required ? fail(d, "missing field: %s", key) : 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > ENVELOPE_MAX_INT)
        return fail(d, "bad field: %s", key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_hash(struct decoder *d, json_t *obj, const char *key, uint8_t out[CHAIN_HASH_LEN])
{
    const char *s;
    size_t n;
    if (get_string(d, obj, key, key, &s, &n) < 0)
        return -1;
    if (n != 2 * CHAIN_HASH_LEN || !is_lower_hex(s, n))
        return fail(d, "bad field: %s", key);
    hex_decode(s, CHAIN_HASH_LEN, out);
    return 0;
}

static int get_time(struct decoder *d, json_t *obj, const char *key, int64_t *out)
{
    const char *s;
    size_t n;
    if (get_string(d, obj, key, key, &s, &n) < 0)
        return -1;
    if (time_parse_rfc3339(s, n, out) < 0)
        return fail(d, "bad field: %s", key);
    return 0;
}

/* A metadata string copied into the envelope. NUL inside is refused: the C
 * string would silently lose its tail. */
static int dup_meta(struct decoder *d, json_t *v, const char *name, char **out)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return fail(d, "bad field: %s", name);
    *out = xstrndup(json_string_value(v), json_string_length(v));
    return 0;
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Strict standard base64 (padding required, no whitespace) into a new
 * NUL-terminated buffer. EVP_DecodeBlock alone would skip whitespace and
 * count padding as zero bytes, so the shape is checked here first. */
static int b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    if (n % 4 != 0)
        return -1;
    size_t pad = 0;
    if (n >= 4 && s[n - 1] == '=')
        pad = s[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_char(s[i]))
            return -1;
    size_t full = n / 4 * 3;
    uint8_t *buf = xmalloc(full + 1);
    const size_t chunk = (size_t)1 << 28; /* a multiple of 4 that fits an int */
    for (size_t i = 0, o = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        int r = EVP_DecodeBlock(buf + o, (const unsigned char *)s + i, (int)k);
        if (r < 0) {
            free(buf);
            return -1;
        }
        o += (size_t)r;
    }
    *outlen = full - pad;
    buf[*outlen] = '\0';
    *out = buf;
    return 0;
}

static bool format_ok(const char *s, size_t n)
{
    if (n == 0 || n > FORMAT_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '-' || c == '_' || c == '.'));
        if (!ok)
            return false;
    }
    return true;
}

static int decode_source(struct decoder *d, json_t *root, struct envelope *out)
{
    json_t *src = json_object_get(root, "source");
    if (!src)
        return fail(d, "missing field: source");
    if (!json_is_object(src))
        return fail(d, "bad field: source");
    if (check_keys(d, src, "source.", source_keys, NELEM(source_keys)) < 0)
        return -1;
    for (size_t i = 0; i < NELEM(source_keys); i++) {
        json_t *v = json_object_get(src, source_keys[i]);
        char name[32];
        snprintf(name, sizeof(name), "source.%s", source_keys[i]);
        if (!v) {
            if (i == 0)
                return fail(d, "missing field: %s", name);
            continue;
        }
        if (dup_meta(d, v, name, source_slot(&out->source, i)) < 0)
            return -1;
    }
    return 0;
}

static int decode_fields(struct decoder *d, json_t *root, struct envelope *out)
{
    json_t *fields = json_object_get(root, "fields");
    if (!fields)
        return 0; /* optional: every field absent */
    if (!json_is_object(fields))
        return fail(d, "bad field: fields");
    if (check_keys(d, fields, "fields.", field_keys, NELEM(field_keys)) < 0)
        return -1;
    for (size_t i = 0; i < NELEM(field_keys); i++) {
        json_t *v = json_object_get(fields, field_keys[i]);
        char name[32];
        snprintf(name, sizeof(name), "fields.%s", field_keys[i]);
        if (!v || json_is_null(v))
            continue;
        if (dup_meta(d, v, name, field_slot(&out->fields, i)) < 0)
            return -1;
    }
    return 0;
}

static int decode_line(struct decoder *d, json_t *root, struct envelope *out)
{
    json_t *line = json_object_get(root, "line");
    json_t *b64 = json_object_get(root, "line_b64");
    if (line && b64)
        return fail(d, "both line and line_b64");
    if (!line && !b64)
        return fail(d, "missing field: line or line_b64");
    if (line) {
        if (!json_is_string(line))
            return fail(d, "bad field: line");
        size_t n = json_string_length(line);
        out->line = xmalloc(n + 1);
        memcpy(out->line, json_string_value(line), n);
        out->line[n] = '\0';
        out->line_len = n;
        return 0;
    }
    if (!json_is_string(b64) ||
        b64_decode(json_string_value(b64), json_string_length(b64), &out->line, &out->line_len) < 0)
        return fail(d, "bad field: line_b64");
    return 0;
}

static int decode_root(struct decoder *d, json_t *root, struct envelope *out)
{
    const char *s;
    size_t n;

    if (!json_is_object(root))
        return fail(d, "not an object");
    json_t *v = json_object_get(root, "v");
    if (!v)
        return fail(d, "missing field: v");
    if (!json_is_integer(v))
        return fail(d, "bad field: v");
    if (json_integer_value(v) != 1)
        return fail(d, "unsupported version: %" JSON_INTEGER_FORMAT, json_integer_value(v));
    out->v = 1;
    if (check_keys(d, root, "", top_keys, NELEM(top_keys)) < 0)
        return -1;

    if (get_string(d, root, "id", "id", &s, &n) < 0)
        return -1;
    if (!is_uuid(s, n))
        return fail(d, "bad field: id");
    memcpy(out->id, s, n + 1);

    if (get_string(d, root, "stream", "stream", &s, &n) < 0)
        return -1;
    if (n != CHAIN_STREAM_HEX_LEN || !is_lower_hex(s, n))
        return fail(d, "bad field: stream");
    memcpy(out->stream, s, n + 1);

    if (get_uint(d, root, "seq", true, &out->seq) < 0 ||
        get_uint(d, root, "offset", true, &out->offset) < 0 ||
        get_hash(d, root, "hash", out->hash) < 0 || get_hash(d, root, "prev", out->prev) < 0 ||
        get_time(d, root, "time", &out->time_us) < 0)
        return -1;

    if (get_string(d, root, "time_source", "time_source", &s, &n) < 0)
        return -1;
    if (n == 7 && memcmp(s, "payload", 7) == 0)
        out->time_source = TIME_SOURCE_PAYLOAD;
    else if (n == 4 && memcmp(s, "read", 4) == 0)
        out->time_source = TIME_SOURCE_READ;
    else
        return fail(d, "bad field: time_source");

    if (get_time(d, root, "read_time", &out->read_time_us) < 0 || decode_source(d, root, out) < 0)
        return -1;

    if (get_string(d, root, "format", "format", &s, &n) < 0)
        return -1;
    if (!format_ok(s, n))
        return fail(d, "bad field: format");
    out->format = xstrndup(s, n);

    if (decode_fields(d, root, out) < 0 || decode_line(d, root, out) < 0 ||
        get_uint(d, root, "truncated_bytes", false, &out->truncated_bytes) < 0)
        return -1;
    return envelope_verify(out, d->err, d->errlen);
}

int envelope_decode(const char *buf, size_t len, struct envelope *out, char *err, size_t errlen)
{
    struct decoder d = {err, errlen};
    json_error_t jerr;
    /* Duplicate keys are refused: two readers could pick different values. */
    json_t *root = json_loadb(buf ? buf : "", buf ? len : 0,
                              JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!root) {
        char safe[80];
        printable(safe, sizeof(safe), jerr.text, strlen(jerr.text));
        return fail(&d, "not JSON: %s", safe);
    }
    int rc = decode_root(&d, root, out);
    json_decref(root);
    return rc;
}

int envelope_verify(const struct envelope *e, char *err, size_t errlen)
{
    struct decoder d = {err, errlen};
    uint8_t hash[CHAIN_HASH_LEN];
    char id[CHAIN_UUID_LEN + 1];
    chain_next(e->prev, e->seq, e->line, e->line_len, hash);
    if (memcmp(hash, e->hash, CHAIN_HASH_LEN) != 0)
        return fail(&d, "hash mismatch");
    chain_id(hash, id);
    if (memcmp(id, e->id, sizeof(id)) != 0)
        return fail(&d, "id mismatch");
    return 0;
}

void envelope_release(struct envelope *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < NELEM(source_keys); i++)
        free(*source_slot(&e->source, i));
    for (size_t i = 0; i < NELEM(field_keys); i++)
        free(*field_slot(&e->fields, i));
    free(e->format);
    free(e->line);
    memset(e, 0, sizeof(*e));
}
