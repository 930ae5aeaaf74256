/* The batch writers (see writer.h): one thread per connection, one job
 * (up to one part per connection) at a time, a mutex and two condition
 * variables. */
#include "aggregator/writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "common/xmalloc.h"

struct writer;

struct worker {
    struct writer *w;
    size_t i;
    pthread_t thread;
};

struct writer {
    size_t n;
    struct pg_writer *pg[WRITER_MAX_CONNECTIONS];
    struct worker workers[WRITER_MAX_CONNECTIONS];
    pthread_mutex_t mu;
    pthread_cond_t job_cv, done_cv;
    const struct batch *job[WRITER_MAX_CONNECTIONS]; /* set by submit, cleared by thread i */
    size_t pending;                                  /* parts of the job not finished */
    bool stop;
    atomic_bool busy; /* submitted, result not yet taken (read without the lock) */
    struct writer_result res;
};

/* One part's transaction on connection i (no lock held). */
static void write_part(struct pg_writer *pg, const struct batch *b, struct writer_part *res)
{
    memset(res, 0, sizeof(*res));
    uint64_t t0 = time_mono_us();
    res->r = pg_writer_write(pg, b, &res->stats, res->err, sizeof(res->err));
    res->elapsed_us = time_mono_us() - t0;
    if (res->r == PG_OK) { /* best effort: only /v1/status reads it */
        char e2[256];
        if (pg_writer_wal_lsn(pg, res->commit_lsn, sizeof(res->commit_lsn), e2, sizeof(e2)) !=
            PG_OK)
            res->commit_lsn[0] = '\0';
    }
}

static void *worker_main(void *arg)
{
    struct worker *k = arg;
    struct writer *w = k->w;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job[k->i] && !w->stop)
            pthread_cond_wait(&w->job_cv, &w->mu);
        if (!w->job[k->i])
            break; /* stop with nothing to do */
        const struct batch *b = w->job[k->i];
        pthread_mutex_unlock(&w->mu);

        struct writer_part res;
        write_part(w->pg[k->i], b, &res);

        pthread_mutex_lock(&w->mu);
        w->res.part[k->i] = res;
        w->job[k->i] = NULL;
        if (--w->pending == 0)
            pthread_cond_signal(&w->done_cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct writer *writer_new(struct pg_writer *const *pgs, size_t n)
{
    if (n < 1 || n > WRITER_MAX_CONNECTIONS) {
        log_error("writer_new: %zu connections (a bug)", n);
        abort();
    }
    struct writer *w = xcalloc(1, sizeof(*w));
    w->n = n;
    atomic_init(&w->busy, false);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->job_cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    for (size_t i = 0; i < n; i++) {
        w->pg[i] = pgs[i];
        w->workers[i] = (struct worker){.w = w, .i = i};
        int e = pthread_create(&w->workers[i].thread, NULL, worker_main, &w->workers[i]);
        if (e != 0) {
            log_error("cannot start a writer thread: %s", strerror(e));
            abort();
        }
    }
    return w;
}

void writer_free(struct writer *w)
{
    if (!w)
        return;
    if (atomic_load(&w->busy)) {
        struct writer_result r;
        writer_wait(w, -1, &r);
        for (size_t i = 0; i < r.n; i++)
            pg_write_stats_release(&r.part[i].stats);
    }
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->job_cv);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < w->n; i++)
        pthread_join(w->workers[i].thread, NULL);
    pthread_cond_destroy(&w->job_cv);
    pthread_cond_destroy(&w->done_cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

size_t writer_connections(const struct writer *w)
{
    return w->n;
}

void writer_submit(struct writer *w, const struct batch *const *parts, size_t n)
{
    pthread_mutex_lock(&w->mu);
    if (atomic_load(&w->busy) || n < 1 || n > w->n) {
        pthread_mutex_unlock(&w->mu);
        log_error("writer_submit of %zu parts while busy or beyond %zu connections (a bug)", n,
                  w->n);
        abort();
    }
    memset(&w->res, 0, sizeof(w->res));
    w->res.n = n;
    for (size_t i = 0; i < n; i++)
        w->job[i] = parts[i];
    w->pending = n;
    atomic_store(&w->busy, true);
    pthread_cond_broadcast(&w->job_cv);
    pthread_mutex_unlock(&w->mu);
}

bool writer_busy(const struct writer *w)
{
    return atomic_load(&w->busy);
}

bool writer_wait(struct writer *w, int timeout_ms, struct writer_result *out)
{
    if (!atomic_load(&w->busy))
        return false;
    pthread_mutex_lock(&w->mu);
    if (timeout_ms < 0) {
        while (w->pending)
            pthread_cond_wait(&w->done_cv, &w->mu);
    } else if (w->pending && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (w->pending)
            if (pthread_cond_timedwait(&w->done_cv, &w->mu, &ts) == ETIMEDOUT)
                break;
    }
    bool done = w->pending == 0;
    if (done) {
        *out = w->res;
        memset(&w->res, 0, sizeof(w->res));
        atomic_store(&w->busy, false);
    }
    pthread_mutex_unlock(&w->mu);
    return done;
}

uint64_t writer_busy_ms(const struct writer *w)
{
    uint64_t most = 0;
    for (size_t i = 0; i < w->n; i++) {
        uint64_t ms = pg_writer_busy_ms(w->pg[i]);
        if (ms > most)
            most = ms;
    }
    return most;
}
