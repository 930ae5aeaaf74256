/* The hostile suites' fixture: one database, topic, DLQ, webhook, producer
 * and chain of normal records per case, and the checks every case ends with. */
#include "tests/support/hostile.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"
#include "tests/support/kafka.h"
#include "tests/support/probe.h"
#include "tests/support/store.h"
#include "tests/support/teststack.h"
#include "tests/support/testutil.h"

#define HOUR_US INT64_C(3600000000)

void hfx_init(struct hfx *x, const char *name, int partitions, const char *dlq_name,
              size_t producer_max_bytes, unsigned wait_ms)
{
    memset(x, 0, sizeof(*x));
    x->wait_ms = wait_ms;
    x->db = test_pg_fresh_db(name);
    x->topic = test_kafka_topic(name, partitions);
    x->dlq = test_kafka_topic(dlq_name, 1);
    x->dir = test_tmpdir(name);
    x->brokers = xstrdup(test_stack("STACK_KAFKA_BROKERS"));
    x->log = xasprintf("%s/aggregator.log", x->dir);
    x->port = probe_free_port();
    x->hook = webhook_start();
    x->prod = producer_max_bytes ? tk_producer_new_sized(x->brokers, producer_max_bytes)
                                 : tk_producer_new(x->brokers);
    tchain_init(&x->chain, name);
    x->t_us = time_now_us() - HOUR_US;
}

void hfx_send(struct hfx *x, struct trec *r)
{
    tk_produce(x->prod, x->topic, -1, r->stream, strlen(r->stream), r->json, r->json_len, NULL);
    trecs_push(&x->want, r);
}

void hfx_normal(struct hfx *x, int n)
{
    for (int i = 0; i < n; i++) {
        char line[96];
        snprintf(line, sizeof(line), "{\"actor\":\"dr.normal\",\"action\":\"read\",\"n\":%llu}",
                 (unsigned long long)x->chain.seq);
        struct trec r;
        tchain_next(&x->chain, line, strlen(line), x->t_us + (int64_t)x->chain.seq, &r);
        hfx_send(x, &r);
    }
    tk_flush(x->prod);
}

void hfx_drained(struct hfx *x)
{
    ck_assert_msg(store_wait_drained(x->db, x->brokers, x->topic, x->wait_ms),
                  "the topic was not drained: a partition stopped advancing (log %s)", x->log);
}

void hfx_assert_alive(struct hfx *x)
{
    int st = 0;
    char text[64];
    ck_assert_msg(proc_alive(x->aggr, &st), "the aggregator exited: %s (log %s)",
                  proc_status_str(st, text, sizeof(text)), x->log);
}

double hfx_metric(struct hfx *x, const char *series)
{
    return probe_metric_value(x->port, series);
}

void hfx_finish(struct hfx *x)
{
    hfx_drained(x);
    hfx_assert_alive(x);
    store_assert_records(x->db, &x->want);
    ck_assert_int_eq(test_pg_int(x->db, "SELECT count(*) FROM auditrail.integrity_incidents"), 0);
    int rc = proc_stop(x->aggr, 30000);
    ck_assert_msg(rc == 0, "aggregator exited %d on SIGTERM (log %s)", rc, x->log);
}

void hfx_release(struct hfx *x)
{
    proc_free(x->aggr);
    tk_producer_free(x->prod);
    webhook_stop(x->hook);
    trecs_release(&x->want);
    test_pg_drop_db(x->db);
    if (!getenv("AUDITRAIL_KEEP_TMP"))
        test_rmtree(x->dir);
    free(x->db);
    free(x->topic);
    free(x->dlq);
    free(x->dir);
    free(x->brokers);
    free(x->cfg);
    free(x->log);
}
