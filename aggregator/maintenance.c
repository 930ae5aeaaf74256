/* Partition maintenance under a lease (aggregator/maintenance.h). Redis lease
 * + fencing token checked in PostgreSQL inside every DDL transaction; falls
 * back to a session advisory lock when Redis is absent or down. */
#include "aggregator/maintenance.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/partitions.h"
#include "aggregator/pg_conn.h"
#include "aggregator/pg_sql.h"
#include "common/log.h"
#include "common/xmalloc.h"

#define LEASE_REDIS_KEY "auditrail:lease:maintenance"
#define LEASE_PG_NAME   "partitions"

struct maintenance {
    struct maintenance_conf conf;
    char *holder;
    char *lease_name, *token_key;
    struct pg_connection *conn; /* its own, never the writer's */
    struct part_cache parts;
};

static const char *const maintenance_session[] = {SQL_QUIET, NULL};
static const struct pg_conn_opts maintenance_conn_opts = {
    .application_name = "auditrail-maintenance",
    .session = maintenance_session,
};

struct fence {
    struct maintenance *m;
    int64_t token; /* > 0: Redis path; 0: advisory path */
};

void maintenance_conf_defaults(struct maintenance_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->premake_days = 7;
    c->retention_days = 2190;
    c->keep_table = false;
    c->recent_write_s = 420;
    c->lease_ttl_ms = 300000;
}

struct maintenance *maintenance_new(const char *conninfo, const struct maintenance_conf *conf)
{
    struct maintenance *m = xcalloc(1, sizeof(*m));
    m->conn = pg_conn_new(conninfo, &maintenance_conn_opts);
    if (conf->pg_limits)
        pg_conn_set_limits(m->conn, conf->pg_limits);
    m->conf = *conf;
    m->conf.pg_limits = NULL;
    m->holder = xstrdup(conf->holder ? conf->holder : "auditrail");
    m->conf.holder = m->holder;
    m->lease_name = xstrdup(conf->lease_name ? conf->lease_name : LEASE_REDIS_KEY);
    m->conf.lease_name = m->lease_name;
    m->token_key = xstrdup(conf->token_key ? conf->token_key : LEASE_REDIS_KEY ":token");
    m->conf.token_key = m->token_key;
    if (!m->conf.lease_ttl_ms)
        m->conf.lease_ttl_ms = 300000;
    part_cache_init(&m->parts);
    return m;
}

void maintenance_free(struct maintenance *m)
{
    if (!m)
        return;
    pg_conn_free(m->conn);
    part_cache_release(&m->parts);
    free(m->holder);
    free(m->lease_name);
    free(m->token_key);
    free(m);
}

static int connect_pg(struct maintenance *m, char *err, size_t errlen)
{
    bool fresh = false;
    char e2[512];
    if (pg_conn_open(m->conn, &fresh, e2, sizeof(e2)) != PG_OK) {
        snprintf(err, errlen, "maintenance: %s", e2);
        return -1;
    }
    if (fresh)
        m->parts.stale = true;
    return 0;
}

/* Runs first in each maintenance transaction. Redis path: store our token
 * unless a higher one is there (then we are a stale holder and stop).
 * Advisory path: take the lease row lock so we serialize with a Redis
 * holder's transactions. */
static int fence_check(struct pg_connection *conn, void *ud, char *err, size_t errlen)
{
    struct fence *f = ud;
    PGresult *res = NULL;
    enum pg_status st;
    char e2[512];
    if (f->token > 0) {
        char tok[24], ttl[24];
        snprintf(tok, sizeof(tok), "%" PRId64, f->token);
        snprintf(ttl, sizeof(ttl), "%" PRIu64, f->m->conf.lease_ttl_ms);
        const char *p[] = {LEASE_PG_NAME, tok, f->m->holder, ttl};
        st = pg_conn_exec(conn, SQL_M_FENCE, 4, p, &res, e2, sizeof(e2));
    } else {
        const char *p[] = {LEASE_PG_NAME};
        st = pg_conn_exec(conn, SQL_M_FENCE_ADVISORY, 1, p, &res, e2, sizeof(e2));
    }
    int rc = 0;
    if (st != PG_OK) {
        snprintf(err, errlen, "maintenance: fence: %s", e2);
        rc = -1;
    } else if (f->token > 0 && PQntuples(res) == 0) {
        snprintf(err, errlen, "maintenance: fencing token %" PRId64 " superseded by a newer holder",
                 f->token);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

static int advisory(struct pg_connection *conn, const char *sql, bool *got, char *err,
                    size_t errlen)
{
    char key[24], e2[512];
    snprintf(key, sizeof(key), "%" PRId64, MAINTENANCE_LOCK_KEY);
    const char *p[] = {key};
    PGresult *res = NULL;
    if (pg_conn_exec(conn, sql, 1, p, &res, e2, sizeof(e2)) != PG_OK) {
        snprintf(err, errlen, "maintenance: advisory lock: %s", e2);
        return -1;
    }
    if (got)
        *got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

int maintenance_run_once(struct maintenance *m, struct redis_store *redis, int64_t now_us,
                         struct maintenance_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    if (connect_pg(m, err, errlen) < 0)
        return -1;
    struct fence f = {m, 0};
    bool use_advisory = true;
    if (redis) {
        bool unreachable = false;
        int64_t token = 0;
        if (redis_store_lease(redis, m->lease_name, m->token_key, m->holder, m->conf.lease_ttl_ms,
                              &token, &unreachable) == 0) {
            f.token = token;
            use_advisory = false;
            res->lock = "redis";
            res->token = token;
        } else if (!unreachable) {
            return 0; /* another instance holds the lease */
        } else {
            log_info("maintenance: Redis unreachable, using the PostgreSQL advisory lock");
        }
    }
    if (use_advisory) {
        bool got = false;
        if (advisory(m->conn, SQL_M_TRY_LOCK, &got, err, errlen) < 0)
            goto conn_fail;
        if (!got)
            return 0;
        res->lock = "advisory";
    }
    res->ran = true;
    int rc = -1;
    if (part_premake(&m->parts, m->conn, now_us, m->conf.premake_days, fence_check, &f,
                     &res->created, err, errlen) < 0)
        goto out;
    if (part_retention(&m->parts, m->conn, now_us, m->conf.retention_days, m->conf.keep_table,
                       m->conf.recent_write_s, fence_check, &f, &res->dropped, &res->kept, err,
                       errlen) < 0)
        goto out;
    rc = 0;
out:
    if (use_advisory && pg_conn_ok(m->conn)) {
        char e2[256];
        if (advisory(m->conn, SQL_M_UNLOCK, NULL, e2, sizeof(e2)) < 0)
            log_warn("%s", e2);
    }
    if (rc == 0 && (res->created || res->dropped))
        log_info("maintenance: %d partitions created, %d %s (lock %s)", res->created, res->dropped,
                 m->conf.keep_table ? "detached" : "dropped", res->lock);
    return rc;
conn_fail:
    pg_conn_close(m->conn);
    return -1;
}
