/* A fixed pool of threads running queued jobs (the query API's database
 * work, off libmicrohttpd's threads). The queue is bounded: a full queue is
 * an answer (the caller says 503), never a wait. */
#ifndef AUDITRAIL_AGGREGATOR_WORKQ_H
#define AUDITRAIL_AGGREGATOR_WORKQ_H

#include <stddef.h>

struct workq;

struct workq *workq_new(unsigned threads, size_t max_queued);
/* Run the jobs still queued, then join the threads. NULL-safe. */
void workq_free(struct workq *q);
/* Queue fn(ud): 0, or -1 when the queue is full or stopping (fn not run). */
int workq_submit(struct workq *q, void (*fn)(void *ud), void *ud)
    __attribute__((warn_unused_result));
/* Jobs queued and not started. */
size_t workq_depth(struct workq *q);

#endif
