/* Unit tests for the format dispatch (agent/format.c): kind names, field maps
 * from config, raw, UTF-8 safety, prepared formats, and a deterministic
 * mutation loop over every parser that must never crash, leak or return
 * invalid strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/format.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

START_TEST(kind_names_round_trip)
{
    for (int k = 0; k < FORMAT_COUNT; k++) {
        enum format_kind got;
        ck_assert_int_eq(format_kind_parse(format_kind_name((enum format_kind)k), &got), 0);
        ck_assert_int_eq(got, k);
    }
    enum format_kind got = FORMAT_JSON;
    ck_assert_int_eq(format_kind_parse("JSON", &got), -1);
    ck_assert_int_eq(format_kind_parse("", &got), -1);
    ck_assert_int_eq(format_kind_parse(NULL, &got), -1);
    ck_assert_str_eq(format_kind_name(FORMAT_K8S_AUDIT), "k8s-audit");
    ck_assert_str_eq(format_kind_name((enum format_kind)99), "unknown");
}
END_TEST

START_TEST(field_map_from_config)
{
    char *keys[] = {"time", "actor", "resource"};
    char *vals[] = {"meta.ts", "user.username", "objectRef.name"};
    struct cfg_map m = {keys, vals, 3};
    struct field_map fm;
    char err[128] = "";
    ck_assert_int_eq(field_map_from_cfg(&m, &fm, err, sizeof(err)), 0);
    ck_assert_str_eq(fm.time, "meta.ts");
    ck_assert_str_eq(fm.actor, "user.username");
    ck_assert_str_eq(fm.resource, "objectRef.name");
    ck_assert_ptr_null(fm.tenant);
    ck_assert_ptr_null(fm.action);
    ck_assert_ptr_null(fm.outcome);

    ck_assert_int_eq(field_map_from_cfg(NULL, &fm, err, sizeof(err)), 0);
    ck_assert_ptr_null(fm.actor);

    char *bk[] = {"actor", "user"};
    char *bv[] = {"a", "b"};
    struct cfg_map bad = {bk, bv, 2};
    ck_assert_int_eq(field_map_from_cfg(&bad, &fm, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "user"));
    ck_assert_ptr_null(fm.actor);

    char *ek[] = {"tenant"};
    char *ev[] = {""};
    struct cfg_map empty = {ek, ev, 1};
    ck_assert_int_eq(field_map_from_cfg(&empty, &fm, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "tenant"));
}
END_TEST

START_TEST(raw_always_succeeds)
{
    struct parsed_record r;
    const uint8_t junk[] = {0xff, 0x00, 'a', '\r'};
    ck_assert_int_eq(format_parse(FORMAT_RAW, NULL, junk, sizeof(junk), &r), 0);
    ck_assert_int_eq(r.format, FORMAT_RAW);
    ck_assert(!r.have_time);
    ck_assert_ptr_null(r.actor);
    ck_assert_str_eq(r.err, "");
    parsed_record_release(&r);
    ck_assert_int_eq(format_parse(FORMAT_RAW, NULL, junk, 0, &r), 0);
    parsed_record_release(&r);
    parsed_record_release(NULL);
    /* empty input: every format but raw fails cleanly */
    for (int k = 0; k < FORMAT_RAW; k++) {
        ck_assert_int_eq(format_parse((enum format_kind)k, NULL, junk, 0, &r), -1);
        ck_assert_int_eq(r.format, FORMAT_RAW);
        ck_assert(r.err[0]);
        ck_assert_int_eq(format_parse((enum format_kind)k, NULL, (const uint8_t *)"\r\r", 2, &r),
                         -1);
    }
    ck_assert_int_eq(format_parse((enum format_kind)42, NULL, junk, 1, &r), -1);
    ck_assert_int_eq(r.format, FORMAT_RAW);
}
END_TEST

START_TEST(huge_and_deep_inputs)
{
    enum { N = 1 << 20 };
    char *buf = xmalloc(N + 64);
    struct parsed_record r;
    /* nesting far beyond jansson's depth limit: an error, not a stack overflow */
    memset(buf, '[', N);
    ck_assert_int_eq(format_parse(FORMAT_JSON, NULL, (uint8_t *)buf, N, &r), -1);
    ck_assert_int_eq(r.format, FORMAT_RAW);
    /* a 1 MiB value */
    memcpy(buf, "{\"actor\":\"", 10);
    memset(buf + 10, 'x', N - 12);
    memcpy(buf + N - 2, "\"}", 2);
    ck_assert_int_eq(format_parse(FORMAT_JSON, NULL, (uint8_t *)buf, N, &r), 0);
    ck_assert_uint_eq(strlen(r.actor), N - 12);
    parsed_record_release(&r);
    /* 100k pairs for kv and auditd (auditd keeps the first 128) */
    size_t len = 0;
    len += (size_t)sprintf(buf, "type=SYSCALL msg=audit(1.1:1):");
    while (len < N - 16)
        len += (size_t)sprintf(buf + len, " a=b");
    len += (size_t)sprintf(buf + len, " result=ok");
    ck_assert_int_eq(format_parse(FORMAT_KV, NULL, (uint8_t *)buf + 30, len - 30, &r), 0);
    ck_assert_str_eq(r.outcome, "ok");
    parsed_record_release(&r);
    ck_assert_int_eq(format_parse(FORMAT_AUDITD, NULL, (uint8_t *)buf, len, &r), 0);
    ck_assert_ptr_null(r.outcome);
    ck_assert_str_eq(r.action, "SYSCALL");
    parsed_record_release(&r);
    free(buf);
}
END_TEST

/* RFC 3629 well-formedness, NUL excluded (what parsers promise). */
static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, n, cp;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return false;
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic across runs so a failure reproduces. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static char **load_lines(size_t *n)
{
    static const char *const files[] = {"json.log", "kv.log", "k8s-audit.log", "auditd.log",
                                        "fhir.log"};
    char **v = NULL;
    *n = 0;
    for (size_t i = 0; i < 5; i++) {
        char *path = xasprintf("%s/tests/fixtures/formats/%s", test_repo_root(), files[i]);
        FILE *f = fopen(path, "r");
        ck_assert_msg(f, "open %s", path);
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            if (line[len - 1] == '\n')
                line[len - 1] = '\0';
            v = xrealloc(v, (*n + 1) * sizeof(*v));
            v[(*n)++] = xstrdup(line);
        }
        free(line);
        fclose(f);
        free(path);
    }
    return v;
}

START_TEST(mutation_loop_all_parsers)
{
    size_t nseeds;
    char **seeds = load_lines(&nseeds);
    ck_assert_int_gt(nseeds, 10);
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    enum { ITER = 100000, CAP = 4096 };
    uint8_t *buf = xmalloc(CAP);
    static const char tokens[][12] = {"\"",    "\\",   "=",     "'",  "{",       "}",
                                      "[",     "]",    ",",     ":",  "\\u0000", "\\ud800",
                                      "\xff",  "\xc3", "\x1d",  "\r", " ",       "msg=audit(",
                                      "type=", "null", "1e308", "-"};
    const struct field_map maps[2] = {
        {0}, {.time = "a.0.b", .actor = "user.0", .resource = "name", .outcome = "x.y.z.w"}};
    size_t ok = 0, failed = 0;
    for (int k = 0; k < FORMAT_COUNT; k++) {
        for (int it = 0; it < ITER; it++) {
            const char *seed = seeds[rng_next(&st) % nseeds];
            size_t len = strlen(seed);
            if (len > CAP / 2)
                len = CAP / 2;
            memcpy(buf, seed, len);
            int nmut = 1 + (int)(rng_next(&st) % 6);
            for (int m = 0; m < nmut; m++) {
                uint64_t r = rng_next(&st);
                size_t pos = len ? (size_t)(r >> 8) % len : 0;
                switch (r % 5) {
                case 0: /* flip a byte */
                    if (len)
                        buf[pos] = (uint8_t)(rng_next(&st));
                    break;
                case 1: /* truncate */
                    len = pos;
                    break;
                case 2: { /* insert a token */
                    const char *t = tokens[rng_next(&st) % (sizeof(tokens) / sizeof(tokens[0]))];
                    size_t tl = strlen(t);
                    if (len + tl < CAP) {
                        memmove(buf + pos + tl, buf + pos, len - pos);
                        memcpy(buf + pos, t, tl);
                        len += tl;
                    }
                    break;
                }
                case 3: /* insert a NUL */
                    if (len + 1 < CAP) {
                        memmove(buf + pos + 1, buf + pos, len - pos);
                        buf[pos] = 0;
                        len++;
                    }
                    break;
                default: /* delete a byte */
                    if (len) {
                        memmove(buf + pos, buf + pos + 1, len - pos - 1);
                        len--;
                    }
                }
            }
            /* Exact-size heap copy so ASan catches any read past the end. */
            uint8_t *rec = xmemdup(buf, len ? len : 1);
            struct parsed_record pr;
            int rc = format_parse((enum format_kind)k, &maps[it & 1], rec, len, &pr);
            if (rc == 0) {
                ok++;
                ck_assert_int_eq(pr.format, k);
                char *f[] = {pr.tenant, pr.actor, pr.action, pr.resource, pr.outcome};
                for (int i = 0; i < 5; i++)
                    ck_assert(!f[i] || utf8_ok(f[i]));
            } else {
                failed++;
                ck_assert_int_eq(rc, -1);
                ck_assert_int_eq(pr.format, FORMAT_RAW);
                ck_assert(pr.err[0] && !pr.actor && !pr.tenant && !pr.outcome && !pr.have_time);
            }
            parsed_record_release(&pr);
            free(rec);
        }
    }
    /* The loop must exercise both outcomes, or it tests nothing. */
    ck_assert_int_gt(ok, 10000);
    ck_assert_int_gt(failed, 10000);
    free(buf);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i]);
    free(seeds);
}
END_TEST

static bool same_parse(int rc1, const struct parsed_record *a, int rc2,
                       const struct parsed_record *b)
{
    const char *fa[] = {a->tenant, a->actor, a->action, a->resource, a->outcome};
    const char *fb[] = {b->tenant, b->actor, b->action, b->resource, b->outcome};
    bool same = rc1 == rc2 && a->format == b->format && a->have_time == b->have_time &&
                a->time_us == b->time_us && strcmp(a->err, b->err) == 0;
    for (int i = 0; i < 5; i++)
        same = same && ((!fa[i] || !fb[i]) ? fa[i] == fb[i] : strcmp(fa[i], fb[i]) == 0);
    return same;
}

/* A prepared format parses every record as format_parse does, whatever came
 * before it: the preparation is the same work, done once. */
START_TEST(prepared_equals_format_parse)
{
    static const struct field_map custom = {.time = "meta.when",
                                            .tenant = "objectRef.namespace",
                                            .actor = "user",
                                            .action = "verb",
                                            .resource = "agent.0.who",
                                            .outcome = "responseStatus.code"};
    const struct field_map *maps[] = {NULL, &custom};
    struct format_prep zero;
    memset(&zero, 0, sizeof(zero));
    ck_assert(!format_prep_matches(&zero, FORMAT_JSON, NULL));
    static struct format_prep p; /* big: not on the test's stack */
    size_t n;
    char **lines = load_lines(&n);
    ck_assert_uint_ge(n, 20);
    for (int k = 0; k < FORMAT_COUNT; k++) {
        for (size_t m = 0; m < 2; m++) {
            format_prep_init(&p, (enum format_kind)k, maps[m]);
            ck_assert(format_prep_matches(&p, (enum format_kind)k, maps[m]));
            ck_assert(!format_prep_matches(&p, (enum format_kind)k, maps[1 - m]));
            ck_assert(
                !format_prep_matches(&p, (enum format_kind)((k + 1) % FORMAT_COUNT), maps[m]));
            /* every line of every fixture, twice over, with the same prep */
            for (size_t i = 0; i < 2 * n; i++) {
                const char *line = lines[i % n];
                struct parsed_record a, b;
                int ra = format_parse_prepared(&p, (const uint8_t *)line, strlen(line), &a);
                int rb = format_parse((enum format_kind)k, maps[m], (const uint8_t *)line,
                                      strlen(line), &b);
                ck_assert_msg(same_parse(ra, &a, rb, &b), "%s map %zu: %s",
                              format_kind_name((enum format_kind)k), m, line);
                parsed_record_release(&a);
                parsed_record_release(&b);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("format");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, kind_names_round_trip);
    tcase_add_test(tc, field_map_from_config);
    tcase_add_test(tc, raw_always_succeeds);
    tcase_add_test(tc, huge_and_deep_inputs);
    tcase_add_test(tc, prepared_equals_format_parse);
    suite_add_tcase(s, tc);
    TCase *fz = tcase_create("mutations");
    tcase_set_timeout(fz, 600);
    tcase_add_test(fz, mutation_loop_all_parsers);
    suite_add_tcase(s, fz);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
