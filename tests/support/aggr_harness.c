/* Aggregator test harness; see aggr_harness.h. */
#include "tests/support/aggr_harness.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "tests/support/configs.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/store.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define STOP_TIMEOUT_MS 30000

_Static_assert(sizeof(((struct tenv_stream *)0)->stream) == sizeof(((struct tchain *)0)->stream),
               "stream ids of chain.h and the product agree");

void tenv_stream_init(struct tenv_stream *s, const char *name)
{
    struct tchain c;
    tchain_init(&c, name);
    memcpy(s->stream, c.stream, sizeof(s->stream));
    s->seq = c.seq;
    memcpy(s->prev, c.prev, CHAIN_HASH_LEN);
}

/* The next record of s by chain.h; advances s. */
static void next_record(struct tenv_stream *s, const char *line, int64_t time_us, struct trec *r)
{
    struct tchain c;
    memcpy(c.stream, s->stream, sizeof(c.stream));
    c.seq = s->seq;
    memcpy(c.prev, s->prev, CHAIN_HASH_LEN);
    tchain_next(&c, line, strlen(line), time_us, r);
    s->seq = c.seq;
    memcpy(s->prev, c.prev, CHAIN_HASH_LEN);
}

void tenv_next(struct tenv_stream *s, const char *line, int64_t time_us, struct envelope *e)
{
    struct trec r;
    next_record(s, line, time_us, &r);
    memset(e, 0, sizeof(*e));
    e->v = 1;
    memcpy(e->stream, r.stream, sizeof(e->stream));
    memcpy(e->id, r.id, sizeof(e->id));
    e->seq = r.seq;
    e->offset = r.seq * 100;
    memcpy(e->prev, r.prev, CHAIN_HASH_LEN);
    memcpy(e->hash, r.hash, CHAIN_HASH_LEN);
    e->line = r.line; /* moved */
    e->line_len = r.len;
    r.line = NULL;
    e->time_us = time_us;
    e->time_source = TIME_SOURCE_READ;
    e->read_time_us = time_us;
    e->source.name = xstrdup("test");
    e->source.host = xstrdup("testhost");
    e->format = xstrdup("raw");
    trec_release(&r);
}

char *tenv_next_json(struct tenv_stream *s, const char *line, int64_t time_us, size_t *len)
{
    struct trec r;
    next_record(s, line, time_us, &r);
    char *j = r.json; /* moved */
    *len = r.json_len;
    r.json = NULL;
    trec_release(&r);
    return j;
}

int th_free_port(void)
{
    return (int)probe_free_port();
}

void th_env_init(struct th_env *e, const char *name, int partitions)
{
    memset(e, 0, sizeof(*e));
    e->db = test_pg_fresh_db(name);
    e->topic = test_kafka_topic(name, partitions);
    e->dlq = test_kafka_topic("dlq", 1);
    e->dir = test_tmpdir(name);
    e->brokers = xstrdup(test_stack("STACK_KAFKA_BROKERS"));
    e->prod = tk_producer_new(e->brokers);
    for (int i = 0; i < TH_MAX_AGGR; i++) {
        e->aggr[i].log = xasprintf("%s/aggregator-%d.log", e->dir, i);
        e->aggr[i].port = probe_free_port();
    }
    th_aggr_config(e, 0, NULL, NULL);
}

void th_aggr_config(struct th_env *e, int i, const char *redis_url, const char *alerts_url)
{
    struct th_aggr *a = &e->aggr[i];
    char *path = xasprintf("%s/aggregator-%d.yaml", e->dir, i);
    struct configs_aggregator c = {
        .brokers = e->brokers,
        .topic = e->topic,
        .group = e->topic,
        .dlq_topic = e->dlq,
        .postgres = e->db,
        .redis_url = redis_url,
        .http_port = a->port,
        .batch_max_events = 500, /* many transactions: a kill lands in one */
        .alerts_url = alerts_url,
    };
    free(a->config);
    a->config = configs_write_aggregator(path, &c);
    free(path);
}

void th_aggr_start(struct th_env *e, int i)
{
    struct th_aggr *a = &e->aggr[i];
    if (!a->config)
        th_aggr_config(e, i, NULL, NULL);
    if (a->proc)
        proc_restart(a->proc);
    else
        a->proc = proc_spawn_program("auditrail-aggregator", a->config, a->log);
}

void th_aggr_stop(struct th_env *e, int i)
{
    int rc = proc_stop(e->aggr[i].proc, STOP_TIMEOUT_MS);
    ck_assert_msg(rc == 0, "aggregator-%d exited %d on SIGTERM (log %s)", i, rc, e->aggr[i].log);
}

void th_aggr_kill(struct th_env *e, int i)
{
    int rc = proc_kill(e->aggr[i].proc, SIGKILL);
    ck_assert_msg(rc == 128 + SIGKILL, "aggregator-%d ended with %d before it was killed (log %s)",
                  i, rc, e->aggr[i].log);
}

void th_env_release(struct th_env *e)
{
    for (int i = 0; i < TH_MAX_AGGR; i++) {
        proc_free(e->aggr[i].proc);
        free(e->aggr[i].config);
        free(e->aggr[i].log);
    }
    tk_producer_free(e->prod);
    test_pg_drop_db(e->db);
    if (!getenv("AUDITRAIL_KEEP_TMP"))
        test_rmtree(e->dir);
    free(e->db);
    free(e->topic);
    free(e->dlq);
    free(e->dir);
    free(e->brokers);
    memset(e, 0, sizeof(*e));
}

void th_produce(struct th_env *e, const struct trecs *r, size_t from, size_t to, int nparts)
{
    for (size_t k = from; k < to; k++) {
        const struct trec *x = &r->v[k];
        int32_t part = nparts > 0 ? x->index % nparts : -1;
        tk_produce(e->prod, e->topic, part, x->stream, strlen(x->stream), x->json, x->json_len,
                   NULL);
    }
    tk_flush(e->prod);
}

void th_assert_drained(struct th_env *e, unsigned timeout_ms)
{
    ck_assert_msg(store_wait_drained(e->db, e->brokers, e->topic, timeout_ms),
                  "the aggregator did not handle every message of %s (logs in %s)", e->topic,
                  e->dir);
}
