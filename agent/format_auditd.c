/* The auditd format: "[node=H ]type=T msg=audit(SEC.MS:SERIAL): k=v ...",
 * including the single-quoted msg='...' of user-space records and the
 * 0x1d-separated enrichment (AUID="alice" UID="root") of log_format=ENRICHED. */
#include <stdlib.h>
#include <string.h>

#include "agent/format_int.h"
#include "common/hashchain.h"
#include "common/utf8.h"
#include "common/xmalloc.h"

/* Keys whose values auditd hex-encodes when they contain spaces, quotes or
 * control characters (audit_log_untrustedstring / n_untrusted). */
static const char *const hex_keys[] = {"proctitle", "cmd",   "exe",   "name", "comm", "path",
                                       "cwd",       "acct",  "data",  "dir",  "file", "new",
                                       "old",       "ocomm", "watch", "vm",   NULL};

/* EXECVE arguments a0, a1... (and a0[0], a0[1]... pieces of long ones) are
 * hex-encoded like the keys above. SYSCALL's a0..a3 are hex register values
 * too, but they decode to unprintable bytes and so stay as they are. */
static bool is_execve_arg(const struct fmt_kv_pair *p)
{
    if (p->klen < 2 || p->key[0] != 'a')
        return false;
    size_t i = 1;
    while (i < p->klen && p->key[i] >= '0' && p->key[i] <= '9')
        i++;
    if (i == 1)
        return false;
    if (i == p->klen)
        return true;
    if (p->key[i] != '[' || p->key[p->klen - 1] != ']' || p->klen - i < 3)
        return false;
    for (i++; i < p->klen - 1; i++)
        if (p->key[i] < '0' || p->key[i] > '9')
            return false;
    return true;
}

/* Decode an unquoted all-hex value of a hex-encodable key. NULs (proctitle's
 * argument separators) become spaces and trailing ones are dropped; the
 * decoded text is used only when every other byte is printable (>= 0x20,
 * not DEL) and the whole is valid UTF-8; otherwise NULL and the caller keeps
 * the hex text. */
static char *auditd_unhex(const struct fmt_kv_pair *p)
{
    if (p->quote || p->vlen < 2 || p->vlen % 2)
        return NULL;
    bool known = is_execve_arg(p);
    for (size_t i = 0; hex_keys[i] && !known; i++)
        known = fmt_kv_key_is(p, hex_keys[i]);
    if (!known)
        return NULL;
    size_t n = p->vlen / 2;
    uint8_t *buf = xmalloc(n + 1);
    char *res = NULL;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit_value(p->val[2 * i]), lo = hex_digit_value(p->val[2 * i + 1]);
        if (hi < 0 || lo < 0)
            goto out;
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    while (n > 0 && buf[n - 1] == 0)
        n--;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == 0)
            buf[i] = ' ';
        else if (buf[i] < 0x20 || buf[i] == 0x7f)
            goto out;
    }
    if (utf8_valid(buf, n))
        res = xstrndup((const char *)buf, n); /* valid and NUL-free: as is */
out:
    free(buf);
    return res;
}

static char *value_dup(const struct fmt_kv_pair *p)
{
    char *s = auditd_unhex(p);
    return s ? s : fmt_kv_value_dup(p);
}

/* Values auditd writes for "nobody / not applicable". */
static bool is_unset(const struct fmt_kv_pair *p)
{
    static const char *const unset[] = {"4294967295", "-1", "unset", "?", "(null)", "(none)", NULL};
    struct fmt_kv_pair v = {.key = p->val, .klen = p->vlen};
    for (size_t i = 0; unset[i]; i++)
        if (fmt_kv_key_is(&v, unset[i]))
            return true;
    return p->vlen == 0;
}

#define MAX_PAIRS 128

struct auditd_rec {
    struct fmt_kv_pair pairs[MAX_PAIRS];
    size_t n;
};

/* Collect pairs of s[0..n); a single-quoted msg='...' is opened one level. */
static void collect(struct auditd_rec *r, const uint8_t *s, size_t n, bool nested)
{
    size_t pos = 0;
    struct fmt_kv_pair p;
    while (r->n < MAX_PAIRS && fmt_kv_next(s, n, &pos, false, &p)) {
        if (!nested && p.quote == '\'' && fmt_kv_key_is(&p, "msg")) {
            collect(r, p.val, p.vlen, true);
            continue;
        }
        r->pairs[r->n++] = p;
    }
}

/* First pair whose key is in `keys` order (keys outrank position), skipping
 * unset values when `skip_unset`. */
static const struct fmt_kv_pair *find_first(const struct auditd_rec *r, const char *const *keys,
                                            bool skip_unset)
{
    for (size_t k = 0; keys[k]; k++)
        for (size_t i = 0; i < r->n; i++)
            if (fmt_kv_key_is(&r->pairs[i], keys[k]) && !(skip_unset && is_unset(&r->pairs[i])))
                return &r->pairs[i];
    return NULL;
}

static bool skip_lit(const uint8_t *s, size_t n, size_t *pos, const char *lit)
{
    size_t l = strlen(lit);
    if (n - *pos < l || memcmp(s + *pos, lit, l) != 0)
        return false;
    *pos += l;
    return true;
}

/* "SEC.MS:SERIAL)" -> µs; 0 or -1. */
static int parse_stamp(const uint8_t *s, size_t n, size_t *pos, int64_t *us)
{
    size_t i = *pos, d = 0;
    int64_t sec = 0, frac = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && d < 12) {
        sec = sec * 10 + (s[i++] - '0');
        d++;
    }
    if (d == 0 || i >= n || s[i] != '.')
        return -1;
    i++;
    d = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (d < 6) {
            frac = frac * 10 + (s[i] - '0');
            d++;
        }
        i++;
    }
    if (d == 0 || i >= n || s[i] != ':')
        return -1;
    for (; d < 6; d++)
        frac *= 10;
    i++;
    d = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, d++;
    if (d == 0 || i >= n || s[i] != ')')
        return -1;
    *pos = i + 1;
    *us = sec * 1000000 + frac;
    return 0;
}

int fmt_parse_auditd(const struct field_map *map, const uint8_t *rec, size_t len,
                     struct parsed_record *out)
{
    struct auditd_rec rs, *r = &rs; /* ~5 KiB on the stack: no allocation per record */
    r->n = 0;
    int rc = -1;
    size_t pos = 0;
    struct fmt_kv_pair p;

    /* Header: optional node=, then type= and msg=audit(...): in that order. */
    if (skip_lit(rec, len, &pos, "node=")) {
        pos -= 5;
        fmt_kv_next(rec, len, &pos, false, &p);
        r->pairs[r->n++] = p;
        while (pos < len && rec[pos] == ' ')
            pos++;
    }
    if (!skip_lit(rec, len, &pos, "type=")) {
        rc = fmt_fail(out, "no type= at the start of the record");
        goto out;
    }
    pos -= 5;
    fmt_kv_next(rec, len, &pos, false, &p);
    if (p.vlen == 0) {
        rc = fmt_fail(out, "empty type=");
        goto out;
    }
    const struct fmt_kv_pair type = p;
    r->pairs[r->n++] = p;
    while (pos < len && rec[pos] == ' ')
        pos++;
    if (!skip_lit(rec, len, &pos, "msg=audit(") || parse_stamp(rec, len, &pos, &out->time_us) < 0 ||
        !skip_lit(rec, len, &pos, ":")) {
        rc = fmt_fail(out, "no msg=audit(SECONDS.MS:SERIAL): header");
        goto out;
    }
    out->have_time = true;
    collect(r, rec + pos, len - pos, false);

    if (map && map->time) {
        const char *keys[] = {map->time, NULL};
        const struct fmt_kv_pair *t = find_first(r, keys, false);
        if (t) {
            char *v = fmt_kv_value_dup(t);
            int trc = fmt_time_from_text(v, strlen(v), &out->time_us);
            free(v);
            if (trc < 0) {
                rc = fmt_fail(out, "bad timestamp in %s", map->time);
                goto out;
            }
        }
    }

    static const char *const actor_keys[] = {"AUID", "auid", "acct", "UID", "uid", NULL};
    static const char *const op_keys[] = {"SYSCALL", "syscall", "op", NULL};
    static const char *const res_keys[] = {"exe", "name", "path", "key", NULL};
    static const char *const out_keys[] = {"res", "success", "result", NULL};
    for (int f = 0; f < FMT_NFIELDS; f++) {
        const char *ov = fmt_map_get(map, (enum fmt_field)f);
        char **slot = fmt_field_slot(out, (enum fmt_field)f);
        const struct fmt_kv_pair *hit = NULL;
        if (ov) {
            const char *keys[] = {ov, NULL};
            hit = find_first(r, keys, false);
        } else if (f == FMT_ACTOR) {
            hit = find_first(r, actor_keys, true);
        } else if (f == FMT_RESOURCE) {
            hit = find_first(r, res_keys, true);
        } else if (f == FMT_OUTCOME) {
            hit = find_first(r, out_keys, true);
        } else if (f == FMT_ACTION) {
            /* "TYPE" or "TYPE:syscall-or-op", e.g. SYSCALL:openat, USER_LOGIN:login. */
            const struct fmt_kv_pair *op = find_first(r, op_keys, true);
            char *t = fmt_kv_value_dup(&type);
            if (op) {
                char *o = value_dup(op);
                *slot = xasprintf("%s:%s", t, o);
                free(o);
                free(t);
            } else {
                *slot = t;
            }
            continue;
        }
        if (hit)
            *slot = value_dup(hit);
    }
    rc = 0;
out:
    return rc;
}
