/* The envelope codec: round trips of every field, line vs line_b64, every
 * decode failure reason, the schema's keys, the checked-in fixtures (made by
 * an independent Python generator) and a deterministic fuzz loop. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/envelope.h"
#include "common/hashchain.h"
#include "common/timeutil.h"
#include "common/utf8.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static const char STREAM[] = "5f0c2a9e7b1d4c3a8e6f1029384756ab";

/* A complete, consistent envelope for `line` at `seq` (prev = genesis). */
static void make_env(struct envelope *e, const void *line, size_t len, uint64_t seq)
{
    memset(e, 0, sizeof(*e));
    e->v = 1;
    memcpy(e->stream, STREAM, sizeof(STREAM));
    e->seq = seq;
    e->offset = 8812;
    chain_genesis(STREAM, e->prev);
    e->line = xmalloc(len + 1);
    if (len)
        memcpy(e->line, line, len);
    e->line_len = len;
    chain_next(e->prev, e->seq, e->line, e->line_len, e->hash);
    chain_id(e->hash, e->id);
    e->time_us = 1795722645123456LL;
    e->time_source = TIME_SOURCE_PAYLOAD;
    e->read_time_us = 1795722646000001LL;
    e->source.name = xstrdup("ward-7/ehr-0/app");
    e->source.host = xstrdup("node-3");
    e->source.namespace_ = xstrdup("ward-7");
    e->source.pod = xstrdup("ehr-0");
    e->source.container = xstrdup("app");
    e->source.path = xstrdup("/var/log/audit/ehr.log");
    e->format = xstrdup("json");
    e->fields.tenant = xstrdup("st-mary");
    e->fields.actor = xstrdup("dr.house");
    e->fields.action = xstrdup("read");
    e->fields.resource = xstrdup("patient/42");
    e->fields.outcome = xstrdup("success");
}

static char *encode(const struct envelope *e, size_t *len)
{
    char *s = envelope_encode(e, len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(strlen(s), *len);
    return s;
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (!a || !b)
        ck_assert_ptr_eq(a, b);
    else
        ck_assert_str_eq(a, b);
}

static void assert_same(const struct envelope *a, const struct envelope *b)
{
    ck_assert_int_eq(b->v, 1);
    ck_assert_str_eq(a->id, b->id);
    ck_assert_str_eq(a->stream, b->stream);
    ck_assert_uint_eq(a->seq, b->seq);
    ck_assert_uint_eq(a->offset, b->offset);
    ck_assert_mem_eq(a->hash, b->hash, CHAIN_HASH_LEN);
    ck_assert_mem_eq(a->prev, b->prev, CHAIN_HASH_LEN);
    ck_assert_int_eq(a->time_us, b->time_us);
    ck_assert_int_eq(a->time_source, b->time_source);
    ck_assert_int_eq(a->read_time_us, b->read_time_us);
    assert_str_or_null(a->source.name, b->source.name);
    assert_str_or_null(a->source.host, b->source.host);
    assert_str_or_null(a->source.namespace_, b->source.namespace_);
    assert_str_or_null(a->source.pod, b->source.pod);
    assert_str_or_null(a->source.container, b->source.container);
    assert_str_or_null(a->source.path, b->source.path);
    assert_str_or_null(a->format, b->format);
    assert_str_or_null(a->fields.tenant, b->fields.tenant);
    assert_str_or_null(a->fields.actor, b->fields.actor);
    assert_str_or_null(a->fields.action, b->fields.action);
    assert_str_or_null(a->fields.resource, b->fields.resource);
    assert_str_or_null(a->fields.outcome, b->fields.outcome);
    ck_assert_uint_eq(a->line_len, b->line_len);
    ck_assert_ptr_nonnull(b->line);
    if (a->line_len)
        ck_assert_mem_eq(a->line, b->line, a->line_len);
    ck_assert_int_eq(b->line[b->line_len], 0);
    ck_assert_uint_eq(a->truncated_bytes, b->truncated_bytes);
}

/* Encode, decode, compare; returns the JSON (caller frees). */
static char *round_trip(const struct envelope *e)
{
    size_t len;
    char *js = encode(e, &len);
    struct envelope d = {0};
    char err[128] = "";
    ck_assert_msg(envelope_decode(js, len, &d, err, sizeof(err)) == 0, "decode: %s", err);
    assert_same(e, &d);
    envelope_release(&d);
    return js;
}

START_TEST(round_trip_every_field)
{
    struct envelope e;
    const char line[] =
        "{\"ts\":\"2026-11-26T19:50:45.123456Z\",\"actor\":\"dr.house\",\"é\":\"✓\"}";
    make_env(&e, line, strlen(line), 41);
    e.truncated_bytes = 17;
    e.time_source = TIME_SOURCE_READ;
    e.time_us = -1; /* before the epoch survives too */
    char *js = round_trip(&e);
    ck_assert_ptr_nonnull(strstr(js, "\"truncated_bytes\":17"));
    ck_assert_ptr_nonnull(strstr(js, "\"time\":\"1969-12-31T23:59:59.999999Z\""));
    ck_assert_ptr_nonnull(strstr(js, "\"time_source\":\"read\""));
    ck_assert_ptr_null(strstr(js, "line_b64"));
    ck_assert_ptr_null(strchr(js, '\n')); /* compact */
    free(js);
    envelope_release(&e);
    ck_assert_ptr_null(e.line); /* release zeroes */
}
END_TEST

START_TEST(absent_members)
{
    struct envelope e;
    make_env(&e, "x", 1, 0);
    free(e.source.host);
    free(e.source.path);
    e.source.host = e.source.path = NULL;
    free(e.fields.actor);
    free(e.fields.outcome);
    e.fields.actor = e.fields.outcome = NULL;
    char *js = round_trip(&e);
    ck_assert_ptr_null(strstr(js, "\"host\""));
    ck_assert_ptr_null(strstr(js, "\"path\""));
    ck_assert_ptr_null(strstr(js, "truncated_bytes"));
    ck_assert_ptr_nonnull(strstr(js, "\"actor\":null"));
    ck_assert_ptr_nonnull(strstr(js, "\"outcome\":null"));
    free(js);
    envelope_release(&e);
    envelope_release(NULL);
}
END_TEST

START_TEST(key_order_is_stable)
{
    static const char *const want[] = {
        "v",           "id",        "stream", "seq",    "offset", "hash", "prev",           "time",
        "time_source", "read_time", "source", "format", "fields", "line", "truncated_bytes"};
    static const char *const src[] = {"name", "host", "namespace", "pod", "container", "path"};
    static const char *const fld[] = {"tenant", "actor", "action", "resource", "outcome"};
    struct envelope e;
    make_env(&e, "abc", 3, 5);
    e.truncated_bytes = 1;
    size_t len;
    char *js = encode(&e, &len);
    json_t *root = json_loadb(js, len, 0, NULL);
    ck_assert_ptr_nonnull(root);
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        ck_assert_uint_lt(i, sizeof(want) / sizeof(want[0]));
        ck_assert_str_eq(key, want[i++]);
    }
    ck_assert_uint_eq(i, sizeof(want) / sizeof(want[0]));
    i = 0;
    json_object_foreach(json_object_get(root, "source"), key, val) ck_assert_str_eq(key, src[i++]);
    ck_assert_uint_eq(i, 6);
    i = 0;
    json_object_foreach(json_object_get(root, "fields"), key, val) ck_assert_str_eq(key, fld[i++]);
    ck_assert_uint_eq(i, 5);
    ck_assert(json_is_integer(json_object_get(root, "seq")));
    ck_assert(json_is_integer(json_object_get(root, "offset")));
    json_decref(root);
    free(js);
    envelope_release(&e);
}
END_TEST

START_TEST(invalid_utf8_goes_base64)
{
    /* Lengths 1..7 cover every padding case; each holds an invalid byte. */
    const uint8_t bytes[] = {0xff, 'a',  0xc3, 0x28,
                             0xed, 0xa0, 0x80}; /* bad, overlong-ish, surrogate */
    for (size_t n = 1; n <= sizeof(bytes); n++) {
        struct envelope e;
        make_env(&e, bytes, n, n);
        char *js = round_trip(&e);
        ck_assert_ptr_nonnull(strstr(js, "\"line_b64\":\""));
        ck_assert_ptr_null(strstr(js, "\"line\":"));
        free(js);
        envelope_release(&e);
    }
    /* Known base64 for a fixed input (RFC 4648 test vector "foob" + 0xff). */
    struct envelope e;
    make_env(&e, "foob\xff", 5, 0);
    size_t len;
    char *js = encode(&e, &len);
    ck_assert_ptr_nonnull(strstr(js, "\"line_b64\":\"Zm9vYv8=\""));
    free(js);
    envelope_release(&e);
}
END_TEST

START_TEST(nul_survives_in_line)
{
    const char rec[] = "before\0after\0";
    struct envelope e;
    make_env(&e, rec, sizeof(rec) - 1, 2);
    char *js = round_trip(&e);
    ck_assert_ptr_nonnull(strstr(js, "\"line\":\"before\\u0000after\\u0000\""));
    free(js);
    envelope_release(&e);
}
END_TEST

START_TEST(crlf_kept)
{
    struct envelope e;
    make_env(&e, "a=1 b=2\r", 8, 9);
    char *js = round_trip(&e);
    ck_assert_ptr_nonnull(strstr(js, "\"line\":\"a=1 b=2\\r\""));
    free(js);
    envelope_release(&e);
}
END_TEST

START_TEST(big_record_512k)
{
    size_t n = 512 * 1024;
    char *big = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(' ' + i % 90);
    struct envelope e;
    make_env(&e, big, n, 1000);
    e.truncated_bytes = 4096;
    free(round_trip(&e));
    envelope_release(&e);
    /* The same size as base64. */
    big[n / 2] = (char)0xff;
    make_env(&e, big, n, 1001);
    free(round_trip(&e));
    envelope_release(&e);
    free(big);
}
END_TEST

START_TEST(empty_line_and_large_ints)
{
    struct envelope e;
    make_env(&e, "", 0, ENVELOPE_MAX_INT);
    e.offset = ENVELOPE_MAX_INT;
    e.truncated_bytes = ENVELOPE_MAX_INT;
    free(round_trip(&e));
    envelope_release(&e);
}
END_TEST

START_TEST(encode_refuses_caller_bugs)
{
    struct envelope e;
    size_t len = 99;
    make_env(&e, "x", 1, 0);
    e.seq = ENVELOPE_MAX_INT + 1;
    ck_assert_ptr_null(envelope_encode(&e, &len));
    e.seq = 0;
    e.offset = UINT64_MAX;
    ck_assert_ptr_null(envelope_encode(&e, &len));
    e.offset = 0;
    free(e.format);
    e.format = NULL;
    ck_assert_ptr_null(envelope_encode(&e, &len));
    envelope_release(&e);
}
END_TEST

START_TEST(meta_invalid_utf8_replaced)
{
    struct envelope e;
    make_env(&e, "x", 1, 0);
    free(e.source.path);
    e.source.path = xstrdup("/var/log/caf\xe9.log");
    size_t len;
    char *js = encode(&e, &len);
    struct envelope d = {0};
    char err[128];
    ck_assert_int_eq(envelope_decode(js, len, &d, err, sizeof(err)), 0);
    ck_assert_str_eq(d.source.path, "/var/log/caf\xef\xbf\xbd.log");
    envelope_release(&d);
    free(js);
    envelope_release(&e);
}
END_TEST

/* ------------------------------------------- jansson reference encoder */

static uint32_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*x >> 33);
}

/* What envelope_encode must produce, built the slow, obvious way: a jansson
 * tree dumped with JSON_COMPACT | JSON_PRESERVE_ORDER. Test-only. */
static json_t *ref_meta(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n;
    char *fixed = utf8_sanitize(s, strlen(s), &n);
    j = json_stringn(fixed, n);
    free(fixed);
    ck_assert_ptr_nonnull(j);
    return j;
}

static json_t *ref_time(int64_t us)
{
    char ts[TIME_RFC3339_LEN];
    time_format_us(us, ts);
    return json_string(ts);
}

static json_t *ref_hex(const uint8_t *h)
{
    char hex[2 * CHAIN_HASH_LEN + 1];
    hex_encode(h, CHAIN_HASH_LEN, hex);
    return json_string(hex);
}

static char *ref_encode(const struct envelope *e)
{
    static const char *const skeys[] = {"name", "host", "namespace", "pod", "container", "path"};
    static const char *const fkeys[] = {"tenant", "actor", "action", "resource", "outcome"};
    const char *svals[] = {e->source.name, e->source.host,      e->source.namespace_,
                           e->source.pod,  e->source.container, e->source.path};
    const char *fvals[] = {e->fields.tenant, e->fields.actor, e->fields.action, e->fields.resource,
                           e->fields.outcome};
    json_t *root = json_object();
    json_object_set_new(root, "v", json_integer(1));
    json_object_set_new(root, "id", ref_meta(e->id));
    json_object_set_new(root, "stream", ref_meta(e->stream));
    json_object_set_new(root, "seq", json_integer((json_int_t)e->seq));
    json_object_set_new(root, "offset", json_integer((json_int_t)e->offset));
    json_object_set_new(root, "hash", ref_hex(e->hash));
    json_object_set_new(root, "prev", ref_hex(e->prev));
    json_object_set_new(root, "time", ref_time(e->time_us));
    json_object_set_new(root, "time_source",
                        json_string(e->time_source == TIME_SOURCE_PAYLOAD ? "payload" : "read"));
    json_object_set_new(root, "read_time", ref_time(e->read_time_us));
    json_t *src = json_object();
    for (size_t i = 0; i < 6; i++)
        if (svals[i])
            json_object_set_new(src, skeys[i], ref_meta(svals[i]));
    json_object_set_new(root, "source", src);
    json_object_set_new(root, "format", ref_meta(e->format));
    json_t *fields = json_object();
    for (size_t i = 0; i < 5; i++)
        json_object_set_new(fields, fkeys[i], fvals[i] ? ref_meta(fvals[i]) : json_null());
    json_object_set_new(root, "fields", fields);
    json_t *line = json_stringn(e->line ? (const char *)e->line : "", e->line_len);
    if (line) {
        json_object_set_new(root, "line", line);
    } else {
        char *b64 = xmalloc(4 * ((e->line_len + 2) / 3) + 1);
        int n = EVP_EncodeBlock((unsigned char *)b64, e->line, (int)e->line_len);
        json_object_set_new(root, "line_b64", json_stringn(b64, (size_t)n));
        free(b64);
    }
    if (e->truncated_bytes)
        json_object_set_new(root, "truncated_bytes", json_integer((json_int_t)e->truncated_bytes));
    char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_ptr_nonnull(out);
    json_decref(root);
    return out;
}

/* envelope_encode (and the cached variant, when tc) equal the reference. */
static void assert_matches_ref(const struct envelope *e, struct envelope_time_cache *tc,
                               const char *what)
{
    char *want = ref_encode(e);
    size_t len;
    char *got = tc ? envelope_encode_tc(e, &len, tc) : envelope_encode(e, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(strlen(got), len);
    ck_assert_msg(len == strlen(want) && memcmp(got, want, len) == 0, "%s:\n got  %s\n want %s",
                  what, got, want);
    free(got);
    free(want);
}

START_TEST(escapes_match_jansson)
{
    /* Every control byte, DEL, the quote, backslash and slash, 2/3/4-byte
     * sequences, U+2028, and a run long enough for the 8-byte scanner. */
    uint8_t line[160];
    size_t n = 0;
    for (int c = 0; c < 0x20; c++)
        line[n++] = (uint8_t)c;
    const char tail[] = "\x7f\"\\/ plain ascii run of text \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                        "\xe2\x80\xa8 x\"y\\z\b\f";
    memcpy(line + n, tail, sizeof(tail) - 1);
    n += sizeof(tail) - 1;
    struct envelope e;
    make_env(&e, line, n, 7);
    char *js = encode(&e, &n);
    /* Spot checks of the spelling itself, then the whole against jansson. */
    ck_assert_ptr_nonnull(strstr(js, "\"line\":\"\\u0000\\u0001"));
    ck_assert_ptr_nonnull(strstr(js, "\\u0007\\b\\t\\n\\u000B\\f\\r\\u000E"));
    ck_assert_ptr_nonnull(strstr(js, "\\u001F\x7f\\\"\\\\/ plain"));
    free(js);
    assert_matches_ref(&e, NULL, "line escapes");

    /* The same bytes (but NUL: C strings) in every metadata string. */
    char meta[160];
    size_t m = 0;
    for (int c = 1; c < 0x20; c++)
        meta[m++] = (char)c;
    memcpy(meta + m, tail, sizeof(tail));
    char **slots[] = {&e.source.name,   &e.source.host,      &e.source.namespace_,
                      &e.source.pod,    &e.source.container, &e.source.path,
                      &e.format,        &e.fields.tenant,    &e.fields.actor,
                      &e.fields.action, &e.fields.resource,  &e.fields.outcome};
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        free(*slots[i]);
        *slots[i] = xstrdup(meta);
    }
    assert_matches_ref(&e, NULL, "metadata escapes");
    /* Invalid UTF-8 in metadata: U+FFFD, then escaped like the rest. */
    free(e.source.path);
    e.source.path = xstrdup("bad\xff\x01\xc3(\xed\xa0\x80\xf4\x90\x80\x80\"end\xe2\x82");
    assert_matches_ref(&e, NULL, "metadata with invalid UTF-8");
    envelope_release(&e);
}
END_TEST

START_TEST(random_envelopes_match_jansson)
{
    static const uint8_t alphabet[] = {'a',  '"',  '\\', 0,    1,    0x1f, 0x7f, '\n', '\r', '\t',
                                       '\b', '\f', '/',  0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff, 0xed,
                                       0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x80, 0xf4, 0x90, 'z',  ' '};
    static const char *const metas[] = {"ns/pod/app", "pod \"q\" \\ \x01\x1f/",
                                        "caf\xe9",    "dr. \xc3\xa9mile",
                                        "",           "\xf0\x9f\x98\x80\xed\xa0\x80"};
    static const int64_t times[] = {
        -1,        0,        999999, 1764186645123456, 253402300799999999, 253402300800000000,
        INT64_MAX, INT64_MIN};
    uint64_t x = 11;
    struct envelope_time_cache tc = {0};
    for (unsigned round = 0; round < 3000; round++) {
        size_t len = lcg(&x) % 100;
        uint8_t *line = xmalloc(len + 1);
        bool plain = round % 4 == 0;
        for (size_t i = 0; i < len; i++)
            line[i] = plain ? (uint8_t)('a' + lcg(&x) % 26) : alphabet[lcg(&x) % sizeof(alphabet)];
        struct envelope e;
        make_env(&e, line, len, round);
        free(line);
        char **slots[] = {&e.source.host,      &e.source.namespace_, &e.source.pod,
                          &e.source.container, &e.source.path,       &e.fields.tenant,
                          &e.fields.actor,     &e.fields.action,     &e.fields.resource,
                          &e.fields.outcome};
        for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
            free(*slots[i]);
            uint32_t r = lcg(&x) % 8;
            *slots[i] = r < 6 ? xstrdup(metas[r]) : NULL;
        }
        e.seq = lcg(&x) % 3 ? lcg(&x) : ENVELOPE_MAX_INT;
        e.offset = (uint64_t)lcg(&x) << 21;
        e.truncated_bytes = lcg(&x) % 3 ? 0 : lcg(&x);
        e.time_source = lcg(&x) % 2 ? TIME_SOURCE_READ : TIME_SOURCE_PAYLOAD;
        /* Mostly moving forward by less than a second (the cache's case),
         * sometimes a jump or an edge value. */
        if (lcg(&x) % 10 == 0)
            e.time_us = times[lcg(&x) % (sizeof(times) / sizeof(times[0]))];
        else
            e.time_us = 1764186645000000 + (int64_t)round * 345679;
        e.read_time_us = lcg(&x) % 2 ? e.time_us : 1764186645000000 + (int64_t)lcg(&x);
        assert_matches_ref(&e, round % 2 ? &tc : NULL, "random envelope");
        envelope_release(&e);
    }
}
END_TEST

START_TEST(time_cache_is_byte_identical)
{
    /* Walk across second, minute, day and year boundaries, backwards too,
     * with one cache: every timestamp equals time_format_us's. */
    static const int64_t starts[] = {1767225599000000, /* 2025-12-31T23:59:59Z */
                                     951782399000000,  /* 2000-02-29T23:59:59Z */
                                     0, 253402300799000000};
    struct envelope e;
    make_env(&e, "t", 1, 1);
    struct envelope_time_cache tc = {0};
    for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
        for (int i = 0; i < 400; i++) {
            int64_t step = i % 7 == 6 ? -1300001 : 7919;
            e.time_us = starts[s] + (int64_t)i * step;
            e.read_time_us = e.time_us + (i % 3) * 1000000;
            assert_matches_ref(&e, &tc, "time cache");
        }
    }
    envelope_release(&e);
}
END_TEST

/* ------------------------------------------------------ failure reasons */

/* The valid envelope as a jansson object to break one thing at a time. */
static json_t *valid_obj(void)
{
    struct envelope e;
    make_env(&e, "hello", 5, 3);
    size_t len;
    char *js = encode(&e, &len);
    json_t *o = json_loadb(js, len, 0, NULL);
    ck_assert_ptr_nonnull(o);
    free(js);
    envelope_release(&e);
    return o;
}

/* The decode error of buf (its detail in detail[128]). */
static enum envelope_err decode_err(const char *buf, size_t len, char *detail)
{
    struct envelope d = {0};
    enum envelope_err rc = envelope_decode(buf, len, &d, detail, 128);
    envelope_release(&d);
    return rc;
}

/* The whole reason (strerror + detail) is the text the DLQ header carries. */
static void expect_reason_buf(const char *buf, size_t len, const char *want)
{
    char detail[128] = "x", text[256];
    enum envelope_err rc = decode_err(buf, len, detail);
    envelope_error_text(rc, detail, text, sizeof(text));
    ck_assert_msg(rc != ENVELOPE_OK && strcmp(text, want) == 0, "want '%s', got rc=%d '%s'", want,
                  rc, text);
}

static void expect_reason(json_t *o, const char *want)
{
    char *js = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    expect_reason_buf(js, strlen(js), want);
    free(js);
    json_decref(o);
}

static json_t *with(const char *key, json_t *val)
{
    json_t *o = valid_obj();
    if (val)
        json_object_set_new(o, key, val);
    else
        json_object_del(o, key);
    return o;
}

static json_t *with_in(const char *obj, const char *key, json_t *val)
{
    json_t *o = valid_obj();
    json_t *inner = json_object_get(o, obj);
    if (val)
        json_object_set_new(inner, key, val);
    else
        json_object_del(inner, key);
    return o;
}

START_TEST(reason_not_json)
{
    char err[128] = "";
    ck_assert_int_eq(decode_err("{\"v\":1", 6, err), ENVELOPE_ERR_NOT_JSON);
    ck_assert_msg(*err, "no parser message");
    ck_assert_int_eq(decode_err("", 0, err), ENVELOPE_ERR_NOT_JSON);
    ck_assert_int_eq(decode_err(NULL, 0, err), ENVELOPE_ERR_NOT_JSON);
    /* Duplicate keys are ambiguous: refused. */
    ck_assert_int_eq(decode_err("{\"v\":1,\"v\":1}", 13, err), ENVELOPE_ERR_NOT_JSON);
    /* Trailing garbage. */
    ck_assert_int_eq(decode_err("{} x", 4, err), ENVELOPE_ERR_NOT_JSON);
    /* The detail is printable ASCII even when the input is not. */
    ck_assert_int_eq(decode_err("\xff\x01", 2, err), ENVELOPE_ERR_NOT_JSON);
    for (char *p = err; *p; p++)
        ck_assert(*p >= 0x20 && *p < 0x7f);
    char text[256];
    envelope_error_text(ENVELOPE_ERR_NOT_JSON, err, text, sizeof(text));
    ck_assert_msg(strncmp(text, "not JSON: ", 10) == 0, "%s", text);
    /* The parser's message without the token it quotes: record content
     * stays out of DLQ headers and logs (issue 9 item 13). */
    const char *leak = "{\"v\":1,\"line\":\"s3cretMARKER\x01\"}";
    ck_assert_int_eq(decode_err(leak, strlen(leak), err), ENVELOPE_ERR_NOT_JSON);
    ck_assert_msg(strstr(err, "MARKER") == NULL && strstr(err, "s3cret") == NULL, "%s", err);
    ck_assert_msg(strstr(err, "at byte") != NULL, "%s", err);
    /* A NULL detail buffer is allowed. */
    struct envelope d = {0};
    ck_assert_int_eq(envelope_decode("[]", 2, &d, NULL, 0), ENVELOPE_ERR_NOT_OBJECT);
    envelope_release(&d);
}
END_TEST

START_TEST(reason_not_object)
{
    expect_reason(json_array(), "not an object");
    expect_reason(json_string("x"), "not an object");
    expect_reason(json_integer(1), "not an object");
}
END_TEST

START_TEST(reason_version)
{
    expect_reason(with("v", NULL), "missing field: v");
    expect_reason(with("v", json_string("1")), "bad field: v");
    expect_reason(with("v", json_real(1.0)), "bad field: v");
    expect_reason(with("v", json_integer(2)), "unsupported version: 2");
    expect_reason(with("v", json_integer(0)), "unsupported version: 0");
}
END_TEST

START_TEST(reason_missing_fields)
{
    const char *req[] = {"id",   "stream",      "seq",       "offset", "hash",  "prev",
                         "time", "time_source", "read_time", "source", "format"};
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "missing field: %s", req[i]);
        expect_reason(with(req[i], NULL), want);
    }
    expect_reason(with_in("source", "name", NULL), "missing field: source.name");
}
END_TEST

START_TEST(reason_mistyped_fields)
{
    const char *strs[] = {"id",          "stream",    "hash",   "prev", "time",
                          "time_source", "read_time", "format", "line"};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "bad field: %s", strs[i]);
        expect_reason(with(strs[i], json_integer(1)), want);
    }
    expect_reason(with("seq", json_string("41")), "bad field: seq");
    expect_reason(with("seq", json_real(41.0)), "bad field: seq");
    expect_reason(with("seq", json_integer(-1)), "bad field: seq");
    expect_reason(with("seq", json_integer((json_int_t)ENVELOPE_MAX_INT + 1)), "bad field: seq");
    expect_reason(with("offset", json_null()), "bad field: offset");
    expect_reason(with("offset", json_integer(-5)), "bad field: offset");
    expect_reason(with("truncated_bytes", json_integer(-1)), "bad field: truncated_bytes");
    expect_reason(with("truncated_bytes", json_string("3")), "bad field: truncated_bytes");
    expect_reason(with("source", json_string("x")), "bad field: source");
    expect_reason(with("fields", json_array()), "bad field: fields");
    expect_reason(with_in("source", "name", json_null()), "bad field: source.name");
    expect_reason(with_in("source", "pod", json_integer(3)), "bad field: source.pod");
    expect_reason(with_in("source", "path", json_stringn("a\0b", 3)), "bad field: source.path");
    expect_reason(with_in("fields", "actor", json_true()), "bad field: fields.actor");
    expect_reason(with_in("fields", "tenant", json_stringn("t\0", 2)), "bad field: fields.tenant");
}
END_TEST

START_TEST(reason_bad_formats)
{
    expect_reason(with("id", json_string("not-a-uuid")), "bad field: id");
    expect_reason(with("id", json_string("0123456789abcdef0123456789abcdef0123")), "bad field: id");
    expect_reason(with("stream", json_string("5F0C2A9E7B1D4C3A8E6F1029384756AB")),
                  "bad field: stream");
    expect_reason(with("stream", json_string("5f0c2a9e7b1d4c3a8e6f1029384756a")),
                  "bad field: stream");
    expect_reason(with("stream", json_string("5f0c2a9e7b1d4c3a8e6f1029384756ag")),
                  "bad field: stream");
    expect_reason(with("hash", json_string("00")), "bad field: hash");
    expect_reason(with("prev", json_string("zz00000000000000000000000000000000000000000000000000"
                                           "000000000000")),
                  "bad field: prev");
    expect_reason(with("time", json_string("2026-02-30T00:00:00Z")), "bad field: time");
    expect_reason(with("read_time", json_string("yesterday")), "bad field: read_time");
    expect_reason(with("time_source", json_string("clock")), "bad field: time_source");
    expect_reason(with("format", json_string("")), "bad field: format");
    expect_reason(with("format", json_string("JSON")), "bad field: format");
}
END_TEST

START_TEST(reason_line_variants)
{
    json_t *o = valid_obj();
    json_object_set_new(o, "line_b64", json_string("aGVsbG8="));
    expect_reason(o, "both line and line_b64");
    expect_reason(with("line", NULL), "missing field: line or line_b64");
    const char *bad_b64[] = {"aGVsbG8", "aGVs bG8=", "aGVsbG8==", "aG=sbG8=", "a===", "aGVsbG8*"};
    for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++) {
        o = with("line", NULL);
        json_object_set_new(o, "line_b64", json_string(bad_b64[i]));
        expect_reason(o, "bad field: line_b64");
    }
    o = with("line", NULL);
    json_object_set_new(o, "line_b64", json_null());
    expect_reason(o, "bad field: line_b64");
    /* Well-formed base64 of the right bytes decodes and verifies. */
    o = with("line", NULL);
    json_object_set_new(o, "line_b64", json_string("aGVsbG8="));
    char *js = json_dumps(o, JSON_COMPACT);
    struct envelope d = {0};
    char err[128] = "";
    ck_assert_msg(envelope_decode(js, strlen(js), &d, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(d.line_len, 5);
    ck_assert_mem_eq(d.line, "hello", 5);
    envelope_release(&d);
    free(js);
    json_decref(o);
}
END_TEST

START_TEST(reason_unknown_fields)
{
    expect_reason(with("extra", json_integer(1)), "unknown field: extra");
    expect_reason(with_in("source", "node", json_string("n")), "unknown field: source.node");
    expect_reason(with_in("fields", "patient", json_string("p")), "unknown field: fields.patient");
    /* jansson refuses NUL inside keys outright: "v\0x" cannot pass for "v". */
    json_t *o = valid_obj();
    json_object_setn_new(o, "v\0x", 3, json_integer(1));
    char *js = json_dumps(o, JSON_COMPACT);
    struct envelope d = {0};
    char err[128] = "";
    ck_assert_int_eq(envelope_decode(js, strlen(js), &d, err, sizeof(err)), ENVELOPE_ERR_NOT_JSON);
    envelope_release(&d);
    free(js);
    json_decref(o);
}
END_TEST

START_TEST(reason_tampering)
{
    struct envelope e;
    make_env(&e, "user=alice action=read", 22, 12);
    size_t len;
    char *js = encode(&e, &len);
    /* One byte of the line. */
    char *p = strstr(js, "alice");
    ck_assert_ptr_nonnull(p);
    p[0] = 'A';
    expect_reason_buf(js, len, "hash mismatch");
    p[0] = 'a';
    /* seq changed: the hash covers it. */
    json_t *o = json_loadb(js, len, 0, NULL);
    json_object_set_new(o, "seq", json_integer(13));
    expect_reason(o, "hash mismatch");
    /* prev changed. */
    o = json_loadb(js, len, 0, NULL);
    json_object_set_new(
        o, "prev", json_string("0000000000000000000000000000000000000000000000000000000000000000"));
    expect_reason(o, "hash mismatch");
    /* hash replaced by a consistent-looking other hash: id no longer matches... */
    o = json_loadb(js, len, 0, NULL);
    char id[CHAIN_UUID_LEN + 1];
    memcpy(id, e.id, sizeof(id));
    id[0] = id[0] == '0' ? '1' : '0';
    json_object_set_new(o, "id", json_string(id));
    expect_reason(o, "id mismatch");
    /* ...and envelope_verify agrees on the struct. */
    ck_assert_int_eq(envelope_verify(&e), ENVELOPE_OK);
    e.line[0] ^= 1;
    ck_assert_int_eq(envelope_verify(&e), ENVELOPE_ERR_HASH_MISMATCH);
    e.line[0] ^= 1;
    e.id[35] = e.id[35] == 'a' ? 'b' : 'a';
    ck_assert_int_eq(envelope_verify(&e), ENVELOPE_ERR_ID_MISMATCH);
    free(js);
    envelope_release(&e);
}
END_TEST

/* The codes the aggregator classifies by (validate.c maps them to DLQ
 * classes without looking at text): each failure gets the specific one. */
static enum envelope_err code_of(json_t *o, char *detail)
{
    char *js = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    enum envelope_err rc = decode_err(js, strlen(js), detail);
    free(js);
    json_decref(o);
    return rc;
}

START_TEST(error_codes)
{
    char d[128];
    ck_assert_int_eq(code_of(json_array(), d), ENVELOPE_ERR_NOT_OBJECT);
    ck_assert_str_eq(d, "");
    ck_assert_int_eq(code_of(with("v", NULL), d), ENVELOPE_ERR_NO_VERSION);
    ck_assert_int_eq(code_of(with("v", json_string("1")), d), ENVELOPE_ERR_BAD_VERSION);
    ck_assert_int_eq(code_of(with("v", json_integer(7)), d), ENVELOPE_ERR_UNSUPPORTED_VERSION);
    ck_assert_str_eq(d, "7");
    ck_assert_int_eq(code_of(with("seq", NULL), d), ENVELOPE_ERR_MISSING_FIELD);
    ck_assert_str_eq(d, "seq");
    ck_assert_int_eq(code_of(with("seq", json_string("x")), d), ENVELOPE_ERR_BAD_FIELD);
    ck_assert_str_eq(d, "seq");
    /* A time that is there but unreadable (or not a string) is a time
     * problem; a missing one is a schema problem. */
    ck_assert_int_eq(code_of(with("time", json_string("x")), d), ENVELOPE_ERR_BAD_TIME);
    ck_assert_str_eq(d, "time");
    ck_assert_int_eq(code_of(with("read_time", json_integer(1)), d), ENVELOPE_ERR_BAD_TIME);
    ck_assert_str_eq(d, "read_time");
    ck_assert_int_eq(code_of(with("time", NULL), d), ENVELOPE_ERR_MISSING_FIELD);
    ck_assert_str_eq(d, "time");
    ck_assert_int_eq(code_of(with_in("source", "x", json_string("y")), d),
                     ENVELOPE_ERR_UNKNOWN_FIELD);
    ck_assert_str_eq(d, "source.x");
    json_t *o = valid_obj();
    json_object_set_new(o, "line_b64", json_string("aGVsbG8="));
    ck_assert_int_eq(code_of(o, d), ENVELOPE_ERR_LINE_TWICE);
    ck_assert_str_eq(d, "");
    o = valid_obj();
    json_object_set_new(o, "line", json_string("other"));
    ck_assert_int_eq(code_of(o, d), ENVELOPE_ERR_HASH_MISMATCH);

    /* Every code has a text; out of range is not a crash. */
    for (int e = 0; e < ENVELOPE_ERR_COUNT; e++)
        ck_assert_msg(envelope_strerror((enum envelope_err)e)[0] != '\0', "code %d", e);
    ck_assert_str_eq(envelope_strerror(ENVELOPE_OK), "ok");
    ck_assert_str_eq(envelope_strerror((enum envelope_err)99), "unknown error");
    char t[64];
    envelope_error_text(ENVELOPE_ERR_MISSING_FIELD, "seq", t, sizeof(t));
    ck_assert_str_eq(t, "missing field: seq");
    envelope_error_text(ENVELOPE_ERR_HASH_MISMATCH, NULL, t, sizeof(t));
    ck_assert_str_eq(t, "hash mismatch");
}
END_TEST

/* ------------------------------------------------------------ schema */

static json_t *load_schema(void)
{
    char *path = xasprintf("%s/schemas/audit-event.v1.schema.json", test_repo_root());
    json_error_t jerr;
    json_t *s = json_load_file(path, 0, &jerr);
    ck_assert_msg(s != NULL, "%s: %s", path, jerr.text);
    free(path);
    return s;
}

static bool in_array(json_t *arr, const char *key)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), key) == 0) return true;
    return false;
}

/* Every emitted key is a schema property; every required key is emitted. */
static void check_obj_against(json_t *obj, json_t *schema_obj, json_t *defs)
{
    json_t *props = json_object_get(schema_obj, "properties");
    json_t *req = json_object_get(schema_obj, "required");
    ck_assert_ptr_nonnull(props);
    ck_assert(json_is_false(json_object_get(schema_obj, "additionalProperties")));
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        ck_assert_msg(json_object_get(props, key) != NULL, "key '%s' not in schema", key);
    }
    size_t i;
    json_t *r;
    json_array_foreach(req, i, r)
    {
        ck_assert_msg(json_object_get(obj, json_string_value(r)) != NULL,
                      "required '%s' not emitted", json_string_value(r));
    }
    (void)defs;
}

START_TEST(emitted_keys_match_schema)
{
    json_t *schema = load_schema();
    ck_assert_str_eq(json_string_value(json_object_get(schema, "$schema")),
                     "https://json-schema.org/draft/2020-12/schema");
    json_t *props = json_object_get(schema, "properties");
    for (int variant = 0; variant < 2; variant++) {
        struct envelope e;
        make_env(&e, variant ? "\xff" : "ok", variant ? 1 : 2, 1);
        e.truncated_bytes = 3;
        size_t len;
        char *js = encode(&e, &len);
        json_t *o = json_loadb(js, len, 0, NULL);
        check_obj_against(o, schema, NULL);
        check_obj_against(json_object_get(o, "source"), json_object_get(props, "source"), NULL);
        check_obj_against(json_object_get(o, "fields"), json_object_get(props, "fields"), NULL);
        /* Everything the schema lists is something the encoder can emit. */
        const char *key;
        json_t *val;
        json_object_foreach(props, key, val)
        {
            bool other_line = strcmp(key, variant ? "line" : "line_b64") == 0;
            ck_assert_msg(other_line || json_object_get(o, key), "schema key '%s' never emitted",
                          key);
        }
        json_decref(o);
        free(js);
        envelope_release(&e);
    }
    /* line and line_b64: exactly one (oneOf). */
    json_t *one = json_object_get(schema, "oneOf");
    ck_assert_uint_eq(json_array_size(one), 2);
    ck_assert(in_array(json_object_get(json_array_get(one, 0), "required"), "line"));
    ck_assert(in_array(json_object_get(json_array_get(one, 1), "required"), "line_b64"));
    json_decref(schema);
}
END_TEST

/* ---------------------------------------------------------- fixtures */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* valid-*.json decode and re-encode to the same bytes; bad-*.json fail with
 * the reason in bad-*.reason. Each
 * file holds one envelope (a trailing newline is not part of it). */
START_TEST(fixtures)
{
    char *dir = xasprintf("%s/tests/fixtures/envelope", test_repo_root());
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int valid = 0, bad = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 5, ".json") != 0)
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        size_t len;
        char *buf = read_all(path, &len);
        while (len && buf[len - 1] == '\n')
            len--;
        struct envelope e = {0};
        char err[128] = "";
        int rc = envelope_decode(buf, len, &e, err, sizeof(err));
        if (strncmp(de->d_name, "valid-", 6) == 0) {
            ck_assert_msg(rc == 0, "%s: %s", de->d_name, err);
            /* The independent generator and our encoder agree byte for byte. */
            size_t elen;
            char *again = encode(&e, &elen);
            ck_assert_msg(elen == len && memcmp(again, buf, len) == 0, "%s re-encodes as %s",
                          de->d_name, again);
            free(again);
            valid++;
        } else {
            char *rpath = xasprintf("%s/%.*s.reason", dir, (int)(nl - 5), de->d_name);
            size_t rl;
            char *want = read_all(rpath, &rl);
            while (rl && want[rl - 1] == '\n')
                want[--rl] = '\0';
            /* The fixture holds the whole reason, as the DLQ carries it; one
             * ending in '*' is a prefix (jansson's wording varies). */
            char text[256];
            envelope_error_text(rc, err, text, sizeof(text));
            bool prefix = rl && want[rl - 1] == '*';
            bool match = prefix ? strncmp(text, want, rl - 1) == 0 : strcmp(text, want) == 0;
            ck_assert_msg(rc != ENVELOPE_OK && match, "%s: want '%s' got '%s'", de->d_name, want,
                          text);
            free(want);
            free(rpath);
            bad++;
        }
        envelope_release(&e);
        free(buf);
        free(path);
    }
    closedir(d);
    free(dir);
    ck_assert_int_ge(valid, 2);
    ck_assert_int_ge(bad, 2);
}
END_TEST

/* -------------------------------------------------------------- fuzz */

START_TEST(fuzz_mutations)
{
    struct envelope e;
    const uint8_t rec[] = "k=v \xff\x00 end";
    make_env(&e, rec, sizeof(rec) - 1, 77);
    size_t len;
    char *b64 = encode(&e, &len);
    envelope_release(&e);
    make_env(&e, "{\"a\":\"\\u00e9\"}", 14, 78);
    size_t len2;
    char *plain = encode(&e, &len2);
    envelope_release(&e);

    uint64_t x = 42; /* deterministic */
#define RND() lcg(&x)
    char *buf = xmalloc(len + len2 + 64);
    int ok = 0;
    for (int i = 0; i < 30000; i++) {
        const char *src = i & 1 ? b64 : plain;
        size_t n = i & 1 ? len : len2;
        memcpy(buf, src, n);
        switch (RND() % 5) {
        case 0: /* truncate */
            n = RND() % (n + 1);
            break;
        case 1: /* flip bytes */
            for (int k = RND() % 4 + 1; k > 0; k--) {
                size_t at = RND() % n;
                buf[at] = (char)RND();
            }
            break;
        case 2: /* insert interesting bytes */
        {
            static const char ins[] = "\"{}[],:\\0\xff\xc3-e9.";
            size_t at = RND() % n;
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = ins[RND() % (sizeof(ins) - 1)];
            n++;
            break;
        }
        case 3: /* delete a span */
        {
            size_t at = RND() % n, k = RND() % 16;
            if (at + k > n)
                k = n - at;
            memmove(buf + at, buf + at + k, n - at - k);
            n -= k;
            break;
        }
        default: /* random garbage */
            n = RND() % 64;
            for (size_t k = 0; k < n; k++)
                buf[k] = (char)RND();
        }
        /* Decode from an exact-size heap copy so ASan sees any overread. */
        char *exact = xmemdup(buf, n ? n : 1);
        struct envelope d = {0};
        char err[128];
        if (envelope_decode(exact, n, &d, err, sizeof(err)) == 0)
            ok++;
        envelope_release(&d);
        free(exact);
    }
    /* Some mutations are harmless (e.g. flipping a byte of a key's case is
     * not): the loop must have exercised both outcomes. */
    ck_assert_int_gt(ok, 0);
    ck_assert_int_lt(ok, 30000);
    free(buf);
    free(b64);
    free(plain);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("envelope");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, round_trip_every_field);
    tcase_add_test(tc, absent_members);
    tcase_add_test(tc, key_order_is_stable);
    tcase_add_test(tc, invalid_utf8_goes_base64);
    tcase_add_test(tc, nul_survives_in_line);
    tcase_add_test(tc, crlf_kept);
    tcase_add_test(tc, big_record_512k);
    tcase_add_test(tc, empty_line_and_large_ints);
    tcase_add_test(tc, encode_refuses_caller_bugs);
    tcase_add_test(tc, meta_invalid_utf8_replaced);
    tcase_add_test(tc, escapes_match_jansson);
    tcase_add_test(tc, random_envelopes_match_jansson);
    tcase_add_test(tc, time_cache_is_byte_identical);
    tcase_add_test(tc, reason_not_json);
    tcase_add_test(tc, reason_not_object);
    tcase_add_test(tc, reason_version);
    tcase_add_test(tc, reason_missing_fields);
    tcase_add_test(tc, reason_mistyped_fields);
    tcase_add_test(tc, reason_bad_formats);
    tcase_add_test(tc, reason_line_variants);
    tcase_add_test(tc, reason_unknown_fields);
    tcase_add_test(tc, reason_tampering);
    tcase_add_test(tc, error_codes);
    tcase_add_test(tc, emitted_keys_match_schema);
    tcase_add_test(tc, fixtures);
    tcase_add_test(tc, fuzz_mutations);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
