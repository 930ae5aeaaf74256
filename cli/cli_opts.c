/* The CLI's option table and its parser (cli/cli_opts.h). Written out
 * rather than getopt_long because each verb accepts a different subset and
 * the messages must name the verb's refusal precisely. */
#include "cli/cli_opts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

enum opt_type { T_STR, T_FLAG, T_LIMIT, T_MAX, T_TIMEOUT };

struct opt_spec {
    const char *name;
    char shrt;
    enum opt_type type;
    size_t off; /* of the field in struct cli_opts */
    uint32_t bit;
};

#define F(field) offsetof(struct cli_opts, field)

static const struct opt_spec specs[] = {
    {"url", 'u', T_STR, F(url), CLI_O_URL},
    {"token", 0, T_STR, F(token), CLI_O_TOKEN},
    {"token-file", 0, T_STR, F(token_file), CLI_O_TOKEN},
    {"cacert", 0, T_STR, F(cacert), CLI_O_CACERT},
    {"timeout", 0, T_TIMEOUT, F(timeout_ms), CLI_O_TIMEOUT},
    {"tenant", 0, T_STR, F(tenant), CLI_O_TENANT},
    {"actor", 0, T_STR, F(actor), CLI_O_EVENT_FILTERS},
    {"action", 0, T_STR, F(action), CLI_O_EVENT_FILTERS},
    {"resource", 0, T_STR, F(resource), CLI_O_EVENT_FILTERS},
    {"outcome", 0, T_STR, F(outcome), CLI_O_EVENT_FILTERS},
    {"source", 0, T_STR, F(source), CLI_O_EVENT_FILTERS},
    {"stream", 0, T_STR, F(stream), CLI_O_STREAM},
    {"kind", 0, T_STR, F(kind), CLI_O_KIND},
    {"from", 0, T_STR, F(from), CLI_O_RANGE},
    {"to", 0, T_STR, F(to), CLI_O_RANGE},
    {"limit", 0, T_LIMIT, F(limit), CLI_O_PAGES},
    {"cursor", 0, T_STR, F(cursor), CLI_O_PAGES},
    {"all", 0, T_FLAG, F(all), CLI_O_PAGES},
    {"max", 0, T_MAX, F(max), CLI_O_PAGES},
    {"min-lsn", 0, T_STR, F(min_lsn), CLI_O_MIN_LSN},
    {"json", 0, T_FLAG, F(json), CLI_O_JSON},
    {"fail-empty", 0, T_FLAG, F(fail_empty), CLI_O_FAIL_EMPTY},
    {"counts", 0, T_FLAG, F(counts), CLI_O_COUNTS},
    {"output", 'o', T_STR, F(output), CLI_O_OUTPUT},
    {"config", 'c', T_STR, F(config), CLI_O_CONFIG},
    {"help", 'h', T_FLAG, F(help), 0},
};

#define NSPECS (sizeof(specs) / sizeof(specs[0]))

void cli_opts_init(struct cli_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = -1;
}

void cli_opts_release(struct cli_opts *o)
{
    free(o->argv);
    o->argv = NULL;
    o->argc = 0;
}

static int fail(char *err, size_t errlen, const char *fmt, const char *name)
{
    snprintf(err, errlen, fmt, name);
    return -1;
}

/* A decimal integer in [lo, hi], nothing else (no sign, no spaces). */
static bool parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    if (!s[0] || strspn(s, "0123456789") != strlen(s))
        return false;
    errno = 0;
    unsigned long v = strtoul(s, NULL, 10);
    if (errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int cli_opts_timeout(struct cli_opts *o, const char *val, char *err, size_t errlen)
{
    /* Seconds, fractions allowed, 0 = none; at most a day (a typo in ms
     * units would otherwise wait for weeks). */
    char *end;
    errno = 0;
    double s = strtod(val, &end);
    if (!val[0] || *end || errno || !isfinite(s) || s < 0 || s > 86400 ||
        strspn(val, "0123456789.") != strlen(val))
        return fail(err, errlen, "--%s takes seconds from 0 (no limit) to 86400", "timeout");
    o->timeout_ms = (long)(s * 1000.0 + 0.5);
    if (s > 0 && o->timeout_ms == 0)
        o->timeout_ms = 1;
    return 0;
}

static const struct opt_spec *find_long(const char *name, size_t n)
{
    for (size_t i = 0; i < NSPECS; i++)
        if (strlen(specs[i].name) == n && strncmp(specs[i].name, name, n) == 0)
            return &specs[i];
    return NULL;
}

static const struct opt_spec *find_short(char c)
{
    for (size_t i = 0; i < NSPECS; i++)
        if (specs[i].shrt && specs[i].shrt == c)
            return &specs[i];
    return NULL;
}

static int take(struct cli_opts *o, const struct opt_spec *s, const char *val, char *err,
                size_t errlen)
{
    char *field = (char *)o + s->off;
    unsigned long v;
    switch (s->type) {
    case T_STR:
        if (!val[0])
            return fail(err, errlen, "--%s needs a value", s->name);
        *(const char **)field = val;
        return 0;
    case T_FLAG:
        *(bool *)field = true;
        return 0;
    case T_LIMIT:
        if (!parse_uint(val, 1, CLI_LIMIT_MAX, &v))
            return fail(err, errlen, "--%s takes an integer from 1 to 1000", s->name);
        *(unsigned *)field = (unsigned)v;
        return 0;
    case T_MAX:
        if (!parse_uint(val, 1, CLI_MAX_MAX, &v))
            return fail(err, errlen, "--%s takes an integer from 1 to 1000000000", s->name);
        *(unsigned long *)field = v;
        return 0;
    case T_TIMEOUT:
        return cli_opts_timeout(o, val, err, errlen);
    }
    return -1;
}

/* Room for up to argc operands (and the NULL after them), none yet. */
static void operands_reset(struct cli_opts *o, int argc)
{
    free(o->argv);
    o->argv = xcalloc((size_t)argc + 1, sizeof(char *));
    o->argc = 0;
}

int cli_opts_parse(struct cli_opts *o, uint32_t allowed, int argc, char **argv, char *err,
                   size_t errlen)
{
    operands_reset(o, argc);
    bool options_end = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (options_end || a[0] != '-' || a[1] == '\0') { /* "-" is an operand */
            o->argv[o->argc++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_end = true;
            continue;
        }
        const struct opt_spec *s;
        const char *val = NULL;
        const char *shown = a;
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            s = find_long(a + 2, n);
            if (eq)
                val = eq + 1;
        } else {
            s = a[2] == '\0' ? find_short(a[1]) : NULL; /* no bundling: -oFILE is a typo */
        }
        if (!s) {
            /* Quote only what looks like an option name: never a value
             * (a token pasted in the wrong place must not be echoed). */
            size_t n = strcspn(shown, "=");
            if (n > 40 || strspn(shown, "-abcdefghijklmnopqrstuvwxyz") != n)
                return fail(err, errlen, "%s", "unknown option");
            snprintf(err, errlen, "unknown option %.*s", (int)n, shown);
            return -1;
        }
        if (s->bit && !(allowed & s->bit))
            return fail(err, errlen, "--%s does not apply to this command", s->name);
        if (s->type == T_FLAG) {
            if (val)
                return fail(err, errlen, "--%s takes no value", s->name);
        } else if (!val) {
            if (i + 1 >= argc)
                return fail(err, errlen, "--%s needs a value", s->name);
            val = argv[++i];
        }
        if (take(o, s, val ? val : "", err, errlen) != 0)
            return -1;
    }
    return 0;
}

int cli_opts_passthrough(struct cli_opts *o, int argc, char **argv, char *err, size_t errlen)
{
    operands_reset(o, argc);
    bool options_end = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options_end && strcmp(a, "--") == 0)
            options_end = true; /* kept: the aggregator's parser sees it too */
        if (options_end || (strcmp(a, "--config") != 0 && strcmp(a, "-c") != 0 &&
                            strncmp(a, "--config=", 9) != 0)) {
            o->argv[o->argc++] = argv[i];
            continue;
        }
        const char *val = a[1] == '-' && a[8] == '=' ? a + 9 : i + 1 < argc ? argv[++i] : "";
        if (!val[0])
            return fail(err, errlen, "--%s needs a value", "config");
        o->config = val;
    }
    return 0;
}
