/* The signer and its thread (aggregator/proof_service.h). */
#include "aggregator/proof_service.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/pg_sql.h"
#include "aggregator/proof_key.h"
#include "aggregator/proof_store.h"
#include "common/alert.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

#define P "auditrail_aggregator_"

static const char *const proof_session[] = {SQL_QUIET, NULL};
static const struct pg_conn_opts proof_conn_opts = {
    .application_name = "auditrail-proof",
    .session = proof_session,
};

struct proof_signer {
    struct proof_key *key;
    struct proof_sink *sink;
    struct pg_connection *conn;
};

void proof_metrics_init(struct proof_metrics *pm, struct metrics *reg)
{
    pm->rounds = metrics_counter(reg, P "proof_rounds_total", "signing rounds stored", NULL);
    pm->heads = metrics_counter(reg, P "proof_heads_signed_total", "stream heads signed", NULL);
    pm->last_round = metrics_gauge(reg, P "proof_last_round_timestamp_seconds",
                                   "when the last round was signed (Unix time; 0: none yet)", NULL);
    pm->round_seconds =
        metrics_gauge(reg, P "proof_round_seconds", "duration of the last signing round", NULL);
    pm->sign_failures = metrics_counter(reg, P "proof_sign_failures_total",
                                        "signing rounds that failed (nothing stored)", NULL);
    for (int i = 0; i < PROOF_SINK_COUNT; i++) {
        char l[32];
        snprintf(l, sizeof(l), "sink=\"%s\"", proof_sink_name((enum proof_sink_id)i));
        pm->sink_failures[i] = metrics_counter(
            reg, P "proof_sink_failures_total",
            "publications of a round to a sink that failed (published again later)", l);
    }
}

struct proof_signer *proof_signer_new(const struct aggr_config *cfg, char *err, size_t errlen)
{
    struct proof_signer *s = xcalloc(1, sizeof(*s));
    char e2[512];
    s->key = proof_key_load(cfg->proof.key_file, false, e2, sizeof(e2));
    if (!s->key) {
        snprintf(err, errlen, "proof.key_file: %s", e2);
        goto fail;
    }
    s->sink = proof_sink_new(&cfg->kafka, cfg->proof.topic, cfg->proof.file, err, errlen);
    if (!s->sink)
        goto fail;
    s->conn = pg_conn_new(cfg->postgres.primary, &proof_conn_opts);
    return s;
fail:
    proof_signer_free(s);
    return NULL;
}

void proof_signer_free(struct proof_signer *s)
{
    if (!s)
        return;
    pg_conn_free(s->conn);
    proof_sink_free(s->sink);
    proof_key_free(s->key);
    free(s);
}

/* Publish round `round` (from the database) to the sinks; mark it. */
static enum pg_status republish(struct proof_signer *s, uint64_t round, unsigned *failed,
                                char *serr, size_t serrlen, char *err, size_t errlen)
{
    struct proof_round r;
    struct proof_head *h = NULL;
    size_t n = 0;
    bool found = false;
    enum pg_status st = proof_store_round(s->conn, round, &r, &found, err, errlen);
    if (st == PG_OK && found)
        st = proof_store_heads(s->conn, round, &h, &n, err, errlen);
    if (st == PG_OK && found) {
        unsigned f = proof_sink_publish(s->sink, &r, h, n, serr, serrlen);
        *failed |= f;
        if (!f)
            st = proof_store_mark_published(s->conn, round, err, errlen);
    }
    free(h);
    return st;
}

enum pg_status proof_signer_cycle(struct proof_signer *s, int64_t now_us, struct proof_cycle *c,
                                  char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    enum pg_status st = pg_conn_open(s->conn, NULL, err, errlen);
    if (st != PG_OK)
        return st;
    /* Earlier rounds first: the sinks see rounds in order. */
    uint64_t *todo = NULL;
    size_t n = 0;
    st = proof_store_unpublished(s->conn, &todo, &n, err, errlen);
    for (size_t i = 0; st == PG_OK && i < n && !c->sink_failed; i++) {
        st = republish(s, todo[i], &c->sink_failed, c->sink_err, sizeof(c->sink_err), err, errlen);
        c->republished += !c->sink_failed;
    }
    free(todo);
    if (st != PG_OK)
        return st;
    st = proof_round_sign(s->conn, s->key, now_us, &c->res, err, errlen);
    if (st == PG_OK && c->res.signed_round && !c->sink_failed) {
        c->sink_failed = proof_sink_publish(s->sink, &c->res.round, c->res.heads, c->res.nheads,
                                            c->sink_err, sizeof(c->sink_err));
        if (!c->sink_failed)
            st = proof_store_mark_published(s->conn, c->res.round.round, err, errlen);
    }
    proof_round_result_release(&c->res);
    return st;
}

/* ---- the thread ---- */

struct proof_service {
    const struct aggr_config *cfg;
    struct proof_metrics *pm;
    struct alerter *al;
    struct proof_signer *signer;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    bool sink_alerting[PROOF_SINK_COUNT], sign_alerting;
};

static void account(struct proof_service *ps, enum pg_status st, const struct proof_cycle *c,
                    const char *err, uint64_t elapsed_us)
{
    struct proof_metrics *pm = ps->pm;
    if (st != PG_OK) {
        metric_inc(pm->sign_failures);
        log_error("proof: signing round failed (retried in %" PRId64 " s): %s: %s",
                  ps->cfg->proof.interval_s, pg_status_name(st), err);
        alerter_fire(ps->al, "AuditrailProofSigningFailed", ALERT_CRITICAL,
                     "chain heads could not be signed", err, NULL);
        ps->sign_alerting = true;
        return;
    }
    if (ps->sign_alerting) {
        alerter_resolve(ps->al, "AuditrailProofSigningFailed", NULL);
        ps->sign_alerting = false;
    }
    if (c->res.signed_round) {
        metric_inc(pm->rounds);
        metric_add(pm->heads, (double)c->res.round.heads);
        metric_set(pm->last_round, (double)c->res.round.signed_at_us / 1e6);
        metric_set(pm->round_seconds, (double)elapsed_us / 1e6);
        log_info("proof: round %" PRIu64 " signed: %" PRIu64 " heads, tree size %" PRIu64
                 " (%zu streams without their last record skipped) in %.3f s",
                 c->res.round.round, c->res.round.heads, c->res.round.tree_size, c->res.skipped,
                 (double)elapsed_us / 1e6);
    }
    for (int i = 0; i < PROOF_SINK_COUNT; i++) {
        const char *name = proof_sink_name((enum proof_sink_id)i);
        if (c->sink_failed & (1u << i)) {
            metric_inc(pm->sink_failures[i]);
            log_error("proof: publishing to the %s sink failed (published again next round): %s",
                      name, c->sink_err);
            alerter_fire(ps->al, "AuditrailProofSinkFailed", ALERT_CRITICAL,
                         "signed chain heads could not be published", c->sink_err, "sink", name,
                         NULL);
            ps->sink_alerting[i] = true;
        } else if (ps->sink_alerting[i]) {
            alerter_resolve(ps->al, "AuditrailProofSinkFailed", "sink", name, NULL);
            ps->sink_alerting[i] = false;
        }
    }
}

static void *service_main(void *arg)
{
    struct proof_service *ps = arg;
    pthread_mutex_lock(&ps->mu);
    while (!ps->stop) {
        pthread_mutex_unlock(&ps->mu);
        struct proof_cycle c;
        char err[512] = "";
        uint64_t t0 = time_mono_us();
        enum pg_status st = proof_signer_cycle(ps->signer, time_now_us(), &c, err, sizeof(err));
        account(ps, st, &c, err, time_mono_us() - t0);
        pthread_mutex_lock(&ps->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)ps->cfg->proof.interval_s;
        while (!ps->stop && pthread_cond_timedwait(&ps->cv, &ps->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

struct proof_service *proof_service_start(const struct aggr_config *cfg, struct proof_metrics *pm,
                                          struct alerter *al, char *err, size_t errlen)
{
    struct proof_signer *signer = proof_signer_new(cfg, err, errlen);
    if (!signer)
        return NULL;
    struct proof_service *ps = xcalloc(1, sizeof(*ps));
    ps->cfg = cfg;
    ps->pm = pm;
    ps->al = al;
    ps->signer = signer;
    pthread_mutex_init(&ps->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ps->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&ps->th, NULL, service_main, ps) != 0)
        abort(); /* as writer_new: no thread, no process */
    return ps;
}

void proof_service_stop(struct proof_service *ps)
{
    if (!ps)
        return;
    pthread_mutex_lock(&ps->mu);
    ps->stop = true;
    pthread_cond_signal(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
    pthread_join(ps->th, NULL);
    pthread_cond_destroy(&ps->cv);
    pthread_mutex_destroy(&ps->mu);
    proof_signer_free(ps->signer);
    free(ps);
}
