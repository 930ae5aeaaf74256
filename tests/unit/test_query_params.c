/* The query API's pure parts: parameter checks, normalization, HMAC
 * cursors (forged, moved, tampered), and token secrets. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/query_params.h"
#include "aggregator/tokens.h"
#include "tests/support/testutil.h"

static const uint8_t KEY[QP_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const uint8_t KEY2[QP_KEY_LEN] = "0123456789abcdef0123456789abcdX";

static int take(struct qparams *p, const char *n, const char *v, const char *want_code)
{
    struct qp_error e = {0};
    int rc = qparams_take(p, QP_EVENTS, n, v, &e);
    if (want_code) {
        ck_assert_msg(rc == -1, "%s=%s accepted", n, v ? v : "(null)");
        ck_assert_str_eq(e.code, want_code);
        ck_assert_int_eq(e.status, 400);
        ck_assert_msg(!v || strlen(v) < 5 || !strstr(e.msg, v), "the message echoes %s: %s", v,
                      e.msg);
    } else {
        ck_assert_msg(rc == 0, "%s=%s: %s", n, v, e.msg);
    }
    return rc;
}

START_TEST(parameters)
{
    struct qparams p = {0};
    take(&p, "actor", "alice", NULL);
    take(&p, "actor", "bob", "duplicate_parameter");
    take(&p, "actr", "x", "unknown_parameter");
    take(&p, "kind", "gap", "unknown_parameter"); /* not an events filter */
    take(&p, "action", "", "empty_parameter");
    take(&p, "action", NULL, "empty_parameter");
    take(&p, "action", "\xff\xfe", "invalid_utf8");
    char huge[QP_VALUE_MAX + 2];
    memset(huge, 'x', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    take(&p, "resource", huge, "value_too_long");
    take(&p, "resource", "'; DROP TABLE auditrail.events; --", NULL); /* a value like any */
    take(&p, "stream", "ABCDEF", "bad_stream");
    take(&p, "stream", "0123456789abcdef0123456789abcdef", NULL);
    take(&p, "limit", "0", "bad_limit");
    take(&p, "limit", "1001", "bad_limit");
    take(&p, "limit", "10x", "bad_limit");
    take(&p, "limit", "+5", "bad_limit");
    take(&p, "limit", "1000", NULL);
    take(&p, "from", "yesterday", "bad_time");
    take(&p, "from", "2026-02-30T00:00:00Z", "bad_time");
    take(&p, "from", "2026-11-26T00:00:00Z", NULL);
    take(&p, "to", "2026-11-26T00:00:00Z", NULL);
    take(&p, "min_lsn", "0/16B3748", NULL);
    ck_assert_uint_eq(p.min_lsn, 0x16B3748u);
    struct qparams q = {0};
    take(&q, "min_lsn", "ABCDE", "bad_lsn");
    take(&q, "min_lsn", "1/2/3", "bad_lsn");
    take(&q, "min_lsn", "100000000/0", "bad_lsn");
    struct qp_error e;
    ck_assert_int_eq(qparams_finish(&p, QP_EVENTS, true, &e), -1); /* from == to */
    ck_assert_str_eq(e.code, "bad_range");
    qparams_release(&p);
    qparams_release(&q);
    struct qparams r = {0};
    ck_assert_int_eq(qparams_finish(&r, QP_EVENTS, true, &e), -1);
    ck_assert_str_eq(e.code, "range_required");
    take(&r, "from", "2026-01-01T00:00:00Z", NULL);
    take(&r, "to", "2026-03-01T00:00:00Z", NULL);
    ck_assert_int_eq(qparams_finish(&r, QP_EVENTS, true, &e), 0);
    ck_assert_uint_eq(r.limit, QP_LIMIT_DEF);
    ck_assert_int_eq(qparams_check_span(&r, 31, &e), -1);
    ck_assert_str_eq(e.code, "range_too_wide");
    ck_assert_int_eq(qparams_check_span(&r, 60, &e), 0);
    qparams_release(&r);
}
END_TEST

/* Two queries differing anywhere normalize differently; the same query
 * (parameters in any order) the same. Values are length-prefixed. */
START_TEST(normalization)
{
    struct qparams a = {0}, b = {0}, c = {0};
    struct qp_error e;
    qparams_take(&a, QP_EVENTS, "actor", "x|action=7:y", &e);
    qparams_take(&b, QP_EVENTS, "actor", "x", &e);
    qparams_take(&b, QP_EVENTS, "action", "y", &e);
    qparams_take(&c, QP_EVENTS, "action", "y", &e);
    qparams_take(&c, QP_EVENTS, "actor", "x", &e);
    struct buf na = BUF_INIT, nb = BUF_INIT, nc = BUF_INIT, nd = BUF_INIT;
    qparams_normalize(&a, "events", "A", &na);
    qparams_normalize(&b, "events", "A", &nb);
    qparams_normalize(&c, "events", "A", &nc);
    qparams_normalize(&c, "events", "B", &nd);
    ck_assert_str_ne(na.p, nb.p);
    ck_assert_str_eq(nb.p, nc.p);
    ck_assert_str_ne(nc.p, nd.p);
    buf_release(&na);
    buf_release(&nb);
    buf_release(&nc);
    buf_release(&nd);
    qparams_release(&a);
    qparams_release(&b);
    qparams_release(&c);
}
END_TEST

START_TEST(cursors)
{
    const char pos[] = "position-24-bytes-long!!";
    struct buf c = BUF_INIT;
    qcursor_make(KEY, "events|scope=1:A", pos, 24, &c);
    uint8_t out[QP_CURSOR_MAX];
    size_t len = 0;
    ck_assert_int_eq(qcursor_open(KEY, "events|scope=1:A", c.p, out, &len), 0);
    ck_assert_uint_eq(len, 24);
    ck_assert(memcmp(out, pos, 24) == 0);
    /* moved to another scope or filters, or under another key */
    ck_assert_int_eq(qcursor_open(KEY, "events|scope=1:B", c.p, out, &len), -1);
    ck_assert_int_eq(qcursor_open(KEY, "events|scope=1:A|actor=1:x", c.p, out, &len), -1);
    ck_assert_int_eq(qcursor_open(KEY2, "events|scope=1:A", c.p, out, &len), -1);
    /* every change of one character is refused */
    char *t = strdup(c.p);
    for (size_t i = 0; i < strlen(t); i++) {
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        char save = t[i];
        for (const char *a = alphabet; *a; a++) {
            if (*a == save)
                continue;
            t[i] = *a;
            ck_assert_msg(qcursor_open(KEY, "events|scope=1:A", t, out, &len) == -1,
                          "tampered cursor accepted (char %zu)", i);
        }
        t[i] = save;
    }
    free(t);
    /* junk */
    const char *junk[] = {"", "!!!!", "AAAA", "%00", "a", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(*junk); i++)
        ck_assert_int_eq(qcursor_open(KEY, "events|scope=1:A", junk[i], out, &len), -1);
    char longc[400];
    memset(longc, 'A', sizeof(longc) - 1);
    longc[sizeof(longc) - 1] = '\0';
    ck_assert_int_eq(qcursor_open(KEY, "x", longc, out, &len), -1);
    buf_release(&c);
}
END_TEST

START_TEST(token_secrets)
{
    char a[TOKEN_SECRET_LEN + 1], b[TOKEN_SECRET_LEN + 1], h[TOKEN_HASH_HEX];
    token_generate(a);
    token_generate(b);
    ck_assert_uint_eq(strlen(a), TOKEN_SECRET_LEN);
    ck_assert_str_ne(a, b);
    ck_assert(token_well_formed(a));
    ck_assert(!token_well_formed("atr_short"));
    ck_assert(!token_well_formed("xyz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    ck_assert(!token_well_formed("atr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/"));
    token_hash_hex("atr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", h);
    ck_assert_uint_eq(strlen(h), 64);
    enum token_role r;
    ck_assert_int_eq(token_role_parse("auditor", &r), 0);
    ck_assert_int_eq(r, ROLE_AUDITOR);
    ck_assert_int_eq(token_role_parse("root", &r), -1);
    /* the cache: refresh once after the TTL, gone after twice the TTL */
    struct token_cache *c = token_cache_new(1000, 10);
    struct token_info info = {.name = "n", .tenant = "A", .role = ROLE_READER}, out;
    enum token_state st;
    bool refresh;
    token_cache_put(c, h, TOKEN_VALID, &info, 0);
    ck_assert(token_cache_get(c, h, &st, &out, &refresh, 999));
    ck_assert(!refresh);
    ck_assert(token_cache_get(c, h, &st, &out, &refresh, 1000));
    ck_assert(refresh);
    ck_assert(token_cache_get(c, h, &st, &out, &refresh, 1001));
    ck_assert(!refresh); /* one refresher at a time */
    ck_assert_str_eq(out.tenant, "A");
    ck_assert(!token_cache_get(c, h, &st, &out, &refresh, 2000));
    token_cache_free(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("query_params");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parameters);
    tcase_add_test(tc, normalization);
    tcase_add_test(tc, cursors);
    tcase_add_test(tc, token_secrets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(suite());
}
