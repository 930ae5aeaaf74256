/* The CLI's pure front half: option parsing per verb, --from/--to times
 * (relative, dates, RFC 3339, bounds), the query string a verb sends, and
 * resolving the connection (URL, token sources, messages that never quote
 * the token). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_http.h"
#include "cli/cli_opts.h"
#include "cli/cli_params.h"
#include "cli/cli_time.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/testutil.h"

#define ALL_OPTS 0xffffffffu

/* A space-separated line (no quoting) as words: static storage, valid
 * until the next call. */
static char **words(const char *line, int *argc)
{
    static char copy[512];
    static char *argv[64];
    snprintf(copy, sizeof(copy), "%s", line);
    *argc = 0;
    for (char *t = strtok(copy, " "); t && *argc < 63; t = strtok(NULL, " "))
        argv[(*argc)++] = t;
    return argv;
}

/* Parse a space-separated line with the allowed set. */
static int parse(struct cli_opts *o, uint32_t allowed, const char *line, char *err, size_t errlen)
{
    int argc;
    char **argv = words(line, &argc);
    return cli_opts_parse(o, allowed, argc, argv, err, errlen);
}

START_TEST(options_long_short_and_operands)
{
    struct cli_opts o;
    char err[256];
    cli_opts_init(&o);
    ck_assert_int_eq(o.timeout_ms, -1);
    ck_assert_int_eq(parse(&o, ALL_OPTS,
                           "ID1 --tenant A --actor=alice -o out.ndjson --from -24h --to=now "
                           "--limit 50 --all --max 7 --json --timeout 2.5 -- --not-an-option",
                           err, sizeof(err)),
                     0);
    ck_assert_str_eq(o.tenant, "A");
    ck_assert_str_eq(o.actor, "alice");
    ck_assert_str_eq(o.output, "out.ndjson");
    ck_assert_str_eq(o.from, "-24h"); /* a value that starts with '-' is still the value */
    ck_assert_str_eq(o.to, "now");
    ck_assert_uint_eq(o.limit, 50);
    ck_assert(o.all && o.json && !o.fail_empty);
    ck_assert_uint_eq(o.max, 7);
    ck_assert_int_eq(o.timeout_ms, 2500);
    ck_assert_int_eq(o.argc, 2);
    ck_assert_str_eq(o.argv[0], "ID1");
    ck_assert_str_eq(o.argv[1], "--not-an-option");
    /* a later value wins: options before the verb are defaults */
    ck_assert_int_eq(parse(&o, ALL_OPTS, "--tenant B -u http://h:1", err, sizeof(err)), 0);
    ck_assert_str_eq(o.tenant, "B");
    ck_assert_str_eq(o.url, "http://h:1");
    ck_assert_int_eq(o.argc, 0);
    cli_opts_release(&o);
}
END_TEST

/* Parse as cli_opts_passthrough does for replay and proof. */
static int pass(struct cli_opts *o, const char *line, char *err, size_t errlen)
{
    int argc;
    char **argv = words(line, &argc);
    return cli_opts_passthrough(o, argc, argv, err, errlen);
}

static void want_operands(const struct cli_opts *o, const char *want)
{
    char got[512] = "";
    for (int i = 0; i < o->argc; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "", o->argv[i]);
    ck_assert_str_eq(got, want);
    ck_assert_ptr_null(o->argv[o->argc]);
}

START_TEST(passthrough_takes_only_config)
{
    struct cli_opts o;
    char err[256];
    cli_opts_init(&o);
    /* every other word as it was, in its order: the aggregator's options */
    ck_assert_int_eq(
        pass(&o, "--from -1h --config a.yaml --partitions 0,3 --dry-run --json", err, sizeof(err)),
        0);
    ck_assert_str_eq(o.config, "a.yaml");
    want_operands(&o, "--from -1h --partitions 0,3 --dry-run --json");
    ck_assert(!o.json); /* not the CLI's --json */
    /* --config=FILE, -c FILE; the later wins over one given before the verb */
    o.config = "before.yaml";
    ck_assert_int_eq(pass(&o, "pubkey --config=b.yaml", err, sizeof(err)), 0);
    ck_assert_str_eq(o.config, "b.yaml");
    want_operands(&o, "pubkey");
    ck_assert_int_eq(pass(&o, "-c c.yaml inclusion abc 7", err, sizeof(err)), 0);
    ck_assert_str_eq(o.config, "c.yaml");
    want_operands(&o, "inclusion abc 7");
    /* after "--" nothing is taken, "--" included */
    o.config = NULL;
    ck_assert_int_eq(pass(&o, "--from-offset 0:5 -- --config x.yaml", err, sizeof(err)), 0);
    ck_assert_ptr_null(o.config);
    want_operands(&o, "--from-offset 0:5 -- --config x.yaml");
    /* options the CLI has but these verbs do not: passed on, not taken */
    ck_assert_int_eq(pass(&o, "--help --url http://x -o f --token t", err, sizeof(err)), 0);
    ck_assert(!o.help);
    ck_assert_ptr_null(o.url);
    want_operands(&o, "--help --url http://x -o f --token t");
    /* --config without its value */
    ck_assert_int_eq(pass(&o, "--from -1h --config", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "--config needs a value");
    ck_assert_int_eq(pass(&o, "--config= --from -1h", err, sizeof(err)), -1);
    ck_assert_int_eq(pass(&o, "", err, sizeof(err)), 0);
    ck_assert_int_eq(o.argc, 0);
    cli_opts_release(&o);
}
END_TEST

/* verify's options: the connection, --stream, --tenant, the range,
 * --min-lsn, --json; nothing that filters events. */
START_TEST(verify_options)
{
    const uint32_t verify =
        CLI_O_CONN | CLI_O_TENANT | CLI_O_STREAM | CLI_O_RANGE | CLI_O_MIN_LSN | CLI_O_JSON;
    struct cli_opts o;
    char err[256];
    cli_opts_init(&o);
    ck_assert_int_eq(parse(&o, verify,
                           "--stream 0123456789abcdef0123456789ABCDEF --from -7d --to now "
                           "--tenant A --json --min-lsn 0/16B3748",
                           err, sizeof(err)),
                     0);
    ck_assert_str_eq(o.stream, "0123456789abcdef0123456789ABCDEF");
    ck_assert(o.json);
    static const char *const refused[] = {"--actor a", "--limit 5", "--all",      "--kind gap",
                                          "--counts",  "-o f",      "--config f", "--fail-empty"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        ck_assert_msg(parse(&o, verify, refused[i], err, sizeof(err)) == -1, "%s", refused[i]);
        ck_assert_msg(strstr(err, "does not apply to this command"), "%s: %s", refused[i], err);
    }
    cli_opts_release(&o);
}
END_TEST

/* Where the aggregator is: beside the CLI, else on PATH, else nowhere. */
START_TEST(aggregator_path_beside_then_path)
{
    char *dir = test_tmpdir("cli-path");
    char *a = xasprintf("%s/a", dir), *b = xasprintf("%s/b", dir), *c = xasprintf("%s/c", dir);
    ck_assert_int_eq(mkdir(a, 0755), 0);
    ck_assert_int_eq(mkdir(b, 0755), 0);
    ck_assert_int_eq(mkdir(c, 0755), 0);
    char *in_a = xasprintf("%s/auditrail-aggregator", a),
         *in_b = xasprintf("%s/auditrail-aggregator", b),
         *in_c = xasprintf("%s/auditrail-aggregator", c), *self = xasprintf("%s/auditrail", a);
    test_write_file(in_b, "#!/bin/sh\n", 10, false);
    chmod(in_b, 0755);
    test_write_file(in_c, "not executable", 14, false);
    chmod(in_c, 0644);
    char *path = xasprintf("/nonexistent:%s:%s", c, b);
    /* not beside self (a): the first executable one on PATH (c's is not) */
    char *got = cli_aggregator_path(self, path);
    ck_assert_str_eq(got, in_b);
    free(got);
    /* beside self wins over PATH */
    test_write_file(in_a, "#!/bin/sh\n", 10, false);
    chmod(in_a, 0755);
    got = cli_aggregator_path(self, path);
    ck_assert_str_eq(got, in_a);
    free(got);
    /* self unknown: PATH only; nothing anywhere: NULL */
    got = cli_aggregator_path(NULL, path);
    ck_assert_str_eq(got, in_b);
    free(got);
    ck_assert_ptr_null(cli_aggregator_path(NULL, c));
    ck_assert_ptr_null(cli_aggregator_path(NULL, NULL));
    ck_assert_ptr_null(cli_aggregator_path("auditrail", "/nonexistent"));
    test_rmtree(dir);
    free(dir);
    free(a);
    free(b);
    free(c);
    free(in_a);
    free(in_b);
    free(in_c);
    free(self);
    free(path);
}
END_TEST

START_TEST(options_refused)
{
    struct cli_opts o;
    char err[256];
    static const struct {
        uint32_t allowed;
        const char *line, *want;
    } cases[] = {
        {ALL_OPTS, "--bogus", "unknown option --bogus"},
        {ALL_OPTS, "-x", "unknown option -x"},
        {ALL_OPTS, "-oFILE", "unknown option"}, /* no bundling */
        {ALL_OPTS, "--tenant", "--tenant needs a value"},
        {ALL_OPTS, "--tenant=", "--tenant needs a value"},
        {ALL_OPTS, "--json=yes", "--json takes no value"},
        {ALL_OPTS, "--limit 0", "--limit takes an integer from 1 to 1000"},
        {ALL_OPTS, "--limit 1001", "--limit takes an integer from 1 to 1000"},
        {ALL_OPTS, "--limit 1e3", "--limit takes an integer from 1 to 1000"},
        {ALL_OPTS, "--limit -5", "--limit takes an integer from 1 to 1000"},
        {ALL_OPTS, "--max 0", "--max takes an integer from 1 to 1000000000"},
        {ALL_OPTS, "--timeout -1", "--timeout takes seconds from 0 (no limit) to 86400"},
        {ALL_OPTS, "--timeout 1e9", "--timeout takes seconds from 0 (no limit) to 86400"},
        {ALL_OPTS, "--timeout nan", "--timeout takes seconds from 0 (no limit) to 86400"},
        /* a verb's set: health takes no filters, streams no actor */
        {CLI_O_CONN, "--tenant A", "--tenant does not apply to this command"},
        {CLI_O_CONN | CLI_O_TENANT, "--actor x", "--actor does not apply to this command"},
        {CLI_O_CONN, "--kind gap", "--kind does not apply to this command"},
        {CLI_O_CONN, "-o f", "--output does not apply to this command"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_opts_init(&o);
        err[0] = '\0';
        ck_assert_msg(parse(&o, cases[i].allowed, cases[i].line, err, sizeof(err)) == -1,
                      "accepted: %s", cases[i].line);
        ck_assert_msg(strcmp(err, cases[i].want) == 0, "%s: '%s'", cases[i].line, err);
        cli_opts_release(&o);
    }
    /* --help is always there */
    cli_opts_init(&o);
    ck_assert_int_eq(parse(&o, 0, "--help", err, sizeof(err)), 0);
    ck_assert(o.help);
    cli_opts_release(&o);
}
END_TEST

START_TEST(unknown_option_never_echoes_a_value)
{
    /* A token pasted as --tokn=SECRET or as -SECRET must not reach stderr. */
    struct cli_opts o;
    char err[256];
    cli_opts_init(&o);
    ck_assert_int_eq(parse(&o, ALL_OPTS, "--tokn=atr_SECRET", err, sizeof(err)), -1);
    ck_assert_ptr_null(strstr(err, "SECRET"));
    ck_assert_str_eq(err, "unknown option --tokn");
    ck_assert_int_eq(parse(&o, ALL_OPTS, "--atr_S3CRETxyz", err, sizeof(err)), -1);
    ck_assert_ptr_null(strstr(err, "S3CRET"));
    ck_assert_int_eq(parse(&o, ALL_OPTS, "-atr_S3CRETxyz", err, sizeof(err)), -1);
    ck_assert_ptr_null(strstr(err, "S3CRET"));
    cli_opts_release(&o);
}
END_TEST

/* 2026-11-26T19:50:45.123456Z */
#define NOW INT64_C(1795722645123456)

static void want_time(const char *in, int64_t want)
{
    int64_t t = 0;
    ck_assert_msg(cli_time_parse(in, NOW, &t) == 0, "refused: %s", in);
    ck_assert_msg(t == want, "%s: %lld, wanted %lld", in, (long long)t, (long long)want);
}

START_TEST(times_relative_absolute_and_refused)
{
    int64_t t;
    ck_assert_int_eq(time_parse_rfc3339("2026-11-26T19:50:45.123456Z", 27, &t), 0);
    ck_assert(t == NOW);
    want_time("now", NOW);
    want_time("-24h", NOW - INT64_C(86400000000));
    want_time("-7d", NOW - 7 * INT64_C(86400000000));
    want_time("-30m", NOW - INT64_C(1800000000));
    want_time("-90s", NOW - INT64_C(90000000));
    want_time("-2w", NOW - 14 * INT64_C(86400000000));
    want_time("+1m", NOW + INT64_C(60000000));
    want_time("-0h", NOW);
    want_time("2026-11-26", NOW - (19 * 3600 + 50 * 60 + 45) * INT64_C(1000000) - 123456);
    want_time("2026-11-26T19:50:45.123456Z", NOW);
    want_time("2026-11-26T20:50:45.123456+01:00", NOW);
    want_time("2026-11-26 19:50:45.123456", NOW); /* no zone: UTC */
    static const char *const bad[] = {
        "",
        "yesterday",
        "24h",             /* a sign is required: ago or ahead */
        "-24",             /* a unit too */
        "-h",              /* and a number */
        "-24y",            /* no such unit */
        "-1.5h",           /* whole numbers */
        "- 24h",           /* no space */
        "-24hh",           /* one unit */
        "--24h",           /* one sign */
        "-9999999999999w", /* beyond int64 */
        "-999999999d",     /* before year 0 */
        "+999999999d",     /* after year 9999 */
        "2026-13-01",
        "2026-02-30",
        "2026-11-26T25:00:00Z",
        "2026-11-26T19:50:45Zjunk",
        "NOW",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(cli_time_parse(bad[i], NOW, &t) == -1, "accepted: '%s'", bad[i]);
}
END_TEST

static char *params(const char *line, bool default_range, int *rc, char *err, size_t errlen)
{
    struct cli_opts o;
    cli_opts_init(&o);
    ck_assert_int_eq(parse(&o, ALL_OPTS, line, err, errlen), 0);
    struct buf qs = BUF_INIT;
    *rc = cli_params_build(&o, NOW, default_range, &qs, err, errlen);
    cli_opts_release(&o);
    return buf_detach(&qs, NULL);
}

START_TEST(query_string_of_a_verb)
{
    char err[256];
    int rc;
    /* events: the last 24 hours by default, times in canonical RFC 3339 */
    char *qs = params("", true, &rc, err, sizeof(err));
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(qs, "from=2026-11-25T19%3A50%3A45.123456Z&to=2026-11-26T19%3A50%3A45.123456Z");
    free(qs);
    /* --to alone moves the default window with it */
    qs = params("--to 2026-11-20", true, &rc, err, sizeof(err));
    ck_assert_str_eq(qs, "from=2026-11-19T00%3A00%3A00.000000Z&to=2026-11-20T00%3A00%3A00.000000Z");
    free(qs);
    /* streams, incidents: no range unless given */
    qs = params("--tenant A", false, &rc, err, sizeof(err));
    ck_assert_str_eq(qs, "tenant=A");
    free(qs);
    /* every filter, percent-encoded (so '&' or '=' in a value cannot add
     * a parameter), the stream id lower-cased */
    qs = params("--actor a&limit=1 --action r/w --resource Patient/1?x --outcome 100% --source "
                "ns/pod --stream AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA --kind gap --min-lsn 0/16B3748 "
                "--counts --from 2026-11-26T00:00:00+01:00 --to 2026-11-26",
                false, &rc, err, sizeof(err));
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(qs, "actor=a%26limit%3D1&action=r%2Fw&resource=Patient%2F1%3Fx&outcome=100%25&"
                         "source=ns%2Fpod&stream=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&kind=gap&"
                         "from=2026-11-25T23%3A00%3A00.000000Z&to=2026-11-26T00%3A00%3A00.000000Z&"
                         "min_lsn=0%2F16B3748&counts=true");
    free(qs);
    /* UTF-8 travels as bytes */
    qs = params("--actor J\xc3\xb6rg", false, &rc, err, sizeof(err));
    ck_assert_str_eq(qs, "actor=J%C3%B6rg");
    free(qs);
}
END_TEST

START_TEST(query_string_refused)
{
    char err[256];
    int rc;
    static const struct {
        const char *line, *want;
    } cases[] = {
        {"--from now --to -1h", "--from must be before --to (the range is [from, to))"},
        {"--from 2026-11-26 --to 2026-11-26",
         "--from must be before --to (the range is [from, to))"},
        {"--from soon", "--from: not a time"},
        {"--to 2026-02-30", "--to: not a time"},
        {"--stream abc", "--stream takes a stream id: 32 hex characters"},
        {"--stream gggggggggggggggggggggggggggggggg", "--stream takes a stream id"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *qs = params(cases[i].line, true, &rc, err, sizeof(err));
        ck_assert_msg(rc == -1, "accepted: %s", cases[i].line);
        ck_assert_msg(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0, "%s: %s",
                      cases[i].line, err);
        free(qs);
    }
    char id[33];
    ck_assert(cli_stream_id("0123456789ABCDEFabcdef0123456789", id));
    ck_assert_str_eq(id, "0123456789abcdefabcdef0123456789");
    ck_assert(!cli_stream_id("0123456789abcdef0123456789abcdef0", id));
    ck_assert(!cli_stream_id("../../../../../../../../v1/event", id));
}
END_TEST

/* ---- the connection: where, who */

static char *dir;

static void conn_setup(void)
{
    dir = test_tmpdir("cli-args");
    unsetenv("AUDITRAIL_URL");
    unsetenv("AUDITRAIL_TOKEN");
    unsetenv("AUDITRAIL_TOKEN_FILE");
}

static void conn_teardown(void)
{
    test_rmtree(dir);
    free(dir);
}

static char *token_file(const char *name, const char *content)
{
    char *p = xasprintf("%s/%s", dir, name);
    test_write_file(p, content, strlen(content), false);
    return p;
}

START_TEST(conn_url_and_defaults)
{
    struct cli_opts o;
    struct cli_conn c;
    char err[256];
    cli_opts_init(&o);
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), 0);
    ck_assert_str_eq(c.base, "http://127.0.0.1:9200"); /* the aggregator's default listener */
    ck_assert_ptr_null(c.auth);
    ck_assert_int_eq(c.timeout_ms, CLI_DEFAULT_TIMEOUT);
    cli_conn_release(&c);
    setenv("AUDITRAIL_URL", "https://api.example:9300/", 1);
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), 0);
    ck_assert_str_eq(c.base, "https://api.example:9300"); /* no double slash in paths */
    cli_conn_release(&c);
    /* --url wins over the environment; user info never shown */
    o.url = "http://user:hunter2@proxy.example/auditrail/";
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), 0);
    ck_assert_str_eq(c.base, "http://user:hunter2@proxy.example/auditrail");
    ck_assert_ptr_null(strstr(c.shown, "hunter2"));
    ck_assert_str_eq(c.shown, "http://proxy.example/auditrail");
    cli_conn_release(&c);
    o.url = "file:///etc/passwd";
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "--url must start with http:// or https://");
    o.url = "127.0.0.1:9200";
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), -1);
    o.url = NULL;
    o.timeout_ms = 0;
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), 0);
    ck_assert_int_eq(c.timeout_ms, 0);
    cli_conn_release(&c);
}
END_TEST

START_TEST(conn_token_sources)
{
    struct cli_opts o;
    struct cli_conn c;
    char err[256];
    cli_opts_init(&o);
    setenv("AUDITRAIL_TOKEN", "atr_fromenv", 1);
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), 0);
    ck_assert_str_eq(c.auth, "Authorization: Bearer atr_fromenv");
    cli_conn_release(&c);
    /* a file (trailing newline, as editors and Secrets leave it) */
    char *f = token_file("tok", "atr_fromfile\r\n");
    o.token_file = f;
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), 0);
    ck_assert_str_eq(c.auth, "Authorization: Bearer atr_fromfile");
    cli_conn_release(&c);
    /* $AUDITRAIL_TOKEN_FILE when nothing else is given */
    o.token_file = NULL;
    unsetenv("AUDITRAIL_TOKEN");
    setenv("AUDITRAIL_TOKEN_FILE", f, 1);
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), 0);
    ck_assert_str_eq(c.auth, "Authorization: Bearer atr_fromfile");
    cli_conn_release(&c);
    /* --token over everything */
    o.token = "atr_flag";
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), 0);
    ck_assert_str_eq(c.auth, "Authorization: Bearer atr_flag");
    cli_conn_release(&c);
    o.token_file = f;
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "--token and --token-file: give one");
    free(f);
}
END_TEST

START_TEST(conn_token_refused_without_quoting_it)
{
    struct cli_opts o;
    struct cli_conn c;
    char err[256];
    static const char *const bad[] = {
        "atr_SECRET1\r\nX-Injected: 1\n", /* a second header through the file */
        "atr_SECRET2 atr_SECRET3\n",      "\n", "", "atr_SECRET4\x1b[2J",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cli_opts_init(&o);
        char *f = token_file("bad", bad[i]);
        o.token_file = f;
        ck_assert_msg(cli_conn_init(&c, &o, err, sizeof(err)) == -1, "accepted #%zu", i);
        ck_assert_str_eq(err, "the token is empty or holds spaces or control characters");
        free(f);
    }
    cli_opts_init(&o);
    o.token = "atr_SECRET5\nX: y";
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), -1);
    ck_assert_ptr_null(strstr(err, "SECRET"));
    /* a file that is not one, or too large to be a token */
    o.token = NULL;
    o.token_file = dir;
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
    char *missing = xasprintf("%s/none", dir);
    o.token_file = missing;
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    free(missing);
    char *big = xmalloc(CLI_TOKEN_MAX + 2);
    memset(big, 'a', CLI_TOKEN_MAX + 1);
    big[CLI_TOKEN_MAX + 1] = '\0';
    char *f = token_file("big", big);
    o.token_file = f;
    ck_assert_int_eq(cli_conn_init(&c, &o, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "larger than a token"));
    free(f);
    free(big);
}
END_TEST

START_TEST(query_string_encoding)
{
    struct buf qs = BUF_INIT;
    cli_qs_add(&qs, "a", "x y+z");
    cli_qs_add(&qs, "b", NULL); /* absent */
    cli_qs_add(&qs, "c", "\xff\x01~._-");
    ck_assert_str_eq(buf_cstr(&qs), "a=x%20y%2Bz&c=%FF%01~._-");
    buf_release(&qs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_args");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, options_long_short_and_operands);
    tcase_add_test(tc, options_refused);
    tcase_add_test(tc, passthrough_takes_only_config);
    tcase_add_test(tc, verify_options);
    tcase_add_test(tc, aggregator_path_beside_then_path);
    tcase_add_test(tc, unknown_option_never_echoes_a_value);
    tcase_add_test(tc, times_relative_absolute_and_refused);
    tcase_add_test(tc, query_string_of_a_verb);
    tcase_add_test(tc, query_string_refused);
    tcase_add_test(tc, query_string_encoding);
    suite_add_tcase(s, tc);
    TCase *cc = tcase_create("conn");
    tcase_add_checked_fixture(cc, conn_setup, conn_teardown);
    tcase_add_test(cc, conn_url_and_defaults);
    tcase_add_test(cc, conn_token_sources);
    tcase_add_test(cc, conn_token_refused_without_quoting_it);
    suite_add_tcase(s, cc);
    return test_run_suite(s);
}
