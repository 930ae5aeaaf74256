/* Differential test of the aggregator's single-pass envelope reader
 * (common/envelope_decode.c) against jansson, which decided every envelope
 * before it: for every input, envelope_decode and envelope_decode_jansson
 * give the same result code, the same error text and, when accepted, the
 * same envelope (compared by its encoding, byte for byte). Inputs: the fuzz
 * corpora, hand-picked edge cases, generated envelopes (every valid one
 * must be read by the single pass, so that the hot path is real) and their
 * mutations and truncations. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/envelope_int.h"
#include "common/hashchain.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

struct tally {
    unsigned long compared, scanned;
};

static void describe(char *buf, size_t cap, const char *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = '\0';
}

/* Both decoders on in[0, len): the same outcome. */
static void compare(const char *in, size_t len, struct tally *t)
{
    struct envelope a, b;
    char da[256], db[256], what[600];
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    enum envelope_err ra = envelope_decode(in, len, &a, da, sizeof(da));
    enum envelope_err rb = envelope_decode_jansson(in, len, &b, db, sizeof(db));
    describe(what, sizeof(what), in, len);
    ck_assert_msg(ra == rb, "result %s vs jansson's %s for %s", envelope_strerror(ra),
                  envelope_strerror(rb), what);
    ck_assert_msg(strcmp(da, db) == 0, "detail \"%s\" vs jansson's \"%s\" for %s", da, db, what);
    if (ra == ENVELOPE_OK) {
        size_t la = 0, lb = 0;
        char *ea = envelope_encode(&a, &la), *eb = envelope_encode(&b, &lb);
        ck_assert_msg(la == lb && memcmp(ea, eb, la) == 0, "envelopes differ for %s", what);
        free(ea);
        free(eb);
    }
    envelope_release(&a);
    envelope_release(&b);
    t->compared++;
    t->scanned += envelope_scan_reads(in, len);
}

static void compare_str(const char *in, struct tally *t)
{
    compare(in, strlen(in), t);
}

static void corpus(const char *dir, struct tally *t)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "no corpus %s", dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        size_t len = 0;
        uint8_t *buf = test_read_file(path, &len);
        ck_assert_ptr_nonnull(buf);
        compare((const char *)buf, len, t);
        free(buf);
        free(path);
    }
    closedir(d);
}

/* An envelope of line[0, len) with variety chosen by k: time sources,
 * optional source members and fields (some non-ASCII, some null), cut
 * records. */
static void make_env(struct envelope *e, unsigned k, const uint8_t *line, size_t len)
{
    memset(e, 0, sizeof(*e));
    e->v = 1;
    memcpy(e->stream, "0123456789abcdef0123456789abcdef", CHAIN_STREAM_HEX_LEN + 1);
    e->seq = k * 7919u % 100000u;
    e->offset = (uint64_t)k * 300;
    for (size_t i = 0; i < CHAIN_HASH_LEN; i++)
        e->prev[i] = (uint8_t)(k * 31 + i);
    chain_next(e->prev, e->seq, line, len, e->hash);
    chain_id(e->hash, e->id);
    e->time_us = INT64_C(1795651200000000) + (int64_t)k * 1234567;
    e->time_source = k % 2 ? TIME_SOURCE_PAYLOAD : TIME_SOURCE_READ;
    e->read_time_us = e->time_us + (k % 5) * 1000;
    e->source.name = xstrdup(k % 3 ? "icu/ehr-7f9c/app" : "ns/pod \"quoted\" \\ name");
    if (k % 2)
        e->source.host = xstrdup("node-3");
    if (k % 4 == 1)
        e->source.path = xstrdup("/var/log/audit/pätient.log");
    e->format = xstrdup(k % 3 == 2 ? "k8s-audit" : "json");
    if (k % 3) {
        e->fields.tenant = xstrdup("hospital-7");
        e->fields.actor = xstrdup(k % 2 ? "dr.Müller" : "dr.smith\t(on call)");
        e->fields.resource = xstrdup("Patient/000123");
    }
    if (k % 7 == 3)
        e->truncated_bytes = 4096;
    e->line = xmalloc(len + 1);
    memcpy(e->line, line, len);
    e->line[len] = '\0';
    e->line_len = len;
}

static const char *const lines[] = {
    "{\"actor\":\"dr.smith\",\"action\":\"read\",\"resource\":\"Patient/1\"}",
    "plain text record",
    "tab\there, newline\nthere, quote \" and backslash \\ and slash /",
    "controls \x01\x02\x1f and DEL \x7f",
    "two bytes: é, three: €, four: 😀",
    "",
};

/* A valid envelope of line[0, len): both decoders agree, and the single
 * pass reads it. */
static void check_generated(unsigned k, const uint8_t *line, size_t len, struct tally *t)
{
    struct envelope e;
    make_env(&e, k, line, len);
    size_t n = 0;
    char *json = envelope_encode(&e, &n);
    compare(json, n, t);
    ck_assert_msg(envelope_scan_reads(json, n), "the single pass declined %s", json);
    free(json);
    envelope_release(&e);
}

/* Valid envelopes (the usual JSON line, escapes, controls, UTF-8, NUL,
 * invalid UTF-8 as line_b64), each read by the single pass. */
START_TEST(generated_envelopes_take_the_single_pass)
{
    struct tally t = {0};
    unsigned k = 0;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        for (unsigned rep = 0; rep < 6; rep++, k++)
            check_generated(k, (const uint8_t *)lines[i], strlen(lines[i]), &t);
    static const uint8_t nul[] = {'a', 0, 'b'}, bad[] = {'x', 0xc3, 0x28, 0xff, 'y'};
    check_generated(k++, nul, sizeof(nul), &t);
    check_generated(k++, bad, sizeof(bad), &t);
    ck_assert_uint_eq(t.scanned, t.compared);
    ck_assert_uint_eq(t.compared, sizeof(lines) / sizeof(lines[0]) * 6 + 2);
}
END_TEST

/* Every prefix, and single-byte changes at every position, of a few
 * envelopes: both decoders agree on each. */
START_TEST(mutations_agree)
{
    static const char inserts[] = {'"', '\\', '{', '}', ',', ':',    '0',    '9',    '-',   'n',
                                   ' ', 'u',  '.', 'e', '[', '\x80', '\xc3', '\x00', '\x1f'};
    struct tally t = {0};
    for (unsigned k = 0; k < 4; k++) {
        struct envelope e;
        const char *line = lines[k % 3];
        make_env(&e, k, (const uint8_t *)line, strlen(line));
        size_t len = 0;
        char *json = envelope_encode(&e, &len);
        char *buf = xmalloc(len + 2);
        for (size_t cut = 0; cut < len; cut++)
            compare(json, cut, &t);
        for (size_t pos = 0; pos < len; pos++)
            for (size_t c = 0; c < sizeof(inserts); c++) {
                /* replace */
                memcpy(buf, json, len);
                buf[pos] = inserts[c];
                compare(buf, len, &t);
                /* insert */
                memcpy(buf, json, pos);
                buf[pos] = inserts[c];
                memcpy(buf + pos + 1, json + pos, len - pos);
                compare(buf, len + 1, &t);
            }
        for (size_t pos = 0; pos < len; pos++) { /* delete */
            memcpy(buf, json, pos);
            memcpy(buf + pos, json + pos + 1, len - pos - 1);
            compare(buf, len - 1, &t);
        }
        free(buf);
        free(json);
        envelope_release(&e);
    }
    /* The single pass met many of them (its own refusals included). */
    ck_assert_uint_gt(t.scanned, t.compared / 20);
    fprintf(stderr, "mutations: %lu compared, %lu read by the single pass\n", t.compared,
            t.scanned);
}
END_TEST

/* Edge cases of JSON and of the contract, one by one. */
START_TEST(edge_cases_agree)
{
    struct tally t = {0};
    struct envelope e;
    make_env(&e, 1, (const uint8_t *)"x", 1);
    size_t len = 0;
    char *json = envelope_encode(&e, &len);
    envelope_release(&e);
    /* The valid envelope with one member's text replaced. */
    struct {
        const char *from, *to;
    } swaps[] = {
        {"\"v\":1", "\"v\":01"},
        {"\"v\":1", "\"v\":1.0"},
        {"\"v\":1", "\"v\":-1"},
        {"\"v\":1", "\"v\":1e0"},
        {"\"v\":1", "\"v\":2"},
        {"\"v\":1", "\"v\":\"1\""},
        {"\"v\":1", "\"v\":null"},
        {"\"v\":1", "\"v\":true"},
        {"\"v\":1", "\"v\":[1]"},
        {"\"v\":1", "\"v\":1,\"v\":1"},
        {"\"v\":1", "\"v\":1,\"extra\":0"},
        {"\"v\":1", "\"v\":1 "},
        {"\"v\":1", "\"v\" :1"},
        {"\"v\":1", "\"\\u0076\":1"},
        {"\"v\":1", "\"v\":99999999999999999999"},
        {"\"v\":1", "\"v\":999999999999999999"},
        {"\"v\":1", "\"v\":1234567890123456789"},
        {"\"seq\":", "\"seq\":-"},
        {"\"offset\":", "\"offset\":9007199254740992,\"x\":"},
        {"\"source\":{", "\"source\":{\"name\":\"a\",\"name\":\"b\","},
        {"\"source\":{", "\"source\":{\"zone\":\"a\","},
        {"\"source\":{", "\"source\":{\"host\":null,"},
        {"\"source\":{", "\"source\":{\"host\":1,"},
        {"\"source\":{", "\"source\":{\"host\":\"a\\u0000b\","},
        {"\"source\":{", "\"source\":{\"host\":{},"},
        {"\"source\":{", "\"source\":[{"},
        {"\"fields\":{", "\"fields\":{\"actor\":\"\\u00e9\\u20ac\\uD83D\\uDE00\","},
        {"\"fields\":{", "\"fields\":{\"actor\":\"\\uD800\","},
        {"\"fields\":{", "\"fields\":{\"actor\":\"\\uDC00x\","},
        {"\"fields\":{", "\"fields\":{\"actor\":\"\\u12\","},
        {"\"fields\":{", "\"fields\":{\"actor\":\"\\x41\","},
        {"\"fields\":{", "\"fields\":{\"room\":\"3\","},
        {"\"fields\":{", "\"fields\":null,\"y\":{"},
        {"\"fields\":{", "\"fields\":{},\"z\":{"},
        {"\"line\":\"x\"", "\"line\":\"x\",\"line_b64\":\"eA==\""},
        {"\"line\":\"x\"", "\"line_b64\":\"eA==\""},
        {"\"line\":\"x\"", "\"line_b64\":\"eA=\""},
        {"\"line\":\"x\"", "\"line\":\"\\u0078\""},
        {"\"line\":\"x\"", "\"line\":\"y\""},
        {"\"line\":\"x\"", "\"line\":7"},
        {"\"format\":\"json\"", "\"format\":\"JSON\""},
        {"\"format\":\"json\"", "\"format\":\"js\\u006fn\""},
        {"\"time_source\":\"payload\"", "\"time_source\":\"later\""},
    };
    for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
        const char *at = strstr(json, swaps[i].from);
        ck_assert_msg(at != NULL, "%s not in %s", swaps[i].from, json);
        char *m =
            xasprintf("%.*s%s%s", (int)(at - json), json, swaps[i].to, at + strlen(swaps[i].from));
        compare_str(m, &t);
        free(m);
    }
    /* Whole documents. */
    static const char *const docs[] = {
        "",
        "{",
        "}",
        "{}",
        "[]",
        "1",
        "null",
        "\"v\"",
        "{\"v\":1}",
        "{\"v\":1,}",
        "{,}",
        "{\"v\":1}x",
        "{\"v\":1}\n",
        " {\"v\":1}",
        "{\"v\"}",
        "{\"v\":}",
        "{\"v\":1,\"x\":{\"y\":[]}}",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        compare_str(docs[i], &t);
    compare(json, len, &t);
    free(json);
}
END_TEST

START_TEST(fuzz_corpora_agree)
{
    struct tally t = {0};
    static const char *const dirs[] = {"envelope_decode", "aggr_message", "envelope_encode"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char *dir = xasprintf("%s/fuzz/corpus/%s", test_repo_root(), dirs[i]);
        corpus(dir, &t);
        free(dir);
    }
    ck_assert_uint_gt(t.compared, 20);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("envelope_diff");
    TCase *tc = tcase_create("diff");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, generated_envelopes_take_the_single_pass);
    tcase_add_test(tc, mutations_agree);
    tcase_add_test(tc, edge_cases_agree);
    tcase_add_test(tc, fuzz_corpora_agree);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
