/* common/redact: URLs and libpq connection strings lose every secret (user
 * info, secret parameters, quoted and escaped values) and keep the rest. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/redact.h"
#include "tests/support/testutil.h"

struct pair {
    const char *in, *want;
};

START_TEST(urls)
{
    static const struct pair cases[] = {
        {"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
        {"redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"},
        {"redis://default:s3cret@redis:6379", "redis://default:***@redis:6379"},
        /* a lone user info may be a token */
        {"https://ghp_tok3n@am.example/api", "https://***@am.example/api"},
        /* a password with raw '/', '?' and '@' is still covered */
        {"redis://u:a/b?c@d@host:1/2", "redis://u:***@host:1/2"},
        {"http://am/api?token=s3cret#frag", "http://am/api?token=***#frag"},
        {"http://am/api?a=1&api_key=K&X-Amz-Signature=S;sig=T&b=2",
         "http://am/api?a=1&api_key=***&X-Amz-Signature=***;sig=***&b=2"},
        {"http://am/cb#access_token=T&state=x", "http://am/cb#access_token=***&state=x"},
        {"http://am/api?Pass%77ord=p", "http://am/api?Pass%77ord=***"},
        {"http://am/api?flag&password", "http://am/api?flag&password"},
        {"host:6379", "host:6379"},
        {"", ""},
        /* an '@' in a path costs the path, never the password */
        {"http://am/a@b", "http://***@b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = redact_url_dup(cases[i].in);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "%s -> %s, want %s", cases[i].in, got,
                      cases[i].want);
        free(got);
    }
}
END_TEST

START_TEST(conninfo_keyvalue)
{
    static const struct pair cases[] = {
        {"host=db port=5432 dbname=audit user=app", "host=db port=5432 dbname=audit user=app"},
        {"host=db password=s3cret dbname=audit", "host=db password=*** dbname=audit"},
        {"password = 's3 cr\\'et' host=db", "password = *** host=db"},
        {"host=db sslpassword=k3y sslmode=require", "host=db sslpassword=*** sslmode=require"},
        {"host=db PASSWORD=s3cret", "host=db PASSWORD=***"},
        {"password=s3\\ cret host=db", "password=*** host=db"},
        /* libpq reads "password= host=x" as password "host=x" */
        {"password= host=x dbname=d", "password= *** dbname=d"},
        {"  host=db\tpassword=p\n", "  host=db\tpassword=***\n"},
        /* not parseable: masked from the point of failure */
        {"host=db password='s3cret", "host=db ***"},
        {"host=db s3cret", "host=db ***"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = redact_conninfo_dup(cases[i].in);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "%s -> %s, want %s", cases[i].in, got,
                      cases[i].want);
        free(got);
    }
}
END_TEST

START_TEST(conninfo_uri)
{
    static const struct pair cases[] = {
        {"postgresql://app@db:5432/audit", "postgresql://app@db:5432/audit"},
        {"postgresql://app:s3cret@db:5432/audit", "postgresql://app:***@db:5432/audit"},
        {"postgres://app:s3cret@h1:5432,h2:5433/audit?sslmode=require&sslpassword=k",
         "postgres://app:***@h1:5432,h2:5433/audit?sslmode=require&sslpassword=***"},
        {"postgresql:///audit?host=/run/pg&password=s3cret",
         "postgresql:///audit?host=/run/pg&password=***"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = redact_conninfo_dup(cases[i].in);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "%s -> %s, want %s", cases[i].in, got,
                      cases[i].want);
        free(got);
    }
}
END_TEST

START_TEST(secret_names)
{
    static const char *const yes[] = {"password", "sslpassword",  "PassWord", "pwd",
                                      "api_key",  "apikey",       "key",      "X-Amz-Credential",
                                      "sig",      "client_secret"};
    static const char *const no[] = {"host", "dbname",     "user", "sslmode",
                                     "port", "keepalives", "db"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(redact_is_secret_name(yes[i], strlen(yes[i])), "%s", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!redact_is_secret_name(no[i], strlen(no[i])), "%s", no[i]);
    /* a name too long to inspect is a secret */
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    ck_assert(redact_is_secret_name(longname, sizeof(longname)));
}
END_TEST

/* Like snprintf: the full length is returned, a prefix written, and a cut
 * output never shows what the full one masks. */
START_TEST(cut_output)
{
    const char *in = "host=db password=s3cret dbname=audit";
    size_t full = redact_conninfo(in, NULL, 0);
    ck_assert_uint_eq(full, strlen("host=db password=*** dbname=audit"));
    for (size_t len = 1; len <= full + 1; len++) {
        char out[64];
        memset(out, 'Z', sizeof(out));
        ck_assert_uint_eq(redact_conninfo(in, out, len), full);
        ck_assert_uint_eq(strlen(out), len - 1 < full ? len - 1 : full);
        ck_assert_ptr_null(strstr(out, "s3"));
    }
    char small[8];
    ck_assert_uint_eq(redact_url("redis://:pw@h", small, sizeof(small)), strlen("redis://:***@h"));
    ck_assert_str_eq(small, "redis:/");
}
END_TEST

static Suite *redact_suite(void)
{
    Suite *s = suite_create("redact");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, urls);
    tcase_add_test(tc, conninfo_keyvalue);
    tcase_add_test(tc, conninfo_uri);
    tcase_add_test(tc, secret_names);
    tcase_add_test(tc, cut_output);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(redact_suite());
}
