/* Framing (DESIGN.md §2): partial lines, CRLF, NUL, invalid UTF-8, empty
 * lines, cut records without buffering, multiline joins and flushes. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "agent/framer.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

struct rec {
    uint8_t *data;
    size_t len;
    uint64_t truncated, offset, end;
};

struct sink {
    struct rec *v;
    size_t n, cap;
    size_t stop_after; /* stop (return 1) after this many records; 0 = never */
};

static int collect(void *ud, const struct framer_record *r)
{
    struct sink *s = ud;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    struct rec *d = &s->v[s->n++];
    d->data = xmemdup(r->data ? (const void *)r->data : "", r->len ? r->len : 1);
    d->len = r->len;
    d->truncated = r->truncated;
    d->offset = r->offset;
    d->end = r->end;
    return s->stop_after && s->n >= s->stop_after ? 1 : 0;
}

static void sink_free(struct sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].data);
    free(s->v);
    free(s);
}

static struct sink *sink_new(void)
{
    return xcalloc(1, sizeof(struct sink));
}

static void assert_rec(const struct rec *r, const char *bytes, size_t len, uint64_t off,
                       uint64_t end, uint64_t truncated)
{
    ck_assert_uint_eq(r->len, len);
    ck_assert_int_eq(memcmp(r->data, bytes, len), 0);
    ck_assert_uint_eq(r->offset, off);
    ck_assert_uint_eq(r->end, end);
    ck_assert_uint_eq(r->truncated, truncated);
}

START_TEST(test_partial_lines_across_reads)
{
    struct framer *f = framer_new(1024, NULL);
    struct sink *s = sink_new();
    ck_assert_int_eq(framer_feed(f, (const uint8_t *)"ab", 2, collect, s), 0);
    ck_assert_uint_eq(s->n, 0);
    ck_assert(framer_pending(f));
    ck_assert_uint_eq(framer_resume_offset(f), 0);
    ck_assert_int_eq(framer_feed(f, (const uint8_t *)"c\nde", 4, collect, s), 0);
    ck_assert_uint_eq(s->n, 1);
    assert_rec(&s->v[0], "abc", 3, 0, 4, 0);
    ck_assert_uint_eq(framer_resume_offset(f), 4);
    ck_assert_int_eq(framer_feed(f, (const uint8_t *)"f\n", 2, collect, s), 0);
    ck_assert_uint_eq(s->n, 2);
    assert_rec(&s->v[1], "def", 3, 4, 8, 0);
    ck_assert(!framer_pending(f));
    ck_assert_uint_eq(framer_position(f), 8);
    sink_free(s);
    framer_free(f);
}
END_TEST

START_TEST(test_crlf_nul_invalid_utf8_kept_empty_skipped)
{
    static const uint8_t in[] = "a\r\n\n\n\x00x\x00\n\xff\xfe\xc3\n\r\n";
    size_t len = sizeof(in) - 1;
    struct framer *f = framer_new(1024, NULL);
    struct sink *s = sink_new();
    ck_assert_int_eq(framer_feed(f, in, len, collect, s), 0);
    ck_assert_uint_eq(s->n, 4);
    assert_rec(&s->v[0], "a\r", 2, 0, 3, 0);
    assert_rec(&s->v[1], "\x00x\x00", 3, 5, 9, 0);
    assert_rec(&s->v[2], "\xff\xfe\xc3", 3, 9, 13, 0);
    assert_rec(&s->v[3], "\r", 1, 13, 15, 0); /* a lone \r is not an empty line */
    sink_free(s);
    framer_free(f);
}
END_TEST

/* Any split of the input gives the same records as one feed. */
START_TEST(test_any_split_same_records)
{
    srand(42);
    size_t len = 20000;
    uint8_t *in = xmalloc(len);
    static const uint8_t alphabet[] = {'a', 'b', '\n', '\n', '\r', 0, 0xff, 'z', ' ', '\n'};
    for (size_t i = 0; i < len; i++)
        in[i] = alphabet[rand() % sizeof(alphabet)];
    for (size_t max = 3; max <= 50; max += 47) {
        struct framer *whole = framer_new(max, NULL);
        struct sink *a = sink_new();
        framer_feed(whole, in, len, collect, a);
        framer_finish(whole, collect, a);
        struct framer *parts = framer_new(max, NULL);
        struct sink *b = sink_new();
        for (size_t i = 0; i < len;) {
            size_t n = 1 + (size_t)(rand() % 17);
            if (n > len - i)
                n = len - i;
            framer_feed(parts, in + i, n, collect, b);
            i += n;
        }
        framer_finish(parts, collect, b);
        ck_assert_uint_gt(a->n, 100);
        ck_assert_uint_eq(a->n, b->n);
        for (size_t i = 0; i < a->n; i++) {
            assert_rec(&b->v[i], (const char *)a->v[i].data, a->v[i].len, a->v[i].offset,
                       a->v[i].end, a->v[i].truncated);
            /* and each record is the file slice, cut to max */
            ck_assert_int_eq(memcmp(a->v[i].data, in + a->v[i].offset, a->v[i].len), 0);
            ck_assert_uint_le(a->v[i].len, max);
        }
        sink_free(a);
        sink_free(b);
        framer_free(whole);
        framer_free(parts);
    }
    free(in);
}
END_TEST

START_TEST(test_cut_record)
{
    struct framer *f = framer_new(10, NULL);
    struct sink *s = sink_new();
    const char *in = "0123456789abcdefghijklmno\nshort\n";
    ck_assert_int_eq(framer_feed(f, (const uint8_t *)in, strlen(in), collect, s), 0);
    ck_assert_uint_eq(s->n, 2);
    assert_rec(&s->v[0], "0123456789", 10, 0, 26, 15);
    assert_rec(&s->v[1], "short", 5, 26, 32, 0);
    sink_free(s);
    framer_free(f);
}
END_TEST

/* A 2 MB line fed in 64 KiB reads: the framer never holds more than
 * max_record_bytes of it. */
START_TEST(test_2mb_line_not_buffered)
{
    size_t max = 512 * 1024, total = 2 * 1024 * 1024, chunk = 64 * 1024;
    uint8_t *buf = xmalloc(chunk);
    struct framer *f = framer_new(max, NULL);
    struct sink *s = sink_new();
    size_t peak = 0;
    for (size_t done = 0; done < total; done += chunk) {
        for (size_t i = 0; i < chunk; i++)
            buf[i] = (uint8_t)('A' + (done + i) % 26);
        ck_assert_int_eq(framer_feed(f, buf, chunk, collect, s), 0);
        size_t held = framer_buffered_bytes(f);
        if (held > peak)
            peak = held;
    }
    ck_assert_uint_le(peak, max);
    ck_assert_uint_eq(s->n, 0);
    ck_assert_int_eq(framer_feed(f, (const uint8_t *)"\nnext\n", 6, collect, s), 0);
    ck_assert_uint_eq(s->n, 2);
    ck_assert_uint_eq(s->v[0].len, max);
    ck_assert_uint_eq(s->v[0].truncated, total - max);
    ck_assert_uint_eq(s->v[0].offset, 0);
    ck_assert_uint_eq(s->v[0].end, total + 1);
    for (size_t i = 0; i < max; i++)
        ck_assert_int_eq(s->v[0].data[i], 'A' + i % 26);
    assert_rec(&s->v[1], "next", 4, total + 1, total + 6, 0);
    ck_assert_uint_le(framer_buffered_bytes(f), 64 * 1024); /* given back after use */
    sink_free(s);
    framer_free(f);
    free(buf);
}
END_TEST

START_TEST(test_final_line_only_on_finish)
{
    struct framer *f = framer_new(1024, NULL);
    struct sink *s = sink_new();
    framer_feed(f, (const uint8_t *)"one\ntwo", 7, collect, s);
    ck_assert_uint_eq(s->n, 1);
    ck_assert_int_eq(framer_flush(f, collect, s), 0); /* not multiline: no effect */
    ck_assert_uint_eq(s->n, 1);
    ck_assert_int_eq(framer_finish(f, collect, s), 0);
    ck_assert_uint_eq(s->n, 2);
    assert_rec(&s->v[1], "two", 3, 4, 7, 0);
    ck_assert(!framer_pending(f));
    sink_free(s);
    framer_free(f);
}
END_TEST

START_TEST(test_multiline_join_and_flush)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "^[0-9]{4}-", REG_EXTENDED | REG_NOSUB), 0);
    struct framer *f = framer_new(1024, &re);
    struct sink *s = sink_new();
    const char *in = "  orphan\n2026-a\n  cont\n\n  cont2\n\n2026-b\n  x\n";
    framer_feed(f, (const uint8_t *)in, strlen(in), collect, s);
    ck_assert_uint_eq(s->n, 2);
    assert_rec(&s->v[0], "  orphan", 8, 0, 9, 0);
    assert_rec(&s->v[1], "2026-a\n  cont\n\n  cont2", 22, 9, 32, 0);
    ck_assert(framer_pending(f));
    ck_assert_uint_eq(framer_resume_offset(f), 33); /* the held record "2026-b..." */
    ck_assert_int_eq(framer_flush(f, collect, s), 0);
    ck_assert_uint_eq(s->n, 3);
    assert_rec(&s->v[2], "2026-b\n  x", 10, 33, 44, 0);
    ck_assert(!framer_pending(f));
    /* A continuation after a flush is a record of its own. */
    framer_feed(f, (const uint8_t *)"  late\n", 7, collect, s);
    ck_assert_int_eq(framer_finish(f, collect, s), 0);
    ck_assert_uint_eq(s->n, 4);
    assert_rec(&s->v[3], "  late", 6, 44, 51, 0);
    sink_free(s);
    framer_free(f);
    regfree(&re);
}
END_TEST

START_TEST(test_multiline_cut_and_nul_in_pattern_line)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "^<", REG_EXTENDED | REG_NOSUB), 0);
    struct framer *f = framer_new(8, &re);
    struct sink *s = sink_new();
    static const uint8_t in[] = "<a\x00>\nbbbbbbbb\n<c>\n";
    framer_feed(f, in, sizeof(in) - 1, collect, s);
    ck_assert_uint_eq(s->n, 1);
    /* slice "<a\0>\nbbbbbbbb" is 13 bytes, 8 kept */
    assert_rec(&s->v[0], "<a\x00>\nbbb", 8, 0, 14, 5);
    framer_finish(f, collect, s);
    ck_assert_uint_eq(s->n, 2);
    assert_rec(&s->v[1], "<c>", 3, 14, 18, 0);
    sink_free(s);
    framer_free(f);
    regfree(&re);
}
END_TEST

START_TEST(test_stop_and_resume)
{
    struct framer *f = framer_new(1024, NULL);
    struct sink *s = sink_new();
    s->stop_after = 2;
    const char *in = "a\nb\nc\nd\n";
    ck_assert_int_eq(framer_feed(f, (const uint8_t *)in, 8, collect, s), 1);
    ck_assert_uint_eq(s->n, 2);
    ck_assert_uint_eq(framer_position(f), 4);
    framer_reset(f, s->v[1].end);
    s->stop_after = 0;
    ck_assert_int_eq(framer_feed(f, (const uint8_t *)in + 4, 4, collect, s), 0);
    ck_assert_uint_eq(s->n, 4);
    assert_rec(&s->v[2], "c", 1, 4, 6, 0);
    assert_rec(&s->v[3], "d", 1, 6, 8, 0);
    sink_free(s);
    framer_free(f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_framer");
    TCase *tc = tcase_create("framer");
    tcase_add_test(tc, test_partial_lines_across_reads);
    tcase_add_test(tc, test_crlf_nul_invalid_utf8_kept_empty_skipped);
    tcase_add_test(tc, test_any_split_same_records);
    tcase_add_test(tc, test_cut_record);
    tcase_add_test(tc, test_2mb_line_not_buffered);
    tcase_add_test(tc, test_final_line_only_on_finish);
    tcase_add_test(tc, test_multiline_join_and_flush);
    tcase_add_test(tc, test_multiline_cut_and_nul_in_pattern_line);
    tcase_add_test(tc, test_stop_and_resume);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
