/* The string escaping of common/jsonw.c as built without SSE2 (the path of
 * targets that lack it; x86-64 always takes the SSE2 one, which
 * test_envelope compares with jansson through whole envelopes): this file
 * compiles jsonw.c itself with JSONW_PORTABLE and compares jsonw_str with
 * jansson's json_dumps, byte for byte, over strings dense in quotes,
 * backslashes, control bytes and UTF-8 at every length around the word
 * size. The archive's jsonw.o is not linked: every symbol it defines is
 * defined here first. */
#define JSONW_PORTABLE 1
#include "common/jsonw.c"

#include <jansson.h>
#include <stdlib.h>

#include "tests/support/testutil.h"

static uint32_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*x >> 33);
}

/* jsonw_str of s equals json_dumps of the same string (a JSON array of it,
 * without the brackets), or both refuse it (invalid UTF-8). */
static void assert_as_jansson(const uint8_t *s, size_t n)
{
    struct buf b = BUF_INIT;
    BUF_LIT(&b, "x"); /* a string written after other text */
    bool ok = jsonw_str(&b, s, n);
    json_t *str = json_stringn((const char *)s, n);
    ck_assert_msg(ok == (str != NULL), "length %zu: jsonw_str %s, jansson %s", n,
                  ok ? "accepts" : "refuses", str ? "accepts" : "refuses");
    if (str) {
        json_t *arr = json_array();
        json_array_append_new(arr, str);
        char *want = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY);
        ck_assert_ptr_nonnull(want);
        size_t wl = strlen(want) - 2; /* without [ and ] */
        ck_assert_msg(b.len == 1 + wl && memcmp(b.p + 1, want + 1, wl) == 0,
                      "length %zu:\n got  %s\n want %.*s", n, b.p + 1, (int)wl, want + 1);
        ck_assert_int_eq(b.p[b.len], '\0');
        free(want);
        json_decref(arr);
    } else {
        ck_assert_uint_eq(b.len, 1); /* nothing written */
        ck_assert_int_eq(b.p[b.len], '\0');
    }
    buf_release(&b);
}

START_TEST(portable_escaping_matches_jansson)
{
    static const uint8_t alphabet[] = {'a',  '"',  '\\', 0,    1,    0x1f, 0x7f, '\n', '\r',
                                       '\t', '\b', '\f', '/',  0xc3, 0xa9, 0xe2, 0x82, 0xac,
                                       0xf0, 0x9f, 0x98, 0x80, 0xff, 'z',  ' ',  '{',  ':'};
    uint64_t x = 5;
    for (unsigned round = 0; round < 20000; round++) {
        size_t n = round < 200 ? round % 40 : lcg(&x) % 120;
        uint8_t s[128];
        unsigned style = round % 4;
        for (size_t i = 0; i < n; i++) {
            if (style == 0) /* plain text with a quote now and then */
                s[i] = lcg(&x) % 7 ? (uint8_t)('a' + lcg(&x) % 26) : '"';
            else if (style == 1) /* valid UTF-8 only: é and € among ASCII */
                s[i] = (uint8_t)('a' + lcg(&x) % 26);
            else
                s[i] = alphabet[lcg(&x) % sizeof(alphabet)];
        }
        if (style == 1 && n >= 5) {
            size_t at = lcg(&x) % (n - 4);
            memcpy(s + at, "\xc3\xa9\xe2\x82\xac", 5);
        }
        assert_as_jansson(s, n);
    }
}
END_TEST

START_TEST(portable_escaping_long_runs)
{
    /* Quote-dense JSON, a run without specials, and every byte value. */
    uint8_t s[1024];
    for (size_t i = 0; i < sizeof(s); i++)
        s[i] = "{\"k\":\"v\",\"a\\b\":1}"[i % 17];
    for (size_t n = 0; n <= sizeof(s); n += 7)
        assert_as_jansson(s, n);
    memset(s, 'q', sizeof(s));
    assert_as_jansson(s, sizeof(s));
    for (unsigned c = 0; c < 0x80; c++) {
        memset(s, 'a', 40);
        for (size_t at = 0; at < 20; at++) {
            s[at] = (uint8_t)c;
            assert_as_jansson(s, 40);
            s[at] = 'a';
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jsonw_portable");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, portable_escaping_matches_jansson);
    tcase_add_test(tc, portable_escaping_long_runs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
