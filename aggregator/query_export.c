/* GET /v1/events/export: every event of the filters as NDJSON, streamed
 * from a server-side cursor (DECLARE … CURSOR in one REPEATABLE READ
 * READ ONLY transaction: one snapshot however long it runs) and FETCHed
 * in chunks sized to query.export_chunk_bytes. The next chunk is fetched
 * only once the client has taken most of the last (httpd's drain
 * callback), so memory stays about two chunks whatever the export's size,
 * and no worker waits on a slow client. An export holds one pooled read
 * connection while it runs. A failure after the headers ends the response
 * without its last chunk: the client sees an incomplete transfer. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/query_int.h"
#include "aggregator/query_render.h"
#include "aggregator/query_sql.h"
#include "aggregator/workq.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"

#define FIRST_FETCH 100
#define MAX_FETCH   10000

struct export_job {
    struct qreq *q;
    struct query_api *api;
    struct router_lease lease;
    bool leased;
    struct httpd_stream *stream;
    pthread_mutex_t mu;
    bool busy, again, gone, ended;
    unsigned fetch;
    size_t chunk;
    struct buf out;
};

static void job_free(struct export_job *j)
{
    struct query_api *a = j->api;
    if (j->leased) {
        pg_conn_rollback(j->lease.conn);
        router_release(a->router, &j->lease, PG_OK);
    }
    httpd_stream_release(j->stream);
    buf_release(&j->out);
    pthread_mutex_destroy(&j->mu);
    metric_add(a->exports, -1);
    query_done(j->q);
    free(j);
}

/* Open the cursor on the leased connection (query_run's retry applies). */
static enum pg_status export_begin(struct qreq *q, struct router_lease *l, struct buf *body,
                                   char *err, size_t errlen)
{
    (void)body;
    char vals[5][PG_TIME_TEXT_LEN];
    const char *params[SQL_Q_EVENTS_NPARAMS];
    query_events_params(q, -1, vals, params);
    enum pg_status st = pg_conn_exec(l->conn, SQL_Q_EXPORT_BEGIN, 0, NULL, NULL, err, errlen);
    if (st == PG_OK)
        st = pg_conn_exec(l->conn, SQL_Q_EXPORT_DECLARE, SQL_Q_EVENTS_NPARAMS, params, NULL, err,
                          errlen);
    if (st != PG_OK)
        pg_conn_rollback(l->conn);
    return st;
}

/* One FETCH into the stream: 1 more to come, 0 the end, -1 failed. */
static int fetch_once(struct export_job *j)
{
    char sql[64], err[512];
    unsigned asked = j->fetch;
    snprintf(sql, sizeof(sql), SQL_Q_EXPORT_FETCH_FMT, asked);
    PGresult *res = NULL;
    enum pg_status st = pg_conn_exec(j->lease.conn, sql, 0, NULL, &res, err, sizeof(err));
    if (st != PG_OK) {
        log_warn("export on %s: %s", j->lease.served_by, err);
        router_release(j->api->router, &j->lease, st);
        j->leased = false;
        return -1;
    }
    int n = PQntuples(res);
    buf_reset(&j->out);
    for (int i = 0; i < n; i++) {
        render_event_json(res, i, &j->out);
        buf_addc(&j->out, '\n');
    }
    PQclear(res);
    j->q->rows += (unsigned)n;
    /* The next FETCH sized so that its text is about one chunk. */
    if (n > 0) {
        size_t per_row = j->out.len / (size_t)n + 1;
        size_t want = j->chunk / per_row;
        j->fetch = want < 1 ? 1 : want > MAX_FETCH ? MAX_FETCH : (unsigned)want;
    }
    int rc = (unsigned)n < asked ? 0 : 1;
    if (j->out.len && httpd_stream_write(j->stream, j->out.p, j->out.len) != 0)
        rc = -1; /* the client went away */
    if (j->out.cap > 2 * j->chunk + 65536)
        buf_release(&j->out); /* a page of huge rows does not keep its memory */
    return rc;
}

/* The end, good or bad: close the transaction, give the connection back,
 * end the stream. */
static void finish_export(struct export_job *j, bool ok)
{
    if (j->leased) {
        pg_conn_rollback(j->lease.conn); /* read-only: nothing to commit */
        router_release(j->api->router, &j->lease, PG_OK);
        j->leased = false;
    }
    j->ended = true;
    if (j->stream)
        httpd_stream_close(j->stream, ok);
}

/* A worker's turn: fetch while asked to, then hand back or clean up. */
static void fetch_task(void *ud)
{
    struct export_job *j = ud;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        bool gone = j->gone, ended = j->ended;
        j->again = false;
        pthread_mutex_unlock(&j->mu);
        if (!gone && !ended) {
            int rc = atomic_load(&j->api->stopping) ? -1 : fetch_once(j);
            if (rc <= 0)
                finish_export(j, rc == 0);
        }
        pthread_mutex_lock(&j->mu);
        if (j->gone) {
            pthread_mutex_unlock(&j->mu);
            job_free(j); /* the stream told its end: nothing else refers to j */
            return;
        }
        if (!j->again) {
            j->busy = false;
            pthread_mutex_unlock(&j->mu);
            return;
        }
        pthread_mutex_unlock(&j->mu);
    }
}

/* httpd's thread: the client took most of what was queued (fetch more),
 * or the response ended (clean up). Never blocks on the database: the
 * work goes to a worker. */
static void on_drain(void *ud, bool gone)
{
    struct export_job *j = ud;
    pthread_mutex_lock(&j->mu);
    if (gone)
        j->gone = true;
    if (j->busy) {
        j->again = true; /* the running task looks again before it returns */
        pthread_mutex_unlock(&j->mu);
        return;
    }
    j->busy = true;
    pthread_mutex_unlock(&j->mu);
    if (workq_submit(j->api->wq, fetch_task, j) == 0)
        return;
    /* No worker can take it (stopping, or the queue is full). */
    if (gone) {
        job_free(j);
        return;
    }
    log_warn("export: no worker free for the next chunk: the export ends incomplete");
    finish_export(j, false);
    pthread_mutex_lock(&j->mu);
    j->busy = false;
    pthread_mutex_unlock(&j->mu);
}

void query_export_start(struct qreq *q)
{
    struct query_api *a = q->api;
    struct httpd_response resp = {.status = 200};
    struct export_job *j = xcalloc(1, sizeof(*j));
    j->q = q;
    j->api = a;
    j->chunk = (size_t)a->qc->export_chunk_bytes;
    j->fetch = FIRST_FETCH;
    pthread_mutex_init(&j->mu, NULL);
    metric_add(a->exports, 1);
    q->deferred = true;
    if (query_run(q, export_begin, NULL, &j->lease, &resp) != 0) {
        query_finish(q, &resp, true); /* the error answer */
        job_free(j);
        return;
    }
    j->leased = true;
    j->stream = httpd_stream_new(j->chunk / 4, on_drain, j);
    /* The first chunk before the headers: a query that fails at once is
     * still an error status, not a truncated 200. */
    j->busy = true;
    int rc = fetch_once(j);
    if (rc < 0) {
        finish_export(j, false);
        httpd_stream_release(j->stream); /* the reference the response would have taken */
        query_error(q, &resp, 503, "unavailable", "the export could not start; retry");
        query_finish(q, &resp, true);
        job_free(j);
        return;
    }
    if (rc == 0)
        finish_export(j, true);
    resp.stream = j->stream; /* the response's reference */
    resp.content_type = "application/x-ndjson";
    query_finish(q, &resp, true);
    /* From here the stream's callbacks drive j. A drain that came while
     * this first turn was busy is taken now. */
    pthread_mutex_lock(&j->mu);
    bool gone = j->gone, again = j->again;
    j->busy = false;
    j->again = false;
    pthread_mutex_unlock(&j->mu);
    if (gone || again)
        on_drain(j, false);
}
