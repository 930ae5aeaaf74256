/* Envelope building: record_encode's messages decode and verify with
 * envelope_decode and carry the record exactly; the time decision. */
#include <stdlib.h>
#include <string.h>

#include "agent/record.h"
#include "common/envelope.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

/* record_encode's output (envelope_encode_tc with the context's cache: its
 * bytes are checked against jansson in test_envelope.c) decodes, verifies
 * against the chain, and carries the record and the context's metadata. */
START_TEST(test_encode_decodes_and_verifies)
{
    static const uint8_t alphabet[] = {'a',  '"',  '\\', 0,    1,    0x1f, 0x7f, '\n', '\r', '\t',
                                       0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff, 0xed, 0xa0, 0x80, 'z'};
    struct record_ctx c = {.source_name = "ns/pod/app",
                           .host = "node-1",
                           .pod = "pod \"q\" \\ \x01",
                           .max_past_us = 366LL * 86400 * 1000000,
                           .max_future_us = 3600000000LL};
    struct field_map map = {0};
    uint8_t prev[CHAIN_HASH_LEN], hash[CHAIN_HASH_LEN];
    chain_genesis("0123456789abcdef0123456789abcdef", prev);
    srand(3);
    for (unsigned round = 0; round < 2000; round++) {
        size_t len = (size_t)(rand() % 80);
        uint8_t *line = xmalloc(len + 1);
        for (size_t i = 0; i < len; i++)
            line[i] =
                round % 3 == 0 ? (uint8_t)('a' + rand() % 26) : alphabet[rand() % sizeof(alphabet)];
        chain_next(prev, round, line, len, hash);
        struct record_in in = {.kind = FORMAT_RAW,
                               .map = &map,
                               .stream_hex = "0123456789abcdef0123456789abcdef",
                               .path = round % 5 ? "/var/log/a.log" : "/var/log/bad\xff name.log",
                               .seq = round,
                               .offset = (uint64_t)round * 1000,
                               .truncated = round % 4 ? 0 : round,
                               .prev = prev,
                               .hash = hash,
                               .data = line,
                               .len = len,
                               /* crosses seconds: exercises the time cache */
                               .read_time_us = 1764186645123456 + (int64_t)round * 777777};
        size_t elen;
        bool failed = true;
        const char *js = record_encode(&c, &in, &elen, &failed);
        ck_assert(!failed);
        ck_assert_uint_eq(strlen(js), elen);
        struct envelope d;
        memset(&d, 0, sizeof(d));
        char err[128];
        ck_assert_msg(envelope_decode(js, elen, &d, err, sizeof(err)) == 0, "round %u: %s\n%s",
                      round, err, js);
        ck_assert_uint_eq(d.line_len, len);
        ck_assert_int_eq(memcmp(d.line, line, len), 0);
        ck_assert_uint_eq(d.seq, round);
        ck_assert_uint_eq(d.offset, (uint64_t)round * 1000);
        ck_assert_uint_eq(d.truncated_bytes, in.truncated);
        ck_assert_mem_eq(d.prev, prev, CHAIN_HASH_LEN);
        ck_assert_int_eq(d.time_source, TIME_SOURCE_READ);
        ck_assert_int_eq(d.time_us, in.read_time_us);
        ck_assert_int_eq(d.read_time_us, in.read_time_us);
        ck_assert_str_eq(d.source.name, "ns/pod/app");
        ck_assert_str_eq(d.source.host, "node-1");
        ck_assert_str_eq(d.source.pod, "pod \"q\" \\ \x01");
        ck_assert_ptr_null(d.source.namespace_);
        ck_assert_str_eq(d.source.path,
                         round % 5 ? "/var/log/a.log" : "/var/log/bad\xef\xbf\xbd name.log");
        ck_assert_str_eq(d.format, "raw");
        /* The same bytes as the uncached encoder gives for what was decoded. */
        size_t len2;
        char *again = envelope_encode(&d, &len2);
        ck_assert(len2 == elen && memcmp(again, js, elen) == 0);
        free(again);
        envelope_release(&d);
        free(line);
        memcpy(prev, hash, CHAIN_HASH_LEN);
    }
    record_ctx_release(&c);
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
    const char *out = record_encode(&c, &in, &len, &failed);
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
    record_ctx_release(&c);
}
END_TEST

/* The context prepares the format of the last input it saw; records of
 * inputs that alternate (other kind, other field map) still get their own
 * input's fields. */
START_TEST(test_encode_alternating_inputs)
{
    static struct record_ctx c = {.source_name = "s",
                                  .max_past_us = 100LL * 366 * 86400 * 1000000,
                                  .max_future_us = 100LL * 366 * 86400 * 1000000};
    struct field_map by_user = {.actor = "user.name"}, by_who = {.actor = "who"};
    const char *line = "{\"actor\":\"a\",\"user\":{\"name\":\"u\"},\"who\":\"w\","
                       "\"stageTimestamp\":\"2026-11-26T19:50:45Z\",\"verb\":\"get\"}";
    struct {
        enum format_kind kind;
        const struct field_map *map;
        const char *actor, *action;
    } inputs[] = {{FORMAT_JSON, NULL, "a", "get"},
                  {FORMAT_JSON, &by_user, "u", "get"},
                  {FORMAT_JSON, &by_who, "w", "get"},
                  {FORMAT_K8S_AUDIT, NULL, NULL, "get"},
                  {FORMAT_RAW, NULL, NULL, NULL}};
    uint8_t prev[CHAIN_HASH_LEN], hash[CHAIN_HASH_LEN];
    chain_genesis("0123456789abcdef0123456789abcdef", prev);
    for (unsigned round = 0; round < 20; round++) {
        size_t i = (round * 7) % 5;
        chain_next(prev, round, line, strlen(line), hash);
        struct record_in in = {.kind = inputs[i].kind,
                               .map = inputs[i].map,
                               .stream_hex = "0123456789abcdef0123456789abcdef",
                               .path = "/p",
                               .seq = round,
                               .prev = prev,
                               .hash = hash,
                               .data = (const uint8_t *)line,
                               .len = strlen(line),
                               .read_time_us = 1764186645123456};
        size_t elen;
        bool failed = true;
        const char *js = record_encode(&c, &in, &elen, &failed);
        ck_assert(!failed);
        struct envelope d;
        memset(&d, 0, sizeof(d));
        char err[128];
        ck_assert_msg(envelope_decode(js, elen, &d, err, sizeof(err)) == 0, "%s", err);
        ck_assert_str_eq(d.format, format_kind_name(inputs[i].kind));
        if (inputs[i].actor)
            ck_assert_str_eq(d.fields.actor, inputs[i].actor);
        else
            ck_assert_ptr_null(d.fields.actor);
        if (inputs[i].action)
            ck_assert_str_eq(d.fields.action, inputs[i].action);
        else
            ck_assert_ptr_null(d.fields.action);
        envelope_release(&d);
        memcpy(prev, hash, CHAIN_HASH_LEN);
    }
    record_ctx_release(&c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("agent_record");
    TCase *tc = tcase_create("record");
    tcase_add_test(tc, test_encode_decodes_and_verifies);
    tcase_add_test(tc, test_decide_time);
    tcase_add_test(tc, test_encode_parses_payload_time);
    tcase_add_test(tc, test_encode_alternating_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
