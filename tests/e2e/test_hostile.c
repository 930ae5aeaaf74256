/* The hostile suite, ingest side (issue 9): one case per item against the
 * real stack and a real auditrail-aggregator. Each case sends normal records
 * on one chain around the hostile messages and asserts: the process never
 * exits; every normal record lands exactly once with its chain intact (the
 * independent records of tests/support/chain.h); each hostile message is
 * stored or dead-lettered with its class and counted, never silently gone;
 * nothing planted (passwords in every DSN, URL and SASL property, a marker
 * in record data) shows in a log line, a DLQ header or an alert body.
 * The PostgreSQL-side cases are in test_hostile_pg.c, the agent's in
 * test_hostile_agent.c. These cases only use their own databases and topics
 * (and a Redis ACL user): they may run beside other suites. */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/dlq.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/chain.h"
#include "tests/support/configs.h"
#include "tests/support/hostile.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/proc.h"
#include "tests/support/secrets.h"
#include "tests/support/store.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"
#include "tests/support/webhook.h"

#define WAIT_MS  60000
#define HOUR_US  INT64_C(3600000000)
#define DAY_US   (24 * HOUR_US)
#define BIG_MSG  (2 * 1024 * 1024) /* kafka-mock trims a partition's log past 5 MB */
#define METRIC_P "auditrail_aggregator_"

/* ---- the fixture: one aggregator with planted secrets ------------------ */

struct hx_opts {
    const char *batch_extra; /* lines under batch: */
    int batch_max_events;    /* 0: default */
    int batch_max_ms;        /* 0: 100 */
    const char *kafka_extra; /* lines under kafka: */
    const char *extra;       /* top-level YAML */
    const char *redis_url;   /* NULL: no Redis */
    const char *group;       /* NULL: the topic's name */
    bool start;              /* start the aggregator in hx_init */
};

static void hx_config(struct hfx *x, const struct hx_opts *o)
{
    char *pg = secrets_conninfo(x->db);
    char *alerts = secrets_alerts_url(webhook_port(x->hook));
    char *path = xasprintf("%s/aggregator.yaml", x->dir);
    struct configs_aggregator c = {
        .brokers = x->brokers,
        .topic = x->topic,
        .group = o->group ? o->group : x->topic,
        .dlq_topic = x->dlq,
        .postgres = pg,
        .redis_url = o->redis_url,
        .http_port = x->port,
        .batch_max_events = o->batch_max_events,
        .batch_max_ms = o->batch_max_ms,
        .kafka_extra = o->kafka_extra,
        .batch_extra = o->batch_extra,
        .kafka_properties = secrets_kafka_properties(),
        .alerts_url = alerts,
        .extra = o->extra,
    };
    free(x->cfg);
    x->cfg = configs_write_aggregator(path, &c);
    free(path);
    free(alerts);
    free(pg);
}

static void hx_start(struct hfx *x)
{
    if (x->aggr)
        proc_restart(x->aggr);
    else
        x->aggr = proc_spawn_program("auditrail-aggregator", x->cfg, x->log);
    ck_assert_msg(probe_wait_ready(x->port, WAIT_MS), "aggregator not ready (log %s)", x->log);
}

static void hx_init(struct hfx *x, const char *name, const struct hx_opts *o)
{
    hfx_init(x, name, 1, "hostile-dlq", 16 * 1024 * 1024, WAIT_MS);
    hx_config(x, o);
    if (o->start)
        hx_start(x);
}

static void hx_produce(struct hfx *x, const void *key, size_t keylen, const void *val, size_t len)
{
    tk_produce(x->prod, x->topic, 0, key, keylen, val, len, NULL);
    tk_flush(x->prod);
}

/* A valid record of its own stream (named), whose envelope's time is the
 * text `time` (time is not covered by the hash: such a message validates).
 * Heap JSON in *json; the record in *r (the caller releases it). */
static char *record_with_time(const char *stream_name, const char *time, struct trec *r)
{
    struct tchain c;
    tchain_init(&c, stream_name);
    char line[128];
    snprintf(line, sizeof(line), "{\"actor\":\"dr.hostile\",\"note\":\"%s\"}", SECRET_MARKER);
    tchain_next(&c, line, strlen(line), time_now_us(), r);
    json_error_t e;
    json_t *o = json_loads(r->json, 0, &e);
    ck_assert_ptr_nonnull(o);
    json_object_set_new(o, "time", json_string(time));
    char *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return out;
}

/* The DLQ's messages (read whole, once the topic is drained). */
static void dlq_read(struct hfx *x, struct tk_msgs *m)
{
    hfx_drained(x);
    tk_read_topic(x->brokers, x->dlq, m);
}

/* How many DLQ messages have class `reason` (and, when want_error is not
 * NULL, an error header starting with it). */
static size_t dlq_count(const struct tk_msgs *m, const char *reason, const char *want_error)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) {
        char *r = tk_msg_header(&m->v[i], DLQ_H_REASON), *e = tk_msg_header(&m->v[i], DLQ_H_ERROR);
        if (r && strcmp(r, reason) == 0 &&
            (!want_error || (e && strncmp(e, want_error, strlen(want_error)) == 0)))
            n++;
        free(r);
        free(e);
    }
    return n;
}

/* The end of every case: everything handled, the normal records (and what
 * else the case expects stored) exactly once with their chains, no
 * integrity incident, the process alive until a clean stop, nothing planted
 * in its log, the DLQ headers or the alerts. */
static void hx_finish(struct hfx *x)
{
    hfx_finish(x);
    secrets_assert_file_clean(x->log, true);
    secrets_assert_dlq_clean(x->brokers, x->dlq);
    secrets_assert_webhook_clean(x->hook);
}

static void hx_defaults(struct hx_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->start = true;
}

/* ---- item 1 and 4: the acceptance window -------------------------------- */

/* Times that must go to the DLQ (class time), each on its own stream: year
 * 0 with an offset (it made the partition name events_p-0011231, 42601,
 * fatal: every member of the group died in turn), 9999 with a negative
 * offset, a node clock reset to 1970, a backfill 7 years old (retention
 * would have dropped it), and 2 days ahead. */
static const char *const bad_times[] = {
    "0000-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59-23:59",
    "1970-01-01T00:00:00Z",
    "2019-11-29T08:00:00Z",
};

START_TEST(time_window)
{
    struct hfx x;
    struct hx_opts o;
    hx_defaults(&o);
    hx_init(&x, "hostile-time", &o);
    hfx_normal(&x, 3);
    size_t nbad = sizeof(bad_times) / sizeof(bad_times[0]);
    for (size_t i = 0; i <= nbad; i++) {
        char name[32], future[TIME_RFC3339_LEN];
        snprintf(name, sizeof(name), "hostile-time-%zu", i);
        time_format_us(time_now_us() + 2 * DAY_US, future);
        struct trec r;
        char *j = record_with_time(name, i < nbad ? bad_times[i] : future, &r);
        hx_produce(&x, r.stream, strlen(r.stream), j, strlen(j));
        free(j);
        trec_release(&r);
        /* the normal chain goes on between them */
        hfx_normal(&x, 2);
    }
    ck_assert_msg(probe_wait_metric(x.port, METRIC_P "dlq_messages_total{reason=\"time\"}",
                                    (double)nbad + 1, WAIT_MS),
                  "the hostile times were not dead-lettered (log %s)", x.log);
    struct tk_msgs m = {0};
    dlq_read(&x, &m);
    ck_assert_uint_eq(dlq_count(&m, "time", "time: "), nbad + 1);
    ck_assert_uint_eq(m.n, nbad + 1);
    tk_msgs_release(&m);
    /* No partition for an absurd day: only the days around now exist. */
    ck_assert_int_eq(test_pg_int(x.db, "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON "
                                       "c.oid = i.inhrelid WHERE i.inhparent = "
                                       "'auditrail.events'::regclass AND c.relname !~ "
                                       "'^events_p20[0-9]{6}$'"),
                     0);
    ck_assert(webhook_wait(x.hook, "AuditrailDLQWrite", WAIT_MS));
    hfx_normal(&x, 3);
    hx_finish(&x);
    hfx_release(&x);
}
END_TEST

/* A backfill of 7-year-old log lines through a real agent told to keep
 * payload times that old (agent.max_past_s: 100 years): every line is
 * dead-lettered with class time and counted, none stored (retention would
 * have dropped its partition at the next maintenance run). */
START_TEST(backfill_7_years_via_agent)
{
    struct hfx x;
    struct hx_opts o;
    hx_defaults(&o);
    hx_init(&x, "hostile-backfill", &o);
    hfx_normal(&x, 2);
    char *logs = xasprintf("%s/logs", x.dir), *ck = xasprintf("%s/checkpoints", x.dir);
    ck_assert_int_eq(mkdir(logs, 0755), 0);
    ck_assert_int_eq(mkdir(ck, 0755), 0);
    char *file = xasprintf("%s/backfill.log", logs);
    for (int i = 0; i < 5; i++) {
        char line[160];
        snprintf(line, sizeof(line),
                 "{\"ts\":\"2019-11-29T08:00:0%dZ\",\"actor\":\"backfill\",\"note\":\"%s\"}\n", i,
                 SECRET_MARKER);
        test_write_file(file, line, strlen(line), true);
    }
    char *inputs = xasprintf("    - path: %s/*.log\n      format: json\n", logs);
    char *alerts = secrets_alerts_url(webhook_port(x.hook));
    char *cfgpath = xasprintf("%s/agent.yaml", x.dir), *alog = xasprintf("%s/agent.log", x.dir);
    unsigned aport = probe_free_port();
    struct configs_agent c = {
        .source_name = "hostile/backfill",
        .checkpoint_dir = ck,
        .brokers = x.brokers,
        .topic = x.topic,
        .http_port = aport,
        .agent_extra = "  max_past_s: 3162240000\n  rescan_interval_ms: 200\n",
        .inputs = inputs,
        .kafka_properties = secrets_kafka_properties(),
        .alerts_url = alerts,
    };
    char *acfg = configs_write_agent(cfgpath, &c);
    struct proc *agent = proc_spawn_program("auditrail-agent", acfg, alog);
    ck_assert_msg(probe_wait_ready(aport, WAIT_MS), "agent not ready (log %s)", alog);
    ck_assert_msg(
        probe_wait_metric(x.port, METRIC_P "dlq_messages_total{reason=\"time\"}", 5, WAIT_MS),
        "the backfill was not dead-lettered (logs %s)", x.dir);
    ck_assert_int_eq(proc_stop(agent, 30000), 0);
    secrets_assert_file_clean(alog, true);
    hfx_normal(&x, 2);
    struct tk_msgs m = {0};
    dlq_read(&x, &m);
    ck_assert_uint_eq(dlq_count(&m, "time", "time: 2019-11-29T08:00:0"), 5);
    tk_msgs_release(&m);
    hx_finish(&x);
    proc_free(agent);
    free(acfg);
    free(cfgpath);
    free(alog);
    free(alerts);
    free(inputs);
    free(file);
    free(logs);
    free(ck);
    hfx_release(&x);
}
END_TEST

/* ---- item 2: a DLQ copy too large for the DLQ producer ------------------ */

/* A 2 MB message that is not an envelope, with the DLQ producer's limit at
 * 1 MiB (librdkafka's default, 1 MB, was the limit before: the copy, sent
 * whole, was refused forever and every partition stayed paused behind it).
 * Now the copy is a prefix with the original's size and SHA-256, and the
 * partition advances past it. */
START_TEST(dlq_oversize)
{
    struct hfx x;
    struct hx_opts o;
    hx_defaults(&o);
    o.kafka_extra = "  dlq_max_message_bytes: 1MiB\n";
    hx_init(&x, "hostile-big", &o);
    hfx_normal(&x, 3);
    uint8_t *big = xmalloc(BIG_MSG);
    size_t mk = strlen(SECRET_MARKER);
    for (size_t i = 0; i < BIG_MSG; i++)
        big[i] = (uint8_t)SECRET_MARKER[i % mk];
    hx_produce(&x, "big", 3, big, BIG_MSG);
    hfx_normal(&x, 3);
    struct tk_msgs m = {0};
    dlq_read(&x, &m);
    ck_assert_uint_eq(m.n, 1);
    const struct tk_msg *d = &m.v[0];
    ck_assert_uint_le(d->len + d->keylen, 1024 * 1024);
    ck_assert_uint_gt(d->len, 512 * 1024);
    ck_assert(memcmp(d->val, big, d->len) == 0); /* a prefix of the original */
    ck_assert_uint_eq(d->keylen, 3);
    char *trunc = tk_msg_header(d, DLQ_H_TRUNCATED), *size = tk_msg_header(d, DLQ_H_ORIG_SIZE);
    char *sha = tk_msg_header(d, DLQ_H_ORIG_SHA256), *reason = tk_msg_header(d, DLQ_H_REASON);
    ck_assert_str_eq(trunc ? trunc : "", "true");
    ck_assert_int_eq(atoll(size ? size : "0"), BIG_MSG);
    ck_assert_str_eq(reason ? reason : "", "decode");
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(big, BIG_MSG, md);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    ck_assert_str_eq(sha ? sha : "", hex);
    free(trunc);
    free(size);
    free(sha);
    free(reason);
    tk_msgs_release(&m);
    free(big);
    ck_assert_double_eq(hfx_metric(&x, METRIC_P "dlq_truncated_total"), 1);
    ck_assert_double_eq(hfx_metric(&x, METRIC_P "dlq_messages_total{reason=\"decode\"}"), 1);
    hx_finish(&x);
    hfx_release(&x);
}
END_TEST

/* ---- item 3: offsets that move backwards -------------------------------- */

static void run_program(const char *config, const char *arg, const char *log, int want_rc)
{
    char *bin = test_bin("auditrail-aggregator");
    const char *argv[] = {bin, "--config", config, arg, NULL};
    struct proc *p = proc_spawn("aggregator-cmd", argv, NULL, log);
    int rc = proc_wait(p, WAIT_MS);
    ck_assert_msg(rc == want_rc, "auditrail-aggregator %s exited %d (log %s)", arg, rc, log);
    proc_free(p);
    free(bin);
}

/* What a recreated (or truncated) topic looks like from the consumer's
 * side: the offset stored in PostgreSQL is far above the log end. Every
 * message of the new log was dropped as "stale prefetch" before; now the
 * reset is detected, counted, alerted, and the log read from its start. */
START_TEST(offset_reset)
{
    struct hfx x;
    struct hx_opts o;
    hx_defaults(&o);
    o.start = false;
    hx_init(&x, "hostile-reset", &o);
    char *mlog = xasprintf("%s/migrate.log", x.dir);
    run_program(x.cfg, "migrate", mlog, 0);
    free(mlog);
    hfx_normal(&x, 3);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO auditrail.kafka_offsets (consumer_group, topic, partition, next_offset) "
             "VALUES ('%s', '%s', 0, 1000) RETURNING 1",
             x.topic, x.topic);
    ck_assert_int_eq(test_pg_int(x.db, sql), 1);
    hx_start(&x);
    ck_assert_msg(store_wait_rows(x.db, 3, WAIT_MS), "the new log's records were dropped (log %s)",
                  x.log);
    ck_assert_double_eq(hfx_metric(&x, METRIC_P "offset_resets_total{kind=\"log_end\"}"), 1);
    ck_assert(webhook_wait(x.hook, "AuditrailOffsetReset", WAIT_MS));
    /* and it goes on from there */
    hfx_normal(&x, 3);
    hx_finish(&x);
    snprintf(sql, sizeof(sql), "SELECT next_offset FROM auditrail.kafka_offsets WHERE topic = '%s'",
             x.topic);
    ck_assert_int_eq(test_pg_int(x.db, sql), 6);
    hfx_release(&x);
}
END_TEST

/* ---- item 8: the Kafka key, batch.max_bytes, Redis, replay -------------- */

/* A record under another stream's key is not what the agent sent: DLQ
 * class schema. A message without a key is accepted and counted. */
START_TEST(key_checked)
{
    struct hfx x;
    struct hx_opts o;
    hx_defaults(&o);
    hx_init(&x, "hostile-key", &o);
    hfx_normal(&x, 2);
    struct tchain a, b;
    tchain_init(&a, "hostile-key-a");
    tchain_init(&b, "hostile-key-b");
    struct trec ra, rb;
    tchain_next(&a, "under another key", 17, x.t_us, &ra);
    tchain_next(&b, "without a key", 13, x.t_us, &rb);
    hx_produce(&x, x.chain.stream, strlen(x.chain.stream), ra.json, ra.json_len);
    hx_produce(&x, NULL, 0, rb.json, rb.json_len);
    trec_release(&ra);
    trecs_push(&x.want, &rb); /* stored */
    hfx_normal(&x, 2);
    ck_assert(probe_wait_metric(x.port, METRIC_P "messages_without_key_total", 1, WAIT_MS));
    ck_assert(
        probe_wait_metric(x.port, METRIC_P "dlq_messages_total{reason=\"schema\"}", 1, WAIT_MS));
    struct tk_msgs m = {0};
    dlq_read(&x, &m);
    ck_assert_uint_eq(m.n, 1);
    ck_assert_uint_eq(dlq_count(&m, "schema", "schema: key does not match stream"), 1);
    tk_msgs_release(&m);
    hx_finish(&x);
    hfx_release(&x);
}
END_TEST

/* batch.max_bytes counts message values: three envelopes of ~3 KB (a long
 * source name) carry 10-byte lines. With max_bytes 1024 and every other
 * trigger far away (10 minutes, a million events) they must be flushed at
 * once; counting lines only, they waited for max_ms. */
START_TEST(batch_bytes_are_values)
{
    struct hfx x;
    struct hx_opts o;
    hx_defaults(&o);
    o.batch_extra = "  max_bytes: 1024\n";
    o.batch_max_ms = 600000;
    o.batch_max_events = 1000000;
    hx_init(&x, "hostile-bytes", &o);
    char *host = xmalloc(3001);
    memset(host, 'h', 3000);
    host[3000] = '\0';
    for (int i = 0; i < 3; i++) {
        struct trec r;
        tchain_next(&x.chain, "tiny line!", 10, x.t_us + i, &r);
        json_t *j = json_loads(r.json, 0, NULL);
        json_object_set_new(json_object_get(j, "source"), "host", json_string(host));
        char *v = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        hx_produce(&x, r.stream, strlen(r.stream), v, strlen(v));
        free(v);
        trecs_push(&x.want, &r);
    }
    free(host);
    ck_assert_msg(store_wait_rows(x.db, 3, 30000),
                  "a batch over batch.max_bytes in message bytes was not flushed (log %s)", x.log);
    hx_finish(&x);
    hfx_release(&x);
}
END_TEST

/* Two deployments (their own databases and topics, the same group name)
 * share one Redis: each stores every record. Without a namespace the second
 * skipped all of them as re-sends of the first's ids. */
START_TEST(redis_shared_by_two_deployments)
{
    char *redis = secrets_redis_url();
    struct hfx a, b;
    struct hx_opts o;
    hx_defaults(&o);
    o.redis_url = redis;
    o.group = "auditrail-aggregator";
    hx_init(&a, "hostile-redis", &o);
    o.start = false;
    hx_init(&b, "hostile-redis", &o);
    hfx_normal(&a, 20);
    for (size_t i = 0; i < a.want.n; i++) {
        const struct trec *r = &a.want.v[i];
        tk_produce(b.prod, b.topic, 0, r->stream, strlen(r->stream), r->json, r->json_len, NULL);
    }
    tk_flush(b.prod);
    ck_assert(store_wait_drained(a.db, a.brokers, a.topic, WAIT_MS));
    hx_start(&b);
    for (size_t i = 0; i < a.want.n; i++) {
        struct trec copy = a.want.v[i];
        copy.line = xmemdup(a.want.v[i].line, a.want.v[i].len + 1);
        copy.json = xmemdup(a.want.v[i].json, a.want.v[i].json_len + 1);
        trecs_push(&b.want, &copy);
    }
    ck_assert(store_wait_drained(b.db, b.brokers, b.topic, WAIT_MS));
    /* nothing of b's was taken for a re-send of a's */
    ck_assert_double_eq(hfx_metric(&b, METRIC_P "duplicates_total{layer=\"redis\"}"), 0);
    hx_finish(&a);
    hx_finish(&b);
    hfx_release(&a);
    hfx_release(&b);
    free(redis);
}
END_TEST

/* replay connects with a timeout: against a server that accepts TCP and
 * never answers (a black hole), it gives up within connect_timeout with an
 * error that does not show the conninfo's password. */
START_TEST(replay_connect_timeout)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 16), 0); /* never accepted: the handshake completes, then silence */
    socklen_t l = sizeof(sa);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &l), 0);
    char *dir = test_tmpdir("hostile-replay");
    /* no connect_timeout here: the default of pg_conn is what is tested */
    char *pg = xasprintf("host=127.0.0.1 port=%u dbname=audit user=auditrail password=%s",
                         ntohs(sa.sin_port), SECRET_PG);
    char *path = xasprintf("%s/aggregator.yaml", dir), *log = xasprintf("%s/replay.log", dir);
    struct configs_aggregator c = {
        .brokers = test_stack("STACK_KAFKA_BROKERS"),
        .topic = "hostile-replay",
        .group = "hostile-replay",
        .dlq_topic = "hostile-replay-dlq",
        .postgres = pg,
        .http_port = probe_free_port(),
    };
    char *cfg = configs_write_aggregator(path, &c);
    uint64_t t0 = test_now_ms();
    run_program(cfg, "replay", log, 1);
    uint64_t took = test_now_ms() - t0;
    ck_assert_msg(took < 30000, "replay took %llu ms against a black hole",
                  (unsigned long long)took);
    secrets_assert_file_clean(log, true);
    close(fd);
    test_rmtree(dir);
    free(cfg);
    free(path);
    free(log);
    free(pg);
    free(dir);
}
END_TEST

/* ---- item 13: secrets in errors ----------------------------------------- */

/* Broken configurations and a failing alert receiver: every error names
 * what is wrong without the password it carries. The webhook answering 500
 * makes the alerter log its URL (with user info and a token: masked). */
START_TEST(secrets_in_errors)
{
    struct hfx x;
    struct hx_opts o;
    hx_defaults(&o);
    o.redis_url = "rediss://planted:" SECRET_REDIS "@127.0.0.1:1/0"; /* not a redis:// URL */
    o.start = false;
    hx_init(&x, "hostile-secrets", &o);
    x.aggr = proc_spawn_program("auditrail-aggregator", x.cfg, x.log);
    int rc = proc_wait(x.aggr, WAIT_MS);
    ck_assert_msg(rc != 0 && rc != -1, "a rediss:// URL was accepted (log %s)", x.log);
    secrets_assert_file_clean(x.log, true);
    proc_free(x.aggr);
    x.aggr = NULL;
    /* A refused SASL property value is named, never echoed. */
    o.redis_url = NULL;
    o.extra = NULL;
    hx_config(&x, &o);
    char *bad = xasprintf("%s/bad.yaml", x.dir);
    size_t len;
    uint8_t *text = test_read_file(x.cfg, &len);
    char *withbad = xasprintf("%.*s", (int)len, (const char *)text);
    char *at = strstr(withbad, "    sasl.password:");
    ck_assert_ptr_nonnull(at);
    char *edited = xasprintf("%.*s    security.protocol: \"SASL_" SECRET_SASL "\"\n%s",
                             (int)(at - withbad), withbad, at);
    test_write_file(bad, edited, strlen(edited), false);
    char *badlog = xasprintf("%s/bad.log", x.dir);
    struct proc *p = proc_spawn_program("auditrail-aggregator", bad, badlog);
    rc = proc_wait(p, WAIT_MS);
    ck_assert_msg(rc != 0 && rc != -1, "a refused security.protocol was accepted (log %s)", badlog);
    proc_free(p);
    secrets_assert_file_clean(badlog, true);
    free(text);
    free(withbad);
    free(edited);
    free(bad);
    free(badlog);
    /* Alerts that cannot be delivered: the URL in the log is masked. */
    webhook_fail(x.hook, 1);
    hx_start(&x);
    hfx_normal(&x, 2);
    const char poison[] = "not an envelope " SECRET_MARKER;
    hx_produce(&x, "k", 1, poison, sizeof(poison) - 1);
    ck_assert(probe_wait_metric(x.port, "auditrail_alerts_failed_total", 1, WAIT_MS));
    uint8_t *logtext = test_read_file(x.log, &len);
    ck_assert_msg(memmem(logtext, len, "alertuser:***@", 14) != NULL,
                  "the alerter's failure does not name its (masked) URL (log %s)", x.log);
    free(logtext);
    webhook_fail(x.hook, 0);
    hx_finish(&x);
    hfx_release(&x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile");
    struct {
        const char *name;
        const TTest *t;
    } cases[] = {
        {"time_window", time_window},
        {"backfill_7_years_via_agent", backfill_7_years_via_agent},
        {"dlq_oversize", dlq_oversize},
        {"offset_reset", offset_reset},
        {"key_checked", key_checked},
        {"batch_bytes_are_values", batch_bytes_are_values},
        {"redis_shared_by_two_deployments", redis_shared_by_two_deployments},
        {"replay_connect_timeout", replay_connect_timeout},
        {"secrets_in_errors", secrets_in_errors},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, cases[i].t);
        suite_add_tcase(s, tc);
    }
    return test_run_suite(s);
}
