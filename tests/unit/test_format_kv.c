/* Unit tests for the kv and auditd parsers (agent/format_kv.c,
 * agent/format_auditd.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/formatcheck.h"
#include "tests/support/testutil.h"

START_TEST(kv_fixture_lines)
{
    struct parsed_record r;
    char *l = fmt_fixture_line("kv.log", 0);
    ck_assert_int_eq(fmt_parse(FORMAT_KV, NULL, l, &r), 0);
    ck_assert_int_eq(r.format, FORMAT_KV);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45.123Z"));
    ck_field(r.tenant, "clinic-a");
    ck_field(r.actor, "alice");
    ck_field(r.action, "patient.read");
    ck_field(r.resource, "Patient/123");
    ck_field(r.outcome, "success");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("kv.log", 1); /* space-separated date, quotes, commas */
    ck_assert_int_eq(fmt_parse(FORMAT_KV, NULL, l, &r), 0);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:46.5Z"));
    ck_field(r.actor, "Dr. Bob O'Neil");
    ck_field(r.resource, "reports/q3, final.pdf");
    ck_field(r.outcome, "failed");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("kv.log", 2); /* offset, alternative names */
    ck_assert_int_eq(fmt_parse(FORMAT_KV, NULL, l, &r), 0);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:47Z"));
    ck_field(r.tenant, "42");
    ck_field(r.actor, "svc-batch");
    ck_field(r.action, "phi.export");
    ck_field(r.resource, "s3://phi-bucket/2026/11/26");
    ck_field(r.outcome, "ok");
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(kv_escapes_priority_commas_crlf)
{
    struct parsed_record r;
    ck_assert_int_eq(
        fmt_parse(FORMAT_KV, NULL,
                  "user=low actor=\"a \\\"quoted\\\" \\\\ name\",action=x, resource=r1,"
                  "outcome=\"\" junk words\r",
                  &r),
        0);
    ck_assert(!r.have_time);
    ck_field(r.actor, "a \"quoted\" \\ name"); /* actor outranks user */
    ck_field(r.action, "x");
    ck_field(r.resource, "r1");
    ck_field(r.outcome, "");
    ck_assert_ptr_null(r.tenant);
    parsed_record_release(&r);

    /* unterminated quote: value runs to the end; invalid UTF-8 replaced */
    ck_assert_int_eq(fmt_parse(FORMAT_KV, NULL, "actor=\"bad \xff\xc3 end", &r), 0);
    ck_field(r.actor, "bad \xef\xbf\xbd\xef\xbf\xbd end");
    parsed_record_release(&r);

    /* first occurrence of the same key wins */
    ck_assert_int_eq(fmt_parse(FORMAT_KV, NULL, "actor=a actor=b", &r), 0);
    ck_field(r.actor, "a");
    parsed_record_release(&r);
}
END_TEST

START_TEST(kv_failures)
{
    struct parsed_record r;
    const char *bad[] = {
        "",
        "just some words",
        "2026-11-26T19:50:45Z",         /* time but no pairs */
        "2026-13-01T00:00:00Z actor=a", /* bad month */
        "2026-11-26 25:00:00 actor=a",  /* bad hour */
        "20261126 actor=a",             /* digits but not a timestamp */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&r, 0x5a, sizeof(r));
        ck_assert_msg(fmt_parse(FORMAT_KV, NULL, bad[i], &r) == -1, "accepted: %s", bad[i]);
        fmt_assert_failed(&r);
        parsed_record_release(&r);
    }
}
END_TEST

START_TEST(kv_field_map)
{
    struct field_map m = {.time = "when", .actor = "who", .tenant = "site"};
    struct parsed_record r;
    ck_assert_int_eq(fmt_parse(FORMAT_KV, &m,
                               "who=erin actor=ignored site=s1 when=\"2026-11-26T19:50:45Z\"", &r),
                     0);
    ck_field(r.actor, "erin");
    ck_field(r.tenant, "s1");
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45Z"));
    parsed_record_release(&r);
    ck_assert_int_eq(fmt_parse(FORMAT_KV, &m, "who=erin when=1700000000.5", &r), 0);
    ck_assert_int_eq(r.time_us, 1700000000500000LL);
    parsed_record_release(&r);
    ck_assert_int_eq(fmt_parse(FORMAT_KV, &m, "who=erin when=later", &r), -1);
    fmt_assert_failed(&r);
}
END_TEST

START_TEST(auditd_syscall_enriched)
{
    struct parsed_record r;
    char *l = fmt_fixture_line("auditd.log", 0);
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, NULL, l, &r), 0);
    ck_assert_int_eq(r.format, FORMAT_AUDITD);
    ck_assert(r.have_time);
    ck_assert_int_eq(r.time_us, 1700000000123000LL);
    ck_field(r.actor, "alice"); /* AUID= beats auid=1000 */
    ck_field(r.action, "SYSCALL:openat");
    ck_field(r.resource, "/usr/bin/cat");
    ck_field(r.outcome, "yes");
    ck_assert_ptr_null(r.tenant);
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(auditd_path_proctitle_user_records)
{
    struct parsed_record r;
    char *l = fmt_fixture_line("auditd.log", 1);
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, NULL, l, &r), 0);
    ck_field(r.action, "PATH");
    ck_field(r.resource, "/srv/ehr/exports/patients.csv");
    ck_assert_ptr_null(r.actor);
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("auditd.log", 2); /* hex proctitle with NUL separators */
    struct field_map m = {.resource = "proctitle"};
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, &m, l, &r), 0);
    ck_field(r.resource, "cat /srv/ehr/exports/patients.csv");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("auditd.log", 3); /* node= prefix, msg='...', unset AUID */
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, NULL, l, &r), 0);
    ck_assert_int_eq(r.time_us, 1700000100500000LL);
    ck_field(r.actor, "bob"); /* AUID/auid unset -> acct */
    ck_field(r.action, "USER_LOGIN:login");
    ck_field(r.resource, "/usr/sbin/sshd");
    ck_field(r.outcome, "failed");
    parsed_record_release(&r);
    struct field_map mt = {.tenant = "node"};
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, &mt, l, &r), 0);
    ck_field(r.tenant, "db-01.clinic.example");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("auditd.log", 4); /* hex cmd inside msg='...' */
    struct field_map mc = {.resource = "cmd"};
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, &mc, l, &r), 0);
    ck_field(r.resource, "systemctl restart postgresql");
    ck_field(r.actor, "1000");
    ck_field(r.outcome, "success");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("auditd.log", 5); /* quoted values with spaces */
    struct field_map ma = {.resource = "a2"};
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, &ma, l, &r), 0);
    ck_field(r.resource, "select * from patients");
    ck_field(r.action, "EXECVE");
    parsed_record_release(&r);
    free(l);

    l = fmt_fixture_line("auditd.log", 6); /* the same argument hex-encoded, as auditd writes it */
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, &ma, l, &r), 0);
    ck_field(r.resource, "select * from patients");
    parsed_record_release(&r);
    free(l);
}
END_TEST

START_TEST(auditd_hex_rules)
{
    struct parsed_record r;
    struct field_map m = {.resource = "name", .actor = "pid", .outcome = "a2"};
    /* non-printable decoded bytes keep the hex; non-hex keys are never decoded */
    ck_assert_int_eq(
        fmt_parse(FORMAT_AUDITD, &m, "type=PATH msg=audit(1.0:1): name=0102 pid=6869 a2=6869", &r),
        0);
    ck_field(r.resource, "0102");
    ck_field(r.actor, "6869");
    ck_field(r.outcome, "hi"); /* EXECVE argument */
    parsed_record_release(&r);
    /* SYSCALL register a0=ffffff9c decodes to unprintable bytes: kept */
    struct field_map ma = {.resource = "a0", .outcome = "a1[0]", .actor = "ab"};
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, &ma,
                               "type=EXECVE msg=audit(1.0:1): a0=ffffff9c a1[0]=2D63 ab=6869", &r),
                     0);
    ck_field(r.resource, "ffffff9c");
    ck_field(r.outcome, "-c");
    ck_field(r.actor, "6869");
    parsed_record_release(&r);
    /* odd length or non-hex: kept as is; quoted: never decoded */
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, &m, "type=PATH msg=audit(1.0:1): name=abc", &r), 0);
    ck_field(r.resource, "abc");
    parsed_record_release(&r);
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, &m, "type=PATH msg=audit(1.0:1): name=\"6869\"", &r),
                     0);
    ck_field(r.resource, "6869");
    parsed_record_release(&r);
    ck_assert_int_eq(fmt_parse(FORMAT_AUDITD, &m, "type=PATH msg=audit(1.0:1): name=6869\r", &r),
                     0);
    ck_field(r.resource, "hi");
    parsed_record_release(&r);
}
END_TEST

START_TEST(auditd_failures)
{
    struct parsed_record r;
    const char *bad[] = {
        "",
        "msg=audit(1700000000.123:1): pid=1",
        "node=x",
        "node=x msg=audit(1.1:1): type=SYSCALL",
        "type=SYSCALL pid=1",
        "type=SYSCALL msg=audit(1700000000:1): pid=1",   /* no .ms */
        "type=SYSCALL msg=audit(1700000000.123): pid=1", /* no serial */
        "type=SYSCALL msg=audit(1700000000.123:1 pid=1", /* unterminated */
        "type=SYSCALL msg=audit(abc.123:1): pid=1",
        "type= msg=audit(1700000000.123:1): pid=1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&r, 0x5a, sizeof(r));
        ck_assert_msg(fmt_parse(FORMAT_AUDITD, NULL, bad[i], &r) == -1, "accepted: %s", bad[i]);
        fmt_assert_failed(&r);
        parsed_record_release(&r);
    }
}
END_TEST

START_TEST(auditd_time_override)
{
    struct parsed_record r;
    struct field_map m = {.time = "when"};
    ck_assert_int_eq(
        fmt_parse(FORMAT_AUDITD, &m,
                  "type=USER_CMD msg=audit(1700000000.000:1): when=\"2026-11-26T19:50:45Z\"", &r),
        0);
    ck_assert_int_eq(r.time_us, fmt_ts("2026-11-26T19:50:45Z"));
    parsed_record_release(&r);
    /* absent: the header time stays */
    ck_assert_int_eq(
        fmt_parse(FORMAT_AUDITD, &m, "type=USER_CMD msg=audit(1700000000.250:1): x=1", &r), 0);
    ck_assert_int_eq(r.time_us, 1700000000250000LL);
    parsed_record_release(&r);
    ck_assert_int_eq(
        fmt_parse(FORMAT_AUDITD, &m, "type=USER_CMD msg=audit(1700000000.250:1): when=no", &r), -1);
    fmt_assert_failed(&r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("format_kv");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, kv_fixture_lines);
    tcase_add_test(tc, kv_escapes_priority_commas_crlf);
    tcase_add_test(tc, kv_failures);
    tcase_add_test(tc, kv_field_map);
    tcase_add_test(tc, auditd_syscall_enriched);
    tcase_add_test(tc, auditd_path_proctitle_user_records);
    tcase_add_test(tc, auditd_hex_rules);
    tcase_add_test(tc, auditd_failures);
    tcase_add_test(tc, auditd_time_override);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
