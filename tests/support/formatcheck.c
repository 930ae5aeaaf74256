/* Helpers shared by the format parser suites. */
#include "tests/support/formatcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

/* Line `idx` (0-based) of tests/fixtures/formats/NAME, heap. */
char *fmt_fixture_line(const char *name, int idx)
{
    char *path = xasprintf("%s/tests/fixtures/formats/%s", test_repo_root(), name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f, "open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = -1;
    for (int i = 0; i <= idx; i++) {
        n = getline(&line, &cap, f);
        ck_assert_int_ge(n, 0);
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = '\0';
    fclose(f);
    free(path);
    return line;
}

int fmt_parse(enum format_kind k, const struct field_map *m, const char *s, struct parsed_record *r)
{
    return format_parse(k, m, (const uint8_t *)s, strlen(s), r);
}

int64_t fmt_ts(const char *s)
{
    int64_t us;
    ck_assert_int_eq(time_parse_rfc3339(s, strlen(s), &us), 0);
    return us;
}

void fmt_assert_failed(struct parsed_record *r)
{
    ck_assert_int_eq(r->format, FORMAT_RAW);
    ck_assert(!r->have_time);
    ck_assert_ptr_null(r->tenant);
    ck_assert_ptr_null(r->actor);
    ck_assert_ptr_null(r->action);
    ck_assert_ptr_null(r->resource);
    ck_assert_ptr_null(r->outcome);
    ck_assert(r->err[0] != '\0');
}
