/* Validation of consumed messages: every failure class gets its reason
 * string (the DLQ's auditrail-error header and the metric label). */
#include <stdlib.h>
#include <string.h>

#include "aggregator/validate.h"
#include "common/xmalloc.h"
#include "tests/support/aggr_harness.h"
#include "tests/support/testutil.h"

static char *valid_json(size_t *len)
{
    struct tenv_stream s;
    tenv_stream_init(&s, "validate");
    return tenv_next_json(&s, "user=alice action=read", 1764186645123456, len);
}

/* Replace the first occurrence of from with to in a heap string. */
static char *replace(const char *in, const char *from, const char *to)
{
    const char *at = strstr(in, from);
    ck_assert_msg(at != NULL, "'%s' not in %s", from, in);
    return xasprintf("%.*s%s%s", (int)(at - in), in, to, at + strlen(from));
}

static enum validate_reason check(const char *json, char *err, size_t errlen)
{
    struct envelope e = {0};
    enum validate_reason r = validate_message(json, strlen(json), 1 << 20, &e, err, errlen);
    envelope_release(&e);
    return r;
}

START_TEST(valid_message_passes)
{
    size_t len;
    char *j = valid_json(&len);
    struct envelope e = {0};
    char err[256] = "";
    ck_assert_int_eq(validate_message(j, len, 1 << 20, &e, err, sizeof(err)), VALIDATE_OK);
    ck_assert_int_eq(e.seq, 0);
    ck_assert_int_eq(e.time_us, 1764186645123456);
    ck_assert_uint_eq(e.line_len, strlen("user=alice action=read"));
    envelope_release(&e);
    free(j);
}
END_TEST

START_TEST(null_value)
{
    struct envelope e = {0};
    char err[256];
    ck_assert_int_eq(validate_message(NULL, 0, 1 << 20, &e, err, sizeof(err)), VALIDATE_NULL);
    ck_assert_str_eq(validate_reason_name(VALIDATE_NULL), "null");
    ck_assert_msg(strncmp(err, "null: ", 6) == 0, "%s", err);
}
END_TEST

START_TEST(oversize)
{
    size_t len;
    char *j = valid_json(&len);
    struct envelope e = {0};
    char err[256];
    ck_assert_int_eq(validate_message(j, len, len - 1, &e, err, sizeof(err)), VALIDATE_OVERSIZE);
    ck_assert_msg(strncmp(err, "oversize: ", 10) == 0, "%s", err);
    /* Exactly at the limit is fine. */
    ck_assert_int_eq(validate_message(j, len, len, &e, err, sizeof(err)), VALIDATE_OK);
    envelope_release(&e);
    free(j);
}
END_TEST

START_TEST(not_json)
{
    char err[256];
    ck_assert_int_eq(check("{\"v\":1,", err, sizeof(err)), VALIDATE_DECODE);
    ck_assert_msg(strncmp(err, "decode: not JSON", 16) == 0, "%s", err);
    ck_assert_int_eq(check("[1,2]", err, sizeof(err)), VALIDATE_DECODE);
    ck_assert_str_eq(err, "decode: not an object");
}
END_TEST

/* The valid message with `from` replaced by `to` is refused with `reason`
 * and exactly the DLQ text `want`. */
static void expect_refused(const char *from, const char *to, enum validate_reason reason,
                           const char *want)
{
    size_t len;
    char *j = valid_json(&len), *bad = replace(j, from, to), err[256];
    ck_assert_int_eq(check(bad, err, sizeof(err)), reason);
    ck_assert_str_eq(err, want);
    free(bad);
    free(j);
}

START_TEST(wrong_version)
{
    expect_refused("\"v\":1", "\"v\":2", VALIDATE_VERSION, "version: unsupported version: 2");
    /* The DLQ header text stays "<class>: <decoder reason>" for the cases the
     * decoder has no detail for, too. */
    expect_refused("\"v\":1", "\"v\":\"1\"", VALIDATE_VERSION, "version: bad field: v");
    expect_refused("\"v\":1,", "", VALIDATE_VERSION, "version: missing field: v");
}
END_TEST

START_TEST(missing_field)
{
    expect_refused("\"seq\":0,", "", VALIDATE_SCHEMA, "schema: missing field: seq");
}
END_TEST

START_TEST(bad_time)
{
    expect_refused("\"time\":\"2025-11-26T", "\"time\":\"2025-13-26T", VALIDATE_TIME,
                   "time: bad field: time");
    /* A missing time is a schema problem, not a time one. */
    expect_refused("\"time\":\"2025-11-26T19:50:45.123456Z\",", "", VALIDATE_SCHEMA,
                   "schema: missing field: time");
}
END_TEST

START_TEST(tampered_record)
{
    expect_refused("alice", "mallo", VALIDATE_INTEGRITY, "integrity: hash mismatch");
}
END_TEST

START_TEST(classify_table)
{
    ck_assert_int_eq(validate_classify(ENVELOPE_OK), VALIDATE_OK);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_NOT_JSON), VALIDATE_DECODE);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_NOT_OBJECT), VALIDATE_DECODE);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_NO_VERSION), VALIDATE_VERSION);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_BAD_VERSION), VALIDATE_VERSION);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_UNSUPPORTED_VERSION), VALIDATE_VERSION);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_MISSING_FIELD), VALIDATE_SCHEMA);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_BAD_FIELD), VALIDATE_SCHEMA);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_UNKNOWN_FIELD), VALIDATE_SCHEMA);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_LINE_TWICE), VALIDATE_SCHEMA);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_BAD_TIME), VALIDATE_TIME);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_HASH_MISMATCH), VALIDATE_INTEGRITY);
    ck_assert_int_eq(validate_classify(ENVELOPE_ERR_ID_MISMATCH), VALIDATE_INTEGRITY);
    ck_assert_str_eq(validate_reason_name(VALIDATE_STORAGE), "storage");
    ck_assert_str_eq(validate_reason_name((enum validate_reason)99), "unknown");
}
END_TEST

/* ---- what ingest accepts: the key and the time window ---------------- */

#define T_MSG   INT64_C(1764186645123456) /* valid_json's time: 2025-11-26T19:50:45.123456Z */
#define DAY_US  INT64_C(86400000000)
#define HOUR_US INT64_C(3600000000)

static const struct validate_window window_1d = {DAY_US, 30 * DAY_US};

/* validate_message then validate_accept of json at now_us with key. */
static enum validate_reason accept_at(const char *json, const char *key, int64_t now_us,
                                      bool *keyless, char *err, size_t errlen)
{
    struct envelope e = {0};
    enum validate_reason r = validate_message(json, strlen(json), 1 << 20, &e, err, errlen);
    if (r == VALIDATE_OK)
        r = validate_accept(&e, key, key ? strlen(key) : 0, &window_1d, now_us, keyless, err,
                            errlen);
    envelope_release(&e);
    return r;
}

static char *stream_of(const char *json)
{
    struct envelope e = {0};
    char err[256];
    ck_assert_int_eq(validate_message(json, strlen(json), 1 << 20, &e, err, sizeof(err)),
                     VALIDATE_OK);
    char *s = xstrdup(e.stream);
    envelope_release(&e);
    return s;
}

START_TEST(key_must_be_the_stream)
{
    size_t len;
    char *j = valid_json(&len), *stream = stream_of(j), err[256] = "";
    bool keyless = true;
    ck_assert_int_eq(accept_at(j, stream, T_MSG, &keyless, err, sizeof(err)), VALIDATE_OK);
    ck_assert(!keyless);
    /* another stream's key: the record is not what the agent sent */
    char *other = xstrdup(stream);
    other[0] = other[0] == 'a' ? 'b' : 'a';
    ck_assert_int_eq(accept_at(j, other, T_MSG, &keyless, err, sizeof(err)), VALIDATE_SCHEMA);
    ck_assert_str_eq(err, "schema: key does not match stream");
    ck_assert_int_eq(accept_at(j, "x", T_MSG, &keyless, err, sizeof(err)), VALIDATE_SCHEMA);
    /* a longer key that starts with the stream */
    char *longer = xasprintf("%sz", stream);
    ck_assert_int_eq(accept_at(j, longer, T_MSG, &keyless, err, sizeof(err)), VALIDATE_SCHEMA);
    /* no key: accepted, and said so for the count */
    ck_assert_int_eq(accept_at(j, NULL, T_MSG, &keyless, err, sizeof(err)), VALIDATE_OK);
    ck_assert(keyless);
    free(longer);
    free(other);
    free(stream);
    free(j);
}
END_TEST

START_TEST(time_window_future)
{
    size_t len;
    char *j = valid_json(&len), *stream = stream_of(j), err[256] = "";
    bool keyless;
    /* at now + max_future exactly: in; one µs later: out */
    ck_assert_int_eq(accept_at(j, stream, T_MSG - DAY_US, &keyless, err, sizeof(err)), VALIDATE_OK);
    ck_assert_int_eq(accept_at(j, stream, T_MSG - DAY_US - 1, &keyless, err, sizeof(err)),
                     VALIDATE_TIME);
    /* the bound is named; nothing of the record but its time */
    ck_assert_str_eq(err, "time: 2025-11-26T19:50:45.123456Z is after the acceptance window's "
                          "end 2025-11-26T19:50:45.123455Z (now + ingest.max_future_s 86400 s)");
    free(stream);
    free(j);
}
END_TEST

START_TEST(time_window_past)
{
    size_t len;
    char *j = valid_json(&len), *stream = stream_of(j), err[256] = "";
    bool keyless;
    ck_assert_int_eq(accept_at(j, stream, T_MSG + 30 * DAY_US, &keyless, err, sizeof(err)),
                     VALIDATE_OK);
    ck_assert_int_eq(accept_at(j, stream, T_MSG + 30 * DAY_US + 1, &keyless, err, sizeof(err)),
                     VALIDATE_TIME);
    ck_assert_str_eq(err, "time: 2025-11-26T19:50:45.123456Z is before the retention horizon "
                          "2025-11-26T19:50:45.123457Z (partitions.retention_days less one "
                          "maintenance interval and a day)");
    ck_assert_ptr_null(strstr(err, "alice"));
    free(stream);
    free(j);
}
END_TEST

/* Issue 9 item 1: a valid envelope (time is not hashed) whose time is the
 * first minute of year 0 with an offset: it decodes, and the window sends
 * it to the DLQ instead of a partition named events_p-0011231. */
START_TEST(year_zero_refused)
{
    size_t len;
    char *j = valid_json(&len), *stream = stream_of(j), err[256] = "";
    static const char *const times[] = {"0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59-23:59",
                                        "1970-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        char *want = xasprintf("\"time\":\"%s\"", times[i]);
        char *bad = replace(j, "\"time\":\"2025-11-26T19:50:45.123456Z\"", want);
        bool keyless;
        ck_assert_int_eq(accept_at(bad, stream, T_MSG, &keyless, err, sizeof(err)), VALIDATE_TIME);
        ck_assert_msg(strncmp(err, "time: ", 6) == 0, "%s", err);
        free(bad);
        free(want);
    }
    free(stream);
    free(j);
}
END_TEST

START_TEST(max_age_margin)
{
    /* retention less one maintenance interval and one day */
    ck_assert_int_eq(validate_max_age_us(2190, 300), 2189 * DAY_US - 300 * INT64_C(1000000));
    ck_assert_int_eq(validate_max_age_us(0, 300), 0); /* no retention: no bound */
    /* a retention within the margin still bounds (nothing older than now) */
    ck_assert_int_eq(validate_max_age_us(1, 3600), 1);
    (void)HOUR_US;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("aggr_validate");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, valid_message_passes);
    tcase_add_test(tc, null_value);
    tcase_add_test(tc, oversize);
    tcase_add_test(tc, not_json);
    tcase_add_test(tc, wrong_version);
    tcase_add_test(tc, missing_field);
    tcase_add_test(tc, bad_time);
    tcase_add_test(tc, tampered_record);
    tcase_add_test(tc, classify_table);
    tcase_add_test(tc, key_must_be_the_stream);
    tcase_add_test(tc, time_window_future);
    tcase_add_test(tc, time_window_past);
    tcase_add_test(tc, year_zero_refused);
    tcase_add_test(tc, max_age_margin);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
