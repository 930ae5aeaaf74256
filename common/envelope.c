/* The Kafka envelope of DESIGN.md §3: jansson does the JSON, OpenSSL the
 * base64 and SHA-256; this file holds the field rules both sides agree on. */
#include "common/envelope.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/timeutil.h"
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

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
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

/* A JSON string for a metadata value (source, fields, format). These are
 * descriptive only: the record bytes travel exactly in line/line_b64, so an
 * invalid byte here (e.g. a non-UTF-8 file name) becomes U+FFFD rather than
 * making the record unsendable. */
static json_t *meta_string(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *buf = xmalloc(n * 3 + 1); /* each bad byte grows to 3 bytes at most */
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k == 0) {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(buf + o, s + i, k);
            o += k;
            i += k;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

static json_t *b64_string(const uint8_t *in, size_t n)
{
    /* EVP_EncodeBlock takes an int length: feed it chunks that are a
     * multiple of 3 so that padding only appears at the very end. */
    const size_t chunk = (size_t)3 << 28;
    size_t outlen = 4 * ((n + 2) / 3);
    char *buf = xmalloc(outlen + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        o += (size_t)EVP_EncodeBlock((unsigned char *)buf + o, in + i, (int)k);
    }
    buf[o] = '\0';
    json_t *j = json_stringn_nocheck(buf, o);
    free(buf);
    return j;
}

static void set(json_t *obj, const char *key, json_t *val)
{
    /* Keys are our own ASCII constants. A NULL val (jansson OOM) makes the
     * set fail, which json_dumps below turns into a NULL result. */
    json_object_set_new_nocheck(obj, key, val);
}

char *envelope_encode(const struct envelope *e, size_t *len)
{
    char *out = NULL;
    json_t *root = NULL;
    if (e->seq > ENVELOPE_MAX_INT || e->offset > ENVELOPE_MAX_INT ||
        e->truncated_bytes > ENVELOPE_MAX_INT || !e->source.name || !e->format)
        goto out;

    char hex[2 * CHAIN_HASH_LEN + 1], ts[TIME_RFC3339_LEN];
    root = json_object();
    set(root, "v", json_integer(1));
    set(root, "id", meta_string(e->id));
    set(root, "stream", meta_string(e->stream));
    set(root, "seq", json_integer((json_int_t)e->seq));
    set(root, "offset", json_integer((json_int_t)e->offset));
    hex_encode(e->hash, CHAIN_HASH_LEN, hex);
    set(root, "hash", json_stringn_nocheck(hex, 2 * CHAIN_HASH_LEN));
    hex_encode(e->prev, CHAIN_HASH_LEN, hex);
    set(root, "prev", json_stringn_nocheck(hex, 2 * CHAIN_HASH_LEN));
    time_format_us(e->time_us, ts);
    set(root, "time", json_stringn_nocheck(ts, TIME_RFC3339_LEN - 1));
    set(root, "time_source",
        json_string_nocheck(e->time_source == TIME_SOURCE_PAYLOAD ? "payload" : "read"));
    time_format_us(e->read_time_us, ts);
    set(root, "read_time", json_stringn_nocheck(ts, TIME_RFC3339_LEN - 1));

    json_t *src = json_object();
    for (size_t i = 0; i < NELEM(source_keys); i++) {
        const char *v = *source_slot_c(&e->source, i);
        if (v)
            set(src, source_keys[i], meta_string(v));
    }
    set(root, "source", src);
    set(root, "format", meta_string(e->format));

    json_t *fields = json_object();
    for (size_t i = 0; i < NELEM(field_keys); i++) {
        const char *v = *field_slot_c(&e->fields, i);
        set(fields, field_keys[i], v ? meta_string(v) : json_null());
    }
    set(root, "fields", fields);

    /* json_stringn both validates UTF-8 (rejecting overlongs and surrogates)
     * and copies; NUL bytes are legal and dumped as \u0000. */
    json_t *line = json_stringn(e->line ? (const char *)e->line : "", e->line_len);
    if (line)
        set(root, "line", line);
    else
        set(root, "line_b64", b64_string(e->line, e->line_len));
    if (e->truncated_bytes)
        set(root, "truncated_bytes", json_integer((json_int_t)e->truncated_bytes));

    out = json_dumps(root, JSON_COMPACT);
    if (out && len)
        *len = strlen(out); /* NUL in the record is escaped, never raw */
out:
    json_decref(root);
    return out;
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
