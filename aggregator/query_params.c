/* Query API parameters and cursors (aggregator/query_params.h). */
#include "aggregator/query_params.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/utf8.h"
#include "common/xmalloc.h"

#define CURSOR_VERSION 1
#define MAC_LEN        16 /* of HMAC-SHA256: 128 bits against forgery */

static int fail(struct qp_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct qp_error *e, int status, const char *code, const char *fmt, ...)
{
    e->status = status;
    snprintf(e->code, sizeof(e->code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}

void qparams_release(struct qparams *p)
{
    free(p->tenant);
    free(p->actor);
    free(p->action);
    free(p->resource);
    free(p->outcome);
    free(p->source);
    free(p->stream);
    free(p->kind);
    free(p->cursor);
    memset(p, 0, sizeof(*p));
}

bool qp_stream_id_ok(const char *s)
{
    return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

/* Names are printable ASCII we may quote; anything else is described. */
static const char *safe_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 32)
        return "(unprintable)";
    for (size_t i = 0; i < n; i++)
        if (name[i] < 0x21 || name[i] > 0x7e || name[i] == '"' || name[i] == '\\')
            return "(unprintable)";
    return name;
}

static int take_str(char **slot, const char *name, const char *value, struct qp_error *e)
{
    if (*slot)
        return fail(e, 400, "duplicate_parameter", "parameter %s given twice", name);
    *slot = xstrdup(value);
    return 0;
}

static int take_time(bool *has, int64_t *out, const char *name, const char *value,
                     struct qp_error *e)
{
    if (*has)
        return fail(e, 400, "duplicate_parameter", "parameter %s given twice", name);
    if (time_parse_rfc3339(value, strlen(value), out) != 0)
        return fail(e, 400, "bad_time",
                    "%s must be an RFC 3339 timestamp such as 2026-11-26T19:50:45Z", name);
    *has = true;
    return 0;
}

/* Which names each kind accepts. */
static bool allowed(enum qp_kind kind, const char *name)
{
    static const char *const events[] = {"tenant", "actor",   "action", "resource", "outcome",
                                         "source", "stream",  "from",   "to",       "limit",
                                         "cursor", "min_lsn", NULL};
    static const char *const streams[] = {"tenant", "from",   "to",      "limit",
                                          "cursor", "counts", "min_lsn", NULL};
    static const char *const stream[] = {"tenant", "from", "to", "min_lsn", NULL};
    static const char *const incidents[] = {"tenant", "from",   "to",      "kind", "stream",
                                            "limit",  "cursor", "min_lsn", NULL};
    const char *const *set = kind == QP_EVENTS    ? events
                             : kind == QP_STREAMS ? streams
                             : kind == QP_STREAM  ? stream
                                                  : incidents;
    for (; *set; set++)
        if (strcmp(*set, name) == 0)
            return true;
    return false;
}

int qparams_take(struct qparams *p, enum qp_kind kind, const char *name, const char *value,
                 struct qp_error *e)
{
    if (!allowed(kind, name))
        return fail(e, 400, "unknown_parameter", "unknown parameter %s", safe_name(name));
    if (!value || !*value)
        return fail(e, 400, "empty_parameter", "parameter %s has no value", name);
    size_t n = strlen(value);
    if (n > QP_VALUE_MAX)
        return fail(e, 400, "value_too_long", "parameter %s is longer than %d bytes", name,
                    QP_VALUE_MAX);
    if (!utf8_valid(value, n))
        return fail(e, 400, "invalid_utf8", "parameter %s is not valid UTF-8", name);
    if (!strcmp(name, "tenant"))
        return take_str(&p->tenant, name, value, e);
    if (!strcmp(name, "actor"))
        return take_str(&p->actor, name, value, e);
    if (!strcmp(name, "action"))
        return take_str(&p->action, name, value, e);
    if (!strcmp(name, "resource"))
        return take_str(&p->resource, name, value, e);
    if (!strcmp(name, "outcome"))
        return take_str(&p->outcome, name, value, e);
    if (!strcmp(name, "source"))
        return take_str(&p->source, name, value, e);
    if (!strcmp(name, "cursor"))
        return take_str(&p->cursor, name, value, e);
    if (!strcmp(name, "stream")) {
        if (!qp_stream_id_ok(value))
            return fail(e, 400, "bad_stream", "stream must be 32 lower-case hex characters");
        return take_str(&p->stream, name, value, e);
    }
    if (!strcmp(name, "kind")) {
        if (strcmp(value, "gap") && strcmp(value, "chain_break") && strcmp(value, "fork"))
            return fail(e, 400, "bad_kind", "kind must be gap, chain_break or fork");
        return take_str(&p->kind, name, value, e);
    }
    if (!strcmp(name, "from"))
        return take_time(&p->has_from, &p->from_us, name, value, e);
    if (!strcmp(name, "to"))
        return take_time(&p->has_to, &p->to_us, name, value, e);
    if (!strcmp(name, "limit")) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (p->limit)
            return fail(e, 400, "duplicate_parameter", "parameter limit given twice");
        if (*end || errno || v < 1 || v > QP_LIMIT_MAX || value[0] == '+' || value[0] == ' ')
            return fail(e, 400, "bad_limit", "limit must be an integer from 1 to %d", QP_LIMIT_MAX);
        p->limit = (unsigned)v;
        return 0;
    }
    if (!strcmp(name, "counts")) {
        if (strcmp(value, "true") && strcmp(value, "false"))
            return fail(e, 400, "bad_counts", "counts must be true or false");
        p->counts = value[0] == 't';
        return 0;
    }
    if (!strcmp(name, "min_lsn")) {
        /* "X/Y" in hex, as pg_current_wal_lsn() prints it */
        const char *slash = strchr(value, '/');
        char *end;
        if (!slash || slash == value || n > 17 || strspn(value, "0123456789abcdefABCDEF/") != n)
            return fail(e, 400, "bad_lsn", "min_lsn must look like 0/16B3748");
        errno = 0;
        unsigned long long hi = strtoull(value, &end, 16), lo;
        if (end != slash || errno || hi > 0xffffffffull || !slash[1])
            return fail(e, 400, "bad_lsn", "min_lsn must look like 0/16B3748");
        lo = strtoull(slash + 1, &end, 16);
        if (*end || errno || lo > 0xffffffffull)
            return fail(e, 400, "bad_lsn", "min_lsn must look like 0/16B3748");
        p->min_lsn = (uint64_t)hi << 32 | lo;
        return 0;
    }
    return fail(e, 400, "unknown_parameter", "unknown parameter %s", safe_name(name));
}

int qparams_finish(struct qparams *p, enum qp_kind kind, bool require_range, struct qp_error *e)
{
    (void)kind;
    if (require_range && (!p->has_from || !p->has_to))
        return fail(e, 400, "range_required", "from and to are required (RFC 3339)");
    if (p->has_from && p->has_to && p->from_us >= p->to_us)
        return fail(e, 400, "bad_range", "from must be before to (the range is [from, to))");
    if (!p->limit)
        p->limit = QP_LIMIT_DEF;
    return 0;
}

int qparams_check_span(const struct qparams *p, int64_t max_days, struct qp_error *e)
{
    if (p->has_from && p->has_to && p->to_us - p->from_us > max_days * INT64_C(86400000000))
        return fail(e, 400, "range_too_wide",
                    "from..to spans more than %lld days (query.max_range_days); narrow it or "
                    "use /v1/events/export",
                    (long long)max_days);
    return 0;
}

static void norm_str(struct buf *out, const char *name, const char *v)
{
    if (!v)
        return;
    buf_addf(out, "|%s=%zu:", name, strlen(v));
    buf_adds(out, v);
}

void qparams_normalize(const struct qparams *p, const char *endpoint, const char *scope,
                       struct buf *out)
{
    buf_addf(out, "%s|scope=%zu:%s", endpoint, strlen(scope), scope);
    norm_str(out, "tenant", p->tenant);
    norm_str(out, "actor", p->actor);
    norm_str(out, "action", p->action);
    norm_str(out, "resource", p->resource);
    norm_str(out, "outcome", p->outcome);
    norm_str(out, "source", p->source);
    norm_str(out, "stream", p->stream);
    norm_str(out, "kind", p->kind);
    if (p->has_from)
        buf_addf(out, "|from=%lld", (long long)p->from_us);
    if (p->has_to)
        buf_addf(out, "|to=%lld", (long long)p->to_us);
    if (p->counts)
        BUF_LIT(out, "|counts");
}

/* ---- cursors */
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void mac(const uint8_t key[QP_KEY_LEN], const char *binding, const uint8_t *msg, size_t n,
                uint8_t out[32])
{
    /* HMAC(key, binding || 0 || msg): the binding never travels, so a
     * cursor made for other filters or another scope does not verify. */
    struct buf m = BUF_INIT;
    buf_adds(&m, binding);
    buf_addc(&m, '\0');
    buf_add(&m, msg, n);
    unsigned int len = 0;
    HMAC(EVP_sha256(), key, QP_KEY_LEN, (const unsigned char *)m.p, m.len, out, &len);
    buf_release(&m);
}

void qcursor_make(const uint8_t key[QP_KEY_LEN], const char *binding, const void *pos, size_t len,
                  struct buf *out)
{
    uint8_t raw[1 + QP_CURSOR_MAX + MAC_LEN], m[32];
    if (len > QP_CURSOR_MAX)
        len = QP_CURSOR_MAX;
    raw[0] = CURSOR_VERSION;
    memcpy(raw + 1, pos, len);
    mac(key, binding, raw, 1 + len, m);
    memcpy(raw + 1 + len, m, MAC_LEN);
    size_t n = 1 + len + MAC_LEN;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= raw[i + 2];
        buf_addc(out, b64url[(v >> 18) & 63]);
        buf_addc(out, b64url[(v >> 12) & 63]);
        if (i + 1 < n)
            buf_addc(out, b64url[(v >> 6) & 63]);
        if (i + 2 < n)
            buf_addc(out, b64url[v & 63]);
    }
}

int qcursor_open(const uint8_t key[QP_KEY_LEN], const char *binding, const char *text,
                 uint8_t pos[QP_CURSOR_MAX], size_t *len)
{
    uint8_t raw[1 + QP_CURSOR_MAX + MAC_LEN], m[32];
    size_t tl = strlen(text), n = 0;
    if (tl == 0 || tl > ((sizeof(raw) + 2) / 3) * 4 || tl % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < tl; i++) {
        const char *c = strchr(b64url, text[i]);
        if (!c || !text[i])
            return -1;
        acc = acc << 6 | (uint32_t)(c - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= sizeof(raw))
                return -1;
            raw[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* canonical text only: the bits past the last byte are zero */
    if ((acc & ((1u << bits) - 1)) != 0 || n < 1 + MAC_LEN || raw[0] != CURSOR_VERSION)
        return -1;
    size_t plen = n - 1 - MAC_LEN;
    mac(key, binding, raw, 1 + plen, m);
    if (CRYPTO_memcmp(m, raw + 1 + plen, MAC_LEN) != 0)
        return -1;
    memcpy(pos, raw + 1, plen);
    *len = plen;
    return 0;
}
