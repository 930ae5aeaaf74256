/* Aggregator test harness; see aggr_harness.h. */
#include "tests/support/aggr_harness.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/hashchain.h"
#include "common/xmalloc.h"
#include "tests/support/e2e.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

void tenv_stream_init(struct tenv_stream *s, const char *name)
{
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)name, strlen(name), h);
    hex_encode(h, 16, s->stream);
    s->seq = 0;
    chain_genesis(s->stream, s->prev);
}

void tenv_next(struct tenv_stream *s, const char *line, int64_t time_us, struct envelope *e)
{
    memset(e, 0, sizeof(*e));
    e->v = 1;
    memcpy(e->stream, s->stream, sizeof(e->stream));
    e->seq = s->seq;
    e->offset = s->seq * 100;
    memcpy(e->prev, s->prev, CHAIN_HASH_LEN);
    e->line_len = strlen(line);
    e->line = xmemdup(line, e->line_len + 1);
    chain_next(e->prev, e->seq, e->line, e->line_len, e->hash);
    chain_id(e->hash, e->id);
    e->time_us = time_us;
    e->time_source = TIME_SOURCE_READ;
    e->read_time_us = time_us;
    e->source.name = xstrdup("test");
    e->source.host = xstrdup("testhost");
    e->format = xstrdup("raw");
    memcpy(s->prev, e->hash, CHAIN_HASH_LEN);
    s->seq++;
}

char *tenv_next_json(struct tenv_stream *s, const char *line, int64_t time_us, size_t *len)
{
    struct envelope e;
    tenv_next(s, line, time_us, &e);
    char *j = envelope_encode(&e, len);
    envelope_release(&e);
    return j;
}

static rd_kafka_conf_t *base_conf(void)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char err[256];
    ck_assert_int_eq(rd_kafka_conf_set(c, "bootstrap.servers", test_stack("STACK_KAFKA_BROKERS"),
                                       err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(c, "log_level", "3", err, sizeof(err));
    return c;
}

static void th_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    int *failures = opaque;
    if (m->err) {
        fprintf(stderr, "th_produce: delivery failed: %s\n", rd_kafka_err2str(m->err));
        (*failures)++;
    }
}

rd_kafka_t *th_producer_new(void)
{
    rd_kafka_conf_t *c = base_conf();
    char err[256];
    rd_kafka_conf_set(c, "acks", "all", err, sizeof(err));
    rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof(err));
    rd_kafka_conf_set_dr_msg_cb(c, th_dr_cb);
    rd_kafka_conf_set_opaque(c, xcalloc(1, sizeof(int))); /* delivery failures */
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    ck_assert_msg(p != NULL, "producer: %s", err);
    return p;
}

void th_produce(rd_kafka_t *p, const char *topic, int32_t partition, const void *key, size_t keylen,
                const void *val, size_t len, const rd_kafka_headers_t *headers)
{
    for (;;) {
        rd_kafka_headers_t *h = headers ? rd_kafka_headers_copy(headers) : NULL;
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)val, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (!e)
            return;
        if (h)
            rd_kafka_headers_destroy(h);
        ck_assert_msg(e == RD_KAFKA_RESP_ERR__QUEUE_FULL, "produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(p, 50);
    }
}

void th_producer_flush(rd_kafka_t *p)
{
    ck_assert_int_eq(rd_kafka_flush(p, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(*(int *)rd_kafka_opaque(p), 0);
}

void th_producer_free(rd_kafka_t *p)
{
    if (!p)
        return;
    int *failures = rd_kafka_opaque(p);
    rd_kafka_flush(p, 10000);
    rd_kafka_destroy(p);
    free(failures);
}

struct th_msg *th_consume_all(const char *topic, size_t want, unsigned timeout_ms, size_t *n)
{
    rd_kafka_conf_t *c = base_conf();
    char err[256], group[96];
    snprintf(group, sizeof(group), "th-reader-%d-%ld", (int)getpid(), (long)random());
    rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
    rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof(err));
    rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_t *k = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    ck_assert_msg(k != NULL, "consumer: %s", err);
    rd_kafka_poll_set_consumer(k);
    /* Assign every partition from the beginning: no group join to wait for. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(k, topic, NULL);
    ck_assert_int_eq(rd_kafka_metadata(k, 0, rkt, &md, 10000), 0);
    ck_assert_int_eq(md->topic_cnt, 1);
    rd_kafka_topic_partition_list_t *as = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(as, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    ck_assert_int_eq(rd_kafka_assign(k, as), 0);
    rd_kafka_topic_partition_list_destroy(as);
    size_t cap = want ? want : 1;
    struct th_msg *out = xcalloc(cap, sizeof(*out));
    *n = 0;
    uint64_t end = test_now_ms() + timeout_ms;
    while (*n < want && test_now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k, 100);
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        struct th_msg *t = &out[(*n)++];
        if (m->key) {
            t->key = xmemdup(m->key, m->key_len + 1);
            t->keylen = m->key_len;
        }
        if (m->payload) {
            t->val = xmemdup(m->payload, m->len + 1);
            t->len = m->len;
        }
        rd_kafka_headers_t *h = NULL;
        if (rd_kafka_message_headers(m, &h) == 0 && h)
            t->headers = rd_kafka_headers_copy(h);
        t->partition = m->partition;
        t->offset = m->offset;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(k);
    rd_kafka_destroy(k);
    return out;
}

void th_msgs_free(struct th_msg *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].key);
        free(m[i].val);
        if (m[i].headers)
            rd_kafka_headers_destroy(m[i].headers);
    }
    free(m);
}

char *th_msg_header(const struct th_msg *m, const char *name)
{
    const void *v;
    size_t n;
    if (!m->headers || rd_kafka_header_get_last(m->headers, name, &v, &n) != 0)
        return NULL;
    return xstrndup(v ? v : "", n);
}

int th_free_port(void)
{
    return (int)e2e_free_port();
}

char *th_aggr_config(const char *dir, const char *name, const char *pg, const char *topic,
                     const char *dlq_topic, const char *group, const char *redis_url, int http_port,
                     const char *extra)
{
    char *path = xasprintf("%s/%s", dir, name);
    char *redis = redis_url ? xasprintf("redis:\n  url: \"%s\"\n  timeout_ms: 200\n", redis_url)
                            : xstrdup("");
    char *yaml = xasprintf("kafka:\n"
                           "  brokers: \"%s\"\n"
                           "  topic: %s\n"
                           "  group: %s\n"
                           "  dlq_topic: %s\n"
                           "  properties:\n"
                           "    session.timeout.ms: \"6000\"\n"
                           "    heartbeat.interval.ms: \"500\"\n"
                           "    max.poll.interval.ms: \"10000\"\n"
                           "    topic.metadata.refresh.interval.ms: \"1000\"\n"
                           "postgres:\n"
                           "  primary: \"%s\"\n"
                           "%s"
                           "batch:\n"
                           "  max_events: 500\n"
                           "  max_ms: 100\n"
                           "breaker:\n"
                           "  open_base_ms: 100\n"
                           "  open_max_ms: 1000\n"
                           "http:\n"
                           "  listen: 127.0.0.1:%d\n"
                           "log:\n"
                           "  level: info\n"
                           "%s",
                           test_stack("STACK_KAFKA_BROKERS"), topic, group, dlq_topic, pg, redis,
                           http_port, extra ? extra : "");
    test_write_file(path, yaml, strlen(yaml), false);
    free(yaml);
    free(redis);
    return path;
}

struct th_aggr *th_aggr_start(const char *config_path, const char *log_path, int http_port)
{
    return th_proc_start("auditrail-aggregator", config_path, log_path, http_port);
}

struct th_aggr *th_proc_start(const char *name, const char *config_path, const char *log_path,
                              int http_port)
{
    char *bin = test_bin(name);
    struct th_aggr *a = xcalloc(1, sizeof(*a));
    a->log = xstrdup(log_path);
    a->http_port = http_port;
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(bin, bin, "--config", config_path, (char *)NULL);
        _exit(127);
    }
    free(bin);
    a->pid = pid;
    return a;
}

int th_aggr_stop(struct th_aggr *a, int sig, unsigned timeout_ms)
{
    if (!a)
        return 0;
    kill(a->pid, sig);
    int st = 0, rc = -1;
    uint64_t end = test_now_ms() + timeout_ms;
    for (;;) {
        pid_t w = waitpid(a->pid, &st, WNOHANG);
        if (w == a->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (test_now_ms() >= end) {
            kill(a->pid, SIGKILL);
            waitpid(a->pid, &st, 0);
            rc = -1;
            break;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(a->log);
    free(a);
    return rc;
}

int64_t th_sql_int(const char *conninfo, const char *sql)
{
    PGconn *c = test_pg_connect(conninfo);
    char *v = test_pg_scalar(c, sql);
    int64_t r = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    PQfinish(c);
    return r;
}

int64_t th_wait_rows(const char *conninfo, int64_t want, unsigned timeout_ms)
{
    PGconn *c = test_pg_connect(conninfo);
    uint64_t end = test_now_ms() + timeout_ms;
    int64_t n = -1;
    for (;;) {
        PGresult *r = PQexec(c, "SELECT count(*) FROM auditrail.events");
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        if (n >= want || test_now_ms() >= end)
            break;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    PQfinish(c);
    return n;
}

int64_t th_wait_offsets(const char *conninfo, const char *topic, int64_t want, unsigned timeout_ms)
{
    PGconn *c = test_pg_connect(conninfo);
    uint64_t end = test_now_ms() + timeout_ms;
    int64_t n = -1;
    const char *params[1] = {topic};
    for (;;) {
        PGresult *r = PQexecParams(c,
                                   "SELECT coalesce(sum(next_offset), 0) FROM "
                                   "auditrail.kafka_offsets WHERE topic = $1",
                                   1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        if (n >= want || test_now_ms() >= end)
            break;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    PQfinish(c);
    return n;
}

void th_assert_exactly_once(const char *conninfo, int64_t want)
{
    int64_t n = th_sql_int(conninfo, "SELECT count(*) FROM auditrail.events");
    ck_assert_int_eq(n, want);
    ck_assert_int_eq(th_sql_int(conninfo, "SELECT count(DISTINCT id) FROM auditrail.events"), want);
    ck_assert_int_eq(
        th_sql_int(conninfo,
                   "SELECT count(*) FROM (SELECT stream_id, count(*) AS c, min(seq) AS mn, "
                   "max(seq) AS mx, count(DISTINCT seq) AS d FROM auditrail.events "
                   "GROUP BY stream_id) s WHERE mn <> 0 OR mx <> c - 1 OR d <> c"),
        0);
}

/* HTTP and ports: the e2e harness's client (tests/support/e2e.c) serves both. */
char *th_http_get(int port, const char *path, long *status)
{
    char *body = NULL;
    *status = e2e_http_get((unsigned)port, path, &body);
    if (*status < 0) {
        *status = 0;
        free(body);
        return NULL;
    }
    if (!body)
        body = xstrdup("");
    return body;
}

double th_metric(int port, const char *series)
{
    return e2e_metric((unsigned)port, series);
}

bool th_ready(int port)
{
    return e2e_http_get((unsigned)port, "/readyz", NULL) == 200;
}
