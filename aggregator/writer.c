/* The batch writer thread (see writer.h): one job slot, a mutex and two
 * condition variables. */
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

struct writer {
    struct pg_writer *pg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t job_cv, done_cv;
    const struct batch *job; /* set by submit, cleared by the thread */
    bool done, stop;
    atomic_bool busy; /* submitted, result not yet taken (read without the lock) */
    struct writer_result res;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job && !w->stop)
            pthread_cond_wait(&w->job_cv, &w->mu);
        if (!w->job)
            break; /* stop with nothing to do */
        const struct batch *b = w->job;
        pthread_mutex_unlock(&w->mu);

        struct writer_result res;
        memset(&res, 0, sizeof(res));
        uint64_t t0 = time_mono_us();
        res.r = pg_writer_write(w->pg, b, &res.stats, res.err, sizeof(res.err));
        res.elapsed_us = time_mono_us() - t0;
        if (res.r == PG_OK) { /* best effort: only /v1/status reads it */
            char e2[256];
            if (pg_writer_wal_lsn(w->pg, res.commit_lsn, sizeof(res.commit_lsn), e2, sizeof(e2)) !=
                PG_OK)
                res.commit_lsn[0] = '\0';
        }

        pthread_mutex_lock(&w->mu);
        w->res = res;
        w->job = NULL;
        w->done = true;
        pthread_cond_signal(&w->done_cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

struct writer *writer_new(struct pg_writer *pg)
{
    struct writer *w = xcalloc(1, sizeof(*w));
    w->pg = pg;
    atomic_init(&w->busy, false);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->job_cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&w->thread, NULL, writer_main, w);
    if (e != 0) {
        log_error("cannot start the writer thread: %s", strerror(e));
        abort();
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
        pg_write_stats_release(&r.stats);
    }
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->job_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->job_cv);
    pthread_cond_destroy(&w->done_cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void writer_submit(struct writer *w, const struct batch *b)
{
    pthread_mutex_lock(&w->mu);
    if (atomic_load(&w->busy)) {
        pthread_mutex_unlock(&w->mu);
        log_error("writer_submit while a batch is in flight (a bug)");
        abort();
    }
    w->job = b;
    w->done = false;
    atomic_store(&w->busy, true);
    pthread_cond_signal(&w->job_cv);
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
        while (!w->done)
            pthread_cond_wait(&w->done_cv, &w->mu);
    } else if (!w->done && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!w->done)
            if (pthread_cond_timedwait(&w->done_cv, &w->mu, &ts) == ETIMEDOUT)
                break;
    }
    bool done = w->done;
    if (done) {
        *out = w->res;
        memset(&w->res, 0, sizeof(w->res));
        w->done = false;
        atomic_store(&w->busy, false);
    }
    pthread_mutex_unlock(&w->mu);
    return done;
}
