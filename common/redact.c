/* Secrets masked out of URLs and libpq connection strings before anything
 * prints them (DESIGN.md §6: no password in a log, DLQ header or alert). */
#include "common/redact.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/hashchain.h"
#include "common/xmalloc.h"

/* Substrings that make a parameter name a secret, and whole names. */
static const char *const secret_parts[] = {"pass",    "pwd",        "secret",    "token",
                                           "auth",    "credential", "signature", "private",
                                           "session", "cookie"};
static const char *const secret_names[] = {"sig", "sas", "code", "otp"};

bool redact_is_secret_name(const char *name, size_t n)
{
    /* Lower case and percent-decoded, so "Pass%77ord" is still a password. A
     * name too long to look at whole is treated as a secret. */
    char low[128];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)name[i];
        if (c == '%' && i + 2 < n) {
            int hi = hex_digit_value((unsigned char)name[i + 1]);
            int lo = hex_digit_value((unsigned char)name[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = hi * 16 + lo;
                i += 2;
            }
        }
        if (k + 1 >= sizeof(low))
            return true;
        low[k++] = (char)tolower(c);
    }
    low[k] = '\0';
    for (size_t i = 0; i < sizeof(secret_parts) / sizeof(secret_parts[0]); i++)
        if (strstr(low, secret_parts[i]))
            return true;
    for (size_t i = 0; i < sizeof(secret_names) / sizeof(secret_names[0]); i++)
        if (strcmp(low, secret_names[i]) == 0)
            return true;
    /* key, apikey, api_key, access_key, sslkey (a path: hidden all the same) */
    return k >= 3 && strcmp(low + k - 3, "key") == 0;
}

/* out gets a prefix of b; the full length is returned (snprintf's contract). */
static size_t emit(struct buf *b, char *out, size_t outlen)
{
    size_t n = b->len;
    if (outlen) {
        size_t c = n < outlen - 1 ? n : outlen - 1;
        memcpy(out, buf_cstr(b), c);
        out[c] = '\0';
    }
    buf_release(b);
    return n;
}

/* Parameters name[=value] separated by & or ; in s[0, n): secret values
 * masked, the rest verbatim. */
static void add_params(struct buf *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t len = strcspn(s + i, "&;");
        if (len > n - i)
            len = n - i;
        const char *eq = memchr(s + i, '=', len);
        if (eq && redact_is_secret_name(s + i, (size_t)(eq - (s + i)))) {
            buf_add(b, s + i, (size_t)(eq - (s + i)) + 1);
            BUF_LIT(b, REDACT_MASK);
        } else {
            buf_add(b, s + i, len);
        }
        i += len;
        if (i < n)
            buf_addc(b, s[i++]);
    }
}

/* The part after the user info: host and path verbatim, query and fragment
 * parameters through add_params. */
static void add_rest(struct buf *b, const char *s)
{
    size_t path = strcspn(s, "?#");
    buf_add(b, s, path);
    s += path;
    while (*s) {
        buf_addc(b, *s); /* '?' or '#' */
        s++;
        size_t len = *(s - 1) == '?' ? strcspn(s, "#") : strlen(s);
        add_params(b, s, len);
        s += len;
    }
}

/* Length of "scheme://" at the start of s, or 0 (RFC 3986 scheme syntax). */
static size_t scheme_len(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    size_t i = 1;
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
        i++;
    return strncmp(s + i, "://", 3) == 0 ? i + 3 : 0;
}

/* A URL into b. The user info runs to the LAST '@': a password holding a
 * raw '/', '?' or '@' is still covered, at the price of masking an '@' that
 * belonged to a path (harmless in a log line). keep_user: "user" alone is
 * shown (libpq: a user name is no secret); otherwise it may be a token. */
static void add_url(struct buf *b, const char *in, bool keep_user)
{
    size_t sl = scheme_len(in);
    const char *at = sl ? strrchr(in + sl, '@') : NULL;
    if (!at) {
        add_rest(b, in);
        return;
    }
    buf_add(b, in, sl);
    const char *user = in + sl;
    const char *colon = memchr(user, ':', (size_t)(at - user));
    if (colon) {
        buf_add(b, user, (size_t)(colon - user) + 1);
        BUF_LIT(b, REDACT_MASK);
    } else if (keep_user) {
        buf_add(b, user, (size_t)(at - user));
    } else {
        BUF_LIT(b, REDACT_MASK);
    }
    buf_addc(b, '@');
    add_rest(b, at + 1);
}

size_t redact_url(const char *in, char *out, size_t outlen)
{
    struct buf b = BUF_INIT;
    add_url(&b, in, false);
    return emit(&b, out, outlen);
}

/* libpq's key = value syntax (conninfo_parse): whitespace around '=', values
 * either single-quoted or up to whitespace, backslash escaping the next
 * character in both. Returns false when the text cannot be parsed; b then
 * holds what was safe to copy and the caller masks the rest. */
static bool add_keyvalues(struct buf *b, const char *s)
{
    while (*s) {
        size_t ws = strspn(s, " \t\n\r\f\v");
        buf_add(b, s, ws);
        s += ws;
        if (!*s)
            break;
        const char *key = s;
        size_t klen = strcspn(s, "= \t\n\r\f\v");
        s += klen;
        s += strspn(s, " \t\n\r\f\v");
        if (*s != '=')
            return false;
        s++;
        s += strspn(s, " \t\n\r\f\v");
        const char *val = s;
        if (*s == '\'') {
            for (s++; *s && *s != '\''; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (*s != '\'')
                return false;
            s++;
        } else {
            for (; *s && !isspace((unsigned char)*s); s++)
                if (*s == '\\' && s[1])
                    s++;
        }
        if (redact_is_secret_name(key, klen)) {
            buf_add(b, key, (size_t)(val - key));
            BUF_LIT(b, REDACT_MASK);
        } else {
            buf_add(b, key, (size_t)(s - key));
        }
    }
    return true;
}

size_t redact_conninfo(const char *in, char *out, size_t outlen)
{
    struct buf b = BUF_INIT;
    if (strncasecmp(in, "postgresql://", 13) == 0 || strncasecmp(in, "postgres://", 11) == 0)
        add_url(&b, in, true);
    else if (!add_keyvalues(&b, in))
        BUF_LIT(&b, REDACT_MASK);
    return emit(&b, out, outlen);
}

char *redact_url_dup(const char *in)
{
    size_t n = redact_url(in, NULL, 0);
    char *out = xmalloc(n + 1);
    redact_url(in, out, n + 1);
    return out;
}

char *redact_conninfo_dup(const char *in)
{
    size_t n = redact_conninfo(in, NULL, 0);
    char *out = xmalloc(n + 1);
    redact_conninfo(in, out, n + 1);
    return out;
}
