/* Helpers shared by the format parser suites (tests/unit/test_format_*.c). */
#ifndef AUDITRAIL_TEST_FORMATCHECK_H
#define AUDITRAIL_TEST_FORMATCHECK_H

#include <check.h>
#include <stdint.h>

#include "agent/format.h"

/* Line `idx` (0-based) of tests/fixtures/formats/NAME without its '\n', heap. */
char *fmt_fixture_line(const char *name, int idx);
/* format_parse of a C string. */
int fmt_parse(enum format_kind k, const struct field_map *m, const char *s,
              struct parsed_record *r);
/* An RFC 3339 timestamp in µs (the test fails if it does not parse). */
int64_t fmt_ts(const char *s);
/* A failed parse: raw, no time, no fields, a reason. */
void fmt_assert_failed(struct parsed_record *r);

#define ck_field(got, want) ck_assert_str_eq((got) ? (got) : "(null)", (want))

#endif
