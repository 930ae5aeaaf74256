/* What the CLI prints: hostile record content escaped (no control reaches
 * the terminal), cells cut on character boundaries with an ellipsis and
 * aligned in columns, the tables of events, streams and incidents, one
 * stream's details, and the exact bytes of array elements for NDJSON. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_json.h"
#include "cli/cli_table.h"
#include "cli/cli_text.h"
#include "tests/support/testutil.h"

static char *escaped(const char *s, size_t n)
{
    struct buf b = BUF_INIT;
    cli_text_escape(&b, s, n);
    return buf_detach(&b, NULL);
}

static void want_escape(const char *in, size_t n, const char *want)
{
    char *got = escaped(in, n);
    ck_assert_msg(strcmp(got, want) == 0, "escape: got '%s', wanted '%s'", got, want);
    free(got);
}

/* No byte that a terminal acts on: C0 controls (but the newlines that end
 * rows), DEL, and C1 in UTF-8. */
static void assert_inert(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        ck_assert_msg((*p >= 0x20 || *p == '\n') && *p != 0x7f, "control byte 0x%02x in '%s'", *p,
                      s);
        ck_assert_msg(!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f), "C1 control in '%s'", s);
    }
}

START_TEST(escape_controls_and_invisible_characters)
{
    want_escape("plain text", 10, "plain text");
    want_escape("a\\b", 3, "a\\\\b"); /* so "\x1b" in the output can only be an escape */
    want_escape("\x1b[2J\x1b[H", 7, "\\x1b[2J\\x1b[H");
    want_escape("l1\nl2\r\tz", 8, "l1\\nl2\\r\\tz");
    want_escape("bell\x07 del\x7f", 10, "bell\\x07 del\\x7f");
    want_escape("nul\0x", 5, "nul\\x00x");
    /* C1: CSI (U+009B) moves cursors on terminals that read it in UTF-8 */
    want_escape("\xc2\x9b"
                "31m",
                5, "\\u009b31m");
    /* bidi override (Trojan Source), zero-width space, BOM, tag characters */
    want_escape("admin\xe2\x80\xae"
                "txt.exe",
                15, "admin\\u202etxt.exe");
    want_escape("a\xe2\x80\x8b"
                "b",
                5, "a\\u200bb");
    want_escape("\xef\xbb\xbfx", 4, "\\ufeffx");
    want_escape("\xf3\xa0\x80\x81", 4, "\\U000e0001");
    /* bytes that are not UTF-8, one by one; a cut sequence too */
    want_escape("\xff\xfe"
                "A",
                3, "\\xff\\xfeA");
    want_escape("ok\xe2\x82", 4, "ok\\xe2\\x82");
    want_escape("\xc0\xaf", 2, "\\xc0\\xaf"); /* overlong '/' */
    /* printable Unicode stays as it is */
    want_escape("J\xc3\xb6rg \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", 17,
                "J\xc3\xb6rg \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
    /* every byte value, alone: the output is inert */
    for (int c = 0; c < 256; c++) {
        char in[1] = {(char)c};
        char *got = escaped(in, 1);
        assert_inert(got);
        free(got);
    }
}
END_TEST

static char *cell(const char *s, size_t width, bool pad)
{
    struct buf b = BUF_INIT;
    cli_text_cell(&b, s, strlen(s), width, pad);
    return buf_detach(&b, NULL);
}

static void want_cell(const char *s, size_t width, bool pad, const char *want)
{
    char *got = cell(s, width, pad);
    ck_assert_msg(strcmp(got, want) == 0, "cell('%s', %zu): got '%s', wanted '%s'", s, width, got,
                  want);
    free(got);
}

START_TEST(cells_cut_and_padded_in_columns)
{
    ck_assert_uint_eq(cli_text_width("abc", 3), 3);
    ck_assert_uint_eq(cli_text_width("\x1b", 1), 4);         /* \x1b */
    ck_assert_uint_eq(cli_text_width("\xe6\x97\xa5", 3), 2); /* wide */
    ck_assert_uint_eq(cli_text_width("e\xcc\x81", 3), 1);    /* e + combining acute */
    ck_assert_uint_eq(cli_text_width("\xc3\xa9", 2), 1);     /* precomposed */
    want_cell("abc", 5, true, "abc  ");
    want_cell("abc", 5, false, "abc");
    want_cell("abcde", 5, true, "abcde");
    want_cell("abcdef", 5, true, "abcd\xe2\x80\xa6");
    want_cell("abcdef", 0, true, "abcdef"); /* 0: never cut */
    /* cut between characters, never inside one */
    want_cell("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 4, true,
              "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x80\xa6");
    /* a wide character that does not fit leaves a space */
    want_cell("a\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5", 5, true, "a\xe6\x97\xa5\xe2\x80\xa6 ");
    /* never inside an escape: "\x1b" is taken whole or not at all */
    want_cell("ab\x1b[31mred", 6, true, "ab\xe2\x80\xa6   ");
    want_cell("ab\x1b[31mred", 7, true, "ab\\x1b\xe2\x80\xa6");
    /* widths hold whatever the content: every single-byte value repeated,
     * one width (the output is ASCII escapes and the one-column ellipsis) */
    for (int c = 1; c < 256; c++) {
        char in[8];
        memset(in, c, 7);
        in[7] = '\0';
        char *got = cell(in, 10, true);
        assert_inert(got);
        size_t cols = strlen(got);
        for (const char *e = got; (e = strstr(e, "\xe2\x80\xa6")) != NULL; e += 3)
            cols -= 2;
        ck_assert_msg(cols == 10, "0x%02x: '%s' is %zu columns", c, got, cols);
        free(got);
    }
}
END_TEST

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &e);
    ck_assert_msg(j != NULL, "%s: %s", text, e.text);
    return j;
}

static char *row(enum cli_table_kind k, const char *json)
{
    json_t *j = load(json);
    struct buf b = BUF_INIT;
    cli_table_row(&b, k, j);
    json_decref(j);
    return buf_detach(&b, NULL);
}

START_TEST(event_table)
{
    struct buf b = BUF_INIT;
    cli_table_header(&b, CLI_TABLE_EVENTS);
    ck_assert_str_eq(buf_cstr(&b), "TIME                         TENANT          ACTOR          "
                                   "       ACTION            RESOURCE                  OUTCOME    "
                                   "STREAM:SEQ\n");
    size_t header_len = b.len;
    buf_release(&b);
    char *r = row(CLI_TABLE_EVENTS,
                  "{\"time\":\"2026-11-26T19:50:45.123456Z\",\"tenant\":\"A\",\"actor\":\"alice\","
                  "\"action\":\"read\",\"resource\":\"Patient/1\",\"outcome\":\"success\","
                  "\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":41}");
    ck_assert_str_eq(r, "2026-11-26T19:50:45.123456Z  A               alice                 read   "
                        "           Patient/1                 success    "
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:41\n");
    ck_assert_uint_eq(strlen(r), header_len + 32 + 3 - strlen("STREAM:SEQ"));
    free(r);
    /* nulls as "-", long values cut, a hostile actor escaped, and the
     * columns still where the header says */
    r = row(CLI_TABLE_EVENTS,
            "{\"time\":\"2026-11-26T19:50:45.123456Z\",\"tenant\":null,"
            "\"actor\":\"\\u001b]0;owned\\u0007\\u001b[2J\\u009b1;1H evil\","
            "\"action\":\"a-very-long-action-name\",\"resource\":\"Patient/\\u202e1\","
            "\"stream\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",\"seq\":7}");
    assert_inert(r);
    ck_assert_str_eq(
        r, "2026-11-26T19:50:45.123456Z  -               \\x1b]0;owned\\x07\xe2\x80\xa6     "
           "a-very-long-act\xe2\x80\xa6  Patient/\\u202e1           -          "
           "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:7\n");
    free(r);
    /* a line with NUL and newlines is never shown in the table at all */
    r = row(CLI_TABLE_EVENTS, "{\"line\":\"x\\u0000\\n\\u001b[A\",\"seq\":1}");
    ck_assert_ptr_null(strstr(r, "\\x00"));
    assert_inert(r);
    free(r);
}
END_TEST

START_TEST(stream_and_incident_tables)
{
    char *r = row(CLI_TABLE_STREAMS,
                  "{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"last_seq\":101,"
                  "\"last_seen\":\"2026-11-26T19:50:45.123456Z\",\"source\":{\"name\":\"ns/a\\n\"},"
                  "\"gaps\":1,\"chain_breaks\":0,\"forks\":2,\"rows\":null}");
    ck_assert_str_eq(r,
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa  101         2026-11-26T19:50:45.123456Z  "
                     "1      0       2      -           ns/a\\n\n");
    free(r);
    r = row(CLI_TABLE_INCIDENTS,
            "{\"detected_at\":\"2026-11-26T19:50:45.123456Z\",\"kind\":\"fork\","
            "\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":3,\"expected\":\"aa\","
            "\"actual\":\"bb\",\"evidence\":{\"k\":\"\\u001b\"}}");
    ck_assert_str_eq(r, "2026-11-26T19:50:45.123456Z  fork         "
                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:3            aa                bb       "
                        "         {\"k\":\"\\\\u001B\"}\n");
    assert_inert(r);
    free(r);
}
END_TEST

START_TEST(stream_details)
{
    json_t *j =
        load("{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"last_seq\":101,\"last_hash\":\"ff\","
             "\"first_seen\":\"t1\",\"last_seen\":\"t2\",\"source\":{\"name\":\"ns/app\","
             "\"pod\":\"p\\u001b[K\"},\"gaps\":1,\"chain_breaks\":0,\"forks\":0,\"rows\":27,"
             "\"incidents\":[{\"detected_at\":\"t3\",\"kind\":\"gap\",\"stream\":"
             "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":26,\"expected\":\"26\","
             "\"actual\":\"100\",\"evidence\":null}]}");
    struct buf b = BUF_INIT;
    cli_table_stream(&b, j);
    json_decref(j);
    assert_inert(buf_cstr(&b));
    ck_assert_str_eq(
        buf_cstr(&b),
        "stream        aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
        "source.name   ns/app\n"
        "source.pod    p\\x1b[K\n"
        "last seq      101\n"
        "last hash     ff\n"
        "first seen    t1\n"
        "last seen     t2\n"
        "rows          27\n"
        "gaps          1\n"
        "chain breaks  0\n"
        "forks         0\n"
        "\n"
        "1 incident:\n"
        "DETECTED_AT                  KIND         STREAM:SEQ                           "
        "         EXPECTED          ACTUAL            EVIDENCE\n"
        "t3                           gap          aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:26  "
        "         26                100               -\n");
    buf_release(&b);
    j = load("{\"id\":\"x\",\"incidents\":[]}");
    cli_table_stream(&b, j);
    json_decref(j);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&b), "\n0 incidents\n"));
    buf_release(&b);
}
END_TEST

struct items {
    struct buf all;
    int n;
};

static void take_item(void *ud, const char *p, size_t n)
{
    struct items *it = ud;
    buf_add(&it->all, p, n);
    buf_addc(&it->all, '\n');
    it->n++;
}

static void want_items(const char *text, const char *key, long want_n, const char *want)
{
    struct items it = {BUF_INIT, 0};
    long n = cli_json_each(text, strlen(text), key, take_item, &it);
    ck_assert_msg(n == want_n, "%s: %ld items, wanted %ld", text, n, want_n);
    if (want)
        ck_assert_str_eq(buf_cstr(&it.all), want);
    buf_release(&it.all);
}

START_TEST(array_elements_byte_for_byte)
{
    /* numbers a re-encoding would change, strings with brackets and
     * escaped quotes, nesting: each element exactly as sent */
    want_items("{\"events\":[{\"a\":0.1,\"b\":1e400,\"c\":123456789012345678901234567890},"
               "{\"s\":\"]}\\\",[{\",\"n\":[[1],{\"x\":[]}]},7,\"x\",null],\"next_cursor\":null}",
               "events", 5,
               "{\"a\":0.1,\"b\":1e400,\"c\":123456789012345678901234567890}\n"
               "{\"s\":\"]}\\\",[{\",\"n\":[[1],{\"x\":[]}]}\n7\n\"x\"\nnull\n");
    /* the key after others, and whitespace anywhere */
    want_items(" { \"x\" : {\"events\":[1]} , \"events\" : [ 1 , {\"a\" : [ ] } ] } ", "events", 2,
               "1\n{\"a\" : [ ] }\n");
    want_items("{\"events\":[],\"next_cursor\":\"c\"}", "events", 0, "");
    want_items("{\"streams\":[{}]}", "events", -1, NULL);
    want_items("{\"events\":{}}", "events", -1, NULL);
    want_items("[1,2]", "events", -1, NULL);
    want_items("{\"eventsX\":[1],\"event\":[2]}", "events", -1, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_table");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, escape_controls_and_invisible_characters);
    tcase_add_test(tc, cells_cut_and_padded_in_columns);
    tcase_add_test(tc, event_table);
    tcase_add_test(tc, stream_and_incident_tables);
    tcase_add_test(tc, stream_details);
    tcase_add_test(tc, array_elements_byte_for_byte);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
