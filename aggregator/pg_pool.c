/* The read path's connection pool (aggregator/pg_pool.h): a fixed array of
 * pg_conn connections and a stack of the free ones under one mutex. */
#include "aggregator/pg_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/timeutil.h"
#include "common/xmalloc.h"

#define POOL_SESSION_MAX 6

struct pg_pool {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    struct pg_connection **all, **idle;
    unsigned size, nidle;
    /* The session statements and options every connection shares. */
    char timeout_sql[64];
    const char *session[POOL_SESSION_MAX];
    struct pg_conn_opts opts;
};

/* UTC: timestamps come back in one zone whatever the server's default;
 * custom plans: the filters are `$n IS NULL OR column = $n`, which only a
 * plan made with the values folds away (a generic plan would scan);
 * read-only: a read connection never writes, whatever it is asked. */
static const char SQL_POOL_UTC[] = "SET TIME ZONE 'UTC'";
static const char SQL_POOL_PLANS[] = "SET plan_cache_mode = force_custom_plan";
static const char SQL_POOL_RO[] = "SET default_transaction_read_only = on";

struct pg_pool *pg_pool_new(const struct pg_pool_conf *conf)
{
    struct pg_pool *p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    snprintf(p->timeout_sql, sizeof(p->timeout_sql), "SET statement_timeout = %lld",
             (long long)conf->statement_timeout_ms);
    p->session[0] = SQL_POOL_UTC;
    p->session[1] = SQL_POOL_PLANS;
    p->session[2] = SQL_POOL_RO;
    p->session[3] = p->timeout_sql;
    p->session[4] = NULL;
    p->opts = (struct pg_conn_opts){.application_name = conf->application_name,
                                    .session = p->session,
                                    .stmts = conf->stmts,
                                    .nstmts = conf->nstmts};
    p->size = conf->size ? conf->size : 1;
    p->all = xcalloc(p->size, sizeof(*p->all));
    p->idle = xcalloc(p->size, sizeof(*p->idle));
    for (unsigned i = 0; i < p->size; i++) {
        p->all[i] = pg_conn_new(conf->conninfo, &p->opts);
        p->idle[i] = p->all[i];
    }
    p->nidle = p->size;
    return p;
}

void pg_pool_free(struct pg_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->size; i++)
        pg_conn_free(p->all[i]);
    free(p->all);
    free(p->idle);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

struct pg_connection *pg_pool_acquire(struct pg_pool *p, unsigned wait_ms)
{
    struct timespec until;
    time_deadline(&until, CLOCK_REALTIME, wait_ms);
    struct pg_connection *c = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && wait_ms > 0)
        if (pthread_cond_timedwait(&p->freed, &p->mu, &until) == ETIMEDOUT)
            break;
    if (p->nidle > 0)
        c = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mu);
    return c;
}

void pg_pool_release(struct pg_pool *p, struct pg_connection *c, bool broken)
{
    if (!c)
        return;
    if (broken)
        pg_conn_close(c);
    pthread_mutex_lock(&p->mu);
    p->idle[p->nidle++] = c;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

unsigned pg_pool_in_use(struct pg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned n = p->size - p->nidle;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void pg_pool_close_idle(struct pg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < p->nidle; i++)
        pg_conn_close(p->idle[i]);
    pthread_mutex_unlock(&p->mu);
}
