/* The Markdown reference of a config key table (--config-reference), which
 * scripts/docs-check keeps equal to README's configuration tables. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/cfg_env.h"
#include "common/config.h"
#include "common/xmalloc.h"

/* Markdown table cells: '|' would split the cell, newlines end the row. */
static void md_cell(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

static void print_type(FILE *f, const struct cfg_key *k)
{
    static const char *const names[] = {
        [CFG_STR] = "string",
        [CFG_INT] = "integer",
        [CFG_BOOL] = "boolean",
        [CFG_DOUBLE] = "number",
        [CFG_STRLIST] = "list of strings",
        [CFG_MAP] = "mapping",
        [CFG_SECTION] = "section",
        [CFG_LIST] = "list of mappings",
    };
    fputs(names[k->type], f);
    if (k->type == CFG_INT && k->min < k->max)
        fprintf(f, " [%" PRId64 ", %" PRId64 "]", k->min, k->max);
}

static void print_rows(const struct cfg_key *table, const char *prefix, bool env_ok, FILE *f)
{
    for (const struct cfg_key *k = table; k->name; k++) {
        char *path = *prefix ? xasprintf("%s.%s", prefix, k->name) : xstrdup(k->name);
        if (k->type == CFG_SECTION && !k->help) {
            print_rows(k->sub, path, env_ok, f);
            free(path);
            continue;
        }
        fputs("| `", f);
        md_cell(f, path);
        fputs("` | ", f);
        print_type(f, k);
        fputs(" | ", f);
        if (k->def && cfg_env_overridable(k->type)) {
            fputs("`", f);
            md_cell(f, k->def);
            fputs("`", f);
        }
        fprintf(f, " | %s | ", k->required ? "yes" : "no");
        if (env_ok && cfg_env_overridable(k->type)) {
            char *var = cfg_env_name(path);
            fprintf(f, "`%s`", var);
            free(var);
        }
        fputs(" | ", f);
        md_cell(f, k->help);
        fputs(" |\n", f);
        if (k->type == CFG_SECTION) {
            print_rows(k->sub, path, env_ok, f);
        } else if (k->type == CFG_LIST) {
            char *ipath = xasprintf("%s[]", path);
            print_rows(k->sub, ipath, false, f);
            free(ipath);
        }
        free(path);
    }
}

void cfg_print_reference(const struct cfg_key *table, FILE *f)
{
    fputs("| Key | Type | Default | Required | Environment | Description |\n", f);
    fputs("|---|---|---|---|---|---|\n", f);
    print_rows(table, "", true, f);
}
