/* The query API through real HTTP on the real stack (primary + streaming
 * replica), against an auditrail-aggregator --role query process: tenant
 * isolation by parameter and by cursor, roles and token states, hostile
 * parameters (the data untouched), FHIR Bundles, streams and incidents,
 * routing headers, the audit log, an export larger than its memory bound
 * (RSS checked), and 1000 concurrent connections with wrk.
 * STACK: alone (this suite pauses the replica's replay: never in parallel
 * with other suites). */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/query_fixtures.h"
#include "tests/integration/storage_fixtures.h"
#include "tests/support/probe.h"
#include "tests/support/proc.h"

#define DAY   "2026-11-26"
#define RANGE "from=" DAY "T00:00:00Z&to=2026-11-27T00:00:00Z"
#define SA    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SB    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define NA    25 /* tenant A's rows (+ 1 FHIR + 1 binary) */
#define NB    10

static char *ci, *rci, *dir, *cfg, *audit_path;
static unsigned port;
static struct proc *agg;
static char *tok_a, *tok_b, *tok_aud_a, *tok_admin;
static PGconn *db;

static const char LOAD_SQL[] =
    "CREATE TABLE auditrail.events_p20261126 PARTITION OF auditrail.events"
    " FOR VALUES FROM ('2026-11-26 00:00:00+00') TO ('2026-11-27 00:00:00+00');"
    "INSERT INTO auditrail.events (event_time, id, stream_id, seq, file_offset, hash, prev_hash,"
    " read_time, time_source, tenant, actor, action, resource, outcome, format, source, raw, attrs)"
    " SELECT timestamptz '2026-11-26 00:00:00+00' + g * interval '1 minute', md5('A' || g)::uuid,"
    " '" SA "', g, g * 100, sha256(('A' || g)::bytea), sha256(('A' || (g - 1))::bytea),"
    " timestamptz '2026-11-26 00:00:01+00' + g * interval '1 minute', 'payload', 'A',"
    " CASE WHEN g % 2 = 0 THEN 'alice' ELSE 'bob' END,"
    " CASE WHEN g % 3 = 0 THEN 'update' ELSE 'read' END, 'Patient/' || (g % 5), 'success',"
    " 'json', '{\"name\": \"ns/app-a\", \"host\": \"n1\"}'::jsonb,"
    " convert_to('{\"n\":' || g || '}', 'UTF8'), ('{\"n\":' || g || '}')::jsonb"
    " FROM generate_series(1, 25) g;"
    "INSERT INTO auditrail.events (event_time, id, stream_id, seq, file_offset, hash, prev_hash,"
    " read_time, time_source, tenant, actor, action, resource, outcome, format, source, raw, attrs)"
    " SELECT timestamptz '2026-11-26 00:00:30+00' + g * interval '1 minute', md5('B' || g)::uuid,"
    " '" SB "', g, g * 100, sha256(('B' || g)::bytea), sha256(('B' || (g - 1))::bytea),"
    " timestamptz '2026-11-26 00:00:31+00' + g * interval '1 minute', 'payload', 'B', 'alice',"
    " 'read', 'Patient/' || (g % 5), 'success', 'json', '{\"name\": \"ns/app-b\"}'::jsonb,"
    " convert_to('{\"b\":' || g || '}', 'UTF8'), NULL FROM generate_series(1, 10) g;"
    /* a FHIR AuditEvent record and a record that is not UTF-8 (tenant A) */
    "INSERT INTO auditrail.events (event_time, id, stream_id, seq, file_offset, hash, prev_hash,"
    " read_time, time_source, tenant, actor, action, resource, outcome, format, source, raw, attrs)"
    " VALUES (timestamptz '2026-11-26 12:00:00+00', md5('fhir')::uuid, '" SA "', 100, 1,"
    " sha256('f'::bytea), sha256('e'::bytea), now(), 'payload', 'A', 'Practitioner/7', 'R',"
    " 'Patient/42', '0', 'fhir', '{\"name\": \"ns/app-a\"}'::jsonb,"
    " convert_to('{\"resourceType\":\"AuditEvent\",\"id\":\"ae-1\"}', 'UTF8'),"
    " '{\"resourceType\": \"AuditEvent\", \"id\": \"ae-1\", \"recorded\":"
    " \"2026-11-26T12:00:00Z\", \"action\": \"R\", \"agent\": [{\"requestor\": true, \"who\":"
    " {\"reference\": \"Practitioner/7\"}}], \"source\": {\"observer\": {\"display\": \"emr\"}},"
    " \"type\": {\"code\": \"rest\"}}'::jsonb),"
    " (timestamptz '2026-11-26 13:00:00+00', md5('bin')::uuid, '" SA "', 101, 2,"
    " sha256('g'::bytea), sha256('f'::bytea), now(), 'read', 'A', 'carol', 'read', 'x', NULL,"
    " 'raw', '{\"name\": \"ns/app-a\"}'::jsonb, '\\xff00fe41'::bytea, NULL);"
    "INSERT INTO auditrail.streams (stream_id, last_seq, last_hash, source) VALUES"
    " ('" SA "', 101, sha256('g'::bytea), '{\"name\": \"ns/app-a\"}'),"
    " ('" SB "', 10, sha256('B10'::bytea), '{\"name\": \"ns/app-b\"}');"
    "INSERT INTO auditrail.integrity_incidents (kind, stream_id, seq, expected, actual) VALUES"
    " ('gap', '" SA "', 26, '26', '100'), ('fork', '" SB "', 3, 'aa', 'bb')";

static void write_config(const char *extra)
{
    FILE *f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "kafka:\n  brokers: 127.0.0.1:9\n  topic: q.unused\n  group: q-unused\n"
            "  dlq_topic: q.unused.dlq\n"
            "postgres:\n  primary: \"%s\"\n  replicas: [\"%s\"]\n  health_interval_ms: 100\n"
            "  max_replica_lag_ms: 3000\n"
            "http:\n  listen: 127.0.0.1:%u\n"
            "breaker:\n  open_base_ms: 100\n  open_max_ms: 300\n"
            "query:\n  audit_log: %s\n  token_cache_s: 1\n  cache_ttl_s: 1\n"
            "  export_chunk_bytes: 256KiB\n  pool_size: 4\n%s",
            ci, rci, port, audit_path, extra ? extra : "");
    fclose(f);
}

static void start_aggregator(void)
{
    /* A sanitized aggregator keeps freed memory in quarantine (256 MB by
     * default): keep it small so that the export's RSS bound still means
     * something there. */
    const char *asan = getenv("ASAN_OPTIONS");
    char *opts =
        xasprintf("ASAN_OPTIONS=%s%squarantine_size_mb=8:thread_local_quarantine_size_kb=256",
                  asan ? asan : "", asan && *asan ? ":" : "");
    char *log = xasprintf("%s/aggregator.log", dir);
    char *bin = test_bin("auditrail-aggregator");
    const char *argv[] = {bin, "--config", cfg, "--role", "query", NULL};
    const char *env[] = {opts, NULL};
    agg = proc_spawn("aggregator", argv, env, log);
    free(bin);
    free(log);
    free(opts);
    ck_assert_msg(probe_wait_status(port, "/healthz", 200, 20000),
                  "the aggregator does not answer");
}

static void setup_with(const char *extra)
{
    ci = fx_fresh_migrated("qapi");
    rci = test_pg_replica_conninfo(ci);
    dir = test_tmpdir("qapi");
    cfg = xasprintf("%s/aggregator.yaml", dir);
    audit_path = xasprintf("%s/api-audit.log", dir);
    port = probe_free_port();
    write_config(extra);
    db = test_pg_connect(ci);
    test_pg_exec(db, LOAD_SQL);
    tok_a = qfx_token(cfg, "create --tenant A --role reader --name reader-a");
    tok_b = qfx_token(cfg, "create --tenant B --role reader --name reader-b");
    tok_aud_a = qfx_token(cfg, "create --tenant A --role auditor --name auditor-a");
    tok_admin = qfx_token(cfg, "create --role admin --name admin");
    ck_assert(test_pg_replica_catch_up(ci, rci, 30000));
    start_aggregator();
}

static void setup(void)
{
    setup_with(NULL);
}

static void teardown(void)
{
    qfx_stack_restore(rci);
    ck_assert_int_eq(proc_stop(agg, 30000), 0); /* a clean stop, every request answered */
    proc_free(agg);
    PQfinish(db);
    test_pg_drop_db(ci);
    if (getenv("QFX_KEEP"))
        fprintf(stderr, "kept %s\n", dir);
    else
        test_rmtree(dir);
    free(ci);
    free(rci);
    free(dir);
    free(cfg);
    free(audit_path);
    free(tok_a);
    free(tok_b);
    free(tok_aud_a);
    free(tok_admin);
}

static json_t *get_json(const char *path, const char *token, long want_status)
{
    struct qfx_reply r = qfx_get(port, path, token, NULL);
    ck_assert_msg(r.status == want_status, "%s: %ld (wanted %ld): %s", path, r.status, want_status,
                  r.body.p);
    json_error_t e;
    json_t *j = json_loads(r.body.p, 0, &e);
    ck_assert_msg(j != NULL, "%s: not JSON: %s", path, r.body.p);
    qfx_reply_free(&r);
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Every page of path (limit given) with token: the events in order. */
static json_t *all_pages(const char *path, const char *token)
{
    json_t *all = json_array();
    char *next = NULL;
    for (int guard = 0; guard < 1000; guard++) {
        char *p = next ? xasprintf("%s&cursor=%s", path, next) : xstrdup(path);
        json_t *j = get_json(p, token, 200);
        json_array_extend(all, json_object_get(j, "events"));
        free(next);
        next = jstr(j, "next_cursor") ? xstrdup(jstr(j, "next_cursor")) : NULL;
        json_decref(j);
        free(p);
        if (!next)
            break;
    }
    return all;
}

START_TEST(tenant_isolation)
{
    /* reader A: every page, only A's rows, in (time, id) order, no repeat */
    json_t *a = all_pages("/v1/events?" RANGE "&limit=4", tok_a);
    ck_assert_uint_eq(json_array_size(a), NA + 2);
    const char *prev = "";
    size_t i;
    json_t *ev;
    json_array_foreach(a, i, ev)
    {
        ck_assert_str_eq(jstr(ev, "tenant"), "A");
        ck_assert_msg(strcmp(jstr(ev, "time"), prev) >= 0, "out of order");
        prev = jstr(ev, "time");
    }
    json_decref(a);
    /* B's reader sees B's only */
    json_t *b = all_pages("/v1/events?" RANGE "&limit=3", tok_b);
    ck_assert_uint_eq(json_array_size(b), NB);
    json_decref(b);
    /* asking for the other tenant is forbidden, even with a filter that
     * would match nothing */
    json_t *e = get_json("/v1/events?" RANGE "&tenant=B", tok_a, 403);
    ck_assert_str_eq(jstr(e, "code"), "tenant_forbidden");
    json_decref(e);
    e = get_json("/v1/events?" RANGE "&tenant=A", tok_a, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(e, "events")), NA + 2);
    json_decref(e);
    /* admin: every tenant, or one */
    e = get_json("/v1/events?" RANGE "&limit=1000", tok_admin, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(e, "events")), NA + NB + 2);
    json_decref(e);
    e = get_json("/v1/events?" RANGE "&tenant=B&limit=1000", tok_admin, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(e, "events")), NB);
    json_decref(e);

    /* A's cursor: refused with B's token, with other filters, tampered */
    json_t *page = get_json("/v1/events?" RANGE "&limit=2", tok_a, 200);
    const char *cur = jstr(page, "next_cursor");
    ck_assert_ptr_nonnull(cur);
    char *p = xasprintf("/v1/events?" RANGE "&limit=2&cursor=%s", cur);
    e = get_json(p, tok_b, 400);
    ck_assert_str_eq(jstr(e, "code"), "bad_cursor");
    json_decref(e);
    e = get_json(p, tok_a, 200);
    json_decref(e);
    free(p);
    p = xasprintf("/v1/events?" RANGE "&actor=alice&limit=2&cursor=%s", cur);
    e = get_json(p, tok_a, 400);
    json_decref(e);
    free(p);
    p = xasprintf("/v1/events?from=" DAY "T00:00:01Z&to=2026-11-27T00:00:00Z&limit=2&cursor=%s",
                  cur);
    e = get_json(p, tok_a, 400);
    json_decref(e);
    free(p);
    /* every single-character change of the cursor is refused */
    char *t = xstrdup(cur);
    for (size_t k = 0; k < strlen(t); k++) {
        char save = t[k];
        t[k] = save == 'A' ? 'B' : 'A';
        p = xasprintf("/v1/events?" RANGE "&limit=2&cursor=%s", t);
        struct qfx_reply r = qfx_get(port, p, tok_a, NULL);
        ck_assert_msg(r.status == 400, "tampered cursor (char %zu) answered %ld", k, r.status);
        qfx_reply_free(&r);
        free(p);
        t[k] = save;
    }
    free(t);
    /* an admin's cursor is not a reader's */
    json_t *ap = get_json("/v1/events?" RANGE "&limit=2", tok_admin, 200);
    p = xasprintf("/v1/events?" RANGE "&limit=2&cursor=%s", jstr(ap, "next_cursor"));
    e = get_json(p, tok_a, 400);
    json_decref(e);
    free(p);
    json_decref(ap);
    json_decref(page);
}
END_TEST

START_TEST(event_fields)
{
    json_t *j = get_json("/v1/events?" RANGE "&actor=carol", tok_a, 200);
    json_t *ev = json_array_get(json_object_get(j, "events"), 0);
    ck_assert_ptr_nonnull(ev);
    /* not UTF-8: line_b64 carries the exact bytes */
    ck_assert_ptr_null(json_object_get(ev, "line"));
    ck_assert_str_eq(jstr(ev, "line_b64"), "/wD+QQ==");
    ck_assert_str_eq(jstr(ev, "time"), "2026-11-26T13:00:00.000000Z");
    ck_assert_str_eq(jstr(ev, "stream"), SA);
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "seq")), 101);
    ck_assert_str_eq(jstr(ev, "time_source"), "read");
    ck_assert(json_is_null(json_object_get(ev, "outcome")));
    ck_assert(json_is_null(json_object_get(ev, "attrs")));
    ck_assert_str_eq(jstr(json_object_get(ev, "source"), "name"), "ns/app-a");
    ck_assert_uint_eq(strlen(jstr(ev, "hash")), 64);
    ck_assert_uint_eq(strlen(jstr(ev, "prev")), 64);
    ck_assert_uint_eq(strlen(jstr(ev, "id")), 36);
    ck_assert_ptr_nonnull(jstr(ev, "read_time"));
    json_decref(j);
    j = get_json("/v1/events?" RANGE "&actor=alice&action=update&limit=1000", tok_a, 200);
    size_t i;
    json_array_foreach(json_object_get(j, "events"), i, ev)
    {
        ck_assert_str_eq(jstr(ev, "actor"), "alice");
        ck_assert_str_eq(jstr(ev, "action"), "update");
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(ev, "attrs"), "n")),
                         json_integer_value(json_object_get(ev, "seq")));
    }
    ck_assert_uint_eq(json_array_size(json_object_get(j, "events")), 4); /* g=6,12,18,24 */
    json_decref(j);
}
END_TEST

START_TEST(roles_and_tokens)
{
    json_t *e = get_json("/v1/events?" RANGE, NULL, 401);
    ck_assert_str_eq(jstr(e, "code"), "unauthorized");
    json_decref(e);
    e = get_json("/v1/events?" RANGE, "not-a-token", 401);
    json_decref(e);
    e = get_json("/v1/events?" RANGE, "atr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 401);
    ck_assert_str_eq(jstr(e, "code"), "unknown_token");
    json_decref(e);
    /* 401 before 400: a bad parameter from someone unknown says nothing */
    e = get_json("/v1/events?from=yesterday", "atr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
                 401);
    json_decref(e);
    const char *auditor_only[] = {"/v1/events/export?" RANGE, "/v1/streams", "/v1/incidents",
                                  "/v1/streams/" SA};
    for (int i = 0; i < 4; i++) {
        e = get_json(auditor_only[i], tok_a, 403);
        ck_assert_str_eq(jstr(e, "code"), "role_forbidden");
        json_decref(e);
        struct qfx_reply r = qfx_get(port, auditor_only[i], tok_aud_a, NULL);
        ck_assert_msg(r.status == 200, "%s: %ld", auditor_only[i], r.status);
        qfx_reply_free(&r);
    }
    /* expired: its expiry moved into the past on the primary */
    char *tok_x = qfx_token(cfg, "create --tenant A --role reader --name soon --expires-days 1");
    e = get_json("/v1/events?" RANGE, tok_x, 200);
    json_decref(e);
    test_pg_exec(db, "UPDATE auditrail.api_tokens SET expires = now() - interval '1 second'"
                     " WHERE name = 'soon'");
    /* revoked */
    char *out = qfx_token(cfg, "revoke reader-b");
    free(out);
    /* within token_cache_s (1 s) plus replication, both are refused */
    uint64_t until = test_now_ms() + 15000;
    long sx = 0, sb = 0;
    while (test_now_ms() < until) {
        struct qfx_reply rx = qfx_get(port, "/v1/events?" RANGE, tok_x, NULL);
        struct qfx_reply rb = qfx_get(port, "/v1/events?" RANGE, tok_b, NULL);
        sx = rx.status;
        sb = rb.status;
        bool done = sx == 401 && strstr(rx.body.p, "token_expired") && sb == 401 &&
                    strstr(rb.body.p, "token_revoked");
        qfx_reply_free(&rx);
        qfx_reply_free(&rb);
        if (done)
            break;
        usleep(50000);
    }
    ck_assert_int_eq(sx, 401);
    ck_assert_int_eq(sb, 401);
    free(tok_x);
}
END_TEST

/* Hostile values in every parameter: 4xx (or, for a free-text filter that
 * is merely an odd value, 200 with nothing), never 5xx, and the data is
 * what it was. */
START_TEST(hostile_parameters)
{
    const char *names[] = {"tenant", "actor", "action", "resource", "outcome", "source", "stream",
                           "from",   "to",    "limit",  "cursor",   "min_lsn", "nope"};
    char huge[6000];
    memset(huge, 'x', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    const char *values[] = {"%27%3B%20DROP%20TABLE%20auditrail.events%3B%20--",
                            "1%27%20OR%20%271%27%3D%271",
                            "%00",
                            "a%00b",
                            "%FF%FE",
                            "%C0%AF",
                            "%ED%A0%80",
                            huge,
                            "-1",
                            "99999999999999999999999",
                            "2026-13-45T99:99:99Z",
                            "0000-00-00T00:00:00Z",
                            ""};
    int64_t before = fx_int(db, "SELECT count(*) FROM auditrail.events");
    for (size_t n = 0; n < sizeof(names) / sizeof(*names); n++) {
        for (size_t v = 0; v < sizeof(values) / sizeof(*values); v++) {
            bool is_range = !strcmp(names[n], "from") || !strcmp(names[n], "to");
            char *p = is_range ? xasprintf("/v1/events?%s=%s&%s=2026-11-27T00:00:00Z", names[n],
                                           values[v], !strcmp(names[n], "from") ? "to" : "from")
                               : xasprintf("/v1/events?" RANGE "&%s=%s", names[n], values[v]);
            struct qfx_reply r = qfx_get(port, p, tok_admin, NULL);
            ck_assert_msg(r.status >= 200 && r.status < 500, "%s=%.40s: %ld %s", names[n],
                          values[v], r.status, r.body.p);
            if (r.status == 200)
                ck_assert_msg(strstr(r.body.p, "\"events\":[]") != NULL, "%s=%.40s matched rows",
                              names[n], values[v]);
            qfx_reply_free(&r);
            free(p);
        }
    }
    /* times: malformed, reversed, empty range, too wide */
    const char *ranges[] = {
        "from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z",
        "from=2026-11-26T00:00:00Z&to=2026-11-26T00:00:00Z",
        "from=2026-01-01T00:00:00Z&to=2026-11-26T00:00:00Z",
        "from=2026-11-26&to=2026-11-27",
        "to=2026-11-27T00:00:00Z",
        "from=2026-11-26T00:00:00Z",
        "from=2026-11-26T00:00:00Z&from=2026-11-25T00:00:00Z&to=2026-11-27T00:00:00Z",
        "limit=0&" RANGE,
        "limit=1001&" RANGE,
        "limit=1e3&" RANGE};
    for (size_t i = 0; i < sizeof(ranges) / sizeof(*ranges); i++) {
        char *p = xasprintf("/v1/events?%s", ranges[i]);
        struct qfx_reply r = qfx_get(port, p, tok_admin, NULL);
        ck_assert_msg(r.status == 400, "%s: %ld", ranges[i], r.status);
        ck_assert(strstr(r.body.p, "\"code\":") != NULL);
        qfx_reply_free(&r);
        free(p);
    }
    /* the calendar's edges are valid ranges with no events, not a server
     * error: year 0000 (PostgreSQL's 1 BC) and year 9999 */
    const char *edges[] = {"/v1/events?from=0000-01-01T00:00:00Z&to=0000-01-20T00:00:00Z",
                           "/v1/events?from=9999-12-20T00:00:00Z&to=9999-12-31T23:59:59Z",
                           "/v1/streams?from=0000-01-01T00:00:00Z&to=0000-01-20T00:00:00Z"};
    for (size_t i = 0; i < sizeof(edges) / sizeof(*edges); i++) {
        struct qfx_reply r = qfx_get(port, edges[i], tok_admin, NULL);
        ck_assert_msg(r.status == 200, "%s: %ld %s", edges[i], r.status, r.body.p);
        qfx_reply_free(&r);
    }
    /* a target too long for any parameter is 414 */
    char *p = xasprintf("/v1/events?" RANGE "&actor=%s%s", huge, huge);
    struct qfx_reply r = qfx_get(port, p, tok_admin, NULL);
    ck_assert_int_eq(r.status, 414);
    qfx_reply_free(&r);
    free(p);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.events"), before);
    ck_assert_int_eq(fx_int(db, "SELECT count(*) FROM auditrail.api_tokens"), 4);
}
END_TEST

static void check_audit_event(json_t *res)
{
    ck_assert_str_eq(jstr(res, "resourceType"), "AuditEvent");
    ck_assert_ptr_nonnull(jstr(res, "recorded"));
    ck_assert(json_is_object(json_object_get(res, "type")));
    json_t *agent = json_array_get(json_object_get(res, "agent"), 0);
    ck_assert(json_is_true(json_object_get(agent, "requestor")));
    ck_assert(json_is_object(json_object_get(agent, "who")));
    ck_assert(json_is_object(json_object_get(json_object_get(res, "source"), "observer")));
}

START_TEST(fhir_bundle)
{
    json_t *b = get_json("/fhir/AuditEvent?date=ge" DAY "&date=lt2026-11-27&_count=5", tok_a, 200);
    ck_assert_str_eq(jstr(b, "resourceType"), "Bundle");
    ck_assert_str_eq(jstr(b, "type"), "searchset");
    json_t *links = json_object_get(b, "link");
    ck_assert_str_eq(jstr(json_array_get(links, 0), "relation"), "self");
    ck_assert_str_eq(jstr(json_array_get(links, 1), "relation"), "next");
    json_t *entries = json_object_get(b, "entry");
    ck_assert_uint_eq(json_array_size(entries), 5);
    size_t i;
    json_t *en;
    json_array_foreach(entries, i, en)
    {
        ck_assert(strncmp(jstr(en, "fullUrl"), "urn:uuid:", 9) == 0);
        ck_assert_str_eq(jstr(json_object_get(en, "search"), "mode"), "match");
        check_audit_event(json_object_get(en, "resource"));
    }
    /* follow next links to the end: every A event once */
    size_t total = 5;
    char *next = xstrdup(jstr(json_array_get(links, 1), "url"));
    json_decref(b);
    while (next) {
        const char *path = strstr(next, "/fhir/");
        ck_assert_ptr_nonnull(path);
        b = get_json(path, tok_a, 200);
        total += json_array_size(json_object_get(b, "entry"));
        free(next);
        next = NULL;
        json_array_foreach(json_object_get(b, "link"), i,
                           en) if (!strcmp(jstr(en, "relation"), "next")) next =
            xstrdup(jstr(en, "url"));
        json_decref(b);
    }
    ck_assert_uint_eq(total, NA + 2);
    /* a FHIR record comes back as itself */
    b = get_json("/fhir/AuditEvent?date=ge" DAY "&date=lt2026-11-27&agent=Practitioner/7", tok_a,
                 200);
    json_t *res = json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource");
    ck_assert_str_eq(jstr(res, "id"), "ae-1");
    ck_assert_str_eq(jstr(json_object_get(res, "type"), "code"), "rest");
    json_decref(b);
    /* the same through /v1/events with the FHIR media type */
    struct qfx_reply r =
        qfx_get(port, "/v1/events?" RANGE "&limit=3", tok_a, "Accept: application/fhir+json");
    ck_assert_int_eq(r.status, 200);
    char *ct = qfx_header(&r, "Content-Type");
    ck_assert_str_eq(ct, "application/fhir+json");
    free(ct);
    b = json_loads(r.body.p, 0, NULL);
    ck_assert_str_eq(jstr(b, "resourceType"), "Bundle");
    ck_assert_uint_eq(json_array_size(json_object_get(b, "entry")), 3);
    json_decref(b);
    qfx_reply_free(&r);
    /* unsupported parameters: 400 with an OperationOutcome */
    const char *bad[] = {"/fhir/AuditEvent?date=ge" DAY "&date=lt2026-11-27&patient=Patient/1",
                         "/fhir/AuditEvent?date=eq" DAY, "/fhir/AuditEvent?date=ge" DAY};
    for (int k = 0; k < 3; k++) {
        b = get_json(bad[k], tok_a, 400);
        ck_assert_str_eq(jstr(b, "resourceType"), "OperationOutcome");
        ck_assert_ptr_nonnull(jstr(json_array_get(json_object_get(b, "issue"), 0), "severity"));
        json_decref(b);
    }
    b = get_json("/fhir/AuditEvent?date=ge" DAY "&date=lt2026-11-27", NULL, 401);
    ck_assert_str_eq(jstr(b, "resourceType"), "OperationOutcome");
    json_decref(b);
}
END_TEST

START_TEST(streams_and_incidents)
{
    json_t *s = get_json("/v1/streams?counts=true", tok_aud_a, 200);
    json_t *list = json_object_get(s, "streams");
    ck_assert_uint_eq(json_array_size(list), 1); /* B's stream holds no event of A */
    ck_assert_str_eq(jstr(json_array_get(list, 0), "id"), SA);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(list, 0), "rows")), NA + 2);
    json_decref(s);
    s = get_json("/v1/streams", tok_admin, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(s, "streams")), 2);
    json_decref(s);
    s = get_json("/v1/streams/" SA, tok_aud_a, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "last_seq")), 101);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "rows")), NA + 2);
    ck_assert_uint_eq(json_array_size(json_object_get(s, "incidents")), 1);
    json_decref(s);
    s = get_json("/v1/streams/" SB, tok_aud_a, 404); /* exists, but not for A */
    json_decref(s);
    s = get_json("/v1/streams/cccccccccccccccccccccccccccccccc", tok_admin, 404);
    json_decref(s);
    s = get_json("/v1/incidents", tok_aud_a, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(s, "incidents")), 1);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(s, "incidents"), 0), "kind"), "gap");
    json_decref(s);
    s = get_json("/v1/incidents?kind=fork", tok_admin, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(s, "incidents")), 1);
    json_decref(s);
    s = get_json("/v1/incidents?kind=forks", tok_admin, 400);
    json_decref(s);
}
END_TEST

/* GET /v1/streams/{id}/verify: auditors and admins, the streams a token may
 * see; the fixture's hashes are no chain (sha256('A' || seq)), so every
 * record is a hash_mismatch with its evidence, and the answer is what
 * `auditrail-aggregator verify --stream ID --json` prints. */
START_TEST(stream_verify)
{
    json_t *e = get_json("/v1/streams/" SA "/verify", tok_a, 403);
    ck_assert_str_eq(jstr(e, "code"), "role_forbidden");
    json_decref(e);
    e = get_json("/v1/streams/" SB "/verify", tok_aud_a, 404); /* not A's */
    json_decref(e);
    e = get_json("/v1/streams/" SA "/verify/x", tok_aud_a, 404);
    json_decref(e);
    e = get_json("/v1/streams/" SB "/verify", tok_admin, 200);
    ck_assert_str_eq(jstr(e, "stream"), SB);
    json_decref(e);

    json_t *v = get_json("/v1/streams/" SA "/verify", tok_aud_a, 200);
    ck_assert_str_eq(jstr(v, "stream"), SA);
    json_t *sum = json_object_get(v, "summary");
    ck_assert_str_eq(jstr(sum, "status"), "problems");
    ck_assert_int_eq(json_integer_value(json_object_get(sum, "records")), NA + 2);
    json_t *f = json_object_get(v, "findings"), *first = NULL, *x;
    size_t i;
    json_array_foreach(f, i, x)
    {
        if (!strcmp(jstr(x, "kind"), "hash_mismatch") &&
            json_integer_value(json_object_get(x, "seq")) == 1)
            first = x;
    }
    ck_assert_msg(first != NULL, "no hash_mismatch at seq 1");
    PGresult *r =
        PQexec(db, "SELECT encode(hash, 'hex'), encode(sha256(prev_hash || int8send(seq)"
                   " || raw), 'hex') FROM auditrail.events WHERE stream_id = '" SA "' AND seq = 1");
    ck_assert_int_eq(PQntuples(r), 1);
    ck_assert_str_eq(jstr(first, "stored"), PQgetvalue(r, 0, 0));
    ck_assert_str_eq(jstr(first, "computed"), PQgetvalue(r, 0, 1));
    PQclear(r);

    /* the same findings as the command line's */
    char *bin = test_bin("auditrail-aggregator");
    char *cmd = xasprintf("%s --config %s verify --stream " SA " --json 2>/dev/null", bin, cfg);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    json_t *cli = json_array(), *cli_sum = NULL;
    char line[8192];
    while (fgets(line, sizeof(line), p)) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(j != NULL, "not JSON: %s", line);
        if (json_object_get(j, "summary")) {
            cli_sum = json_incref(json_object_get(j, "summary"));
            json_decref(j);
        } else {
            json_array_append_new(cli, j);
        }
    }
    ck_assert_int_eq(pclose(p), 1 << 8); /* exit 1: problems */
    ck_assert_ptr_nonnull(cli_sum);
    ck_assert_int_eq(json_integer_value(json_object_get(cli_sum, "problems")),
                     json_integer_value(json_object_get(sum, "problems")));
    ck_assert_msg(json_equal(cli, f), "the API's findings differ from the command line's");
    json_decref(cli_sum);
    json_decref(cli);
    free(cmd);
    free(bin);
    json_decref(v);
}
END_TEST

/* Served-By and lag on every answer; the cache; paused replay goes to the
 * primary; min_lsn from /v1/status. */
START_TEST(routing_headers_and_cache)
{
    struct qfx_reply r = qfx_get(port, "/v1/events?" RANGE "&actor=bob", tok_a, NULL);
    ck_assert_int_eq(r.status, 200);
    char *by = qfx_header(&r, "X-Auditrail-Served-By"),
         *lag = qfx_header(&r, "X-Auditrail-Replica-Lag-Ms"),
         *cache = qfx_header(&r, "X-Auditrail-Cache");
    ck_assert_msg(strncmp(by, "replica 127.0.0.1:", 18) == 0, "served by %s", by);
    ck_assert_ptr_nonnull(lag);
    ck_assert_str_eq(cache, "miss");
    free(by);
    free(lag);
    free(cache);
    qfx_reply_free(&r);
    r = qfx_get(port, "/v1/events?" RANGE "&actor=bob", tok_a, NULL);
    cache = qfx_header(&r, "X-Auditrail-Cache");
    ck_assert_str_eq(cache, "hit");
    free(cache);
    qfx_reply_free(&r);
    /* another tenant's identical query is another cache entry */
    r = qfx_get(port, "/v1/events?" RANGE "&actor=bob", tok_b, NULL);
    cache = qfx_header(&r, "X-Auditrail-Cache");
    ck_assert_str_eq(cache, "miss");
    free(cache);
    qfx_reply_free(&r);

    qfx_replica_sql(rci, "SELECT pg_wal_replay_pause()");
    uint64_t until = test_now_ms() + 15000;
    bool primary = false;
    /* a new limit each time: an answer cached before the pause is not the
     * question */
    for (int lim = 1; !primary && test_now_ms() < until; lim = lim % 1000 + 1) {
        char *path = xasprintf("/v1/events?" RANGE "&actor=alice&limit=%d", lim);
        r = qfx_get(port, path, tok_a, NULL);
        free(path);
        by = qfx_header(&r, "X-Auditrail-Served-By");
        primary = r.status == 200 && by && !strcmp(by, "primary");
        free(by);
        qfx_reply_free(&r);
        usleep(50000);
    }
    qfx_replica_sql(rci, "SELECT pg_wal_replay_resume()");
    ck_assert_msg(primary, "paused replay: the primary never served");

    json_t *st = get_json("/v1/status", NULL, 200);
    const char *lsn = jstr(st, "primary_lsn");
    ck_assert_ptr_nonnull(lsn);
    char *p = xasprintf("/v1/events?" RANGE "&min_lsn=%s", lsn);
    r = qfx_get(port, p, tok_a, NULL);
    ck_assert_int_eq(r.status, 200);
    cache = qfx_header(&r, "X-Auditrail-Cache");
    ck_assert_ptr_null(cache); /* read-your-writes is never answered from the cache */
    qfx_reply_free(&r);
    free(p);
    json_decref(st);
    r = qfx_get(port, "/v1/events?" RANGE "&min_lsn=FFFF/0", tok_a, NULL);
    ck_assert_int_eq(r.status, 200); /* the primary may serve it: replica_only is off */
    by = qfx_header(&r, "X-Auditrail-Served-By");
    ck_assert_str_eq(by, "primary");
    free(by);
    qfx_reply_free(&r);
}
END_TEST

static void setup_replica_only(void)
{
    setup_with("  replica_only: true\n  min_lsn_wait_ms: 200\n");
}

START_TEST(replica_only_503)
{
    struct qfx_reply r = qfx_get(port, "/v1/events?" RANGE "&min_lsn=FFFF/0", tok_a, NULL);
    ck_assert_int_eq(r.status, 503);
    char *ra = qfx_header(&r, "Retry-After");
    ck_assert_ptr_nonnull(ra);
    ck_assert_int_ge(atoi(ra), 1);
    free(ra);
    qfx_reply_free(&r);
    qfx_replica_sql(rci, "SELECT pg_wal_replay_pause()");
    uint64_t until = test_now_ms() + 15000;
    long st = 0;
    for (int lim = 1; st != 503 && test_now_ms() < until; lim = lim % 1000 + 1) {
        char *path = xasprintf("/v1/events?" RANGE "&actor=nobody-yet&limit=%d", lim);
        r = qfx_get(port, path, tok_a, NULL);
        free(path);
        st = r.status;
        qfx_reply_free(&r);
        usleep(50000);
    }
    qfx_replica_sql(rci, "SELECT pg_wal_replay_resume()");
    ck_assert_int_eq(st, 503);
}
END_TEST

/* The audit log: one line per request, the token's name but never its
 * secret, the status and rows. */
START_TEST(audit_lines)
{
    json_t *j = get_json("/v1/events?" RANGE "&actor=alice", tok_a, 200);
    size_t rows = json_array_size(json_object_get(j, "events"));
    json_decref(j);
    j = get_json("/v1/events?" RANGE "&tenant=B", tok_a, 403);
    json_decref(j);
    j = get_json("/v1/events?" RANGE, NULL, 401);
    json_decref(j);
    FILE *f = fopen(audit_path, "r");
    ck_assert_ptr_nonnull(f);
    char line[8192];
    int n = 0;
    bool seen_ok = false, seen_403 = false, seen_401 = false;
    while (fgets(line, sizeof(line), f)) {
        n++;
        ck_assert_msg(!strstr(line, tok_a) && !strstr(line, tok_admin), "a secret in the log");
        json_t *a = json_loads(line, 0, NULL);
        ck_assert_msg(a != NULL, "not JSON: %s", line);
        const char *keys[] = {"time",    "token", "tenant", "role",  "endpoint",
                              "filters", "rows",  "status", "client"};
        for (int k = 0; k < 9; k++)
            ck_assert_msg(json_object_get(a, keys[k]) != NULL, "no %s in %s", keys[k], line);
        long st = (long)json_integer_value(json_object_get(a, "status"));
        if (st == 200 && jstr(json_object_get(a, "filters"), "actor")) {
            seen_ok = true;
            ck_assert_str_eq(jstr(a, "token"), "reader-a");
            ck_assert_str_eq(jstr(a, "tenant"), "A");
            ck_assert_str_eq(jstr(a, "role"), "reader");
            ck_assert_str_eq(jstr(a, "client"), "127.0.0.1");
            ck_assert_int_eq(json_integer_value(json_object_get(a, "rows")), (json_int_t)rows);
        }
        seen_403 |= st == 403;
        seen_401 |= st == 401 && json_is_null(json_object_get(a, "token"));
        json_decref(a);
    }
    fclose(f);
    ck_assert_int_eq(n, 3);
    ck_assert(seen_ok && seen_403 && seen_401);
}
END_TEST

/* ---- export: more rows than the memory bound, RSS watched */
static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

struct export_sink {
    size_t bytes, lines;
    long max_rss;
    pid_t pid;
    size_t next_sample;
};

static size_t export_write(char *p, size_t size, size_t n, void *ud)
{
    struct export_sink *s = ud;
    size_t len = size * n;
    for (size_t i = 0; i < len; i++)
        s->lines += p[i] == '\n';
    s->bytes += len;
    if (s->bytes >= s->next_sample) {
        long kb = rss_kb(s->pid);
        if (kb > s->max_rss)
            s->max_rss = kb;
        s->next_sample = s->bytes + (1u << 20);
    }
    return len;
}

START_TEST(export_bounded_memory)
{
    /* 120k rows of ~1.5 KiB: ~200 MB of NDJSON */
    test_pg_exec(db, "CREATE TABLE auditrail.events_p20261127 PARTITION OF auditrail.events"
                     " FOR VALUES FROM ('2026-11-27 00:00:00+00') TO ('2026-11-28 00:00:00+00');"
                     "INSERT INTO auditrail.events (event_time, id, stream_id, seq, file_offset,"
                     " hash, prev_hash, read_time, time_source, tenant, actor, action, resource,"
                     " outcome, format, source, raw)"
                     " SELECT timestamptz '2026-11-27 00:00:00+00' + g * interval '1 ms',"
                     " md5('X' || g)::uuid, '" SA "', 1000 + g, g, sha256(('X' || g)::bytea),"
                     " sha256(('X' || g)::bytea), now(), 'payload', 'A', 'exporter', 'read', 'r',"
                     " 'ok', 'raw', '{\"name\": \"ns/app-a\"}'::jsonb,"
                     " convert_to(repeat('abcdefghij', 150) || g, 'UTF8')"
                     " FROM generate_series(1, 120000) g");
    ck_assert(test_pg_replica_catch_up(ci, rci, 60000));
    long before = rss_kb(agg->pid);
    struct export_sink s = {.pid = agg->pid, .max_rss = before};
    char *url = xasprintf("http://127.0.0.1:%u/v1/events/export?from=2026-11-27T00:00:00Z"
                          "&to=2026-11-28T00:00:00Z&actor=exporter",
                          port);
    char *auth = xasprintf("Authorization: Bearer %s", tok_aud_a);
    CURL *c = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, export_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    free(url);
    free(auth);
    ck_assert_msg(rc == CURLE_OK, "export: %s", curl_easy_strerror(rc));
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(s.lines, 120000);
    ck_assert_uint_gt(s.bytes, 150u << 20);
    /* the bound: 256 KiB chunks; allow the pools, caches and allocator */
    ck_assert_msg(s.max_rss - before < 64 * 1024, "RSS grew by %ld KiB while exporting %zu MB",
                  s.max_rss - before, s.bytes >> 20);
}
END_TEST

/* 1000 concurrent keep-alive connections from wrk, from a cold start (the
 * token and the answer not cached: the first burst is one lookup and one
 * query, shared): no errors. */
START_TEST(thousand_connections)
{
    char *out = xasprintf("%s/wrk.out", dir);
    char *cmd = xasprintf("wrk -t 2 -c 1000 -d 5s --timeout 10s -H 'Authorization: Bearer %s'"
                          " 'http://127.0.0.1:%u/v1/events?" RANGE "&actor=alice' > '%s' 2>&1",
                          tok_a, port, out);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "wrk failed (%d)", rc);
    FILE *f = fopen(out, "r");
    char line[512], all[8192] = "";
    long requests = 0;
    while (f && fgets(line, sizeof(line), f)) {
        strncat(all, line, sizeof(all) - strlen(all) - 1);
        char *p = strstr(line, " requests in ");
        if (p)
            requests = strtol(line, NULL, 10);
    }
    if (f)
        fclose(f);
    ck_assert_msg(strstr(all, "Socket errors") == NULL, "wrk saw socket errors:\n%s", all);
    ck_assert_msg(strstr(all, "Non-2xx") == NULL, "wrk saw errors:\n%s", all);
    ck_assert_msg(requests >= 1000, "only %ld requests:\n%s", requests, all);
    free(cmd);
    free(out);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("query_api");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, tenant_isolation);
    tcase_add_test(tc, event_fields);
    tcase_add_test(tc, roles_and_tokens);
    tcase_add_test(tc, hostile_parameters);
    tcase_add_test(tc, fhir_bundle);
    tcase_add_test(tc, streams_and_incidents);
    tcase_add_test(tc, stream_verify);
    tcase_add_test(tc, routing_headers_and_cache);
    tcase_add_test(tc, audit_lines);
    tcase_add_test(tc, export_bounded_memory);
    tcase_add_test(tc, thousand_connections);
    suite_add_tcase(s, tc);
    TCase *ro = tcase_create("replica_only");
    tcase_add_checked_fixture(ro, setup_replica_only, teardown);
    tcase_set_timeout(ro, 120);
    tcase_add_test(ro, replica_only_503);
    suite_add_tcase(s, ro);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    return test_run_suite(suite());
}
