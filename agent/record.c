/* One record -> one envelope: the parser gives time and fields, the agent
 * decides time once so re-sends land on the same partition key. */
#include "agent/record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/envelope.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

struct jbuf {
    char *p;
    size_t len, cap;
};

static void jb_grow(struct jbuf *b, size_t n);

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

static void jb_lit(struct jbuf *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

static void jb_u64(struct jbuf *b, uint64_t v)
{
    char num[24], *p = num + sizeof(num);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jb_put(b, p, (size_t)(num + sizeof(num) - p));
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), 0 if invalid - jansson's rules. */
static size_t utf8_seq_len(const uint8_t *s, size_t n)
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
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (need == 4 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return need;
}

/* Index of the first byte at or after i that needs attention in a JSON
 * string: < 0x20, '"', '\\' or >= 0x80 (n if none). Eight bytes at a time;
 * the lowest flagged byte is exact (the bit tricks only over-report above
 * a real hit). */
static size_t next_special(const uint8_t *s, size_t i, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
        uint64_t hit =
            (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | w) & highs;
        if (hit)
            return i + (size_t)(__builtin_ctzll(hit) >> 3);
        i += 8;
    }
    while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* Append s as a JSON string if it is valid UTF-8 (true), else leave b as it
 * was (false). Plain runs are copied whole, escapes written in place; 2n is
 * reserved up front (two-byte escapes), \u00XX checks for more. */
static bool jb_str_utf8(struct jbuf *b, const uint8_t *s, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    size_t start = b->len;
    jb_reserve(b, 2 * n + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
    for (;;) {
        size_t j = next_special(s, i, n);
        memcpy(o, s + i, j - i);
        o += j - i;
        i = j;
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
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default: {
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
        }
        i++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return true;
}

static void jb_str_valid(struct jbuf *b, const uint8_t *s, size_t n)
{
    (void)jb_str_utf8(b, s, n);
}

/* Metadata strings (path, names, fields): invalid bytes become U+FFFD, as
 * envelope_encode does; the record itself travels exactly in line/line_b64. */
static void jb_meta(struct jbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (jb_str_utf8(b, (const uint8_t *)s, n))
        return;
    char *fixed = xmalloc(n * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len((const uint8_t *)s + i, n - i);
        if (!k) {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(fixed + o, s + i, k);
            o += k;
            i += k;
        }
    }
    jb_str_valid(b, (const uint8_t *)fixed, o);
    free(fixed);
}

#define JB_LIT(b, s) jb_put((b), (s), sizeof(s) - 1)

static void jb_key(struct jbuf *b, const char *k, bool first)
{
    if (!first)
        jb_put(b, ",", 1);
    jb_put(b, "\"", 1);
    jb_lit(b, k);
    jb_put(b, "\":", 2);
}

static void jb_hex(struct jbuf *b, const uint8_t *h, size_t n)
{
    char hex[2 * CHAIN_HASH_LEN + 3];
    hex[0] = '"';
    hex_encode(h, n, hex + 1);
    hex[2 * n + 1] = '"';
    jb_put(b, hex, 2 * n + 2);
}

/* Timestamps: the "YYYY-MM-DDTHH:MM:SS" part is formatted once per second
 * (gmtime takes a lock and converts time zones: measurable per record). */
static void jb_time(struct jbuf *b, int64_t us, struct record_time_cache *tc)
{
    char ts[TIME_RFC3339_LEN + 2];
    int64_t sec = us / 1000000;
    if (us < 0 || !tc) {
        ts[0] = '"';
        time_format_us(us, ts + 1);
        size_t n = strlen(ts);
        ts[n] = '"';
        jb_put(b, ts, n + 1);
        return;
    }
    if (!tc->valid || tc->sec != sec) {
        time_format_us(sec * 1000000, tc->text);
        tc->sec = sec;
        tc->valid = true;
    }
    /* text is "YYYY-MM-DDTHH:MM:SS.000000Z": keep the first 20 bytes */
    int frac = (int)(us % 1000000);
    ts[0] = '"';
    memcpy(ts + 1, tc->text, 20); /* "YYYY-MM-DDTHH:MM:SS." */
    for (int i = 26; i >= 21; i--, frac /= 10)
        ts[i] = (char)('0' + frac % 10);
    ts[27] = 'Z';
    ts[28] = '"';
    jb_put(b, ts, 29);
}

char *record_envelope_json(const struct envelope *e, size_t *len)
{
    return record_envelope_json_tc(e, len, NULL);
}

char *record_envelope_json_tc(const struct envelope *e, size_t *len, struct record_time_cache *tc)
{
    struct jbuf b = {0};
    jb_reserve(&b, 900 + 2 * e->line_len);
    jb_lit(&b, "{\"v\":1");
    JB_LIT(&b, ",\"id\":");
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
    JB_LIT(&b, ",\"time_source\":");
    jb_lit(&b, e->time_source == TIME_SOURCE_PAYLOAD ? "\"payload\"" : "\"read\"");
    JB_LIT(&b, ",\"read_time\":");
    jb_time(&b, e->read_time_us, tc);
    JB_LIT(&b, ",\"source\":");
    const char *src[][2] = {{"name", e->source.name},
                            {"host", e->source.host},
                            {"namespace", e->source.namespace_},
                            {"pod", e->source.pod},
                            {"container", e->source.container},
                            {"path", e->source.path}};
    bool first = true;
    jb_put(&b, "{", 1);
    for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
        if (!src[i][1])
            continue;
        jb_key(&b, src[i][0], first);
        jb_meta(&b, src[i][1]);
        first = false;
    }
    jb_put(&b, "}", 1);
    JB_LIT(&b, ",\"format\":");
    jb_meta(&b, e->format);
    JB_LIT(&b, ",\"fields\":");
    const char *fl[][2] = {{"tenant", e->fields.tenant},
                           {"actor", e->fields.actor},
                           {"action", e->fields.action},
                           {"resource", e->fields.resource},
                           {"outcome", e->fields.outcome}};
    jb_put(&b, "{", 1);
    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
        jb_key(&b, fl[i][0], i == 0);
        if (fl[i][1])
            jb_meta(&b, fl[i][1]);
        else
            jb_lit(&b, "null");
    }
    jb_put(&b, "}", 1);
    size_t before = b.len;
    JB_LIT(&b, ",\"line\":");
    if (!jb_str_utf8(&b, e->line, e->line_len)) {
        b.len = before;
        JB_LIT(&b, ",\"line_b64\":");
        size_t out = 4 * ((e->line_len + 2) / 3);
        jb_reserve(&b, out + 2);
        b.p[b.len++] = '"';
        /* EVP_EncodeBlock takes an int: chunks of a multiple of 3 bytes keep
         * padding at the very end. */
        const size_t chunk = (size_t)3 << 28;
        for (size_t i = 0; i < e->line_len; i += chunk) {
            size_t k = e->line_len - i < chunk ? e->line_len - i : chunk;
            b.len += (size_t)EVP_EncodeBlock((unsigned char *)b.p + b.len, e->line + i, (int)k);
        }
        b.p[b.len++] = '"';
    }
    if (e->truncated_bytes) {
        JB_LIT(&b, ",\"truncated_bytes\":");
        jb_u64(&b, e->truncated_bytes);
    }
    jb_put(&b, "}", 1);
    b.p[b.len] = '\0';
    *len = b.len;
    /* Give back the worst-case reservation's slack: the in-flight budget
     * counts the allocation (malloc_usable_size), so slack would shrink the
     * window of messages in flight. */
    if (b.cap > b.len + 64)
        b.p = xrealloc(b.p, b.len + 1);
    return b.p;
}

int record_decide_time(const struct record_ctx *c, bool have_time, int64_t payload_us,
                       int64_t read_us, int64_t *out_us)
{
    if (have_time && payload_us >= read_us - c->max_past_us &&
        payload_us <= read_us + c->max_future_us) {
        *out_us = payload_us;
        return TIME_SOURCE_PAYLOAD;
    }
    *out_us = read_us;
    return TIME_SOURCE_READ;
}

char *record_encode(struct record_ctx *c, const struct record_in *r, size_t *len,
                    bool *parse_failed)
{
    struct parsed_record pr;
    *parse_failed = format_parse(r->kind, r->map, r->data, r->len, &pr) < 0;
    struct envelope e;
    memset(&e, 0, sizeof(e));
    e.v = 1;
    chain_id(r->hash, e.id);
    memcpy(e.stream, r->stream_hex, CHAIN_STREAM_HEX_LEN);
    e.stream[CHAIN_STREAM_HEX_LEN] = '\0';
    e.seq = r->seq;
    e.offset = r->offset;
    memcpy(e.hash, r->hash, CHAIN_HASH_LEN);
    memcpy(e.prev, r->prev, CHAIN_HASH_LEN);
    e.time_source = (enum time_source)record_decide_time(c, pr.have_time, pr.time_us,
                                                         r->read_time_us, &e.time_us);
    e.read_time_us = r->read_time_us;
    /* envelope_encode only reads these; the casts drop const for its struct. */
    e.source.name = (char *)c->source_name;
    e.source.host = (char *)c->host;
    e.source.namespace_ = (char *)c->namespace_;
    e.source.pod = (char *)c->pod;
    e.source.container = (char *)c->container;
    e.source.path = (char *)r->path;
    e.format = (char *)format_kind_name(pr.format);
    e.fields.tenant = pr.tenant;
    e.fields.actor = pr.actor;
    e.fields.action = pr.action;
    e.fields.resource = pr.resource;
    e.fields.outcome = pr.outcome;
    e.line = (uint8_t *)r->data;
    e.line_len = r->len;
    e.truncated_bytes = r->truncated;
    char *out = record_envelope_json_tc(&e, len, &c->tcache);
    parsed_record_release(&pr);
    return out;
}
