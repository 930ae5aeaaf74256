/* pg_copy, the binary COPY encoder, byte by byte against PostgreSQL's
 * documented format (header, tuple field count, int64 big-endian,
 * timestamps from 2000-01-01, jsonb version byte, NULL as length -1,
 * trailer), the attrs rules, and the source JSON cache. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/pg_copy.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

/* Big-endian readers over the encoded bytes. */
static int64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static int32_t be32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static void env(struct envelope *e, const char *line)
{
    memset(e, 0, sizeof(*e));
    strcpy(e->id, "01020304-0506-0708-090a-0b0c0d0e0f10");
    memset(e->stream, 'a', CHAIN_STREAM_HEX_LEN);
    e->seq = 7;
    e->offset = 700;
    e->time_us = 946684800000000LL + 1500000; /* 2000-01-01T00:00:01.5Z */
    e->read_time_us = e->time_us;
    e->source.name = xstrdup("ns/pod/app");
    e->format = xstrdup("json");
    e->line_len = strlen(line);
    e->line = xmemdup(line, e->line_len + 1);
}

#define NFIELDS 20

/* The fields of the one tuple in b after the 19-byte header: offsets of
 * each field's length word. */
static void fields(const struct buf *b, size_t at[NFIELDS])
{
    const unsigned char *p = (const unsigned char *)b->p;
    ck_assert_int_eq(p[19] << 8 | p[20], NFIELDS); /* field count */
    size_t o = 21;
    for (int i = 0; i < NFIELDS; i++) {
        at[i] = o;
        int32_t len = be32(p + o);
        o += 4 + (len > 0 ? (size_t)len : 0);
    }
    ck_assert_uint_eq(o + 2, b->len); /* then the trailer */
    ck_assert_int_eq(p[o] << 8 | p[o + 1], 0xffff);
}

START_TEST(header_row_trailer)
{
    struct buf b = BUF_INIT;
    struct pg_copy_src sc = {NULL, NULL};
    struct envelope e;
    env(&e, "{\"k\":1}");
    pg_copy_header(&b);
    ck_assert_uint_eq(b.len, 19);
    ck_assert_mem_eq(b.p, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
    pg_copy_row(&b, &e, &sc, PG_COPY_ATTRS_CHEAP);
    pg_copy_trailer(&b);
    size_t at[NFIELDS];
    fields(&b, at);
    const unsigned char *p = (const unsigned char *)b.p;
    ck_assert_int_eq(be32(p + at[0]), 8);
    ck_assert_int_eq(be64(p + at[0] + 4), 1500000); /* µs since 2000-01-01 */
    ck_assert_int_eq(be32(p + at[1]), 16);          /* uuid bytes */
    ck_assert_int_eq(p[at[1] + 4], 0x01);
    ck_assert_int_eq(p[at[1] + 4 + 15], 0x10);
    ck_assert_int_eq(be32(p + at[2]), CHAIN_STREAM_HEX_LEN);
    ck_assert_int_eq(be64(p + at[3] + 4), 7);   /* seq */
    ck_assert_int_eq(be64(p + at[4] + 4), 700); /* file offset */
    ck_assert_int_eq(be32(p + at[9]), -1);      /* tenant: absent */
    ck_assert_int_eq(be32(p + at[15]), 1 + (int32_t)strlen("{\"name\":\"ns/pod/app\"}"));
    ck_assert_int_eq(p[at[15] + 4], 1); /* jsonb version */
    ck_assert_mem_eq(p + at[15] + 5, "{\"name\":\"ns/pod/app\"}", 21);
    ck_assert_int_eq(be32(p + at[16]), (int32_t)e.line_len); /* raw */
    ck_assert_int_eq(be32(p + at[18]), 1 + (int32_t)e.line_len);
    ck_assert_mem_eq(p + at[18] + 5, e.line, e.line_len); /* attrs */
    ck_assert_int_eq(be32(p + at[19]), -1);               /* fields_cut: none */
    pg_copy_src_release(&sc);
    envelope_release(&e);
    buf_release(&b);
}
END_TEST

/* The attrs column (the last field) for a line under each rule. */
static int32_t attrs_len(const char *line, enum pg_copy_attrs rule, uint64_t truncated)
{
    struct buf b = BUF_INIT;
    struct pg_copy_src sc = {NULL, NULL};
    struct envelope e;
    env(&e, line);
    e.truncated_bytes = truncated;
    pg_copy_header(&b);
    pg_copy_row(&b, &e, &sc, rule);
    pg_copy_trailer(&b);
    size_t at[NFIELDS];
    fields(&b, at);
    int32_t len = be32((const unsigned char *)b.p + at[18]);
    pg_copy_src_release(&sc);
    envelope_release(&e);
    buf_release(&b);
    return len;
}

START_TEST(attrs_rules)
{
    ck_assert_int_gt(attrs_len("{\"a\":1}", PG_COPY_ATTRS_CHEAP, 0), 0);
    ck_assert_int_gt(attrs_len(" {\"a\":1}\r", PG_COPY_ATTRS_STRICT, 0), 0);
    ck_assert_int_eq(attrs_len("{\"a\":1}", PG_COPY_ATTRS_NULL, 0), -1);
    ck_assert_int_eq(attrs_len("{\"a\":1}", PG_COPY_ATTRS_CHEAP, 10), -1); /* cut */
    ck_assert_int_eq(attrs_len("[1,2]", PG_COPY_ATTRS_CHEAP, 0), -1);
    ck_assert_int_eq(attrs_len("plain", PG_COPY_ATTRS_CHEAP, 0), -1);
    ck_assert_int_eq(attrs_len("{\"x\":\"\\u0000\"}", PG_COPY_ATTRS_CHEAP, 0), -1);
    /* Looks like an object: the cheap rule lets the server decide... */
    ck_assert_int_gt(attrs_len("{not json}", PG_COPY_ATTRS_CHEAP, 0), 0);
    /* ...the strict one parses it. */
    ck_assert_int_eq(attrs_len("{not json}", PG_COPY_ATTRS_STRICT, 0), -1);
}
END_TEST

START_TEST(source_json_cached)
{
    struct pg_copy_src sc = {NULL, NULL};
    struct envelope_source a = {.name = "n", .pod = "p"}, a2 = a, b = {.name = "m"};
    const char *j1 = pg_copy_src_json(&sc, &a);
    ck_assert_str_eq(j1, "{\"name\":\"n\",\"pod\":\"p\"}");
    ck_assert_ptr_eq(pg_copy_src_json(&sc, &a2), j1); /* equal source: no new text */
    ck_assert_str_eq(pg_copy_src_json(&sc, &b), "{\"name\":\"m\"}");
    pg_copy_src_release(&sc);
    pg_copy_src_release(&sc);
}
END_TEST

/* Indexed columns hold at most PG_COPY_FIELD_MAX bytes, cut on a UTF-8
 * boundary, and fields_cut names them (issue 9 item 5: a 3 KB resource made
 * the server refuse the row, 54000). */
START_TEST(indexed_fields_cut)
{
    /* ASCII: exactly the limit. */
    char *a = xmalloc(3001);
    memset(a, 'r', 3000);
    a[3000] = '\0';
    ck_assert_uint_eq(pg_copy_field_len(a, 3000), PG_COPY_FIELD_MAX);
    ck_assert_uint_eq(pg_copy_field_len(a, PG_COPY_FIELD_MAX), PG_COPY_FIELD_MAX);
    ck_assert_uint_eq(pg_copy_field_len("short", 5), 5);
    /* "é" (2 bytes) from byte 511: a cut at 512 would split it. */
    char *u = xmalloc(1100);
    memset(u, 'x', 511);
    for (int i = 0; i < 290; i++)
        memcpy(u + 511 + 2 * i, "\xc3\xa9", 2);
    u[511 + 580] = '\0';
    ck_assert_uint_eq(pg_copy_field_len(u, strlen(u)), 511);
    /* 4-byte characters from 0: the last whole one ends at 512. */
    char *f = xmalloc(1100);
    for (int i = 0; i < 250; i++)
        memcpy(f + 4 * i, "\xf0\x9f\x98\x80", 4);
    f[1000] = '\0';
    ck_assert_uint_eq(pg_copy_field_len(f, 1000), 512);

    struct buf b = BUF_INIT;
    struct pg_copy_src sc = {NULL, NULL};
    struct envelope e;
    env(&e, "{\"k\":1}");
    e.fields.resource = xstrdup(a);
    e.fields.actor = xstrdup(u);
    e.fields.tenant = xstrdup("t1");
    pg_copy_header(&b);
    ck_assert_uint_eq(pg_copy_row(&b, &e, &sc, PG_COPY_ATTRS_CHEAP),
                      PG_COPY_CUT_RESOURCE | PG_COPY_CUT_ACTOR);
    pg_copy_trailer(&b);
    size_t at[NFIELDS];
    fields(&b, at);
    const unsigned char *p = (const unsigned char *)b.p;
    ck_assert_int_eq(be32(p + at[9]), 2);                    /* tenant whole */
    ck_assert_int_eq(be32(p + at[10]), 511);                 /* actor */
    ck_assert_int_eq(be32(p + at[12]), PG_COPY_FIELD_MAX);   /* resource */
    ck_assert_int_eq(be32(p + at[16]), (int32_t)e.line_len); /* raw untouched */
    /* fields_cut = {actor,resource}: 1 dimension, no NULLs, text, 2 elements
     * from 1. */
    const unsigned char *c = p + at[19];
    ck_assert_int_eq(be32(c), 20 + 4 + 5 + 4 + 8);
    ck_assert_int_eq(be32(c + 4), 1);
    ck_assert_int_eq(be32(c + 8), 0);
    ck_assert_int_eq(be32(c + 12), 25);
    ck_assert_int_eq(be32(c + 16), 2);
    ck_assert_int_eq(be32(c + 20), 1);
    ck_assert_int_eq(be32(c + 24), 5);
    ck_assert_mem_eq(c + 28, "actor", 5);
    ck_assert_int_eq(be32(c + 33), 8);
    ck_assert_mem_eq(c + 37, "resource", 8);
    pg_copy_src_release(&sc);
    envelope_release(&e);
    buf_release(&b);
    free(a);
    free(u);
    free(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pg_copy");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, header_row_trailer);
    tcase_add_test(tc, attrs_rules);
    tcase_add_test(tc, source_json_cached);
    tcase_add_test(tc, indexed_fields_cut);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
