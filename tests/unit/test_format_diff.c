/* Differential test of the JSON fast path (agent/format_json*.c) against
 * the jansson implementation it replaced (agent/format_json_jansson.c): for
 * every input, kind and field map, the same return code, time, fields and
 * error text, byte for byte. Inputs: the fuzz corpora, the format fixtures,
 * hand-picked edge cases and generated documents (valid ones, which the fast
 * path must decide alone, and mutated ones). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format_json_int.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

static const enum format_kind kinds[] = {FORMAT_JSON, FORMAT_K8S_AUDIT, FORMAT_FHIR};

/* NULL (the presets), the fuzz targets' map, and maps that reach for
 * containers, indexes, odd splits and the record itself. */
static const struct field_map fuzz_map = {"meta.when",          "org.0.id",
                                          "user.name",          "request.verb",
                                          "objectRef.resource", "responseStatus.code"};
static const struct field_map odd_map = {"ts.", "", "agent.00.who", "a..b", "objectRef", "user"};
static const struct field_map odd_map2 = {".", "0", "agent.0", "entity.0.what.", "x.y.z.0.1", "."};
static const struct field_map *const maps[] = {NULL, &fuzz_map, &odd_map, &odd_map2};
#define NMAPS (sizeof(maps) / sizeof(maps[0]))

struct tally {
    unsigned long compared, declined, declined_valid;
};

static void tally_add(struct tally *t, const struct tally *one)
{
    t->compared += one->compared;
    t->declined += one->declined;
    t->declined_valid += one->declined_valid;
}

static void describe(char *buf, size_t cap, const uint8_t *rec, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        uint8_t c = rec[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = '\0';
}

static const char *nz(const char *s)
{
    return s ? s : "(null)";
}

static bool streq(const char *a, const char *b)
{
    return (!a || !b) ? a == b : strcmp(a, b) == 0;
}

/* Compare both implementations on one record; returns the fast path's rc. */
static int compare(enum format_kind kind, const struct field_map *map, const uint8_t *rec,
                   size_t len, struct tally *t)
{
    struct parsed_record a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.format = b.format = kind;
    while (len > 0 && rec[len - 1] == '\r') /* as format_parse does */
        len--;
    int rf = fmt_json_parse_fast(kind, map, rec, len, &a);
    int rj = fmt_json_parse_jansson(kind, map, rec, len, &b);
    t->compared++;
    if (rf == FMT_JSON_DECLINED) {
        t->declined++;
        t->declined_valid += rj == 0;
        /* untouched, for the jansson fallback */
        ck_assert(a.format == kind && !a.have_time && !a.actor && !a.err[0]);
        parsed_record_release(&b);
        return rf;
    }
    const char *fa[] = {a.tenant, a.actor, a.action, a.resource, a.outcome};
    const char *fb[] = {b.tenant, b.actor, b.action, b.resource, b.outcome};
    bool same = rf == rj && a.format == b.format && a.have_time == b.have_time &&
                a.time_us == b.time_us && strcmp(a.err, b.err) == 0;
    for (int i = 0; i < 5; i++)
        same = same && streq(fa[i], fb[i]);
    if (!same) {
        char in[2048];
        describe(in, sizeof(in), rec, len);
        ck_abort_msg("kind %s map %p: fast/jansson differ on [%s]\n rc %d/%d time %d:%" PRId64
                     "/%d:%" PRId64 " err [%s]/[%s]\n tenant [%s]/[%s] actor [%s]/[%s] action "
                     "[%s]/[%s] resource [%s]/[%s] outcome [%s]/[%s]",
                     format_kind_name(kind), (const void *)map, in, rf, rj, a.have_time, a.time_us,
                     b.have_time, b.time_us, a.err, b.err, nz(fa[0]), nz(fb[0]), nz(fa[1]),
                     nz(fb[1]), nz(fa[2]), nz(fb[2]), nz(fa[3]), nz(fb[3]), nz(fa[4]), nz(fb[4]));
    }
    parsed_record_release(&a);
    parsed_record_release(&b);
    return rf;
}

static void compare_all(const uint8_t *rec, size_t len, struct tally *t)
{
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        for (size_t m = 0; m < NMAPS; m++)
            compare(kinds[k], maps[m], rec, len, t);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "open %s", path);
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

START_TEST(fuzz_corpora)
{
    static const char *const dirs[] = {"format_json", "format_k8s_audit", "format_fhir",
                                       "format_kv", "format_auditd"};
    struct tally t = {0};
    unsigned files = 0;
    for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
        char *dir = xasprintf("%s/fuzz/corpus/%s", test_repo_root(), dirs[d]);
        DIR *dh = opendir(dir);
        ck_assert_msg(dh, "open %s", dir);
        struct dirent *de;
        while ((de = readdir(dh))) {
            if (de->d_name[0] == '.')
                continue;
            char *path = xasprintf("%s/%s", dir, de->d_name);
            size_t len;
            char *buf = slurp(path, &len);
            compare_all((const uint8_t *)buf, len, &t);
            files++;
            free(buf);
            free(path);
        }
        closedir(dh);
        free(dir);
    }
    ck_assert_uint_ge(files, 40);
    fprintf(stderr, "corpora: %u files, %lu comparisons, %lu declined (%lu of them valid)\n", files,
            t.compared, t.declined, t.declined_valid);
}
END_TEST

START_TEST(format_fixtures)
{
    static const char *const files[] = {"json.log", "k8s-audit.log", "fhir.log", "kv.log",
                                        "auditd.log"};
    struct tally t = {0};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        char *path = xasprintf("%s/tests/fixtures/formats/%s", test_repo_root(), files[f]);
        size_t len;
        char *buf = slurp(path, &len);
        for (size_t i = 0; i < len;) {
            const char *nl = memchr(buf + i, '\n', len - i);
            size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;
            struct tally line = {0};
            compare_all((const uint8_t *)buf + i, n, &line);
            /* the JSON fixtures are what the fast path is for: never declined */
            if (f < 3)
                ck_assert_msg(line.declined == 0, "%s: declined %.80s", files[f], buf + i);
            t.compared += line.compared;
            i += n + 1;
        }
        free(buf);
        free(path);
    }
    ck_assert_uint_gt(t.compared, 100);
}
END_TEST

/* Inputs chosen for the rules the fast path must copy from jansson. */
static const char *const edge_cases[] = {
    /* duplicate keys: the last value counts, also for a whole subtree */
    "{\"ts\":1,\"ts\":\"2026-01-01T00:00:00Z\",\"actor\":\"a\",\"actor\":null,\"user\":\"u\"}",
    "{\"user\":{\"name\":\"a\"},\"user\":{\"x\":1},\"objectRef\":{\"resource\":\"r\"},"
    "\"objectRef\":7,\"requestURI\":\"/x\",\"stageTimestamp\":\"2026-01-01T00:00:00Z\"}",
    "{\"user\":{\"name\":\"a\",\"name\":\"b\"},\"meta\":{\"when\":1},\"meta\":{}}",
    /* numbers */
    "{\"status\":403.0,\"actor\":-0,\"tenant\":-0.0,\"action\":1e2,\"resource\":1.5e300}",
    "{\"status\":1E-7,\"actor\":0.1,\"tenant\":12345678901234567,\"action\":-9223372036854775808}",
    "{\"outcome\":9223372036854775807,\"actor\":2.5e-400,\"ts\":1700000000.999999}",
    "{\"actor\":18446744073709551615,\"status\":403}", /* big: jansson re-reads as reals */
    "{\"actor\":1e400}",                               /* real overflow: invalid */
    "{\"actor\":01}",
    "{\"actor\":-}",
    "{\"actor\":1.}",
    "{\"actor\":.5}",
    "{\"actor\":1e}",
    "{\"actor\":+1}",
    "{\"actor\":1.5E+3}",
    "{\"actor\":0e0}",
    /* literals, nesting, whitespace */
    "{\"actor\":true,\"tenant\":false,\"outcome\":null}",
    "{\"actor\":tru}",
    "{\"actor\":truex}",
    " \t\r\n{ \"actor\" : \"a\" , \"org\" : [ 1 , 2 ] }\n\t ",
    "{\"actor\":\"a\"}\f",
    "{\"actor\":\"a\"}\v",
    "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    /* strings: escapes, surrogates, NUL, UTF-8 */
    "{\"actor\":\"J\\u00f6rg \\u4e2d \\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}",
    "{\"actor\":\"a\\u0000b\",\"tenant\":\"\\u0000\"}",
    "{\"act\\u006fr\":\"esc key\"}",
    "{\"actor\\u0000\":1}",
    "{\"actor\":\"\\ud83d\"}",
    "{\"actor\":\"\\ude00\"}",
    "{\"actor\":\"\\ud83d\\u0041\"}",
    "{\"actor\":\"\\ud83dx\"}",
    "{\"actor\":\"\\u12\"}",
    "{\"actor\":\"\\x\"}",
    "{\"actor\":\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"}",
    "{\"actor\":\"\xc0\x80\"}",
    "{\"actor\":\"\xed\xa0\x80\"}",
    "{\"actor\":\"\xf4\x90\x80\x80\"}",
    "{\"actor\":\"\xff\"}",
    "{\"actor\":\"tab\there\"}",
    "{\"actor\":\"a\"}\xc3\xa9",
    /* k8s resource pieces: NUL cuts a C string, empty group and subresource */
    "{\"stageTimestamp\":\"2026-01-01T00:00:00Z\",\"objectRef\":{\"resource\":\"pods\\u0000x\","
    "\"apiGroup\":\"\",\"namespace\":\"n\\u00e9\",\"name\":\"p\",\"subresource\":\"\\u0000\"}}",
    "{\"stageTimestamp\":\"2026-01-01T00:00:00Z\",\"objectRef\":{\"apiGroup\":\"g\"},"
    "\"requestURI\":{\"a\":1}}",
    "{\"stageTimestamp\":\"2026-01-01T00:00:00Z\",\"objectRef\":[],\"requestURI\":\"/u\"}",
    /* fhir resourceType */
    "{\"resourceType\":\"AuditEvent\\u0000x\",\"recorded\":\"2026-01-01T00:00:00Z\"}",
    "{\"resourceType\":\"Audit\\u0045vent\",\"recorded\":\"2026-01-01T00:00:00Z\"}",
    "{\"resourceType\":7,\"recorded\":\"2026-01-01T00:00:00Z\",\"agent\":[{\"who\":{\"display\":"
    "\"d\"}}],\"agent\":[{\"who\":{}}]}",
    /* times */
    "{\"ts\":\"2026-01-01T00:00:00\\u0000Z\"}",
    "{\"ts\":\"12ms\",\"time\":1700000000123}",
    "{\"ts\":-1,\"time\":1e30,\"timestamp\":\"1700000000.5\"}",
    "{\"recorded\":\"2026-11-26T20:50:45+01:00\",\"stageTimestamp\":null,"
    "\"requestReceivedTimestamp\":\"2026-11-26T20:50:45Z\"}",
    /* structure */
    "",
    "{",
    "}",
    "{}",
    "[]",
    "[{\"actor\":1}]",
    "\"s\"",
    "1",
    "null",
    "{\"a\":1}{}",
    "{\"a\":1,}",
    "{,\"a\":1}",
    "{\"a\" 1}",
    "{\"a\"::1}",
    "{\"a\":1 \"b\":2}",
    "{\"a\":[1 2]}",
    "{\"a\":[1,]}",
    "{\"a\":[,1]}",
    "{1:2}",
    "{\"a\":}",
    "{\"a\":{\"b\":1]}",
    "{\"a\":\"unterminated}",
    "{\"a\":1}x",
    "{'a':1}",
};

START_TEST(hand_picked)
{
    struct tally t = {0};
    for (size_t i = 0; i < sizeof(edge_cases) / sizeof(edge_cases[0]); i++)
        compare_all((const uint8_t *)edge_cases[i], strlen(edge_cases[i]), &t);
        /* Raw NUL bytes, which the fast path leaves to jansson: jansson skips
         * one right after a number or literal, and fails on any other. */
#define S(x)                                                                                       \
    {                                                                                              \
        x, sizeof(x) - 1                                                                           \
    }
    static const struct {
        const char *s;
        size_t n;
    } nul_cases[] = {S("{\"a\":1\0}"),     S("{\"a\":true\0,\"actor\":\"x\"}"),
                     S("{\"a\":\"x\0\"}"), S("{\"a\":1}\0"),
                     S("{\0\"a\":1}"),     S("{\"a\":1\0\0}")};
#undef S
    for (size_t i = 0; i < sizeof(nul_cases) / sizeof(nul_cases[0]); i++) {
        struct tally one = {0};
        compare_all((const uint8_t *)nul_cases[i].s, nul_cases[i].n, &one);
        ck_assert_uint_eq(one.declined, one.compared);
        tally_add(&t, &one);
    }
    fprintf(stderr, "hand-picked: %lu comparisons, %lu declined (%lu of them valid)\n", t.compared,
            t.declined, t.declined_valid);
}
END_TEST

/* ---- generated documents */

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

static unsigned pick(struct rng *r, unsigned n)
{
    return (unsigned)(rnd(r) % n);
}

struct out {
    char *p;
    size_t n, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->n + n + 1 > o->cap) {
        o->cap = (o->n + n + 1) * 2;
        o->p = xrealloc(o->p, o->cap);
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void ws(struct rng *r, struct out *o)
{
    static const char *const w[] = {" ", "\t", "\n", "\r", "  "};
    if (pick(r, 6) == 0)
        puts_(o, w[pick(r, 5)]);
}

/* Member names: what the presets and maps look for, their escaped spellings,
 * and a few others. */
static const char *const keys[] = {"ts",
                                   "time",
                                   "timestamp",
                                   "@timestamp",
                                   "recorded",
                                   "tenant",
                                   "tenant_id",
                                   "org",
                                   "actor",
                                   "user",
                                   "user_id",
                                   "principal",
                                   "action",
                                   "event",
                                   "verb",
                                   "resource",
                                   "object",
                                   "target",
                                   "outcome",
                                   "result",
                                   "status",
                                   "meta",
                                   "when",
                                   "id",
                                   "name",
                                   "request",
                                   "objectRef",
                                   "responseStatus",
                                   "code",
                                   "username",
                                   "apiGroup",
                                   "namespace",
                                   "subresource",
                                   "requestURI",
                                   "stageTimestamp",
                                   "requestReceivedTimestamp",
                                   "resourceType",
                                   "source",
                                   "site",
                                   "observer",
                                   "reference",
                                   "display",
                                   "agent",
                                   "who",
                                   "identifier",
                                   "value",
                                   "type",
                                   "entity",
                                   "what",
                                   "outcomeDesc",
                                   "",
                                   "0",
                                   "00",
                                   "a",
                                   "b",
                                   "x",
                                   "y",
                                   "z",
                                   "a.b",
                                   "act\\u006fr",
                                   "\\u0075ser",
                                   "ver\\u0062",
                                   "n\\u00e9",
                                   "\\ud83d\\ude00"};

static const char *const strings[] = {"alice",
                                      "",
                                      "2026-11-26T19:50:45.123456Z",
                                      "2026-11-26T20:50:45+01:00",
                                      "2026-02-30T00:00:00Z",
                                      "1700000000.5",
                                      "12ms",
                                      "AuditEvent",
                                      "Patient",
                                      "get",
                                      "secrets",
                                      "clinic-a",
                                      "J\\u00f6rg",
                                      "\\u4e2d\\ud83d\\ude00",
                                      "a\\u0000b",
                                      "\\u0000",
                                      "q\\\"uote",
                                      "back\\\\slash",
                                      "\\/\\b\\f\\n\\r\\t",
                                      "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80",
                                      "AuditEvent\\u0000x",
                                      "/healthz",
                                      "Audit\\u0045vent",
                                      "x y z"};

static const char *const plain_numbers[] = {"0",
                                            "-0",
                                            "1",
                                            "-7",
                                            "42",
                                            "200",
                                            "403",
                                            "403.0",
                                            "-0.0",
                                            "2.5",
                                            "1e3",
                                            "1E-3",
                                            "0.1",
                                            "1700000000",
                                            "1700000000123",
                                            "1700000000123456",
                                            "1700000000123456789",
                                            "1700000000.25",
                                            "9223372036854775807",
                                            "-9223372036854775808",
                                            "12345678901234567",
                                            "1.5e300",
                                            "2.5e-400",
                                            "1e18",
                                            "999999999999999999.5",
                                            "-5",
                                            "123.456e2"};
/* what the fast path leaves to jansson */
static const char *const exotic_numbers[] = {"18446744073709551615", "-9223372036854775809",
                                             "1e400", "1e301", "99999999999999999999"};

static void gen_value(struct rng *r, struct out *o, int depth, bool exotic);

static void gen_object(struct rng *r, struct out *o, int depth, bool exotic)
{
    puts_(o, "{");
    unsigned n = pick(r, depth == 0 ? 12 : 5);
    for (unsigned i = 0; i < n; i++) {
        if (i)
            puts_(o, ",");
        ws(r, o);
        puts_(o, "\"");
        puts_(o, keys[pick(r, sizeof(keys) / sizeof(keys[0]))]);
        puts_(o, "\"");
        ws(r, o);
        puts_(o, ":");
        ws(r, o);
        gen_value(r, o, depth + 1, exotic);
        ws(r, o);
    }
    puts_(o, "}");
}

static void gen_value(struct rng *r, struct out *o, int depth, bool exotic)
{
    unsigned c = pick(r, depth > 5 ? 6 : 9);
    switch (c) {
    case 0:
    case 1:
        puts_(o, "\"");
        puts_(o, strings[pick(r, sizeof(strings) / sizeof(strings[0]))]);
        puts_(o, "\"");
        break;
    case 2:
        if (exotic && pick(r, 8) == 0)
            puts_(o, exotic_numbers[pick(r, sizeof(exotic_numbers) / sizeof(exotic_numbers[0]))]);
        else
            puts_(o, plain_numbers[pick(r, sizeof(plain_numbers) / sizeof(plain_numbers[0]))]);
        break;
    case 3:
        puts_(o, "true");
        break;
    case 4:
        puts_(o, "false");
        break;
    case 5:
        puts_(o, "null");
        break;
    case 6:
    case 7:
        gen_object(r, o, depth, exotic);
        break;
    default: {
        puts_(o, "[");
        unsigned n = pick(r, 4);
        for (unsigned i = 0; i < n; i++) {
            if (i)
                puts_(o, ",");
            ws(r, o);
            gen_value(r, o, depth + 1, exotic);
            ws(r, o);
        }
        puts_(o, "]");
    }
    }
}

START_TEST(generated_valid)
{
    struct rng r = {0x9e3779b97f4a7c15ull};
    struct tally t = {0};
    struct out o = {0};
    for (int i = 0; i < 4000; i++) {
        o.n = 0;
        gen_object(&r, &o, 0, false);
        struct tally one = {0};
        compare_all((const uint8_t *)o.p, o.n, &one);
        /* valid JSON without big numbers: the fast path decides alone */
        ck_assert_msg(one.declined == 0, "declined a valid document: %s", o.p);
        tally_add(&t, &one);
    }
    free(o.p);
    fprintf(stderr, "generated valid: %lu comparisons\n", t.compared);
}
END_TEST

/* What the fast path may leave to jansson in a valid record (see
 * FMT_JSON_DECLINED): a raw NUL, an integer of 19 digits or more, an
 * exponent of three digits or more. */
static bool exotic(const uint8_t *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0')
            return true;
        run = s[i] >= '0' && s[i] <= '9' ? run + 1 : 0;
        if (run >= 19)
            return true;
        if ((s[i] == 'e' || s[i] == 'E') && i + 3 < n) {
            size_t j = i + 1 + (s[i + 1] == '+' || s[i + 1] == '-');
            size_t d = 0;
            while (j < n && s[j] >= '0' && s[j] <= '9')
                j++, d++;
            if (d >= 3)
                return true;
        }
    }
    return false;
}

START_TEST(generated_mutated)
{
    static const char bytes[] = "\"\\{}[]:,\0\xff\xc3\x80\xed\xa0\t e.-01unt\r\n";
    struct rng r = {0x243f6a8885a308d3ull};
    struct tally t = {0};
    struct out o = {0};
    for (int i = 0; i < 6000; i++) {
        o.n = 0;
        gen_object(&r, &o, 0, true);
        unsigned muts = pick(&r, 4);
        for (unsigned m = 0; m < muts && o.n > 0; m++) {
            size_t at = pick(&r, (unsigned)o.n);
            switch (pick(&r, 4)) {
            case 0: /* delete */
                memmove(o.p + at, o.p + at + 1, o.n - at - 1);
                o.n--;
                break;
            case 1: /* replace */
                o.p[at] = bytes[pick(&r, sizeof(bytes) - 1)];
                break;
            case 2: /* insert */
                put(&o, " ", 1);
                memmove(o.p + at + 1, o.p + at, o.n - 1 - at);
                o.p[at] = bytes[pick(&r, sizeof(bytes) - 1)];
                break;
            default: /* cut */
                o.n = at;
            }
        }
        struct tally one = {0};
        compare_all((const uint8_t *)o.p, o.n, &one);
        ck_assert_msg(one.declined_valid == 0 || exotic((const uint8_t *)o.p, o.n),
                      "declined a valid record: %s", o.p);
        tally_add(&t, &one);
    }
    free(o.p);
    fprintf(stderr, "generated mutated: %lu comparisons, %lu declined (%lu of them valid)\n",
            t.compared, t.declined, t.declined_valid);
    /* most mutations break the JSON; some must still reach the comparison */
    ck_assert_uint_lt(t.declined, t.compared);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("format_diff");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fuzz_corpora);
    tcase_add_test(tc, format_fixtures);
    tcase_add_test(tc, hand_picked);
    tcase_add_test(tc, generated_valid);
    tcase_add_test(tc, generated_mutated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
