/* common/log: one JSON object per line; a message longer than LOG_MSG_MAX is
 * cut on a UTF-8 boundary (never inside a sequence) and marked with "…". */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "tests/support/testutil.h"

/* Log one message with stderr sent to a temp file; returns the line's
 * "msg" (heap). */
static char *logged(const char *text)
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(tmp), STDERR_FILENO), 0);
    log_msg(LOG_ERROR, "%s", text);
    ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
    close(saved);
    rewind(tmp);
    json_error_t jerr;
    json_t *o = json_loadf(tmp, 0, &jerr);
    fclose(tmp);
    ck_assert_msg(o != NULL, "not one JSON line: %s", jerr.text);
    char *msg = strdup(json_string_value(json_object_get(o, "msg")));
    json_decref(o);
    return msg;
}

/* A long message made of prefix ASCII bytes and then copies of seq: for every
 * alignment of the cut against the sequence, the line stays valid and holds
 * a prefix of the message that ends on a whole sequence, then "…". */
static void check_cut(const char *seq)
{
    size_t sl = strlen(seq);
    for (size_t prefix = 0; prefix < sl; prefix++) {
        struct buf b = BUF_INIT;
        for (size_t i = 0; i < prefix; i++)
            buf_addc(&b, 'a');
        while (b.len < 3 * LOG_MSG_MAX)
            buf_adds(&b, seq);
        char *msg = logged(b.p);
        size_t n = strlen(msg);
        ck_assert_msg(n <= LOG_MSG_MAX, "%zu bytes", n);
        ck_assert_msg(n > LOG_MSG_MAX - 8, "cut too early: %zu bytes", n);
        ck_assert_str_eq(msg + n - 3, "\xe2\x80\xa6");
        size_t kept = n - 3;
        ck_assert_int_eq(memcmp(msg, b.p, kept), 0);
        ck_assert_uint_eq((kept - prefix) % sl, 0); /* whole sequences only */
        free(msg);
        buf_release(&b);
    }
}

START_TEST(cut_on_utf8_boundary)
{
    check_cut("\xc3\xa9");         /* é, 2 bytes */
    check_cut("\xe2\x82\xac");     /* €, 3 bytes */
    check_cut("\xf0\x9f\x98\x80"); /* 😀, 4 bytes */
}
END_TEST

START_TEST(short_messages_whole)
{
    char *msg = logged("h\xc3\xa9llo");
    ck_assert_str_eq(msg, "h\xc3\xa9llo");
    free(msg);
    /* exactly LOG_MSG_MAX bytes: kept whole, no mark */
    char text[LOG_MSG_MAX + 1];
    memset(text, 'x', LOG_MSG_MAX);
    text[LOG_MSG_MAX] = '\0';
    msg = logged(text);
    ck_assert_str_eq(msg, text);
    free(msg);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, cut_on_utf8_boundary);
    tcase_add_test(tc, short_messages_whole);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(log_suite());
}
