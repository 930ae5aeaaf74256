/* The single-pass envelope reader (common/envelope_view.h), the
 * aggregator's hot path: envelopes as agents write them (compact JSON,
 * known keys once each, strings, integers and null) are read in one pass
 * without building a document. Whatever is outside that subset (white
 * space, an unknown or repeated key, a real, an array, a boolean, a
 * negative or long integer, a surrogate escape, invalid UTF-8, trailing
 * bytes) is left to jansson, which decides it exactly as before: the scan
 * only ever accepts what jansson reads the same way (test_envelope_diff). */
#include "common/envelope_view.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hashchain.h"
#include "common/utf8.h"
#include "common/xmalloc.h"

const char *const envelope_top_keys[K_COUNT] = {
    "v",           "id",        "stream",   "seq",
    "offset",      "hash",      "prev",     "time",
    "time_source", "read_time", "source",   "format",
    "fields",      "line",      "line_b64", "truncated_bytes"};

int envelope_key_index(const char *key, size_t keylen, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == keylen && memcmp(list[i], key, keylen) == 0)
            return (int)i;
    return -1;
}

struct scan {
    const char *p, *end;
    char *out; /* scratch for unescaped strings: never longer than the input */
};

/* A string at sc->p (its opening quote), unescaped into the scratch. */
static bool scan_string(struct scan *sc, const char **s, size_t *n)
{
    const char *p = sc->p + 1, *end = sc->end;
    char *o = sc->out;
    *s = o;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *n = (size_t)(o - *s);
            sc->out = o;
            sc->p = p + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            size_t k = utf8_seq_len((const uint8_t *)p, (size_t)(end - p));
            if (k == 0)
                return false;
            memcpy(o, p, k);
            o += k;
            p += k;
            continue;
        }
        if (c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        if (end - p < 2)
            return false;
        char e = p[1];
        p += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            *o++ = e;
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            if (end - p < 4)
                return false;
            unsigned cp = 0;
            for (int i = 0; i < 4; i++) {
                int h = hex_digit_value((unsigned char)p[i]);
                if (h < 0)
                    return false;
                cp = cp << 4 | (unsigned)h;
            }
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdfff)
                return false; /* pairs and lone halves: jansson's call */
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xc0 | cp >> 6);
                *o++ = (char)(0x80 | (cp & 0x3f));
            } else {
                *o++ = (char)(0xe0 | cp >> 12);
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *o++ = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default:
            return false;
        }
    }
    return false;
}

/* A key at sc->p: plain (no escape, no control or non-ASCII byte), its
 * index in list, not seen before. */
static bool scan_key(struct scan *sc, const char *const *list, size_t n, uint32_t *seen, int *k)
{
    const char *p = sc->p;
    if (p >= sc->end || *p != '"')
        return false;
    const char *q = ++p;
    while (q < sc->end && *q != '"') {
        if (*q == '\\' || (unsigned char)*q < 0x20 || (unsigned char)*q >= 0x80)
            return false;
        q++;
    }
    if (q + 1 >= sc->end || q[1] != ':')
        return false;
    *k = envelope_key_index(p, (size_t)(q - p), list, n);
    if (*k < 0 || (*seen & (1u << *k)))
        return false;
    *seen |= 1u << *k;
    sc->p = q + 2;
    return true;
}

/* A string, a non-negative integer of at most 18 digits, or null. */
static bool scan_scalar(struct scan *sc, struct jv *v)
{
    const char *p = sc->p, *end = sc->end;
    if (p >= end)
        return false;
    if (*p == '"') {
        v->t = JV_STRING;
        return scan_string(sc, &v->s, &v->n);
    }
    if (*p >= '0' && *p <= '9') {
        long long x = 0;
        int digits = 0;
        if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')
            return false; /* a leading zero is not JSON */
        while (p < end && *p >= '0' && *p <= '9') {
            if (++digits > 18)
                return false;
            x = x * 10 + (*p++ - '0');
        }
        if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
            return false;
        v->t = JV_INT;
        v->i = x;
        sc->p = p;
        return true;
    }
    if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
        v->t = JV_NULL;
        sc->p = p + 4;
        return true;
    }
    return false;
}

/* An object's members at sc->p (its opening brace) into slots; *v
 * records only that it is an object. */
static bool scan_object(struct scan *sc, const char *const *list, size_t n, struct jv *slots,
                        struct jv *v)
{
    uint32_t seen = 0;
    int k;
    v->t = JV_OBJECT;
    sc->p++;
    if (sc->p < sc->end && *sc->p == '}') {
        sc->p++;
        return true;
    }
    for (;;) {
        if (!scan_key(sc, list, n, &seen, &k) || !scan_scalar(sc, &slots[k]) || sc->p >= sc->end)
            return false;
        char c = *sc->p++;
        if (c == '}')
            return true;
        if (c != ',')
            return false;
    }
}

bool envelope_scan(const char *buf, size_t len, struct view *v, char *scratch)
{
    struct scan sc = {buf, buf + len, scratch};
    uint32_t seen = 0;
    int k;
    memset(v, 0, sizeof(*v));
    if (len < 2 || buf[0] != '{' || buf[1] == '}')
        return false;
    sc.p++;
    for (;;) {
        if (!scan_key(&sc, envelope_top_keys, K_COUNT, &seen, &k))
            return false;
        bool ok;
        if ((k == K_SOURCE || k == K_FIELDS) && sc.p < sc.end && *sc.p == '{')
            ok = k == K_SOURCE ? scan_object(&sc, envelope_source_keys, ENVELOPE_SOURCE_KEYS,
                                             v->source, &v->top[k])
                               : scan_object(&sc, envelope_field_keys, ENVELOPE_FIELD_KEYS,
                                             v->fields, &v->top[k]);
        else
            ok = scan_scalar(&sc, &v->top[k]);
        if (!ok || sc.p >= sc.end)
            return false;
        char c = *sc.p++;
        if (c == '}')
            return sc.p == sc.end;
        if (c != ',')
            return false;
    }
}

bool envelope_scan_reads(const char *buf, size_t len)
{
    struct view v;
    char *scratch = xmalloc(len + 1);
    bool ok = buf && envelope_scan(buf, len, &v, scratch);
    free(scratch);
    return ok;
}
