/* Slicing array elements out of valid JSON text (cli/cli_json.h): a
 * skipper that knows strings and brackets, nothing more, since the text
 * has passed a real parser already. */
#include "cli/cli_json.h"

#include <stdbool.h>
#include <string.h>

#include "common/buf.h"

static size_t skip_ws(const char *t, size_t len, size_t i)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

/* t[i] is '"': the index after the closing quote. */
static size_t skip_string(const char *t, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (t[i] == '\\')
            i++;
        else if (t[i] == '"')
            return i + 1;
    }
    return len;
}

/* The index just after the value starting at t[i]. */
static size_t skip_value(const char *t, size_t len, size_t i)
{
    if (i >= len)
        return len;
    if (t[i] == '"')
        return skip_string(t, len, i);
    if (t[i] == '{' || t[i] == '[') {
        size_t depth = 0;
        while (i < len) {
            char c = t[i];
            if (c == '"') {
                i = skip_string(t, len, i);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return len;
    }
    /* a number or a literal: up to the next delimiter */
    while (i < len && !strchr(",]} \t\n\r", t[i]))
        i++;
    return i;
}

long cli_json_each(const char *t, size_t len, const char *key, cli_json_item_fn fn, void *ud)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(t, len, 0);
    if (i >= len || t[i] != '{')
        return -1;
    i = skip_ws(t, len, i + 1);
    while (i < len && t[i] == '"') {
        size_t kend = skip_string(t, len, i);
        bool match = kend - i == klen + 2 && memcmp(t + i + 1, key, klen) == 0;
        i = skip_ws(t, len, kend);
        if (i >= len || t[i] != ':')
            return -1;
        i = skip_ws(t, len, i + 1);
        if (match) {
            if (i >= len || t[i] != '[')
                return -1;
            long count = 0;
            i = skip_ws(t, len, i + 1);
            while (i < len && t[i] != ']') {
                size_t end = skip_value(t, len, i);
                fn(ud, t + i, end - i);
                count++;
                i = skip_ws(t, len, end);
                if (i < len && t[i] == ',')
                    i = skip_ws(t, len, i + 1);
            }
            return count;
        }
        i = skip_ws(t, len, skip_value(t, len, i));
        if (i < len && t[i] == ',')
            i = skip_ws(t, len, i + 1);
    }
    return -1;
}

void cli_json_quote_numbers(const char *t, size_t len, struct buf *out)
{
    size_t i = 0;
    while (i < len) {
        if (t[i] == '"') {
            size_t end = skip_string(t, len, i);
            buf_add(out, t + i, end - i);
            i = end;
        } else if (t[i] == '-' || (t[i] >= '0' && t[i] <= '9')) {
            size_t end = i;
            while (end < len && strchr("+-.eE0123456789", t[end]))
                end++;
            buf_addc(out, '"');
            buf_add(out, t + i, end - i);
            buf_addc(out, '"');
            i = end;
        } else {
            buf_addc(out, t[i++]);
        }
    }
}
