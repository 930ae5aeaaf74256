/* The kv format: an optional leading timestamp, then key=value pairs with
 * optionally double-quoted values. Also the pair scanner auditd reuses. */
#include <stdlib.h>
#include <string.h>

#include "agent/format_int.h"
#include "common/utf8.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

static bool is_sep(uint8_t c, bool comma_sep)
{
    return c == ' ' || c == '\t' || c == 0x1d || (comma_sep && c == ',');
}

bool fmt_kv_next(const uint8_t *s, size_t n, size_t *pos, bool comma_sep, struct fmt_kv_pair *p)
{
    size_t i = *pos;
    for (;;) {
        while (i < n && is_sep(s[i], comma_sep))
            i++;
        if (i >= n) {
            *pos = n;
            return false;
        }
        size_t k = i;
        while (i < n && s[i] != '=' && !is_sep(s[i], comma_sep))
            i++;
        if (i >= n || s[i] != '=' || i == k) {
            /* A bare word (or "=x"): skip to the next separator. */
            while (i < n && !is_sep(s[i], comma_sep))
                i++;
            continue;
        }
        p->key = s + k;
        p->klen = i - k;
        i++; /* '=' */
        if (i < n && (s[i] == '"' || s[i] == '\'')) {
            char q = (char)s[i++];
            size_t v = i;
            while (i < n && s[i] != (uint8_t)q) {
                if (s[i] == '\\' && i + 1 < n)
                    i++;
                i++;
            }
            p->val = s + v;
            p->vlen = i - v;
            p->quote = q;
            if (i < n)
                i++; /* closing quote */
        } else {
            size_t v = i;
            while (i < n && !is_sep(s[i], comma_sep))
                i++;
            p->val = s + v;
            p->vlen = i - v;
            p->quote = 0;
        }
        *pos = i;
        return true;
    }
}

char *fmt_kv_value_dup(const struct fmt_kv_pair *p)
{
    if (!p->quote || !memchr(p->val, '\\', p->vlen))
        return utf8_sanitize_str(p->val, p->vlen);
    uint8_t *tmp = xmalloc(p->vlen + 1);
    size_t o = 0;
    for (size_t i = 0; i < p->vlen; i++) {
        uint8_t c = p->val[i];
        if (c == '\\' && i + 1 < p->vlen) {
            c = p->val[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        }
        tmp[o++] = c;
    }
    char *s = utf8_sanitize_str(tmp, o);
    free(tmp);
    return s;
}

bool fmt_kv_key_is(const struct fmt_kv_pair *p, const char *name)
{
    size_t l = strlen(name);
    return l == p->klen && memcmp(p->key, name, l) == 0;
}

/* Length of a leading timestamp token: "2026-11-26T20:50:45Z" (one word) or
 * "2026-11-26 20:50:45.123" (date, one space, time). 0 when the record does
 * not start with a digit or its first word is a key=value pair. */
static size_t leading_ts_len(const uint8_t *s, size_t n)
{
    if (n == 0 || s[0] < '0' || s[0] > '9')
        return 0;
    size_t i = 0;
    while (i < n && s[i] != ' ' && s[i] != '\t') {
        if (s[i] == '=')
            return 0;
        i++;
    }
    if (i == 10 && i + 1 < n && s[i] == ' ' && s[i + 1] >= '0' && s[i + 1] <= '9') {
        i++;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
    }
    return i;
}

int fmt_parse_kv(const struct field_map *map, const uint8_t *rec, size_t len,
                 struct parsed_record *out)
{
    size_t pos = 0;
    while (pos < len && (rec[pos] == ' ' || rec[pos] == '\t'))
        pos++;
    size_t tl = leading_ts_len(rec + pos, len - pos);
    if (tl > 0) {
        if (time_parse_rfc3339((const char *)rec + pos, tl, &out->time_us) < 0)
            return fmt_fail(out, "bad leading timestamp");
        out->have_time = true;
        pos += tl;
    }

    /* One pass over the pairs: per field, remember the best-ranked key seen
     * (rank = position in the default list; an override has rank 0). */
    struct fmt_kv_pair best[FMT_NFIELDS], tpair;
    size_t rank[FMT_NFIELDS];
    bool have_tpair = false;
    for (int f = 0; f < FMT_NFIELDS; f++)
        rank[f] = SIZE_MAX;
    const char *tkey = map ? map->time : NULL;
    size_t npairs = 0;
    struct fmt_kv_pair p;
    while (fmt_kv_next(rec, len, &pos, true, &p)) {
        npairs++;
        if (tkey && !have_tpair && fmt_kv_key_is(&p, tkey)) {
            tpair = p;
            have_tpair = true;
        }
        for (int f = 0; f < FMT_NFIELDS; f++) {
            const char *ov = fmt_map_get(map, (enum fmt_field)f);
            if (ov) {
                if (rank[f] == SIZE_MAX && fmt_kv_key_is(&p, ov)) {
                    best[f] = p;
                    rank[f] = 0;
                }
                continue;
            }
            for (size_t i = 0; fmt_default_names[f][i] && i < rank[f]; i++) {
                if (fmt_kv_key_is(&p, fmt_default_names[f][i])) {
                    best[f] = p;
                    rank[f] = i;
                    break;
                }
            }
        }
    }
    if (npairs == 0)
        return fmt_fail(out, "no key=value pairs");
    if (have_tpair) {
        char *v = fmt_kv_value_dup(&tpair);
        int rc = fmt_time_from_text(v, strlen(v), &out->time_us);
        free(v);
        if (rc < 0)
            return fmt_fail(out, "bad timestamp in %s", tkey);
        out->have_time = true;
    }
    for (int f = 0; f < FMT_NFIELDS; f++)
        if (rank[f] != SIZE_MAX)
            *fmt_field_slot(out, (enum fmt_field)f) = fmt_kv_value_dup(&best[f]);
    return 0;
}
