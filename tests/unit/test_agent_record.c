/* Envelope building: the agent's direct JSON writer gives the same JSON value
 * as common/envelope.c's encoder and passes envelope_decode; time decision. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/chain_hasher.h"
#include "agent/record.h"
#include "common/envelope.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static void fill(struct envelope *e, uint8_t *line, size_t len, unsigned seed)
{
    memset(e, 0, sizeof(*e));
    e->v = 1;
    for (int i = 0; i < CHAIN_HASH_LEN; i++)
        e->prev[i] = (uint8_t)(seed * 31 + i);
    chain_next(e->prev, seed, line, len, e->hash);
    chain_id(e->hash, e->id);
    memcpy(e->stream, "0123456789abcdef0123456789abcdef", 33);
    e->seq = seed;
    e->offset = (uint64_t)seed * 1000;
    e->time_us = 1764186645123456 + (int64_t)seed * 777777; /* crosses seconds */
    e->time_source = seed % 2 ? TIME_SOURCE_PAYLOAD : TIME_SOURCE_READ;
    e->read_time_us = 1764186645000000 + (int64_t)(seed / 3) * 1000001;
    e->source.name = "ns/pod/app";
    e->source.host = seed % 3 ? "node-1" : NULL;
    e->source.pod = "pod \"q\" \\ \x01";
    e->source.path = seed % 5 ? "/var/log/a.log" : "/var/log/bad\xff name.log";
    e->format = "json";
    e->fields.actor = seed % 2 ? "dr. émile" : NULL;
    e->fields.tenant = "t1";
    e->line = line;
    e->line_len = len;
    e->truncated_bytes = seed % 4 ? 0 : seed;
}

START_TEST(test_same_json_as_envelope_encode)
{
    srand(3);
    static const uint8_t alphabet[] = {'a',  '"',  '\\', 0,    1,    0x1f, 0x7f, '\n', '\r', '\t',
                                       0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff, 0xed, 0xa0, 0x80, 'z'};
    struct record_time_cache tc = {0};
    for (unsigned round = 0; round < 2000; round++) {
        size_t len = (size_t)(rand() % 80);
        uint8_t *line = xmalloc(len + 1);
        for (size_t i = 0; i < len; i++)
            line[i] =
                round % 3 == 0 ? (uint8_t)('a' + rand() % 26) : alphabet[rand() % sizeof(alphabet)];
        struct envelope e;
        fill(&e, line, len, round);
        size_t l1, l2;
        char *a = round % 2 ? record_envelope_json_tc(&e, &l1, &tc) : record_envelope_json(&e, &l1);
        char *b = envelope_encode(&e, &l2);
        ck_assert_ptr_nonnull(b);
        ck_assert_uint_eq(strlen(a), l1);
        json_error_t je;
        json_t *ja = json_loadb(a, l1, JSON_ALLOW_NUL, &je);
        ck_assert_msg(ja != NULL, "round %u: invalid JSON: %s", round, je.text);
        json_t *jb = json_loadb(b, l2, JSON_ALLOW_NUL, &je);
        ck_assert_msg(json_equal(ja, jb), "round %u differs:\n%s\n%s", round, a, b);
        struct envelope d;
        memset(&d, 0, sizeof(d));
        char err[128];
        ck_assert_msg(envelope_decode(a, l1, &d, err, sizeof(err)) == 0, "round %u: %s", round,
                      err);
        ck_assert_uint_eq(d.line_len, len);
        ck_assert_int_eq(memcmp(d.line, line, len), 0);
        envelope_release(&d);
        json_decref(ja);
        json_decref(jb);
        free(a);
        free(b);
        free(line);
    }
}
END_TEST

START_TEST(test_decide_time)
{
    struct record_ctx c = {.max_past_us = 366LL * 86400 * 1000000, .max_future_us = 3600000000LL};
    int64_t now = 1764186645000000, out;
    ck_assert_int_eq(record_decide_time(&c, true, now - 1000, now, &out), TIME_SOURCE_PAYLOAD);
    ck_assert_int_eq(out, now - 1000);
    ck_assert_int_eq(record_decide_time(&c, false, 0, now, &out), TIME_SOURCE_READ);
    ck_assert_int_eq(out, now);
    /* just inside and just outside both bounds */
    ck_assert_int_eq(record_decide_time(&c, true, now - c.max_past_us, now, &out),
                     TIME_SOURCE_PAYLOAD);
    ck_assert_int_eq(record_decide_time(&c, true, now - c.max_past_us - 1, now, &out),
                     TIME_SOURCE_READ);
    ck_assert_int_eq(out, now);
    ck_assert_int_eq(record_decide_time(&c, true, now + c.max_future_us, now, &out),
                     TIME_SOURCE_PAYLOAD);
    ck_assert_int_eq(record_decide_time(&c, true, now + c.max_future_us + 1, now, &out),
                     TIME_SOURCE_READ);
}
END_TEST

START_TEST(test_encode_parses_payload_time)
{
    struct record_ctx c = {.source_name = "s/p/c",
                           .max_past_us = 366LL * 86400 * 1000000,
                           .max_future_us = 3600000000LL};
    const char *rec = "{\"time\":\"2026-11-26T10:00:00Z\",\"actor\":\"ann\"}";
    uint8_t prev[32] = {0}, hash[32];
    chain_next(prev, 0, rec, strlen(rec), hash);
    struct record_in in = {.kind = FORMAT_JSON,
                           .stream_hex = "0123456789abcdef0123456789abcdef",
                           .path = "/x.log",
                           .prev = prev,
                           .hash = hash,
                           .data = (const uint8_t *)rec,
                           .len = strlen(rec),
                           .read_time_us = 1795722645000000};
    struct field_map map = {0};
    in.map = &map;
    size_t len;
    bool failed = true;
    char *out = record_encode(&c, &in, &len, &failed);
    ck_assert(!failed);
    struct envelope d;
    memset(&d, 0, sizeof(d));
    char err[128];
    ck_assert_msg(envelope_decode(out, len, &d, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(d.time_source, TIME_SOURCE_PAYLOAD);
    ck_assert_int_eq(d.time_us, 1795687200000000); /* 2026-11-26T10:00:00Z */
    ck_assert_str_eq(d.fields.actor, "ann");
    ck_assert_str_eq(d.format, "json");
    envelope_release(&d);
    free(out);
    /* not JSON: shipped raw, counted by the caller */
    in.data = (const uint8_t *)"not json";
    in.len = 8;
    chain_next(prev, 0, in.data, in.len, hash);
    out = record_encode(&c, &in, &len, &failed);
    ck_assert(failed);
    memset(&d, 0, sizeof(d));
    ck_assert_msg(envelope_decode(out, len, &d, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(d.format, "raw");
    ck_assert_int_eq(d.time_source, TIME_SOURCE_READ);
    envelope_release(&d);
    free(out);
}
END_TEST

START_TEST(test_chain_hasher_matches_chain_next)
{
    struct chain_hasher *h = chain_hasher_new();
    srand(5);
    uint8_t prev[CHAIN_HASH_LEN], a[CHAIN_HASH_LEN], b[CHAIN_HASH_LEN], rec[300];
    for (int round = 0; round < 500; round++) {
        for (size_t i = 0; i < sizeof(prev); i++)
            prev[i] = (uint8_t)rand();
        size_t len = (size_t)(rand() % (int)sizeof(rec));
        for (size_t i = 0; i < len; i++)
            rec[i] = (uint8_t)rand();
        uint64_t seq = (uint64_t)rand() << 20 | (uint64_t)round;
        chain_hasher_next(h, prev, seq, rec, len, a);
        chain_next(prev, seq, rec, len, b);
        ck_assert_int_eq(memcmp(a, b, CHAIN_HASH_LEN), 0);
    }
    chain_hasher_free(h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_record");
    TCase *tc = tcase_create("record");
    tcase_add_test(tc, test_same_json_as_envelope_encode);
    tcase_add_test(tc, test_decide_time);
    tcase_add_test(tc, test_chain_hasher_matches_chain_next);
    tcase_add_test(tc, test_encode_parses_payload_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
