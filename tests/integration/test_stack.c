/* The local stack works as the other suites assume: streaming replication to
 * a read-only replica, Redis, and kafka-mock speaking the Kafka protocol,
 * including the faults it injects (brokers down, errors pushed). */
#include <hiredis.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

/* --- PostgreSQL ------------------------------------------------------------ */

struct count_wait {
    const char *conninfo;
    const char *sql;
    const char *want;
};

/* The replica may not have the new database yet: connection failures are
 * part of waiting, not errors. */
static bool replica_count_is(void *ud)
{
    struct count_wait *w = ud;
    PGconn *c = PQconnectdb(w->conninfo);
    bool ok = false;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, w->sql);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
             strcmp(PQgetvalue(r, 0, 0), w->want) == 0;
        PQclear(r);
    }
    PQfinish(c);
    return ok;
}

START_TEST(test_pg_rows_reach_replica)
{
    char *primary = test_pg_fresh_db("stack_repl");
    char *replica = test_pg_replica_conninfo(primary);
    PGconn *pc = test_pg_connect(primary);
    test_pg_exec(pc, "CREATE TABLE t (id int PRIMARY KEY, v text)");
    test_pg_exec(pc, "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 500) g");

    struct count_wait w = {replica, "SELECT count(*) FROM t", "500"};
    ck_assert_msg(test_wait_until(replica_count_is, &w, 30000),
                  "500 rows written on the primary never became visible on the replica");

    PGconn *rc = test_pg_connect(replica);
    char *v = test_pg_scalar(rc, "SELECT v FROM t WHERE id = 42");
    ck_assert_str_eq(v, "row 42");
    free(v);
    v = test_pg_scalar(rc, "SELECT pg_is_in_recovery()");
    ck_assert_str_eq(v, "t");
    free(v);
    v = test_pg_scalar(pc, "SELECT pg_is_in_recovery()");
    ck_assert_str_eq(v, "f");
    free(v);

    /* The replica refuses writes with read_only_sql_transaction. */
    PGresult *r = PQexec(rc, "INSERT INTO t VALUES (1000, 'x')");
    ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "25006");
    PQclear(r);

    /* Catch-up helper: a later write is replayed once it returns true. */
    test_pg_exec(pc, "INSERT INTO t VALUES (501, 'late')");
    ck_assert(test_pg_replica_catch_up(primary, replica, 30000));
    v = test_pg_scalar(rc, "SELECT v FROM t WHERE id = 501");
    ck_assert_str_eq(v, "late");
    free(v);

    PQfinish(rc);
    PQfinish(pc);
    test_pg_drop_db(primary);
    free(replica);
    free(primary);
}
END_TEST

START_TEST(test_pg_fresh_db_isolated_and_dropped)
{
    char *a = test_pg_fresh_db("Stack-Iso");
    char *b = test_pg_fresh_db("Stack-Iso");
    ck_assert_str_ne(a, b);
    PGconn *ca = test_pg_connect(a);
    test_pg_exec(ca, "CREATE TABLE only_in_a (x int)");
    char *name = test_pg_scalar(ca, "SELECT current_database()");
    ck_assert_msg(strncmp(name, "stack_iso_", 10) == 0, "unexpected name %s", name);
    PGconn *cb = test_pg_connect(b);
    char *n = test_pg_scalar(cb, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'");
    ck_assert_str_eq(n, "0");
    free(n);
    PQfinish(cb);

    /* Dropping works while a session is still connected to it. */
    test_pg_drop_db(a);
    PQfinish(ca);
    PGconn *admin = test_pg_connect(test_stack("STACK_PG_PRIMARY"));
    char *sql = xasprintf("SELECT count(*) FROM pg_database WHERE datname = '%s'", name);
    n = test_pg_scalar(admin, sql);
    ck_assert_str_eq(n, "0");
    free(n);
    free(sql);
    PQfinish(admin);
    test_pg_drop_db(b);
    free(name);
    free(a);
    free(b);
}
END_TEST

/* --- Redis ------------------------------------------------------------------- */

START_TEST(test_redis_set_get)
{
    int port = atoi(test_stack("STACK_REDIS_PORT"));
    redisContext *c = redisConnect("127.0.0.1", port);
    ck_assert_msg(c && !c->err, "redis connect: %s", c ? c->errstr : "oom");
    char key[64];
    snprintf(key, sizeof(key), "test_stack:%d", (int)getpid());
    redisReply *r = redisCommand(c, "SET %s %s", key, "hello");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    ck_assert_str_eq(r->str, "OK");
    freeReplyObject(r);
    r = redisCommand(c, "GET %s", key);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(r->str, "hello");
    freeReplyObject(r);
    r = redisCommand(c, "DEL %s", key);
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
}
END_TEST

/* --- Kafka ------------------------------------------------------------------- */

struct dr_tally {
    int ok;
    int failed;
    rd_kafka_resp_err_t last_err;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct dr_tally *t = opaque;
    if (m->err) {
        t->failed++;
        t->last_err = m->err;
    } else {
        t->ok++;
    }
}

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[256];
    ck_assert_msg(rd_kafka_conf_set(conf, k, v, err, sizeof(err)) == RD_KAFKA_CONF_OK, "%s: %s", k,
                  err);
}

static rd_kafka_t *producer_new(const char *brokers, struct dr_tally *t, const char *timeout_ms)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    conf_set(conf, "bootstrap.servers", brokers);
    conf_set(conf, "message.timeout.ms", timeout_ms);
    conf_set(conf, "reconnect.backoff.max.ms", "500");
    conf_set(conf, "retry.backoff.ms", "50");
    conf_set(conf, "log_level", "2");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, t);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "producer: %s", err);
    return rk;
}

/* Queue n keyed messages "tag-i" without waiting. */
static void enqueue(rd_kafka_t *rk, const char *topic, const char *tag, int n)
{
    for (int i = 0; i < n; i++) {
        char key[32], val[64];
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "%s-%d", tag, i);
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE(val, strlen(val)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        ck_assert_msg(err == 0, "producev: %s", rd_kafka_err2str(err));
    }
}

/* Produce n keyed messages "tag-i" and wait for every delivery report. */
static void produce(rd_kafka_t *rk, const char *topic, const char *tag, int n)
{
    enqueue(rk, topic, tag, n);
    ck_assert_int_eq(rd_kafka_flush(rk, 60000), 0);
}

/* Consume with a fresh group from the beginning until want messages whose
 * value starts with tag arrived; each must arrive once. Returns the number of
 * distinct partitions seen. */
static int consume_all(const char *brokers, const char *topic, const char *tag, int want)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    /* A group of its own per call: a shared one would resume after what an
     * earlier call consumed (and auto-committed) but filtered out. */
    char *group = xasprintf("test_stack.%d.%s.%s", (int)getpid(), topic, tag);
    conf_set(conf, "bootstrap.servers", brokers);
    conf_set(conf, "group.id", group);
    conf_set(conf, "auto.offset.reset", "earliest");
    /* TEST_KDEBUG=cgrp,fetch,... turns on librdkafka debug output. */
    conf_set(conf, "log_level", getenv("TEST_KDEBUG") ? "7" : "2");
    if (getenv("TEST_KDEBUG"))
        conf_set(conf, "debug", getenv("TEST_KDEBUG"));
    free(group);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "consumer: %s", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    ck_assert_int_eq(rd_kafka_subscribe(rk, sub), 0);
    rd_kafka_topic_partition_list_destroy(sub);

    char *seen = xcalloc((size_t)want, 1);
    bool parts[64] = {false};
    int got = 0, nparts = 0;
    size_t taglen = strlen(tag);
    uint64_t deadline = test_now_ms() + 60000;
    while (got < want && test_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (!m->err && m->len > taglen + 1 && memcmp(m->payload, tag, taglen) == 0) {
            char buf[64];
            size_t l = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
            memcpy(buf, m->payload, l);
            buf[l] = '\0';
            int i = atoi(buf + taglen + 1);
            ck_assert_msg(i >= 0 && i < want, "unexpected message %s", buf);
            ck_assert_msg(!seen[i], "message %s consumed twice", buf);
            seen[i] = 1;
            got++;
            if (m->partition >= 0 && m->partition < 64 && !parts[m->partition]) {
                parts[m->partition] = true;
                nparts++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    free(seen);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    ck_assert_int_eq(got, want);
    return nparts;
}

START_TEST(test_kafka_produce_consume)
{
    const char *brokers = test_stack("STACK_KAFKA_BROKERS");
    char *bcopy = xstrdup(brokers);
    char *topic = test_kafka_topic("stack.pc", 4);
    struct dr_tally t = {0};
    rd_kafka_t *rk = producer_new(bcopy, &t, "30000");
    produce(rk, topic, "pc", 300);
    ck_assert_int_eq(t.ok, 300);
    ck_assert_int_eq(t.failed, 0);
    rd_kafka_destroy(rk);
    /* 300 distinct keys over 4 partitions: all of them carry data. */
    ck_assert_int_eq(consume_all(bcopy, topic, "pc", 300), 4);
    free(topic);
    free(bcopy);
}
END_TEST

START_TEST(test_kafka_control_errors)
{
    char reply[256];
    ck_assert_int_eq(test_kafka_ctl("ping", reply, sizeof(reply)), 0);
    ck_assert_str_eq(reply, "ok pong");
    ck_assert_int_eq(test_kafka_ctl("no such command", reply, sizeof(reply)), -1);
    ck_assert_msg(strncmp(reply, "error: ", 7) == 0, "reply: %s", reply);
    ck_assert_int_eq(test_kafka_ctl("broker down 99", reply, sizeof(reply)), -1);
    ck_assert_int_eq(test_kafka_ctl("topic create x notanumber", reply, sizeof(reply)), -1);
    ck_assert_int_eq(test_kafka_ctl("errors push 0", reply, sizeof(reply)), -1);
    ck_assert_int_eq(test_kafka_ctl("coordinator group g 99", reply, sizeof(reply)), -1);
    ck_assert_int_eq(test_kafka_ctl("coordinator txn g 1", reply, sizeof(reply)), -1);
    ck_assert_int_eq(test_kafka_ctl("coordinator group g 1", reply, sizeof(reply)), 0);
}
END_TEST

START_TEST(test_kafka_brokers_down_then_up)
{
    struct test_kafka_mock *m = test_kafka_mock_start(3);
    char reply[256];
    ck_assert_int_eq(test_kafka_mock_ctl(m, "topic create downup 2", reply, sizeof(reply)), 0);
    struct dr_tally t = {0};
    rd_kafka_t *rk = producer_new(m->bootstraps, &t, "2000");
    produce(rk, "downup", "before", 20);
    ck_assert_int_eq(t.ok, 20);

    /* All brokers down: deliveries fail once message.timeout.ms passes. */
    ck_assert_int_eq(test_kafka_mock_ctl(m, "brokers down", reply, sizeof(reply)), 0);
    produce(rk, "downup", "during", 5);
    ck_assert_int_eq(t.ok, 20);
    ck_assert_int_eq(t.failed, 5);
    ck_assert_int_eq(t.last_err, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);

    /* Back up: the same producer reconnects and delivers. */
    ck_assert_int_eq(test_kafka_mock_ctl(m, "brokers up", reply, sizeof(reply)), 0);
    rd_kafka_destroy(rk);
    struct dr_tally t2 = {0};
    rk = producer_new(m->bootstraps, &t2, "20000");
    produce(rk, "downup", "after", 20);
    ck_assert_int_eq(t2.ok, 20);
    ck_assert_int_eq(t2.failed, 0);
    rd_kafka_destroy(rk);

    /* What was written before the outage survived it. */
    consume_all(m->bootstraps, "downup", "before", 20);
    consume_all(m->bootstraps, "downup", "after", 20);
    ck_assert_int_eq(test_kafka_mock_stop(m), 0);
}
END_TEST

START_TEST(test_kafka_same_producer_recovers)
{
    struct test_kafka_mock *m = test_kafka_mock_start(1);
    char reply[256];
    ck_assert_int_eq(test_kafka_mock_ctl(m, "topic create recover 1", reply, sizeof(reply)), 0);
    struct dr_tally t = {0};
    rd_kafka_t *rk = producer_new(m->bootstraps, &t, "20000");
    produce(rk, "recover", "a", 5);
    ck_assert_int_eq(t.ok, 5);
    ck_assert_int_eq(test_kafka_mock_ctl(m, "brokers down", reply, sizeof(reply)), 0);
    /* Messages queued during the outage are delivered once the broker is
     * back within message.timeout.ms. */
    enqueue(rk, "recover", "queued", 5);
    /* Let the producer find the brokers gone before they come back. */
    rd_kafka_poll(rk, 1000);
    ck_assert_int_eq(t.ok + t.failed, 5);
    ck_assert_int_eq(test_kafka_mock_ctl(m, "brokers up", reply, sizeof(reply)), 0);
    ck_assert_int_eq(rd_kafka_flush(rk, 30000), 0);
    ck_assert_int_eq(t.ok, 10);
    ck_assert_int_eq(t.failed, 0);
    rd_kafka_destroy(rk);
    ck_assert_int_eq(test_kafka_mock_stop(m), 0);
}
END_TEST

START_TEST(test_kafka_errors_push)
{
    struct test_kafka_mock *m = test_kafka_mock_start(1);
    char reply[256];
    ck_assert_int_eq(test_kafka_mock_ctl(m, "topic create inject 1", reply, sizeof(reply)), 0);
    struct dr_tally t = {0};
    rd_kafka_t *rk = producer_new(m->bootstraps, &t, "20000");
    produce(rk, "inject", "warm", 1);
    ck_assert_int_eq(t.ok, 1);

    /* A non-retriable Produce error fails exactly the next request. */
    char *cmd = xasprintf("errors push 0 %d 1", RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    ck_assert_int_eq(test_kafka_mock_ctl(m, cmd, reply, sizeof(reply)), 0);
    free(cmd);
    produce(rk, "inject", "x", 1);
    ck_assert_int_eq(t.failed, 1);
    ck_assert_int_eq(t.last_err, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    produce(rk, "inject", "y", 1);
    ck_assert_int_eq(t.ok, 2);
    ck_assert_int_eq(t.failed, 1);

    /* A retriable one is retried by the client and the message gets through. */
    cmd = xasprintf("errors push 0 %d 2", RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    ck_assert_int_eq(test_kafka_mock_ctl(m, cmd, reply, sizeof(reply)), 0);
    free(cmd);
    produce(rk, "inject", "z", 1);
    ck_assert_int_eq(t.ok, 3);
    ck_assert_int_eq(t.failed, 1);
    rd_kafka_destroy(rk);
    ck_assert_int_eq(test_kafka_mock_stop(m), 0);
}
END_TEST

static Suite *stack_suite(void)
{
    Suite *s = suite_create("stack");
    TCase *pg = tcase_create("postgresql");
    tcase_set_timeout(pg, 90);
    tcase_add_test(pg, test_pg_rows_reach_replica);
    tcase_add_test(pg, test_pg_fresh_db_isolated_and_dropped);
    suite_add_tcase(s, pg);

    TCase *redis = tcase_create("redis");
    tcase_add_test(redis, test_redis_set_get);
    suite_add_tcase(s, redis);

    TCase *kafka = tcase_create("kafka");
    tcase_set_timeout(kafka, 180);
    tcase_add_test(kafka, test_kafka_produce_consume);
    tcase_add_test(kafka, test_kafka_control_errors);
    tcase_add_test(kafka, test_kafka_brokers_down_then_up);
    tcase_add_test(kafka, test_kafka_same_producer_recovers);
    tcase_add_test(kafka, test_kafka_errors_push);
    suite_add_tcase(s, kafka);
    return s;
}

int main(void)
{
    return test_run_suite(stack_suite());
}
