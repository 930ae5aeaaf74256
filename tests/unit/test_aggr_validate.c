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
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
