/* Versioned, idempotent schema migrations under a session advisory lock; see
 * aggregator/migrate.h. Each file runs in its own transaction together with
 * its schema_migrations row, so a crash leaves either both or neither. */
#include "aggregator/migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/pg_conn.h"
#include "aggregator/pg_sql.h"
#include "common/hashchain.h"
#include "common/log.h"
#include "common/xmalloc.h"

/* Advisory lock key of the migrator ("audmigr1"). */
#define MIGRATE_LOCK_KEY "7022344362093373233"

void migrate_checksum(const struct migration *m, char out[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    EVP_Digest(m->sql, m->len, md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, sizeof(md), out);
}

#define MIGRATE_CLIENT_TIMEOUT_MS (10 * 60 * 1000)

static const char *const migrate_session[] = {SQL_QUIET, NULL};
static const struct pg_conn_opts migrate_conn_opts = {
    .application_name = "auditrail-migrate",
    .session = migrate_session,
};

static int exec_ok(struct pg_connection *conn, const char *sql, int nparams,
                   const char *const *params, PGresult **out, char *err, size_t errlen)
{
    return pg_conn_exec(conn, sql, nparams, params, out, err, errlen) == PG_OK ? 0 : -1;
}

/* One migration and its schema_migrations row in one transaction. 0, or
 * -1 + err (rolled back). */
static int apply_one(struct pg_connection *conn, const struct migration *m, const char *sum,
                     char *err, size_t errlen)
{
    if (exec_ok(conn, SQL_BEGIN, 0, NULL, NULL, err, errlen) < 0)
        return -1;
    char ver[16], e2[512];
    snprintf(ver, sizeof(ver), "%d", m->version);
    const char *params[] = {ver, m->name, sum};
    /* The simple protocol runs the file's statements inside our transaction
     * block; the record goes in the same transaction. */
    if (exec_ok(conn, m->sql, 0, NULL, NULL, e2, sizeof(e2)) < 0 ||
        exec_ok(conn, SQL_MIGRATE_RECORD, 3, params, NULL, e2, sizeof(e2)) < 0 ||
        pg_conn_commit(conn, e2, sizeof(e2)) != PG_OK) {
        snprintf(err, errlen, "migration %03d_%s: %s", m->version, m->name, e2);
        pg_conn_rollback(conn);
        return -1;
    }
    return 0;
}

int migrate_apply(struct pg_connection *conn, const struct migration *m, size_t n,
                  struct migrate_report *rep, char *err, size_t errlen)
{
    const char *key[] = {MIGRATE_LOCK_KEY};
    PGresult *list = NULL;
    bool locked = false;
    int rc = -1;
    struct migrate_report r = {0, 0, 0};

    if (exec_ok(conn, SQL_MIGRATE_LOCK, 1, key, NULL, err, errlen) < 0)
        goto out;
    locked = true;
    if (exec_ok(conn, SQL_MIGRATE_BOOTSTRAP, 0, NULL, NULL, err, errlen) < 0)
        goto out;
    if (exec_ok(conn, SQL_MIGRATE_LIST, 0, NULL, &list, err, errlen) < 0)
        goto out;

    int nrec = PQntuples(list);
    for (int j = 0; j < nrec; j++) {
        int v = atoi(PQgetvalue(list, j, 0));
        if (v > r.current_version)
            r.current_version = v;
        bool known = false;
        for (size_t i = 0; i < n; i++)
            known |= m[i].version == v;
        if (!known)
            log_warn("migrate: version %d (%s) is applied but unknown to this binary (newer?)", v,
                     PQgetvalue(list, j, 1));
    }

    for (size_t i = 0; i < n; i++) {
        char sum[65];
        migrate_checksum(&m[i], sum);
        const char *stored = NULL;
        for (int j = 0; j < nrec; j++)
            if (atoi(PQgetvalue(list, j, 0)) == m[i].version)
                stored = PQgetvalue(list, j, 2);
        if (stored) {
            if (strcmp(stored, sum) != 0) {
                snprintf(err, errlen,
                         "migration %03d_%s: checksum mismatch (applied %.12s…, file %.12s…): an "
                         "applied migration was edited; add a new migration instead",
                         m[i].version, m[i].name, stored, sum);
                goto out;
            }
            r.already++;
            continue;
        }
        if (apply_one(conn, &m[i], sum, err, errlen) < 0)
            goto out;
        log_info("migrate: applied %03d_%s", m[i].version, m[i].name);
        r.applied++;
        if (m[i].version > r.current_version)
            r.current_version = m[i].version;
    }
    rc = 0;
out:
    PQclear(list);
    if (locked && pg_conn_ok(conn)) {
        char e3[256];
        if (exec_ok(conn, SQL_MIGRATE_UNLOCK, 1, key, NULL, e3, sizeof(e3)) < 0)
            log_warn("migrate: unlock: %s", e3);
    }
    if (rep)
        *rep = r;
    return rc;
}

int migrate_run(const char *conninfo, struct migrate_report *rep, char *err, size_t errlen)
{
    struct pg_connection *conn = pg_conn_new(conninfo, &migrate_conn_opts);
    /* A migration may build an index or wait for another instance's
     * migration lock: no statement_timeout or lock_timeout, and a client
     * deadline that only a server that stopped answering reaches. */
    struct pg_limits lim = PG_LIMITS_DEFAULT;
    lim.statement_timeout_ms = 0;
    lim.lock_timeout_ms = 0;
    lim.client_timeout_ms = MIGRATE_CLIENT_TIMEOUT_MS;
    pg_conn_set_limits(conn, &lim);
    int rc = -1;
    char e2[512];
    if (pg_conn_open(conn, NULL, e2, sizeof(e2)) != PG_OK) {
        snprintf(err, errlen, "migrate: %s", e2);
        goto out;
    }
    rc = migrate_apply(conn, migrate_embedded, migrate_embedded_count, rep, err, errlen);
out:
    pg_conn_free(conn);
    return rc;
}

static int cmp_migration(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static int parse_name(const char *fname, int *version, char **name)
{
    size_t len = strlen(fname);
    if (len < 5 || strcmp(fname + len - 4, ".sql") != 0)
        return -1;
    const char *p = fname;
    int v = 0, digits = 0;
    while (isdigit((unsigned char)*p) && digits < 9) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || *p != '_' || p + 1 >= fname + len - 4)
        return -1;
    *version = v;
    *name = xstrndup(p + 1, (size_t)(fname + len - 4 - (p + 1)));
    return 0;
}

int migrate_load_dir(const char *dir, struct migration **out, size_t *n, char *err, size_t errlen)
{
    struct migration *m = NULL;
    size_t cnt = 0, cap = 0;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    int rc = -1;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".sql") != 0)
            continue;
        int v;
        char *name;
        if (parse_name(de->d_name, &v, &name) < 0) {
            snprintf(err, errlen, "%s/%s: not NNN_name.sql", dir, de->d_name);
            goto out;
        }
        char *path = xasprintf("%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            free(path);
            free(name);
            goto out;
        }
        free(path);
        char *buf = NULL;
        size_t blen = 0, bcap = 0, got;
        do {
            if (bcap - blen < 4096) {
                bcap = bcap ? bcap * 2 : 8192;
                buf = xrealloc(buf, bcap + 1);
            }
            got = fread(buf + blen, 1, bcap - blen, f);
            blen += got;
        } while (got > 0);
        fclose(f);
        buf[blen] = '\0';
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            m = xrealloc(m, cap * sizeof(*m));
        }
        m[cnt++] = (struct migration){v, name, buf, blen};
    }
    if (cnt > 1)
        qsort(m, cnt, sizeof(*m), cmp_migration);
    for (size_t i = 1; i < cnt; i++)
        if (m[i].version == m[i - 1].version) {
            snprintf(err, errlen, "%s: duplicate migration version %d", dir, m[i].version);
            goto out;
        }
    rc = 0;
out:
    closedir(d);
    if (rc < 0) {
        migrate_list_free(m, cnt);
        m = NULL;
        cnt = 0;
    }
    *out = m;
    *n = cnt;
    return rc;
}

void migrate_list_free(struct migration *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        free((char *)m[i].name);
        free((char *)m[i].sql);
    }
    free(m);
}
