/* Declarative configuration loader: walks a cfg_key table over a libyaml
 * document (environment overrides and ${VAR} come from common/cfg_env.c),
 * converts typed values, applies defaults, runs the program's checks, and
 * reports the first problem as "FILE:LINE: key.path: what". */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "common/buf.h"
#include "common/cfg_env.h"
#include "common/io.h"
#include "common/xmalloc.h"

/* Config files are small; the cap only keeps a wrong path (a log file, a
 * device) from being slurped whole. */
#define CFG_MAX_FILE_BYTES (16u << 20)
/* Longest key name considered for "did you mean" suggestions. */
#define CFG_SUGGEST_MAX 64

struct cfg_ctx {
    const char *name; /* file name (or caller-given name) used in messages */
    char *err;
    size_t errlen;
    yaml_document_t *doc;
};

/* Where a scalar value came from; decides how errors locate it. */
enum cfg_origin { CFG_FROM_FILE, CFG_FROM_ENV, CFG_FROM_DEFAULT };

struct cfg_src {
    enum cfg_origin origin;
    int line;        /* CFG_FROM_FILE: 1-based line */
    const char *var; /* CFG_FROM_ENV: the variable's name */
};

static void cfg_vfail(struct cfg_ctx *c, const struct cfg_src *src, const char *path,
                      const char *fmt, va_list ap)
{
    if (!c->err || c->errlen == 0)
        return;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    switch (src->origin) {
    case CFG_FROM_FILE:
        if (path && *path)
            snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->name, src->line, path, msg);
        else
            snprintf(c->err, c->errlen, "%s:%d: %s", c->name, src->line, msg);
        break;
    case CFG_FROM_ENV:
        /* The variable is the location: the file has nothing to do with it. */
        snprintf(c->err, c->errlen, "%s: %s", src->var, msg);
        break;
    case CFG_FROM_DEFAULT:
        snprintf(c->err, c->errlen, "%s: %s: default value: %s", c->name, path, msg);
        break;
    }
    /* Key paths come from the file too ("a\nb": 1): whatever went into the
     * message, it stays one line of printable text. */
    for (char *p = c->err; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
}

/* Format the error and return -1, so callers can `return cfg_fail(...)`. */
static int cfg_fail(struct cfg_ctx *c, const struct cfg_src *src, const char *path, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
static int cfg_fail(struct cfg_ctx *c, const struct cfg_src *src, const char *path, const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_vfail(c, src, path, fmt, ap);
    va_end(ap);
    return -1;
}

static int cfg_fail_line(struct cfg_ctx *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cfg_fail_line(struct cfg_ctx *c, int line, const char *path, const char *fmt, ...)
{
    struct cfg_src src = {CFG_FROM_FILE, line, NULL};
    va_list ap;
    va_start(ap, fmt);
    cfg_vfail(c, &src, path, fmt, ap);
    va_end(ap);
    return -1;
}

/* A value quoted for a message: one line, bounded, so a stray newline or a
 * huge scalar cannot break the one-line error format. */
static void cfg_quote(char *buf, size_t len, const char *s)
{
    size_t o = 0;
    if (len < 8)
        return;
    buf[o++] = '"';
    for (; *s && o + 6 < len; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\n' || ch == '\r' || ch == '\t' || ch < 0x20) {
            buf[o++] = '\\';
            buf[o++] = ch == '\n' ? 'n' : ch == '\r' ? 'r' : ch == '\t' ? 't' : '?';
        } else if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else {
            buf[o++] = (char)ch;
        }
    }
    if (*s) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

static int node_line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_SCALAR_NODE:
        return "a scalar";
    default:
        return "nothing";
    }
}

static const char *node_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* YAML's null: a plain (unquoted) empty, ~ or null scalar. A key written with
 * a null value counts as absent, so its default applies. */
static bool node_is_null(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = node_text(n);
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* "\0" is a valid YAML escape, but a C string would silently end there. */
static bool node_has_nul(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && strlen(node_text(n)) != n->data.scalar.length;
}

static const char *type_expected(enum cfg_type t)
{
    switch (t) {
    case CFG_STR:
        return "a string";
    case CFG_INT:
        return "an integer";
    case CFG_BOOL:
        return "a boolean";
    case CFG_DOUBLE:
        return "a number";
    case CFG_STRLIST:
        return "a list of strings or a comma-separated string";
    case CFG_MAP:
    case CFG_SECTION:
        return "a mapping";
    case CFG_LIST:
        return "a sequence of mappings";
    }
    return "?";
}

static char *path_join(const char *prefix, const char *name)
{
    return *prefix ? xasprintf("%s.%s", prefix, name) : xstrdup(name);
}

/* Expanded heap copy of `in` in *out, or -1 with the error set. */
static int cfg_expand(struct cfg_ctx *c, const struct cfg_src *src, const char *path,
                      const char *in, char **out)
{
    char why[256];
    *out = cfg_env_expand(in, why, sizeof(why));
    return *out ? 0 : cfg_fail(c, src, path, "%s", why);
}

/* ---- scalar conversion --------------------------------------------------- */

/* Decimal integer with an optional KiB/MiB/GiB suffix. Hex and octal are not
 * accepted: "010" is ten, as a reader of the file expects. */
static bool parse_int(const char *s, int64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!(isdigit((unsigned char)*s) || ((*s == '-' || *s == '+') && isdigit((unsigned char)s[1]))))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return false;
    while (*end == ' ' || *end == '\t')
        end++;
    int64_t mult = 1;
    if (!strncmp(end, "KiB", 3))
        mult = INT64_C(1) << 10;
    else if (!strncmp(end, "MiB", 3))
        mult = INT64_C(1) << 20;
    else if (!strncmp(end, "GiB", 3))
        mult = INT64_C(1) << 30;
    if (mult != 1)
        end += 3;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return false;
    int64_t r;
    if (__builtin_mul_overflow((int64_t)v, mult, &r))
        return false;
    *out = r;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return true;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_double(const char *s, double *out)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end))
        end++;
    /* strtod also takes hex, inf and nan: none belongs in a config value. */
    if (*end || errno == ERANGE || !isfinite(v) || strpbrk(s, "xX"))
        return false;
    *out = v;
    return true;
}

static char *trim_dup(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return xstrndup(s, n);
}

static void strlist_clear(struct cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void strlist_push(struct cfg_strlist *l, char *s)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = s;
}

/* "a, b,c" -> [a, b, c]; an all-blank string is the empty list. */
static int strlist_split(struct cfg_ctx *c, const struct cfg_src *src, const char *path,
                         const char *s, struct cfg_strlist *l)
{
    char *whole = trim_dup(s, strlen(s));
    bool blank = !*whole;
    free(whole);
    if (blank)
        return 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char *item = trim_dup(p, n);
        if (!*item) {
            free(item);
            /* The list is not quoted: it may be connection strings. */
            return cfg_fail(c, src, path, "empty item %zu in a comma-separated list", l->n + 1);
        }
        strlist_push(l, item);
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* Store one scalar value (already located by src) into the field for key. */
static int set_scalar(struct cfg_ctx *c, const struct cfg_key *key, void *base, const char *path,
                      const struct cfg_src *src, const char *raw)
{
    char *v = NULL, q[96];
    void *field = (char *)base + key->offset;
    int rc = -1;
    if (cfg_expand(c, src, path, raw, &v) < 0)
        goto out;
    switch (key->type) {
    case CFG_STR: {
        char **dst = field;
        if (key->required && !*v) {
            cfg_fail(c, src, path, "must not be empty");
            goto out;
        }
        free(*dst);
        *dst = v;
        v = NULL;
        break;
    }
    case CFG_INT: {
        int64_t n;
        cfg_quote(q, sizeof(q), v);
        if (!parse_int(v, &n)) {
            cfg_fail(c, src, path, "bad integer %s", q);
            goto out;
        }
        if (key->min < key->max && (n < key->min || n > key->max)) {
            cfg_fail(c, src, path, "%" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", n,
                     key->min, key->max);
            goto out;
        }
        *(int64_t *)field = n;
        break;
    }
    case CFG_BOOL: {
        bool b;
        cfg_quote(q, sizeof(q), v);
        if (!parse_bool(v, &b)) {
            cfg_fail(c, src, path, "bad boolean %s (use true/false, yes/no or on/off)", q);
            goto out;
        }
        *(bool *)field = b;
        break;
    }
    case CFG_DOUBLE: {
        double d;
        cfg_quote(q, sizeof(q), v);
        if (!parse_double(v, &d)) {
            cfg_fail(c, src, path, "bad number %s", q);
            goto out;
        }
        *(double *)field = d;
        break;
    }
    case CFG_STRLIST: {
        struct cfg_strlist *l = field;
        strlist_clear(l);
        if (strlist_split(c, src, path, v, l) < 0)
            goto out;
        if (key->required && l->n == 0) {
            cfg_fail(c, src, path, "must not be empty");
            goto out;
        }
        break;
    }
    default:
        abort(); /* only scalar types reach here */
    }
    rc = 0;
out:
    free(v);
    return rc;
}

/* ---- structures ---------------------------------------------------------- */

static int apply_table(struct cfg_ctx *c, const struct cfg_key *table, void *base,
                       const char *prefix, yaml_node_t *map, int ctx_line, bool env_ok);

static int set_strlist_seq(struct cfg_ctx *c, const struct cfg_key *key, void *base,
                           const char *path, yaml_node_t *seq)
{
    struct cfg_strlist *l = (struct cfg_strlist *)((char *)base + key->offset);
    strlist_clear(l);
    size_t idx = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++, idx++) {
        yaml_node_t *n = yaml_document_get_node(c->doc, *it);
        char *ipath = xasprintf("%s[%zu]", path, idx);
        struct cfg_src src = {CFG_FROM_FILE, node_line(n), NULL};
        char *v = NULL;
        int rc = -1;
        if (n->type != YAML_SCALAR_NODE) {
            cfg_fail(c, &src, ipath, "expected a string, got %s", node_kind(n));
        } else if (node_has_nul(n)) {
            cfg_fail(c, &src, ipath, "contains a NUL character");
        } else if (cfg_expand(c, &src, ipath, node_text(n), &v) == 0) {
            char *item = trim_dup(v, strlen(v));
            if (!*item) {
                free(item);
                cfg_fail(c, &src, ipath, "empty item");
            } else {
                strlist_push(l, item);
                rc = 0;
            }
        }
        free(v);
        free(ipath);
        if (rc < 0)
            return -1;
    }
    if (key->required && l->n == 0)
        return cfg_fail_line(c, node_line(seq), path, "must not be empty");
    return 0;
}

/* Report a repeated key: YAML says mapping keys are unique, libyaml does not
 * check, and silently keeping one of two values hides mistakes. */
static int check_keys(struct cfg_ctx *c, yaml_node_t *map, const char *prefix)
{
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    for (yaml_node_pair_t *p = start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return cfg_fail_line(c, node_line(k), prefix, "mapping keys must be scalars, got %s",
                                 node_kind(k));
        for (yaml_node_pair_t *q = start; q < p; q++) {
            yaml_node_t *k0 = yaml_document_get_node(c->doc, q->key);
            if (!strcmp(node_text(k0), node_text(k))) {
                char *path = path_join(prefix, node_text(k));
                cfg_fail_line(c, node_line(k), path, "duplicate key (first at line %d)",
                              node_line(k0));
                free(path);
                return -1;
            }
        }
    }
    return 0;
}

static int set_map(struct cfg_ctx *c, const struct cfg_key *key, void *base, const char *path,
                   yaml_node_t *map)
{
    struct cfg_map *m = (struct cfg_map *)((char *)base + key->offset);
    if (check_keys(c, map, path) < 0)
        return -1;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        char *kpath = path_join(path, node_text(k));
        struct cfg_src src = {CFG_FROM_FILE, node_line(v), NULL};
        char *val = NULL;
        int rc = -1;
        if (v->type != YAML_SCALAR_NODE)
            cfg_fail(c, &src, kpath, "expected a scalar value, got %s", node_kind(v));
        else if (node_has_nul(v))
            cfg_fail(c, &src, kpath, "contains a NUL character");
        else
            rc = cfg_expand(c, &src, kpath, node_text(v), &val);
        free(kpath);
        if (rc < 0)
            return -1;
        m->keys = xrealloc(m->keys, (m->n + 1) * sizeof(*m->keys));
        m->vals = xrealloc(m->vals, (m->n + 1) * sizeof(*m->vals));
        m->keys[m->n] = xstrdup(node_text(k));
        m->vals[m->n] = val;
        m->n++;
    }
    return 0;
}

static int set_list(struct cfg_ctx *c, const struct cfg_key *key, void *base, const char *path,
                    yaml_node_t *seq)
{
    struct cfg_list *l = (struct cfg_list *)((char *)base + key->offset);
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    /* Allocate every element zeroed up front: on a later error cfg_free
     * walks all n elements, filled or not. */
    l->items = n ? xcalloc(n, key->elem_size) : NULL;
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, seq->data.sequence.items.start[i]);
        char *ipath = xasprintf("%s[%zu]", path, i);
        int rc;
        if (item->type != YAML_MAPPING_NODE)
            rc = cfg_fail_line(c, node_line(item), ipath, "expected a mapping, got %s",
                               node_is_null(item) ? "nothing" : node_kind(item));
        else
            rc = apply_table(c, key->sub, (char *)l->items + i * key->elem_size, ipath, item,
                             node_line(item), false);
        free(ipath);
        if (rc < 0)
            return -1;
    }
    if (key->required && n == 0)
        return cfg_fail_line(c, node_line(seq), path, "must not be empty");
    return 0;
}

/* Set key from its (non-null) value in the file. */
static int apply_file_value(struct cfg_ctx *c, const struct cfg_key *key, void *base,
                            const char *path, yaml_node_t *val, bool env_ok)
{
    struct cfg_src src = {CFG_FROM_FILE, node_line(val), NULL};
    bool ok;
    switch (key->type) {
    case CFG_STRLIST:
        ok = val->type == YAML_SCALAR_NODE || val->type == YAML_SEQUENCE_NODE;
        break;
    case CFG_MAP:
    case CFG_SECTION:
        ok = val->type == YAML_MAPPING_NODE;
        break;
    case CFG_LIST:
        ok = val->type == YAML_SEQUENCE_NODE;
        break;
    default:
        ok = val->type == YAML_SCALAR_NODE;
    }
    if (!ok)
        return cfg_fail(c, &src, path, "expected %s, got %s", type_expected(key->type),
                        node_kind(val));
    if (node_has_nul(val))
        return cfg_fail(c, &src, path, "contains a NUL character");
    int rc;
    switch (key->type) {
    case CFG_STRLIST:
        if (val->type == YAML_SEQUENCE_NODE)
            rc = set_strlist_seq(c, key, base, path, val);
        else
            rc = set_scalar(c, key, base, path, &src, node_text(val));
        break;
    case CFG_MAP:
        rc = set_map(c, key, base, path, val);
        break;
    case CFG_SECTION:
        rc =
            apply_table(c, key->sub, (char *)base + key->offset, path, val, node_line(val), env_ok);
        break;
    case CFG_LIST:
        rc = set_list(c, key, base, path, val);
        break;
    default:
        rc = set_scalar(c, key, base, path, &src, node_text(val));
    }
    return rc;
}

/* Set one key from (in order) its environment variable, the file, its
 * default; or fail when it is required. `val` is NULL when the key is absent
 * from the file; ctx_line locates "missing" errors. */
static int apply_key(struct cfg_ctx *c, const struct cfg_key *key, void *base, const char *path,
                     yaml_node_t *val, int ctx_line, bool env_ok)
{
    int rc = -1;
    char *var = NULL;
    if (env_ok && cfg_env_overridable(key->type)) {
        const char *ev = cfg_env_override(path, &var);
        if (ev) {
            struct cfg_src src = {CFG_FROM_ENV, 0, var};
            rc = set_scalar(c, key, base, path, &src, ev);
            goto out;
        }
    }
    if (val && node_is_null(val)) {
        ctx_line = node_line(val);
        val = NULL;
    }
    if (val) {
        rc = apply_file_value(c, key, base, path, val, env_ok);
        goto out;
    }
    if (key->required && (!key->def || key->type == CFG_SECTION)) {
        if (var)
            cfg_fail_line(c, ctx_line, path, "missing required key (set it here or in %s)", var);
        else
            cfg_fail_line(c, ctx_line, path, "missing required key");
        goto out;
    }
    if (key->type == CFG_SECTION) {
        /* An absent section still gets its defaults, env overrides and
         * required checks. */
        rc = apply_table(c, key->sub, (char *)base + key->offset, path, NULL, ctx_line, env_ok);
        goto out;
    }
    if (key->def && cfg_env_overridable(key->type)) {
        struct cfg_src src = {CFG_FROM_DEFAULT, 0, NULL};
        rc = set_scalar(c, key, base, path, &src, key->def);
        goto out;
    }
    rc = 0; /* MAP and LIST have no default: they stay empty */
out:
    free(var);
    return rc;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > CFG_SUGGEST_MAX || lb > CFG_SUGGEST_MAX)
        return SIZE_MAX;
    size_t prev[CFG_SUGGEST_MAX + 1], cur[CFG_SUGGEST_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] +
                         (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

static const char *suggest(const struct cfg_key *table, const char *name)
{
    const char *best = NULL;
    size_t bestd = SIZE_MAX;
    for (const struct cfg_key *k = table; k->name; k++) {
        size_t d = edit_distance(name, k->name);
        if (d < bestd) {
            bestd = d;
            best = k->name;
        }
    }
    /* Only close misspellings: a distance near the word's length is noise. */
    size_t limit = strlen(name) <= 4 ? 1 : 2;
    if (strchr(name, '_') || strchr(name, '-'))
        limit = 3; /* max_bytes vs max-bytes vs maxbytes */
    return bestd <= limit ? best : NULL;
}

static yaml_node_t *map_find(struct cfg_ctx *c, yaml_node_t *map, const char *name)
{
    if (!map)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (!strcmp(node_text(k), name))
            return yaml_document_get_node(c->doc, p->value);
    }
    return NULL;
}

/* A table naming a key twice is a programming error that the loader would
 * hide: it applies both entries, so a map (alerts.headers) gets every entry
 * twice. Caught at the first load of the table, in every test. */
static void table_assert_unique(const struct cfg_key *table, const char *prefix)
{
    for (const struct cfg_key *t = table; t->name; t++) {
        for (const struct cfg_key *u = table; u < t; u++) {
            if (strcmp(u->name, t->name) == 0) {
                fprintf(stderr, "config table bug: key %s%s%s listed twice\n", prefix,
                        *prefix ? "." : "", t->name);
                abort();
            }
        }
    }
}

static int apply_table(struct cfg_ctx *c, const struct cfg_key *table, void *base,
                       const char *prefix, yaml_node_t *map, int ctx_line, bool env_ok)
{
    table_assert_unique(table, prefix);
    if (map) {
        if (check_keys(c, map, prefix) < 0)
            return -1;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
            const struct cfg_key *t = table;
            while (t->name && strcmp(t->name, node_text(k)))
                t++;
            if (t->name)
                continue;
            char *path = path_join(prefix, node_text(k));
            const char *s = suggest(table, node_text(k));
            if (s)
                cfg_fail_line(c, node_line(k), path, "unknown key (did you mean \"%s\"?)", s);
            else
                cfg_fail_line(c, node_line(k), path, "unknown key");
            free(path);
            return -1;
        }
    }
    for (const struct cfg_key *t = table; t->name; t++) {
        char *path = path_join(prefix, t->name);
        int rc = apply_key(c, t, base, path, map_find(c, map, t->name), ctx_line, env_ok);
        free(path);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- checks after the walk ----------------------------------------------- */

struct cfg_check {
    struct cfg_ctx *c;
    const struct cfg_key *table;
    yaml_node_t *root; /* NULL for an empty document */
};

/* The node at `path` ("a.b", "a.b[2].c"), or the deepest node on the way
 * there that the file has (NULL when not even the first step is there).
 * Mapping keys may contain dots (kafka.properties.sasl.password), so a step
 * matches a whole key followed by '.', '[' or the end. */
static yaml_node_t *locate(struct cfg_ctx *c, yaml_node_t *node, const char *path)
{
    while (node) {
        if (!*path)
            return node;
        yaml_node_t *next = NULL;
        const char *rest = NULL;
        if (*path == '[' && node->type == YAML_SEQUENCE_NODE) {
            char *end;
            unsigned long i = strtoul(path + 1, &end, 10);
            size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
            if (*end == ']' && i < n) {
                next = yaml_document_get_node(c->doc, node->data.sequence.items.start[i]);
                rest = end + 1;
            }
        } else if (node->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
                 p < node->data.mapping.pairs.top; p++) {
                const char *k = node_text(yaml_document_get_node(c->doc, p->key));
                size_t kl = strlen(k);
                if (strncmp(path, k, kl) == 0 &&
                    (path[kl] == '\0' || path[kl] == '.' || path[kl] == '[')) {
                    next = yaml_document_get_node(c->doc, p->value);
                    rest = path + kl;
                    break;
                }
            }
        }
        if (!next || node_is_null(next))
            return node;
        node = next;
        path = rest[0] == '.' ? rest + 1 : rest;
    }
    return NULL;
}

/* The table entry of a dotted path through sections (NULL for paths into
 * lists or maps, whose keys no variable overrides). */
static const struct cfg_key *find_key(const struct cfg_key *table, const char *path)
{
    while (table) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        const struct cfg_key *k = table;
        while (k->name && (strlen(k->name) != n || strncmp(k->name, path, n) != 0))
            k++;
        if (!k->name)
            return NULL;
        if (!dot)
            return k;
        if (k->type != CFG_SECTION)
            return NULL;
        table = k->sub;
        path = dot + 1;
    }
    return NULL;
}

int cfg_check_fail(struct cfg_check *chk, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct cfg_key *k = strchr(path, '[') ? NULL : find_key(chk->table, path);
    if (k && cfg_env_overridable(k->type)) {
        char *var = NULL;
        const char *ev = cfg_env_override(path, &var);
        if (ev) {
            struct cfg_src src = {CFG_FROM_ENV, 0, var};
            cfg_fail(chk->c, &src, path, "%s", msg);
            free(var);
            return -1;
        }
        free(var);
    }
    yaml_node_t *n = locate(chk->c, chk->root, path);
    return cfg_fail_line(chk->c, n ? node_line(n) : 1, path, "%s", msg);
}

/* ---- entry points -------------------------------------------------------- */

static int yaml_error(struct cfg_ctx *c, yaml_parser_t *p, const char *buf, size_t len)
{
    size_t line;
    if (p->error == YAML_READER_ERROR) {
        /* reader errors (bad UTF-8...) carry an offset, not a mark */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++)
            line += buf[i] == '\n';
    } else {
        line = p->problem_mark.line + 1;
    }
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->context)
        return cfg_fail_line(c, (int)line, NULL, "YAML syntax error: %s (%s at line %zu)", problem,
                             p->context, p->context_mark.line + 1);
    return cfg_fail_line(c, (int)line, NULL, "YAML syntax error: %s", problem);
}

static int load_buffer(const struct cfg_key *table, void *out, const char *buf, size_t len,
                       const char *name, cfg_check_fn check, void *ud, char *err, size_t errlen)
{
    struct cfg_ctx c = {name, err, errlen, NULL};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool have_doc = false;
    int rc = -1;

    if (err && errlen)
        err[0] = '\0';
    if (!yaml_parser_initialize(&parser)) {
        cfg_fail_line(&c, 1, NULL, "cannot initialise the YAML parser");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_error(&c, &parser, buf, len);
        goto out;
    }
    have_doc = true;
    c.doc = &doc;
    /* A second document would be silently ignored; say so instead. */
    if (!yaml_parser_load(&parser, &extra)) {
        yaml_error(&c, &parser, buf, len);
        goto out;
    }
    bool second = yaml_document_get_root_node(&extra) != NULL;
    int second_line = (int)extra.start_mark.line + 1;
    yaml_document_delete(&extra);
    if (second) {
        cfg_fail_line(&c, second_line, NULL, "only one YAML document is allowed");
        goto out;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && node_is_null(root))
        root = NULL; /* an empty document: every key takes its default */
    if (root && root->type != YAML_MAPPING_NODE) {
        cfg_fail_line(&c, node_line(root), NULL, "the document root must be a mapping, got %s",
                      node_kind(root));
        goto out;
    }
    rc = apply_table(&c, table, out, "", root, root ? node_line(root) : 1, true);
    if (rc == 0 && check) {
        /* The document is still loaded: the checks' errors get lines. */
        struct cfg_check chk = {&c, table, root};
        rc = check(&chk, ud) == 0 ? 0 : -1;
    }
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int cfg_load_string_checked(const struct cfg_key *table, void *out, const char *yaml,
                            const char *name, cfg_check_fn check, void *ud, char *err,
                            size_t errlen)
{
    return load_buffer(table, out, yaml, strlen(yaml), name ? name : "<string>", check, ud, err,
                       errlen);
}

int cfg_load_string(const struct cfg_key *table, void *out, const char *yaml, const char *name,
                    char *err, size_t errlen)
{
    return cfg_load_string_checked(table, out, yaml, name, NULL, NULL, err, errlen);
}

int cfg_load_file_checked(const struct cfg_key *table, void *out, const char *path,
                          cfg_check_fn check, void *ud, char *err, size_t errlen)
{
    struct buf text = BUF_INIT;
    int rc = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (io_read_all(fd, CFG_MAX_FILE_BYTES, &text) < 0) {
        if (err && errlen && errno == EFBIG)
            snprintf(err, errlen, "%s: cannot read: larger than %u bytes", path,
                     CFG_MAX_FILE_BYTES);
        else if (err && errlen)
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    rc = load_buffer(table, out, text.p ? text.p : "", text.len, path, check, ud, err, errlen);
out:
    buf_release(&text);
    close(fd);
    return rc;
}

int cfg_load_file(const struct cfg_key *table, void *out, const char *path, char *err,
                  size_t errlen)
{
    return cfg_load_file_checked(table, out, path, NULL, NULL, err, errlen);
}

void cfg_free(const struct cfg_key *table, void *out)
{
    if (!table || !out)
        return;
    for (const struct cfg_key *k = table; k->name; k++) {
        void *field = (char *)out + k->offset;
        switch (k->type) {
        case CFG_STR: {
            char **s = field;
            free(*s);
            *s = NULL;
            break;
        }
        case CFG_STRLIST:
            strlist_clear(field);
            break;
        case CFG_MAP: {
            struct cfg_map *m = field;
            for (size_t i = 0; i < m->n; i++) {
                free(m->keys[i]);
                free(m->vals[i]);
            }
            free(m->keys);
            free(m->vals);
            memset(m, 0, sizeof(*m));
            break;
        }
        case CFG_SECTION:
            cfg_free(k->sub, field);
            break;
        case CFG_LIST: {
            struct cfg_list *l = field;
            for (size_t i = 0; i < l->n; i++)
                cfg_free(k->sub, (char *)l->items + i * k->elem_size);
            free(l->items);
            l->items = NULL;
            l->n = 0;
            break;
        }
        default:
            break;
        }
    }
}

const char *cfg_map_get(const struct cfg_map *m, const char *key)
{
    if (!m)
        return NULL;
    /* Last one wins, though load rejects duplicates anyway. */
    for (size_t i = m->n; i-- > 0;)
        if (!strcmp(m->keys[i], key))
            return m->vals[i];
    return NULL;
}
