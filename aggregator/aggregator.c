/* The aggregator (aggregator/aggregator.h): its lifecycle and its loop,
 * which polls Kafka, hands due batches to the writer thread, takes their
 * results and runs the periodic work. The rooms it calls into, and which
 * thread owns what, are described in aggregator_int.h. Exactly-once rests
 * on the writer's per-partition offset compare-and-set; every file of the
 * loop keeps the positions it reads from and the offsets it writes
 * consistent with that (DESIGN.md §4). */
#include "aggregator/aggregator.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "aggregator/aggregator_int.h"
#include "aggregator/dlq.h"
#include "aggregator/maintenance.h"
#include "aggregator/pg_conn.h"
#include "aggregator/pg_sql.h"
#include "aggregator/pg_writer.h"
#include "aggregator/redis_store.h"
#include "common/buf.h"
#include "common/hashchain.h"
#include "common/alert.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define PERIODIC_MS 1000

static const struct pg_conn_opts identity_conn_opts = {.application_name = "auditrail-aggregator"};

/* Namespaces of what this deployment keeps in a Redis that others may
 * share: 16 hex characters of SHA-256 over the database's identity (name and
 * cluster system identifier) and, for the dedupe keys, the consumer group —
 * two deployments (or two groups of one) must never skip each other's
 * records, nor starve each other's maintenance (issue 9 item 8). 0, or -1
 * with err (PostgreSQL unreachable at start: the caller fails as for the
 * writer's first connect). */
static int redis_namespaces(const struct aggr_config *cfg, char dedupe_ns[17], char lease_ns[17],
                            char *err, size_t errlen)
{
    struct pg_connection *c = pg_conn_new(cfg->postgres.primary, &identity_conn_opts);
    PGresult *res = NULL;
    char e2[512];
    int rc = -1;
    if (pg_conn_open(c, NULL, e2, sizeof(e2)) != PG_OK ||
        pg_conn_exec(c, SQL_DB_IDENTITY, 0, NULL, &res, e2, sizeof(e2)) != PG_OK) {
        snprintf(err, errlen, "the database's identity (Redis namespace): %s", e2);
        goto out;
    }
    struct buf id = BUF_INIT;
    buf_adds(&id, PQgetvalue(res, 0, 0));
    buf_addc(&id, 0);
    buf_adds(&id, PQgetvalue(res, 0, 1));
    uint8_t md[32];
    char hex[65];
    unsigned mdlen = 0;
    EVP_Digest(id.p, id.len, md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, 8, hex);
    memcpy(lease_ns, hex, 17);
    buf_addc(&id, 0);
    buf_adds(&id, cfg->kafka.group);
    EVP_Digest(id.p, id.len, md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, 8, hex);
    memcpy(dedupe_ns, hex, 17);
    buf_release(&id);
    rc = 0;
out:
    PQclear(res);
    pg_conn_free(c);
    return rc;
}

void aggregator_fatal_stop(struct aggregator *a, const char *why)
{
    a->fatal = true;
    alerter_fire(a->alerter, "AuditrailFatal", ALERT_CRITICAL, "fatal error: the aggregator stops",
                 why, NULL);
}

static void run_maintenance(struct aggregator *a)
{
    struct maintenance_result res = {0};
    char err[512];
    if (maintenance_run_once(a->maint, a->redis, time_now_us(), &res, err, sizeof(err)) != 0) {
        log_warn("partition maintenance failed (retried in %" PRId64 " s): %s",
                 a->cfg->partitions.maintenance_interval_s, err);
        return;
    }
    if (!res.ran)
        return;
    metric_add(a->m->partitions_created, res.created);
    metric_add(a->m->partitions_dropped, res.dropped);
    metric_add(a->m->partitions_kept, res.kept);
}

static void periodic(struct aggregator *a, uint64_t now)
{
    if (now < a->next_periodic_ms)
        return;
    a->next_periodic_ms = now + PERIODIC_MS;
    consume_reload_offsets(a);
    consume_check_stored_offsets(a, now);
    consume_apply_resets(a);
    health_probe_pg(a);
    health_publish(a);
    if (a->maint && now >= a->next_maint_ms) {
        a->next_maint_ms = now + (uint64_t)a->cfg->partitions.maintenance_interval_s * 1000;
        run_maintenance(a);
    }
}

bool aggregator_last_commit(void *ud, uint64_t *lsn, int64_t *commit_us)
{
    struct aggregator *a = ud;
    *lsn = atomic_load(&a->commit_lsn);
    *commit_us = atomic_load(&a->commit_us);
    return *lsn != 0;
}

void aggregator_set_alerter(struct aggregator *a, struct alerter *al)
{
    a->alerter = al;
}

struct aggregator *aggregator_new(const struct aggr_config *cfg, struct aggr_metrics *am, char *err,
                                  size_t errlen)
{
    struct aggregator *a = xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    a->m = am;
    atomic_init(&a->ready_code, READY_NOT_JOINED);
    struct breaker_conf bc;
    aggr_config_breaker(cfg, &bc);
    breaker_init(&a->pg_breaker, "postgres", &bc, NULL, NULL, NULL, NULL, health_on_breaker_change,
                 a);
    breaker_init(&a->dlq_breaker, "dlq", &bc, NULL, NULL, NULL, NULL, health_on_breaker_change, a);
    backoff_init(&a->retry, 100, bc.open_max_ms < 5000 ? bc.open_max_ms : 5000, NULL, NULL);
    batch_init(&a->batch, cfg->kafka.topic);
    batch_init(&a->inflight, cfg->kafka.topic);
    a->window.max_future_us = cfg->ingest.max_future_s * 1000000;
    a->window.max_age_us =
        validate_max_age_us(cfg->partitions.retention_days, cfg->partitions.maintenance_interval_s);

    struct pg_writer_opts wo = PG_WRITER_OPTS_DEFAULT;
    aggr_config_pg_limits(cfg, &wo.limits);
    wo.max_days = (int)cfg->partitions.max_days_per_batch;
    for (a->npgs = 0; a->npgs < (size_t)cfg->writer.connections; a->npgs++) {
        a->pgs[a->npgs] = pg_writer_new(cfg->postgres.primary, cfg->kafka.group, &wo, err, errlen);
        if (!a->pgs[a->npgs])
            goto fail;
    }
    a->pg = a->pgs[0];
    a->wr = writer_new(a->pgs, a->npgs);
    char dedupe_ns[17] = "", lease_ns[17] = "", lease_name[64];
    if (cfg->redis.url) {
        a->redis = redis_store_new(cfg->redis.url, (uint64_t)cfg->dedupe.redis_ttl_s,
                                   (unsigned)cfg->redis.timeout_ms, err, errlen);
        if (!a->redis || redis_namespaces(cfg, dedupe_ns, lease_ns, err, errlen) != 0)
            goto fail;
        redis_store_set_namespace(a->redis, dedupe_ns);
        log_info("Redis namespace %s (dedupe: database and group), %s (maintenance lease: "
                 "database)",
                 dedupe_ns, lease_ns);
    }
    a->dd = dedupe_new((size_t)cfg->dedupe.lru_size, a->redis, &bc, health_on_breaker_change, a);
    a->dlq = dlq_new(&cfg->kafka, cfg->kafka.dlq_topic, err, errlen);
    if (!a->dlq)
        goto fail;

    struct maintenance_conf mc;
    maintenance_conf_defaults(&mc);
    char holder[300], host[256] = "aggregator";
    gethostname(host, sizeof(host) - 1);
    snprintf(holder, sizeof(holder), "%s:%d", host, (int)getpid());
    mc.premake_days = (int)cfg->partitions.premake;
    mc.retention_days = (int)cfg->partitions.retention_days;
    mc.keep_table = cfg->partitions.retention_keep_table;
    /* "written within the last maintenance period": a writer refreshes its
     * note once a minute and its transaction may run a while: two minutes
     * more. */
    mc.recent_write_s = cfg->partitions.maintenance_interval_s + 120;
    mc.holder = holder;
    mc.pg_limits = &wo.limits;
    if (lease_ns[0]) {
        snprintf(lease_name, sizeof(lease_name), "auditrail:lease:maintenance:%s", lease_ns);
        mc.lease_name = lease_name;
    }
    a->maint = maintenance_new(cfg->postgres.primary, &mc);

    a->c = consumer_new(&cfg->kafka, consume_rebalance, a, err, errlen);
    if (!a->c)
        goto fail;
    return a;
fail:
    aggregator_free(a);
    return NULL;
}

/* The batch being built has reached batch.max_events or batch.max_bytes. */
static bool batch_full(const struct aggregator *a)
{
    return a->batch_msgs >= (size_t)a->cfg->batch.max_events ||
           a->batch_bytes >= (size_t)a->cfg->batch.max_bytes;
}

int aggregator_run(struct aggregator *a, const volatile sig_atomic_t *stop)
{
    struct writer_result res;
    while (!*stop && !a->fatal) {
        uint64_t now = time_mono_ms();
        periodic(a, now);
        if (a->held && !writer_busy(a->wr))
            a->held = false; /* the write ended and its result was taken */
        consume_sync_pause(a);
        health_update_ready(a);
        if (writer_busy(a->wr) && writer_wait(a->wr, 0, &res)) {
            flush_finish(a, &res);
            health_sync_counters(a);
            continue;
        }
        int timeout = 100;
        if (a->retrying) {
            if (now >= a->retry_at_ms) {
                flush_retry_now(a);
                continue;
            }
            if (a->retry_at_ms - now < (uint64_t)timeout)
                timeout = (int)(a->retry_at_ms - now);
        } else if (flush_due(a, now) && !a->inflight_active) {
            flush_seal_and_submit(a);
            health_sync_counters(a);
            continue;
        } else if (flush_due(a, now) && batch_full(a)) {
            /* One batch in flight at a time: wait for it a little rather
             * than grow this one past its limits; if it takes longer, hold
             * intake (partitions paused) and keep polling, so that the
             * group keeps us however long PostgreSQL takes. */
            if (!a->held) {
                if (writer_wait(a->wr, 100, &res)) {
                    flush_finish(a, &res);
                    health_sync_counters(a);
                    continue;
                }
                a->held = true;
                consume_sync_pause(a);
            }
        } else if (flush_has_content(a)) {
            /* Past batch.max_ms while the previous batch is still being
             * written: keep filling this one up to its size limits rather
             * than wait with it, so that a backlog is written in large
             * batches however short batch.max_ms is. */
            uint64_t due = a->batch_start_ms + (uint64_t)a->cfg->batch.max_ms;
            timeout = due > now ? (int)(due - now < 100 ? due - now : 100) : 5;
        }
        if (writer_busy(a->wr) && timeout > 5)
            timeout = 5; /* notice the writer's result promptly when idle */
        rd_kafka_message_t *msg = consumer_poll(a->c, timeout);
        if (msg) {
            consume_message(a, msg);
            rd_kafka_message_destroy(msg);
        }
    }

    /* Stop: commit what was handled if PostgreSQL lets us within a short
     * while, else drop it (its offsets are not stored: the next owner
     * re-reads it). Messages polled meanwhile are not handled. */
    atomic_store(&a->ready_code, READY_STOPPING);
    flush_at_stop(a);
    consumer_close(a->c); /* leaves the group; the revocation finds nothing to commit */
    a->c = NULL;
    return a->fatal ? 1 : 0;
}

void aggregator_free(struct aggregator *a)
{
    if (!a)
        return;
    if (a->c)
        consumer_close(a->c); /* never ran: nothing handled, nothing to commit */
    writer_free(a->wr);       /* before the pg_writer it borrows */
    dlq_free(a->dlq, 5000);
    dedupe_free(a->dd);
    maintenance_free(a->maint);
    redis_store_free(a->redis);
    for (size_t i = 0; i < a->npgs; i++)
        pg_writer_free(a->pgs[i]);
    for (size_t i = 0; i < a->nparts_inflight; i++)
        batch_release(&a->parts_inflight[i]);
    batch_release(&a->batch);
    batch_release(&a->inflight);
    free(a->parts);
    free(a);
}
