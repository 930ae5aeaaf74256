/* The JSON fast path's scanner: one pass over the record that checks
 * everything jansson's json_loadb(JSON_ALLOW_NUL) checks and picks out the
 * values of the queried paths on the way, without building anything. What
 * it cannot settle exactly as jansson would, it declines
 * (format_json_int.h), and the caller asks jansson. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format_int.h"
#include "agent/format_json_int.h"
#include "common/utf8.h"
#include "common/xmalloc.h"

#define MAX_KEY_DECODE 256 /* escaped keys longer than this are declined */

/* ---------------------------------------------------------------- query */

void fmt_json_query_init(struct fmt_json_query *q)
{
    q->npaths = 0;
    q->ncomps = 0;
    memset(q->ends, 0, sizeof(q->ends));
    memset(q->by_hash, 0, sizeof(q->by_hash));
}

/* A member name's bucket in fmt_json_query.by_hash: length, first and last
 * byte. */
static inline unsigned key_hash(const uint8_t *k, size_t n)
{
    return n ? (unsigned)(n * 7 + k[0] * 3 + k[n - 1]) & 63 : 0;
}

/* The array index a component names, as jansson's lookup reads it: 1 to 9
 * decimal digits (leading zeros allowed), else -1. */
static int32_t comp_index(const char *s, size_t n)
{
    int32_t idx = 0;
    size_t i;
    for (i = 0; i < n && s[i] >= '0' && s[i] <= '9' && i < 9; i++)
        idx = idx * 10 + (s[i] - '0');
    return n == 0 || i != n ? -1 : idx;
}

int fmt_json_query_add(struct fmt_json_query *q, const char *path)
{
    if (q->npaths >= FMT_JSON_MAX_PATHS)
        return -1;
    unsigned first = q->ncomps, nc = 0;
    /* Split as the jansson lookup walks: a component runs to the next dot,
     * and a dot right at the end adds nothing ("a." is "a", "a.." is "a", ""). */
    for (const char *p = path; *p;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (q->ncomps >= FMT_JSON_MAX_COMPS || nc >= FMT_JSON_MAX_DEPTH) {
            q->ncomps = first;
            return -1;
        }
        q->comp[q->ncomps++] = (struct fmt_json_comp){p, (uint32_t)n, comp_index(p, n)};
        if (nc < FMT_JSON_KEY_FILTER)
            q->by_hash[nc][key_hash((const uint8_t *)p, n)] |= 1ull << q->npaths;
        nc++;
        p += n;
        if (*p == '.')
            p++;
    }
    unsigned id = q->npaths++;
    q->first[id] = (uint16_t)first;
    q->ncomp[id] = (uint8_t)nc;
    q->ends[nc] |= 1ull << id;
    return (int)id;
}

/* ---------------------------------------------------------------- bytes */

static inline bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int hex4(const uint8_t *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Index of the first byte at or after i that a string scan must look at:
 * '"', '\\', below 0x20, or 0x80 and above (n if none). Eight bytes at a
 * time; the lowest flagged byte is exact (the bit tricks only over-report
 * above a real hit). */
static inline size_t string_special(const uint8_t *s, size_t i, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, q, bs;
        memcpy(&w, s + i, 8);
        q = w ^ (ones * '"');
        bs = w ^ (ones * '\\');
        uint64_t hit =
            (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | w) & highs;
        if (hit)
            return i + (size_t)(__builtin_ctzll(hit) >> 3);
    }
    while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* Length of the escape at s[0] == '\\' as jansson's lexer accepts it (2, 6,
 * or 12 for a surrogate pair), 0 if invalid: an unknown letter, \u without
 * four hex digits, a surrogate not in a high-low pair, or \u0000 in a key
 * (jansson refuses NUL in keys). */
static size_t escape_len(const uint8_t *s, size_t n, bool key)
{
    if (n < 2)
        return 0;
    if (s[1] != 'u')
        return s[1] && strchr("\"\\/bfnrt", s[1]) ? 2 : 0;
    int cp = n >= 6 ? hex4(s + 2) : -1;
    if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff) || (cp == 0 && key))
        return 0;
    if (cp < 0xd800 || cp > 0xdbff)
        return 6;
    if (n < 12 || s[6] != '\\' || s[7] != 'u')
        return 0;
    int lo = hex4(s + 8);
    return lo >= 0xdc00 && lo <= 0xdfff ? 12 : 0;
}

/* Write the UTF-8 of code point cp at o; returns its length. */
static size_t put_utf8(uint32_t cp, uint8_t *o)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Resolve the escapes of a string string_ok accepted into o (room for n
 * bytes: no escape grows). \u0000 becomes U+FFFD when nul_fffd (the fields'
 * rule; 6 bytes -> 3), else a NUL. Returns the length written. */
static size_t string_decode(const uint8_t *s, size_t n, uint8_t *o, bool nul_fffd)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        const uint8_t *bs = memchr(s + i, '\\', n - i);
        size_t run = bs ? (size_t)(bs - (s + i)) : n - i;
        memcpy(o + w, s + i, run);
        w += run;
        i += run;
        if (i >= n)
            break;
        uint8_t c = s[i + 1];
        if (c != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            o[w++] = (uint8_t)to[strchr(from, c) - from];
            i += 2;
            continue;
        }
        uint32_t cp = (uint32_t)hex4(s + i + 2);
        i += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            cp = ((cp - 0xd800) << 10) + ((uint32_t)hex4(s + i + 2) - 0xdc00) + 0x10000;
            i += 6;
        }
        if (cp == 0 && nul_fffd) {
            memcpy(o + w, "\xef\xbf\xbd", 3);
            w += 3;
            continue;
        }
        w += put_utf8(cp, o + w);
    }
    return w;
}

/* Length of the number at s[0] as jansson's lexer reads it:
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? (what follows is the
 * caller's business); *real: has a fraction or exponent. 0 when invalid, and
 * for what the fast path leaves to jansson: an integer beyond int64 (jansson
 * then re-reads every integer of the record as a real) and a real that
 * might overflow (jansson fails the record). */
static size_t number_len(const uint8_t *s, size_t n, bool *real)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    size_t int_start = i;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && is_digit(s[i]))
            i++;
    else
        return 0;
    size_t int_digits = i - int_start;
    *real = false;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
        *real = true;
    }
    long exp10 = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool neg = false;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            neg = s[i++] == '-';
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i])) {
            if (exp10 < 100000)
                exp10 = exp10 * 10 + (s[i] - '0');
            i++;
        }
        if (neg)
            exp10 = -exp10;
        *real = true;
    }
    if (*real)
        /* below 10^(int_digits + exp10) <= 10^308 < DBL_MAX: no overflow */
        return (long)int_digits + exp10 <= 308 ? i : 0;
    if (int_digits < 19)
        return i;
    /* 19 digits or more: what strtoll would refuse */
    char buf[32];
    if (i >= sizeof(buf))
        return 0;
    memcpy(buf, s, i);
    buf[i] = '\0';
    errno = 0;
    (void)strtoll(buf, NULL, 10);
    return errno == ERANGE ? 0 : i;
}

/* ---------------------------------------------------------------- walk */

struct scan {
    const struct fmt_json_query *q;
    struct fmt_jv *vals;
    const uint8_t *s;
    size_t n, pos;
};

static inline void skip_ws(struct scan *sc)
{
    while (sc->pos < sc->n && is_ws(sc->s[sc->pos]))
        sc->pos++;
}

/* The string whose opening quote is at sc->pos, checked as jansson's lexer
 * checks it: no control character, valid escapes, well-formed UTF-8. */
static bool scan_string(struct scan *sc, bool key, struct fmt_jv *v)
{
    const uint8_t *s = sc->s;
    size_t n = sc->n, start = sc->pos + 1, i = start;
    bool esc = false;
    for (;;) {
        i = string_special(s, i, n);
        if (i >= n)
            return false;
        uint8_t c = s[i];
        size_t k;
        if (c == '"')
            break;
        if (c < 0x20)
            return false;
        if (c >= 0x80)
            k = utf8_seq_len(s + i, n - i);
        else
            esc = true, k = escape_len(s + i, n - i, key);
        if (!k)
            return false;
        i += k;
    }
    *v = (struct fmt_jv){FMT_JV_STRING, esc, s + start, i - start};
    sc->pos = i + 1;
    return true;
}

/* true, false, null or a number at sc->pos. */
static bool scan_primitive(struct scan *sc, struct fmt_jv *v)
{
    const uint8_t *p = sc->s + sc->pos;
    size_t rest = sc->n - sc->pos, n;
    enum fmt_jv_type type;
    bool real;
    if (rest >= 4 && memcmp(p, "true", 4) == 0)
        type = FMT_JV_TRUE, n = 4;
    else if (rest >= 5 && memcmp(p, "false", 5) == 0)
        type = FMT_JV_FALSE, n = 5;
    else if (rest >= 4 && memcmp(p, "null", 4) == 0)
        type = FMT_JV_NULL, n = 4;
    else if ((n = number_len(p, rest, &real)) > 0)
        type = real ? FMT_JV_REAL : FMT_JV_INT;
    else
        return false;
    *v = (struct fmt_jv){type, false, p, n};
    sc->pos += n;
    return true;
}

/* The paths of `cand` whose component at `depth` names the member `key`.
 * -1 (decline) when an escaped key is too long to compare. */
static int match_key(const struct scan *sc, uint64_t cand, unsigned depth, const struct fmt_jv *key,
                     uint64_t *out)
{
    uint8_t buf[MAX_KEY_DECODE];
    const uint8_t *k = key->p;
    size_t kn = key->n;
    if (key->esc) {
        if (kn > sizeof(buf))
            return -1;
        kn = string_decode(key->p, key->n, buf, false);
        k = buf;
    }
    if (depth < FMT_JSON_KEY_FILTER)
        cand &= sc->q->by_hash[depth][key_hash(k, kn)];
    uint64_t m = 0;
    while (cand) {
        unsigned p = (unsigned)__builtin_ctzll(cand);
        cand &= cand - 1;
        const struct fmt_json_comp *c = &sc->q->comp[sc->q->first[p] + depth];
        if (c->n == kn && memcmp(c->s, k, kn) == 0)
            m |= 1ull << p;
    }
    *out = m;
    return 0;
}

static uint64_t match_index(const struct scan *sc, uint64_t cand, unsigned depth, int32_t idx)
{
    uint64_t m = 0;
    while (cand) {
        unsigned p = (unsigned)__builtin_ctzll(cand);
        cand &= cand - 1;
        if (sc->q->comp[sc->q->first[p] + depth].idx == idx)
            m |= 1ull << p;
    }
    return m;
}

/* Forget what an earlier member of the same name gave these paths: jansson
 * keeps the last value of a duplicate key. */
static inline void forget(struct scan *sc, uint64_t paths)
{
    while (paths) {
        unsigned p = (unsigned)__builtin_ctzll(paths);
        paths &= paths - 1;
        sc->vals[p].type = FMT_JV_ABSENT;
    }
}

static bool scan_value(struct scan *sc, uint64_t active, unsigned depth);

/* The members of an object or array whose opening bracket was just read,
 * up to and including its closing bracket. `cand`: the paths that go on
 * below this container. */
static bool scan_members(struct scan *sc, bool object, uint64_t cand, unsigned depth)
{
    const uint8_t close = object ? '}' : ']';
    skip_ws(sc);
    if (sc->pos < sc->n && sc->s[sc->pos] == close) {
        sc->pos++;
        return true;
    }
    for (int32_t idx = 0;; idx++) {
        uint64_t sub = 0;
        if (object) {
            struct fmt_jv key;
            if (sc->pos >= sc->n || sc->s[sc->pos] != '"' || !scan_string(sc, true, &key))
                return false;
            skip_ws(sc);
            if (sc->pos >= sc->n || sc->s[sc->pos] != ':')
                return false;
            sc->pos++;
            skip_ws(sc);
            if (cand && match_key(sc, cand, depth, &key, &sub) < 0)
                return false;
            forget(sc, sub);
        } else if (cand) {
            sub = match_index(sc, cand, depth, idx);
        }
        if (!scan_value(sc, sub, depth + 1))
            return false;
        skip_ws(sc);
        if (sc->pos >= sc->n)
            return false;
        if (sc->s[sc->pos] == ',') {
            sc->pos++;
            skip_ws(sc);
            continue;
        }
        if (sc->s[sc->pos] != close)
            return false;
        sc->pos++;
        return true;
    }
}

/* One value at sc->pos (no whitespace before it). `active`: the paths that
 * lead here; those ending here take the value. */
static bool scan_value(struct scan *sc, uint64_t active, unsigned depth)
{
    if (sc->pos >= sc->n || depth > FMT_JSON_MAX_DEPTH)
        return false;
    struct fmt_jv v;
    uint8_t c = sc->s[sc->pos];
    if (c == '{' || c == '[') {
        size_t start = sc->pos++;
        uint64_t cand = depth < FMT_JSON_MAX_DEPTH ? active & ~sc->q->ends[depth] : 0;
        if (!scan_members(sc, c == '{', cand, depth))
            return false;
        v = (struct fmt_jv){c == '{' ? FMT_JV_OBJECT : FMT_JV_ARRAY, false, sc->s + start,
                            sc->pos - start};
    } else if (c == '"') {
        if (!scan_string(sc, false, &v))
            return false;
    } else if (!scan_primitive(sc, &v)) {
        return false;
    }
    uint64_t here = active & sc->q->ends[depth];
    while (here) {
        unsigned p = (unsigned)__builtin_ctzll(here);
        here &= here - 1;
        sc->vals[p] = v;
    }
    return true;
}

int fmt_json_scan(const struct fmt_json_query *q, const uint8_t *rec, size_t len,
                  struct fmt_jv *vals)
{
    struct scan sc = {.q = q, .vals = vals, .s = rec, .n = len};
    memset(vals, 0, q->npaths * sizeof(*vals));
    skip_ws(&sc);
    if (sc.pos >= len || rec[sc.pos] != '{')
        return -1; /* an array or a scalar: jansson says which */
    uint64_t all = q->npaths == 64 ? ~0ull : (1ull << q->npaths) - 1;
    if (!scan_value(&sc, all, 0))
        return -1;
    skip_ws(&sc);
    return sc.pos == len ? 0 : -1;
}

/* ---------------------------------------------------------------- values */

/* A number token as a NUL-terminated string in buf (or the heap when long:
 * *heap to free). */
static const char *token_str(const struct fmt_jv *v, char *buf, size_t cap, char **heap)
{
    char *d = buf;
    *heap = NULL;
    if (v->n >= cap)
        d = *heap = xmalloc(v->n + 1);
    memcpy(d, v->p, v->n);
    d[v->n] = '\0';
    return d;
}

static double token_real(const struct fmt_jv *v)
{
    char buf[64], *heap;
    double d = strtod(token_str(v, buf, sizeof(buf), &heap), NULL);
    free(heap);
    return d;
}

char *fmt_jv_scalar_dup(const struct fmt_jv *v)
{
    switch (v->type) {
    case FMT_JV_STRING: {
        uint8_t *s = xmalloc(v->n + 1);
        size_t n = v->n;
        if (v->esc)
            n = string_decode(v->p, v->n, s, true);
        else
            memcpy(s, v->p, n);
        s[n] = '\0';
        return (char *)s;
    }
    case FMT_JV_INT:
        /* a JSON integer within int64 prints as its own token, but for -0 */
        if (v->n == 2 && v->p[0] == '-' && v->p[1] == '0')
            return xstrdup("0");
        return xstrndup((const char *)v->p, v->n);
    case FMT_JV_REAL:
        return fmt_real_dup(token_real(v));
    case FMT_JV_TRUE:
        return xstrdup("true");
    case FMT_JV_FALSE:
        return xstrdup("false");
    default:
        return NULL;
    }
}

char *fmt_jv_mapped_dup(const struct fmt_jv *v)
{
    if (v->type == FMT_JV_OBJECT || v->type == FMT_JV_ARRAY)
        return fmt_json_compact(v->p, v->n);
    return fmt_jv_scalar_dup(v);
}

int fmt_jv_time(const struct fmt_jv *v, int64_t *us)
{
    switch (v->type) {
    case FMT_JV_STRING: {
        if (!v->esc)
            return fmt_time_from_text((const char *)v->p, v->n, us);
        uint8_t buf[128], *d = v->n <= sizeof(buf) ? buf : xmalloc(v->n);
        int rc = fmt_time_from_text((const char *)d, string_decode(v->p, v->n, d, false), us);
        if (d != buf)
            free(d);
        return rc;
    }
    case FMT_JV_INT: {
        char buf[32], *heap;
        long long i = strtoll(token_str(v, buf, sizeof(buf), &heap), NULL, 10);
        free(heap);
        return fmt_time_from_epoch((double)i, us);
    }
    case FMT_JV_REAL:
        return fmt_time_from_epoch(token_real(v), us);
    default:
        return -1;
    }
}

bool fmt_jv_cstr(const struct fmt_jv *v, char *dst, size_t *n)
{
    if (v->type != FMT_JV_STRING)
        return false;
    size_t w = v->n;
    if (v->esc) {
        w = string_decode(v->p, v->n, (uint8_t *)dst, false);
        const char *nul = memchr(dst, '\0', w);
        if (nul)
            w = (size_t)(nul - dst);
    } else {
        memcpy(dst, v->p, w); /* no escape, so no NUL */
    }
    *n = w;
    return true;
}

bool fmt_jv_cstr_is(const struct fmt_jv *v, const char *s)
{
    if (v->type != FMT_JV_STRING)
        return false;
    size_t sn = strlen(s);
    if (!v->esc)
        return v->n == sn && memcmp(v->p, s, sn) == 0;
    char buf[256], *d = v->n <= sizeof(buf) ? buf : xmalloc(v->n);
    size_t n;
    fmt_jv_cstr(v, d, &n);
    bool eq = n == sn && memcmp(d, s, sn) == 0;
    if (d != buf)
        free(d);
    return eq;
}
