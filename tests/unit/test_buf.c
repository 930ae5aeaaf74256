/* common/buf: appends keep a NUL after the contents, growth across many
 * doublings, formatted appends, detach and reuse after release. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "tests/support/testutil.h"

START_TEST(empty_is_a_c_string)
{
    struct buf b = BUF_INIT;
    ck_assert_str_eq(buf_cstr(&b), "");
    ck_assert_uint_eq(b.len, 0);
    buf_release(&b);
    ck_assert_ptr_null(b.p);
    buf_release(NULL);
}
END_TEST

START_TEST(appends_stay_terminated)
{
    struct buf b = BUF_INIT;
    buf_add(&b, "ab", 2);
    ck_assert_str_eq(b.p, "ab");
    buf_addc(&b, 'c');
    BUF_LIT(&b, "de");
    buf_adds(&b, "fg");
    buf_addf(&b, "%d-%s", 42, "x");
    ck_assert_str_eq(b.p, "abcdefg42-x");
    ck_assert_uint_eq(b.len, strlen("abcdefg42-x"));
    buf_add(&b, "", 0);
    ck_assert_uint_eq(b.len, 11);
    buf_reset(&b);
    ck_assert_str_eq(b.p, "");
    buf_addf(&b, "%s", "");
    ck_assert_uint_eq(b.len, 0);
    buf_release(&b);
}
END_TEST

START_TEST(binary_and_growth)
{
    struct buf b = BUF_INIT;
    for (unsigned i = 0; i < 100000; i++) {
        unsigned char c = (unsigned char)(i * 7);
        buf_add(&b, &c, 1);
    }
    ck_assert_uint_eq(b.len, 100000);
    ck_assert_uint_ge(b.cap, b.len + 1);
    for (unsigned i = 0; i < 100000; i++)
        ck_assert_uint_eq((unsigned char)b.p[i], (unsigned char)(i * 7));
    ck_assert_int_eq(b.p[b.len], '\0');
    /* one formatted append larger than the whole capacity */
    char *big = malloc(1 << 20);
    memset(big, 'q', (1 << 20) - 1);
    big[(1 << 20) - 1] = '\0';
    buf_addf(&b, "<%s>", big);
    ck_assert_uint_eq(b.len, 100000 + (1 << 20) + 1);
    ck_assert_int_eq(b.p[b.len - 1], '>');
    free(big);
    buf_release(&b);
}
END_TEST

START_TEST(detach_hands_over)
{
    struct buf b = BUF_INIT;
    size_t len = 99;
    char *e = buf_detach(&b, &len);
    ck_assert_str_eq(e, "");
    ck_assert_uint_eq(len, 0);
    free(e);
    buf_adds(&b, "hello");
    e = buf_detach(&b, &len);
    ck_assert_str_eq(e, "hello");
    ck_assert_uint_eq(len, 5);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    free(e);
    buf_adds(&b, "again");
    ck_assert_str_eq(buf_cstr(&b), "again");
    buf_release(&b);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, empty_is_a_c_string);
    tcase_add_test(tc, appends_stay_terminated);
    tcase_add_test(tc, binary_and_growth);
    tcase_add_test(tc, detach_hands_over);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(buf_suite());
}
