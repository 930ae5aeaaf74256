/* ${VAR} expansion and AUDITRAIL_* overrides for the config loader: the
 * only place where configuration reads the environment. */
#include "common/cfg_env.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"

char *cfg_env_name(const char *path)
{
    char *s = xasprintf("AUDITRAIL_%s", path);
    for (char *p = s; *p; p++) {
        if (*p == '.' || *p == '-')
            *p = '_';
        else
            *p = (char)toupper((unsigned char)*p);
    }
    return s;
}

bool cfg_env_overridable(enum cfg_type t)
{
    return t == CFG_STR || t == CFG_INT || t == CFG_BOOL || t == CFG_DOUBLE || t == CFG_STRLIST;
}

const char *cfg_env_override(const char *path, char **var)
{
    *var = cfg_env_name(path);
    const char *v = getenv(*var);
    return v && *v ? v : NULL;
}

static bool var_name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* A reference quoted for a message: bounded and on one line. */
static void quote_ref(char *out, size_t len, const char *s, size_t n)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n && o + 5 < len; i++)
        out[o++] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    if (o + 5 >= len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* Expand in[0, inlen) into b. A default may itself contain ${...}, so the
 * closing brace is found by counting nested openings. */
static int expand_into(const char *in, size_t inlen, struct buf *b, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < inlen) {
        if (in[i] != '$' || i + 1 >= inlen || (in[i + 1] != '$' && in[i + 1] != '{')) {
            size_t j = i + 1;
            while (j < inlen && in[j] != '$')
                j++;
            buf_add(b, in + i, j - i);
            i = j;
            continue;
        }
        if (in[i + 1] == '$') {
            buf_addc(b, '$');
            i += 2;
            continue;
        }
        size_t start = i + 2, j = start;
        int depth = 1;
        while (j < inlen) {
            if (in[j] == '$' && j + 1 < inlen && (in[j + 1] == '$' || in[j + 1] == '{')) {
                depth += in[j + 1] == '{';
                j += 2;
                continue;
            }
            if (in[j] == '}' && --depth == 0)
                break;
            j++;
        }
        if (j >= inlen) {
            snprintf(err, errlen, "unterminated \"${\" (write \"$$\" for a literal \"$\")");
            return -1;
        }
        const char *body = in + start;
        size_t bodylen = j - start;
        const char *sep = NULL;
        for (size_t k = 0; k + 1 < bodylen; k++) {
            if (body[k] == ':' && body[k + 1] == '-') {
                sep = body + k;
                break;
            }
        }
        size_t namelen = sep ? (size_t)(sep - body) : bodylen;
        if (!var_name_ok(body, namelen)) {
            char q[96];
            quote_ref(q, sizeof(q), in + i, j + 1 - i);
            snprintf(err, errlen, "bad variable reference %s", q);
            return -1;
        }
        char *name = xstrndup(body, namelen);
        const char *val = getenv(name);
        int rc = 0;
        if (sep && (!val || !*val)) {
            /* bash semantics for ":-": unset or empty takes the default */
            rc = expand_into(sep + 2, bodylen - namelen - 2, b, err, errlen);
        } else if (!val) {
            snprintf(err, errlen, "environment variable %s is not set (use ${%s:-default})", name,
                     name);
            rc = -1;
        } else {
            buf_adds(b, val);
        }
        free(name);
        if (rc < 0)
            return -1;
        i = j + 1;
    }
    return 0;
}

char *cfg_env_expand(const char *in, char *err, size_t errlen)
{
    struct buf b = BUF_INIT;
    if (expand_into(in, strlen(in), &b, err, errlen) < 0) {
        buf_release(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}
