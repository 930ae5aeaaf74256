/* Unit tests for the json, k8s-audit and fhir parsers (agent/format_json.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/formatcheck.h"
#include "tests/support/testutil.h"

START_TEST(json_defaults_and_go_escapes)
{
    char *l = fmt_fixture_line("json.log", 0);
    struct parsed_record r;
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, l, &r), 0);
    ck_assert_int_eq(r.format, FORMAT_JSON);
    ck_assert(r.have_time);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45.123456Z"));
    ck_field(r.tenant, "clinic-a");
    ck_field(r.actor, "alice");
    ck_field(r.action, "patient.read");
    ck_field(r.resource, "/fhir/Patient/123?_elements=name&_format=json");
    ck_field(r.outcome, "success");
    ck_assert_str_eq(r.err, "");
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(json_numbers_bools_objects_and_epoch_ms)
{
    char *l = fmt_fixture_line("json.log", 1);
    struct parsed_record r;
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, l, &r), 0);
    ck_assert(r.have_time);
    ck_assert_int_eq(r.time_us, 1700000000123000LL);
    ck_field(r.tenant, "42");
    /* "user" is an object: ignored, the next default name wins. */
    ck_field(r.actor, "u-77");
    ck_field(r.action, "login");
    ck_assert_ptr_null(r.resource);
    ck_field(r.outcome, "true");
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(json_offset_time_and_alt_names)
{
    char *l = fmt_fixture_line("json.log", 2);
    struct parsed_record r;
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, l, &r), 0);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45Z"));
    ck_field(r.tenant, "clinic-b");
    ck_field(r.actor, "svc");
    ck_field(r.action, "export");
    ck_field(r.resource, "phi/2026.csv");
    ck_field(r.outcome, "403");
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(json_without_time)
{
    char *l = fmt_fixture_line("json.log", 3);
    struct parsed_record r;
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, l, &r), 0);
    ck_assert(!r.have_time);
    ck_field(r.actor, "carol");
    ck_assert_ptr_null(r.tenant);
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(json_epoch_units)
{
    struct parsed_record r;
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, "{\"ts\":1700000000}", &r), 0);
    ck_assert_int_eq(r.time_us, 1700000000000000LL);
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, "{\"ts\":1700000000.25}", &r), 0);
    ck_assert_int_eq(r.time_us, 1700000000250000LL);
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, "{\"ts\":1700000000123456}", &r), 0);
    ck_assert_int_eq(r.time_us, 1700000000123456LL);
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, "{\"ts\":1700000000123456789}", &r), 0);
    ck_assert_int_eq(r.time_us, 1700000000123457LL);
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, "{\"ts\":\"1700000000.5\"}", &r), 0);
    ck_assert_int_eq(r.time_us, 1700000000500000LL);
    /* default names: an unreadable candidate is skipped, not fatal */
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, "{\"ts\":-5,\"actor\":\"a\"}", &r), 0);
    ck_assert(!r.have_time);
    ck_field(r.actor, "a");
    parsed_record_release(&r);
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL,
                               "{\"time\":\"12ms\",\"timestamp\":\"2026-13-45T00:00:00Z\","
                               "\"@timestamp\":true,\"recorded\":\"2026-11-26T19:50:45Z\"}",
                               &r),
                     0);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45Z"));
    /* a configured time path must read as a time when present */
    struct field_map m = {.time = "when"};
    const char *bad[] = {"{\"when\":\"2026-13-45T00:00:00Z\",\"actor\":\"a\"}",
                         "{\"when\":\"yesterday\"}",
                         "{\"when\":true}",
                         "{\"when\":-5}",
                         "{\"when\":{\"s\":1}}",
                         "{\"when\":\"2026-02-30T00:00:00Z\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(fmt_parse(FORMAT_JSON, &m, bad[i], &r) == -1, "accepted %s", bad[i]);
        fmt_assert_failed(&r);
        ck_assert_ptr_nonnull(strstr(r.err, "when"));
    }
    /* null time counts as absent; the next name is used */
    ck_assert_int_eq(
        fmt_parse(FORMAT_JSON, NULL, "{\"ts\":null,\"time\":\"2026-01-01T00:00:00Z\"}", &r), 0);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-01-01T00:00:00Z"));
}
END_TEST

START_TEST(json_big_numbers_and_reals)
{
    struct parsed_record r;
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL,
                               "{\"actor\":\"a\",\"trace\":18446744073709551615,\"status\":403.0,"
                               "\"result\":1}",
                               &r),
                     0);
    ck_field(r.actor, "a");
    ck_field(r.outcome, "1"); /* "outcome" absent; "result" outranks "status" */
    parsed_record_release(&r);
    ck_assert_int_eq(
        fmt_parse(FORMAT_JSON, NULL, "{\"actor\":-18446744073709551615,\"status\":2.5}", &r), 0);
    ck_field(r.actor, "-1.84467440737096e+19");
    ck_field(r.outcome, "2.5");
    parsed_record_release(&r);
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, "{\"status\":403.0}", &r), 0);
    ck_field(r.outcome, "403");
    parsed_record_release(&r);
}
END_TEST

START_TEST(json_unicode_nul_and_crlf)
{
    struct parsed_record r;
    const char l[] = "{\"actor\":\"J\\u00f6rg \\u4e2d \\ud83d\\ude00\",\"action\":\"a\\u0000b\"}\r";
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, l, &r), 0);
    ck_field(r.actor, "J\xc3\xb6rg \xe4\xb8\xad \xf0\x9f\x98\x80");
    /* NUL inside a value must not truncate silently nor break the string */
    ck_field(r.action, "a\xef\xbf\xbd"
                       "b");
    parsed_record_release(&r);
}
END_TEST

START_TEST(json_failures)
{
    struct parsed_record r;
    const char *bad[] = {
        "",
        "not json",
        "[1,2,3]",
        "\"string\"",
        "{\"actor\":\"alice\"",           /* truncated */
        "{\"actor\":\"alice\"} trailing", /* garbage after */
        "{\"actor\":\"\xff\xfe\"}",       /* invalid UTF-8 is invalid JSON */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&r, 0x5a, sizeof(r)); /* out need not be initialised */
        ck_assert_msg(fmt_parse(FORMAT_JSON, NULL, bad[i], &r) == -1, "accepted: %s", bad[i]);
        fmt_assert_failed(&r);
        parsed_record_release(&r);
    }
}
END_TEST

START_TEST(json_field_map_paths)
{
    struct field_map m = {.time = "meta.when",
                          .tenant = "org.id",
                          .actor = "user.name",
                          .action = "ops.1.verb",
                          .resource = "x.y.z",
                          .outcome = "flags.0"};
    const char *l = "{\"meta\":{\"when\":\"2026-11-26T19:50:45Z\"},\"org\":{\"id\":7},"
                    "\"user\":{\"name\":\"dana\"},\"ops\":[{\"verb\":\"a\"},{\"verb\":\"b\"}],"
                    "\"flags\":[false],\"actor\":\"ignored\"}";
    struct parsed_record r;
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, &m, l, &r), 0);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45Z"));
    ck_field(r.tenant, "7");
    ck_field(r.actor, "dana");
    ck_field(r.action, "b");
    ck_assert_ptr_null(r.resource);
    ck_field(r.outcome, "false");
    parsed_record_release(&r);
    /* a mapped object is kept as compact JSON; unmapped objects are ignored */
    struct field_map mo = {.resource = "ops"};
    ck_assert_int_eq(
        fmt_parse(FORMAT_JSON, &mo, "{\"ops\":[{\"verb\":\"a\"},1],\"resource\":{\"x\":1}}", &r),
        0);
    ck_field(r.resource, "[{\"verb\":\"a\"},1]");
    parsed_record_release(&r);
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, NULL, "{\"resource\":{\"x\":1},\"object\":[1]}", &r),
                     0);
    ck_assert_ptr_null(r.resource);
    parsed_record_release(&r);
    /* an override time path that is absent: no time, not an error, for json */
    ck_assert_int_eq(fmt_parse(FORMAT_JSON, &m, "{\"ts\":\"2026-11-26T19:50:45Z\"}", &r), 0);
    ck_assert(!r.have_time);
    parsed_record_release(&r);
}
END_TEST

START_TEST(k8s_fixture_lines)
{
    struct parsed_record r;
    char *l = fmt_fixture_line("k8s-audit.log", 0);
    ck_assert_int_eq(fmt_parse(FORMAT_K8S_AUDIT, NULL, l, &r), 0);
    ck_assert_int_eq(r.format, FORMAT_K8S_AUDIT);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45.121904Z"));
    ck_field(r.tenant, "clinic-a");
    ck_field(r.actor, "system:serviceaccount:clinic-a:ehr-api");
    ck_field(r.action, "get");
    ck_field(r.resource, "secrets/clinic-a/db-creds");
    ck_field(r.outcome, "200");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("k8s-audit.log", 1);
    ck_assert_int_eq(fmt_parse(FORMAT_K8S_AUDIT, NULL, l, &r), 0);
    ck_field(r.actor, "alice@hospital.example");
    ck_field(r.action, "patch");
    ck_field(r.resource, "deployments.apps/clinic-b/fhir-gw/scale");
    ck_field(r.outcome, "403");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("k8s-audit.log", 2); /* cluster-scoped */
    ck_assert_int_eq(fmt_parse(FORMAT_K8S_AUDIT, NULL, l, &r), 0);
    ck_field(r.resource, "nodes//worker-3");
    ck_assert_ptr_null(r.tenant);
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("k8s-audit.log", 3); /* non-resource URL */
    ck_assert_int_eq(fmt_parse(FORMAT_K8S_AUDIT, NULL, l, &r), 0);
    ck_field(r.resource, "/healthz");
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(k8s_time_fallback_and_failures)
{
    struct parsed_record r;
    ck_assert_int_eq(
        fmt_parse(FORMAT_K8S_AUDIT, NULL,
                  "{\"verb\":\"list\",\"requestReceivedTimestamp\":\"2026-11-26T19:50:45Z\"}", &r),
        0);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45Z"));
    ck_field(r.action, "list");
    parsed_record_release(&r);

    ck_assert_int_eq(fmt_parse(FORMAT_K8S_AUDIT, NULL, "{\"verb\":\"list\"}", &r), -1);
    fmt_assert_failed(&r);
    ck_assert_int_eq(fmt_parse(FORMAT_K8S_AUDIT, NULL, "{\"stageTimestamp\":\"soon\"}", &r), -1);
    fmt_assert_failed(&r);
    ck_assert_int_eq(
        fmt_parse(FORMAT_K8S_AUDIT, NULL, "{\"stageTimestamp\":\"2026-11-26T19:50:45Z\"", &r), -1);
    fmt_assert_failed(&r);

    struct field_map m = {.actor = "user.groups.0", .tenant = "annotations.team"};
    char *l = fmt_fixture_line("k8s-audit.log", 0);
    ck_assert_int_eq(fmt_parse(FORMAT_K8S_AUDIT, &m, l, &r), 0);
    ck_field(r.actor, "system:serviceaccounts");
    ck_assert_ptr_null(r.tenant);
    ck_field(r.action, "get");
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(fhir_fixture_lines)
{
    struct parsed_record r;
    char *l = fmt_fixture_line("fhir.log", 0);
    ck_assert_int_eq(fmt_parse(FORMAT_FHIR, NULL, l, &r), 0);
    ck_assert_int_eq(r.format, FORMAT_FHIR);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45Z")); /* +01:00 offset */
    ck_field(r.tenant, "clinic-a");
    ck_field(r.actor, "npi-1234567890");
    ck_field(r.action, "R");
    ck_field(r.resource, "Patient/example-123");
    ck_field(r.outcome, "0");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("fhir.log", 1);
    ck_assert_int_eq(fmt_parse(FORMAT_FHIR, NULL, l, &r), 0);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-27T00:55:00.250Z"));
    ck_field(r.tenant, "Organization/clinic-c");
    ck_field(r.actor, "Practitioner/dr-evans");
    ck_field(r.action, "110114");
    ck_assert_ptr_null(r.resource);
    ck_field(r.outcome, "4");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("fhir.log", 2);
    ck_assert_int_eq(fmt_parse(FORMAT_FHIR, NULL, l, &r), 0);
    ck_field(r.actor, "Export job <nightly>");
    ck_field(r.action, "E");
    ck_field(r.resource, "Group/cohort-7/$export");
    ck_field(r.outcome, "export started");
    ck_field(r.tenant, "batch");
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(fhir_failures_and_map)
{
    struct parsed_record r;
    ck_assert_int_eq(
        fmt_parse(FORMAT_FHIR, NULL, "{\"resourceType\":\"AuditEvent\",\"action\":\"R\"}", &r), -1);
    fmt_assert_failed(&r);
    ck_assert_int_eq(
        fmt_parse(FORMAT_FHIR, NULL,
                  "{\"resourceType\":\"Patient\",\"recorded\":\"2026-11-26T19:50:45Z\"}", &r),
        -1);
    fmt_assert_failed(&r);
    ck_assert_int_eq(
        fmt_parse(FORMAT_FHIR, NULL,
                  "{\"resourceType\":\"AuditEvent\",\"recorded\":\"2026-11-26T25:00:00+01:00\"}",
                  &r),
        -1);
    fmt_assert_failed(&r);

    struct field_map m = {.actor = "agent.0.who.display", .resource = "entity.0.type.code"};
    char *l = fmt_fixture_line("fhir.log", 0);
    ck_assert_int_eq(fmt_parse(FORMAT_FHIR, &m, l, &r), 0);
    ck_field(r.actor, "Dr. Carol Diaz");
    ck_field(r.resource, "1");
    parsed_record_release(&r);
    free(l);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("format_json");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, json_defaults_and_go_escapes);
    tcase_add_test(tc, json_numbers_bools_objects_and_epoch_ms);
    tcase_add_test(tc, json_offset_time_and_alt_names);
    tcase_add_test(tc, json_without_time);
    tcase_add_test(tc, json_epoch_units);
    tcase_add_test(tc, json_big_numbers_and_reals);
    tcase_add_test(tc, json_unicode_nul_and_crlf);
    tcase_add_test(tc, json_failures);
    tcase_add_test(tc, json_field_map_paths);
    tcase_add_test(tc, k8s_fixture_lines);
    tcase_add_test(tc, k8s_time_fallback_and_failures);
    tcase_add_test(tc, fhir_fixture_lines);
    tcase_add_test(tc, fhir_failures_and_map);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
