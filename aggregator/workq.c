/* The worker pool (aggregator/workq.h): a ring of jobs under one mutex. */
#include "aggregator/workq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/xmalloc.h"

struct job {
    void (*fn)(void *ud);
    void *ud;
};

struct workq {
    pthread_mutex_t mu;
    pthread_cond_t more;
    struct job *ring;
    size_t cap, head, n;
    bool stop;
    pthread_t *threads;
    unsigned nthreads;
};

static void *worker_main(void *ud)
{
    struct workq *q = ud;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->n == 0 && !q->stop)
            pthread_cond_wait(&q->more, &q->mu);
        if (q->n == 0)
            break; /* stopping and drained */
        struct job j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        pthread_mutex_unlock(&q->mu);
        j.fn(j.ud);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

struct workq *workq_new(unsigned threads, size_t max_queued)
{
    struct workq *q = xcalloc(1, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->more, NULL);
    q->cap = max_queued ? max_queued : 1;
    q->ring = xcalloc(q->cap, sizeof(*q->ring));
    q->threads = xcalloc(threads ? threads : 1, sizeof(*q->threads));
    for (unsigned i = 0; i < (threads ? threads : 1); i++) {
        if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0)
            abort(); /* no thread for the read path: nothing sensible to do */
        q->nthreads++;
    }
    return q;
}

void workq_free(struct workq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->more);
    pthread_mutex_unlock(&q->mu);
    for (unsigned i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    free(q->threads);
    free(q->ring);
    pthread_cond_destroy(&q->more);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

int workq_submit(struct workq *q, void (*fn)(void *ud), void *ud)
{
    int rc = -1;
    pthread_mutex_lock(&q->mu);
    if (!q->stop && q->n < q->cap) {
        q->ring[(q->head + q->n) % q->cap] = (struct job){fn, ud};
        q->n++;
        pthread_cond_signal(&q->more);
        rc = 0;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

size_t workq_depth(struct workq *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->n;
    pthread_mutex_unlock(&q->mu);
    return n;
}
