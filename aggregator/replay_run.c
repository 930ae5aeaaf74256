/* The active replay (aggregator/replay_run.h): plan every partition's range
 * first (watermarks, then the start by offset, time or the low watermark),
 * then read the partitions one by one through validate, the dedupe layers
 * and the pg_writer, and count what happened to each message. */
#include "aggregator/replay_run.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/batch.h"
#include "aggregator/dedupe.h"
#include "aggregator/dlq.h"
#include "aggregator/pg_writer.h"
#include "aggregator/replay_seek.h"
#include "aggregator/replay_source.h"
#include "aggregator/validate.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define POLL_MS         200
#define IDLE_LIMIT_MS   30000 /* no message for this long before the range's end: fail */
#define PROGRESS_MS     1000
#define WRITE_ATTEMPTS  12 /* transient failures of one batch, ~40 s with backoff */
#define DLQ_SETTLE_MS   10000
#define DLQ_PENDING_MAX 1000 /* settle the DLQ copies before holding more */

struct run {
    const struct aggr_config *cfg;
    const struct replay_opts *o;
    struct replay_report *rep;
    struct replay_source *src;
    struct pg_writer *w;
    struct dedupe *dd;
    struct dlq *dlq; /* NULL in a dry run */
    struct batch b;
    struct replay_part_report *cur;
    uint64_t next_progress_ms;
    char *err;
    size_t errlen;
};

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool stopped(const struct run *r)
{
    return r->o->stop && *r->o->stop;
}

static bool wanted(const struct replay_opts *o, int32_t p)
{
    if (!o->partitions)
        return true;
    for (size_t i = 0; i < o->npartitions; i++)
        if (o->partitions[i] == p)
            return true;
    return false;
}

/* ---- planning ---- */

static int plan_part(struct run *r, struct replay_part_report *pr, int64_t asked)
{
    int64_t lo, hi;
    if (replay_source_watermarks(r->src, pr->partition, &lo, &hi, r->err, r->errlen) != 0)
        return -1;
    pr->end = hi;
    pr->start = lo;
    if (asked >= 0) {
        if (asked < lo)
            log_warn("replay: %s[%d]: offset %" PRId64 " is gone (retention): starting at %" PRId64,
                     r->cfg->kafka.topic, (int)pr->partition, asked, lo);
        pr->start = asked < lo ? lo : asked > hi ? hi : asked;
    } else if (r->o->from_ms != REPLAY_TIME_ANY_FROM) {
        struct replay_lookup l;
        replay_source_lookup(r->src, &l);
        if (replay_seek_time(&l, pr->partition, lo, hi, r->o->from_ms, &pr->start, &pr->searched,
                             r->err, r->errlen) != 0)
            return -1;
    }
    pr->reached = pr->start;
    return 0;
}

static int plan(struct run *r)
{
    const struct replay_opts *o = r->o;
    struct replay_report *rep = r->rep;
    if (o->noffsets) {
        rep->parts = xcalloc(o->noffsets, sizeof(*rep->parts));
        for (size_t i = 0; i < o->noffsets; i++) {
            rep->parts[i].partition = o->offsets[i].partition;
            rep->nparts++;
            if (plan_part(r, &rep->parts[i], o->offsets[i].offset) != 0)
                return -1;
        }
        return 0;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (replay_source_partitions(r->src, &ids, &n, r->err, r->errlen) != 0)
        return -1;
    for (size_t i = 0; o->partitions && i < o->npartitions; i++) {
        bool found = false;
        for (size_t j = 0; j < n; j++)
            found |= ids[j] == o->partitions[i];
        if (!found) {
            snprintf(r->err, r->errlen, "topic %s has no partition %d", r->cfg->kafka.topic,
                     (int)o->partitions[i]);
            free(ids);
            return -1;
        }
    }
    rep->parts = xcalloc(n, sizeof(*rep->parts));
    int rc = 0;
    for (size_t j = 0; j < n && rc == 0; j++) {
        if (!wanted(o, ids[j]))
            continue;
        struct replay_part_report *pr = &rep->parts[rep->nparts++];
        pr->partition = ids[j];
        rc = plan_part(r, pr, -1);
    }
    free(ids);
    return rc;
}

/* ---- writing ---- */

static void count_write(struct run *r, const struct pg_write_stats *st)
{
    struct replay_counts *n = &r->cur->n;
    n->inserted += st->inserted;
    n->resends += st->dup_stream + st->dup_pk;
    n->forks += st->forks;
    if (!r->o->dry_run) { /* a dry run's batches do not see each other's rows */
        n->gaps += st->gaps;
        n->chain_breaks += st->chain_breaks;
    }
}

/* A row PostgreSQL refuses (data error): to the DLQ, as the live path does. */
static void dlq_row(struct run *r, struct batch *b, size_t idx, const char *why)
{
    struct batch_row *row = &b->rows[idx];
    r->cur->n.dlq++;
    log_warn("replay: row %s (%s[%d]@%" PRId64 ") refused by PostgreSQL%s: %s", row->env.id,
             b->topic, (int)row->kafka_partition, row->kafka_offset,
             r->dlq ? ", sent to the DLQ" : "", why);
    if (r->dlq) {
        size_t len = 0;
        char *val = envelope_encode(&row->env, &len);
        char error[600];
        snprintf(error, sizeof(error), "storage: %s", why);
        dlq_add(r->dlq, row->env.stream, strlen(row->env.stream), val, len, NULL,
                validate_reason_name(VALIDATE_STORAGE), error, b->topic, row->kafka_partition,
                row->kafka_offset);
        free(val);
    }
    uint8_t *drop = xcalloc(b->n, 1);
    drop[idx] = 1;
    batch_remove(b, drop);
    free(drop);
}

/* Write b (no Kafka offsets): retry transient failures, isolate refused
 * rows (the one the writer names, else by halves). 0, or -1 with err. */
static int write_batch(struct run *r, struct batch *b)
{
    struct backoff bo;
    backoff_init(&bo, 200, 5000, NULL, NULL);
    for (int attempt = 0; b->n > 0;) {
        struct pg_write_stats st = {0};
        char why[512] = "";
        enum pg_status s = pg_writer_write(r->w, b, &st, why, sizeof(why));
        ssize_t bad = st.bad_row;
        if (s == PG_OK) {
            count_write(r, &st);
            dedupe_mark_committed(r->dd, b, st.committed);
        }
        pg_write_stats_release(&st);
        if (s == PG_OK)
            return 0;
        if (s == PG_DATA && (bad >= 0 || b->n == 1)) {
            dlq_row(r, b, bad >= 0 ? (size_t)bad : 0, why);
            continue;
        }
        if (s == PG_DATA) {
            struct batch lo, hi;
            batch_split(b, b->n / 2, &lo, &hi);
            int rc = write_batch(r, &lo);
            if (rc == 0)
                rc = write_batch(r, &hi);
            batch_release(&lo);
            batch_release(&hi);
            return rc;
        }
        if (s == PG_TRANSIENT && ++attempt < WRITE_ATTEMPTS && !stopped(r)) {
            log_warn("replay: batch of %zu rows not written (retrying): %s", b->n, why);
            sleep_ms(backoff_next(&bo));
            continue;
        }
        snprintf(r->err, r->errlen, "writing a batch: %s: %s", pg_status_name(s), why);
        return -1;
    }
    return 0;
}

static int flush(struct run *r)
{
    int rc = write_batch(r, &r->b);
    batch_clear(&r->b);
    dedupe_batch_reset(r->dd);
    if (rc == 0 && r->dlq && dlq_unacked(r->dlq) && dlq_settle(r->dlq, DLQ_SETTLE_MS) != 0) {
        snprintf(r->err, r->errlen, "the DLQ topic %s did not acknowledge %zu copies",
                 r->cfg->kafka.dlq_topic, dlq_unacked(r->dlq));
        rc = -1;
    }
    if (rc == 0 && r->dlq)
        dlq_reset(r->dlq);
    return rc;
}

/* ---- reading ---- */

static void progress(struct run *r, bool force)
{
    uint64_t now = time_mono_ms();
    if (!r->o->progress || (!force && now < r->next_progress_ms))
        return;
    r->next_progress_ms = now + PROGRESS_MS;
    const struct replay_part_report *p = r->cur;
    int64_t span = p->end - p->start;
    fprintf(r->o->progress,
            "replay%s: partition %d: offset %" PRId64 " of [%" PRId64 ", %" PRId64
            ") (%d%%), read %" PRIu64 ", %s %" PRIu64 ", re-sends %" PRIu64 ", DLQ %" PRIu64 "\n",
            r->o->dry_run ? " (dry run)" : "", (int)p->partition, p->reached, p->start, p->end,
            span > 0 ? (int)(100 * (p->reached - p->start) / span) : 100, p->n.read,
            r->o->dry_run ? "would insert" : "inserted", p->n.inserted, p->n.resends, p->n.dlq);
    fflush(r->o->progress);
}

/* One message of the range. */
static void take(struct run *r, rd_kafka_message_t *m)
{
    struct replay_counts *n = &r->cur->n;
    n->read++;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
        ts = INT64_MIN;
    if ((r->o->from_ms != REPLAY_TIME_ANY_FROM && ts < r->o->from_ms) ||
        (r->o->to_ms != REPLAY_TIME_ANY_TO && ts >= r->o->to_ms)) {
        n->outside++;
        return;
    }
    struct envelope env = {0};
    char why[512];
    enum validate_reason vr = validate_message(
        m->payload, m->len, (size_t)r->cfg->batch.max_message_bytes, &env, why, sizeof(why));
    if (vr != VALIDATE_OK) {
        n->dlq++;
        if (r->dlq) {
            rd_kafka_headers_t *h = NULL;
            if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
                h = NULL;
            dlq_add(r->dlq, m->key, m->key_len, m->payload, m->len, h, validate_reason_name(vr),
                    why, r->cfg->kafka.topic, m->partition, m->offset);
        }
        return;
    }
    if (dedupe_batch_seen(r->dd, env.id) || dedupe_lru_seen(r->dd, env.id)) {
        n->resends++;
        envelope_release(&env);
        return;
    }
    batch_add(&r->b, &env, m->partition, m->offset);
}

static bool batch_full(const struct run *r)
{
    return r->b.n >= (size_t)r->cfg->batch.max_events ||
           r->b.bytes >= (size_t)r->cfg->batch.max_bytes ||
           (r->dlq && dlq_unacked(r->dlq) >= DLQ_PENDING_MAX);
}

static int replay_part(struct run *r, struct replay_part_report *p)
{
    r->cur = p;
    if (p->start >= p->end)
        return 0;
    if (replay_source_start(r->src, p->partition, p->start, r->err, r->errlen) != 0)
        return -1;
    uint64_t last_msg = time_mono_ms();
    while (p->reached < p->end) {
        progress(r, false);
        if (stopped(r)) {
            snprintf(r->err, r->errlen, "stopped by a signal");
            return -1;
        }
        rd_kafka_message_t *m = replay_source_poll(r->src, POLL_MS);
        if (!m) {
            if (time_mono_ms() - last_msg > IDLE_LIMIT_MS) {
                snprintf(r->err, r->errlen,
                         "%s[%d]: nothing read after offset %" PRId64 " for %d s",
                         r->cfg->kafka.topic, (int)p->partition, p->reached, IDLE_LIMIT_MS / 1000);
                return -1;
            }
            continue;
        }
        last_msg = time_mono_ms();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset < p->end)
                log_warn("replay: %s[%d] ends at offset %" PRId64 ", before its high watermark "
                         "%" PRId64 " at the start (retention?)",
                         r->cfg->kafka.topic, (int)p->partition, m->offset, p->end);
            p->reached = p->end;
        } else if (m->err) {
            log_warn("replay: %s[%d]: %s", r->cfg->kafka.topic, (int)p->partition,
                     rd_kafka_message_errstr(m));
        } else if (m->offset >= p->end) {
            p->reached = p->end;
        } else {
            take(r, m);
            p->reached = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
        if ((batch_full(r) || p->reached >= p->end) && flush(r) != 0)
            return -1;
    }
    progress(r, true);
    return 0;
}

static void add_counts(struct replay_counts *t, const struct replay_counts *n)
{
    t->read += n->read;
    t->outside += n->outside;
    t->inserted += n->inserted;
    t->resends += n->resends;
    t->forks += n->forks;
    t->gaps += n->gaps;
    t->chain_breaks += n->chain_breaks;
    t->dlq += n->dlq;
}

enum replay_status replay_run(const struct aggr_config *cfg, const struct replay_opts *o,
                              struct replay_report *rep, char *err, size_t errlen)
{
    uint64_t t0 = time_mono_us();
    memset(rep, 0, sizeof(*rep));
    rep->dry_run = o->dry_run;
    struct run r = {.cfg = cfg, .o = o, .rep = rep, .err = err, .errlen = errlen};
    enum replay_status st = REPLAY_UNAVAILABLE;
    batch_init(&r.b, cfg->kafka.topic);
    r.src = replay_source_new(&cfg->kafka, err, errlen);
    if (!r.src || plan(&r) != 0)
        goto out;
    /* The running aggregator's limits: deadlines, days per transaction. */
    struct pg_writer_opts wo = PG_WRITER_OPTS_DEFAULT;
    aggr_config_pg_limits(cfg, &wo.limits);
    wo.max_days = (int)cfg->partitions.max_days_per_batch;
    r.w = pg_writer_new(cfg->postgres.primary, cfg->kafka.group, &wo, err, errlen);
    if (!r.w)
        goto out;
    pg_writer_set_dry_run(r.w, o->dry_run);
    r.dd = dedupe_new((size_t)cfg->dedupe.lru_size, NULL, NULL, NULL, NULL);
    if (!o->dry_run && !(r.dlq = dlq_new(&cfg->kafka, cfg->kafka.dlq_topic, err, errlen)))
        goto out;
    st = REPLAY_FAILED;
    for (size_t i = 0; i < rep->nparts; i++)
        if (replay_part(&r, &rep->parts[i]) != 0)
            goto out;
    st = REPLAY_OK;
out:
    for (size_t i = 0; i < rep->nparts; i++)
        add_counts(&rep->total, &rep->parts[i].n);
    batch_release(&r.b);
    dlq_free(r.dlq, DLQ_SETTLE_MS);
    dedupe_free(r.dd);
    pg_writer_free(r.w);
    replay_source_free(r.src);
    rep->elapsed_us = time_mono_us() - t0;
    return st;
}

void replay_report_release(struct replay_report *r)
{
    if (!r)
        return;
    free(r->parts);
    memset(r, 0, sizeof(*r));
}
