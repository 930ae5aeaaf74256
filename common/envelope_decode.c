/* The aggregator's envelope decoder (DESIGN.md §3): a single pass reads the
 * usual envelope (envelope_scan.c), jansson the rest, into one view whose
 * every field is checked against the v1 contract; hash and id verified. */
#include "common/envelope.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/envelope_int.h"
#include "common/envelope_view.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define FORMAT_MAX_LEN 32

struct decoder {
    enum envelope_err code; /* the first failure */
    char *detail;
    size_t detaillen;
};

/* Record the failure (code, and detail formatted when fmt is not NULL) and
 * return -1, so that helpers can `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static int fail(struct decoder *d, enum envelope_err code,
                                                      const char *fmt, ...)
{
    d->code = code;
    if (d->detail && d->detaillen) {
        d->detail[0] = '\0';
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(d->detail, d->detaillen, fmt, ap);
            va_end(ap);
        }
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

/* A required string member: its value and length, or a reason (`bad` when
 * it is not a string). */
static int get_string(struct decoder *d, const struct jv *v, const char *key, enum envelope_err bad,
                      const char **s, size_t *n)
{
    if (v->t == JV_ABSENT)
        return fail(d, ENVELOPE_ERR_MISSING_FIELD, "%s", key);
    if (v->t != JV_STRING)
        return fail(d, bad, "%s", key);
    *s = v->s;
    *n = v->n;
    return 0;
}

static int get_uint(struct decoder *d, const struct jv *v, const char *key, bool required,
                    uint64_t *out)
{
    if (v->t == JV_ABSENT)
        return required ? fail(d, ENVELOPE_ERR_MISSING_FIELD, "%s", key) : 0;
    if (v->t != JV_INT || v->i < 0 || (uint64_t)v->i > ENVELOPE_MAX_INT)
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "%s", key);
    *out = (uint64_t)v->i;
    return 0;
}

static int get_hash(struct decoder *d, const struct jv *v, const char *key,
                    uint8_t out[CHAIN_HASH_LEN])
{
    const char *s = NULL;
    size_t n = 0;
    if (get_string(d, v, key, ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (n != 2 * CHAIN_HASH_LEN || !is_lower_hex(s, n))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "%s", key);
    hex_decode(s, CHAIN_HASH_LEN, out);
    return 0;
}

static int get_time(struct decoder *d, const struct jv *v, const char *key, int64_t *out)
{
    const char *s = NULL;
    size_t n = 0;
    if (get_string(d, v, key, ENVELOPE_ERR_BAD_TIME, &s, &n) < 0)
        return -1;
    if (time_parse_rfc3339(s, n, out) < 0)
        return fail(d, ENVELOPE_ERR_BAD_TIME, "%s", key);
    return 0;
}

/* A metadata string copied into the envelope. NUL inside is refused: the C
 * string would silently lose its tail. */
static int dup_meta(struct decoder *d, const struct jv *v, const char *name, char **out)
{
    if (v->t != JV_STRING || memchr(v->s, '\0', v->n))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "%s", name);
    *out = xstrndup(v->s, v->n);
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

static int unknown_key(struct decoder *d, const struct view *v, int which, const char *prefix)
{
    char safe[64];
    printable(safe, sizeof(safe), v->unknown[which], v->unknown_len[which]);
    return fail(d, ENVELOPE_ERR_UNKNOWN_FIELD, "%s%s", prefix, safe);
}

static int decode_source(struct decoder *d, const struct view *v, struct envelope *out)
{
    if (v->top[K_SOURCE].t == JV_ABSENT)
        return fail(d, ENVELOPE_ERR_MISSING_FIELD, "source");
    if (v->top[K_SOURCE].t != JV_OBJECT)
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "source");
    if (v->unknown[1])
        return unknown_key(d, v, 1, "source.");
    for (size_t i = 0; i < ENVELOPE_SOURCE_KEYS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "source.%s", envelope_source_keys[i]);
        if (v->source[i].t == JV_ABSENT) {
            if (i == 0)
                return fail(d, ENVELOPE_ERR_MISSING_FIELD, "%s", name);
            continue;
        }
        if (dup_meta(d, &v->source[i], name, envelope_source_slot(&out->source, i)) < 0)
            return -1;
    }
    return 0;
}

static int decode_fields(struct decoder *d, const struct view *v, struct envelope *out)
{
    if (v->top[K_FIELDS].t == JV_ABSENT)
        return 0; /* optional: every field absent */
    if (v->top[K_FIELDS].t != JV_OBJECT)
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "fields");
    if (v->unknown[2])
        return unknown_key(d, v, 2, "fields.");
    for (size_t i = 0; i < ENVELOPE_FIELD_KEYS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "fields.%s", envelope_field_keys[i]);
        if (v->fields[i].t == JV_ABSENT || v->fields[i].t == JV_NULL)
            continue;
        if (dup_meta(d, &v->fields[i], name, envelope_field_slot(&out->fields, i)) < 0)
            return -1;
    }
    return 0;
}

static int decode_line(struct decoder *d, const struct view *v, struct envelope *out)
{
    const struct jv *line = &v->top[K_LINE], *b64 = &v->top[K_LINE_B64];
    if (line->t != JV_ABSENT && b64->t != JV_ABSENT)
        return fail(d, ENVELOPE_ERR_LINE_TWICE, NULL);
    if (line->t == JV_ABSENT && b64->t == JV_ABSENT)
        return fail(d, ENVELOPE_ERR_MISSING_FIELD, "line or line_b64");
    if (line->t != JV_ABSENT) {
        if (line->t != JV_STRING)
            return fail(d, ENVELOPE_ERR_BAD_FIELD, "line");
        out->line = xmalloc(line->n + 1);
        memcpy(out->line, line->s, line->n);
        out->line[line->n] = '\0';
        out->line_len = line->n;
        return 0;
    }
    if (b64->t != JV_STRING || b64_decode(b64->s, b64->n, &out->line, &out->line_len) < 0)
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "line_b64");
    return 0;
}

/* Every check of the v1 contract, in one order whichever parser filled v. */
static int decode_view(struct decoder *d, const struct view *v, struct envelope *out)
{
    const char *s = NULL;
    size_t n = 0;

    const struct jv *ver = &v->top[K_V];
    if (ver->t == JV_ABSENT)
        return fail(d, ENVELOPE_ERR_NO_VERSION, NULL);
    if (ver->t != JV_INT)
        return fail(d, ENVELOPE_ERR_BAD_VERSION, NULL);
    if (ver->i != 1)
        return fail(d, ENVELOPE_ERR_UNSUPPORTED_VERSION, "%lld", ver->i);
    out->v = 1;
    if (v->unknown[0])
        return unknown_key(d, v, 0, "");

    if (get_string(d, &v->top[K_ID], "id", ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (!is_uuid(s, n))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "id");
    memcpy(out->id, s, n);
    out->id[n] = '\0';

    if (get_string(d, &v->top[K_STREAM], "stream", ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (n != CHAIN_STREAM_HEX_LEN || !is_lower_hex(s, n))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "stream");
    memcpy(out->stream, s, n);
    out->stream[n] = '\0';

    if (get_uint(d, &v->top[K_SEQ], "seq", true, &out->seq) < 0 ||
        get_uint(d, &v->top[K_OFFSET], "offset", true, &out->offset) < 0 ||
        get_hash(d, &v->top[K_HASH], "hash", out->hash) < 0 ||
        get_hash(d, &v->top[K_PREV], "prev", out->prev) < 0 ||
        get_time(d, &v->top[K_TIME], "time", &out->time_us) < 0)
        return -1;

    if (get_string(d, &v->top[K_TIME_SOURCE], "time_source", ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (n == 7 && memcmp(s, "payload", 7) == 0)
        out->time_source = TIME_SOURCE_PAYLOAD;
    else if (n == 4 && memcmp(s, "read", 4) == 0)
        out->time_source = TIME_SOURCE_READ;
    else
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "time_source");

    if (get_time(d, &v->top[K_READ_TIME], "read_time", &out->read_time_us) < 0 ||
        decode_source(d, v, out) < 0)
        return -1;

    if (get_string(d, &v->top[K_FORMAT], "format", ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (!format_ok(s, n))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "format");
    out->format = xstrndup(s, n);

    if (decode_fields(d, v, out) < 0 || decode_line(d, v, out) < 0 ||
        get_uint(d, &v->top[K_TRUNCATED], "truncated_bytes", false, &out->truncated_bytes) < 0)
        return -1;
    enum envelope_err ve = envelope_verify(out);
    return ve == ENVELOPE_OK ? 0 : fail(d, ve, NULL);
}

/* ---- the view from jansson's document ---- */

static void jv_from_json(json_t *j, struct jv *v)
{
    if (json_is_string(j)) {
        v->t = JV_STRING;
        v->s = json_string_value(j);
        v->n = json_string_length(j);
    } else if (json_is_integer(j)) {
        v->t = JV_INT;
        v->i = json_integer_value(j);
    } else if (json_is_null(j)) {
        v->t = JV_NULL;
    } else {
        v->t = json_is_object(j) ? JV_OBJECT : JV_OTHER;
    }
}

/* The members of obj named in list into slots; the first other key into
 * v->unknown[which]. */
static void view_members(json_t *obj, const char *const *list, size_t n, struct jv *slots,
                         struct view *v, int which)
{
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t keylen = json_object_iter_key_len(it);
        int k = envelope_key_index(key, keylen, list, n);
        if (k >= 0) {
            jv_from_json(json_object_iter_value(it), &slots[k]);
        } else if (!v->unknown[which]) {
            v->unknown[which] = key;
            v->unknown_len[which] = keylen;
        }
    }
}

static void view_from_json(json_t *root, struct view *v)
{
    view_members(root, envelope_top_keys, K_COUNT, v->top, v, 0);
    json_t *src = json_object_get(root, "source"), *fields = json_object_get(root, "fields");
    if (json_is_object(src))
        view_members(src, envelope_source_keys, ENVELOPE_SOURCE_KEYS, v->source, v, 1);
    if (json_is_object(fields))
        view_members(fields, envelope_field_keys, ENVELOPE_FIELD_KEYS, v->fields, v, 2);
}

enum envelope_err envelope_decode_jansson(const char *buf, size_t len, struct envelope *out,
                                          char *detail, size_t detaillen)
{
    struct decoder d = {ENVELOPE_OK, detail, detaillen};
    json_error_t jerr;
    if (detail && detaillen)
        detail[0] = '\0';
    /* Duplicate keys are refused: two readers could pick different values. */
    json_t *root = json_loadb(buf ? buf : "", buf ? len : 0,
                              JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!root) {
        /* jansson quotes the token it stopped at ("invalid token near
         * 'secret…'"): record content, kept out of the DLQ header and the
         * log; the position says where. */
        char safe[80];
        const char *near = strstr(jerr.text, " near '");
        size_t n = near ? (size_t)(near - jerr.text) : strlen(jerr.text);
        printable(safe, sizeof(safe), jerr.text, n);
        if (near) {
            size_t l = strlen(safe);
            snprintf(safe + l, sizeof(safe) - l, " at byte %d", jerr.position);
        }
        fail(&d, ENVELOPE_ERR_NOT_JSON, "%s", safe);
        return d.code;
    }
    int rc;
    if (!json_is_object(root)) {
        rc = fail(&d, ENVELOPE_ERR_NOT_OBJECT, NULL);
    } else {
        struct view v;
        memset(&v, 0, sizeof(v));
        view_from_json(root, &v);
        rc = decode_view(&d, &v, out);
    }
    json_decref(root);
    return rc == 0 ? ENVELOPE_OK : d.code;
}

enum envelope_err envelope_decode(const char *buf, size_t len, struct envelope *out, char *detail,
                                  size_t detaillen)
{
    if (detail && detaillen)
        detail[0] = '\0';
    if (buf) {
        struct view v;
        char *scratch = xmalloc(len + 1);
        if (envelope_scan(buf, len, &v, scratch)) {
            struct decoder d = {ENVELOPE_OK, detail, detaillen};
            int rc = decode_view(&d, &v, out);
            free(scratch);
            return rc == 0 ? ENVELOPE_OK : d.code;
        }
        free(scratch);
    }
    return envelope_decode_jansson(buf, len, out, detail, detaillen);
}

enum envelope_err envelope_verify(const struct envelope *e)
{
    uint8_t hash[CHAIN_HASH_LEN];
    char id[CHAIN_UUID_LEN + 1];
    chain_next(e->prev, e->seq, e->line, e->line_len, hash);
    if (memcmp(hash, e->hash, CHAIN_HASH_LEN) != 0)
        return ENVELOPE_ERR_HASH_MISMATCH;
    chain_id(hash, id);
    if (memcmp(id, e->id, sizeof(id)) != 0)
        return ENVELOPE_ERR_ID_MISMATCH;
    return ENVELOPE_OK;
}

static const char *const err_text[ENVELOPE_ERR_COUNT] = {
    [ENVELOPE_OK] = "ok",
    [ENVELOPE_ERR_NOT_JSON] = "not JSON",
    [ENVELOPE_ERR_NOT_OBJECT] = "not an object",
    [ENVELOPE_ERR_NO_VERSION] = "missing field: v",
    [ENVELOPE_ERR_BAD_VERSION] = "bad field: v",
    [ENVELOPE_ERR_UNSUPPORTED_VERSION] = "unsupported version",
    [ENVELOPE_ERR_MISSING_FIELD] = "missing field",
    [ENVELOPE_ERR_BAD_FIELD] = "bad field",
    [ENVELOPE_ERR_BAD_TIME] = "bad field",
    [ENVELOPE_ERR_UNKNOWN_FIELD] = "unknown field",
    [ENVELOPE_ERR_LINE_TWICE] = "both line and line_b64",
    [ENVELOPE_ERR_HASH_MISMATCH] = "hash mismatch",
    [ENVELOPE_ERR_ID_MISMATCH] = "id mismatch",
};

const char *envelope_strerror(enum envelope_err e)
{
    if ((unsigned)e >= ENVELOPE_ERR_COUNT)
        return "unknown error";
    return err_text[e];
}

void envelope_error_text(enum envelope_err e, const char *detail, char *buf, size_t len)
{
    if (detail && *detail)
        snprintf(buf, len, "%s: %s", envelope_strerror(e), detail);
    else
        snprintf(buf, len, "%s", envelope_strerror(e));
}
