/* The auditrail CLI as a process against a real in-process HTTP server
 * (common/httpd) playing the query API: every answer the API can give
 * (pages and cursors, 400/401/403/404/500/503, an export cut short) and
 * what the CLI makes of it: tables with hostile content escaped, the
 * summary line, --json and NDJSON byte for byte, export files that are
 * whole or absent, exit statuses, and a token that never shows. Then the
 * program skeleton the three programs share. */
#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/httpd.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "tests/support/proc.h"
#include "tests/support/testutil.h"

#define TOKEN       "atr_S3cretCliTokenValue"
#define SECRET_PART "S3cretCli" /* must never appear in any output */

static atomic_bool ready_flag;

static bool ready_cb(void *ud, char *reason, size_t len)
{
    (void)ud;
    if (!atomic_load(&ready_flag)) {
        snprintf(reason, len, "postgres breaker open");
        return false;
    }
    return true;
}

/* ---- a fake query API */

/* The events it serves: what a re-encoding would change (0.1, 1e400, an
 * integer beyond 64 bits) and a hostile actor and resource. */
static const char *const EVENTS[] = {
    "{\"id\":\"e1\",\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":1,"
    "\"time\":\"2026-11-26T00:01:00.000000Z\",\"tenant\":\"A\",\"actor\":\"alice\","
    "\"action\":\"read\",\"resource\":\"Patient/1\",\"outcome\":\"success\",\"attrs\":{\"x\":0.1}}",
    "{\"id\":\"e2\",\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":2,"
    "\"time\":\"2026-11-26T00:02:00.000000Z\",\"tenant\":\"A\","
    "\"actor\":\"\\u001b[2J\\u001b[1;1Hevil\\u009b31m\",\"action\":\"read\","
    "\"resource\":\"Patient/\\u202e2\",\"outcome\":null,\"attrs\":{\"big\":1e400}}",
    "{\"id\":\"e3\",\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":3,"
    "\"time\":\"2026-11-26T00:03:00.000000Z\",\"tenant\":\"A\",\"actor\":\"bob\","
    "\"action\":\"update\",\"resource\":\"Patient/3\",\"outcome\":\"success\","
    "\"attrs\":{\"n\":123456789012345678901234567890}}",
    "{\"id\":\"e4\",\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":4,"
    "\"time\":\"2026-11-26T00:04:00.000000Z\",\"tenant\":\"A\",\"actor\":\"carol\","
    "\"action\":\"read\",\"resource\":\"Patient/4\",\"outcome\":\"success\",\"attrs\":null}",
    "{\"id\":\"e5\",\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":5,"
    "\"time\":\"2026-11-26T00:05:00.000000Z\",\"tenant\":\"A\",\"actor\":\"dave\","
    "\"action\":\"read\",\"resource\":\"Patient/5\",\"outcome\":\"success\",\"attrs\":null}",
};
#define NEVENTS 5

/* What the API saw: the query string of each request, in order. */
struct api_log {
    pthread_mutex_t mu;
    struct buf seen; /* "PATH?QUERY\n" per request; "auth" when a token came */
};

static struct api_log api_log = {PTHREAD_MUTEX_INITIALIZER, BUF_INIT};

static bool add_arg(void *ud, const char *name, const char *value)
{
    struct buf *b = ud;
    if (b->p && b->p[b->len - 1] != '?')
        buf_addc(b, '&');
    buf_addf(b, "%s=%s", name, value ? value : "");
    return true;
}

static void reply(struct httpd_response *resp, int status, char *body)
{
    resp->status = status;
    resp->body = body;
    resp->body_len = strlen(body);
    httpd_response_header(resp, "X-Auditrail-Served-By", "replica 10.0.0.1:5432");
    httpd_response_header(resp, "X-Auditrail-Replica-Lag-Ms", "12");
}

static void error_reply(struct httpd_response *resp, int status, const char *msg, const char *code)
{
    reply(resp, status, xasprintf("{\"error\":\"%s\",\"code\":\"%s\"}", msg, code));
    if (status == 503)
        httpd_response_header(resp, "Retry-After", "2");
}

/* /v1/events pages: cursor "cN" starts at event N, limit default 2. */
static void events_page(const struct httpd_request *req, struct httpd_response *resp)
{
    const char *cursor = httpd_request_arg(req, "cursor");
    const char *limit = httpd_request_arg(req, "limit");
    const char *actor = httpd_request_arg(req, "actor");
    int start = cursor ? atoi(cursor + 1) : 0, n = limit ? atoi(limit) : 2;
    if (actor && strcmp(actor, "none") == 0)
        start = NEVENTS;
    struct buf b = BUF_INIT;
    BUF_LIT(&b, "{\"events\":[");
    int i = start;
    for (; i < NEVENTS && i < start + n; i++) {
        if (i > start)
            buf_addc(&b, ',');
        buf_adds(&b, EVENTS[i]);
    }
    if (i < NEVENTS)
        buf_addf(&b, "],\"next_cursor\":\"c%d\"}", i);
    else
        BUF_LIT(&b, "],\"next_cursor\":null}");
    reply(resp, 200, buf_detach(&b, NULL));
    httpd_response_header(resp, "X-Auditrail-Cache", "hit");
}

static void export_body(const struct httpd_request *req, struct httpd_response *resp)
{
    const char *actor = httpd_request_arg(req, "actor");
    bool cut = actor && strcmp(actor, "cut") == 0;
    struct httpd_stream *st = httpd_stream_new(0, NULL, NULL);
    for (int i = 0; i < (cut ? 2 : NEVENTS); i++) {
        ck_assert_int_eq(httpd_stream_write(st, EVENTS[i], strlen(EVENTS[i])), 0);
        ck_assert_int_eq(httpd_stream_write(st, "\n", 1), 0);
    }
    httpd_stream_close(st, !cut); /* cut: no final chunk, as the API when a host goes away */
    resp->status = 200;
    resp->content_type = "application/x-ndjson";
    resp->stream = st; /* the response's reference */
    httpd_stream_release(st);
}

#define VA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define VB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define VC "cccccccccccccccccccccccccccccccc"

/* GET /v1/streams/{id}/verify: VA intact, VB one hash_mismatch whose
 * detail is hostile, VC an answer that is not the API's. */
static void verify_answer(const char *path, struct httpd_response *resp)
{
    if (strcmp(path, "/v1/streams/" VA "/verify") == 0) {
        reply(resp, 200,
              xstrdup("{\"stream\":\"" VA "\",\"findings\":[],\"summary\":{\"status\":\"intact\","
                      "\"streams\":1,\"records\":5,\"bytes\":100,\"problems\":0,\"notes\":0,"
                      "\"by_kind\":{},\"seconds\":0.5}}"));
    } else if (strcmp(path, "/v1/streams/" VB "/verify") == 0) {
        reply(resp, 200,
              xstrdup("{\"stream\":\"" VB "\",\"findings\":[{\"kind\":\"hash_mismatch\","
                      "\"problem\":true,\"stream\":\"" VB "\",\"seq\":3,\"seq_end\":3,"
                      "\"detail\":\"raw \\u001b[31mred\",\"stored\":\"" VA VA "\","
                      "\"computed\":\"" VC VC "\",\"event_time\":\"2026-11-26T00:03:00.000000Z\"}],"
                      "\"summary\":{\"status\":\"problems\",\"streams\":1,\"records\":4,"
                      "\"bytes\":80,\"problems\":1,\"notes\":0,"
                      "\"by_kind\":{\"hash_mismatch\":1},\"seconds\":0.25}}"));
    } else if (strcmp(path, "/v1/streams/" VC "/verify") == 0) {
        reply(resp, 200, xstrdup("{\"findings\":[],\"summary\":{\"status\":\"fine\"}}"));
    } else {
        error_reply(resp, 404, "no such stream (for this token)", "not_found");
    }
}

static bool api(void *ud, const struct httpd_request *req, struct httpd_response *resp)
{
    (void)ud;
    const char *path = httpd_request_path(req);
    const char *auth = httpd_request_header(req, "Authorization");
    pthread_mutex_lock(&api_log.mu);
    buf_addf(&api_log.seen, "%s%s?", auth ? "auth " : "", path);
    httpd_request_args(req, add_arg, &api_log.seen);
    buf_addc(&api_log.seen, '\n');
    pthread_mutex_unlock(&api_log.mu);
    if (strncmp(path, "/v1/", 4) != 0)
        return false;
    if (!auth || strcmp(auth, "Bearer " TOKEN) != 0) {
        error_reply(resp, 401, "the bearer token is unknown, expired or revoked", "unknown_token");
        return true;
    }
    const char *actor = httpd_request_arg(req, "actor");
    static const struct {
        const char *actor;
        int status;
        const char *msg, *code;
    } errors[] = {
        {"bad", 400, "from must be an RFC 3339 timestamp", "bad_time"},
        {"forbidden", 403, "this token may not read that tenant", "tenant_forbidden"},
        {"boom", 500, "internal error", "internal"},
        {"busy", 503, "no host may serve", "no_host"},
        {"hostile", 400, "bad \\u001b[31mred", "bad_request"},
    };
    for (size_t i = 0; actor && i < sizeof(errors) / sizeof(errors[0]); i++) {
        if (strcmp(actor, errors[i].actor) == 0) {
            error_reply(resp, errors[i].status, errors[i].msg, errors[i].code);
            return true;
        }
    }
    const char *tenant = httpd_request_arg(req, "tenant");
    size_t plen = strlen(path);
    if (strcmp(path, "/v1/events") == 0) {
        events_page(req, resp);
    } else if (strcmp(path, "/v1/streams") == 0 && tenant && strcmp(tenant, "V") == 0) {
        /* two pages of one stream each, for verify's every-stream form */
        bool second = httpd_request_arg(req, "cursor") != NULL;
        reply(resp, 200,
              xasprintf("{\"streams\":[{\"id\":\"%s\"}],\"next_cursor\":%s}", second ? VB : VA,
                        second ? "null" : "\"p2\""));
    } else if (strncmp(path, "/v1/streams/", 12) == 0 && plen > 7 &&
               strcmp(path + plen - 7, "/verify") == 0) {
        verify_answer(path, resp);
    } else if (strcmp(path, "/v1/events/export") == 0) {
        export_body(req, resp);
    } else if (strcmp(path, "/v1/streams") == 0) {
        reply(resp, 200,
              xstrdup("{\"streams\":[{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"last_seq\":5,"
                      "\"last_hash\":\"ff\",\"first_seen\":\"t0\",\"last_seen\":\"t1\","
                      "\"source\":{\"name\":\"ns/app\"},\"gaps\":0,\"chain_breaks\":0,"
                      "\"forks\":1,\"rows\":null}],\"next_cursor\":null}"));
    } else if (strcmp(path, "/v1/streams/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") == 0) {
        reply(resp, 200,
              xstrdup("{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"last_seq\":5,\"last_hash\":"
                      "\"ff\",\"first_seen\":\"t0\",\"last_seen\":\"t1\",\"source\":{\"name\":"
                      "\"ns/app\"},\"gaps\":0,\"chain_breaks\":0,\"forks\":1,\"rows\":5,"
                      "\"incidents\":[{\"id\":1,\"detected_at\":\"t2\",\"kind\":\"fork\","
                      "\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":3,\"expected\":"
                      "\"aa\",\"actual\":\"bb\",\"evidence\":null}]}"));
    } else if (strncmp(path, "/v1/streams/", 12) == 0) {
        error_reply(resp, 404, "no such stream (for this token)", "not_found");
    } else if (strcmp(path, "/v1/incidents") == 0) {
        reply(resp, 200,
              xstrdup("{\"incidents\":[{\"id\":1,\"detected_at\":\"t2\",\"kind\":\"fork\","
                      "\"stream\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"seq\":3,\"expected\":"
                      "\"aa\",\"actual\":\"bb\",\"evidence\":null}],\"next_cursor\":null}"));
    } else {
        error_reply(resp, 404, "no such endpoint", "not_found");
    }
    return true;
}

/* ---- running the CLI */

struct run {
    int status;
    char *out, *err;
};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    struct buf b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    buf_cstr(&b);
    return buf_detach(&b, NULL);
}

static char *workdir;

/* Run program `prog` with args (shell words); its exit status, stdout and
 * stderr. Whatever it printed never holds the token's secret part. */
static struct run run_prog2(const char *prog, const char *args)
{
    char *bin = test_bin(prog);
    char *cmd = xasprintf("%s %s", bin, args);
    struct buf o = BUF_INIT, e = BUF_INIT;
    struct run r = {proc_run_sh(cmd, &o, &e), buf_detach(&o, NULL), buf_detach(&e, NULL)};
    ck_assert_msg(!strstr(r.out, SECRET_PART) && !strstr(r.err, SECRET_PART),
                  "the token shows: %s: %s%s", args, r.out, r.err);
    free(cmd);
    free(bin);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* The older helper (stdout, stderr merged when with_err) for the
 * skeleton's tests below. */
static int run_prog(const char *prog, const char *args, bool with_err, char **out)
{
    struct run r = run_prog2(prog, args);
    *out = with_err ? xasprintf("%s%s", r.out, r.err) : xstrdup(r.out);
    run_free(&r);
    return r.status;
}

static int run_cli(const char *args, char **out)
{
    return run_prog("auditrail", args, false, out);
}

static struct httpd *srv;
static struct metrics *reg;
static char url[64], *tokfile;

static void setup(void)
{
    workdir = test_tmpdir("cli");
    reg = metrics_new();
    metric_add(metrics_counter(reg, "auditrail_test_records_total", "records", NULL), 7);
    metric_set(metrics_gauge(reg, "auditrail_other_gauge", "g", NULL), 3);
    struct httpd_conf c = {
        .listen = "127.0.0.1:0", .metrics = reg, .ready = ready_cb, .handler = api};
    char err[256];
    srv = httpd_start(&c, err, sizeof(err));
    ck_assert_msg(srv != NULL, "%s", err);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", httpd_port(srv));
    atomic_store(&ready_flag, true);
    tokfile = xasprintf("%s/token", workdir);
    test_write_file(tokfile, TOKEN "\n", strlen(TOKEN) + 1, false);
    buf_reset(&api_log.seen);
}

static void teardown(void)
{
    httpd_stop(srv);
    metrics_free(reg);
    test_rmtree(workdir);
    free(workdir);
    free(tokfile);
}

/* Run the CLI with the fake API's URL and the token file, then args. */
static struct run cli(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct run cli(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *args;
    ck_assert_int_ge(vasprintf(&args, fmt, ap), 0);
    va_end(ap);
    char *all = xasprintf("--url %s --token-file '%s' %s", url, tokfile, args);
    struct run r = run_prog2("auditrail", all);
    free(all);
    free(args);
    return r;
}

static char *seen(void)
{
    pthread_mutex_lock(&api_log.mu);
    char *s = xstrdup(buf_cstr(&api_log.seen));
    buf_reset(&api_log.seen);
    pthread_mutex_unlock(&api_log.mu);
    return s;
}

/* No byte a terminal acts on (newlines end lines). */
static void assert_inert(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        ck_assert_msg((*p >= 0x20 || *p == '\n') && *p != 0x7f, "control 0x%02x in %s", *p, s);
        ck_assert_msg(!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f), "C1 control in %s", s);
    }
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(query_table_and_summary_line)
{
    struct run r = cli("query --from 2026-11-26 --to 2026-11-27 --actor 'a&b=c'");
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(lines(r.out), 3); /* header and the first page's 2 events */
    ck_assert_ptr_nonnull(strstr(r.out, "TIME                         TENANT"));
    ck_assert_ptr_nonnull(strstr(r.out, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1\n"));
    /* the hostile actor of event 2: escaped, and its row still aligned */
    assert_inert(r.out);
    ck_assert_msg(strstr(r.out, "  \\x1b[2J\\x1b[1;1Hevi\xe2\x80\xa6  read  "), "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "Patient/\\u202e2"));
    ck_assert_str_eq(r.err, "2 events \xc2\xb7 served by replica 10.0.0.1:5432 \xc2\xb7 replica "
                            "lag 12 ms \xc2\xb7 cache hit\n");
    /* what the API was asked: the token, the filter encoded, the range as
     * RFC 3339; no limit (the API's default page) */
    char *s = seen();
    ck_assert_str_eq(s, "auth /v1/events?actor=a&b=c&from=2026-11-26T00:00:00.000000Z&"
                        "to=2026-11-27T00:00:00.000000Z\n");
    free(s);
    run_free(&r);
}
END_TEST

START_TEST(query_all_follows_cursors_up_to_max)
{
    struct run r = cli("query --all --from -1d");
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(lines(r.out), 1 + NEVENTS);
    ck_assert_ptr_nonnull(strstr(r.out, ":5\n"));
    ck_assert_ptr_nonnull(strstr(r.err, "5 events \xc2\xb7"));
    /* one page of 1000 asked; every page with the same from and to */
    char *s = seen();
    ck_assert_msg(strstr(s, "&limit=1000\n") && !strstr(s, "cursor"), "%s", s);
    free(s);
    run_free(&r);
    /* pages of 2 */
    r = cli("query --all --limit 2");
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(lines(r.out), 1 + NEVENTS);
    s = seen();
    ck_assert_uint_eq(lines(s), 3);
    const char *p2 = strstr(s, "limit=2&cursor=c2\n"), *p3 = strstr(s, "limit=2&cursor=c4\n");
    ck_assert_msg(p2 && p3, "%s", s);
    /* the same question on every page: from and to fixed once */
    char *first = xstrndup(s, strcspn(s, "&limit"));
    ck_assert_msg(strstr(s, "from=") && strncmp(strchr(s, '\n') + 1, first, strlen(first)) == 0,
                  "%s", s);
    free(first);
    free(s);
    run_free(&r);
    /* --max bounds it: exit 1, the rows so far, and where to go on */
    r = cli("query --all --max 3");
    ck_assert_int_eq(r.status, 1);
    ck_assert_uint_eq(lines(r.out), 1 + 3);
    ck_assert_ptr_nonnull(strstr(r.err, "stopped at --max 3 events; more follow: --cursor c3"));
    s = seen();
    ck_assert_msg(strstr(s, "&limit=3\n") && lines(s) == 1, "%s", s);
    free(s);
    run_free(&r);
    /* --max without --all, --cursor given */
    r = cli("query --max 3");
    ck_assert_int_eq(r.status, 2);
    run_free(&r);
    r = cli("query --cursor c4");
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(lines(r.out), 2);
    ck_assert_ptr_nonnull(strstr(r.out, ":5\n"));
    run_free(&r);
}
END_TEST

START_TEST(query_json_as_is_and_ndjson)
{
    struct run r = cli("query --json --limit 2");
    ck_assert_int_eq(r.status, 0);
    char *want = xasprintf("{\"events\":[%s,%s],\"next_cursor\":\"c2\"}\n", EVENTS[0], EVENTS[1]);
    ck_assert_str_eq(r.out, want);
    ck_assert_str_eq(r.err, ""); /* machines get no summary */
    free(want);
    run_free(&r);
    /* NDJSON: each event as the API wrote it (0.1, 1e400 and a 30-digit
     * integer unchanged) */
    r = cli("query --json --all --limit 2");
    ck_assert_int_eq(r.status, 0);
    struct buf b = BUF_INIT;
    for (int i = 0; i < NEVENTS; i++)
        buf_addf(&b, "%s\n", EVENTS[i]);
    ck_assert_str_eq(r.out, buf_cstr(&b));
    buf_release(&b);
    run_free(&r);
    /* and the table still reads a page whose integers overflow 64 bits */
    r = cli("query --cursor c2 --limit 1");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "bob"));
    run_free(&r);
}
END_TEST

START_TEST(exit_statuses_and_error_lines)
{
    static const struct {
        const char *args;
        int status;
        const char *err;
    } cases[] = {
        {"query --actor bad", 2,
         "auditrail: from must be an RFC 3339 timestamp (HTTP 400 bad_time)\n"},
        {"query --actor forbidden", 3,
         "auditrail: this token may not read that tenant (HTTP 403 tenant_forbidden)\n"},
        {"query --actor boom", 4, "auditrail: internal error (HTTP 500 internal)\n"},
        {"query --actor busy", 4,
         "auditrail: no host may serve (HTTP 503 no_host); retry after 2 s\n"},
        {"query --actor hostile", 2, "auditrail: bad \\x1b[31mred (HTTP 400 bad_request)\n"},
        {"query --actor none", 0,
         "0 events \xc2\xb7 served by replica 10.0.0.1:5432 \xc2\xb7 "
         "replica lag 12 ms \xc2\xb7 cache hit\n"},
        {"query --actor none --fail-empty", 1, NULL},
        {"query --fail-empty", 0, NULL},
        {"stream bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 1,
         "auditrail: no such stream (for this token) (HTTP 404 not_found)\n"},
        {"stream nothex", 2, "auditrail: stream: the id is 32 hex characters\n"},
        {"stream", 2, NULL},
        {"query extra", 2, NULL},
        {"query --from yesterday", 2, NULL},
        {"query --from -1h --to -2h", 2, NULL},
        {"query --kind gap", 2,
         "auditrail query: --kind does not apply to this command "
         "(auditrail --help shows the usage)\n"},
        {"health --tenant A", 2, NULL},
        {"export --limit 5", 2, NULL},
        {"query --token x --token-file /dev/null", 2, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r = cli("%s", cases[i].args);
        ck_assert_msg(r.status == cases[i].status, "%s: exit %d, wanted %d: %s", cases[i].args,
                      r.status, cases[i].status, r.err);
        if (cases[i].err)
            ck_assert_msg(strcmp(r.err, cases[i].err) == 0, "%s: stderr '%s'", cases[i].args,
                          r.err);
        else if (cases[i].status)
            ck_assert_msg(lines(r.err) == 1, "%s: not one line: '%s'", cases[i].args, r.err);
        assert_inert(r.err);
        run_free(&r);
    }
    /* usage errors never reach the API */
    char *s = seen();
    ck_assert_ptr_null(strstr(s, "yesterday"));
    free(s);
    /* 401: without a token, and with a wrong one; the hint only without */
    char *args = xasprintf("--url %s query", url);
    struct run r = run_prog2("auditrail", args);
    ck_assert_int_eq(r.status, 3);
    ck_assert_str_eq(r.err, "auditrail: the bearer token is unknown, expired or revoked (HTTP 401 "
                            "unknown_token); no token given: --token-file FILE, $AUDITRAIL_TOKEN "
                            "or --token\n");
    run_free(&r);
    free(args);
    args = xasprintf("--url %s query --token atr_S3cretCliWrong", url);
    r = run_prog2("auditrail", args);
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_null(strstr(r.err, "no token given"));
    run_free(&r);
    free(args);
    /* nothing listens: 4 */
    r = run_prog2("auditrail", "--url http://127.0.0.1:1 --token " TOKEN " query");
    ck_assert_int_eq(r.status, 4);
    ck_assert_msg(strncmp(r.err, "auditrail: http://127.0.0.1:1 unavailable: ", 43) == 0, "%s",
                  r.err);
    ck_assert_uint_eq(lines(r.err), 1);
    run_free(&r);
}
END_TEST

/* One HTTP exchange on a plain socket: the request's head as it came. */
struct raw_srv {
    int fd;
    unsigned port;
    pthread_t th;
    struct buf req;
};

static void *raw_serve(void *ud)
{
    struct raw_srv *s = ud;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char chunk[1024];
    ssize_t n;
    while (!strstr(buf_cstr(&s->req), "\r\n\r\n") && (n = read(c, chunk, sizeof(chunk))) > 0)
        buf_add(&s->req, chunk, (size_t)n);
    static const char answer[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nm 1\n";
    ssize_t w = write(c, answer, sizeof(answer) - 1);
    (void)w;
    close(c);
    return NULL;
}

static void raw_start(struct raw_srv *s)
{
    memset(s, 0, sizeof(*s));
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(s->fd, 4), 0);
    socklen_t l = sizeof(sa);
    getsockname(s->fd, (struct sockaddr *)&sa, &l);
    s->port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&s->th, NULL, raw_serve, s), 0);
}

START_TEST(token_sources_and_where_it_goes)
{
    /* $AUDITRAIL_TOKEN, $AUDITRAIL_URL; options before or after the verb */
    char *args = xasprintf("query --limit 1");
    setenv("AUDITRAIL_TOKEN", TOKEN, 1);
    setenv("AUDITRAIL_URL", url, 1);
    struct run r = run_prog2("auditrail", args);
    ck_assert_int_eq(r.status, 0);
    run_free(&r);
    free(args);
    unsetenv("AUDITRAIL_TOKEN");
    args = xasprintf("--token-file %s query --limit 1", tokfile);
    r = run_prog2("auditrail", args);
    ck_assert_int_eq(r.status, 0);
    run_free(&r);
    free(args);
    args = xasprintf("query --limit 1 --token-file=%s", tokfile);
    r = run_prog2("auditrail", args);
    ck_assert_int_eq(r.status, 0);
    run_free(&r);
    free(args);
    /* health and metrics are not the query API: no token sent there (a
     * listener that keeps the request as it came) */
    struct raw_srv raw;
    raw_start(&raw);
    setenv("AUDITRAIL_TOKEN", TOKEN, 1);
    args = xasprintf("--url http://127.0.0.1:%u metrics", raw.port);
    r = run_prog2("auditrail", args);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "m 1\n");
    run_free(&r);
    free(args);
    unsetenv("AUDITRAIL_TOKEN");
    unsetenv("AUDITRAIL_URL");
    pthread_join(raw.th, NULL);
    ck_assert_msg(strncmp(raw.req.p, "GET /metrics HTTP/1.1\r\n", 23) == 0, "%s", raw.req.p);
    ck_assert_msg(!strcasestr(raw.req.p, "Authorization") && !strstr(raw.req.p, SECRET_PART), "%s",
                  raw.req.p);
    buf_release(&raw.req);
    close(raw.fd);
}
END_TEST

static void assert_absent(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) != 0, "%s exists", path);
}

START_TEST(export_whole_or_absent)
{
    struct buf want = BUF_INIT;
    for (int i = 0; i < NEVENTS; i++)
        buf_addf(&want, "%s\n", EVENTS[i]);
    /* to stdout, byte for byte */
    struct run r = cli("export --from 2026-11-26 --to 2026-11-27");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, buf_cstr(&want));
    ck_assert_str_eq(r.err, ""); /* stderr is no terminal: no progress */
    run_free(&r);
    char *s = seen();
    ck_assert_str_eq(s, "auth /v1/events/export?from=2026-11-26T00:00:00.000000Z&"
                        "to=2026-11-27T00:00:00.000000Z\n");
    free(s);
    /* to a file: the same bytes, mode 0600, no .part left */
    char *file = xasprintf("%s/out.ndjson", workdir),
         *part = xasprintf("%s/out.ndjson.part", workdir);
    r = cli("export -o '%s'", file);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
    char *got = slurp(file);
    ck_assert_str_eq(got, buf_cstr(&want));
    free(got);
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    assert_absent(part);
    /* cut short by the server: exit 4, the old file untouched, no part */
    test_write_file(file, "old\n", 4, false);
    r = cli("export --actor cut -o '%s'", file);
    ck_assert_int_eq(r.status, 4);
    ck_assert_msg(strstr(r.err, "the answer was cut short") && lines(r.err) == 1, "%s", r.err);
    run_free(&r);
    got = slurp(file);
    ck_assert_str_eq(got, "old\n");
    free(got);
    assert_absent(part);
    /* cut short on stdout: what came is there, and the status says 4 */
    r = cli("export --actor cut");
    ck_assert_int_eq(r.status, 4);
    ck_assert_uint_eq(lines(r.out), 2);
    run_free(&r);
    /* refused: no file at all, the API's error */
    unlink(file);
    r = cli("export --actor forbidden -o '%s'", file);
    ck_assert_int_eq(r.status, 3);
    ck_assert_str_eq(
        r.err, "auditrail: this token may not read that tenant (HTTP 403 tenant_forbidden)\n");
    run_free(&r);
    assert_absent(file);
    assert_absent(part);
    /* a FILE.part that is a link elsewhere is not followed */
    char *victim = xasprintf("%s/victim", workdir);
    test_write_file(victim, "keep\n", 5, false);
    ck_assert_int_eq(symlink(victim, part), 0);
    r = cli("export -o '%s'", file);
    ck_assert_int_eq(r.status, 1);
    run_free(&r);
    got = slurp(victim);
    ck_assert_str_eq(got, "keep\n");
    free(got);
    assert_absent(file);
    /* an output directory that does not exist: 1, said once */
    r = cli("export -o '%s/no/such/workdir/x'", workdir);
    ck_assert_int_eq(r.status, 1);
    ck_assert_uint_eq(lines(r.err), 1);
    run_free(&r);
    free(victim);
    free(file);
    free(part);
    buf_release(&want);
}
END_TEST

START_TEST(streams_stream_and_incidents)
{
    struct run r = cli("streams --tenant A --counts");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa  5 "));
    ck_assert_ptr_nonnull(strstr(r.err, "1 streams \xc2\xb7 served by"));
    run_free(&r);
    char *s = seen();
    ck_assert_str_eq(s, "auth /v1/streams?tenant=A&counts=true\n");
    free(s);
    r = cli("stream AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "rows          5\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "1 incident:\n"));
    run_free(&r);
    r = cli("stream aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa --json");
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strncmp(r.out, "{\"id\":\"aaaa", 11) == 0, "%s", r.out);
    run_free(&r);
    r = cli("incidents --kind fork --stream aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa --from 2026-11-01");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "fork"));
    run_free(&r);
    s = seen();
    ck_assert_msg(strstr(s, "/v1/streams/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?\n") &&
                      strstr(s, "/v1/incidents?stream=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&kind=fork&"
                                "from=2026-11-01T00:00:00.000000Z\n"),
                  "%s", s);
    free(s);
}
END_TEST

START_TEST(verify_one_stream_and_every_listed)
{
    struct run r = cli("verify --stream %s", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, ""); /* no findings, no table */
    ck_assert_str_eq(r.err,
                     "intact \xc2\xb7 1 stream \xc2\xb7 5 records \xc2\xb7 0 problems \xc2\xb7 "
                     "0 notes \xc2\xb7 0.500 s \xc2\xb7 served by replica 10.0.0.1:5432 \xc2\xb7 "
                     "replica lag 12 ms\n");
    run_free(&r);
    char *s = seen();
    ck_assert_str_eq(s, "auth /v1/streams/" VA "/verify?\n");
    free(s);
    /* every stream of the range: both pages of /v1/streams, each verified
     * with the same filters; one problem makes the whole run's status 1 */
    r = cli("verify --tenant V --from 2026-11-01");
    ck_assert_int_eq(r.status, 1);
    assert_inert(r.out);
    ck_assert_uint_eq(lines(r.out), 2);
    ck_assert_msg(strncmp(r.out, "KIND ", 5) == 0, "%s", r.out);
    ck_assert_msg(strstr(r.out, "\nhash_mismatch         " VB ":3  ") &&
                      strstr(r.out, "  2026-11-26T00:03:00.000000Z  " VA VA "  " VC VC
                                    "  raw \\x1b[31mred\n"),
                  "%s", r.out);
    ck_assert_msg(strncmp(r.err,
                          "problems \xc2\xb7 2 streams \xc2\xb7 9 records \xc2\xb7 1 problems "
                          "\xc2\xb7 0 notes \xc2\xb7 0.750 s",
                          62) == 0,
                  "%s", r.err);
    run_free(&r);
    s = seen();
    ck_assert_str_eq(s,
                     "auth /v1/streams?tenant=V&from=2026-11-01T00:00:00.000000Z&limit=1000\n"
                     "auth /v1/streams/" VA "/verify?tenant=V&from=2026-11-01T00:00:00.000000Z\n"
                     "auth /v1/streams?tenant=V&from=2026-11-01T00:00:00.000000Z&limit=1000&"
                     "cursor=p2\n"
                     "auth /v1/streams/" VB "/verify?tenant=V&from=2026-11-01T00:00:00.000000Z\n");
    free(s);
    /* --json: each answer as it came, one line per stream, nothing on stderr */
    r = cli("verify --tenant V --json");
    ck_assert_int_eq(r.status, 1);
    ck_assert_uint_eq(lines(r.out), 2);
    ck_assert_msg(strncmp(r.out, "{\"stream\":\"" VA "\",\"findings\":[]", 32) == 0, "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "\n{\"stream\":\"" VB "\",\"findings\":[{"));
    ck_assert_str_eq(r.err, "");
    run_free(&r);
    /* not the API's answer: 4; unknown stream: 1 (404); bad id and a
     * filter verify cannot apply: 2, nothing sent */
    r = cli("verify --stream " VC);
    ck_assert_int_eq(r.status, 4);
    run_free(&r);
    r = cli("verify --stream dddddddddddddddddddddddddddddddd");
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "(HTTP 404 not_found)"));
    run_free(&r);
    free(seen());
    r = cli("verify --stream 12345");
    ck_assert_int_eq(r.status, 2);
    run_free(&r);
    r = cli("verify --actor alice");
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "--actor does not apply to this command"));
    run_free(&r);
    r = cli("verify " VA);
    ck_assert_int_eq(r.status, 2);
    run_free(&r);
    s = seen();
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

/* replay and proof run auditrail-aggregator with their arguments as given:
 * the key it makes, the public key it prints (checked with openssl), its
 * exit status; found beside the CLI, else on PATH. */
START_TEST(aggregator_commands_run_through)
{
    char *key = xasprintf("%s/signing.pem", workdir), *cfg = xasprintf("%s/agg.yaml", workdir);
    char *args = xasprintf("proof keygen '%s'", key); /* keygen needs no --config */
    struct run r = run_prog2("auditrail", args);
    ck_assert_msg(r.status == 0, "%s", r.err);
    run_free(&r);
    free(args);
    char *yaml =
        xasprintf("kafka: {brokers: \"127.0.0.1:9\"}\npostgres: {primary: \"host=/nonexistent\"}\n"
                  "proof: {key_file: \"%s\"}\n",
                  key);
    test_write_file(cfg, yaml, strlen(yaml), false);
    char *cmd = xasprintf("openssl pkey -in '%s' -pubout", key);
    struct buf want = BUF_INIT, ignored = BUF_INIT;
    ck_assert_int_eq(proc_run_sh(cmd, &want, &ignored), 0);
    /* --config after the verb, before it, and from the environment */
    const char *forms[] = {"proof --config '%s' pubkey", "--config '%s' proof pubkey",
                           "proof pubkey --config=%s"};
    for (size_t i = 0; i < 3; i++) {
        args = xasprintf(forms[i], cfg);
        r = run_prog2("auditrail", args);
        ck_assert_msg(r.status == 0, "%s: %s", args, r.err);
        ck_assert_str_eq(r.out, buf_cstr(&want));
        run_free(&r);
        free(args);
    }
    setenv("AUDITRAIL_CONFIG", cfg, 1);
    r = run_prog2("auditrail", "proof pubkey");
    unsetenv("AUDITRAIL_CONFIG");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, buf_cstr(&want));
    run_free(&r);
    /* the aggregator's own refusals and statuses come back as they are */
    args = xasprintf("proof --config '%s' frobnicate", cfg);
    r = run_prog2("auditrail", args);
    ck_assert_int_eq(r.status, 2);
    ck_assert_msg(strstr(r.err, "auditrail-aggregator"), "%s", r.err);
    run_free(&r);
    free(args);
    args = xasprintf("replay --config '%s' --from -1h --dry-run", cfg); /* no Kafka there */
    r = run_prog2("auditrail", args);
    ck_assert_msg(r.status == 4, "exit %d: %s", r.status, r.out);
    ck_assert_msg(strstr(r.out, "replay (dry run: nothing written) FAILED"), "%s", r.out);
    run_free(&r);
    free(args);
    /* without a config: 2, nothing run */
    r = run_prog2("auditrail", "replay --from -1h");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "auditrail replay: --config FILE (the aggregator's) or "
                            "$AUDITRAIL_CONFIG is required\n");
    run_free(&r);
    /* a CLI installed alone finds the aggregator on PATH, or says so: 4 */
    char *self = test_bin("auditrail"), *agg = test_bin("auditrail-aggregator");
    *strrchr(agg, '/') = '\0';
    char *copy = xasprintf("cp '%s' '%s/auditrail'", self, workdir);
    ck_assert_int_eq(system(copy), 0);
    free(cmd);
    cmd = xasprintf("PATH='/nonexistent:%s' '%s/auditrail' proof --config '%s' pubkey", agg,
                    workdir, cfg);
    struct buf o = BUF_INIT, e = BUF_INIT;
    ck_assert_int_eq(proc_run_sh(cmd, &o, &e), 0);
    ck_assert_str_eq(buf_cstr(&o), buf_cstr(&want));
    free(cmd);
    buf_reset(&o);
    buf_reset(&e);
    cmd = xasprintf("PATH=/nonexistent '%s/auditrail' proof --config '%s' pubkey", workdir, cfg);
    ck_assert_int_eq(proc_run_sh(cmd, &o, &e), 4);
    ck_assert_str_eq(buf_cstr(&e),
                     "auditrail proof: no auditrail-aggregator beside this program or "
                     "on PATH\n");
    buf_release(&o);
    buf_release(&e);
    buf_release(&want);
    buf_release(&ignored);
    free(copy);
    free(self);
    free(agg);
    free(cmd);
    free(yaml);
    free(key);
    free(cfg);
}
END_TEST

START_TEST(health_ready_and_not_ready)
{
    char *out;
    char *args = xasprintf("--url %s health", url);
    ck_assert_int_eq(run_cli(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "readyz  200"));
    free(out);
    atomic_store(&ready_flag, false);
    ck_assert_int_eq(run_cli(args, &out), 1);
    ck_assert_ptr_nonnull(strstr(out, "readyz  503"));
    ck_assert_ptr_nonnull(strstr(out, "postgres breaker open"));
    free(out);
    free(args);
}
END_TEST

START_TEST(health_unreachable_exits_4)
{
    char *out;
    /* Port 1 on loopback: nothing listens there. */
    ck_assert_int_eq(run_cli("--url http://127.0.0.1:1 health", &out), 4);
    free(out);
    ck_assert_int_eq(run_cli("health --url http://127.0.0.1:1 --timeout 0.5", &out), 4);
    free(out);
}
END_TEST

START_TEST(metrics_filtered_by_prefix)
{
    char *out;
    char *args = xasprintf("--url %s metrics auditrail_test", url);
    ck_assert_int_eq(run_cli(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "auditrail_test_records_total 7"));
    ck_assert_ptr_null(strstr(out, "auditrail_other_gauge"));
    free(out);
    free(args);
    /* options after the verb and its argument */
    args = xasprintf("metrics auditrail_other --url %s", url);
    ck_assert_int_eq(run_cli(args, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "auditrail_other_gauge 3"));
    free(out);
    free(args);
}
END_TEST

START_TEST(unknown_command_and_missing_config)
{
    char *out;
    ck_assert_int_eq(run_cli("frobnicate", &out), 2);
    free(out);
    ck_assert_int_eq(run_cli("migrate", &out), 2);
    free(out);
    /* a token typed where the command goes is not repeated */
    struct run r = run_prog2("auditrail", TOKEN);
    ck_assert_int_eq(r.status, 2);
    run_free(&r);
    /* the verbs' help is the program's, on stdout, exit 0 */
    ck_assert_int_eq(run_cli("query --help", &out), 0);
    ck_assert_msg(strncmp(out, "usage: auditrail", 16) == 0 && strstr(out, "exit status:"), "%s",
                  out);
    free(out);
}
END_TEST

/* ---- the skeleton the three programs share (common/prog.c) ---- */

static const char *const programs[] = {"auditrail", "auditrail-agent", "auditrail-aggregator"};

static char *version_file(void)
{
    char *path = xasprintf("%s/VERSION", test_repo_root());
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char v[64] = "";
    ck_assert_ptr_nonnull(fgets(v, sizeof(v), f));
    fclose(f);
    free(path);
    v[strcspn(v, "\n")] = '\0';
    ck_assert_uint_gt(strlen(v), 0);
    return xstrdup(v);
}

START_TEST(version_help_and_bad_options)
{
    char *v = version_file(), *out;
    for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++) {
        char *want = xasprintf("%s %s\n", programs[i], v);
        ck_assert_int_eq(run_prog(programs[i], "--version", false, &out), 0);
        ck_assert_str_eq(out, want);
        free(out);
        free(want);
        ck_assert_int_eq(run_prog(programs[i], "--help", false, &out), 0);
        ck_assert_msg(strncmp(out, "usage: ", 7) == 0, "%s", out);
        free(out);
        ck_assert_int_eq(run_prog(programs[i], "--no-such-option", false, &out), 2);
        free(out);
    }
    free(v);
    /* getopt's refusals name the option, never its value (a mistyped
     * --token must not print the token) */
    static const struct {
        const char *args, *want;
    } bad[] = {
        {"--tokn=atr_S3cretCliX query", "auditrail: unknown option --tokn\n"},
        {"--atr_S3cretCliY query", "auditrail: unknown option\n"},
        {"-Z query", "auditrail: unknown option -Z\n"},
        {"query --url", "auditrail query: --url needs a value"},
        {"--url", "auditrail: --url needs a value\n"},
        {"-u", "auditrail: --url needs a value\n"},
        {"--token", "auditrail: --token needs a value\n"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct run r = run_prog2("auditrail", bad[i].args);
        ck_assert_int_eq(r.status, 2);
        ck_assert_msg(strncmp(r.err, bad[i].want, strlen(bad[i].want)) == 0, "%s: %s", bad[i].args,
                      r.err);
        run_free(&r);
    }
    ck_assert_int_eq(run_prog("auditrail-aggregator", "--config", true, &out), 2);
    ck_assert_msg(strncmp(out, "auditrail-aggregator: --config needs a value\n", 45) == 0, "%s",
                  out);
    free(out);
    /* The CLI has no configuration of its own to check. */
    ck_assert_int_eq(run_cli("--check-config", &out), 2);
    free(out);
}
END_TEST

/* README: --check-config exits 0 on a valid file, 2 with one error line
 * "PROGRAM: FILE:LINE: key: what" on an invalid one. */
START_TEST(check_config_contract)
{
    char *dir = test_tmpdir("cli-check");
    char *agent = xasprintf("%s/agent.yaml", dir), *aggr = xasprintf("%s/aggregator.yaml", dir);
    const char *agent_ok = "agent:\n  inputs:\n    - path: /tmp/*.log\nkafka:\n  brokers: k:1\n";
    const char *aggr_bad = "kafka:\n  brokers: k:1\npostgres:\n  primary: x\nbreaker:\n"
                           "  window: 4\n  min_calls: 5\n";
    test_write_file(agent, agent_ok, strlen(agent_ok), false);
    test_write_file(aggr, aggr_bad, strlen(aggr_bad), false);
    char *out, *args = xasprintf("--config %s --check-config", agent);
    ck_assert_int_eq(run_prog("auditrail-agent", args, true, &out), 0);
    char *want = xasprintf("%s: configuration ok\n", agent);
    ck_assert_str_eq(out, want);
    free(want);
    free(out);
    free(args);
    args = xasprintf("--check-config --config %s", aggr);
    ck_assert_int_eq(run_prog("auditrail-aggregator", args, true, &out), 2);
    want = xasprintf("auditrail-aggregator: %s:7: breaker.min_calls: must be <= breaker.window\n",
                     aggr);
    ck_assert_str_eq(out, want);
    free(want);
    free(out);
    free(args);
    /* Without --config: a usage error. */
    ck_assert_int_eq(run_prog("auditrail-agent", "--check-config", false, &out), 2);
    free(out);
    ck_assert_int_eq(run_prog("auditrail-aggregator", "migrate", false, &out), 2);
    free(out);
    /* Subcommand arguments are checked before anything runs. */
    args = xasprintf("--config %s replay 1 x", aggr);
    ck_assert_int_eq(run_prog("auditrail-aggregator", args, false, &out), 2);
    free(out);
    free(args);
    args = xasprintf("--config %s --role reader", aggr);
    ck_assert_int_eq(run_prog("auditrail-aggregator", args, false, &out), 2);
    free(out);
    free(args);
    test_rmtree(dir);
    free(agent);
    free(aggr);
    free(dir);
}
END_TEST

START_TEST(metrics_reference_lists_families)
{
    char *out;
    ck_assert_int_eq(run_prog("auditrail-agent", "--metrics-reference", false, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "# TYPE auditrail_agent_records_lost_total counter"));
    free(out);
    ck_assert_int_eq(run_prog("auditrail-aggregator", "--metrics-reference", false, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "# TYPE auditrail_aggregator_consumer_lag gauge"));
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60); /* each test runs the CLI a dozen times */
    tcase_add_test(tc, query_table_and_summary_line);
    tcase_add_test(tc, query_all_follows_cursors_up_to_max);
    tcase_add_test(tc, query_json_as_is_and_ndjson);
    tcase_add_test(tc, exit_statuses_and_error_lines);
    tcase_add_test(tc, token_sources_and_where_it_goes);
    tcase_add_test(tc, export_whole_or_absent);
    tcase_add_test(tc, streams_stream_and_incidents);
    tcase_add_test(tc, verify_one_stream_and_every_listed);
    tcase_add_test(tc, aggregator_commands_run_through);
    tcase_add_test(tc, health_ready_and_not_ready);
    tcase_add_test(tc, health_unreachable_exits_4);
    tcase_add_test(tc, metrics_filtered_by_prefix);
    tcase_add_test(tc, unknown_command_and_missing_config);
    suite_add_tcase(s, tc);
    TCase *pt = tcase_create("programs");
    tcase_add_checked_fixture(pt, setup, teardown);
    tcase_set_timeout(pt, 60); /* a dozen program runs, slow under the sanitizers */
    tcase_add_test(pt, version_help_and_bad_options);
    tcase_add_test(pt, check_config_contract);
    tcase_add_test(pt, metrics_reference_lists_families);
    suite_add_tcase(s, pt);
    return test_run_suite(s);
}
