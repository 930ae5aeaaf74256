/* Unit tests of the aggregator's storage side that need no server: UTC day
 * math, partition-bound routing, grouping by day, SQLSTATE classification,
 * array parameters, the batch container. */
#include <stdlib.h>
#include <string.h>

#include "aggregator/batch.h"
#include "aggregator/partitions.h"
#include "aggregator/pg_writer.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

#define DAY       PART_DAY_US
#define T20240229 INT64_C(1709164800000000) /* 2024-02-29T00:00:00Z */

START_TEST(day_floor_edges)
{
    ck_assert_int_eq(part_day_floor(0), 0);
    ck_assert_int_eq(part_day_floor(DAY - 1), 0);
    ck_assert_int_eq(part_day_floor(DAY), DAY);
    ck_assert_int_eq(part_day_floor(-1), -DAY); /* 1969-12-31T23:59:59.999999Z */
    ck_assert_int_eq(part_day_floor(-DAY), -DAY);
    ck_assert_int_eq(part_day_floor(-DAY - 1), -2 * DAY);
    ck_assert_int_eq(part_day_floor(T20240229 + 12 * 3600 * INT64_C(1000000)), T20240229);
    ck_assert_int_eq(part_day_floor(T20240229), T20240229); /* exact midnight */
}
END_TEST

START_TEST(day_names)
{
    char n[PART_NAME_LEN];
    part_day_name(0, n);
    ck_assert_str_eq(n, "events_p19700101");
    part_day_name(-1, n);
    ck_assert_str_eq(n, "events_p19691231");
    part_day_name(T20240229 + DAY - 1, n);
    ck_assert_str_eq(n, "events_p20240229");
    part_day_name(T20240229 + DAY, n);
    ck_assert_str_eq(n, "events_p20240301");

    int64_t d = 0;
    ck_assert_int_eq(part_name_day("events_p20240229", &d), 0);
    ck_assert_int_eq(d, T20240229);
    ck_assert_int_eq(part_name_day("events_p19691231", &d), 0);
    ck_assert_int_eq(d, -DAY);
    ck_assert_int_eq(part_name_day("events_p20230229", &d), -1); /* not a leap year */
    ck_assert_int_eq(part_name_day("events_p20241301", &d), -1);
    ck_assert_int_eq(part_name_day("events_p2024022", &d), -1);
    ck_assert_int_eq(part_name_day("events_p20240229_detached", &d), -1);
    ck_assert_int_eq(part_name_day("events_x20240229", &d), -1);
    ck_assert_int_eq(part_name_day("events_p2024022a", &d), -1);
}
END_TEST

/* Issue 9 item 1: a day of any year gets a plain identifier (year 0 with an
 * offset made "events_p-0011231", a syntax error, 42601), read back by
 * part_name_day; spellings it does not make are refused. */
START_TEST(day_names_any_year)
{
    static const int64_t y0 = INT64_C(-62167219200) * 1000000; /* 0000-01-01T00:00:00Z */
    static const int64_t y10000 = INT64_C(253402300800) * 1000000;
    static const struct {
        int64_t us;
        const char *name;
    } cases[] = {
        {y0, "events_p00000101"},
        {y0 - 1, "events_pm00011231"}, /* "0000-01-01T00:00:00+00:01" */
        {y0 - 400 * DAY, "events_pm00021127"},
        {y10000 - 1, "events_p99991231"},
        {y10000, "events_p100000101"}, /* "9999-12-31T23:59:59-23:59" */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char n[PART_NAME_LEN];
        part_day_name(cases[i].us, n);
        ck_assert_str_eq(n, cases[i].name);
        ck_assert_uint_eq(strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_"), strlen(n));
        int64_t d = 1;
        ck_assert_int_eq(part_name_day(n, &d), 0);
        ck_assert_int_eq(d, part_day_floor(cases[i].us));
    }
    int64_t d;
    ck_assert_int_eq(part_name_day("events_p-0011231", &d), -1);
    ck_assert_int_eq(part_name_day("events_p020240229", &d), -1); /* not our spelling */
    ck_assert_int_eq(part_name_day("events_pm0000101", &d), -1);
    ck_assert_int_eq(part_name_day("events_pm00000101", &d), -1); /* -0 is 0 */
    ck_assert_int_eq(part_name_day("events_p1234567890123", &d), -1);
}
END_TEST

START_TEST(cache_binary_search)
{
    struct part_cache c;
    part_cache_init(&c);
    ck_assert_int_eq(part_cache_find(&c, 0), -1);
    /* Insert out of order, with a hole on day 3. */
    int64_t days[] = {5, 1, 0, 2, 4, -1};
    for (size_t i = 0; i < 6; i++)
        part_cache_add(&c, days[i] * DAY, days[i] * DAY + DAY);
    part_cache_add(&c, 2 * DAY, 3 * DAY); /* duplicate: no-op */
    ck_assert_uint_eq(c.n, 6);
    for (size_t i = 1; i < c.n; i++)
        ck_assert_int_lt(c.b[i - 1].lo, c.b[i].lo);
    ck_assert_int_eq(part_cache_find(&c, 0), 1); /* [-1] [0] [1] [2] [4] [5] */
    ck_assert_int_eq(part_cache_find(&c, DAY - 1), 1);
    ck_assert_int_eq(part_cache_find(&c, DAY), 2); /* exact midnight: the new day */
    ck_assert_int_eq(part_cache_find(&c, -1), 0);  /* negative epoch */
    ck_assert_int_eq(part_cache_find(&c, -DAY), 0);
    ck_assert_int_eq(part_cache_find(&c, -DAY - 1), -1);
    ck_assert_int_eq(part_cache_find(&c, 3 * DAY), -1); /* the hole */
    ck_assert_int_eq(part_cache_find(&c, 4 * DAY - 1), -1);
    ck_assert_int_eq(part_cache_find(&c, 4 * DAY), 4);
    ck_assert_int_eq(part_cache_find(&c, 6 * DAY - 1), 5);
    ck_assert_int_eq(part_cache_find(&c, 6 * DAY), -1);
    part_cache_release(&c);

    /* Many partitions: every day is found at its index. */
    part_cache_init(&c);
    for (int64_t i = 2189; i >= 0; i--)
        part_cache_add(&c, i * DAY, i * DAY + DAY);
    for (int64_t i = 0; i < 2190; i++) {
        ck_assert_int_eq(part_cache_find(&c, i * DAY), i);
        ck_assert_int_eq(part_cache_find(&c, i * DAY + DAY / 2), i);
    }
    ck_assert_int_eq(part_cache_find(&c, 2190 * DAY), -1);
    part_cache_release(&c);
}
END_TEST

START_TEST(groups_by_day)
{
    int64_t t[] = {T20240229 + 5,
                   T20240229 - 1,
                   T20240229 + DAY,
                   T20240229 + 7,
                   -1,
                   T20240229 - DAY,
                   T20240229 + DAY + 1,
                   0};
    size_t n = sizeof(t) / sizeof(t[0]);
    struct part_groups g;
    part_groups_init(&g, t, n);
    ck_assert_uint_eq(g.m, 5); /* 02-29, 02-28, 03-01, 1969-12-31, 1970-01-01 */
    ck_assert_int_eq(g.days[0], T20240229);
    ck_assert_int_eq(g.days[1], T20240229 - DAY);
    ck_assert_int_eq(g.days[2], T20240229 + DAY);
    ck_assert_int_eq(g.days[3], -DAY);
    ck_assert_int_eq(g.days[4], 0);
    ck_assert_uint_eq(g.start[g.m], n);
    size_t seen = 0;
    for (size_t k = 0; k < g.m; k++)
        for (size_t j = g.start[k]; j < g.start[k + 1]; j++) {
            ck_assert_int_eq(part_day_floor(t[g.idx[j]]), g.days[k]);
            seen++;
        }
    ck_assert_uint_eq(seen, n);
    /* Rows keep their order within a group. */
    ck_assert_uint_eq(g.idx[g.start[0]], 0);
    ck_assert_uint_eq(g.idx[g.start[0] + 1], 3);
    part_groups_release(&g);

    part_groups_init(&g, NULL, 0);
    ck_assert_uint_eq(g.m, 0);
    ck_assert_uint_eq(g.start[0], 0);
    part_groups_release(&g);

    /* Many rows over few days. */
    enum { N = 10000 };
    int64_t *many = xmalloc(N * sizeof(*many));
    for (size_t i = 0; i < N; i++)
        many[i] = (int64_t)(i % 40) * DAY + (int64_t)i;
    part_groups_init(&g, many, N);
    ck_assert_uint_eq(g.m, 40);
    for (size_t k = 0; k < g.m; k++)
        ck_assert_uint_eq(g.start[k + 1] - g.start[k], N / 40);
    part_groups_release(&g);
    free(many);
}
END_TEST

START_TEST(sqlstate_classes)
{
    ck_assert_int_eq(pg_classify_sqlstate(NULL), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate(""), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("08006"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("08001"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("57P01"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("57P02"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("57P03"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("40001"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("40P01"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("53100"), PG_RESOURCE); /* disk full */
    ck_assert_int_eq(pg_classify_sqlstate("53200"), PG_RESOURCE); /* out of shared memory: locks */
    ck_assert_int_eq(pg_classify_sqlstate("53000"), PG_RESOURCE);
    ck_assert_int_eq(pg_classify_sqlstate("25006"), PG_TRANSIENT); /* read-only: a failover */
    ck_assert_int_eq(pg_classify_sqlstate("25P02"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("57014"), PG_TRANSIENT); /* statement timeout */
    ck_assert_int_eq(pg_classify_sqlstate("55006"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("72000"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("55P03"), PG_TRANSIENT);
    ck_assert_int_eq(pg_classify_sqlstate("22021"), PG_DATA);
    ck_assert_int_eq(pg_classify_sqlstate("22P02"), PG_DATA);
    ck_assert_int_eq(pg_classify_sqlstate("23505"), PG_DATA);
    ck_assert_int_eq(pg_classify_sqlstate("54000"), PG_DATA);
    ck_assert_int_eq(pg_classify_sqlstate("22008"), PG_DATA); /* a date out of range */
    ck_assert_int_eq(pg_classify_sqlstate("22P05"), PG_DATA); /* \u0000 in jsonb */
    ck_assert_int_eq(pg_classify_sqlstate("23514"), PG_DATA);
    ck_assert_int_eq(pg_classify_sqlstate("42P01"), PG_FATAL);
    ck_assert_int_eq(pg_classify_sqlstate("42501"), PG_FATAL);
    ck_assert_int_eq(pg_classify_sqlstate("28P01"), PG_FATAL);
    ck_assert_int_eq(pg_classify_sqlstate("3D000"), PG_FATAL);
    ck_assert_int_eq(pg_classify_sqlstate("57P04"), PG_FATAL); /* database dropped */
    ck_assert_int_eq(pg_classify_sqlstate("XX001"), PG_FATAL); /* corruption */
    ck_assert_int_eq(pg_classify_sqlstate("0A000"), PG_FATAL);
    /* Neither provably data nor configuration: retried, smaller. */
    ck_assert_int_eq(pg_classify_sqlstate("XX000"), PG_RESOURCE);
    ck_assert_int_eq(pg_classify_sqlstate("P0001"), PG_RESOURCE);
    ck_assert_int_eq(pg_classify_sqlstate("ZZ999"), PG_RESOURCE);
    ck_assert(pg_status_retryable(PG_RESOURCE) && pg_status_retryable(PG_TRANSIENT));
    ck_assert(!pg_status_retryable(PG_DATA) && !pg_status_retryable(PG_FATAL));
    ck_assert_int_eq(pg_classify_sqlstate("57P0"), PG_TRANSIENT); /* malformed: no state */
    ck_assert_str_eq(pg_status_name(PG_OK), "ok");
    ck_assert_str_eq(pg_status_name(PG_TRANSIENT), "transient");
    ck_assert_str_eq(pg_status_name(PG_CONFLICT), "conflict");
    ck_assert_str_eq(pg_status_name(PG_DATA), "data");
    ck_assert_str_eq(pg_status_name(PG_FATAL), "fatal");
}
END_TEST

/* What a server message may say once it leaves the process (issue 9 item
 * 13): never a value it quotes, never the bytes of a record. */
START_TEST(error_scrub)
{
    char out[256];
    const struct {
        const char *st, *in, *want;
    } cases[] = {
        /* PostgreSQL does not escape quotes inside a value */
        {"22P02", "invalid input syntax for type integer: \"{\"ssn\": \"123-45\"}\"",
         "invalid input syntax for type integer: \"…\""},
        {"22P02", "invalid input syntax for type uuid: \"SECRET\"",
         "invalid input syntax for type uuid: \"…\""},
        {"22021", "invalid byte sequence for encoding \"UTF8\": 0xc3 0x28",
         "invalid byte sequence for encoding \"…\": 0x…"},
        {"22008", "date/time field value out of range: '0000-12-31 SECRET'",
         "date/time field value out of range: '…'"},
        /* an unterminated quote hides the rest of the line */
        {"22P02", "bad value \"SECRET and more", "bad value \"…\""},
        /* only the first line: libpq's connection errors add hints */
        {NULL, "server closed the connection unexpectedly\n\tThis probably means SECRET",
         "server closed the connection unexpectedly"},
        {NULL, "missing \"=\" after \"SECRET\" in connection info string",
         "missing \"…\" in connection info string"},
        {"54000", "index row size 3016 exceeds btree version 4 maximum 2704 for index \"x\"",
         "index row size 3016 exceeds btree version 4 maximum 2704 for index \"…\""},
        /* our objects: kept, so the operator can read them */
        {"42P01", "relation \"auditrail.streams\" does not exist",
         "relation \"auditrail.streams\" does not exist"},
        {"42501", "permission denied for table events", "permission denied for table events"},
        /* not a byte sequence */
        {"22003", "value 10x0 out of range", "value 10x0 out of range"},
        {NULL, NULL, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pg_error_scrub(cases[i].st, cases[i].in, out, sizeof(out));
        ck_assert_msg(strcmp(out, cases[i].want) == 0, "case %zu: got [%s], want [%s]", i, out,
                      cases[i].want);
        ck_assert_ptr_null(strstr(out, "SECRET"));
    }
    /* A small buffer: still terminated, never a partial "…". */
    pg_error_scrub("22P02", "x: \"SECRET\"", out, 6);
    ck_assert_str_eq(out, "x:");
    pg_error_scrub("22P02", "abc", out, 1);
    ck_assert_str_eq(out, "");
}
END_TEST

/* Timestamp parameters PostgreSQL parses for every year it holds: RFC 3339
 * text was clamped to 0000-9999, and PostgreSQL has no year 0 (22008). */
START_TEST(time_text_any_year)
{
    char t[PG_TIME_TEXT_LEN];
    pg_time_text(0, t);
    ck_assert_str_eq(t, "1970-01-01 00:00:00.000000+00");
    pg_time_text(-1, t);
    ck_assert_str_eq(t, "1969-12-31 23:59:59.999999+00");
    pg_time_text(INT64_C(-62167219200) * 1000000 + 3600000000, t); /* 0000-01-01 01:00 */
    ck_assert_str_eq(t, "0001-01-01 01:00:00.000000+00 BC");
    pg_time_text(INT64_C(-62167219200) * 1000000 - 86400000000, t);
    ck_assert_str_eq(t, "0002-12-31 00:00:00.000000+00 BC");
    pg_time_text(INT64_C(253402300800) * 1000000 + 1, t);
    ck_assert_str_eq(t, "10000-01-01 00:00:00.000001+00");
}
END_TEST

START_TEST(array_literals)
{
    struct buf a = BUF_INIT;
    pg_array_begin(&a);
    ck_assert_str_eq(pg_array_end(&a), "{}");
    pg_array_begin(&a); /* reusable */
    pg_array_str(&a, "plain");
    pg_array_str(&a, "with \"quote\" and \\ backslash");
    pg_array_str(&a, "");
    ck_assert_str_eq(pg_array_end(&a),
                     "{\"plain\",\"with \\\"quote\\\" and \\\\ backslash\",\"\"}");
    pg_array_begin(&a);
    pg_array_i64(&a, -1);
    pg_array_i64(&a, INT64_MAX);
    ck_assert_str_eq(pg_array_end(&a), "{-1,9223372036854775807}");
    buf_release(&a);
}
END_TEST

static void env_with_line(struct envelope *e, const char *line)
{
    memset(e, 0, sizeof(*e));
    e->line = (uint8_t *)xstrdup(line);
    e->line_len = strlen(line);
    e->format = xstrdup("raw");
}

START_TEST(batch_container)
{
    struct batch b;
    batch_init(&b, "audit.events");
    ck_assert_str_eq(b.topic, "audit.events");
    ck_assert_uint_eq(b.n, 0);
    for (int i = 0; i < 1000; i++) {
        struct envelope e;
        env_with_line(&e, "abcd");
        batch_add(&b, &e, i % 3, i);
        ck_assert_ptr_null(e.line); /* ownership moved, source zeroed */
        ck_assert_ptr_null(e.format);
    }
    ck_assert_uint_eq(b.n, 1000);
    ck_assert_uint_eq(b.bytes, 4000);
    ck_assert_int_eq(b.rows[999].kafka_partition, 0);
    ck_assert_int_eq(b.rows[999].kafka_offset, 999);
    ck_assert_uint_eq(b.rows[500].env.line_len, 4);

    ck_assert_ptr_null(batch_offset_find(&b, 7));
    batch_advance(&b, 7, 10, 11);
    batch_advance(&b, 7, 99, 15); /* expected kept from the first call */
    batch_advance(&b, 2, -1, 3);
    batch_advance(&b, 7, 99, 12); /* never moves back */
    struct batch_offset *o = batch_offset_find(&b, 7);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->expected_offset, 10);
    ck_assert_int_eq(o->next_offset, 15);
    o = batch_offset_find(&b, 2);
    ck_assert_int_eq(o->expected_offset, -1);
    ck_assert_int_eq(o->next_offset, 3);
    ck_assert_uint_eq(b.noffsets, 2);

    size_t cap = b.cap;
    batch_clear(&b);
    ck_assert_uint_eq(b.n, 0);
    ck_assert_uint_eq(b.noffsets, 0);
    ck_assert_uint_eq(b.bytes, 0);
    ck_assert_uint_eq(b.cap, cap); /* capacity kept for reuse */
    ck_assert_str_eq(b.topic, "audit.events");
    ck_assert_ptr_null(batch_offset_find(&b, 7));

    batch_advance(&b, 1, 5, 6);
    struct envelope e;
    env_with_line(&e, "x");
    batch_add(&b, &e, 1, 6);
    batch_release(&b);
    batch_release(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("aggr_storage");
    TCase *tc = tcase_create("storage");
    tcase_add_test(tc, day_floor_edges);
    tcase_add_test(tc, day_names);
    tcase_add_test(tc, day_names_any_year);
    tcase_add_test(tc, cache_binary_search);
    tcase_add_test(tc, groups_by_day);
    tcase_add_test(tc, sqlstate_classes);
    tcase_add_test(tc, error_scrub);
    tcase_add_test(tc, array_literals);
    tcase_add_test(tc, time_text_any_year);
    tcase_add_test(tc, batch_container);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
