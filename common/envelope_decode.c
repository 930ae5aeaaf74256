/* The aggregator's envelope decoder (DESIGN.md §3): jansson parses, every
 * field is checked against the v1 contract, and hash and id are verified. */
#include "common/envelope.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/envelope_int.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define FORMAT_MAX_LEN 32

static const char *const top_keys[] = {"v",           "id",        "stream",   "seq",
                                       "offset",      "hash",      "prev",     "time",
                                       "time_source", "read_time", "source",   "format",
                                       "fields",      "line",      "line_b64", "truncated_bytes"};

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
            return fail(d, ENVELOPE_ERR_UNKNOWN_FIELD, "%s%s", prefix, safe);
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

/* A required string member: its value and length, or a reason (`bad` when
 * it is not a string). */
static int get_string(struct decoder *d, json_t *obj, const char *key, enum envelope_err bad,
                      const char **s, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return fail(d, ENVELOPE_ERR_MISSING_FIELD, "%s", key);
    if (!json_is_string(v))
        return fail(d, bad, "%s", key);
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 0;
}

static int get_uint(struct decoder *d, json_t *obj, const char *key, bool required, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return required ? fail(d, ENVELOPE_ERR_MISSING_FIELD, "%s", key) : 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > ENVELOPE_MAX_INT)
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "%s", key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_hash(struct decoder *d, json_t *obj, const char *key, uint8_t out[CHAIN_HASH_LEN])
{
    const char *s;
    size_t n;
    if (get_string(d, obj, key, ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (n != 2 * CHAIN_HASH_LEN || !is_lower_hex(s, n))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "%s", key);
    hex_decode(s, CHAIN_HASH_LEN, out);
    return 0;
}

static int get_time(struct decoder *d, json_t *obj, const char *key, int64_t *out)
{
    const char *s;
    size_t n;
    if (get_string(d, obj, key, ENVELOPE_ERR_BAD_TIME, &s, &n) < 0)
        return -1;
    if (time_parse_rfc3339(s, n, out) < 0)
        return fail(d, ENVELOPE_ERR_BAD_TIME, "%s", key);
    return 0;
}

/* A metadata string copied into the envelope. NUL inside is refused: the C
 * string would silently lose its tail. */
static int dup_meta(struct decoder *d, json_t *v, const char *name, char **out)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "%s", name);
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
        return fail(d, ENVELOPE_ERR_MISSING_FIELD, "source");
    if (!json_is_object(src))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "source");
    if (check_keys(d, src, "source.", envelope_source_keys, ENVELOPE_SOURCE_KEYS) < 0)
        return -1;
    for (size_t i = 0; i < ENVELOPE_SOURCE_KEYS; i++) {
        json_t *v = json_object_get(src, envelope_source_keys[i]);
        char name[32];
        snprintf(name, sizeof(name), "source.%s", envelope_source_keys[i]);
        if (!v) {
            if (i == 0)
                return fail(d, ENVELOPE_ERR_MISSING_FIELD, "%s", name);
            continue;
        }
        if (dup_meta(d, v, name, envelope_source_slot(&out->source, i)) < 0)
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
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "fields");
    if (check_keys(d, fields, "fields.", envelope_field_keys, ENVELOPE_FIELD_KEYS) < 0)
        return -1;
    for (size_t i = 0; i < ENVELOPE_FIELD_KEYS; i++) {
        json_t *v = json_object_get(fields, envelope_field_keys[i]);
        char name[32];
        snprintf(name, sizeof(name), "fields.%s", envelope_field_keys[i]);
        if (!v || json_is_null(v))
            continue;
        if (dup_meta(d, v, name, envelope_field_slot(&out->fields, i)) < 0)
            return -1;
    }
    return 0;
}

static int decode_line(struct decoder *d, json_t *root, struct envelope *out)
{
    json_t *line = json_object_get(root, "line");
    json_t *b64 = json_object_get(root, "line_b64");
    if (line && b64)
        return fail(d, ENVELOPE_ERR_LINE_TWICE, NULL);
    if (!line && !b64)
        return fail(d, ENVELOPE_ERR_MISSING_FIELD, "line or line_b64");
    if (line) {
        if (!json_is_string(line))
            return fail(d, ENVELOPE_ERR_BAD_FIELD, "line");
        size_t n = json_string_length(line);
        out->line = xmalloc(n + 1);
        memcpy(out->line, json_string_value(line), n);
        out->line[n] = '\0';
        out->line_len = n;
        return 0;
    }
    if (!json_is_string(b64) ||
        b64_decode(json_string_value(b64), json_string_length(b64), &out->line, &out->line_len) < 0)
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "line_b64");
    return 0;
}

static int decode_root(struct decoder *d, json_t *root, struct envelope *out)
{
    const char *s;
    size_t n;

    if (!json_is_object(root))
        return fail(d, ENVELOPE_ERR_NOT_OBJECT, NULL);
    json_t *v = json_object_get(root, "v");
    if (!v)
        return fail(d, ENVELOPE_ERR_NO_VERSION, NULL);
    if (!json_is_integer(v))
        return fail(d, ENVELOPE_ERR_BAD_VERSION, NULL);
    if (json_integer_value(v) != 1)
        return fail(d, ENVELOPE_ERR_UNSUPPORTED_VERSION, "%" JSON_INTEGER_FORMAT,
                    json_integer_value(v));
    out->v = 1;
    if (check_keys(d, root, "", top_keys, sizeof(top_keys) / sizeof(top_keys[0])) < 0)
        return -1;

    if (get_string(d, root, "id", ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (!is_uuid(s, n))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "id");
    memcpy(out->id, s, n + 1);

    if (get_string(d, root, "stream", ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (n != CHAIN_STREAM_HEX_LEN || !is_lower_hex(s, n))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "stream");
    memcpy(out->stream, s, n + 1);

    if (get_uint(d, root, "seq", true, &out->seq) < 0 ||
        get_uint(d, root, "offset", true, &out->offset) < 0 ||
        get_hash(d, root, "hash", out->hash) < 0 || get_hash(d, root, "prev", out->prev) < 0 ||
        get_time(d, root, "time", &out->time_us) < 0)
        return -1;

    if (get_string(d, root, "time_source", ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (n == 7 && memcmp(s, "payload", 7) == 0)
        out->time_source = TIME_SOURCE_PAYLOAD;
    else if (n == 4 && memcmp(s, "read", 4) == 0)
        out->time_source = TIME_SOURCE_READ;
    else
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "time_source");

    if (get_time(d, root, "read_time", &out->read_time_us) < 0 || decode_source(d, root, out) < 0)
        return -1;

    if (get_string(d, root, "format", ENVELOPE_ERR_BAD_FIELD, &s, &n) < 0)
        return -1;
    if (!format_ok(s, n))
        return fail(d, ENVELOPE_ERR_BAD_FIELD, "format");
    out->format = xstrndup(s, n);

    if (decode_fields(d, root, out) < 0 || decode_line(d, root, out) < 0 ||
        get_uint(d, root, "truncated_bytes", false, &out->truncated_bytes) < 0)
        return -1;
    enum envelope_err ve = envelope_verify(out);
    return ve == ENVELOPE_OK ? 0 : fail(d, ve, NULL);
}

enum envelope_err envelope_decode(const char *buf, size_t len, struct envelope *out, char *detail,
                                  size_t detaillen)
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
    int rc = decode_root(&d, root, out);
    json_decref(root);
    return rc == 0 ? ENVELOPE_OK : d.code;
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
